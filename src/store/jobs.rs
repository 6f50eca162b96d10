//! A durable queue for work that runs after Slack's acknowledgement (planning a command
//! against AWS). A job is enqueued in the same transaction that records the command, so a
//! crash after the answer does not lose it; `running` jobs are queued again at start-up.

use sqlx::Row;

use super::{Liveness, QueryContext, Store, StoreError, StoreTx};

#[derive(Debug, Clone)]
pub struct Job {
    pub id: i64,
    pub kind: String,
    pub payload: serde_json::Value,
}

impl StoreTx<'_> {
    pub async fn enqueue(
        &mut self,
        kind: &str,
        payload: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        let kind = kind.to_string();
        let payload = payload.clone();
        self.run(move |c| Box::pin(async move {
        let row = sqlx::query("INSERT INTO jobs (kind, payload, state, created_at) VALUES ($1, $2, 'queued', $3) RETURNING id")
            .bind(kind)
            .bind(payload.to_string())
            .bind(crate::clock::now_rfc3339())
            .fetch_one(c.conn())
            .await
            .context("queueing a job")?;
        Ok(row.get(0))
        })).await
    }

    /// Marks a job done; committed together with whatever the job wrote.
    pub async fn finish_job(&mut self, id: i64) -> Result<(), StoreError> {
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE jobs SET state = 'done' WHERE id = $1")
                    .bind(id)
                    .execute(c.conn())
                    .await
                    .context("finishing a job")?;
                Ok(())
            })
        })
        .await
    }
}

impl Store {
    /// Takes the oldest queued job, if any.
    pub async fn claim_job(&self) -> Result<Option<Job>, StoreError> {
        let mut tx = self.begin().await?;
        let replica = tx.replica();
        let row = tx
            .run(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "UPDATE jobs SET state = 'running', owner = $1 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
                         RETURNING id, kind, payload",
                    )
                    .bind(replica)
                    .fetch_optional(c.conn())
                    .await
                    .context("claiming a job")
                })
            })
            .await?;
        tx.commit().await?;
        Ok(row.map(|r| Job {
            id: r.get(0),
            kind: r.get(1),
            payload: serde_json::from_str(&r.get::<String, _>(2))
                .unwrap_or(serde_json::Value::Null),
        }))
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
