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
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "audit chain intact: 3 events verified"
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
