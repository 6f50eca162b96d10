//! The plan's evidence: the monthly restore test (on command and on schedule), backup
//! compliance against the retention policy in a seeded snapshot history, and `/dr report`
//! posting the review with its file. Against the real binary, the Slack stand-in and moto.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::aws::{rds, seed_database, snapshots_in, SeededDatabase};
use crate::support::flow::*;
use crate::support::*;

fn config(db: &SeededDatabase, extra: &str) -> String {
    format!(
        r#"
[slack]
command_channels = ["C0123OPS"]

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]

[rds]
poll_interval = "1s"
wait_timeout = "1m"

{}
{extra}"#,
        db.config()
    )
}

/// Creates a snapshot in moto's RDS dated `created` (moto stamps snapshots with "now"; the
/// test launcher `scripts/moto-server.py` can date them).
async fn seed_snapshot(
    instance: &str,
    id: &str,
    kind: &str,
    created: chrono::DateTime<chrono::Utc>,
    tags: Value,
) {
    let answer = reqwest::Client::new()
        .post(format!("{}/_drbot/rds/snapshot", moto_endpoint()))
        .json(&json!({"region": std::env::var("AWS_REGION").unwrap_or("us-east-1".into()), "instance": instance, "id": id, "type": kind, "created": created.to_rfc3339(), "tags": tags}))
        .send()
        .await
        .unwrap();
    assert!(
        answer.status().is_success(),
        "{}",
        answer.text().await.unwrap()
    );
}

async fn snapshot_ids(instance: &str) -> Vec<String> {
    snapshots_in("us-east-1", instance)
        .await
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect()
}

async fn instance_tags(id: &str) -> Option<Vec<(String, String)>> {
    let out = rds()
        .await
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .ok()?;
    Some(
        out.db_instances()
            .first()?
            .tag_list()
            .iter()
            .map(|t| (t.key().unwrap_or("").into(), t.value().unwrap_or("").into()))
            .collect(),
    )
}

async fn wait_for_kind(app: &TestApp, kind: &str, secs: u64) -> Value {
    for _ in 0..secs * 10 {
        if let Some(e) = app.events_of_kind(kind).await.into_iter().next() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} event; log: {:#?}", app.events().await);
}

#[tokio::test]
async fn an_officer_approved_restore_test_restores_checks_records_and_deletes_its_instance() {
    let db = seed_database(7).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let app = spawn_app_with(&config(&db, "[drills.restore_test]\nkeep_for = \"1h\"\n")).await;

    let ts = ask(&app, "drill restore-test main --pick latest", REQUESTER).await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(request.contains("*Restore test* of `main`"), "{request}");
    assert!(
        request.contains(&format!(
            "into the drill instance `drbot-drill-{}-",
            db.instance
        )),
        "{request}"
    );
    assert!(request.contains("deleted 1h after its checks"), "{request}");

    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");

    // The evidence: which snapshot, how long, every check.
    let result = wait_for_kind(&app, "drill.restore_test", 10).await;
    let detail = &result["detail"];
    assert_eq!(detail["passed"], true, "{result}");
    assert_eq!(detail["database"], "main");
    let drill = detail["drill_instance"].as_str().unwrap().to_string();
    assert!(
        drill.starts_with(&format!("drbot-drill-{}-", db.instance)),
        "{drill}"
    );
    assert!(detail["restore_seconds"].as_i64().is_some(), "{result}");
    let checks: Vec<&str> = detail["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        checks,
        [
            "status",
            "engine",
            "engine version",
            "storage",
            "encryption"
        ]
    );
    assert!(
        detail["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{result}"
    );
    // The drill instance is tagged as drbot's drill, and the original is untouched.
    let tags = instance_tags(&drill)
        .await
        .expect("the drill instance exists");
    assert!(
        tags.contains(&("drbot:drill".into(), "restore-test".into())),
        "{tags:?}"
    );
    assert!(
        last_update(&app).contains("Restore test of `main` :white_check_mark: *passed*"),
        "{}",
        last_update(&app)
    );

    // Kept for the hour asked, then deleted, and only it.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(app.events_of_kind("drill.deleted").await.is_empty());
    app.advance_clock(Duration::from_secs(3601));
    let deleted = wait_for_kind(&app, "drill.deleted", 15).await;
    assert_eq!(deleted["detail"]["instance"], drill.as_str(), "{deleted}");
    assert_eq!(deleted["detail"]["operation"], "DeleteDBInstance");
    assert!(SeededDatabase::status_of(&drill)
        .await
        .is_none_or(|s| s == "deleting"));
    assert_eq!(
        SeededDatabase::status_of(&db.instance).await.as_deref(),
        Some("available")
    );
    let verify = app.cli(&["audit", "verify"]).await;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[tokio::test]
async fn a_drill_instance_whose_tag_was_removed_is_never_deleted() {
    let db = seed_database(7).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let app = spawn_app_with(&config(&db, "[drills.restore_test]\nkeep_for = \"1h\"\n")).await;
    let done = ask_and_approve(&app, "drill restore-test main").await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    let result = wait_for_kind(&app, "drill.restore_test", 10).await;
    let drill = result["detail"]["drill_instance"]
        .as_str()
        .unwrap()
        .to_string();

    // Someone takes the instance over for other use before drbot's deletion is due.
    let client = rds().await;
    let arn = client
        .describe_db_instances()
        .db_instance_identifier(&drill)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .db_instance_arn()
        .unwrap()
        .to_string();
    client
        .remove_tags_from_resource()
        .resource_name(arn)
        .tag_keys("drbot:drill")
        .send()
        .await
        .unwrap();

    app.advance_clock(Duration::from_secs(3601));
    let refused = wait_for_kind(&app, "drill.delete_refused", 15).await;
    assert_eq!(refused["detail"]["instance"], drill.as_str(), "{refused}");
    assert_eq!(
        SeededDatabase::status_of(&drill).await.as_deref(),
        Some("available")
    );
    assert!(app.events_of_kind("drill.deleted").await.is_empty());
    let warned = app.slack.calls("chat.postMessage").iter().any(|c| {
        c.params["text"]
            .as_str()
            .unwrap_or("")
            .contains("was NOT deleted")
    });
    assert!(warned, "the ops channel is told");
}

#[tokio::test]
async fn the_scheduled_restore_test_runs_without_an_officer_once_across_restarts() {
    let db = seed_database(7).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let mut app = spawn_app_with(&config(
        &db,
        "[drills.restore_test]\ndatabases = [\"main\"]\nevery = \"30d\"\npick = \"random\"\nwindow = \"30d\"\nkeep_for = \"1h\"\n",
    ))
    .await;
    let result = wait_for_kind(&app, "drill.restore_test", 30).await;
    assert_eq!(result["detail"]["scheduled"], true, "{result}");
    assert_eq!(result["detail"]["passed"], true, "{result}");
    assert!(
        app.events_of_kind("approval.requested").await.is_empty(),
        "the configuration approved it"
    );
    let message = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| {
            c.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("requested by drbot's schedule")
        })
        .expect("the request message names the schedule");
    assert_eq!(message.params["channel"], OPS_CHANNEL);
    app.advance_clock(Duration::from_secs(3601));
    wait_for_kind(&app, "drill.deleted", 15).await;

    // A restart a day later does not run it again (`every` is 30 days).
    app.restart().await;
    app.advance_clock(Duration::from_secs(86_400));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.events_of_kind("drill.restore_test").await.len(), 1);
}

#[tokio::test]
async fn retention_gaps_are_found_in_a_snapshot_history_and_enforce_touches_only_drbots_own() {
    let db = seed_database(7).await;
    let now = chrono::Utc::now();
    let day = chrono::Duration::days(1);
    // Automated snapshots for the last six days but one (three days ago is missing)...
    for i in [1, 2, 4, 5, 6] {
        let t = now - day * i;
        seed_snapshot(
            &db.instance,
            &format!("rds:{}-{}", db.instance, t.format("%Y-%m-%d-%H-%M")),
            "automated",
            t,
            json!([]),
        )
        .await;
    }
    // ...drbot's monthly copy from 14 months ago (past retention), someone's old manual
    // snapshot, and one named like drbot's but not tagged so.
    let old_copy = format!("drbot-monthly-{}-old", db.instance);
    let retention_tag = json!([{"Key": "drbot:retention", "Value": "monthly"}]);
    seed_snapshot(
        &db.instance,
        &old_copy,
        "manual",
        now - day * 425,
        retention_tag,
    )
    .await;
    let theirs = format!("{}-before-migration", db.instance);
    seed_snapshot(&db.instance, &theirs, "manual", now - day * 500, json!([])).await;
    let lookalike = format!("drbot-weekly-{}-untagged", db.instance);
    seed_snapshot(
        &db.instance,
        &lookalike,
        "manual",
        now - day * 300,
        json!([]),
    )
    .await;

    let app = spawn_app_with(&config(
        &db,
        "[rds.retention]\ndaily = 7\nweekly = 4\nmonthly = 12\n",
    ))
    .await;
    let reply = app.slash("backups main").reply().await;
    assert!(reply.contains(":warning: *gaps found*"), "{reply}");
    let missing_day = (now - day * 3).format("%Y-%m-%d").to_string();
    assert!(
        reply.contains("*missing*") && reply.contains(&missing_day),
        "{reply}"
    );
    assert!(reply.contains("*at risk*"), "{reply}");
    assert!(reply.contains("--enforce"), "{reply}");
    let checked = wait_for_kind(&app, "backups.checked", 10).await;
    assert_eq!(checked["detail"]["compliant"], false, "{checked}");
    let missing: Vec<&str> = checked["detail"]["daily"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(missing.contains(&missing_day.as_str()), "{checked}");

    // `--enforce` needs an officer: planned, approved, then copies and deletes.
    let ts = ask(&app, "backups main --enforce", REQUESTER).await;
    let plan = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        plan.contains(&format!("delete drbot's own `{old_copy}`")),
        "{plan}"
    );
    assert!(
        !plan.contains(&theirs) && !plan.contains(&lookalike),
        "{plan}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");

    let held = snapshot_ids(&db.instance).await;
    assert!(!held.contains(&old_copy), "{held:?}");
    assert!(
        held.contains(&theirs) && held.contains(&lookalike),
        "only drbot's own copies are deleted: {held:?}"
    );
    let copies: Vec<&String> = held
        .iter()
        .filter(|s| s.starts_with(&format!("drbot-weekly-{}-2", db.instance)))
        .collect();
    assert!(
        !copies.is_empty(),
        "at-risk weekly slots were copied: {held:?}"
    );
    let calls: Vec<String> = app
        .events_of_kind("aws.call")
        .await
        .iter()
        .map(|e| e["detail"]["operation"].as_str().unwrap().to_string())
        .collect();
    assert!(
        calls.contains(&"CopyDBSnapshot".to_string())
            && calls.contains(&"DeleteDBSnapshot".to_string()),
        "{calls:?}"
    );

    // Afterwards the weekly slots that were at risk are held.
    let reply = app.slash("backups main").reply().await;
    assert!(!reply.contains("*at risk*"), "{reply}");
}

#[tokio::test]
async fn backups_enforce_from_a_non_officer_is_only_a_request() {
    let db = seed_database(7).await;
    let app = spawn_app_with(&config(&db, "")).await;
    let help = app.slash("help backups").reply().await;
    assert!(
        help.contains("`--enforce`") && help.contains("needs a security officer's approval"),
        "{help}"
    );
    let reply = app.slash("backups main --enforce").reply().await;
    assert!(
        reply.starts_with("Planning `/dr backups main --enforce`"),
        "{reply}"
    );
    let reply = app.slash("backups nowhere").reply().await;
    assert!(reply.contains("unknown database `nowhere`"), "{reply}");
}

#[tokio::test]
async fn dr_report_posts_the_review_with_restore_tests_and_the_full_report_as_a_file() {
    let db = seed_database(7).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let app = spawn_app_with(&config(&db, "[drills.restore_test]\nkeep_for = \"1h\"\n")).await;
    let done = ask_and_approve(&app, "drill restore-test main").await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    wait_for_kind(&app, "drill.restore_test", 10).await;
    let reply = app.slash("backups main").reply().await;
    assert!(reply.contains("*Backups of `main`*"), "{reply}");
    wait_for_kind(&app, "backups.checked", 10).await;

    let reply = app.slash("report").reply().await;
    assert!(reply.starts_with("Posting the DR review:"), "{reply}");
    let complete = app.slack.wait_for("files.completeUploadExternal", 1).await;
    let comment = complete[0].params["initial_comment"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        comment.contains("Restore tests: 1 of 1 passed (100%)"),
        "{comment}"
    );
    assert_eq!(complete[0].params["channel_id"], OPS_CHANNEL);
    let upload = app.slack.wait_for("upload", 1).await;
    let html = upload[0].params["content"].as_str().unwrap();
    assert!(
        html.contains("<h2>Restore tests</h2>") && html.contains("chart restore-tests"),
        "{html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no links, nothing fetched"
    );

    let bad = app.slash("report last-week").reply().await;
    assert!(
        bad.contains("give `quarter`") && bad.contains("Usage"),
        "{bad}"
    );

    // The CLI's report has the same sections.
    let out = app.cli(&["report", "--format", "md"]).await;
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(md.contains("- **Restore tests:** 1 of 1 passed"), "{md}");
    assert!(
        md.contains("- **Backup compliance:** 0 of 1 database(s) compliant"),
        "{md}"
    );
    let out = app.cli(&["report", "--format", "html"]).await;
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(
        html.contains("class=\"backup-check\"")
            && html.contains("<svg class=\"chart restore-tests\""),
        "{html}"
    );
    // Kept for .ci/run, which renders it in headless Chromium.
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-evidence.html"),
        &html,
    )
    .unwrap();
}

#[tokio::test]
async fn with_a_retention_policy_the_daily_check_runs_at_start_and_posts_gaps() {
    let db = seed_database(1).await;
    let app = spawn_app_with(&config(
        &db,
        "[rds.retention]\ndaily = 7\nweekly = 4\nmonthly = 12\n",
    ))
    .await;
    let checked = wait_for_kind(&app, "backups.checked", 20).await;
    assert_eq!(checked["detail"]["scheduled"], true, "{checked}");
    assert_eq!(checked["detail"]["compliant"], false, "{checked}");
    let posted = app.slack.calls("chat.postMessage").into_iter().find(|c| {
        c.params["text"]
            .as_str()
            .unwrap_or("")
            .starts_with(":calendar: Daily backup check:")
    });
    let posted = posted.expect("the gaps are posted in the ops channel");
    assert_eq!(posted.params["channel"], OPS_CHANNEL);
    assert!(
        posted.params["text"]
            .as_str()
            .unwrap()
            .contains("fewer than the 7 daily"),
        "{posted:?}"
    );
}

#[tokio::test]
async fn an_auditor_gets_one_archive_with_timelines_report_checkpoints_and_a_verified_manifest() {
    let db = seed_database(7).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let app = spawn_app_with(&config(&db, "[drills.restore_test]\nkeep_for = \"1h\"\n")).await;
    let (incident, _) = open_incident(&app, "db-corruption Orders table corrupted --drill").await;
    let done = ask_and_approve(&app, "drill restore-test main").await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    wait_for_kind(&app, "drill.restore_test", 10).await;

    let out = app.dir.path().join("evidence.tar");
    let run = app
        .cli(&["evidence", "export", "--out", out.to_str().unwrap()])
        .await;
    let said = String::from_utf8_lossy(&run.stdout).to_string();
    assert!(
        run.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(said.contains("audit chain intact"), "{said}");

    let unpacked = app.dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let untar = std::process::Command::new("tar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(
        untar.status.success(),
        "{}",
        String::from_utf8_lossy(&untar.stderr)
    );
    let root = std::fs::read_dir(&unpacked)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    for file in [
        "report.html".to_string(),
        "report.md".to_string(),
        "report.json".to_string(),
        format!("timelines/{incident}.md"),
        format!("timelines/{incident}.json"),
        format!("timelines/{incident}.html"),
        "audit-log.json".to_string(),
        "checkpoints.json".to_string(),
        "verification.txt".to_string(),
        "MANIFEST.txt".to_string(),
    ] {
        assert!(
            root.join(&file).is_file(),
            "{file} missing from the archive"
        );
    }
    let report = std::fs::read_to_string(root.join("report.md")).unwrap();
    assert!(
        report.contains("- **Restore tests:** 1 of 1 passed"),
        "{report}"
    );
    let verification = std::fs::read_to_string(root.join("verification.txt")).unwrap();
    assert!(
        verification.starts_with("audit chain intact"),
        "{verification}"
    );
    let checkpoints = std::fs::read_to_string(root.join("checkpoints.json")).unwrap();
    assert!(checkpoints.contains("evidence export"), "{checkpoints}");
    // Every file is as the manifest says (an auditor runs exactly this).
    let check = std::process::Command::new("sha256sum")
        .arg("-c")
        .arg("MANIFEST.txt")
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );

    // Evidence is never overwritten.
    let again = app
        .cli(&["evidence", "export", "--out", out.to_str().unwrap()])
        .await;
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}
