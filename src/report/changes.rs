//! The change log (SPEC §18): every request of the period in any channel — the command,
//! the exact change, who asked, who approved (or "configuration" for a schedule), the
//! waits, how it ended with its AWS request ids, its incident — and the requests that were
//! refused, rejected, expired or cancelled, counted and listed. A reading of the audit log
//! (`timeline::summary::actions`), not a second record.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{esc, html_table, human, md_table, Period};
use crate::store::StoredEvent;
use crate::timeline::summary::{actions, at, Action};

/// A command refused before it became a request (bad input, not allowed, could not be
/// planned).
#[derive(Debug, Clone, Serialize)]
pub struct Refused {
    pub at: DateTime<Utc>,
    pub user: String,
    pub channel: String,
    pub text: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ChangeLog {
    /// Requested in the period, oldest first.
    pub changes: Vec<Action>,
    pub refused: Vec<Refused>,
    /// How many ended each way (`executed`, `rejected`, `pending` …).
    pub outcomes: BTreeMap<String, usize>,
    /// Each approver and how many changes they approved.
    pub approvers: BTreeMap<String, usize>,
    /// Approved by the configuration (schedules).
    pub by_configuration: usize,
}

impl ChangeLog {
    /// Approved by a person: the deciding approval came.
    pub fn approved(&self) -> impl Iterator<Item = &Action> {
        self.changes
            .iter()
            .filter(|a| !a.approvers.is_empty() && a.decided_at.is_some() && !a.by_configuration)
            .filter(|a| !matches!(a.outcome.as_str(), "rejected" | "expired" | "cancelled"))
    }

    /// Refused, rejected, expired and cancelled, in one count.
    pub fn not_done(&self) -> usize {
        self.refused.len()
            + ["rejected", "expired", "cancelled"]
                .iter()
                .map(|o| self.outcomes.get(*o).copied().unwrap_or(0))
                .sum::<usize>()
    }
}

pub fn build(events: &[StoredEvent], period: Period) -> ChangeLog {
    let within = |t: DateTime<Utc>| t >= period.from && t < period.to;
    let changes: Vec<Action> = actions(events)
        .into_iter()
        .filter(|a| within(a.requested_at))
        .collect();
    let refused = events
        .iter()
        .filter(|e| e.kind == "command.refused")
        .filter_map(|e| {
            let t = at(e)?;
            within(t).then(|| Refused {
                at: t,
                user: e.actor.clone(),
                channel: e.channel.clone(),
                text: e.text.clone(),
            })
        })
        .collect();
    let mut log = ChangeLog {
        changes,
        refused,
        ..Default::default()
    };
    for a in &log.changes {
        *log.outcomes.entry(a.outcome.clone()).or_default() += 1;
        log.by_configuration += usize::from(a.by_configuration);
    }
    let approvers: Vec<String> = log.approved().flat_map(|a| a.approvers.clone()).collect();
    for who in approvers {
        *log.approvers.entry(who).or_default() += 1;
    }
    log
}

/// "12 requests: 9 executed, 1 failed; approved by U1 (5), U2 (4); 2 by configuration;
/// 4 not done (1 refused, 2 rejected, 1 expired)".
pub fn text(log: &ChangeLog) -> String {
    if log.changes.is_empty() && log.refused.is_empty() {
        return "no change requested".to_string();
    }
    let outcomes: Vec<String> = log
        .outcomes
        .iter()
        .map(|(o, n)| format!("{n} {o}"))
        .collect();
    let approvers: Vec<String> = log
        .approvers
        .iter()
        .map(|(who, n)| format!("{who} ({n})"))
        .collect();
    let mut out = format!("{} request(s): {}", log.changes.len(), outcomes.join(", "));
    if !approvers.is_empty() {
        let _ = write!(out, "; approved by {}", approvers.join(", "));
    }
    if log.by_configuration > 0 {
        let _ = write!(out, "; {} approved by configuration", log.by_configuration);
    }
    let _ = write!(
        out,
        "; {} not done ({} refused, {} rejected, {} expired, {} cancelled)",
        log.not_done(),
        log.refused.len(),
        log.outcomes.get("rejected").copied().unwrap_or(0),
        log.outcomes.get("expired").copied().unwrap_or(0),
        log.outcomes.get("cancelled").copied().unwrap_or(0),
    );
    out
}

const HEADERS: [&str; 11] = [
    "request",
    "asked (UTC)",
    "where",
    "requester",
    "command",
    "change",
    "approved by",
    "wait",
    "ran for",
    "outcome",
    "AWS request ids",
];

fn row(a: &Action) -> [String; 11] {
    let approved = if a.by_configuration {
        "configuration".to_string()
    } else if a.approvers.is_empty() {
        "—".to_string()
    } else {
        a.approvers.join(", ")
    };
    [
        a.label.clone(),
        a.requested_at.format("%Y-%m-%d %H:%M:%S").to_string(),
        match &a.incident {
            Some(i) => format!("{} ({i})", a.channel),
            None => a.channel.clone(),
        },
        a.requester.clone(),
        format!("/dr {}", a.command),
        a.change.clone(),
        approved,
        a.wait_secs.map(human).unwrap_or_else(|| "—".into()),
        // From the decision to the end (executions; a rejection ends at its decision).
        match (a.decided_at, a.finished_at) {
            (Some(d), Some(f))
                if a.outcome != "rejected"
                    && a.outcome != "expired"
                    && a.outcome != "cancelled" =>
            {
                human((f - d).num_seconds().max(0))
            }
            _ => "—".into(),
        },
        if a.outcome_text.is_empty() {
            a.outcome.clone()
        } else {
            a.outcome_text.clone()
        },
        a.aws_request_ids.join(", "),
    ]
}

const REFUSED_HEADERS: [&str; 4] = ["when (UTC)", "who", "where", "what"];

fn refused_row(r: &Refused) -> [String; 4] {
    [
        r.at.format("%Y-%m-%d %H:%M:%S").to_string(),
        r.user.clone(),
        r.channel.clone(),
        r.text.clone(),
    ]
}

/// The change log as a Markdown section.
pub fn markdown(out: &mut String, log: &ChangeLog) {
    let _ = writeln!(out, "\n## Change log\n\n**{}**\n", text(log));
    md_table(out, &HEADERS, log.changes.iter().map(row));
    if !log.refused.is_empty() {
        let _ = writeln!(out, "\n### Refused commands\n");
        md_table(out, &REFUSED_HEADERS, log.refused.iter().map(refused_row));
    }
}

/// The change log as an HTML section.
pub fn html(body: &mut String, log: &ChangeLog) {
    let _ = write!(
        body,
        "<h2 id=\"change-log\">Change log</h2><p><strong>{}</strong></p>",
        esc(&text(log))
    );
    if !log.changes.is_empty() {
        body.push_str(&html_table(
            HEADERS,
            log.changes.iter().map(row).collect(),
            "change",
        ));
    }
    if !log.refused.is_empty() {
        body.push_str("<h3>Refused commands</h3>");
        body.push_str(&html_table(
            REFUSED_HEADERS,
            log.refused.iter().map(refused_row).collect(),
            "refused",
        ));
    }
}

/// `drbot changes`: the change log alone, as a document.
pub fn render(format: super::Format, log: &ChangeLog, period: Period) -> String {
    let title = format!(
        "Change log: {} to {}",
        period.from.format("%Y-%m-%d"),
        (period.to - chrono::Duration::days(1)).format("%Y-%m-%d")
    );
    match format {
        super::Format::Json => {
            serde_json::to_string_pretty(log).expect("a change log serialises") + "\n"
        }
        super::Format::Md => {
            let mut out = format!("# {title}\n");
            markdown(&mut out, log);
            out
        }
        super::Format::Html => {
            let mut body = String::new();
            html(&mut body, log);
            super::page(&title, &body)
        }
    }
}
