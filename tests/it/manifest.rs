//! Whoever creates the Slack app from `deploy/slack/manifest.yml` never meets
//! `missing_scope`: every Web API method drbot's code calls is covered by a declared scope.

use crate::support::standin::METHOD_SCOPES;
use crate::support::*;

/// slack-morphism session functions → Slack Web API method.
const SESSION_FUNCTIONS: &[(&str, &str)] = &[
    ("auth_test", "auth.test"),
    ("chat_post_message", "chat.postMessage"),
    ("chat_post_ephemeral", "chat.postEphemeral"),
    ("chat_update", "chat.update"),
    ("chat_get_permalink", "chat.getPermalink"),
    ("reactions_add", "reactions.add"),
    ("conversations_create", "conversations.create"),
    ("conversations_invite", "conversations.invite"),
    ("conversations_set_topic", "conversations.setTopic"),
    ("conversations_info", "conversations.info"),
    ("conversations_list", "conversations.list"),
    ("conversations_open", "conversations.open"),
    ("pins_add", "pins.add"),
    ("conversations_history", "conversations.history"),
    ("conversations_replies", "conversations.replies"),
    ("users_info", "users.info"),
    ("bots_info", "bots.info"),
    ("get_upload_url_external", "files.getUploadURLExternal"),
    // The content goes to the URL files.getUploadURLExternal gave (same scope).
    ("files_upload_via_url", "files.getUploadURLExternal"),
    (
        "files_complete_upload_external",
        "files.completeUploadExternal",
    ),
    ("views_publish", "views.publish"),
];

fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every `session.<function>(` call in `src/`.
fn session_calls() -> Vec<(String, String)> {
    let mut files = Vec::new();
    rust_files(&repo_root().join("src"), &mut files);
    let mut calls = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("session.") {
            rest = &rest[i + "session.".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            if rest[name.len()..].starts_with('(') {
                calls.push((name, file.display().to_string()));
            }
        }
    }
    calls
}

#[test]
fn every_web_api_method_the_code_calls_is_covered_by_a_manifest_scope() {
    let scopes = manifest_bot_scopes();
    let calls = session_calls();
    assert!(
        calls.iter().any(|(f, _)| f == "auth_test"),
        "the scan found no calls: {calls:?}"
    );
    for (function, file) in calls {
        let method = SESSION_FUNCTIONS
            .iter()
            .find(|(f, _)| *f == function)
            .map(|(_, m)| *m)
            .unwrap_or_else(|| {
                panic!(
                    "{file} calls session.{function}(): add its Slack method to SESSION_FUNCTIONS"
                )
            });
        let needed = METHOD_SCOPES
            .iter()
            .find(|(m, _)| *m == method)
            .unwrap_or_else(|| panic!("{method}: add its scope to the stand-in's METHOD_SCOPES"))
            .1;
        if let Some(scope) = needed {
            assert!(
                scopes.iter().any(|s| s == scope),
                "{method} (called in {file}) needs {scope}, which the manifest lacks"
            );
        }
    }
}

#[test]
fn the_manifest_declares_the_command_events_and_interactivity() {
    let text = std::fs::read_to_string(repo_root().join("deploy/slack/manifest.yml")).unwrap();
    for needle in [
        "command: /dr",
        "/slack/commands",
        "request_url: https://drbot.example.com/slack/events",
        "- reaction_added",
        "- reaction_removed",
        "- app_mention",
        "is_enabled: true",
        "/slack/interactions",
        "- commands",
    ] {
        assert!(text.contains(needle), "manifest lacks {needle}");
    }
}

#[tokio::test]
async fn a_session_of_commands_and_events_meets_no_missing_scope() {
    let app = spawn_app().await;
    app.slash("help").reply().await;
    app.event(
        "Ev0SCOPES1",
        serde_json::json!({"type": "app_mention", "user": REQUESTER, "channel": OPS_CHANNEL, "text": "hi", "ts": "1764220000.000200"}),
        None,
    )
    .await;
    app.slack.wait_for("chat.postMessage", 1).await;
    assert!(
        app.slack.violations().is_empty(),
        "{:?}",
        app.slack.violations()
    );
    assert!(app.warnings().is_empty(), "{:#?}", app.warnings());
}
