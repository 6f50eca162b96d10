//! The state store (SPEC §9): an append-only, hash-chained event log and the ids of Slack
//! events already processed. `DRBOT_DATABASE_URL=sqlite://PATH` is the embedded backend;
//! callers use only [`Store`]'s methods, so a PostgreSQL backend can sit behind the same API.

mod blocks;
mod events;
mod incidents;
mod jobs;
mod migrations;
mod requests;

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use tokio::sync::Mutex;

pub use blocks::{Block, NewBlock};
pub use events::{canonical, chain_hash, NewEvent, StoredEvent, VerifyReport, GENESIS_HASH};
pub use incidents::{Incident, NewIncident};
pub use jobs::Job;
pub use requests::{NewRequest, Request, RequestState};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("DRBOT_DATABASE_URL: '{0}' is not supported; use sqlite://PATH (PostgreSQL is not built into this version)")]
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
}

pub(crate) trait QueryContext<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> QueryContext<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|source| StoreError::Query { context, source })
    }
}

/// The store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// Serialises write transactions within this process (SQLite has one writer; this
    /// keeps them from failing with `SQLITE_BUSY` instead of queueing). Each write
    /// transaction also starts with `BEGIN IMMEDIATE`, so another process waits for it,
    /// and the chain's `seq` primary key would refuse a fork.
    write_lock: std::sync::Arc<Mutex<()>>,
}

impl Store {
    /// Opens (creating when missing) and migrates the store named by `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .ok_or_else(|| StoreError::UnsupportedUrl(redact_url(url)))?;
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{path}"))
            .map_err(|source| StoreError::Open {
                url: redact_url(url),
                source,
            })?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                url: redact_url(url),
                source,
            })?;
        let store = Self {
            pool,
            write_lock: Default::default(),
        };
        migrations::run(&store.pool).await?;
        Ok(store)
    }

    /// A cheap round trip, for `/readyz`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a write transaction; everything in it commits together or not at all.
    pub async fn begin(&self) -> Result<StoreTx<'_>, StoreError> {
        let guard = self.write_lock.lock().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .context("starting a write transaction")?;
        Ok(StoreTx { _guard: guard, tx })
    }
}

/// A write transaction. Dropping it without [`StoreTx::commit`] rolls everything back.
pub struct StoreTx<'a> {
    _guard: tokio::sync::MutexGuard<'a, ()>,
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
}

impl StoreTx<'_> {
    pub(crate) fn conn(&mut self) -> &mut sqlx::SqliteConnection {
        &mut self.tx
    }

    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await.context("committing")
    }
}

/// Hides a password in a database URL before it is shown anywhere.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("redacted"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}
