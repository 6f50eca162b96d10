//! The web console `serve` offers at `/console` (SPEC §19), for the hours Slack is down:
//! the one console of `crate::console`, its state read from drbot's store, behind the AWS
//! Application Load Balancer's OIDC sign-in.
//!
//! Every request: the load balancer's `x-amzn-oidc-data` token verified ([`super::alb`]:
//! ES256, key by `kid`, signer = our load balancer, expiry) → 401; its email mapped to a
//! Slack user id through `[console] people` → 403 for anyone else. Every change (POST):
//! same origin (`Origin` is this host) and the session's token (`x-drbot-csrf`, derived from
//! an HttpOnly, SameSite=Strict cookie bound to the signed-in subject) → 403. Every answer:
//! a Content-Security-Policy with `frame-ancestors 'none'`.
//!
//! A command goes to [`super::commands::handle_command`] and a decision to
//! [`crate::gate::reactions`] exactly as Slack's would, with the person's Slack user id, so
//! the same rules hold (officers, four eyes, expiry, plan re-check, exactly once); their
//! events carry `via` = the console and the verified email ([`crate::store::VIA`]).

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tracing::Instrument;

use super::alb::AlbKeys;
use crate::app::App;
use crate::gate::reactions::{handle_told, Handled, Reaction};
use crate::store::{console_url, console_via, Outgoing, VIA};

/// The session cookie (a random value bound to the signed-in subject).
const COOKIE: &str = "drbot_console";
/// The header a change carries the session's token in.
const CSRF_HEADER: &str = "x-drbot-csrf";
/// Messages read per channel.
const SHOWN: i64 = 200;

/// Who is signed in, once verified.
#[derive(Debug, Clone)]
struct SignedIn {
    user: String,
    email: String,
    subject: String,
}

impl SignedIn {
    fn via(&self) -> Option<Value> {
        Some(console_via(&self.user, &self.email))
    }
}

/// The console's routes, when `[console] enabled`.
pub fn routes(app: &Arc<App>) -> Option<Router<Arc<App>>> {
    let settings = &app.settings.console;
    if !settings.enabled {
        return None;
    }
    let keys = Arc::new(AlbKeys::new(&settings.region(), test_keys_url()));
    let router = Router::new()
        .route("/console", get(page))
        .route("/console/", get(page))
        .route(
            "/console/console.js",
            get(|| async { asset("text/javascript", crate::console::SCRIPT) }),
        )
        .route(
            "/console/console.css",
            get(|| async { asset("text/css", crate::console::STYLE) }),
        )
        .route("/console/api/state", get(state))
        .route("/console/api/command", post(command))
        .route("/console/api/click", post(click))
        .route(
            "/console/api/home",
            post(|| async { Json(json!({"ok": true})) }),
        )
        .route("/console/files/{id}", get(file))
        .route("/console/exports/{incident}", get(export))
        .route("/console/report.html", get(report))
        .route(
            "/console/{*rest}",
            axum::routing::any(|| async {
                (StatusCode::NOT_FOUND, "the console has no such page\n")
            }),
        )
        .route_layer(middleware::from_fn_with_state(
            (app.clone(), keys),
            signed_in,
        ))
        .route_layer(middleware::from_fn(protective_headers));
    Some(router)
}

/// Tests only: the base URL serving the load balancer's keys (`DRBOT_TEST_ALB_KEYS_URL`),
/// taken only on this machine (start-up refuses any other and warns about this one).
pub fn test_keys_url() -> Option<String> {
    std::env::var("DRBOT_TEST_ALB_KEYS_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

/// The console's page, its script and style named from `/console/` (it is served at
/// `/console` and `/console/` alike).
async fn page() -> Html<&'static str> {
    static PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        crate::console::PAGE
            .replace("href=\"console.css\"", "href=\"/console/console.css\"")
            .replace("src=\"console.js\"", "src=\"/console/console.js\"")
    });
    Html(PAGE.as_str())
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// What every console answer carries: its CSP (a record's own, or the console's), never
/// framed, never sniffed, never cached, no referrer.
async fn protective_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(crate::console::CSP),
        );
    }
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

fn refuse(status: StatusCode, why: String) -> Response {
    (status, format!("{why}\n")).into_response()
}

/// The sign-in, the person, and for a change its origin and session token.
async fn signed_in(
    State((app, keys)): State<(Arc<App>, Arc<AlbKeys>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let settings = &app.settings.console;
    let token = request
        .headers()
        .get("x-amzn-oidc-data")
        .and_then(|v| v.to_str().ok());
    let now = crate::clock::now().timestamp();
    let identity = match keys.identify(token, &settings.load_balancer_arn, now).await {
        Ok(identity) => identity,
        Err(refusal) => {
            tracing::warn!(reason = %refusal, path = %request.uri().path(), "console: sign-in refused");
            let status = StatusCode::from_u16(refusal.status()).unwrap_or(StatusCode::UNAUTHORIZED);
            return refuse(
                status,
                format!("{refusal}. drbot's console is opened through the company's sign-in at the load balancer (https://<drbot's address>/console); it has no passwords of its own."),
            );
        }
    };
    let Some(user) = settings.person(&identity.email) else {
        tracing::warn!(email = %identity.email, "console: a signed-in person who is not in [console] people");
        return refuse(
            StatusCode::FORBIDDEN,
            format!("{} is signed in, but is not one of drbot's console people: ask whoever runs drbot to map this email to your Slack user in [console] people.", identity.email),
        );
    };
    let me = SignedIn {
        user: user.to_string(),
        email: identity.email.to_ascii_lowercase(),
        subject: identity.subject,
    };
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Err(why) = same_origin(request.headers()) {
            tracing::warn!(email = %me.email, reason = %why, "console: a change from another origin refused");
            return refuse(StatusCode::FORBIDDEN, why);
        }
        let ours = cookie(request.headers()).filter(|s| bound_to(s, &me.subject));
        let given = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let good = ours.is_some_and(|value| carries_token(&value, given));
        if !good {
            tracing::warn!(email = %me.email, "console: a change without this session's token refused");
            return refuse(
                StatusCode::FORBIDDEN,
                "this change does not carry this session's token: reload the console and try again"
                    .into(),
            );
        }
    }
    request.extensions_mut().insert(me);
    next.run(request).await
}

/// `Origin` (else `Sec-Fetch-Site`) says the change comes from this host's own page.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = get("host").unwrap_or_default();
    match get("origin") {
        Some(origin) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or("");
            if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
                Ok(())
            } else {
                Err(format!("the console takes changes only from its own page (this one came from `{origin}`)"))
            }
        }
        None if get("sec-fetch-site") == Some("same-origin") => Ok(()),
        None => Err("the console takes changes only from its own page (this request says neither its Origin nor Sec-Fetch-Site)".into()),
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

fn subject_tag(subject: &str) -> String {
    hex::encode(&Sha256::digest(format!("drbot-console-subject\n{subject}").as_bytes())[..8])
}

/// A session value is `<tag of its subject>.<random>`: another person's session is not one.
fn bound_to(session: &str, subject: &str) -> bool {
    session
        .split_once('.')
        .is_some_and(|(tag, random)| tag == subject_tag(subject) && random.len() == 32)
}

fn new_session(subject: &str) -> String {
    let mut random = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random)
        .expect("the system has randomness");
    format!("{}.{}", subject_tag(subject), hex::encode(random))
}

/// The token a change must carry for `session`: an HMAC keyed by it, so the header never
/// is the cookie.
fn csrf_mac(cookie_value: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(cookie_value.as_bytes()).expect("HMAC takes any key length");
    mac.update(b"drbot-console-csrf");
    mac
}

fn csrf_token(session: &str) -> String {
    hex::encode(csrf_mac(session).finalize().into_bytes())
}

/// Whether `given` is `session`'s token (compared in constant time).
fn carries_token(session: &str, given: &str) -> bool {
    hex::decode(given).is_ok_and(|bytes| csrf_mac(session).verify_slice(&bytes).is_ok())
}

#[derive(Deserialize)]
struct StateQuery {
    channel: Option<String>,
}

/// Everything the page draws, for the signed-in person; sets the session cookie when new.
async fn state(
    State(app): State<Arc<App>>,
    Extension(me): Extension<SignedIn>,
    headers: HeaderMap,
    Query(q): Query<StateQuery>,
) -> Response {
    let session = cookie(&headers)
        .filter(|s| bound_to(s, &me.subject))
        .map(|s| (s, false))
        .unwrap_or_else(|| (new_session(&me.subject), true));
    let drawn = async {
        let names = app.store.names().await.unwrap_or_default();
        let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_string());
        let mut channels: Vec<Value> = app
            .settings
            .slack
            .command_channels
            .iter()
            .map(|c| json!({"id": c, "name": name(c), "kind": "channel"}))
            .collect();
        for incident in app.store.recent_incidents(20).await? {
            if !channels.iter().any(|c| c["id"] == incident.channel_id.as_str()) {
                channels.push(json!({"id": incident.channel_id, "name": incident.id, "kind": "channel", "status": incident.status}));
            }
        }
        let channel = q.channel.filter(|c| !c.is_empty() && c != "HOME");
        let messages = match &channel {
            Some(channel) => {
                let answers = Outgoing::Respond {
                    url: console_url(channel, &me.user, &me.email),
                    text: String::new(),
                }
                .lane();
                let rows = app
                    .store
                    .outbox_lanes(&[channel.clone(), answers], SHOWN)
                    .await?;
                crate::console::view::messages(&rows, channel, &me.user, app.bot_user_id())
            }
            None => Vec::new(),
        };
        let officer = app.settings.approval.officers.contains(&me.user);
        let home = super::home::view(&super::home::model(&app).await?, officer, crate::clock::now());
        let (waiting, _) = app.store.outbox_status(0).await?;
        let mut people: Vec<Value> = app
            .settings
            .console
            .people
            .iter()
            .map(|(email, id)| json!({"id": id, "name": email, "role": ""}))
            .collect();
        people.push(json!({"id": me.user, "name": me.email, "role": "you"}));
        Ok::<_, crate::store::StoreError>(json!({
            "mode": "serve",
            "you": {"id": me.user, "email": me.email, "name": name(&me.user), "officer": officer},
            "channels": channels,
            "messages": messages,
            "home": home,
            "people": people,
            "scenarios": [],
            "bot": app.bot_user_id(),
            "csrf": csrf_token(&session.0),
            "slack": {
                "down": app.slack_health.down_since().is_some(),
                "since": app.slack_health.down_since().map(crate::clock::rfc3339),
                "waiting": waiting,
            },
        }))
    }
    .await;
    let mut response = match drawn {
        Ok(body) => Json(body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console: could not read the store");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "drbot could not read its store; try again in a moment".into(),
            );
        }
    };
    if session.1 {
        let secure = headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|p| p.eq_ignore_ascii_case("https"));
        let cookie = format!(
            "{COOKIE}={}; Path=/console; HttpOnly; SameSite=Strict{}",
            session.0,
            if secure { "; Secure" } else { "" }
        );
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

/// A nonce from the page: one click or one command, so a retry of the same one acts once.
fn nonce(given: &str) -> Result<String, String> {
    let ok = (16..=64).contains(&given.len()) && given.chars().all(|c| c.is_ascii_hexdigit());
    if ok {
        Ok(format!("console:{given}"))
    } else {
        Err("this request carries no usable nonce: reload the console and try again".into())
    }
}

#[derive(Deserialize)]
struct CommandIn {
    channel: String,
    text: String,
    #[serde(default)]
    nonce: String,
}

/// `/dr …` typed in the console: the slash command as Slack would deliver it, from the
/// signed-in person; answered in the page (and, for work done later, from the outbox).
async fn command(
    State(app): State<Arc<App>>,
    Extension(me): Extension<SignedIn>,
    Json(c): Json<CommandIn>,
) -> Json<Value> {
    let key = match nonce(&c.nonce) {
        Ok(key) => key,
        Err(why) => return Json(json!({"ok": false, "error": why})),
    };
    let typed = c.text.trim();
    let Some(args) = typed
        .strip_prefix("/dr")
        .filter(|rest| rest.is_empty() || rest.starts_with(char::is_whitespace))
    else {
        return Json(
            json!({"ok": false, "error": "the console takes drbot's commands only: type `/dr help` to list them (messages to people go through Slack or your incident bridge)"}),
        );
    };
    let channel = c.channel.trim();
    if channel.is_empty() || !channel.chars().all(|ch| ch.is_ascii_alphanumeric()) {
        return Json(json!({"ok": false, "error": "choose a channel on the left first"}));
    }
    let request = super::commands::CommandRequest {
        user: me.user.clone(),
        channel: channel.to_string(),
        text: args.trim().to_string(),
        response_url: console_url(channel, &me.user, &me.email),
        replay_key: Some(key),
    };
    let span = request.span("console");
    let reply = VIA
        .scope(
            me.via(),
            super::commands::handle_command(&app, request).instrument(span),
        )
        .await;
    if reply.replayed {
        return Json(
            json!({"ok": false, "error": "this command was already received; drbot does not act on it twice"}),
        );
    }
    Json(json!({"ok": true, "answer": reply.text}))
}

#[derive(Deserialize)]
struct ClickIn {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    request: Option<i64>,
    #[serde(default)]
    nonce: String,
}

/// Approve or Reject, from a request's message or from Home: the gate's decision as for the
/// reaction it stands for, by the signed-in person.
async fn click(
    State(app): State<Arc<App>>,
    Extension(me): Extension<SignedIn>,
    Json(k): Json<ClickIn>,
) -> Json<Value> {
    let event_id = match nonce(&k.nonce) {
        Ok(key) => key,
        Err(why) => return Json(json!({"ok": false, "error": why})),
    };
    let approval = &app.settings.approval;
    let name = match k.action_id.as_str() {
        crate::gate::message::APPROVE_BUTTON | super::home::HOME_APPROVE => {
            approval.approve_reactions.first()
        }
        crate::gate::message::REJECT_BUTTON | super::home::HOME_REJECT => {
            approval.reject_reactions.first()
        }
        _ => None,
    };
    let Some(name) = name.cloned() else {
        return Json(
            json!({"ok": false, "error": "this button acts only in Slack; in the console, type its command (`/dr help` lists them)"}),
        );
    };
    let id = k
        .request
        .or_else(|| k.value.as_deref().and_then(|v| v.trim().parse().ok()));
    let Some(id) = id else {
        return Json(json!({"ok": false, "error": "this button names no request"}));
    };
    let request = match app.store.request(id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return Json(json!({"ok": false, "error": format!("there is no request A-{id}")}))
        }
        Err(e) => {
            tracing::error!(error = %e, "console: could not read a request");
            return Json(
                json!({"ok": false, "error": "drbot could not read its store; nothing was done, try again"}),
            );
        }
    };
    let reaction = Reaction {
        event_id,
        added: true,
        user: me.user.clone(),
        name,
        channel: request.channel.clone(),
        ts: request.message_ts.clone().unwrap_or_default(),
        item_user: Some(app.bot_user_id().to_string()),
        request: Some(id),
    };
    let span = tracing::info_span!("console.decision", user = %me.user, request = id);
    let decided = VIA
        .scope(me.via(), handle_told(&app, &reaction).instrument(span))
        .await;
    let (handled, told) = match decided {
        Ok(done) => done,
        Err(e) => {
            tracing::error!(error = %e, "console: could not record a decision");
            return Json(
                json!({"ok": false, "error": "drbot could not record this decision, so nothing was done; try again"}),
            );
        }
    };
    match handled {
        Handled::Done(follow) if !follow.is_empty() => {
            tokio::spawn(crate::actions::follow_up(app.clone(), follow));
        }
        Handled::Duplicate => {
            return Json(
                json!({"ok": true, "answer": "this click was already received; it acts once"}),
            )
        }
        _ => {}
    }
    let answer = if told.is_empty() {
        match app.store.request(id).await {
            Ok(Some(r)) => format!("{} is {}.", r.label(), r.state.as_str()),
            _ => "recorded.".to_string(),
        }
    } else {
        told.join("\n")
    };
    Json(json!({"ok": true, "answer": answer}))
}

/// A file drbot shared in a channel (a report, a postmortem draft), from the outbox.
async fn file(State(app): State<Arc<App>>, Path(id): Path<i64>) -> Response {
    match app.store.outbox_row(id).await {
        Ok(Some(Outgoing::Upload {
            filename, content, ..
        })) => {
            let disposition = format!(
                "inline; filename=\"{}\"",
                filename.replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '.' && c != '-',
                    "_"
                )
            );
            let mut response = (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                content,
            )
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&disposition) {
                response
                    .headers_mut()
                    .insert(header::CONTENT_DISPOSITION, v);
            }
            response.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'; frame-ancestors 'none'"),
            );
            response
        }
        Ok(_) => refuse(StatusCode::NOT_FOUND, "no such file".into()),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

fn record(rendered: Result<String, crate::store::StoreError>) -> Response {
    match rendered {
        Ok(html) => (
            [(header::CONTENT_SECURITY_POLICY, crate::console::RECORD_CSP)],
            Html(html),
        )
            .into_response(),
        Err(e) => refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// An incident's timeline export (HTML).
async fn export(State(app): State<Arc<App>>, Path(incident): Path<String>) -> Response {
    let id = incident.trim_end_matches(".html");
    record(crate::console::records::timeline_html(&app.store, id).await)
}

/// This quarter's DR review (HTML).
async fn report(State(app): State<Arc<App>>) -> Response {
    record(crate::console::records::report_html(&app.store, Some(&app.scenarios)).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_bound_to_its_subject_and_changes_need_the_same_origin() {
        let session = new_session("00u1");
        assert!(bound_to(&session, "00u1"));
        assert!(
            !bound_to(&session, "00u2"),
            "another person's session is not one"
        );
        assert_ne!(csrf_token(&session), session);
        assert!(carries_token(&session, &csrf_token(&session)));
        assert!(!carries_token(&session, &csrf_token(&new_session("00u1"))));
        assert!(!carries_token(&session, "not hex"));
        let mut h = HeaderMap::new();
        h.insert("host", "drbot.example.com".parse().unwrap());
        assert!(
            same_origin(&h).is_err(),
            "neither Origin nor Sec-Fetch-Site"
        );
        h.insert("origin", "https://evil.example".parse().unwrap());
        assert!(same_origin(&h).is_err());
        h.insert("origin", "https://drbot.example.com".parse().unwrap());
        assert!(same_origin(&h).is_ok());
        assert!(nonce("abc").is_err() && nonce(&"a".repeat(32)).is_ok());
    }
}
