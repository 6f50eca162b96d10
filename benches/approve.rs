//! Time from an officer's approving reaction reaching drbot to drbot's UpdateService
//! request reaching AWS (moto, behind a counting proxy), over 20 rollbacks on loopback.
//!
//! `scripts/bench --bench approve`. Results are kept in BENCHMARKS.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::aws::{seed_service, CountingProxy};
use support::*;

const RUNS: usize = 20;

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
    let config = format!(
        "[approval]\nofficers = [\"{OFFICER}\"]\n\n[ecs]\npoll_interval = \"1s\"\n\n{services}"
    );
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let mut samples = Vec::new();
    for i in 0..RUNS {
        app.slash(&format!("rollback api{i}")).reply().await;
        let header = format!("*A-{} · approval needed*", i + 1);
        let mut ts = None;
        while ts.is_none() {
            ts = app
                .slack
                .calls("chat.postMessage")
                .iter()
                .find(|c| c.params["text"].as_str().unwrap_or("").contains(&header))
                .map(|c| c.answer["ts"].as_str().unwrap().to_string());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let ts = ts.unwrap();
        let updates = proxy.count("UpdateService");
        let event = json!({"type": "reaction_added", "user": OFFICER, "reaction": "white_check_mark",
            "item": {"type": "message", "channel": OPS_CHANNEL, "ts": ts}, "event_ts": "1.1"});
        let sent = Instant::now();
        app.event(&format!("EvBENCH{i}"), event, None).await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.count("UpdateService") == updates && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let at = *proxy
            .times("UpdateService")
            .last()
            .expect("UpdateService reached AWS");
        samples.push(at.duration_since(sent).as_secs_f64() * 1000.0);
    }
    eprintln!("samples in run order (ms): {samples:.1?}");
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("approving reaction → UpdateService at AWS, {RUNS} rollbacks, loopback (includes the re-check: DescribeServices + 2× DescribeTaskDefinition)");
    println!(
        "median {:.1} ms | min {:.1} ms | max {:.1} ms",
        samples[RUNS / 2],
        samples[0],
        samples[RUNS - 1]
    );
}
