//! A durable queue for work that runs after Slack's acknowledgement (planning a command
//! against AWS). A job is enqueued in the same transaction that records the command, so a
//! crash after the answer does not lose it; `running` jobs are queued again at start-up.

use sqlx::Row;

use super::statement::args;
use super::{Liveness, Store, StoreError, StoreTx};

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
}

fn read(r: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.get(0),
        kind: r.get(1),
        payload: serde_json::from_str(&r.get::<String, _>(2)).unwrap_or(serde_json::Value::Null),
    })
}

impl StoreTx<'_> {
    pub async fn enqueue(
        &mut self,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let sql = "INSERT INTO jobs (kind, payload, state, created_at) VALUES ($1, $2, 'queued', $3) RETURNING id";
        let args = args![kind, payload.to_string(), crate::clock::now_rfc3339()];
        let ids = self.fetch("queueing a job", sql, args, |r| Ok(r.get(0)));
        ids.await?
            .pop()
            .ok_or_else(|| StoreError::NotWritten("no job was queued".into()))
    }

    /// Marks a job done; committed together with whatever the job wrote.
    pub async fn finish_job(&mut self, id: i64) -> Result<(), StoreError> {
        let sql = "UPDATE jobs SET state = 'done' WHERE id = $1";
        self.write("finishing a job", sql, args![id]).await
    }
}

impl Store {
    /// Takes the oldest queued job, if any.
    pub async fn claim_job(&self) -> Result<Option<Job>, StoreError> {
        let mut tx = self.begin().await?;
        let sql = "UPDATE jobs SET state = 'running', owner = $1 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
                   RETURNING id, kind, payload";
        let args = args![tx.replica()];
        let claimed = tx.fetch("claiming a job", sql, args, read).await?;
        tx.commit().await?;
        Ok(claimed.into_iter().next())
    }

    /// Jobs that were running on a replica that is gone run again (at start-up on SQLite:
    /// every running job, since the one process that ran them stopped).
    pub async fn requeue_orphaned_jobs(&self, liveness: Liveness) -> Result<u64, StoreError> {
        self.release_orphaned(
            liveness,
            "UPDATE jobs SET state = 'queued', owner = NULL WHERE state = 'running'",
            "re-queueing jobs",
        )
        .await
    }
}
