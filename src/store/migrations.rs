//! Schema migrations, applied in order at start-up; each runs once, in a transaction.

use sqlx::SqlitePool;

use super::StoreError;

const MIGRATIONS: &[(i64, &str)] = &[
    (
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
    ),
    (
        2,
        r#"
CREATE TABLE requests (
    id           INTEGER PRIMARY KEY,
    command      TEXT NOT NULL,
    action       TEXT NOT NULL,
    requester    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    incident     TEXT,
    response_url TEXT NOT NULL,
    plan         TEXT NOT NULL,
    plan_hash    TEXT NOT NULL,
    summary      TEXT NOT NULL,
    state        TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    message_ts   TEXT,
    decided_by   TEXT,
    outcome      TEXT
);
CREATE INDEX requests_by_message ON requests (channel, message_ts);
CREATE INDEX requests_by_state ON requests (state, expires_at);

CREATE TABLE approvals (
    request_id INTEGER NOT NULL REFERENCES requests (id),
    officer    TEXT NOT NULL,
    reaction   TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (request_id, officer, reaction)
);

CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL,
    payload    TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX jobs_by_state ON jobs (state, id);
"#,
    ),
    (
        3,
        r#"
CREATE TABLE blocks (
    id          INTEGER PRIMARY KEY,
    cidr        TEXT NOT NULL,
    ip_set      TEXT NOT NULL,
    set_name    TEXT NOT NULL,
    set_id      TEXT NOT NULL,
    scope       TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    approved_by TEXT,
    reason      TEXT,
    channel     TEXT NOT NULL,
    incident    TEXT,
    request_id  INTEGER,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    state       TEXT NOT NULL,
    ended_at    TEXT
);
CREATE INDEX blocks_by_state ON blocks (state, expires_at);
CREATE INDEX blocks_by_cidr ON blocks (set_id, cidr, state);
"#,
    ),
    (
        4,
        r#"
CREATE TABLE incidents (
    id               TEXT PRIMARY KEY,
    scenario         TEXT NOT NULL,
    title            TEXT NOT NULL,
    opened_by        TEXT NOT NULL,
    origin_channel   TEXT NOT NULL,
    channel_id       TEXT NOT NULL UNIQUE,
    started_at       TEXT NOT NULL,
    status           TEXT NOT NULL,
    resolved_at      TEXT,
    summary          TEXT,
    checklist_ts     TEXT,
    steps_done       TEXT NOT NULL,
    last_update_at   TEXT NOT NULL,
    last_reminder_at TEXT,
    notice_at        TEXT
);
CREATE INDEX incidents_by_status ON incidents (status, started_at);
"#,
    ),
];

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
