//! The plan's estate, seeded into the AWS emulator the sandbox runs against (moto at
//! `AWS_ENDPOINT_URL`): the API service with three task-definition revisions, its copy in
//! the backup region, the database with a week of backups, the WAF IP sets and web ACL, the
//! DNS record and the connection parameter. Then the configuration that names them.

use aws_sdk_ecs::types::ContainerDefinition;
use aws_sdk_wafv2::types::{AllowAction, DefaultAction, IpAddressVersion, Scope, VisibilityConfig};

pub const PRIMARY: &str = "us-east-1";
pub const BACKUP: &str = "us-west-2";

/// What was seeded, for the configuration and the AWS panel.
#[derive(Debug, Clone)]
pub struct Estate {
    pub backup_subnets: String,
    pub backup_group: String,
    pub v4: (String, String),
    pub v6: (String, String),
    pub acl: (String, String),
    pub zone: String,
}

/// What could not be seeded into the emulator, and why.
#[derive(Debug, thiserror::Error)]
#[error("seeding the sandbox's AWS ({what}): {why}")]
pub struct SeedError {
    pub what: &'static str,
    pub why: String,
}

fn fail(what: &'static str) -> impl Fn(String) -> SeedError {
    move |why| SeedError { what, why }
}

/// The SDK's configuration from the environment (`scripts/sandbox` points it at moto), in
/// `region`.
pub async fn config_for(region: &str) -> aws_config::SdkConfig {
    crate::aws::sdk_defaults()
        .load()
        .await
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

async fn seed_service(region: &str, cluster: &str, desired: i32) -> Result<(), SeedError> {
    let ecs = aws_sdk_ecs::Client::new(&config_for(region).await);
    ecs.create_cluster()
        .cluster_name(cluster)
        .send()
        .await
        .map_err(|e| fail("ECS cluster")(e.to_string()))?;
    for (i, version) in ["1.4.0", "1.5.0", "1.5.1"].iter().enumerate() {
        ecs.register_task_definition()
            .family("aifai-backend")
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image(format!("registry.example.com/aifai/backend:{version}"))
                    .memory(512)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| fail("task definitions")(format!("revision {}: {e}", i + 1)))?;
    }
    ecs.create_service()
        .cluster(cluster)
        .service_name("aifai-backend-service")
        .task_definition("aifai-backend:3")
        .desired_count(desired)
        .send()
        .await
        .map_err(|e| fail("ECS service")(e.to_string()))?;
    Ok(())
}

/// A dated snapshot through the test launcher's endpoint (moto stamps snapshots "now").
async fn dated_snapshot(
    endpoint: &str,
    id: &str,
    kind: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), SeedError> {
    let body = serde_json::json!({"region": PRIMARY, "instance": "aifai-db", "id": id, "type": kind, "created": at.to_rfc3339()});
    let url = format!("{}/_drbot/rds/snapshot", endpoint.trim_end_matches('/'));
    let answer = reqwest_like_post(&url, "application/json", "", &body.to_string()).await?;
    if answer.contains("\"error\"") {
        return Err(fail("backup history")(answer));
    }
    Ok(())
}

/// One POST over plain HTTP (the emulator on loopback), without another HTTP client.
async fn reqwest_like_post(
    url: &str,
    content_type: &str,
    extra: &str,
    body: &str,
) -> Result<String, SeedError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let failed = fail("the emulator");
    let parsed = url::Url::parse(url).map_err(|e| failed(e.to_string()))?;
    let host = parsed.host_str().unwrap_or("127.0.0.1").to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| failed(format!("cannot reach {url}: {e}")))?;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        parsed.path(),
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| failed(e.to_string()))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .map_err(|e| failed(e.to_string()))?;
    Ok(answer)
}

/// A private network in the backup region for restores there (EC2's query API, which the
/// emulator serves without checking signatures): (DB subnet group, security group).
async fn seed_backup_network(endpoint: &str) -> Result<(String, String), SeedError> {
    let ec2 = |params: Vec<(&'static str, String)>| async move {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Version", "2016-11-15");
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        let auth = format!("Authorization: AWS4-HMAC-SHA256 Credential=sandbox/20261127/{BACKUP}/ec2/aws4_request, SignedHeaders=host, Signature=0\r\n");
        reqwest_like_post(
            &format!("{}/", endpoint.trim_end_matches('/')),
            "application/x-www-form-urlencoded",
            &auth,
            &form.finish(),
        )
        .await
    };
    let between = |text: &str, tag: &str| -> Result<String, SeedError> {
        let open = format!("<{tag}>");
        let start = text
            .find(&open)
            .ok_or_else(|| fail("backup network")(format!("no {tag} in the answer")))?
            + open.len();
        let end = text[start..].find('<').map(|e| e + start).unwrap_or(start);
        Ok(text[start..end].to_string())
    };
    let vpc = between(
        &ec2(vec![
            ("Action", "CreateVpc".into()),
            ("CidrBlock", "10.52.0.0/16".into()),
        ])
        .await?,
        "vpcId",
    )?;
    let mut subnets = Vec::new();
    for (i, zone) in ["a", "b"].iter().enumerate() {
        let answer = ec2(vec![
            ("Action", "CreateSubnet".into()),
            ("VpcId", vpc.clone()),
            ("CidrBlock", format!("10.52.{i}.0/24")),
            ("AvailabilityZone", format!("{BACKUP}{zone}")),
        ])
        .await?;
        subnets.push(between(&answer, "subnetId")?);
    }
    let group = between(
        &ec2(vec![
            ("Action", "CreateSecurityGroup".into()),
            ("GroupName", "aifai-db-dr".into()),
            (
                "GroupDescription",
                "database access in the backup region".into(),
            ),
            ("VpcId", vpc),
        ])
        .await?,
        "groupId",
    )?;
    let rds = aws_sdk_rds::Client::new(&config_for(BACKUP).await);
    rds.create_db_subnet_group()
        .db_subnet_group_name("aifai-db-private-dr")
        .db_subnet_group_description("private subnets in the backup region")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .map_err(|e| fail("backup subnet group")(e.to_string()))?;
    Ok(("aifai-db-private-dr".to_string(), group))
}

/// Seeds everything; each step says what failed.
pub async fn seed(endpoint: &str) -> Result<Estate, SeedError> {
    seed_service(PRIMARY, "aifai-prod", 1).await?;
    seed_service(BACKUP, "aifai-dr", 0).await?;

    let rds = aws_sdk_rds::Client::new(&config_for(PRIMARY).await);
    rds.create_db_instance()
        .db_instance_identifier("aifai-db")
        .db_instance_class("db.t3.medium")
        .engine("postgres")
        .master_username("aifai")
        .master_user_password("sandbox-only-password")
        .allocated_storage(50)
        .backup_retention_period(7)
        .send()
        .await
        .map_err(|e| fail("RDS instance")(e.to_string()))?;
    let now = chrono::Utc::now();
    for days in 1..=6 {
        let at = now - chrono::Duration::days(days) - chrono::Duration::hours(2);
        dated_snapshot(
            endpoint,
            &format!("rds:aifai-db-{}", at.format("%Y-%m-%d-%H-%M")),
            "automated",
            at,
        )
        .await?;
    }
    dated_snapshot(
        endpoint,
        "aifai-db-before-migration",
        "manual",
        now - chrono::Duration::days(20),
    )
    .await?;

    let waf = aws_sdk_wafv2::Client::new(&config_for(PRIMARY).await);
    let mut sets = Vec::new();
    for (name, version) in [
        ("drbot-block-v4", IpAddressVersion::Ipv4),
        ("drbot-block-v6", IpAddressVersion::Ipv6),
    ] {
        let out = waf
            .create_ip_set()
            .name(name)
            .scope(Scope::Regional)
            .ip_address_version(version)
            .set_addresses(Some(Vec::new()))
            .send()
            .await
            .map_err(|e| fail("WAF IP sets")(e.to_string()))?;
        let id = out
            .summary()
            .and_then(|s| s.id())
            .unwrap_or_default()
            .to_string();
        sets.push((name.to_string(), id));
    }
    let visibility = VisibilityConfig::builder()
        .sampled_requests_enabled(true)
        .cloud_watch_metrics_enabled(true)
        .metric_name("aifai-web")
        .build()
        .map_err(|e| fail("web ACL")(e.to_string()))?;
    let acl = waf
        .create_web_acl()
        .name("aifai-web")
        .scope(Scope::Regional)
        .default_action(
            DefaultAction::builder()
                .allow(AllowAction::builder().build())
                .build(),
        )
        .visibility_config(visibility)
        .send()
        .await
        .map_err(|e| fail("web ACL")(e.to_string()))?;
    let acl_id = acl
        .summary()
        .and_then(|s| s.id())
        .unwrap_or_default()
        .to_string();

    let r53 = aws_sdk_route53::Client::new(&config_for(PRIMARY).await);
    let zone = r53
        .create_hosted_zone()
        .name("analyticalfire.com.")
        .caller_reference(format!(
            "sandbox-{}",
            now.timestamp_nanos_opt().unwrap_or(0)
        ))
        .send()
        .await
        .map_err(|e| fail("Route 53 zone")(e.to_string()))?
        .hosted_zone()
        .map(|z| z.id().trim_start_matches("/hostedzone/").to_string())
        .unwrap_or_default();
    {
        use aws_sdk_route53::types::*;
        let record = ResourceRecordSet::builder()
            .name("www.analyticalfire.com.")
            .r#type(RrType::Cname)
            .ttl(60)
            .resource_records(
                ResourceRecord::builder()
                    .value("primary-alb.us-east-1.elb.amazonaws.com")
                    .build()
                    .map_err(|e| fail("DNS record")(e.to_string()))?,
            )
            .build()
            .map_err(|e| fail("DNS record")(e.to_string()))?;
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(record)
            .build()
            .map_err(|e| fail("DNS record")(e.to_string()))?;
        r53.change_resource_record_sets()
            .hosted_zone_id(&zone)
            .change_batch(
                ChangeBatch::builder()
                    .changes(change)
                    .build()
                    .map_err(|e| fail("DNS record")(e.to_string()))?,
            )
            .send()
            .await
            .map_err(|e| fail("DNS record")(e.to_string()))?;
    }
    // The application's database host in each region: the primary's, and the backup
    // deployment's (which the region-failure plan's cutover writes).
    for region in [PRIMARY, BACKUP] {
        let ssm = aws_sdk_ssm::Client::new(&config_for(region).await);
        ssm.put_parameter()
            .name("/aifai/prod/DATABASE_HOST")
            .value("aifai-db.sandbox.us-east-1.rds.amazonaws.com")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| fail("SSM parameter")(e.to_string()))?;
    }

    let (backup_subnets, backup_group) = seed_backup_network(endpoint).await?;

    Ok(Estate {
        backup_subnets,
        backup_group,
        v4: sets[0].clone(),
        v6: sets[1].clone(),
        acl: ("aifai-web".to_string(), acl_id),
        zone,
    })
}

/// The sandbox's `drbot.toml`: the plan's estate, quick follow loops, a restore test kept
/// a few minutes.
pub fn config(estate: &Estate) -> String {
    format!(
        r#"
[slack]
command_channels = []

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]
ttl = "15m"

[regions]
primary = "{PRIMARY}"
backup = "{BACKUP}"

# `/dr notify users` publishes to the sandbox's own status page and mail outbox (the
# console's right-hand panel), never to these addresses: nothing leaves the machine.
[status_page]
provider = "statuspage"
page_id = "sandboxpage"
api_url = "http://127.0.0.1/sandbox-status-page"
components = {{ region-failure = ["web", "api"], ddos = ["web"], db-corruption = ["api"], code-corruption = ["api"], security-breach = ["web", "api"] }}

[email]
smtp_url = "smtp://127.0.0.1:25"
tls = "none"
from = "DR Team <dr@analyticalfire.com>"
[email.lists]
customers = ["ops@customer-one.example", "it@customer-two.example", "cto@customer-three.example"]
partners = ["noc@partner.example"]

[ecs]
poll_interval = "1s"
rollout_timeout = "30s"

[[ecs.services]]
name = "api"
cluster = "aifai-prod"
service = "aifai-backend-service"

[[ecs.services]]
name = "api-dr"
cluster = "aifai-dr"
service = "aifai-backend-service"
region = "backup"

[rds]
poll_interval = "1s"
wait_timeout = "2m"

[[rds.databases]]
name = "main"
instance = "aifai-db"
cutover_parameter = "/aifai/prod/DATABASE_HOST"
cutover_services = ["api"]
backup_placement = {{ subnet_group = "{}", security_groups = ["{}"], class = "db.t3.medium" }}

[rds.retention]
daily = 7
weekly = 4
monthly = 12

# No copy reaches the backup region by itself here, so `/dr ready` (and the Home tab) show
# region-failure not ready until one is made: `/dr snapshot copy main --to-region backup`.
# In production, `[rds.copies] databases = ["main"]` copies the newest one every hour.

[[waf.ip_sets]]
name = "blocklist"
scope = "REGIONAL"
ipv4_set = {{ name = "{}", id = "{}" }}
ipv6_set = {{ name = "{}", id = "{}" }}

[waf.web_acl]
name = "{}"
id = "{}"
scope = "REGIONAL"
rate_limit = 2000

[waf]
never_block = ["10.0.0.0/8"]

[[dns.records]]
name = "app"
zone_id = "{}"
record = "www.analyticalfire.com."
type = "CNAME"
primary = "primary-alb.us-east-1.elb.amazonaws.com"
backup = "backup-alb.us-west-2.elb.amazonaws.com"
ttl = 60

[dns]
sync_timeout = "1m"

[drills.restore_test]
keep_for = "5m"
channel = "C0123OPS"
"#,
        estate.backup_subnets,
        estate.backup_group,
        estate.v4.0,
        estate.v4.1,
        estate.v6.0,
        estate.v6.1,
        estate.acl.0,
        estate.acl.1,
        estate.zone
    )
}
