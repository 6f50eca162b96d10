//! A local Slack stand-in: answers the Web API methods drbot uses the way Slack does,
//! records every call and every `response_url` post, enforces the scopes declared in
//! `deploy/slack/manifest.yml`, and can be told to fail a method.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// The bot token the stand-in accepts.
pub const BOT_TOKEN: &str = "xoxb-test-0000-drbot";
/// drbot's own user id in the stand-in workspace.
pub const BOT_USER: &str = "UDRBOT0001";

/// The scope each Web API method needs (from Slack's method reference).
pub const METHOD_SCOPES: &[(&str, Option<&str>)] = &[
    ("auth.test", None),
    ("chat.postMessage", Some("chat:write")),
    ("chat.postEphemeral", Some("chat:write")),
    ("chat.update", Some("chat:write")),
    ("chat.getPermalink", None),
    ("reactions.add", Some("reactions:write")),
    ("conversations.create", Some("channels:manage")),
    ("conversations.invite", Some("channels:manage")),
    ("conversations.setTopic", Some("channels:manage")),
    ("conversations.info", Some("channels:read")),
    ("conversations.list", Some("channels:read")),
    ("conversations.open", Some("im:write")),
    ("pins.add", Some("pins:write")),
    ("conversations.history", Some("channels:history")),
    ("conversations.replies", Some("channels:history")),
    ("users.info", Some("users:read")),
    ("bots.info", Some("users:read")),
    ("usergroups.users.list", Some("usergroups:read")),
    ("files.getUploadURLExternal", Some("files:write")),
    ("files.completeUploadExternal", Some("files:write")),
    // The App Home needs no scope, only `app_home.home_tab_enabled` in the manifest.
    ("views.publish", None),
];

/// How `method` is set to fail: its own failure, else the one set for every method (`"*"`).
fn failure_of<'a>(state: &'a Recorded, method: &str) -> Option<&'a Failure> {
    state
        .failures
        .get(method)
        .or_else(|| state.failures.get("*"))
}

/// A recorded Web API call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub authorization: Option<String>,
    /// What the stand-in answered.
    pub answer: Value,
    /// When the call arrived.
    pub at: std::time::Instant,
}

/// How to fail a method.
#[derive(Debug, Clone)]
pub enum Failure {
    RateLimited {
        retry_after: u64,
    },
    ServerError,
    /// 503, as during an outage.
    Unavailable,
    NotOk(&'static str),
    /// Never answers (until the client gives up).
    Hang,
    /// Does it (a post is made), then never answers: the client cannot know it was done.
    AnswerLost,
}

#[derive(Default)]
struct Recorded {
    calls: Vec<Call>,
    response_posts: Vec<(String, Value)>,
    failures: HashMap<String, Failure>,
    /// How many more calls a failure applies to (absent: until `recover`).
    failures_left: HashMap<String, usize>,
    violations: Vec<String>,
    next_ts: u64,
    channel_names: std::collections::HashSet<String>,
    /// Channels drbot created: id → name (for `conversations.info`).
    created: HashMap<String, String>,
    /// Messages another app posted: (channel, message), shown in history as newest.
    planted: Vec<(String, Value)>,
    /// User groups: id → members.
    groups: HashMap<String, Vec<String>>,
}

/// The people of the stand-in workspace, as `users.info` describes them.
pub const PEOPLE: &[(&str, &str)] = &[
    ("U0ONCALL1", "Dana Smith"),
    ("U0SECOFF1", "Sam Okafor"),
    ("U0SECOFF2", "Lee Chen"),
    ("U0OUTSIDER", "Alex Outsider"),
    (BOT_USER, "drbot"),
];

#[derive(Clone)]
pub struct SlackStandIn {
    pub addr: SocketAddr,
    state: Arc<Mutex<Recorded>>,
    /// Socket Mode: `apps.connections.open` and the WebSocket it hands out.
    pub socket: super::socket_mode::SocketModeStandIn,
}

#[derive(Clone)]
struct Shared {
    addr: SocketAddr,
    state: Arc<Mutex<Recorded>>,
    scopes: Arc<HashSet<String>>,
    socket: super::socket_mode::SocketModeStandIn,
}

impl SlackStandIn {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(Recorded {
            next_ts: 1,
            ..Default::default()
        }));
        let socket = super::socket_mode::SocketModeStandIn::start().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Shared {
            addr,
            state: state.clone(),
            scopes: Arc::new(super::manifest_bot_scopes().into_iter().collect()),
            socket: socket.clone(),
        };
        let router = Router::new()
            .route("/api/{method}", any(web_api))
            .route("/response/{id}", post(response_url))
            .route("/upload/{id}", post(upload))
            .with_state(shared);
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            addr,
            state,
            socket,
        }
    }

    /// What drbot gets as `DRBOT_SLACK_API_URL`.
    pub fn api_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// A `response_url` for one slash command.
    pub fn response_url(&self, id: &str) -> String {
        format!("http://{}/response/{id}", self.addr)
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        self.state
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }

    pub fn all_calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    pub fn response_posts(&self) -> Vec<(String, Value)> {
        self.state.lock().unwrap().response_posts.clone()
    }

    /// Methods called without the scope the manifest grants, or unknown to the stand-in.
    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    /// A channel name already in use in the workspace.
    pub fn take_channel_name(&self, name: &str) {
        self.state
            .lock()
            .unwrap()
            .channel_names
            .insert(name.to_string());
    }

    /// Answers `method` normally again.
    pub fn recover(&self, method: &str) {
        self.state.lock().unwrap().failures.remove(method);
    }

    /// Fails the next `times` calls of `method` with `failure`, then answers normally.
    pub fn fail_times(&self, method: &str, failure: Failure, times: usize) {
        let mut state = self.state.lock().unwrap();
        state.failures.insert(method.to_string(), failure);
        state.failures_left.insert(method.to_string(), times);
    }

    pub fn fail(&self, method: &str, failure: Failure) {
        self.state
            .lock()
            .unwrap()
            .failures
            .insert(method.to_string(), failure);
    }

    /// Another app posts into `channel`, marked with drbot's outbox metadata for each of
    /// the row ids `rows`, as a hostile app could (its messages are not drbot's).
    /// User group `group` has `members` (what `usergroups.users.list` answers).
    pub fn set_group(&self, group: &str, members: &[&str]) {
        let members = members.iter().map(|m| m.to_string()).collect();
        self.state
            .lock()
            .unwrap()
            .groups
            .insert(group.to_string(), members);
    }

    pub fn plant_foreign_posts(&self, channel: &str, rows: std::ops::RangeInclusive<i64>) {
        let mut state = self.state.lock().unwrap();
        for row in rows {
            state.next_ts += 1;
            let message = json!({"type": "message", "user": "U0EVILAPP", "bot_id": "B0EVIL",
                "text": "A-1 · approval needed", "ts": format!("1700000000.{:06}", 900_000 + row),
                // Slack keeps whatever shape an app gave: drbot's (a string) and others.
                "metadata": {"event_type": "drbot_outbox", "event_payload": {"row":
                    if row % 2 == 0 { json!(row.to_string()) } else { json!(row) }}}});
            state.planted.push((channel.to_string(), message));
        }
    }

    /// Waits (briefly) until `method` has been called `n` times; returns the calls.
    pub async fn wait_for(&self, method: &str, n: usize) -> Vec<Call> {
        for _ in 0..200 {
            let calls = self.calls(method);
            if calls.len() >= n {
                return calls;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!(
            "Slack stand-in: expected {n} {method} calls, saw {:?}",
            self.calls(method)
        );
    }
}

fn parse_params(headers: &HeaderMap, query: Option<String>, body: &Bytes) -> Value {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") && !body.is_empty() {
        return serde_json::from_slice(body).unwrap_or(Value::Null);
    }
    let raw = if body.is_empty() {
        query.unwrap_or_default()
    } else {
        String::from_utf8_lossy(body).to_string()
    };
    let map: serde_json::Map<String, Value> = url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    Value::Object(map)
}

async fn web_api(
    State(shared): State<Shared>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = parse_params(&headers, query, &body);
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // A method set to hang: recorded, then no answer (the lock is not held while waiting).
    let hang = {
        let mut state = shared.state.lock().unwrap();
        let hang = matches!(failure_of(&state, &method), Some(Failure::Hang));
        if hang {
            state.calls.push(Call {
                method: method.clone(),
                params: params.clone(),
                authorization: authorization.clone(),
                answer: Value::Null,
                at: std::time::Instant::now(),
            });
            if let Some(left) = state.failures_left.get_mut(&method) {
                *left -= 1;
                if *left == 0 {
                    state.failures_left.remove(&method);
                    state.failures.remove(&method);
                }
            }
        }
        hang
    };
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        return (StatusCode::GATEWAY_TIMEOUT, "hung").into_response();
    }
    let (lose_answer, response) = answer_call(&shared, &method, params, authorization);
    if lose_answer {
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        return (StatusCode::GATEWAY_TIMEOUT, "hung").into_response();
    }
    response
}

/// Records and answers one call; true when the answer is to be lost.
fn answer_call(
    shared: &Shared,
    method: &str,
    params: Value,
    authorization: Option<String>,
) -> (bool, Response) {
    let mut state = shared.state.lock().unwrap();
    let method = method.to_string();
    state.calls.push(Call {
        method: method.clone(),
        params: params.clone(),
        authorization: authorization.clone(),
        answer: Value::Null,
        at: std::time::Instant::now(),
    });
    if method == "apps.connections.open" {
        // The app-level token, not the bot token, opens Socket Mode connections.
        let answer = if authorization.as_deref()
            == Some(&format!("Bearer {}", super::socket_mode::APP_TOKEN))
        {
            shared.socket.open()
        } else {
            json!({"ok": false, "error": "invalid_auth"})
        };
        if let Some(last) = state.calls.last_mut() {
            last.answer = answer.clone();
        }
        return (false, Json(answer).into_response());
    }
    if authorization.as_deref() != Some(&format!("Bearer {BOT_TOKEN}")) {
        return (
            false,
            Json(json!({"ok": false, "error": "invalid_auth"})).into_response(),
        );
    }
    // A private channel is created (and managed) with groups:write.
    let private_scope = ("conversations.create", Some("groups:write"));
    let private = matches!(params.get("is_private"), Some(v) if *v == json!(true) || *v == "true");
    let needs = if method == "conversations.create" && private {
        Some(&private_scope)
    } else {
        METHOD_SCOPES.iter().find(|(m, _)| *m == method)
    };
    match needs {
        None => {
            state
                .violations
                .push(format!("{method}: not a method the stand-in knows"));
            return (
                false,
                Json(json!({"ok": false, "error": "unknown_method"})).into_response(),
            );
        }
        Some((_, Some(scope))) if !shared.scopes.contains(*scope) => {
            state.violations.push(format!(
                "{method}: needs {scope}, missing from the manifest"
            ));
            return (
                false,
                Json(json!({"ok": false, "error": "missing_scope", "needed": scope}))
                    .into_response(),
            );
        }
        _ => {}
    }
    let mut lose_answer = false;
    if let Some(failure) = failure_of(&state, &method).cloned() {
        if let Some(left) = state.failures_left.get_mut(&method) {
            *left -= 1;
            if *left == 0 {
                state.failures_left.remove(&method);
                state.failures.remove(&method);
            }
        }
        lose_answer = matches!(failure, Failure::AnswerLost);
        if !lose_answer {
            return (
                false,
                match failure {
                    Failure::Hang | Failure::AnswerLost => {
                        (StatusCode::GATEWAY_TIMEOUT, "hung").into_response()
                    }
                    Failure::RateLimited { retry_after } => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", retry_after.to_string())],
                        Json(json!({"ok": false, "error": "ratelimited"})),
                    )
                        .into_response(),
                    Failure::ServerError => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "upstream failure").into_response()
                    }
                    Failure::Unavailable => {
                        (StatusCode::SERVICE_UNAVAILABLE, "Slack is down").into_response()
                    }
                    Failure::NotOk(error) => {
                        Json(json!({"ok": false, "error": error})).into_response()
                    }
                },
            );
        }
    }
    let ts = format!("1764220000.{:06}", state.next_ts);
    state.next_ts += 1;
    let channel = params.get("channel").cloned().unwrap_or(json!("C0000000"));
    let answer = match method.as_str() {
        "bots.info" => {
            json!({"ok": true, "bot": {"id": "B0DRBOT", "deleted": false, "name": "drbot", "updated": 1764220000, "app_id": "A0DRBOT", "user_id": BOT_USER}})
        }
        "conversations.list" => {
            // The channels created so far, as Slack lists them (drbot is their creator).
            let channels: Vec<Value> = state
                .created
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name, "is_channel": true, "created": 1764220000, "creator": BOT_USER}))
                .collect();
            json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": ""}})
        }
        "views.publish" => {
            // Slack answers the view as stored, with its id and hash.
            let mut view = match params.get("view") {
                Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                Some(v) => v.clone(),
                None => Value::Null,
            };
            if view.get("type").and_then(|t| t.as_str()) != Some("home") {
                json!({"ok": false, "error": "invalid_arguments"})
            } else {
                view["id"] = json!(format!("V{}", state.calls.len()));
                view["team_id"] = json!("T0DRBOT");
                view["hash"] = json!(format!("{}.hash", state.calls.len()));
                json!({"ok": true, "view": view})
            }
        }
        "auth.test" => {
            json!({"ok": true, "url": "https://drbot-test.slack.com/", "team": "drbot test", "user": "drbot", "team_id": "T0DRBOT", "user_id": BOT_USER, "bot_id": "B0DRBOT"})
        }
        "chat.postMessage" => {
            json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": params.get("text"), "user": BOT_USER, "ts": ts}})
        }
        "chat.update" => {
            json!({"ok": true, "channel": channel, "ts": params.get("ts"), "text": params.get("text"),
            "message": {"type": "message", "text": params.get("text"), "user": BOT_USER, "bot_id": "B0DRBOT",
                "edited": {"user": BOT_USER, "ts": ts}}})
        }
        "conversations.invite" => {
            json!({"ok": true, "channel": {"id": channel, "created": 1764220000, "is_channel": true}})
        }
        "chat.postEphemeral" => json!({"ok": true, "message_ts": ts}),
        "usergroups.users.list" => {
            let group = params
                .get("usergroup")
                .and_then(|g| g.as_str())
                .unwrap_or("");
            match state.groups.get(group) {
                Some(users) => json!({"ok": true, "users": users}),
                None => json!({"ok": false, "error": "no_such_subteam"}),
            }
        }
        "conversations.create" => {
            let name = params
                .get("name")
                .and_then(|n| n.as_str())
                .unwrap_or("channel")
                .to_string();
            if !state.channel_names.insert(name.clone()) {
                let answer = json!({"ok": false, "error": "name_taken"});
                if let Some(last) = state.calls.last_mut() {
                    last.answer = answer.clone();
                }
                return (false, Json(answer).into_response());
            }
            let id = format!("CINC{:06}", state.next_ts);
            state.created.insert(id.clone(), name.clone());
            json!({"ok": true, "channel": {"id": id, "name": name, "is_channel": true, "created": 1764220000}})
        }
        "users.info" => {
            let id = params.get("user").and_then(|u| u.as_str()).unwrap_or("");
            match PEOPLE.iter().find(|(u, _)| *u == id) {
                Some((id, name)) => json!({"ok": true, "user": {"id": id, "team_id": "T0DRBOT",
                    "name": name.to_lowercase().replace(' ', "."), "real_name": name,
                    "profile": {"display_name": name, "real_name": name}}}),
                None => json!({"ok": false, "error": "user_not_found"}),
            }
        }
        "conversations.info" => {
            let id = params.get("channel").and_then(|c| c.as_str()).unwrap_or("");
            let name = match id {
                "C0123OPS" => Some("ops".to_string()),
                other => state.created.get(other).cloned(),
            };
            match name {
                Some(name) => {
                    json!({"ok": true, "channel": {"id": id, "name": name, "is_channel": true, "created": 1764220000}})
                }
                None => json!({"ok": false, "error": "channel_not_found"}),
            }
        }
        "files.getUploadURLExternal" => {
            let id = format!("F{:09}", state.next_ts);
            json!({"ok": true, "file_id": id, "upload_url": format!("http://{}/upload/{id}", shared.addr)})
        }
        "files.completeUploadExternal" => {
            json!({"ok": true, "files": params.get("files").cloned().unwrap_or(json!([]))})
        }
        "conversations.open" => {
            json!({"ok": true, "channel": {"id": format!("D{:09}", state.next_ts)}})
        }
        "conversations.history" | "conversations.replies" => {
            // The posts made so far in the channel (top-level, or the replies of `ts`),
            // newest first, with their metadata, as Slack keeps them.
            let thread = params
                .get("ts")
                .and_then(|t| t.as_str())
                .map(str::to_string);
            let messages: Vec<Value> = state
                .calls
                .iter()
                .rev()
                .filter(|c| c.method == "chat.postMessage" && c.answer["ok"] == true)
                .filter(|c| c.params.get("channel") == Some(&channel))
                .filter(|c| match &thread {
                    None => c.params.get("thread_ts").is_none(),
                    Some(t) => c.params.get("thread_ts").and_then(|v| v.as_str()) == Some(t),
                })
                .map(|c| {
                    let mut m = json!({"type": "message", "user": BOT_USER, "bot_id": "B0DRBOT", "text": c.params.get("text"), "ts": c.answer["ts"]});
                    if let Some(meta) = c.params.get("metadata") {
                        let meta = match meta {
                            Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                            other => other.clone(),
                        };
                        m["metadata"] = meta;
                    }
                    m
                })
                .collect();
            // Another app's posts, newest (top-level only).
            let mut all: Vec<Value> = match &thread {
                None => state
                    .planted
                    .iter()
                    .filter(|(c, _)| Some(&json!(c)) == Some(&channel))
                    .map(|(_, m)| m.clone())
                    .collect(),
                Some(_) => Vec::new(),
            };
            all.extend(messages);
            json!({"ok": true, "messages": all, "has_more": false})
        }
        _ => json!({"ok": true}),
    };
    if let Some(last) = state.calls.last_mut() {
        last.answer = answer.clone();
    }
    (lose_answer, Json(answer).into_response())
}

/// The file content of an upload, recorded as a call of method `upload`.
async fn upload(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> Response {
    shared.state.lock().unwrap().calls.push(Call {
        method: "upload".to_string(),
        params: json!({"file_id": id, "content": String::from_utf8_lossy(&body)}),
        authorization: None,
        answer: json!({"ok": true}),
        at: std::time::Instant::now(),
    });
    (StatusCode::OK, "OK - 200").into_response()
}

async fn response_url(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    shared
        .state
        .lock()
        .unwrap()
        .response_posts
        .push((id, value));
    Json(json!({"ok": true})).into_response()
}
