//! `drbot iam-policy` (SPEC §13): the least-privilege IAM policy for exactly the resources in
//! `drbot.toml` and the AWS operations drbot calls. Each statement names the ARNs of the
//! configured resources where the action supports resource-level permissions, and `*` only
//! where AWS allows nothing narrower (`ecs:DescribeTaskDefinition`,
//! `ecs:ListTaskDefinitions`).
//!
//! [`OPERATIONS`] is the one list of what drbot calls; a test scans `src/` for SDK calls and
//! fails when one is missing from it, then checks the generated policy allows each call on
//! the configured resources and nothing else.

use serde_json::{json, Value};

use crate::config::{Settings, WafScope};

/// Every AWS SDK operation drbot calls, as `(service, SDK method, IAM action)`.
pub const OPERATIONS: &[(&str, &str, &str)] = &[
    ("ecs", "describe_services", "ecs:DescribeServices"),
    ("ecs", "update_service", "ecs:UpdateService"),
    (
        "ecs",
        "describe_task_definition",
        "ecs:DescribeTaskDefinition",
    ),
    ("ecs", "list_task_definitions", "ecs:ListTaskDefinitions"),
    ("rds", "describe_db_instances", "rds:DescribeDBInstances"),
    ("rds", "describe_db_snapshots", "rds:DescribeDBSnapshots"),
    (
        "rds",
        "describe_db_instance_automated_backups",
        "rds:DescribeDBInstanceAutomatedBackups",
    ),
    ("rds", "create_db_snapshot", "rds:CreateDBSnapshot"),
    (
        "rds",
        "restore_db_instance_from_db_snapshot",
        "rds:RestoreDBInstanceFromDBSnapshot",
    ),
    (
        "rds",
        "restore_db_instance_to_point_in_time",
        "rds:RestoreDBInstanceToPointInTime",
    ),
    ("rds", "delete_db_instance", "rds:DeleteDBInstance"),
    ("rds", "copy_db_snapshot", "rds:CopyDBSnapshot"),
    ("rds", "delete_db_snapshot", "rds:DeleteDBSnapshot"),
    (
        "rds",
        "describe_db_subnet_groups",
        "rds:DescribeDBSubnetGroups",
    ),
    (
        "route53",
        "list_resource_record_sets",
        "route53:ListResourceRecordSets",
    ),
    (
        "route53",
        "change_resource_record_sets",
        "route53:ChangeResourceRecordSets",
    ),
    ("route53", "get_change", "route53:GetChange"),
    ("sqs", "delete_message", "sqs:DeleteMessage"),
    ("ssm", "get_parameter", "ssm:GetParameter"),
    ("ssm", "put_parameter", "ssm:PutParameter"),
    ("wafv2", "get_web_acl", "wafv2:GetWebACL"),
    ("wafv2", "update_web_acl", "wafv2:UpdateWebACL"),
    ("wafv2", "get_ip_set", "wafv2:GetIPSet"),
    ("wafv2", "update_ip_set", "wafv2:UpdateIPSet"),
];

/// Where the ARNs point: an account id and region.
#[derive(Debug, Clone)]
pub struct Scope {
    pub account: String,
    pub region: String,
}

/// The ARN partition of `region`: `aws-cn` in China, `aws-us-gov` in GovCloud, else `aws`.
pub fn partition(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else if region.starts_with("us-iso-") {
        "aws-iso"
    } else if region.starts_with("us-isob-") {
        "aws-iso-b"
    } else {
        "aws"
    }
}

/// The names an instance restored from `instance` may have (`<instance>-…`, as drbot's
/// default `<instance>-restored-<time>`, or `drbot-…`), and its snapshots' names (drbot's
/// `drbot-<instance>-…`, RDS's automated `rds:<instance>-…`, and `<instance>-…`).
pub fn restored_patterns(instance: &str) -> [String; 2] {
    [format!("{instance}-*"), "drbot-*".to_string()]
}

pub fn snapshot_patterns(instance: &str) -> [String; 3] {
    [
        format!("drbot-{instance}-*"),
        format!("rds:{instance}-*"),
        format!("{instance}-*"),
    ]
}

/// Whether `name` may be given to an instance restored from `instance` (the policy allows
/// exactly these names).
pub fn restore_name_allowed(instance: &str, name: &str) -> bool {
    name.starts_with(&format!("{instance}-")) || name.starts_with("drbot-")
}

/// The policy document.
pub fn policy(settings: &Settings, scope: &Scope) -> Value {
    let (account, region) = (&scope.account, &scope.region);
    let p = partition(region);
    let mut statements = Vec::new();

    // Services in another region have a statement of their own (below).
    let here: Vec<&crate::config::EcsService> = settings
        .ecs
        .services
        .iter()
        .filter(|s| {
            settings
                .region_of(s.region.as_deref())
                .is_none_or(|r| r == *region)
        })
        .collect();
    if !here.is_empty() {
        let services: Vec<String> = here
            .iter()
            .map(|s| {
                format!(
                    "arn:{p}:ecs:{region}:{account}:service/{}/{}",
                    cluster_name(&s.cluster),
                    s.service
                )
            })
            .collect();
        let mut clusters: Vec<String> = here
            .iter()
            .map(|s| {
                format!(
                    "arn:{p}:ecs:{region}:{account}:cluster/{}",
                    cluster_name(&s.cluster)
                )
            })
            .collect();
        clusters.sort();
        clusters.dedup();
        // Both actions also name the cluster in the request: only the configured ones.
        let in_clusters = json!({"ArnEquals": {"ecs:cluster": clusters}});
        statements.push(when(
            allow(
                "ReadConfiguredServices",
                json!(["ecs:DescribeServices"]),
                json!(services),
            ),
            json!(in_clusters),
        ));
        statements.push(when(
            allow(
                "RollBackConfiguredServices",
                json!(["ecs:UpdateService"]),
                json!(services),
            ),
            json!(in_clusters),
        ));
    }
    if !settings.ecs.services.is_empty() {
        // Neither action supports resource-level permissions.
        statements.push(allow(
            "ReadTaskDefinitions",
            json!(["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"]),
            json!("*"),
        ));
    }

    if !settings.rds.databases.is_empty() {
        // Every region a database lives in or is restored/copied to (SPEC §5 [regions]).
        let mut rds_regions = vec![region.clone()];
        for r in settings
            .rds
            .databases
            .iter()
            .filter_map(|d| d.region.as_deref())
            .filter_map(|r| settings.region_named(r).ok().flatten())
            .chain(settings.regions.primary.clone())
            .chain(settings.regions.backup.clone())
        {
            if !rds_regions.contains(&r) {
                rds_regions.push(r);
            }
        }
        let arn_in = |region: &str, kind: &str, name: &str| {
            format!("arn:{p}:rds:{region}:{account}:{kind}:{name}")
        };
        let each = |kind: &str, name: &str| -> Vec<String> {
            rds_regions.iter().map(|r| arn_in(r, kind, name)).collect()
        };
        let mut instances = Vec::new();
        let mut restored = Vec::new();
        let mut snapshots = Vec::new();
        let mut drbot_snapshots = Vec::new();
        let mut drills = Vec::new();
        let mut retention_copies = Vec::new();
        for db in &settings.rds.databases {
            drills.extend(each("db", &format!("drbot-drill-{}-*", db.instance)));
            for tier in ["weekly", "monthly"] {
                retention_copies
                    .extend(each("snapshot", &format!("drbot-{tier}-{}-*", db.instance)));
            }
            instances.extend(each("db", &db.instance));
            for pattern in restored_patterns(&db.instance) {
                for a in each("db", &pattern) {
                    if !restored.contains(&a) {
                        restored.push(a);
                    }
                }
            }
            for pattern in snapshot_patterns(&db.instance) {
                snapshots.extend(each("snapshot", &pattern));
            }
            drbot_snapshots.extend(each("snapshot", &format!("drbot-{}-*", db.instance)));
        }
        let described: Vec<String> = instances.iter().chain(&restored).cloned().collect();
        statements.push(allow(
            "ReadConfiguredDatabases",
            json!(["rds:DescribeDBInstances"]),
            json!(described),
        ));
        let mut snapshot_reads = snapshots.clone();
        snapshot_reads.extend(instances.iter().cloned());
        statements.push(allow(
            "ReadTheirSnapshots",
            json!(["rds:DescribeDBSnapshots"]),
            json!(snapshot_reads),
        ));
        let mut backups = each("auto-backup", "*");
        backups.extend(instances.iter().cloned());
        statements.push(allow(
            "ReadTheirBackupWindows",
            json!(["rds:DescribeDBInstanceAutomatedBackups"]),
            json!(backups),
        ));
        let mut snapshot_now = instances.clone();
        snapshot_now.extend(drbot_snapshots.iter().cloned());
        statements.push(allow(
            "SnapshotConfiguredDatabases",
            json!(["rds:CreateDBSnapshot"]),
            json!(snapshot_now),
        ));
        // Restores are placed like their source: its subnet group, parameter and option
        // groups, whatever their names (read from the source at plan time).
        let mut restore = instances.clone();
        restore.extend(restored.iter().cloned());
        restore.extend(snapshots.iter().cloned());
        for kind in ["subgrp", "pg", "og", "secgrp"] {
            restore.extend(each(kind, "*"));
        }
        statements.push(allow(
            "RestoreIntoNewInstances",
            json!([
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:RestoreDBInstanceToPointInTime"
            ]),
            json!(restore),
        ));
        // Restore tests delete their own instance: named so and tagged so, nothing else.
        statements.push(when(
            allow(
                "DeleteRestoreTestInstances",
                json!(["rds:DeleteDBInstance"]),
                json!(drills),
            ),
            json!({"StringEquals": {"aws:ResourceTag/drbot:drill": "restore-test"}}),
        ));
        // Retention: copies of the databases' snapshots into drbot's weekly/monthly ones,
        // and deleting only those.
        // Retention copies, and cross-region copies (drbot's own names) of the snapshots.
        let mut copy = snapshots.clone();
        copy.extend(retention_copies.iter().cloned());
        copy.extend(drbot_snapshots.iter().cloned());
        statements.push(allow(
            "CopyToRetentionSnapshots",
            json!(["rds:CopyDBSnapshot"]),
            json!(copy),
        ));
        statements.push(allow(
            "DeleteOwnRetentionSnapshots",
            json!(["rds:DeleteDBSnapshot"]),
            json!(retention_copies.clone()),
        ));
        // `[rds.copies]`: the schedule deletes only its own copies past `keep` (named and
        // tagged so).
        if !settings.rds.copies.databases.is_empty() {
            statements.push(when(
                allow(
                    "DeleteOwnScheduledCopies",
                    json!(["rds:DeleteDBSnapshot"]),
                    json!(drbot_snapshots.clone()),
                ),
                json!({"StringEquals": {"aws:ResourceTag/drbot:scheduled-copy": "true"}}),
            ));
        }
        // Readiness reads the backup placement's subnet groups.
        statements.push(allow(
            "ReadSubnetGroups",
            json!(["rds:DescribeDBSubnetGroups"]),
            json!(each("subgrp", "*")),
        ));
        // ... and whether its security groups exist: EC2 allows no narrower resource.
        if settings.rds.databases.iter().any(|d| {
            d.backup_placement
                .as_ref()
                .is_some_and(|p| !p.security_groups.is_empty())
        }) {
            statements.push(allow(
                "ReadSecurityGroups",
                json!(["ec2:DescribeSecurityGroups"]),
                json!("*"),
            ));
        }
        // Verified restores sign in to the restored instance: an IAM token for
        // `verify_user` (any instance: a restore's resource id is not known in advance), or
        // the login in a secret.
        let mut db_users = Vec::new();
        let mut secrets = Vec::new();
        for db in settings.rds.databases.iter().filter(|d| d.verifies_data()) {
            match db
                .verify_credentials
                .as_deref()
                .map(crate::config::data_checks::Credentials::parse)
            {
                Some(Ok(crate::config::data_checks::Credentials::Iam)) => {
                    let user = db.verify_user.clone().unwrap_or_default();
                    for r in &rds_regions {
                        let arn = format!("arn:{p}:rds-db:{r}:{account}:dbuser:*/{user}");
                        if !db_users.contains(&arn) {
                            db_users.push(arn);
                        }
                    }
                }
                Some(Ok(crate::config::data_checks::Credentials::Secret(id))) => {
                    if id.starts_with("arn:") {
                        secrets.push(id);
                    } else {
                        // A name: Secrets Manager appends six random characters to its ARN.
                        secrets.extend(rds_regions.iter().map(|r| {
                            format!("arn:{p}:secretsmanager:{r}:{account}:secret:{id}-??????")
                        }));
                    }
                }
                _ => {}
            }
        }
        if !db_users.is_empty() {
            statements.push(allow(
                "SignInToRestoredDatabases",
                json!(["rds-db:connect"]),
                json!(db_users),
            ));
        }
        if !secrets.is_empty() {
            secrets.dedup();
            statements.push(allow(
                "ReadRestoreCheckLogins",
                json!(["secretsmanager:GetSecretValue"]),
                json!(secrets),
            ));
        }
        // Tags given at creation (drbot's snapshots, the source's tags on a restore).
        let mut tagged = drbot_snapshots.clone();
        tagged.extend(restored.iter().cloned());
        tagged.extend(retention_copies.iter().cloned());
        statements.push(allow(
            "TagWhatDrbotCreates",
            json!(["rds:AddTagsToResource"]),
            json!(tagged),
        ));
    }

    // The alarm intake reads and deletes messages of its queue, nothing else.
    if let Some(queue) = &settings.alarms.queue {
        let segments: Vec<String> = url::Url::parse(queue)
            .ok()
            .and_then(|u| u.path_segments().map(|s| s.map(str::to_string).collect()))
            .unwrap_or_default();
        if let [queue_account, name] = segments.as_slice() {
            let queue_region = crate::aws::sqs::region_of(queue).unwrap_or_else(|| region.clone());
            statements.push(allow(
                "TakeAlarmsFromTheQueue",
                json!(["sqs:ReceiveMessage", "sqs:DeleteMessage"]),
                json!(format!("arn:{p}:sqs:{queue_region}:{queue_account}:{name}")),
            ));
        }
    }

    // Alarms over HTTPS: drbot confirms its subscription to the configured topics only.
    if settings.alarms.https && !settings.alarms.topics.is_empty() {
        statements.push(allow(
            "ConfirmAlarmSubscriptions",
            json!(["sns:ConfirmSubscription"]),
            json!(settings.alarms.topics.clone()),
        ));
    }

    // Scale and cutover redeploys are UpdateService on the configured services (above);
    // services in another region get their own ARNs here.
    let other_region_services: Vec<String> = settings
        .ecs
        .services
        .iter()
        .filter_map(|s| {
            let r = settings.region_of(s.region.as_deref())?;
            (r != *region).then(|| {
                format!(
                    "arn:{p}:ecs:{r}:{account}:service/{}/{}",
                    cluster_name(&s.cluster),
                    s.service
                )
            })
        })
        .collect();
    if !other_region_services.is_empty() {
        statements.push(allow(
            "ServicesInOtherRegions",
            json!(["ecs:DescribeServices", "ecs:UpdateService"]),
            json!(other_region_services),
        ));
    }

    let zones: Vec<String> = {
        let mut z: Vec<String> = settings
            .dns
            .records
            .iter()
            .map(|r| {
                format!(
                    "arn:{p}:route53:::hostedzone/{}",
                    r.zone_id.trim_start_matches("/hostedzone/")
                )
            })
            .collect();
        z.sort();
        z.dedup();
        z
    };
    if !zones.is_empty() {
        let names: Vec<String> = settings
            .dns
            .records
            .iter()
            .map(|r| r.record.trim_end_matches('.').to_ascii_lowercase())
            .collect();
        statements.push(allow(
            "ReadFailoverRecords",
            json!(["route53:ListResourceRecordSets"]),
            json!(zones),
        ));
        statements.push(when(allow("FailOverConfiguredRecords", json!(["route53:ChangeResourceRecordSets"]), json!(zones)), json!({"ForAllValues:StringEquals": {"route53:ChangeResourceRecordSetsNormalizedRecordNames": names}})));
        statements.push(allow(
            "FollowDnsChanges",
            json!(["route53:GetChange"]),
            json!(format!("arn:{p}:route53:::change/*")),
        ));
    }

    let parameters: Vec<String> = settings
        .rds
        .databases
        .iter()
        .filter_map(|d| {
            let name = d.cutover_parameter.as_ref()?;
            let own = settings
                .region_of(d.region.as_deref())
                .unwrap_or_else(|| region.clone());
            // `cutover --region backup` writes the backup region's copy of the parameter.
            let regions = std::iter::once(own.clone())
                .chain(settings.regions.backup.clone().filter(|b| *b != own));
            Some(
                regions
                    .map(|r| {
                        format!(
                            "arn:{p}:ssm:{r}:{account}:parameter/{}",
                            name.trim_start_matches('/')
                        )
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect();
    if !parameters.is_empty() {
        statements.push(allow(
            "CutOverConnectionSettings",
            json!(["ssm:GetParameter", "ssm:PutParameter"]),
            json!(parameters),
        ));
    }

    if let Some(acl) = &settings.waf.web_acl {
        let (r, kind) = match acl.scope {
            WafScope::Regional => (region.clone(), "regional"),
            WafScope::Cloudfront => (crate::aws::CLOUDFRONT_REGION.to_string(), "global"),
        };
        // UpdateWebACL is also checked against every resource the ACL's rules reference
        // (IP sets, rule groups, managed rule groups, regex sets), whatever they are.
        statements.push(allow(
            "RateLimitInConfiguredWebAcl",
            json!(["wafv2:GetWebACL", "wafv2:UpdateWebACL"]),
            json!([
                format!(
                    "arn:{p}:wafv2:{r}:{account}:{kind}/webacl/{}/{}",
                    acl.name, acl.id
                ),
                format!("arn:{p}:wafv2:{r}:{account}:{kind}/ipset/*/*"),
                format!("arn:{p}:wafv2:{r}:{account}:{kind}/rulegroup/*/*"),
                format!("arn:{p}:wafv2:{r}:{account}:{kind}/managedruleset/*/*"),
                format!("arn:{p}:wafv2:{r}:{account}:{kind}/regexpatternset/*/*"),
            ]),
        ));
    }

    let mut sets = Vec::new();
    for pair in &settings.waf.ip_sets {
        for set in std::iter::once(&pair.ipv4_set).chain(pair.ipv6_set.as_ref()) {
            sets.push(match pair.scope {
                WafScope::Regional => format!(
                    "arn:{p}:wafv2:{region}:{account}:regional/ipset/{}/{}",
                    set.name, set.id
                ),
                WafScope::Cloudfront => format!(
                    "arn:{p}:wafv2:{}:{account}:global/ipset/{}/{}",
                    crate::aws::CLOUDFRONT_REGION,
                    set.name,
                    set.id
                ),
            });
        }
    }
    if !sets.is_empty() {
        statements.push(allow(
            "BlockInConfiguredIpSets",
            json!(["wafv2:GetIPSet", "wafv2:UpdateIPSet"]),
            json!(sets),
        ));
    }

    // Encrypted cross-region copies: RDS uses the target region's key through a grant it
    // makes with drbot's identity.
    let target = settings
        .regions
        .backup
        .clone()
        .unwrap_or_else(|| region.clone());
    let mut keys = Vec::new();
    let mut aliases = Vec::new();
    for key in settings
        .rds
        .databases
        .iter()
        .filter_map(|d| d.copy_kms_key.as_ref())
    {
        if key.starts_with("arn:") && key.contains(":key/") {
            keys.push(key.clone());
        } else if let Some(alias) = key.strip_prefix("arn:").and(key.split_once(":alias/")) {
            aliases.push(format!("alias/{}", alias.1));
        } else if let Some(alias) = key.strip_prefix("alias/") {
            aliases.push(format!("alias/{alias}"));
        } else {
            keys.push(format!("arn:{p}:kms:{target}:{account}:key/{key}"));
        }
    }
    let via_rds = json!({"StringLike": {"kms:ViaService": "rds.*.amazonaws.com"}});
    if !keys.is_empty() {
        keys.sort();
        keys.dedup();
        statements.push(allow(
            "DescribeCopyKey",
            json!("kms:DescribeKey"),
            json!(keys.clone()),
        ));
        statements.push(when(
            allow("GrantCopyKeyToRds", json!("kms:CreateGrant"), json!(keys)),
            via_rds.clone(),
        ));
    }
    if !aliases.is_empty() {
        // A key named by its alias: any key of the account that carries that alias.
        let by_alias = json!({"ForAnyValue:StringEquals": {"kms:ResourceAliases": aliases}});
        let any_key = json!(format!("arn:{p}:kms:*:{account}:key/*"));
        statements.push(when(
            allow(
                "DescribeCopyKeyByAlias",
                json!("kms:DescribeKey"),
                any_key.clone(),
            ),
            by_alias.clone(),
        ));
        let mut both = by_alias;
        both["StringLike"] = via_rds["StringLike"].clone();
        statements.push(when(
            allow(
                "GrantCopyKeyByAliasToRds",
                json!("kms:CreateGrant"),
                any_key,
            ),
            both,
        ));
    }

    json!({
        "Version": "2012-10-17",
        "Statement": statements,
    })
}

/// The cluster's name from a name or an ARN (`arn:aws:ecs:…:cluster/NAME`).
fn cluster_name(cluster: &str) -> &str {
    cluster.rsplit('/').next().unwrap_or(cluster)
}

/// A statement allowing `action` on `resource`.
fn allow(sid: &str, action: Value, resource: Value) -> Value {
    json!({"Sid": sid, "Effect": "Allow", "Action": action, "Resource": resource})
}

/// `statement`, only under `condition`.
fn when(mut statement: Value, condition: Value) -> Value {
    statement["Condition"] = condition;
    statement
}
