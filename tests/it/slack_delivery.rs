//! Slack as an unreliable peer: a 429 with `Retry-After`, 5xx answers and a method that
//! hangs must not lose an approval request or leave drbot waiting for ever.

use std::time::Duration;

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
    let reply = app.slash("rollback api").as_user(REQUESTER).reply().await;
    assert!(reply.starts_with("Planning"), "{reply}");
    app.slack.wait_for("chat.postMessage", 1).await;
    // Before a second of drbot's time has passed, it does not try again...
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        app.slack.calls("chat.postMessage").len(),
        1,
        "Retry-After was not honoured"
    );
    // ...and once it has, it does.
    app.advance_clock(Duration::from_millis(1000));
    let ts = ask_posted(&app).await;
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
    // The waits before each retry pass in drbot's time.
    let ts = app
        .with_time_running(ask(&app, "rollback api", REQUESTER))
        .await;
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
    // drbot adds its reactions after storing the request; the first one hangs, is given up
    // after 10 s (of drbot's time, moved here) and tried again, and the request is fully
    // posted.
    let reply = app.slash("rollback api").as_user(REQUESTER).reply().await;
    assert!(reply.starts_with("Planning"), "{reply}");
    let hung = app.slack.wait_for("reactions.add", 1).await[0]
        .params
        .clone();
    assert!(
        app.run_time_until(|| app
            .slack
            .calls("reactions.add")
            .iter()
            .any(|c| c.params == hung && c.answer["ok"] == true))
            .await,
        "the hung reaction was not tried again: {:?}",
        app.slack.calls("reactions.add")
    );
    let ts = ask_posted(&app).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
}

/// The approval request posts that Slack accepted.
fn approval_posts(app: &TestApp) -> Vec<crate::support::standin::Call> {
    app.slack
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| {
            c.answer["ok"] == true
                && c.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("approval needed")
        })
        .collect()
}

#[tokio::test]
async fn messages_still_queued_when_drbot_is_killed_are_sent_once_after_the_restart() {
    let svc = seed_service(2, 1).await;
    let mut app = spawn_app_with(&config(&svc)).await;
    // Slack is down: the approval request stays in the outbox, retried with backoff.
    app.slack.fail("chat.postMessage", Failure::ServerError);
    let reply = app.slash("rollback api").as_user(REQUESTER).reply().await;
    assert!(reply.starts_with("Planning"), "{reply}");
    app.slack.wait_for("chat.postMessage", 2).await;
    app.kill().await;
    app.slack.recover("chat.postMessage");
    app.restart().await;
    let ts = ask_posted(&app).await;
    assert_eq!(approval_posts(&app).len(), 1, "posted once");
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
}

/// Waits for the approval request to be posted and fully reacted to; returns its ts.
async fn ask_posted(app: &TestApp) -> String {
    for _ in 0..400 {
        if let Some(post) = approval_posts(app).first() {
            let ts = post.answer["ts"].as_str().unwrap().to_string();
            let added = app
                .slack
                .calls("reactions.add")
                .iter()
                .filter(|c| c.params["timestamp"] == ts.as_str() && c.answer["ok"] == true)
                .count();
            if added >= app.settings_reaction_count() {
                return ts;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "the approval request was not posted: {:?}",
        app.slack.all_calls()
    );
}

#[tokio::test]
async fn a_post_whose_answer_was_lost_is_found_in_the_channel_and_not_posted_again() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    // Slack posts the request, but its answer never arrives (drbot gives up after 10 s of
    // its time, moved here).
    app.slack
        .fail_times("chat.postMessage", Failure::AnswerLost, 1);
    let reply = app.slash("rollback api").as_user(REQUESTER).reply().await;
    assert!(reply.starts_with("Planning"), "{reply}");
    app.slack.wait_for("chat.postMessage", 1).await;
    app.run_time_until(|| !app.slack.calls("conversations.history").is_empty())
        .await;
    let ts = ask_posted(&app).await;
    assert!(
        !app.slack.calls("conversations.history").is_empty(),
        "drbot looked for its post before posting again"
    );
    assert_eq!(approval_posts(&app).len(), 1, "posted once, not twice");
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
}

#[tokio::test]
async fn a_message_slack_refuses_is_recorded_as_failed_counted_and_shown_in_status() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    app.slack
        .fail("chat.postMessage", Failure::NotOk("channel_not_found"));
    app.slash("rollback api").as_user(REQUESTER).reply().await;
    let failed = wait_for_event(&app, "slack.undelivered").await;
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("channel_not_found"),
        "{failed}"
    );
    // The requester is told, through the command's response_url.
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("A-1 was planned but could not be posted here"),
        "{answers:?}"
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("drbot_slack_undelivered_total{method=\"chat.postMessage\"} 1"),
        "{metrics}"
    );
    app.slack.recover("chat.postMessage");
    let status = app.slash("status").reply().await;
    assert!(status.contains("could not send"), "{status}");
    assert!(status.contains("channel_not_found"), "{status}");
}

#[tokio::test]
async fn a_thread_reply_whose_answer_was_lost_is_found_in_the_thread_and_not_posted_again() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    // The first post after the approval is the note in the request's thread: Slack makes
    // it, but its answer never arrives.
    app.slack
        .fail_times("chat.postMessage", Failure::AnswerLost, 1);
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    // The lost answer is given up after 10 s of drbot's time, moved here.
    app.run_time_until(|| !app.slack.calls("conversations.replies").is_empty())
        .await;
    let mut notes = Vec::new();
    for _ in 0..400 {
        notes = app
            .slack
            .calls("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.answer["ok"] == true
                    && c.params["thread_ts"] == ts.as_str()
                    && c.params["text"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("Approved.")
            })
            .collect();
        if !app.slack.calls("conversations.replies").is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let looked = app.slack.calls("conversations.replies");
    assert!(
        !looked.is_empty(),
        "drbot looked in the thread before posting again"
    );
    assert_eq!(looked[0].params["include_all_metadata"], "true");
    assert_eq!(notes.len(), 1, "the note is in the thread once");
}

#[tokio::test]
async fn another_apps_post_carrying_drbots_marker_is_never_taken_for_the_request_message() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc)).await;
    // Another app in the channel planted messages carrying drbot's outbox marker for every
    // row id drbot might use; then drbot's post of the request loses its answer.
    app.slack.plant_foreign_posts(OPS_CHANNEL, 1..=200);
    app.slack
        .fail_times("chat.postMessage", Failure::AnswerLost, 1);
    app.slash("rollback api").as_user(REQUESTER).reply().await;
    app.slack.wait_for("chat.postMessage", 1).await;
    app.run_time_until(|| !app.slack.calls("conversations.history").is_empty())
        .await;
    let ts = ask_posted(&app).await;
    assert!(
        !ts.starts_with("1700000000."),
        "the request is drbot's own post, not the planted one: {ts}"
    );
    assert_eq!(approval_posts(&app).len(), 1, "found, not posted twice");
    assert!(
        app.slack
            .calls("reactions.add")
            .iter()
            .all(|c| !c.params["timestamp"]
                .as_str()
                .unwrap_or("")
                .starts_with("1700000000.")),
        "drbot marked a planted message as its request"
    );
    // An officer's ✅ on a planted message approves nothing.
    react(&app, "1700000000.900001", "white_check_mark", OFFICER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
}
