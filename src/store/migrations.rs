//! Schema migrations, applied in order at start-up, all pending ones in one transaction.
//! SQLite and PostgreSQL share one list; only the key columns' types and the append-only
//! triggers are spelt differently ([`spelt`]).

use sqlx::AnyConnection;

use super::{Backend, StoreError};

/// Leases (SPEC §9): who owns what, and the replicas' heartbeats.
const OWNERS_AND_REPLICAS: &str = r#"
ALTER TABLE requests ADD COLUMN owner TEXT;
ALTER TABLE jobs ADD COLUMN owner TEXT;
ALTER TABLE blocks ADD COLUMN owner TEXT;
CREATE TABLE replicas (
    id           TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL
);
"#;

/// Signed requests already received (replay refusal, SPEC §10).
const SEEN_REQUESTS: &str = r#"
CREATE TABLE seen_requests (
    key     TEXT PRIMARY KEY,
    seen_at TEXT NOT NULL
);
CREATE INDEX seen_requests_by_time ON seen_requests (seen_at);
"#;

/// The Slack outbox (SPEC §10).
const OUTBOX: &str = r#"
CREATE TABLE outbox (
    id         {autoincrement},
    lane       TEXT   NOT NULL,
    key        TEXT   UNIQUE,
    message    TEXT   NOT NULL,
    state      TEXT   NOT NULL,
    owner      TEXT,
    attempts   BIGINT NOT NULL,
    not_before BIGINT NOT NULL,
    deadline   BIGINT NOT NULL,
    uncertain  BIGINT NOT NULL,
    created_at TEXT   NOT NULL,
    done_at    TEXT,
    ts         TEXT,
    error      TEXT
);
CREATE INDEX outbox_open ON outbox (lane, id) WHERE state IN ('pending', 'sending');
CREATE INDEX outbox_by_state ON outbox (state, id);
"#;

/// Display names of users and channels, as Slack gave them (exports).
const NAMES: &str = r#"
CREATE TABLE names (
    id      TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    name    TEXT NOT NULL,
    read_at TEXT NOT NULL
);
"#;

/// Checkpoints of the chain's head (SPEC §12): what `audit verify` checks a cut-off tail
/// against.
const CHECKPOINTS: &str = r#"
CREATE TABLE checkpoints (
    seq       BIGINT NOT NULL,
    hash      TEXT   NOT NULL,
    signature TEXT,
    at        TEXT   NOT NULL,
    reason    TEXT   NOT NULL
);
CREATE INDEX checkpoints_by_seq ON checkpoints (seq);
"#;

/// Drills (the plan's DR tests and tabletop exercises) are incidents marked so.
const DRILLS: &str = "ALTER TABLE incidents ADD COLUMN drill BIGINT NOT NULL DEFAULT 0;";

/// Restore tests' instances until drbot deletes them, and when each scheduled task last ran
/// (restore tests, backup checks), so a schedule fires once across replicas and restarts.
const RESTORE_TESTS: &str = r#"
CREATE TABLE drill_instances (
    instance      TEXT PRIMARY KEY,
    database_name TEXT NOT NULL,
    request_id    BIGINT NOT NULL,
    channel       TEXT NOT NULL,
    delete_after  TEXT NOT NULL,
    state         TEXT NOT NULL,
    owner         TEXT,
    created_at    TEXT NOT NULL,
    ended_at      TEXT
);
CREATE TABLE schedule (
    name     TEXT PRIMARY KEY,
    last_run TEXT NOT NULL
);
"#;

/// Every migration, in order. Words in braces are spelt per backend ([`spelt`]).
const MIGRATIONS: &[(i64, &str)] = &[
    (
        1,
        r#"
CREATE TABLE events (
    seq       {seq},
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
{append_only}

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
    id           {serial},
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
    request_id {int} NOT NULL REFERENCES requests (id),
    officer    TEXT NOT NULL,
    reaction   TEXT NOT NULL,
    at         TEXT NOT NULL,
    PRIMARY KEY (request_id, officer, reaction)
);

CREATE TABLE jobs (
    id         {serial},
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
    id          {serial},
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
    request_id  {int},
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
    (5, OWNERS_AND_REPLICAS),
    (6, SEEN_REQUESTS),
    (7, OUTBOX),
    (8, NAMES),
    (9, CHECKPOINTS),
    (10, DRILLS),
    (11, RESTORE_TESTS),
    (12, COMMAND_NAMES),
];

/// The command's name (`rollback`) beside its text, so nothing has to parse the text again
/// to know which command a request was.
const COMMAND_NAMES: &str =
    "ALTER TABLE requests ADD COLUMN command_name TEXT NOT NULL DEFAULT '';";

/// The backend's spelling of the words in braces of [`MIGRATIONS`].
fn spelt(backend: Backend, sql: &str) -> String {
    let words: [(&str, &str); 5] = match backend {
        Backend::Sqlite => [
            ("{seq}", "INTEGER PRIMARY KEY"),
            ("{serial}", "INTEGER PRIMARY KEY"),
            ("{autoincrement}", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            ("{int}", "INTEGER"),
            (
                "{append_only}",
                "CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;",
            ),
        ],
        Backend::Postgres => [
            ("{seq}", "BIGINT PRIMARY KEY"),
            ("{serial}", "BIGSERIAL PRIMARY KEY"),
            ("{autoincrement}", "BIGSERIAL PRIMARY KEY"),
            ("{int}", "BIGINT"),
            (
                "{append_only}",
                "CREATE FUNCTION drbot_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN RAISE EXCEPTION 'the event log is append-only'; END $f$;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
FOR EACH ROW EXECUTE FUNCTION drbot_append_only();
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
FOR EACH ROW EXECUTE FUNCTION drbot_append_only();",
            ),
        ],
    };
    words.iter().fold(sql.to_string(), |sql, (word, spelling)| {
        sql.replace(word, spelling)
    })
}

pub async fn run(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    let fail = |version: i64| move |source| StoreError::Migration { version, source };
    let migrations = MIGRATIONS;
    let begin = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        // Replicas starting together: one migrates, the others wait and find it done.
        Backend::Postgres => "BEGIN; SELECT pg_advisory_xact_lock(7237960506228);",
    };
    sqlx::raw_sql(begin)
        .execute(&mut *conn)
        .await
        .map_err(fail(0))?;
    let applied = async {
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TEXT NOT NULL)")
            .execute(&mut *conn)
            .await
            .map_err(fail(0))?;
        let current: i64 =
            sqlx::query_scalar("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM schema_migrations")
                .fetch_one(&mut *conn)
                .await
                .map_err(fail(0))?;
        let known = migrations.last().map_or(0, |m| m.0);
        if current > known {
            return Err(StoreError::TooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in migrations.iter().filter(|(v, _)| *v > current) {
            sqlx::raw_sql(&spelt(backend, sql))
                .execute(&mut *conn)
                .await
                .map_err(fail(*version))?;
            sqlx::query("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)")
                .bind(version)
                .bind(crate::clock::now_rfc3339())
                .execute(&mut *conn)
                .await
                .map_err(fail(*version))?;
        }
        Ok(())
    }
    .await;
    let end = if applied.is_ok() {
        "COMMIT"
    } else {
        "ROLLBACK"
    };
    let ended = sqlx::raw_sql(end)
        .execute(&mut *conn)
        .await
        .map_err(fail(0));
    applied.and(ended).map(|_| ())
}
