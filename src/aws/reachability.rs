//! `drbot check-config --aws`: does every configured ECS service, RDS instance and WAF IP
//! set exist and answer — and, for a database with data checks, does its engine let drbot
//! read it and does its login secret exist? Read-only calls: `ecs:DescribeServices`,
//! `rds:DescribeDBInstances`, `wafv2:GetIPSet`, `secretsmanager:GetSecretValue`.

use crate::aws::{describe_error, AwsClients};
use crate::config::{Settings, WafIpSetRef, WafScope};

/// Checks each resource; returns one line per problem (empty when all are reachable).
pub async fn check(aws: &AwsClients, settings: &Settings) -> Vec<String> {
    let mut problems = Vec::new();
    for svc in &settings.ecs.services {
        let answer = aws
            .ecs
            .describe_services()
            .cluster(&svc.cluster)
            .services(&svc.service)
            .send()
            .await;
        match answer {
            Err(e) => problems.push(format!(
                "ecs.services '{}': {}/{}: {}",
                svc.name,
                svc.cluster,
                svc.service,
                describe_error(&e)
            )),
            Ok(out) => {
                let active = out.services().iter().any(|s| s.status() == Some("ACTIVE"));
                if !active {
                    let why = out
                        .failures()
                        .first()
                        .and_then(|f| f.reason())
                        .unwrap_or("not found or not ACTIVE");
                    problems.push(format!(
                        "ecs.services '{}': {}/{}: {}",
                        svc.name, svc.cluster, svc.service, why
                    ));
                }
            }
        }
    }
    for db in &settings.rds.databases {
        match aws
            .rds
            .describe_db_instances()
            .db_instance_identifier(&db.instance)
            .send()
            .await
        {
            Err(e) => problems.push(format!(
                "rds.databases '{}': instance {}: {}",
                db.name,
                db.instance,
                describe_error(&e)
            )),
            Ok(out) if db.verifies_data() => {
                let engine = out
                    .db_instances()
                    .first()
                    .and_then(|i| i.engine())
                    .unwrap_or("unknown");
                if !matches!(engine, "postgres" | "mysql" | "mariadb") {
                    problems.push(format!(
                        "rds.databases '{}': instance {} runs engine `{engine}`: drbot checks the data of postgres, mysql and mariadb instances; remove its checks",
                        db.name, db.instance
                    ));
                }
            }
            Ok(_) => {}
        }
        if let Some(Ok(crate::config::data_checks::Credentials::Secret(id))) = db
            .verify_credentials
            .as_deref()
            .map(crate::config::data_checks::Credentials::parse)
        {
            let region = super::rds::arn_place(&id)
                .map(|(r, _)| r.to_string())
                .or_else(|| settings.region_of(db.region.as_deref()))
                .or_else(|| aws.default_region())
                .unwrap_or_default();
            if let Err(e) = super::secrets::login(aws, &region, &id).await {
                problems.push(format!(
                    "rds.databases '{}': verify_credentials secret {id}: {}",
                    db.name, e.message
                ));
            }
        }
    }
    for set in &settings.waf.ip_sets {
        let refs = std::iter::once(("ipv4_set", &set.ipv4_set))
            .chain(set.ipv6_set.as_ref().map(|s| ("ipv6_set", s)));
        for (key, ip_set) in refs {
            if let Err(problem) = check_ip_set(aws, set.scope, ip_set).await {
                problems.push(format!(
                    "waf.ip_sets '{}' {key} {} ({}): {problem}",
                    set.name, ip_set.name, ip_set.id
                ));
            }
        }
    }
    problems
}

async fn check_ip_set(
    aws: &AwsClients,
    scope: WafScope,
    ip_set: &WafIpSetRef,
) -> Result<(), String> {
    let client = aws.waf(scope);
    let scope = aws_sdk_wafv2::types::Scope::from(scope.as_str());
    client
        .get_ip_set()
        .name(&ip_set.name)
        .id(&ip_set.id)
        .scope(scope)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| describe_error(&e))
}
