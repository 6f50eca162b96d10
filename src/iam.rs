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
    ("wafv2", "get_ip_set", "wafv2:GetIPSet"),
    ("wafv2", "update_ip_set", "wafv2:UpdateIPSet"),
];

/// Where the ARNs point: an account id and region (`*` when unknown).
#[derive(Debug, Clone)]
pub struct Scope {
    pub account: String,
    pub region: String,
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
    let mut statements = Vec::new();

    if !settings.ecs.services.is_empty() {
        let services: Vec<String> = settings
            .ecs
            .services
            .iter()
            .map(|s| {
                format!(
                    "arn:aws:ecs:{region}:{account}:service/{}/{}",
                    cluster_name(&s.cluster),
                    s.service
                )
            })
            .collect();
        let mut clusters: Vec<String> = settings
            .ecs
            .services
            .iter()
            .map(|s| {
                format!(
                    "arn:aws:ecs:{region}:{account}:cluster/{}",
                    cluster_name(&s.cluster)
                )
            })
            .collect();
        clusters.sort();
        clusters.dedup();
        // Both actions also name the cluster in the request: only the configured ones.
        let in_clusters = json!({"ArnEquals": {"ecs:cluster": clusters}});
        statements.push(json!({
            "Sid": "ReadConfiguredServices",
            "Effect": "Allow",
            "Action": ["ecs:DescribeServices"],
            "Resource": services,
            "Condition": in_clusters,
        }));
        statements.push(json!({
            "Sid": "RollBackConfiguredServices",
            "Effect": "Allow",
            "Action": ["ecs:UpdateService"],
            "Resource": services,
            "Condition": in_clusters,
        }));
        statements.push(json!({
            "Sid": "ReadTaskDefinitions",
            "Effect": "Allow",
            "Action": ["ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions"],
            // Neither action supports resource-level permissions.
            "Resource": "*",
        }));
    }

    if !settings.rds.databases.is_empty() {
        let arn = |kind: &str, name: &str| format!("arn:aws:rds:{region}:{account}:{kind}:{name}");
        let mut instances = Vec::new();
        let mut restored = Vec::new();
        let mut snapshots = Vec::new();
        let mut drbot_snapshots = Vec::new();
        let mut drills = Vec::new();
        let mut retention_copies = Vec::new();
        for db in &settings.rds.databases {
            drills.push(arn("db", &format!("drbot-drill-{}-*", db.instance)));
            for tier in ["weekly", "monthly"] {
                retention_copies.push(arn("snapshot", &format!("drbot-{tier}-{}-*", db.instance)));
            }
            instances.push(arn("db", &db.instance));
            for pattern in restored_patterns(&db.instance) {
                let a = arn("db", &pattern);
                if !restored.contains(&a) {
                    restored.push(a);
                }
            }
            for pattern in snapshot_patterns(&db.instance) {
                snapshots.push(arn("snapshot", &pattern));
            }
            drbot_snapshots.push(arn("snapshot", &format!("drbot-{}-*", db.instance)));
        }
        let described: Vec<String> = instances.iter().chain(&restored).cloned().collect();
        statements.push(json!({
            "Sid": "ReadConfiguredDatabases",
            "Effect": "Allow",
            "Action": ["rds:DescribeDBInstances"],
            "Resource": described,
        }));
        let mut snapshot_reads = snapshots.clone();
        snapshot_reads.extend(instances.iter().cloned());
        statements.push(json!({
            "Sid": "ReadTheirSnapshots",
            "Effect": "Allow",
            "Action": ["rds:DescribeDBSnapshots"],
            "Resource": snapshot_reads,
        }));
        let mut backups = vec![arn("auto-backup", "*")];
        backups.extend(instances.iter().cloned());
        statements.push(json!({
            "Sid": "ReadTheirBackupWindows",
            "Effect": "Allow",
            "Action": ["rds:DescribeDBInstanceAutomatedBackups"],
            "Resource": backups,
        }));
        let mut snapshot_now = instances.clone();
        snapshot_now.extend(drbot_snapshots.iter().cloned());
        statements.push(json!({
            "Sid": "SnapshotConfiguredDatabases",
            "Effect": "Allow",
            "Action": ["rds:CreateDBSnapshot"],
            "Resource": snapshot_now,
        }));
        // Restores are placed like their source: its subnet group, parameter and option
        // groups, whatever their names (read from the source at plan time).
        let mut restore = instances.clone();
        restore.extend(restored.iter().cloned());
        restore.extend(snapshots.iter().cloned());
        for kind in ["subgrp", "pg", "og", "secgrp"] {
            restore.push(arn(kind, "*"));
        }
        statements.push(json!({
            "Sid": "RestoreIntoNewInstances",
            "Effect": "Allow",
            "Action": [
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:RestoreDBInstanceToPointInTime"
            ],
            "Resource": restore,
        }));
        // Restore tests delete their own instance: named so and tagged so, nothing else.
        statements.push(json!({
            "Sid": "DeleteRestoreTestInstances",
            "Effect": "Allow",
            "Action": ["rds:DeleteDBInstance"],
            "Resource": drills,
            "Condition": {"StringEquals": {"aws:ResourceTag/drbot:drill": "restore-test"}},
        }));
        // Retention: copies of the databases' snapshots into drbot's weekly/monthly ones,
        // and deleting only those.
        let mut copy = snapshots.clone();
        copy.extend(retention_copies.iter().cloned());
        statements.push(json!({
            "Sid": "CopyToRetentionSnapshots",
            "Effect": "Allow",
            "Action": ["rds:CopyDBSnapshot"],
            "Resource": copy,
        }));
        statements.push(json!({
            "Sid": "DeleteOwnRetentionSnapshots",
            "Effect": "Allow",
            "Action": ["rds:DeleteDBSnapshot"],
            "Resource": retention_copies.clone(),
        }));
        // Tags given at creation (drbot's snapshots, the source's tags on a restore).
        let mut tagged = drbot_snapshots.clone();
        tagged.extend(restored.iter().cloned());
        tagged.extend(retention_copies.iter().cloned());
        statements.push(json!({
            "Sid": "TagWhatDrbotCreates",
            "Effect": "Allow",
            "Action": ["rds:AddTagsToResource"],
            "Resource": tagged,
        }));
    }

    let mut sets = Vec::new();
    for pair in &settings.waf.ip_sets {
        for set in std::iter::once(&pair.ipv4_set).chain(pair.ipv6_set.as_ref()) {
            sets.push(match pair.scope {
                WafScope::Regional => format!(
                    "arn:aws:wafv2:{region}:{account}:regional/ipset/{}/{}",
                    set.name, set.id
                ),
                WafScope::Cloudfront => format!(
                    "arn:aws:wafv2:{}:{account}:global/ipset/{}/{}",
                    crate::aws::CLOUDFRONT_REGION,
                    set.name,
                    set.id
                ),
            });
        }
    }
    if !sets.is_empty() {
        statements.push(json!({
            "Sid": "BlockInConfiguredIpSets",
            "Effect": "Allow",
            "Action": ["wafv2:GetIPSet", "wafv2:UpdateIPSet"],
            "Resource": sets,
        }));
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
