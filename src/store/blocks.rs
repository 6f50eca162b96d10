//! Addresses drbot blocked, with who, why and when the block ends. A timed block is lifted
//! by a worker; the row's state changes only through conditional updates, so a restart
//! neither forgets nor repeats a lift.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{Liveness, QueryContext, Store, StoreError, StoreTx};

#[derive(Debug, Clone)]
pub struct NewBlock {
    pub cidr: String,
    /// The `[[waf.ip_sets]]` name.
    pub ip_set: String,
    pub set_name: String,
    pub set_id: String,
    pub scope: String,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub reason: Option<String>,
    pub channel: String,
    pub incident: Option<String>,
    pub request_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Block {
    pub id: i64,
    pub cidr: String,
    pub ip_set: String,
    pub set_name: String,
    pub set_id: String,
    pub scope: String,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub reason: Option<String>,
    pub channel: String,
    pub incident: Option<String>,
    pub created_at: String,
    pub expires_at: Option<DateTime<Utc>>,
    pub state: String,
}

const COLUMNS: &str = "id, cidr, ip_set, set_name, set_id, scope, requested_by, approved_by, reason, channel, incident, created_at, expires_at, state";

fn row_to_block(row: &sqlx::any::AnyRow) -> Block {
    Block {
        id: row.get(0),
        cidr: row.get(1),
        ip_set: row.get(2),
        set_name: row.get(3),
        set_id: row.get(4),
        scope: row.get(5),
        requested_by: row.get(6),
        approved_by: row.get(7),
        reason: row.get(8),
        channel: row.get(9),
        incident: row.get(10),
        created_at: row.get(11),
        expires_at: row
            .get::<Option<String>, _>(12)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
        state: row.get(13),
    }
}

impl StoreTx<'_> {
    /// Records a block; an earlier active block of the same address in the same set is
    /// superseded (its timer no longer applies).
    pub async fn add_block(&mut self, block: &NewBlock) -> Result<(), StoreError> {
        let block = block.clone();
        self.run(move |c| Box::pin(async move {
        let now = crate::clock::now_rfc3339();
        sqlx::query("UPDATE blocks SET state = 'superseded', ended_at = $3 WHERE set_id = $1 AND cidr = $2 AND state = 'active'")
            .bind(&block.set_id)
            .bind(&block.cidr)
            .bind(&now)
            .execute(c.conn())
            .await
            .context("superseding an earlier block")?;
        sqlx::query(
            "INSERT INTO blocks (cidr, ip_set, set_name, set_id, scope, requested_by, approved_by, reason, channel, incident, request_id, created_at, expires_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active')",
        )
        .bind(&block.cidr)
        .bind(&block.ip_set)
        .bind(&block.set_name)
        .bind(&block.set_id)
        .bind(&block.scope)
        .bind(&block.requested_by)
        .bind(&block.approved_by)
        .bind(&block.reason)
        .bind(&block.channel)
        .bind(&block.incident)
        .bind(block.request_id)
        .bind(&now)
        .bind(block.expires_at.map(crate::clock::rfc3339))
        .execute(c.conn())
        .await
        .context("recording a block")?;
        Ok(())
        })).await
    }

    /// Ends the active blocks of `cidr` in set `set_id` (`removed` or `lifted`).
    pub async fn end_blocks(
        &mut self,
        set_id: &str,
        cidr: &str,
        state: &str,
    ) -> Result<u64, StoreError> {
        let set_id = set_id.to_string();
        let cidr = cidr.to_string();
        let state = state.to_string();
        self.run(move |c| Box::pin(async move {
        let done = sqlx::query("UPDATE blocks SET state = $3, ended_at = $4 WHERE set_id = $1 AND cidr = $2 AND state IN ('active', 'lifting')")
            .bind(set_id)
            .bind(cidr)
            .bind(state)
            .bind(crate::clock::now_rfc3339())
            .execute(c.conn())
            .await
            .context("ending a block")?;
        Ok(done.rows_affected())
        })).await
    }

    /// Claims timed blocks that are due (active → lifting), plus any left `lifting` by a
    /// replica that is gone (a crash); the caller removes them from WAF and then ends them.
    /// A block another live replica is lifting is not taken.
    pub async fn claim_due_blocks(
        &mut self,
        now: DateTime<Utc>,
        liveness: Liveness,
    ) -> Result<Vec<Block>, StoreError> {
        let replica = self.replica();
        let cutoff = self.cutoff(liveness);
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE blocks SET state = 'lifting', owner = $2 WHERE state = 'active' AND expires_at IS NOT NULL AND expires_at <= $1")
                    .bind(crate::clock::rfc3339(now))
                    .bind(&replica)
                    .execute(c.conn())
                    .await
                    .context("claiming due blocks")?;
                sqlx::query(&format!(
                    "UPDATE blocks SET owner = $1 WHERE state = 'lifting' AND {}",
                    super::replicas::orphaned(2, &replica)
                ))
                .bind(&replica)
                .bind(cutoff)
                .execute(c.conn())
                .await
                .context("taking over blocks left half-lifted")?;
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM blocks WHERE state = 'lifting' AND owner = $1 ORDER BY id"
                ))
                .bind(&replica)
                .fetch_all(c.conn())
                .await
                .context("reading due blocks")?;
                Ok(rows.iter().map(row_to_block).collect())
            })
        })
        .await
    }
}

impl Store {
    /// Blocks drbot still holds (active), oldest first.
    pub async fn active_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM blocks WHERE state IN ('active', 'lifting') ORDER BY id"
        ))
        .fetch_all(self.pool())
        .await
        .context("listing blocks")?;
        Ok(rows.iter().map(row_to_block).collect())
    }
}
