//! Acknowledgement time of signed slash commands on loopback: starts the real `drbot`
//! binary with the Slack stand-in (the test harness), sends N signed `/dr help` commands
//! one after another, and prints median, p99 and max latency and the bot's resident memory.
//!
//! `cargo bench --bench ack` (N from `DRBOT_BENCH_REQUESTS`, default 1000). Results are
//! kept in BENCHMARKS.md; nothing here asserts on time.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::Instant;

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("DRBOT_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let app = support::spawn_app().await;
    let pid = app.pid();
    // Warm up the connection and the store.
    for _ in 0..20 {
        app.slash("help").send().await;
    }
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let text = if i % 2 == 0 {
            "help"
        } else {
            "rollback nowhere"
        };
        let body = app.slash(text).body();
        let started = Instant::now();
        let response = app
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                &body,
            )
            .await;
        let status = response.status();
        let _ = response.bytes().await;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        assert_eq!(status, 200);
    }
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "signed slash commands acknowledged: {n} (half help, half refused), sequential, loopback"
    );
    println!(
        "median {:.2} ms | p99 {:.2} ms | max {:.2} ms",
        percentile(&samples, 50.0),
        percentile(&samples, 99.0),
        samples[n - 1]
    );
    if let Some(kib) = pid.and_then(rss_kib) {
        println!(
            "drbot resident memory after the run: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
}
