//! Display names of the users and channels drbot meets, with when they were read, for
//! readable exports (issue: names beside ids). A cache of Slack's answers, never the source
//! of any decision.

use std::collections::HashMap;

use sqlx::Row;

use super::statement::args;
use super::{Store, StoreError};

impl Store {
    /// Every known name, by id.
    pub async fn names(&self) -> Result<HashMap<String, String>, StoreError> {
        let sql = "SELECT id, name FROM names";
        let names = self.fetch("reading names", sql, args![], |r| Ok((r.get(0), r.get(1))));
        Ok(names.await?.into_iter().collect())
    }

    /// Records (or refreshes) the name of `id`.
    pub async fn record_name(&self, id: &str, kind: &str, name: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO names (id, kind, name, read_at) VALUES ($1, $2, $3, $4)
                   ON CONFLICT (id) DO UPDATE SET name = excluded.name, read_at = excluded.read_at";
        let args = args![id, kind, name, crate::clock::now_rfc3339()];
        self.execute("recording a name", sql, args).await.map(drop)
    }

    /// Actors, channels and texts of the events after `seq` (at most `limit`), oldest first.
    pub async fn events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        let sql =
            "SELECT seq, actor, channel, text FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";
        let read = |r: &sqlx::any::AnyRow| Ok((r.get(0), r.get(1), r.get(2), r.get(3)));
        self.fetch("reading recent events", sql, args![seq, limit], read)
            .await
    }
}
