//! A database incident: `/dr snapshot` now, `/dr restore` from a snapshot, `/dr pitr` to a
//! point in time — always into a NEW instance, with every time and name checked by drbot
//! (moto accepts anything). Against the real binary, the Slack stand-in and moto's RDS.

use std::time::Duration;

use crate::support::aws::{rds, seed_database, SeededDatabase};
use crate::support::flow::*;
use crate::support::*;

fn config(db: &SeededDatabase) -> String {
    format!(
        r#"
[slack]
command_channels = ["C0123OPS"]

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]

[rds]
poll_interval = "1s"
wait_timeout = "1m"

{}"#,
        db.config()
    )
}

#[tokio::test]
async fn a_snapshot_is_taken_at_once_named_and_tagged_with_the_requester() {
    let db = seed_database(1).await;
    let app = spawn_app_with(&config(&db)).await;
    let reply = app.slash("snapshot main").reply().await;
    assert!(
        reply.starts_with("Working on `/dr snapshot main`"),
        "{reply}"
    );
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(call["detail"]["operation"], "CreateDBSnapshot");
    let name = call["detail"]["snapshot"].as_str().unwrap().to_string();
    let prefix = format!("drbot-{}-", db.instance);
    assert!(
        name.starts_with(&prefix) && name.len() == prefix.len() + 14,
        "{name}"
    );

    let rds = rds().await;
    let snap = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(&name)
        .send()
        .await
        .unwrap();
    let arn = snap.db_snapshots()[0]
        .db_snapshot_arn()
        .unwrap()
        .to_string();
    let tags = rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .unwrap();
    let requested_by = tags
        .tag_list()
        .iter()
        .find(|t| t.key() == Some("drbot:requested-by"))
        .and_then(|t| t.value());
    assert_eq!(requested_by, Some(REQUESTER));
    assert!(
        last_update(&app).contains("is available"),
        "{}",
        last_update(&app)
    );
    assert!(
        app.events_of_kind("approval.requested").await.is_empty(),
        "snapshot needs no approval"
    );
}

#[tokio::test]
async fn a_snapshot_of_an_unknown_database_is_refused_at_once() {
    let db = seed_database(1).await;
    let app = spawn_app_with(&config(&db)).await;
    let reply = app.slash("snapshot payroll").reply().await;
    assert!(
        reply.contains("unknown database `payroll`; configured: `main`"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_restore_creates_a_new_instance_and_leaves_the_original_untouched() {
    let db = seed_database(1).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let app = spawn_app_with(&config(&db)).await;
    let new = format!("{}-rst", db.instance);
    let ts = ask(
        &app,
        &format!("restore main --snapshot {}-nightly --as {new}", db.instance),
        REQUESTER,
    )
    .await;
    let request = posted_message(&app, &ts);
    let text = request.params["text"].as_str().unwrap().to_string();
    assert!(
        text.contains(&format!(
            "into a *NEW* instance `{new}` (class `db.t3.micro`"
        )),
        "{text}"
    );
    assert!(
        text.contains("connection settings must be switched"),
        "{text}"
    );
    assert!(
        SeededDatabase::status_of(&new).await.is_none(),
        "created before approval"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(
        SeededDatabase::status_of(&new).await.as_deref(),
        Some("available")
    );
    assert_eq!(
        SeededDatabase::status_of(&db.instance).await.as_deref(),
        Some("available")
    );
    assert!(
        last_update(&app).contains(&format!("new instance `{new}` is available at `")),
        "{}",
        last_update(&app)
    );
    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(
        call["detail"]["operation"],
        "RestoreDBInstanceFromDBSnapshot"
    );
    assert!(app.warnings().is_empty(), "{:#?}", app.warnings());
}

#[tokio::test]
async fn restores_with_a_bad_snapshot_or_name_are_refused() {
    let db = seed_database(1).await;
    let other = seed_database(1).await;
    other.snapshot(&format!("{}-theirs", other.instance)).await;
    db.snapshot(&format!("{}-ours", db.instance)).await;
    let app = spawn_app_with(&config(&db)).await;
    for (text, expected) in [
        (
            "restore main --snapshot x --as 1bad".to_string(),
            "must start with a letter",
        ),
        (
            "restore main --snapshot x --as bad--name".to_string(),
            "two hyphens in a row",
        ),
        (
            "restore main --snapshot x --as bad-".to_string(),
            "cannot end with a hyphen",
        ),
        (
            "restore main".to_string(),
            "missing `--snapshot &lt;id&gt;`",
        ),
        (
            format!("restore main --snapshot x --as {}", db.instance),
            "a restore always creates a NEW instance",
        ),
        (
            format!("restore main --snapshot x --as {}", other.instance),
            "a restored instance is named",
        ),
    ] {
        let reply = app.slash(&text).reply().await;
        assert!(reply.contains(expected), "{text}: {reply}");
    }
    app.slash("restore main --snapshot nope-404").reply().await;
    app.slash(&format!(
        "restore main --snapshot {}-theirs",
        other.instance
    ))
    .reply()
    .await;
    // A name drbot may use, already taken by an instance.
    let taken = format!("{}-taken", db.instance);
    crate::support::aws::create_instance("us-east-1", &taken, None).await;
    app.slash(&format!(
        "restore main --snapshot {}-ours --as {taken}",
        db.instance
    ))
    .reply()
    .await;
    let answers = wait_for_responses(&app, 3).await;
    assert!(
        answers
            .iter()
            .any(|a| a.contains("snapshot `nope-404` does not exist")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.contains(&format!(
            "belongs to instance `{}`, not `{}`",
            other.instance, db.instance
        ))),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.contains(&format!("an instance named `{taken}` already exists"))),
        "{answers:?}"
    );
    assert!(app.events_of_kind("approval.requested").await.is_empty());
}

#[tokio::test]
async fn pitr_to_latest_creates_a_new_instance_and_states_the_data_loss_window() {
    let db = seed_database(1).await;
    let app = spawn_app_with(&config(&db)).await;
    let new = format!("{}-pitr", db.instance);
    let ts = ask(
        &app,
        &format!("pitr main --time latest --as {new}"),
        REQUESTER,
    )
    .await;
    let request = posted_message(&app, &ts);
    let text = request.params["text"].as_str().unwrap().to_string();
    assert!(text.contains("to the latest restorable time"), "{text}");
    assert!(
        text.contains("data-loss window of") && text.contains("within the database RPO of 1h 00m"),
        "{text}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(
        SeededDatabase::status_of(&new).await.as_deref(),
        Some("available")
    );
    assert_eq!(
        SeededDatabase::status_of(&db.instance).await.as_deref(),
        Some("available")
    );
    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(
        call["detail"]["operation"],
        "RestoreDBInstanceToPointInTime"
    );
    assert_eq!(call["detail"]["use_latest_restorable_time"], true);
    assert!(call["detail"]["restore_point"].is_string());
}

#[tokio::test]
async fn pitr_to_a_time_inside_the_window_uses_that_time() {
    let db = seed_database(1).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let point = chrono::DateTime::from_timestamp(
        (db.created().await + chrono::Duration::seconds(2)).timestamp(),
        0,
    )
    .unwrap();
    let app = spawn_app_with(&config(&db)).await;
    let done = ask_and_approve(
        &app,
        &format!("pitr main --time {}", point.format("%Y-%m-%dT%H:%M:%SZ")),
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(call["detail"]["use_latest_restorable_time"], false);
    assert_eq!(
        call["detail"]["restore_point"],
        crate::support::aws::rfc3339_millis(point)
    );
}

#[tokio::test]
async fn pitr_refuses_times_outside_the_window_and_databases_without_backups() {
    let db = seed_database(1).await;
    let no_backups = seed_database(0).await;
    let app = spawn_app_with(&config(&db)).await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let reply = app
        .slash(&format!("pitr main --time {future}"))
        .reply()
        .await;
    assert!(reply.contains("is in the future"), "{reply}");
    let reply = app
        .slash("pitr main --time 2026-13-01T00:00:00Z")
        .reply()
        .await;
    assert!(reply.contains("is not an RFC 3339 time"), "{reply}");
    let reply = app.slash("pitr main").reply().await;
    assert!(
        reply.contains("missing `--time &lt;RFC3339&gt;|latest`"),
        "{reply}"
    );

    let before_creation = (db.created().await - chrono::Duration::days(3))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    app.slash(&format!("pitr main --time {before_creation}"))
        .reply()
        .await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("is outside the restorable window"),
        "{answers:?}"
    );

    let app2 = spawn_app_with(&config(&no_backups)).await;
    app2.slash("pitr main --time latest").reply().await;
    let answers = wait_for_responses(&app2, 1).await;
    assert!(
        answers[0].contains("keeps no automated backups (retention 0)"),
        "{answers:?}"
    );
    assert!(app.events_of_kind("approval.requested").await.is_empty());
    assert!(app2.events_of_kind("approval.requested").await.is_empty());
}

#[tokio::test]
async fn a_restore_whose_snapshot_vanished_before_approval_is_void() {
    let db = seed_database(1).await;
    let snap = format!("{}-gone", db.instance);
    db.snapshot(&snap).await;
    let app = spawn_app_with(&config(&db)).await;
    let ts = ask(&app, &format!("restore main --snapshot {snap}"), REQUESTER).await;
    rds()
        .await
        .delete_db_snapshot()
        .db_snapshot_identifier(&snap)
        .send()
        .await
        .unwrap();
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.void", "{done}");
    assert!(
        done["text"]
            .as_str()
            .unwrap()
            .contains(&format!("snapshot `{snap}` does not exist")),
        "{done}"
    );
    assert!(app.events_of_kind("aws.call").await.is_empty());
}

#[tokio::test]
async fn a_snapshot_of_a_stopped_instance_is_refused() {
    let db = seed_database(1).await;
    rds()
        .await
        .stop_db_instance()
        .db_instance_identifier(&db.instance)
        .send()
        .await
        .unwrap();
    let app = spawn_app_with(&config(&db)).await;
    app.slash("snapshot main").reply().await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("is `stopped`; a snapshot needs it `available`"),
        "{answers:?}"
    );
    assert!(app.events_of_kind("aws.call").await.is_empty());
}

/// The `drbot.toml` block of `db` with restore overrides.
fn placed_config(db: &SeededDatabase, subnet_group: &str, security_group: &str) -> String {
    config(db).replace(
        &db.config(),
        &format!(
            "{}restore_subnet_group = \"{subnet_group}\"\nrestore_security_groups = [\"{security_group}\"]\n",
            db.config()
        ),
    )
}

#[tokio::test]
async fn restores_are_placed_like_the_source_never_public_and_the_officers_see_where() {
    let db = seed_database(1).await;
    // The source: Multi-AZ, tagged for its team.
    let rds = rds().await;
    let arn = rds
        .describe_db_instances()
        .db_instance_identifier(&db.instance)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .db_instance_arn()
        .unwrap()
        .to_string();
    rds.add_tags_to_resource()
        .resource_name(&arn)
        .tags(
            aws_sdk_rds::types::Tag::builder()
                .key("team")
                .value("payments")
                .build(),
        )
        .send()
        .await
        .unwrap();
    rds.modify_db_instance()
        .db_instance_identifier(&db.instance)
        .multi_az(true)
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let (subnet_group, security_group) = crate::support::aws::seed_network().await;
    let proxy = crate::support::aws::CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(
        &placed_config(&db, &subnet_group, &security_group),
        &[],
        &[("AWS_ENDPOINT_URL", &url)],
    )
    .await;

    let new = format!("{}-rst", db.instance);
    let ts = ask(
        &app,
        &format!("restore main --snapshot {}-nightly --as {new}", db.instance),
        REQUESTER,
    )
    .await;
    let text = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!(
            "Placed like `{}`: subnet group `{subnet_group}`, security groups `{security_group}`",
            db.instance
        )),
        "{text}"
    );
    assert!(text.contains("Multi-AZ yes"), "{text}");
    assert!(text.contains("1 tag(s) copied"), "{text}");
    assert!(
        text.contains("*not publicly accessible*, deletion protection on"),
        "{text}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    let sent = proxy.params("RestoreDBInstanceFromDBSnapshot");
    assert_eq!(sent.len(), 1);
    let p = &sent[0];
    assert_eq!(p["DBSubnetGroupName"], subnet_group, "{p:?}");
    assert_eq!(
        p["VpcSecurityGroupIds.VpcSecurityGroupId.1"], security_group,
        "{p:?}"
    );
    assert_eq!(p["PubliclyAccessible"], "false", "{p:?}");
    assert_eq!(p["DeletionProtection"], "true", "{p:?}");
    assert_eq!(p["MultiAZ"], "true", "{p:?}");
    assert_eq!(p["Tags.Tag.1.Key"], "team", "{p:?}");
    assert_eq!(p["Tags.Tag.1.Value"], "payments", "{p:?}");

    // A point-in-time restore of the same database is placed the same way.
    let pitr = format!("{}-pitr", db.instance);
    let ts = ask(
        &app,
        &format!("pitr main --time latest --as {pitr}"),
        REQUESTER,
    )
    .await;
    let text = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("subnet group `{subnet_group}`")),
        "{text}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    for _ in 0..200 {
        if !proxy.params("RestoreDBInstanceToPointInTime").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let sent = proxy.params("RestoreDBInstanceToPointInTime");
    assert_eq!(
        sent.len(),
        1,
        "{:#?}",
        app.events().await.iter().rev().take(4).collect::<Vec<_>>()
    );
    let p = &sent[0];
    assert_eq!(p["DBSubnetGroupName"], subnet_group, "{p:?}");
    assert_eq!(
        p["VpcSecurityGroupIds.VpcSecurityGroupId.1"], security_group,
        "{p:?}"
    );
    assert_eq!(p["PubliclyAccessible"], "false", "{p:?}");
    assert_eq!(p["DeletionProtection"], "true", "{p:?}");
}
