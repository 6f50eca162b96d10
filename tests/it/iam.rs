//! The platform engineer's view: `drbot iam-policy` prints the least-privilege policy for the
//! configured resources. Every AWS SDK operation the code calls is mapped to its IAM action
//! (a scan of `src/aws/` fails on a new one), each call drbot makes on the configured
//! resources is allowed by the policy, and nothing else is: other services, instances, sets
//! and actions are denied.

use serde_json::Value;

use crate::support::*;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-west-1";

const IAM_CONFIG: &str = r#"
[approval]
officers = ["U0SECOFF1"]

[[ecs.services]]
name = "api"
cluster = "aifai-prod"
service = "aifai-backend-service"

[[ecs.services]]
name = "web"
cluster = "arn:aws:ecs:eu-west-1:123456789012:cluster/aifai-edge"
service = "aifai-web"

[[ecs.services]]
name = "api-dr"
cluster = "aifai-dr"
service = "aifai-backend-service"
region = "backup"

[regions]
backup = "us-west-2"

[[rds.databases]]
name = "main"
instance = "aifai-db"
cutover_parameter = "/aifai/prod/DATABASE_HOST"
cutover_services = ["api"]
backup_placement = { subnet_group = "aifai-db-dr", class = "db.t3.medium" }
verify_user = "drbot_verify"
verify_credentials = "iam"
checks = [{ name = "orders", sql = "select count(*) from orders", expect = ">= 1" }]

[[rds.databases]]
name = "shop"
instance = "aifai-shop"
verify_credentials = "secret:aifai-shop-verify"
newest_write_sql = "select max(created_at) from orders"

[alarms]
queue = "https://sqs.eu-west-1.amazonaws.com/123456789012/drbot-alarms"
topics = ["arn:aws:sns:eu-west-1:123456789012:aifai-security-alerts"]

[[dns.records]]
name = "app"
zone_id = "Z0123456789ABC"
record = "www.analyticalfire.com."
type = "CNAME"
primary = "primary-alb.us-east-1.elb.amazonaws.com"
backup = "backup-alb.us-west-2.elb.amazonaws.com"

[waf.web_acl]
name = "aifai-web"
id = "44444444-4444-4444-4444-444444444444"

[[waf.ip_sets]]
name = "blocklist"
scope = "REGIONAL"
ipv4_set = { name = "drbot-block-v4", id = "11111111-1111-1111-1111-111111111111" }
ipv6_set = { name = "drbot-block-v6", id = "22222222-2222-2222-2222-222222222222" }

[[waf.ip_sets]]
name = "edge"
scope = "CLOUDFRONT"
ipv4_set = { name = "drbot-edge-v4", id = "33333333-3333-3333-3333-333333333333" }
"#;

async fn generated_policy() -> Value {
    let app = spawn_app_with(IAM_CONFIG).await;
    let out = app
        .cli(&[
            "iam-policy",
            "--config",
            "drbot.toml",
            "--account",
            ACCOUNT,
            "--region",
            REGION,
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the policy is JSON")
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[u8], v: &[u8]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), value.as_bytes())
}

fn list(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().unwrap().to_string())
            .collect(),
        _ => vec![],
    }
}

/// Whether `policy` allows `action` on `resource`.
fn allows(policy: &Value, action: &str, resource: &str) -> bool {
    policy["Statement"].as_array().unwrap().iter().any(|s| {
        s["Effect"] == "Allow"
            && list(&s["Action"]).iter().any(|a| a == action)
            && list(&s["Resource"]).iter().any(|r| glob(r, resource))
    })
}

fn arn(service: &str, region: &str, rest: &str) -> String {
    format!("arn:aws:{service}:{region}:{ACCOUNT}:{rest}")
}

#[test]
fn every_aws_operation_the_code_calls_is_mapped_to_its_iam_action() {
    let mut found = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join("src/aws")).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for (i, _) in text.match_indices("()") {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .map_or(0, |s| s + 1);
            let name = &text[start..i];
            let verb = name.split('_').next().unwrap_or("");
            // An operation is called on a client (`self` in the client impls, or a client
            // variable); getters on answers (`db.restore_window()`) are not.
            let before = text[..start].trim_end();
            let receiver = before
                .strip_suffix('.')
                .map(|b| b.trim_end())
                .map(|b| {
                    let from = b
                        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .map_or(0, |p| p + 1);
                    &b[from..]
                })
                .unwrap_or("");
            let is_call = ["self", "client", "wafv2", "ecs", "rds"].contains(&receiver);
            if is_call
                && name.contains('_')
                && [
                    "describe", "list", "update", "create", "restore", "get", "put", "delete",
                    "modify", "copy", "change", "add", "remove", "register", "start", "stop",
                ]
                .contains(&verb)
            {
                found.insert(name.to_string());
            }
        }
    }
    assert!(found.contains("update_service"), "the scan found {found:?}");
    for name in &found {
        assert!(
            drbot::iam::OPERATIONS.iter().any(|(_, m, _)| m == name),
            "src/aws calls {name}(): add it and its IAM action to drbot::iam::OPERATIONS"
        );
    }
    // And the list holds nothing drbot does not call (the policy grants nothing extra).
    for (_, method, action) in drbot::iam::OPERATIONS {
        assert!(
            found.contains(*method),
            "{action} is in drbot::iam::OPERATIONS but src/aws never calls {method}()"
        );
    }
}

#[tokio::test]
async fn the_policy_allows_each_call_on_the_configured_resources_and_nothing_else() {
    let policy = generated_policy().await;
    assert_eq!(policy["Version"], "2012-10-17");

    // Exactly the actions drbot needs (plus tagging on creation), never a wildcard action.
    let mut actions: Vec<String> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| list(&s["Action"]))
        .collect();
    actions.sort();
    actions.dedup();
    let mut needed: Vec<String> = drbot::iam::OPERATIONS
        .iter()
        .map(|(_, _, a)| a.to_string())
        .chain(
            [
                "rds:AddTagsToResource",
                // Not SDK calls: the alarm queue's long poll, the verified restores' login.
                "sqs:ReceiveMessage",
                "rds-db:connect",
                "secretsmanager:GetSecretValue",
            ]
            .map(String::from),
        )
        .collect();
    needed.sort();
    assert_eq!(actions, needed);

    // The alarm queue, the verifying user, the login secret: those only.
    let queue = "arn:aws:sqs:eu-west-1:123456789012:drbot-alarms";
    assert!(
        allows(&policy, "sqs:ReceiveMessage", queue) && allows(&policy, "sqs:DeleteMessage", queue)
    );
    assert!(!allows(
        &policy,
        "sqs:DeleteMessage",
        "arn:aws:sqs:eu-west-1:123456789012:payments"
    ));
    let user = "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABCDEFGHIJKL/drbot_verify";
    assert!(allows(&policy, "rds-db:connect", user));
    assert!(!allows(
        &policy,
        "rds-db:connect",
        "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABCDEFGHIJKL/postgres"
    ));
    let secret = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:aifai-shop-verify-AbCdEf";
    assert!(allows(&policy, "secretsmanager:GetSecretValue", secret));
    assert!(!allows(
        &policy,
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod-db-master-AbCdEf"
    ));

    let service = arn("ecs", REGION, "service/aifai-prod/aifai-backend-service");
    let edge_service = arn("ecs", REGION, "service/aifai-edge/aifai-web");
    let db = arn("rds", REGION, "db:aifai-db");
    let restored = arn("rds", REGION, "db:aifai-db-restored-202611270600");
    let mine = arn("rds", REGION, "snapshot:drbot-aifai-db-20261127060509");
    let automated = arn("rds", REGION, "snapshot:rds:aifai-db-2026-11-27-03-00");
    let v4 = arn(
        "wafv2",
        REGION,
        "regional/ipset/drbot-block-v4/11111111-1111-1111-1111-111111111111",
    );
    let v6 = arn(
        "wafv2",
        REGION,
        "regional/ipset/drbot-block-v6/22222222-2222-2222-2222-222222222222",
    );
    let cloudfront = arn(
        "wafv2",
        "us-east-1",
        "global/ipset/drbot-edge-v4/33333333-3333-3333-3333-333333333333",
    );
    let backup_copy = arn("rds", "us-west-2", "snapshot:drbot-aifai-db-20261127060509");
    let backup_restored = arn("rds", "us-west-2", "db:aifai-db-restored-202611270600");
    let dr_service = arn("ecs", "us-west-2", "service/aifai-dr/aifai-backend-service");
    let parameter = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/aifai/prod/DATABASE_HOST");
    let web_acl = arn(
        "wafv2",
        REGION,
        "regional/webacl/aifai-web/44444444-4444-4444-4444-444444444444",
    );
    let drill = arn("rds", REGION, "db:drbot-drill-aifai-db-202611270600");
    let weekly = arn("rds", REGION, "snapshot:drbot-weekly-aifai-db-2026w48");
    let allowed = [
        ("ecs:DescribeServices", service.as_str()),
        ("ecs:UpdateService", service.as_str()),
        ("ecs:UpdateService", edge_service.as_str()),
        ("ecs:DescribeTaskDefinition", "*"),
        ("ecs:ListTaskDefinitions", "*"),
        ("rds:DescribeDBInstances", db.as_str()),
        ("rds:DescribeDBInstances", restored.as_str()),
        ("rds:DescribeDBSnapshots", mine.as_str()),
        ("rds:DescribeDBSnapshots", automated.as_str()),
        ("rds:DescribeDBInstanceAutomatedBackups", db.as_str()),
        ("rds:CreateDBSnapshot", db.as_str()),
        ("rds:CreateDBSnapshot", mine.as_str()),
        ("rds:AddTagsToResource", mine.as_str()),
        ("rds:RestoreDBInstanceFromDBSnapshot", automated.as_str()),
        ("rds:RestoreDBInstanceFromDBSnapshot", restored.as_str()),
        ("rds:RestoreDBInstanceToPointInTime", db.as_str()),
        ("rds:RestoreDBInstanceToPointInTime", restored.as_str()),
        ("wafv2:GetIPSet", v4.as_str()),
        ("wafv2:UpdateIPSet", v4.as_str()),
        ("wafv2:UpdateIPSet", v6.as_str()),
        ("wafv2:UpdateIPSet", cloudfront.as_str()),
        // The rest of the plan: the backup region, DNS, the cutover parameter, the web ACL.
        ("rds:CopyDBSnapshot", backup_copy.as_str()),
        ("rds:RestoreDBInstanceFromDBSnapshot", backup_copy.as_str()),
        (
            "rds:RestoreDBInstanceFromDBSnapshot",
            backup_restored.as_str(),
        ),
        ("rds:DescribeDBSnapshots", backup_copy.as_str()),
        ("ecs:UpdateService", dr_service.as_str()),
        ("ecs:DescribeServices", dr_service.as_str()),
        (
            "route53:ListResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z0123456789ABC",
        ),
        (
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/Z0123456789ABC",
        ),
        ("route53:GetChange", "arn:aws:route53:::change/C0123"),
        ("ssm:GetParameter", parameter.as_str()),
        ("ssm:PutParameter", parameter.as_str()),
        ("wafv2:GetWebACL", web_acl.as_str()),
        ("wafv2:UpdateWebACL", web_acl.as_str()),
        ("rds:DeleteDBInstance", drill.as_str()),
        ("rds:DeleteDBSnapshot", weekly.as_str()),
    ];
    for (action, resource) in allowed {
        assert!(
            allows(&policy, action, resource),
            "{action} on {resource} is not allowed by:\n{policy:#}"
        );
    }
    // The service actions are also held to the configured clusters.
    let rollback = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| list(&s["Action"]).contains(&"ecs:UpdateService".to_string()))
        .unwrap();
    assert_eq!(
        rollback["Condition"]["ArnEquals"]["ecs:cluster"],
        serde_json::json!([
            arn("ecs", REGION, "cluster/aifai-edge"),
            arn("ecs", REGION, "cluster/aifai-prod")
        ])
    );
    let other_db = arn("rds", REGION, "db:payroll-db");
    let denied = [
        (
            "ecs:UpdateService",
            arn("ecs", REGION, "service/aifai-prod/payroll"),
        ),
        (
            "ecs:UpdateService",
            arn(
                "ecs",
                "us-east-1",
                "service/aifai-prod/aifai-backend-service",
            ),
        ),
        (
            "ecs:UpdateService",
            format!("arn:aws:ecs:{REGION}:999999999999:service/aifai-prod/aifai-backend-service"),
        ),
        ("rds:CreateDBSnapshot", other_db.clone()),
        ("rds:RestoreDBInstanceToPointInTime", other_db.clone()),
        (
            "rds:RestoreDBInstanceFromDBSnapshot",
            arn("rds", REGION, "snapshot:payroll-db-nightly"),
        ),
        ("rds:DeleteDBInstance", db.clone()),
        ("rds:ModifyDBInstance", db.clone()),
        ("rds:AddTagsToResource", db.clone()),
        ("ecs:DeleteService", service.clone()),
        ("ecs:RegisterTaskDefinition", "*".to_string()),
        (
            "wafv2:UpdateIPSet",
            arn("wafv2", REGION, "regional/ipset/office-allowlist/4444"),
        ),
        ("wafv2:DeleteIPSet", v4.clone()),
        (
            "ssm:PutParameter",
            format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/aifai/prod/ADMIN_PASSWORD"),
        ),
        (
            "route53:ChangeResourceRecordSets",
            "arn:aws:route53:::hostedzone/ZOTHERZONE".to_string(),
        ),
        ("rds:DeleteDBSnapshot", mine.clone()),
        ("rds:DeleteDBInstance", restored.clone()),
        (
            "wafv2:UpdateWebACL",
            arn("wafv2", REGION, "regional/webacl/other-acl/5555"),
        ),
        ("iam:PassRole", "*".to_string()),
    ];
    for (action, resource) in denied {
        assert!(
            !allows(&policy, action, &resource),
            "{action} on {resource} should not be allowed"
        );
    }
}

#[tokio::test]
async fn a_restore_name_outside_the_policy_is_refused_with_the_names_it_allows() {
    let app = spawn_app_with(IAM_CONFIG).await;
    let reply = app
        .slash("restore main --snapshot drbot-aifai-db-1 --as payroll-db")
        .reply()
        .await;
    assert!(
        reply.contains("a restored instance is named `aifai-db-…` or `drbot-…`"),
        "{reply}"
    );
}

/// `drbot iam-policy` with `args` and no AWS environment, on `config`.
async fn iam_policy(config: &str, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["iam-policy", "--config", "drbot.toml"])
        .args(args)
        .current_dir(dir.path())
        .env_remove("AWS_REGION")
        .env_remove("AWS_ACCOUNT_ID")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_policy_names_its_account_region_and_partition_and_the_copy_key() {
    // Without an account or a region there would be wildcards: refused, saying what to pass.
    for args in [
        &["--account", ACCOUNT][..],
        &["--region", REGION][..],
        &[][..],
    ] {
        let out = iam_policy(IAM_CONFIG, args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--account") && stderr.contains("--region"),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }

    // China and GovCloud have partitions of their own; every ARN uses the region's.
    let china = IAM_CONFIG.replace("us-west-2", "cn-northwest-1");
    let out = iam_policy(&china, &["--account", ACCOUNT, "--region", "cn-north-1"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("arn:aws-cn:rds:cn-north-1:"), "{text}");
    assert!(
        !text.contains("arn:aws:"),
        "an ARN outside the partition: {text}"
    );

    // An encrypted copy's key in the backup region: DescribeKey, and CreateGrant through RDS.
    let key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let keyed = IAM_CONFIG.replace(
        "backup_placement =",
        &format!("copy_kms_key = \"{key}\"\nbackup_placement ="),
    );
    let out = iam_policy(&keyed, &["--account", ACCOUNT, "--region", REGION]).await;
    let policy: Value = serde_json::from_slice(&out.stdout).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let grant = statements
        .iter()
        .find(|s| s["Action"] == "kms:CreateGrant")
        .unwrap_or_else(|| panic!("no CreateGrant: {policy:#}"));
    assert_eq!(grant["Resource"], serde_json::json!([key]));
    assert_eq!(
        grant["Condition"]["StringLike"]["kms:ViaService"],
        "rds.*.amazonaws.com"
    );
    assert!(statements
        .iter()
        .any(|s| s["Action"] == "kms:DescribeKey" && s["Resource"] == serde_json::json!([key])));
}
