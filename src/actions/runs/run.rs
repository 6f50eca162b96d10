//! What a plan run does next: a pure function of the run, its steps (with the state of each
//! step's request) and the time, tested as a table. The driver ([`super::drive`]) applies
//! the effects, each as a conditional update in the store.

use chrono::{DateTime, Utc};

use crate::store::{RunRow, StepRow};

/// One thing the driver does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Start a waiting step of the current block.
    Start { idx: i64 },
    /// A step's request was executed.
    Done { idx: i64, outcome: String },
    /// A step failed: the run pauses and nothing after it starts.
    Fail { idx: i64, why: String },
    /// A step's request was interrupted mid-change: re-read AWS before anything else.
    Reread { idx: i64 },
    /// Every step is done or skipped.
    Finish,
}

/// Request states that end a step as failed.
const FAILED: &[&str] = &["failed", "void", "rejected", "expired", "cancelled"];

/// The effects due now for `run`.
pub fn next(run: &RunRow, steps: &[StepRow], now: DateTime<Utc>) -> Vec<Effect> {
    let mut effects = Vec::new();
    if run.is_over() && run.state != "aborted" {
        return effects;
    }
    // Running steps end as their requests do, whatever the run's state (a paused run's
    // side-by-side step still finishes and is recorded).
    for s in steps.iter().filter(|s| s.state == "running") {
        let (Some(request), Some(state)) = (s.request_id, s.request_state.as_deref()) else {
            continue; // a manual step: a person marks it done
        };
        let outcome = s.request_outcome.clone().unwrap_or_default();
        if state == "executed" {
            effects.push(Effect::Done {
                idx: s.idx,
                outcome,
            });
        } else if FAILED.contains(&state) {
            let why = format!("A-{request} {state}: {outcome}");
            effects.push(Effect::Fail { idx: s.idx, why });
        } else if state == "interrupted" {
            effects.push(Effect::Reread { idx: s.idx });
        } else if let Some(over) = overdue(s, now) {
            let why = format!(
                "not done within its timeout ({over}); A-{request} is still {state}: check it in AWS, then `/dr run skip-step {}` if it is done, or `/dr run retry-step {}` once A-{request} has ended",
                s.step, s.step
            );
            effects.push(Effect::Fail { idx: s.idx, why });
        }
    }
    if run.state != "running" {
        return effects;
    }
    let open = |s: &&StepRow| !matches!(s.state.as_str(), "done" | "skipped");
    let Some(block) = steps.iter().filter(open).map(|s| s.block).min() else {
        effects.push(Effect::Finish);
        return effects;
    };
    let current: Vec<&StepRow> = steps.iter().filter(|s| s.block == block).collect();
    if current.iter().any(|s| s.state == "failed") {
        return effects;
    }
    for s in current.into_iter().filter(|s| s.state == "waiting") {
        effects.push(Effect::Start { idx: s.idx });
    }
    effects
}

/// How long past its timeout a running step is, described, when it is.
fn overdue(s: &StepRow, now: DateTime<Utc>) -> Option<String> {
    let started = s
        .started_at
        .as_deref()
        .and_then(crate::clock::parse_rfc3339)?;
    let limit = chrono::Duration::seconds(s.timeout_secs);
    (now - started > limit).then(|| crate::duration::human(limit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &str) -> RunRow {
        RunRow {
            id: 1,
            request_id: 10,
            scenario: "region-failure".into(),
            mode: "ungraceful".into(),
            stamp: "202612031200".into(),
            channel: "C1".into(),
            incident: None,
            requester: "U1".into(),
            approved_by: "U2".into(),
            state: state.into(),
            reason: None,
            created_at: "2026-12-03T12:00:00Z".into(),
            started_at: Some("2026-12-03T12:00:00Z".into()),
            finished_at: None,
            recovery_secs: None,
        }
    }

    fn step(idx: i64, block: i64, state: &str, request: Option<(&str, &str)>) -> StepRow {
        StepRow {
            run_id: 1,
            idx,
            step: format!("s{idx}"),
            text: String::new(),
            command: request.map(|_| "scale api --desired 2".to_string()),
            block,
            approval: "run".into(),
            timeout_secs: 600,
            when_reached: false,
            plan: None,
            plan_hash: None,
            summary: None,
            state: state.into(),
            request_id: request.map(|_| 100 + idx),
            attempt: 1,
            own_approval: false,
            started_at: Some("2026-12-03T12:00:00Z".into()),
            finished_at: None,
            outcome: None,
            request_state: request.map(|(s, _)| s.to_string()),
            request_outcome: request.map(|(_, o)| o.to_string()),
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        crate::clock::parse_rfc3339("2026-12-03T12:00:00Z").unwrap()
            + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn what_a_run_does_next() {
        let waiting = |i, b| step(i, b, "waiting", None);
        let cases: Vec<(&str, RunRow, Vec<StepRow>, i64, Vec<Effect>)> = vec![
            (
                "the first block starts, side by side",
                run("running"),
                vec![waiting(0, 0), waiting(1, 0), waiting(2, 1)],
                0,
                vec![Effect::Start { idx: 0 }, Effect::Start { idx: 1 }],
            ),
            (
                "the next block waits for every step of the current one",
                run("running"),
                vec![
                    step(0, 0, "done", Some(("executed", "ok"))),
                    step(1, 0, "running", Some(("executing", ""))),
                    waiting(2, 1),
                ],
                1,
                vec![],
            ),
            (
                "an executed request ends its step done",
                run("running"),
                vec![step(0, 0, "running", Some(("executed", "scaled"))), waiting(1, 1)],
                1,
                vec![Effect::Done { idx: 0, outcome: "scaled".into() }],
            ),
            (
                "a failed request fails its step",
                run("running"),
                vec![step(0, 0, "running", Some(("void", "not executed: changed"))), waiting(1, 1)],
                1,
                vec![Effect::Fail { idx: 0, why: "A-100 void: not executed: changed".into() }],
            ),
            (
                "an interrupted request is re-read, never re-run blindly",
                run("running"),
                vec![step(0, 0, "running", Some(("interrupted", "drbot stopped")))],
                1,
                vec![Effect::Reread { idx: 0 }],
            ),
            (
                "a step past its timeout fails",
                run("running"),
                vec![step(0, 0, "running", Some(("executing", "")))],
                11,
                vec![Effect::Fail {
                    idx: 0,
                    why: "not done within its timeout (10m 00s); A-100 is still executing: check it in AWS, then `/dr run skip-step s0` if it is done, or `/dr run retry-step s0` once A-100 has ended".into(),
                }],
            ),
            (
                "a failed step holds everything after it",
                run("running"),
                vec![step(0, 0, "failed", Some(("failed", "x"))), waiting(1, 0), waiting(2, 1)],
                1,
                vec![],
            ),
            (
                "a paused run starts nothing but records what ends",
                run("paused"),
                vec![
                    step(0, 0, "running", Some(("executed", "ok"))),
                    waiting(1, 1),
                ],
                1,
                vec![Effect::Done { idx: 0, outcome: "ok".into() }],
            ),
            (
                "a manual step waits for a person",
                run("running"),
                vec![step(0, 0, "running", None), waiting(1, 1)],
                600,
                vec![],
            ),
            (
                "every step done or skipped finishes the run",
                run("running"),
                vec![step(0, 0, "done", None), step(1, 1, "skipped", None)],
                1,
                vec![Effect::Finish],
            ),
            (
                "a finished run does nothing",
                run("done"),
                vec![step(0, 0, "done", None)],
                1,
                vec![],
            ),
        ];
        for (what, run, steps, minutes, expected) in cases {
            assert_eq!(next(&run, &steps, at(minutes)), expected, "{what}");
        }
    }
}
