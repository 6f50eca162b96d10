//! An insider with write access to the database but not the audit key tries to rewrite the
//! keyed log: downgrade it to plain hashes, cut its tail, forge checkpoints. The key, and the
//! checkpoints drbot posted in Slack, catch each; replicas with different keys refuse to
//! interleave two chains.

use sqlx::Connection;

use crate::support::insider::{append_as, drop_guards, rehash_plain};
use crate::support::*;

const KEY: &str = "k3y-that-only-drbot-has";
const AUDITED: &str = "[audit]\ncheckpoint_channel = \"C0AUDIT01\"\ncheckpoint_every = \"1s\"\n";

/// `drbot audit verify ARGS` as the auditor runs it: with the key, and with the bot token
/// to read drbot's checkpoints back from Slack.
async fn verify(app: &TestApp, key: Option<&str>, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"));
    cmd.args(["audit", "verify"])
        .args(args)
        .current_dir(app.dir.path())
        .env("DRBOT_DATABASE_URL", app.db_url())
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("DRBOT_SLACK_API_URL", app.slack.api_url());
    match key {
        Some(k) => cmd.env("DRBOT_AUDIT_KEY", k),
        None => cmd.env_remove("DRBOT_AUDIT_KEY"),
    };
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

async fn recorded(app: &TestApp) -> i64 {
    let mut db = app.db().await;
    sqlx::query_scalar("SELECT COUNT(*) FROM checkpoints")
        .fetch_one(&mut db)
        .await
        .unwrap()
}

async fn keyed_app(config: &str) -> TestApp {
    let app = spawn_app_custom(config, &[], &[("DRBOT_AUDIT_KEY", KEY)]).await;
    app.slash("help").reply().await;
    app.slash("rollback nowhere").reply().await;
    app.slash("help status").as_user(OFFICER).reply().await;
    app
}

#[tokio::test]
async fn a_keyed_chain_downgraded_to_plain_hashes_fails_verification_with_the_key() {
    let mut app = keyed_app(CONFIG).await;
    let (code, said) = verify(&app, Some(KEY), &[]).await;
    assert_eq!(code, Some(0), "{said}");
    app.kill().await;

    // The insider renames the keyed marker, edits an event and recomputes every hash
    // without the key, then removes drbot's signed checkpoints.
    let mut db = app.db().await;
    drop_guards(&mut db).await;
    rehash_plain(&mut db, |seq, kind, text| {
        if kind == "audit.keyed" {
            *kind = "command".into();
        }
        if seq == 3 {
            *text = "nothing happened".into();
        }
    })
    .await;
    sqlx::query("DELETE FROM checkpoints")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    // Without the key the chain looks whole; with it, it is not the keyed chain.
    let (code, _) = verify(&app, None, &[]).await;
    assert_eq!(code, Some(0));
    let (code, said) = verify(&app, Some(KEY), &[]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("not keyed") && said.contains("downgrade"),
        "{said}"
    );
}

#[tokio::test]
async fn a_log_cut_short_is_caught_by_the_checkpoints_drbot_posted_in_slack() {
    let mut app = keyed_app(&format!("{CONFIG}\n{AUDITED}")).await;
    let head = app.events().await.last().unwrap()["seq"].as_i64().unwrap();
    // drbot posts a signed checkpoint of the head in the audit channel.
    let posted = format!("): event {head} ·");
    let slack = app.slack.clone();
    let seen = app
        .run_time_until(|| {
            slack.calls("chat.postMessage").iter().any(|c| {
                c.params["channel"] == "C0AUDIT01"
                    && c.params["text"].as_str().unwrap_or("").contains(&posted)
            })
        })
        .await;
    assert!(seen, "no checkpoint of event {head} was posted");
    app.kill().await;

    // The insider cuts the tail and every checkpoint the database held.
    let mut db = app.db().await;
    drop_guards(&mut db).await;
    sqlx::raw_sql("DELETE FROM events WHERE seq >= 3; DELETE FROM checkpoints;")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();

    // What is left verifies on its own, even with the key (saying Slack was not read)...
    let alone = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["audit", "verify"])
        .current_dir(app.dir.path())
        .env("DRBOT_DATABASE_URL", app.db_url())
        .env("DRBOT_AUDIT_KEY", KEY)
        .env_remove("SLACK_BOT_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(alone.status.success());
    let said = String::from_utf8_lossy(&alone.stdout);
    assert!(said.contains("SLACK_BOT_TOKEN is not set"), "{said}");
    // ...but not against what drbot posted in Slack.
    let (code, said) = verify(&app, Some(KEY), &["--config", "drbot.toml"]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("the log is cut short") && said.contains("posted in Slack C0AUDIT01"),
        "{said}"
    );
    // The evidence archive says so too.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args([
            "evidence",
            "export",
            "--out",
            "e.tar",
            "--config",
            "drbot.toml",
        ])
        .current_dir(app.dir.path())
        .env("DRBOT_DATABASE_URL", app.db_url())
        .env("DRBOT_AUDIT_KEY", KEY)
        .env("SLACK_BOT_TOKEN", BOT_TOKEN)
        .env("DRBOT_SLACK_API_URL", app.slack.api_url())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let archive = std::fs::read(app.dir.path().join("e.tar")).unwrap();
    let archive = String::from_utf8_lossy(&archive);
    assert!(
        archive.contains("VERIFICATION FAILED: the log is cut short"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn checkpoints_are_append_only_and_an_unsigned_one_is_a_failure() {
    let mut app = keyed_app(CONFIG).await;
    // An export with the key records a signed checkpoint.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["timeline", "export", "--incident", "all"])
        .current_dir(app.dir.path())
        .env("DRBOT_DATABASE_URL", app.db_url())
        .env("DRBOT_AUDIT_KEY", KEY)
        .output()
        .await
        .unwrap();
    assert!(out.status.success());
    // An export without it records none (it would be unsigned).
    let signed = recorded(&app).await;
    assert!(signed >= 1);
    let _ = app.cli(&["timeline", "export", "--incident", "all"]).await;
    assert_eq!(recorded(&app).await, signed);
    let (code, said) = verify(&app, Some(KEY), &[]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("checkpoint(s) match"), "{said}");
    app.kill().await;

    let mut db = app.db().await;
    let refused = sqlx::query("UPDATE checkpoints SET signature = NULL")
        .execute(&mut db)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let refused = sqlx::query("DELETE FROM checkpoints")
        .execute(&mut db)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");

    // With the guards off, an unsigned checkpoint (the insider's own) is a failure.
    drop_guards(&mut db).await;
    sqlx::query("UPDATE checkpoints SET signature = NULL")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    let (code, said) = verify(&app, Some(KEY), &[]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("carries no signature"), "{said}");
}

#[tokio::test]
async fn a_replica_with_another_key_refuses_to_start() {
    let mut app = keyed_app(CONFIG).await;
    app.kill().await;
    let started = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["serve", "--config", "drbot.toml"])
        .current_dir(app.dir.path())
        .envs(serve_env(app.dir.path(), &app.slack))
        .env("DRBOT_AUDIT_KEY", "another-key")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(30), started)
        .await
        .expect("drbot refuses at once, instead of serving with another key")
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not the key the audit chain is keyed with") && err.contains("key id"),
        "{err}"
    );
}

#[tokio::test]
async fn during_a_rolling_update_a_replica_without_the_key_refuses_to_append_after_one_with_it() {
    let app = spawn_app().await;
    app.slash("help").reply().await;
    let before = app.events().await.len();
    // A replica started with a key keys the chain (as `serve` does at its start).
    let mut db = app.db().await;
    let key_id = drbot::store::key_id(KEY.as_bytes());
    append_as(
        &mut db,
        Some(KEY),
        "audit.keyed",
        serde_json::json!({"key_id": key_id}),
    )
    .await;
    db.close().await.unwrap();

    // The old replica, without the key, records nothing more and says why.
    let reply = app.slash("help").reply().await;
    assert!(reply.contains("could not record"), "{reply}");
    assert_eq!(app.events().await.len(), before + 1);
    let logs = app.logs().join("\n");
    assert!(
        logs.contains("refusing to append to the audit chain")
            && logs.contains("this replica has no DRBOT_AUDIT_KEY"),
        "{logs}"
    );
}

#[tokio::test]
async fn a_replica_with_the_key_refuses_to_append_after_one_without_it() {
    let app = keyed_app(CONFIG).await;
    let before = app.events().await.len();
    let mut db = app.db().await;
    append_as(&mut db, None, "command", serde_json::json!({})).await;
    db.close().await.unwrap();

    let reply = app.slash("help").reply().await;
    assert!(reply.contains("could not record"), "{reply}");
    assert_eq!(app.events().await.len(), before + 1);
    assert!(app
        .logs()
        .join("\n")
        .contains("was appended without a key by another replica"));
}
