//! The HTTP surface (SPEC §4): Slack's three endpoints behind slack-morphism's signature
//! layer, and the health, readiness and metrics endpoints.
//!
//! Order of checks for `/slack/*`: body size (413) → signature and timestamp (401) → body
//! shape (400) → handler. Nothing from an unsigned request reaches a handler or the store.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use http_body_util::{BodyExt, Limited};
use slack_morphism::prelude::*;
use slack_morphism::signature_verifier::{
    SlackEventAbsentSignatureError, SlackEventSignatureVerifierError,
};
use tracing::Instrument;

use crate::app::App;
use crate::metrics;
use crate::slack::client::Client;

/// Largest accepted request body (SPEC §4).
pub const MAX_BODY: usize = 64 * 1024;

/// Builds the router for `serve`: Slack's endpoints when a signing secret is given (HTTP
/// transport); health and readiness always (in Socket Mode only those); `/metrics` unless
/// it has a listener of its own (`DRBOT_METRICS_LISTEN`).
pub fn router(app: Arc<App>, signing_secret: Option<&str>, with_metrics: bool) -> Router {
    let mut router = Router::new();
    if let Some(signing_secret) = signing_secret {
        router = router.merge(slack_routes(&app, signing_secret));
    }
    if app.settings.alarms.https {
        router = router.route("/aws/sns", axum::routing::post(sns_delivery));
    }
    if with_metrics {
        router = router.route(
            "/metrics",
            get(|State(app): State<Arc<App>>| async move { metrics::render(&app.store).await }),
        );
    }
    if let Some(console) = crate::server::console::routes(&app) {
        router = router.merge(console);
    }
    router
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .layer(middleware::from_fn(limit_body))
        .layer(middleware::from_fn(count_requests))
        .with_state(app)
}

/// SNS's HTTPS deliveries of alarms (`[alarms] https`): verified and taken in by
/// `workers::alarms::delivered`; 4xx for anything it refuses.
async fn sns_delivery(
    State(app): State<Arc<App>>,
    body: String,
) -> (axum::http::StatusCode, String) {
    let (status, said) = crate::workers::alarms::delivered(&app, &body).await;
    let status = axum::http::StatusCode::from_u16(status)
        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
    (status, format!("{said}\n"))
}

fn slack_routes(app: &Arc<App>, signing_secret: &str) -> Router<Arc<App>> {
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(app.slack.client().clone())
            .with_error_handler(refuse_request),
    );
    let listener: SlackEventsAxumListener<_> = SlackEventsAxumListener::new(environment);
    let secret = SlackSigningSecret::new(signing_secret.to_string());
    Router::new()
        .route(
            "/slack/commands",
            post(slash_command).layer(
                listener
                    .events_layer(&secret)
                    .with_event_extractor(SlackEventsExtractors::command_event()),
            ),
        )
        .route(
            "/slack/events",
            post(push_event).layer(
                listener
                    .events_layer(&secret)
                    .with_event_extractor(SlackEventsExtractors::push_event()),
            ),
        )
        .route(
            "/slack/interactions",
            post(interaction).layer(
                listener
                    .events_layer(&secret)
                    .with_event_extractor(SlackEventsExtractors::interaction_event()),
            ),
        )
}

/// slack-morphism calls this for a request it will not pass on: a missing, wrong or stale
/// signature is 401; a signed body of the wrong shape is 400.
fn refuse_request(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) -> StatusCode {
    let unsigned = err.downcast_ref::<SlackEventSignatureVerifierError>().is_some()
        || err.downcast_ref::<SlackEventAbsentSignatureError>().is_some()
        // The body could not be read as text, so it was never verified.
        || err.downcast_ref::<std::io::Error>().is_some();
    if unsigned {
        metrics::SIGNATURE_FAILURES.inc();
        tracing::warn!(reason = %first_line(&err.to_string()), "refused a Slack request: bad or missing signature");
        StatusCode::UNAUTHORIZED
    } else {
        tracing::warn!(reason = %first_line(&err.to_string()), "refused a signed Slack request: malformed body");
        StatusCode::BAD_REQUEST
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// Answers 413 for bodies over [`MAX_BODY`], by header or by counting.
async fn limit_body(request: Request, next: Next) -> Response {
    let declared = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let (parts, body) = request.into_parts();
    if declared.is_some_and(|n| n > MAX_BODY) {
        return too_large(body).await;
    }
    let mut body = body;
    let mut bytes = Vec::new();
    loop {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    bytes.extend_from_slice(data);
                }
                if bytes.len() > MAX_BODY {
                    return too_large(body).await;
                }
            }
            Some(Err(_)) => {
                return (StatusCode::BAD_REQUEST, "unreadable request body\n").into_response()
            }
        }
    }
    next.run(Request::from_parts(parts, Body::from(Bytes::from(bytes))))
        .await
}

/// Answers 413. The rest of a moderately large body (up to 1 MiB) is read and dropped
/// first, so the client, still sending, gets the answer rather than a reset connection.
async fn too_large(body: Body) -> Response {
    let _ = Limited::new(body, 1024 * 1024).collect().await;
    (StatusCode::PAYLOAD_TOO_LARGE, "request body over 64 KiB\n").into_response()
}

async fn count_requests(request: Request, next: Next) -> Response {
    let path: &'static str = match request.uri().path() {
        "/slack/commands" => "/slack/commands",
        "/slack/events" => "/slack/events",
        "/slack/interactions" => "/slack/interactions",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/metrics" => "/metrics",
        p if p.starts_with("/console") => "/console",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::HTTP_REQUESTS
        .with_label_values(&[path, response.status().as_str()])
        .inc();
    if path.starts_with("/slack/") {
        metrics::ACK_SECONDS
            .with_label_values(&[path])
            .observe(started.elapsed().as_secs_f64());
    }
    tracing::debug!(
        path,
        status = response.status().as_u16(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "answered"
    );
    response
}

async fn ready(State(app): State<Arc<App>>) -> Response {
    if !app.ready.load(std::sync::atomic::Ordering::Relaxed) {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not serving (starting or stopping)\n",
        )
            .into_response()
    } else if app.store.ping().await {
        // Slack being down is said, never failing readiness: drbot still works (the
        // console, the outbox keeps what waits for Slack).
        let slack = match app.slack_health.down_since() {
            Some(since) => format!(
                "slack: down since {} (its Web API does not answer; messages wait in the outbox{})\n",
                crate::clock::rfc3339(since),
                if app.settings.console.enabled {
                    "; the web console at /console works"
                } else {
                    ""
                }
            ),
            None => "slack: answering\n".to_string(),
        };
        (StatusCode::OK, format!("ready\n{slack}")).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
    }
}

/// `/metrics` alone, for `DRBOT_METRICS_LISTEN`.
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<Arc<App>>| async move { metrics::render(&app.store).await }),
        )
        .with_state(app)
}

/// A signed request seen before (the same timestamp and signature) is refused, so a
/// captured request cannot be replayed inside Slack's 5-minute window (SPEC §10). The key
/// is remembered in the store, so this holds across restarts and replicas. `None`: go on.
fn replay_key(headers: &HeaderMap) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    format!(
        "{}:{}",
        header("x-slack-request-timestamp"),
        header("x-slack-signature")
    )
}

async fn refuse_replay(app: &App, headers: &HeaderMap) -> Option<Response> {
    let key = replay_key(headers);
    match app.store.within(REPLAY_CHECK_BUDGET).first_use(&key).await {
        Ok(true) => None,
        Ok(false) => {
            metrics::REPLAYS_REFUSED.inc();
            tracing::warn!("refused a replayed Slack request (its signature was already used)");
            Some(
                (
                    StatusCode::UNAUTHORIZED,
                    "this signed request was already received; drbot does not act on a request twice\n",
                )
                    .into_response(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "could not check a request against replays; refused");
            Some(
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "drbot could not record this request; nothing was done\n",
                )
                    .into_response(),
            )
        }
    }
}

/// A request from another workspace or app: refused, nothing recorded.
fn foreign(why: &str) -> Response {
    metrics::FOREIGN_REFUSED.inc();
    tracing::warn!(reason = %why, "refused a Slack request from another workspace or app");
    (StatusCode::FORBIDDEN, format!("{why}\n")).into_response()
}

/// How long the replay check may wait for the store (the command's own writes follow).
const REPLAY_CHECK_BUDGET: std::time::Duration = std::time::Duration::from_millis(1500);

async fn slash_command(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Extension(event): Extension<SlackCommandEvent>,
) -> Response {
    if let Some(why) = app.foreign(event.team_id.as_ref(), None) {
        return foreign(&why);
    }
    // The replay key is claimed with the command's own record (one write, not two).
    let request = crate::server::commands::CommandRequest::from_event(&event, replay_key(&headers));
    let span = request.span("http");
    let reply = crate::server::commands::handle_command(&app, request)
        .instrument(span)
        .await;
    if reply.replayed {
        return (StatusCode::UNAUTHORIZED, format!("{}\n", reply.text)).into_response();
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        reply.json(),
    )
        .into_response()
}

async fn push_event(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Extension(event): Extension<SlackPushEvent>,
) -> Response {
    if let Some(refused) = refuse_replay(&app, &headers).await {
        return refused;
    }
    match event {
        SlackPushEvent::UrlVerification(v) => {
            Json(serde_json::json!({ "challenge": v.challenge })).into_response()
        }
        SlackPushEvent::EventCallback(callback) => {
            if let Some(why) = app.foreign(
                callback.team_id.as_ref(),
                Some(callback.api_app_id.as_ref()),
            ) {
                return foreign(&why);
            }
            let retry = headers
                .get("x-slack-retry-num")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u32>().ok());
            let span = tracing::info_span!("slack.event", event_id = %callback.event_id, retry = retry.unwrap_or(0));
            match crate::server::events::handle_event(&app, callback)
                .instrument(span)
                .await
            {
                Ok(()) => StatusCode::OK.into_response(),
                // Not recorded: let Slack deliver it again rather than lose it.
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        SlackPushEvent::AppRateLimited(limited) => {
            tracing::warn!(team = %limited.team_id, "Slack is rate-limiting event deliveries to drbot");
            StatusCode::OK.into_response()
        }
    }
}

async fn interaction(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Extension(event): Extension<SlackInteractionEvent>,
) -> Response {
    if let Some(refused) = refuse_replay(&app, &headers).await {
        return refused;
    }
    let raw = serde_json::to_value(&event).unwrap_or_default();
    let team = raw
        .pointer("/team/id")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let app_id = raw.pointer("/api_app_id").and_then(|v| v.as_str());
    if let Some(why) = app.foreign(team, app_id) {
        return foreign(&why);
    }
    let span = tracing::info_span!("slack.interaction");
    match crate::server::interactions::handle_interaction(&app, event)
        .instrument(span)
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
