//! Incidents (SPEC §8): one per incident channel, with the clock, the checklist's progress
//! and when drbot last reminded or notified. Reminders and the user notice are claimed by
//! conditional updates, so a restart neither skips nor repeats them.

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::statement::args;
use super::{Store, StoreError, StoreTx};

/// An incident as stored: how it was opened ([`NewIncident`], read through `Deref`) and
/// where it stands.
#[derive(Debug, Clone)]
pub struct Incident {
    pub opened: NewIncident,
    pub started_at: DateTime<Utc>,
    pub status: String,
    pub resolved_at: Option<DateTime<Utc>>,
    pub summary: Option<String>,
    pub checklist_ts: Option<String>,
    pub steps_done: Vec<bool>,
    pub last_update_at: DateTime<Utc>,
    pub last_reminder_at: Option<DateTime<Utc>>,
    pub notice_at: Option<DateTime<Utc>>,
    /// When a publication to users (status page or email) was last made.
    pub users_told_at: Option<DateTime<Utc>>,
    /// The status page's incident for this one, and its public link.
    pub page_incident: Option<String>,
    pub page_url: Option<String>,
}

impl std::ops::Deref for Incident {
    type Target = NewIncident;

    fn deref(&self) -> &NewIncident {
        &self.opened
    }
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
    /// How many steps its scenario's checklist has.
    pub steps: usize,
    /// A drill, not a real incident: no users' notice, counted as a test.
    pub drill: bool,
}

const COLUMNS: &str = "id, scenario, title, opened_by, origin_channel, channel_id, started_at, status, resolved_at, summary, checklist_ts, steps_done, last_update_at, last_reminder_at, notice_at, drill, users_told_at, page_incident, page_url";

fn time(row: &sqlx::any::AnyRow, i: usize) -> Option<DateTime<Utc>> {
    row.get::<Option<String>, _>(i)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn read(row: &sqlx::any::AnyRow) -> Result<Incident, StoreError> {
    let steps_done: Vec<bool> = serde_json::from_str(&row.get::<String, _>(11)).unwrap_or_default();
    Ok(Incident {
        opened: NewIncident {
            id: row.get(0),
            scenario: row.get(1),
            title: row.get(2),
            opened_by: row.get(3),
            origin_channel: row.get(4),
            channel_id: row.get(5),
            steps: steps_done.len(),
            drill: row.get::<i64, _>(15) != 0,
        },
        started_at: time(row, 6).unwrap_or_else(crate::clock::now),
        status: row.get(7),
        resolved_at: time(row, 8),
        summary: row.get(9),
        checklist_ts: row.get(10),
        steps_done,
        last_update_at: time(row, 12).unwrap_or_else(crate::clock::now),
        last_reminder_at: time(row, 13),
        notice_at: time(row, 14),
        users_told_at: time(row, 16),
        page_incident: row.get(17),
        page_url: row.get(18),
    })
}

impl StoreTx<'_> {
    pub async fn create_incident(&mut self, new: &NewIncident) -> Result<Incident, StoreError> {
        self.store.plain_channels.remove(&new.channel_id);
        let now = crate::clock::now_rfc3339();
        let steps = serde_json::to_string(&vec![false; new.steps]).unwrap_or_default();
        let sql = format!(
            "INSERT INTO incidents (id, scenario, title, opened_by, origin_channel, channel_id, started_at, status, steps_done, last_update_at, drill)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $7, $9) RETURNING {COLUMNS}"
        );
        let args = args![
            &new.id,
            &new.scenario,
            &new.title,
            &new.opened_by,
            &new.origin_channel,
            &new.channel_id,
            now,
            steps,
            new.drill,
        ];
        let mut rows = self.fetch("opening an incident", sql, args, read).await?;
        rows.pop().ok_or(StoreError::NotWritten(
            "the incident was not created".into(),
        ))
    }

    pub async fn incident(&mut self, id: &str) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        let mut rows = self
            .fetch("reading an incident", sql, args![id], read)
            .await?;
        Ok(rows.pop())
    }

    pub async fn set_checklist_ts(&mut self, id: &str, ts: &str) -> Result<(), StoreError> {
        let sql = "UPDATE incidents SET checklist_ts = $2 WHERE id = $1";
        self.write("remembering the checklist message", sql, args![id, ts])
            .await
    }

    pub async fn set_steps_done(&mut self, id: &str, done: &[bool]) -> Result<(), StoreError> {
        let done = serde_json::to_string(done).unwrap_or_default();
        let sql = "UPDATE incidents SET steps_done = $2 WHERE id = $1";
        self.write("ticking the checklist", sql, args![id, done])
            .await
    }

    pub async fn touch_update(&mut self, id: &str) -> Result<(), StoreError> {
        let sql = "UPDATE incidents SET last_update_at = $2 WHERE id = $1";
        let args = args![id, crate::clock::now_rfc3339()];
        self.write("recording a status update", sql, args).await
    }

    /// Claims the reminder due for `incident` (its state as read); false if someone else did.
    pub async fn claim_reminder(&mut self, incident: &Incident) -> Result<bool, StoreError> {
        let sql = "UPDATE incidents SET last_reminder_at = $2 WHERE id = $1 AND status = 'open' AND COALESCE(last_reminder_at, '') = COALESCE($3, '')";
        let last = incident.last_reminder_at.map(crate::clock::rfc3339);
        let args = args![&incident.id, crate::clock::now_rfc3339(), last];
        Ok(self.execute("claiming a reminder", sql, args).await? == 1)
    }

    /// Claims the one user notice of `incident`; false if it was already posted.
    pub async fn claim_notice(&mut self, id: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE incidents SET notice_at = $2 WHERE id = $1 AND status = 'open' AND notice_at IS NULL";
        let args = args![id, crate::clock::now_rfc3339()];
        Ok(self.execute("claiming the user notice", sql, args).await? == 1)
    }

    /// Users were told now; `page` is the status page's incident (id, link) when it was
    /// the status page.
    pub async fn users_told(
        &mut self,
        id: &str,
        page: Option<(&str, Option<&str>)>,
    ) -> Result<(), StoreError> {
        let now = crate::clock::now_rfc3339();
        match page {
            Some((page_incident, url)) => {
                let sql = "UPDATE incidents SET users_told_at = $2, page_incident = $3, page_url = COALESCE($4, page_url) WHERE id = $1";
                let args = args![id, now, page_incident, url];
                self.write("recording the status page's incident", sql, args)
                    .await
            }
            None => {
                let sql = "UPDATE incidents SET users_told_at = $2 WHERE id = $1";
                self.write("recording that users were told", sql, args![id, now])
                    .await
            }
        }
    }

    /// Open → resolved; false if it was not open.
    pub async fn resolve_incident(
        &mut self,
        id: &str,
        summary: Option<&str>,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE incidents SET status = 'resolved', resolved_at = $2, summary = $3 WHERE id = $1 AND status = 'open'";
        let args = args![id, crate::clock::now_rfc3339(), summary];
        Ok(self.execute("resolving an incident", sql, args).await? == 1)
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
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE channel_id = $1");
        let incident = self
            .fetch(
                "finding a channel's incident",
                &sql,
                args![channel_id],
                read,
            )
            .await?
            .pop();
        if incident.is_none() {
            if self.plain_channels.len() >= 10_000 {
                self.plain_channels.clear();
            }
            self.plain_channels.insert(channel_id.to_string());
        }
        Ok(incident)
    }

    pub async fn incident(&self, id: &str) -> Result<Option<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE id = $1");
        Ok(self
            .fetch("reading an incident", &sql, args![id], read)
            .await?
            .pop())
    }

    pub async fn open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let sql =
            format!("SELECT {COLUMNS} FROM incidents WHERE status = 'open' ORDER BY started_at");
        self.fetch("listing open incidents", &sql, args![], read)
            .await
    }

    pub async fn recent_incidents(&self, limit: i64) -> Result<Vec<Incident>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM incidents WHERE status != 'open' ORDER BY resolved_at DESC LIMIT $1");
        self.fetch("listing recent incidents", &sql, args![limit], read)
            .await
    }

    /// True when an incident channel is named `name` (for unique names).
    pub async fn incident_exists(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.incident(id).await?.is_some())
    }
}
