//! RDS behind a port named for database recovery. IAM: `rds:DescribeDBInstances`,
//! `rds:DescribeDBSnapshots`, `rds:DescribeDBInstanceAutomatedBackups`,
//! `rds:CreateDBSnapshot`, `rds:AddTagsToResource`, `rds:RestoreDBInstanceFromDBSnapshot`,
//! `rds:RestoreDBInstanceToPointInTime`.

use aws_sdk_rds::operation::RequestId;
use aws_sdk_rds::primitives::DateTime as AwsTime;
use aws_sdk_rds::types::Tag;
use chrono::{DateTime, Utc};

use super::AwsError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub status: String,
    pub class: String,
    pub engine: String,
    pub backup_retention_days: i32,
    pub latest_restorable: Option<DateTime<Utc>>,
    pub created: Option<DateTime<Utc>>,
    pub endpoint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub id: String,
    pub instance: String,
    pub status: String,
    pub created: Option<DateTime<Utc>>,
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
    ) -> Result<String, AwsError>;
    /// `at = None` restores to the latest restorable time.
    async fn restore_to_time(
        &self,
        source: &str,
        new_instance: &str,
        at: Option<DateTime<Utc>>,
        class: &str,
    ) -> Result<String, AwsError>;
}

impl RdsRecovery for aws_sdk_rds::Client {
    async fn instance(&self, id: &str) -> Result<Option<Instance>, AwsError> {
        let answer = self
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await;
        let out = match answer {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_instance_not_found_fault()) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(AwsError::from_sdk(
                    "DescribeDBInstances",
                    &format!("instance {id}"),
                    &e,
                ))
            }
        };
        Ok(out.db_instances().first().map(|db| Instance {
            id: db.db_instance_identifier().unwrap_or(id).to_string(),
            status: db.db_instance_status().unwrap_or_default().to_string(),
            class: db.db_instance_class().unwrap_or_default().to_string(),
            engine: db.engine().unwrap_or_default().to_string(),
            backup_retention_days: db.backup_retention_period().unwrap_or(0),
            latest_restorable: time(db.latest_restorable_time()),
            created: time(db.instance_create_time()),
            endpoint: db.endpoint().and_then(|e| e.address()).map(|a| {
                match db.endpoint().and_then(|e| e.port()) {
                    Some(port) => format!("{a}:{port}"),
                    None => a.to_string(),
                }
            }),
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
        let out = match answer {
            Ok(out) => out,
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_db_snapshot_not_found_fault()) =>
            {
                return Ok(None)
            }
            Err(e) => {
                return Err(AwsError::from_sdk(
                    "DescribeDBSnapshots",
                    &format!("snapshot {id}"),
                    &e,
                ))
            }
        };
        Ok(out.db_snapshots().first().map(to_snapshot))
    }

    async fn snapshots_of(&self, instance: &str) -> Result<Vec<Snapshot>, AwsError> {
        let out = self
            .describe_db_snapshots()
            .db_instance_identifier(instance)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk("DescribeDBSnapshots", &format!("instance {instance}"), &e)
            })?;
        Ok(out.db_snapshots().iter().map(to_snapshot).collect())
    }

    async fn create_snapshot(
        &self,
        instance: &str,
        snapshot: &str,
        tags: &[(String, String)],
    ) -> Result<String, AwsError> {
        let mut call = self
            .create_db_snapshot()
            .db_instance_identifier(instance)
            .db_snapshot_identifier(snapshot);
        for (k, v) in tags {
            call = call.tags(Tag::builder().key(k).value(v).build());
        }
        let out = call.send().await.map_err(|e| {
            AwsError::from_sdk("CreateDBSnapshot", &format!("instance {instance}"), &e)
        })?;
        Ok(out.request_id().unwrap_or("unknown").to_string())
    }

    async fn restore_snapshot(
        &self,
        snapshot: &str,
        new_instance: &str,
        class: &str,
    ) -> Result<String, AwsError> {
        let out = self
            .restore_db_instance_from_db_snapshot()
            .db_snapshot_identifier(snapshot)
            .db_instance_identifier(new_instance)
            .db_instance_class(class)
            .send()
            .await
            .map_err(|e| {
                AwsError::from_sdk(
                    "RestoreDBInstanceFromDBSnapshot",
                    &format!("snapshot {snapshot}"),
                    &e,
                )
            })?;
        Ok(out.request_id().unwrap_or("unknown").to_string())
    }

    async fn restore_to_time(
        &self,
        source: &str,
        new_instance: &str,
        at: Option<DateTime<Utc>>,
        class: &str,
    ) -> Result<String, AwsError> {
        let mut call = self
            .restore_db_instance_to_point_in_time()
            .source_db_instance_identifier(source)
            .target_db_instance_identifier(new_instance)
            .db_instance_class(class);
        call = match at {
            Some(t) => call.restore_time(AwsTime::from_secs(t.timestamp())),
            None => call.use_latest_restorable_time(true),
        };
        let out = call.send().await.map_err(|e| {
            AwsError::from_sdk(
                "RestoreDBInstanceToPointInTime",
                &format!("instance {source}"),
                &e,
            )
        })?;
        Ok(out.request_id().unwrap_or("unknown").to_string())
    }
}

fn to_snapshot(s: &aws_sdk_rds::types::DbSnapshot) -> Snapshot {
    Snapshot {
        id: s.db_snapshot_identifier().unwrap_or_default().to_string(),
        instance: s.db_instance_identifier().unwrap_or_default().to_string(),
        status: s.status().unwrap_or_default().to_string(),
        created: time(s.snapshot_create_time()),
    }
}
