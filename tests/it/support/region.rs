//! A region failure's estate in moto: the database with a snapshot, the backup region's
//! service, network and cutover parameter, a Route 53 zone with the application's record.
//! Shared by the plan tests and the plan-run benchmark.

#![allow(dead_code)]

use super::aws::*;

pub const BACKUP: &str = "us-west-2";

pub async fn seed_zone(record: &str, target: &str) -> String {
    let r53 = route53().await;
    let zone = r53
        .create_hosted_zone()
        .name("analyticalfire.test.")
        .caller_reference(unique("ref"))
        .send()
        .await
        .unwrap()
        .hosted_zone()
        .unwrap()
        .id()
        .trim_start_matches("/hostedzone/")
        .to_string();
    set_cname(&zone, record, target).await;
    zone
}

pub async fn set_cname(zone: &str, record: &str, target: &str) {
    change_cname(
        zone,
        record,
        target,
        aws_sdk_route53::types::ChangeAction::Upsert,
    )
    .await
}

/// Deletes the CNAME `record` (pointing at `target`).
pub async fn delete_cname(zone: &str, record: &str, target: &str) {
    change_cname(
        zone,
        record,
        target,
        aws_sdk_route53::types::ChangeAction::Delete,
    )
    .await
}

async fn change_cname(
    zone: &str,
    record: &str,
    target: &str,
    action: aws_sdk_route53::types::ChangeAction,
) {
    use aws_sdk_route53::types::*;
    route53()
        .await
        .change_resource_record_sets()
        .hosted_zone_id(zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(action)
                        .resource_record_set(
                            ResourceRecordSet::builder()
                                .name(record)
                                .r#type(RrType::Cname)
                                .ttl(60)
                                .resource_records(
                                    ResourceRecord::builder().value(target).build().unwrap(),
                                )
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
}

pub async fn cname(zone: &str, record: &str) -> String {
    let out = route53()
        .await
        .list_resource_record_sets()
        .hosted_zone_id(zone)
        .send()
        .await
        .unwrap();
    out.resource_record_sets()
        .iter()
        .find(|r| r.name().trim_end_matches('.') == record.trim_end_matches('.'))
        .and_then(|r| r.resource_records().first())
        .map(|v| v.value().to_string())
        .unwrap_or_default()
}

pub fn dns_config(zone: &str, record: &str) -> String {
    format!(
        "[[dns.records]]\nname = \"app\"\nzone_id = \"{zone}\"\nrecord = \"{record}\"\ntype = \"CNAME\"\nprimary = \"primary-alb.us-east-1.elb.amazonaws.com\"\nbackup = \"backup-alb.us-west-2.elb.amazonaws.com\"\nttl = 60\n"
    )
}

/// What the region-failure plan needs: a database with a snapshot, the backup region's
/// service and network, the DNS record and (when `parameter`) the cutover parameter there.
/// The cutover redeploys no service here: moto leaves a scaled service's deployment at its
/// old desired count, so a redeploy after the scale never looks stable in the emulator
/// (`plan_commands` tests the cutover's redeploy).
pub struct Estate {
    pub db: SeededDatabase,
    pub dr: SeededService,
    pub zone: String,
    pub record: String,
    pub parameter: String,
    pub config: String,
}

/// `base` is the configuration's start ([slack], [approval], follow timings).
pub async fn estate(base: &str, with_parameter: bool) -> Estate {
    let db = seed_database(1).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let dr = seed_service_in(BACKUP, 1, 0).await;
    let (subnets, group) = seed_network_in(BACKUP).await;
    let record = format!("{}.analyticalfire.test.", unique("www"));
    let zone = seed_zone(&record, "primary-alb.us-east-1.elb.amazonaws.com").await;
    let parameter = if with_parameter {
        seed_host_parameter(BACKUP, "aifai-db.us-east-1.internal").await
    } else {
        format!("/{}/DATABASE_HOST", unique("absent"))
    };
    let config = format!(
        "{}\n[regions]\nbackup = \"{BACKUP}\"\n\n[[ecs.services]]\nname = \"api-dr\"\ncluster = \"{}\"\nservice = \"{}\"\nregion = \"backup\"\nmax_desired = 10\n\n{}cutover_parameter = \"{parameter}\"\ncutover_services = []\nbackup_placement = {{ subnet_group = \"{subnets}\", security_groups = [\"{group}\"], class = \"db.t3.micro\" }}\n\n{}",
        base,
        dr.cluster,
        dr.service,
        db.config(),
        dns_config(&zone, &record)
    );
    Estate {
        db,
        dr,
        zone,
        record,
        parameter,
        config,
    }
}
