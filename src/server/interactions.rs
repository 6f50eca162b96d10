//! Block Kit interactions: a request's Approve and Reject buttons, and anything else
//! (recorded).

use std::sync::Arc;

use serde_json::json;
use slack_morphism::prelude::*;

use super::events::{handle_reaction_like, request_button, DeliverAgain};
use crate::app::App;
use crate::store::{EventKind, NewEvent};

/// A Block Kit interaction. The Approve and Reject buttons of a request go through the
/// gate exactly as the approve and reject reactions do (officer, not the requester, not
/// expired, the plan re-checked before execution); anything else is recorded.
pub async fn handle_interaction(
    app: &Arc<App>,
    event: SlackInteractionEvent,
) -> Result<(), DeliverAgain> {
    let raw = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
    if let Some(button) = request_button(app, &raw) {
        return handle_reaction_like(app, &button, "button").await;
    }
    if let Some(button) = super::home::button(app, &raw).await {
        return handle_reaction_like(app, &button?, "button").await;
    }
    if let Some(posted) = crate::actions::incident_postmortem::clicked(app, &raw).await {
        return posted.map_err(|e| {
            tracing::error!(error = %e, "could not post a postmortem draft");
            DeliverAgain::from(e)
        });
    }
    if let Some(decided) = crate::workers::alarms::clicked(app, &raw).await {
        return decided.map_err(|e| {
            tracing::error!(error = %e, "could not record a decision on an alarm's proposal");
            DeliverAgain::from(e)
        });
    }
    let kind = raw
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown")
        .to_string();
    let user = raw
        .pointer("/user/id")
        .and_then(|u| u.as_str())
        .unwrap_or("")
        .to_string();
    let channel = raw
        .pointer("/channel/id")
        .and_then(|c| c.as_str())
        .unwrap_or("")
        .to_string();
    let actions: Vec<String> = raw
        .get("actions")
        .and_then(|a| a.as_array())
        .map(|list| {
            list.iter()
                .filter_map(|a| {
                    a.get("action_id")
                        .and_then(|i| i.as_str())
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let event = NewEvent::new(
        EventKind::SlackInteraction,
        &user,
        &channel,
        format!("{kind} interaction"),
    )
    .detail(json!({ "type": kind, "actions": actions }));
    app.store.append(event).await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "could not record an interaction");
        DeliverAgain::from(e)
    })
}
