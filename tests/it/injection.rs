//! Hostile text in every field a user types: whatever drbot shows of it — in the approval
//! request the officers read, incident announcements and officer DMs, status updates,
//! resolutions and timeline pages — is shown, never interpreted. No `<!channel>`, `<!here>`,
//! `<@…>` or `<url|label>` a user typed ever reaches Slack live.

use crate::support::aws::seed_ip_sets;
use crate::support::flow::*;
use crate::support::*;

const HOSTILE: &str = "<!channel> pre-approved by <@U0SECOFF1> <https://evil.example|docs>";

/// Every text drbot sent to Slack (messages, updates, DMs, ephemerals, response_url answers).
fn everything_sent(app: &TestApp) -> Vec<String> {
    let mut texts: Vec<String> = app
        .slack
        .all_calls()
        .iter()
        .filter_map(|c| c.params["text"].as_str().map(str::to_string))
        .collect();
    texts.extend(
        app.slack
            .response_posts()
            .iter()
            .filter_map(|(_, v)| v["text"].as_str().map(str::to_string)),
    );
    texts
}

fn assert_nothing_live(app: &TestApp) {
    for text in everything_sent(app) {
        for live in [
            "<!channel>",
            "<!here>",
            "<https://evil.example",
            "pre-approved by <@U0SECOFF1>",
            "<!everyone>",
        ] {
            assert!(
                !text.contains(live),
                "`{live}` reached Slack live in: {text}"
            );
        }
    }
}

#[tokio::test]
async fn a_hostile_reason_reaches_the_officers_as_text() {
    let sets = seed_ip_sets(false, vec![]).await;
    let config = format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n[waf]\nnever_block = [\"10.0.0.0/8\"]\n{}",
        sets.config()
    );
    let app = spawn_app_with(&config).await;
    let ts = ask(
        &app,
        &format!("block-ip 203.0.113.7 --reason \"{HOSTILE}\""),
        REQUESTER,
    )
    .await;
    let request = posted_message(&app, &ts);
    let text = request.params["text"].as_str().unwrap();
    assert!(
        text.contains("Reason: &lt;!channel&gt; pre-approved by &lt;@U0SECOFF1&gt; &lt;https://evil.example|docs&gt;"),
        "{text}"
    );
    // Slack's own escaping of what the user typed is undone once and redone once.
    app.slash("block-ip 203.0.113.8 --reason \"&lt;!here&gt; &amp; more\"")
        .reply()
        .await;
    app.slash("approvals").as_user(OFFICER).reply().await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let executed = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(executed["kind"], "request.executed", "{executed}");
    // The list of blocks shows the reason too (answered inline, or through response_url).
    let listed = app.slash("blocked").reply().await;
    let listed = if listed.contains("203.0.113.7") {
        listed
    } else {
        wait_for_responses(&app, 1).await.join("\n")
    };
    assert!(listed.contains("reason: &lt;!channel&gt;"), "{listed}");
    let refused = app.slash("unknown-<!channel>").reply().await;
    assert!(
        refused.contains("`unknown-&lt;!channel&gt;` is not a /dr command"),
        "{refused}"
    );
    assert_nothing_live(&app);
}

#[tokio::test]
async fn hostile_incident_titles_updates_and_summaries_stay_text_everywhere() {
    let app = spawn_app().await;
    let (id, channel) = open_incident(&app, "ddos <!here> the site is down <!channel>").await;
    let update = app
        .slash(&format!("incident update {HOSTILE}"))
        .in_channel(&channel)
        .reply()
        .await;
    assert!(update.contains("recorded"), "{update}");
    app.slash("timeline").in_channel(&channel).reply().await;
    app.slash(&format!("incident resolve {HOSTILE}"))
        .in_channel(&channel)
        .reply()
        .await;
    // Give the background posts (announcements, DMs, pages) a moment to go out.
    for _ in 0..40 {
        if app
            .slack
            .calls("chat.postMessage")
            .iter()
            .any(|c| c.params["text"].as_str().unwrap_or("").contains("resolved"))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let dms = app.slack.calls("chat.postMessage");
    assert!(
        dms.iter().any(|c| c.params["text"]
            .as_str()
            .unwrap_or("")
            .contains("&lt;!here&gt; the site is down &lt;!channel&gt;")),
        "the title is shown as text"
    );
    assert_nothing_live(&app);
    // The timeline keeps what was typed (escaped where it is shown, once).
    let out = app
        .cli(&["timeline", "export", "--incident", &id, "--format", "json"])
        .await;
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(json.contains("Summary: <!channel> pre-approved"), "{json}");
    assert!(!json.contains("&lt;"), "recorded text was escaped: {json}");
}
