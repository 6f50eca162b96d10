//! Drives plan runs from the store: every replica looks at the unfinished runs, works out
//! what is due ([`super::run::next`]) and applies it, each effect as conditional updates in
//! one transaction with its events and its Slack messages. Of two replicas applying the
//! same effect, one moves the step and the other's transaction changes nothing, so a step
//! starts — and its request is created — once.

use std::sync::Arc;

use serde_json::json;
use tokio::sync::Notify;
use tracing::Instrument;

use super::run::{next, Effect};
use super::{progress, RunPlan};
use crate::app::App;
use crate::gate::request::Asker;
use crate::gate::Planned;
use crate::router::Approval;
use crate::slack::text::escape;
use crate::store::{
    Anchor, EventKind, NewEvent, NewRun, NewRunStep, Outgoing, RequestState, RunRow, StepMove,
    StepRow, StoreError, StoreTx,
};

/// Wakes the driver when a run changed (a step's request ended, a control was used).
pub static WAKE: Notify = Notify::const_new();

/// The outbox key of a run's live message.
pub fn message_key(run: i64) -> String {
    format!("run:{run}")
}

/// Who asks for a run's steps: its requester, in its channel and incident.
fn actor(run: &RunRow) -> Asker {
    Asker {
        user: run.requester.clone(),
        channel: run.channel.clone(),
        response_url: String::new(),
        incident: run.incident.clone(),
    }
}

/// Appends an event of run `run` in `tx`.
pub async fn record(
    tx: &mut StoreTx<'_>,
    run: &RunRow,
    kind: EventKind,
    actor: &str,
    text: String,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let mut detail = detail;
    detail["run"] = json!(run.label());
    detail["scenario"] = json!(run.scenario);
    tx.append(
        NewEvent::new(kind, actor, &run.channel, text)
            .detail(detail)
            .incident(run.incident.clone()),
    )
    .await
    .map(|_| ())
}

/// Queues in `tx` the run's message re-rendered as `tx` sees the run, and `note` in its
/// thread.
pub async fn refresh(
    tx: &mut StoreTx<'_>,
    app: &App,
    run_id: i64,
    note: Option<&str>,
) -> Result<(), StoreError> {
    let Some(run) = tx.plan_run(run_id).await? else {
        return Ok(());
    };
    let steps = tx.run_steps(run_id).await?;
    let scenario = app.scenarios.get(&run.scenario).map(|s| s.as_ref());
    tx.send_slack(Outgoing::Update {
        channel: run.channel.clone(),
        message: Anchor::Row(message_key(run_id)),
        text: progress::render(&run, &steps, scenario),
        blocks: None,
    })
    .await?;
    if let Some(note) = note {
        tx.send_slack(Outgoing::Post {
            channel: run.channel.clone(),
            text: note.to_string(),
            blocks: None,
            thread: Some(Anchor::Row(message_key(run_id))),
            after: None,
        })
        .await?;
    }
    Ok(())
}

/// Executes an approved `/dr run` request: the run and its steps are stored, the request
/// ends `executed` ("started as R-n") and the run's message is queued, in one transaction.
pub async fn begin(exec: &crate::gate::execute::Run<'_>, approved: RunPlan) {
    let app = exec.app;
    let request = exec.request;
    let new = NewRun {
        request_id: request.id,
        scenario: approved.scenario.clone(),
        mode: approved.mode.as_str().to_string(),
        stamp: approved.stamp.clone(),
        channel: request.channel.clone(),
        incident: request.incident.clone(),
        requester: request.requester.clone(),
        approved_by: request.decided_by.clone().unwrap_or_default(),
        steps: approved
            .steps
            .iter()
            .map(|s| NewRunStep {
                step: s.id.clone(),
                text: s.text.clone(),
                command: s.command.clone(),
                block: s.block as i64,
                approval: s.approval.clone(),
                timeout_secs: s.timeout_secs as i64,
                when_reached: s.when_reached,
                plan_hash: s.plan.as_ref().map(crate::gate::plan_hash),
                plan: s.plan.as_ref().map(|p| p.to_string()),
                summary: s.summary.clone(),
            })
            .collect(),
    };
    let done = async {
        let mut tx = app.store.begin().await?;
        let run = tx.create_run(&new).await?;
        let outcome = format!("started as plan run {}", run.label());
        let moved = crate::gate::execute::finish_in(
            &mut tx,
            app,
            request,
            RequestState::Executed,
            &outcome,
        )
        .await?;
        if !moved {
            return Ok(false);
        }
        let text = format!(
            "{} started: plan `{}` in {} mode, {} steps (approved as {})",
            run.label(),
            run.scenario,
            run.mode,
            new.steps.len(),
            request.label()
        );
        let detail =
            json!({"action_id": request.label(), "mode": run.mode, "steps": new.steps.len()});
        record(&mut tx, &run, EventKind::RunStarted, "drbot", text, detail).await?;
        let steps = tx.run_steps(run.id).await?;
        let scenario = app.scenarios.get(&run.scenario).map(|s| s.as_ref());
        tx.send_slack_keyed(
            Outgoing::Post {
                channel: run.channel.clone(),
                text: progress::render(&run, &steps, scenario),
                blocks: None,
                thread: None,
                after: None,
            },
            Some(message_key(run.id)),
        )
        .await?;
        tx.commit().await.map(|_| true)
    }
    .await;
    let outcome = "started as a plan run";
    if crate::gate::execute::settled(app, request, RequestState::Executed, outcome, done).await {
        exec.mark_ended(RequestState::Executed);
        WAKE.notify_one();
    }
}

/// Drives every unfinished run once (each until nothing more is due right now).
pub async fn drive_all(app: &Arc<App>) -> Result<(), StoreError> {
    if !app.store.lease_current() {
        return Ok(());
    }
    for run in app.store.runs_to_drive().await? {
        let span = tracing::info_span!("run", run = %run.label());
        drive(app, run.id).instrument(span).await?;
    }
    Ok(())
}

async fn drive(app: &Arc<App>, run_id: i64) -> Result<(), StoreError> {
    // A few passes: a step that ends lets the next block start in the same turn.
    for _ in 0..4 {
        let Some(run) = app.store.plan_run(run_id).await? else {
            return Ok(());
        };
        let steps = app.store.run_steps(run_id).await?;
        let effects = next(&run, &steps, crate::clock::now());
        if effects.is_empty() {
            return Ok(());
        }
        for effect in effects {
            apply(app, &run, &steps, effect).await?;
        }
    }
    Ok(())
}

fn step_of(steps: &[StepRow], idx: i64) -> Option<&StepRow> {
    steps.iter().find(|s| s.idx == idx)
}

async fn apply(
    app: &Arc<App>,
    run: &RunRow,
    steps: &[StepRow],
    effect: Effect,
) -> Result<(), StoreError> {
    match effect {
        Effect::Start { idx } => match step_of(steps, idx) {
            Some(step) => start(app, run, step).await,
            None => Ok(()),
        },
        Effect::Done { idx, outcome } => match step_of(steps, idx) {
            Some(step) => done(app, run, step, &outcome).await,
            None => Ok(()),
        },
        Effect::Fail { idx, why } => match step_of(steps, idx) {
            Some(step) => fail(app, run, step, &["running"], &why).await,
            None => Ok(()),
        },
        Effect::Reread { idx } => match step_of(steps, idx) {
            Some(step) => reread(app, run, step).await,
            None => Ok(()),
        },
        Effect::Finish => {
            let service = app
                .scenarios
                .get(&run.scenario)
                .and_then(|s| s.plan.as_ref())
                .and_then(|p| p.recovered_when.clone());
            match service {
                None => finish(app, run, steps, None).await,
                Some(service) => {
                    check_then_finish(app, run, steps, service);
                    Ok(())
                }
            }
        }
    }
}

/// Starts a step: a manual one waits for a person; a command step becomes a request —
/// executing at once under the run's approval, or put to an officer when the step asks
/// for it (or its plan changed since the approval).
async fn start(app: &Arc<App>, run: &RunRow, step: &StepRow) -> Result<(), StoreError> {
    let Some(command) = step.command.clone() else {
        let mut tx = app.store.begin().await?;
        let moved = StepMove {
            to: "running",
            start: true,
            ..Default::default()
        };
        if !tx.move_step(run.id, step.idx, &["waiting"], moved).await? {
            return Ok(());
        }
        let text = format!(
            "{} step `{}` waits for a person: {}",
            run.label(),
            step.step,
            step.text
        );
        record(
            &mut tx,
            run,
            EventKind::RunStepStarted,
            "drbot",
            text,
            json!({"step": step.step}),
        )
        .await?;
        let note = format!(
            "Step `{}`: {} — mark it with `/dr run done {} {}`.",
            step.step,
            escape(&step.text),
            step.step,
            run.label()
        );
        refresh(&mut tx, app, run.id, Some(&note)).await?;
        return tx.commit().await;
    };
    let asker = actor(run);
    // Planned now: a step that reads an earlier step's result, a retried step, or one whose
    // plan was not made with the run. Otherwise it runs with the approved plan, which its
    // action re-checks against AWS right before changing anything.
    let approved = step
        .plan
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok());
    let fresh_needed = step.when_reached || step.attempt > 0 || approved.is_none();
    let (planned, changed) = if fresh_needed {
        match super::plan_step(app, &command, &asker).await {
            Ok(p) => {
                let changed = !step.when_reached
                    && step
                        .plan_hash
                        .as_deref()
                        .is_some_and(|h| h != crate::gate::plan_hash(&p.plan));
                (p, changed)
            }
            Err(why) => {
                let why = format!("could not be planned when reached: {why}");
                return fail(app, run, step, &["waiting"], &why).await;
            }
        }
    } else {
        let Some(planned) = approved_planned(app, &command, step, approved) else {
            return fail(
                app,
                run,
                step,
                &["waiting"],
                "its approved plan no longer reads back; nothing was done",
            )
            .await;
        };
        (planned, false)
    };
    let officer = step.approval == "officer" || step.own_approval || changed;
    let mut planned = planned;
    planned.summary = format!(
        "_Step `{}` of plan run {} (`{}`, {} mode; the run was approved as A-{})._\n{}",
        step.step,
        run.label(),
        run.scenario,
        run.mode,
        run.request_id,
        planned.summary
    );
    let approval = if officer {
        Approval::Officer
    } else {
        Approval::None
    };
    let fresh = fresh_needed.then(|| {
        (
            planned.plan.to_string(),
            crate::gate::plan_hash(&planned.plan),
            planned.summary.clone(),
        )
    });
    let mut tx = app.store.begin().await?;
    let ttl = chrono::Duration::seconds(step.timeout_secs);
    let request =
        crate::gate::request::open_in(&mut tx, app, &asker, &command, planned, approval, Some(ttl))
            .await?;
    let moved = StepMove {
        to: "running",
        request_id: Some(request.id),
        start: true,
        plan: fresh,
        own_approval: Some(false),
        ..Default::default()
    };
    if !tx.move_step(run.id, step.idx, &["waiting"], moved).await? {
        // Another replica started it: this transaction (and its request) is dropped.
        return Ok(());
    }
    let how = if officer {
        if changed {
            "its plan changed since the run was approved, so an officer approves it again"
        } else {
            "an officer approves it now"
        }
    } else {
        "under the run's approval"
    };
    let text = format!(
        "{} step `{}` started as {} ({how}): /dr {command}",
        run.label(),
        step.step,
        request.label()
    );
    let detail = json!({"step": step.step, "action_id": request.label(), "attempt": step.attempt + 1, "approval": if officer { "officer" } else { "run" }});
    record(
        &mut tx,
        run,
        EventKind::RunStepStarted,
        "drbot",
        text,
        detail,
    )
    .await?;
    let note = format!(
        "Step `{}` → {} `/dr {}` ({how}).",
        step.step,
        request.label(),
        escape(&command)
    );
    refresh(&mut tx, app, run.id, Some(&note)).await?;
    tx.commit().await?;
    if !officer {
        let span = tracing::info_span!("action", action_id = %request.label());
        let app = app.clone();
        tokio::spawn(crate::actions::run(app, request.id).instrument(span));
    }
    Ok(())
}

/// The approved plan of a step as the gate stores it.
fn approved_planned(
    app: &App,
    command: &str,
    step: &StepRow,
    plan: Option<serde_json::Value>,
) -> Option<Planned> {
    let cmd = crate::router::parse(command, &app.commands, &app.settings).ok()?;
    Some(Planned {
        name: cmd.def.name.clone(),
        action: cmd.def.action,
        plan: plan?,
        summary: step.summary.clone().unwrap_or_default(),
    })
}

/// The AWS request ids of the changes request `request` made, from the log.
async fn aws_request_ids(app: &App, run: &RunRow, request: i64) -> Vec<String> {
    let label = format!("A-{request}");
    // A run always has an incident (`/dr run` asks in one); never read the whole log.
    let Some(incident) = run.incident.as_deref() else {
        return Vec::new();
    };
    let events = app.store.events(Some(incident)).await.unwrap_or_default();
    events
        .iter()
        .filter(|e| e.kind == EventKind::AwsCall)
        .filter_map(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            (detail["action_id"] == json!(label))
                .then(|| detail["aws_request_id"].as_str().map(str::to_string))
                .flatten()
        })
        .collect()
}

async fn done(
    app: &Arc<App>,
    run: &RunRow,
    step: &StepRow,
    outcome: &str,
) -> Result<(), StoreError> {
    let ids = match step.request_id {
        Some(r) => aws_request_ids(app, run, r).await,
        None => vec![],
    };
    let mut outcome = outcome.lines().next().unwrap_or("").to_string();
    if !ids.is_empty() {
        outcome.push_str(&format!(" (AWS request ids: {})", ids.join(", ")));
    }
    let mut tx = app.store.begin().await?;
    let moved = StepMove {
        to: "done",
        outcome: Some(outcome.clone()),
        finish: true,
        ..Default::default()
    };
    if !tx.move_step(run.id, step.idx, &["running"], moved).await? {
        return Ok(());
    }
    let text = format!("{} step `{}` done: {outcome}", run.label(), step.step);
    let detail = json!({"step": step.step, "action_id": step.request_id.map(|r| format!("A-{r}")), "aws_request_ids": ids});
    record(&mut tx, run, EventKind::RunStepDone, "drbot", text, detail).await?;
    let note = format!(
        ":white_check_mark: Step `{}` done: {}",
        step.step,
        escape(&outcome)
    );
    refresh(&mut tx, app, run.id, Some(&note)).await?;
    tx.commit().await
}

/// Fails a step (from one of `from`) and pauses the run: nothing after it starts.
pub async fn fail(
    app: &Arc<App>,
    run: &RunRow,
    step: &StepRow,
    from: &[&str],
    why: &str,
) -> Result<(), StoreError> {
    let mut tx = app.store.begin().await?;
    let moved = StepMove {
        to: "failed",
        outcome: Some(why.to_string()),
        finish: true,
        ..Default::default()
    };
    if !tx.move_step(run.id, step.idx, from, moved).await? {
        return Ok(());
    }
    let reason = format!("step {} failed", step.step);
    let paused = tx
        .move_run(run.id, &["running"], "paused", Some(&reason), None)
        .await?;
    let text = format!("{} step `{}` failed: {why}", run.label(), step.step);
    record(
        &mut tx,
        run,
        EventKind::RunStepFailed,
        "drbot",
        text,
        json!({"step": step.step, "why": why}),
    )
    .await?;
    if paused {
        let text = format!("{} paused: {reason}", run.label());
        record(
            &mut tx,
            run,
            EventKind::RunPaused,
            "drbot",
            text,
            json!({"reason": reason}),
        )
        .await?;
    }
    let note = format!(
        ":x: Step `{}` failed: {}\nThe run is *paused*; nothing after it starts. `/dr run retry-step {} {}` runs it again (re-planned; an officer approves it again if its plan changed), `/dr run skip-step {} {}` (officer) goes on without it, `/dr run abort {}` (officer) ends the run.",
        step.step,
        escape(why),
        step.step,
        run.label(),
        step.step,
        run.label(),
        run.label()
    );
    refresh(&mut tx, app, run.id, Some(&note)).await?;
    tx.commit().await
}

/// A step whose request was interrupted mid-change (drbot stopped): AWS is read again. If it
/// still matches the plan, nothing was changed and the step runs again; otherwise the run
/// pauses with what AWS shows now, for a person to decide.
async fn reread(app: &Arc<App>, run: &RunRow, step: &StepRow) -> Result<(), StoreError> {
    let Some(command) = step.command.clone() else {
        return Ok(());
    };
    let request = step
        .request_id
        .map(|r| format!("A-{r}"))
        .unwrap_or_default();
    let fresh = super::plan_step(app, &command, &actor(run)).await;
    let unchanged = matches!(&fresh, Ok(p) if step.plan_hash.as_deref() == Some(crate::gate::plan_hash(&p.plan).as_str()));
    if !unchanged {
        let now = match fresh {
            Ok(p) => format!(
                "AWS now differs from the plan: {}",
                p.summary.lines().next().unwrap_or("")
            ),
            Err(why) => format!("AWS now: {why}"),
        };
        let why = format!(
            "{request} was interrupted mid-change (drbot stopped); re-read: {now}. Check it, then `/dr run skip-step {}` if the change is complete, or `/dr run retry-step {}`",
            step.step, step.step
        );
        return fail(app, run, step, &["running"], &why).await;
    }
    let mut tx = app.store.begin().await?;
    let outcome = format!("{request} was interrupted before it changed anything (AWS re-read: as planned); it runs again");
    let moved = StepMove {
        to: "waiting",
        outcome: Some(outcome.clone()),
        ..Default::default()
    };
    if !tx.move_step(run.id, step.idx, &["running"], moved).await? {
        return Ok(());
    }
    let text = format!("{} step `{}`: {outcome}", run.label(), step.step);
    record(
        &mut tx,
        run,
        EventKind::RunStepRetried,
        "drbot",
        text,
        json!({"step": step.step, "action_id": request}),
    )
    .await?;
    refresh(
        &mut tx,
        app,
        run.id,
        Some(&format!(
            ":arrows_counterclockwise: Step `{}`: {outcome}.",
            step.step
        )),
    )
    .await?;
    tx.commit().await
}

/// Runs this process is checking the scenario's `recovered_when` for (a read, so two
/// replicas checking at once is harmless; this keeps one process from starting it twice).
static CHECKING: std::sync::Mutex<std::collections::BTreeSet<i64>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// What the scenario's recovery check found: the service, when it held (if it did), and
/// what to say about it.
struct Held {
    service: String,
    at: Option<chrono::DateTime<chrono::Utc>>,
    note: String,
}

/// Follows the scenario's `recovered_when` service until it is stable (at most `[ecs]
/// rollout_timeout`), then ends the run with the recovery measured until then.
fn check_then_finish(app: &Arc<App>, run: &RunRow, steps: &[StepRow], service: String) {
    if !CHECKING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(run.id)
    {
        return;
    }
    let (app, run, steps) = (app.clone(), run.clone(), steps.to_vec());
    tokio::spawn(async move {
        let held = service_stable(&app, &service).await;
        if let Err(e) = finish(&app, &run, &steps, Some(held)).await {
            tracing::error!(error = %e, run = %run.label(), "could not end a plan run; trying again");
        }
        CHECKING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run.id);
        WAKE.notify_one();
    });
}

async fn service_stable(app: &App, name: &str) -> Held {
    use crate::actions::ecs_rollback::{follow_service, Follow, Rollout, Verdict};
    let held = |at, note: String| Held {
        service: name.to_string(),
        at,
        note,
    };
    let Some(svc) = app.settings.service(name).cloned() else {
        return held(
            None,
            format!(
                "service `{name}` is not configured, so the recovery is measured to the last step"
            ),
        );
    };
    let ecs = app.ecs_for(&svc);
    let stable = |s: &crate::aws::ecs::ServiceState| {
        let now = format!("running {}/{} tasks", s.running, s.desired);
        if s.desired > 0 && s.running == s.desired && s.deployments.len() <= 1 {
            Verdict::Stable
        } else {
            Verdict::InProgress(now)
        }
    };
    let doing = format!("checking that `{name}` is stable");
    let timing = Follow::of(&app.settings.ecs);
    match follow_service(
        &ecs,
        &svc.cluster,
        &svc.service,
        stable,
        &doing,
        timing,
        |_| {},
    )
    .await
    {
        Ok(Rollout::Stable) => held(Some(crate::clock::now()), format!("`{name}` is stable")),
        Ok(Rollout::Failed(why)) => held(None, format!("`{name}` is not stable: {why}")),
        Ok(Rollout::TimedOut { last }) => held(
            None,
            format!(
                "`{name}` was not stable within {} ({last})",
                app.settings.ecs.rollout_timeout
            ),
        ),
        Err(e) => held(None, format!("`{name}` could not be read: {e}")),
    }
}

/// Ends a run whose steps are all done or skipped, with the measured recovery time: to the
/// last step, or to when the scenario's `recovered_when` held.
async fn finish(
    app: &Arc<App>,
    run: &RunRow,
    steps: &[StepRow],
    held: Option<Held>,
) -> Result<(), StoreError> {
    let first = steps.iter().filter_map(|s| s.started_at.as_deref()).min();
    let last_step = steps.iter().filter_map(|s| s.finished_at.as_deref()).max();
    let held_at = held.as_ref().and_then(|h| h.at).map(crate::clock::rfc3339);
    let last = held_at.as_deref().or(last_step);
    let recovery = match (
        first.and_then(crate::clock::parse_rfc3339),
        last.and_then(crate::clock::parse_rfc3339),
    ) {
        (Some(a), Some(b)) => Some((b - a).num_seconds().max(0)),
        _ => None,
    };
    let mut tx = app.store.begin().await?;
    if !tx
        .move_run(run.id, &["running"], "done", None, Some(recovery))
        .await?
    {
        return Ok(());
    }
    let scenario = app.scenarios.get(&run.scenario).map(|s| s.as_ref());
    let line = recovery
        .map(|r| progress::recovery_line(r, scenario))
        .unwrap_or_default();
    let rto = scenario.and_then(|s| s.rto.seconds());
    let met = match (recovery, rto) {
        (Some(r), Some(limit)) => Some(r as u64 <= limit),
        _ => None,
    };
    let skipped: Vec<&str> = steps
        .iter()
        .filter(|s| s.state == "skipped")
        .map(|s| s.step.as_str())
        .collect();
    let text = format!(
        "{} finished: {} steps ({} skipped); recovery {}",
        run.label(),
        steps.len(),
        skipped.len(),
        recovery
            .map(progress::took)
            .unwrap_or_else(|| "not measured".into())
    );
    let check = held
        .as_ref()
        .map(|h| json!({"service": h.service, "held": h.at.is_some(), "note": h.note}));
    let detail = json!({"recovery_seconds": recovery, "rto_seconds": rto, "rto_met": met, "skipped": skipped, "mode": run.mode, "recovered_when": check});
    let line = match &held {
        Some(h) if h.at.is_some() => format!("{line} (until {})", h.note),
        Some(h) => format!("{line} — to the last step: {}", h.note),
        None => line,
    };
    record(&mut tx, run, EventKind::RunFinished, "drbot", text, detail).await?;
    refresh(
        &mut tx,
        app,
        run.id,
        Some(&format!(
            ":checkered_flag: Plan run {} finished. {line}",
            run.label()
        )),
    )
    .await?;
    tx.commit().await
}
