//! The Slack outbox: how long after a 429 (`Retry-After: 1`) the approval request is posted,
//! and how many messages per second the outbox sends when Slack answers at once (2,000
//! queued messages over 200 channels, ten each: inside Slack's burst, so not paced).
//!
//! `scripts/bench --bench outbox`. Results are kept in BENCHMARKS.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::aws::seed_service;
use support::standin::Failure;
use support::*;

const RUNS: usize = 5;
const CHANNELS: usize = 200;
const PER_CHANNEL: usize = 10;

#[tokio::main]
async fn main() {
    let mut services = String::new();
    for i in 0..RUNS {
        let svc = seed_service(2, 1).await;
        services.push_str(
            &svc.config()
                .replace("name = \"api\"", &format!("name = \"api{i}\"")),
        );
    }
    let config = format!("[approval]\nofficers = [\"{OFFICER}\"]\n\n{services}");
    let app = spawn_app_with(&config).await;

    let mut waits = Vec::new();
    for i in 0..RUNS {
        app.slack.fail_times(
            "chat.postMessage",
            Failure::RateLimited { retry_after: 1 },
            1,
        );
        let before = app.slack.calls("chat.postMessage").len();
        app.slash(&format!("rollback api{i}")).reply().await;
        let (limited, posted) = loop {
            let calls = app.slack.calls("chat.postMessage");
            let fresh = &calls[before.min(calls.len())..];
            let limited = fresh.iter().find(|c| c.answer.is_null()).map(|c| c.at);
            let posted = fresh.iter().find(|c| c.answer["ok"] == true).map(|c| c.at);
            if let (Some(l), Some(p)) = (limited, posted) {
                break (l, p);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        waits.push(posted.duration_since(limited).as_secs_f64() * 1000.0);
    }
    println!("429 (Retry-After: 1) → approval request posted, {RUNS} requests");
    println!(
        "  ms: {:.0?} (mean {:.0})",
        waits,
        waits.iter().sum::<f64>() / waits.len() as f64
    );

    let mut db = app.db().await;
    let before = app.slack.calls("chat.postMessage").len();
    let now = chrono::Utc::now();
    let queued_at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let started = Instant::now();
    for c in 0..CHANNELS {
        let mut sql = String::from("INSERT INTO outbox (lane, message, state, attempts, not_before, deadline, created_at, uncertain) VALUES ");
        for m in 0..PER_CHANNEL {
            let channel = format!("CBENCH{c:04}");
            let message = serde_json::json!({"method": "post", "channel": channel, "text": format!("bench message {m}")});
            if m > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "('{channel}', '{message}', 'pending', 0, {}, {}, '{queued_at}', 0)",
                now.timestamp_millis(),
                now.timestamp_millis() + 600_000
            ));
        }
        sqlx::query(&sql).execute(&mut db).await.unwrap();
    }
    let total = CHANNELS * PER_CHANNEL;
    loop {
        let sent = app.slack.calls("chat.postMessage").len() - before;
        if sent >= total {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "outbox throughput, Slack answering at once: {total} messages over {CHANNELS} channels"
    );
    println!("  {seconds:.2} s, {:.0} messages/s", total as f64 / seconds);
}
