//! Restore tests' instances, kept until drbot deletes them (SPEC §12), and the schedule of
//! tasks nobody asks for (restore tests, backup checks): each fires once across replicas
//! and restarts, because it is claimed in the store before it runs.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Liveness, QueryContext, Store, StoreError, StoreTx};

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

fn row_to_drill(r: &sqlx::any::AnyRow) -> DrillInstance {
    DrillInstance {
        instance: r.get(0),
        database: r.get(1),
        request_id: r.get(2),
        channel: r.get(3),
        delete_after: r.get(4),
        state: r.get(5),
    }
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
        let (instance, database, channel) = (
            instance.to_string(),
            database.to_string(),
            channel.to_string(),
        );
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO drill_instances (instance, database_name, request_id, channel, delete_after, state, created_at)
                     VALUES ($1, $2, $3, $4, $5, 'kept', $6)",
                )
                .bind(instance)
                .bind(database)
                .bind(request_id)
                .bind(channel)
                .bind(crate::clock::rfc3339(delete_after))
                .bind(crate::clock::now_rfc3339())
                .execute(c.conn())
                .await
                .context("recording a drill instance")?;
                Ok(())
            })
        })
        .await
    }

    /// Moves a kept drill instance's deletion to `at` (after its checks: `keep_for`).
    pub async fn delete_drill_instance_at(
        &mut self,
        instance: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let instance = instance.to_string();
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE drill_instances SET delete_after = $2 WHERE instance = $1 AND state = 'kept'",
                )
                .bind(instance)
                .bind(crate::clock::rfc3339(at))
                .execute(c.conn())
                .await
                .context("scheduling a drill instance's deletion")?;
                Ok(())
            })
        })
        .await
    }

    /// Claims the drill instances due for deletion (and those a stopped replica was
    /// deleting).
    pub async fn claim_due_drill_instances(
        &mut self,
        now: DateTime<Utc>,
        liveness: Liveness,
    ) -> Result<Vec<DrillInstance>, StoreError> {
        let replica = self.replica();
        let cutoff = self.cutoff(liveness);
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE drill_instances SET state = 'deleting', owner = $2 WHERE state = 'kept' AND delete_after <= $1")
                    .bind(crate::clock::rfc3339(now))
                    .bind(&replica)
                    .execute(c.conn())
                    .await
                    .context("claiming due drill instances")?;
                sqlx::query(&format!(
                    "UPDATE drill_instances SET owner = $1 WHERE state = 'deleting' AND {}",
                    super::replicas::orphaned(2, &replica)
                ))
                .bind(&replica)
                .bind(cutoff)
                .execute(c.conn())
                .await
                .context("taking over drill instances left half-deleted")?;
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM drill_instances WHERE state = 'deleting' AND owner = $1 ORDER BY created_at"
                ))
                .bind(&replica)
                .fetch_all(c.conn())
                .await
                .context("reading due drill instances")?;
                Ok(rows.iter().map(row_to_drill).collect())
            })
        })
        .await
    }

    /// Gives a claimed drill instance back, to be tried again at `at` (AWS was not reachable).
    pub async fn retry_drill_instance(
        &mut self,
        instance: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let instance = instance.to_string();
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE drill_instances SET state = 'kept', owner = NULL, delete_after = $2 WHERE instance = $1 AND state = 'deleting'",
                )
                .bind(instance)
                .bind(crate::clock::rfc3339(at))
                .execute(c.conn())
                .await
                .context("giving back a drill instance")?;
                Ok(())
            })
        })
        .await
    }

    /// Ends a drill instance's record: `deleted`, `gone` (AWS no longer had it) or
    /// `refused` (it did not look like drbot's drill any more, so drbot left it alone).
    pub async fn end_drill_instance(
        &mut self,
        instance: &str,
        state: &'static str,
    ) -> Result<(), StoreError> {
        let instance = instance.to_string();
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "UPDATE drill_instances SET state = $2, ended_at = $3 WHERE instance = $1",
                )
                .bind(instance)
                .bind(state)
                .bind(crate::clock::now_rfc3339())
                .execute(c.conn())
                .await
                .context("ending a drill instance")?;
                Ok(())
            })
        })
        .await
    }

    /// Claims scheduled task `name` when it never ran or last ran `every` ago or longer;
    /// `true` means this caller runs it now (and nobody else will until `every` passed).
    pub async fn claim_schedule(
        &mut self,
        name: &str,
        every: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let name = name.to_string();
        let due_before = now - chrono::Duration::seconds(every.as_secs() as i64);
        self.run(move |c| {
            Box::pin(async move {
                let inserted = sqlx::query(
                    "INSERT INTO schedule (name, last_run) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                )
                .bind(&name)
                .bind(crate::clock::rfc3339(now))
                .execute(c.conn())
                .await
                .context("claiming a scheduled task")?
                .rows_affected();
                if inserted > 0 {
                    return Ok(true);
                }
                let updated = sqlx::query(
                    "UPDATE schedule SET last_run = $2 WHERE name = $1 AND last_run <= $3",
                )
                .bind(&name)
                .bind(crate::clock::rfc3339(now))
                .bind(crate::clock::rfc3339(due_before))
                .execute(c.conn())
                .await
                .context("claiming a scheduled task")?
                .rows_affected();
                Ok(updated > 0)
            })
        })
        .await
    }
}

impl Store {
    /// Drill instances drbot still holds.
    pub async fn kept_drill_instances(&self) -> Result<Vec<DrillInstance>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM drill_instances WHERE state IN ('kept', 'deleting') ORDER BY created_at"
        ))
        .fetch_all(self.pool())
        .await
        .context("listing drill instances")?;
        Ok(rows.iter().map(row_to_drill).collect())
    }

    /// Whether scheduled task `name` is due (never ran, or last ran `every` ago or longer).
    /// A read: the claim that follows ([`StoreTx::claim_schedule`]) decides who runs it.
    pub async fn schedule_due(
        &self,
        name: &str,
        every: std::time::Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query("SELECT last_run FROM schedule WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .context("reading the schedule")?;
        let due_before =
            crate::clock::rfc3339(now - chrono::Duration::seconds(every.as_secs() as i64));
        Ok(row.is_none_or(|r| r.get::<String, _>(0) <= due_before))
    }

    /// The record of drill instance `instance`, whatever its state.
    pub async fn drill_instance(
        &self,
        instance: &str,
    ) -> Result<Option<DrillInstance>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM drill_instances WHERE instance = $1"
        ))
        .bind(instance)
        .fetch_optional(self.pool())
        .await
        .context("reading a drill instance")?;
        Ok(row.as_ref().map(row_to_drill))
    }
}
