//! drbot's own overhead in a region-failure plan run against moto: the time in which no
//! step's request was executing and nobody was being waited for — from the run's approval
//! to the run starting, from each block being ready to its steps' requests starting, from
//! each request ending to its step recorded done, and from the last step to the end. What
//! the steps' actions do (AWS calls, follow loops) and the people (an officer approving the
//! DNS step, someone marking `verify` done) are not counted: those are the same as typing
//! the commands one by one. Measured from the audit log's timestamps (ms).
//!
//! `scripts/bench --bench plan_run`. Results are kept in BENCHMARKS.md.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use support::flow::*;
use support::region::estate;
use support::*;

const RUNS: usize = 5;

const BASE: &str = "[slack]\ncommand_channels = [\"C0123OPS\"]\n\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n\n[ecs]\npoll_interval = \"1s\"\nrollout_timeout = \"20s\"\n\n[rds]\npoll_interval = \"1s\"\nwait_timeout = \"1m\"\n\n[dns]\nsync_timeout = \"20s\"\n";

fn at(e: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

fn ms(d: chrono::Duration) -> f64 {
    d.num_microseconds().unwrap_or(0) as f64 / 1000.0
}

async fn wait_for(app: &TestApp, kind: &str, step: Option<&str>) -> Value {
    for _ in 0..1200 {
        let found = app
            .events_of_kind(kind)
            .await
            .into_iter()
            .rev()
            .find(|e| step.is_none_or(|s| e["detail"]["step"] == s));
        if let Some(e) = found {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {kind} {step:?}");
}

/// One run; returns (overhead ms, wall ms of the run).
async fn one_run() -> (f64, f64) {
    let estate = estate(BASE, true).await;
    let app = spawn_app_custom(&estate.config, &[], &[]).await;
    let (_, channel) = open_incident(&app, "region-failure bench").await;
    app.slash("snapshot copy main --to-region backup")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "request.executed").await;
    let ts = ask_in(
        &app,
        "run region-failure --mode ungraceful",
        REQUESTER,
        &channel,
    )
    .await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let dns = wait_for(&app, "run.step_started", Some("dns")).await;
    let action = dns["detail"]["action_id"].as_str().unwrap().to_string();
    let dns_ts = loop {
        let posted = app.slack.calls("chat.postMessage").into_iter().find(|c| {
            let t = c.params["text"].as_str().unwrap_or("");
            t.contains("approval needed") && t.contains(&action)
        });
        if let Some(c) = posted {
            break c.answer["ts"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    react_in(&app, &channel, &dns_ts, "white_check_mark", OFFICER).await;
    wait_for(&app, "run.step_started", Some("verify")).await;
    app.slash("run done verify")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for(&app, "run.finished", None).await;

    let events = app.events().await;
    let of = |kind: &'static str| events.iter().filter(move |e| e["kind"] == kind);
    let run_request = of("run.started").next().unwrap()["detail"]["action_id"]
        .as_str()
        .unwrap()
        .to_string();
    let approved = of("approval.approved")
        .find(|e| e["detail"]["action_id"] == run_request.as_str())
        .map(at)
        .unwrap();
    let started = at(of("run.started").next().unwrap());
    let finished = at(of("run.finished").next().unwrap());
    let mut overhead = started - approved;
    // Per step: started, its request's end (or its approval, for the person-approved step),
    // done; per block: when it became ready.
    let mut blocks: BTreeMap<i64, Vec<(String, Option<String>)>> = BTreeMap::new();
    let steps: Vec<&Value> = of("run.step_started").collect();
    for s in &steps {
        let step = s["detail"]["step"].as_str().unwrap().to_string();
        let action = s["detail"]["action_id"].as_str().map(str::to_string);
        let block = match step.as_str() {
            "restore" | "scale" => 0,
            "cutover" => 1,
            "dns" => 2,
            _ => 3,
        };
        blocks.entry(block).or_default().push((step, action));
    }
    let mut ready = started;
    for (_, block) in blocks {
        let mut done_max = ready;
        for (step, action) in &block {
            let begun = at(steps
                .iter()
                .find(|s| s["detail"]["step"] == step.as_str())
                .unwrap());
            overhead = overhead + (begun - ready);
            let done = at(of("run.step_done")
                .find(|e| e["detail"]["step"] == step.as_str())
                .unwrap());
            if let Some(action) = action {
                let ended = at(of("request.executed")
                    .find(|e| e["detail"]["action_id"] == action.as_str())
                    .unwrap());
                overhead = overhead + (done - ended);
            }
            done_max = done_max.max(done);
        }
        ready = done_max;
    }
    overhead = overhead + (finished - ready);
    (ms(overhead), ms(finished - approved))
}

#[tokio::main]
async fn main() {
    let mut samples = Vec::new();
    for _ in 0..RUNS {
        let (overhead, wall) = one_run().await;
        eprintln!("overhead {overhead:.1} ms of a {wall:.0} ms run");
        samples.push((overhead, wall));
    }
    samples.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap());
    println!(
        "drbot's own overhead in a region-failure plan run (ungraceful, 5 steps), {RUNS} runs"
    );
    println!(
        "median {:.1} ms | min {:.1} ms | max {:.1} ms (wall time of the runs, people included: {:.0}–{:.0} ms)",
        samples[samples.len() / 2].0,
        samples[0].0,
        samples[samples.len() - 1].0,
        samples.iter().map(|s| s.1).fold(f64::MAX, f64::min),
        samples.iter().map(|s| s.1).fold(0.0, f64::max)
    );
}
