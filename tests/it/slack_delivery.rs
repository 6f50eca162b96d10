//! Slack as an unreliable peer: a 429 with `Retry-After`, 5xx answers and a method that
//! hangs must not lose an approval request or leave drbot waiting for ever.

use std::time::{Duration, Instant};

use crate::support::aws::seed_service;
use crate::support::flow::*;
use crate::support::standin::Failure;
use crate::support::*;

fn config(svc: &crate::support::aws::SeededService) -> String {
    format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n[ecs]\npoll_interval = \"1s\"\n{}",
        svc.config()
    )
}

#[tokio::test]
async fn a_429_on_the_approval_request_waits_retry_after_and_the_request_can_be_approved() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    app.slack.fail_times(
        "chat.postMessage",
        Failure::RateLimited { retry_after: 1 },
        1,
    );
    let started = Instant::now();
    let ts = ask(&app, "rollback api", REQUESTER).await;
    let waited = started.elapsed();
    eprintln!("429 → posted after {} ms", waited.as_millis());
    assert!(
        waited >= Duration::from_millis(900),
        "Retry-After was not honoured"
    );
    let posts = app.slack.calls("chat.postMessage");
    assert_eq!(
        posts[0].answer,
        serde_json::Value::Null,
        "the first try was the 429"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("drbot_slack_rate_limited_total{method=\"chat.postMessage\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn two_server_errors_in_a_row_are_retried_and_nothing_is_posted_twice() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    app.slack
        .fail_times("chat.postMessage", Failure::ServerError, 2);
    let ts = ask(&app, "rollback api", REQUESTER).await;
    let posted: Vec<_> = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| c.answer["ok"] == true)
        .collect();
    assert_eq!(posted.len(), 1, "one approval request, posted once");
    assert_eq!(posted[0].answer["ts"], ts.as_str());
}

#[tokio::test]
async fn a_hanging_slack_method_times_out_and_is_retried() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    app.slack.fail_times("reactions.add", Failure::Hang, 1);
    // drbot adds its reactions after storing the request; the first one hangs, times out
    // (10 s) and is tried again, and the request is fully posted.
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
}
