//! The work queued behind an acknowledgement, as one typed enum: what the command handler
//! and the schedule enqueue is exactly what the job worker reads back. A job is stored as
//! its kind (the variant's name) and its fields as JSON.

use serde::{Deserialize, Serialize};

use crate::store::{Job, StoreError, StoreTx};

/// One job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Work {
    /// Plan a command that changes AWS and put it to the officers (or run it, for a
    /// command whose policy is `none`).
    Plan {
        /// The command as typed, without `/dr`.
        text: String,
        user: String,
        channel: String,
        /// Empty for drbot's own schedule (no slash command to answer).
        response_url: String,
        incident: Option<String>,
        /// Queued by drbot's schedule, approved by the configuration.
        #[serde(default)]
        scheduled: bool,
    },
    /// Open an incident: its channel, its checklist, the officers told.
    IncidentOpen {
        scenario: String,
        title: String,
        #[serde(default)]
        drill: bool,
        user: String,
        channel: String,
        response_url: String,
        /// A command to plan in the incident's channel once it is open.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        then: Option<String>,
        /// The alarm that declared it (SPEC §16).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        alarm: Option<crate::actions::incident_open::AlarmRef>,
    },
}

/// A stored job that does not read back as [`Work`].
#[derive(Debug, thiserror::Error)]
#[error("job {id} ({kind}) is unreadable: {reason}")]
pub struct UnreadableJob {
    pub id: i64,
    pub kind: String,
    pub reason: String,
}

impl Work {
    /// The `response_url` of the command that asked for it ("" for drbot's own schedule).
    pub fn response_url(&self) -> &str {
        match self {
            Work::Plan { response_url, .. } | Work::IncidentOpen { response_url, .. } => {
                response_url
            }
        }
    }

    /// The name stored in the `kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Work::Plan { .. } => "plan",
            Work::IncidentOpen { .. } => "incident_open",
        }
    }

    /// Queues this work in `tx`.
    pub async fn enqueue(&self, tx: &mut StoreTx<'_>) -> Result<i64, StoreError> {
        let payload = serde_json::to_value(self).map_err(|e| {
            StoreError::NotWritten(format!("a {} job could not be encoded: {e}", self.kind()))
        })?;
        tx.enqueue(self.kind(), &payload).await
    }

    /// The work a stored job holds. Jobs queued before the kind was kept in the payload
    /// take it from the `kind` column.
    pub fn of(job: &Job) -> Result<Work, UnreadableJob> {
        let mut payload = job.payload.clone();
        if let Some(fields) = payload.as_object_mut() {
            fields
                .entry("kind")
                .or_insert_with(|| serde_json::Value::String(job.kind.clone()));
        }
        serde_json::from_value(payload).map_err(|e| UnreadableJob {
            id: job.id,
            kind: job.kind.clone(),
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_reads_back_as_it_was_queued() {
        let work = Work::Plan {
            text: "rollback api".into(),
            user: "U1".into(),
            channel: "C1".into(),
            response_url: "https://hooks.slack.test/r".into(),
            incident: Some("inc-1".into()),
            scheduled: false,
        };
        let job = Job {
            id: 1,
            kind: work.kind().into(),
            payload: serde_json::to_value(&work).unwrap(),
            fence: 1,
        };
        assert_eq!(Work::of(&job).unwrap(), work);
    }

    #[test]
    fn a_job_queued_before_the_kind_was_in_its_payload_still_reads() {
        let job = Job {
            id: 2,
            kind: "plan".into(),
            payload: serde_json::json!({"text": "snapshot orders", "user": "U1", "channel": "C1", "response_url": "", "incident": null}),
            fence: 1,
        };
        assert!(matches!(
            Work::of(&job),
            Ok(Work::Plan {
                scheduled: false,
                ..
            })
        ));
    }

    #[test]
    fn a_job_missing_a_field_is_unreadable_not_empty() {
        let job = Job {
            id: 3,
            kind: "incident_open".into(),
            payload: serde_json::json!({"scenario": "ddos"}),
            fence: 1,
        };
        let err = Work::of(&job).unwrap_err();
        assert!(err.to_string().contains("job 3 (incident_open)"), "{err}");
    }
}
