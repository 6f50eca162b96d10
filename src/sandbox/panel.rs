//! The console's AWS panel: what the emulator holds now, read through the AWS SDK.

use serde_json::{json, Value};

use super::estate::{config_for, Estate, BACKUP, PRIMARY};

pub async fn read(estate: &Estate) -> Value {
    let mut services = Vec::new();
    for (name, region, cluster) in [
        ("api", PRIMARY, "aifai-prod"),
        ("api-dr", BACKUP, "aifai-dr"),
    ] {
        let ecs = aws_sdk_ecs::Client::new(&config_for(region).await);
        if let Ok(out) = ecs
            .describe_services()
            .cluster(cluster)
            .services("aifai-backend-service")
            .send()
            .await
        {
            for s in out.services() {
                services.push(json!({
                    "name": name,
                    "region": region,
                    "task_definition": crate::aws::ecs::pinned_form(s.task_definition().unwrap_or_default()),
                    "desired": s.desired_count(),
                    "running": s.running_count(),
                }));
            }
        }
    }
    let waf = aws_sdk_wafv2::Client::new(&config_for(PRIMARY).await);
    let mut ip_sets = Vec::new();
    for (name, id) in [&estate.v4, &estate.v6] {
        let addresses = waf
            .get_ip_set()
            .name(name)
            .id(id)
            .scope(aws_sdk_wafv2::types::Scope::Regional)
            .send()
            .await
            .ok()
            .and_then(|o| o.ip_set().map(|s| s.addresses().to_vec()))
            .unwrap_or_default();
        ip_sets.push(json!({"name": name, "addresses": addresses}));
    }
    let web_acl: Vec<String> = waf
        .get_web_acl()
        .name(&estate.acl.0)
        .id(&estate.acl.1)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.web_acl().map(|w| {
                w.rules()
                    .iter()
                    .map(|r| {
                        let limit = r
                            .statement()
                            .and_then(|s| s.rate_based_statement())
                            .map(|s| format!(": rate limit {} / 5 min per IP", s.limit()))
                            .unwrap_or_default();
                        format!("{} (priority {}){limit}", r.name(), r.priority())
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    let mut instances = Vec::new();
    let mut snapshots = Vec::new();
    for region in [PRIMARY, BACKUP] {
        let rds = aws_sdk_rds::Client::new(&config_for(region).await);
        if let Ok(out) = rds.describe_db_instances().send().await {
            for i in out.db_instances() {
                instances.push(json!({"id": i.db_instance_identifier(), "region": region, "status": i.db_instance_status()}));
            }
        }
        if let Ok(out) = rds.describe_db_snapshots().send().await {
            let mut list: Vec<_> = out.db_snapshots().to_vec();
            list.sort_by_key(|s| std::cmp::Reverse(s.snapshot_create_time().map(|t| t.secs())));
            for s in list {
                let created = s
                    .original_snapshot_create_time()
                    .or(s.snapshot_create_time())
                    .and_then(|t| chrono::DateTime::from_timestamp(t.secs(), 0))
                    .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_default();
                snapshots.push(json!({"id": s.db_snapshot_identifier(), "region": region, "kind": s.snapshot_type(), "created": created}));
            }
        }
    }
    let r53 = aws_sdk_route53::Client::new(&config_for(PRIMARY).await);
    let target = r53
        .list_resource_record_sets()
        .hosted_zone_id(&estate.zone)
        .send()
        .await
        .ok()
        .and_then(|o| {
            o.resource_record_sets()
                .iter()
                .find(|r| r.name().starts_with("www."))
                .and_then(|r| r.resource_records().first().map(|v| v.value().to_string()))
        })
        .unwrap_or_default();
    let ssm = aws_sdk_ssm::Client::new(&config_for(PRIMARY).await);
    let parameter = ssm
        .get_parameter()
        .name("/aifai/prod/DATABASE_HOST")
        .send()
        .await
        .ok()
        .and_then(|o| o.parameter().and_then(|p| p.value().map(str::to_string)))
        .unwrap_or_default();
    json!({
        "services": services,
        "ip_sets": ip_sets,
        "web_acl": web_acl,
        "instances": instances,
        "snapshots": snapshots,
        "dns": {"record": "www.analyticalfire.com", "target": target},
        "parameter": {"name": "/aifai/prod/DATABASE_HOST", "value": parameter},
    })
}
