//! What users do in Slack around a request: ask, react, and wait for what drbot says.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};

use super::aws::unique;
use super::*;

/// Sends `/dr <text>` and waits until its approval request is fully posted (drbot has
/// added its own reactions, which it does after remembering the message); returns its ts.
pub async fn ask(app: &TestApp, text: &str, user: &str) -> String {
    ask_in(app, text, user, OPS_CHANNEL).await
}

/// The `chat.postMessage` call that posted the message `ts` (e.g. an approval request).
pub fn posted_message(app: &TestApp, ts: &str) -> crate::support::standin::Call {
    app.slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| c.answer["ts"] == ts)
        .unwrap_or_else(|| panic!("no message {ts} was posted"))
}

/// [`ask`] in `channel` (e.g. an incident channel).
pub async fn ask_in(app: &TestApp, text: &str, user: &str, channel: &str) -> String {
    // Only a post made after this command counts (earlier requests' posts are older).
    let before = app.slack.calls("chat.postMessage").len();
    let reply = app
        .slash(text)
        .as_user(user)
        .in_channel(channel)
        .reply()
        .await;
    assert!(reply.starts_with("Planning `/dr"), "{reply}");
    let reactions = app.settings_reaction_count();
    // Up to 20 s: a Slack call that hangs is given up after 10 s and sent again.
    for _ in 0..800 {
        let posted = app
            .slack
            .calls("chat.postMessage")
            .into_iter()
            .skip(before)
            .rev()
            .find(|c| {
                c.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains("approval needed")
                    && !app.slack.calls("reactions.add").is_empty()
            });
        if let Some(request) = posted {
            let ts = request.answer["ts"].as_str().unwrap().to_string();
            let added = app
                .slack
                .calls("reactions.add")
                .iter()
                .filter(|c| c.params["timestamp"] == ts.as_str())
                .count();
            if added >= reactions {
                return ts;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "no approval request fully posted; calls: {:?}",
        app.slack.all_calls()
    );
}

pub fn reaction(kind: &str, ts: &str, name: &str, user: &str) -> Value {
    json!({
        "type": kind,
        "user": user,
        "reaction": name,
        "item_user": BOT_USER,
        "item": {"type": "message", "channel": OPS_CHANNEL, "ts": ts},
        "event_ts": format!("{}.000100", now_unix()),
    })
}

pub async fn react(app: &TestApp, ts: &str, name: &str, user: &str) -> String {
    let id = unique("Ev");
    let response = app
        .event(&id, reaction("reaction_added", ts, name, user), None)
        .await;
    assert_eq!(response.status(), 200);
    id
}

/// An officer's (or anyone's) reaction on a message in `channel`.
pub async fn react_in(app: &TestApp, channel: &str, ts: &str, name: &str, user: &str) {
    let mut event = reaction("reaction_added", ts, name, user);
    event["item"]["channel"] = json!(channel);
    let response = app.event(&unique("Ev"), event, None).await;
    assert_eq!(response.status(), 200);
}

pub async fn unreact(app: &TestApp, ts: &str, name: &str, user: &str) {
    let response = app
        .event(
            &unique("Ev"),
            reaction("reaction_removed", ts, name, user),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
}

/// Waits until an event of `kind` is in the log.
pub async fn wait_for_event(app: &TestApp, kind: &str) -> Value {
    for _ in 0..150 {
        if let Some(e) = app.events_of_kind(kind).await.into_iter().next() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no `{kind}` event; log: {:#?}", app.events().await);
}

pub fn ephemerals_to(app: &TestApp, user: &str) -> Vec<String> {
    app.slack
        .calls("chat.postEphemeral")
        .iter()
        .filter(|c| c.params["user"] == user)
        .map(|c| c.params["text"].as_str().unwrap_or("").to_string())
        .collect()
}

pub async fn wait_for_ephemeral(app: &TestApp, user: &str) -> String {
    for _ in 0..100 {
        if let Some(text) = ephemerals_to(app, user).pop() {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{user} was never told anything");
}

pub fn last_update(app: &TestApp) -> String {
    app.slack
        .calls("chat.update")
        .last()
        .map(|c| c.params["text"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Waits until `n` answers went through `response_url`; returns their texts.
pub async fn wait_for_responses(app: &TestApp, n: usize) -> Vec<String> {
    for _ in 0..200 {
        if app.slack.response_posts().len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.slack
        .response_posts()
        .iter()
        .map(|(_, v)| v["text"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Asks and has an officer approve; waits for the request to end; returns its final event.
pub async fn ask_and_approve(app: &TestApp, text: &str) -> Value {
    let ts = ask(app, text, REQUESTER).await;
    react(app, &ts, "white_check_mark", OFFICER).await;
    wait_for_any_event(app, &["request.executed", "request.failed", "request.void"]).await
}

/// Waits until an event of any of `kinds` is in the log.
pub async fn wait_for_any_event(app: &TestApp, kinds: &[&str]) -> Value {
    for _ in 0..150 {
        if let Some(e) = app
            .events()
            .await
            .into_iter()
            .find(|e| kinds.iter().any(|k| e["kind"] == *k))
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("none of {kinds:?}; log: {:#?}", app.events().await);
}

/// Opens an incident from the ops channel; returns (incident id, channel id).
pub async fn open_incident(app: &TestApp, text: &str) -> (String, String) {
    let before = app
        .slack
        .calls("conversations.create")
        .iter()
        .filter(|c| c.answer["ok"] == true)
        .count();
    let reply = app.slash(&format!("incident open {text}")).reply().await;
    assert!(reply.starts_with("Opening a `"), "{reply}");
    for _ in 0..100 {
        let created: Vec<_> = app
            .slack
            .calls("conversations.create")
            .into_iter()
            .filter(|c| c.answer["ok"] == true)
            .collect();
        if created.len() > before {
            let c = created.last().unwrap();
            let id = c.answer["channel"]["name"].as_str().unwrap().to_string();
            let channel = c.answer["channel"]["id"].as_str().unwrap().to_string();
            // Wait until the announcement is out (the last step of opening).
            for _ in 0..100 {
                if app.slack.calls("chat.postMessage").iter().any(|m| {
                    m.params["channel"] == OPS_CHANNEL
                        && m.params["text"].as_str().unwrap_or("").contains(&id)
                }) {
                    return (id, channel);
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
            panic!("incident {id} never announced");
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    panic!("no channel created");
}

/// A click on one of the request message's buttons, as Slack sends it (the `payload` of
/// `/slack/interactions`, or a Socket Mode `interactive` envelope).
pub fn button_click(ts: &str, action_id: &str, user: &str) -> Value {
    json!({
        "type": "block_actions",
        "team": {"id": "T0DRBOT", "domain": "drbot-test"},
        "user": {"id": user, "team_id": "T0DRBOT", "username": "someone"},
        "api_app_id": "A0DRBOT",
        "token": "deprecated-verification-token",
        "trigger_id": format!("trigger-{user}-{action_id}"),
        "container": {"type": "message", "message_ts": ts, "channel_id": OPS_CHANNEL, "is_ephemeral": false},
        "channel": {"id": OPS_CHANNEL, "name": "ops"},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "A-1",
                     "text": {"type": "plain_text", "text": "Approve"},
                     "action_ts": format!("{}.{}", now_unix(), user.len())}]
    })
}

/// Posts a Block Kit interaction `payload` as Slack does (form-encoded, signed).
pub async fn interact(app: &TestApp, payload: &Value) -> reqwest::Response {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    app.post_signed(
        "/slack/interactions",
        "application/x-www-form-urlencoded",
        &body,
    )
    .await
}

/// Asks for `command` as the requester and answers (the request's ts, its message text).
pub async fn ask_text(app: &TestApp, command: &str) -> (String, String) {
    let ts = ask(app, command, REQUESTER).await;
    let text = posted_message(app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    (ts, text)
}
