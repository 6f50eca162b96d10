//! What the officer approves is what runs: the approval request shows the real change first,
//! in drbot's own words and never cut, and what the requester typed cannot pass for drbot's
//! text. Played as the black-box try that found it: a reason that breaks out of the command
//! echo's code span and types a fake bold `*Block*` line for another address.

use serde_json::Value;

use crate::support::aws::seed_ip_sets;
use crate::support::flow::*;
use crate::support::*;

async fn app_with_sets() -> TestApp {
    let sets = seed_ip_sets(false, vec![]).await;
    spawn_app_with(&format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n[waf]\nnever_block = [\"10.0.0.0/8\"]\n{}",
        sets.config()
    ))
    .await
}

/// The request message's sections as Slack shows them: (text type, text), in order.
fn sections(app: &TestApp, ts: &str) -> Vec<(String, String)> {
    let blocks = posted_message(app, ts).params["blocks"].clone();
    let blocks: Value = match blocks {
        Value::String(s) => serde_json::from_str(&s).unwrap(),
        other => other,
    };
    blocks
        .as_array()
        .expect("the request is posted with blocks")
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| {
            (
                b["text"]["type"].as_str().unwrap().to_string(),
                b["text"]["text"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_reason_that_types_a_fake_plan_line_shows_as_the_requesters_text_after_the_real_plan() {
    let app = app_with_sets().await;
    let ts = ask(
        &app,
        "block-ip --reason \"x` \n*Block* `203.0.113.77` (a single scraper)\" 198.51.100.0/24",
        REQUESTER,
    )
    .await;
    let shown = sections(&app, &ts);
    let plan = shown
        .iter()
        .position(|(_, t)| t.contains("`198.51.100.0/24`"))
        .unwrap_or_else(|| panic!("the real change is shown: {shown:#?}"));
    let typed = shown
        .iter()
        .position(|(kind, _)| kind == "plain_text")
        .expect("what the requester typed has a section of its own");
    assert!(plan < typed, "the plan comes first: {shown:#?}");
    assert!(
        shown[typed].1.contains("203.0.113.77") && shown[typed].1.contains("⏎"),
        "the requester's text is shown, its line break as ⏎: {shown:#?}"
    );
    for (kind, text) in &shown {
        if kind == "mrkdwn" {
            assert!(
                !text.contains("`203.0.113.77`") && !text.contains("*Block* `203"),
                "a fake plan line rendered as drbot's own text: {text}"
            );
        }
    }
    // The hash, the expiry and who may approve are visible, in drbot's own section.
    assert!(
        shown.iter().any(|(kind, t)| kind == "mrkdwn"
            && t.contains("Plan `")
            && t.contains("expires")
            && t.contains("<@U0SECOFF1>")),
        "{shown:#?}"
    );
}

#[tokio::test]
async fn a_reason_long_enough_to_push_the_plan_out_of_view_is_refused_before_any_request() {
    let app = app_with_sets().await;
    let filler = "lorem ipsum ".repeat(250);
    let reply = app
        .slash(&format!(
            "block-ip --reason \"x *Block* 203.0.113.77 {filler}\" 198.51.100.0/24"
        ))
        .reply()
        .await;
    assert!(
        reply.contains("too long") && reply.contains("at most 300"),
        "{reply}"
    );
    assert!(!app.events_of_kind("command.refused").await.is_empty());
    assert!(app.events_of_kind("request.pending").await.is_empty());
    assert!(app.slack.calls("chat.postMessage").is_empty());
    // An incident title too.
    let reply = app
        .slash(&format!("incident open ddos {filler}"))
        .reply()
        .await;
    assert!(reply.contains("at most 300"), "{reply}");
}

#[tokio::test]
async fn a_long_plan_is_split_over_sections_and_never_cut() {
    let app = app_with_sets().await;
    let addresses: Vec<String> = (1..=120).map(|i| format!("198.51.100.{i}")).collect();
    let ts = ask(
        &app,
        &format!("block-ip {} --reason \"scraper farm\"", addresses.join(" ")),
        REQUESTER,
    )
    .await;
    let shown = sections(&app, &ts);
    let drbot: Vec<&String> = shown
        .iter()
        .filter(|(kind, _)| kind == "mrkdwn")
        .map(|(_, t)| t)
        .collect();
    assert!(
        drbot.len() > 3,
        "the plan needed more than one section: {shown:#?}"
    );
    for text in &drbot {
        assert!(text.chars().count() <= 3000, "a section over Slack's limit");
        assert!(!text.ends_with('…'), "a section was cut");
    }
    let all = drbot
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for a in &addresses {
        assert!(all.contains(&format!("`{a}/32`")), "{a} is not shown");
    }
}
