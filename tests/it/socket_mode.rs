//! Socket Mode: drbot behind a firewall, with no public URL. Commands, reactions and button
//! clicks arrive as envelopes over the WebSocket the stand-in hands out; each is
//! acknowledged once recorded, goes through the same gate, and a dropped connection is
//! reopened by itself — here in the middle of an incident.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::aws::seed_service;
use crate::support::flow::*;
use crate::support::socket_mode::APP_TOKEN;
use crate::support::*;

/// The Approve button's action id.
const APPROVE: &str = "drbot_approve";

fn config(svc: &crate::support::aws::SeededService) -> String {
    format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n[ecs]\npoll_interval = \"1s\"\n{}",
        svc.config()
    )
}

/// A slash command as Socket Mode delivers it (the form fields, as JSON).
fn command(app: &TestApp, text: &str, user: &str, trigger: &str) -> Value {
    json!({
        "token": "deprecated-verification-token",
        "team_id": "T0DRBOT",
        "team_domain": "drbot-test",
        "channel_id": OPS_CHANNEL,
        "channel_name": "ops",
        "user_id": user,
        "user_name": "someone",
        "command": "/dr",
        "text": text,
        "api_app_id": "A0DRBOT",
        "is_enterprise_install": "false",
        "response_url": app.slack.response_url(trigger),
        "trigger_id": trigger,
    })
}

async fn spawn_socket_app(config: &str) -> TestApp {
    let app = spawn_app_custom(
        config,
        &["--socket-mode"],
        &[("SLACK_APP_TOKEN", APP_TOKEN), ("SLACK_SIGNING_SECRET", "")],
    )
    .await;
    app.slack.socket.wait_connected().await;
    app
}

/// The text of a command's acknowledgement (Socket Mode's answer to the envelope).
async fn acked_text(app: &TestApp, envelope: &str) -> String {
    let ack = app
        .slack
        .socket
        .ack(envelope)
        .await
        .unwrap_or_else(|| panic!("envelope {envelope} was never acknowledged"));
    ack["payload"]["text"].as_str().unwrap_or("").to_string()
}

/// The approval request once it is posted and drbot added its reactions; its ts.
async fn posted_request(app: &TestApp, label: &str) -> String {
    for _ in 0..400 {
        let posted = app.slack.calls("chat.postMessage").into_iter().find(|c| {
            c.answer["ok"] == true
                && c.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("*{label} · approval needed*"))
        });
        // Posted and recorded: drbot adds its reactions once it has stored the message.
        if let Some(post) = posted {
            let ts = post.answer["ts"].as_str().unwrap().to_string();
            let reacted = app
                .slack
                .calls("reactions.add")
                .iter()
                .filter(|c| c.params["timestamp"] == ts.as_str() && c.answer["ok"] == true)
                .count();
            if reacted >= app.settings_reaction_count() {
                return ts;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{label} was not posted: {:?}", app.slack.all_calls());
}

#[tokio::test]
async fn a_rollback_asked_and_approved_over_socket_mode_survives_a_dropped_connection() {
    let svc = seed_service(2, 1).await;
    let app = spawn_socket_app(&config(&svc)).await;
    // No public HTTP surface for Slack: only health, readiness and metrics.
    let signed = app.slash("help").send().await;
    assert_eq!(signed.status(), 404, "no /slack/* routes in Socket Mode");
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        200
    );

    let socket = &app.slack.socket;
    let opened = socket.opened();
    let help = socket.send("slash_commands", command(&app, "help", REQUESTER, "t-help"));
    assert!(acked_text(&app, &help).await.contains("rollback"));

    let ask = socket.send(
        "slash_commands",
        command(&app, "rollback api", REQUESTER, "t-rollback"),
    );
    assert!(acked_text(&app, &ask).await.starts_with("Planning"));
    // Slack delivers the same envelope again (it did not see the ack in time): one request.
    socket.send_as(
        &ask,
        "slash_commands",
        command(&app, "rollback api", REQUESTER, "t-rollback"),
        1,
    );
    let ts = posted_request(&app, "A-1").await;

    // The connection drops in the middle of it; drbot opens a new one by itself.
    socket.drop_connections();
    for _ in 0..400 {
        if socket.opened() > opened && socket.connections() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(socket.opened() > opened, "drbot did not reconnect");
    socket.wait_connected().await;

    // A click by someone who is not an officer changes nothing and is told why.
    let outsider = socket.send("interactive", button_click(&ts, APPROVE, "U0OUTSIDER"));
    assert!(socket.ack(&outsider).await.is_some());
    wait_for_ephemeral(&app, "U0OUTSIDER").await;

    // The officer approves with a reaction, over the new connection.
    let event = socket.send(
        "events_api",
        envelope(
            "Ev0SOCKET01",
            reaction("reaction_added", &ts, "white_check_mark", OFFICER),
        ),
    );
    assert!(socket.ack(&event).await.is_some());
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(svc.task_definition().await, format!("{}:1", svc.family));
    let requests = app.events_of_kind("approval.requested").await;
    assert_eq!(requests.len(), 1, "a redelivered command is planned once");
}

#[tokio::test]
async fn an_officer_approves_with_the_button_over_socket_mode() {
    let svc = seed_service(2, 1).await;
    let app = spawn_socket_app(&config(&svc)).await;
    let socket = &app.slack.socket;
    let ask = socket.send(
        "slash_commands",
        command(&app, "rollback api", REQUESTER, "t-button"),
    );
    acked_text(&app, &ask).await;
    let ts = posted_request(&app, "A-1").await;
    let clicked = socket.send("interactive", button_click(&ts, APPROVE, OFFICER));
    assert!(socket.ack(&clicked).await.is_some());
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
}

#[test]
fn socket_mode_without_an_app_token_is_refused_with_the_variable_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("drbot.toml");
    std::fs::write(&config, crate::support::CONFIG).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["serve", "--socket-mode", "--config"])
        .arg(&config)
        .env_remove("SLACK_APP_TOKEN")
        .env("SLACK_BOT_TOKEN", crate::support::standin::BOT_TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("SLACK_APP_TOKEN is not set"), "{stderr}");
}
