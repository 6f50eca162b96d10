//! RDS behind a port named for database recovery. IAM: `rds:DescribeDBInstances`,
//! `rds:DescribeDBSnapshots`, `rds:DescribeDBInstanceAutomatedBackups`,
//! `rds:CreateDBSnapshot`, `rds:AddTagsToResource`, `rds:RestoreDBInstanceFromDBSnapshot`,
//! `rds:RestoreDBInstanceToPointInTime`; for restore tests `rds:DeleteDBInstance` (drill
//! instances only); for retention `rds:CopyDBSnapshot`, `rds:DeleteDBSnapshot` (drbot's own).

use aws_sdk_rds::operation::describe_db_instances::DescribeDBInstancesError;
use aws_sdk_rds::operation::describe_db_snapshots::DescribeDBSnapshotsError;
use aws_sdk_rds::operation::RequestId;
use aws_sdk_rds::primitives::DateTime as AwsTime;
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::AwsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    /// `arn:aws:rds:REGION:ACCOUNT:db:ID`: where it is, and whose.
    pub arn: String,
    pub status: String,
    pub class: String,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    pub encrypted: bool,
    pub backup_retention_days: i32,
    pub latest_restorable: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
    pub endpoint: Option<String>,
    /// Where it runs: a restore from it is placed the same way.
    pub placement: Placement,
}

/// Where a restored instance goes (SPEC §5): like its source — subnet group, security
/// groups, parameter and option groups, Multi-AZ, storage type and tags — unless
/// `drbot.toml` overrides the subnet group or security groups. A restore is always created
/// not publicly accessible and with deletion protection on, whatever the source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub parameter_group: Option<String>,
    pub option_group: Option<String>,
    pub multi_az: bool,
    pub storage_type: Option<String>,
    pub tags: Vec<(String, String)>,
}

impl Placement {
    /// The source's placement with `drbot.toml`'s overrides.
    pub fn with_overrides(
        mut self,
        subnet_group: Option<&String>,
        security_groups: Option<&Vec<String>>,
    ) -> Placement {
        if let Some(group) = subnet_group {
            self.subnet_group = Some(group.clone());
        }
        if let Some(groups) = security_groups {
            self.security_groups = groups.clone();
        }
        self
    }

    /// One line for the approval request.
    pub fn describe(&self) -> String {
        let or_default = |v: &Option<String>| {
            v.as_deref()
                .map(|v| format!("`{v}`"))
                .unwrap_or_else(|| "the default".to_string())
        };
        let groups = if self.security_groups.is_empty() {
            "the VPC's default".to_string()
        } else {
            crate::slack::text::codes(&self.security_groups)
        };
        format!(
            "subnet group {}, security groups {groups}, parameter group {}, option group {}, Multi-AZ {}, storage {}, {} tag(s) copied; *not publicly accessible*, deletion protection on",
            or_default(&self.subnet_group),
            or_default(&self.parameter_group),
            or_default(&self.option_group),
            if self.multi_az { "yes" } else { "no" },
            or_default(&self.storage_type),
            self.tags.len()
        )
    }

    fn tags(&self) -> Option<Vec<Tag>> {
        tagged(&self.tags)
    }

    fn security_group_ids(&self) -> Option<Vec<String>> {
        (!self.security_groups.is_empty()).then(|| self.security_groups.clone())
    }
}

/// Applies `placement` to a restore request: both restore builders take the same settings,
/// and a restore is never publicly accessible and always protected from deletion.
macro_rules! placed {
    ($call:expr, $p:expr) => {
        $call
            .set_db_subnet_group_name($p.subnet_group.clone())
            .set_vpc_security_group_ids($p.security_group_ids())
            .set_db_parameter_group_name($p.parameter_group.clone())
            .set_option_group_name($p.option_group.clone())
            .multi_az($p.multi_az)
            .set_storage_type($p.storage_type.clone())
            .set_tags($p.tags())
            .publicly_accessible(false)
            .deletion_protection(true)
    };
}

/// The placement of instance `db`, as RDS describes it.
fn placement_of(db: &aws_sdk_rds::types::DbInstance) -> Placement {
    Placement {
        subnet_group: db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_string),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_string)
            .collect(),
        // AWS's own default groups (`default.postgres13`, `default:postgres-13`) are what a
        // restore gets anyway when none is named; naming them adds nothing.
        parameter_group: db
            .db_parameter_groups()
            .first()
            .and_then(|p| p.db_parameter_group_name())
            .filter(|name| !name.starts_with("default."))
            .map(str::to_string),
        option_group: db
            .option_group_memberships()
            .first()
            .and_then(|o| o.option_group_name())
            .filter(|name| !name.starts_with("default:"))
            .map(str::to_string),
        multi_az: db.multi_az().unwrap_or(false),
        storage_type: db.storage_type().map(str::to_string),
        // `aws:` tags belong to AWS and cannot be set.
        tags: db
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .filter(|(k, _)| !k.starts_with("aws:"))
            .collect(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub arn: String,
    pub instance: String,
    /// For a copy from another region: the region it was copied from.
    pub source_region: Option<String>,
    pub status: String,
    pub created: Option<DateTime<Utc>>,
    /// `automated` (kept for the instance's backup retention, at most 35 days) or `manual`.
    pub kind: String,
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    pub encrypted: bool,
    pub tags: Vec<(String, String)>,
}

/// The region and account an RDS ARN names (`arn:PARTITION:rds:REGION:ACCOUNT:…`).
pub fn arn_place(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_), Some("rds"), Some(region), Some(account)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    Some((region, account))
}

impl Snapshot {
    /// Why this snapshot is not one of `instance` (by ARN: the same account, and the
    /// instance's region or a copy from it), if it is not. A name alone proves nothing: any
    /// account can have an instance of that name and share a snapshot of it.
    /// `copied_by_drbot`: drbot's own log records copying it here.
    pub fn not_of(
        &self,
        instance: &str,
        instance_arn: Option<&str>,
        copied_by_drbot: bool,
    ) -> Option<String> {
        if self.instance != instance {
            return Some(format!(
                "snapshot `{}` belongs to instance `{}`, not `{instance}`",
                self.id, self.instance
            ));
        }
        if self.kind == "shared" {
            return Some(format!(
                "snapshot `{}` is shared from another AWS account ({}): it is not a snapshot of this account's `{instance}`",
                self.id, self.arn
            ));
        }
        let Some((snap_region, snap_account)) = arn_place(&self.arn) else {
            return Some(format!(
                "snapshot `{}` has no readable ARN (`{}`): drbot cannot tell whose it is",
                self.id, self.arn
            ));
        };
        let expected = instance_arn.and_then(arn_place);
        if let Some((_, account)) = expected {
            if account != snap_account {
                return Some(format!(
                    "snapshot `{}` is in AWS account {snap_account}, but `{instance}` is in account {account} ({})",
                    self.id, self.arn
                ));
            }
        }
        if let Some((home, _)) = expected {
            let from = self.source_region.as_deref().unwrap_or(snap_region);
            if snap_region != home && from != home && !copied_by_drbot {
                return Some(format!(
                    "snapshot `{}` was taken in {from}, but `{instance}` runs in {home} ({})",
                    self.id, self.arn
                ));
            }
        }
        None
    }

    pub fn is_automated(&self) -> bool {
        self.kind == "automated"
    }

    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn time(t: Option<&AwsTime>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()))
}

/// The RDS calls the database actions make.
#[allow(async_fn_in_trait)]
pub trait RdsRecovery {
    async fn instance(&self, id: &str) -> Result<Option<Instance>, AwsError>;
    /// The start of the automated-backup restore window, when RDS reports one.
    async fn earliest_restorable(&self, id: &str) -> Result<Option<DateTime<Utc>>, AwsError>;
    async fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, AwsError>;
    async fn snapshots_of(&self, instance: &str) -> Result<Vec<Snapshot>, AwsError>;
    async fn create_snapshot(
        &self,
        instance: &str,
        snapshot: &str,
        tags: &[(String, String)],
    ) -> Result<String, AwsError>;
    async fn restore_snapshot(
        &self,
        snapshot: &str,
        new_instance: &str,
        class: &str,
        placement: &Placement,
    ) -> Result<String, AwsError>;
    /// A restore test's instance: placed like a restore, but deletable (drbot deletes it
    /// after its checks).
    async fn restore_for_drill(
        &self,
        snapshot: &str,
        new_instance: &str,
        class: &str,
        placement: &Placement,
    ) -> Result<String, AwsError>;
    /// Deletes an instance without a final snapshot (only ever a restore test's own).
    async fn delete_instance(&self, id: &str) -> Result<String, AwsError>;
    /// Copies snapshot `source` to a manual one, `target`, in this client's region:
    /// from another region when `from_region` names one (`source` is then its ARN).
    async fn copy_snapshot(
        &self,
        source: &str,
        from_region: Option<&str>,
        target: &str,
        tags: &[(String, String)],
        kms_key: Option<&str>,
    ) -> Result<String, AwsError>;
    async fn delete_snapshot(&self, id: &str) -> Result<String, AwsError>;
    /// `at = None` restores to the latest restorable time.
    async fn restore_to_time(
        &self,
        source: &str,
        new_instance: &str,
        at: Option<DateTime<Utc>>,
        class: &str,
        placement: &Placement,
    ) -> Result<String, AwsError>;
}

impl RdsRecovery for aws_sdk_rds::Client {
    async fn instance(&self, id: &str) -> Result<Option<Instance>, AwsError> {
        let answer = self
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        let resource = format!("instance {id}");
        let missing = |e: &DescribeDBInstancesError| e.is_db_instance_not_found_fault();
        let Some(out) = super::unless_missing("DescribeDBInstances", &resource, answer, missing)?
        else {
            return Ok(None);
        };
        Ok(out.db_instances().first().map(|db| Instance {
            id: db.db_instance_identifier().unwrap_or(id).to_string(),
            arn: db.db_instance_arn().unwrap_or_default().to_string(),
            status: db.db_instance_status().unwrap_or_default().to_string(),
            class: db.db_instance_class().unwrap_or_default().to_string(),
            engine: db.engine().unwrap_or_default().to_string(),
            engine_version: db.engine_version().unwrap_or_default().to_string(),
            allocated_storage_gib: db.allocated_storage().unwrap_or(0),
            encrypted: db.storage_encrypted().unwrap_or(false),
            backup_retention_days: db.backup_retention_period().unwrap_or(0),
            latest_restorable: time(db.latest_restorable_time()),
            created: time(db.instance_create_time()),
            endpoint: db.endpoint().and_then(|e| e.address()).map(|a| {
                match db.endpoint().and_then(|e| e.port()) {
                    Some(port) => format!("{a}:{port}"),
                    None => a.to_string(),
                }
            }),
            placement: placement_of(db),
        }))
    }

    async fn earliest_restorable(&self, id: &str) -> Result<Option<DateTime<Utc>>, AwsError> {
        match self
            .describe_db_instance_automated_backups()
            .db_instance_identifier(id)
            .send()
            .await
        {
            Ok(out) => Ok(out
                .db_instance_automated_backups()
                .iter()
                .filter_map(|b| time(b.restore_window().and_then(|w| w.earliest_time())))
                .min()),
            // Not every RDS (or emulator) answers this; the caller falls back to the retention.
            Err(e) => {
                tracing::debug!(error = %AwsError::from_sdk("DescribeDBInstanceAutomatedBackups", id, &e), "no restore window");
                Ok(None)
            }
        }
    }

    async fn snapshot(&self, id: &str) -> Result<Option<Snapshot>, AwsError> {
        let answer = self
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await;
        let resource = format!("snapshot {id}");
        let missing = |e: &DescribeDBSnapshotsError| e.is_db_snapshot_not_found_fault();
        let Some(out) = super::unless_missing("DescribeDBSnapshots", &resource, answer, missing)?
        else {
            return Ok(None);
        };
        Ok(out.db_snapshots().first().map(to_snapshot))
    }

    async fn snapshots_of(&self, instance: &str) -> Result<Vec<Snapshot>, AwsError> {
        let mut snapshots = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let out = self
                .describe_db_snapshots()
                .db_instance_identifier(instance)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| {
                    AwsError::from_sdk("DescribeDBSnapshots", &format!("instance {instance}"), &e)
                })?;
            snapshots.extend(out.db_snapshots().iter().map(to_snapshot));
            match out.marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(snapshots),
            }
        }
    }

    async fn restore_for_drill(
        &self,
        snapshot: &str,
        new_instance: &str,
        class: &str,
        placement: &Placement,
    ) -> Result<String, AwsError> {
        restore_from_snapshot(self, snapshot, new_instance, class, placement, false).await
    }

    async fn delete_instance(&self, id: &str) -> Result<String, AwsError> {
        let call = self
            .delete_db_instance()
            .db_instance_identifier(id)
            .skip_final_snapshot(true)
            .delete_automated_backups(true);
        let resource = format!("instance {id}");
        super::change!(aws_sdk_rds, "DeleteDBInstance", resource, call)
    }

    async fn copy_snapshot(
        &self,
        source: &str,
        from_region: Option<&str>,
        target: &str,
        tags: &[(String, String)],
        kms_key: Option<&str>,
    ) -> Result<String, AwsError> {
        let call = self
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source)
            .target_db_snapshot_identifier(target)
            .set_kms_key_id(kms_key.map(str::to_string))
            .set_tags(tagged(tags));
        let resource = match from_region {
            Some(region) => format!("snapshot {source} ({region})"),
            None => format!("snapshot {source}"),
        };
        super::change!(aws_sdk_rds, "CopyDBSnapshot", resource, call)
    }

    async fn delete_snapshot(&self, id: &str) -> Result<String, AwsError> {
        let call = self.delete_db_snapshot().db_snapshot_identifier(id);
        let resource = format!("snapshot {id}");
        super::change!(aws_sdk_rds, "DeleteDBSnapshot", resource, call)
    }

    async fn create_snapshot(
        &self,
        instance: &str,
        snapshot: &str,
        tags: &[(String, String)],
    ) -> Result<String, AwsError> {
        let call = self
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(snapshot)
            .set_tags(tagged(tags));
        let resource = format!("instance {instance}");
        super::change!(aws_sdk_rds, "CreateDBSnapshot", resource, call)
    }

    async fn restore_snapshot(
        &self,
        snapshot: &str,
        new_instance: &str,
        class: &str,
        placement: &Placement,
    ) -> Result<String, AwsError> {
        restore_from_snapshot(self, snapshot, new_instance, class, placement, true).await
    }

    async fn restore_to_time(
        &self,
        source: &str,
        new_instance: &str,
        at: Option<DateTime<Utc>>,
        class: &str,
        placement: &Placement,
    ) -> Result<String, AwsError> {
        let mut call = placed!(
            self.restore_db_instance_to_point_in_time()
                .source_db_instance_identifier(source)
                .target_db_instance_identifier(new_instance)
                .db_instance_class(class),
            placement
        );
        call = match at {
            Some(t) => call.restore_time(AwsTime::from_secs(t.timestamp())),
            None => call.use_latest_restorable_time(true),
        };
        let resource = format!("instance {source}");
        super::change!(
            aws_sdk_rds,
            "RestoreDBInstanceToPointInTime",
            resource,
            call
        )
    }
}

/// `RestoreDBInstanceFromDBSnapshot` placed by `placement`; `protected` keeps deletion
/// protection on (a real restore), off for a restore test drbot deletes afterwards.
async fn restore_from_snapshot(
    rds: &aws_sdk_rds::Client,
    snapshot: &str,
    new_instance: &str,
    class: &str,
    placement: &Placement,
    protected: bool,
) -> Result<String, AwsError> {
    let call = placed!(
        rds.restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(snapshot)
            .db_instance_identifier(new_instance)
            .db_instance_class(class),
        placement
    )
    .deletion_protection(protected);
    let resource = format!("snapshot {snapshot}");
    super::change!(
        aws_sdk_rds,
        "RestoreDBInstanceFromDBSnapshot",
        resource,
        call
    )
}

fn to_snapshot(s: &aws_sdk_rds::types::DbSnapshot) -> Snapshot {
    Snapshot {
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_string(),
        instance: s.db_instance_identifier().unwrap_or_default().to_string(),
        source_region: s.source_region().map(str::to_string),
        status: s.status().unwrap_or_default().to_string(),
        // A copy's own create time is when it was copied; what it holds is from the original.
        created: time(s.original_snapshot_create_time()).or(time(s.snapshot_create_time())),
        kind: s.snapshot_type().unwrap_or("manual").to_string(),
        engine: s.engine().unwrap_or_default().to_string(),
        engine_version: s.engine_version().unwrap_or_default().to_string(),
        allocated_storage_gib: s.allocated_storage().unwrap_or(0),
        encrypted: s.encrypted().unwrap_or(false),
        tags: s
            .tag_list()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or("").to_string())))
            .collect(),
    }
}

/// Tags as RDS takes them.
fn tagged(tags: &[(String, String)]) -> Option<Vec<Tag>> {
    Some(
        tags.iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect(),
    )
}

/// A DB subnet group as readiness checks it: it exists, in a VPC, with subnets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetGroup {
    pub name: String,
    pub vpc: Option<String>,
    pub subnets: usize,
}

/// DB subnet group `name` in the client's region, `None` when it does not exist.
/// IAM: `rds:DescribeDBSubnetGroups`.
pub async fn subnet_group(
    rds: &aws_sdk_rds::Client,
    name: &str,
) -> Result<Option<SubnetGroup>, AwsError> {
    let answer = rds
        .describe_db_subnet_groups()
        .db_subnet_group_name(name)
        .send()
        .await;
    let resource = format!("subnet group {name}");
    let missing =
        |e: &aws_sdk_rds::operation::describe_db_subnet_groups::DescribeDBSubnetGroupsError| {
            e.is_db_subnet_group_not_found_fault()
        };
    let Some(out) = super::unless_missing("DescribeDBSubnetGroups", &resource, answer, missing)?
    else {
        return Ok(None);
    };
    Ok(out.db_subnet_groups().first().map(|g| SubnetGroup {
        name: g.db_subnet_group_name().unwrap_or(name).to_string(),
        vpc: g.vpc_id().map(str::to_string),
        subnets: g.subnets().len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::Snapshot;

    fn snapshot(arn: &str, kind: &str, source_region: Option<&str>) -> Snapshot {
        Snapshot {
            id: "s1".into(),
            arn: arn.into(),
            instance: "orders-db".into(),
            source_region: source_region.map(str::to_string),
            status: "available".into(),
            created: None,
            kind: kind.into(),
            engine: "postgres".into(),
            engine_version: "16".into(),
            allocated_storage_gib: 20,
            encrypted: true,
            tags: vec![],
        }
    }

    const HOME: &str = "arn:aws:rds:eu-west-1:111111111111:db:orders-db";

    #[test]
    fn a_snapshot_is_the_instances_only_by_account_and_region_not_by_name() {
        let ours = snapshot(
            "arn:aws:rds:eu-west-1:111111111111:snapshot:s1",
            "manual",
            None,
        );
        assert_eq!(ours.not_of("orders-db", Some(HOME), false), None);
        // A copy in the backup region, made from the home region.
        let copy = snapshot(
            "arn:aws:rds:eu-central-1:111111111111:snapshot:s1",
            "manual",
            Some("eu-west-1"),
        );
        assert_eq!(copy.not_of("orders-db", Some(HOME), false), None);
        // Another account's instance of the same name.
        let foreign = snapshot(
            "arn:aws:rds:eu-west-1:666666666666:snapshot:s1",
            "manual",
            None,
        );
        let why = foreign.not_of("orders-db", Some(HOME), false).unwrap();
        assert!(why.contains("account 666666666666"), "{why}");
        let shared = snapshot(
            "arn:aws:rds:eu-west-1:666666666666:snapshot:s1",
            "shared",
            None,
        );
        assert!(shared
            .not_of("orders-db", None, false)
            .unwrap()
            .contains("shared"));
        // Same account, another region's instance of the same name.
        let elsewhere = snapshot(
            "arn:aws:rds:us-east-1:111111111111:snapshot:s1",
            "manual",
            None,
        );
        let why = elsewhere.not_of("orders-db", Some(HOME), false).unwrap();
        assert!(why.contains("taken in us-east-1"), "{why}");
        // ...unless drbot itself copied it there.
        assert_eq!(elsewhere.not_of("orders-db", Some(HOME), true), None);
        // Another instance altogether.
        assert!(ours
            .not_of("billing-db", Some(HOME), false)
            .unwrap()
            .contains("belongs to"));
    }
}
