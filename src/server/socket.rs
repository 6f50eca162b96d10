//! Socket Mode (SPEC §10): `drbot serve --socket-mode` with `SLACK_APP_TOKEN` receives slash
//! commands, events and button clicks over Slack's WebSocket (slack-morphism's listener,
//! which opens `apps.connections.open`, keeps the connections and reconnects after a drop)
//! instead of HTTP, so drbot needs no public URL.
//!
//! Each envelope goes to the same handlers as its HTTP twin, with the same guarantees: an
//! envelope is acknowledged only once what it asked for is recorded; one that could not be
//! recorded is not acknowledged, so Slack delivers it again. Slack may deliver an envelope
//! again after a reconnect: events are kept once by `event_id`, slash commands by their
//! `trigger_id` (the replay key of HTTP's signed requests), clicks by their action time.

use std::sync::Arc;

use slack_morphism::prelude::*;
use tracing::Instrument;

use crate::app::App;
use crate::config::Secret;
use crate::slack::client::{Client, SlackError};

/// A running Socket Mode listener.
pub struct Socket {
    listener: SlackClientSocketModeListener<crate::slack::client::Connector>,
}

impl Socket {
    /// Opens the connections (`apps.connections.open`) and starts listening.
    pub async fn connect(app: Arc<App>, token: &Secret) -> Result<Socket, SlackError> {
        let environment = Arc::new(
            SlackClientEventsListenerEnvironment::new(app.slack.client().clone())
                .with_error_handler(not_recorded)
                .with_user_state(app.clone()),
        );
        let callbacks = SlackSocketModeListenerCallbacks::new()
            .with_command_events(on_command)
            .with_push_events(on_event)
            .with_interaction_events(on_interaction);
        let config = SlackClientSocketModeConfig::new()
            .with_initial_backoff_in_seconds(1)
            .with_reconnect_timeout_in_seconds(10);
        let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
        listener
            .listen_for(&SlackApiToken::new(token.expose().into()))
            .await
            .map_err(|e| SlackError::Unreachable {
                url: "apps.connections.open".into(),
                method: "apps.connections.open",
                message: e.to_string().lines().next().unwrap_or("").to_string(),
            })?;
        listener.start().await;
        tracing::info!("listening over Socket Mode");
        Ok(Socket { listener })
    }

    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}

/// Why an envelope is not acknowledged (Slack delivers it again).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct NotRecorded(String);

/// A callback's error: the envelope stays unacknowledged.
fn not_recorded(
    err: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<Client>,
    _state: SlackClientEventsUserState,
) -> axum::http::StatusCode {
    tracing::warn!(reason = %err, "a Socket Mode envelope was not acknowledged; Slack will deliver it again");
    axum::http::StatusCode::SERVICE_UNAVAILABLE
}

async fn app_of(state: &SlackClientEventsUserState) -> Arc<App> {
    state
        .read()
        .await
        .get_user_state::<Arc<App>>()
        .expect("the listener environment carries the app")
        .clone()
}

/// A refusal of a foreign workspace or app, counted like its HTTP twin.
fn foreign(why: &str) {
    crate::metrics::FOREIGN_REFUSED.inc();
    tracing::warn!(reason = %why, "refused a Socket Mode envelope from another workspace or app");
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let app = app_of(&state).await;
    let reply = |text: String| {
        SlackCommandEventResponse::new(SlackMessageContent::new().with_text(text))
            .with_response_type(SlackMessageResponseType::Ephemeral)
    };
    if let Some(why) = app.foreign(event.team_id.as_ref(), None) {
        foreign(&why);
        return Ok(reply(format!(":no_entry: {why}")));
    }
    // A command delivered again (after a reconnect) has the same trigger id.
    let request = crate::server::commands::CommandRequest::from_event(
        &event,
        format!("socket:{}", event.trigger_id),
    );
    let span = request.span("socket");
    let answer = crate::server::commands::handle_command(&app, request)
        .instrument(span)
        .await;
    Ok(reply(answer.text))
}

async fn on_event(
    event: SlackPushEventCallback,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let app = app_of(&state).await;
    if let Some(why) = app.foreign(event.team_id.as_ref(), Some(event.api_app_id.as_ref())) {
        foreign(&why);
        return Ok(());
    }
    let span = tracing::info_span!("slack.event", transport = "socket", event_id = %event.event_id);
    crate::server::events::handle_event(&app, event)
        .instrument(span)
        .await
        .map_err(|e| Box::new(NotRecorded(format!("the event was not taken: {e}"))).into())
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<Client>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<()> {
    let app = app_of(&state).await;
    let raw = serde_json::to_value(&event).unwrap_or_default();
    let team = raw
        .pointer("/team/id")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    if let Some(why) = app.foreign(team, raw.pointer("/api_app_id").and_then(|v| v.as_str())) {
        foreign(&why);
        return Ok(());
    }
    let span = tracing::info_span!("slack.interaction", transport = "socket");
    crate::server::interactions::handle_interaction(&app, event)
        .instrument(span)
        .await
        .map_err(|e| Box::new(NotRecorded(format!("the click was not taken: {e}"))).into())
}
