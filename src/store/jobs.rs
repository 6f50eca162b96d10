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
    /// The epoch this replica claimed it under (see `store::lease`).
    pub fence: i64,
}

impl Job {
    /// What ends the job: its id and the fence it was claimed with.
    pub fn claim(&self) -> JobClaim {
        JobClaim {
            id: self.id,
            fence: self.fence,
        }
    }
}

/// A job as claimed by this replica: only this claim can finish it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobClaim {
    pub id: i64,
    pub fence: i64,
}

/// A `running` job whose claim is older than this is queued again, even when its replica
/// is alive: the commit that would have finished it was lost (a job plans against AWS with
/// bounded calls, in well under this). A late finish of the first run is fenced off.
pub const JOB_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10 * 60);

fn read(r: &sqlx::any::AnyRow) -> Result<Job, StoreError> {
    Ok(Job {
        id: r.get(0),
        kind: r.get(1),
        payload: serde_json::from_str(&r.get::<String, _>(2)).unwrap_or(serde_json::Value::Null),
        fence: r.try_get::<Option<i64>, _>(3).ok().flatten().unwrap_or(0),
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

    /// Marks a job done; committed together with whatever the job wrote. Only the claim
    /// that still holds the job can: a job taken over meanwhile is [`StoreError::Fenced`],
    /// and everything this transaction wrote is rolled back with it.
    pub async fn finish_job(&mut self, job: JobClaim) -> Result<(), StoreError> {
        let sql = "UPDATE jobs SET state = 'done' WHERE id = $1 AND state = 'running' AND owner = $2 AND fence = $3";
        let args = args![job.id, self.replica(), job.fence];
        match self.execute("finishing a job", sql, args).await? {
            1 => Ok(()),
            _ => Err(StoreError::Fenced(format!("job {}", job.id))),
        }
    }
}

impl Store {
    /// Takes the oldest queued job, if any.
    pub async fn claim_job(&self) -> Result<Option<Job>, StoreError> {
        let mut tx = self.begin().await?;
        let sql = "UPDATE jobs SET state = 'running', owner = $1, fence = $2, claimed_at = $3 WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1)
                   RETURNING id, kind, payload, fence";
        let args = args![tx.replica(), self.epoch(), super::outbox::epoch_ms()];
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

    /// Jobs left `running` past [`JOB_DEADLINE`] by any replica, this one included (a lost
    /// commit), are queued again.
    pub async fn requeue_stuck_jobs(&self) -> Result<u64, StoreError> {
        let before = super::outbox::epoch_ms() - JOB_DEADLINE.as_millis() as i64;
        let sql = "UPDATE jobs SET state = 'queued', owner = NULL WHERE state = 'running' AND claimed_at < $1";
        self.execute("re-queueing stuck jobs", sql, args![before])
            .await
    }
}

impl StoreTx<'_> {
    /// Notes the channel job `job` is creating (`channel` once Slack made it): a run of the
    /// job after a lost commit uses it instead of creating another.
    pub async fn note_channel(
        &mut self,
        job: i64,
        name: &str,
        channel: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO job_channels (job_id, name, channel_id) VALUES ($1, $2, $3)
                   ON CONFLICT (job_id) DO UPDATE SET name = $2, channel_id = $3";
        let args = args![job, name, channel];
        self.write("noting a job's channel", sql, args).await
    }
}

impl Store {
    /// The channel job `job` noted: its name, and its id once Slack made it.
    pub async fn noted_channel(
        &self,
        job: i64,
    ) -> Result<Option<(String, Option<String>)>, StoreError> {
        let sql = "SELECT name, channel_id FROM job_channels WHERE job_id = $1";
        let noted = self.fetch("reading a job's channel", sql, args![job], |r| {
            Ok((r.get::<String, _>(0), r.get::<Option<String>, _>(1)))
        });
        Ok(noted.await?.pop())
    }
}
