//! An operator validating `drbot.toml` and starting the bot with a bad environment:
//! one clear line on stderr naming the file, key or value, and a non-zero exit.

use std::process::Output;

use tokio::process::Command;

use crate::support::*;

async fn drbot(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(args)
        .current_dir(dir)
        .env_remove("SLACK_SIGNING_SECRET")
        .env_remove("SLACK_BOT_TOKEN")
        .envs(env.iter().copied())
        .env(
            "DRBOT_DATABASE_URL",
            format!("sqlite://{}", dir.join("drbot.db").display()),
        )
        .output()
        .await
        .unwrap()
}

fn one_error_line(out: &Output) -> String {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "expected one error line, got: {err}");
    lines[0].to_string()
}

async fn check(config: &str) -> Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), config).unwrap();
    drbot(dir.path(), &["check-config"], &[]).await
}

#[tokio::test]
async fn the_example_configuration_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let out = drbot(
        dir.path(),
        &[
            "check-config",
            "--config",
            repo_root().join("drbot.example.toml").to_str().unwrap(),
        ],
        &[],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (2 services, 1 databases, 1 IP sets, 2 officers)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn an_unknown_key_is_an_error_naming_file_line_and_key() {
    let line = one_error_line(
        &check(&CONFIG.replace("ttl = \"15m\"", "ttl = \"15m\"\nauto_approve = true")).await,
    );
    assert!(
        line.starts_with("error: drbot.toml:11:1: unknown field `auto_approve`"),
        "{line}"
    );
}

#[tokio::test]
async fn a_bad_duration_is_an_error_naming_the_value() {
    let line =
        one_error_line(&check(&CONFIG.replace("ttl = \"15m\"", "ttl = \"15 minutes\"")).await);
    assert!(
        line.contains("drbot.toml:10:7: '15 minutes' is not a duration"),
        "{line}"
    );
}

#[tokio::test]
async fn a_missing_officer_list_is_an_error() {
    let line = one_error_line(
        &check(&CONFIG.replace("officers = [\"U0SECOFF1\", \"U0SECOFF2\"]", "")).await,
    );
    assert!(
        line.contains("drbot.toml") && line.contains("missing field `officers`"),
        "{line}"
    );
    let empty = one_error_line(
        &check(&CONFIG.replace("officers = [\"U0SECOFF1\", \"U0SECOFF2\"]", "officers = []")).await,
    );
    assert!(
        empty.contains("drbot.toml: approval.officers: no officers are configured"),
        "{empty}"
    );
}

#[tokio::test]
async fn a_bad_never_block_cidr_is_named() {
    let line = one_error_line(&check(&CONFIG.replace("10.0.0.0/8", "10.0.0.0/33")).await);
    assert!(
        line.contains("waf.never_block: '10.0.0.0/33' is not an IP address or CIDR"),
        "{line}"
    );
}

#[tokio::test]
async fn a_missing_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let line = one_error_line(
        &drbot(
            dir.path(),
            &["check-config", "--config", "nowhere.toml"],
            &[],
        )
        .await,
    );
    assert!(
        line.starts_with("error: nowhere.toml: cannot read the configuration file"),
        "{line}"
    );
}

#[tokio::test]
async fn serve_without_the_signing_secret_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), CONFIG).unwrap();
    let line =
        one_error_line(&drbot(dir.path(), &["serve"], &[("SLACK_BOT_TOKEN", BOT_TOKEN)]).await);
    assert!(
        line.starts_with("error: SLACK_SIGNING_SECRET is not set"),
        "{line}"
    );
}

#[tokio::test]
async fn serve_with_a_rejected_token_fails_fast_without_printing_it() {
    let slack = SlackStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), CONFIG).unwrap();
    let api = slack.api_url();
    let wrong = "xoxb-wrong-token-123";
    let out = drbot(
        dir.path(),
        &["serve"],
        &[
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("SLACK_BOT_TOKEN", wrong),
            ("DRBOT_SLACK_API_URL", &api),
            ("DRBOT_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let line = one_error_line(&out);
    assert!(
        line.contains("Slack rejected SLACK_BOT_TOKEN") && line.contains("invalid_auth"),
        "{line}"
    );
    let everything = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!everything.contains(wrong), "the token was printed");
    assert!(
        !everything.contains(SIGNING_SECRET),
        "the signing secret was printed"
    );
}

#[tokio::test]
async fn serve_with_a_non_bot_token_is_refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), CONFIG).unwrap();
    let line = one_error_line(
        &drbot(
            dir.path(),
            &["serve"],
            &[
                ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
                ("SLACK_BOT_TOKEN", "xapp-1-abc"),
            ],
        )
        .await,
    );
    assert!(
        line.contains("SLACK_BOT_TOKEN: must be a bot token starting with xoxb-"),
        "{line}"
    );
    assert!(!line.contains("xapp-1-abc"));
}

#[tokio::test]
async fn serve_with_slack_unreachable_says_so_in_one_line() {
    let slack = SlackStandIn::start().await;
    slack.fail("auth.test", crate::support::standin::Failure::ServerError);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), CONFIG).unwrap();
    let api = slack.api_url();
    let out = drbot(
        dir.path(),
        &["serve"],
        &[
            ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
            ("SLACK_BOT_TOKEN", BOT_TOKEN),
            ("DRBOT_SLACK_API_URL", &api),
            ("DRBOT_LISTEN", "127.0.0.1:0"),
        ],
    )
    .await;
    let line = one_error_line(&out);
    assert!(
        line.contains("cannot reach the Slack Web API") && line.contains("auth.test"),
        "{line}"
    );
    assert!(!line.contains(BOT_TOKEN));
}

#[test]
fn drbot_config_names_the_file_when_config_is_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mounted.toml");
    std::fs::write(&path, crate::support::CONFIG).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .arg("check-config")
        .current_dir(dir.path())
        .env("DRBOT_CONFIG", &path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("{}: ok", path.display())),
        "{stdout}"
    );
}

/// Scheduled copies less often than the RPO of the scenario that restores from them could
/// never meet it: check-config says so, naming the scenario; within it, the file is fine.
#[tokio::test]
async fn scheduled_copies_less_often_than_the_rpo_are_refused() {
    let example = std::fs::read_to_string(repo_root().join("drbot.example.toml")).unwrap();
    assert!(example.contains("every = \"1h\"\nkeep = \"7d\""));
    let out = check(&example).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let slow = example.replace(
        "every = \"1h\"\nkeep = \"7d\"",
        "every = \"2h\"\nkeep = \"7d\"",
    );
    let out = check(&slow).await;
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(
            "[rds.copies] every = \"2h\" is longer than the RPO of `region-failure` (1h)"
        ),
        "{said}"
    );
    // Too often, or a database that is not configured: refused with the key.
    let unknown = example.replace(
        "databases = [\"main\"]\nevery",
        "databases = [\"nope\"]\nevery",
    );
    let said = String::from_utf8_lossy(&check(&unknown).await.stderr).to_string();
    assert!(
        said.contains("rds.copies.databases: 'nope' is not a [[rds.databases]] name"),
        "{said}"
    );
}
