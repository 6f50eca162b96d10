//! An incident from the plan, run through drbot: the channel, the officers told at once,
//! the pinned checklist, status updates and reminders, the users' notice, resolution
//! against RTO/RPO, and the timeline exported for the postmortem and the auditors.

use std::time::Duration;

use serde_json::Value;

use crate::support::aws::{seed_database, seed_service};
use crate::support::flow::*;
use crate::support::*;

const TIMERS: &str = "[incidents]\nreminder_interval = \"30m\"\nuser_notice_after = \"15m\"\n";

fn today() -> String {
    chrono::Utc::now().format("%Y%m%d").to_string()
}

/// Opens an incident from the ops channel; returns (incident id, channel id).
async fn open(app: &TestApp, text: &str) -> (String, String) {
    open_incident(app, text).await
}

/// `drbot timeline export` of `incident` in `format`, asserting success.
pub async fn export(app: &TestApp, incident: &str, format: &str) -> String {
    let out = app
        .cli(&[
            "timeline",
            "export",
            "--incident",
            incident,
            "--format",
            format,
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn kinds_of(app: &TestApp, incident: &str) -> Vec<String> {
    let json: Value = serde_json::from_str(&export(app, incident, "json").await).unwrap();
    json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn opening_an_incident_makes_the_channel_invites_pins_and_tells_the_officers_at_once() {
    let app = spawn_app().await;
    let (id, channel) = open(&app, "ddos Login flood from botnet").await;
    assert_eq!(id, format!("inc-{}-login-flood-from-botnet", today()));

    let invite = app.slack.wait_for("conversations.invite", 1).await;
    assert_eq!(invite[0].params["channel"], channel.as_str());
    let users: Vec<String> = invite[0].params["users"]
        .as_str()
        .map(|u| u.split(',').map(str::to_string).collect())
        .unwrap_or_else(|| {
            invite[0].params["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u.as_str().unwrap().to_string())
                .collect()
        });
    assert_eq!(users, [REQUESTER, OFFICER, OFFICER_2]);

    // The channel's messages go out in order: invite, summary, pin.
    let pins = app.slack.wait_for("pins.add", 1).await;
    let summary = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| c.params["channel"] == channel.as_str())
        .unwrap();
    let text = summary.params["text"].as_str().unwrap();
    assert!(
        text.contains("Scenario: *DDoS attack*")
            && text.contains("RTO target: *2h 00m*")
            && text.contains("RPO target: *n/a*"),
        "{text}"
    );
    assert!(
        text.contains("Opened by <@U0ONCALL1> · clock started"),
        "{text}"
    );
    assert!(
        text.contains(":white_large_square: 2. Block malicious IPs — `/dr block-ip`"),
        "{text}"
    );
    assert_eq!(pins[0].params["timestamp"], summary.answer["ts"]);

    let opened = app.slack.wait_for("conversations.open", 2).await;
    let dm_users: Vec<String> = opened
        .iter()
        .map(|c| {
            c.params["users"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| c.params["users"][0].as_str().unwrap().to_string())
        })
        .collect();
    // Each officer's DM is a lane of its own: they go out side by side, in any order.
    let mut dm_users = dm_users;
    dm_users.sort();
    assert_eq!(dm_users, [OFFICER, OFFICER_2]);
    let mut dms = Vec::new();
    for _ in 0..200 {
        dms = app
            .slack
            .calls("chat.postMessage")
            .into_iter()
            .filter(|c| c.params["channel"].as_str().unwrap_or("").starts_with('D'))
            .collect();
        if dms.len() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(dms.len(), 2);
    assert!(dms[0].params["text"]
        .as_str()
        .unwrap()
        .contains("Security officer notice"));
    let kinds = kinds_of(&app, &id).await;
    assert!(
        kinds.contains(&"incident.opened".to_string())
            && kinds.contains(&"incident.notified".to_string()),
        "{kinds:?}"
    );
    assert!(
        app.slack.violations().is_empty(),
        "{:?}",
        app.slack.violations()
    );
    assert!(app.warnings().is_empty(), "{:#?}", app.warnings());
}

#[tokio::test]
async fn an_unknown_scenario_gets_the_list_of_scenarios() {
    let app = spawn_app().await;
    let reply = app.slash("incident open meteor Big rock").reply().await;
    assert!(reply.contains("there is no scenario `meteor`"), "{reply}");
    for id in [
        "region-failure",
        "db-corruption",
        "code-corruption",
        "security-breach",
        "ddos",
    ] {
        assert!(reply.contains(&format!("`{id}`")), "{id} missing: {reply}");
    }
    assert!(app.slack.calls("conversations.create").is_empty());
}

#[tokio::test]
async fn a_second_incident_with_the_same_title_the_same_day_gets_its_own_channel() {
    let app = spawn_app().await;
    app.slack
        .take_channel_name(&format!("inc-{}-api-down", today()));
    let (first, _) = open(&app, "code-corruption API down").await;
    let (second, _) = open(&app, "code-corruption API down").await;
    assert_eq!(first, format!("inc-{}-api-down-2", today()));
    assert_eq!(second, format!("inc-{}-api-down-3", today()));
}

#[tokio::test]
async fn updates_and_commands_land_in_their_own_incident_timeline() {
    let app = spawn_app().await;
    let (a, chan_a) = open(&app, "ddos Flood A").await;
    let (b, chan_b) = open(&app, "security-breach Leak B").await;
    let reply = app
        .slash("incident update WAF rules in place")
        .in_channel(&chan_a)
        .reply()
        .await;
    assert_eq!(reply, "Status update recorded in the incident timeline.");
    app.slash("incident update keys rotated")
        .in_channel(&chan_b)
        .reply()
        .await;
    app.slash("help").in_channel(&chan_a).reply().await;
    // `/dr status` performs the ddos checklist's "Monitor attack patterns" step.
    app.slash("status").in_channel(&chan_a).reply().await;
    let step = wait_for_event(&app, "incident.step_done").await;
    assert_eq!(step["incident"], a.as_str());
    assert_eq!(step["detail"]["step"], 4);
    let outside = app
        .slash("incident update from the wrong place")
        .reply()
        .await;
    assert!(
        outside.contains("works in an open incident's channel"),
        "{outside}"
    );

    let md_a = export(&app, &a, "md").await;
    assert!(
        md_a.contains("WAF rules in place") && md_a.contains("/dr help"),
        "{md_a}"
    );
    assert!(!md_a.contains("keys rotated"), "{md_a}");
    let md_b = export(&app, &b, "md").await;
    assert!(
        md_b.contains("keys rotated") && !md_b.contains("WAF rules"),
        "{md_b}"
    );
    let posted = app.slack.calls("chat.postMessage").into_iter().any(|c| {
        c.params["channel"] == chan_a.as_str()
            && c.params["text"]
                .as_str()
                .unwrap_or("")
                .contains(":memo: *Status update* from <@U0ONCALL1>: WAF rules in place")
    });
    assert!(posted);
}

#[tokio::test]
async fn reminders_and_the_users_notice_come_on_time_and_not_again_after_a_restart() {
    let mut app = spawn_app_with(&format!("{CONFIG}\n{TIMERS}")).await;
    let (id, channel) = open(&app, "ddos Flood").await;
    // Ten quiet minutes: neither yet.
    app.advance_clock(Duration::from_secs(10 * 60));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let early = kinds_of(&app, &id).await;
    assert!(
        !early
            .iter()
            .any(|k| k == "incident.reminder" || k == "incident.notice"),
        "{early:?}"
    );
    // Half an hour without an update: the reminder, and the users' notice (due at 15 min).
    app.advance_clock(Duration::from_secs(21 * 60));
    wait_for_event(&app, "incident.reminder").await;
    let notice = wait_for_event(&app, "incident.notice").await;
    let text = notice["detail"]["notice"].as_str().unwrap();
    assert!(
        text.starts_with("Subject: Service Interruption - analyticalfire.com"),
        "{text}"
    );
    assert!(
        text.contains("What happened:\nFlood (service unavailable).")
            && text.contains("For updates: https://status.analyticalfire.com"),
        "{text}"
    );
    let posted = app.slack.calls("chat.postMessage").into_iter().any(|c| {
        c.params["channel"] == channel.as_str()
            && c.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("Service Interruption")
    });
    assert!(posted);

    app.kill().await;
    app.restart().await;
    app.advance_clock(Duration::from_secs(60));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let kinds = kinds_of(&app, &id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "incident.notice").count(),
        1,
        "{kinds:?}"
    );
    // A status update resets the reminder clock.
    app.slash("incident update mitigations holding")
        .in_channel(&channel)
        .reply()
        .await;
    let before = kinds_of(&app, &id)
        .await
        .iter()
        .filter(|k| *k == "incident.reminder")
        .count();
    app.advance_clock(Duration::from_secs(20 * 60));
    tokio::time::sleep(Duration::from_millis(150)).await;
    let after = kinds_of(&app, &id)
        .await
        .iter()
        .filter(|k| *k == "incident.reminder")
        .count();
    assert_eq!(
        before, after,
        "reminded within the interval after an update"
    );
    // Half an hour after the update, the next reminder.
    app.advance_clock(Duration::from_secs(11 * 60));
    for _ in 0..40 {
        let now = kinds_of(&app, &id)
            .await
            .iter()
            .filter(|k| *k == "incident.reminder")
            .count();
        if now > before {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no reminder half an hour after the update");
}

#[tokio::test]
async fn resolving_reports_the_rto_met() {
    let app = spawn_app().await;
    let (id, channel) = open(&app, "ddos Flood").await;
    let reply = app
        .slash("incident resolve blocked the botnet")
        .in_channel(&channel)
        .reply()
        .await;
    assert_eq!(reply, format!("Incident {id} resolved."));
    let resolved = wait_for_event(&app, "incident.resolved").await;
    assert_eq!(resolved["detail"]["rto_met"], true);
    assert!(
        resolved["text"]
            .as_str()
            .unwrap()
            .contains("RTO of 2h 00m met"),
        "{resolved}"
    );
    assert!(
        resolved["text"]
            .as_str()
            .unwrap()
            .contains("No restore ran"),
        "{resolved}"
    );
    let again = app
        .slash("incident resolve")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(
        again.contains(&format!(
            "cannot be used in the channel of {id}, which is resolved"
        )),
        "{again}"
    );
    let list = app.slash("incident list").reply().await;
    assert!(
        list.contains("*Open incidents*: none") && list.contains(&id),
        "{list}"
    );
}

#[tokio::test]
async fn resolving_after_the_rto_reports_it_missed_by_how_much() {
    // A drill scenario with an RTO of zero, added the way an operator adds one: any
    // resolution misses it, so no test has to wait for a clock.
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("commands")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(
        dir.path().join("scenarios/drill.toml"),
        "id = \"drill\"\ntitle = \"Drill\"\nimpact = \"None (exercise)\"\nrto = \"0s\"\nrpo = \"none\"\n\n[[steps]]\ntext = \"Walk through the plan\"\n",
    )
    .unwrap();
    let app = spawn_app_with_args(CONFIG, &["--commands", dir.path().to_str().unwrap()]).await;
    let (_, channel) = open(&app, "drill Quarterly tabletop").await;

    app.slash("incident resolve")
        .in_channel(&channel)
        .reply()
        .await;
    let resolved = wait_for_event(&app, "incident.resolved").await;
    assert_eq!(resolved["detail"]["rto_met"], false);
    let text = resolved["text"].as_str().unwrap();
    assert!(text.contains("RTO of 0s missed by"), "{text}");
}

#[tokio::test]
async fn a_pitr_during_the_incident_is_reported_against_the_rpo() {
    let db = seed_database(1).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let point = chrono::DateTime::from_timestamp(
        (db.created().await + chrono::Duration::seconds(1)).timestamp(),
        0,
    )
    .unwrap();
    let app = spawn_app_with(&format!(
        "{CONFIG}\n[rds]\npoll_interval = \"1s\"\n\n{}",
        db.config().replace("name = \"main\"", "name = \"primary\"")
    ))
    .await;
    let (_, channel) = open(&app, "db-corruption Orders table corrupted").await;
    let text = format!(
        "pitr primary --time {} --as {}-pitr",
        point.format("%Y-%m-%dT%H:%M:%SZ"),
        db.instance
    );
    let ts = ask_in(&app, &text, REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert!(
        done["incident"].is_string(),
        "the request's events belong to the incident: {done}"
    );
    // The checklist step performed by /dr pitr is ticked.
    wait_for_event(&app, "incident.step_done").await;

    app.slash("incident resolve restored orders")
        .in_channel(&channel)
        .reply()
        .await;
    let resolved = wait_for_event(&app, "incident.resolved").await;
    let text = resolved["text"].as_str().unwrap();
    assert!(
        text.contains("data-loss window") && text.contains("RPO of 1h 00m met"),
        "{text}"
    );
    assert_eq!(
        resolved["detail"]["restore_point"],
        crate::support::aws::rfc3339_millis(point)
    );
    assert!(resolved["detail"]["data_loss_secs"].as_i64().unwrap() >= 1);
}

#[tokio::test]
async fn a_rollback_in_an_incident_ticks_its_checklist_step() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&format!(
        "{CONFIG}\n[ecs]\npoll_interval = \"1s\"\n\n{}",
        svc.config().replace("name = \"api\"", "name = \"web\"")
    ))
    .await;
    let (id, channel) = open(&app, "code-corruption Bad deploy").await;
    let ts = ask_in(&app, "rollback web", REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&app, "incident.step_done").await;
    let pinned_ts = app.slack.calls("pins.add")[0].params["timestamp"]
        .as_str()
        .unwrap()
        .to_string();
    let mut updated = String::new();
    for _ in 0..50 {
        if let Some(u) = app
            .slack
            .calls("chat.update")
            .into_iter()
            .rfind(|c| c.params["ts"] == pinned_ts.as_str())
        {
            updated = u.params["text"].as_str().unwrap().to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        updated.contains(":white_check_mark: 2. Revert to previous working version"),
        "{updated}"
    );
    app.slash("incident resolve rolled back to the previous revision")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "incident.resolved").await;
    // The README shows this export as its example timeline.
    let example = export(&app, &id, "md").await;
    std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("incident-example.md"),
        example,
    )
    .unwrap();
    let kinds = kinds_of(&app, &id).await;
    for kind in [
        "command.accepted",
        "approval.requested",
        "approval.approved",
        "aws.call",
        "request.executed",
        "incident.step_done",
    ] {
        assert!(
            kinds.contains(&kind.to_string()),
            "{kind} missing from the incident timeline: {kinds:?}"
        );
    }
}

#[tokio::test]
async fn the_timeline_is_posted_in_pages_and_exported_in_every_format() {
    let app = spawn_app().await;
    let (id, channel) = open(&app, "ddos Flood").await;
    for i in 0..45 {
        app.slash(&format!("incident update step {i}"))
            .in_channel(&channel)
            .reply()
            .await;
    }
    let reply = app.slash("timeline").in_channel(&channel).reply().await;
    assert!(
        reply.contains("in 3 message(s)")
            || reply.contains("in 2 message(s)")
            || reply.contains("in 4 message(s)"),
        "{reply}"
    );
    // 45 updates went to the channel first: past Slack's burst, drbot paces its posts
    // there at one per second (of its time, run fast here), so the pages come after them.
    let pages = || -> Vec<_> {
        app.slack
            .calls("chat.postMessage")
            .into_iter()
            .filter(|c| {
                c.params["text"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with(&format!("*Timeline of {id}*"))
            })
            .collect()
    };
    app.run_time_until(|| pages().len() >= 3).await;
    let pages = pages();
    assert!(pages.len() >= 3, "{}", pages.len());
    assert!(pages[0].params["text"]
        .as_str()
        .unwrap()
        .contains("incident.opened"));

    // Names are learned beside the request path, every 2 s of drbot's time: the HTML is
    // compared with the JSON's texts below, so both are exported once the names are known.
    let mut json = Value::Null;
    for _ in 0..100 {
        json = serde_json::from_str(&export(&app, &id, "json").await).unwrap();
        let unnamed = json["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["text_plain"].as_str().unwrap_or("").contains("@U0"));
        if !unnamed {
            break;
        }
        app.advance_clock(Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = json["events"].as_array().unwrap();
    assert!(events.len() >= 92);
    for e in events {
        for field in [
            "seq",
            "at",
            "actor",
            "kind",
            "text",
            "detail",
            "hash",
            "prev_hash",
        ] {
            assert!(!e[field].is_null(), "{field} missing in {e}");
        }
        assert_eq!(e["incident"], id.as_str());
    }
    assert_eq!(json["verification"]["intact"], true);

    let html = export(&app, &id, "html").await;
    assert!(
        html.starts_with("<!DOCTYPE html>") && !html.contains("http://") && !html.contains("src="),
        "not self-contained"
    );
    let mut last = 0;
    for e in events {
        let seq = e["seq"].as_i64().unwrap();
        let at = html
            .find(&format!("id=\"event-{seq}\""))
            .unwrap_or_else(|| panic!("event {seq} missing from the HTML"));
        assert!(at > last, "event {seq} out of order");
        last = at;
        // What a reader sees of each event: its text rendered, without markup.
        let plain = e["text_plain"].as_str().unwrap();
        assert!(
            visible_text(&html).contains(plain),
            "text of event {seq} missing: {plain}"
        );
    }
    assert!(html.contains("audit chain intact"));
    // Kept for .ci/run, which renders it in headless Chromium.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("timeline-sample.html"), &html).unwrap();
    std::fs::write(dir.join("timeline-sample.count"), events.len().to_string()).unwrap();
    std::fs::write(
        dir.join("timeline-sample.md"),
        export(&app, &id, "md").await,
    )
    .unwrap();
}

#[tokio::test]
async fn a_snapshot_asked_in_an_incident_channel_is_tagged_with_the_incident() {
    let db = seed_database(1).await;
    let app = spawn_app_with(&format!(
        "{CONFIG}\n[rds]\npoll_interval = \"1s\"\n\n{}",
        db.config().replace("name = \"main\"", "name = \"orders\"")
    ))
    .await;
    let (id, channel) = open(&app, "db-corruption Orders").await;
    app.slash("snapshot orders")
        .in_channel(&channel)
        .reply()
        .await;
    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(call["incident"], id.as_str());
    let name = call["detail"]["snapshot"].as_str().unwrap();
    let rds = crate::support::aws::rds().await;
    let snap = rds
        .describe_db_snapshots()
        .db_snapshot_identifier(name)
        .send()
        .await
        .unwrap();
    let arn = snap.db_snapshots()[0]
        .db_snapshot_arn()
        .unwrap()
        .to_string();
    let tags = rds
        .list_tags_for_resource()
        .resource_name(arn)
        .send()
        .await
        .unwrap();
    let incident = tags
        .tag_list()
        .iter()
        .find(|t| t.key() == Some("drbot:incident"))
        .and_then(|t| t.value());
    assert_eq!(incident, Some(id.as_str()));
}

#[tokio::test]
async fn a_resolved_incident_channel_is_no_longer_a_place_for_commands() {
    let app = spawn_app().await;
    let (_, channel) = open(&app, "ddos Flood").await;
    // While open, the incident channel takes commands although it is not in command_channels.
    let status = app.slash("approvals").in_channel(&channel).reply().await;
    assert!(
        !status.contains("cannot be used in this channel"),
        "{status}"
    );
    app.slash("incident resolve done")
        .in_channel(&channel)
        .reply()
        .await;
    let refused = app.slash("approvals").in_channel(&channel).reply().await;
    assert!(refused.contains("which is resolved"), "{refused}");
}

/// The text a browser shows of `html`: tags dropped, entities decoded, `<br>` as a newline.
pub fn visible_text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    let mut tag = String::new();
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                if tag == "br" {
                    out.push('\n');
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[tokio::test]
async fn a_drill_is_marked_everywhere_and_tells_no_users() {
    let app = spawn_app_with(&format!(
        "{CONFIG}\n[incidents]\nuser_notice_after = \"15m\"\n"
    ))
    .await;
    let help = app.slash("help incident open").reply().await;
    assert!(help.contains("`--drill`"), "{help}");
    let (real, _) = open(&app, "ddos Real flood").await;
    let (drill, drill_channel) = open(&app, "region-failure Quarterly DR test --drill").await;
    assert!(drill.contains("-drill-quarterly-dr-test"), "{drill}");
    let summary = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| c.params["channel"] == drill_channel.as_str())
        .map(|c| c.params["text"].as_str().unwrap().to_string());
    let summary = match summary {
        Some(s) => s,
        None => {
            app.slack.wait_for("pins.add", 2).await;
            app.slack
                .calls("chat.postMessage")
                .into_iter()
                .find(|c| c.params["channel"] == drill_channel.as_str())
                .unwrap()
                .params["text"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    assert!(summary.contains("*DRILL*"), "{summary}");
    // The real incident's users' notice comes; the drill's never does.
    app.advance_clock(std::time::Duration::from_secs(16 * 60));
    let notice = wait_for_event(&app, "incident.notice").await;
    assert_eq!(notice["incident"], real.as_str());
    app.advance_clock(std::time::Duration::from_secs(60 * 60));
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let notices = app.events_of_kind("incident.notice").await;
    assert!(
        notices.iter().all(|n| n["incident"] == real.as_str()),
        "{notices:#?}"
    );
    let opened = app
        .events_of_kind("incident.opened")
        .await
        .into_iter()
        .find(|e| e["incident"] == drill.as_str())
        .unwrap();
    assert!(opened["text"]
        .as_str()
        .unwrap()
        .starts_with("DRILL incident"));
    assert_eq!(opened["detail"]["drill"], true);
    let json: Value = serde_json::from_str(&export(&app, &drill, "json").await).unwrap();
    assert_eq!(json["summary"]["drill"], true);
    assert!(export(&app, &drill, "html").await.contains("DRILL"));
}
