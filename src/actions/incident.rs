//! What an incident looks like in Slack: its channel name, the pinned summary with the
//! checklist, the outage notice from the plan's template, and ticking checklist steps as
//! drbot performs them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::app::App;
use crate::config::IncidentSettings;
use crate::scenarios::Scenario;
use crate::store::{Anchor, EventKind, Incident, NewEvent, Outgoing, StoreError, StoreTx};

/// `<prefix>-YYYYMMDD-<slug>`: lowercase letters, digits and hyphens, at most 80 characters.
pub fn channel_name(prefix: &str, now: DateTime<Utc>, title: &str, attempt: u32) -> String {
    let mut slug = String::new();
    for c in title.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let slug = if slug.is_empty() { "incident" } else { slug };
    let suffix = if attempt > 1 {
        format!("-{attempt}")
    } else {
        String::new()
    };
    let head = format!("{prefix}-{}-", now.format("%Y%m%d"));
    let room = 80 - head.len() - suffix.len();
    let slug: String = slug.chars().take(room).collect();
    format!("{head}{}{suffix}", slug.trim_end_matches('-'))
}

/// The pinned summary: scenario, targets, who opened it, the clock, the checklist.
pub fn summary(incident: &Incident, scenario: &Scenario, settings: &IncidentSettings) -> String {
    let state = if incident.is_open() {
        ":rotating_light:"
    } else {
        ":white_check_mark:"
    };
    let drill = if incident.drill {
        ":test_tube: *DRILL* — a test of the plan, not a real incident. "
    } else {
        ""
    };
    let mut out = format!(
        "{drill}{state} *Incident {}* — {}\nScenario: *{}* (`{}`) · Impact: {}\nRTO target: *{}* · RPO target: *{}*\nOpened by <@{}> · clock started {} UTC{}\n\n*Recovery checklist*\n",
        incident.id,
        crate::slack::text::inert(&incident.title),
        scenario.title,
        scenario.id,
        scenario.impact,
        scenario.rto_text(),
        scenario.rpo_text(),
        incident.opened_by,
        incident.started_at.format("%Y-%m-%d %H:%M:%S"),
        match incident.resolved_at {
            Some(t) => format!(" · resolved {} UTC", t.format("%Y-%m-%d %H:%M:%S")),
            None => String::new(),
        }
    );
    for (i, step) in scenario.steps.iter().enumerate() {
        let done = incident.steps_done.get(i).copied().unwrap_or(false);
        let mark = if done {
            ":white_check_mark:"
        } else {
            ":white_large_square:"
        };
        let command = step
            .command
            .as_deref()
            .map(|c| format!(" — `/dr {c}`"))
            .unwrap_or_default();
        out.push_str(&format!("{mark} {}. {}{command}\n", i + 1, step.text));
    }
    out.push_str(&format!(
        "\nStatus updates: `/dr incident update <text>` (drbot reminds after {} without one). Close: `/dr incident resolve <summary>`.",
        settings.reminder_interval
    ));
    out
}

/// The plan's "Service Outage Notification" template, filled in with what is known, as
/// it is posted in Slack for someone to send (`/dr notify users` publishes it instead).
pub fn outage_notice(
    incident: &Incident,
    scenario: &Scenario,
    settings: &IncidentSettings,
) -> String {
    let draft = super::notify_users::draft(
        super::notify_users::Template::Outage,
        incident,
        scenario,
        settings,
        None,
    );
    format!(
        "Subject: {}\n\n{}",
        draft.subject,
        crate::slack::text::escape(&draft.body).replace("```", "ˋˋˋ")
    )
}

/// Queues in `tx` the pinned summary of `incident`, re-rendered.
pub async fn queue_summary_update(
    tx: &mut StoreTx<'_>,
    scenario: &Scenario,
    settings: &IncidentSettings,
    incident: &Incident,
) -> Result<(), StoreError> {
    let message = match &incident.checklist_ts {
        Some(ts) => Anchor::Ts(ts.clone()),
        None => Anchor::Row(format!("incident:{}:summary", incident.id)),
    };
    tx.send_slack(Outgoing::Update {
        channel: incident.channel_id.clone(),
        message,
        text: summary(incident, scenario, settings),
        blocks: None,
    })
    .await
}

/// Ticks the first open checklist step performed by `/dr <command>` in `incident_id`.
pub async fn tick(app: &Arc<App>, incident_id: &str, command: &str) {
    let ticked =
        async {
            let mut tx = app.store.begin().await?;
            let Some(mut incident) = tx.incident(incident_id).await? else {
                return Ok(());
            };
            let Some(scenario) = app.scenarios.get(&incident.scenario) else {
                return Ok(());
            };
            incident.steps_done.resize(scenario.steps.len(), false);
            let Some(i) = scenario.steps.iter().enumerate().position(|(i, s)| {
                s.command.as_deref() == Some(command) && !incident.steps_done[i]
            }) else {
                return Ok(());
            };
            incident.steps_done[i] = true;
            tx.set_steps_done(&incident.id, &incident.steps_done)
                .await?;
            tx.append(
                NewEvent::new(
                    EventKind::IncidentStepDone,
                    "drbot",
                    &incident.channel_id,
                    format!("checklist step {} done: {}", i + 1, scenario.steps[i].text),
                )
                .detail(json!({"step": i + 1, "command": command}))
                .incident(Some(incident.id.clone())),
            )
            .await?;
            queue_summary_update(&mut tx, scenario, &app.settings.incidents, &incident).await?;
            tx.commit().await?;
            Ok::<_, crate::store::StoreError>(())
        }
        .await;
    if let Err(e) = ticked {
        tracing::warn!(error = %e, "could not tick the checklist");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_are_slack_safe_and_short() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T06:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            channel_name("inc", now, "Login flood from botnet!", 1),
            "inc-20261127-login-flood-from-botnet"
        );
        assert_eq!(
            channel_name("inc", now, "Login flood", 2),
            "inc-20261127-login-flood-2"
        );
        assert_eq!(channel_name("inc", now, "¡¡¡", 1), "inc-20261127-incident");
        let long = channel_name("inc", now, &"database ".repeat(20), 3);
        assert!(
            long.len() <= 80 && long.ends_with("-3") && !long.contains("--"),
            "{long}"
        );
    }
}
