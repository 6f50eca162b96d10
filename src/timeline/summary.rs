//! The header an incident export opens with: the scenario and its targets, when it was
//! opened and resolved, recovery time against the RTO, the data-loss window against the RPO
//! where a restore ran, each change with its requester, approvers and approval wait, and the
//! people involved. Computed from the incident's own events (their details hold every
//! number), so an export needs nothing but the store.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::store::{EventKind, StoredEvent};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub incident: String,
    /// A drill (the plan's DR test or tabletop exercise), not a real incident.
    pub drill: bool,
    pub title: String,
    pub scenario: String,
    pub rto: String,
    pub rpo: String,
    pub opened_at: DateTime<Utc>,
    pub opened_by: String,
    /// `None` while the incident is open.
    pub resolved_at: Option<DateTime<Utc>>,
    pub rto_secs: Option<i64>,
    pub rpo_secs: Option<i64>,
    /// Until resolution, or until the last event of an open incident.
    pub recovery_secs: i64,
    /// `Some(true)`: met; `Some(false)`: missed; `None`: no numeric RTO or still open.
    pub rto_met: Option<bool>,
    /// Time to spare (positive) or over (negative) against the RTO.
    pub rto_margin_secs: Option<i64>,
    pub restore_point: Option<String>,
    pub data_loss_secs: Option<i64>,
    pub actions: Vec<Action>,
    /// Everyone who acted in the incident (Slack ids), in order of first appearance.
    pub people: Vec<String>,
    /// The alarm it was declared from, and the time from its state change to the opening.
    pub alarm: Option<String>,
    pub declared_secs: Option<i64>,
    /// Opening → the alarm back to OK, when its route ends the measured recovery there.
    pub alarm_recovery_secs: Option<i64>,
}

/// One change asked for (during an incident, or anywhere: the change log).
#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub label: String,
    pub command: String,
    /// The exact change, as the officers read it (the plan's first line).
    pub change: String,
    pub requester: String,
    pub channel: String,
    pub incident: Option<String>,
    /// Approved by drbot's configuration (a schedule), not by a person.
    pub by_configuration: bool,
    pub requested_at: DateTime<Utc>,
    /// When it was approved (or rejected, expired, cancelled), if it was.
    pub decided_at: Option<DateTime<Utc>>,
    pub approvers: Vec<String>,
    pub wait_secs: Option<i64>,
    /// executed, failed, void, rejected, expired, cancelled, interrupted, or pending.
    pub outcome: String,
    /// What its end said (`A-3 executed: …`).
    pub outcome_text: String,
    pub finished_at: Option<DateTime<Utc>>,
    /// The AWS request id of every change it sent.
    pub aws_request_ids: Vec<String>,
}

/// The scenario an incident's events say it was opened for (empty when they do not).
pub fn scenario_of(events: &[StoredEvent]) -> String {
    events
        .iter()
        .find(|e| e.kind == EventKind::IncidentOpened)
        .and_then(|e| serde_json::from_str::<Value>(&e.detail).ok())
        .and_then(|d| d["scenario"].as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn at(e: &StoredEvent) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&e.at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn detail(e: &StoredEvent) -> Value {
    serde_json::from_str(&e.detail).unwrap_or(Value::Null)
}

fn text(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_string()
}

/// The summary of an incident's events; `None` when they hold no `incident.opened`.
/// `rto_fallback` (seconds) is the scenario's RTO for an incident still open.
pub fn summarise(events: &[StoredEvent], rto_fallback: Option<u64>) -> Option<Summary> {
    let opened = events
        .iter()
        .find(|e| e.kind == EventKind::IncidentOpened)?;
    let opened_detail = detail(opened);
    let opened_at = at(opened)?;
    let resolved = events
        .iter()
        .find(|e| e.kind == EventKind::IncidentResolved);
    let resolved_detail = resolved.map(detail).unwrap_or(Value::Null);
    let resolved_at = resolved.and_then(at);
    let end = resolved_at
        .or_else(|| events.iter().filter_map(at).max())
        .unwrap_or(opened_at);
    let recovery_secs = (end - opened_at).num_seconds().max(0);
    let rto_secs = resolved_detail["rto_secs"]
        .as_i64()
        .or_else(|| opened_detail["rto_secs"].as_i64())
        .or(rto_fallback.map(|s| s as i64));
    let rpo_secs = resolved_detail["rpo_secs"]
        .as_i64()
        .or_else(|| opened_detail["rpo_secs"].as_i64());
    let (rto_met, rto_margin_secs) = match (rto_secs, resolved_at) {
        (Some(rto), Some(_)) => (Some(recovery_secs <= rto), Some(rto - recovery_secs)),
        _ => (None, None),
    };

    let mut people: Vec<String> = Vec::new();
    for e in events {
        if e.actor != "drbot" && !people.contains(&e.actor) {
            people.push(e.actor.clone());
        }
    }
    let actions = actions(events);

    Some(Summary {
        incident: opened.incident.clone().unwrap_or_default(),
        drill: opened_detail["drill"].as_bool().unwrap_or(false),
        title: text(&opened_detail, "title"),
        scenario: text(&opened_detail, "scenario"),
        rto: text(&opened_detail, "rto"),
        rpo: text(&opened_detail, "rpo"),
        opened_at,
        opened_by: opened.actor.clone(),
        resolved_at,
        rto_secs,
        rpo_secs,
        recovery_secs,
        rto_met,
        rto_margin_secs,
        restore_point: resolved_detail["restore_point"]
            .as_str()
            .map(str::to_string),
        data_loss_secs: resolved_detail["data_loss_secs"].as_i64(),
        actions,
        people,
        alarm: opened_detail["alarm"]["name"].as_str().map(str::to_string),
        declared_secs: opened_detail["alarm"]["declared_secs"].as_i64(),
        alarm_recovery_secs: events
            .iter()
            .filter(|e| e.kind == EventKind::AlarmOk)
            .map(detail)
            .find(|d| d["ends_recovery"] == true)
            .and_then(|d| d["recovery_secs"].as_i64()),
    })
}

/// Every change asked for in `events` (in order), folded from the gate's events: who
/// asked, what, who approved and when, how it ended, the AWS request ids it sent.
pub fn actions(events: &[StoredEvent]) -> Vec<Action> {
    let mut actions: Vec<Action> = Vec::new();
    for e in events {
        let d = detail(e);
        let label = text(&d, "action_id");
        let when = at(e);
        match e.kind.as_str() {
            "approval.requested" | "request.started" => {
                if let Some(requested_at) = when {
                    let started = e.kind == EventKind::RequestStarted;
                    // The plan as the officers read it (older events: its first line).
                    let change = match d["summary"].as_str() {
                        Some(summary) => summary
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .collect::<Vec<_>>()
                            .join(" · "),
                        None => e
                            .text
                            .split_once(": ")
                            .map(|(_, c)| c.to_string())
                            .unwrap_or_default(),
                    };
                    actions.push(Action {
                        label,
                        command: text(&d, "command"),
                        change,
                        requester: e.actor.clone(),
                        channel: e.channel.clone(),
                        incident: e.incident.clone(),
                        by_configuration: started,
                        requested_at,
                        decided_at: started.then_some(requested_at),
                        approvers: Vec::new(),
                        wait_secs: None,
                        outcome: "pending".into(),
                        outcome_text: String::new(),
                        finished_at: None,
                        aws_request_ids: Vec::new(),
                    });
                }
            }
            _ if label.is_empty() => {}
            kind => {
                let Some(action) = actions.iter_mut().rev().find(|a| a.label == label) else {
                    continue;
                };
                match kind {
                    "approval.approve" | "approval.approved" => {
                        if !action.approvers.contains(&e.actor) && e.actor != "drbot" {
                            action.approvers.push(e.actor.clone());
                        }
                        if kind == "approval.approved" {
                            action.decided_at = when;
                        }
                    }
                    "approval.rejected" | "request.cancelled" | "approval.expired" => {
                        action.decided_at = when;
                        action.outcome = kind.rsplit('.').next().unwrap_or(kind).to_string();
                        action.outcome_text = e.text.clone();
                        action.finished_at = when;
                    }
                    "request.executed"
                    | "request.failed"
                    | "request.void"
                    | "request.interrupted" => {
                        action.outcome = kind.rsplit('.').next().unwrap_or(kind).to_string();
                        action.outcome_text = e.text.clone();
                        action.finished_at = when;
                    }
                    "aws.call" => {
                        let id = text(&d, "aws_request_id");
                        if !id.is_empty() && !action.aws_request_ids.contains(&id) {
                            action.aws_request_ids.push(id);
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    for a in &mut actions {
        a.wait_secs = a
            .decided_at
            .map(|d| (d - a.requested_at).num_seconds().max(0));
    }
    actions
}

/// `2h 05m`, `3m 20s`, `12s`.
pub fn human(secs: i64) -> String {
    crate::duration::human(chrono::Duration::seconds(secs))
}
