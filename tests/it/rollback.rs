//! The heart of drbot: `/dr rollback api` → a plan in the channel → an officer's ✅ →
//! exactly one UpdateService → the deployment followed to stable. Against the real binary,
//! the Slack stand-in and moto.

use std::time::Duration;

use serde_json::Value;

use crate::support::aws::{seed_service, CountingProxy, SeededService};
use crate::support::flow::*;
use crate::support::*;

fn config(svc: &SeededService, approval_extra: &str) -> String {
    format!(
        r#"
[slack]
command_channels = ["C0123OPS"]

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]
{approval_extra}

[ecs]
poll_interval = "1s"
rollout_timeout = "10m"

{}"#,
        svc.config()
    )
}

#[tokio::test]
async fn an_officer_approves_a_rollback_and_drbot_follows_it_to_stable() {
    let svc = seed_service(3, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;

    let request = posted_message(&app, &ts);
    let text = request.params["text"].as_str().unwrap();
    assert!(text.contains("*A-1 · approval needed*"), "{text}");
    assert!(
        text.contains(&format!("from `{}:3`", svc.family))
            && text.contains(&format!("to `{}:2`", svc.family)),
        "{text}"
    );
    assert!(
        text.contains(
            "`registry.example.com/app:1.3` → `registry.example.com/app:1.2` *(changes)*"
        ),
        "{text}"
    );
    assert!(
        text.contains("`registry.example.com/envoy:1.30` (unchanged)"),
        "{text}"
    );
    assert!(
        text.contains("<@U0ONCALL1>") && text.contains("expires"),
        "{text}"
    );
    let added: Vec<String> = app
        .slack
        .wait_for("reactions.add", 3)
        .await
        .iter()
        .map(|c| c.params["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(added, ["white_check_mark", "+1", "x"]);
    assert_eq!(
        svc.task_definition().await,
        format!("{}:3", svc.family),
        "nothing changes before approval"
    );

    react(&app, &ts, "white_check_mark", OFFICER).await;
    let executed = wait_for_event(&app, "request.executed").await;
    assert_eq!(executed["detail"]["action_id"], "A-1");
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));

    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(call["detail"]["operation"], "UpdateService");
    assert_eq!(
        call["detail"]["task_definition"],
        format!("{}:2", svc.family)
    );
    assert!(!call["detail"]["aws_request_id"]
        .as_str()
        .unwrap()
        .is_empty());
    let approved = wait_for_event(&app, "approval.approved").await;
    assert_eq!(approved["actor"], OFFICER);

    let update = last_update(&app);
    assert!(
        update.contains("*A-1 · executed*") && update.contains("is stable on"),
        "{update}"
    );
    let thread: Vec<String> = app
        .slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| c.params["thread_ts"] == ts.as_str())
        .map(|c| c.params["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        thread.iter().any(|t| t.contains("UpdateService sent")),
        "{thread:?}"
    );
    assert!(
        thread.iter().any(|t| t.contains("*executed*")),
        "{thread:?}"
    );
    assert!(
        app.slack.violations().is_empty(),
        "{:?}",
        app.slack.violations()
    );
    assert!(app.warnings().is_empty(), "{:#?}", app.warnings());
    // The change is timed: approval → AWS, and the AWS call itself.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("drbot_approval_to_aws_seconds_count 1"),
        "{metrics}"
    );
    assert!(
        metrics
            .contains("drbot_aws_call_seconds_count{operation=\"UpdateService\",outcome=\"ok\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_request() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    // An officer asks, then tries to approve it themselves.
    let ts = ask(&app, "rollback api", OFFICER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let told = wait_for_ephemeral(&app, OFFICER).await;
    assert!(told.contains("you cannot approve it"), "{told}");
    let ignored = wait_for_event(&app, "approval.ignored").await;
    assert!(ignored["text"]
        .as_str()
        .unwrap()
        .contains("requester may not approve"));
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    // Another officer can.
    react(&app, &ts, "white_check_mark", OFFICER_2).await;
    wait_for_event(&app, "request.executed").await;
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
}

#[tokio::test]
async fn a_non_officer_and_drbot_itself_cannot_approve() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "white_check_mark", "U0BYSTANDER").await;
    react(&app, &ts, "white_check_mark", BOT_USER).await;
    let told = wait_for_ephemeral(&app, "U0BYSTANDER").await;
    assert!(
        told.contains("Only security officers can approve A-1"),
        "{told}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ignored = app.events_of_kind("approval.ignored").await;
    assert_eq!(ignored.len(), 2, "{ignored:#?}");
    assert!(ignored
        .iter()
        .any(|e| e["text"].as_str().unwrap().contains("drbot's own")));
    assert!(
        ephemerals_to(&app, BOT_USER).is_empty(),
        "drbot told itself off"
    );
    assert!(app.events_of_kind("approval.approved").await.is_empty());
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    let pending = app.slash("approvals").reply().await;
    assert!(pending.contains("*A-1* `/dr rollback api`"), "{pending}");
}

#[tokio::test]
async fn a_skin_tone_thumbs_up_from_an_officer_approves() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "+1::skin-tone-3", OFFICER).await;
    wait_for_event(&app, "request.executed").await;
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
}

#[tokio::test]
async fn a_rejected_request_stays_rejected_when_an_officer_approves_afterwards() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "x", REQUESTER).await;
    wait_for_event(&app, "approval.rejected").await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let told = wait_for_ephemeral(&app, OFFICER).await;
    assert!(told.contains("A-1 is already rejected"), "{told}");
    assert!(app.events_of_kind("approval.approved").await.is_empty());
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    assert!(last_update(&app).contains("*A-1 · rejected*"));
}

#[tokio::test]
async fn an_unanswered_request_expires_and_a_late_approval_changes_nothing() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "ttl = \"15m\"")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    // Nobody answers for a quarter of an hour.
    app.advance_clock(Duration::from_secs(15 * 60));
    let expired = wait_for_event(&app, "approval.expired").await;
    assert_eq!(expired["detail"]["action_id"], "A-1");
    for _ in 0..50 {
        if last_update(&app).contains("*A-1 · expired*") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last_update(&app).contains("*A-1 · expired*"),
        "{}",
        last_update(&app)
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let told = wait_for_ephemeral(&app, OFFICER).await;
    assert!(told.contains("A-1 is already expired"), "{told}");
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
}

#[tokio::test]
async fn a_removed_reaction_withdraws_that_approval() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "required_approvals = 2")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    unreact(&app, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&app, "approval.withdrawn").await;
    react(&app, &ts, "white_check_mark", OFFICER_2).await;
    // Once the second officer's approval is counted, the verdict on it has been given.
    for _ in 0..100 {
        if app.events_of_kind("approval.approve").await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(app.events_of_kind("approval.approve").await.len(), 2);
    assert!(
        app.events_of_kind("approval.approved").await.is_empty(),
        "one standing approval of two executed"
    );
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    react(&app, &ts, "+1", OFFICER).await;
    wait_for_event(&app, "request.executed").await;
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
}

#[tokio::test]
async fn a_deploy_between_plan_and_approval_voids_the_request() {
    let svc = seed_service(3, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    svc.deploy_outside(1).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let void = wait_for_event(&app, "request.void").await;
    assert_eq!(void["detail"]["action_id"], "A-1");
    let changed = wait_for_event(&app, "recheck.changed").await;
    assert!(
        changed["text"]
            .as_str()
            .unwrap()
            .contains("someone deployed in between"),
        "{changed}"
    );
    assert_eq!(
        svc.task_definition().await,
        format!("{}:1", svc.family),
        "drbot changed the service anyway"
    );
    assert!(app.events_of_kind("aws.call").await.is_empty());
}

#[tokio::test]
async fn an_unknown_or_inactive_target_revision_is_refused_before_any_request() {
    let svc = seed_service(3, 1).await;
    svc.deregister(1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    app.slash("rollback api --to 99").reply().await;
    app.slash("rollback api --to 1").reply().await;
    for _ in 0..100 {
        if app.slack.response_posts().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answers: Vec<String> = app
        .slack
        .response_posts()
        .iter()
        .map(|(_, v)| v["text"].as_str().unwrap().to_string())
        .collect();
    assert!(
        answers
            .iter()
            .any(|a| a.contains(&format!("revision `{}:99` does not exist", svc.family))),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.contains(&format!("revision `{}:1` is INACTIVE", svc.family))),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| a.contains("Usage: `/dr rollback &lt;service&gt; [--to &lt;revision&gt;]`")),
        "{answers:?}"
    );
    let refused: Vec<Value> = app.events_of_kind("command.refused").await;
    assert_eq!(refused.len(), 2);
    assert!(app.events_of_kind("approval.requested").await.is_empty());
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_service_without_an_earlier_revision_has_nothing_to_roll_back_to() {
    let svc = seed_service(1, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    app.slash("rollback api").reply().await;
    for _ in 0..100 {
        if !app.slack.response_posts().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let answer = app.slack.response_posts()[0].1["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        answer.contains("has no earlier ACTIVE revision"),
        "{answer}"
    );
}

#[tokio::test]
async fn retried_deliveries_and_two_officers_at_once_make_one_update_service() {
    let svc = seed_service(2, 1).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(&config(&svc, ""), &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;

    let first = reaction("reaction_added", &ts, "white_check_mark", OFFICER);
    let second = reaction("reaction_added", &ts, "+1", OFFICER_2);
    let (a, b, c, d, e, f) = tokio::join!(
        app.event("Ev0SAME0001", first.clone(), None),
        app.event("Ev0SAME0001", first.clone(), Some(1)),
        app.event("Ev0SAME0001", first.clone(), Some(2)),
        app.event("Ev0SAME0001", first.clone(), Some(3)),
        app.event("Ev0OTHER001", second.clone(), None),
        app.event("Ev0OTHER001", second, Some(1)),
    );
    for r in [a, b, c, d, e, f] {
        assert_eq!(r.status(), 200);
    }
    wait_for_event(&app, "request.executed").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        proxy.count("UpdateService"),
        1,
        "UpdateService was called more than once"
    );
    assert_eq!(app.events_of_kind("approval.approved").await.len(), 1);
    assert_eq!(app.events_of_kind("aws.call").await.len(), 1);
    let reactions = app
        .events()
        .await
        .into_iter()
        .filter(|e| e["detail"]["event_id"] == "Ev0SAME0001")
        .count();
    assert_eq!(reactions, 1, "a retried delivery was recorded twice");
}

#[tokio::test]
async fn a_pending_request_survives_a_crash_and_can_be_approved_after_restart() {
    let svc = seed_service(2, 1).await;
    let mut app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    app.kill().await;
    app.restart().await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&app, "request.executed").await;
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
    let out = app.cli(&["audit", "verify"]).await;
    assert!(out.status.success());
}

#[tokio::test]
async fn a_crash_during_execution_marks_the_request_interrupted_and_never_reruns_it() {
    // Two desired tasks while moto runs one: the rollout never becomes stable.
    let svc = seed_service(2, 2).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let mut app = spawn_app_custom(&config(&svc, ""), &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&app, "aws.call").await;
    app.kill().await;
    app.restart().await;
    let interrupted = wait_for_event(&app, "request.interrupted").await;
    assert_eq!(interrupted["detail"]["action_id"], "A-1");
    for _ in 0..50 {
        if last_update(&app).contains("*A-1 · interrupted*") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last_update(&app).contains("*A-1 · interrupted*"),
        "{}",
        last_update(&app)
    );
    // Another approval after the restart changes nothing.
    react(&app, &ts, "+1", OFFICER_2).await;
    let told = wait_for_ephemeral(&app, OFFICER_2).await;
    assert!(told.contains("A-1 is already interrupted"), "{told}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(proxy.count("UpdateService"), 1);
}

#[tokio::test]
async fn the_requester_can_cancel_and_a_bystander_cannot() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    let refused = app.slash("cancel A-1").as_user("U0BYSTANDER").reply().await;
    assert!(
        refused.contains("only the requester (<@U0ONCALL1>) or a security officer can cancel A-1"),
        "{refused}"
    );
    let done = app.slash("cancel A-1").as_user(REQUESTER).reply().await;
    assert_eq!(done, "A-1 is cancelled; nothing was done.");
    let again = app.slash("cancel A-1").as_user(REQUESTER).reply().await;
    assert!(
        again.contains("A-1 is cancelled; only a pending request can be cancelled"),
        "{again}"
    );
    let unknown = app.slash("cancel A-42").reply().await;
    assert!(unknown.contains("there is no request A-42"), "{unknown}");
    react(&app, &ts, "white_check_mark", OFFICER).await;
    wait_for_ephemeral(&app, OFFICER).await;
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    assert_eq!(
        app.slash("approvals").reply().await,
        "No approval requests are pending."
    );
    for _ in 0..50 {
        if last_update(&app).contains("*A-1 · cancelled*") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(last_update(&app).contains("*A-1 · cancelled*"));
}

#[tokio::test]
async fn sigterm_during_execution_records_the_request_as_interrupted_before_exiting() {
    let svc = seed_service(2, 2).await;
    let mut app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&app, "aws.call").await;
    let status = app.terminate().await;
    assert!(status.success(), "drbot exited with {status}");
    let interrupted = app.events_of_kind("request.interrupted").await;
    assert_eq!(interrupted.len(), 1, "{interrupted:#?}");
    assert!(interrupted[0]["text"].as_str().unwrap().contains("SIGTERM"));
}

#[tokio::test]
async fn a_request_that_could_not_be_posted_is_posted_at_restart_and_early_reactions_are_retried() {
    let svc = seed_service(2, 1).await;
    let mut app = spawn_app_with(&config(&svc, "")).await;
    app.slack.fail(
        "chat.postMessage",
        crate::support::standin::Failure::NotOk("fatal_error"),
    );
    app.slash("rollback api").reply().await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("A-1 was planned but could not be posted here"),
        "{answers:?}"
    );

    // A reaction on one of drbot's messages while A-1 is still unposted is not decided yet:
    // drbot answers 503 so that Slack delivers it again, and records nothing.
    let early = reaction(
        "reaction_added",
        "1764220000.999999",
        "white_check_mark",
        OFFICER,
    );
    assert_eq!(
        app.event("Ev0EARLY001", early.clone(), None).await.status(),
        503
    );
    assert!(app.events_of_kind("slack.reaction_added").await.is_empty());

    app.slack.recover("chat.postMessage");
    app.restart().await;
    let ts = {
        let mut ts = None;
        for _ in 0..100 {
            ts = app
                .slack
                .calls("chat.postMessage")
                .into_iter()
                .find(|c| {
                    c.answer["ok"] == true
                        && c.params["text"]
                            .as_str()
                            .unwrap_or("")
                            .contains("*A-1 · approval needed*")
                })
                .map(|c| c.answer["ts"].as_str().unwrap().to_string());
            if ts.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        ts.expect("A-1 posted after the restart")
    };
    // Slack's retry of the early reaction is now simply a reaction on another message.
    assert_eq!(app.event("Ev0EARLY001", early, Some(1)).await.status(), 200);
    app.slack.wait_for("reactions.add", 3).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&app, "request.executed").await;
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
}

/// A click on one of the request message's buttons, as Slack posts it.
async fn click(app: &TestApp, ts: &str, action_id: &str, user: &str) -> reqwest::Response {
    interact(app, &button_click(ts, action_id, user)).await
}

#[tokio::test]
async fn the_approve_button_follows_the_gate_rules_like_the_reaction() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&config(&svc, "")).await;
    let ts = ask(&app, "rollback api", REQUESTER).await;
    let request = posted_message(&app, &ts);
    let buttons = request.params["blocks"].to_string();
    assert!(
        buttons.contains("drbot_approve") && buttons.contains("drbot_reject"),
        "{buttons}"
    );

    // Someone who is not an officer, then the requester: refused, told why.
    assert_eq!(
        click(&app, &ts, "drbot_approve", "U0OUTSIDER")
            .await
            .status(),
        200
    );
    let told = wait_for_ephemeral(&app, "U0OUTSIDER").await;
    assert!(told.contains("officer"), "{told}");
    assert_eq!(
        click(&app, &ts, "drbot_approve", REQUESTER).await.status(),
        200
    );
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));

    // An officer's click approves and the rollback runs once.
    assert_eq!(
        click(&app, &ts, "drbot_approve", OFFICER).await.status(),
        200
    );
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
    // The decided message has no buttons left.
    let update = app.slack.calls("chat.update").into_iter().last().unwrap();
    assert!(
        !update.params["blocks"]
            .to_string()
            .contains("drbot_approve"),
        "{}",
        update.params
    );
}
