//! The console's HTTP side: the page, the workspace's state, and what a persona does —
//! `/dr …`, reactions, button clicks — sent to drbot exactly as Slack sends them (signed
//! requests to `/slack/commands`, `/slack/events`, `/slack/interactions`); drbot's Web API
//! calls land in the [`Workspace`]; the AWS panel reads the emulator.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::workspace::{Workspace, APP, BOT_USER, PEOPLE, TEAM};
use crate::store::Store;

/// What the console's handlers share.
#[derive(Clone)]
pub struct Console {
    pub workspace: Workspace,
    /// drbot's own listener (`http://127.0.0.1:PORT`), once started.
    pub drbot: Arc<std::sync::OnceLock<String>>,
    /// The console's address (`http://127.0.0.1:PORT`): drbot's Slack API and response URLs.
    pub base: String,
    pub signing_secret: String,
    pub store: Arc<std::sync::OnceLock<Store>>,
    pub scenarios: Vec<(String, String)>,
    pub estate: super::estate::Estate,
    /// The sandbox's status page and mail outbox.
    pub notices: super::notices::Notices,
    next: Arc<AtomicU64>,
}

impl Console {
    pub fn new(
        base: String,
        signing_secret: String,
        scenarios: Vec<(String, String)>,
        estate: super::estate::Estate,
        notices: super::notices::Notices,
    ) -> Self {
        Console {
            workspace: Workspace::new(),
            drbot: Arc::default(),
            base,
            signing_secret,
            store: Arc::default(),
            scenarios,
            estate,
            notices,
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    pub fn router(self) -> Router {
        Router::new()
            .route("/", get(|| async { Html(crate::console::PAGE) }))
            .route(
                "/console.js",
                get(|| async { asset("text/javascript", crate::console::SCRIPT) }),
            )
            .route(
                "/console.css",
                get(|| async { asset("text/css", crate::console::STYLE) }),
            )
            .route("/api/state", get(state))
            .route("/api/command", post(command))
            .route("/api/react", post(react))
            .route("/api/click", post(click))
            .route("/api/home", post(home_opened))
            .route("/api/aws", get(aws))
            .route("/api/notices", get(notices))
            .route("/slack-api/{method}", axum::routing::any(web_api))
            .route("/respond/{channel}/{user}", post(respond))
            .route("/upload/{id}", post(upload))
            .route("/files/{id}", get(file))
            .route("/exports/{incident}", get(export))
            .route("/report.html", get(report))
            .fallback(|uri: axum::http::Uri| async move {
                (
                    StatusCode::NOT_FOUND,
                    format!("the sandbox console has no {uri}"),
                )
            })
            .layer(axum::middleware::from_fn_with_state(
                self.base.clone(),
                same_origin,
            ))
            .with_state(self)
    }

    fn n(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }

    /// POSTs `body` to drbot's `path`, signed with the signing secret as Slack signs.
    async fn send(&self, path: &str, content_type: &str, body: String) -> Result<String, Unsent> {
        let Some(drbot) = self.drbot.get() else {
            return Err(Unsent::Starting);
        };
        let ts = chrono::Utc::now().timestamp();
        let mut mac = Hmac::<Sha256>::new_from_slice(self.signing_secret.as_bytes())
            .map_err(|e| Unsent::Http(e.to_string()))?;
        mac.update(format!("v0:{ts}:{body}").as_bytes());
        let signature = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
        let request = axum::http::Request::post(format!("{drbot}{path}"))
            .header("content-type", content_type)
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| Unsent::Http(e.to_string()))?;
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let answer = client
            .request(request)
            .await
            .map_err(|e| Unsent::Http(e.to_string()))?;
        let status = answer.status();
        let bytes = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| Unsent::Http(e.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&bytes).to_string();
        if status.is_success() {
            Ok(text)
        } else {
            Err(Unsent::Refused { status, text })
        }
    }
}

/// Why the console could not hand a request to drbot.
#[derive(Debug, thiserror::Error)]
enum Unsent {
    #[error("drbot is still starting")]
    Starting,
    #[error("{0}")]
    Http(String),
    #[error("drbot answered {status}: {text}")]
    Refused {
        status: axum::http::StatusCode,
        text: String,
    },
}

fn person(id: &str) -> Option<&'static (&'static str, &'static str, &'static str)> {
    PEOPLE.iter().find(|(u, _, _)| *u == id)
}

#[derive(Deserialize)]
struct Viewer {
    #[serde(rename = "as")]
    viewer: Option<String>,
}

async fn state(State(c): State<Console>, Query(v): Query<Viewer>) -> Json<Value> {
    let viewer = v.viewer.unwrap_or_else(|| PEOPLE[0].0.to_string());
    Json(json!({
        "mode": "sandbox",
        "channels": c.workspace.channels(),
        "messages": c.workspace.messages(&viewer),
        "home": c.workspace.home(&viewer),
        "people": PEOPLE.iter().map(|(id, name, role)| json!({"id": id, "name": name, "role": role})).collect::<Vec<_>>(),
        "scenarios": c.scenarios.iter().map(|(id, title)| json!({"id": id, "title": title})).collect::<Vec<_>>(),
        "bot": BOT_USER,
    }))
}

#[derive(Deserialize)]
struct CommandIn {
    #[serde(rename = "as")]
    user: String,
    channel: String,
    text: String,
}

/// `/dr …` typed in the composer, sent as Slack sends a slash command.
async fn command(State(c): State<Console>, Json(cmd): Json<CommandIn>) -> Json<Value> {
    let Some((user, name, _)) = person(&cmd.user) else {
        return Json(json!({"ok": false, "error": "unknown persona"}));
    };
    let text = cmd.text.trim();
    let Some(args) = text.strip_prefix("/dr").map(str::trim) else {
        c.workspace.post_as(&cmd.channel, user, text, None);
        return Json(json!({"ok": true}));
    };
    // What you typed stays visible to you, as in Slack.
    c.workspace.post_as(&cmd.channel, user, text, Some(user));
    let channel_name = c
        .workspace
        .channels()
        .into_iter()
        .find(|ch| ch.id == cmd.channel)
        .map(|ch| ch.name)
        .unwrap_or_default();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "sandbox-verification-token")
        .append_pair("team_id", TEAM)
        .append_pair("team_domain", "drbot-sandbox")
        .append_pair("channel_id", &cmd.channel)
        .append_pair("channel_name", &channel_name)
        .append_pair("user_id", user)
        .append_pair("user_name", &name.to_lowercase().replace(' ', "."))
        .append_pair("command", "/dr")
        .append_pair("text", args)
        .append_pair("api_app_id", APP)
        .append_pair("is_enterprise_install", "false")
        .append_pair(
            "response_url",
            &format!("{}/respond/{}/{user}", c.base, cmd.channel),
        )
        .append_pair("trigger_id", &format!("sandbox.{}.trigger", c.n()))
        .finish();
    let reply = match c
        .send("/slack/commands", "application/x-www-form-urlencoded", body)
        .await
    {
        Ok(answer) => serde_json::from_str::<Value>(&answer)
            .ok()
            .and_then(|v| v.get("text").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(answer),
        Err(e) => format!(":warning: {e}"),
    };
    if !reply.trim().is_empty() {
        c.workspace
            .post_as(&cmd.channel, BOT_USER, &reply, Some(user));
    }
    Json(json!({"ok": true, "reply": reply}))
}

#[derive(Deserialize)]
struct ReactIn {
    #[serde(rename = "as")]
    user: String,
    channel: String,
    ts: String,
    name: String,
    add: bool,
}

/// A reaction added or removed by a persona, delivered to drbot as an Events API callback.
async fn react(State(c): State<Console>, Json(r): Json<ReactIn>) -> Json<Value> {
    if person(&r.user).is_none()
        || !c
            .workspace
            .react(&r.channel, &r.ts, &r.name, &r.user, r.add)
    {
        return Json(json!({"ok": false}));
    }
    let event = json!({
        "type": if r.add { "reaction_added" } else { "reaction_removed" },
        "user": r.user,
        "reaction": r.name,
        "item_user": BOT_USER,
        "item": {"type": "message", "channel": r.channel, "ts": r.ts},
    });
    deliver_event(&c, event).await
}

#[derive(Deserialize)]
struct HomeIn {
    #[serde(rename = "as")]
    user: String,
}

/// A persona opened drbot's Home tab: the `app_home_opened` event Slack sends.
async fn home_opened(State(c): State<Console>, Json(h): Json<HomeIn>) -> Json<Value> {
    if person(&h.user).is_none() {
        return Json(json!({"ok": false}));
    }
    let event =
        json!({"type": "app_home_opened", "user": h.user, "channel": "D0HOME0001", "tab": "home"});
    deliver_event(&c, event).await
}

/// Delivers `event` to drbot as Slack's Events API does (its envelope, a fresh event id).
async fn deliver_event(c: &Console, mut event: Value) -> Json<Value> {
    let n = c.n();
    event["event_ts"] = json!(format!("{}.{n:06}", chrono::Utc::now().timestamp()));
    let envelope = json!({
        "token": "sandbox-verification-token",
        "team_id": TEAM,
        "api_app_id": APP,
        "type": "event_callback",
        "event_id": format!("Ev{n:010}"),
        "event_time": chrono::Utc::now().timestamp(),
        "event": event,
    });
    let sent = c
        .send("/slack/events", "application/json", envelope.to_string())
        .await;
    Json(json!({"ok": sent.is_ok(), "error": sent.err().map(|e| e.to_string())}))
}

#[derive(Deserialize)]
struct ClickIn {
    #[serde(rename = "as")]
    user: String,
    channel: String,
    ts: String,
    action_id: String,
    #[serde(default)]
    value: String,
}

/// A button of a message clicked by a persona, delivered as a Block Kit interaction.
async fn click(State(c): State<Console>, Json(k): Json<ClickIn>) -> Json<Value> {
    let Some((user, name, _)) = person(&k.user) else {
        return Json(json!({"ok": false}));
    };
    let payload = json!({
        "type": "block_actions",
        "team": {"id": TEAM, "domain": "drbot-sandbox"},
        "user": {"id": user, "team_id": TEAM, "username": name.to_lowercase().replace(' ', ".")},
        "api_app_id": APP,
        "token": "sandbox-verification-token",
        "trigger_id": format!("sandbox.{}.click", c.n()),
        "container": {"type": "message", "message_ts": k.ts, "channel_id": k.channel, "is_ephemeral": false},
        "channel": {"id": k.channel, "name": "channel"},
        "response_url": format!("{}/respond/{}/{user}", c.base, k.channel),
        "actions": [{"type": "button", "action_id": k.action_id, "block_id": "b", "value": k.value,
                     "text": {"type": "plain_text", "text": k.action_id},
                     "action_ts": format!("{}.{}", chrono::Utc::now().timestamp(), c.n())}]
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let sent = c
        .send(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    Json(json!({"ok": sent.is_ok(), "error": sent.err().map(|e| e.to_string())}))
}

/// drbot's Web API calls (JSON posts and query-string reads).
async fn web_api(
    State(c): State<Console>,
    Path(method): Path<String>,
    headers: HeaderMap,
    query: axum::extract::RawQuery,
    body: Bytes,
) -> Json<Value> {
    let json_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let mut params = if json_body && !body.is_empty() {
        serde_json::from_slice(&body).unwrap_or(Value::Null)
    } else {
        let raw = if body.is_empty() {
            query.0.unwrap_or_default()
        } else {
            String::from_utf8_lossy(&body).to_string()
        };
        Value::Object(
            url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
                .collect(),
        )
    };
    // `users` arrives as a list or as comma-separated ids.
    if let Some(Value::Array(users)) = params.get("users").cloned() {
        params["users"] = users.first().cloned().unwrap_or(Value::Null);
    }
    Json(
        c.workspace
            .call(&method, &params, &format!("{}/upload", c.base)),
    )
}

/// `response_url`: drbot's later answer to one person.
async fn respond(
    State(c): State<Console>,
    Path((channel, user)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let text = body.get("text").and_then(Value::as_str).unwrap_or("");
    let everyone = body.get("response_type").and_then(Value::as_str) == Some("in_channel");
    c.workspace.post_as(
        &channel,
        BOT_USER,
        text,
        (!everyone).then_some(user.as_str()),
    );
    Json(json!({"ok": true}))
}

async fn upload(State(c): State<Console>, Path(id): Path<String>, body: Bytes) -> &'static str {
    c.workspace.store_upload(&id, body.to_vec());
    "OK - 200"
}

/// An uploaded file, shown as text: whatever was uploaded (HTML included) is never served as
/// a page of the console's origin, where its scripts could drive the console.
async fn file(State(c): State<Console>, Path(id): Path<String>) -> Response {
    match c.workspace.file(&id) {
        Some((_, bytes)) => (
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'",
                ),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

/// The console answers only when asked by its own name (`Host`: a rebound DNS name pointing
/// at 127.0.0.1 is refused), and takes changes only from its own pages (`Origin` on every
/// request that is not a GET: a cross-site form or fetch is refused).
async fn same_origin(
    State(base): State<String>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let port = base.rsplit(':').next().unwrap_or_default();
    let ours =
        |host: &str| host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}");
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if !ours(host) {
        let why = format!(
            "the sandbox console answers only at {base} (this request names host `{host}`)"
        );
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    let changes = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD
    );
    if let Some(origin) = request.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        let from_us = origin.strip_prefix("http://").is_some_and(ours);
        if changes && !from_us {
            let why = format!("the sandbox console takes changes only from its own pages at {base} (this one came from `{origin}`)");
            return (StatusCode::FORBIDDEN, why).into_response();
        }
    }
    next.run(request).await
}

/// An incident's timeline export (HTML), as `drbot timeline export` renders it.
async fn export(State(c): State<Console>, Path(incident): Path<String>) -> Response {
    let id = incident.trim_end_matches(".html").to_string();
    let Some(store) = c.store.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    };
    match crate::console::records::timeline_html(store, &id).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// This quarter's DR review (HTML).
async fn report(State(c): State<Console>) -> Response {
    let Some(store) = c.store.get() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "starting").into_response();
    };
    let commands = crate::router::CommandSet::embedded().ok();
    let scenarios = commands
        .as_ref()
        .and_then(|c| crate::scenarios::ScenarioSet::embedded(c).ok());
    match crate::console::records::report_html(store, scenarios.as_ref()).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// One of the console's own files, never cached across versions.
fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The AWS panel: what the emulator holds now.
async fn aws(State(c): State<Console>) -> Json<Value> {
    Json(super::panel::read(&c.estate).await)
}

/// The users' panel: the sandbox's status page and the emails sent.
async fn notices(State(c): State<Console>) -> Json<Value> {
    Json(c.notices.view())
}
