//! Plan runs (`/dr run <scenario>`), the family of `plan_run` and `run_control`: a
//! scenario's `[plan]` executed as one approved,
//! followed, resumable run. A plan composes the actions drbot already has: every command
//! step is planned through `actions::plan` and executed as a request of its own (`A-<n>`)
//! through the gate, so each step has the guarantees of a single command (re-checked
//! against AWS right before it runs, executed at most once, interrupted never re-run
//! blindly).
//!
//! - [`plan_all`]: plans every step against AWS as it is now (the approval request and
//!   `--dry-run`).
//! - [`run`]: what a run does next, a pure function.
//! - [`drive`]: applies it, on any replica, from the store.
//! - [`progress`]: the run's live message.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::gate::request::Asker;
use crate::gate::PlanFailure;
use crate::scenarios::{plan::command_for, Mode, Scenario, StepApproval};
use crate::slack::text::escape;

pub mod drive;
pub mod progress;
pub mod run;

/// One step as the run's approval binds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    pub id: String,
    pub text: String,
    /// The command with the run's stamp filled in; `None` for a manual step.
    pub command: Option<String>,
    pub block: usize,
    /// `officer` when an officer approves it again when it is reached.
    pub approval: String,
    pub timeout_secs: u64,
    /// Planned again when reached: it reads what an earlier step of this run makes.
    pub when_reached: bool,
    /// The plan it runs with (bound by the run's approval), when planned now.
    pub plan: Option<serde_json::Value>,
    pub summary: Option<String>,
    /// For a step planned when reached: what it would be now, or why it cannot be yet.
    pub preview: Option<String>,
}

/// The plan of a whole run: what the officers approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    pub scenario: String,
    pub mode: Mode,
    /// `{run}` in the steps' commands (UTC `yyyymmddhhmmss` of the planning and 4 hex digits).
    pub stamp: String,
    pub steps: Vec<PlannedStep>,
}

/// A run's planning: the plan, and what would block it now.
pub struct Planning {
    pub plan: RunPlan,
    pub blockers: Vec<String>,
}

/// Plans every step of `scenario`'s plan in `mode` against AWS as it is now.
pub async fn plan_all(
    app: &Arc<App>,
    scenario: &Scenario,
    mode: Mode,
    asker: &Asker,
) -> Result<Planning, PlanFailure> {
    let plan = scenario.plan.as_ref().ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "scenario `{}` has no `[plan]` to run; its checklist is in the incident channel",
            scenario.id
        ))
    })?;
    // Unique per planning, so what two runs create never shares a name.
    let stamp = format!(
        "{}-{:04x}",
        crate::clock::now().format("%Y%m%d%H%M%S"),
        crate::clock::varying() & 0xffff
    );
    let steps = plan.for_mode(mode);
    let in_mode: Vec<&str> = steps.iter().map(|(_, s)| s.id.as_str()).collect();
    let mut planned = Vec::new();
    let mut blockers = Vec::new();
    for (block, step) in steps.iter() {
        let mut p = PlannedStep {
            id: step.id.clone(),
            text: step.text.clone(),
            command: step.run.as_deref().map(|r| command_for(r, &stamp)),
            block: *block,
            approval: match step.approval {
                StepApproval::Run => "run".into(),
                StepApproval::Officer => "officer".into(),
            },
            timeout_secs: step.timeout_secs,
            when_reached: step.uses.iter().any(|u| in_mode.contains(&u.as_str())),
            plan: None,
            summary: None,
            preview: None,
        };
        if let Some(command) = p.command.clone() {
            if p.when_reached {
                // Planned when reached; what it needs that no earlier step makes is checked now.
                for missing in prerequisites(app, &command).await {
                    blockers.push(format!("step `{}` (`/dr {command}`): {missing}", p.id));
                }
            }
            match plan_step(app, &command, asker).await {
                Ok(planned) if !p.when_reached => {
                    p.summary = Some(planned.summary);
                    p.plan = Some(planned.plan);
                }
                Ok(planned) => p.preview = Some(format!("now it would be: {}", planned.summary)),
                Err(why) if p.when_reached => {
                    p.preview = Some(format!("cannot be planned yet: {why}"))
                }
                Err(why) => blockers.push(format!("step `{}` (`/dr {command}`): {why}", p.id)),
            }
        }
        planned.push(p);
    }
    Ok(Planning {
        plan: RunPlan {
            scenario: scenario.id.clone(),
            mode,
            stamp,
            steps: planned,
        },
        blockers,
    })
}

/// Every plan step checked against the configuration (offline: its command parses with its
/// arguments and passes its action's checks), as `scenarios/<id>.toml: [plan] step '…':
/// what is wrong` lines; `/dr run` refuses a plan while one of its steps is wrong.
pub fn check(
    settings: &crate::config::Settings,
    commands: &crate::router::CommandSet,
    scenarios: &crate::scenarios::ScenarioSet,
) -> Vec<String> {
    let mut problems = Vec::new();
    for scenario in scenarios.all() {
        let Some(plan) = &scenario.plan else { continue };
        if let Some(service) = &plan.recovered_when {
            if settings.service(service).is_none() {
                problems.push(format!(
                    "scenarios/{}.toml: [plan] recovered_when: service `{service}` is not in [[ecs.services]]; the recovery of `/dr run {}` is measured to its last step instead",
                    scenario.id, scenario.id
                ));
            }
        }
        for step in &plan.steps {
            let Some(run) = &step.run else { continue };
            let text = command_for(run, crate::scenarios::plan::CHECK_STAMP);
            let why = match crate::router::parse(&text, commands, settings) {
                Err(refusal) => Some(refusal.reason),
                Ok(cmd) => crate::actions::validate(&cmd, settings).err().map(|w| w.0),
            };
            if let Some(why) = why {
                problems.push(format!(
                    "scenarios/{}.toml: [plan] step '{}': `/dr {run}`: {why}; `/dr run {}` refuses until it is fixed (in drbot.toml, or the plan in a --commands directory)",
                    scenario.id, step.id, scenario.id
                ));
            }
        }
    }
    problems
}

/// What a step's command needs that must already exist (see `Action::prerequisites`).
async fn prerequisites(app: &Arc<App>, command: &str) -> Vec<String> {
    match crate::router::parse(command, &app.commands, &app.settings) {
        Ok(cmd) => crate::actions::prerequisites(app, &cmd).await,
        Err(refusal) => vec![refusal.reason],
    }
}

/// Plans one step's command, saying why not in one line.
pub async fn plan_step(
    app: &Arc<App>,
    command: &str,
    asker: &Asker,
) -> Result<crate::gate::Planned, String> {
    let cmd = crate::router::parse(command, &app.commands, &app.settings).map_err(|r| r.reason)?;
    crate::actions::validate(&cmd, &app.settings).map_err(|why| why.0)?;
    match crate::actions::plan(app, &cmd, asker).await {
        Ok(planned) => Ok(planned),
        Err(PlanFailure::Invalid(why)) => Err(why),
        Err(PlanFailure::Aws(e)) => Err(format!("AWS did not answer as needed: {e}")),
    }
}

/// The run's plan as the officers read it.
pub fn summary(plan: &RunPlan, scenario: &Scenario) -> String {
    let mut out = format!(
        "*Run the plan of `{}`* ({}) in *{}* mode: {} steps, RTO {}. One approval covers every step below except those marked :lock:, which an officer approves again when it is reached. Each step is re-checked against AWS right before it runs; a changed one pauses the run.",
        scenario.id,
        escape(&scenario.title),
        plan.mode.as_str(),
        plan.steps.len(),
        scenario.rto_text()
    );
    let mut last_block = usize::MAX;
    let mut number = 0;
    for s in &plan.steps {
        let head = if s.block == last_block {
            format!("*{number}. ↳ side by side:*")
        } else {
            number += 1;
            format!("*{number}.*")
        };
        last_block = s.block;
        let lock = if s.approval == "officer" {
            " :lock:"
        } else {
            ""
        };
        out.push_str(&format!(
            "\n\n{head}{lock} `{}` — {}",
            s.id,
            escape(&s.text)
        ));
        match &s.command {
            None => out.push_str("\n> a person marks it done (`/dr run done <step>`)"),
            Some(command) => {
                out.push_str(&format!(
                    "\n`/dr {}` (times out after {})",
                    escape(command),
                    progress::took(s.timeout_secs as i64)
                ));
                if let Some(summary) = &s.summary {
                    out.push_str(&format!("\n{}", quote(summary)));
                }
                if let Some(preview) = &s.preview {
                    out.push_str(&format!(
                        "\n> _planned when it is reached (it uses an earlier step's result); {}_",
                        first_line(preview)
                    ));
                }
            }
        }
    }
    out
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn quote(text: &str) -> String {
    text.lines()
        .map(|l| format!("> {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `--dry-run` report: every step as planned, and what would block the run now.
pub fn dry_run_report(planning: &Planning, scenario: &Scenario) -> String {
    let verdict = if planning.blockers.is_empty() {
        format!(
            ":white_check_mark: *Dry run of `{}` ({} mode): the plan can run now.* Nothing was changed.",
            scenario.id,
            planning.plan.mode.as_str()
        )
    } else {
        let list: Vec<String> = planning
            .blockers
            .iter()
            .map(|b| format!("• {}", escape(b)))
            .collect();
        format!(
            ":no_entry: *Dry run of `{}` ({} mode): {} step(s) would block the run now.* Nothing was changed.\n{}",
            scenario.id,
            planning.plan.mode.as_str(),
            planning.blockers.len(),
            list.join("\n")
        )
    };
    format!("{verdict}\n\n{}", summary(&planning.plan, scenario))
}
