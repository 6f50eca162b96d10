//! Incidents (SPEC §8): one per incident channel, with the clock, the checklist's progress
//! and when drbot last reminded or notified. Reminders and the user notice are claimed by
//! conditional updates, so a restart neither skips nor repeats them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{QueryContext, Store, StoreError, StoreTx};

#[derive(Debug, Clone)]
pub struct Incident {
    pub id: String,
    pub scenario: String,
    pub title: String,
    pub opened_by: String,
    pub origin_channel: String,
    pub channel_id: String,
    pub started_at: DateTime<Utc>,
    pub status: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub checklist_ts: Option<String>,
    pub steps_done: Vec<bool>,
    pub last_update_at: DateTime<Utc>,
    pub last_reminder_at: Option<DateTime<Utc>>,
    pub notice_at: Option<DateTime<Utc>>,
    /// A drill, not a real incident: no users' notice, counted as a test.
    pub drill: bool,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }
}

#[derive(Debug, Clone)]
pub struct NewIncident {
    pub id: String,
    pub scenario: String,
    pub title: String,
    pub opened_by: String,
    pub origin_channel: String,
    pub channel_id: String,
    pub steps: usize,
    pub drill: bool,
}

const COLUMNS: &str = "id, scenario, title, opened_by, origin_channel, channel_id, started_at, status, resolved_at, summary, checklist_ts, steps_done, last_update_at, last_reminder_at, notice_at, drill";

fn time(row: &sqlx::any::AnyRow, i: usize) -> Option<DateTime<Utc>> {
    row.get::<Option<String>, _>(i)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn row_to_incident(row: &sqlx::any::AnyRow) -> Incident {
    Incident {
        id: row.get(0),
        scenario: row.get(1),
        title: row.get(2),
        opened_by: row.get(3),
        origin_channel: row.get(4),
        channel_id: row.get(5),
        started_at: time(row, 6).unwrap_or_else(crate::clock::now),
        status: row.get(7),
        resolved_at: time(row, 8),
        summary: row.get(9),
        checklist_ts: row.get(10),
        steps_done: serde_json::from_str(&row.get::<String, _>(11)).unwrap_or_default(),
        last_update_at: time(row, 12).unwrap_or_else(crate::clock::now),
        last_reminder_at: time(row, 13),
        notice_at: time(row, 14),
        drill: row.get::<i64, _>(15) != 0,
    }
}

impl StoreTx<'_> {
    pub async fn create_incident(&mut self, new: &NewIncident) -> Result<Incident, StoreError> {
        self.store.plain_channels.remove(&new.channel_id);
        let new = new.clone();
        self.run(move |c| Box::pin(async move {
        let now = crate::clock::now_rfc3339();
        let row = sqlx::query(&format!(
            "INSERT INTO incidents (id, scenario, title, opened_by, origin_channel, channel_id, started_at, status, steps_done, last_update_at, drill)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $7, $9) RETURNING {COLUMNS}"
        ))
        .bind(&new.id)
        .bind(&new.scenario)
        .bind(&new.title)
        .bind(&new.opened_by)
        .bind(&new.origin_channel)
        .bind(&new.channel_id)
        .bind(&now)
        .bind(serde_json::to_string(&vec![false; new.steps]).unwrap_or_default())
        .bind(new.drill as i64)
        .fetch_one(c.conn())
        .await
        .context("opening an incident")?;
        Ok(row_to_incident(&row))
        })).await
    }

    pub async fn incident(&mut self, id: &str) -> Result<Option<Incident>, StoreError> {
        let id = id.to_string();
        self.run(move |c| {
            Box::pin(async move {
                let row = sqlx::query(&format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"))
                    .bind(id)
                    .fetch_optional(c.conn())
                    .await
                    .context("reading an incident")?;
                Ok(row.as_ref().map(row_to_incident))
            })
        })
        .await
    }

    pub async fn set_checklist_ts(&mut self, id: &str, ts: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        let ts = ts.to_string();
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE incidents SET checklist_ts = $2 WHERE id = $1")
                    .bind(id)
                    .bind(ts)
                    .execute(c.conn())
                    .await
                    .context("remembering the checklist message")?;
                Ok(())
            })
        })
        .await
    }

    pub async fn set_steps_done(&mut self, id: &str, done: &[bool]) -> Result<(), StoreError> {
        let id = id.to_string();
        let done = done.to_vec();
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE incidents SET steps_done = $2 WHERE id = $1")
                    .bind(id)
                    .bind(serde_json::to_string(&done).unwrap_or_default())
                    .execute(c.conn())
                    .await
                    .context("ticking the checklist")?;
                Ok(())
            })
        })
        .await
    }

    pub async fn touch_update(&mut self, id: &str) -> Result<(), StoreError> {
        let id = id.to_string();
        self.run(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE incidents SET last_update_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(crate::clock::now_rfc3339())
                    .execute(c.conn())
                    .await
                    .context("recording a status update")?;
                Ok(())
            })
        })
        .await
    }

    /// Claims the reminder due for `incident` (its state as read); false if someone else did.
    pub async fn claim_reminder(&mut self, incident: &Incident) -> Result<bool, StoreError> {
        let incident = incident.clone();
        self.run(move |c| Box::pin(async move {
        let done = sqlx::query(
            "UPDATE incidents SET last_reminder_at = $2 WHERE id = $1 AND status = 'open' AND COALESCE(last_reminder_at, '') = COALESCE($3, '')",
        )
        .bind(&incident.id)
        .bind(crate::clock::now_rfc3339())
        .bind(incident.last_reminder_at.map(crate::clock::rfc3339))
        .execute(c.conn())
        .await
        .context("claiming a reminder")?;
        Ok(done.rows_affected() == 1)
        })).await
    }

    /// Claims the one user notice of `incident`; false if it was already posted.
    pub async fn claim_notice(&mut self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.run(move |c| Box::pin(async move {
        let done = sqlx::query("UPDATE incidents SET notice_at = $2 WHERE id = $1 AND status = 'open' AND notice_at IS NULL")
            .bind(id)
            .bind(crate::clock::now_rfc3339())
            .execute(c.conn())
            .await
            .context("claiming the user notice")?;
        Ok(done.rows_affected() == 1)
        })).await
    }

    /// Open → resolved; false if it was not open.
    pub async fn resolve_incident(
        &mut self,
        id: &str,
        summary: Option<&str>,
    ) -> Result<bool, StoreError> {
        let id = id.to_string();
        let summary = summary.map(str::to_string);
        self.run(move |c| Box::pin(async move {
        let done = sqlx::query("UPDATE incidents SET status = 'resolved', resolved_at = $2, summary = $3 WHERE id = $1 AND status = 'open'")
            .bind(id)
            .bind(crate::clock::now_rfc3339())
            .bind(summary)
            .execute(c.conn())
            .await
            .context("resolving an incident")?;
        Ok(done.rows_affected() == 1)
        })).await
    }
}

impl Store {
    /// The incident whose channel is `channel_id`.
    pub async fn incident_of_channel(
        &self,
        channel_id: &str,
    ) -> Result<Option<Incident>, StoreError> {
        if self.plain_channels.contains(channel_id) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM incidents WHERE channel_id = $1"
        ))
        .bind(channel_id)
        .fetch_optional(self.pool())
        .await
        .context("finding a channel's incident")?;
        let incident = row.as_ref().map(row_to_incident);
        if incident.is_none() {
            if self.plain_channels.len() >= 10_000 {
                self.plain_channels.clear();
            }
            self.plain_channels.insert(channel_id.to_string());
        }
        Ok(incident)
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM incidents WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .context("reading an incident")?;
        Ok(row.as_ref().map(row_to_incident))
    }

    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM incidents WHERE status = 'open' ORDER BY started_at"
        ))
        .fetch_all(self.pool())
        .await
        .context("listing open incidents")?;
        Ok(rows.iter().map(row_to_incident).collect())
    }

    pub async fn recent_incidents(&self, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM incidents WHERE status != 'open' ORDER BY resolved_at DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await
            .context("listing recent incidents")?;
        Ok(rows.iter().map(row_to_incident).collect())
    }

    /// True when an incident channel is named `name` (for unique names).
    pub async fn incident_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.incident(id).await?.is_some())
    }
}
