//! `drbot report` (SPEC §2, §12): the review the plan asks for each quarter, from the store
//! alone — every incident and drill of the period with its recovery time against the
//! scenario's RTO and its data-loss window against the RPO, the RTO achievement rate, how
//! long approvals took, and a chart of recovery time per incident against its target.
//! Restore tests (success rate, durations and their trend, against the database RTO) and
//! backup compliance (the latest check of each database) come from their recorded events
//! (`drill.restore_test`, `backups.checked`).

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::store::{EventKind, StoredEvent};
use crate::timeline::mrkdwn::{esc, md_row};
use crate::timeline::rto_verdict;
use crate::timeline::summary::{human, summarise, Summary};
use crate::timeline::Format;

pub mod changes;
pub mod glance;

/// The period a report covers, `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

/// Why `--from`/`--to` do not make a period.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPeriod {
    #[error("{flag}: '{given}' is not a date like 2026-10-01")]
    NotADate { flag: &'static str, given: String },
    #[error("{flag}: '{given}' is out of range")]
    OutOfRange { flag: &'static str, given: String },
    #[error("--to must not be before --from ({from} … {to})")]
    Reversed { from: NaiveDate, to: NaiveDate },
}

impl BadPeriod {
    /// The same, without the flag it came from (`/dr report <from> <to>` has none).
    pub fn unflagged(&self) -> String {
        let said = self.to_string();
        match self {
            BadPeriod::NotADate { flag, .. } | BadPeriod::OutOfRange { flag, .. } => said
                .strip_prefix(&format!("{flag}: "))
                .map_or(said.clone(), str::to_string),
            BadPeriod::Reversed { .. } => said,
        }
    }
}

impl Period {
    /// From `--from`/`--to` (`YYYY-MM-DD`, `to` inclusive); by default the current quarter.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Period, BadPeriod> {
        let day = |flag: &'static str, s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| BadPeriod::NotADate {
                flag,
                given: s.to_string(),
            })
        };
        let quarter_start = {
            use chrono::Datelike;
            let month = (now.month0() / 3) * 3 + 1;
            NaiveDate::from_ymd_opt(now.year(), month, 1).expect("a valid first of a month")
        };
        let from = match from {
            Some(s) => day("--from", s)?,
            None => quarter_start,
        };
        let to_exclusive = match to {
            Some(s) => day("--to", s)?
                .succ_opt()
                .ok_or_else(|| BadPeriod::OutOfRange {
                    flag: "--to",
                    given: s.to_string(),
                })?,
            None => now.date_naive().succ_opt().unwrap_or(now.date_naive()),
        };
        if to_exclusive <= from {
            return Err(BadPeriod::Reversed {
                from,
                to: to_exclusive.pred_opt().unwrap_or(to_exclusive),
            });
        }
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        Ok(Period {
            from: midnight(from),
            to: midnight(to_exclusive),
        })
    }
}

/// Approval response times over the period.
#[derive(Debug, Clone, Serialize)]
pub struct Approvals {
    pub count: usize,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
    pub max_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub incidents: Vec<Summary>,
    pub drills: Vec<Summary>,
    /// Resolved incidents with a numeric RTO, and how many met it.
    pub rto_measured: usize,
    pub rto_met: usize,
    pub approvals: Approvals,
    /// Restore tests recorded in the period, oldest first.
    pub restore_tests: Vec<RestoreTest>,
    /// The RTO a database restore is measured against (the `db-corruption` scenario's).
    pub restore_rto_secs: Option<i64>,
    /// The latest backup check of each database in the period.
    pub backup_checks: Vec<BackupCheck>,
    /// Plan runs (`/dr run`) started in the period, oldest first.
    pub plan_runs: Vec<PlanRun>,
    /// How much of the period each scenario was ready (from `readiness.changed`).
    pub readiness: Vec<ReadyShare>,
    /// Incidents declared from an alarm: the time from the alarm to the incident's opening.
    pub declare: Declare,
    /// Every request of the period, in any channel (SPEC §18).
    pub changes: changes::ChangeLog,
    /// Follow-ups added, done, and open at the end of the period.
    pub followups: glance::Followups,
    /// The latest postmortem draft of each incident and drill of the period.
    pub postmortems: Vec<glance::Postmortem>,
}

/// Time to declare (alarm's state change → incident opened), over the incidents and
/// drills declared from an alarm.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Declare {
    pub count: usize,
    pub median_secs: Option<i64>,
    pub worst_secs: Option<i64>,
}

fn declare(incidents: &[Summary], drills: &[Summary]) -> Declare {
    let mut secs: Vec<i64> = incidents
        .iter()
        .chain(drills)
        .filter_map(|s| s.declared_secs)
        .collect();
    secs.sort();
    Declare {
        count: secs.len(),
        median_secs: secs.get(secs.len() / 2).copied(),
        worst_secs: secs.last().copied(),
    }
}

/// "2 incident(s) declared from alarms: time to declare median 1m 10s, worst 3m 00s".
pub fn declare_text(r: &Report) -> String {
    match (r.declare.median_secs, r.declare.worst_secs) {
        (Some(m), Some(w)) => format!(
            "{} incident(s) declared from alarms: time to declare median {}, worst {}",
            r.declare.count,
            human(m),
            human(w)
        ),
        _ => "no incident declared from an alarm".to_string(),
    }
}

/// The share of the observed period a scenario was ready, not ready or unknown.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReadyShare {
    pub scenario: String,
    pub ready_secs: i64,
    pub not_ready_secs: i64,
    pub unknown_secs: i64,
    /// Ready seconds over observed seconds (the period from drbot's first check of it).
    pub share: Option<f64>,
    /// Changes of state inside the period.
    pub changes: usize,
}

/// Each scenario's time in each state over `period` (up to `now`), from its
/// `readiness.changed` events: the state holds from one change to the next.
fn readiness_shares(events: &[StoredEvent], period: Period, now: DateTime<Utc>) -> Vec<ReadyShare> {
    // Up to now, or to the log's newest event when the log is ahead of this clock.
    let newest = events
        .last()
        .and_then(|e| DateTime::parse_from_rfc3339(&e.at).ok())
        .map(|t| t.with_timezone(&Utc));
    let end = period.to.min(newest.map_or(now, |n| n.max(now)));
    let mut by: BTreeMap<String, Vec<(DateTime<Utc>, String)>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "readiness.changed") {
        let d: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let (Some(s), Some(to)) = (d["scenario"].as_str(), d["to"].as_str()) else {
            continue;
        };
        let Ok(at) = DateTime::parse_from_rfc3339(&e.at) else {
            continue;
        };
        by.entry(s.to_string())
            .or_default()
            .push((at.with_timezone(&Utc), to.to_string()));
    }
    let mut out = Vec::new();
    for (scenario, mut changes) in by {
        changes.sort_by_key(|(at, _)| *at);
        let mut share = ReadyShare {
            scenario,
            ready_secs: 0,
            not_ready_secs: 0,
            unknown_secs: 0,
            share: None,
            changes: changes
                .iter()
                .filter(|(at, _)| *at >= period.from && *at < end)
                .count(),
        };
        for (i, (at, state)) in changes.iter().enumerate() {
            let from = (*at).max(period.from);
            let until = changes.get(i + 1).map_or(end, |(next, _)| (*next).min(end));
            if until <= from {
                continue;
            }
            let secs = (until - from).num_seconds();
            match state.as_str() {
                "ready" => share.ready_secs += secs,
                "not ready" => share.not_ready_secs += secs,
                _ => share.unknown_secs += secs,
            }
        }
        let observed = share.ready_secs + share.not_ready_secs + share.unknown_secs;
        share.share = (observed > 0).then(|| share.ready_secs as f64 / observed as f64);
        out.push(share);
    }
    out
}

/// "region-failure 93% · ddos 100%" of the observed time, or that nothing was checked.
pub fn readiness_text(r: &Report) -> String {
    let parts: Vec<String> = r
        .readiness
        .iter()
        .filter_map(|s| Some(format!("{} {:.0}%", s.scenario, s.share? * 100.0)))
        .collect();
    if parts.is_empty() {
        "no readiness check recorded in this period".to_string()
    } else {
        format!("ready {} of the checked time", parts.join(" · "))
    }
}

/// Each scenario's time ready (green), not ready (red) and unknown (grey), as stacked bars.
fn readiness_chart(r: &Report) -> String {
    let rows: Vec<&ReadyShare> = r.readiness.iter().filter(|s| s.share.is_some()).collect();
    if rows.is_empty() {
        return "<p>No readiness checks to chart.</p>".to_string();
    }
    let (left, width, row_h) = (220.0, 600.0, 26.0);
    let height = 30.0 + rows.len() as f64 * row_h;
    let mut svg = format!(
        "<svg class=\"chart readiness\" viewBox=\"0 0 900 {height}\" width=\"100%\" role=\"img\" aria-label=\"Share of the period each scenario was ready\"><title>Share of the period each scenario was ready</title>"
    );
    for (i, s) in rows.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let total = (s.ready_secs + s.not_ready_secs + s.unknown_secs).max(1) as f64;
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text>",
            y + 12.0,
            esc(&s.scenario)
        );
        let mut x = left;
        for (secs, fill, label, class) in [
            (s.ready_secs, "#2a7a2a", "ready", "ready"),
            (s.not_ready_secs, "#a00", "not ready", "not-ready"),
            (s.unknown_secs, "#999", "unknown", "unknown"),
        ] {
            if secs == 0 {
                continue;
            }
            let w = secs as f64 / total * width;
            let _ = write!(
                svg,
                "<rect class=\"{class}\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{fill}\"><title>{}: {label} {}</title></rect>",
                esc(&s.scenario),
                human(secs)
            );
            x += w;
        }
        let _ = write!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\">{:.0}% ready</text>",
            left + width + 8.0,
            y + 12.0,
            s.share.unwrap_or(0.0) * 100.0
        );
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">green: ready · red: not ready · grey: unknown (a region did not answer) · from drbot's first check in the period</text></svg>",
        height - 4.0
    );
    svg
}

/// One plan run, from its `run.*` events.
#[derive(Debug, Clone, Serialize)]
pub struct PlanRun {
    pub run: String,
    pub scenario: String,
    pub mode: String,
    pub incident: Option<String>,
    pub started: DateTime<Utc>,
    pub steps: u64,
    /// `finished`, `aborted`, or `unfinished` at the end of the period's log.
    pub outcome: String,
    pub recovery_secs: Option<i64>,
    pub rto_secs: Option<i64>,
    pub rto_met: Option<bool>,
    pub skipped: Vec<String>,
}

fn plan_runs(events: &[StoredEvent], period: Period) -> Vec<PlanRun> {
    let detail =
        |e: &StoredEvent| serde_json::from_str::<serde_json::Value>(&e.detail).unwrap_or_default();
    let mut runs: Vec<PlanRun> = Vec::new();
    for e in events {
        let d = detail(e);
        let label = d["run"].as_str().unwrap_or_default().to_string();
        if e.kind == EventKind::RunStarted {
            let Some(at) = crate::clock::parse_rfc3339(&e.at) else {
                continue;
            };
            if at < period.from || at >= period.to {
                continue;
            }
            runs.push(PlanRun {
                run: label,
                scenario: d["scenario"].as_str().unwrap_or_default().to_string(),
                mode: d["mode"].as_str().unwrap_or_default().to_string(),
                incident: e.incident.clone(),
                started: at,
                steps: d["steps"].as_u64().unwrap_or(0),
                outcome: "unfinished".into(),
                recovery_secs: None,
                rto_secs: None,
                rto_met: None,
                skipped: vec![],
            });
        } else if let Some(run) = runs.iter_mut().find(|r| r.run == label) {
            if e.kind == EventKind::RunFinished {
                run.outcome = "finished".into();
                run.recovery_secs = d["recovery_seconds"].as_i64();
                run.rto_secs = d["rto_seconds"].as_i64();
                run.rto_met = d["rto_met"].as_bool();
                run.skipped = d["skipped"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|s| s.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
            } else if e.kind == EventKind::RunAborted {
                run.outcome = "aborted".into();
            }
        }
    }
    runs
}

/// "2 plan run(s): 1 finished within its RTO, 1 aborted".
pub fn plan_runs_text(r: &Report) -> String {
    if r.plan_runs.is_empty() {
        return "no plan runs".to_string();
    }
    let count = |f: &dyn Fn(&PlanRun) -> bool| r.plan_runs.iter().filter(|p| f(p)).count();
    format!(
        "{} plan run(s): {} finished ({} within the RTO), {} aborted, {} unfinished",
        r.plan_runs.len(),
        count(&|p| p.outcome == "finished"),
        count(&|p| p.rto_met == Some(true)),
        count(&|p| p.outcome == "aborted"),
        count(&|p| p.outcome == "unfinished")
    )
}

fn plan_run_row(p: &PlanRun) -> [String; 6] {
    let recovery = match (p.recovery_secs, p.rto_secs, p.rto_met) {
        (Some(r), Some(rto), Some(true)) => format!("{} (RTO {}: met)", human(r), human(rto)),
        (Some(r), Some(rto), _) => format!("{} (RTO {}: MISSED)", human(r), human(rto)),
        (Some(r), None, _) => human(r),
        (None, ..) => "not measured".to_string(),
    };
    [
        format!(
            "{} ({})",
            p.run,
            p.incident.as_deref().unwrap_or("no incident")
        ),
        format!("{} ({})", p.scenario, p.mode),
        p.started.format("%Y-%m-%d %H:%M").to_string(),
        format!(
            "{} steps{}",
            p.steps,
            if p.skipped.is_empty() {
                String::new()
            } else {
                format!(", skipped: {}", p.skipped.join(", "))
            }
        ),
        p.outcome.clone(),
        recovery,
    ]
}

const PLAN_RUN_HEADERS: [&str; 6] = [
    "run (incident)",
    "scenario (mode)",
    "started (UTC)",
    "steps",
    "outcome",
    "measured recovery",
];

/// One restore test, as recorded (`drill.restore_test`).
#[derive(Debug, Clone, Serialize)]
pub struct RestoreTest {
    pub at: DateTime<Utc>,
    pub action_id: String,
    pub database: String,
    pub snapshot: String,
    pub pick: String,
    pub scheduled: bool,
    pub passed: bool,
    pub restore_secs: Option<i64>,
    pub error: Option<String>,
    /// Data checks run on the restored database: (passed, run).
    pub data_checks: Option<(usize, usize)>,
    /// The data checks that failed, with their value.
    pub failed_checks: Vec<String>,
    /// Restore point − newest write in the restored data.
    pub rpo_secs: Option<i64>,
    pub rpo_target_secs: Option<i64>,
    pub rpo_met: Option<bool>,
}

/// A database's latest backup compliance check in the period (`backups.checked`).
#[derive(Debug, Clone, Serialize)]
pub struct BackupCheck {
    pub at: DateTime<Utc>,
    pub database: String,
    pub compliant: bool,
    /// Held of slots, per tier: `[daily, weekly, monthly]`.
    pub held: [u64; 3],
    pub slots: [u64; 3],
    pub missing: Vec<String>,
    /// How many checks of this database the period holds, and how many were compliant.
    pub checks: usize,
    pub compliant_checks: usize,
}

fn restore_tests(events: &[StoredEvent], period: Period) -> Vec<RestoreTest> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::DrillRestoreTest)
        .filter_map(|e| {
            let at = DateTime::parse_from_rfc3339(&e.at)
                .ok()?
                .with_timezone(&Utc);
            if at < period.from || at >= period.to {
                return None;
            }
            let d: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
            Some(RestoreTest {
                at,
                action_id: text("action_id"),
                database: text("database"),
                snapshot: text("snapshot"),
                pick: text("pick"),
                scheduled: d["scheduled"].as_bool().unwrap_or(false),
                passed: d["passed"].as_bool().unwrap_or(false),
                restore_secs: d["restore_seconds"].as_i64(),
                error: d["error"]
                    .as_str()
                    .or(d["data"]["error"].as_str())
                    .map(str::to_string),
                data_checks: d["data"]["checks"].as_array().map(|checks| {
                    let passed = checks.iter().filter(|c| c["passed"] == true).count();
                    (passed, checks.len())
                }),
                failed_checks: d["data"]["checks"]
                    .as_array()
                    .map(|checks| {
                        checks
                            .iter()
                            .filter(|c| c["passed"] != true)
                            .map(|c| {
                                format!(
                                    "{} = {} (expected {})",
                                    c["name"].as_str().unwrap_or("?"),
                                    c["value"].as_str().unwrap_or("no value"),
                                    c["expect"].as_str().unwrap_or("?")
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                rpo_secs: d["rpo_seconds"].as_i64(),
                rpo_target_secs: d["rpo_target_seconds"].as_i64(),
                rpo_met: d["rpo_met"].as_bool(),
            })
        })
        .collect()
}

fn backup_checks(events: &[StoredEvent], period: Period) -> Vec<BackupCheck> {
    let mut latest: BTreeMap<String, BackupCheck> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind == EventKind::BackupsChecked)
    {
        let Some(at) = DateTime::parse_from_rfc3339(&e.at)
            .ok()
            .map(|t| t.with_timezone(&Utc))
        else {
            continue;
        };
        if at < period.from || at >= period.to {
            continue;
        }
        let Ok(d) = serde_json::from_str::<serde_json::Value>(&e.detail) else {
            continue;
        };
        let tiers = ["daily", "weekly", "monthly"];
        let num = |t: &str, k: &str| d[t][k].as_u64().unwrap_or(0);
        let compliant = d["compliant"].as_bool().unwrap_or(false);
        let database = d["database"].as_str().unwrap_or_default().to_string();
        let (checks, compliant_checks) = latest
            .get(&database)
            .map(|c| (c.checks, c.compliant_checks))
            .unwrap_or((0, 0));
        latest.insert(
            database.clone(),
            BackupCheck {
                at,
                database,
                compliant,
                held: tiers.map(|t| num(t, "held")),
                slots: tiers.map(|t| num(t, "slots")),
                missing: tiers
                    .iter()
                    .flat_map(|t| {
                        d[*t]["missing"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .filter_map(move |v| v.as_str().map(|s| format!("{t} {s}")))
                    })
                    .collect(),
                checks: checks + 1,
                compliant_checks: compliant_checks + usize::from(compliant),
            },
        );
    }
    latest.into_values().collect()
}

/// Builds the report from every stored event.
pub fn build(
    events: &[StoredEvent],
    period: Period,
    rto_of: impl Fn(&str) -> Option<u64>,
) -> Report {
    let mut by_incident: BTreeMap<&str, Vec<StoredEvent>> = BTreeMap::new();
    for e in events {
        if let Some(id) = e.incident.as_deref() {
            by_incident.entry(id).or_default().push(e.clone());
        }
    }
    let mut incidents = Vec::new();
    let mut drills = Vec::new();
    for evs in by_incident.values() {
        let scenario = crate::timeline::summary::scenario_of(evs);
        let Some(s) = summarise(evs, rto_of(&scenario)) else {
            continue;
        };
        if s.opened_at < period.from || s.opened_at >= period.to {
            continue;
        }
        if s.drill {
            drills.push(s);
        } else {
            incidents.push(s);
        }
    }
    incidents.sort_by_key(|s| s.opened_at);
    drills.sort_by_key(|s| s.opened_at);
    let rto_measured = incidents.iter().filter(|s| s.rto_met.is_some()).count();
    let rto_met = incidents.iter().filter(|s| s.rto_met == Some(true)).count();
    // Approval waits over every request an officer approved, in any channel.
    let changes = changes::build(events, period);
    let mut waits: Vec<i64> = changes.approved().filter_map(|a| a.wait_secs).collect();
    waits.sort();
    let pick = |q: f64| -> Option<i64> {
        if waits.is_empty() {
            None
        } else {
            let i = ((waits.len() as f64 - 1.0) * q).round() as usize;
            Some(waits[i])
        }
    };
    Report {
        from: period.from,
        to: period.to,
        rto_measured,
        rto_met,
        approvals: Approvals {
            count: waits.len(),
            median_secs: pick(0.5),
            p90_secs: pick(0.9),
            max_secs: waits.last().copied(),
        },
        restore_tests: restore_tests(events, period),
        restore_rto_secs: rto_of("db-corruption").map(|s| s as i64),
        backup_checks: backup_checks(events, period),
        plan_runs: plan_runs(events, period),
        readiness: readiness_shares(events, period, crate::clock::now()),
        declare: declare(&incidents, &drills),
        changes,
        followups: glance::followups(events, period, crate::clock::now()),
        postmortems: glance::postmortems(
            events,
            &incidents
                .iter()
                .chain(&drills)
                .map(|s| s.incident.clone())
                .collect::<Vec<_>>(),
        ),
        incidents,
        drills,
    }
}

/// "3 of 4 passed (75%); restore time median 12m 10s, longest 20m 00s (RTO 4h 00m)".
pub fn restore_tests_text(r: &Report) -> String {
    let tests = &r.restore_tests;
    if tests.is_empty() {
        return "no restore tests recorded".to_string();
    }
    let passed = tests.iter().filter(|t| t.passed).count();
    let mut times: Vec<i64> = tests.iter().filter_map(|t| t.restore_secs).collect();
    times.sort();
    let mut text = format!(
        "{passed} of {} passed ({:.0}%)",
        tests.len(),
        100.0 * passed as f64 / tests.len() as f64
    );
    if let (Some(median), Some(longest)) = (times.get(times.len() / 2), times.last()) {
        text.push_str(&format!(
            "; restore time median {}, longest {}",
            human(*median),
            human(*longest)
        ));
        if let Some(rto) = r.restore_rto_secs {
            text.push_str(&format!(" (database RTO {})", human(rto)));
        }
    }
    let mut rpos: Vec<&RestoreTest> = tests.iter().filter(|t| t.rpo_secs.is_some()).collect();
    if !rpos.is_empty() {
        rpos.sort_by_key(|t| t.rpo_secs);
        let worst = rpos.last().and_then(|t| t.rpo_secs).unwrap_or(0);
        let missed = rpos.iter().filter(|t| t.rpo_met == Some(false)).count();
        text.push_str(&format!(
            "; real RPO worst {}, missed in {missed} of {}",
            human(worst),
            rpos.len()
        ));
    }
    text
}

/// "2 of 2 databases compliant at their latest check".
pub fn backups_text(r: &Report) -> String {
    if r.backup_checks.is_empty() {
        return "no backup checks recorded".to_string();
    }
    let ok = r.backup_checks.iter().filter(|c| c.compliant).count();
    format!(
        "{ok} of {} database(s) compliant at their latest check",
        r.backup_checks.len()
    )
}

fn restore_row(t: &RestoreTest) -> [String; 8] {
    [
        t.at.format("%Y-%m-%d %H:%M").to_string(),
        t.database.clone(),
        format!("{} ({})", t.snapshot, t.pick),
        t.restore_secs
            .map(human)
            .unwrap_or_else(|| "not restored".to_string()),
        match t.data_checks {
            None => "—".to_string(),
            Some((passed, run)) if t.failed_checks.is_empty() => {
                format!("{passed} of {run} passed")
            }
            Some((passed, run)) => format!(
                "{passed} of {run} passed; failed: {}",
                t.failed_checks.join("; ")
            ),
        },
        match (t.rpo_secs, t.rpo_target_secs, t.rpo_met) {
            (Some(rpo), Some(target), Some(met)) => format!(
                "{} ({} target {})",
                human(rpo),
                if met { "within" } else { "MISSED:" },
                human(target)
            ),
            (Some(rpo), _, _) => human(rpo),
            _ => "—".to_string(),
        },
        if t.passed {
            "passed".to_string()
        } else {
            format!(
                "FAILED{}",
                t.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        },
        if t.scheduled {
            "schedule".to_string()
        } else {
            t.action_id.clone()
        },
    ]
}

const RESTORE_HEADERS: [&str; 8] = [
    "tested (UTC)",
    "database",
    "snapshot (pick)",
    "restore time",
    "data checks",
    "real RPO",
    "result",
    "by",
];

fn backup_row(c: &BackupCheck) -> [String; 6] {
    let tiers = |i: usize| format!("{} of {}", c.held[i], c.slots[i]);
    [
        c.database.clone(),
        c.at.format("%Y-%m-%d %H:%M").to_string(),
        if c.compliant {
            "compliant".to_string()
        } else {
            "GAPS".to_string()
        },
        format!("{} / {} / {}", tiers(0), tiers(1), tiers(2)),
        if c.missing.is_empty() {
            "none".to_string()
        } else {
            c.missing.join(", ")
        },
        format!("{} of {}", c.compliant_checks, c.checks),
    ]
}

const BACKUP_HEADERS: [&str; 6] = [
    "database",
    "latest check (UTC)",
    "verdict",
    "held daily / weekly / monthly",
    "missing",
    "compliant checks",
];

pub fn render(format: Format, r: &Report) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).expect("a report serialises") + "\n",
        Format::Md => markdown(r),
        Format::Html => html(r),
    }
}

pub fn period_text(r: &Report) -> String {
    format!(
        "{} to {}",
        r.from.format("%Y-%m-%d"),
        (r.to - chrono::Duration::days(1)).format("%Y-%m-%d")
    )
}

pub fn rto_rate(r: &Report) -> String {
    if r.rto_measured == 0 {
        "no resolved incident with a numeric RTO".to_string()
    } else {
        format!(
            "{} of {} resolved incidents met their RTO ({:.0}%)",
            r.rto_met,
            r.rto_measured,
            100.0 * r.rto_met as f64 / r.rto_measured as f64
        )
    }
}

pub fn approvals_text(a: &Approvals) -> String {
    match (a.median_secs, a.p90_secs, a.max_secs) {
        (Some(m), Some(p), Some(x)) => format!(
            "{} approved change(s): median wait {}, 90th percentile {}, longest {}",
            a.count,
            human(m),
            human(p),
            human(x)
        ),
        _ => "no approved changes".to_string(),
    }
}

/// One row per incident: id, scenario, opened, recovery, RTO verdict, RPO verdict.
fn row(s: &Summary) -> [String; 6] {
    let rpo = match (s.data_loss_secs, s.rpo_secs) {
        (Some(loss), Some(rpo)) if loss <= rpo => {
            format!("{} (within {})", human(loss), human(rpo))
        }
        (Some(loss), Some(rpo)) => format!("{} (exceeds {})", human(loss), human(rpo)),
        (Some(loss), None) => human(loss),
        (None, _) => "no restore".to_string(),
    };
    let recovery = match (s.alarm_recovery_secs, &s.alarm) {
        (Some(ok), Some(alarm)) => format!(
            "{} (alarm {alarm} back to OK after {})",
            human(s.recovery_secs),
            human(ok)
        ),
        _ => human(s.recovery_secs),
    };
    let opened = match (s.declared_secs, &s.alarm) {
        (Some(d), Some(alarm)) => format!(
            "{} (from alarm {alarm}, declared in {})",
            s.opened_at.format("%Y-%m-%d %H:%M"),
            human(d)
        ),
        _ => s.opened_at.format("%Y-%m-%d %H:%M").to_string(),
    };
    [
        s.incident.clone(),
        s.scenario.clone(),
        opened,
        recovery,
        rto_verdict(s),
        rpo,
    ]
}

const HEADERS: [&str; 6] = [
    "incident",
    "scenario",
    "opened (UTC)",
    "recovery",
    "RTO",
    "data loss (RPO)",
];

fn markdown(r: &Report) -> String {
    let mut out = format!("# DR review: {}\n\n", period_text(r));
    let _ = writeln!(out, "- **RTO achievement:** {}", rto_rate(r));
    let _ = writeln!(out, "- **Approvals:** {}", approvals_text(&r.approvals));
    let _ = writeln!(out, "- **Drills (tests of the plan):** {}", r.drills.len());
    let _ = writeln!(out, "- **Restore tests:** {}", restore_tests_text(r));
    let _ = writeln!(out, "- **Backup compliance:** {}", backups_text(r));
    let _ = writeln!(out, "- **Plan runs:** {}", plan_runs_text(r));
    let _ = writeln!(out, "- **Readiness:** {}", readiness_text(r));
    let _ = writeln!(out, "- **Time to declare:** {}", declare_text(r));
    let _ = writeln!(out, "- **Changes:** {}", changes::text(&r.changes));
    let _ = writeln!(
        out,
        "- **Follow-ups:** {}",
        glance::followups_text(&r.followups)
    );
    for (title, list) in [("Incidents", &r.incidents), ("Drills", &r.drills)] {
        let _ = writeln!(out, "\n## {title}\n");
        if list.is_empty() {
            out.push_str("_None in this period._\n");
            continue;
        }
        md_table(&mut out, &HEADERS, list.iter().map(row));
    }
    let _ = writeln!(out, "\n## Restore tests\n\n**{}**\n", restore_tests_text(r));
    md_table(
        &mut out,
        &RESTORE_HEADERS,
        r.restore_tests.iter().map(restore_row),
    );
    let _ = writeln!(out, "\n## Backup compliance\n\n**{}**\n", backups_text(r));
    md_table(
        &mut out,
        &BACKUP_HEADERS,
        r.backup_checks.iter().map(backup_row),
    );
    let _ = writeln!(out, "\n## Plan runs\n\n**{}**\n", plan_runs_text(r));
    md_table(
        &mut out,
        &PLAN_RUN_HEADERS,
        r.plan_runs.iter().map(plan_run_row),
    );
    let _ = writeln!(out, "\n## Readiness\n\n**{}**\n", readiness_text(r));
    md_table(&mut out, &READY_HEADERS, r.readiness.iter().map(ready_row));
    changes::markdown(&mut out, &r.changes);
    let _ = writeln!(
        out,
        "\n## Follow-ups\n\n**{}**\n",
        glance::followups_text(&r.followups)
    );
    md_table(
        &mut out,
        &glance::FOLLOWUP_HEADERS,
        r.followups.open.iter().map(glance::followup_row),
    );
    for p in &r.postmortems {
        let _ = writeln!(
            out,
            "\n## Postmortem of {} ({}, by {})\n\n~~~~markdown\n{}\n~~~~",
            p.incident,
            p.at.format("%Y-%m-%d %H:%M"),
            p.by,
            p.markdown.replace("~~~~", "~~~")
        );
    }
    out
}

/// A Markdown table of `rows` under `headers`; nothing when there are no rows.
fn md_table<R: AsRef<[String]>>(out: &mut String, headers: &[&str], rows: impl Iterator<Item = R>) {
    let mut rows = rows.peekable();
    if rows.peek().is_none() {
        return;
    }
    let _ = writeln!(
        out,
        "| {} |\n|{}",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for row in rows {
        let _ = writeln!(out, "{}", md_row(row.as_ref()));
    }
}

/// Restore-test durations over time, as bars (red when the test failed).
fn restore_chart(r: &Report) -> String {
    let timed: Vec<&RestoreTest> = r
        .restore_tests
        .iter()
        .filter(|t| t.restore_secs.is_some())
        .collect();
    if timed.is_empty() {
        return "<p>No restore test durations to chart.</p>".to_string();
    }
    let scale = timed
        .iter()
        .filter_map(|t| t.restore_secs)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (bottom, height, step) = (150.0, 120.0, (760.0 / timed.len() as f64).min(60.0));
    let mut svg = String::from("<svg class=\"chart restore-tests\" viewBox=\"0 0 900 190\" width=\"100%\" role=\"img\" aria-label=\"Restore-test duration over time\"><title>Restore-test duration over time</title>");
    for (i, t) in timed.iter().enumerate() {
        let secs = t.restore_secs.unwrap_or(0);
        let h = (secs as f64 / scale * height).max(2.0);
        let x = 80.0 + i as f64 * step;
        let fill = if t.passed { "#333" } else { "#a00" };
        let _ = write!(
            svg,
            "<rect class=\"restore\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{} {}: {}</title></rect><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            bottom - h,
            (step * 0.7).max(4.0),
            esc(&t.database),
            t.at.format("%Y-%m-%d"),
            human(secs),
            bottom + 14.0,
            t.at.format("%m-%d")
        );
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">{}</text><text x=\"80\" y=\"185\" font-size=\"11\" fill=\"#333\">bars: time until the restored instance was available, oldest first · red: failed{}</text></svg>",
        bottom - height + 10.0,
        human(scale as i64),
        r.restore_rto_secs.map(|rto| format!(" · database RTO {}", human(rto))).unwrap_or_default()
    );
    svg
}

/// The real RPO of each restore test that measured one (restore point − newest write),
/// against its target, as bars (red when missed), oldest first.
fn rpo_chart(r: &Report) -> String {
    let measured: Vec<&RestoreTest> = r
        .restore_tests
        .iter()
        .filter(|t| t.rpo_secs.is_some())
        .collect();
    if measured.is_empty() {
        return "<p>No restore test measured a real RPO (set <code>newest_write_sql</code>).</p>"
            .to_string();
    }
    let scale = measured
        .iter()
        .map(|t| t.rpo_secs.unwrap_or(0).max(t.rpo_target_secs.unwrap_or(0)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (bottom, height, step) = (150.0, 120.0, (760.0 / measured.len() as f64).min(60.0));
    let mut svg = String::from("<svg class=\"chart real-rpo\" viewBox=\"0 0 900 190\" width=\"100%\" role=\"img\" aria-label=\"Real RPO per restore test against its target\"><title>Real RPO per restore test against its target</title>");
    for (i, t) in measured.iter().enumerate() {
        let secs = t.rpo_secs.unwrap_or(0);
        let h = (secs as f64 / scale * height).max(2.0);
        let x = 80.0 + i as f64 * step;
        let w = (step * 0.7).max(4.0);
        let fill = if t.rpo_met == Some(false) {
            "#a00"
        } else {
            "#333"
        };
        let _ = write!(
            svg,
            "<rect class=\"rpo\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{fill}\"><title>{} {}: real RPO {}</title></rect><text x=\"{x:.1}\" y=\"{:.1}\" font-size=\"10\">{}</text>",
            bottom - h,
            esc(&t.database),
            t.at.format("%Y-%m-%d"),
            human(secs),
            bottom + 14.0,
            t.at.format("%m-%d")
        );
        if let Some(target) = t.rpo_target_secs {
            let y = bottom - target as f64 / scale * height;
            let _ = write!(
                svg,
                "<line class=\"target\" x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"4 2\"><title>RPO target {}</title></line>",
                x - 2.0,
                x + w + 2.0,
                human(target)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"0\" y=\"{:.1}\" font-size=\"11\">{}</text><text x=\"80\" y=\"185\" font-size=\"11\" fill=\"#333\">bars: restore point − newest write in the restored data · dashed: the scenario's RPO · red: missed</text></svg>",
        bottom - height + 10.0,
        human(scale as i64)
    );
    svg
}

const READY_HEADERS: [&str; 6] = [
    "Scenario",
    "Ready",
    "Not ready",
    "Unknown",
    "Share ready",
    "Changes",
];

fn ready_row(s: &ReadyShare) -> [String; 6] {
    [
        s.scenario.clone(),
        human(s.ready_secs),
        human(s.not_ready_secs),
        human(s.unknown_secs),
        s.share
            .map(|x| format!("{:.0}%", x * 100.0))
            .unwrap_or_else(|| "—".into()),
        s.changes.to_string(),
    ]
}

fn html_table<const N: usize>(headers: [&str; N], rows: Vec<[String; N]>, class: &str) -> String {
    let mut out = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        let _ = write!(out, "<tr class=\"{class}\">");
        for c in row {
            let _ = write!(out, "<td>{}</td>", esc(&c));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A chart (SVG) under its caption.
fn figure(body: &mut String, caption: &str, chart: &str) {
    let _ = write!(
        body,
        "<figure><figcaption>{caption}</figcaption>{chart}</figure>"
    );
}

/// Recovery time per incident against its RTO, as horizontal bars.
fn chart(list: &[Summary]) -> String {
    let measured: Vec<&Summary> = list.iter().filter(|s| s.resolved_at.is_some()).collect();
    if measured.is_empty() {
        return "<p>No resolved incidents to chart.</p>".to_string();
    }
    let scale = measured
        .iter()
        .map(|s| s.recovery_secs.max(s.rto_secs.unwrap_or(0)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (left, width, row_h) = (220.0, 640.0, 26.0);
    let height = 30.0 + measured.len() as f64 * row_h;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 900 {height}\" width=\"100%\" role=\"img\" aria-label=\"Recovery time per incident against its RTO\"><title>Recovery time per incident against its RTO</title>"
    );
    for (i, s) in measured.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let w = (s.recovery_secs as f64 / scale * width).max(2.0);
        let fill = if s.rto_met == Some(false) {
            "#a00"
        } else {
            "#333"
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text><rect class=\"recovery\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{fill}\"><title>{}: {}</title></rect>",
            y + 12.0,
            esc(&s.incident),
            esc(&s.incident),
            human(s.recovery_secs)
        );
        if let Some(rto) = s.rto_secs {
            let x = left + rto as f64 / scale * width;
            let _ = write!(
                svg,
                "<line class=\"target\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"4 2\"><title>RTO {}</title></line>",
                y - 2.0,
                y + 18.0,
                human(rto)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">bars: recovery time · dashed: the scenario's RTO · scale 0 to {}</text></svg>",
        height - 4.0,
        human(scale as i64)
    );
    svg
}

fn html(r: &Report) -> String {
    let mut body = glance::html(r);
    let _ = write!(
        body,
        "<dl><dt>Changes</dt><dd>{}</dd><dt>Follow-ups</dt><dd>{}</dd><dt>RTO achievement</dt><dd>{}</dd><dt>Approvals</dt><dd>{}</dd><dt>Drills (tests of the plan)</dt><dd>{}</dd><dt>Restore tests</dt><dd>{}</dd><dt>Backup compliance</dt><dd>{}</dd><dt>Plan runs</dt><dd>{}</dd><dt>Readiness</dt><dd>{}</dd><dt>Time to declare</dt><dd>{}</dd></dl>",
        esc(&changes::text(&r.changes)),
        esc(&glance::followups_text(&r.followups)),
        esc(&rto_rate(r)),
        esc(&approvals_text(&r.approvals)),
        r.drills.len(),
        esc(&restore_tests_text(r)),
        esc(&backups_text(r)),
        esc(&plan_runs_text(r)),
        esc(&readiness_text(r)),
        esc(&declare_text(r))
    );
    for (title, list) in [("Incidents", &r.incidents), ("Drills", &r.drills)] {
        if list.is_empty() {
            let _ = write!(body, "<h2>{title}</h2><p>None in this period.</p>");
            continue;
        }
        let _ = write!(body, "<h2>{title}</h2>");
        body.push_str(&html_table(
            HEADERS,
            list.iter().map(row).collect(),
            "incident",
        ));
        let one = if title == "Drills" {
            "drill"
        } else {
            "incident"
        };
        figure(
            &mut body,
            &format!("Recovery time per {one} against its RTO"),
            &chart(list),
        );
    }
    let _ = write!(
        body,
        "<h2>Restore tests</h2><p><strong>{}</strong></p>",
        esc(&restore_tests_text(r))
    );
    if !r.restore_tests.is_empty() {
        let rows = r.restore_tests.iter().map(restore_row).collect();
        body.push_str(&html_table(RESTORE_HEADERS, rows, "restore-test"));
        figure(
            &mut body,
            "Restore-test duration over time",
            &restore_chart(r),
        );
        figure(
            &mut body,
            "Real RPO per restore test (restore point − newest write) against its target",
            &rpo_chart(r),
        );
    }
    let _ = write!(
        body,
        "<h2>Backup compliance</h2><p><strong>{}</strong></p>",
        esc(&backups_text(r))
    );
    if !r.backup_checks.is_empty() {
        let rows = r.backup_checks.iter().map(backup_row).collect();
        body.push_str(&html_table(BACKUP_HEADERS, rows, "backup-check"));
    }
    let _ = write!(
        body,
        "<h2>Plan runs</h2><p><strong>{}</strong></p>",
        esc(&plan_runs_text(r))
    );
    if !r.plan_runs.is_empty() {
        let rows = r.plan_runs.iter().map(plan_run_row).collect();
        body.push_str(&html_table(PLAN_RUN_HEADERS, rows, "plan-run"));
    }
    let _ = write!(
        body,
        "<h2>Readiness</h2><p><strong>{}</strong></p>",
        esc(&readiness_text(r))
    );
    if !r.readiness.is_empty() {
        let rows = r.readiness.iter().map(ready_row).collect();
        body.push_str(&html_table(READY_HEADERS, rows, "readiness"));
        figure(
            &mut body,
            "Share of the period each scenario was ready",
            &readiness_chart(r),
        );
    }
    changes::html(&mut body, &r.changes);
    let _ = write!(
        body,
        "<h2 id=\"follow-ups\">Follow-ups</h2><p><strong>{}</strong></p>",
        esc(&glance::followups_text(&r.followups))
    );
    if !r.followups.open.is_empty() {
        let rows = r.followups.open.iter().map(glance::followup_row).collect();
        body.push_str(&html_table(glance::FOLLOWUP_HEADERS, rows, "followup"));
    }
    if !r.postmortems.is_empty() {
        body.push_str("<h2 id=\"postmortems\">Postmortems</h2>");
    }
    for p in &r.postmortems {
        let _ = write!(
            body,
            "<h3>{} <small>({} UTC, by {}, {})</small></h3><pre class=\"postmortem\">{}</pre>",
            esc(&p.incident),
            p.at.format("%Y-%m-%d %H:%M"),
            esc(&p.by),
            esc(&p.file),
            esc(&p.markdown)
        );
    }
    page(&format!("DR review: {}", period_text(r)), &body)
}

/// A self-contained page that prints well: `title` over `body`.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{p}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #999;padding:4px 6px;text-align:left;font-size:14px;overflow-wrap:anywhere}}th{{background:#eee}}dl{{display:grid;grid-template-columns:max-content auto;gap:2px 12px}}dt{{font-weight:bold}}dd{{margin:0}}figure{{margin:1em 0}}figcaption{{font-size:12px;color:#444}}.glance{{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px;margin-bottom:1.5em}}.card{{border:1px solid #999;border-radius:4px;padding:8px 12px}}.card h3{{margin:0;font-size:15px}}.card .figure{{font-size:30px;font-weight:bold;margin:2px 0}}.card p{{margin:2px 0 6px}}pre.postmortem{{white-space:pre-wrap;background:#f6f6f6;border:1px solid #ccc;padding:8px;font-size:13px}}@media print{{figure,tr,.card{{page-break-inside:avoid}}}}</style></head>\n<body><h1>{p}</h1>\n{body}\n</body></html>\n",
        p = esc(title),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_period_names_its_flag_and_can_be_said_without_it() {
        let now = DateTime::parse_from_rfc3339("2026-11-28T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let bad = Period::parse(Some("2026-13-01"), None, now).unwrap_err();
        assert_eq!(
            bad.to_string(),
            "--from: '2026-13-01' is not a date like 2026-10-01"
        );
        assert_eq!(
            bad.unflagged(),
            "'2026-13-01' is not a date like 2026-10-01"
        );
        let bad = Period::parse(Some("2026-10-02"), Some("2026-10-01"), now).unwrap_err();
        assert_eq!(
            bad,
            BadPeriod::Reversed {
                from: NaiveDate::from_ymd_opt(2026, 10, 2).unwrap(),
                to: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
            }
        );
        assert_eq!(
            bad.unflagged(),
            "--to must not be before --from (2026-10-02 … 2026-10-01)"
        );
        let quarter = Period::parse(None, None, now).unwrap();
        assert_eq!(quarter.from.to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(quarter.to.to_rfc3339(), "2026-11-29T00:00:00+00:00");
    }

    fn changed(at: &str, scenario: &str, to: &str) -> StoredEvent {
        StoredEvent {
            seq: 0,
            at: at.to_string(),
            actor: "drbot".into(),
            channel: String::new(),
            incident: None,
            kind: "readiness.changed".into(),
            text: String::new(),
            detail: serde_json::json!({"scenario": scenario, "to": to}).to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// A state holds from one change to the next; the share counts only the time drbot
    /// had checked, inside the period, up to now.
    #[test]
    fn the_share_of_time_ready_runs_from_change_to_change() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let period = Period {
            from: t("2026-10-01T00:00:00Z"),
            to: t("2026-10-02T00:00:00Z"),
        };
        let events = [
            // Before the period: its state at the start of the period.
            changed("2026-09-30T12:00:00Z", "region-failure", "not ready"),
            changed("2026-10-01T06:00:00Z", "region-failure", "ready"),
            changed("2026-10-01T18:00:00Z", "region-failure", "unknown"),
            changed("2026-10-01T12:00:00Z", "ddos", "ready"),
        ];
        let shares = readiness_shares(&events, period, t("2026-10-01T20:00:00Z"));
        let ddos = &shares[0];
        assert_eq!(
            (ddos.scenario.as_str(), ddos.ready_secs, ddos.share),
            ("ddos", 8 * 3600, Some(1.0))
        );
        let rf = &shares[1];
        assert_eq!(rf.not_ready_secs, 6 * 3600);
        assert_eq!(rf.ready_secs, 12 * 3600);
        assert_eq!(rf.unknown_secs, 2 * 3600);
        assert_eq!(rf.share, Some(0.6));
        assert_eq!(rf.changes, 2);
    }
}
