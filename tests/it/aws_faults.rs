//! AWS in a bad hour, at a proxy in front of the emulator: throttling and 5xx on the
//! changes and on the re-check reads, a call that never answers, a connection reset after
//! the change was made. drbot retries only what AWS did not carry out (throttling), never
//! sends a change twice, and says what happened: "executed", "failed: …" (nothing was
//! changed), or "outcome unknown — check AWS: …" with what to look at.

use serde_json::Value;

use crate::support::aws::{seed_database, seed_ip_sets, seed_service, CountingProxy, Fault};
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
call_timeout = "30s"
"#;

async fn app_behind(proxy: &CountingProxy, resources: &str) -> TestApp {
    spawn_app_custom(
        &format!("{BASE}\n{resources}"),
        &[],
        &[("AWS_ENDPOINT_URL", &proxy.url())],
    )
    .await
}

/// How the request ended, with drbot's time running fast meanwhile: the waits between
/// throttled tries, the SDK's retry backoff and the call timeout are timers on its clock.
async fn ended(app: &TestApp) -> Value {
    app.with_time_running(wait_for_any_event(
        app,
        &["request.executed", "request.failed", "request.void"],
    ))
    .await
}

#[tokio::test]
async fn a_throttled_rollback_is_tried_again_and_executed_once() {
    let svc = seed_service(3, 1).await;
    let proxy = CountingProxy::start().await;
    let app = app_behind(&proxy, &svc.config()).await;
    // The re-check's reads and the change itself are throttled twice each.
    proxy.fail("DescribeServices", Fault::Throttle, 2);
    let ts = app
        .with_time_running(ask(&app, "rollback api", REQUESTER))
        .await;
    proxy.fail("UpdateService", Fault::Throttle, 2);
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = ended(&app).await;
    assert_eq!(end["kind"], "request.executed", "{end}");
    assert_eq!(
        proxy.count("UpdateService"),
        3,
        "two throttled tries, then the one that went through"
    );
    assert_eq!(
        proxy.forwarded("UpdateService"),
        1,
        "AWS carried the change out once"
    );
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
}

#[tokio::test]
async fn a_change_throttled_every_time_fails_saying_nothing_was_changed() {
    let db = seed_database(1).await;
    let proxy = CountingProxy::start().await;
    let app = app_behind(&proxy, &db.config()).await;
    proxy.fail("CreateDBSnapshot", Fault::Throttle, 100);
    app.slash("snapshot main").reply().await;
    let end = ended(&app).await;
    assert_eq!(end["kind"], "request.failed", "{end}");
    let text = end["text"].as_str().unwrap();
    assert!(
        text.contains("failed:")
            && text.contains("throttled 5 times")
            && text.contains("nothing was changed"),
        "{text}"
    );
    assert_eq!(proxy.count("CreateDBSnapshot"), 5, "bounded: five tries");
    assert_eq!(proxy.forwarded("CreateDBSnapshot"), 0);
}

#[tokio::test]
async fn a_5xx_on_the_change_is_not_sent_again_and_the_outcome_is_unknown() {
    let svc = seed_service(3, 1).await;
    let proxy = CountingProxy::start().await;
    let app = app_behind(&proxy, &svc.config()).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    proxy.fail("UpdateService", Fault::ServerError, 100);
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = ended(&app).await;
    assert_eq!(end["kind"], "request.failed", "{end}");
    let text = end["text"].as_str().unwrap();
    assert!(
        text.contains("outcome unknown — check AWS: which task definition"),
        "{text}"
    );
    assert_eq!(
        proxy.count("UpdateService"),
        1,
        "a change AWS may have made is never sent again"
    );
    let error = app.events_of_kind("aws.error").await.pop().unwrap();
    assert_eq!(error["detail"]["outcome_unknown"], true, "{error}");
    assert!(
        last_update(&app).contains("outcome unknown"),
        "{}",
        last_update(&app)
    );
}

#[tokio::test]
async fn a_connection_reset_after_an_ip_block_was_made_is_reported_as_unknown_not_retried() {
    let sets = seed_ip_sets(false, vec![]).await;
    let proxy = CountingProxy::start().await;
    let app = app_behind(&proxy, &sets.config()).await;
    let ts = ask(&app, "block-ip 203.0.113.9", REQUESTER).await;
    proxy.fail("UpdateIPSet", Fault::ResetAfterForward, 1);
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = ended(&app).await;
    assert_eq!(end["kind"], "request.failed", "{end}");
    let text = end["text"].as_str().unwrap();
    assert!(
        text.contains("outcome unknown — check AWS: whether IP set"),
        "{text}"
    );
    assert_eq!(proxy.count("UpdateIPSet"), 1, "sent once");
    // It did happen: the truth was "unknown", not "failed".
    assert_eq!(sets.v4_addresses().await, ["203.0.113.9/32"]);
}

#[tokio::test]
async fn a_restore_that_never_answers_is_given_up_after_the_call_timeout() {
    let db = seed_database(1).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let proxy = CountingProxy::start().await;
    let app = app_behind(&proxy, &db.config()).await;
    let new = format!("{}-rst", db.instance);
    let ts = ask(
        &app,
        &format!("restore main --snapshot {}-nightly --as {new}", db.instance),
        REQUESTER,
    )
    .await;
    proxy.fail("RestoreDBInstanceFromDBSnapshot", Fault::Hang, 1);
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = ended(&app).await;
    assert_eq!(end["kind"], "request.failed", "{end}");
    let text = end["text"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "outcome unknown — check AWS: whether instance `{new}` exists"
        )),
        "{text}"
    );
    assert_eq!(proxy.count("RestoreDBInstanceFromDBSnapshot"), 1);
    let error = app.events_of_kind("aws.error").await.pop().unwrap();
    assert!(
        error.to_string().contains("timeout") || error.to_string().contains("timed out"),
        "given up at the call timeout: {error}"
    );
}

#[tokio::test]
async fn a_re_check_that_keeps_failing_changes_nothing() {
    let svc = seed_service(3, 1).await;
    let proxy = CountingProxy::start().await;
    let app = app_behind(&proxy, &svc.config()).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    proxy.fail("DescribeServices", Fault::ServerError, 100);
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = ended(&app).await;
    assert_eq!(end["kind"], "request.failed", "{end}");
    assert!(
        end["text"]
            .as_str()
            .unwrap()
            .contains("could not re-read AWS, so nothing was changed"),
        "{end}"
    );
    assert_eq!(proxy.count("UpdateService"), 0);
    let reads = proxy.count("DescribeServices");
    assert!(
        (2..=4).contains(&reads),
        "the SDK's retries of a read are bounded: {reads}"
    );
}
