//! `drbot check-config --aws` against moto: every configured ECS service, RDS instance and
//! WAF IP set must exist, and a missing one is named.

use aws_sdk_wafv2::types::{IpAddressVersion, Scope};

use crate::support::*;

struct Seeded {
    cluster: String,
    service: String,
    instance: String,
    ip_set_name: String,
    ip_set_id: String,
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

async fn seed() -> Seeded {
    moto_endpoint();
    let config = drbot::aws::sdk_defaults().load().await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let waf = aws_sdk_wafv2::Client::new(&config);

    let cluster = unique("cluster");
    let service = unique("svc");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    let family = unique("fam");
    ecs.register_task_definition()
        .family(&family)
        .container_definitions(
            aws_sdk_ecs::types::ContainerDefinition::builder()
                .name("app")
                .image("registry/app:1")
                .memory(256)
                .build(),
        )
        .send()
        .await
        .unwrap();
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(format!("{family}:1"))
        .desired_count(1)
        .send()
        .await
        .unwrap();

    let instance = unique("db");
    crate::support::aws::create_instance("us-east-1", &instance, None).await;

    let ip_set_name = unique("block-v4");
    let created = waf
        .create_ip_set()
        .name(&ip_set_name)
        .scope(Scope::Regional)
        .ip_address_version(IpAddressVersion::Ipv4)
        .set_addresses(Some(vec![]))
        .send()
        .await
        .unwrap();
    let ip_set_id = created.summary().unwrap().id().unwrap().to_string();
    Seeded {
        cluster,
        service,
        instance,
        ip_set_name,
        ip_set_id,
    }
}

fn config_for(s: &Seeded) -> String {
    format!(
        r#"
[approval]
officers = ["U0SECOFF1"]

[[ecs.services]]
name = "api"
cluster = "{}"
service = "{}"

[[rds.databases]]
name = "main"
instance = "{}"

[[waf.ip_sets]]
name = "blocklist"
scope = "REGIONAL"
ipv4_set = {{ name = "{}", id = "{}" }}
"#,
        s.cluster, s.service, s.instance, s.ip_set_name, s.ip_set_id
    )
}

async fn check_aws(config: &str) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), config).unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["check-config", "--aws"])
        .current_dir(dir.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_configured_resource_answers() {
    let seeded = seed().await;
    let out = check_aws(&config_for(&seeded)).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("aws: ok"));
}

#[tokio::test]
async fn a_missing_service_database_or_ip_set_is_named() {
    let seeded = seed().await;
    let config = config_for(&seeded)
        .replace(&seeded.service, "no-such-service")
        .replace(&seeded.instance, "no-such-db")
        .replace(&seeded.ip_set_id, "00000000-dead-beef-0000-000000000000");
    let out = check_aws(&config).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ecs.services 'api'") && err.contains("no-such-service"),
        "{err}"
    );
    assert!(
        err.contains("rds.databases 'main': instance no-such-db"),
        "{err}"
    );
    assert!(err.contains("waf.ip_sets 'blocklist' ipv4_set"), "{err}");
}

#[tokio::test]
async fn drbot_running_in_the_primary_region_is_warned_about() {
    let seeded = seed().await;
    // AWS_REGION is us-east-1 here: drbot runs where its resources are.
    let primary = format!(
        "{}\n[regions]\nprimary = \"us-east-1\"\nbackup = \"us-west-2\"\n",
        config_for(&seeded)
    );
    let out = check_aws(&primary).await;
    assert!(out.status.success(), "a warning, not an error");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:")
            && err.contains("drbot runs in us-east-1, the primary region")
            && err.contains("the backup region, us-west-2"),
        "{err}"
    );

    // Left to AWS_REGION, the primary is where drbot runs: said too.
    let out = check_aws(&config_for(&seeded)).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[regions] primary is not set"), "{err}");

    // Run from the backup region (resources named in the primary), nothing to say.
    let elsewhere = format!(
        "{}\n[regions]\nprimary = \"us-west-2\"\nbackup = \"us-east-1\"\n",
        config_for(&seeded)
    );
    let out = check_aws(&elsewhere).await;
    let err = String::from_utf8_lossy(&out.stderr);
    // (The shipped plans' steps name resources this configuration lacks: said per step.)
    let placement = err
        .lines()
        .filter(|l| l.contains("warning:") && !l.contains("[plan]"));
    assert_eq!(placement.count(), 0, "{err}");
}
