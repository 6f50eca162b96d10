//! Readiness (SPEC §15): whether each scenario's recovery could run right now. Each
//! scenario's plan is dry-run and what it relies on is checked ([`needs`] reads it from the
//! plan, [`checks`] checks each); the verdict per scenario is a pure function of the checks
//! ([`state_of`]). A change of state is recorded once across replicas and restarts (the
//! `readiness` table), posted once to the ops channel and kept as a `readiness.changed`
//! event; `drbot_scenario_ready{scenario}` reads the table.

use std::sync::Arc;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::App;
use crate::config::SCHEDULER;
use crate::scenarios::Scenario;
use crate::slack::text::escape;
use crate::store::{EventKind, NewEvent, Outgoing, StoreError};

pub mod checks;
pub mod needs;

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// A region (or drbot's store) did not answer: neither passed nor failed.
    Unknown,
}

/// One check of a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What a failure means for the RTO/RPO.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub impact: String,
    /// The command or setting that fixes it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub fix: String,
    /// AWS refused a read for lack of permission (the `permissions` check lists them).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub denied: bool,
}

impl Check {
    pub fn pass(name: &str, detail: String) -> Check {
        Check::new(name, Status::Pass, detail, "", "")
    }

    pub fn fail(name: &str, detail: String, impact: &str, fix: &str) -> Check {
        Check::new(name, Status::Fail, detail, impact, fix)
    }

    pub fn unknown(name: &str, detail: String) -> Check {
        Check::new(
            name,
            Status::Unknown,
            detail,
            "drbot cannot tell whether the plan could run",
            "`/dr ready` again once it answers",
        )
    }

    fn new(name: &str, status: Status, detail: String, impact: &str, fix: &str) -> Check {
        Check {
            name: name.to_string(),
            status,
            detail,
            impact: impact.to_string(),
            fix: fix.to_string(),
            denied: false,
        }
    }
}

/// A scenario's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ready,
    NotReady,
    Unknown,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ready => "ready",
            State::NotReady => "not ready",
            State::Unknown => "unknown",
        }
    }

    pub fn icon(self) -> &'static str {
        match self {
            State::Ready => ":large_green_circle:",
            State::NotReady => ":red_circle:",
            State::Unknown => ":white_circle:",
        }
    }

    pub fn parse(s: &str) -> State {
        match s {
            "ready" => State::Ready,
            "not ready" => State::NotReady,
            _ => State::Unknown,
        }
    }
}

/// Not ready when any check failed; else unknown when any could not be made; else ready.
pub fn state_of(checks: &[Check]) -> State {
    if checks.iter().any(|c| c.status == Status::Fail) {
        State::NotReady
    } else if checks.iter().any(|c| c.status == Status::Unknown) {
        State::Unknown
    } else {
        State::Ready
    }
}

/// A scenario's readiness now.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub scenario: String,
    pub state: State,
    pub checks: Vec<Check>,
}

/// Checks `scenario` now: its plan's dry run and everything it relies on, side by side.
pub async fn evaluate(app: &Arc<App>, scenario: &Scenario) -> Readiness {
    let needs = needs::needs(scenario, &app.commands, &app.settings);
    let each = join_all(needs.iter().map(|n| checks::check(app, scenario, n)));
    let (mut checks, dry) = tokio::join!(each, dry_run(app, scenario));
    checks.extend(dry);
    let denied: Vec<&Check> = checks.iter().filter(|c| c.denied).collect();
    checks.push(if denied.is_empty() {
        Check::pass(
            "permissions",
            "every read the plan needs answered without AccessDenied".into(),
        )
    } else {
        let names: Vec<&str> = denied.iter().map(|c| c.name.as_str()).collect();
        Check::fail(
            "permissions",
            format!("AccessDenied for: {}", names.join(", ")),
            "the plan would stop at the first call drbot may not make",
            "deploy the policy `drbot iam-policy` prints for this configuration",
        )
    });
    Readiness {
        scenario: scenario.id.clone(),
        state: state_of(&checks),
        checks,
    }
}

/// The plan's dry run in its default mode: every step planned against AWS as it is now.
async fn dry_run(app: &Arc<App>, scenario: &Scenario) -> Option<Check> {
    let plan = scenario.plan.as_ref()?;
    let mode = plan.default_mode;
    let name = format!("dry run of the plan ({} mode)", mode.as_str());
    let asker = crate::gate::request::Asker {
        user: SCHEDULER.to_string(),
        channel: String::new(),
        response_url: String::new(),
        incident: None,
    };
    // Each step's reads have their region's call timeout; the whole no more than a minute.
    let planned = crate::clock::timeout(
        std::time::Duration::from_secs(60),
        crate::actions::runs::plan_all(app, scenario, mode, &asker),
    )
    .await;
    Some(match planned {
        Err(_) => Check::unknown(&name, "the plan's reads did not finish within 60s".into()),
        Ok(Err(e)) => Check::fail(&name, e.to_string(), "the plan cannot run", ""),
        Ok(Ok(planning)) if planning.blockers.is_empty() => Check::pass(
            &name,
            format!(
                "all {} steps plan against AWS now",
                planning.plan.steps.len()
            ),
        ),
        Ok(Ok(planning)) => {
            let no_answer = planning
                .blockers
                .iter()
                .all(|b| b.contains(crate::aws::NO_ANSWER));
            let detail = planning.blockers.join("; ");
            if no_answer {
                Check::unknown(&name, detail)
            } else {
                Check::fail(
                    &name,
                    detail,
                    "the plan would stop at this step: the RTO cannot be met",
                    &format!("`/dr run {} --dry-run` shows each step", scenario.id),
                )
            }
        }
    })
}

/// Checks every scenario now, side by side.
pub async fn evaluate_all(app: &Arc<App>) -> Vec<Readiness> {
    let scenarios: Vec<Arc<Scenario>> = app.scenarios.all().cloned().collect();
    join_all(scenarios.iter().map(|s| evaluate(app, s))).await
}

/// Records `readiness`; a change of state is posted once to the ops channel and kept as an
/// event (the first record only as an event).
pub async fn record(app: &Arc<App>, readiness: &Readiness) -> Result<(), StoreError> {
    let checks = serde_json::to_string(&readiness.checks).unwrap_or_else(|_| "[]".into());
    let state = readiness.state;
    let mut tx = app.store.begin().await?;
    let Some(before) = tx
        .record_readiness(
            &readiness.scenario,
            state.as_str(),
            &checks,
            crate::clock::now(),
        )
        .await?
    else {
        return tx.commit().await;
    };
    let channel = app.settings.ops_channel().unwrap_or_default().to_string();
    let failing: Vec<&Check> = readiness
        .checks
        .iter()
        .filter(|c| c.status != Status::Pass)
        .collect();
    let text = format!(
        "scenario {} {}{}",
        readiness.scenario,
        match &before {
            Some(b) => format!("went from {b} to {}", state.as_str()),
            None => format!("is {}", state.as_str()),
        },
        if failing.is_empty() {
            String::new()
        } else {
            format!(
                ": {}",
                failing
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    );
    tx.append(
        NewEvent::new(EventKind::ReadinessChanged, SCHEDULER, &channel, text).detail(json!({
            "scenario": readiness.scenario,
            "from": before,
            "to": state.as_str(),
            "checks": readiness.checks,
        })),
    )
    .await?;
    // The first record is no change: `/dr ready` and the App Home show it.
    if !channel.is_empty() && before.is_some() {
        let scenario = app.scenarios.get(&readiness.scenario);
        let head = format!(
            "{} *Readiness: `{}` is now {}*{}.",
            state.icon(),
            readiness.scenario,
            state.as_str().to_uppercase(),
            before
                .as_deref()
                .map(|b| format!(" (was {b})"))
                .unwrap_or_default()
        );
        let body = scenario
            .map(|s| failing_lines(readiness, s))
            .unwrap_or_default();
        tx.send_slack(Outgoing::post(&channel, format!("{head}{body}")))
            .await?;
    }
    tx.commit().await
}

/// Checks every scenario and records each: the schedule's work.
pub async fn check_and_record(app: &Arc<App>) -> Vec<Readiness> {
    let all = evaluate_all(app).await;
    for r in &all {
        if let Err(e) = record(app, r).await {
            tracing::error!(error = %e, scenario = %r.scenario, "could not record readiness");
        }
    }
    all
}

/// The failing and unknown checks, one bullet each with what it means and the fix.
fn failing_lines(readiness: &Readiness, scenario: &Scenario) -> String {
    let mut out = String::new();
    for c in readiness.checks.iter().filter(|c| c.status != Status::Pass) {
        let mark = if c.status == Status::Fail {
            ":x:"
        } else {
            ":grey_question:"
        };
        out.push_str(&format!(
            "\n{mark} *{}*: {}",
            escape(&c.name),
            escape(&c.detail)
        ));
        if !c.impact.is_empty() {
            out.push_str(&format!("\n      _{}_", escape(&c.impact)));
        }
        if !c.fix.is_empty() {
            out.push_str(&format!("\n      fix: {}", c.fix));
        }
    }
    if readiness.state != State::Ready {
        out.push_str(&format!(
            "\n_RTO {} · RPO {}_",
            scenario.rto_text(),
            scenario.rpo_text()
        ));
    }
    out
}

/// The tightest RPO among the scenarios whose recovery restores `database` from a copy in
/// another region: `(scenario, seconds)`. What bounds `[rds.copies] every`.
pub fn copy_rpo(
    database: &str,
    scenarios: &crate::scenarios::ScenarioSet,
    commands: &crate::router::CommandSet,
    settings: &crate::config::Settings,
) -> Option<(String, u64)> {
    scenarios
        .all()
        .filter(|s| {
            needs::needs(s, commands, settings)
                .iter()
                .any(|n| matches!(n, needs::Need::BackupCopy { database: d, .. } if d == database))
        })
        .filter_map(|s| Some((s.id.clone(), s.rpo.seconds()?)))
        .min_by_key(|(_, secs)| *secs)
}

/// `[rds.copies]` against the plan: a copy less often than the RPO of a scenario that
/// restores from it cannot meet that RPO (`check-config` refuses it).
pub fn check_copies(
    settings: &crate::config::Settings,
    commands: &crate::router::CommandSet,
    scenarios: &crate::scenarios::ScenarioSet,
) -> Vec<String> {
    let every = settings.rds.copies.every;
    settings
        .rds
        .copies
        .databases
        .iter()
        .filter_map(|db| {
            let (scenario, rpo) = copy_rpo(db, scenarios, commands, settings)?;
            (every.as_secs() > rpo).then(|| {
                format!(
                    "[rds.copies] every = \"{every}\" is longer than the RPO of `{scenario}` ({}), which restores `{db}` from the copy: set `every` to at most the RPO",
                    crate::duration::HumanDuration::from_secs(rpo)
                )
            })
        })
        .collect()
}

/// `/dr ready [scenario]`'s answer.
pub fn describe(all: &[Readiness], scenarios: &crate::scenarios::ScenarioSet) -> String {
    let mut out = String::new();
    for r in all {
        let Some(scenario) = scenarios.get(&r.scenario) else {
            continue;
        };
        let passed = r.checks.iter().filter(|c| c.status == Status::Pass).count();
        out.push_str(&format!(
            "{} *{}* — {} ({passed}/{} checks passed)",
            r.state.icon(),
            r.scenario,
            r.state.as_str(),
            r.checks.len()
        ));
        out.push_str(&failing_lines(r, scenario));
        out.push_str("\n\n");
    }
    out.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(status: Status) -> Check {
        Check::new("c", status, String::new(), "", "")
    }

    /// Any failure makes the scenario not ready; otherwise anything unknown makes it
    /// unknown; only all passed is ready.
    #[test]
    fn the_verdict_is_the_worst_check() {
        use Status::*;
        let table: &[(&[Status], State)] = &[
            (&[], State::Ready),
            (&[Pass, Pass], State::Ready),
            (&[Pass, Unknown], State::Unknown),
            (&[Unknown, Fail], State::NotReady),
            (&[Fail, Pass], State::NotReady),
        ];
        for (statuses, want) in table {
            let checks: Vec<Check> = statuses.iter().map(|s| check(*s)).collect();
            assert_eq!(state_of(&checks), *want, "{statuses:?}");
        }
    }
}
