//! Events API deliveries: recorded once per `event_id`, then acted on. Reactions on
//! request messages (and the buttons standing for them) go to the approval gate.

use std::sync::Arc;

use serde_json::json;
use slack_morphism::prelude::*;

use crate::actions;
use crate::app::App;
use crate::gate::{
    self,
    reactions::{Handled, Reaction},
};
use crate::metrics;
use crate::store::{EventKind, NewEvent};

/// An Events API delivery: recorded once per `event_id`, then acted on.
/// Why Slack should deliver an event (or a click) again: drbot answers it with a 5xx (or
/// leaves it unacknowledged in Socket Mode) and nothing of it took effect.
#[derive(Debug, thiserror::Error)]
pub enum DeliverAgain {
    #[error("it could not be recorded: {0}")]
    NotRecorded(#[from] crate::store::StoreError),
    #[error("it reacts to a request still being posted")]
    RequestNotPostedYet,
}

/// An Events API delivery: recorded once per `event_id`, then acted on.
pub async fn handle_event(
    app: &Arc<App>,
    callback: SlackPushEventCallback,
) -> Result<(), DeliverAgain> {
    let raw = serde_json::to_value(&callback.event).unwrap_or(serde_json::Value::Null);
    let event_type = raw
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown")
        .to_string();
    if event_type == "reaction_added" || event_type == "reaction_removed" {
        return handle_reaction(app, callback.event_id.as_ref(), &event_type, &raw).await;
    }
    let user = str_at(&raw, "user").unwrap_or_default();
    let channel = str_at(&raw, "channel")
        .or_else(|| {
            raw.pointer("/item/channel")
                .and_then(|c| c.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let text = match &callback.event {
        SlackEventCallbackBody::ReactionAdded(r) => {
            format!(":{}: added by <@{}>", r.reaction, r.user)
        }
        SlackEventCallbackBody::ReactionRemoved(r) => {
            format!(":{}: removed by <@{}>", r.reaction, r.user)
        }
        SlackEventCallbackBody::AppMention(_) => "drbot was mentioned".to_string(),
        _ => format!("{event_type} event received"),
    };
    let detail = json!({
        "event_id": callback.event_id.to_string(),
        "type": event_type,
        "event": slim(&raw),
    });
    let event =
        NewEvent::new(EventKind::Slack(event_type.clone()), &user, &channel, text).detail(detail);
    let stored = match app
        .store
        .append_once(callback.event_id.as_ref(), event)
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, "could not record a Slack event");
            return Err(e.into());
        }
    };
    let fresh = stored.is_some();
    metrics::SLACK_EVENTS
        .with_label_values(&[
            known_event(&event_type),
            if fresh { "new" } else { "duplicate" },
        ])
        .inc();
    if !fresh {
        tracing::info!(event_type, "duplicate delivery ignored");
        return Ok(());
    }
    if event_type == "app_home_opened"
        && raw.get("tab").and_then(|t| t.as_str()) != Some("messages")
    {
        if let Err(e) = super::home::opened(app, &user).await {
            tracing::warn!(error = %e, "could not queue the App Home view");
        }
    }
    if let SlackEventCallbackBody::AppMention(mention) = callback.event {
        if mention.user.to_string() != app.bot_user_id() {
            let thread = mention
                .origin
                .thread_ts
                .clone()
                .unwrap_or(mention.origin.ts.clone());
            let answer = crate::store::Outgoing::Post {
                channel: mention.channel.to_string(),
                text: "I take commands through `/dr`. `/dr help` lists them.".to_string(),
                blocks: None,
                thread: Some(crate::store::Anchor::Ts(thread.to_string())),
                after: None,
            };
            if let Err(e) = app.store.send_slack(vec![answer]).await {
                tracing::warn!(error = %e, "could not queue the answer to a mention");
            }
        }
    }
    Ok(())
}

/// An Approve or Reject button click on a request message, as the reaction it stands for.
pub(super) fn request_button(app: &App, raw: &serde_json::Value) -> Option<Reaction> {
    let text = |pointer: &str| raw.pointer(pointer).and_then(|v| v.as_str());
    if text("/type") != Some("block_actions") {
        return None;
    }
    let action = raw.pointer("/actions/0")?;
    let action_id = action.get("action_id")?.as_str()?;
    let approval = &app.settings.approval;
    let name = match action_id {
        gate::message::APPROVE_BUTTON => approval.approve_reactions.first()?,
        gate::message::REJECT_BUTTON => approval.reject_reactions.first()?,
        _ => return None,
    };
    let ts = text("/container/message_ts")?;
    let action_ts = action
        .get("action_ts")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    let user = text("/user/id")?;
    Some(Reaction {
        // One click is one delivery; a second click is a new one (and changes nothing
        // once the request is decided).
        event_id: format!("button:{ts}:{user}:{action_ts}"),
        added: true,
        user: user.to_string(),
        name: name.clone(),
        channel: text("/container/channel_id")
            .or_else(|| text("/channel/id"))?
            .to_string(),
        ts: ts.to_string(),
        item_user: Some(app.bot_user_id().to_string()),
        request: None,
    })
}

async fn handle_reaction(
    app: &Arc<App>,
    event_id: &str,
    event_type: &str,
    raw: &serde_json::Value,
) -> Result<(), DeliverAgain> {
    let text = |pointer: &str| {
        raw.pointer(pointer)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let reaction = Reaction {
        event_id: event_id.to_string(),
        added: event_type == "reaction_added",
        user: text("/user"),
        name: text("/reaction"),
        channel: text("/item/channel"),
        ts: text("/item/ts"),
        item_user: raw
            .pointer("/item_user")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        request: None,
    };
    handle_reaction_like(app, &reaction, event_type).await
}

/// Puts a reaction (or the button standing for one) to the gate and carries out its verdict.
pub(super) async fn handle_reaction_like(
    app: &Arc<App>,
    reaction: &Reaction,
    event_type: &str,
) -> Result<(), DeliverAgain> {
    let verdict = gate::reactions::handle(app, reaction).await.map_err(|e| {
        tracing::error!(error = %e, "could not record a reaction");
        DeliverAgain::from(e)
    })?;
    let delivery = match &verdict {
        Handled::Duplicate => "duplicate",
        Handled::Done(_) => "new",
        Handled::Later => "deferred",
    };
    metrics::SLACK_EVENTS
        .with_label_values(&[known_event(event_type), delivery])
        .inc();
    match verdict {
        Handled::Duplicate => tracing::info!(event_type, "duplicate delivery ignored"),
        Handled::Done(follow) if !follow.is_empty() => {
            tokio::spawn(actions::follow_up(app.clone(), follow));
        }
        Handled::Done(_) => {}
        Handled::Later => {
            tracing::info!(
                event_type,
                "reaction on a request still being posted; Slack will deliver it again"
            );
            return Err(DeliverAgain::RequestNotPostedYet);
        }
    }
    Ok(())
}

/// An event type as a metric label: the ones drbot subscribes to, else `other`.
fn known_event(event_type: &str) -> &str {
    match event_type {
        "reaction_added" | "reaction_removed" | "app_mention" | "url_verification"
        | "app_home_opened" => event_type,
        _ => "other",
    }
}

fn str_at(v: &serde_json::Value, key: &str) -> Option<String> {
    v.get(key).and_then(|x| x.as_str()).map(str::to_string)
}

/// The event without bulky message blocks, for the log.
fn slim(raw: &serde_json::Value) -> serde_json::Value {
    let mut v = raw.clone();
    if let Some(obj) = v.as_object_mut() {
        obj.remove("blocks");
        obj.remove("attachments");
    }
    v
}
