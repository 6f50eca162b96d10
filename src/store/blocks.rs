//! Addresses drbot blocked, with who, why and when the block ends. A timed block is lifted
//! by a worker; the row's state changes only through conditional updates, so a restart
//! neither forgets nor repeats a lift.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::replicas::{Due, DueWork};
use super::statement::args;
use super::{Store, StoreError, StoreTx};
use crate::config::WafScope;

#[derive(Debug, Clone)]
pub struct NewBlock {
    pub cidr: String,
    /// The `[[waf.ip_sets]]` name.
    pub ip_set: String,
    pub set_name: String,
    pub set_id: String,
    pub scope: WafScope,
    pub requested_by: String,
    pub approved_by: Option<String>,
    pub reason: Option<String>,
    pub channel: String,
    pub incident: Option<String>,
    pub request_id: Option<i64>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A block as stored: what was asked ([`NewBlock`], read through `Deref`) and what the
/// store keeps of it.
#[derive(Debug, Clone)]
pub struct Block {
    pub id: i64,
    pub created_at: String,
    pub state: String,
    pub asked: NewBlock,
}

impl std::ops::Deref for Block {
    type Target = NewBlock;

    fn deref(&self) -> &NewBlock {
        &self.asked
    }
}

const COLUMNS: &str = "id, cidr, ip_set, set_name, set_id, scope, requested_by, approved_by, reason, channel, incident, request_id, expires_at, created_at, state";

fn read(row: &sqlx::any::AnyRow) -> Result<Block, StoreError> {
    let scope: String = row.get(5);
    let scope = WafScope::parse(&scope).ok_or_else(|| StoreError::Corrupt {
        seq: 0,
        message: format!("a stored block has the unknown WAF scope `{scope}`"),
    })?;
    Ok(Block {
        id: row.get(0),
        asked: NewBlock {
            cidr: row.get(1),
            ip_set: row.get(2),
            set_name: row.get(3),
            set_id: row.get(4),
            scope,
            requested_by: row.get(6),
            approved_by: row.get(7),
            reason: row.get(8),
            channel: row.get(9),
            incident: row.get(10),
            request_id: row.get(11),
            expires_at: row
                .get::<Option<String>, _>(12)
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.with_timezone(&Utc)),
        },
        created_at: row.get(13),
        state: row.get(14),
    })
}

impl StoreTx<'_> {
    /// Records a block; an earlier active block of the same address in the same set is
    /// superseded (its timer no longer applies).
    pub async fn add_block(&mut self, block: &NewBlock) -> Result<(), StoreError> {
        let now = crate::clock::now_rfc3339();
        let sql = "UPDATE blocks SET state = 'superseded', ended_at = $3 WHERE set_id = $1 AND cidr = $2 AND state IN ('active', 'lifting')";
        let args = args![&block.set_id, &block.cidr, &now];
        self.execute("superseding an earlier block", sql, args)
            .await?;
        let sql = "INSERT INTO blocks (cidr, ip_set, set_name, set_id, scope, requested_by, approved_by, reason, channel, incident, request_id, created_at, expires_at, state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active')";
        let args = args![
            &block.cidr,
            &block.ip_set,
            &block.set_name,
            &block.set_id,
            block.scope.as_str(),
            &block.requested_by,
            block.approved_by.clone(),
            block.reason.clone(),
            &block.channel,
            block.incident.clone(),
            block.request_id,
            now,
            block.expires_at.map(crate::clock::rfc3339),
        ];
        self.write("recording a block", sql, args).await
    }

    /// A block of `cidr` in set `set_id` is about to be written to WAF: a timed block of it
    /// that a worker is lifting right now is superseded first, so that the worker, seeing
    /// it, puts the address back instead of leaving the newer block without it.
    pub async fn supersede_lifting(&mut self, set_id: &str, cidr: &str) -> Result<u64, StoreError> {
        let sql = "UPDATE blocks SET state = 'superseded', ended_at = $3 WHERE set_id = $1 AND cidr = $2 AND state = 'lifting'";
        let args = args![set_id, cidr, crate::clock::now_rfc3339()];
        self.execute("superseding a block being lifted", sql, args)
            .await
    }

    /// Ends the lift of block `id`: `Ok(None)` when it is lifted now; else the state it was
    /// moved to meanwhile (`superseded` by a newer block, `removed` by an unblock).
    pub async fn finish_lift(&mut self, id: i64) -> Result<Option<String>, StoreError> {
        // Only while this replica still holds the lift: one that took it over (this
        // replica's lease had lapsed) ends it itself.
        let sql = "UPDATE blocks SET state = 'lifted', ended_at = $2 WHERE id = $1 AND state = 'lifting' AND owner = $3";
        let args = args![id, crate::clock::now_rfc3339(), self.replica()];
        if self.execute("ending a lifted block", sql, args).await? == 1 {
            return Ok(None);
        }
        let sql = format!("SELECT {COLUMNS} FROM blocks WHERE id = $1");
        let rows = self.fetch("reading a block", &sql, args![id], read).await?;
        Ok(rows.into_iter().next().map(|b| b.state))
    }

    /// Ends the active blocks of `cidr` in set `set_id` (`removed` or `lifted`).
    pub async fn end_blocks(
        &mut self,
        set_id: &str,
        cidr: &str,
        state: &str,
    ) -> Result<u64, StoreError> {
        let sql = "UPDATE blocks SET state = $3, ended_at = $4 WHERE set_id = $1 AND cidr = $2 AND state IN ('active', 'lifting')";
        let args = args![set_id, cidr, state, crate::clock::now_rfc3339()];
        self.execute("ending a block", sql, args).await
    }
}

/// Timed blocks that are due move from active to lifting; the caller removes them from
/// WAF and then ends them.
impl DueWork for Block {
    const DUE: Due = DUE;
    fn read(row: &sqlx::any::AnyRow) -> Result<Self, StoreError> {
        read(row)
    }
}

/// Timed blocks whose time is up.
const DUE: Due = Due {
    table: "blocks",
    due: "state = 'active' AND expires_at IS NOT NULL AND expires_at <= $1",
    claimed: "lifting",
    columns: COLUMNS,
    order: "id",
    what: [
        "claiming due blocks",
        "taking over blocks left half-lifted",
        "reading due blocks",
    ],
};

impl Store {
    /// Blocks drbot still holds (active), oldest first.
    pub async fn active_blocks(&self) -> Result<Vec<Block>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM blocks WHERE state IN ('active', 'lifting') ORDER BY id"
        );
        self.fetch("listing blocks", &sql, args![], read).await
    }
}
