//! What a user typing `/dr …` sees: help, and a clear refusal with the usage for anything
//! wrong. Every command that reaches the router is recorded, accepted or refused.

use crate::support::*;

#[tokio::test]
async fn help_for_one_command_shows_its_usage_flags_and_approval_rule() {
    let app = spawn_app().await;
    let text = app.slash("help rollback").reply().await;
    assert!(
        text.contains("`/dr rollback <service> [--to <revision>]`"),
        "{text}"
    );
    assert!(text.contains("--to <revision>"), "{text}");
    assert!(text.contains("security officer must approve"), "{text}");
    assert!(text.contains("`rb`"), "aliases are shown: {text}");

    let group = app.slash("help incident").reply().await;
    for sub in [
        "incident open",
        "incident update",
        "incident resolve",
        "incident list",
    ] {
        assert!(group.contains(sub), "{sub} missing from {group}");
    }
    let two_words = app.slash("help incident open").reply().await;
    assert!(
        two_words.contains("`/dr incident open <scenario> <title…> [--drill]`"),
        "{two_words}"
    );

    let empty = app.slash("").reply().await;
    assert!(
        empty.contains("`/dr help [command]`"),
        "an empty /dr shows the list: {empty}"
    );
}

#[tokio::test]
async fn an_unknown_command_is_refused_and_recorded() {
    let app = spawn_app().await;
    let text = app.slash("rollbak api").reply().await;
    assert!(text.contains("`rollbak` is not a /dr command"), "{text}");
    assert!(text.contains("/dr help"), "{text}");
    let refused = app.events_of_kind("command.refused").await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["actor"], REQUESTER);
    assert_eq!(refused[0]["channel"], OPS_CHANNEL);
    assert!(refused[0]["detail"]["reason"]
        .as_str()
        .unwrap()
        .contains("rollbak"));
}

#[tokio::test]
async fn a_missing_argument_names_it_and_shows_the_usage() {
    let app = spawn_app().await;
    let text = app.slash("rollback").reply().await;
    assert_eq!(
        text,
        ":no_entry: missing &lt;service&gt;: a configured service name\nUsage: `/dr rollback &lt;service&gt; [--to &lt;revision&gt;]`\nDetails: `/dr help rollback`"
    );
}

#[tokio::test]
async fn an_extra_argument_is_refused() {
    let app = spawn_app().await;
    let text = app.slash("status now please").reply().await;
    assert!(
        text.starts_with(":no_entry: unexpected argument `now`"),
        "{text}"
    );
    assert!(text.contains("Usage: `/dr status`"), "{text}");
}

#[tokio::test]
async fn an_unknown_flag_is_refused_with_the_known_ones() {
    let app = spawn_app().await;
    let text = app.slash("rollback api --force").reply().await;
    assert!(
        text.contains("`/dr rollback` has no flag `--force`; its flags are --to"),
        "{text}"
    );
    let missing_value = app.slash("rollback api --to").reply().await;
    assert!(
        missing_value.contains("`--to` needs a value"),
        "{missing_value}"
    );
    let not_a_number = app.slash("rollback api --to latest").reply().await;
    assert!(
        not_a_number.contains("`latest` is not a whole number"),
        "{not_a_number}"
    );
}

#[tokio::test]
async fn typed_arguments_are_checked_before_any_action() {
    let app = spawn_app().await;
    let service = app.slash("rollback web").reply().await;
    assert!(
        service.contains("unknown service `web`; configured: `api`"),
        "{service}"
    );
    let address = app.slash("block-ip banana").reply().await;
    assert!(
        address.contains("`banana` is not an IPv4/IPv6 address or CIDR"),
        "{address}"
    );
    let duration = app.slash("block-ip 203.0.113.7 --for soon").reply().await;
    assert!(duration.contains("'soon' is not a duration"), "{duration}");
    let time = app.slash("pitr main --time yesterday").reply().await;
    assert!(time.contains("is not an RFC 3339 time"), "{time}");
    let id = app.slash("cancel 12").reply().await;
    assert!(id.contains("`12` is not an action id like A-12"), "{id}");
    let quote = app.slash("incident update \"unclosed").reply().await;
    assert!(quote.contains("never closed"), "{quote}");
    assert_eq!(app.events_of_kind("command.refused").await.len(), 6);
}

#[tokio::test]
async fn commands_outside_the_command_channels_are_refused() {
    let app = spawn_app().await;
    let text = app.slash("help").in_channel(OTHER_CHANNEL).reply().await;
    assert!(
        text.contains("cannot be used in this channel; use it in <#C0123OPS>"),
        "{text}"
    );
    let refused = app.events_of_kind("command.refused").await;
    assert_eq!(refused[0]["channel"], OTHER_CHANNEL);
}

/// The commands whose actions come in later issues. When an action lands, remove it here.
const NOT_YET_AVAILABLE: &[(&str, &str)] = &[];

#[tokio::test]
async fn every_command_of_the_spec_has_its_action() {
    assert!(
        NOT_YET_AVAILABLE.is_empty(),
        "still missing: {NOT_YET_AVAILABLE:?}"
    );
}

#[tokio::test]
async fn accepted_commands_are_recorded_with_actor_and_channel() {
    let app = spawn_app().await;
    app.slash("help rollback").as_user(OFFICER).reply().await;
    let accepted = app.events_of_kind("command.accepted").await;
    assert_eq!(accepted.len(), 1);
    assert_eq!(accepted[0]["actor"], OFFICER);
    assert_eq!(accepted[0]["text"], "/dr help rollback");
    assert_eq!(accepted[0]["detail"]["command"], "help");
}

#[tokio::test]
async fn every_shipped_command_file_names_an_existing_action() {
    let app = spawn_app().await;
    // The example configuration has every resource the shipped plans name.
    let example = repo_root().join("drbot.example.toml");
    let out = app
        .cli(&[
            "check-config",
            "--config",
            example.to_str().unwrap(),
            "--commands",
            repo_root().join("commands").to_str().unwrap(),
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok (37 commands, 5 scenarios: code-corruption, db-corruption, ddos, region-failure, security-breach; plans: code-corruption, ddos, region-failure)"));
}

#[tokio::test]
async fn a_command_file_naming_a_missing_action_is_rejected_by_check_config() {
    let app = spawn_app().await;
    let dir = app.dir.path().join("commands");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        repo_root().join("commands/help.toml"),
        dir.join("help.toml"),
    )
    .unwrap();
    std::fs::write(
        dir.join("reboot.toml"),
        "name = \"reboot\"\naction = \"reboot_everything\"\nsummary = \"x\"\nusage = \"reboot\"\n",
    )
    .unwrap();
    let out = app
        .cli(&[
            "check-config",
            "--config",
            "drbot.toml",
            "--commands",
            dir.to_str().unwrap(),
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("reboot.toml: action 'reboot_everything' does not exist"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test]
async fn an_operator_can_replace_the_commands_with_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("commands")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replace(
                "summary = \"Pending approval requests\"",
                "summary = \"What is waiting for a security officer\"\naliases = [\"waiting\"]",
            );
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    let app = spawn_app_with_args(CONFIG, &["--commands", dir.path().to_str().unwrap()]).await;
    let help = app.slash("help").reply().await;
    assert!(
        help.contains("What is waiting for a security officer"),
        "{help}"
    );
    let alias = app.slash("help waiting").reply().await;
    assert!(alias.contains("`/dr approvals`"), "{alias}");
}

#[tokio::test]
async fn a_command_file_that_changes_aws_and_names_no_approval_needs_an_officer() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("commands")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            // An operator's copy of `rollback` that forgot its approval line.
            let text = std::fs::read_to_string(&path)
                .unwrap()
                .replace("approval = \"officer\"\n", "");
            std::fs::write(dir.path().join(path.file_name().unwrap()), text).unwrap();
        }
    }
    let commands = dir.path().to_str().unwrap();
    let app = spawn_app_with_args(CONFIG, &["--commands", commands]).await;
    let out = app
        .cli(&[
            "check-config",
            "--config",
            "drbot.toml",
            "--commands",
            commands,
        ])
        .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.lines().any(|l| l.starts_with("note: ")
            && l.contains("rollback.toml: `rollback` changes AWS and names no `approval`, so it needs an officer's approval")),
        "{stdout}"
    );
    let help = app.slash("help rollback").reply().await;
    assert!(help.contains("security officer must approve"), "{help}");
    let reply = app.slash("rollback api").reply().await;
    assert!(
        reply.contains("The approval request will appear"),
        "{reply}"
    );
}
