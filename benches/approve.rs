//! Time from an officer's approving reaction reaching drbot to drbot's mutating request
//! reaching AWS (moto, behind a counting proxy), over 20 rollbacks (UpdateService) and 20
//! IP blocks (UpdateIPSet) on loopback.
//!
//! `scripts/bench --bench approve`. Results are kept in BENCHMARKS.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::aws::{seed_ip_sets, seed_service, CountingProxy};
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
    let sets = seed_ip_sets(false, vec![]).await;
    let config = format!(
        "[approval]\nofficers = [\"{OFFICER}\"]\n\n[ecs]\npoll_interval = \"1s\"\n\n{services}\n{}",
        sets.config()
    );
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let rollbacks = measure(
        &app,
        &proxy,
        "UpdateService",
        (0..RUNS).map(|i| format!("rollback api{i}")).collect(),
    )
    .await;
    report("approving reaction → UpdateService at AWS, 20 rollbacks (includes the re-check: DescribeServices, DescribeTaskDefinition ×2)", rollbacks);
    let blocks = measure(
        &app,
        &proxy,
        "UpdateIPSet",
        (0..RUNS)
            .map(|i| format!("block-ip 203.0.113.{}", i + 1))
            .collect(),
    )
    .await;
    report("approving reaction → UpdateIPSet at AWS, 20 IP blocks (includes the re-check GetIPSet and the write's GetIPSet)", blocks);
}

fn report(what: &str, mut samples: Vec<f64>) {
    eprintln!("samples in run order (ms): {samples:.1?}");
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!("{what}");
    println!(
        "median {:.1} ms | min {:.1} ms | max {:.1} ms",
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1]
    );
}

async fn measure(
    app: &TestApp,
    proxy: &CountingProxy,
    operation: &str,
    commands: Vec<String>,
) -> Vec<f64> {
    let first = app
        .slack
        .calls("chat.postMessage")
        .iter()
        .filter(|c| {
            c.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("approval needed")
        })
        .count();
    let mut samples = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        app.slash(command).reply().await;
        let header = format!("*A-{} · approval needed*", first + i + 1);
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
        let updates = proxy.count(operation);
        let event = json!({"type": "reaction_added", "user": OFFICER, "reaction": "white_check_mark",
            "item": {"type": "message", "channel": OPS_CHANNEL, "ts": ts}, "event_ts": "1.1"});
        let sent = Instant::now();
        app.event(&format!("EvBENCH{operation}{i}"), event, None)
            .await;
        let deadline = Instant::now() + Duration::from_secs(10);
        while proxy.count(operation) == updates && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let at = *proxy
            .times(operation)
            .last()
            .unwrap_or_else(|| panic!("{operation} reached AWS"));
        assert!(
            proxy.count(operation) > updates,
            "no {operation} within 10 s of the approval"
        );
        samples.push(at.duration_since(sent).as_secs_f64() * 1000.0);
    }
    samples
}
