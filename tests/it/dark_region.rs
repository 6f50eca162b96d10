//! The hour drbot exists for: the primary region is dark. Every request drbot sends there
//! (and to Route 53's API, signed for us-east-1) hangs at a proxy in front of the emulator
//! and is dropped after two minutes without an answer. drbot runs in the backup region, as
//! the README recommends: it starts and becomes ready, `/dr status` answers within seconds
//! naming the primary as not answering, the backup region's steps — restore of the copy
//! held there, scale of the standby service, cutover of the parameter held there — run end
//! to end, and a step that needs the dark region ends with a clear word instead of a hang;
//! once the region answers again, the same command works.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::plan_commands::wait_until_executed;
use crate::support::aws::*;
use crate::support::flow::*;
use crate::support::region::{cname, dns_config, seed_zone};
use crate::support::*;

const PRIMARY: &str = "us-east-1";
const BACKUP: &str = "us-west-2";

/// The plan's base configuration, with drbot protecting us-east-1 from us-west-2.
fn base() -> String {
    format!(
        "{}\n[regions]\nprimary = \"{PRIMARY}\"\nbackup = \"{BACKUP}\"\n",
        crate::plan_commands::base()
    )
}

/// Asks for `command`, checks that the request shows each of `shown`, has an officer
/// approve it, and waits until it is the `n`th request executed (drbot's time running).
async fn approved(app: &TestApp, command: &str, shown: &[&str], n: usize) {
    let ts = app.with_time_running(ask(app, command, REQUESTER)).await;
    let request = posted_message(app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    for text in shown {
        assert!(request.contains(text), "{text}: {request}");
    }
    react(app, &ts, "white_check_mark", OFFICER).await;
    app.with_time_running(wait_until_executed(app, n)).await;
}

/// The `n`th `response_url` answer, waiting for it up to `secs` real seconds (a bound on a
/// hang, not a speed target).
async fn nth_response(app: &TestApp, n: usize, secs: u64) -> String {
    let until = Instant::now() + Duration::from_secs(secs);
    while app.slack.response_posts().len() < n && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let posts = app.slack.response_posts();
    assert!(posts.len() >= n, "no answer #{n} within {secs}s: {posts:?}");
    posts[n - 1].1["text"].as_str().unwrap_or("").to_string()
}

/// A snapshot of `instance` copied into the backup region (as `/dr snapshot copy` or a
/// schedule did before the region went dark); its id there.
async fn copy_to_backup(db: &SeededDatabase) -> String {
    let instance = &db.instance;
    db.snapshot(&format!("{instance}-nightly")).await;
    // moto's account; the source of a cross-region copy is named by its ARN.
    let arn = format!("arn:aws:rds:{PRIMARY}:123456789012:snapshot:{instance}-nightly");
    let copy = format!("drbot-{instance}-copy");
    rds_in(BACKUP)
        .await
        .copy_db_snapshot()
        .source_db_snapshot_identifier(arn)
        .target_db_snapshot_identifier(&copy)
        .send()
        .await
        .unwrap();
    copy
}

#[tokio::test]
async fn with_the_primary_region_dark_drbot_answers_and_runs_the_backup_regions_steps() {
    // The estate: the application and its database in the primary region, a standby
    // service, a reports database, the network and the connection parameter in the backup.
    let api = seed_service(2, 1).await;
    let standby = seed_service_in(BACKUP, 1, 0).await;
    let worker = seed_service_in(BACKUP, 1, 1).await;
    let db = seed_database(1).await;
    let reports = seed_database_in(BACKUP, 1).await;
    let copy = copy_to_backup(&db).await;
    let (dr_subnets, dr_group) = seed_network_in(BACKUP).await;
    let parameter = seed_host_parameter(BACKUP, "primary-db.internal").await;
    let record = format!("{}.analyticalfire.test.", unique("www"));
    let zone = seed_zone(&record, "primary-alb.us-east-1.elb.amazonaws.com").await;
    let config = format!(
        "{}\n{}\n[[ecs.services]]\nname = \"api-dr\"\ncluster = \"{}\"\nservice = \"{}\"\nregion = \"backup\"\n\n[[ecs.services]]\nname = \"worker-dr\"\ncluster = \"{}\"\nservice = \"{}\"\nregion = \"backup\"\n\n{}cutover_parameter = \"{parameter}\"\ncutover_services = [\"api\", \"worker-dr\"]\nbackup_placement = {{ subnet_group = \"{dr_subnets}\", security_groups = [\"{dr_group}\"], class = \"db.t3.micro\" }}\n\n[[rds.databases]]\nname = \"reports\"\ninstance = \"{}\"\nregion = \"backup\"\n\n{}",
        base(),
        api.config(),
        standby.cluster,
        standby.service,
        worker.cluster,
        worker.service,
        db.config(),
        reports.instance,
        dns_config(&zone, &record)
    );

    // The primary region goes dark before drbot starts; drbot runs in the backup region.
    let proxy = CountingProxy::start().await;
    proxy.darken(PRIMARY);
    let app = spawn_app_custom(
        &config,
        &[],
        &[("AWS_ENDPOINT_URL", &proxy.url()), ("AWS_REGION", BACKUP)],
    )
    .await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(
        ready.status(),
        200,
        "drbot is ready with its primary region dark"
    );

    // /dr status: acknowledged at once ("result follows"), then the whole answer. drbot waits
    // at most 10 s of its own time for a region; a hang would never answer. The measured
    // times are printed (BENCHMARKS-style figures, not assertions: README "When a region
    // does not answer").
    let asked = Instant::now();
    let ack = app.slash("status").reply().await;
    let acked = asked.elapsed();
    let status = if ack.starts_with("*drbot status*") {
        ack
    } else {
        assert!(ack.contains("result will follow"), "{ack}");
        nth_response(&app, 1, 60).await
    };
    let answered = asked.elapsed();
    eprintln!(
        "/dr status with {PRIMARY} dark: acknowledged in {acked:?}, answered in {answered:?}"
    );
    assert!(
        status.contains(&format!("primary {PRIMARY} (:warning: not answering)"))
            && status.contains(&format!("{PRIMARY} is not answering")),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "`api-dr [{BACKUP}]`: `{}:1`, running",
            standby.family
        )) && status.contains(&format!(
            "`reports` [{BACKUP}] (`{}`): available",
            reports.instance
        )),
        "the backup region's services and databases are shown: {status}"
    );
    assert!(
        status.contains(&format!(
            "`api [{PRIMARY}]`: :warning: {PRIMARY} did not answer"
        )),
        "{status}"
    );

    // Restore the copy held in the backup region, placed by backup_placement (officer).
    let new = format!("{}-dr", db.instance);
    approved(
        &app,
        &format!("restore main --region backup --snapshot {copy} --as {new}"),
        &[&format!("`{new}` in {BACKUP}")],
        1,
    )
    .await;
    assert_eq!(
        SeededDatabase::status_in(BACKUP, &new).await.as_deref(),
        Some("available")
    );

    // Scale the standby service up (officer).
    approved(&app, "scale api-dr --desired 1", &[], 2).await;
    assert_eq!(standby.desired_count_in(BACKUP).await, 1);

    // Cut over to the restored instance: the backup region's parameter, and only the
    // service that runs there is redeployed.
    approved(
        &app,
        &format!("cutover main --to {new} --region backup"),
        &[
            &format!("`{new}` in {BACKUP}"),
            "Not redeployed (in another region): `api`",
        ],
        3,
    )
    .await;
    assert_ne!(
        parameter_in(BACKUP, &parameter).await.0,
        "primary-db.internal"
    );

    // A step that needs the dark side (Route 53's API is signed for us-east-1) ends with a
    // clear word (after twice the call timeout: 20 s), changing nothing.
    let before = app.slack.response_posts().len();
    let asked = Instant::now();
    app.slash("dns failover app --to backup").reply().await;
    let answer = nth_response(&app, before + 1, 120).await;
    eprintln!(
        "dns failover with {PRIMARY} dark: answered in {:?}",
        asked.elapsed()
    );
    assert!(
        answer.contains("Could not plan")
            && answer.contains("did not answer")
            && answer.contains("region or its API"),
        "{answer}"
    );
    assert!(answer.contains("the same command works"), "{answer}");
    assert_eq!(proxy.forwarded("ChangeResourceRecordSets"), 0);
    // A rollback of the primary region's service too.
    app.slash("rollback api").reply().await;
    let answer = nth_response(&app, before + 2, 120).await;
    assert!(answer.contains("did not answer"), "{answer}");

    // The region answers again: the same command works.
    proxy.light(PRIMARY);
    approved(&app, "dns failover app --to backup", &[], 4).await;
    assert_eq!(
        cname(&zone, &record).await,
        "backup-alb.us-west-2.elb.amazonaws.com"
    );
    let failed: Vec<Value> = app.events_of_kind("aws.error").await;
    assert!(
        failed.len() >= 2,
        "the dark calls are in the record: {failed:#?}"
    );
}
