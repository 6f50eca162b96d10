//! From a verified Slack request to an action: route the text, check who and where,
//! record the outcome in the event log, and answer. Runs on the acknowledgement path, so
//! it does only fast work: parse, one store write, and rendering a reply.

use std::sync::Arc;

use serde_json::json;
use slack_morphism::prelude::*;
use tracing::Span;

use crate::actions::{self, ActionKind};
use crate::app::App;
use crate::metrics;
use crate::router::{self, CommandDef, ParsedCommand};
use crate::store::NewEvent;

/// A slash command as Slack sent it.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub user: String,
    pub channel: String,
    pub text: String,
    pub response_url: String,
}

/// The immediate answer to a slash command (Slack shows it only to the user).
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
}

impl Reply {
    pub fn to_json(&self) -> serde_json::Value {
        json!({ "response_type": "ephemeral", "text": self.text })
    }
}

/// Why a well-formed command is not run.
enum Outcome {
    Done(String),
    Refused {
        reason: String,
        usage: Option<String>,
        command: Option<String>,
    },
}

pub async fn handle_command(app: &Arc<App>, request: CommandRequest) -> Reply {
    let outcome = decide(app, &request);
    let (kind, command, text, detail) = match &outcome {
        Outcome::Done(_) => (
            "command.accepted",
            None,
            format!("/dr {}", request.text.trim()),
            json!({}),
        ),
        Outcome::Refused {
            reason, command, ..
        } => (
            "command.refused",
            command.clone(),
            format!("/dr {} (refused: {reason})", request.text.trim()),
            json!({ "reason": reason }),
        ),
    };
    let command_name = match &outcome {
        Outcome::Done(_) | Outcome::Refused { .. } => {
            command.clone().or_else(|| first_word(&request.text, app))
        }
    };
    let span = Span::current();
    span.record("command", command_name.as_deref().unwrap_or("?"));
    span.record("outcome", kind);
    metrics::inc(
        "drbot_commands_total",
        format!(
            "command=\"{}\",outcome=\"{}\"",
            metrics::label(command_name.as_deref().unwrap_or("unknown")),
            if kind == "command.accepted" {
                "accepted"
            } else {
                "refused"
            }
        ),
    );
    let mut detail = detail;
    detail["command"] = json!(command_name);
    detail["text"] = json!(request.text);
    let event = NewEvent::new(kind, &request.user, &request.channel, text).detail(detail);
    if let Err(e) = app.store.append(event).await {
        tracing::error!(error = %e, "could not record a slash command; refusing it");
        return Reply {
            text: ":warning: drbot could not record this request in its audit log, so it did nothing. Try again in a moment; if it keeps failing, tell whoever runs drbot.".to_string(),
        };
    }
    tracing::info!("slash command handled");
    match outcome {
        Outcome::Done(text) => Reply { text },
        Outcome::Refused {
            reason,
            usage,
            command,
        } => Reply {
            text: refusal_text(&reason, usage.as_deref(), command.as_deref()),
        },
    }
}

fn first_word(text: &str, app: &App) -> Option<String> {
    let word = text.split_whitespace().next()?.to_lowercase();
    app.commands
        .get(&word)
        .map(|d| d.name.clone())
        .or(Some(word))
}

fn refusal_text(reason: &str, usage: Option<&str>, command: Option<&str>) -> String {
    let mut text = format!(":no_entry: {reason}");
    match (usage, command) {
        (Some(usage), Some(command)) => text.push_str(&format!(
            "\nUsage: `/dr {usage}`\nDetails: `/dr help {command}`"
        )),
        _ => text.push_str("\nUsage: `/dr <command> [arguments]` — `/dr help` lists the commands."),
    }
    text
}

fn decide(app: &Arc<App>, request: &CommandRequest) -> Outcome {
    let cmd = match router::parse(&request.text, &app.commands, &app.settings) {
        Ok(cmd) => cmd,
        Err(refusal) => {
            return Outcome::Refused {
                reason: refusal.reason,
                usage: refusal.usage,
                command: refusal.command,
            }
        }
    };
    let def = cmd.def.clone();
    let refuse = |reason: String| Outcome::Refused {
        reason,
        usage: Some(def.usage.clone()),
        command: Some(def.name.clone()),
    };
    if let Some(reason) = channel_refusal(app, &def, &request.channel) {
        return refuse(reason);
    }
    if !def.allowed_users.is_empty() && !def.allowed_users.contains(&request.user) {
        let who: Vec<String> = def
            .allowed_users
            .iter()
            .map(|u| format!("<@{u}>"))
            .collect();
        return refuse(format!(
            "you may not run `/dr {}`; it is limited to {}",
            def.name,
            who.join(", ")
        ));
    }
    let action: ActionKind = match def.action.parse() {
        Ok(a) => a,
        Err(()) => {
            return refuse(format!(
                "`/dr {}` names an unknown action `{}`",
                def.name, def.action
            ))
        }
    };
    if !action.is_available() {
        return refuse(format!(
            "`/dr {}` is defined, but its action (`{}`) is not available in this version of drbot yet; nothing was done",
            def.name,
            action.name()
        ));
    }
    run(app, action, &cmd)
}

fn channel_refusal(app: &App, def: &CommandDef, channel: &str) -> Option<String> {
    let allowed = if def.allowed_channels.is_empty() {
        &app.settings.slack.command_channels
    } else {
        &def.allowed_channels
    };
    if allowed.is_empty() || allowed.iter().any(|c| c == channel) {
        return None;
    }
    let list: Vec<String> = allowed.iter().map(|c| format!("<#{c}>")).collect();
    Some(format!(
        "`/dr {}` cannot be used in this channel; use it in {}",
        def.name,
        list.join(", ")
    ))
}

fn run(app: &Arc<App>, action: ActionKind, cmd: &ParsedCommand) -> Outcome {
    match action {
        ActionKind::Help => match actions::help::reply(cmd, &app.commands) {
            Ok(text) => Outcome::Done(text),
            Err(reason) => Outcome::Refused {
                reason,
                usage: Some(cmd.def.usage.clone()),
                command: Some(cmd.def.name.clone()),
            },
        },
        other => Outcome::Refused {
            reason: format!("`{}` is not available yet", other.name()),
            usage: Some(cmd.def.usage.clone()),
            command: Some(cmd.def.name.clone()),
        },
    }
}

/// An Events API delivery: recorded once per `event_id`, then acted on.
/// `Err(())` means it could not be recorded and Slack should deliver it again.
pub async fn handle_event(app: &Arc<App>, callback: SlackPushEventCallback) -> Result<(), ()> {
    let raw = serde_json::to_value(&callback.event).unwrap_or(serde_json::Value::Null);
    let event_type = raw
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("unknown")
        .to_string();
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
    let event = NewEvent::new(&format!("slack.{event_type}"), &user, &channel, text).detail(detail);
    let stored = match app
        .store
        .append_once(&callback.event_id.to_string(), event)
        .await
    {
        Ok(stored) => stored,
        Err(e) => {
            tracing::error!(error = %e, "could not record a Slack event");
            return Err(());
        }
    };
    let fresh = stored.is_some();
    metrics::inc(
        "drbot_slack_events_total",
        format!(
            "type=\"{}\",delivery=\"{}\"",
            metrics::label(&event_type),
            if fresh { "new" } else { "duplicate" }
        ),
    );
    if !fresh {
        tracing::info!(event_type, "duplicate delivery ignored");
        return Ok(());
    }
    if let SlackEventCallbackBody::AppMention(mention) = callback.event {
        if mention.user.to_string() != app.bot_user_id() {
            let app = app.clone();
            tokio::spawn(async move {
                let thread = mention
                    .origin
                    .thread_ts
                    .clone()
                    .unwrap_or(mention.origin.ts.clone());
                let text = "I take commands through `/dr`. `/dr help` lists them.";
                if let Err(e) = app
                    .slack
                    .post_message(
                        &mention.channel.to_string(),
                        text,
                        Some(&thread.to_string()),
                    )
                    .await
                {
                    tracing::warn!(error = %e, "could not answer a mention");
                }
            });
        }
    }
    Ok(())
}

/// A Block Kit interaction: recorded; buttons are an alternative to reactions.
pub async fn handle_interaction(app: &Arc<App>, event: SlackInteractionEvent) -> Result<(), ()> {
    let raw = serde_json::to_value(&event).unwrap_or(serde_json::Value::Null);
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
        "slack.interaction",
        &user,
        &channel,
        format!("{kind} interaction"),
    )
    .detail(json!({ "type": kind, "actions": actions }));
    app.store.append(event).await.map(|_| ()).map_err(|e| {
        tracing::error!(error = %e, "could not record an interaction");
    })
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
