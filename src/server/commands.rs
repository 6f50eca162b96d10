//! Slash commands: from a verified request to an action: route the text, check who and where,
//! record the outcome in the event log, and answer. Runs on the acknowledgement path, so
//! it does only fast work: parse, one store write, and rendering a reply.

use std::sync::Arc;

use serde_json::json;
use slack_morphism::prelude::*;
use tracing::Span;

use crate::actions::cancel::Cancelled;
use crate::actions::{self, ActionKind};
use crate::app::App;
use crate::metrics;
use crate::router::{self, Approval, CommandDef, Effect, ParsedCommand, Value};
use crate::slack::text::escape;
use crate::store::{EventKind, Incident, NewEvent, RequestState, StoreError};
use crate::workers::jobs::Work;

/// A slash command as Slack sent it.
#[derive(Debug, Clone)]
pub struct CommandRequest {
    pub user: String,
    pub channel: String,
    pub text: String,
    pub response_url: String,
    /// The signed request's timestamp and signature: recorded with the command, so a
    /// replay of the same request is refused (SPEC §10). `None` for commands not signed
    /// by Slack (none today).
    pub replay_key: Option<String>,
}

/// How long a read command (`status`, `blocked`) may take to answer inline.
const INLINE_READ: std::time::Duration = std::time::Duration::from_millis(1200);

impl CommandRequest {
    /// The command as Slack delivered it (over HTTP or Socket Mode), with its replay key.
    pub fn from_event(event: &SlackCommandEvent, replay_key: String) -> Self {
        CommandRequest {
            user: event.user_id.to_string(),
            channel: event.channel_id.to_string(),
            text: event.text.clone().unwrap_or_default(),
            response_url: event.response_url.0.to_string(),
            replay_key: Some(replay_key),
        }
    }

    /// The span a command is handled in; the router records what it found into it.
    pub fn span(&self, transport: &'static str) -> tracing::Span {
        tracing::info_span!(
            "slack.command",
            transport,
            user = %self.user,
            channel = %self.channel,
            command = tracing::field::Empty,
            outcome = tracing::field::Empty,
            incident = tracing::field::Empty,
            action_id = tracing::field::Empty,
        )
    }
}

/// The immediate answer to a slash command (Slack shows it only to the user).
#[derive(Debug, Clone)]
pub struct Reply {
    pub text: String,
    /// The same signed request was received before: answer 401, nothing was done.
    pub replayed: bool,
}

/// A reply as Slack takes it: `{"response_type":"ephemeral","text":…}`.
#[derive(serde::Serialize)]
pub struct ReplyBody<'a> {
    response_type: &'static str,
    text: &'a str,
}

impl Reply {
    /// Serialised straight from the text (no intermediate JSON value: a `help` is 4 KiB).
    pub fn body(&self) -> ReplyBody<'_> {
        ReplyBody {
            response_type: "ephemeral",
            text: &self.text,
        }
    }

    /// [`Self::body`] as JSON bytes. The last long answer's bytes are kept and handed out
    /// again while the answer is the same text (`/dr help`, the most frequent command, is
    /// the same 4 KiB each time; escaping it again was a twentieth of the acknowledgement
    /// path's time under load): comparing the text costs far less than escaping it.
    pub fn json(&self) -> axum::body::Bytes {
        static LAST: std::sync::Mutex<Option<(String, axum::body::Bytes)>> =
            std::sync::Mutex::new(None);
        const WORTH_KEEPING: usize = 1024;
        let long = self.text.len() >= WORTH_KEEPING;
        if long {
            if let Some((text, json)) = &*LAST.lock().unwrap_or_else(|e| e.into_inner()) {
                if *text == self.text {
                    return json.clone();
                }
            }
        }
        let json = axum::body::Bytes::from(
            serde_json::to_vec(&self.body()).expect("a string always serialises"),
        );
        if long {
            *LAST.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((self.text.clone(), json.clone()));
        }
        json
    }
}

/// What to do with a command after routing it.
enum Outcome {
    /// Answer with this text.
    Reply(String),
    /// Work after the acknowledgement, as a durable job.
    Queue { work: Work, reply: String },
    /// Withdraw a pending request.
    Cancel(u64),
    /// A status update to the channel's incident.
    Update(String),
    /// Resolve the channel's incident.
    Resolve(Option<String>),
    /// Post an incident's timeline in the channel.
    Timeline(String),
    /// Steer a plan run (`/dr run pause|resume|abort|retry-step|skip-step|done`).
    Control(Box<ParsedCommand>),
    /// `/dr followup add|done|list`.
    Followup(Box<ParsedCommand>),
    /// Post the channel's incident's postmortem draft.
    Postmortem,
    Refused {
        /// Plain text (it may quote what the user typed): escaped when shown.
        reason: String,
        usage: Option<String>,
        command: Option<String>,
        /// drbot's own mrkdwn after the reason (mentions of who or where may), shown as is.
        tail: String,
    },
}

/// How long the acknowledgement path may wait for the store (Slack gives up after 3 s).
const ACK_BUDGET: std::time::Duration = std::time::Duration::from_secs(2);

const STORE_FAILED: &str = ":warning: drbot could not record this request in its audit log, so it did nothing. Try again in a moment; if it keeps failing, tell whoever runs drbot.";

fn replayed() -> Reply {
    crate::metrics::REPLAYS_REFUSED.inc();
    tracing::warn!("refused a replayed slash command (its signature was already used)");
    Reply {
        text: "this signed request was already received; drbot does not act on a request twice"
            .to_string(),
        replayed: true,
    }
}

/// The answer to a command the store could not record (so nothing was done).
pub fn store_failed() -> Reply {
    Reply {
        text: STORE_FAILED.to_string(),
        replayed: false,
    }
}

pub async fn handle_command(app: &Arc<App>, request: CommandRequest) -> Reply {
    // Slack waits 3 s: a write the store cannot start within ACK_BUDGET is refused, never
    // made later, so "not recorded, nothing done" is always the truth.
    let store = app.store.within(ACK_BUDGET);
    let looked_up = tokio::time::timeout(ACK_BUDGET, store.incident_of_channel(&request.channel))
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::NotWritten(
                "the store did not answer in time".into(),
            ))
        });
    let incident = match looked_up {
        Ok(incident) => incident,
        Err(e) => {
            tracing::error!(error = %e, "could not read the store");
            return store_failed();
        }
    };
    let (outcome, command_name) = decide(app, &request, incident.as_ref()).await;
    let span = Span::current();
    span.record("command", command_name.as_deref().unwrap_or("?"));
    if let Some(incident) = &incident {
        span.record("incident", incident.id.as_str());
    }
    let refused = matches!(outcome, Outcome::Refused { .. });
    span.record("outcome", if refused { "refused" } else { "accepted" });
    metrics::COMMANDS
        .with_label_values(&[
            // Only configured names: a label per mistyped word would grow without bound.
            command_name
                .as_deref()
                .filter(|n| app.commands.get(n).is_some())
                .unwrap_or("unknown"),
            if refused { "refused" } else { "accepted" },
        ])
        .inc();
    let text = request.text.trim();
    let incident_id = incident.as_ref().map(|i| i.id.clone());
    let accepted = NewEvent::new(
        EventKind::CommandAccepted,
        &request.user,
        &request.channel,
        format!("/dr {text}"),
    )
    .detail(json!({ "command": command_name, "text": request.text }))
    .incident(incident_id.clone());
    let refused_event = |reason: &str| {
        NewEvent::new(
            EventKind::CommandRefused,
            &request.user,
            &request.channel,
            format!("/dr {text} (refused: {reason})"),
        )
        .detail(json!({ "command": command_name, "text": request.text, "reason": reason }))
        .incident(incident_id.clone())
    };
    let key = request.replay_key.as_deref();
    // Outcomes that act before they record: the request's key is claimed first.
    if matches!(
        outcome,
        Outcome::Cancel(_)
            | Outcome::Update(_)
            | Outcome::Resolve(_)
            | Outcome::Timeline(_)
            | Outcome::Control(_)
    ) {
        if let Some(key) = key {
            match store.first_use(key).await {
                Ok(true) => {}
                Ok(false) => return replayed(),
                Err(e) => {
                    tracing::error!(error = %e, "could not record a slash command; refusing it");
                    return store_failed();
                }
            }
        }
    }
    let answer = match outcome {
        Outcome::Refused {
            reason,
            usage,
            command,
            tail,
        } => store
            .append_keyed(refused_event(&format!("{reason}{tail}")), key)
            .await
            .map(|_| refusal_text(&reason, &tail, usage.as_deref(), command.as_deref())),
        Outcome::Reply(reply) => {
            let recorded = store.append_keyed(accepted, key).await.map(|_| reply);
            tick_in_incident(
                app,
                incident.as_ref(),
                command_name.as_deref(),
                recorded.is_ok(),
            );
            recorded
        }
        Outcome::Queue { work, reply } => {
            let queued = async {
                let mut tx = store.begin().await?;
                if let Some(key) = key {
                    if !tx.first_use(key).await? {
                        return Err(StoreError::Replayed);
                    }
                }
                tx.append(accepted).await?;
                work.enqueue(&mut tx).await?;
                tx.commit().await
            }
            .await;
            app.jobs.notify_one();
            queued.map(|_| reply)
        }
        Outcome::Cancel(id) => match actions::cancel::run(
            &store,
            &app.settings,
            id,
            &request.user,
            &request.channel,
            accepted,
        )
        .await
        {
            Ok(Cancelled::Done { .. }) => Ok(format!("A-{id} is cancelled; nothing was done.")),
            Ok(Cancelled::Refused(reason)) => store
                .append(refused_event(&reason))
                .await
                .map(|_| format!(":no_entry: {reason}")),
            Err(e) => Err(e),
        },
        Outcome::Update(update) => {
            let incident = incident.expect("decide checked the incident");
            match actions::incident_update::record(
                &store,
                &incident,
                &request.user,
                &update,
                accepted,
            )
            .await
            {
                Ok(()) => Ok("Status update recorded in the incident timeline.".to_string()),
                Err(e) => Err(e),
            }
        }
        Outcome::Resolve(summary) => {
            let incident = incident.expect("decide checked the incident");
            let Some(scenario) = app.scenarios.get(&incident.scenario).cloned() else {
                return Reply {
                    text: format!(
                        ":warning: scenario `{}` is no longer defined",
                        incident.scenario
                    ),
                    replayed: false,
                };
            };
            // Users who were told of the outage are told it is over: drafted for an
            // officer's approval, queued with the resolution.
            let draft = (app.notify.any() && incident.users_told_at.is_some()).then(|| {
                crate::workers::jobs::Work::Plan {
                    text: "notify users --template resolved".into(),
                    user: crate::config::SCHEDULER.into(),
                    channel: incident.channel_id.clone(),
                    response_url: String::new(),
                    incident: Some(incident.id.clone()),
                    scheduled: false,
                }
            });
            let then = draft
                .as_ref()
                .and_then(|w| Some((w.kind(), serde_json::to_value(w).ok()?)));
            match actions::incident_resolve::resolve(
                &store,
                &incident,
                &scenario,
                &app.settings.incidents,
                &request.user,
                summary.as_deref(),
                accepted,
                then,
            )
            .await
            {
                Ok(Some(_)) => {
                    app.jobs.notify_one();
                    Ok(format!(
                        "Incident {} resolved.{}",
                        incident_id.unwrap_or_default(),
                        if draft.is_some() {
                            " The users' \"resolved\" notice is drafted for an officer's approval."
                        } else {
                            ""
                        }
                    ))
                }
                Ok(None) => app
                    .store
                    .append(refused_event("the incident is already resolved"))
                    .await
                    .map(|_| ":no_entry: this incident is already resolved.".to_string()),
                Err(e) => Err(e),
            }
        }
        Outcome::Followup(cmd) => {
            let done = actions::followup::apply(
                &store,
                &cmd,
                &request.user,
                &request.channel,
                incident.as_ref(),
                accepted,
            )
            .await;
            controlled(&store, done, &refused_event).await
        }
        Outcome::Postmortem => {
            let incident = incident.as_ref().expect("run checked the incident");
            actions::incident_postmortem::post(app, incident, &request.user, accepted).await
        }
        Outcome::Control(cmd) => {
            let done = actions::run_control::apply(
                app,
                &store,
                &cmd,
                &request.user,
                &request.channel,
                accepted,
            )
            .await;
            controlled(&store, done, &refused_event).await
        }
        Outcome::Timeline(id) => {
            let recorded = store.append(accepted).await;
            tick_in_incident(
                app,
                incident.as_ref(),
                command_name.as_deref(),
                recorded.is_ok(),
            );
            match recorded.and(app.store.events(Some(&id)).await) {
                Ok(events) => {
                    let pages = actions::timeline::pages(&id, &events);
                    let count = pages.len();
                    let pages = pages
                        .into_iter()
                        .map(|page| crate::store::Outgoing::post(&request.channel, page))
                        .collect();
                    if let Err(e) = app.store.send_slack(pages).await {
                        tracing::error!(error = %e, "could not queue the timeline pages");
                    }
                    Ok(format!(
                        "Posting the timeline of {id}: {} events in {count} message(s).",
                        events.len()
                    ))
                }
                Err(e) => Err(e),
            }
        }
    };
    match answer {
        Ok(text) => {
            tracing::info!("slash command handled");
            Reply {
                text,
                replayed: false,
            }
        }
        Err(StoreError::Replayed) => replayed(),
        Err(e) => {
            tracing::error!(error = %e, "could not record a slash command; refusing it");
            store_failed()
        }
    }
}

/// A checklist step performed by a read command (`status`, `timeline`) in its incident's
/// channel is ticked; steps that change AWS are ticked when their request executes.
fn tick_in_incident(
    app: &Arc<App>,
    incident: Option<&Incident>,
    command: Option<&str>,
    done: bool,
) {
    if let (true, Some(incident), Some(command)) = (done, incident.filter(|i| i.is_open()), command)
    {
        let app = app.clone();
        let (id, command) = (incident.id.clone(), command.to_string());
        tokio::spawn(async move { crate::actions::incident::tick(&app, &id, &command).await });
    }
}

fn refusal_text(reason: &str, tail: &str, usage: Option<&str>, command: Option<&str>) -> String {
    let mut text = format!(":no_entry: {}{tail}", escape(reason));
    match (usage, command) {
        (Some(usage), Some(command)) => text.push_str(&format!(
            "\nUsage: `/dr {}`\nDetails: `/dr help {}`",
            escape(usage),
            escape(command)
        )),
        _ => text.push_str("\nUsage: `/dr <command> [arguments]` — `/dr help` lists the commands."),
    }
    text
}

async fn decide(
    app: &Arc<App>,
    request: &CommandRequest,
    incident: Option<&Incident>,
) -> (Outcome, Option<String>) {
    let cmd = match router::parse(&request.text, &app.commands, &app.settings) {
        Ok(cmd) => cmd,
        Err(refusal) => {
            let name = refusal.command.clone().or_else(|| {
                request
                    .text
                    .split_whitespace()
                    .next()
                    .map(str::to_lowercase)
            });
            return (
                Outcome::Refused {
                    reason: refusal.reason,
                    usage: refusal.usage,
                    command: refusal.command,
                    tail: String::new(),
                },
                name,
            );
        }
    };
    let def = cmd.def.clone();
    let name = Some(def.name.clone());
    let refuse_with = |reason: String, tail: String| Outcome::Refused {
        reason,
        usage: Some(def.usage.clone()),
        command: Some(def.name.clone()),
        tail,
    };
    // `[access]` holds in every channel, incident channels included; `help` stays open.
    if def.action != ActionKind::Help {
        if let Some((reason, tail)) = crate::app::access_refusal(app, &request.user) {
            return (refuse_with(reason, tail), name);
        }
    }
    if let Some((reason, tail)) = channel_refusal(app, &def, &request.channel, incident) {
        return (refuse_with(reason, tail), name);
    }
    if !def.allowed_users.is_empty() && !def.allowed_users.contains(&request.user) {
        let who: Vec<String> = def
            .allowed_users
            .iter()
            .map(|u| format!("<@{u}>"))
            .collect();
        return (
            refuse_with(
                format!("you may not run `/dr {}`; it is limited to ", def.name),
                who.join(", "),
            ),
            name,
        );
    }
    (run(app, def.action, &cmd, request, incident).await, name)
}

/// The refusal for a channel outside `command_channels`: its plain text and drbot's own
/// markup (links to the channels where it may be used).
fn channel_refusal(
    app: &App,
    def: &CommandDef,
    channel: &str,
    incident: Option<&Incident>,
) -> Option<(String, String)> {
    // Its postmortem and follow-ups are written in a resolved incident's channel too.
    let after = matches!(
        def.action,
        ActionKind::IncidentPostmortem | ActionKind::Followup
    );
    let incident_channel = incident.is_some_and(|i| i.is_open() || after);
    let allowed = if def.allowed_channels.is_empty() {
        &app.settings.slack.command_channels
    } else {
        &def.allowed_channels
    };
    // Incident channels are made by drbot for exactly this work.
    if allowed.is_empty()
        || allowed.iter().any(|c| c == channel)
        || (incident_channel && def.allowed_channels.is_empty())
    {
        return None;
    }
    let list: Vec<String> = allowed.iter().map(|c| format!("<#{c}>")).collect();
    // A resolved incident's channel no longer lifts `command_channels`.
    let here = match incident {
        Some(i) => format!("the channel of {}, which is resolved", i.id),
        None => "this channel".to_string(),
    };
    Some((
        format!("`/dr {}` cannot be used in {here}; use it in ", def.name),
        format!("{} or an incident channel", list.join(", ")),
    ))
}

/// The answer to a command applied from drbot's own state (`run …`, `followup …`): its text,
/// or its refusal recorded and said.
async fn controlled(
    store: &crate::store::Store,
    done: Result<actions::run_control::Controlled, crate::store::StoreError>,
    refused_event: &(dyn Fn(&str) -> NewEvent + Sync),
) -> Result<String, crate::store::StoreError> {
    use actions::run_control::Controlled;
    match done? {
        Controlled::Done(text) => Ok(text),
        Controlled::Refused(reason) => store
            .append(refused_event(&reason))
            .await
            .map(|_| format!(":no_entry: {}", crate::slack::text::escape(&reason))),
    }
}

/// The job that opens an incident for `request` (`/dr incident open`, or `/dr run … --drill`
/// outside an incident, which is then asked in its channel: `then`).
fn open_incident_work(
    request: &CommandRequest,
    scenario: &str,
    title: String,
    drill: bool,
    then: Option<String>,
) -> Work {
    Work::IncidentOpen {
        scenario: scenario.to_string(),
        title,
        drill,
        user: request.user.clone(),
        channel: request.channel.clone(),
        response_url: request.response_url.clone(),
        then,
        alarm: None,
    }
}

async fn run(
    app: &Arc<App>,
    action: ActionKind,
    cmd: &ParsedCommand,
    request: &CommandRequest,
    incident: Option<&Incident>,
) -> Outcome {
    let refuse = |reason: String| Outcome::Refused {
        reason,
        usage: Some(cmd.def.usage.clone()),
        command: Some(cmd.def.name.clone()),
        tail: String::new(),
    };
    let open_incident = || incident.filter(|i| i.is_open());
    let not_in_incident = || {
        refuse(format!(
            "`/dr {}` works in an open incident's channel; `/dr incident list` shows them",
            cmd.def.name
        ))
    };
    match action {
        ActionKind::Help => match actions::help::reply(cmd, &app.commands) {
            Ok(text) => Outcome::Reply(text),
            Err(reason) => refuse(reason.0),
        },
        ActionKind::PlanRun
            if open_incident().is_none()
                && cmd.flag("dry-run").is_none()
                && (cmd.flag("drill").is_some() || cmd.flag("title").is_some()) =>
        {
            // `/dr run <scenario> --drill|--title …` outside an incident: the incident first,
            // then the run asked in its channel.
            if let Err(reason) = actions::validate(cmd, &app.settings) {
                return refuse(reason.0);
            }
            let scenario = cmd.arg_word("scenario").unwrap_or_default().to_lowercase();
            if let Err(reason) = actions::incident_open::check_scenario(app, &scenario) {
                return refuse(reason.0);
            }
            let drill = cmd.flag("drill").is_some();
            let title = cmd
                .flag_word("title")
                .map(str::to_string)
                .unwrap_or_else(|| format!("{scenario} plan run"));
            Outcome::Queue {
                work: open_incident_work(request, &scenario, title, drill, Some(request.text.clone())),
                reply: format!("Opening a `{scenario}` {}incident; the plan's approval request will appear in its channel.", if drill { "drill " } else { "" }),
            }
        }
        action if action.changes_aws_with(cmd) => match actions::validate(cmd, &app.settings) {
            Err(reason) => refuse(reason.0),
            Ok(()) => Outcome::Queue {
                work: Work::Plan {
                    text: request.text.clone(),
                    user: request.user.clone(),
                    channel: request.channel.clone(),
                    response_url: request.response_url.clone(),
                    incident: incident.map(|i| i.id.clone()),
                    scheduled: false,
                },
                reply: match cmd.approval() {
                    Approval::Officer => format!(
                        "Planning `/dr {}`: reading the current state from AWS. The approval request will appear in this channel.",
                        escape(request.text.trim())
                    ),
                    Approval::None => format!("Working on `/dr {}`; progress will appear in this channel.", escape(request.text.trim())),
                },
            },
        },
        action if action.effect() == Effect::Reads => {
            if let Err(reason) = actions::validate(cmd, &app.settings) {
                return refuse(reason.0);
            }
            let app2 = app.clone();
            let cmd2 = cmd.clone();
            let asker = crate::gate::request::Asker {
                user: request.user.clone(),
                channel: request.channel.clone(),
                response_url: request.response_url.clone(),
                incident: incident.map(|i| i.id.clone()),
            };
            let mut task = tokio::spawn(async move { actions::read(&app2, &cmd2, &asker).await });
            // A read answers inline only while the record still fits in the acknowledgement
            // budget; slower, it answers through `response_url` (and is recorded now).
            match tokio::time::timeout(INLINE_READ, &mut task).await {
                Ok(Ok(text)) => Outcome::Reply(text),
                Ok(Err(_)) => Outcome::Reply(":warning: drbot failed while reading AWS; see its logs.".to_string()),
                Err(_) => {
                    // Still reading: the answer follows through `response_url`.
                    let app2 = app.clone();
                    let response_url = request.response_url.clone();
                    tokio::spawn(async move {
                        let text = task
                            .await
                            .unwrap_or_else(|_| ":warning: drbot failed while reading AWS; see its logs.".to_string());
                        let answer = crate::store::Outgoing::Respond { url: response_url, text };
                        if let Err(e) = app2.store.send_slack(vec![answer]).await {
                            tracing::warn!(error = %e, "could not queue the answer to a slow read");
                        }
                    });
                    Outcome::Reply("AWS is slow to answer; the result will follow here in a moment.".to_string())
                }
            }
        }
        ActionKind::Approvals => match app.store.requests_in_state(RequestState::Pending).await {
            Ok(pending) => Outcome::Reply(actions::approvals::reply(&pending)),
            Err(e) => {
                tracing::error!(error = %e, "could not list pending requests");
                Outcome::Reply(":warning: drbot could not read its store; try again in a moment.".to_string())
            }
        },
        ActionKind::Cancel => match cmd.arg("action-id") {
            Some(Value::ActionId(id)) => Outcome::Cancel(*id),
            _ => refuse("missing <action-id>".to_string()),
        },
        ActionKind::IncidentOpen => {
            let scenario = cmd.arg_word("scenario").unwrap_or_default().to_lowercase();
            if let Err(reason) = actions::incident_open::check_scenario(app, &scenario) {
                return refuse(reason.0);
            }
            let title = cmd.text("title").unwrap_or_default();
            let drill = cmd.flag("drill").is_some();
            Outcome::Queue {
                work: open_incident_work(request, &scenario, title, drill, None),
                reply: format!("Opening a `{scenario}` incident: creating its channel and notifying the security officers…"),
            }
        }
        ActionKind::IncidentUpdate => match open_incident() {
            Some(_) => Outcome::Update(cmd.text("text").unwrap_or_default()),
            None => not_in_incident(),
        },
        ActionKind::IncidentResolve => match open_incident() {
            Some(_) => Outcome::Resolve(cmd.text("summary")),
            None => not_in_incident(),
        },
        ActionKind::IncidentList => {
            let (open, recent) = tokio::join!(app.store.open_incidents(), app.store.recent_incidents(5));
            match (open, recent) {
                (Ok(open), Ok(recent)) => Outcome::Reply(actions::incident_list::reply(&open, &recent)),
                (Err(e), _) | (_, Err(e)) => {
                    tracing::error!(error = %e, "could not list incidents");
                    Outcome::Reply(":warning: drbot could not read its store; try again in a moment.".to_string())
                }
            }
        }
        ActionKind::Timeline => {
            let wanted = cmd.text("incident").or_else(|| incident.map(|i| i.id.clone()));
            match wanted {
                None => refuse("this is not an incident channel; name the incident, e.g. `/dr timeline inc-20261127-login-flood`".to_string()),
                Some(id) => match app.store.incident(&id).await {
                    Ok(Some(_)) => Outcome::Timeline(id),
                    Ok(None) => refuse(format!("there is no incident `{id}`; `/dr incident list` shows them")),
                    Err(e) => {
                        tracing::error!(error = %e, "could not read an incident");
                        Outcome::Reply(":warning: drbot could not read its store; try again in a moment.".to_string())
                    }
                },
            }
        }
        ActionKind::RunControl => Outcome::Control(Box::new(cmd.clone())),
        ActionKind::Followup => Outcome::Followup(Box::new(cmd.clone())),
        ActionKind::IncidentPostmortem => match incident {
            Some(_) => Outcome::Postmortem,
            None => refuse("`/dr incident postmortem` works in an incident's channel (open or resolved); `/dr incident list` shows them".to_string()),
        },
        other => refuse(format!("`{}` is not available yet", other.name())),
    }
}

#[cfg(test)]
mod reply_tests {
    use super::Reply;

    fn reply(text: &str) -> Reply {
        Reply {
            text: text.to_string(),
            replayed: false,
        }
    }

    /// The kept bytes are handed out only for the same text, short or long.
    #[test]
    fn a_reply_is_the_json_of_its_own_text_whichever_came_before() {
        let long_a = format!("*Commands*\n{}\"<!channel>\"", "a".repeat(2000));
        let long_b = format!("*Commands*\n{}", "b".repeat(2000));
        for text in [
            &long_a,
            &long_a,
            &long_b,
            &"short \"quoted\"".to_string(),
            &long_a,
        ] {
            let json: serde_json::Value = serde_json::from_slice(&reply(text).json()).unwrap();
            assert_eq!(
                json,
                serde_json::json!({"response_type": "ephemeral", "text": text})
            );
        }
    }
}
