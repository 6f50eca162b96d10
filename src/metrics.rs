//! Process-wide counters, rendered in the Prometheus text format at `/metrics`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;

use dashmap::DashMap;

static COUNTERS: LazyLock<DashMap<(&'static str, String), AtomicU64>> = LazyLock::new(DashMap::new);

const HELP: &[(&str, &str)] = &[
    (
        "drbot_http_requests_total",
        "HTTP requests answered, by path and status",
    ),
    (
        "drbot_slack_signature_failures_total",
        "Slack requests refused for a missing, wrong or stale signature",
    ),
    (
        "drbot_slack_replays_refused_total",
        "Signed Slack requests refused because the same signature was already used",
    ),
    (
        "drbot_slack_foreign_refused_total",
        "Signed Slack requests refused because they came from another workspace or app",
    ),
    (
        "drbot_slack_rate_limited_total",
        "Slack Web API calls answered 429 (drbot waited Retry-After and tried again)",
    ),
    (
        "drbot_commands_total",
        "Slash commands, by command and outcome",
    ),
    (
        "drbot_slack_sent_total",
        "Slack Web API writes the outbox made, by method",
    ),
    (
        "drbot_slack_retries_total",
        "Slack writes the outbox will try again (429, 5xx, no answer), by method",
    ),
    (
        "drbot_slack_undelivered_total",
        "Slack writes recorded as failed after their deadline or a final error, by method",
    ),
    (
        "drbot_slack_events_total",
        "Events API deliveries, by type and whether they were new or duplicates",
    ),
];

/// Adds one to `name{labels}`; `labels` is already in `k="v",…` form (or empty).
pub fn inc(name: &'static str, labels: String) {
    COUNTERS
        .entry((name, labels))
        .or_insert_with(|| AtomicU64::new(0))
        .fetch_add(1, Ordering::Relaxed);
}

/// Quotes a label value for the exposition format.
pub fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn render() -> String {
    let mut lines: Vec<(&'static str, String, u64)> = COUNTERS
        .iter()
        .map(|e| {
            (
                e.key().0,
                e.key().1.clone(),
                e.value().load(Ordering::Relaxed),
            )
        })
        .collect();
    lines.sort();
    let mut out = String::new();
    for (name, help) in HELP {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for (n, labels, value) in lines.iter().filter(|l| l.0 == *name) {
            if labels.is_empty() {
                out.push_str(&format!("{n} {value}\n"));
            } else {
                out.push_str(&format!("{n}{{{labels}}} {value}\n"));
            }
        }
    }
    out
}
