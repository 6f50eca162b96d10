//! Checkpoints of the audit chain (SPEC §12): the head (sequence number and hash, signed
//! with `DRBOT_AUDIT_KEY` when set), recorded here and posted to `[audit] checkpoint_channel`
//! every `checkpoint_every`, at shutdown and with every export. A chain that verifies but
//! ends before a checkpoint was cut short; `audit verify` says so.

use serde::Serialize;
use sqlx::Row;

use super::{audit_key, sign_checkpoint, Outgoing, QueryContext, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub signature: Option<String>,
    pub at: String,
    pub reason: String,
}

impl Checkpoint {
    /// The line posted to Slack (and printed): `SEQ:HASH`, with its signature when keyed.
    pub fn announcement(&self) -> String {
        let mut text = format!(
            ":lock: Audit checkpoint ({}): event {} · `{}:{}`",
            self.reason, self.seq, self.seq, self.hash
        );
        if let Some(sig) = &self.signature {
            text.push_str(&format!(" · signature `{sig}`"));
        }
        text.push_str(" — keep it: `drbot audit verify --checkpoint SEQ:HASH` detects a log cut short after it.");
        text
    }
}

impl Store {
    /// Records a checkpoint of the current head (and queues its post to `channel`); `None`
    /// when the log is empty.
    pub async fn checkpoint(
        &self,
        reason: &str,
        channel: Option<&str>,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let Some((seq, hash)) = self.head().await? else {
            return Ok(None);
        };
        let checkpoint = Checkpoint {
            signature: audit_key().map(|k| sign_checkpoint(k, seq, &hash)),
            seq,
            hash,
            at: crate::clock::now_rfc3339(),
            reason: reason.to_string(),
        };
        let row = checkpoint.clone();
        let mut tx = self.begin().await?;
        tx.run(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO checkpoints (seq, hash, signature, at, reason) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(row.seq)
                .bind(row.hash)
                .bind(row.signature)
                .bind(row.at)
                .bind(row.reason)
                .execute(c.conn())
                .await
                .context("recording a checkpoint")?;
                Ok(())
            })
        })
        .await?;
        if let Some(channel) = channel {
            tx.send_slack(Outgoing::post(channel, checkpoint.announcement()))
                .await?;
        }
        tx.commit().await?;
        Ok(Some(checkpoint))
    }

    /// Every recorded checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, hash, signature, at, reason FROM checkpoints ORDER BY seq, at",
        )
        .fetch_all(self.pool())
        .await
        .context("reading checkpoints")?;
        Ok(rows
            .into_iter()
            .map(|r| Checkpoint {
                seq: r.get(0),
                hash: r.get(1),
                signature: r.get(2),
                at: r.get(3),
                reason: r.get(4),
            })
            .collect())
    }

    /// The hash of event `seq`, if the log holds it.
    pub async fn hash_of(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT hash FROM events WHERE seq = $1")
            .bind(seq)
            .fetch_optional(self.pool())
            .await
            .context("reading an event's hash")?;
        Ok(row.map(|r| r.get(0)))
    }
}
