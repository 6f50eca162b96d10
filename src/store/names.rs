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
        self.write("recording a name", sql, args).await
    }

    /// What the events after `seq` (at most `limit` of them) name: each distinct actor and
    /// channel, and the texts that may mention someone (those with a `<`), once each; with
    /// the last `seq` read and how many events were read. Under load the log grows by
    /// thousands of events a second, nearly all from the same few people and channels, so
    /// the store does the de-duplicating rather than sending every row.
    pub async fn names_after(&self, seq: i64, limit: i64) -> Result<NamedAfter, StoreError> {
        let sql = "WITH batch AS (SELECT seq, actor, channel, text FROM events WHERE seq > $1 ORDER BY seq LIMIT $2)
                   SELECT (SELECT MAX(seq) FROM batch), (SELECT COUNT(*) FROM batch), actor, channel,
                          CASE WHEN text LIKE '%<%' THEN text ELSE '' END
                   FROM batch GROUP BY 3, 4, 5";
        let read = |r: &sqlx::any::AnyRow| {
            let row: (i64, i64, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
            Ok(row)
        };
        let rows = self
            .fetch("reading recent events", sql, args![seq, limit], read)
            .await?;
        let mut named = NamedAfter {
            last: seq,
            read: 0,
            ids: Vec::new(),
            texts: Vec::new(),
        };
        for (last, read, actor, channel, text) in rows {
            named.last = last;
            named.read = read;
            named.ids.extend([actor, channel]);
            if !text.is_empty() {
                named.texts.push(text);
            }
        }
        Ok(named)
    }
}

/// What a stretch of the event log names (see [`Store::names_after`]).
pub struct NamedAfter {
    /// The last `seq` read (`seq` itself when there was none).
    pub last: i64,
    /// How many events were read.
    pub read: i64,
    /// Actors and channels (repeats possible).
    pub ids: Vec<String>,
    /// Texts that may mention people or channels.
    pub texts: Vec<String>,
}
