//! `/dr incident resolve [summary…]`: stops the clock and reports recovery time against
//! the scenario's RTO and, when a restore ran during the incident, the data-loss window
//! (incident start minus restore point) against its RPO. Approval: none.

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::duration::human;
use crate::scenarios::{Scenario, Target};
use crate::store::{EventKind, Incident, NewEvent, Outgoing, Store, StoreError, StoredEvent};

/// The report and its figures.
pub struct Report {
    /// What drbot posts (mrkdwn; the summary escaped, shown never interpreted).
    pub text: String,
    /// The same sentence as recorded in the timeline: plain, the summary as typed (every
    /// place that shows recorded text escapes it there, once).
    pub record: String,
    pub detail: serde_json::Value,
}

/// The restore point of the latest restore recorded in the incident, if any.
fn restore_point(events: &[StoredEvent]) -> Option<(DateTime<Utc>, String)> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::AwsCall)
        .filter_map(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            let op = detail["operation"].as_str()?;
            if op != "RestoreDBInstanceToPointInTime" && op != "RestoreDBInstanceFromDBSnapshot" {
                return None;
            }
            let point = DateTime::parse_from_rfc3339(detail["restore_point"].as_str()?).ok()?;
            Some((point.with_timezone(&Utc), op.to_string()))
        })
        .next_back()
}

pub fn report(
    incident: &Incident,
    scenario: &Scenario,
    events: &[StoredEvent],
    now: DateTime<Utc>,
    summary: Option<&str>,
) -> Report {
    let took = now - incident.started_at;
    let rto = match scenario.rto {
        Target::Within(s) => {
            let target = chrono::Duration::seconds(s as i64);
            if took <= target {
                format!(
                    "Recovery time *{}* — RTO of {} *met* ({} to spare).",
                    human(took),
                    human(target),
                    human(target - took)
                )
            } else {
                format!(
                    "Recovery time *{}* — RTO of {} *missed by {}*.",
                    human(took),
                    human(target),
                    human(took - target)
                )
            }
        }
        other => format!(
            "Recovery time *{}* — RTO: {} (no numeric target).",
            human(took),
            other.describe()
        ),
    };
    let point = restore_point(events);
    let rpo = match (&point, scenario.rpo) {
        (None, _) => {
            "No restore ran during the incident, so no data-loss window to report.".to_string()
        }
        (Some((p, op)), target) => {
            let loss = incident.started_at - *p;
            let loss_text = if loss < chrono::Duration::zero() {
                format!("the restore point ({} UTC) is after the incident started: no data loss before the incident", p.format("%H:%M:%S"))
            } else {
                format!(
                    "data-loss window *{}* (restore point {} UTC, {op})",
                    human(loss),
                    p.format("%Y-%m-%d %H:%M:%S")
                )
            };
            match target {
                Target::Within(s) => {
                    let target = chrono::Duration::seconds(s as i64);
                    if loss <= target {
                        format!("RPO: {loss_text} — RPO of {} *met*.", human(target))
                    } else {
                        format!(
                            "RPO: {loss_text} — RPO of {} *missed by {}*.",
                            human(target),
                            human(loss - target)
                        )
                    }
                }
                other => format!("RPO: {loss_text} — RPO {}.", other.describe()),
            }
        }
    };
    let mut base = format!(
        ":white_check_mark: *Incident {} resolved.*\n{rto}\n{rpo}",
        incident.id
    );
    // Measured by the alarms (SPEC §16): the incident's opening to its alarm back to OK.
    let alarms = crate::timeline::summary::summarise(events, None);
    if let Some(s) = &alarms {
        if let (Some(alarm), Some(declared)) = (&s.alarm, s.declared_secs) {
            base.push_str(&format!(
                "\nDeclared from alarm `{}` {} after it fired.",
                crate::slack::text::escape(alarm),
                human(chrono::Duration::seconds(declared))
            ));
        }
        if let Some(ok) = s.alarm_recovery_secs {
            base.push_str(&format!(
                "\nMeasured recovery (until the alarm was back to OK): *{}*.",
                human(chrono::Duration::seconds(ok))
            ));
        }
    }
    let (text, record) = match summary {
        Some(summary) => (
            format!("{base}\nSummary: {}", crate::slack::text::inert(summary)),
            format!("{}\nSummary: {summary}", base.replace('*', "")),
        ),
        None => (base.clone(), base.replace('*', "")),
    };
    Report {
        text,
        record,
        detail: json!({
            "recovery_secs": took.num_seconds(),
            "rto_secs": scenario.rto.seconds(),
            "rto_met": scenario.rto.seconds().map(|s| took <= chrono::Duration::seconds(s as i64)),
            "restore_point": point.as_ref().map(|(p, _)| crate::clock::rfc3339(*p)),
            "data_loss_secs": point.as_ref().map(|(p, _)| (incident.started_at - *p).num_seconds().max(0)),
            "rpo_secs": scenario.rpo.seconds(),
            "summary": summary,
            "alarm_recovery_secs": alarms.as_ref().and_then(|s| s.alarm_recovery_secs),
            "declared_secs": alarms.as_ref().and_then(|s| s.declared_secs),
        }),
    }
}

/// Resolves in one transaction with the command's own event and the job `then` queues;
/// None when already resolved.
pub async fn resolve(
    store: &Store,
    incident: &Incident,
    scenario: &Scenario,
    settings: &crate::config::IncidentSettings,
    user: &str,
    summary: Option<&str>,
    command: NewEvent,
    then: Option<(&str, serde_json::Value)>,
) -> Result<Option<Report>, StoreError> {
    let events = store.events(Some(&incident.id)).await?;
    let report = report(incident, scenario, &events, crate::clock::now(), summary);
    let mut tx = store.begin().await?;
    if !tx.resolve_incident(&incident.id, summary).await? {
        return Ok(None);
    }
    tx.append(command).await?;
    tx.append(
        NewEvent::new(
            EventKind::IncidentResolved,
            user,
            &incident.channel_id,
            report.record.clone(),
        )
        .detail(report.detail.clone())
        .incident(Some(incident.id.clone())),
    )
    .await?;
    // The resolution offers the postmortem draft (`/dr incident postmortem`).
    let blocks = serde_json::json!([
        {"type": "section", "text": {"type": "mrkdwn", "text": report.text}},
        {"type": "actions", "elements": [
            {"type": "button", "action_id": crate::actions::incident_postmortem::BUTTON,
             "value": incident.id, "text": {"type": "plain_text", "text": "Draft the postmortem"}}
        ]}
    ]);
    tx.send_slack(Outgoing::Post {
        channel: incident.channel_id.clone(),
        text: report.text.clone(),
        blocks: Some(blocks),
        thread: None,
        after: None,
    })
    .await?;
    if let Some(resolved) = tx.incident(&incident.id).await? {
        crate::actions::incident::queue_summary_update(&mut tx, scenario, settings, &resolved)
            .await?;
    }
    tx.send_slack(Outgoing::post(
        &incident.origin_channel,
        report.text.clone(),
    ))
    .await?;
    // The job that follows the resolution (the users' "resolved" notice to draft).
    if let Some((kind, payload)) = then {
        tx.enqueue(kind, &payload).await?;
    }
    tx.commit().await?;
    Ok(Some(report))
}
