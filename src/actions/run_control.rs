//! `/dr run pause|resume|abort [R-n]`, `/dr run retry-step|skip-step|done <step> [R-n]`:
//! steering a plan run. Without `R-n`, the channel's one unfinished run. Skip and abort are
//! an officer's; the rest any responder's. Each is one transaction with the command's
//! record, so a control is applied once.
//!
//! AWS calls: none (a retried step is planned again by the driver). IAM: none.

use serde_json::json;

use super::runs::drive::{record, refresh, WAKE};
use crate::app::App;
use crate::router::ParsedCommand;
use crate::store::{EventKind, NewEvent, RunRow, StepMove, Store, StoreError, StoreTx};

/// The control a command names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Control {
    Pause,
    Resume,
    Abort,
    Retry,
    Skip,
    Done,
}

impl Control {
    fn of(name: &str) -> Option<Control> {
        Some(match name {
            "run pause" => Control::Pause,
            "run resume" => Control::Resume,
            "run abort" => Control::Abort,
            "run retry-step" => Control::Retry,
            "run skip-step" => Control::Skip,
            "run done" => Control::Done,
            _ => return None,
        })
    }

    fn officers_only(self) -> bool {
        matches!(self, Control::Skip | Control::Abort)
    }
}

/// The answer to a control: done (the text to show) or refused (why, and nothing changed).
pub enum Controlled {
    Done(String),
    Refused(String),
}

/// Applies the control `cmd` names; `command` (the accepted `/dr run …`) is recorded in the
/// same transaction when it goes through. `store` is the acknowledgement's (within its
/// budget): a store that stalls refuses the control instead of holding Slack's answer.
pub async fn apply(
    app: &App,
    store: &Store,
    cmd: &ParsedCommand,
    user: &str,
    channel: &str,
    command: NewEvent,
) -> Result<Controlled, StoreError> {
    let refuse = |why: String| Ok(Controlled::Refused(why));
    let Some(control) = Control::of(&cmd.def.name) else {
        return refuse(format!("`/dr {}` is not a run control", cmd.def.name));
    };
    if control.officers_only() && !app.settings.is_officer(user) {
        return refuse(format!(
            "only a security officer can `/dr {}` (it changes what the approved plan does)",
            cmd.def.name
        ));
    }
    // `/dr run retry-step R-3`: a run id where the step goes names the run.
    let (mut step_name, mut run_name) = (cmd.arg_word("step"), cmd.arg_word("run"));
    // ... and `/dr run retry-step R-3 restore` names both, the run first.
    if step_name.is_some_and(looks_like_run) && !run_name.is_some_and(looks_like_run) {
        (step_name, run_name) = (run_name, step_name);
    }
    let run = match find_run(store, run_name, channel).await? {
        Ok(run) => run,
        Err(why) => return refuse(why),
    };
    let step_name = step_name.map(str::to_lowercase);
    let label = run.label();
    let mut tx = store.begin().await?;
    let steps = tx.run_steps(run.id).await?;
    let step = match (&step_name, control) {
        (Some(name), _) => match steps.iter().find(|s| &s.step == name) {
            Some(s) => Some(s.clone()),
            None => {
                let names: Vec<String> = steps.iter().map(|s| format!("`{}`", s.step)).collect();
                return refuse(format!(
                    "{label} has no step `{name}`; its steps: {}",
                    names.join(", ")
                ));
            }
        },
        (None, Control::Retry | Control::Skip) => {
            steps.iter().find(|s| s.state == "failed").cloned()
        }
        _ => None,
    };
    let who = format!("<@{user}>");
    let (kind, text, note) = match control {
        Control::Pause => {
            if !tx
                .move_run(
                    run.id,
                    &["running"],
                    "paused",
                    Some(&format!("paused by {who}")),
                    None,
                )
                .await?
            {
                return refuse(format!(
                    "{label} is {}; only a running run can be paused",
                    run.state
                ));
            }
            (EventKind::RunPaused, format!("{label} paused by {user}"), format!(":double_vertical_bar: Paused by {who}: steps already running finish; nothing new starts until `/dr run resume {label}`."))
        }
        Control::Resume => {
            if let Some(failed) = steps.iter().find(|s| s.state == "failed") {
                return refuse(format!(
                    "step `{}` of {label} failed: `/dr run retry-step {} {label}` runs it again, `/dr run skip-step {} {label}` (officer) goes on without it",
                    failed.step, failed.step, failed.step
                ));
            }
            if !tx
                .move_run(run.id, &["paused"], "running", None, None)
                .await?
            {
                return refuse(format!(
                    "{label} is {}; only a paused run can be resumed",
                    run.state
                ));
            }
            (
                EventKind::RunResumed,
                format!("{label} resumed by {user}"),
                format!(":arrow_forward: Resumed by {who}."),
            )
        }
        Control::Abort => {
            if !tx
                .move_run(
                    run.id,
                    &["running", "paused"],
                    "aborted",
                    Some(&format!("aborted by {who}")),
                    Some(None),
                )
                .await?
            {
                return refuse(format!("{label} is already {}", run.state));
            }
            (EventKind::RunAborted, format!("{label} aborted by {user}"), format!(":octagonal_sign: Aborted by {who}: no further step starts. Steps already running finish and are recorded; nothing is undone."))
        }
        Control::Retry => {
            let Some(step) = step else {
                return refuse(format!(
                    "no step of {label} failed; name the step: `/dr run retry-step <step> {label}`"
                ));
            };
            if step.state != "failed" {
                return refuse(format!(
                    "step `{}` of {label} is {}; only a failed step can be retried",
                    step.step, step.state
                ));
            }
            if let (Some(r), Some(state)) = (step.request_id, step.request_state.as_deref()) {
                if matches!(state, "executing" | "pending") {
                    return refuse(format!("A-{r} of step `{}` is still {state}; wait until it ends (or check it in AWS) before retrying", step.step));
                }
            }
            let moved = StepMove {
                to: "waiting",
                outcome: Some(format!("retried by {user}")),
                ..Default::default()
            };
            if !tx.move_step(run.id, step.idx, &["failed"], moved).await? {
                return refuse(format!(
                    "step `{}` of {label} changed meanwhile; try again",
                    step.step
                ));
            }
            resume_if_clear(&mut tx, &run).await?;
            (EventKind::RunStepRetried, format!("{label} step `{}` retried by {user}", step.step), format!(":repeat: {who} retries step `{}`: it is planned again now; if AWS differs from the approved plan, an officer approves it again.", step.step))
        }
        Control::Skip => {
            let Some(step) = step else {
                return refuse(format!(
                    "no step of {label} failed; name the step: `/dr run skip-step <step> {label}`"
                ));
            };
            if let (Some(r), Some("executing" | "pending")) =
                (step.request_id, step.request_state.as_deref())
            {
                return refuse(format!("A-{r} of step `{}` is still {}; a step cannot be skipped while its change runs", step.step, step.request_state.as_deref().unwrap_or("")));
            }
            let moved = StepMove {
                to: "skipped",
                outcome: Some(format!("skipped by {user}")),
                finish: true,
                ..Default::default()
            };
            if !tx
                .move_step(run.id, step.idx, &["failed", "waiting", "running"], moved)
                .await?
            {
                return refuse(format!("step `{}` of {label} is {}; only a waiting, running (manual) or failed step can be skipped", step.step, step.state));
            }
            resume_if_clear(&mut tx, &run).await?;
            (
                EventKind::RunStepSkipped,
                format!("{label} step `{}` skipped by {user}", step.step),
                format!(":fast_forward: {who} skipped step `{}`.", step.step),
            )
        }
        Control::Done => {
            let Some(step) = step else {
                return refuse(format!("name the step: `/dr run done <step> {label}`"));
            };
            if step.command.is_some() {
                return refuse(format!(
                    "step `{}` runs `/dr {}`; it is done when that is executed, not by hand",
                    step.step,
                    step.command.as_deref().unwrap_or("")
                ));
            }
            let moved = StepMove {
                to: "done",
                outcome: Some(format!("marked done by {user}")),
                finish: true,
                ..Default::default()
            };
            if !tx.move_step(run.id, step.idx, &["running"], moved).await? {
                return refuse(format!(
                    "step `{}` of {label} is {}; it can be marked done once it is reached",
                    step.step, step.state
                ));
            }
            (
                EventKind::RunStepDone,
                format!("{label} step `{}` marked done by {user}", step.step),
                format!(":white_check_mark: {who} marked step `{}` done.", step.step),
            )
        }
    };
    tx.append(command).await?;
    let detail = json!({"by": user, "step": step_name});
    record(&mut tx, &run, kind, user, text, detail).await?;
    refresh(&mut tx, app, run.id, Some(&note)).await?;
    tx.commit().await?;
    WAKE.notify_one();
    Ok(Controlled::Done(note))
}

/// `R-3` (the run), `A-12` (the request that approved it) or `3`.
fn looks_like_run(word: &str) -> bool {
    run_ref(word).is_some()
}

/// A run named by its id (`R-3`, `3`) or by its approval request (`A-12`).
enum RunRef {
    Run(i64),
    Request(i64),
}

fn run_ref(word: &str) -> Option<RunRef> {
    let w = word.trim();
    let number = |s: &str| s.parse::<i64>().ok().filter(|n| *n > 0);
    if let Some(n) = w.strip_prefix("R-").or_else(|| w.strip_prefix("r-")) {
        return number(n).map(RunRef::Run);
    }
    if let Some(n) = w.strip_prefix("A-").or_else(|| w.strip_prefix("a-")) {
        return number(n).map(RunRef::Request);
    }
    number(w).map(RunRef::Run)
}

/// A run paused only because of a failed step goes on once no step has failed.
async fn resume_if_clear(tx: &mut StoreTx<'_>, run: &RunRow) -> Result<(), StoreError> {
    let failed = tx
        .run_steps(run.id)
        .await?
        .iter()
        .any(|s| s.state == "failed");
    let by_failure = run
        .reason
        .as_deref()
        .is_some_and(|r| r.starts_with("step "));
    if !failed && run.state == "paused" && by_failure {
        tx.move_run(run.id, &["paused"], "running", None, None)
            .await?;
    }
    Ok(())
}

/// The run `named` (`R-n`), or the channel's one unfinished run.
async fn find_run(
    store: &Store,
    named: Option<&str>,
    channel: &str,
) -> Result<Result<RunRow, String>, StoreError> {
    if let Some(named) = named {
        return Ok(match run_ref(named) {
            None => Err(format!("`{named}` is not a run id; runs are named like R-3 (shown on the run's message), or by the request that approved them (A-12)")),
            Some(RunRef::Run(id)) => store.plan_run(id).await?.ok_or_else(|| format!("there is no run R-{id}")),
            Some(RunRef::Request(id)) => store.run_of_request(id).await?.ok_or_else(|| format!("A-{id} started no plan run")),
        });
    }
    let runs = store.unfinished_runs(Some(channel)).await?;
    Ok(match runs.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err("this channel has no unfinished plan run; name one, like `R-3`".to_string()),
        many => Err(format!(
            "this channel has {} unfinished runs ({}); name one",
            many.len(),
            many.iter()
                .map(|r| r.label())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    })
}
