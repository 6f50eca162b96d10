//! Process metrics in the Prometheus text format at `/metrics` (the `prometheus` crate):
//! counters of what drbot answered and sent, histograms of how long it took, and gauges read
//! from the store when scraped (so every replica reports the shared truth).
//!
//! Label values come from a closed set (configured command names, event types Slack
//! defines, Web API methods, AWS operations): a label per mistyped word would grow without
//! bound.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

static REGISTRY: LazyLock<Registry> = LazyLock::new(Registry::new);

fn register<C: prometheus::core::Collector + Clone + 'static>(c: C) -> C {
    REGISTRY
        .register(Box::new(c.clone()))
        .expect("each metric is registered once");
    c
}

fn counter(name: &str, help: &str) -> IntCounter {
    register(IntCounter::new(name, help).expect("a valid metric"))
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric"))
}

fn gauge(name: &str, help: &str) -> IntGauge {
    register(IntGauge::new(name, help).expect("a valid metric"))
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    register(IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid metric"))
}

/// Buckets from 250 µs to 60 s: acknowledgements sit at the low end, AWS calls and the
/// re-check before a change at the high end.
const SECONDS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0,
];

/// A metric, registered the first time it is used.
macro_rules! metric {
    ($name:ident: $ty:ty = $make:ident($($arg:expr),*)) => {
        pub static $name: LazyLock<$ty> = LazyLock::new(|| $make($($arg),*));
    };
}

metric!(HTTP_REQUESTS: IntCounterVec = counter_vec("drbot_http_requests_total", "HTTP requests answered, by path and status", &["path", "status"]));
metric!(SIGNATURE_FAILURES: IntCounter = counter("drbot_slack_signature_failures_total", "Slack requests refused for a missing, wrong or stale signature"));
metric!(REPLAYS_REFUSED: IntCounter = counter("drbot_slack_replays_refused_total", "Signed Slack requests refused because the same signature was already used"));
metric!(FOREIGN_REFUSED: IntCounter = counter("drbot_slack_foreign_refused_total", "Slack requests refused because they came from another workspace or app"));
metric!(SLACK_RATE_LIMITED: IntCounterVec = counter_vec("drbot_slack_rate_limited_total", "Slack Web API calls answered 429 (drbot waited Retry-After and tried again), by method", &["method"]));
metric!(SLACK_SENT: IntCounterVec = counter_vec("drbot_slack_sent_total", "Slack Web API writes the outbox made, by method", &["method"]));
metric!(SLACK_RETRIES: IntCounterVec = counter_vec("drbot_slack_retries_total", "Slack writes the outbox will try again (429, 5xx, no answer), by method", &["method"]));
metric!(SLACK_UNDELIVERED: IntCounterVec = counter_vec("drbot_slack_undelivered_total", "Slack writes recorded as failed after their deadline or a final error, by method", &["method"]));
metric!(COMMANDS: IntCounterVec = counter_vec("drbot_commands_total", "Slash commands, by command and outcome", &["command", "outcome"]));
metric!(SLACK_EVENTS: IntCounterVec = counter_vec("drbot_slack_events_total", "Events API deliveries, by type and whether they were new or duplicates", &["type", "delivery"]));

pub static ACK_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "drbot_ack_seconds",
                "Time from a Slack request's arrival to drbot's answer, by endpoint",
            )
            .buckets(SECONDS.to_vec()),
            &["path"],
        )
        .expect("a valid metric"),
    )
});
pub static APPROVAL_TO_AWS_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    register(
        Histogram::with_opts(
            HistogramOpts::new(
                "drbot_approval_to_aws_seconds",
                "Time from the approval that decided a request to its first mutating AWS call (includes the re-check)",
            )
            .buckets(SECONDS.to_vec()),
        )
        .expect("a valid metric"),
    )
});
pub static AWS_CALL_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register(
        HistogramVec::new(
            HistogramOpts::new(
                "drbot_aws_call_seconds",
                "Duration of AWS calls that change something, by operation and outcome",
            )
            .buckets(SECONDS.to_vec()),
            &["operation", "outcome"],
        )
        .expect("a valid metric"),
    )
});

metric!(PENDING_APPROVALS: IntGauge = gauge("drbot_pending_approvals", "Approval requests waiting for an officer (read from the store at each scrape)"));
metric!(OPEN_INCIDENTS: IntGauge = gauge("drbot_open_incidents", "Incidents not yet resolved (read from the store at each scrape)"));
metric!(SCENARIO_READY: IntGaugeVec = gauge_vec("drbot_scenario_ready", "1 when the scenario's recovery could run now (its last readiness check passed), 0 when not ready or unknown (read from the store at each scrape)", &["scenario"]));
metric!(QUEUED_SLACK: IntGauge = gauge("drbot_slack_queued_messages", "Slack messages waiting in the outbox (read from the store at each scrape)"));
metric!(SLACK_DOWN: IntGauge = gauge("drbot_slack_down", "1 while Slack's Web API has failed longer than [console] slack_down_after without a success (this replica's view), else 0"));

/// Records one AWS call that changes something.
pub fn aws_call(operation: &str, ok: bool, took: Duration) {
    AWS_CALL_SECONDS
        .with_label_values(&[operation, if ok { "ok" } else { "error" }])
        .observe(took.as_secs_f64());
}

/// Makes every metric appear from the start (at zero), so dashboards and alerts see them
/// before the first event.
pub fn init() {
    for c in [&*SIGNATURE_FAILURES, &*REPLAYS_REFUSED, &*FOREIGN_REFUSED] {
        c.inc_by(0);
    }
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&SLACK_RATE_LIMITED);
    LazyLock::force(&SLACK_SENT);
    LazyLock::force(&SLACK_RETRIES);
    LazyLock::force(&SLACK_UNDELIVERED);
    LazyLock::force(&COMMANDS);
    LazyLock::force(&SLACK_EVENTS);
    LazyLock::force(&ACK_SECONDS);
    LazyLock::force(&APPROVAL_TO_AWS_SECONDS);
    LazyLock::force(&AWS_CALL_SECONDS);
    LazyLock::force(&PENDING_APPROVALS);
    LazyLock::force(&OPEN_INCIDENTS);
    LazyLock::force(&QUEUED_SLACK);
    LazyLock::force(&SLACK_DOWN);
    LazyLock::force(&SCENARIO_READY);
}

/// The exposition text, with the gauges read from `store` first.
pub async fn render(store: &crate::store::Store) -> String {
    match store.gauges().await {
        Ok((pending, incidents, queued)) => {
            PENDING_APPROVALS.set(pending);
            OPEN_INCIDENTS.set(incidents);
            QUEUED_SLACK.set(queued);
        }
        Err(e) => tracing::warn!(error = %e, "could not read the gauges from the store"),
    }
    // Label values: the scenarios drbot recorded (a closed set: the plan's).
    match store.readiness().await {
        Ok(rows) => {
            for row in rows {
                SCENARIO_READY
                    .with_label_values(&[row.scenario.as_str()])
                    .set(i64::from(row.state == "ready"));
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read readiness from the store"),
    }
    let mut out = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&REGISTRY.gather(), &mut out) {
        tracing::error!(error = %e, "could not encode the metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}
