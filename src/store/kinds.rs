//! Every kind of event drbot writes to its log, as one enum: what is written and what the
//! exports and reports look for are the same names. Stored as the dotted name
//! (`command.accepted`).

use super::RequestState;

macro_rules! event_kinds {
    ($($variant:ident = $name:literal,)*) => {
        /// The kind of an event in the log.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum EventKind {
            $($variant,)*
            /// A request moved to this state (`request.executed`, `request.void`, …).
            Request(RequestState),
            /// An Events API delivery of this type, recorded as received (`slack.app_mention`).
            Slack(String),
        }

        impl EventKind {
            /// The dotted name stored in the log.
            pub fn as_str(&self) -> std::borrow::Cow<'static, str> {
                match self {
                    $(EventKind::$variant => std::borrow::Cow::Borrowed($name),)*
                    EventKind::Request(state) => format!("request.{}", state.as_str()).into(),
                    EventKind::Slack(kind) => format!("slack.{kind}").into(),
                }
            }
        }
    };
}

event_kinds! {
    CommandAccepted = "command.accepted",
    CommandRefused = "command.refused",
    ApprovalRequested = "approval.requested",
    ApprovalApprove = "approval.approve",
    ApprovalApproved = "approval.approved",
    ApprovalRejected = "approval.rejected",
    ApprovalWithdrawn = "approval.withdrawn",
    ApprovalIgnored = "approval.ignored",
    ApprovalExpired = "approval.expired",
    RequestStarted = "request.started",
    RecheckOk = "recheck.ok",
    RecheckChanged = "recheck.changed",
    AwsCall = "aws.call",
    AwsError = "aws.error",
    WafLifted = "waf.lifted",
    BackupsChecked = "backups.checked",
    DrillRestoreTest = "drill.restore_test",
    RestoreVerified = "restore.verified",
    DrillDeleted = "drill.deleted",
    DrillDeleteRefused = "drill.delete_refused",
    IncidentOpened = "incident.opened",
    IncidentNotified = "incident.notified",
    IncidentFailed = "incident.failed",
    IncidentUpdate = "incident.update",
    IncidentStepDone = "incident.step_done",
    IncidentReminder = "incident.reminder",
    IncidentNotice = "incident.notice",
    IncidentResolved = "incident.resolved",
    JobUnreadable = "job.unreadable",
    AuditKeyed = "audit.keyed",
    SlackInteraction = "slack.interaction",
    SlackUndelivered = "slack.undelivered",
    RunStarted = "run.started",
    RunStepStarted = "run.step_started",
    RunStepDone = "run.step_done",
    RunStepFailed = "run.step_failed",
    RunStepSkipped = "run.step_skipped",
    RunStepRetried = "run.step_retried",
    RunPaused = "run.paused",
    RunResumed = "run.resumed",
    RunAborted = "run.aborted",
    RunFinished = "run.finished",
    CopyDeleted = "copy.deleted",
    CopyDeleteRefused = "copy.delete_refused",
    ReadinessChanged = "readiness.changed",
    AlarmReceived = "alarm.received",
    AlarmProposed = "alarm.proposed",
    AlarmRepeated = "alarm.repeated",
    AlarmOk = "alarm.ok",
    AlarmOpened = "alarm.opened",
    AlarmDismissed = "alarm.dismissed",
    AlarmRefused = "alarm.refused",
    NotifyQueued = "notify.queued",
    NotifyPublished = "notify.published",
    NotifyFailed = "notify.failed",
    NotifyDrill = "notify.drill",
    FollowupAdded = "followup.added",
    FollowupDone = "followup.done",
    FollowupOverdue = "followup.overdue",
    IncidentPostmortem = "incident.postmortem",
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl PartialEq<EventKind> for String {
    fn eq(&self, other: &EventKind) -> bool {
        *self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_stored_by_their_dotted_names() {
        assert_eq!(EventKind::CommandAccepted.as_str(), "command.accepted");
        assert_eq!(
            EventKind::Request(RequestState::Void).as_str(),
            "request.void"
        );
        assert_eq!(
            EventKind::Slack("app_mention".into()).as_str(),
            "slack.app_mention"
        );
        assert!("drill.deleted".to_string() == EventKind::DrillDeleted);
    }
}
