//! Approval requests (SPEC §7) and the officer approvals on them. A request changes state
//! only through [`StoreTx::transition`], a conditional update: of two callers racing for
//! the same change, exactly one sees `true`.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::statement::args;
use super::{Liveness, Store, StoreError, StoreTx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestState {
    Pending,
    Executing,
    Executed,
    Failed,
    Rejected,
    Expired,
    Void,
    Cancelled,
    Interrupted,
}

impl RequestState {
    pub fn as_str(self) -> &'static str {
        match self {
            RequestState::Pending => "pending",
            RequestState::Executing => "executing",
            RequestState::Executed => "executed",
            RequestState::Failed => "failed",
            RequestState::Rejected => "rejected",
            RequestState::Expired => "expired",
            RequestState::Void => "void",
            RequestState::Cancelled => "cancelled",
            RequestState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            RequestState::Pending,
            RequestState::Executing,
            RequestState::Executed,
            RequestState::Failed,
            RequestState::Rejected,
            RequestState::Expired,
            RequestState::Void,
            RequestState::Cancelled,
            RequestState::Interrupted,
        ]
        .into_iter()
        .find(|state| state.as_str() == s)
    }
}

/// A request to create.
#[derive(Debug, Clone)]
pub struct NewRequest {
    /// The command as typed, without `/dr`.
    pub command: String,
    /// Its name in `commands/` (`rollback`).
    pub command_name: String,
    pub action: String,
    pub requester: String,
    pub channel: String,
    pub incident: Option<String>,
    pub response_url: String,
    /// The plan as JSON, exactly what the approval is bound to.
    pub plan: String,
    pub plan_hash: String,
    /// The plan as the approvers read it.
    pub summary: String,
    pub expires_at: DateTime<Utc>,
    /// `Pending` for a request put to the officers; `Executing` for a command whose
    /// policy needs no approval.
    pub state: RequestState,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: i64,
    /// The command as typed, without `/dr`.
    pub command: String,
    /// Its name in `commands/` (`rollback`); empty for requests stored before it was kept.
    pub command_name: String,
    pub action: String,
    pub requester: String,
    pub channel: String,
    pub incident: Option<String>,
    pub response_url: String,
    pub plan: String,
    pub plan_hash: String,
    pub summary: String,
    pub state: RequestState,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub message_ts: Option<String>,
    pub decided_by: Option<String>,
    pub outcome: Option<String>,
    /// The replica executing it, and the epoch it began under (see `store::lease`).
    pub owner: Option<String>,
    pub fence: Option<i64>,
}

impl Request {
    /// `A-<n>`, as users see it.
    pub fn label(&self) -> String {
        format!("A-{}", self.id)
    }
}

const COLUMNS: &str = "id, command, action, requester, channel, incident, response_url, plan, plan_hash, summary, state, created_at, expires_at, message_ts, decided_by, outcome, command_name, owner, fence";

fn read(row: &sqlx::any::AnyRow) -> Result<Request, StoreError> {
    let id: i64 = row.get(0);
    let bad = |what: &str| StoreError::Corrupt {
        seq: id,
        message: format!("request A-{id} has an unreadable {what}"),
    };
    let time = |i: usize, what: &str| {
        DateTime::parse_from_rfc3339(&row.get::<String, _>(i))
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| bad(what))
    };
    Ok(Request {
        id,
        command: row.get(1),
        action: row.get(2),
        requester: row.get(3),
        channel: row.get(4),
        incident: row.get(5),
        response_url: row.get(6),
        plan: row.get(7),
        plan_hash: row.get(8),
        summary: row.get(9),
        state: RequestState::parse(&row.get::<String, _>(10)).ok_or_else(|| bad("state"))?,
        created_at: time(11, "creation time")?,
        expires_at: time(12, "expiry time")?,
        message_ts: row.get(13),
        decided_by: row.get(14),
        outcome: row.get(15),
        command_name: row.get(16),
        owner: row.get(17),
        fence: row.get(18),
    })
}

impl StoreTx<'_> {
    pub async fn create_request(&mut self, new: NewRequest) -> Result<Request, StoreError> {
        let sql = format!(
            "INSERT INTO requests (command, action, requester, channel, incident, response_url, plan, plan_hash, summary, state, created_at, expires_at, owner, command_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $12, $10, $11, $13, $14) RETURNING {COLUMNS}"
        );
        let args = args![
            new.command,
            new.action,
            new.requester,
            new.channel,
            new.incident,
            new.response_url,
            new.plan,
            new.plan_hash,
            new.summary,
            crate::clock::now_rfc3339(),
            crate::clock::rfc3339(new.expires_at),
            new.state.as_str(),
            self.replica(),
            new.command_name,
        ];
        let created = self
            .fetch("creating an approval request", sql, args, read)
            .await?;
        created.into_iter().next().ok_or_else(not_created)
    }

    pub async fn set_message_ts(&mut self, id: i64, ts: &str) -> Result<(), StoreError> {
        let sql = "UPDATE requests SET message_ts = $2 WHERE id = $1";
        self.write(
            "remembering an approval request's message",
            sql,
            args![id, ts],
        )
        .await
    }

    pub async fn request(&mut self, id: i64) -> Result<Option<Request>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = $1");
        let found = self
            .fetch("reading an approval request", sql, args![id], read)
            .await?;
        Ok(found.into_iter().next())
    }

    pub async fn request_by_message(
        &mut self,
        channel: &str,
        ts: &str,
    ) -> Result<Option<Request>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM requests WHERE channel = $1 AND message_ts = $2");
        let args = args![channel, ts];
        let found = self
            .fetch("finding the request of a message", sql, args, read)
            .await?;
        Ok(found.into_iter().next())
    }

    /// Moves request `id` from one of `from` to `to`; true only for the caller that did it.
    pub async fn transition(
        &mut self,
        id: i64,
        from: &[RequestState],
        to: RequestState,
        decided_by: Option<&str>,
        outcome: Option<&str>,
    ) -> Result<bool, StoreError> {
        let from: Vec<String> = from.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let sql = format!(
            "UPDATE requests SET state = $2, decided_by = COALESCE($3, decided_by), outcome = COALESCE($4, outcome),
                 owner = CASE WHEN $2 = 'executing' THEN $5 ELSE owner END,
                 fence = CASE WHEN $2 = 'executing' THEN $6 ELSE fence END
             WHERE id = $1 AND state IN ({})",
            from.join(", ")
        );
        let epoch = self.store.epoch();
        let args = args![id, to.as_str(), decided_by, outcome, self.replica(), epoch];
        Ok(self
            .execute("changing an approval request's state", sql, args)
            .await?
            == 1)
    }

    /// Ends `request`'s execution (`executing` → `to`) as the replica running it: only while
    /// it still owns it under the fence it began with. False when it does not — it was
    /// taken over (marked interrupted) while this replica's lease had lapsed.
    pub async fn settle(
        &mut self,
        request: &Request,
        to: RequestState,
        outcome: &str,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE requests SET state = $2, outcome = $3
                   WHERE id = $1 AND state = 'executing' AND owner = $4 AND COALESCE(fence, 0) = $5";
        let args = args![
            request.id,
            to.as_str(),
            outcome,
            self.replica(),
            request.fence.unwrap_or(0)
        ];
        let what = "ending an execution";
        Ok(self.execute(what, sql, args).await? == 1)
    }

    /// Records an officer's approving reaction; false if it was already there.
    pub async fn add_approval(
        &mut self,
        id: i64,
        officer: &str,
        reaction: &str,
    ) -> Result<bool, StoreError> {
        let sql = "INSERT INTO approvals (request_id, officer, reaction, at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING";
        let args = args![id, officer, reaction, crate::clock::now_rfc3339()];
        Ok(self.execute("recording an approval", sql, args).await? == 1)
    }

    pub async fn remove_approval(
        &mut self,
        id: i64,
        officer: &str,
        reaction: &str,
    ) -> Result<bool, StoreError> {
        let sql = "DELETE FROM approvals WHERE request_id = $1 AND officer = $2 AND reaction = $3";
        let args = args![id, officer, reaction];
        Ok(self.execute("withdrawing an approval", sql, args).await? == 1)
    }

    /// Distinct officers whose approval stands.
    pub async fn approvers(&mut self, id: i64) -> Result<Vec<String>, StoreError> {
        let sql = "SELECT DISTINCT officer FROM approvals WHERE request_id = $1 ORDER BY officer";
        self.fetch("counting approvals", sql, args![id], |r| Ok(r.get(0)))
            .await
    }

    /// True while a pending request in `channel` has no message yet (being posted).
    pub async fn has_unposted_request(&mut self, channel: &str) -> Result<bool, StoreError> {
        let sql = "SELECT 1 FROM requests WHERE channel = $1 AND state = 'pending' AND message_ts IS NULL LIMIT 1";
        let found = self.fetch(
            "looking for requests being posted",
            sql,
            args![channel],
            |_| Ok(()),
        );
        Ok(!found.await?.is_empty())
    }

    /// Pending requests whose expiry has passed.
    pub async fn due_for_expiry(&mut self, now: DateTime<Utc>) -> Result<Vec<Request>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM requests WHERE state = 'pending' AND expires_at <= $1 ORDER BY id");
        let args = args![crate::clock::rfc3339(now)];
        self.fetch("finding expired requests", sql, args, read)
            .await
    }

    pub async fn requests_in_state(
        &mut self,
        state: RequestState,
    ) -> Result<Vec<Request>, StoreError> {
        let args = args![state.as_str()];
        self.fetch("listing requests", in_state(), args, read).await
    }

    /// Executing requests whose replica is gone (`Liveness::Heartbeat`), or, at start-up on
    /// SQLite, every executing request; `mine`: those this replica executes.
    pub async fn executing_requests(&mut self, whose: Whose) -> Result<Vec<Request>, StoreError> {
        let (filter, bind) = match whose {
            Whose::Mine => ("owner = $1".to_string(), self.replica()),
            Whose::Orphaned(liveness) => (
                super::replicas::orphaned(1, &self.replica()),
                self.cutoff(liveness),
            ),
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM requests WHERE state = 'executing' AND {filter} ORDER BY id"
        );
        self.fetch("listing executing requests", sql, args![bind], read)
            .await
    }

    /// Takes over the posting of pending requests whose message was never posted and whose
    /// replica is gone (it stopped between storing and posting them).
    pub async fn claim_unposted(&mut self, liveness: Liveness) -> Result<Vec<Request>, StoreError> {
        let replica = self.replica();
        let sql = format!(
            "UPDATE requests SET owner = $1 WHERE state = 'pending' AND message_ts IS NULL AND {}
             RETURNING {COLUMNS}",
            super::replicas::orphaned(2, &replica)
        );
        let args = args![replica, self.cutoff(liveness)];
        let mut requests = self
            .fetch("claiming unposted requests", sql, args, read)
            .await?;
        requests.sort_by_key(|r| r.id);
        Ok(requests)
    }
}

fn in_state() -> String {
    format!("SELECT {COLUMNS} FROM requests WHERE state = $1 ORDER BY id")
}

fn not_created() -> StoreError {
    StoreError::NotWritten("the request was not created".into())
}

/// Whose executing requests to list.
#[derive(Debug, Clone, Copy)]
pub enum Whose {
    Mine,
    Orphaned(Liveness),
}

impl Store {
    /// Requests in `state`, oldest first (a read; no write lock).
    pub async fn requests_in_state(&self, state: RequestState) -> Result<Vec<Request>, StoreError> {
        let args = args![state.as_str()];
        self.fetch("listing requests", &in_state(), args, read)
            .await
    }

    pub async fn request(&self, id: i64) -> Result<Option<Request>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM requests WHERE id = $1");
        let found = self
            .fetch("reading an approval request", &sql, args![id], read)
            .await?;
        Ok(found.into_iter().next())
    }
}
