//! `/dr run <scenario> [--mode graceful|ungraceful] [--dry-run]`: the scenario's `[plan]`
//! planned step by step against AWS as it is now and put to the officers as ONE request;
//! once approved it becomes plan run `R-<n>`, driven by `runs::drive`.
//!
//! AWS calls: those of each step's planner (and, when run, of each step's action).
//! IAM: the steps' actions' (granted through them). Approval: `officer` (commands/run.toml).
//! Undo: each step's own undo (restores create new instances; DNS and scale switch back).

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::{Action, PlanFailure};
use crate::app::App;
use crate::config::Settings;
use crate::gate::execute::Run;
use crate::gate::request::Asker;
use crate::gate::Planned;
use super::runs::{self as plans, RunPlan};
use crate::router::{Invalid, ParsedCommand};
use crate::scenarios::{Mode, Scenario};

/// The scenario and mode a `/dr run` names.
pub struct RunArgs {
    pub scenario: Arc<Scenario>,
    pub mode: Mode,
    pub dry_run: bool,
}

pub fn parse(cmd: &ParsedCommand, scenarios: &crate::scenarios::ScenarioSet) -> Result<RunArgs, Invalid> {
    let id = cmd.arg_word("scenario").unwrap_or_default().to_lowercase();
    let with_plans = || {
        scenarios
            .all()
            .filter(|s| s.plan.is_some())
            .map(|s| format!("`{}`", s.id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let scenario = scenarios.get(&id).cloned().ok_or_else(|| {
        Invalid(format!("there is no scenario `{id}`; scenarios with a plan: {}", with_plans()))
    })?;
    let Some(plan) = &scenario.plan else {
        return Err(Invalid(format!(
            "scenario `{id}` has no `[plan]` to run (its steps need a person's judgement; follow its checklist); scenarios with a plan: {}",
            with_plans()
        )));
    };
    let mode = match cmd.flag_word("mode") {
        None => plan.default_mode,
        Some(m) => Mode::parse(&m.to_lowercase()).ok_or_else(|| {
            Invalid(format!(
                "`--mode {m}`: write `--mode graceful` (a fresh snapshot, copied, then restored) or `--mode ungraceful` (the newest copy already in the backup region; the primary region is never called)"
            ))
        })?,
    };
    Ok(RunArgs {
        scenario,
        mode,
        dry_run: cmd.flag("dry-run").is_some(),
    })
}

/// `--dry-run`: every step planned, what would block the run now; nothing changed.
pub async fn dry_run(app: &Arc<App>, cmd: &ParsedCommand, asker: &Asker) -> String {
    let args = match parse(cmd, &app.scenarios) {
        Ok(args) => args,
        Err(why) => return format!(":no_entry: {}. Nothing was changed.", crate::slack::text::escape(&why.0)),
    };
    match plans::plan_all(app, &args.scenario, args.mode, asker).await {
        Ok(planning) => plans::dry_run_report(&planning, &args.scenario),
        Err(e) => format!(":no_entry: {}. Nothing was changed.", crate::slack::text::escape(&e.to_string())),
    }
}

/// This action's entry in the registry.
pub struct Entry;

impl Action for Entry {
    fn plans(&self) -> bool {
        true
    }

    fn validate(&self, cmd: &ParsedCommand, _settings: &Settings) -> Result<(), Invalid> {
        // The scenario is checked when planning (the registry has no scenarios here); the
        // mode now, so a typo is refused at once.
        match cmd.flag_word("mode") {
            Some(m) if Mode::parse(&m.to_lowercase()).is_none() => Err(Invalid(format!(
                "`--mode {m}`: write `--mode graceful` or `--mode ungraceful`"
            ))),
            _ => Ok(()),
        }
    }

    fn plan<'a>(
        &'a self,
        app: &'a Arc<App>,
        cmd: &'a ParsedCommand,
        asker: &'a Asker,
    ) -> BoxFuture<'a, Result<Planned, PlanFailure>> {
        Box::pin(async move {
            let args = parse(cmd, &app.scenarios)?;
            if asker.incident.is_none() {
                return Err(PlanFailure::Invalid(format!(
                    "`/dr run {}` runs in an incident channel, where its record is the incident's timeline: open one with `/dr incident open {} <title> [--drill]` and run it there (`--dry-run` works anywhere)",
                    args.scenario.id, args.scenario.id
                )));
            }
            let planning = plans::plan_all(app, &args.scenario, args.mode, asker).await?;
            if !planning.blockers.is_empty() {
                return Err(PlanFailure::Invalid(format!(
                    "the plan of `{}` cannot run now ({} mode): {}. `/dr run {} --dry-run` shows every step",
                    args.scenario.id,
                    args.mode.as_str(),
                    planning.blockers.join("; "),
                    args.scenario.id
                )));
            }
            let summary = plans::summary(&planning.plan, &args.scenario);
            super::planned(cmd, &planning.plan, summary)
        })
    }

    fn execute<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Some(approved) = run.approved_plan::<RunPlan>().await {
                plans::drive::begin(run, approved).await
            }
        })
    }
}
