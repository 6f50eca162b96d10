//! The state store (SPEC §9): an append-only, hash-chained event log, approval requests,
//! jobs, blocks, incidents and the ids of Slack events already processed.
//!
//! `DRBOT_DATABASE_URL=sqlite://PATH` is the embedded backend for one process;
//! `postgres://…` serves several replicas. Both run the same SQL through sqlx's `Any`
//! driver (placeholders are `$n`, which both accept); only the migrations differ.
//!
//! Reads go to a pool. Writes never run in the caller's future: a [`StoreTx`] is a handle
//! whose operations run on the writer task ([`writer`]), which commits them in groups.

mod alarms;
mod blocks;
mod checkpoints;
mod drills;
mod events;
mod followups;
mod incidents;
mod jobs;
mod kinds;
mod lease;
mod migrations;
mod names;
mod outbox;
mod readiness;
mod replay_keys;
mod replicas;
mod requests;
mod runs;
pub(crate) mod statement;
mod writer;

use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

pub use alarms::{AlarmRow, NewAlarm};
pub use blocks::{Block, NewBlock};
pub use checkpoints::Checkpoint;
pub use drills::DrillInstance;
pub use events::{
    audit_key, canonical, chain_hash, key_id, keyed_hash, mark_chain_keyed, set_audit_key,
    sign_checkpoint, NewEvent, StoredEvent, VerifyReport, GENESIS_HASH, KEYED_FROM, VIA,
};
pub use followups::Followup;
pub use incidents::{Incident, NewIncident};
pub use jobs::{Job, JobClaim};
pub use kinds::EventKind;
pub use outbox::{
    console_answer, console_url, console_via, epoch_ms, via_of, AfterPost, Anchor, AnchorState,
    Claimed, OutboxRow, Outgoing, Undelivered, CONSOLE_URL, DELIVERY_DEADLINE,
};
pub use readiness::{ReadinessRow, HOME_EVERY, HOME_KEPT};
pub use replicas::{DueWork, Liveness};
pub use requests::{NewRequest, Request, RequestState, Whose};
pub use runs::{NewRun, NewRunStep, RunRow, StepMove, StepRow};
pub(crate) use writer::WriteConn;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DRBOT_DATABASE_URL: '{0}' is not supported; use sqlite://PATH (one process) or postgres://USER@HOST/DB (several replicas)")]
    UnsupportedUrl(String),
    #[error("cannot open the store at {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("store migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: sqlx::Error,
    },
    #[error(
        "the store was written by a newer drbot (schema version {found}, this build knows {known})"
    )]
    TooNew { found: i64, known: i64 },
    #[error("store query failed while {context}: {source}")]
    Query {
        context: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("stored event {seq} is unreadable: {message}")]
    Corrupt { seq: i64, message: String },
    /// The writer could not take or finish this write (the database is unreachable, or the
    /// group it was committed with failed); nothing of it was stored.
    #[error("the store did not record this write: {0}")]
    NotWritten(String),
    /// A signed request whose key (timestamp and signature) was already used.
    #[error("this signed request was already received")]
    Replayed,
    /// The chain's last event does not recompute under this replica's audit key (another
    /// replica appends with a different key, or none): nothing is appended.
    #[error("refusing to append to the audit chain: its last event (#{seq}) {why}; every replica must run with the same DRBOT_AUDIT_KEY")]
    ForeignChain { seq: i64, why: String },
    /// This replica lost its claim on a row (its lease lapsed and another replica took the
    /// work over): the state change is not made.
    /// `serve` on a SQLite store another `serve` holds.
    #[error("another drbot serve holds the store at {path} (its lock file {path}.lock): a SQLite store is one process's; stop the other first (a rolling deploy on one volume must stop the old task before the new one starts), or use PostgreSQL for several replicas")]
    InUse { path: String },
    #[error("cannot lock the store at {path}: {source}")]
    Lock {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fenced: {0} is no longer this replica's (its lease lapsed and another replica took it over)")]
    Fenced(String),
}

impl StoreError {
    /// True when the error means the connection itself is gone (reconnect, retry later).
    pub fn is_connection_lost(&self) -> bool {
        let source = match self {
            StoreError::Open { source, .. } | StoreError::Query { source, .. } => source,
            _ => return false,
        };
        match source {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => {
                // PostgreSQL: the server is shutting down or the connection was terminated.
                matches!(
                    db.code().as_deref(),
                    Some("57P01" | "57P02" | "57P03" | "08006" | "08003" | "08000")
                )
            }
            _ => false,
        }
    }

    /// A copy to answer every unit of a failed group with (sqlx errors are not `Clone`).
    fn shallow_clone(&self) -> StoreError {
        StoreError::NotWritten(self.to_string())
    }
}

pub(crate) trait QueryContext<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> QueryContext<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { context, source })
    }
}

/// Which database the store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a `DRBOT_DATABASE_URL` names, and the URL sqlx is given.
    fn from_url(url: &str) -> Result<(Backend, String), StoreError> {
        if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl(redact_url(url)));
            }
            let sep = if path.contains('?') { '&' } else { '?' };
            let query = if path.contains("mode=") {
                String::new()
            } else {
                format!("{sep}mode=rwc")
            };
            return Ok((Backend::Sqlite, format!("sqlite://{path}{query}")));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok((Backend::Postgres, url.to_string()));
        }
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// Per-connection settings: SQLite's WAL, full fsync and foreign keys; a lock wait; temp
/// data in memory. Checkpoints are not left to the committing writer (they would stall a
/// group commit for milliseconds): the writer runs them between groups, see
/// [`writer::CHECKPOINT_EVERY`].
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0;";

async fn connect(backend: Backend, url: &str) -> Result<AnyConnection, StoreError> {
    let open = |source| StoreError::Open {
        url: redact_url(url),
        source,
    };
    let mut conn = tokio::time::timeout(Duration::from_secs(10), AnyConnection::connect(url))
        .await
        .map_err(|_| open(sqlx::Error::PoolTimedOut))?
        .map_err(open)?;
    if backend == Backend::Sqlite {
        conn.execute(SQLITE_PRAGMAS).await.map_err(open)?;
    }
    Ok(conn)
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    units: mpsc::Sender<writer::Work>,
    /// This process's id among the replicas: it owns what it claims or executes.
    replica: std::sync::Arc<str>,
    /// How long a replica may stay silent before it is taken for dead.
    lease: Duration,
    /// This replica's lease as it knows it (see `lease`).
    held: std::sync::Arc<lease::Lease>,
    /// The lock on a SQLite store held while `serve` runs.
    sole: Option<std::sync::Arc<std::fs::File>>,
    /// Channels known not to be incident channels (a cache, SPEC §9: never the source of
    /// truth). Safe to keep: drbot opens every incident in a channel it has just created, so
    /// a channel seen without an incident never becomes an incident channel later.
    plain_channels: std::sync::Arc<dashmap::DashSet<String>>,
    /// Writes through this handle are refused, never written late, when the writer cannot
    /// start them by then (the acknowledgement path: Slack waits 3 s).
    deadline: Option<tokio::time::Instant>,
    /// Wakes the outbox worker when a transaction that queued Slack messages commits.
    outbox_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Store {
    /// Opens (creating a SQLite file when missing) and migrates the store named by `url`,
    /// and starts its writer.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, sqlx_url) = Backend::from_url(url)?;
        let mut conn = connect(backend, &sqlx_url).await?;
        migrations::run(backend, &mut conn).await?;
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 2 } else { 4 })
            .min_connections(0)
            .idle_timeout(Duration::from_secs(60))
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute(SQLITE_PRAGMAS).await?;
                    }
                    Ok(())
                })
            })
            .connect_lazy(&sqlx_url)
            .map_err(|source| StoreError::Open {
                url: redact_url(url),
                source,
            })?;
        let (units, rx) = mpsc::channel(4096);
        tokio::spawn(writer::Writer::new(backend, sqlx_url, conn, rx).run());
        Ok(Self {
            pool,
            backend,
            units,
            replica: replicas::new_replica_id().into(),
            lease: Duration::from_secs(15),
            held: Default::default(),
            sole: None,
            plain_channels: Default::default(),
            deadline: None,
            outbox_wake: Default::default(),
        })
    }

    /// For `serve` on SQLite: locks the store for this process while it runs (an exclusive
    /// lock on `PATH.lock`, released by the kernel when the process ends, even by kill -9).
    /// A second `serve` on the same file refuses to start instead of taking its work over.
    /// Taken before the store is opened (and migrated); kept in the store it returns.
    pub async fn open_exclusively(url: &str) -> Result<Self, StoreError> {
        let sole = Self::lock_sqlite(url)?;
        let mut store = Self::open(url).await?;
        store.sole = sole;
        Ok(store)
    }

    fn lock_sqlite(url: &str) -> Result<Option<std::sync::Arc<std::fs::File>>, StoreError> {
        let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        else {
            return Ok(None);
        };
        let path = path.split('?').next().unwrap_or(path).to_string();
        let lock = format!("{path}.lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock)
            .map_err(|source| StoreError::Lock {
                path: lock.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(Some(std::sync::Arc::new(file))),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::InUse { path }),
            Err(std::fs::TryLockError::Error(source)) => {
                Err(StoreError::Lock { path: lock, source })
            }
        }
    }

    /// Sets how long a silent replica is still taken for alive (`store.lease`).
    pub fn with_lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// A handle whose writes must start within `budget` or are refused unwritten: a caller
    /// told "not recorded" can rely on it.
    pub fn within(&self, budget: Duration) -> Store {
        Store {
            deadline: Some(tokio::time::Instant::now() + budget),
            ..self.clone()
        }
    }

    /// Notified when queued Slack messages were committed.
    pub fn outbox_wake(&self) -> &tokio::sync::Notify {
        &self.outbox_wake
    }

    /// This process's replica id.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a write transaction; everything in it commits together or not at all.
    /// Its operations run on the writer task, never in the caller's future.
    pub async fn begin(&self) -> Result<StoreTx<'_>, StoreError> {
        let (ops, unit) = mpsc::unbounded_channel();
        let ticket = self.ticket();
        self.send_work(writer::Work::Unit(unit, ticket.clone()))
            .await?;
        Ok(StoreTx {
            ops,
            store: self,
            ticket,
            queued_slack: false,
        })
    }

    async fn send_work(&self, work: writer::Work) -> Result<(), StoreError> {
        let send = self.units.send(work);
        let sent = match self.deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, send)
                .await
                .map_err(|_| StoreError::NotWritten("the store is too busy".into()))?,
            None => send.await,
        };
        sent.map_err(|_| StoreError::NotWritten("the store's writer has stopped".into()))
    }

    pub(crate) fn ticket(&self) -> Option<writer::Ticket> {
        self.deadline.map(writer::Ticket::new)
    }
}

/// A write transaction: a handle on a unit of work run by the writer. Dropping it without
/// [`StoreTx::commit`] rolls everything it did back (and nothing else).
pub struct StoreTx<'a> {
    ops: mpsc::UnboundedSender<writer::UnitMsg>,
    store: &'a Store,
    /// Until the writer takes this unit, its caller may give up at the ticket's deadline.
    ticket: Option<writer::Ticket>,
    /// Slack messages were queued: the outbox worker is woken at commit.
    queued_slack: bool,
}

impl StoreTx<'_> {
    /// The id this replica stamps on what it owns.
    pub(crate) fn replica(&self) -> String {
        self.store.replica.to_string()
    }

    pub(crate) fn cutoff(&self, liveness: Liveness) -> String {
        self.store.cutoff(liveness)
    }

    /// Runs `op` on the writer's connection inside this transaction.
    pub(crate) async fn run<T, F>(&mut self, op: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut WriteConn) -> BoxFuture<'c, Result<T, StoreError>>
            + Send
            + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let boxed: writer::Op = Box::new(move |conn| {
            Box::pin(async move {
                let _ = reply.send(op(conn).await);
            })
        });
        self.ops
            .send(writer::UnitMsg::Op(boxed))
            .map_err(|_| not_taken())?;
        // Once the writer answered one operation, it has taken the unit.
        let ticket = self.ticket.take();
        writer::answer(ticket.as_ref(), answer).await
    }

    /// Commits; returns once the group this transaction joined is durable.
    pub async fn commit(self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.ops
            .send(writer::UnitMsg::Commit(reply))
            .map_err(|_| not_taken())?;
        writer::answer(self.ticket.as_ref(), answer).await?;
        if self.queued_slack {
            self.store.outbox_wake.notify_one();
        }
        Ok(())
    }
}

fn not_taken() -> StoreError {
    StoreError::NotWritten("the write transaction was abandoned by the store's writer".into())
}

/// Hides a password in a database URL before it is shown anywhere: the one in the user
/// information and a `password=` parameter (libpq's and sqlx's other way of giving it). A URL
/// that cannot be parsed loses everything between `://` and the last `@`.
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let head = match url::Url::parse(head) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        Ok(_) => head.to_string(),
        Err(_) => match (head.split_once("://"), head.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://redacted{}", &head[at..]),
            _ => head.to_string(),
        },
    };
    match query {
        None => head,
        Some(query) => {
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        format!("{key}=redacted")
                    }
                    _ => pair.to_string(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{head}?{query}")
        }
    }
}

/// Runs `write` until it succeeds or `patience` has passed, waiting 100 ms, then twice as
/// long each time (at most 5 s): a store that is briefly away (PostgreSQL restarting, a
/// busy writer) is waited for where what happened must reach it (after an AWS change).
pub async fn persist<T, F, Fut>(
    what: &str,
    patience: std::time::Duration,
    mut write: F,
) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let started = std::time::Instant::now();
    let mut wait = std::time::Duration::from_millis(100);
    loop {
        match write().await {
            Ok(done) => return Ok(done),
            Err(e) if started.elapsed() + wait < patience => {
                tracing::warn!(error = %e, what, "could not write to the store yet; trying again");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_database_urls_password_is_redacted_wherever_it_is_given() {
        assert_eq!(
            redact_url("postgres://drbot:hunter2@db:5432/drbot?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem"),
            "postgres://drbot:redacted@db:5432/drbot?sslmode=verify-full&sslrootcert=/etc/ssl/rds.pem"
        );
        assert_eq!(
            redact_url("postgres://drbot@db/drbot?sslmode=require&password=hunter2"),
            "postgres://drbot@db/drbot?sslmode=require&password=redacted"
        );
        assert_eq!(
            redact_url("postgres://drbot:hun@ter2@db:99999/x"),
            "postgres://redacted@db:99999/x"
        );
        assert_eq!(
            redact_url("sqlite:///data/drbot.db"),
            "sqlite:///data/drbot.db"
        );
    }
}
