//! Who may run commands: `[access]` names users and Slack user groups, and holds in every
//! channel — the incident channels drbot creates (private by default) included.

use crate::support::flow::*;
use crate::support::*;

fn guarded() -> String {
    CONFIG.replace(
        "[approval]",
        "[access]\nresponders = [\"U0ONCALL1\", \"S0SRETEAM\"]\nrefresh = \"10s\"\n\n[approval]",
    )
}

async fn groups_read(app: &TestApp) {
    let slack = app.slack.clone();
    let read = app
        .run_time_until(|| {
            slack
                .calls("usergroups.users.list")
                .iter()
                .any(|c| c.answer["ok"] == true)
        })
        .await;
    assert!(read, "the user group was never read");
}

#[tokio::test]
async fn only_the_named_users_groups_and_officers_run_commands_in_any_channel() {
    let app = spawn_app_with(&guarded()).await;
    app.slack.set_group("S0SRETEAM", &["U0SRE0002"]);
    groups_read(&app).await;

    // Someone not named is refused, says why and how, and nothing is queued.
    let reply = app
        .slash("incident open ddos not mine")
        .as_user("U0OUTSIDER")
        .reply()
        .await;
    assert!(
        reply.contains("not allowed to run drbot commands") && reply.contains("[access]"),
        "{reply}"
    );
    // `help` stays open to everyone.
    let help = app.slash("help").as_user("U0OUTSIDER").reply().await;
    assert!(!help.contains("not allowed"), "{help}");

    // The named user, a group member and an officer may.
    let (_, channel) = open_incident(&app, "ddos edge flood").await;
    let reply = app
        .slash("incident update traffic is shifting")
        .as_user("U0SRE0002")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("recorded"), "{reply}");
    let reply = app
        .slash("incident update officer here")
        .as_user(OFFICER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("recorded"), "{reply}");

    // In the incident channel, too, an outsider who got in cannot resolve it.
    let reply = app
        .slash("incident resolve all good")
        .as_user("U0OUTSIDER")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("not allowed"), "{reply}");
    assert!(app.events_of_kind("incident.resolved").await.is_empty());
    let refused = app.events_of_kind("command.refused").await;
    assert_eq!(refused.len(), 2, "{refused:#?}");
    assert_eq!(app.slack.calls("conversations.create").len(), 1);
}

#[tokio::test]
async fn a_group_slack_cannot_list_yet_refuses_its_members_saying_so() {
    let app = spawn_app_with(&guarded()).await;
    // Slack does not know the group (yet): its members are refused, the named user is not.
    let slack = app.slack.clone();
    app.run_time_until(|| !slack.calls("usergroups.users.list").is_empty())
        .await;
    let reply = app
        .slash("incident open ddos group member")
        .as_user("U0SRE0002")
        .reply()
        .await;
    assert!(reply.contains("could not read the members"), "{reply}");
    let reply = app
        .slash("incident open ddos named user")
        .as_user(REQUESTER)
        .reply()
        .await;
    assert!(reply.starts_with("Opening a `"), "{reply}");
}

#[tokio::test]
async fn incident_channels_are_private_unless_configured_public() {
    let app = spawn_app().await;
    open_incident(&app, "ddos private by default").await;
    let created = app.slack.calls("conversations.create");
    assert_eq!(
        created[0].params["is_private"], true,
        "{:?}",
        created[0].params
    );

    let public = format!("{CONFIG}\n[incidents]\nprivate = false\n");
    let app = spawn_app_with(&public).await;
    open_incident(&app, "ddos public on purpose").await;
    let created = app.slack.calls("conversations.create");
    assert_ne!(
        created[0].params["is_private"], true,
        "{:?}",
        created[0].params
    );
}

#[tokio::test]
async fn access_names_must_be_slack_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("drbot.toml");
    std::fs::write(
        &path,
        CONFIG.replace(
            "[approval]",
            "[access]\nresponders = [\"@sre-team\"]\n\n[approval]",
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("access.responders") && err.contains("user group ID"),
        "{err}"
    );
}
