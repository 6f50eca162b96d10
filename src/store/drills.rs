//! Restore tests' instances, kept until drbot deletes them (SPEC §12), and the schedule of
//! tasks nobody asks for (restore tests, backup checks): each fires once across replicas
//! and restarts, because it is claimed in the store before it runs.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::replicas::{Due, DueWork};
use super::statement::args;
use super::{Store, StoreError, StoreTx};

/// A restore test's instance that drbot created and will delete.
#[derive(Debug, Clone)]
pub struct DrillInstance {
    pub instance: String,
    pub database: String,
    pub request_id: i64,
    pub channel: String,
    pub delete_after: String,
    pub state: String,
}

const COLUMNS: &str = "instance, database_name, request_id, channel, delete_after, state";

fn read(r: &sqlx::any::AnyRow) -> Result<DrillInstance, StoreError> {
    Ok(DrillInstance {
        instance: r.get(0),
        database: r.get(1),
        request_id: r.get(2),
        channel: r.get(3),
        delete_after: r.get(4),
        state: r.get(5),
    })
}

impl StoreTx<'_> {
    /// Records a drill instance drbot is about to create (before the AWS call, so a crash
    /// right after it still leaves drbot knowing what to delete), to be deleted at
    /// `delete_after` at the latest.
    pub async fn keep_drill_instance(
        &mut self,
        instance: &str,
        database: &str,
        request_id: i64,
        channel: &str,
        delete_after: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO drill_instances (instance, database_name, request_id, channel, delete_after, state, created_at)
                   VALUES ($1, $2, $3, $4, $5, 'kept', $6)";
        let delete_after = crate::clock::rfc3339(delete_after);
        let args = args![
            instance,
            database,
            request_id,
            channel,
            delete_after,
            crate::clock::now_rfc3339()
        ];
        self.write("recording a drill instance", sql, args).await
    }

    /// Moves a kept drill instance's deletion to `at` (after its checks: `keep_for`).
    pub async fn delete_drill_instance_at(
        &mut self,
        instance: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql =
            "UPDATE drill_instances SET delete_after = $2 WHERE instance = $1 AND state = 'kept'";
        let args = args![instance, crate::clock::rfc3339(at)];
        self.write("scheduling a drill instance's deletion", sql, args)
            .await
    }

    /// Gives a claimed drill instance back, to be tried again at `at` (AWS was not reachable).
    pub async fn retry_drill_instance(
        &mut self,
        instance: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE drill_instances SET state = 'kept', owner = NULL, delete_after = $2 WHERE instance = $1 AND state = 'deleting'";
        let args = args![instance, crate::clock::rfc3339(at)];
        self.write("giving back a drill instance", sql, args).await
    }

    /// Ends a drill instance's record: `deleted`, `gone` (AWS no longer had it) or
    /// `refused` (it did not look like drbot's drill any more, so drbot left it alone).
    pub async fn end_drill_instance(
        &mut self,
        instance: &str,
        state: &'static str,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE drill_instances SET state = $2, ended_at = $3 WHERE instance = $1";
        let args = args![instance, state, crate::clock::now_rfc3339()];
        self.write("ending a drill instance", sql, args).await
    }

    /// Claims scheduled task `name` when it never ran or last ran `every` ago or longer;
    /// `true` means this caller runs it now (and nobody else will until `every` passed).
    pub async fn claim_schedule(
        &mut self,
        name: &str,
        every: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let due_before = now - chrono::Duration::seconds(every.as_secs() as i64);
        let now = crate::clock::rfc3339(now);
        let sql =
            "INSERT INTO schedule (name, last_run) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING";
        if self
            .execute("claiming a scheduled task", sql, args![name, &now])
            .await?
            > 0
        {
            return Ok(true);
        }
        let sql = "UPDATE schedule SET last_run = $2 WHERE name = $1 AND last_run <= $3";
        let args = args![name, now, crate::clock::rfc3339(due_before)];
        Ok(self.execute("claiming a scheduled task", sql, args).await? > 0)
    }
}

/// Drill instances whose deletion is due.
const DUE: Due = Due {
    table: "drill_instances",
    due: "state = 'kept' AND delete_after <= $1",
    claimed: "deleting",
    columns: COLUMNS,
    order: "created_at",
    what: [
        "claiming due drill instances",
        "taking over drill instances left half-deleted",
        "reading due drill instances",
    ],
};

impl Store {
    /// Drill instances drbot still holds.
    pub async fn kept_drill_instances(&self) -> Result<Vec<DrillInstance>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM drill_instances WHERE state IN ('kept', 'deleting') ORDER BY created_at");
        self.fetch("listing drill instances", &sql, args![], read)
            .await
    }

    /// Whether scheduled task `name` is due (never ran, or last ran `every` ago or longer).
    /// A read: the claim that follows ([`StoreTx::claim_schedule`]) decides who runs it.
    pub async fn schedule_due(
        &self,
        name: &str,
        every: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = "SELECT last_run FROM schedule WHERE name = $1";
        let last = self.fetch("reading the schedule", sql, args![name], |r| {
            Ok(r.get::<String, _>(0))
        });
        let due_before =
            crate::clock::rfc3339(now - chrono::Duration::seconds(every.as_secs() as i64));
        Ok(last.await?.first().is_none_or(|last| *last <= due_before))
    }

    /// The record of drill instance `instance`, whatever its state.
    pub async fn drill_instance(
        &self,
        instance: &str,
    ) -> Result<Option<DrillInstance>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM drill_instances WHERE instance = $1");
        let found = self.fetch("reading a drill instance", &sql, args![instance], read);
        Ok(found.await?.pop())
    }
}

/// Drill instances due for deletion (and those a stopped replica was deleting).
impl DueWork for DrillInstance {
    const DUE: Due = DUE;
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        read(row)
    }
}
