//! Signed requests already received (replay refusal, SPEC §10), claimed on the writer's
//! connection: a key (the request's timestamp and signature) is new once.
//!
//! PostgreSQL keeps them in `seen_requests` under a unique key, which decides between
//! replicas.
//!
//! SQLite has one writer, and a key's signature is random, so keeping every key in a unique
//! index straight away rewrote one random index page per request at each group commit
//! (three quarters of a commit's pages under load). There, a key is first appended to
//! `seen_recent` (no index: appending writes one page), and the writer keeps the keys of
//! that table in memory to refuse their replays; about once a second it moves them into
//! `seen_requests` in key order, where neighbouring keys share pages, and forgets them from
//! memory. A key is new when it is neither in memory nor in `seen_requests`. What the
//! writer holds in memory is always what `seen_recent` holds: it is read back whenever the
//! writer (re)connects, and the keys of a transaction that rolls back are dropped with it.

use std::collections::HashSet;
use std::time::Duration;

use sqlx::Row;
use tokio::time::Instant;

use super::writer::WriteConn;
use super::{Backend, QueryContext, StoreError};

/// How often the keys in `seen_recent` move into `seen_requests` (SQLite).
const SETTLE_EVERY: Duration = Duration::from_secs(1);

/// Keys per multi-row statement (SQLite allows 32,766 parameters).
const CHUNK: usize = 256;

/// The keys in `seen_recent`, as the writer holds them (SQLite).
#[derive(Default)]
pub(crate) struct RecentKeys {
    /// `None` until read from `seen_recent` on the current connection.
    keys: Option<HashSet<String>>,
    /// Keys added by the transaction in progress, in order (undone if it rolls back).
    uncommitted: Vec<String>,
    /// When the keys were last moved (or read).
    settled: Option<Instant>,
}

impl RecentKeys {
    /// How many keys the transaction in progress has added (for [`Self::roll_back_to`]).
    pub(crate) fn mark(&self) -> usize {
        self.uncommitted.len()
    }

    /// The transaction committed: its keys are stored.
    pub(crate) fn committed(&mut self) {
        self.uncommitted.clear();
    }

    /// Everything after `mark` was rolled back.
    pub(crate) fn roll_back_to(&mut self, mark: usize) {
        let undone = self.uncommitted.split_off(mark.min(self.uncommitted.len()));
        if let Some(keys) = &mut self.keys {
            for key in &undone {
                keys.remove(key);
            }
        }
    }

    /// The connection was lost: read the table again on the next one.
    pub(crate) fn forget(&mut self) {
        *self = Self::default();
    }
}

/// Claims `keys` (distinct) inside the transaction in progress; returns those that were new.
pub(crate) async fn claim(c: &mut WriteConn, keys: &[&str]) -> Result<HashSet<String>, StoreError> {
    let mut fresh = HashSet::new();
    if c.backend == Backend::Postgres {
        for chunk in keys.chunks(CHUNK) {
            let statement = "INSERT INTO seen_requests (key, seen_at) VALUES {rows}
                             ON CONFLICT (key) DO NOTHING RETURNING key";
            fresh.extend(keys_returned(c, statement, chunk).await?);
        }
        return Ok(fresh);
    }
    if c.recent.keys.is_none() {
        let rows = sqlx::query("SELECT key FROM seen_recent")
            .fetch_all(c.conn())
            .await
            .context("reading the signed requests received last")?;
        c.recent.keys = Some(rows.iter().map(|r| r.get::<String, _>(0)).collect());
        c.recent.settled = Some(Instant::now());
    }
    let recent = c.recent.keys.as_ref().expect("read above");
    let unseen: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !recent.contains(*k))
        .collect();
    for chunk in unseen.chunks(CHUNK) {
        // Looked up and appended in one statement (one round trip to SQLite's thread).
        let statement = "INSERT INTO seen_recent (key, seen_at)
             SELECT column1, column2 FROM (VALUES {rows}) AS claimed
             WHERE NOT EXISTS (SELECT 1 FROM seen_requests WHERE seen_requests.key = claimed.column1)
             RETURNING key";
        let new = keys_returned(c, statement, chunk).await?;
        let recent = c.recent.keys.as_mut().expect("read above");
        for key in new {
            recent.insert(key.clone());
            c.recent.uncommitted.push(key.clone());
            fresh.insert(key);
        }
    }
    Ok(fresh)
}

/// Runs `statement`, its `{rows}` replaced by one `(key, now)` row per key, and returns the
/// keys it answers with (`RETURNING key`).
async fn keys_returned(
    c: &mut WriteConn,
    statement: &str,
    keys: &[&str],
) -> Result<Vec<String>, StoreError> {
    let rows = super::statement::value_rows(c.conn(), keys.len(), 2);
    let sql = statement.replace("{rows}", &rows);
    let now = crate::clock::now_rfc3339();
    let mut query = sqlx::query(&sql);
    for key in keys {
        query = query.bind(*key).bind(now.clone());
    }
    let rows = query
        .fetch_all(c.conn())
        .await
        .context("remembering signed requests")?;
    Ok(rows.iter().map(|r| r.get::<String, _>(0)).collect())
}

/// Between two groups (no transaction open): moves the keys of `seen_recent` into
/// `seen_requests`, in key order and in a transaction of their own, about once a second.
pub(crate) async fn settle(c: &mut WriteConn) -> Result<(), StoreError> {
    let due = c
        .recent
        .settled
        .is_some_and(|at| at.elapsed() >= SETTLE_EVERY);
    let held = c.recent.keys.as_ref().is_some_and(|k| !k.is_empty());
    if c.backend != Backend::Sqlite || !due || !held {
        return Ok(());
    }
    c.recent.settled = Some(Instant::now());
    let moved = sqlx::query(
        "BEGIN IMMEDIATE;
         INSERT OR IGNORE INTO seen_requests (key, seen_at)
             SELECT key, seen_at FROM seen_recent WHERE true ORDER BY key;
         DELETE FROM seen_recent;
         COMMIT;",
    )
    .execute(c.conn())
    .await
    .context("moving the signed requests received last");
    match moved {
        Ok(_) => {
            // Cleared, not replaced: the set keeps its room for the next second's keys.
            if let Some(keys) = &mut c.recent.keys {
                keys.clear();
            }
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(c.conn()).await;
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    async fn store_in(dir: &tempfile::TempDir) -> Store {
        let url = format!("sqlite://{}/drbot.db", dir.path().display());
        Store::open(&url).await.unwrap()
    }

    /// A key is new once: while the writer holds it, after it has moved into
    /// `seen_requests`, and after a restart in either state; a transaction that claimed it
    /// and rolled back leaves it unclaimed.
    #[tokio::test]
    async fn a_key_is_new_once_wherever_it_is_kept_and_a_rolled_back_claim_leaves_it_new() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(&dir).await;

        let mut tx = store.begin().await.unwrap();
        assert!(tx.first_use("1700000000:v0=rolled-back").await.unwrap());
        drop(tx);
        assert!(store.first_use("1700000000:v0=rolled-back").await.unwrap());
        assert!(!store.first_use("1700000000:v0=rolled-back").await.unwrap());

        // Two claims of one key in one group: the first takes it.
        let (a, b) = tokio::join!(
            store.first_use("1700000000:v0=twice"),
            store.first_use("1700000000:v0=twice")
        );
        assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|n| **n).count(), 1);
        let count = |table: &str| {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let url = format!("sqlite://{}/drbot.db", dir.path().display());
            async move {
                use sqlx::Connection;
                let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
                sqlx::query_scalar::<_, i64>(&sql)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap()
            }
        };
        assert_eq!(count("seen_recent").await, 2, "held by the writer");
        assert_eq!(count("seen_requests").await, 0);

        // Reopened while the keys are in `seen_recent`: read back.
        drop(store);
        let store = store_in(&dir).await;
        assert!(!store.first_use("1700000000:v0=rolled-back").await.unwrap());
        let mut tx = store.begin().await.unwrap();
        assert!(!tx.first_use("1700000000:v0=twice").await.unwrap());
        drop(tx);

        // A second on, the next group moves them into `seen_requests`.
        tokio::time::sleep(super::SETTLE_EVERY + std::time::Duration::from_millis(100)).await;
        assert!(store.first_use("1700000001:v0=later").await.unwrap());
        // The move follows that group's answer: give it a moment.
        for _ in 0..100 {
            if count("seen_requests").await == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(count("seen_requests").await, 3, "moved");
        assert_eq!(count("seen_recent").await, 0);
        assert!(!store.first_use("1700000000:v0=rolled-back").await.unwrap());
        assert!(!store.first_use("1700000001:v0=later").await.unwrap());
        drop(store);
        let store = store_in(&dir).await;
        for key in [
            "1700000000:v0=rolled-back",
            "1700000000:v0=twice",
            "1700000001:v0=later",
        ] {
            assert!(!store.first_use(key).await.unwrap(), "{key}");
        }
        assert!(store.first_use("1700000002:v0=new").await.unwrap());
    }
}
