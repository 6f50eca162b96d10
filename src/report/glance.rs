//! The report's first screen (SPEC §18): the auditor's questions answered at a glance — RTO
//! and RPO achievement, the success rate of tests (restore tests and drills), the changes
//! approved and by whom, the follow-ups still open — each with a small chart of its trend
//! month by month, drawn to read in black and white when printed. And the follow-ups of
//! the period, from their events (`followup.added`, `followup.done`).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use serde_json::Value;

use super::{esc, Period, Report};
use crate::store::StoredEvent;
use crate::timeline::summary::at;

/// A follow-up open at the end of the period.
#[derive(Debug, Clone, Serialize)]
pub struct OpenFollowup {
    pub label: String,
    pub text: String,
    pub owner: Option<String>,
    pub due: Option<String>,
    pub incident: Option<String>,
    pub overdue: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Followups {
    /// Added and done within the period.
    pub added: usize,
    pub done: usize,
    /// Open at the end of the period (or now), oldest first.
    pub open: Vec<OpenFollowup>,
    /// Each month of the period: (added, done).
    pub by_month: Vec<(String, usize, usize)>,
}

fn detail(e: &StoredEvent) -> Value {
    serde_json::from_str(&e.detail).unwrap_or(Value::Null)
}

/// `2026-10` for each month the period touches.
pub fn months(period: Period) -> Vec<String> {
    let mut out = Vec::new();
    let mut t = period.from;
    while t < period.to {
        let m = t.format("%Y-%m").to_string();
        if !out.contains(&m) {
            out.push(m);
        }
        t += chrono::Duration::days(1);
    }
    out
}

fn month(t: DateTime<Utc>) -> String {
    format!("{:04}-{:02}", t.year(), t.month())
}

pub fn followups(events: &[StoredEvent], period: Period, now: DateTime<Utc>) -> Followups {
    let end = period.to;
    let mut open: BTreeMap<String, OpenFollowup> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut f = Followups {
        by_month: months(period).into_iter().map(|m| (m, 0, 0)).collect(),
        ..Default::default()
    };
    for e in events {
        let Some(t) = at(e) else { continue };
        if t >= end {
            break;
        }
        let d = detail(e);
        let label = d["followup"].as_str().unwrap_or_default().to_string();
        let within = t >= period.from;
        let slot = f.by_month.iter_mut().find(|(m, _, _)| *m == month(t));
        match e.kind.as_str() {
            "followup.added" => {
                open.insert(
                    label.clone(),
                    OpenFollowup {
                        label: label.clone(),
                        text: d["text"].as_str().unwrap_or_default().to_string(),
                        owner: d["owner"].as_str().map(str::to_string),
                        due: d["due"].as_str().map(str::to_string),
                        incident: e.incident.clone(),
                        overdue: false,
                    },
                );
                order.push(label);
                if within {
                    f.added += 1;
                    if let Some(s) = slot {
                        s.1 += 1;
                    }
                }
            }
            "followup.done" => {
                open.remove(&label);
                if within {
                    f.done += 1;
                    if let Some(s) = slot {
                        s.2 += 1;
                    }
                }
            }
            _ => {}
        }
    }
    // Overdue at the end of the period, or today when it ends later.
    let today = end.min(now).format("%Y-%m-%d").to_string();
    f.open = order
        .into_iter()
        .filter_map(|l| open.remove(&l))
        .map(|mut o| {
            o.overdue = o.due.as_deref().is_some_and(|d| d < today.as_str());
            o
        })
        .collect();
    f
}

/// One month's bar: (month, good, bad).
type Bar = (String, usize, usize);

/// A small bar chart, one pair of bars per month (good solid, bad hatched: they stay apart
/// printed in black and white), each bar labelled with its count.
fn bars(title: &str, good: &str, bad: &str, data: &[Bar]) -> String {
    let (w, h, pad) = (260.0, 120.0, 22.0);
    let max = data
        .iter()
        .map(|(_, g, b)| (*g).max(*b))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let slot = (w - pad) / data.len().max(1) as f64;
    let bar = (slot / 3.0).min(24.0);
    // One pattern per chart: ids are unique in the page.
    let hatch: String = title
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_lowercase();
    let mut svg = format!(
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\"><defs><pattern id=\"hatch-{hatch}\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"4\" stroke=\"#a33\" stroke-width=\"2\"/></pattern></defs>",
        esc(title)
    );
    let base = h - pad;
    let _ = write!(
        svg,
        "<line x1=\"{pad}\" y1=\"{base}\" x2=\"{w}\" y2=\"{base}\" stroke=\"#333\"/>"
    );
    for (i, (m, g, b)) in data.iter().enumerate() {
        let x = pad + i as f64 * slot + slot / 2.0 - bar;
        let hatched = format!("url(#hatch-{hatch})");
        for (j, (n, fill)) in [(*g, "#2a6"), (*b, hatched.as_str())]
            .into_iter()
            .enumerate()
        {
            let bh = (base - 14.0) * n as f64 / max;
            let bx = x + j as f64 * bar;
            let _ = write!(
                svg,
                "<rect x=\"{bx:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{bh:.1}\" fill=\"{fill}\" stroke=\"#333\" stroke-width=\"0.5\"/><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\">{n}</text>",
                base - bh,
                bar - 2.0,
                bx + bar / 2.0 - 1.0,
                base - bh - 2.0
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"10\" text-anchor=\"middle\">{}</text>",
            x + bar,
            h - 6.0,
            esc(m)
        );
    }
    let _ = write!(
        svg,
        "<rect x=\"{pad}\" y=\"2\" width=\"8\" height=\"8\" fill=\"#2a6\"/><text x=\"{}\" y=\"10\" font-size=\"9\">{}</text><rect x=\"{}\" y=\"2\" width=\"8\" height=\"8\" fill=\"url(#hatch-{hatch})\" stroke=\"#333\" stroke-width=\"0.5\"/><text x=\"{}\" y=\"10\" font-size=\"9\">{}</text></svg>",
        pad + 11.0,
        esc(good),
        pad + 110.0,
        pad + 121.0,
        esc(bad)
    );
    svg
}

fn per_month(months: &[String], items: impl Iterator<Item = (DateTime<Utc>, bool)>) -> Vec<Bar> {
    let mut data: Vec<Bar> = months.iter().map(|m| (m.clone(), 0, 0)).collect();
    for (t, good) in items {
        if let Some(slot) = data.iter_mut().find(|(m, _, _)| *m == month(t)) {
            if good {
                slot.1 += 1;
            } else {
                slot.2 += 1;
            }
        }
    }
    data
}

fn share(good: usize, all: usize) -> String {
    if all == 0 {
        "—".to_string()
    } else {
        format!("{:.0}%", 100.0 * good as f64 / all as f64)
    }
}

/// The four answers, as HTML.
pub fn html(r: &Report) -> String {
    let period = Period {
        from: r.from,
        to: r.to,
    };
    let months = months(period);
    // RTO and RPO: resolved incidents with a target.
    let measured: Vec<_> = r.incidents.iter().filter(|s| s.rto_met.is_some()).collect();
    let rpo_measured: Vec<_> = r
        .incidents
        .iter()
        .filter_map(|s| Some(s.data_loss_secs? <= s.rpo_secs?))
        .collect();
    let rto_chart = bars(
        "RTO per month",
        "RTO met",
        "missed",
        &per_month(
            &months,
            measured
                .iter()
                .map(|s| (s.opened_at, s.rto_met == Some(true))),
        ),
    );
    // Tests: restore tests and drills (a drill passes when it met its RTO).
    let tests = r.restore_tests.iter().map(|t| (t.at, t.passed)).chain(
        r.drills
            .iter()
            .map(|d| (d.opened_at, d.rto_met == Some(true))),
    );
    let tests: Vec<(DateTime<Utc>, bool)> = tests.collect();
    let passed = tests.iter().filter(|(_, p)| *p).count();
    let tests_chart = bars(
        "Tests per month",
        "passed",
        "failed",
        &per_month(&months, tests.iter().copied()),
    );
    // Changes: approved by a person or the configuration, against those not done.
    let log = &r.changes;
    let changes = log.changes.iter().map(|a| {
        (
            a.requested_at,
            !matches!(a.outcome.as_str(), "rejected" | "expired" | "cancelled"),
        )
    });
    let changes_chart = bars(
        "Changes per month",
        "approved",
        "not done",
        &per_month(&months, changes),
    );
    let by: Vec<String> = log
        .approvers
        .iter()
        .map(|(who, n)| format!("{who} ({n})"))
        .collect();
    let f = &r.followups;
    let done_and_added: Vec<Bar> = f
        .by_month
        .iter()
        .map(|(m, added, done)| (m.clone(), *done, *added))
        .collect();
    let follow_chart = bars("Follow-ups per month", "done", "added", &done_and_added);
    let overdue = f.open.iter().filter(|o| o.overdue).count();
    let card = |title: &str, figure: String, line: String, chart: String| {
        format!(
            "<div class=\"card\"><h3>{}</h3><p class=\"figure\">{}</p><p>{}</p>{chart}</div>",
            esc(title),
            esc(&figure),
            esc(&line)
        )
    };
    let rpo_met = rpo_measured.iter().filter(|m| **m).count();
    format!(
        "<section class=\"glance\" id=\"at-a-glance\">{}{}{}{}</section>",
        card(
            "RTO / RPO achievement",
            share(r.rto_met, r.rto_measured),
            format!(
                "RTO met in {} of {} resolved incidents; RPO met in {} of {} measured",
                r.rto_met,
                r.rto_measured,
                rpo_met,
                rpo_measured.len()
            ),
            rto_chart
        ),
        card(
            "Tests of the plan",
            share(passed, tests.len()),
            format!(
                "{passed} of {} passed ({} restore tests, {} drills)",
                tests.len(),
                r.restore_tests.len(),
                r.drills.len()
            ),
            tests_chart
        ),
        card(
            "Changes approved",
            log.approved().count().to_string(),
            format!(
                "by {}; {} by configuration; {} not done",
                if by.is_empty() {
                    "nobody".to_string()
                } else {
                    by.join(", ")
                },
                log.by_configuration,
                log.not_done()
            ),
            changes_chart
        ),
        card(
            "Follow-ups open",
            f.open.len().to_string(),
            format!(
                "{overdue} overdue; {} added and {} done in the period",
                f.added, f.done
            ),
            follow_chart
        ),
    )
}

/// "3 open (1 overdue); 4 added, 1 done in the period".
pub fn followups_text(f: &Followups) -> String {
    format!(
        "{} open ({} overdue); {} added, {} done in the period",
        f.open.len(),
        f.open.iter().filter(|o| o.overdue).count(),
        f.added,
        f.done
    )
}

pub const FOLLOWUP_HEADERS: [&str; 5] = ["follow-up", "what", "owner", "due", "incident"];

pub fn followup_row(o: &OpenFollowup) -> [String; 5] {
    [
        if o.overdue {
            format!("{} (overdue)", o.label)
        } else {
            o.label.clone()
        },
        o.text.clone(),
        o.owner.clone().unwrap_or_default(),
        o.due.clone().unwrap_or_default(),
        o.incident.clone().unwrap_or_default(),
    ]
}

/// The latest postmortem draft of an incident of the period (`incident.postmortem`).
#[derive(Debug, Clone, Serialize)]
pub struct Postmortem {
    pub incident: String,
    pub at: DateTime<Utc>,
    pub by: String,
    pub file: String,
    pub markdown: String,
}

/// The latest draft of each incident in `incidents`.
pub fn postmortems(events: &[StoredEvent], incidents: &[String]) -> Vec<Postmortem> {
    let mut latest: BTreeMap<String, Postmortem> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "incident.postmortem") {
        let (Some(incident), Some(t)) = (e.incident.clone(), at(e)) else {
            continue;
        };
        if !incidents.contains(&incident) {
            continue;
        }
        let d = detail(e);
        latest.insert(
            incident.clone(),
            Postmortem {
                incident,
                at: t,
                by: e.actor.clone(),
                file: d["file"].as_str().unwrap_or_default().to_string(),
                markdown: d["markdown"].as_str().unwrap_or_default().to_string(),
            },
        );
    }
    latest.into_values().collect()
}
