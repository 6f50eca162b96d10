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

    /// Reads back a checkpoint from its [`Checkpoint::announcement`] (as Slack keeps it, with
    /// `&`, `<`, `>` escaped); `None` for any other text.
    pub fn from_announcement(text: &str, at: &str) -> Option<Checkpoint> {
        let rest = text.strip_prefix(":lock: Audit checkpoint (")?;
        let (reason, rest) = rest.split_once("): event ")?;
        let (_, rest) = rest.split_once('`')?;
        let (pair, rest) = rest.split_once('`')?;
        let (seq, hash) = pair.split_once(':')?;
        let hex = |h: &str| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit());
        if !hex(hash) {
            return None;
        }
        let signature = rest
            .strip_prefix(" · signature `")
            .and_then(|r| r.split_once('`'))
            .map(|(sig, _)| sig.to_string());
        Some(Checkpoint {
            seq: seq.parse().ok()?,
            hash: hash.to_string(),
            signature,
            at: at.to_string(),
            reason: reason.to_string(),
        })
    }
}

impl Store {
    /// Records a checkpoint of the current head (and queues its post to `channel`); `None`
    /// when the log is empty, or when the chain is keyed and this process has no key (an
    /// unsigned checkpoint of a keyed chain would read as tampering).
    pub async fn checkpoint(
        &self,
        reason: &str,
        channel: Option<&str>,
    ) -> Result<Option<Checkpoint>, StoreError> {
        let Some((seq, hash)) = self.head().await? else {
            return Ok(None);
        };
        if audit_key().is_none() && self.keyed_from().await?.is_some() {
            return Ok(None);
        }
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

#[cfg(test)]
mod tests {
    use super::Checkpoint;

    #[test]
    fn an_announcement_reads_back_as_its_checkpoint() {
        let posted = Checkpoint {
            seq: 42,
            hash: "ab".repeat(32),
            signature: Some("cd".repeat(32)),
            at: "t".into(),
            reason: "every 15m".into(),
        };
        let read = Checkpoint::from_announcement(&posted.announcement(), "Slack").unwrap();
        assert_eq!(
            (read.seq, read.hash.clone(), read.signature.clone()),
            (42, posted.hash, posted.signature)
        );
        let unsigned = Checkpoint {
            signature: None,
            ..read
        };
        let read = Checkpoint::from_announcement(&unsigned.announcement(), "Slack").unwrap();
        assert_eq!(read.signature, None);
        assert!(Checkpoint::from_announcement("hello `1:2`", "Slack").is_none());
    }
}
