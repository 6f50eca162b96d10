//! Readiness before the disaster: whether each scenario's recovery could run right now.
//! An SRE asks `/dr ready`, drbot checks on its own every 30 minutes (the tests move its
//! clock), copies the newest snapshot to the backup region on schedule, posts each change
//! of state once, and shows it all in its App Home — against moto in two regions.

use std::time::Duration;

use serde_json::{json, Value};

use crate::plan_commands::base;
use crate::support::aws::*;
use crate::support::flow::*;
use crate::support::region::*;
use crate::support::*;

/// `/dr ready <args>` and its answer (inline, or through `response_url` when AWS is slow).
async fn ready(app: &TestApp, args: &str) -> String {
    let before = app.slack.response_posts().len();
    let reply = app.slash(&format!("ready {args}")).reply().await;
    if !reply.starts_with("AWS is slow") {
        return reply;
    }
    for _ in 0..1200 {
        if app.slack.response_posts().len() > before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wait_for_responses(app, before + 1)
        .await
        .pop()
        .unwrap_or_default()
}

/// The ops channel's readiness posts so far.
fn readiness_posts(app: &TestApp) -> Vec<String> {
    app.slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| c.params["channel"] == OPS_CHANNEL)
        .map(|c| c.params["text"].as_str().unwrap_or("").to_string())
        .filter(|t| t.contains("*Readiness:"))
        .collect()
}

/// Waits until the ops channel holds `n` readiness posts (and a moment more, so one too
/// many would show); returns them.
async fn wait_posts(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if readiness_posts(app).len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    readiness_posts(app)
}

/// `readiness.changed` events of `scenario`, oldest first.
async fn changes(app: &TestApp, scenario: &str) -> Vec<Value> {
    app.events_of_kind("readiness.changed")
        .await
        .into_iter()
        .filter(|e| e["detail"]["scenario"] == scenario)
        .collect()
}

/// Waits until `scenario` was recorded in state `to`; returns that change.
async fn wait_change(app: &TestApp, scenario: &str, to: &str) -> Value {
    for _ in 0..300 {
        if let Some(e) = changes(app, scenario)
            .await
            .into_iter()
            .rev()
            .find(|e| e["detail"]["to"] == to)
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{scenario} never became {to}: {:#?}",
        changes(app, scenario).await
    );
}

/// drbot's scheduled copies of `instance` in the backup region.
async fn scheduled_copies(instance: &str) -> Vec<String> {
    snapshots_in(BACKUP, instance)
        .await
        .iter()
        .filter(|s| {
            s.tag_list()
                .iter()
                .any(|t| t.key() == Some("drbot:scheduled-copy") && t.value() == Some("true"))
        })
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect()
}

/// The estate of a region failure with drbot's copy of the snapshot in the backup region.
async fn with_a_copy() -> (Estate, TestApp) {
    let estate = estate(base(), true).await;
    let app = spawn_app_with(&estate.config).await;
    app.slash("snapshot copy main --to-region backup")
        .reply()
        .await;
    wait_for_event(&app, "request.executed").await;
    (estate, app)
}

#[tokio::test]
async fn a_missing_backup_region_copy_makes_region_failure_not_ready_until_the_scheduled_copy() {
    // Nothing copies the nightly snapshot to the backup region yet.
    let estate = estate(base(), true).await;
    let mut app = spawn_app_with(&estate.config).await;

    let answer = ready(&app, "region-failure").await;
    for shown in [
        ":red_circle: *region-failure* — not ready",
        "*backup copy of `main` in us-west-2*: no available snapshot",
        // What it means for the RTO/RPO, and what fixes it.
        "neither the RTO (24h 00m) nor the RPO (1h 00m (last backup)) can be met",
        "`/dr snapshot copy main --to-region backup`",
        "`[rds.copies] databases = [\"main\"]`",
        // The plan's dry run stops at the same place.
        "*dry run of the plan (ungraceful mode)*",
    ] {
        assert!(answer.contains(shown), "{shown} missing from:\n{answer}");
    }
    // What else the plan relies on is there.
    for fine in [
        "backup placement",
        "service `api-dr`",
        "DNS record `app`",
        "cutover parameter",
    ] {
        let line = answer.lines().find(|l| l.contains(fine));
        assert!(line.is_none(), "{fine} should pass: {answer}");
    }
    // The first check is recorded, not posted: it is no change.
    let first = wait_change(&app, "region-failure", "not ready").await;
    assert_eq!(first["detail"]["from"], Value::Null);
    assert!(
        readiness_posts(&app).is_empty(),
        "{:?}",
        readiness_posts(&app)
    );

    // The SRE turns on scheduled copies: the first runs at once, approved by the
    // configuration, and is followed until available in the backup region.
    let config = format!(
        "{}\n[rds.copies]\ndatabases = [\"main\"]\nevery = \"1h\"\n",
        estate.config
    );
    app.restart_with(&config).await;
    let copied = wait_for_event(&app, "request.executed").await;
    assert!(
        copied["text"]
            .as_str()
            .unwrap_or("")
            .contains("is available in us-west-2"),
        "{copied}"
    );
    let copies = scheduled_copies(&estate.db.instance).await;
    assert_eq!(copies.len(), 1, "{copies:?}");

    // Half an hour later (drbot's clock), the scheduled check finds it ready: posted once.
    app.advance_clock(Duration::from_secs(31 * 60));
    let back = wait_change(&app, "region-failure", "ready").await;
    assert_eq!(back["detail"]["from"], "not ready");
    let posts = wait_posts(&app, 1).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains("`region-failure` is now READY* (was not ready)"),
        "{}",
        posts[0]
    );
    // `/dr backups` shows the copy's age against the scenario's RPO.
    let backups = app.slash("backups main").reply().await;
    let backups = if backups.starts_with("AWS is slow") {
        wait_for_responses(&app, 2).await.pop().unwrap()
    } else {
        backups
    };
    assert!(
        backups.contains("*Backup region (us-west-2)*: newest copy")
            && backups.contains("within* the RPO of `region-failure`")
            || backups.contains("within the RPO of `region-failure`"),
        "{backups}"
    );

    // Ten minutes on, someone asks again (still ready: nothing posted).
    app.advance_clock(Duration::from_secs(10 * 60));
    // (drbot reads its clock every 20 ms: a call under way when it jumps would time out.)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = ready(&app, "region-failure").await;
    assert!(again.contains("— ready"), "{again}");
    assert_eq!(wait_posts(&app, 1).await.len(), 1);

    // The report shows the share of the period each scenario was ready.
    // To a few days ahead: drbot's moved clock may have passed midnight.
    let to = (chrono::Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string();
    let out = app.cli(&["report", "--to", &to, "--format", "json"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let shares = report["readiness"].as_array().unwrap();
    let rf = shares
        .iter()
        .find(|s| s["scenario"] == "region-failure")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert!(rf["ready_secs"].as_i64().unwrap() > 0, "{rf}");
    assert!(rf["not_ready_secs"].as_i64().unwrap() > 0, "{rf}");
    let share = rf["share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "{rf}");
    let html = app.cli(&["report", "--to", &to, "--format", "html"]).await;
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(
        html.contains("Share of the period each scenario was ready")
            && html.contains("<svg class=\"chart readiness\""),
        "{html}"
    );

    // An hour after the first copy the schedule comes again; the newest snapshot already
    // has its copy there, so nothing is copied twice (and the copy is kept).
    app.advance_clock(Duration::from_secs(30 * 60));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(scheduled_copies(&estate.db.instance).await, copies);
    let executed = app.events_of_kind("request.executed").await;
    assert_eq!(executed.len(), 1, "{executed:#?}");
}

#[tokio::test]
async fn a_removed_subnet_group_or_dns_record_is_the_named_failing_check_posted_once() {
    let (estate, mut app) = with_a_copy().await;
    let answer = ready(&app, "region-failure").await;
    assert!(
        answer.contains(":large_green_circle: *region-failure* — ready"),
        "{answer}"
    );
    // Checked at start-up before the copy existed, it may just have become ready: that
    // post is let through the outbox first.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let before = readiness_posts(&app).len();

    // Someone deletes the backup region's subnet group and the application's record.
    let group = estate
        .config
        .split("subnet_group = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let subnets: Vec<String> = rds_in(BACKUP)
        .await
        .describe_db_subnet_groups()
        .db_subnet_group_name(&group)
        .send()
        .await
        .unwrap()
        .db_subnet_groups()[0]
        .subnets()
        .iter()
        .filter_map(|s| s.subnet_identifier().map(str::to_string))
        .collect();
    rds_in(BACKUP)
        .await
        .delete_db_subnet_group()
        .db_subnet_group_name(&group)
        .send()
        .await
        .unwrap();
    delete_cname(
        &estate.zone,
        &estate.record,
        "primary-alb.us-east-1.elb.amazonaws.com",
    )
    .await;

    let answer = ready(&app, "region-failure").await;
    for shown in [
        ":red_circle: *region-failure* — not ready",
        &format!("*backup placement of `main` in us-west-2*: DB subnet group `{group}` does not exist in us-west-2"),
        &format!("fix: create DB subnet group `{group}` in us-west-2"),
        "*DNS record `app`*:",
        "does not exist in zone",
        "users cannot be switched to the backup region",
    ] {
        assert!(answer.contains(shown), "{shown} missing from:\n{answer}");
    }
    let posts = wait_posts(&app, before + 1).await[before..].to_vec();
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert!(
        posts[0].contains("`region-failure` is now NOT READY* (was ready)")
            && posts[0].contains("backup placement of `main`")
            && posts[0].contains("DNS record `app`"),
        "{}",
        posts[0]
    );

    // Unchanged: asked again, after a restart, and by the schedule — never posted again.
    ready(&app, "region-failure").await;
    app.restart().await;
    ready(&app, "").await;
    app.advance_clock(Duration::from_secs(31 * 60));
    tokio::time::sleep(Duration::from_secs(3)).await;
    if on_postgres() {
        let other = app.another_replica().await;
        let again = other.slash("ready region-failure").reply().await;
        assert!(!again.is_empty());
    }
    assert_eq!(
        readiness_posts(&app).len(),
        before + 1,
        "{:?}",
        readiness_posts(&app)
    );
    let down: Vec<Value> = changes(&app, "region-failure")
        .await
        .into_iter()
        .filter(|e| e["detail"]["to"] == "not ready" && e["detail"]["from"] == "ready")
        .collect();
    assert_eq!(down.len(), 1, "{down:#?}");

    // Put back, it is ready again: one more post.
    rds_in(BACKUP)
        .await
        .create_db_subnet_group()
        .db_subnet_group_name(&group)
        .db_subnet_group_description("private subnets, put back")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .unwrap();
    set_cname(
        &estate.zone,
        &estate.record,
        "primary-alb.us-east-1.elb.amazonaws.com",
    )
    .await;
    let answer = ready(&app, "region-failure").await;
    assert!(answer.contains("— ready"), "{answer}");
    let posts = wait_posts(&app, before + 2).await[before..].to_vec();
    assert_eq!(posts.len(), 2, "{posts:?}");
    assert!(
        posts[1].contains("is now READY* (was not ready)"),
        "{}",
        posts[1]
    );
    // The gauge reads the recorded state.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("drbot_scenario_ready{scenario=\"region-failure\"} 1"),
        "{metrics}"
    );
}

/// A region that does not answer makes its checks unknown within the call timeout; the
/// other scenarios' checks are not held up.
#[tokio::test]
async fn a_dark_backup_region_makes_its_checks_unknown_not_stalled() {
    let estate = estate(base(), true).await;
    let proxy = CountingProxy::start().await;
    let config = format!(
        "{}\n",
        estate
            .config
            .replace("[regions]\n", "[regions]\ncall_timeout = \"2s\"\n")
    );
    let app = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;
    proxy.darken(BACKUP);
    let started = std::time::Instant::now();
    let answer = ready(&app, "").await;
    let took = started.elapsed();
    assert!(
        answer.contains("*region-failure* — ")
            && answer.contains(":grey_question: *backup copy of `main` in us-west-2*")
            && answer.contains("did not answer"),
        "{answer}"
    );
    // The primary region's scenarios are checked all the same.
    assert!(answer.contains("*code-corruption* — "), "{answer}");
    assert!(took < Duration::from_secs(40), "took {took:?}");
}

#[tokio::test]
async fn the_app_home_shows_readiness_and_pending_approvals_with_buttons_through_the_gate() {
    let (estate, app) = with_a_copy().await;
    ready(&app, "").await;
    // An officer opens drbot's Home tab.
    let opened = json!({"type": "app_home_opened", "user": OFFICER, "channel": "D0OFFICER1", "tab": "home", "event_ts": "1764300000.000100"});
    assert_eq!(app.event("EvHOME0001", opened, None).await.status(), 200);
    let published = app.slack.wait_for("views.publish", 1).await;
    assert_eq!(published[0].params["user_id"], OFFICER);
    let view = published[0].params["view"].to_string();
    for section in [
        "Readiness",
        "region-failure",
        "Open incidents",
        "Pending approvals",
        "Backups",
        "backup copy of `main` in us-west-2",
    ] {
        assert!(view.contains(section), "{section} missing from {view}");
    }

    // A request is opened: the officer's Home is published again with it and its buttons.
    let ts = ask(&app, "scale api-dr --desired 2", REQUESTER).await;
    let action = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .split("A-")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>();
    // (Published again at most every 10 s per user.)
    let mut home = String::new();
    for _ in 0..400 {
        home = app
            .slack
            .calls("views.publish")
            .last()
            .map(|c| c.params["view"].to_string())
            .unwrap_or_default();
        if home.contains("drbot_home_approve") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        home.contains(&format!("A-{action}")) && home.contains("drbot_home_approve"),
        "{home}"
    );
    assert!(home.contains("/dr scale api-dr --desired 2"), "{home}");

    // The requester's own Home lists it without buttons; a forged click is refused by the gate.
    let opened = json!({"type": "app_home_opened", "user": REQUESTER, "channel": "D0ONCALL1", "tab": "home", "event_ts": "1764300000.000200"});
    app.event("EvHOME0002", opened, None).await;
    let mut mine = String::new();
    for _ in 0..200 {
        if let Some(c) = app
            .slack
            .calls("views.publish")
            .into_iter()
            .rev()
            .find(|c| c.params["user_id"] == REQUESTER)
        {
            mine = c.params["view"].to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mine.contains(&format!("A-{action}")), "{mine}");
    assert!(!mine.contains("drbot_home_approve"), "{mine}");
    assert_eq!(
        home_click(&app, &action, "drbot_home_approve", REQUESTER).await,
        200
    );
    wait_for_event(&app, "approval.ignored").await;
    assert!(app.events_of_kind("approval.approved").await.is_empty());

    // The officer's click approves it exactly as the ✅ on the message would.
    assert_eq!(
        home_click(&app, &action, "drbot_home_approve", OFFICER).await,
        200
    );
    assert_eq!(
        home_click(&app, &action, "drbot_home_approve", OFFICER).await,
        200
    );
    wait_for_event(&app, "request.executed").await;
    wait_for_event(&app, "approval.approved").await;
    let approved = app.events_of_kind("approval.approved").await;
    assert_eq!(approved.len(), 1, "{approved:#?}");
    let started: Vec<Value> = app
        .events_of_kind("request.started")
        .await
        .into_iter()
        .filter(|e| {
            e["text"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("A-{action}"))
        })
        .collect();
    assert!(started.len() <= 1, "{started:#?}");
    assert_eq!(estate.dr.desired_count_in(BACKUP).await, 2);
}

/// A click on an App Home button, as Slack posts it: the container is the view, the value
/// the request's id.
async fn home_click(app: &TestApp, id: &str, action_id: &str, user: &str) -> u16 {
    let mut payload = button_click("", action_id, user);
    payload["container"] = json!({"type": "view", "view_id": "V0HOME"});
    payload["view"] = json!({"id": "V0HOME", "team_id": "T0DRBOT", "type": "home", "blocks": [], "private_metadata": "", "callback_id": "", "state": {"values": {}}, "hash": "1764300000.abc", "app_id": "A0DRBOT", "bot_id": "B0DRBOT", "external_id": ""});
    payload["actions"][0]["value"] = json!(id);
    payload["actions"][0]["action_ts"] = json!(format!("{}.{}", now_unix(), signing_ts()));
    interact(app, &payload).await.status().as_u16()
}

/// The schedule copies only a snapshot not yet copied, and deletes only its own copies past
/// `keep` — never the newest, never one not tagged as its own.
#[tokio::test]
async fn scheduled_copies_past_keep_are_deleted_only_when_they_are_drbots_own() {
    let estate = estate(base(), true).await;
    let instance = estate.db.instance.clone();
    let config = format!(
        "{}\n[rds.copies]\ndatabases = [\"main\"]\nevery = \"1h\"\nkeep = \"1h\"\n",
        estate.config
    );
    let app = spawn_app_with(&config).await;
    wait_for_event(&app, "request.executed").await;
    let first = scheduled_copies(&instance).await;
    assert_eq!(first.len(), 1, "{first:?}");

    // Someone else's snapshot in the backup region, named as drbot names its copies.
    let nightly = rds()
        .await
        .describe_db_snapshots()
        .db_snapshot_identifier(format!("{instance}-nightly"))
        .send()
        .await
        .unwrap()
        .db_snapshots()[0]
        .db_snapshot_arn()
        .unwrap()
        .to_string();
    let foreign = format!("drbot-{instance}-19990101000000");
    rds_in(BACKUP)
        .await
        .copy_db_snapshot()
        .source_db_snapshot_identifier(&nightly)
        .target_db_snapshot_identifier(&foreign)
        .send()
        .await
        .unwrap();

    // A new snapshot in the primary region: the next schedule copies it.
    estate.db.snapshot(&format!("{instance}-second")).await;
    app.advance_clock(Duration::from_secs(61 * 60));
    for _ in 0..300 {
        if app.events_of_kind("request.executed").await.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let both = scheduled_copies(&instance).await;
    assert_eq!(both.len(), 2, "{both:?}");

    // The schedule after that: the first copy is past `keep` and not the newest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.advance_clock(Duration::from_secs(61 * 60));
    let deleted = wait_for_event(&app, "copy.deleted").await;
    assert!(
        deleted["text"].as_str().unwrap().contains(&first[0]),
        "{deleted}"
    );
    let left = scheduled_copies(&instance).await;
    assert_eq!(left.len(), 1, "{left:?}");
    assert_ne!(left[0], first[0]);
    // The foreign one (untagged) is still there; nothing else was deleted.
    let held: Vec<String> = rds_in(BACKUP)
        .await
        .describe_db_snapshots()
        .db_snapshot_identifier(&foreign)
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_string))
        .collect();
    assert_eq!(held, vec![foreign]);
    assert_eq!(app.events_of_kind("copy.deleted").await.len(), 1);
    // Three schedules, two snapshots: two copies made, none twice.
    assert_eq!(app.events_of_kind("request.executed").await.len(), 2);
}

/// The backup placement's security groups are read from EC2 (signed with the SDK's SigV4):
/// one that does not exist there is named.
#[tokio::test]
async fn a_backup_security_group_that_does_not_exist_is_named() {
    let estate = estate(base(), true).await;
    let group = estate
        .config
        .split("security_groups = [\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_string();
    let app = spawn_app_with(&estate.config.replace(
        &format!("security_groups = [\"{group}\"]"),
        &format!("security_groups = [\"{group}\", \"sg-0doesnotexist\"]"),
    ))
    .await;
    let answer = ready(&app, "region-failure").await;
    assert!(
        answer.contains("*backup placement of `main` in us-west-2*: security group(s) `sg-0doesnotexist` do not exist in us-west-2"),
        "{answer}"
    );
    assert!(!answer.contains(&format!("`{group}` do")), "{answer}");
}
