//! Display names of the users and channels drbot meets, with when they were read, for
//! readable exports (issue: names beside ids). A cache of Slack's answers, never the source
//! of any decision.

use std::collections::HashMap;

use sqlx::Row;

use super::{QueryContext, Store, StoreError};

impl Store {
    /// Every known name, by id.
    pub async fn names(&self) -> Result<HashMap<String, String>, StoreError> {
        let rows = sqlx::query("SELECT id, name FROM names")
            .fetch_all(self.pool())
            .await
            .context("reading names")?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Records (or refreshes) the name of `id`.
    pub async fn record_name(&self, id: &str, kind: &str, name: &str) -> Result<(), StoreError> {
        let (id, kind, name) = (id.to_string(), kind.to_string(), name.to_string());
        let mut tx = self.begin().await?;
        tx.run(move |c| {
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO names (id, kind, name, read_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET name = excluded.name, read_at = excluded.read_at",
                )
                .bind(id)
                .bind(kind)
                .bind(name)
                .bind(crate::clock::now_rfc3339())
                .execute(c.conn())
                .await
                .context("recording a name")?;
                Ok(())
            })
        })
        .await?;
        tx.commit().await
    }

    /// Actors, channels and texts of the events after `seq` (at most `limit`), oldest first.
    pub async fn events_after(
        &self,
        seq: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, actor, channel, text FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await
        .context("reading recent events")?;
        Ok(rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }
}
