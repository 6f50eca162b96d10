//! Schema migrations, applied in order at start-up; each runs once, in a transaction.

use sqlx::SqlitePool;

use super::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE events (
    seq       INTEGER PRIMARY KEY,
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    incident  TEXT,
    kind      TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL UNIQUE
);
CREATE INDEX events_by_incident ON events (incident, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;

CREATE TABLE slack_deliveries (
    event_id    TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
"#,
)];

pub async fn run(pool: &SqlitePool) -> Result<(), StoreError> {
    sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        .execute(pool)
        .await
        .map_err(|source| StoreError::Migration { version: 0, source })?;
    let current: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            .fetch_one(pool)
            .await
            .map_err(|source| StoreError::Migration { version: 0, source })?;
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(StoreError::TooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let fail = |source| StoreError::Migration {
            version: *version,
            source,
        };
        let mut tx = pool.begin().await.map_err(fail)?;
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)")
            .bind(version)
            .bind(crate::clock::now_rfc3339())
            .execute(&mut *tx)
            .await
            .map_err(fail)?;
        tx.commit().await.map_err(fail)?;
    }
    Ok(())
}
