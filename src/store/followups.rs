//! Follow-ups (SPEC §18): what an incident or a drill leaves to do — the lessons learned
//! and procedure updates the plan's DR testing asks for — with an owner and a due date.
//! Each change is also an event (`followup.added`, `followup.done`), which the postmortem
//! and the report read; the overdue reminder is claimed per day here, so it is posted once
//! a day at most, whichever replica sees it first.

use sqlx::Row;

use super::statement::args;
use super::{Store, StoreError, StoreTx};

#[derive(Debug, Clone, serde::Serialize)]
pub struct Followup {
    pub id: i64,
    pub incident: Option<String>,
    pub channel: String,
    pub text: String,
    pub owner: Option<String>,
    /// `YYYY-MM-DD`.
    pub due: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub done_at: Option<String>,
    pub done_by: Option<String>,
}

impl Followup {
    /// `F-<n>`, as users see it.
    pub fn label(&self) -> String {
        format!("F-{}", self.id)
    }
}

const COLUMNS: &str =
    "id, incident, channel, text, owner, due, created_by, created_at, done_at, done_by";

fn read(row: &sqlx::any::AnyRow) -> Result<Followup, StoreError> {
    Ok(Followup {
        id: row.get(0),
        incident: row.get(1),
        channel: row.get(2),
        text: row.get(3),
        owner: row.get(4),
        due: row.get(5),
        created_by: row.get(6),
        created_at: row.get(7),
        done_at: row.get(8),
        done_by: row.get(9),
    })
}

impl StoreTx<'_> {
    #[allow(clippy::too_many_arguments)]
    pub async fn add_followup(
        &mut self,
        incident: Option<&str>,
        channel: &str,
        text: &str,
        owner: Option<&str>,
        due: Option<&str>,
        by: &str,
    ) -> Result<Followup, StoreError> {
        let sql = format!("INSERT INTO followups (incident, channel, text, owner, due, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}");
        let args = args![
            incident,
            channel,
            text,
            owner,
            due,
            by,
            crate::clock::now_rfc3339()
        ];
        self.fetch("adding a follow-up", &sql, args, read)
            .await?
            .pop()
            .ok_or_else(|| StoreError::NotWritten("no follow-up was added".into()))
    }

    /// Open → done; false when it was done already (or does not exist).
    pub async fn finish_followup(&mut self, id: i64, by: &str) -> Result<bool, StoreError> {
        let sql =
            "UPDATE followups SET done_at = $2, done_by = $3 WHERE id = $1 AND done_at IS NULL";
        let args = args![id, crate::clock::now_rfc3339(), by];
        Ok(self.execute("finishing a follow-up", sql, args).await? == 1)
    }

    pub async fn followup(&mut self, id: i64) -> Result<Option<Followup>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM followups WHERE id = $1");
        Ok(self
            .fetch("reading a follow-up", &sql, args![id], read)
            .await?
            .pop())
    }

    /// Claims today's overdue reminder of follow-up `id`; false when it was given today.
    pub async fn claim_followup_reminder(
        &mut self,
        id: i64,
        today: &str,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE followups SET reminded_on = $2 WHERE id = $1 AND done_at IS NULL AND COALESCE(reminded_on, '') <> $2";
        Ok(self
            .execute("claiming a follow-up reminder", sql, args![id, today])
            .await?
            == 1)
    }
}

impl Store {
    /// Follow-ups, oldest first: all, or only the open ones; of one incident or of all.
    pub async fn followups(
        &self,
        incident: Option<&str>,
        open_only: bool,
    ) -> Result<Vec<Followup>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM followups WHERE ($1 IS NULL OR incident = $1) AND ($2 = 0 OR done_at IS NULL) ORDER BY id"
        );
        self.fetch(
            "listing follow-ups",
            &sql,
            args![incident, i64::from(open_only)],
            read,
        )
        .await
    }

    /// Open follow-ups due before `today` (`YYYY-MM-DD`).
    pub async fn overdue_followups(&self, today: &str) -> Result<Vec<Followup>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM followups WHERE done_at IS NULL AND due IS NOT NULL AND due < $1 ORDER BY id");
        self.fetch("listing overdue follow-ups", &sql, args![today], read)
            .await
    }
}
