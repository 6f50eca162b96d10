//! The review an auditor reads (SPEC §18): every change of the period in the change log with
//! who asked, who approved and how long it waited; the postmortem draft of an incident; the
//! follow-ups it leaves, reminded while overdue.

use std::time::Duration;

use serde_json::Value;

use crate::support::aws::seed_service;
use crate::support::flow::*;
use crate::support::*;

/// `/dr <text>` in `channel`; its reply must contain `expected`.
async fn say_in(app: &TestApp, channel: &str, text: &str, expected: &str) {
    let reply = app.slash(text).in_channel(channel).reply().await;
    assert!(reply.contains(expected), "{text}: {reply}");
}

/// `--to` a few days ahead: drbot's moved clock may have passed midnight (the default period
/// ends today).
fn ahead() -> String {
    (chrono::Utc::now() + chrono::Duration::days(3))
        .format("%Y-%m-%d")
        .to_string()
}

async fn cli_json(app: &TestApp, args: &[&str]) -> Value {
    let out = app.cli(args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn a_rollback_in_the_ops_channel_is_in_the_change_log_with_its_approver_and_wait() {
    let svc = seed_service(3, 1).await;
    let config = format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\nttl = \"15m\"\n[ecs]\npoll_interval = \"1s\"\n{}",
        svc.config()
    );
    let app = spawn_app_with(&config).await;
    let done = ask_and_approve(&app, "rollback api").await;
    assert_eq!(done["kind"], "request.executed", "{done:#?}");
    // A rejected and an expired request, and a refused command.
    let ts = ask(&app, "rollback api", REQUESTER).await;
    react(&app, &ts, "x", OFFICER).await;
    wait_for_event(&app, "approval.rejected").await;
    let _ = ask(&app, "rollback api", REQUESTER).await;
    app.advance_clock(Duration::from_secs(16 * 60));
    wait_for_event(&app, "approval.expired").await;
    let refused = app.slash("rollback nothing-such").reply().await;
    assert!(refused.contains("nothing-such"), "{refused}");

    let log = cli_json(&app, &["changes", "--to", &ahead(), "--format", "json"]).await;
    let changes = log["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 3, "{log:#}");
    let rollback = &changes[0];
    assert_eq!(rollback["label"], "A-1");
    assert_eq!(rollback["command"], "rollback api");
    assert_eq!(rollback["requester"], REQUESTER);
    assert_eq!(rollback["approvers"], serde_json::json!([OFFICER]));
    assert_eq!(rollback["channel"], OPS_CHANNEL);
    assert!(rollback["wait_secs"].as_i64().is_some(), "{rollback:#}");
    assert_eq!(rollback["outcome"], "executed");
    assert!(
        rollback["change"].as_str().unwrap().contains(&svc.family),
        "the exact change: {rollback:#}"
    );
    assert!(
        !rollback["aws_request_ids"].as_array().unwrap().is_empty(),
        "{rollback:#}"
    );
    assert_eq!(log["outcomes"]["rejected"], 1);
    assert_eq!(log["outcomes"]["expired"], 1);
    assert_eq!(log["refused"].as_array().unwrap().len(), 1, "{log:#}");
    assert_eq!(log["approvers"][OFFICER], 1);

    // The report's first screen answers with the same log; the approval wait counts it.
    let out = app
        .cli(&["report", "--to", &ahead(), "--format", "html"])
        .await;
    let html = String::from_utf8_lossy(&out.stdout);
    assert!(html.contains("id=\"at-a-glance\""), "{html}");
    assert!(html.contains("Changes approved"), "{html}");
    assert!(html.contains(&format!("by {OFFICER} (1)")), "{html}");
    assert!(!html.contains("no approved changes"), "{html}");
    assert!(html.contains("id=\"change-log\""));
    let md = String::from_utf8_lossy(
        &app.cli(&["changes", "--to", &ahead(), "--format", "md"])
            .await
            .stdout,
    )
    .to_string();
    assert!(
        md.contains("/dr rollback api") && md.contains("1 rejected") && md.contains("1 expired"),
        "{md}"
    );

    // An incident with a follow-up and its postmortem: the review shows them too
    // (`scripts/render-check` renders this page in Chromium).
    let (incident, channel) = open_incident(&app, "code-corruption Bad deploy of the API").await;
    say_in(
        &app,
        &channel,
        "followup add Pin the image digest in the deploy job --owner <@U0SECOFF2>",
        "recorded",
    )
    .await;
    say_in(&app, &channel, "incident postmortem", "postmortem draft").await;
    wait_for_upload(&app, 1).await;
    wait_for_event(&app, "incident.postmortem").await;
    let out = app
        .cli(&["report", "--to", &ahead(), "--format", "html"])
        .await;
    let html = String::from_utf8_lossy(&out.stdout).to_string();
    for needle in [
        "id=\"at-a-glance\"",
        "id=\"change-log\"",
        "class=\"change\"",
        "class=\"followup\"",
        "class=\"postmortem\"",
        &format!("Postmortem: Bad deploy of the API ({incident})"),
    ] {
        assert!(html.contains(needle), "{needle} missing");
    }
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-review.html"),
        &html,
    )
    .unwrap();
}

/// The content of the last file uploaded to Slack.
async fn wait_for_upload(app: &TestApp, n: usize) -> String {
    for _ in 0..200 {
        let uploads = app.slack.calls("upload");
        if uploads.len() >= n {
            return uploads[n - 1].params["content"]
                .as_str()
                .unwrap()
                .to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no upload {n}");
}

#[tokio::test]
async fn a_postmortem_draft_holds_the_incidents_facts_with_hostile_text_escaped() {
    let app = spawn_app().await;
    let (incident, channel) = open_incident(
        &app,
        "ddos Flood <!channel> *boom* [click](https://evil.example)",
    )
    .await;
    say_in(
        &app,
        &channel,
        "incident update Blocked <@U0EVIL> | # Not a heading",
        "recorded",
    )
    .await;
    say_in(
        &app,
        &channel,
        "followup add Rotate the <!here> keys --owner <@U0DANA1|dana> --due 2026-12-31",
        "F-1 recorded",
    )
    .await;
    say_in(&app, &channel, "incident resolve Flood over", "resolved").await;
    // The resolution offers the draft with a button…
    let offered = |app: &TestApp| {
        app.slack.calls("chat.postMessage").into_iter().find(|c| {
            c.params["channel"] == channel.as_str()
                && c.params["blocks"]
                    .to_string()
                    .contains("incident_postmortem")
        })
    };
    for _ in 0..100 {
        if offered(&app).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let resolved = offered(&app).expect("the resolution offers the postmortem");
    assert!(resolved.params["blocks"]
        .to_string()
        .contains("Draft the postmortem"));

    // …and the command works in the resolved channel.
    say_in(&app, &channel, "incident postmortem", "postmortem draft").await;
    let draft = wait_for_upload(&app, 1).await;
    for fact in [
        format!("# Postmortem: "),
        format!("({incident})"),
        "## Summary".to_string(),
        "## RTO / RPO".to_string(),
        "- RTO: met".to_string(),
        "## Timeline highlights".to_string(),
        "## What went well".to_string(),
        "## Follow-ups".to_string(),
        "- [ ] F-1 Rotate the".to_string(),
        "owner U0DANA1, due 2026-12-31".to_string(),
        "resolved by U0ONCALL1".to_string(),
    ] {
        assert!(draft.contains(&fact), "missing {fact:?} in\n{draft}");
    }
    for raw in [
        "<!channel>",
        "<!here>",
        "[click](https",
        "<@U0EVIL>",
        "| # Not",
    ] {
        assert!(!draft.contains(raw), "{raw:?} is not escaped in\n{draft}");
    }
    assert!(
        draft.contains("\\<\\!channel\\>") && draft.contains("\\*boom\\*"),
        "{draft}"
    );
    wait_for_event(&app, "incident.postmortem").await;

    // The button posts another draft.
    let ts = resolved.answer["ts"].as_str().unwrap().to_string();
    let mut click = button_click(&ts, "incident_postmortem", OFFICER);
    click["actions"][0]["value"] = serde_json::json!(incident);
    click["channel"]["id"] = serde_json::json!(channel);
    assert_eq!(interact(&app, &click).await.status(), 200);
    let again = wait_for_upload(&app, 2).await;
    assert!(again.contains(&incident));
}

#[tokio::test]
async fn follow_ups_round_trip_and_an_overdue_one_reminds_the_ops_channel_once_a_day() {
    let app = spawn_app().await;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let reply = app
        .slash(&format!(
            "followup add Update the DNS runbook --owner <@U0DANA1> --due {tomorrow}"
        ))
        .reply()
        .await;
    assert!(reply.contains("F-1 recorded"), "{reply}");
    let refused = app
        .slash("followup add Something --due next-week")
        .reply()
        .await;
    assert!(refused.contains("not a day like"), "{refused}");
    let refused = app
        .slash("followup add Something --owner everyone")
        .reply()
        .await;
    assert!(refused.contains("not a person"), "{refused}");
    // A mention Slack did not escape is kept as the handle typed.
    let reply = app
        .slash("followup add Check the backup vault --owner @dana.smith")
        .reply()
        .await;
    assert!(reply.contains("F-2 recorded"), "{reply}");
    let done = app.slash("followup done F-2").reply().await;
    assert!(done.contains("F-2 is done"), "{done}");
    let listed = app.slash("followup list --open").reply().await;
    assert!(
        listed.contains("F-1") && listed.contains("Update the DNS runbook"),
        "{listed}"
    );

    let reminders = |app: &TestApp| {
        app.slack
            .calls("chat.postMessage")
            .iter()
            .filter(|c| {
                c.params["channel"] == OPS_CHANNEL
                    && c.params["text"]
                        .as_str()
                        .unwrap_or("")
                        .contains("Follow-up overdue")
            })
            .count()
    };
    // Two days on it is overdue: one reminder, however often drbot looks.
    app.advance_clock(Duration::from_secs(2 * 86_400));
    assert!(app.run_time_until(|| reminders(&app) == 1).await);
    app.run_time(5).await;
    assert_eq!(reminders(&app), 1);
    // The next day, one more.
    app.advance_clock(Duration::from_secs(86_400));
    assert!(app.run_time_until(|| reminders(&app) == 2).await);
    app.run_time(5).await;
    assert_eq!(reminders(&app), 2);

    let done = app.slash("followup done F-1").reply().await;
    assert!(done.contains("F-1 is done"), "{done}");
    let again = app.slash("followup done F-1").reply().await;
    assert!(again.contains("already done"), "{again}");
    let listed = app.slash("followup list --open").reply().await;
    assert!(listed.contains("No open follow-ups"), "{listed}");
    app.advance_clock(Duration::from_secs(86_400));
    app.run_time(5).await;
    assert_eq!(reminders(&app), 2, "a done follow-up is not reminded");
    // The report counts it.
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let later = (chrono::Utc::now() + chrono::Duration::days(10))
        .format("%Y-%m-%d")
        .to_string();
    let report = cli_json(
        &app,
        &[
            "report", "--from", &today, "--to", &later, "--format", "json",
        ],
    )
    .await;
    assert_eq!(report["followups"]["added"], 2, "{:#}", report["followups"]);
    assert_eq!(report["followups"]["done"], 2);
}
