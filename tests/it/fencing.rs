//! The store stalls or drops its connections while replicas work (a Multi-AZ failover takes
//! 60–120 s), and two processes share one SQLite file during a rolling deploy: nothing runs
//! twice, nothing is taken from a replica still doing it, and no message is lost or doubled.

use std::time::Duration;

use crate::support::aws::{seed_service, CountingProxy, SeededService};
use crate::support::flow::*;
use crate::support::stall::StallProxy;
use crate::support::*;

fn rollback_config(svc: &SeededService) -> String {
    format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n\n[ecs]\npoll_interval = \"1s\"\nrollout_timeout = \"10m\"\n\n[regions]\ncall_timeout = \"5m\"\n\n{}",
        svc.config()
    )
}

/// A proxy in front of the PostgreSQL store of the app in `dir`, and the store's URL
/// through it.
async fn store_behind_proxy(dir: &std::path::Path) -> (StallProxy, String) {
    let direct = database_url(dir);
    let target = url::Url::parse(&direct).unwrap();
    let proxy = StallProxy::start(format!(
        "{}:{}",
        target.host_str().unwrap(),
        target.port().unwrap_or(5432)
    ))
    .await;
    let proxied = proxy.through(&direct);
    (proxy, proxied)
}

/// No post was made twice, and the audit chain verifies.
async fn once_and_intact(app: &TestApp) {
    assert_no_post_twice(app);
    let out = app.cli(&["audit", "verify"]).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
}

/// Every post drbot made, as (channel, text): none may appear twice.
fn assert_no_post_twice(app: &TestApp) {
    let mut seen = std::collections::HashSet::new();
    for call in app.slack.calls("chat.postMessage") {
        let key = (
            call.params["channel"].to_string(),
            call.params["text"].to_string(),
        );
        assert!(seen.insert(key.clone()), "posted twice: {key:?}");
    }
}

#[tokio::test]
async fn a_store_stall_longer_than_the_lease_hands_no_running_work_to_another_replica() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL store: this test runs in the PostgreSQL pass");
        return;
    }
    let svc = seed_service(3, 1).await;
    let aws = CountingProxy::start().await;
    let aws_url = aws.url();
    // Three replicas reach PostgreSQL through a proxy that can stall it.
    let dir = tempfile::tempdir().unwrap();
    let (db, proxied) = store_behind_proxy(dir.path()).await;
    let mut a = spawn_app_in(
        dir,
        &rollback_config(&svc),
        &[],
        &[
            ("AWS_ENDPOINT_URL", &aws_url),
            ("DRBOT_DATABASE_URL", &proxied),
        ],
    )
    .await;
    let mut b = a.another_replica().await;
    let mut c = a.another_replica().await;
    // Everyone has held its lease a while.
    a.run_time(5).await;

    // An approved rollback is in flight: its UpdateService waits in AWS.
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    let (entered, in_aws) = tokio::sync::oneshot::channel::<()>();
    aws.before_next("UpdateService", move || async move {
        let _ = entered.send(());
        let _ = held.await;
    });
    let ts = ask(&a, "rollback api", REQUESTER).await;
    react(&a, &ts, "white_check_mark", OFFICER).await;
    tokio::time::timeout(Duration::from_secs(30), in_aws)
        .await
        .expect("the rollback reached AWS")
        .unwrap();

    // The store stops answering for far longer than the lease (3 s), then comes back.
    db.stall();
    a.run_time(20).await;
    db.resume();
    a.run_time(10).await;

    // AWS answers; the rollback finishes where it began.
    release.send(()).unwrap();
    let done = a
        .with_time_running(wait_for_any_event(
            &a,
            &["request.executed", "request.failed", "request.interrupted"],
        ))
        .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    a.run_time(10).await;
    assert_eq!(aws.count("UpdateService"), 1, "the change ran once");
    assert!(
        a.events_of_kind("request.interrupted").await.is_empty(),
        "nobody took over work that was still running"
    );
    for app in [&mut a, &mut b, &mut c] {
        assert!(app.child_alive(), "every replica still runs");
    }
    once_and_intact(&a).await;
}

#[tokio::test]
async fn cut_connections_mid_commit_lose_no_message_and_double_none() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL store: this test runs in the PostgreSQL pass");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (db, proxied) = store_behind_proxy(dir.path()).await;
    let a = spawn_app_in(dir, CONFIG, &[], &[("DRBOT_DATABASE_URL", &proxied)]).await;
    let b = a.another_replica().await;
    let c = a.another_replica().await;
    a.run_time(5).await;

    // Incidents are opened on every replica while the store's connections are cut again
    // and again: each opened incident posts its announcement exactly once.
    let mut opened = 0;
    for (i, app) in [&a, &b, &c, &a, &b, &c].into_iter().enumerate() {
        let reply = app
            .slash(&format!("incident open ddos edge flood {i}"))
            .as_user(REQUESTER)
            .reply()
            .await;
        if !reply.contains("could not record") {
            opened += 1;
        }
        db.cut();
        a.run_time(1).await;
    }
    assert!(opened > 0);
    // Every lost commit is recovered (deadlines included) in drbot's time.
    let slack = a.slack.clone();
    a.run_time_until(|| slack.calls("conversations.create").len() >= opened)
        .await;
    a.run_time(200).await;
    assert_eq!(a.slack.calls("conversations.create").len(), opened);
    // Every queued message went out: none is left pending or sending.
    let mut store = a.db().await;
    let open: i64 = sqlx::query_scalar(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE state IN ('pending', 'sending')",
    )
    .fetch_one(&mut store)
    .await
    .unwrap();
    assert_eq!(open, 0, "messages left unsent");
    once_and_intact(&a).await;
}

#[tokio::test]
async fn a_second_serve_on_the_same_sqlite_store_refuses_to_start() {
    if on_postgres() {
        return;
    }
    let mut a = spawn_app().await;
    a.slash("help").reply().await;
    let second = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["serve", "--config", "drbot.toml"])
        .current_dir(a.dir.path())
        .envs(serve_env(a.dir.path(), &a.slack))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), second)
        .await
        .expect("the second serve refuses at once, instead of serving beside the first")
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another drbot serve holds the store"), "{err}");
    // The first one was left alone: it still answers and records.
    assert!(a.slash("help").reply().await.contains("/dr"));
    assert!(a.child_alive());
}

#[tokio::test]
async fn a_message_left_sending_after_a_lost_commit_is_sent_after_a_deadline() {
    let app = spawn_app().await;
    app.slash("help").reply().await;
    // The state a lost commit leaves: a row `sending` under this live replica, and a later
    // message of the same channel waiting behind it.
    let mut db = app.db().await;
    let replica: String = sqlx::query_scalar("SELECT id FROM replicas")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let now_ms = chrono::Utc::now().timestamp_millis();
    for (text, state, owner) in [
        ("the stuck one", "sending", Some(replica.as_str())),
        ("the next one", "pending", None),
    ] {
        let message = serde_json::json!({"method": "post", "channel": "C0123OPS", "text": text});
        sqlx::query("INSERT INTO outbox (lane, message, state, owner, attempts, not_before, deadline, uncertain, created_at, fence, claimed_at) VALUES ('C0123OPS', $1, $2, $3, 0, 0, $4, 0, $5, 1, $6)")
            .bind(message.to_string())
            .bind(state)
            .bind(owner)
            .bind(now_ms + 3_600_000)
            .bind(chrono::Utc::now().to_rfc3339())
            .bind(now_ms)
            .execute(&mut db)
            .await
            .unwrap();
    }
    let posted = |app: &TestApp, text: &str| {
        app.slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| c.params["text"] == text)
            .count()
    };
    app.run_time(20).await;
    assert_eq!(
        posted(&app, "the next one"),
        0,
        "the channel keeps its order"
    );
    let slack = app.slack.clone();
    app.run_time_until(|| {
        slack
            .calls("chat.postMessage")
            .iter()
            .any(|c| c.params["text"] == "the next one")
    })
    .await;
    app.run_time(5).await;
    assert_eq!(posted(&app, "the stuck one"), 1);
    assert_eq!(posted(&app, "the next one"), 1);
}
