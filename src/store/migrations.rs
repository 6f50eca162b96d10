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
CREATE TABLE events {events_columns} UNIQUE);
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
    (13, "{events_hash_not_indexed}"),
    (14, SEEN_RECENT),
    (15, "{checkpoints_append_only}"),
    (16, FENCES),
    (17, RUNS),
    (18, READINESS),
    (19, ALARMS),
    (20, USERS_TOLD),
    (21, FOLLOWUPS),
];

/// Follow-ups of incidents and drills (`store::followups`): what must be done after, by
/// whom and by when; `reminded_on` is the last day the ops channel was told it is overdue.
const FOLLOWUPS: &str = r#"
CREATE TABLE followups (
    id          {autoincrement},
    incident    TEXT,
    channel     TEXT NOT NULL,
    text        TEXT NOT NULL,
    owner       TEXT,
    due         TEXT,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    done_at     TEXT,
    done_by     TEXT,
    reminded_on TEXT
);
"#;

/// What users were told of an incident (SPEC §17): when last, and the status page's
/// incident drbot publishes to (its id and public link).
const USERS_TOLD: &str = r#"
ALTER TABLE incidents ADD COLUMN users_told_at TEXT;
ALTER TABLE incidents ADD COLUMN page_incident TEXT;
ALTER TABLE incidents ADD COLUMN page_url TEXT;
"#;

/// CloudWatch alarms as received (`store::alarms`), one row per SNS message (its
/// `MessageId`: a message delivered twice is recorded once), with the proposal it made;
/// and which incident each alarm opened or joined, for its repeats and its `OK`.
const ALARMS: &str = r#"
CREATE TABLE alarms (
    message_id TEXT PRIMARY KEY,
    alarm_name TEXT NOT NULL,
    state      TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    received_at TEXT NOT NULL,
    scenario   TEXT,
    channel    TEXT,
    proposal   TEXT,
    decided_by TEXT
);
CREATE INDEX alarms_by_name ON alarms (alarm_name, proposal);
CREATE TABLE alarm_incidents (
    alarm_name TEXT NOT NULL,
    incident   TEXT NOT NULL,
    linked_at  TEXT NOT NULL,
    PRIMARY KEY (alarm_name, incident)
);
"#;

/// Each scenario's readiness as last checked, and who opened the App Home
/// (`store::readiness`); the channel an incident-opening job is creating
/// (`store::jobs`), so a job run again after a lost commit finds it instead of making
/// another.
const READINESS: &str = r#"
CREATE TABLE readiness (
    scenario   TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    checks     TEXT NOT NULL,
    checked_at TEXT NOT NULL,
    changed_at TEXT NOT NULL
);
CREATE TABLE home_views (
    user_id       TEXT PRIMARY KEY,
    published_seq BIGINT NOT NULL,
    published_at  TEXT NOT NULL,
    opened_at     TEXT NOT NULL
);
CREATE TABLE job_channels (
    job_id     BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    channel_id TEXT
);
"#;

/// Plan runs (`/dr run <scenario>`) and their steps (`store::runs`).
const RUNS: &str = r#"
CREATE TABLE runs (
    id            {autoincrement},
    request_id    BIGINT NOT NULL UNIQUE,
    scenario      TEXT   NOT NULL,
    mode          TEXT   NOT NULL,
    stamp         TEXT   NOT NULL,
    channel       TEXT   NOT NULL,
    incident      TEXT,
    requester     TEXT   NOT NULL,
    approved_by   TEXT   NOT NULL,
    state         TEXT   NOT NULL,
    reason        TEXT,
    created_at    TEXT   NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    recovery_secs BIGINT
);
CREATE INDEX runs_by_state ON runs (state, id);
CREATE TABLE run_steps (
    run_id       BIGINT NOT NULL,
    idx          BIGINT NOT NULL,
    step         TEXT   NOT NULL,
    text         TEXT   NOT NULL,
    command      TEXT,
    block        BIGINT NOT NULL,
    approval     TEXT   NOT NULL,
    timeout_secs BIGINT NOT NULL,
    when_reached BIGINT NOT NULL,
    plan         TEXT,
    plan_hash    TEXT,
    summary      TEXT,
    state        TEXT   NOT NULL,
    request_id   BIGINT,
    attempt      BIGINT NOT NULL,
    own_approval BIGINT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    outcome      TEXT,
    PRIMARY KEY (run_id, idx)
);
"#;

/// The signed requests received in the last second or so, before SQLite's writer moves them
/// into `seen_requests` in key order (see `store::replay_keys`; PostgreSQL leaves it empty).
/// No index: appending a key writes one page, where a unique index on random signatures
/// rewrote a random page per request at each group commit.
const SEEN_RECENT: &str = r#"
CREATE TABLE seen_recent (
    key     TEXT NOT NULL,
    seen_at TEXT NOT NULL
);
"#;

/// The command's name (`rollback`) beside its text, so nothing has to parse the text again
/// to know which command a request was.
const COMMAND_NAMES: &str =
    "ALTER TABLE requests ADD COLUMN command_name TEXT NOT NULL DEFAULT '';";

/// The event log without the `UNIQUE` index on `hash`: its random keys dirtied about one
/// index page per appended event, written again to the WAL at each group commit (most of a
/// commit's pages), and nothing looks an event up by its hash — the chain is checked by
/// `audit verify`, which recomputes every hash in `seq` order. SQLite cannot drop a column's
/// constraint, so the table is rebuilt (its rows copied once, at the first start-up after
/// the upgrade) with the same columns, index and append-only triggers.
const EVENTS_REBUILT_SQLITE: &str = r#"
CREATE TABLE events_rebuilt {events_columns});
INSERT INTO events_rebuilt (seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash)
    SELECT seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_rebuilt RENAME TO events;
CREATE INDEX events_by_incident ON events (incident, seq);
{append_only}
"#;

/// Fencing (see `store::lease`): claimed work carries the claimer's epoch beside its owner,
/// and when it was claimed (epoch ms), so that a row a live replica left behind after a
/// lost commit is recovered after a deadline.
const FENCES: &str = r#"
ALTER TABLE jobs ADD COLUMN fence BIGINT;
ALTER TABLE jobs ADD COLUMN claimed_at BIGINT;
ALTER TABLE requests ADD COLUMN fence BIGINT;
ALTER TABLE outbox ADD COLUMN fence BIGINT;
ALTER TABLE outbox ADD COLUMN claimed_at BIGINT;
"#;

/// Checkpoints are append-only like the events they vouch for.
const CHECKPOINTS_APPEND_ONLY_SQLITE: &str =
    "CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'checkpoints are append-only'); END;";

const CHECKPOINTS_APPEND_ONLY_POSTGRES: &str =
    "CREATE FUNCTION drbot_checkpoints_append_only() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN RAISE EXCEPTION 'checkpoints are append-only'; END $f$;
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
FOR EACH ROW EXECUTE FUNCTION drbot_checkpoints_append_only();
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
FOR EACH ROW EXECUTE FUNCTION drbot_checkpoints_append_only();";

/// The event log's columns (migration 1 adds `UNIQUE` to the last, `hash`; 13 takes it off).
const EVENTS_COLUMNS: &str = "(
    seq       {seq},
    at        TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    channel   TEXT    NOT NULL,
    incident  TEXT,
    kind      TEXT    NOT NULL,
    text      TEXT    NOT NULL,
    detail    TEXT    NOT NULL,
    prev_hash TEXT    NOT NULL,
    hash      TEXT    NOT NULL";

/// The backend's spelling of the words in braces of [`MIGRATIONS`].
fn spelt(backend: Backend, sql: &str) -> String {
    let sql = match backend {
        Backend::Sqlite => sql
            .replace("{events_hash_not_indexed}", EVENTS_REBUILT_SQLITE)
            .replace("{checkpoints_append_only}", CHECKPOINTS_APPEND_ONLY_SQLITE),
        Backend::Postgres => sql
            .replace(
                "{events_hash_not_indexed}",
                "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_hash_key;",
            )
            .replace(
                "{checkpoints_append_only}",
                CHECKPOINTS_APPEND_ONLY_POSTGRES,
            ),
    }
    .replace("{events_columns}", EVENTS_COLUMNS);
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
    words
        .iter()
        .fold(sql, |sql, (word, spelling)| sql.replace(word, spelling))
}

pub async fn run(backend: Backend, conn: &mut AnyConnection) -> Result<(), StoreError> {
    run_these(backend, conn, MIGRATIONS).await
}

/// Applies those of `migrations` not applied yet (all of them but in tests).
async fn run_these(
    backend: Backend,
    conn: &mut AnyConnection,
    migrations: &[(i64, &str)],
) -> Result<(), StoreError> {
    let fail = |version: i64| move |source| StoreError::Migration { version, source };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, NewEvent, Store, VerifyReport, GENESIS_HASH};
    use sqlx::Connection;

    const INDEXES_OF_EVENTS: &str =
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' ORDER BY name";

    /// A log written before migration 13 keeps every event, its chain and its append-only
    /// guard when the `hash` index goes, and takes new events after it.
    #[tokio::test]
    async fn an_event_log_from_before_the_hash_index_went_keeps_its_chain() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/drbot.db?mode=rwc", dir.path().display());
        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        run_these(Backend::Sqlite, &mut conn, &MIGRATIONS[..12])
            .await
            .unwrap();
        let mut prev = GENESIS_HASH.to_string();
        let mut events = Vec::new();
        for seq in 1..=3 {
            let event = NewEvent::new(
                EventKind::CommandAccepted,
                "U1",
                "C1",
                format!("/dr help {seq}"),
            );
            let stored = crate::store::events::chained(seq, prev, event);
            prev = stored.hash.clone();
            events.push(stored);
        }
        let refs: Vec<_> = events.iter().collect();
        crate::store::events::insert_many(&mut conn, &refs)
            .await
            .unwrap();
        let indexes_before: Vec<String> = sqlx::query_scalar(INDEXES_OF_EVENTS)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        assert_eq!(indexes_before.len(), 2, "{indexes_before:?}");
        conn.close().await.unwrap();

        let store = Store::open(&url).await.unwrap();
        store
            .append(NewEvent::new(
                EventKind::CommandAccepted,
                "U1",
                "C1",
                "/dr status",
            ))
            .await
            .unwrap();
        assert!(matches!(
            store.verify().await.unwrap(),
            VerifyReport::Intact { count: 4 }
        ));
        let indexes: Vec<String> = sqlx::query_scalar(INDEXES_OF_EVENTS)
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(indexes, ["events_by_incident"]);
        let changed = sqlx::query("UPDATE events SET text = 'forged' WHERE seq = 1")
            .execute(store.pool())
            .await;
        assert!(changed.unwrap_err().to_string().contains("append-only"));
    }
}
