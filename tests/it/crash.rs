//! kill -9 everywhere: each approved action is run many times and drbot is killed at a
//! different point each time — when the re-check starts, while the change is on its way to
//! AWS (AWS does it, drbot never hears), right after AWS answered, while following, and at
//! random moments — then restarted. After each run the invariants hold: at most one change
//! reached AWS per request, every change drbot recorded carries its AWS request id, a change
//! AWS made but drbot never recorded belongs to a request marked interrupted, no request is
//! left `executing`, and `audit verify` is intact.

use std::time::Duration;

use serde_json::Value;
use sqlx::Row;

use crate::support::aws::{
    seed_database, seed_ip_sets, seed_service, CountingProxy, SeededDatabase,
};
use crate::support::flow::*;
use crate::support::*;

const BASE: &str = r#"
[slack]
command_channels = ["C0123OPS"]

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]

[ecs]
poll_interval = "1s"
rollout_timeout = "10m"

[rds]
poll_interval = "1s"
wait_timeout = "1m"

[aws]
call_timeout = "3s"
"#;

/// Where drbot is killed.
#[derive(Debug, Clone, Copy)]
enum Point {
    /// When the re-check's first read leaves drbot: before any change.
    BeforeChange,
    /// While the change is on its way: AWS carries it out, drbot never hears back.
    DuringChange,
    /// Right after AWS answered the change, before drbot reads the answer.
    AfterChange,
    /// At the first poll of the follow loop, after the change was recorded.
    DuringFollow,
    /// After `ms` milliseconds from the approval.
    At(u64),
}

struct Action {
    /// The command, and the resources' configuration.
    command: String,
    config: String,
    /// The re-check's first read, the change, and the follow loop's read.
    first_read: &'static str,
    change: &'static str,
    follow_read: Option<&'static str>,
}

async fn kill(pid: u32) {
    // SAFETY: sends SIGKILL to the drbot child process this test started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// Waits until the request has ended or been marked interrupted (a job queued again at
/// start-up may still be planning it).
async fn settled(app: &TestApp) {
    wait_for_any_event(
        app,
        &[
            "request.executed",
            "request.failed",
            "request.void",
            "request.interrupted",
        ],
    )
    .await;
}

async fn executing(app: &TestApp) -> i64 {
    let mut db = app.db().await;
    sqlx::query("SELECT COUNT(*) FROM requests WHERE state = 'executing'")
        .fetch_one(&mut db)
        .await
        .unwrap()
        .get::<i64, _>(0)
}

/// One run: ask, approve, kill at `point`, restart, wait for recovery, check.
async fn run_once(action: &Action, point: Point) -> String {
    let proxy = CountingProxy::start().await;
    let mut app = spawn_app_custom(
        &format!("{BASE}\n{}", action.config),
        &[],
        &[("AWS_ENDPOINT_URL", &proxy.url())],
    )
    .await;
    let ts = ask(&app, &action.command, REQUESTER).await;
    let pid = app.pid().unwrap();
    match point {
        Point::BeforeChange => proxy.before_next(action.first_read, move || kill(pid)),
        Point::DuringChange => proxy.before_next(action.change, move || kill(pid)),
        Point::AfterChange => proxy.after_next(action.change, move || kill(pid)),
        Point::DuringFollow | Point::At(_) => {}
    }
    react(&app, &ts, "white_check_mark", OFFICER).await;
    match point {
        Point::DuringFollow => {
            wait_for_event(&app, "aws.call").await;
            if let Some(read) = action.follow_read {
                proxy.before_next(read, move || kill(pid));
                app.wait_exit(Duration::from_secs(3)).await;
            }
            kill(pid).await;
        }
        Point::At(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            kill(pid).await;
        }
        _ => {
            // The hook kills it; give it the time to get there.
            for _ in 0..100 {
                if proxy.count(action.change) > 0 || proxy.count(action.first_read) > 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            app.wait_exit(Duration::from_millis(300)).await;
            kill(pid).await;
        }
    }
    app.restart().await;

    // Recovery: nothing stays executing.
    let mut left = -1;
    for _ in 0..100 {
        left = executing(&app).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = format!("{:?} on `{}`", point, action.command);
    assert_eq!(
        left, 0,
        "{log}: a request is still executing after recovery"
    );
    settled(&app).await;

    // At most one change reached AWS.
    let changes = proxy.forwarded(action.change);
    assert!(
        changes <= 1,
        "{log}: {changes} × {} reached AWS",
        action.change
    );

    // Every recorded change carries its AWS request id; an unrecorded change that AWS
    // made belongs to an interrupted request.
    let events = app.events().await;
    let calls: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "aws.call" && e["detail"]["operation"] == action.change)
        .collect();
    for call in &calls {
        let id = call["detail"]["aws_request_id"].as_str().unwrap_or("");
        assert!(!id.is_empty() && id != "unknown", "{log}: {call}");
    }
    let interrupted = events.iter().any(|e| e["kind"] == "request.interrupted");
    let ended = events.iter().any(|e| {
        matches!(
            e["kind"].as_str(),
            Some("request.executed" | "request.failed" | "request.void")
        )
    });
    if changes == 1 && calls.is_empty() {
        assert!(
            interrupted,
            "{log}: AWS made the change, drbot has no record and no interruption"
        );
    }
    assert!(
        interrupted || ended,
        "{log}: the request neither ended nor was interrupted"
    );
    // A killed execution is never re-run by itself.
    assert!(
        !(interrupted && calls.len() > 1),
        "{log}: re-run after the crash"
    );

    let verify = app.cli(&["audit", "verify"]).await;
    assert!(
        verify.status.success(),
        "{log}: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    format!(
        "{log}: {changes} change(s) reached AWS, {} recorded, {}",
        calls.len(),
        if interrupted { "interrupted" } else { "ended" }
    )
}

/// The fixed points, and moments spread over the first 1.5 s after the approval (a fixed
/// sequence, so a failure can be run again exactly).
const POINTS: [Point; 9] = [
    Point::BeforeChange,
    Point::DuringChange,
    Point::AfterChange,
    Point::DuringFollow,
    Point::At(40),
    Point::At(150),
    Point::At(420),
    Point::At(700),
    Point::At(1300),
];

#[tokio::test]
async fn a_rollback_killed_at_every_step_runs_at_most_once_and_is_accounted_for() {
    for point in POINTS {
        let svc = seed_service(3, 1).await;
        let action = Action {
            command: "rollback api".into(),
            config: svc.config(),
            first_read: "DescribeServices",
            change: "UpdateService",
            follow_read: Some("DescribeServices"),
        };
        eprintln!("{}", run_once(&action, point).await);
    }
}

#[tokio::test]
async fn an_ip_block_killed_at_every_step_runs_at_most_once_and_is_accounted_for() {
    for point in POINTS {
        let sets = seed_ip_sets(false, vec![]).await;
        let action = Action {
            command: "block-ip 198.51.100.7".into(),
            config: sets.config(),
            first_read: "GetIPSet",
            change: "UpdateIPSet",
            follow_read: None,
        };
        eprintln!("{}", run_once(&action, point).await);
    }
}

#[tokio::test]
async fn a_restore_killed_at_every_step_runs_at_most_once_and_is_accounted_for() {
    for point in POINTS {
        let db = seed_database(1).await;
        db.snapshot(&format!("{}-nightly", db.instance)).await;
        let new = format!("{}-rst", db.instance);
        let action = Action {
            command: format!("restore main --snapshot {}-nightly --as {new}", db.instance),
            config: db.config(),
            first_read: "DescribeDBInstances",
            change: "RestoreDBInstanceFromDBSnapshot",
            follow_read: Some("DescribeDBInstances"),
        };
        eprintln!("{}", run_once(&action, point).await);
        // At most one new instance, whatever happened.
        let made = SeededDatabase::status_of(&new).await.is_some();
        eprintln!("  new instance exists: {made}");
    }
}

#[tokio::test]
async fn a_snapshot_killed_at_every_step_runs_at_most_once_and_is_accounted_for() {
    for point in POINTS {
        let db = seed_database(1).await;
        let proxy_note = "snapshot needs no approval: killed after it was asked";
        let action = Action {
            command: "snapshot main".into(),
            config: db.config(),
            first_read: "DescribeDBInstances",
            change: "CreateDBSnapshot",
            follow_read: Some("DescribeDBSnapshots"),
        };
        eprintln!("{} ({proxy_note})", run_snapshot(&action, point).await);
    }
}

/// `snapshot` runs without approval: the same run, asked with a slash command only.
async fn run_snapshot(action: &Action, point: Point) -> String {
    let proxy = CountingProxy::start().await;
    let mut app = spawn_app_custom(
        &format!("{BASE}\n{}", action.config),
        &[],
        &[("AWS_ENDPOINT_URL", &proxy.url())],
    )
    .await;
    let pid = app.pid().unwrap();
    match point {
        // Planning reads the instance first, then the execution's re-check reads it again.
        Point::BeforeChange => proxy.after_next(action.first_read, move || kill(pid)),
        Point::DuringChange => proxy.before_next(action.change, move || kill(pid)),
        Point::AfterChange => proxy.after_next(action.change, move || kill(pid)),
        _ => {}
    }
    app.slash(&action.command).reply().await;
    match point {
        Point::DuringFollow => {
            wait_for_event(&app, "aws.call").await;
            kill(pid).await;
        }
        Point::At(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            kill(pid).await;
        }
        _ => {
            // The hook kills it; give it the time to get there.
            app.wait_exit(Duration::from_millis(1500)).await;
            kill(pid).await;
        }
    }
    app.restart().await;
    let mut left = -1;
    for _ in 0..100 {
        left = executing(&app).await;
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = format!("{:?} on `{}`", point, action.command);
    assert_eq!(left, 0, "{log}: still executing");
    settled(&app).await;
    let changes = proxy.forwarded(action.change);
    assert!(changes <= 1, "{log}: {changes} snapshots requested");
    let events = app.events().await;
    let calls = events
        .iter()
        .filter(|e| e["kind"] == "aws.call" && e["detail"]["operation"] == action.change)
        .count();
    if changes == 1 && calls == 0 {
        assert!(
            events.iter().any(|e| e["kind"] == "request.interrupted"),
            "{log}: unrecorded snapshot without an interruption"
        );
    }
    let verify = app.cli(&["audit", "verify"]).await;
    assert!(verify.status.success(), "{log}");
    format!("{log}: {changes} change(s) reached AWS, {calls} recorded")
}
