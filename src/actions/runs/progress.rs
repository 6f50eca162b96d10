//! The run's live message: one message, updated in place, showing every step.

use crate::scenarios::Scenario;
use crate::slack::text::escape;
use crate::store::{RunRow, StepRow};

fn icon(s: &StepRow) -> &'static str {
    match s.state.as_str() {
        "done" => ":white_check_mark:",
        "failed" => ":x:",
        "skipped" => ":fast_forward:",
        "running" if s.command.is_none() => ":raised_hand:",
        "running" if s.request_state.as_deref() == Some("pending") => ":lock:",
        "running" => ":arrows_counterclockwise:",
        _ => ":hourglass:",
    }
}

fn seconds_between(from: Option<&str>, to: Option<&str>) -> Option<i64> {
    let from = crate::clock::parse_rfc3339(from?)?;
    let to = crate::clock::parse_rfc3339(to?)?;
    Some((to - from).num_seconds().max(0))
}

/// A duration in seconds, as people read it.
pub fn took(secs: i64) -> String {
    crate::duration::human(chrono::Duration::seconds(secs))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// What one step is doing, in a few words.
fn status(run: &RunRow, s: &StepRow) -> String {
    let request = s.request_id.map(|id| format!("A-{id}"));
    match s.state.as_str() {
        "done" => {
            let time = seconds_between(s.started_at.as_deref(), s.finished_at.as_deref())
                .map(|t| format!(" in {}", took(t)))
                .unwrap_or_default();
            let what = s.outcome.as_deref().map(first_line).unwrap_or("");
            format!(
                "done{time}{} — {}",
                request.map(|r| format!(" ({r})")).unwrap_or_default(),
                escape(what)
            )
        }
        "failed" => format!(
            "*failed* — {}",
            escape(first_line(s.outcome.as_deref().unwrap_or("")))
        ),
        "skipped" => format!(
            "skipped — {}",
            escape(first_line(s.outcome.as_deref().unwrap_or("")))
        ),
        "running" if s.command.is_none() => format!(
            "waiting for a person: `/dr run done {} {}` when it is done",
            s.step,
            run.label()
        ),
        "running" if s.request_state.as_deref() == Some("pending") => format!(
            "waiting for an officer's approval of {}",
            request.unwrap_or_default()
        ),
        "running" => format!("running ({})", request.unwrap_or_default()),
        _ if s.command.is_none() => "waiting (a person marks it done)".to_string(),
        _ if s.approval == "officer" => {
            "waiting (an officer approves it when it is reached)".to_string()
        }
        _ => "waiting".to_string(),
    }
}

/// The run's message.
pub fn render(run: &RunRow, steps: &[StepRow], scenario: Option<&Scenario>) -> String {
    let title = scenario.map(|s| s.title.as_str()).unwrap_or("");
    let state = match run.state.as_str() {
        "paused" => format!(
            "*paused: {}*",
            escape(run.reason.as_deref().unwrap_or("by request"))
        ),
        other => format!("*{other}*"),
    };
    let mut out = format!(
        ":clipboard: *Plan run {}* — {} (`{}`, {} mode) — {state}\nApproved as A-{} by <@{}> · asked by <@{}>",
        run.label(),
        escape(title),
        run.scenario,
        run.mode,
        run.request_id,
        run.approved_by,
        run.requester
    );
    let mut last_block = -1;
    let mut number = 0;
    for s in steps {
        let side = if s.block == last_block {
            "      ↳ side by side: ".to_string()
        } else {
            number += 1;
            format!("*{number}.* ")
        };
        last_block = s.block;
        out.push_str(&format!(
            "\n{side}{} `{}` {} — {}",
            icon(s),
            s.step,
            escape(&s.text),
            status(run, s)
        ));
    }
    if let Some(secs) = run.recovery_secs {
        out.push('\n');
        out.push_str(&recovery_line(secs, scenario));
    }
    if !run.is_over() {
        out.push_str(&format!(
            "\n_`/dr run pause|resume|retry-step|skip-step|abort {}`_",
            run.label()
        ));
    }
    out
}

/// The measured recovery time against the scenario's RTO.
pub fn recovery_line(secs: i64, scenario: Option<&Scenario>) -> String {
    let rto = scenario.map(|s| s.rto);
    match rto.and_then(|r| r.seconds()) {
        Some(limit) if secs as u64 <= limit => format!(
            ":stopwatch: Recovered in *{}* — RTO {}: *met*",
            took(secs),
            took(limit as i64)
        ),
        Some(limit) => format!(
            ":stopwatch: Recovered in *{}* — RTO {}: *missed* by {}",
            took(secs),
            took(limit as i64),
            took(secs - limit as i64)
        ),
        None => format!(":stopwatch: Recovered in *{}*", took(secs)),
    }
}
