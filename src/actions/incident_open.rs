//! `/dr incident open <scenario> <title…>`: a channel `inc-YYYYMMDD-<slug>` with the opener
//! and the officers, the scenario's summary and checklist pinned, the officers told at
//! once, and the incident announced where it was opened.
//!
//! Slack calls: conversations.create, conversations.invite, chat.postMessage, pins.add,
//! conversations.open. AWS calls: none. Approval: none.

use std::sync::Arc;

use serde_json::json;

use crate::actions::incident;
use crate::app::App;
use crate::router::Invalid;
use crate::slack::client::SlackError;
use crate::store::{AfterPost, Anchor, EventKind, NewEvent, NewIncident, Outgoing, StoreError};

/// The job's input.
pub struct OpenIncident {
    pub scenario: String,
    pub title: String,
    pub user: String,
    pub channel: String,
    pub response_url: String,
    /// A drill: DRILL in the channel name, messages, timeline and exports; no users' notice.
    pub drill: bool,
    /// The alarm that declared it (opened by the alarm's route, or from its proposal).
    pub alarm: Option<AlarmRef>,
}

/// The alarm an incident was declared from: its time to declare is the incident's opening
/// minus the alarm's state change.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AlarmRef {
    pub message_id: String,
    pub name: String,
    /// The alarm's `StateChangeTime` (RFC 3339).
    pub changed_at: String,
}

impl OpenIncident {
    /// Who opened it, as Slack shows it: a user, or the alarm's route.
    fn opener(&self) -> String {
        match (&self.alarm, self.user.starts_with(['U', 'W'])) {
            (Some(alarm), false) => format!("alarm `{}`", crate::slack::text::escape(&alarm.name)),
            _ => format!("<@{}>", self.user),
        }
    }

    /// Where a refusal goes: the slash command's response URL, else the channel.
    fn tell(&self, text: String) -> Outgoing {
        if self.response_url.is_empty() {
            Outgoing::post(&self.channel, text)
        } else {
            Outgoing::Respond {
                url: self.response_url.clone(),
                text,
            }
        }
    }
}

/// The job to queue with the new incident (`/dr run <scenario> --drill` asked outside an
/// incident): given the incident's id and channel, its kind and payload.
pub type Then<'a> = &'a (dyn Fn(&str, &str) -> (&'static str, serde_json::Value) + Sync);

/// Checks the scenario on the acknowledgement path.
pub fn check_scenario(app: &App, scenario: &str) -> Result<(), Invalid> {
    if app.scenarios.get(scenario).is_some() {
        return Ok(());
    }
    let known: Vec<String> = app
        .scenarios
        .all()
        .map(|s| format!("`{}` ({}, RTO {})", s.id, s.title, s.rto_text()))
        .collect();
    Err(Invalid(format!(
        "there is no scenario `{scenario}`; the scenarios are: {}",
        known.join(", ")
    )))
}

/// Seconds from the alarm's state change to the incident's opening.
fn declared_secs(alarm: &AlarmRef, opened: chrono::DateTime<chrono::Utc>) -> Option<i64> {
    let at = chrono::DateTime::parse_from_rfc3339(&alarm.changed_at).ok()?;
    Some(
        (opened - at.with_timezone(&chrono::Utc))
            .num_seconds()
            .max(0),
    )
}

/// Runs after the acknowledgement (a durable job).
pub async fn run(
    app: &Arc<App>,
    open: &OpenIncident,
    job: crate::store::JobClaim,
    then: Option<Then<'_>>,
) -> Result<(), StoreError> {
    let Some(scenario) = app.scenarios.get(&open.scenario).cloned() else {
        let mut tx = app.store.begin().await?;
        tx.finish_job(job).await?;
        tx.commit().await?;
        return Ok(());
    };
    let now = crate::clock::now();
    let prefix = &app.settings.slack.incident_channel_prefix;
    // A run of this job after a lost commit: the channel it made before, never another.
    let mut created = match app.store.noted_channel(job.id).await? {
        Some((name, Some(id))) => Some((name, id)),
        Some((name, None)) => match app.slack.own_channel_named(&name, app.bot_user_id()).await {
            Ok(Some(id)) => Some((name, id)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, channel = %name, "could not look for the channel an earlier run of this job may have made");
                None
            }
        },
        None => None,
    };
    for attempt in 1..=20 {
        if created.is_some() {
            break;
        }
        let title = if open.drill {
            format!("drill {}", open.title)
        } else {
            open.title.clone()
        };
        let name = incident::channel_name(prefix, now, &title, attempt);
        if app.store.incident_exists(&name).await? {
            continue;
        }
        let private = app.settings.incidents.private;
        // Noted before Slack is asked, and the id as soon as Slack answers.
        let mut tx = app.store.begin().await?;
        tx.note_channel(job.id, &name, None).await?;
        tx.commit().await?;
        match app.slack.create_channel(&name, private).await {
            Ok(id) => {
                let mut tx = app.store.begin().await?;
                tx.note_channel(job.id, &name, Some(&id)).await?;
                tx.commit().await?;
                created = Some((name, id));
                break;
            }
            Err(SlackError::Api { code, .. }) if code == "name_taken" => continue,
            Err(e) => {
                let mut tx = app.store.begin().await?;
                tx.append(
                    NewEvent::new(
                        EventKind::IncidentFailed,
                        &open.user,
                        &open.channel,
                        format!("could not create the incident channel: {e}"),
                    )
                    .detail(json!({"scenario": open.scenario, "title": open.title})),
                )
                .await?;
                tx.finish_job(job).await?;
                tx.send_slack(open.tell(format!(":warning: Could not create the incident channel: {e}. Nothing was opened; try again.")))
                .await?;
                tx.commit().await?;
                return Ok(());
            }
        }
    }
    let Some((id, channel)) = created else {
        let mut tx = app.store.begin().await?;
        tx.finish_job(job).await?;
        tx.send_slack(open.tell(
            ":warning: Every candidate channel name was taken; try a more specific title.".into(),
        ))
        .await?;
        return tx.commit().await;
    };
    let mut tx = app.store.begin().await?;
    let record = tx
        .create_incident(&NewIncident {
            id: id.clone(),
            scenario: scenario.id.clone(),
            title: open.title.clone(),
            opened_by: open.user.clone(),
            origin_channel: open.channel.clone(),
            channel_id: channel.clone(),
            steps: scenario.steps.len(),
            drill: open.drill,
        })
        .await?;
    tx.append(
        NewEvent::new(
            EventKind::IncidentOpened,
            &open.user,
            &channel,
            format!(
                "{}incident {id} opened: {} ({})",
                if open.drill { "DRILL " } else { "" },
                open.title,
                scenario.title
            ),
        )
        .detail(json!({
            "scenario": scenario.id,
            "title": open.title,
            "rto": scenario.rto_text(),
            "rpo": scenario.rpo_text(),
            "drill": open.drill,
            "rto_secs": scenario.rto.seconds(),
            "rpo_secs": scenario.rpo.seconds(),
            "origin_channel": open.channel,
            "started_at": crate::clock::rfc3339(record.started_at),
            "alarm": open.alarm.as_ref().map(|a| json!({
                "name": a.name,
                "message_id": a.message_id,
                "changed_at": a.changed_at,
                "declared_secs": declared_secs(a, record.started_at),
            })),
        }))
        .incident(Some(id.clone())),
    )
    .await?;
    if let Some(alarm) = &open.alarm {
        tx.link_alarm(&alarm.name, &id).await?;
    }
    tx.finish_job(job).await?;

    // Everything Slack is told about the new incident is queued with it.
    let officers = &app.settings.approval.officers;
    let mut invitees: Vec<String> = Some(open.user.clone())
        .filter(|u| u.starts_with(['U', 'W']))
        .into_iter()
        .collect();
    invitees.extend(officers.iter().filter(|o| **o != open.user).cloned());
    tx.send_slack(Outgoing::Invite {
        channel: channel.clone(),
        users: invitees,
    })
    .await?;
    let summary_key = format!("incident:{id}:summary");
    tx.send_slack_keyed(
        Outgoing::Post {
            channel: channel.clone(),
            text: incident::summary(&record, &scenario, &app.settings.incidents),
            blocks: None,
            thread: None,
            after: Some(AfterPost::Checklist {
                incident: id.clone(),
            }),
        },
        Some(summary_key.clone()),
    )
    .await?;
    tx.send_slack(Outgoing::Pin {
        channel: channel.clone(),
        message: Anchor::Row(summary_key),
    })
    .await?;
    let drill = if open.drill {
        ":test_tube: *DRILL* — "
    } else {
        ""
    };
    let alert = format!(
        "{drill}:rotating_light: *Security officer notice* — incident *{id}* opened by {}: {} ({}, RTO {}). Join <#{channel}>.",
        open.opener(),
        crate::slack::text::inert(&open.title),
        scenario.title,
        scenario.rto_text()
    );
    for officer in officers {
        tx.send_slack(Outgoing::Direct {
            user: officer.clone(),
            text: alert.clone(),
        })
        .await?;
    }
    tx.append(
        NewEvent::new(
            EventKind::IncidentNotified,
            "drbot",
            &channel,
            format!(
                "officers notified: {}",
                crate::slack::text::mentions(officers)
            ),
        )
        .detail(json!({"officers": officers}))
        .incident(Some(id.clone())),
    )
    .await?;
    let announce = format!(
        "{drill}:rotating_light: Incident *{id}* opened by {}: {} — scenario *{}*, RTO {}, RPO {}. Follow it in <#{channel}>.",
        open.opener(),
        crate::slack::text::inert(&open.title),
        scenario.title,
        scenario.rto_text(),
        scenario.rpo_text()
    );
    tx.send_slack(Outgoing::post(&open.channel, announce))
        .await?;
    // The command that asked for the incident, planned in its channel: queued with it, so
    // it is asked once whatever happens to this process.
    if let Some(then) = then {
        let (kind, payload) = then(&id, &channel);
        tx.enqueue(kind, &payload).await?;
    }
    tx.commit().await?;
    app.jobs.notify_one();
    Ok(())
}
