//! Time from a CloudWatch alarm published to the SNS topic until drbot's proposal (with its
//! *Open incident* button) is posted to Slack: SNS → the subscribed SQS queue → drbot's long
//! poll → recorded in the store → the outbox → `chat.postMessage` at the Slack stand-in. 50
//! alarms, one after the other, at moto on loopback, each published 1.1 s after the previous
//! proposal was posted: the outbox paces posts in one channel to Slack's one per second
//! (after a burst), and back-to-back alarms would measure that pace, not the intake.
//!
//! `scripts/bench --bench alarm`. Results are kept in BENCHMARKS.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::aws::{alarm_json, publish, topic_and_queue};
use support::*;

const RUNS: usize = 50;

#[tokio::main]
async fn main() {
    let (topic, queue) = topic_and_queue().await;
    let config = format!(
        "{CONFIG}\n[alarms]\nqueue = \"{queue}\"\ntopics = [\"{topic}\"]\n\n[[alarms.routes]]\nalarm = \"bench-*\"\nscenario = \"code-corruption\"\n"
    );
    let app = spawn_app_with(&config).await;
    let mut samples = Vec::new();
    for i in 0..RUNS {
        let name = format!("bench-{i}-{}", std::process::id());
        let sent = Instant::now();
        publish(&topic, &alarm_json(&name, "ALARM", "Threshold Crossed")).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let posted = app.slack.calls("chat.postMessage").iter().any(|c| {
                c.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .contains(&format!("`{name}` is ALARM"))
            });
            if posted {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no proposal for {name} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        samples.push(sent.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    eprintln!("samples in run order (ms): {samples:.1?}");
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p99 = samples[((samples.len() as f64 - 1.0) * 0.99).round() as usize];
    println!("alarm published to SNS → proposal posted to Slack, {RUNS} alarms 1.1 s apart (moto's SNS → SQS, drbot's long poll, the store, the outbox)");
    println!(
        "median {:.1} ms | p99 {:.1} ms | min {:.1} ms | max {:.1} ms",
        samples[samples.len() / 2],
        p99,
        samples[0],
        samples[samples.len() - 1]
    );
}
