//! An auditor checking the evidence: the chain verifies, exports show every event, and any
//! hand edit of the store is caught and named.

use sqlx::Connection;

use crate::support::*;

/// What someone with write access to the database types to take a guard off.
fn drop_trigger(name: &str) -> String {
    if on_postgres() {
        format!("DROP TRIGGER {name} ON events")
    } else {
        format!("DROP TRIGGER {name}")
    }
}

async fn app_with_some_history() -> TestApp {
    let app = spawn_app().await;
    app.slash("help").reply().await;
    app.slash("rollback nowhere").reply().await;
    app.slash("help status").as_user(OFFICER).reply().await;
    app
}

#[tokio::test]
async fn the_chain_verifies_and_counts_every_event() {
    let app = app_with_some_history().await;
    let out = app.cli(&["audit", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .starts_with("audit chain intact: 3 events verified"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn editing_a_stored_event_by_hand_breaks_verification_at_that_event() {
    let app = app_with_some_history().await;
    let mut db = app.db().await;
    // The log refuses edits; someone with file access drops the guard first.
    let refused = sqlx::query("UPDATE events SET text = 'nothing happened' WHERE seq = 2")
        .execute(&mut db)
        .await;
    assert!(
        refused.is_err(),
        "the append-only guard let an UPDATE through"
    );
    sqlx::raw_sql(&format!(
        "{}; UPDATE events SET text = 'nothing happened' WHERE seq = 2;",
        drop_trigger("events_no_update")
    ))
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();

    let out = app.cli(&["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("audit chain broken at event 2: its content does not match its hash"),
        "{err}"
    );
}

#[tokio::test]
async fn deleting_a_stored_event_breaks_verification() {
    let app = app_with_some_history().await;
    let mut db = app.db().await;
    sqlx::raw_sql(&format!(
        "{}; DELETE FROM events WHERE seq = 2;",
        drop_trigger("events_no_delete")
    ))
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    let out = app.cli(&["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("audit chain broken at event 3: expected event 2 here"));
}

#[tokio::test]
async fn exports_show_every_event_in_order_with_hashes_and_the_verification() {
    let app = app_with_some_history().await;
    let events = app.events().await;
    assert_eq!(events.len(), 3);
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["seq"], i as i64 + 1);
        assert_eq!(e["hash"].as_str().unwrap().len(), 64);
        if i > 0 {
            assert_eq!(e["prev_hash"], events[i - 1]["hash"]);
        }
    }
    assert_eq!(events[1]["kind"], "command.refused");

    let md = app
        .cli(&["timeline", "export", "--incident", "all", "--format", "md"])
        .await;
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(
        md.contains("| 2 |") && md.contains("/dr rollback nowhere"),
        "{md}"
    );
    assert!(
        md.trim_end()
            .ends_with("_audit chain intact: 3 events verified; chain head: event 3, hash ")
            || md.contains("_audit chain intact: 3 events verified; chain head: event 3, hash "),
        "{md}"
    );

    let html = app
        .cli(&[
            "timeline",
            "export",
            "--incident",
            "all",
            "--format",
            "html",
        ])
        .await;
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(
        html.contains("id=\"event-3\"") && html.contains("audit chain intact"),
        "{html}"
    );
}

#[tokio::test]
async fn exporting_an_unknown_incident_is_an_error() {
    let app = app_with_some_history().await;
    let out = app
        .cli(&["timeline", "export", "--incident", "inc-20260101-nope"])
        .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no events recorded for this incident"));
}

/// The chain's head as `SEQ:HASH`, the way drbot posts it in its checkpoints.
async fn head(app: &TestApp) -> String {
    let events = app.events().await;
    let last = events.last().unwrap();
    format!("{}:{}", last["seq"], last["hash"].as_str().unwrap())
}

#[tokio::test]
async fn deleting_the_newest_events_is_detected_by_a_checkpoint() {
    let app = app_with_some_history().await;
    let checkpoint = head(&app).await;
    // Someone removes the newest events (and drbot's own record of its checkpoints).
    let mut db = app.db().await;
    crate::support::insider::drop_guards(&mut db).await;
    sqlx::raw_sql("DELETE FROM events WHERE seq >= 2; DELETE FROM checkpoints;")
        .execute(&mut db)
        .await
        .unwrap();
    db.close().await.unwrap();
    // What is left is a valid chain on its own...
    let alone = app.cli(&["audit", "verify"]).await;
    assert!(alone.status.success());
    // ...but not against the checkpoint kept in Slack.
    let out = app
        .cli(&["audit", "verify", "--checkpoint", &checkpoint])
        .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the log is cut short"), "{err}");
}

#[tokio::test]
async fn drbot_records_and_posts_checkpoints_and_verify_uses_them() {
    let app = spawn_app_with(&format!(
        "{CONFIG}\n[audit]\ncheckpoint_channel = \"C0AUDIT01\"\ncheckpoint_every = \"1s\"\n"
    ))
    .await;
    app.slash("help").reply().await;
    let posted = app.slack.wait_for("chat.postMessage", 1).await;
    let text = posted
        .iter()
        .find(|c| c.params["channel"] == "C0AUDIT01")
        .map(|c| c.params["text"].as_str().unwrap().to_string())
        .unwrap_or_default();
    assert!(text.contains("Audit checkpoint"), "{posted:?}");
    let out = app.cli(&["audit", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("checkpoint(s) match"));

    // More happens, an export is taken (every export is a checkpoint), then the tail is cut:
    // drbot's own recorded checkpoints catch it.
    app.slash("rollback nowhere").reply().await;
    app.slash("help status").reply().await;
    let export = app.cli(&["timeline", "export", "--incident", "all"]).await;
    assert!(export.status.success());
    let mut db = app.db().await;
    sqlx::raw_sql(&format!(
        "{}; DELETE FROM events WHERE seq >= 3;",
        drop_trigger("events_no_delete")
    ))
    .execute(&mut db)
    .await
    .unwrap();
    db.close().await.unwrap();
    let out = app.cli(&["audit", "verify"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the log is cut short"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn a_keyed_chain_cannot_be_recomputed_without_the_key() {
    let key = "k3y-that-only-drbot-has";
    let mut app = spawn_app_custom(CONFIG, &[], &[("DRBOT_AUDIT_KEY", key)]).await;
    app.slash("help").reply().await;
    app.slash("rollback nowhere").reply().await;
    let events = app.events().await;
    assert_eq!(events[0]["kind"], "audit.keyed", "{events:#?}");
    let verify = |key: Option<&'static str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"));
        cmd.args(["audit", "verify"])
            .current_dir(app.dir.path())
            .env("DRBOT_DATABASE_URL", app.db_url());
        match key {
            Some(k) => cmd.env("DRBOT_AUDIT_KEY", k),
            None => cmd.env_remove("DRBOT_AUDIT_KEY"),
        };
        cmd.output().unwrap()
    };
    let ok = verify(Some("k3y-that-only-drbot-has"));
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let without = verify(None);
    assert_eq!(without.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&without.stderr).contains("set DRBOT_AUDIT_KEY"));

    // Someone with write access edits an event and recomputes every hash after it, the
    // unkeyed way: it no longer verifies.
    let mut db = app.db().await;
    crate::support::insider::drop_guards(&mut db).await;
    crate::support::insider::rehash_plain(&mut db, |seq, _, text| {
        if seq == 3 {
            *text = "nothing happened".into();
        }
    })
    .await;
    db.close().await.unwrap();
    let forged = verify(Some("k3y-that-only-drbot-has"));
    assert_eq!(forged.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&forged.stderr).contains("does not match its hash"),
        "{}",
        String::from_utf8_lossy(&forged.stderr)
    );

    // And drbot will not append to a keyed chain without its key.
    app.kill().await;
    let restarted = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["serve", "--config", "drbot.toml"])
        .current_dir(app.dir.path())
        .envs(crate::support::serve_env(app.dir.path(), &app.slack))
        .env_remove("DRBOT_AUDIT_KEY")
        .output()
        .unwrap();
    assert!(!restarted.status.success());
    assert!(String::from_utf8_lossy(&restarted.stderr).contains("DRBOT_AUDIT_KEY is not set"));
}

#[test]
fn verify_and_export_refuse_a_store_that_does_not_exist() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo.db");
    for args in [
        vec!["audit", "verify"],
        vec!["timeline", "export", "--incident", "all"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
            .args(&args)
            .env(
                "DRBOT_DATABASE_URL",
                format!("sqlite://{}", missing.display()),
            )
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("there is no store at"), "{err}");
        assert!(!missing.exists(), "{args:?} created a store");
    }
}
