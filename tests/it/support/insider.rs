//! What someone with write access to the database (but not the audit key) can do to the
//! log: take the append-only guards off, edit rows, recompute the unkeyed hashes.

use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::on_postgres;

/// Takes the append-only guards off events and checkpoints.
pub async fn drop_guards(db: &mut AnyConnection) {
    for (trigger, table) in [
        ("events_no_update", "events"),
        ("events_no_delete", "events"),
        ("checkpoints_no_update", "checkpoints"),
        ("checkpoints_no_delete", "checkpoints"),
    ] {
        let sql = if on_postgres() {
            format!("DROP TRIGGER IF EXISTS {trigger} ON {table}")
        } else {
            format!("DROP TRIGGER IF EXISTS {trigger}")
        };
        sqlx::query(&sql).execute(&mut *db).await.unwrap();
    }
}

/// Rewrites every event with `edit` (its kind and text), recomputing each hash the unkeyed
/// way (SHA-256) and chaining them again from the genesis.
pub async fn rehash_plain(db: &mut AnyConnection, edit: impl Fn(i64, &mut String, &mut String)) {
    let rows = sqlx::query(
        "SELECT seq, at, actor, channel, incident, kind, text, detail FROM events ORDER BY seq",
    )
    .fetch_all(&mut *db)
    .await
    .unwrap();
    let mut prev = drbot::store::GENESIS_HASH.to_string();
    for row in rows {
        let mut stored = drbot::store::StoredEvent {
            seq: row.get(0),
            at: row.get(1),
            actor: row.get(2),
            channel: row.get(3),
            incident: row.get(4),
            kind: row.get(5),
            text: row.get(6),
            detail: row.get(7),
            prev_hash: prev.clone(),
            hash: String::new(),
        };
        edit(stored.seq, &mut stored.kind, &mut stored.text);
        stored.hash =
            drbot::store::chain_hash(&stored.prev_hash, &drbot::store::canonical(&stored));
        sqlx::query(
            "UPDATE events SET kind = $1, text = $2, prev_hash = $3, hash = $4 WHERE seq = $5",
        )
        .bind(&stored.kind)
        .bind(&stored.text)
        .bind(&stored.prev_hash)
        .bind(&stored.hash)
        .bind(stored.seq)
        .execute(&mut *db)
        .await
        .unwrap();
        prev = stored.hash;
    }
}

/// Appends an event as a replica holding `key` would (`None`: unkeyed).
pub async fn append_as(db: &mut AnyConnection, key: Option<&str>, kind: &str, detail: Value) {
    let tail = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
        .fetch_one(&mut *db)
        .await
        .unwrap();
    let mut stored = drbot::store::StoredEvent {
        seq: tail.get::<i64, _>(0) + 1,
        at: "2026-12-03T12:00:00Z".into(),
        actor: "drbot".into(),
        channel: String::new(),
        incident: None,
        kind: kind.into(),
        text: "another replica".into(),
        detail: detail.to_string(),
        prev_hash: tail.get(1),
        hash: String::new(),
    };
    let canonical = drbot::store::canonical(&stored);
    stored.hash = match key {
        Some(k) => drbot::store::keyed_hash(k.as_bytes(), &stored.prev_hash, &canonical),
        None => drbot::store::chain_hash(&stored.prev_hash, &canonical),
    };
    sqlx::query("INSERT INTO events (seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
        .bind(stored.seq)
        .bind(&stored.at)
        .bind(&stored.actor)
        .bind(&stored.channel)
        .bind(&stored.incident)
        .bind(&stored.kind)
        .bind(&stored.text)
        .bind(&stored.detail)
        .bind(&stored.prev_hash)
        .bind(&stored.hash)
        .execute(&mut *db)
        .await
        .unwrap();
}
