//! The alarm intake (SPEC §16): CloudWatch alarms arrive through SNS — from the SQS queue
//! drbot long-polls here, or from `POST /aws/sns` — and each message is recorded once (its
//! `MessageId`), routed ([`crate::alarms::route`], pure) and turned into a proposal with
//! *Open incident* / *Dismiss*, an incident opened at once, a line in its incident's
//! timeline, or a record. An SQS message is deleted only after its alarm is recorded. An
//! alarm never runs a change.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::watch;
use tracing::Instrument;

use crate::actions::incident_open::AlarmRef;
use crate::alarms::route::{decide, route, Effect, Known};
use crate::alarms::sns::{Alarm, Envelope};
use crate::app::App;
use crate::slack::text::{escape, inert};
use crate::store::{Anchor, EventKind, NewAlarm, NewEvent, Outgoing, StoreError, StoreTx};
use crate::workers::jobs::Work;

/// The buttons of a proposal.
pub const OPEN_BUTTON: &str = "alarm_open";
pub const DISMISS_BUTTON: &str = "alarm_dismiss";

/// Who an incident opened by an alarm is opened by (not a Slack user).
pub const ALARM_ACTOR: &str = "drbot";

/// What became of one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    Recorded(Effect),
    /// Its `MessageId` was recorded before: nothing more.
    Duplicate,
    /// Not an alarm drbot accepts (unreadable, another topic): recorded as refused.
    Refused(String),
}

/// Long-polls `[alarms] queue` until stopped; deletes each message once its alarm is
/// recorded (a message whose recording failed comes back after the queue's visibility
/// timeout and is recorded then — once).
pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let Some(queue) = app.settings.alarms.queue.clone() else {
        return;
    };
    let client = app.aws.sqs(&queue);
    let mut backoff = Duration::from_secs(1);
    loop {
        let received = tokio::select! {
            r = crate::aws::sqs::receive(&client, &queue) => r,
            _ = stop.changed() => return,
        };
        let messages = match received {
            Ok(messages) => {
                backoff = Duration::from_secs(1);
                messages
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the alarm queue; trying again");
                tokio::select! {
                    _ = crate::clock::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        for message in messages {
            let span = tracing::info_span!("alarm", sqs_message = %message.id);
            match take_in(&app, &message.body).instrument(span).await {
                Ok(taken) => {
                    tracing::info!(?taken, "alarm message taken in");
                    if let Err(e) = crate::aws::sqs::delete(&client, &queue, &message.receipt).await
                    {
                        // Delivered again later, and recorded once.
                        tracing::warn!(error = %e, "could not delete an alarm message");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "could not record an alarm; it stays in the queue")
                }
            }
        }
    }
}

/// Tests only: signing certificates may also come from under this HTTPS base URL (a local
/// stand-in), as `DRBOT_TEST_CLOCK` moves time; warned about at start-up.
pub const TEST_CERTS_VAR: &str = "DRBOT_TEST_SNS_CERTS";

/// How far a delivery's `Timestamp` may lie in the past (SNS's retries end well before) or
/// the future (clock skew): outside it the message is a replay and refused.
const FRESH: chrono::Duration = chrono::Duration::hours(1);
const SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// One delivery to `POST /aws/sns` (`[alarms] https`): the status to answer and why. Taken
/// in only when its topic is configured, its timestamp fresh, its certificate SNS's (fetched
/// over HTTPS, kept) and its signature (version 1 or 2) that certificate's; a subscription
/// is confirmed with `AuthenticateOnUnsubscribe`. Anything else: 4xx, nothing changed.
pub async fn delivered(app: &Arc<App>, body: &str) -> (u16, String) {
    let envelope = match Envelope::parse(body) {
        Ok(e) => e,
        Err(why) => return (400, why),
    };
    if !accepted(app, &envelope) {
        return (
            403,
            "the topic is not one of drbot's `[alarms] topics`".into(),
        );
    }
    let now = crate::clock::now();
    let sent = envelope
        .timestamp
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    match sent {
        None => return (400, "the message has no readable Timestamp".into()),
        Some(t) if now - t > FRESH || t - now > SKEW => {
            return (
                400,
                "the message's Timestamp is not recent: a replay is refused".into(),
            )
        }
        Some(_) => {}
    }
    let test_base = std::env::var(TEST_CERTS_VAR).ok();
    let url = match envelope
        .signing_cert_url
        .as_deref()
        .ok_or_else(|| "the message is not signed (no SigningCertURL)".to_string())
        .and_then(|u| crate::alarms::sns::certificate_url_allowed(u, test_base.as_deref()))
    {
        Ok(url) => url,
        Err(why) => return (403, why),
    };
    let timeout = app.aws.timeout_in(None).call;
    let pem = match crate::aws::sns::signing_certificate(&url, timeout).await {
        Ok(pem) => pem,
        // SNS delivers again after a 5xx.
        Err(why) => return (502, format!("the signing certificate: {why}")),
    };
    if let Err(why) = crate::alarms::sns::verify(&envelope, &pem) {
        tracing::warn!(reason = %why, "an SNS delivery's signature was refused");
        return (403, why);
    }
    match envelope.kind.as_str() {
        "SubscriptionConfirmation" => {
            let token = envelope.token.clone().unwrap_or_default();
            match crate::aws::sns::confirm_subscription(&app.aws, &envelope.topic_arn, &token).await
            {
                Ok(arn) => {
                    let event = NewEvent::new(EventKind::AlarmReceived, ALARM_ACTOR, "", format!("subscribed to {} (AuthenticateOnUnsubscribe)", envelope.topic_arn))
                        .detail(json!({"topic": envelope.topic_arn, "subscription": arn, "message_id": envelope.message_id}));
                    match app.store.append(event).await {
                        Ok(_) => (200, "subscription confirmed".into()),
                        Err(e) => (503, format!("could not record it: {e}")),
                    }
                }
                Err(e) => (502, format!("could not confirm the subscription: {e}")),
            }
        }
        "Notification" => match take_in_envelope(app, &envelope).await {
            Ok(Taken::Recorded(_)) => (200, "recorded".into()),
            Ok(Taken::Duplicate) => (409, "this message was received before".into()),
            Ok(Taken::Refused(why)) => (400, why),
            Err(e) => (503, format!("could not record it: {e}")),
        },
        other => (
            400,
            format!("an SNS message of type `{other}` is not taken in"),
        ),
    }
}

/// Is the message's topic one of `[alarms] topics`?
fn accepted(app: &App, envelope: &Envelope) -> bool {
    app.settings.alarms.topics.contains(&envelope.topic_arn)
}

/// Records one SNS message (as the queue holds it) and does what its alarm calls for.
pub async fn take_in(app: &Arc<App>, body: &str) -> Result<Taken, StoreError> {
    match Envelope::parse(body) {
        Ok(envelope) => take_in_envelope(app, &envelope).await,
        Err(why) => refuse(app, None, why).await,
    }
}

/// Records one SNS message, read, and does what its alarm calls for, in one transaction.
async fn take_in_envelope(app: &Arc<App>, envelope: &Envelope) -> Result<Taken, StoreError> {
    let now = crate::clock::now();
    if !accepted(app, envelope) {
        let why = format!(
            "topic {} is not one of `[alarms] topics`",
            inert(&envelope.topic_arn)
        );
        return refuse(app, Some(&envelope.message_id), why).await;
    }
    let alarm = match envelope.alarm(now) {
        Ok(a) => a,
        Err(why) => return refuse(app, Some(&envelope.message_id), why).await,
    };
    let settings = &app.settings;
    let chosen = route(&settings.alarms.routes, &alarm);
    // check-config refuses a route to a scenario the plan lacks; a running drbot records
    // such an alarm as refused and leaves no proposal behind.
    let scenario = match chosen.map(|r| (r, app.scenarios.get(&r.scenario).cloned())) {
        Some((r, None)) => {
            let why = format!(
                "alarm {}: its route names scenario `{}`, which the plan does not have",
                alarm.name, r.scenario
            );
            return refuse(app, Some(&alarm.message_id), why).await;
        }
        Some((_, found)) => found,
        None => None,
    };
    let channel = chosen
        .and_then(|r| r.channel.clone())
        .or_else(|| settings.slack.command_channels.first().cloned())
        .or_else(|| settings.ops_channel().map(str::to_string))
        .unwrap_or_default();
    let mut tx = app.store.begin().await?;
    let pending = tx.pending_alarm_proposal(&alarm.name).await?;
    let known = Known {
        incident: tx
            .open_incidents_of_alarm(&alarm.name)
            .await?
            .into_iter()
            .next(),
        proposed: pending.is_some(),
    };
    let effect = decide(&alarm.state, chosen, &known);
    let changed_at = crate::clock::rfc3339(alarm.changed_at);
    let recorded = tx
        .record_alarm(&NewAlarm {
            message_id: &alarm.message_id,
            alarm_name: &alarm.name,
            state: &alarm.state,
            changed_at: &changed_at,
            scenario: chosen.map(|r| r.scenario.as_str()),
            channel: Some(&channel),
            proposal: match effect {
                Effect::Propose => Some("proposed"),
                Effect::Open => Some("opened"),
                _ => None,
            },
        })
        .await?;
    if !recorded {
        drop(tx);
        return Ok(Taken::Duplicate);
    }
    let detail = json!({
        "message_id": alarm.message_id,
        "topic": alarm.topic,
        "alarm": alarm.name,
        "state": alarm.state,
        "reason": alarm.reason,
        "changed_at": changed_at,
        "metric": alarm.metric,
        "scenario": chosen.map(|r| r.scenario.clone()),
        "effect": format!("{effect:?}"),
    });
    let when = alarm.changed_at.format("%Y-%m-%d %H:%M:%S UTC");
    let name = escape(&alarm.name);
    // A route, and so its scenario, is what makes a proposal or an opening.
    match (&effect, scenario) {
        (Effect::Propose | Effect::Open, None) => {}
        (Effect::Propose, Some(scenario)) => {
            let mut text = format!(
                ":rotating_light: *Alarm `{name}` is ALARM* since {when}: {}\nScenario *{}* (`{}`), RTO {}, RPO {}.",
                escape(&alarm.reason),
                escape(&scenario.title),
                scenario.id,
                scenario.rto_text(),
                scenario.rpo_text()
            );
            if scenario.plan.is_some() {
                text.push_str(&format!(
                    "\nIts plan, once the incident is open: `/dr run {}` (every change goes through the approval gate).",
                    scenario.id
                ));
            }
            text.push_str("\nOpen the incident, or dismiss this if nothing is wrong. The alarm changes nothing by itself.");
            tx.append(
                NewEvent::new(
                    EventKind::AlarmProposed,
                    ALARM_ACTOR,
                    &channel,
                    format!(
                        "alarm {} ALARM: incident proposed ({})",
                        alarm.name, scenario.id
                    ),
                )
                .detail(detail),
            )
            .await?;
            tx.send_slack(Outgoing::Post {
                channel: channel.clone(),
                blocks: Some(proposal_blocks(&text, &alarm.message_id)),
                text,
                thread: None,
                after: None,
            })
            .await?;
        }
        (Effect::Open, Some(scenario)) => {
            tx.append(
                NewEvent::new(
                    EventKind::AlarmOpened,
                    ALARM_ACTOR,
                    &channel,
                    format!(
                        "alarm {} ALARM: incident opened by the route ({})",
                        alarm.name, scenario.id
                    ),
                )
                .detail(detail),
            )
            .await?;
            open_incident(&mut tx, &alarm, &scenario.id, &channel, ALARM_ACTOR, "").await?;
        }
        (
            Effect::Repeat {
                incident,
                channel: inc_channel,
            },
            _,
        ) => {
            tx.append(
                NewEvent::new(
                    EventKind::AlarmRepeated,
                    ALARM_ACTOR,
                    inc_channel,
                    format!("alarm {} ALARM again: {}", alarm.name, alarm.reason),
                )
                .detail(detail)
                .incident(Some(incident.clone())),
            )
            .await?;
            tx.send_slack(Outgoing::post(
                inc_channel,
                format!(
                    ":rotating_light: Alarm `{name}` is ALARM again ({when}): {}",
                    escape(&alarm.reason)
                ),
            ))
            .await?;
        }
        (
            Effect::Recovered {
                incident,
                channel: inc_channel,
                ends_recovery,
            },
            _,
        ) => {
            let opened = tx.incident(incident).await?.map(|i| i.started_at);
            let mut text = format!(":white_check_mark: Alarm `{name}` back to OK at {when}.");
            let mut detail = detail;
            if let (true, Some(opened)) = (ends_recovery, opened) {
                let took = (alarm.changed_at - opened).max(chrono::Duration::zero());
                text.push_str(&format!(
                    " The measured recovery ends here: {} from the incident's opening.",
                    crate::duration::human(took)
                ));
                detail["ends_recovery"] = json!(true);
                detail["recovery_secs"] = json!(took.num_seconds());
            }
            tx.append(
                NewEvent::new(
                    EventKind::AlarmOk,
                    ALARM_ACTOR,
                    inc_channel,
                    format!("alarm {} back to OK at {}", alarm.name, changed_at),
                )
                .detail(detail)
                .incident(Some(incident.clone())),
            )
            .await?;
            tx.send_slack(Outgoing::post(inc_channel, text)).await?;
        }
        (Effect::ClearedBeforeIncident, _) => {
            // The proposal closes: the next ALARM proposes again, where people look.
            if let Some(p) = &pending {
                tx.decide_alarm_proposal(&p.message_id, "cleared", ALARM_ACTOR)
                    .await?;
            }
            tx.append(
                NewEvent::new(
                    EventKind::AlarmOk,
                    ALARM_ACTOR,
                    &channel,
                    format!(
                        "alarm {} back to OK at {} (no incident open)",
                        alarm.name, changed_at
                    ),
                )
                .detail(detail),
            )
            .await?;
            tx.send_slack(Outgoing::post(
                &channel,
                format!(":white_check_mark: Alarm `{name}` is back to OK ({when}) before anyone opened an incident: its proposal is closed (`/dr incident open` still can). If it fires again, drbot proposes again."),
            ))
            .await?;
        }
        (Effect::RepeatOfProposal, _) => {
            let text = format!("alarm {} ALARM again, its proposal waiting", alarm.name);
            let event = NewEvent::new(EventKind::AlarmRepeated, ALARM_ACTOR, &channel, text);
            tx.append(event.detail(detail)).await?;
        }
        (Effect::Unrouted | Effect::Recorded, _) => {
            tx.append(
                NewEvent::new(
                    EventKind::AlarmReceived,
                    ALARM_ACTOR,
                    &channel,
                    format!("alarm {} {}", alarm.name, alarm.state),
                )
                .detail(detail),
            )
            .await?;
        }
    }
    tx.commit().await?;
    app.jobs.notify_one();
    Ok(Taken::Recorded(effect))
}

async fn refuse(
    app: &Arc<App>,
    message_id: Option<&str>,
    why: String,
) -> Result<Taken, StoreError> {
    tracing::warn!(reason = %why, "an alarm message was refused");
    app.store
        .append(
            NewEvent::new(
                EventKind::AlarmRefused,
                ALARM_ACTOR,
                "",
                format!("alarm message refused: {why}"),
            )
            .detail(json!({"message_id": message_id, "reason": why})),
        )
        .await?;
    Ok(Taken::Refused(why))
}

/// Queues the incident's opening for `alarm`, as `/dr incident open` would.
async fn open_incident(
    tx: &mut StoreTx<'_>,
    alarm: &Alarm,
    scenario: &str,
    channel: &str,
    user: &str,
    response_url: &str,
) -> Result<(), StoreError> {
    Work::IncidentOpen {
        scenario: scenario.to_string(),
        title: alarm.name.clone(),
        drill: false,
        user: user.to_string(),
        channel: channel.to_string(),
        response_url: response_url.to_string(),
        then: None,
        alarm: Some(AlarmRef {
            message_id: alarm.message_id.clone(),
            name: alarm.name.clone(),
            changed_at: crate::clock::rfc3339(alarm.changed_at),
        }),
    }
    .enqueue(tx)
    .await
    .map(|_| ())
}

fn proposal_blocks(text: &str, message_id: &str) -> Value {
    json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": OPEN_BUTTON, "style": "danger", "value": message_id,
             "text": {"type": "plain_text", "text": "Open incident"}},
            {"type": "button", "action_id": DISMISS_BUTTON, "value": message_id,
             "text": {"type": "plain_text", "text": "Dismiss"}}
        ]}
    ])
}

/// A click on a proposal's *Open incident* or *Dismiss*; `None` for any other interaction.
/// Any responder may decide, once: the first click wins, a later one is told who decided.
pub async fn clicked(app: &Arc<App>, raw: &Value) -> Option<Result<(), StoreError>> {
    if raw.pointer("/type").and_then(Value::as_str) != Some("block_actions") {
        return None;
    }
    let action = raw.pointer("/actions/0")?;
    let id = action.get("action_id")?.as_str()?;
    let decision = match id {
        OPEN_BUTTON => "opened",
        DISMISS_BUTTON => "dismissed",
        _ => return None,
    };
    let message_id = action.get("value")?.as_str()?.to_string();
    let user = raw.pointer("/user/id")?.as_str()?.to_string();
    let channel = raw
        .pointer("/channel/id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let ts = raw
        .pointer("/message/ts")
        .and_then(Value::as_str)
        .map(str::to_string);
    let response_url = raw
        .pointer("/response_url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    Some(
        decide_click(
            app,
            &message_id,
            decision,
            &user,
            &channel,
            ts,
            &response_url,
        )
        .await,
    )
}

async fn decide_click(
    app: &Arc<App>,
    message_id: &str,
    decision: &str,
    user: &str,
    channel: &str,
    ts: Option<String>,
    response_url: &str,
) -> Result<(), StoreError> {
    if let Some((why, who)) = crate::app::access_refusal(app, user) {
        let mut tx = app.store.begin().await?;
        tx.send_slack(Outgoing::Ephemeral {
            channel: channel.to_string(),
            user: user.to_string(),
            text: format!("{why}{who}."),
        })
        .await?;
        return tx.commit().await;
    }
    let mut tx = app.store.begin().await?;
    let Some(row) = tx.decide_alarm_proposal(message_id, decision, user).await? else {
        let said = match tx.alarm_decided_by(message_id).await? {
            Some((what, _)) if what == "cleared" => "This alarm went back to OK before anyone acted, so its proposal is closed; `/dr incident open` still opens an incident.".to_string(),
            Some((what, who)) => format!("This alarm's proposal was already {what} by <@{who}>."),
            None => "This alarm proposal is no longer waiting for a decision.".to_string(),
        };
        tx.send_slack(Outgoing::Ephemeral {
            channel: channel.to_string(),
            user: user.to_string(),
            text: said,
        })
        .await?;
        return tx.commit().await;
    };
    let name = escape(&row.alarm_name);
    let scenario = row.scenario.clone().unwrap_or_default();
    let detail = json!({"message_id": row.message_id, "alarm": row.alarm_name, "scenario": scenario, "decided_by": user});
    let said = if decision == "opened" {
        let alarm = Alarm {
            message_id: row.message_id.clone(),
            topic: String::new(),
            name: row.alarm_name.clone(),
            state: row.state.clone(),
            reason: String::new(),
            changed_at: chrono::DateTime::parse_from_rfc3339(&row.changed_at)
                .map(|t| t.with_timezone(&chrono::Utc))
                .unwrap_or_else(|_| crate::clock::now()),
            metric: None,
            region: None,
        };
        let at = row.channel.clone().unwrap_or_else(|| channel.to_string());
        let text = format!("alarm {}: incident opened by {user}", row.alarm_name);
        let event = NewEvent::new(EventKind::AlarmOpened, user, &at, text);
        tx.append(event.detail(detail)).await?;
        open_incident(&mut tx, &alarm, &scenario, &at, user, response_url).await?;
        format!(
            ":rotating_light: Alarm `{name}`: <@{user}> is opening the incident (`{scenario}`)."
        )
    } else {
        tx.append(
            NewEvent::new(
                EventKind::AlarmDismissed,
                user,
                channel,
                format!("alarm {}: proposal dismissed by {user}", row.alarm_name),
            )
            .detail(detail),
        )
        .await?;
        format!("Alarm `{name}`: proposal dismissed by <@{user}>.")
    };
    if let Some(ts) = ts {
        tx.send_slack(Outgoing::Update {
            channel: channel.to_string(),
            message: Anchor::Ts(ts),
            text: said,
            blocks: None,
        })
        .await?;
    }
    tx.commit().await?;
    app.jobs.notify_one();
    Ok(())
}
