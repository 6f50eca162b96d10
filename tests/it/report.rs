//! The quarterly review the plan asks for: `drbot report` over a period with an incident
//! resolved inside its RTO, one still open, and a drill — counted apart, as a test.

use serde_json::Value;

use crate::support::flow::*;
use crate::support::*;

async fn report(app: &TestApp, format: &str) -> String {
    let out = app.cli(&["report", "--format", format]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_report_counts_incidents_against_their_rto_and_drills_apart() {
    let app = spawn_app().await;
    let (resolved, channel) = open_incident(&app, "ddos Login flood").await;
    app.slash("incident resolve blocked at the edge")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "incident.resolved").await;
    let (open, _) = open_incident(&app, "security-breach Leaked key").await;
    let (drill, _) = open_incident(&app, "region-failure Quarterly test --drill").await;

    let json: Value = serde_json::from_str(&report(&app, "json").await).unwrap();
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|s| s["incident"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids(&json["incidents"]), [resolved.clone(), open.clone()]);
    assert_eq!(ids(&json["drills"]), std::slice::from_ref(&drill));
    assert_eq!(json["rto_measured"], 1);
    assert_eq!(json["rto_met"], 1);
    assert_eq!(json["incidents"][0]["rto_secs"], 7200);
    assert!(json["incidents"][1]["resolved_at"].is_null());

    let md = report(&app, "md").await;
    assert!(
        md.contains("1 of 1 resolved incidents met their RTO (100%)"),
        "{md}"
    );
    assert!(md.contains("## Drills"), "{md}");

    let html = report(&app, "html").await;
    assert!(html.starts_with("<!DOCTYPE html>") && !html.contains("http://"));
    assert!(
        html.contains("<svg class=\"chart\""),
        "a chart of recovery against RTO"
    );
    assert!(
        html.contains("class=\"target\""),
        "the RTO target in the chart"
    );
    // Kept for .ci/run, which renders it in headless Chromium.
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report.html"),
        &html,
    )
    .unwrap();

    // A period with nothing in it, and a bad date.
    let empty = app
        .cli(&[
            "report",
            "--from",
            "2020-01-01",
            "--to",
            "2020-03-31",
            "--format",
            "json",
        ])
        .await;
    let empty: Value = serde_json::from_slice(&empty.stdout).unwrap();
    assert_eq!(empty["incidents"], serde_json::json!([]));
    let bad = app.cli(&["report", "--from", "yesterday"]).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--from: 'yesterday' is not a date"));
}
