//! Checkpoints of the audit chain (SPEC §12): the head (sequence number and hash, signed
//! with `DRBOT_AUDIT_KEY` when set), recorded here and posted to `[audit] checkpoint_channel`
//! every `checkpoint_every`, at shutdown and with every export. A chain that verifies but
//! ends before a checkpoint was cut short; `audit verify` says so.

use serde::Serialize;
use sqlx::Row;

use super::statement::args;
use super::{audit_key, sign_checkpoint, Outgoing, Store, StoreError};

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
        let sql = "INSERT INTO checkpoints (seq, hash, signature, at, reason) VALUES ($1, $2, $3, $4, $5)";
        let c = &checkpoint;
        let args = args![c.seq, &c.hash, c.signature.clone(), &c.at, &c.reason];
        let mut tx = self.begin().await?;
        tx.execute("recording a checkpoint", sql, args).await?;
        if let Some(channel) = channel {
            tx.send_slack(Outgoing::post(channel, checkpoint.announcement()))
                .await?;
        }
        tx.commit().await?;
        Ok(Some(checkpoint))
    }

    /// Every recorded checkpoint, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let sql = "SELECT seq, hash, signature, at, reason FROM checkpoints ORDER BY seq, at";
        let read = |r: &sqlx::any::AnyRow| {
            Ok(Checkpoint {
                seq: r.get(0),
                hash: r.get(1),
                signature: r.get(2),
                at: r.get(3),
                reason: r.get(4),
            })
        };
        self.fetch("reading checkpoints", sql, args![], read).await
    }

    /// The hash of event `seq`, if the log holds it.
    pub async fn hash_of(&self, seq: i64) -> Result<Option<String>, StoreError> {
        let sql = "SELECT hash FROM events WHERE seq = $1";
        let hashes = self.fetch("reading an event's hash", sql, args![seq], |r| Ok(r.get(0)));
        Ok(hashes.await?.pop())
    }
}
