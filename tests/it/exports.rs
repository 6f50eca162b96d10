//! The auditor's and the incident lead's view of an incident after the fact: `drbot timeline
//! export` in HTML, Markdown and JSON, parsed back. A scripted incident — opened with a
//! hostile title, a hostile status update, a rollback approved by an officer, resolved —
//! exports with people and channels by name beside their ids, Slack markup rendered (never
//! interpreted as HTML or Markdown), a summary whose numbers match the incident, and a picture.

use serde_json::Value;

use crate::incidents::{export, visible_text};
use crate::support::aws::seed_service;
use crate::support::flow::*;
use crate::support::*;

const HOSTILE: &str =
    "<script>alert(1)</script> <!channel> *all* [docs](http://evil.example) | # _x_";

#[tokio::test]
async fn an_incident_exports_with_names_rendered_text_a_summary_and_a_picture() {
    let svc = seed_service(2, 1).await;
    let app = spawn_app_with(&format!(
        "[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n[ecs]\npoll_interval = \"1s\"\n{}",
        svc.config()
    ))
    .await;
    let (id, channel) = open_incident(&app, "code-corruption Bad deploy").await;
    app.slash(&format!("incident update {HOSTILE}"))
        .in_channel(&channel)
        .reply()
        .await;
    let ts = ask_in(&app, "rollback api", REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    app.slash("incident resolve rolled back")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "incident.resolved").await;

    // drbot learns names beside the request path (users.info, conversations.info), every
    // two seconds of its time.
    let learned = async {
        for _ in 0..100 {
            let json: Value = serde_json::from_str(&export(&app, &id, "json").await).unwrap();
            if json["names"][REQUESTER] == "Dana Smith" && json["names"][OFFICER] == "Sam Okafor" {
                return json;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        serde_json::from_str(&export(&app, &id, "json").await).unwrap()
    };
    let json = app.with_time_running(learned).await;
    assert_eq!(
        json["names"][REQUESTER], "Dana Smith",
        "{:#}",
        json["names"]
    );
    assert_eq!(json["names"][OFFICER], "Sam Okafor");

    // The summary's numbers, against the events themselves.
    let s = &json["summary"];
    let events = json["events"].as_array().unwrap();
    let at = |kind: &str| {
        let e = events.iter().find(|e| e["kind"] == kind).unwrap();
        chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap()
    };
    assert_eq!(s["incident"], id.as_str());
    assert_eq!(s["scenario"], "code-corruption");
    assert_eq!(s["rto_secs"], 3600);
    let recovery = (at("incident.resolved") - at("incident.opened")).num_seconds();
    assert_eq!(s["recovery_secs"], recovery);
    assert_eq!(s["rto_met"], true);
    assert_eq!(s["rto_margin_secs"], 3600 - recovery);
    let action = &s["actions"][0];
    assert_eq!(action["label"], "A-1");
    assert_eq!(action["command"], "rollback api");
    assert_eq!(action["requester"], REQUESTER);
    assert_eq!(action["approvers"], serde_json::json!([OFFICER]));
    assert_eq!(action["outcome"], "executed");
    let wait = (at("approval.approved") - at("approval.requested")).num_seconds();
    assert_eq!(action["wait_secs"], wait);
    assert!(s["people"]
        .as_array()
        .unwrap()
        .contains(&Value::from(OFFICER)));
    // Both renderings of each text: raw and plain.
    let update = events
        .iter()
        .find(|e| e["kind"] == "incident.update")
        .unwrap();
    assert_eq!(update["text"], HOSTILE);
    assert_eq!(
        update["text_plain"], HOSTILE,
        "typed text is shown exactly as typed"
    );
    let approved = events
        .iter()
        .find(|e| e["kind"] == "approval.approved")
        .unwrap();
    assert!(
        approved["text_plain"]
            .as_str()
            .unwrap()
            .contains("approved by @Sam Okafor"),
        "{approved}"
    );
    assert!(json["head"]["hash"].as_str().unwrap().len() == 64);

    // HTML: names, rendered markup, hostile text inert, summary and picture.
    let html = export(&app, &id, "html").await;
    let visible = visible_text(&html);
    assert!(
        visible.contains("Dana Smith (U0ONCALL1)"),
        "names beside ids"
    );
    assert!(visible.contains("Sam Okafor (U0SECOFF1)"));
    assert!(
        !html.contains("<script>alert"),
        "hostile text became markup"
    );
    assert!(visible.contains(HOSTILE), "hostile text is shown as typed");
    assert!(!html.contains("href="), "no links anywhere");
    assert!(html.contains("<strong>"), "mrkdwn bold rendered");
    assert!(
        html.contains("✅") || html.contains("⏳") || html.contains("🚨"),
        "emoji rendered"
    );
    assert!(visible.contains("RTO met with"), "{visible}");
    assert!(html.contains("<svg class=\"strip\""));
    assert!(html.contains("class=\"rto\""), "the RTO deadline line");
    assert!(html.contains("class=\"wait\""), "the approval wait bar");
    assert!(visible.contains(&format!("chain head: event {}", json["head"]["seq"])));
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::write(dir.join("incident-export.html"), &html).unwrap();

    // Markdown: the same, every Markdown control character of the typed text escaped.
    let md = export(&app, &id, "md").await;
    assert!(md.contains("Dana Smith \\(U0ONCALL1\\)"), "{md}");
    assert!(
        md.contains("\\<script\\>alert\\(1\\)\\</script\\> \\<\\!channel\\> \\*all\\* \\[docs\\]\\(http\\://evil.example\\) \\| \\# \\_x\\_"),
        "{md}"
    );
    assert!(md.contains("- **Recovery time:**"), "{md}");
    assert!(md.contains("| A\\-1 |") || md.contains("| A-1 |"), "{md}");
}
