//! Each scenario's readiness as last checked (SPEC §15), so a change of state is posted
//! once across replicas and restarts; and who opened drbot's App Home, with the log's
//! sequence number their view was last published at (it is published again when the log
//! has grown, at most once per user per [`HOME_EVERY`]).

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::statement::args;
use super::{Store, StoreError, StoreTx};

/// A scenario's readiness as recorded.
#[derive(Debug, Clone)]
pub struct ReadinessRow {
    pub scenario: String,
    /// `ready`, `not ready` or `unknown`.
    pub state: String,
    /// The checks, as JSON text.
    pub checks: String,
    pub checked_at: String,
    pub changed_at: String,
}

/// The shortest time between two publications of one user's App Home.
pub const HOME_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// A user's App Home is kept up to date this long after they last opened it (Slack allows
/// about 100 `views.publish` a minute: a whole workspace that once looked is not republished
/// at every event).
pub const HOME_KEPT: std::time::Duration = std::time::Duration::from_secs(86_400);

impl StoreTx<'_> {
    /// Records `scenario`'s readiness; answers the state it changed from (`Some(None)`: the
    /// first record) or `None` when the state is unchanged or another replica recorded this
    /// change first.
    pub async fn record_readiness(
        &mut self,
        scenario: &str,
        state: &str,
        checks: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<Option<String>>, StoreError> {
        let now = crate::clock::rfc3339(now);
        let sql = "INSERT INTO readiness (scenario, state, checks, checked_at, changed_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (scenario) DO NOTHING";
        let args = args![scenario, state, checks, &now];
        if self.execute("recording readiness", sql, args).await? > 0 {
            return Ok(Some(None));
        }
        let sql = "SELECT state FROM readiness WHERE scenario = $1";
        let before = self
            .fetch("reading readiness", sql, args![scenario], |r| {
                Ok(r.get::<String, _>(0))
            })
            .await?
            .pop()
            .unwrap_or_default();
        if before == state {
            let sql = "UPDATE readiness SET checks = $2, checked_at = $3 WHERE scenario = $1";
            self.write("recording readiness", sql, args![scenario, checks, now])
                .await?;
            return Ok(None);
        }
        // Only one writer moves it from `before`.
        let sql = "UPDATE readiness SET state = $2, checks = $3, checked_at = $4, changed_at = $4 WHERE scenario = $1 AND state = $5";
        let args = args![scenario, state, checks, now, &before];
        let moved = self.execute("recording readiness", sql, args).await? > 0;
        Ok(moved.then_some(Some(before)))
    }

    /// `user` opened the App Home: their view is published at the next refresh.
    pub async fn home_opened(&mut self, user: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO home_views (user_id, published_seq, published_at, opened_at) VALUES ($1, -1, $2, $3)
                   ON CONFLICT (user_id) DO UPDATE SET published_seq = -1, opened_at = $3";
        let epoch = crate::clock::rfc3339(DateTime::<Utc>::UNIX_EPOCH);
        let now = crate::clock::now_rfc3339();
        self.write("recording an App Home visit", sql, args![user, epoch, now])
            .await
    }

    /// Claims the publication of `user`'s view at log position `seq` (it was at `from`);
    /// `false` when another replica did.
    pub async fn claim_home(
        &mut self,
        user: &str,
        from: i64,
        seq: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE home_views SET published_seq = $3, published_at = $4 WHERE user_id = $1 AND published_seq = $2";
        let args = args![user, from, seq, crate::clock::rfc3339(now)];
        Ok(self
            .execute("claiming an App Home refresh", sql, args)
            .await?
            > 0)
    }
}

impl Store {
    /// Every scenario's recorded readiness.
    pub async fn readiness(&self) -> Result<Vec<ReadinessRow>, StoreError> {
        let sql = "SELECT scenario, state, checks, checked_at, changed_at FROM readiness ORDER BY scenario";
        self.fetch("reading readiness", sql, args![], |r| {
            Ok(ReadinessRow {
                scenario: r.get(0),
                state: r.get(1),
                checks: r.get(2),
                checked_at: r.get(3),
                changed_at: r.get(4),
            })
        })
        .await
    }

    /// App Home views older than the log's `head`, last published before `before` and
    /// opened since `opened_since`: `(user, published_seq)`.
    pub async fn homes_due(
        &self,
        head: i64,
        before: DateTime<Utc>,
        opened_since: DateTime<Utc>,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = "SELECT user_id, published_seq FROM home_views WHERE published_seq < $1 AND published_at <= $2 AND opened_at >= $3 ORDER BY user_id";
        let args = args![
            head,
            crate::clock::rfc3339(before),
            crate::clock::rfc3339(opened_since)
        ];
        self.fetch("reading App Home views", sql, args, |r| {
            Ok((r.get(0), r.get(1)))
        })
        .await
    }

    /// The newest `limit` events of `kind`, newest first.
    pub async fn latest_events(
        &self,
        kind: &str,
        limit: i64,
    ) -> Result<Vec<super::StoredEvent>, StoreError> {
        let sql = "SELECT seq, at, actor, channel, incident, kind, text, detail, prev_hash, hash FROM events WHERE kind = $1 ORDER BY seq DESC LIMIT $2";
        self.fetch(
            "reading recent events",
            sql,
            args![kind, limit],
            super::events::row_to_event,
        )
        .await
    }
}
