//! The writer (SPEC §9): one task owns the write connection and every write transaction.
//!
//! A caller's [`StoreTx`](super::StoreTx) is only a handle: each of its operations is sent to
//! this task and run here, on the writer's connection. A request future that is dropped
//! half-way (Slack closed the connection, a timeout fired) can therefore never leave a
//! transaction open: the writer notices the closed handle and rolls that unit back, and the
//! next unit starts clean.
//!
//! Group commit: units that arrive together run one after the other inside a single database
//! transaction, each in its own savepoint (a unit that fails or is abandoned rolls back alone),
//! and the whole group is committed with one fsync. Each caller's `commit()` returns only
//! after that commit, so an acknowledged command is durable before its 200.
//!
//! On PostgreSQL every group takes a transaction-scoped advisory lock first, so the writers of
//! several replicas take turns: the audit chain stays one chain and conditional updates
//! (claims, `pending → executing`) are decided one at a time across the replicas.

use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::{AnyConnection, Connection};
use std::sync::atomic::{AtomicU8, Ordering};
use tokio::sync::{mpsc, oneshot};

use tokio::time::Instant;
use tracing::Instrument;

use super::{Backend, NewEvent, QueryContext, StoreError, StoredEvent};

/// Units taken into one group commit at most.
const MAX_GROUP: usize = 512;

/// How many times the writer yields before taking a group (see [`Writer::run`]).
const GATHER_YIELDS: usize = 4;
/// How long the writer waits for a unit's next operation before rolling it back. Units are
/// short sequences of queries; a caller that stalls this long has gone or misbehaves.
const UNIT_IDLE_LIMIT: Duration = Duration::from_secs(5);
/// How often, while it writes, the writer copies SQLite's write-ahead log into the database
/// (a passive checkpoint on its own connection, between two groups). Only the writer can
/// do it so that the log starts again from its beginning: a checkpoint run beside it never
/// catches up with a writer that keeps appending, and the log then grows without end
/// (measured: 90 MB/s under load), every commit writing to newly allocated blocks and every
/// page read searching an ever larger index.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// With no work for this long, the writer checkpoints what it wrote since the last one.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(1);
/// The advisory lock key that serialises writers across replicas (PostgreSQL).
const CHAIN_LOCK: i64 = 0x0064_7262_6f74; // "drbot"

/// The writer's connection, lent to each operation.
pub struct WriteConn {
    conn: Option<AnyConnection>,
    pub(crate) backend: Backend,
    /// The signed requests received last (SQLite), see [`super::replay_keys`].
    pub(crate) recent: super::replay_keys::RecentKeys,
    /// The chain's tail (seq, hash), read once per group and kept while the group runs.
    pub(crate) tail: Option<(i64, String)>,
}

impl WriteConn {
    pub(crate) fn conn(&mut self) -> &mut AnyConnection {
        self.conn
            .as_mut()
            .expect("operations run only while the writer holds a connection")
    }
}

pub(crate) type Op = Box<dyn for<'c> FnOnce(&'c mut WriteConn) -> BoxFuture<'c, ()> + Send>;

pub(crate) enum UnitMsg {
    Op(Op),
    Commit(oneshot::Sender<Result<(), StoreError>>),
}

/// A unit of work: the receiving end of one `StoreTx`.
pub(crate) type Unit = mpsc::UnboundedReceiver<UnitMsg>;

/// What callers send the writer.
pub(crate) enum Work {
    /// An interactive transaction (reads, conditional updates, appends).
    Unit(Unit, Option<Ticket>),
    /// One event to append and nothing else (the acknowledgement path). Consecutive appends
    /// of a group go into the log as one multi-row insert.
    /// With a key (a signed request's signature), the event is stored only if the key is
    /// new, in the same group: a replay is answered [`StoreError::Replayed`].
    Append(
        NewEvent,
        oneshot::Sender<Result<StoredEvent, StoreError>>,
        Option<Ticket>,
        Option<String>,
    ),
    /// Remembers a key; answers whether it was new. Batched like appends.
    Seen(String, SeenReply, Option<Ticket>),
}

/// A key that may be used once (a signed request's signature): `true` the first time.
pub(crate) type SeenReply = oneshot::Sender<Result<bool, StoreError>>;

/// Rows per multi-row insert (10 parameters each; SQLite allows 32,766 per statement).
const APPEND_CHUNK: usize = 256;

type Reply = oneshot::Sender<Result<(), StoreError>>;
type AppendReply = oneshot::Sender<Result<StoredEvent, StoreError>>;
type PendingAppend = (NewEvent, AppendReply, Option<String>);

pub(crate) struct Writer {
    url: String,
    conn: WriteConn,
    units: mpsc::Receiver<Work>,
    /// When the writer last checkpointed, and whether it has committed since (SQLite).
    checkpointed: Instant,
    dirty: bool,
}

impl Writer {
    pub(crate) fn new(
        backend: Backend,
        url: String,
        conn: AnyConnection,
        units: mpsc::Receiver<Work>,
    ) -> Self {
        Self {
            url,
            conn: WriteConn {
                conn: Some(conn),
                backend,
                recent: Default::default(),
                tail: None,
            },
            units,
            checkpointed: Instant::now(),
            dirty: false,
        }
    }

    /// Runs until every `Store` handle is gone.
    pub(crate) async fn run(mut self) {
        loop {
            let first = if self.dirty {
                match tokio::time::timeout(IDLE_CHECKPOINT, self.units.recv()).await {
                    Ok(first) => first,
                    Err(_) => {
                        self.checkpoint().await;
                        continue;
                    }
                }
            } else {
                self.units.recv().await
            };
            let Some(first) = first else { break };
            // Let the request handlers that are ready run first, so what they send joins
            // this group (one commit, one fsync) instead of waiting for the next; with
            // nothing else to run, this costs nothing.
            for _ in 0..GATHER_YIELDS {
                tokio::task::yield_now().await;
            }
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match self.units.try_recv() {
                    Ok(unit) => group.push(unit),
                    Err(_) => break,
                }
            }
            let span = tracing::debug_span!("store.group", units = group.len());
            self.group(group).instrument(span).await;
            if self.conn.conn.is_some() {
                if let Err(e) = super::replay_keys::settle(&mut self.conn).await {
                    tracing::warn!(error = %e, "could not move the signed requests received last");
                    self.forget_connection_if_broken(&e);
                }
            }
            if self.dirty && self.checkpointed.elapsed() >= CHECKPOINT_EVERY {
                self.checkpoint().await;
            }
        }
        if let Some(conn) = self.conn.conn.take() {
            let _ = conn.close().await;
        }
    }

    /// Copies the write-ahead log into the database (SQLite; see [`CHECKPOINT_EVERY`]).
    /// Passive: it never waits for a reader, and what a reader still uses is copied next
    /// time. The callers of the last group have had their answers already.
    async fn checkpoint(&mut self) {
        self.dirty = false;
        self.checkpointed = Instant::now();
        let Some(conn) = self.conn.conn.as_mut() else {
            return;
        };
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(conn)
            .await
        {
            tracing::debug!(error = %e, "checkpoint skipped");
        }
    }

    async fn group(&mut self, group: Vec<Work>) {
        if let Err(e) = self.begin().await {
            tracing::error!(error = %e, "the store cannot start a write transaction");
            self.forget_connection_if_broken(&e);
            for work in group {
                fail_work(work, &e).await;
            }
            return;
        }
        let mut committed: Vec<Reply> = Vec::with_capacity(group.len());
        let mut appended: Vec<(StoredEvent, AppendReply)> = Vec::new();
        let mut appends: Vec<PendingAppend> = Vec::new();
        let mut seen: Vec<(String, SeenReply)> = Vec::new();
        let mut seen_done: Vec<(bool, SeenReply)> = Vec::new();
        let mut fatal = None;
        let mut units = 0;
        for work in group {
            if let Some(e) = &fatal {
                fail_work(work, e).await;
                continue;
            }
            if work.too_late() {
                // Its caller has answered (or is about to answer) "not recorded".
                fail_work(
                    work,
                    &StoreError::NotWritten("the store did not get to it in time".into()),
                )
                .await;
                continue;
            }
            match work {
                Work::Append(event, reply, _, key) => appends.push((event, reply, key)),
                Work::Seen(key, reply, _) => seen.push((key, reply)),
                Work::Unit(unit, _) => {
                    // Appends queued before this unit go first, in order.
                    if let Err(e) = self.flush_appends(&mut appends, &mut appended).await {
                        fatal = Some(e);
                        fail_work(Work::Unit(unit, None), fatal.as_ref().unwrap()).await;
                        continue;
                    }
                    units += 1;
                    match self.unit(units, unit).await {
                        Ok(Some(reply)) => committed.push(reply),
                        Ok(None) => {}
                        Err(e) => fatal = Some(e),
                    }
                }
            }
        }
        if fatal.is_none() {
            if let Err(e) = self.flush_appends(&mut appends, &mut appended).await {
                fatal = Some(e);
            }
        }
        if fatal.is_none() {
            match self.flush_seen(std::mem::take(&mut seen)).await {
                Ok(done) => seen_done = done,
                Err((e, back)) => {
                    seen = back;
                    fatal = Some(e);
                }
            }
        }
        let outcome = match fatal {
            Some(e) => {
                let _ = sqlx::query("ROLLBACK").execute(self.conn.conn()).await;
                Err(e)
            }
            None => sqlx::query("COMMIT")
                .execute(self.conn.conn())
                .await
                .map(|_| ())
                .context("committing"),
        };
        match &outcome {
            Ok(()) => {
                self.dirty = self.conn.backend == Backend::Sqlite;
                self.conn.recent.committed();
            }
            Err(e) => {
                self.conn.recent.roll_back_to(0);
                tracing::error!(error = %e, "a group of writes was not committed");
                self.forget_connection_if_broken(e);
            }
        }
        self.conn.tail = None;
        for reply in committed {
            let _ = reply.send(clone_outcome(&outcome));
        }
        for (event, reply) in appended {
            let _ = reply.send(clone_outcome(&outcome).map(|_| event));
        }
        for (fresh, reply) in seen_done {
            let _ = reply.send(clone_outcome(&outcome).map(|_| fresh));
        }
        for (_, reply) in seen {
            let _ = reply.send(Err(clone_outcome(&outcome)
                .err()
                .unwrap_or_else(|| StoreError::NotWritten("the group failed".into()))));
        }
        for (_, reply, _) in appends {
            let _ = reply.send(Err(clone_outcome(&outcome)
                .err()
                .unwrap_or_else(|| StoreError::NotWritten("the group failed".into()))));
        }
    }

    /// Inserts the keys of the group at once; a key already stored, or repeated within the
    /// group, is not fresh.
    #[allow(clippy::type_complexity)]
    async fn flush_seen(
        &mut self,
        seen: Vec<(String, SeenReply)>,
    ) -> Result<Vec<(bool, SeenReply)>, (StoreError, Vec<(String, SeenReply)>)> {
        if seen.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<&str> = seen.iter().map(|(k, _)| k.as_str()).collect();
        let mut fresh = match self.insert_keys(&keys).await {
            Ok(fresh) => fresh,
            Err(e) => return Err((e, seen)),
        };
        let mut out = Vec::with_capacity(seen.len());
        for (key, reply) in seen {
            // The first of several identical keys in the group takes it.
            out.push((fresh.remove(&key), reply));
        }
        Ok(out)
    }

    /// Claims `keys` (distinct or not); returns those that were new.
    async fn insert_keys(
        &mut self,
        keys: &[&str],
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let mut unique: Vec<&str> = Vec::new();
        for key in keys {
            if !unique.contains(key) {
                unique.push(key);
            }
        }
        super::replay_keys::claim(&mut self.conn, &unique).await
    }

    /// Writes the queued appends as multi-row inserts; answered after the group's commit.
    async fn flush_appends(
        &mut self,
        appends: &mut Vec<PendingAppend>,
        appended: &mut Vec<(StoredEvent, AppendReply)>,
    ) -> Result<(), StoreError> {
        while !appends.is_empty() {
            let take = appends.len().min(APPEND_CHUNK);
            let chunk: Vec<PendingAppend> = appends.drain(..take).collect();
            // Keyed appends first claim their key: a replay is answered now and not stored.
            let keys: Vec<&str> = chunk.iter().filter_map(|(_, _, k)| k.as_deref()).collect();
            let mut fresh = match self.insert_keys(&keys).await {
                Ok(fresh) => fresh,
                Err(e) => return Err(refuse(chunk.into_iter().map(|(_, r, _)| r), e)),
            };
            let mut accepted = Vec::with_capacity(chunk.len());
            for (event, reply, key) in chunk {
                match key {
                    Some(key) if !fresh.remove(&key) => {
                        let _ = reply.send(Err(StoreError::Replayed));
                    }
                    _ => accepted.push((event, reply)),
                }
            }
            if accepted.is_empty() {
                continue;
            }
            let (mut seq, mut prev) = match chain_tail(&mut self.conn).await {
                Ok(tail) => tail,
                Err(e) => return Err(refuse(accepted.into_iter().map(|(_, r)| r), e)),
            };
            let mut rows = Vec::with_capacity(accepted.len());
            for (event, reply) in accepted {
                seq += 1;
                let stored = super::events::chained(seq, prev, event);
                prev = stored.hash.clone();
                rows.push((stored, reply));
            }
            let events: Vec<&StoredEvent> = rows.iter().map(|(e, _)| e).collect();
            if let Err(e) = super::events::insert_many(self.conn.conn(), &events).await {
                return Err(refuse(rows.into_iter().map(|(_, r)| r), e));
            }
            self.conn.tail = Some((seq, prev));
            appended.extend(rows);
        }
        Ok(())
    }

    /// Opens the group's transaction (reconnecting first when the connection was lost).
    async fn begin(&mut self) -> Result<(), StoreError> {
        if self.conn.conn.is_none() {
            let conn = super::connect(self.conn.backend, &self.url).await?;
            self.conn.conn = Some(conn);
            tracing::info!("the store's write connection is back");
        }
        self.conn.tail = None;
        let backend = self.conn.backend;
        let conn = self.conn.conn();
        match backend {
            Backend::Sqlite => {
                sqlx::query("BEGIN IMMEDIATE")
                    .execute(&mut *conn)
                    .await
                    .context("starting a write transaction")?;
            }
            Backend::Postgres => {
                sqlx::query("BEGIN")
                    .execute(&mut *conn)
                    .await
                    .context("starting a write transaction")?;
                if let Err(e) = sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(CHAIN_LOCK)
                    .execute(&mut *conn)
                    .await
                    .context("taking the writers' lock")
                {
                    let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Runs one unit in its savepoint. `Ok(Some(reply))`: released, to be answered after the
    /// group's commit; `Ok(None)`: rolled back alone; `Err`: the group's transaction is lost.
    async fn unit(
        &mut self,
        i: usize,
        mut unit: Unit,
    ) -> Result<Option<oneshot::Sender<Result<(), StoreError>>>, StoreError> {
        let savepoint = format!("u{i}");
        sqlx::query(&format!("SAVEPOINT {savepoint}"))
            .execute(self.conn.conn())
            .await
            .context("opening a savepoint")?;
        let tail_before = self.conn.tail.clone();
        let keys_before = self.conn.recent.mark();
        loop {
            let msg = match tokio::time::timeout(UNIT_IDLE_LIMIT, unit.recv()).await {
                Ok(msg) => msg,
                Err(_) => {
                    tracing::error!(
                        "a write transaction was idle for {UNIT_IDLE_LIMIT:?}; rolled back"
                    );
                    unit.close();
                    None
                }
            };
            match msg {
                Some(UnitMsg::Op(op)) => op(&mut self.conn).await,
                Some(UnitMsg::Commit(reply)) => {
                    let released = sqlx::query(&format!("RELEASE SAVEPOINT {savepoint}"))
                        .execute(self.conn.conn())
                        .await
                        .context("committing");
                    return match released {
                        Ok(_) => Ok(Some(reply)),
                        Err(e) => {
                            // A unit committed after one of its queries failed (PostgreSQL
                            // refuses to go on): undo it alone and tell its caller.
                            self.rollback_to(&savepoint).await?;
                            self.conn.tail = tail_before;
                            self.conn.recent.roll_back_to(keys_before);
                            let _ = reply.send(Err(e));
                            Ok(None)
                        }
                    };
                }
                None => {
                    // Dropped without commit (an early return, an error, or a caller that
                    // went away): everything this unit wrote is undone, nothing else.
                    self.rollback_to(&savepoint).await?;
                    self.conn.tail = tail_before;
                    self.conn.recent.roll_back_to(keys_before);
                    return Ok(None);
                }
            }
        }
    }

    async fn rollback_to(&mut self, savepoint: &str) -> Result<(), StoreError> {
        sqlx::query(&format!("ROLLBACK TO SAVEPOINT {savepoint}"))
            .execute(self.conn.conn())
            .await
            .context("rolling back a savepoint")?;
        sqlx::query(&format!("RELEASE SAVEPOINT {savepoint}"))
            .execute(self.conn.conn())
            .await
            .context("releasing a savepoint")?;
        Ok(())
    }

    fn forget_connection_if_broken(&mut self, e: &StoreError) {
        if e.is_connection_lost() {
            self.conn.conn = None;
            self.conn.recent.forget();
        }
    }
}

impl Work {
    /// True when its caller gave up waiting before the writer took it (then it is never
    /// written); otherwise the writer takes it and its caller waits for the outcome.
    fn too_late(&self) -> bool {
        let ticket = match self {
            Work::Unit(_, t) | Work::Append(_, _, t, _) | Work::Seen(_, _, t) => t,
        };
        ticket.as_ref().is_some_and(|t| !t.take())
    }
}

/// A write its caller may give up on — but only before the writer has taken it, so that a
/// caller told "not recorded" is always right.
#[derive(Clone)]
pub(crate) struct Ticket {
    state: std::sync::Arc<AtomicU8>,
    deadline: Instant,
}

const QUEUED: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Ticket {
    pub(crate) fn new(deadline: Instant) -> Self {
        Self {
            state: std::sync::Arc::new(AtomicU8::new(QUEUED)),
            deadline,
        }
    }

    fn take(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .map_or_else(|now| now == TAKEN, |_| true)
    }

    fn abandon(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Waits for the writer's answer; with a ticket, gives up at its deadline when the writer
/// has not taken the work yet.
pub(crate) async fn answer<T>(
    ticket: Option<&Ticket>,
    mut rx: oneshot::Receiver<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let gone = || StoreError::NotWritten("the store's writer stopped before answering".into());
    if let Some(ticket) = ticket {
        match tokio::time::timeout_at(ticket.deadline, &mut rx).await {
            Ok(answer) => return answer.map_err(|_| gone())?,
            Err(_) if ticket.abandon() => {
                return Err(StoreError::NotWritten(
                    "the store did not take it in time".into(),
                ))
            }
            Err(_) => {}
        }
    }
    rx.await.map_err(|_| gone())?
}

/// Answers the callers of appends the group could not write with the reason (the group
/// rolls back), rather than dropping their replies; returns the reason for the group.
fn refuse(replies: impl IntoIterator<Item = AppendReply>, e: StoreError) -> StoreError {
    for reply in replies {
        let _ = reply.send(Err(e.shallow_clone()));
    }
    e
}

async fn fail_work(work: Work, e: &StoreError) {
    match work {
        Work::Unit(unit, _) => fail_unit(unit, e).await,
        Work::Append(_, reply, _, _) => {
            let _ = reply.send(Err(e.shallow_clone()));
        }
        Work::Seen(_, reply, _) => {
            let _ = reply.send(Err(e.shallow_clone()));
        }
    }
}

async fn fail_unit(mut unit: Unit, e: &StoreError) {
    unit.close();
    while let Some(msg) = unit.recv().await {
        if let UnitMsg::Commit(reply) = msg {
            let _ = reply.send(Err(e.shallow_clone()));
        }
    }
}

fn clone_outcome(outcome: &Result<(), StoreError>) -> Result<(), StoreError> {
    match outcome {
        Ok(()) => Ok(()),
        Err(e) => Err(e.shallow_clone()),
    }
}

/// The current tail of the chain, read inside the writer's transaction.
pub(crate) async fn chain_tail(c: &mut WriteConn) -> Result<(i64, String), StoreError> {
    if let Some(tail) = &c.tail {
        return Ok(tail.clone());
    }
    let row = sqlx::query("SELECT seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash FROM events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(c.conn())
        .await
        .context("reading the tail of the event log")?;
    let tail = match row {
        Some(row) => {
            let event = super::events::row_to_event(&row)?;
            if let Some(why) = super::events::foreign_tail(&event) {
                let refused = StoreError::ForeignChain {
                    seq: event.seq,
                    why,
                };
                tracing::error!(error = %refused, "the audit chain is being written with another key");
                return Err(refused);
            }
            (event.seq, event.hash)
        }
        None => (0, super::GENESIS_HASH.to_string()),
    };
    c.tail = Some(tail.clone());
    Ok(tail)
}

#[cfg(test)]
mod tests {
    use crate::store::{EventKind, NewEvent, Store};
    use sqlx::Connection;

    /// An append the database refuses is answered with the database's reason, and the store
    /// goes on working once the reason is gone.
    #[tokio::test]
    async fn an_append_the_database_refuses_is_answered_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/drbot.db", dir.path().display());
        let store = Store::open(&url).await.unwrap();
        let event = || NewEvent::new(EventKind::CommandAccepted, "U1", "C1", "/dr help");
        store.append(event()).await.unwrap();

        let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
        sqlx::query("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;")
            .execute(&mut conn)
            .await
            .unwrap();
        let (a, b) = tokio::join!(
            store.append_keyed(event(), Some("1700000000:v0=a")),
            store.append(event())
        );
        for answer in [a.map(drop), b.map(drop)] {
            let e = answer.unwrap_err().to_string();
            assert!(e.contains("refused by the test"), "{e}");
        }

        sqlx::query("DROP TRIGGER refuse")
            .execute(&mut conn)
            .await
            .unwrap();
        // The refused key was rolled back with its event: the same request is new.
        store
            .append_keyed(event(), Some("1700000000:v0=a"))
            .await
            .unwrap();
        assert!(matches!(
            store.verify().await.unwrap(),
            crate::store::VerifyReport::Intact { count: 2 }
        ));
    }
}
