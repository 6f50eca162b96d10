//! The append-only event log. Each event carries `hash = sha256(prev_hash ‖ canonical)`
//! where `canonical` is the event's fields as one JSON object in a fixed order, so editing,
//! inserting or deleting any stored event breaks the chain from there on.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::statement::args;
use super::writer::chain_tail;
use super::EventKind;
use super::{QueryContext, Store, StoreError, StoreTx, WriteConn};

/// The `prev_hash` of the first event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Slack user id, or `drbot` for the bot's own steps.
    pub actor: String,
    /// Slack channel id ("" when none).
    pub channel: String,
    pub incident: Option<String>,
    /// Dotted kind, e.g. `command.accepted`, `command.refused`, `slack.event`.
    pub kind: String,
    /// One human sentence.
    pub text: String,
    pub detail: serde_json::Value,
}

impl NewEvent {
    pub fn new(kind: EventKind, actor: &str, channel: &str, text: impl Into<String>) -> Self {
        Self {
            actor: actor.to_string(),
            channel: channel.to_string(),
            incident: None,
            kind: kind.as_str().into_owned(),
            text: text.into(),
            detail: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    pub fn incident(mut self, incident: Option<String>) -> Self {
        self.incident = incident;
        self
    }

    /// The event marked with the surface it came through, when the task appending it runs
    /// [`VIA`] (the web console: `{"surface": "console", "email": …}`). A `via` the event
    /// names itself is kept.
    fn stamped(mut self) -> Self {
        let Ok(Some(via)) = VIA.try_with(|v| v.clone()) else {
            return self;
        };
        if let serde_json::Value::Object(map) = &mut self.detail {
            map.entry("via").or_insert(via);
        } else if self.detail.is_null() {
            self.detail = serde_json::json!({ "via": via });
        }
        self
    }
}

tokio::task_local! {
    /// The surface (and verified identity) of the work this task does for someone: every
    /// event it appends records it (SPEC §19). Unset: Slack, or drbot itself.
    pub static VIA: Option<serde_json::Value>;
}

/// An event as stored.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub channel: String,
    pub incident: Option<String>,
    pub kind: String,
    pub text: String,
    /// The structured detail exactly as stored (JSON text).
    #[serde(serialize_with = "raw_json")]
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

fn raw_json<S: serde::Serializer>(detail: &str, s: S) -> Result<S::Ok, S::Error> {
    let value: serde_json::Value =
        serde_json::from_str(detail).unwrap_or(serde_json::Value::String(detail.to_string()));
    value.serialize(s)
}

#[derive(Serialize)]
struct Canonical<'a> {
    seq: i64,
    at: &'a str,
    actor: &'a str,
    channel: &'a str,
    incident: Option<&'a str>,
    kind: &'a str,
    text: &'a str,
    detail: &'a str,
}

/// The canonical bytes of an event (everything but the hashes).
pub fn canonical(e: &StoredEvent) -> String {
    serde_json::to_string(&Canonical {
        seq: e.seq,
        at: &e.at,
        actor: &e.actor,
        channel: &e.channel,
        incident: e.incident.as_deref(),
        kind: &e.kind,
        text: &e.text,
        detail: &e.detail,
    })
    .expect("serialising strings and integers cannot fail")
}

/// The kind of the event from which the chain is keyed (`DRBOT_AUDIT_KEY`): it and every
/// event after it are hashed with the key.
pub const KEYED_FROM: &str = "audit.keyed";

static AUDIT_KEY: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();

/// Sets this process's audit key (`DRBOT_AUDIT_KEY`) once, before anything is appended.
pub fn set_audit_key(key: Option<&str>) {
    let _ = AUDIT_KEY.set(key.map(|k| k.as_bytes().to_vec()));
}

/// Set once this process has found or written the keyed marker: from then on its appends
/// only follow keyed events (see `writer::chain_tail`).
static CHAIN_KEYED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// This process found or wrote the chain's keyed marker.
pub fn mark_chain_keyed() {
    CHAIN_KEYED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Why the chain's last event cannot be followed by this process's appends, if it cannot:
/// a replica with a key only follows keyed events once the chain is keyed, one without a
/// key only plain ones. Two replicas with different keys would otherwise interleave two
/// chains that neither can verify.
pub(crate) fn foreign_tail(tail: &StoredEvent) -> Option<String> {
    let plain = chain_hash(&tail.prev_hash, &canonical(tail)) == tail.hash;
    match audit_key() {
        None if plain => None,
        None => Some("is keyed, and this replica has no DRBOT_AUDIT_KEY".to_string()),
        Some(key) => {
            if keyed_hash(key, &tail.prev_hash, &canonical(tail)) == tail.hash {
                None
            } else if plain && !CHAIN_KEYED.load(std::sync::atomic::Ordering::SeqCst) {
                None
            } else if plain {
                Some("was appended without a key by another replica".to_string())
            } else {
                Some(format!(
                    "was appended with another audit key (this replica's is key id {})",
                    key_id(key)
                ))
            }
        }
    }
}

/// The audit key of this process, if any.
pub fn audit_key() -> Option<&'static [u8]> {
    AUDIT_KEY.get().and_then(|k| k.as_deref())
}

/// `HMAC-SHA256(key, prev_hash ‖ canonical)` in lowercase hex: only whoever holds the key
/// can compute it, so write access to the database is not enough to forge the chain.
pub fn keyed_hash(key: &[u8], prev_hash: &str, canonical: &str) -> String {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(prev_hash.as_bytes());
    mac.update(canonical.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The signature of a checkpoint (`seq:hash`) under the audit key.
pub fn sign_checkpoint(key: &[u8], seq: i64, hash: &str) -> String {
    keyed_hash(key, "checkpoint", &format!("{seq}:{hash}"))
}

/// The audit key's public name: the first 16 hex digits of an HMAC under it. The keyed
/// marker records it, so a verifier or a replica holding another key says so.
pub fn key_id(key: &[u8]) -> String {
    keyed_hash(key, "drbot audit key id", "")[..16].to_string()
}

/// `sha256(prev_hash ‖ canonical)` in lowercase hex.
pub fn chain_hash(prev_hash: &str, canonical: &str) -> String {
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(canonical.as_bytes());
    hex::encode(h.finalize())
}

/// The outcome of re-computing the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyReport {
    Intact {
        count: u64,
    },
    Broken {
        seq: i64,
        reason: String,
        checked: u64,
    },
    /// Every hash recomputes, but the verifier holds the audit key and no event is keyed
    /// with it: the keyed marker was removed and the chain rehashed without the key (a
    /// downgrade), or drbot never ran with this key.
    NotKeyed {
        count: u64,
    },
}

impl Store {
    /// Appends an event at the end of the chain and returns it as stored.
    /// Runs on the writer, batched with the other appends of its group; returns once the
    /// group is committed.
    pub async fn append(&self, event: NewEvent) -> Result<StoredEvent, StoreError> {
        self.append_keyed(event, None).await
    }

    /// [`Store::append`] only if `key` (a signed request's timestamp and signature) was
    /// never used, checked in the same group: [`StoreError::Replayed`] otherwise.
    pub async fn append_keyed(
        &self,
        event: NewEvent,
        key: Option<&str>,
    ) -> Result<StoredEvent, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ticket = self.ticket();
        self.send_work(super::writer::Work::Append(
            event.stamped(),
            reply,
            ticket.clone(),
            key.map(str::to_string),
        ))
        .await?;
        super::writer::answer(ticket.as_ref(), answer).await
    }

    /// Remembers `key` (a signed request's timestamp and signature) and says whether this is
    /// the first time it is seen, across restarts and replicas. Batched with the group's
    /// other writes.
    pub async fn first_use(&self, key: &str) -> Result<bool, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let ticket = self.ticket();
        self.send_work(super::writer::Work::Seen(
            key.to_string(),
            reply,
            ticket.clone(),
        ))
        .await?;
        super::writer::answer(ticket.as_ref(), answer).await
    }

    /// Forgets request keys older than `before` (a replay that old is refused for its stale
    /// timestamp anyway).
    pub async fn forget_seen_before(&self, before: &str) -> Result<u64, StoreError> {
        let sql = "DELETE FROM seen_requests WHERE seen_at < $1";
        self.execute("forgetting old request signatures", sql, args![before])
            .await
    }

    /// Appends `event` only if the Slack delivery `event_id` was never seen, in the same
    /// transaction as remembering the id: `None` for a repeated delivery.
    pub async fn append_once(
        &self,
        event_id: &str,
        event: NewEvent,
    ) -> Result<Option<StoredEvent>, StoreError> {
        let mut tx = self.begin().await?;
        if !tx.first_delivery(event_id).await? {
            return Ok(None);
        }
        let stored = tx.append(event).await?;
        tx.commit().await?;
        Ok(Some(stored))
    }

    /// Events in chain order; `incident = None` means every event.
    pub async fn events(&self, incident: Option<&str>) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = "SELECT seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash FROM events";
        let (sql, args) = match incident {
            None => (format!("{sql} ORDER BY seq"), args![]),
            Some(id) => (format!("{sql} WHERE incident = $1 ORDER BY seq"), args![id]),
        };
        self.fetch("reading the event log", &sql, args, row_to_event)
            .await
    }

    /// Events appended at or after `at` (RFC 3339 as drbot writes it), in chain order.
    pub async fn events_since(&self, at: &str) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = "SELECT seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash FROM events WHERE at >= $1 ORDER BY seq";
        self.fetch("reading the event log", sql, args![at], row_to_event)
            .await
    }

    /// The sequence number of the event from which the chain is keyed, if it is, and the
    /// id of the key it names (markers written before key ids were recorded name none).
    pub async fn keyed_from(&self) -> Result<Option<(i64, Option<String>)>, StoreError> {
        let sql = "SELECT seq, detail FROM events WHERE kind = $1 ORDER BY seq LIMIT 1";
        let what = "looking for the keyed part of the chain";
        let seqs = self.fetch(what, sql, args![KEYED_FROM], |r| {
            Ok((r.get(0), marker_key_id(&r.get::<String, _>(1))))
        });
        Ok(seqs.await?.pop())
    }

    /// Whether drbot's own log records copying a snapshot to `target` in `region` (a
    /// `CopyDBSnapshot` it sent and AWS answered).
    pub async fn copied_snapshot(&self, target: &str, region: &str) -> Result<bool, StoreError> {
        let sql = "SELECT seq FROM events WHERE kind = 'aws.call' AND detail LIKE '%\"operation\":\"CopyDBSnapshot\"%' AND detail LIKE $1 AND detail LIKE $2 LIMIT 1";
        let args = args![
            format!("%\"target\":\"{target}\"%"),
            format!("%\"to_region\":\"{region}\"%")
        ];
        let found = self.fetch("looking for drbot's copy of a snapshot", sql, args, |r| {
            Ok(r.get::<i64, _>(0))
        });
        Ok(!found.await?.is_empty())
    }

    /// The chain's newest event: its sequence number and hash.
    pub async fn head(&self) -> Result<Option<(i64, String)>, StoreError> {
        let sql = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";
        let head = self.fetch("reading the chain's head", sql, args![], |r| {
            Ok((r.get(0), r.get(1)))
        });
        Ok(head.await?.pop())
    }

    /// Re-computes the chain over every stored event, in order, streaming.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash FROM events ORDER BY seq",
        )
        .fetch(self.pool());
        let mut prev = GENESIS_HASH.to_string();
        let mut expected_seq = 1;
        let mut count = 0;
        // Once an `audit.keyed` event is met, every hash must carry the key; a verifier
        // holding the key requires that event (see `VerifyReport::NotKeyed`).
        let key = audit_key();
        let mut keyed = false;
        while let Some(row) = rows.try_next().await.context("reading the event log")? {
            let seq: i64 = row
                .try_get(0)
                .context("reading an event's sequence number")?;
            let event = match row_to_event(&row) {
                Ok(e) => e,
                Err(e) => {
                    return Ok(VerifyReport::Broken {
                        seq,
                        reason: e.to_string(),
                        checked: count,
                    })
                }
            };
            let broken = |reason: String| VerifyReport::Broken {
                seq: event.seq,
                reason,
                checked: count,
            };
            if event.seq != expected_seq {
                return Ok(broken(format!(
                    "expected event {expected_seq} here: an event is missing"
                )));
            }
            if event.prev_hash != prev {
                return Ok(broken(
                    "its previous-hash does not match the event before it".to_string(),
                ));
            }
            if event.kind == KEYED_FROM && !keyed {
                keyed = true;
                let named = marker_key_id(&event.detail);
                if let (Some(key), Some(named)) = (key, named) {
                    if named != key_id(key) {
                        return Ok(broken(format!(
                            "the chain is keyed from here with another key (key id {named}); DRBOT_AUDIT_KEY here is key id {}",
                            key_id(key)
                        )));
                    }
                }
            }
            let recomputed = if keyed {
                let Some(key) = key else {
                    return Ok(broken(
                        "the chain is keyed from here on: set DRBOT_AUDIT_KEY to verify it"
                            .to_string(),
                    ));
                };
                keyed_hash(key, &event.prev_hash, &canonical(&event))
            } else {
                chain_hash(&event.prev_hash, &canonical(&event))
            };
            if recomputed != event.hash {
                return Ok(broken(
                    "its content does not match its hash (edited after it was written)".to_string(),
                ));
            }
            prev = event.hash;
            expected_seq += 1;
            count += 1;
        }
        if key.is_some() && !keyed && count > 0 {
            return Ok(VerifyReport::NotKeyed { count });
        }
        Ok(VerifyReport::Intact { count })
    }
}

/// The key id an `audit.keyed` event's detail names.
fn marker_key_id(detail: &str) -> Option<String> {
    let detail: serde_json::Value = serde_json::from_str(detail).ok()?;
    Some(detail.get("key_id")?.as_str()?.to_string())
}

pub(crate) fn row_to_event(row: &sqlx::any::AnyRow) -> Result<StoredEvent, StoreError> {
    let seq: i64 = row.try_get(0).unwrap_or(-1);
    let corrupt = |e: sqlx::Error| StoreError::Corrupt {
        seq,
        message: e.to_string(),
    };
    Ok(StoredEvent {
        seq,
        at: row.try_get(1).map_err(corrupt)?,
        actor: row.try_get(2).map_err(corrupt)?,
        channel: row.try_get(3).map_err(corrupt)?,
        incident: row.try_get(4).map_err(corrupt)?,
        kind: row.try_get(5).map_err(corrupt)?,
        text: row.try_get(6).map_err(corrupt)?,
        detail: row.try_get(7).map_err(corrupt)?,
        prev_hash: row.try_get(8).map_err(corrupt)?,
        hash: row.try_get(9).map_err(corrupt)?,
    })
}

impl StoreTx<'_> {
    /// Remembers `key` (a signed request's timestamp and signature) inside this
    /// transaction; false when it was used before.
    pub async fn first_use(&mut self, key: &str) -> Result<bool, StoreError> {
        let key = key.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let fresh = super::replay_keys::claim(c, &[key.as_str()]).await?;
                Ok(!fresh.is_empty())
            })
        })
        .await
    }

    /// Appends an event at the end of the chain, inside this transaction.
    pub async fn append(&mut self, event: NewEvent) -> Result<StoredEvent, StoreError> {
        let event = event.stamped();
        self.run(move |c| Box::pin(append_on(c, event))).await
    }

    /// Remembers a Slack `event_id`; false when it was seen before.
    pub async fn first_delivery(&mut self, event_id: &str) -> Result<bool, StoreError> {
        self.insert_once(
            "INSERT INTO slack_deliveries (event_id, received_at) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING",
            event_id,
            "recording a Slack event id",
        )
        .await
    }

    /// Runs `sql` (an insert of `key` and now that does nothing on conflict); true when
    /// it inserted, i.e. the key is new.
    async fn insert_once(
        &mut self,
        sql: &'static str,
        key: &str,
        context: &'static str,
    ) -> Result<bool, StoreError> {
        let args = args![key, crate::clock::now_rfc3339()];
        Ok(self.execute(context, sql, args).await? == 1)
    }
}

/// Appends on the writer's connection: the chain's tail is read once per group.
async fn append_on(c: &mut WriteConn, event: NewEvent) -> Result<StoredEvent, StoreError> {
    let (last_seq, prev_hash) = chain_tail(c).await?;
    let stored = chained(last_seq + 1, prev_hash, event);
    insert_many(c.conn(), &[&stored]).await?;
    c.tail = Some((stored.seq, stored.hash.clone()));
    Ok(stored)
}

/// The event as it will be stored at `seq` after `prev_hash`, with its hash.
pub(crate) fn chained(seq: i64, prev_hash: String, event: NewEvent) -> StoredEvent {
    let detail = serde_json::to_string(&event.detail).expect("a JSON value always serialises");
    let mut stored = StoredEvent {
        seq,
        at: crate::clock::now_rfc3339(),
        actor: event.actor,
        channel: event.channel,
        incident: event.incident,
        kind: event.kind,
        text: event.text,
        detail,
        prev_hash,
        hash: String::new(),
    };
    stored.hash = match audit_key() {
        Some(key) => keyed_hash(key, &stored.prev_hash, &canonical(&stored)),
        None => chain_hash(&stored.prev_hash, &canonical(&stored)),
    };
    stored
}

/// Inserts chained events in one statement.
pub(crate) async fn insert_many(
    conn: &mut sqlx::AnyConnection,
    events: &[&StoredEvent],
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO events (seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash) VALUES {}",
        super::statement::value_rows(conn, events.len(), 10)
    );
    let mut query = sqlx::query(&sql);
    for e in events {
        query = query
            .bind(e.seq)
            .bind(&e.at)
            .bind(&e.actor)
            .bind(&e.channel)
            .bind(&e.incident)
            .bind(&e.kind)
            .bind(&e.text)
            .bind(&e.detail)
            .bind(&e.prev_hash)
            .bind(&e.hash);
    }
    query
        .execute(conn)
        .await
        .context("appending to the event log")?;
    Ok(())
}
