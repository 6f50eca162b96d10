//! `/dr incident postmortem` (SPEC §18), and the button the resolution offers: a Markdown
//! draft of the incident's postmortem, from its timeline, uploaded as a file in its channel —
//! summary, impact, timeline highlights, RTO/RPO achieved against the targets, what went well
//! and what did not (for people to write), the follow-ups. What people typed is escaped: the
//! draft renders as text wherever it is opened.

use std::fmt::Write;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::app::App;
use crate::store::{EventKind, Followup, Incident, NewEvent, Outgoing, StoreError, StoredEvent};
use crate::timeline::mrkdwn::{md_escape, md_row};
use crate::timeline::summary::{at, human, summarise};

/// The button on the resolution message.
pub const BUTTON: &str = "incident_postmortem";

/// The draft of `incident`'s postmortem from its `events` and `followups`.
pub fn draft(
    incident: &Incident,
    scenario_impact: &str,
    events: &[StoredEvent],
    followups: &[Followup],
) -> String {
    let mut out = String::new();
    let drill = if incident.drill { " — DRILL" } else { "" };
    let _ = writeln!(
        out,
        "# Postmortem: {} ({}){drill}\n\n_Draft by drbot from the incident's timeline on {} UTC. The sections marked ✍ are for people to write._\n",
        md_escape(&incident.title),
        incident.id,
        crate::clock::now().format("%Y-%m-%d %H:%M")
    );
    let Some(s) = summarise(events, None) else {
        out.push_str("The timeline holds no opening of this incident.\n");
        return out;
    };
    let declared = match (&s.alarm, s.declared_secs) {
        (Some(a), Some(d)) => format!(
            ", declared from alarm `{}` after {}",
            md_escape(a),
            human(d)
        ),
        (Some(a), None) => format!(", declared from alarm `{}`", md_escape(a)),
        _ => String::new(),
    };
    out.push_str("## Summary\n\n- Scenario: `");
    out.push_str(&md_escape(&s.scenario));
    out.push_str(&format!(
        "` · opened {} UTC by {}{declared}\n",
        s.opened_at.format("%Y-%m-%d %H:%M:%S"),
        md_escape(&s.opened_by)
    ));
    match s.resolved_at {
        Some(t) => {
            let _ = writeln!(out, "- Resolved {} UTC", t.format("%Y-%m-%d %H:%M:%S"));
        }
        None => out.push_str("- Still open\n"),
    }
    if let Some(summary) = incident.summary.as_deref().filter(|t| !t.is_empty()) {
        let _ = writeln!(out, "- At resolution: {}", md_escape(summary));
    }
    let told = events
        .iter()
        .filter(|e| e.kind == EventKind::NotifyPublished)
        .count();
    let _ = writeln!(
        out,
        "\n## Impact\n\n- {} for {}\n- Users told: {}\n",
        md_escape(scenario_impact),
        human(s.recovery_secs),
        if told == 0 {
            "not through drbot".to_string()
        } else {
            format!("{told} publication(s) (status page, email)")
        }
    );
    let _ = writeln!(out, "## RTO / RPO\n");
    let rto = match (s.rto_secs, s.rto_met) {
        (Some(rto), Some(true)) => format!(
            "met: recovered in {} (target {})",
            human(s.recovery_secs),
            human(rto)
        ),
        (Some(rto), Some(false)) => format!(
            "missed by {}: recovered in {} (target {})",
            human(s.recovery_secs - rto),
            human(s.recovery_secs),
            human(rto)
        ),
        (Some(rto), None) => format!(
            "open for {} (target {})",
            human(s.recovery_secs),
            human(rto)
        ),
        (None, _) => format!("no numeric target ({})", md_escape(&s.rto)),
    };
    let rpo = match (s.data_loss_secs, s.rpo_secs) {
        (Some(loss), Some(rpo)) => format!(
            "{}: data-loss window {} (target {})",
            if loss <= rpo { "met" } else { "missed" },
            human(loss),
            human(rpo)
        ),
        (Some(loss), None) => format!("data-loss window {}", human(loss)),
        (None, _) => "not measured (no restore during the incident)".to_string(),
    };
    let _ = writeln!(out, "- RTO: {rto}\n- RPO: {rpo}\n");
    let _ = writeln!(out, "## Timeline highlights\n");
    out.push_str("| time (UTC) | what |\n| --- | --- |\n");
    for e in events {
        let what = match e.kind.as_str() {
            "incident.opened" => Some(format!("opened by {}", e.actor)),
            "alarm.opened" | "alarm.ok" => Some(e.text.clone()),
            "incident.update" => Some(format!("update by {}: {}", e.actor, e.text)),
            "notify.published" | "notify.drill" => Some(e.text.clone()),
            "incident.resolved" => Some(format!("resolved by {}", e.actor)),
            "followup.added" => Some(e.text.clone()),
            _ => None,
        };
        if let (Some(what), Some(t)) = (what, at(e)) {
            out.push_str(&md_row(&[t.format("%H:%M:%S").to_string(), what]));
            out.push('\n');
        }
    }
    for a in &s.actions {
        let approved = if a.by_configuration {
            "approved by configuration".to_string()
        } else if a.approvers.is_empty() {
            "not approved".to_string()
        } else {
            format!(
                "approved by {} after {}",
                a.approvers.join(", "),
                a.wait_secs.map(human).unwrap_or_default()
            )
        };
        let ids = if a.aws_request_ids.is_empty() {
            String::new()
        } else {
            format!(" (AWS request ids {})", a.aws_request_ids.join(", "))
        };
        out.push_str(&md_row(&[
            a.requested_at.format("%H:%M:%S").to_string(),
            format!(
                "{} `/dr {}` by {}: {approved}; {}{ids}",
                a.label, a.command, a.requester, a.outcome
            ),
        ]));
        out.push('\n');
    }
    out.push_str("\n## What went well\n\n✍ \n\n## What did not go well\n\n✍ \n\n## Follow-ups\n\n");
    if followups.is_empty() {
        out.push_str(
            "None recorded yet: `/dr followup add <text> --owner @user --due YYYY-MM-DD`.\n",
        );
    }
    for f in followups {
        let _ = writeln!(
            out,
            "- [{}] {} {}{}{}",
            if f.done_at.is_some() { "x" } else { " " },
            f.label(),
            md_escape(&f.text),
            f.owner
                .as_deref()
                .map(|o| format!(" — owner {}", md_escape(o)))
                .unwrap_or_default(),
            f.due
                .as_deref()
                .map(|d| format!(", due {d}"))
                .unwrap_or_default()
        );
    }
    out
}

/// Drafts `incident`'s postmortem and queues its upload in its channel, recorded with the
/// asking `event` (the command, or the click) in one transaction.
pub async fn post(
    app: &Arc<App>,
    incident: &Incident,
    user: &str,
    event: NewEvent,
) -> Result<String, StoreError> {
    let events = app.store.events(Some(&incident.id)).await?;
    let followups = app.store.followups(Some(&incident.id), false).await?;
    let impact = app
        .scenarios
        .get(&incident.scenario)
        .map(|s| s.impact.clone())
        .unwrap_or_default();
    let content = draft(incident, &impact, &events, &followups);
    let filename = format!("postmortem-{}.md", incident.id);
    let mut tx = app.store.begin().await?;
    tx.append(event).await?;
    tx.append(
        NewEvent::new(
            EventKind::IncidentPostmortem,
            user,
            &incident.channel_id,
            format!("postmortem draft {filename} posted"),
        )
        .detail(json!({"file": filename, "followups": followups.len(), "markdown": content}))
        .incident(Some(incident.id.clone())),
    )
    .await?;
    tx.send_slack(Outgoing::Upload {
        channel: incident.channel_id.clone(),
        filename: filename.clone(),
        title: format!("Postmortem draft: {}", incident.id),
        content,
        comment: format!(
            ":memo: Postmortem draft of *{}*, from its timeline (asked by <@{user}>). Fill in what went well and what did not; add follow-ups with `/dr followup add`.",
            incident.id
        ),
    })
    .await?;
    tx.commit().await?;
    Ok(format!(
        "Posting the postmortem draft of {} ({filename}).",
        incident.id
    ))
}

/// A click on the resolution's "Draft the postmortem" button: `None` when `raw` is not one.
pub async fn clicked(app: &Arc<App>, raw: &Value) -> Option<Result<(), StoreError>> {
    let action = raw["actions"]
        .as_array()?
        .iter()
        .find(|a| a["action_id"] == BUTTON)?;
    let id = action["value"].as_str()?.to_string();
    let user = raw.pointer("/user/id")?.as_str()?.to_string();
    Some(
        async {
            let Some(incident) = app.store.incident(&id).await? else {
                return Ok(());
            };
            let event = NewEvent::new(
                EventKind::SlackInteraction,
                &user,
                &incident.channel_id,
                "asked for the postmortem draft (button)".to_string(),
            )
            .detail(json!({"actions": [BUTTON]}))
            .incident(Some(incident.id.clone()));
            post(app, &incident, &user, event).await.map(|_| ())
        }
        .await,
    )
}
