//! CloudWatch alarms as drbot received them (SPEC §16): one row per SNS message, so a
//! message delivered twice (SQS's at-least-once, a retried HTTPS delivery) is recorded once;
//! the proposal an alarm made and who decided it (once: the first click wins); and the
//! incident each alarm opened or joined.

use sqlx::Row;

use super::statement::args;
use super::{StoreError, StoreTx};

/// An alarm as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmRow {
    pub message_id: String,
    pub alarm_name: String,
    pub state: String,
    pub changed_at: String,
    pub scenario: Option<String>,
    pub channel: Option<String>,
    pub proposal: Option<String>,
}

/// What is recorded of a new alarm message.
pub struct NewAlarm<'a> {
    pub message_id: &'a str,
    pub alarm_name: &'a str,
    pub state: &'a str,
    pub changed_at: &'a str,
    pub scenario: Option<&'a str>,
    pub channel: Option<&'a str>,
    /// `proposed`, `opened` (auto) or none.
    pub proposal: Option<&'a str>,
}

const COLUMNS: &str = "message_id, alarm_name, state, changed_at, scenario, channel, proposal";

fn alarm_row(r: &sqlx::any::AnyRow) -> Result<AlarmRow, StoreError> {
    Ok(AlarmRow {
        message_id: r.get(0),
        alarm_name: r.get(1),
        state: r.get(2),
        changed_at: r.get(3),
        scenario: r.get(4),
        channel: r.get(5),
        proposal: r.get(6),
    })
}

impl StoreTx<'_> {
    /// Records an alarm message; `false` when its `MessageId` was recorded before.
    pub async fn record_alarm(&mut self, alarm: &NewAlarm<'_>) -> Result<bool, StoreError> {
        let sql = "INSERT INTO alarms (message_id, alarm_name, state, changed_at, received_at, scenario, channel, proposal)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (message_id) DO NOTHING";
        let now = crate::clock::now_rfc3339();
        let args = args![
            alarm.message_id,
            alarm.alarm_name,
            alarm.state,
            alarm.changed_at,
            now,
            alarm.scenario.map(str::to_string),
            alarm.channel.map(str::to_string),
            alarm.proposal.map(str::to_string)
        ];
        Ok(self.execute("recording an alarm", sql, args).await? > 0)
    }

    /// The alarm's proposal still waiting for a click, if any.
    pub async fn pending_alarm_proposal(
        &mut self,
        alarm_name: &str,
    ) -> Result<Option<AlarmRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alarms WHERE alarm_name = $1 AND proposal = 'proposed' ORDER BY received_at LIMIT 1");
        Ok(self
            .fetch(
                "reading an alarm's proposal",
                &sql,
                args![alarm_name],
                alarm_row,
            )
            .await?
            .pop())
    }

    /// Decides the proposal of message `message_id` (`opened` or `dismissed`) by `user`;
    /// `None` when it was decided already (or never proposed).
    pub async fn decide_alarm_proposal(
        &mut self,
        message_id: &str,
        decision: &str,
        user: &str,
    ) -> Result<Option<AlarmRow>, StoreError> {
        let sql = "UPDATE alarms SET proposal = $2, decided_by = $3 WHERE message_id = $1 AND proposal = 'proposed'";
        if self
            .execute(
                "deciding an alarm's proposal",
                sql,
                args![message_id, decision, user],
            )
            .await?
            == 0
        {
            return Ok(None);
        }
        self.alarm(message_id).await
    }

    pub async fn alarm(&mut self, message_id: &str) -> Result<Option<AlarmRow>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM alarms WHERE message_id = $1");
        Ok(self
            .fetch("reading an alarm", &sql, args![message_id], alarm_row)
            .await?
            .pop())
    }

    /// Who decided the proposal of `message_id` (for the second clicker's answer).
    pub async fn alarm_decided_by(
        &mut self,
        message_id: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        let sql = "SELECT proposal, decided_by FROM alarms WHERE message_id = $1 AND decided_by IS NOT NULL";
        Ok(self
            .fetch("reading an alarm's decision", sql, args![message_id], |r| {
                Ok((r.get::<String, _>(0), r.get::<String, _>(1)))
            })
            .await?
            .pop())
    }

    /// Links `alarm_name` to `incident` (it opened it, or joined it).
    pub async fn link_alarm(&mut self, alarm_name: &str, incident: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO alarm_incidents (alarm_name, incident, linked_at) VALUES ($1, $2, $3) ON CONFLICT (alarm_name, incident) DO NOTHING";
        let now = crate::clock::now_rfc3339();
        self.write(
            "linking an alarm to its incident",
            sql,
            args![alarm_name, incident, now],
        )
        .await
    }

    /// The open incidents `alarm_name` is linked to, newest first: (id, channel).
    pub async fn open_incidents_of_alarm(
        &mut self,
        alarm_name: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let sql =
            "SELECT i.id, i.channel_id FROM alarm_incidents a JOIN incidents i ON i.id = a.incident
                   WHERE a.alarm_name = $1 AND i.status = 'open' ORDER BY a.linked_at DESC";
        self.fetch(
            "reading an alarm's incidents",
            sql,
            args![alarm_name],
            |r| Ok((r.get::<String, _>(0), r.get::<String, _>(1))),
        )
        .await
    }
}
