//! The Slack outbox (SPEC §10): every message drbot sends is first a row here, written in
//! the transaction of the state change that causes it, and sent later by the outbox worker
//! (`crate::workers::outbox`). Rows of one lane (a channel, a DM, a `response_url`) go out in
//! order, one at a time, whichever replica sends them.
//!
//! A row is `pending` until a replica claims it (`sending`, with its `owner`), then `sent`
//! (with the ts Slack gave it) or `failed` (with the reason). A row whose replica died while
//! sending is `pending` again and `uncertain`: Slack may already have it, so a post is looked
//! for before it is posted again.

use serde::{Deserialize, Serialize};
use sqlx::Row;

use sqlx::any::AnyRow;

use super::statement::{args, Arg};
use super::{Liveness, QueryContext, Store, StoreError, StoreTx};

/// A message Slack did not have when it was queued; where a reply, update, reaction or pin
/// points to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anchor {
    /// A message already posted.
    Ts(String),
    /// The outbox row with this key (posted by then: rows of one lane go in order).
    Row(String),
}

/// What to record once a post is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "record")]
pub enum AfterPost {
    /// The approval request's (or progress) message: reactions and buttons are matched by it.
    RequestMessage { request: i64 },
    /// The incident's pinned summary.
    Checklist { incident: String },
}

/// One Slack write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "method")]
pub enum Outgoing {
    Post {
        channel: String,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocks: Option<serde_json::Value>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thread: Option<Anchor>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<AfterPost>,
    },
    Update {
        channel: String,
        message: Anchor,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        blocks: Option<serde_json::Value>,
    },
    Ephemeral {
        channel: String,
        user: String,
        text: String,
    },
    React {
        channel: String,
        message: Anchor,
        name: String,
    },
    Pin {
        channel: String,
        message: Anchor,
    },
    Invite {
        channel: String,
        users: Vec<String>,
    },
    Respond {
        url: String,
        text: String,
    },
    Direct {
        user: String,
        text: String,
    },
    /// A file shared in `channel` with `comment` (files.getUploadURLExternal, the upload,
    /// files.completeUploadExternal): the full report of `/dr report`.
    Upload {
        channel: String,
        filename: String,
        title: String,
        content: String,
        comment: String,
    },
    /// `user`'s App Home (views.publish): the whole view, replacing what was there.
    PublishHome {
        user: String,
        view: serde_json::Value,
    },
    /// An approved publication on the status page (SPEC §17): the page's incident for
    /// `incident` created the first time, updated after. Not Slack, but delivered by the
    /// same worker with the same guarantees; `channel` is the incident's.
    StatusPage {
        channel: String,
        incident: String,
        #[serde(default)]
        request: i64,
        name: String,
        status: String,
        impact: String,
        body: String,
        components: Vec<String>,
        component_status: String,
    },
    /// An approved email to one recipient list, its recipients in Bcc, its Message-ID
    /// chosen before it is first sent.
    Email {
        channel: String,
        incident: String,
        #[serde(default)]
        request: i64,
        list: String,
        bcc: Vec<String>,
        subject: String,
        body: String,
        message_id: String,
    },
}

impl Outgoing {
    /// A plain post in `channel`.
    pub fn post(channel: &str, text: String) -> Outgoing {
        Outgoing::Post {
            channel: channel.to_string(),
            text,
            blocks: None,
            thread: None,
            after: None,
        }
    }

    /// The channel the message goes to; a direct message names its user instead, a
    /// response_url nobody (`None`).
    pub fn channel(&self) -> Option<&str> {
        match self {
            Outgoing::Post { channel, .. }
            | Outgoing::Update { channel, .. }
            | Outgoing::Ephemeral { channel, .. }
            | Outgoing::React { channel, .. }
            | Outgoing::Pin { channel, .. }
            | Outgoing::Invite { channel, .. }
            | Outgoing::Upload { channel, .. }
            | Outgoing::StatusPage { channel, .. }
            | Outgoing::Email { channel, .. }
            | Outgoing::Direct { user: channel, .. } => Some(channel),
            Outgoing::Respond { .. } | Outgoing::PublishHome { .. } => None,
        }
    }

    /// Rows of one lane are sent in order, one at a time.
    pub fn lane(&self) -> String {
        match self {
            Outgoing::Direct { user, .. } => format!("dm:{user}"),
            // A response_url is a capability: the lane names it by a digest, not the URL.
            Outgoing::Respond { url, .. } => {
                use sha2::Digest;
                let digest = sha2::Sha256::digest(url.as_bytes());
                format!("respond:{}", hex::encode(&digest[..8]))
            }
            Outgoing::PublishHome { user, .. } => format!("home:{user}"),
            Outgoing::StatusPage { incident, .. } => format!("statuspage:{incident}"),
            Outgoing::Email { incident, list, .. } => format!("email:{incident}:{list}"),
            _ => self.channel().unwrap_or_default().to_string(),
        }
    }

    /// The Web API method, for logs and metrics.
    pub fn method(&self) -> &'static str {
        match self {
            Outgoing::Post { .. } => "chat.postMessage",
            Outgoing::Update { .. } => "chat.update",
            Outgoing::Ephemeral { .. } => "chat.postEphemeral",
            Outgoing::React { .. } => "reactions.add",
            Outgoing::Pin { .. } => "pins.add",
            Outgoing::Invite { .. } => "conversations.invite",
            Outgoing::Respond { .. } => "response_url",
            Outgoing::Direct { .. } => "chat.postMessage (DM)",
            Outgoing::Upload { .. } => "files.completeUploadExternal",
            Outgoing::PublishHome { .. } => "views.publish",
            Outgoing::StatusPage { .. } => "statuspage",
            Outgoing::Email { .. } => "smtp",
        }
    }

    /// A publication to users (status page, email), not a Slack write.
    pub fn is_notice(&self) -> bool {
        matches!(self, Outgoing::StatusPage { .. } | Outgoing::Email { .. })
    }
}

/// How a command typed in the web console is answered: its `response_url` is
/// `console:<channel>:<user>:<email>`, and the console shows the answer from the outbox (the
/// outbox worker sends nothing for it). Also how a request remembers it was typed there.
pub const CONSOLE_URL: &str = "console:";

/// The `response_url` of a command `user` (signed in as `email`) typed in the console.
pub fn console_url(channel: &str, user: &str, email: &str) -> String {
    format!("{CONSOLE_URL}{channel}:{user}:{email}")
}

/// `(channel, user, email)` of a console `response_url`; `None` for anything else.
pub fn console_answer(url: &str) -> Option<(&str, &str, &str)> {
    let mut parts = url.strip_prefix(CONSOLE_URL)?.splitn(3, ':');
    Some((parts.next()?, parts.next()?, parts.next()?))
}

/// What events of work done for a console `response_url` record as their `via`.
pub fn via_of(url: &str) -> Option<serde_json::Value> {
    let (_, user, email) = console_answer(url)?;
    Some(console_via(user, email))
}

/// The `via` of the web console: the surface and the verified identity.
pub fn console_via(user: &str, email: &str) -> serde_json::Value {
    serde_json::json!({"surface": "console", "email": email, "user": user})
}

/// A row claimed for sending.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub message: Outgoing,
    pub attempts: i64,
    /// Epoch milliseconds after which the row is recorded as failed.
    pub deadline: i64,
    /// Slack may already have this message (a timeout, or a replica died sending it).
    pub uncertain: bool,
    pub created_at: String,
    /// The epoch it was claimed under: only this claim records what became of it.
    pub fence: i64,
}

/// A row left `sending` longer than this is sent again (carefully: Slack may have it), even
/// when its replica is alive: the commit that recorded it was lost. One attempt takes at
/// most a few Web API calls of 10 s each.
pub const SENDING_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// How the lane's next row stands, seen from a row that points to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorState {
    Posted(String),
    Waiting,
    Failed,
}

/// A message recorded as failed, for `/dr status`.
#[derive(Debug, Clone)]
pub struct Undelivered {
    pub id: i64,
    pub method: String,
    pub lane: String,
    pub error: String,
    pub at: String,
}

/// How long a queued message may wait to be sent before it is recorded as failed.
pub const DELIVERY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(600);

/// How long an approved publication to users may wait (a status page or a mail server down
/// for a while): then it is recorded as failed and the incident channel told.
pub const NOTICE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(3600);

/// Now, in epoch milliseconds (the outbox's schedule).
pub fn epoch_ms() -> i64 {
    crate::clock::now().timestamp_millis()
}

impl StoreTx<'_> {
    /// Queues `message`; it is sent once this transaction commits.
    pub async fn send_slack(&mut self, message: Outgoing) -> Result<(), StoreError> {
        self.send_slack_keyed(message, None).await
    }

    /// [`Self::send_slack`]; with a `key`, the row can be pointed to ([`Anchor::Row`]) and
    /// is queued at most once (a second one with the same key is ignored).
    pub async fn send_slack_keyed(
        &mut self,
        message: Outgoing,
        key: Option<String>,
    ) -> Result<(), StoreError> {
        let deadline = if message.is_notice() {
            NOTICE_DEADLINE
        } else {
            DELIVERY_DEADLINE
        };
        let lane = message.lane();
        let body = serde_json::to_string(&message).map_err(|e| StoreError::Corrupt {
            seq: 0,
            message: format!("an outgoing Slack message cannot be serialised: {e}"),
        })?;
        let now = epoch_ms();
        let deadline = now + deadline.as_millis() as i64;
        self.queued_slack = true;
        let sql = "INSERT INTO outbox (lane, key, message, state, attempts, not_before, deadline, created_at, uncertain)
                   VALUES ($1, $2, $3, 'pending', 0, $4, $5, $6, 0)
                   ON CONFLICT (key) DO NOTHING";
        let args = args![lane, key, body, now, deadline, crate::clock::now_rfc3339()];
        self.write("queueing a Slack message", sql, args).await
    }

    /// Sends again the failed rows whose key starts with `prefix` (a request message that
    /// could not be posted, with its reactions), from now on and with a new deadline.
    pub async fn rearm_slack(&mut self, prefix: String) -> Result<(), StoreError> {
        let now = epoch_ms();
        let deadline = now + DELIVERY_DEADLINE.as_millis() as i64;
        self.queued_slack = true;
        let sql = "UPDATE outbox SET state = 'pending', owner = NULL, attempts = 0, not_before = $2, deadline = $3, done_at = NULL WHERE state = 'failed' AND (key = $1 OR key LIKE $1 || ':%')";
        let args = args![prefix, now, deadline];
        self.write("re-queueing failed Slack messages", sql, args)
            .await
    }

    /// Records a row as sent (with the ts of a post) and what that post means.
    pub async fn outbox_sent(
        &mut self,
        id: i64,
        fence: i64,
        ts: Option<String>,
        after: Option<AfterPost>,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = 'sent', ts = $2, done_at = $3, owner = NULL WHERE id = $1 AND state = 'sending' AND owner = $4 AND fence = $5";
        let now = crate::clock::now_rfc3339();
        let args = args![id, ts.clone(), now, self.replica(), fence];
        self.fenced(id, "recording a sent Slack message", sql, args)
            .await?;
        let Some(ts) = ts else { return Ok(()) };
        let (what, sql, row) = match after {
            Some(AfterPost::RequestMessage { request }) => (
                "remembering a request message",
                "UPDATE requests SET message_ts = $2 WHERE id = $1 AND message_ts IS NULL",
                Arg::from(request),
            ),
            Some(AfterPost::Checklist { incident }) => (
                "remembering an incident summary",
                "UPDATE incidents SET checklist_ts = $2 WHERE id = $1 AND checklist_ts IS NULL",
                Arg::from(incident),
            ),
            None => return Ok(()),
        };
        self.write(what, sql, vec![row, Arg::from(ts)]).await
    }

    /// Puts a row back to be tried again at `not_before` (epoch ms).
    pub async fn outbox_retry(
        &mut self,
        (id, fence): (i64, i64),
        not_before: i64,
        uncertain: bool,
        error: String,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = 'pending', owner = NULL, attempts = attempts + 1, not_before = $2, uncertain = CASE WHEN $3 = 1 THEN 1 ELSE uncertain END, error = $4 WHERE id = $1 AND state = 'sending' AND owner = $5 AND fence = $6";
        let args = args![id, not_before, uncertain, error, self.replica(), fence];
        self.fenced(id, "re-queueing a Slack message", sql, args)
            .await
    }

    /// Records a row as failed: it will not be sent.
    pub async fn outbox_failed(
        &mut self,
        (id, fence): (i64, i64),
        error: String,
    ) -> Result<(), StoreError> {
        let sql = "UPDATE outbox SET state = 'failed', owner = NULL, attempts = attempts + 1, error = $2, done_at = $3 WHERE id = $1 AND state = 'sending' AND owner = $4 AND fence = $5";
        let now = crate::clock::now_rfc3339();
        let args = args![id, error, now, self.replica(), fence];
        self.fenced(id, "recording an undelivered Slack message", sql, args)
            .await
    }

    /// Runs `sql`, which changes row `id` only while this claim holds it.
    async fn fenced(
        &mut self,
        id: i64,
        what: &'static str,
        sql: &'static str,
        args: Vec<Arg>,
    ) -> Result<(), StoreError> {
        match self.execute(what, sql, args).await? {
            1 => Ok(()),
            _ => Err(StoreError::Fenced(format!("Slack message {id}"))),
        }
    }
}

impl Store {
    /// Queues `messages` in a transaction of their own (when no state change goes with them).
    pub async fn send_slack(&self, messages: Vec<Outgoing>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        for message in messages {
            tx.send_slack(message).await?;
        }
        tx.commit().await
    }

    /// Claims the first unfinished row of up to `lanes` lanes whose turn it is (none of the
    /// lane's rows is being sent, and its time has come).
    pub async fn claim_outbox(&self, lanes: i64) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.begin().await?;
        let sql = "UPDATE outbox SET state = 'sending', owner = $1, fence = $4, claimed_at = $2
                   WHERE id IN (
                       SELECT o.id FROM outbox o
                       WHERE o.state = 'pending' AND o.not_before <= $2
                         AND o.id = (SELECT MIN(i.id) FROM outbox i WHERE i.lane = o.lane AND i.state IN ('pending', 'sending'))
                       ORDER BY o.id LIMIT $3
                   )
                   RETURNING id, message, attempts, deadline, uncertain, created_at, fence";
        let fence = self.epoch();
        let args = args![tx.replica(), epoch_ms(), lanes, fence];
        let what = "claiming Slack messages to send";
        let rows = tx
            .fetch(what, sql, args, |row| Ok(ClaimedRow::from(row)))
            .await?;
        tx.commit().await?;
        let mut claimed = Vec::new();
        for row in rows {
            let id = row.id;
            match serde_json::from_str(&row.body) {
                Ok(message) => claimed.push(Claimed {
                    id,
                    message,
                    attempts: row.attempts,
                    deadline: row.deadline,
                    uncertain: row.uncertain,
                    created_at: row.created_at,
                    fence,
                }),
                Err(e) => {
                    let mut tx = self.begin().await?;
                    tx.outbox_failed((id, fence), format!("unreadable outgoing message: {e}"))
                        .await?;
                    tx.commit().await?;
                }
            }
        }
        Ok(claimed)
    }

    /// The ts of the row with `key`, once posted.
    pub async fn outbox_anchor(&self, key: &str) -> Result<AnchorState, StoreError> {
        let sql = "SELECT state, ts FROM outbox WHERE key = $1";
        let read = |row: &AnyRow| Ok((row.get::<String, _>(0), row.get::<Option<String>, _>(1)));
        let row = self.fetch("reading a queued Slack message", sql, args![key], read);
        let row = row.await?.pop();
        Ok(match row {
            None => AnchorState::Failed,
            Some((state, ts)) => match (state.as_str(), ts) {
                ("sent", Some(ts)) => AnchorState::Posted(ts),
                ("sent" | "failed", _) => AnchorState::Failed,
                _ => AnchorState::Waiting,
            },
        })
    }

    /// Rows being sent by replicas that are gone are sent again, carefully (Slack may have
    /// them already).
    pub async fn requeue_orphaned_outbox(&self, liveness: Liveness) -> Result<u64, StoreError> {
        self.release_orphaned(
            liveness,
            "UPDATE outbox SET state = 'pending', owner = NULL, uncertain = 1 WHERE state = 'sending'",
            "re-queueing Slack messages",
        )
        .await
    }

    /// Rows left `sending` past [`SENDING_DEADLINE`] by any replica, this one included (a
    /// lost commit), are sent again, carefully: one lost answer never holds up a channel.
    pub async fn requeue_stuck_outbox(&self) -> Result<u64, StoreError> {
        let before = epoch_ms() - SENDING_DEADLINE.as_millis() as i64;
        let sql = "UPDATE outbox SET state = 'pending', owner = NULL, uncertain = 1 WHERE state = 'sending' AND claimed_at < $1";
        self.execute("re-queueing stuck Slack messages", sql, args![before])
            .await
    }

    /// How many messages wait to be sent, and the recent ones that could not be.
    pub async fn outbox_status(&self, failed: i64) -> Result<(i64, Vec<Undelivered>), StoreError> {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE state IN ('pending', 'sending')",
        )
        .fetch_one(self.pool())
        .await
        .context("counting queued Slack messages")?;
        let rows = sqlx::query(
            "SELECT id, message, lane, COALESCE(error, ''), COALESCE(done_at, created_at) FROM outbox WHERE state = 'failed' ORDER BY id DESC LIMIT $1",
        )
        .bind(failed)
        .fetch_all(self.pool())
        .await
        .context("reading undelivered Slack messages")?;
        let failed = rows
            .into_iter()
            .map(|row| {
                let body: String = row.get(1);
                Undelivered {
                    id: row.get(0),
                    method: serde_json::from_str::<Outgoing>(&body)
                        .map(|m| m.method().to_string())
                        .unwrap_or_else(|_| "unknown".into()),
                    lane: row.get(2),
                    error: row.get(3),
                    at: row.get(4),
                }
            })
            .collect();
        Ok((waiting, failed))
    }

    /// Pending approvals, open incidents and queued Slack messages (the `/metrics` gauges).
    pub async fn gauges(&self) -> Result<(i64, i64, i64), StoreError> {
        let row = sqlx::query(
            "SELECT CAST((SELECT COUNT(*) FROM requests WHERE state = 'pending') AS BIGINT),
                    CAST((SELECT COUNT(*) FROM incidents WHERE status = 'open') AS BIGINT),
                    CAST((SELECT COUNT(*) FROM outbox WHERE state IN ('pending', 'sending')) AS BIGINT)",
        )
        .fetch_one(self.pool())
        .await
        .context("reading the gauges")?;
        Ok((row.get(0), row.get(1), row.get(2)))
    }

    /// Slack answers again after an outage: every queued Slack message gets a whole
    /// [`DELIVERY_DEADLINE`] from now (they waited for Slack, not for nothing).
    pub async fn outbox_after_outage(&self) -> Result<u64, StoreError> {
        let deadline = epoch_ms() + DELIVERY_DEADLINE.as_millis() as i64;
        let sql = "UPDATE outbox SET deadline = $1 WHERE state IN ('pending', 'sending') AND deadline < $1 AND lane NOT LIKE 'statuspage:%' AND lane NOT LIKE 'email:%'";
        self.execute(
            "giving queued Slack messages time after an outage",
            sql,
            args![deadline],
        )
        .await
    }

    /// The newest `limit` rows of `lanes`, oldest first: what drbot said (or will say) there,
    /// for the web console.
    pub async fn outbox_lanes(
        &self,
        lanes: &[String],
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut rows = Vec::new();
        for lane in lanes {
            let sql = "SELECT id, COALESCE(key, ''), state, COALESCE(ts, ''), message, created_at FROM outbox WHERE lane = $1 ORDER BY id DESC LIMIT $2";
            let read = |row: &AnyRow| {
                Ok(OutboxRow {
                    id: row.get(0),
                    key: row.get(1),
                    state: row.get(2),
                    ts: row.get(3),
                    message: serde_json::from_str(&row.get::<String, _>(4)).ok(),
                    created_at: row.get(5),
                })
            };
            rows.extend(
                self.fetch(
                    "reading queued Slack messages",
                    sql,
                    args![lane.clone(), limit],
                    read,
                )
                .await?,
            );
        }
        rows.sort_by_key(|r| r.id);
        Ok(rows)
    }

    /// One row of the outbox by id (an uploaded file's content, for the web console).
    pub async fn outbox_row(&self, id: i64) -> Result<Option<Outgoing>, StoreError> {
        let sql = "SELECT message FROM outbox WHERE id = $1";
        let read = |row: &AnyRow| Ok(row.get::<String, _>(0));
        let body = self.fetch("reading a Slack message", sql, args![id], read);
        Ok(body
            .await?
            .pop()
            .and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// Forgets messages sent before `before` (RFC 3339); failed ones are kept as evidence.
    pub async fn forget_sent_before(&self, before: &str) -> Result<(), StoreError> {
        let sql = "DELETE FROM outbox WHERE state = 'sent' AND done_at < $1";
        self.write("forgetting sent Slack messages", sql, args![before])
            .await
    }
}

/// A row as the web console reads it.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: i64,
    pub key: String,
    /// `pending`, `sending`, `sent` or `failed`.
    pub state: String,
    /// Slack's ts once posted ("" before).
    pub ts: String,
    /// `None` when unreadable.
    pub message: Option<Outgoing>,
    pub created_at: String,
}

/// A claimed row as read, before its message is parsed.
struct ClaimedRow {
    id: i64,
    body: String,
    attempts: i64,
    deadline: i64,
    uncertain: bool,
    created_at: String,
}

impl From<&AnyRow> for ClaimedRow {
    fn from(row: &AnyRow) -> Self {
        ClaimedRow {
            id: row.get(0),
            body: row.get(1),
            attempts: row.get(2),
            deadline: row.get(3),
            uncertain: row.get::<i64, _>(4) != 0,
            created_at: row.get(5),
        }
    }
}
