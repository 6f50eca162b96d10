//! Replicas sharing one store (SPEC §9). Each process has an id and renews a heartbeat;
//! what it claims or executes carries its id as `owner`. A replica whose heartbeat is older
//! than the lease is taken for dead, and its work passes to the others: its executing
//! requests become `interrupted` (never re-run), its running jobs are queued again, its
//! half-lifted blocks and half-posted requests are claimed by another replica.

use chrono::{DateTime, Utc};

use super::statement::args;
use super::{Store, StoreError, StoreTx};

/// `owner` is neither this replica (`me`) nor a live one, given the cutoff bound at `$n`.
/// A replica never takes its own work for orphaned, even when its heartbeat is late.
pub(crate) fn orphaned(n: usize, me: &str) -> String {
    debug_assert!(me
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    format!(
        "(owner IS NULL OR (owner <> '{me}' AND owner NOT IN (SELECT id FROM replicas WHERE heartbeat_at >= ${n})))"
    )
}

pub(crate) fn new_replica_id() -> String {
    // Only letters, digits, '-' and '.': the id is written into SQL as a literal.
    let host: String = std::env::var("HOSTNAME")
        .unwrap_or_else(|_| "drbot".to_string())
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{host}-{}-{nanos:08x}", std::process::id())
}

/// Who counts as alive when deciding what is orphaned.
#[derive(Debug, Clone, Copy)]
pub enum Liveness {
    /// Replicas whose heartbeat is younger than the lease.
    Heartbeat,
    /// Nobody else: at start-up on SQLite, the one process that could own anything is gone.
    OnlyMe,
}

impl Store {
    /// Runs `update` (an `UPDATE … WHERE …`) on the rows also owned by no live replica,
    /// in a transaction of its own; returns how many it changed.
    pub(crate) async fn release_orphaned(
        &self,
        liveness: Liveness,
        update: &'static str,
        context: &'static str,
    ) -> Result<u64, StoreError> {
        let sql = format!("{update} AND {}", orphaned(1, &self.replica));
        self.execute(context, sql, args![self.cutoff(liveness)])
            .await
    }

    /// The heartbeat cutoff: owners whose last heartbeat is older are taken for dead.
    pub(crate) fn cutoff(&self, liveness: Liveness) -> String {
        let now = crate::clock::now();
        let cutoff: DateTime<Utc> = match liveness {
            Liveness::Heartbeat => {
                now - chrono::Duration::milliseconds(self.lease.as_millis() as i64)
            }
            Liveness::OnlyMe => now + chrono::Duration::days(36500),
        };
        crate::clock::rfc3339(cutoff)
    }

    /// Renews this replica's heartbeat.
    pub async fn heartbeat(&self) -> Result<(), StoreError> {
        let sql = "INSERT INTO replicas (id, started_at, heartbeat_at) VALUES ($1, $2, $2)
                   ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at";
        // The lease counts from before the write: what the store holds is never fresher
        // than what this replica believes.
        let started = crate::clock::now();
        let args = args![&*self.replica, crate::clock::rfc3339(started)];
        self.write("renewing the replica's heartbeat", sql, args)
            .await?;
        self.held.renewed(started, self.lease);
        Ok(())
    }

    /// At shutdown: this replica is gone (what it still owns is orphaned at once).
    pub async fn retire(&self) -> Result<(), StoreError> {
        let sql = "DELETE FROM replicas WHERE id = $1";
        self.write("retiring the replica", sql, args![&*self.replica])
            .await
    }

    /// How long a silent replica is still taken for alive.
    pub fn lease(&self) -> std::time::Duration {
        self.lease
    }

    /// How often the heartbeat is renewed.
    pub fn heartbeat_every(&self) -> std::time::Duration {
        (self.lease / 5).max(std::time::Duration::from_millis(200))
    }
}

/// Work that falls due in `table` and is done by one replica: rows matching `due` (with
/// the time bound at `$1`) move to state `claimed`, owned by the claimer.
pub struct Due {
    pub table: &'static str,
    pub due: &'static str,
    pub claimed: &'static str,
    pub columns: &'static str,
    pub order: &'static str,
    /// What each of the three statements does, for errors.
    pub what: [&'static str; 3],
}

impl StoreTx<'_> {
    /// Claims the rows of `due` that are due at `now`, takes over those a replica that is
    /// gone left claimed (a crash), and answers every row this replica now holds claimed.
    pub(crate) async fn claim_due<T: Send + 'static>(
        &mut self,
        due: &Due,
        now: DateTime<Utc>,
        liveness: Liveness,
        read: fn(&sqlx::any::AnyRow) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let Due { table, claimed, .. } = due;
        let replica = self.replica();
        let sql = format!(
            "UPDATE {table} SET state = '{claimed}', owner = $2 WHERE {}",
            due.due
        );
        let args = args![crate::clock::rfc3339(now), &replica];
        self.execute(due.what[0], sql, args).await?;
        // Rows another replica left claimed are taken over only with a lease held long
        // enough to know it is gone (not merely silent during a store stall).
        if self.store.may_take_over(liveness) {
            let sql = format!(
                "UPDATE {table} SET owner = $1 WHERE state = '{claimed}' AND {}",
                orphaned(2, &replica)
            );
            let args = args![&replica, self.cutoff(liveness)];
            self.execute(due.what[1], sql, args).await?;
        }
        let sql = format!(
            "SELECT {} FROM {table} WHERE state = '{claimed}' AND owner = $1 ORDER BY {}",
            due.columns, due.order
        );
        self.fetch(due.what[2], sql, args![replica], read).await
    }
}

/// Work that falls due and is done once across replicas (timed blocks, drill instances).
pub trait DueWork: Sized + Send + 'static {
    #[doc(hidden)]
    const DUE: Due;
    #[doc(hidden)]
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, StoreError>;
}

impl Store {
    /// Claims, in a transaction of its own, the `T` due at `now`, plus those a replica that
    /// is gone left claimed (a crash); a row another live replica holds is not taken. The
    /// caller does the work, then ends each row.
    pub async fn claim<T: DueWork>(
        &self,
        now: DateTime<Utc>,
        liveness: Liveness,
    ) -> Result<Vec<T>, StoreError> {
        let mut tx = self.begin().await?;
        let claimed = tx.claim_due(&T::DUE, now, liveness, T::read).await?;
        tx.commit().await?;
        Ok(claimed)
    }
}
