//! Running an approved request: re-read AWS and compare with the approved plan's hash,
//! execute, follow, and report in the request's thread. Only the caller that moved the
//! request to `executing` gets here, so this runs once per request.

use std::sync::Arc;

use serde_json::json;

use super::reactions::FollowUp;
use super::request::anchor;
use super::{message, plan_hash};
use crate::app::App;
use crate::config::ApprovalSettings;
use crate::store::{EventKind, NewEvent, Outgoing, Request, RequestState, StoreError, StoreTx};

/// Queues in `tx` the Slack side of `follow` (what the reactor is told, the re-rendered
/// request message and the note in its thread), so it commits with the decision; returns
/// the executions to start once it has.
pub async fn queue_follow_up(
    tx: &mut StoreTx<'_>,
    approval: &ApprovalSettings,
    follow: Vec<FollowUp>,
) -> Result<Vec<FollowUp>, StoreError> {
    let mut execute = Vec::new();
    for step in follow {
        match step {
            FollowUp::Tell {
                channel,
                user,
                text,
            } => {
                tx.send_slack(Outgoing::Ephemeral {
                    channel,
                    user,
                    text,
                })
                .await?
            }
            FollowUp::Refresh { request_id, note } => {
                queue_refresh(tx, approval, request_id, &note).await?
            }
            FollowUp::Execute { .. } => execute.push(step),
        }
    }
    Ok(execute)
}

/// Queues in `tx` the request message re-rendered from the store (as `tx` sees it) and
/// `note` in its thread.
pub async fn queue_refresh(
    tx: &mut StoreTx<'_>,
    approval: &ApprovalSettings,
    request_id: i64,
    note: &str,
) -> Result<(), StoreError> {
    let Some(request) = tx.request(request_id).await? else {
        return Ok(());
    };
    let text = message::render(&request, approval);
    let blocks = serde_json::to_value(message::blocks(&request, approval)).ok();
    tx.send_slack(Outgoing::Update {
        channel: request.channel.clone(),
        message: anchor(&request),
        text,
        blocks,
    })
    .await?;
    queue_thread(tx, &request, note).await
}

/// Queues `text` in the request's thread.
pub async fn queue_thread(
    tx: &mut StoreTx<'_>,
    request: &Request,
    text: &str,
) -> Result<(), StoreError> {
    tx.send_slack(Outgoing::Post {
        channel: request.channel.clone(),
        text: text.to_string(),
        blocks: None,
        thread: Some(anchor(request)),
        after: None,
    })
    .await
}

/// [`queue_thread`] in a transaction of its own.
pub async fn thread(app: &Arc<App>, request: &Request, text: &str) {
    let queued = async {
        let mut tx = app.store.begin().await?;
        queue_thread(&mut tx, request, text).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = queued {
        tracing::error!(error = %e, "could not queue a post in a request's thread");
    }
}

/// How long an execution waits for a store that is away before giving up on a write.
pub const STORE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// A change sent to AWS, as the audit log records it.
pub struct Sent {
    pub operation: &'static str,
    pub resource: String,
    pub detail: serde_json::Value,
}

/// What AWS answers a change with: its request id, beside whatever else the call returns.
pub trait Answered {
    fn request_id(&self) -> &str;
}

impl Answered for String {
    fn request_id(&self) -> &str {
        self
    }
}

impl<T> Answered for (T, String) {
    fn request_id(&self) -> &str {
        &self.1
    }
}

/// Where a change that was followed ended, in the words of the request's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Where it should be: the request is executed.
    Reached(String),
    /// Not there (failed, or still not there at the timeout): the request failed.
    Missed(String),
}

/// One execution of one request: what an action's `execute` reports through.
pub struct Run<'a> {
    pub app: &'a Arc<App>,
    pub request: &'a Request,
    /// When execution began (right after the deciding approval was committed).
    pub started: std::time::Instant,
    /// The approval → first AWS change time was recorded.
    pub timed: std::sync::atomic::AtomicBool,
    /// The state the run ended in, once it has.
    ended: std::sync::Mutex<Option<RequestState>>,
}

impl<'a> Run<'a> {
    /// A run of `request` (already `executing`), starting now.
    pub fn new(app: &'a Arc<App>, request: &'a Request) -> Self {
        Run {
            app,
            request,
            started: std::time::Instant::now(),
            timed: Default::default(),
            ended: Default::default(),
        }
    }

    /// The state this run moved its request to, if it ended it.
    pub fn ended(&self) -> Option<RequestState> {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends an event of this request (actor `drbot`).
    pub async fn record(&self, kind: EventKind, text: String, detail: serde_json::Value) {
        let mut detail = detail;
        detail["action_id"] = json!(self.request.label());
        let event = NewEvent::new(kind.clone(), "drbot", &self.request.channel, text)
            .detail(detail)
            .incident(self.request.incident.clone());
        // What happened in AWS must reach the audit log: a store that is briefly away is
        // waited for, up to a minute.
        let appended = crate::store::persist(&kind.as_str(), STORE_PATIENCE, || {
            self.app.store.append(event.clone())
        })
        .await;
        if let Err(e) = appended {
            tracing::error!(error = %e, kind = %kind, action_id = %self.request.label(), "could not record an execution step within a minute; it is missing from the audit log");
        }
    }

    /// Records a mutating AWS call with its request id (to match CloudTrail).
    pub async fn record_aws_call(
        &self,
        operation: &str,
        resource: &str,
        aws_request_id: &str,
        extra: serde_json::Value,
    ) {
        if self.request.decided_by.is_some()
            && !self.timed.swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            crate::metrics::APPROVAL_TO_AWS_SECONDS.observe(self.started.elapsed().as_secs_f64());
        }
        let mut detail =
            json!({"operation": operation, "resource": resource, "aws_request_id": aws_request_id});
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        self.record(
            EventKind::AwsCall,
            format!(
                "{}: {operation} {resource} (AWS request id {aws_request_id})",
                self.request.label()
            ),
            detail,
        )
        .await;
    }

    /// Records a failed AWS call.
    pub async fn record_aws_error(&self, e: &crate::aws::AwsError) {
        self.record(
            EventKind::AwsError,
            format!("{}: {e}", self.request.label()),
            json!({"operation": e.operation, "resource": e.resource, "request_id": e.request_id, "throttled": e.throttled, "outcome_unknown": e.unknown}),
        )
        .await;
    }

    /// The answer to a change sent to AWS: recorded with its AWS request id, which is
    /// answered; or, when it failed, recorded as an error and the request ended `failed`,
    /// telling what to `check` in AWS when the outcome is unknown (`None`: the run is over).
    pub async fn sent<T: Answered>(
        &self,
        answer: Result<T, crate::aws::AwsError>,
        sent: Sent,
        check: &str,
    ) -> Option<T> {
        match answer {
            Ok(answer) => {
                let request_id = answer.request_id();
                self.record_aws_call(sent.operation, &sent.resource, request_id, sent.detail)
                    .await;
                Some(answer)
            }
            Err(e) => {
                self.record_aws_error(&e).await;
                self.finish(RequestState::Failed, &e.outcome(check)).await;
                None
            }
        }
    }

    /// Posts in the request's thread.
    pub async fn thread(&self, text: &str) {
        thread(self.app, self.request, text).await;
    }

    /// Ends the run: `executing` → `to`, recorded, message updated.
    pub async fn finish(&self, to: RequestState, outcome: &str) {
        if finish(self.app, self.request, to, outcome).await {
            self.mark_ended(to);
        }
    }

    /// Notes that the run's request was moved to `to` (by a [`finish_in`] the action
    /// committed itself).
    pub fn mark_ended(&self, to: RequestState) {
        *self.ended.lock().unwrap_or_else(|e| e.into_inner()) = Some(to);
    }

    /// Ends a run that followed a change it sent: `executed` when it [`Settled::Reached`]
    /// where it should, `failed` when it [`Settled::Missed`]; when following it failed,
    /// the error is recorded and `lost` says what was already sent.
    pub async fn finish_followed(
        &self,
        followed: Result<Settled, crate::aws::AwsError>,
        lost: impl FnOnce(&crate::aws::AwsError) -> String,
    ) {
        let (to, outcome) = match followed {
            Ok(Settled::Reached(done)) => (RequestState::Executed, done),
            Ok(Settled::Missed(why)) => (RequestState::Failed, why),
            Err(e) => {
                self.record_aws_error(&e).await;
                (RequestState::Failed, lost(&e))
            }
        };
        self.finish(to, &outcome).await;
    }

    /// Runs `work` (a follow loop) while posting the lines it reports in the request's
    /// thread as they come, not after it ends.
    pub async fn following<T, Fut>(
        &self,
        work: impl FnOnce(tokio::sync::mpsc::UnboundedSender<String>) -> Fut,
    ) -> T
    where
        Fut: std::future::Future<Output = T>,
    {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let work = work(tx);
        tokio::pin!(work);
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                Some(line) = rx.recv() => self.thread(&line).await,
            }
        };
        while let Ok(line) = rx.try_recv() {
            self.thread(&line).await;
        }
        outcome
    }

    /// The configured database `name`; when it was removed from `drbot.toml` since the
    /// plan, the run ends void (nothing is done to a resource drbot no longer manages).
    pub async fn database(&self, name: &str) -> Option<crate::config::RdsDatabase> {
        self.configured(self.app.settings.database(name), "database", name)
            .await
    }

    /// [`Self::database`], with an RDS client of its region.
    pub async fn database_and_rds(
        &self,
        name: &str,
    ) -> Option<(crate::config::RdsDatabase, aws_sdk_rds::Client)> {
        let db = self.database(name).await?;
        let rds = self.app.rds_for(&db);
        Some((db, rds))
    }

    /// `found`, the `kind` named `name` in `drbot.toml`; when it was removed since the plan
    /// (`None`), the run ends void, saying which is gone: nothing is done to what drbot no
    /// longer manages.
    pub async fn configured<T: Clone>(
        &self,
        found: Option<&T>,
        kind: &str,
        name: &str,
    ) -> Option<T> {
        if found.is_none() {
            let outcome = format!("not executed: {kind} `{name}` is no longer configured");
            self.finish(RequestState::Void, &outcome).await;
        }
        found.cloned()
    }

    /// The approved plan, decoded; an unreadable plan ends the run as failed.
    pub async fn approved_plan<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        match serde_json::from_str(&self.request.plan) {
            Ok(plan) => Some(plan),
            Err(e) => {
                let why = format!("the stored plan is unreadable: {e}");
                self.finish(RequestState::Failed, &why).await;
                None
            }
        }
    }

    /// Applies the verdict of re-planning against AWS right before executing: the request
    /// is void when it can no longer be done as approved (or the plan changed), failed when
    /// AWS could not be read; `true` means go ahead.
    pub async fn recheck<T: serde::Serialize>(
        &self,
        fresh: Result<(T, String), super::PlanFailure>,
        what_changed: &str,
    ) -> bool {
        self.recheck_with(fresh.map(|(plan, _)| plan), |_| what_changed.to_string())
            .await
    }

    /// [`Self::recheck`] of a fresh plan, with `what_changed` saying how it differs from
    /// the approved one.
    pub async fn recheck_with<T: serde::Serialize>(
        &self,
        fresh: Result<T, super::PlanFailure>,
        what_changed: impl FnOnce(&T) -> String,
    ) -> bool {
        let label = self.request.label();
        let why = match fresh {
            Err(super::PlanFailure::Aws(e)) => {
                self.record_aws_error(&e).await;
                self.finish(
                    RequestState::Failed,
                    &format!("could not re-read AWS, so nothing was changed: {e}"),
                )
                .await;
                return false;
            }
            Ok(now) if self.still_matches(&now) => {
                let text = format!("{label}: AWS still matches the approved plan");
                self.record(EventKind::RecheckOk, text, json!({})).await;
                return true;
            }
            Ok(now) => what_changed(&now),
            Err(super::PlanFailure::Invalid(why)) => why,
        };
        let text = format!("{label}: AWS no longer matches the plan: {why}");
        self.record(EventKind::RecheckChanged, text, json!({}))
            .await;
        self.finish(RequestState::Void, &format!("not executed: {why}"))
            .await;
        false
    }

    /// True when a fresh plan still has the approved plan's hash.
    pub fn still_matches<T: serde::Serialize>(&self, now: &T) -> bool {
        plan_hash(&serde_json::to_value(now).unwrap_or_default()) == self.request.plan_hash
    }
}

/// Moves the request from `executing` to `to`, records it, updates the message; true when
/// this call moved it.
async fn finish(app: &Arc<App>, request: &Request, to: RequestState, outcome: &str) -> bool {
    let done = async {
        let mut tx = app.store.begin().await?;
        let moved = finish_in(&mut tx, app, request, to, outcome).await?;
        tx.commit().await.map(|_| moved)
    }
    .await;
    settled(app, request, to, outcome, done).await
}

/// [`Run::finish`]'s store side in the caller's transaction (so what the end of a request
/// starts commits with it): `executing` → `to`, recorded, message and note queued. False
/// when this replica no longer owned the request.
pub async fn finish_in(
    tx: &mut StoreTx<'_>,
    app: &Arc<App>,
    request: &Request,
    to: RequestState,
    outcome: &str,
) -> Result<bool, StoreError> {
    let moved = tx.settle(request, to, outcome).await?;
    if moved {
        tx.append(
            NewEvent::new(
                EventKind::Request(to),
                "drbot",
                &request.channel,
                format!("{} {}: {outcome}", request.label(), to.as_str()),
            )
            .detail(json!({"action_id": request.label(), "state": to.as_str()}))
            .incident(request.incident.clone()),
        )
        .await?;
        // The final message and its note commit with the outcome.
        queue_refresh(
            tx,
            &app.settings.approval,
            request.id,
            &format!("*{}* — {outcome}", to.as_str()),
        )
        .await?;
    }
    Ok(moved)
}

/// What a [`finish_in`] that was committed (or not) means for the run's record.
pub async fn settled(
    app: &Arc<App>,
    request: &Request,
    to: RequestState,
    outcome: &str,
    done: Result<bool, StoreError>,
) -> bool {
    match done {
        Ok(true) => true,
        Ok(false) => {
            // Taken over while this replica's lease had lapsed (and marked interrupted):
            // what it did still reaches the audit log, as what it is.
            tracing::error!(action_id = %request.label(), "fenced: this replica no longer owned the request it was executing; its outcome is recorded beside the takeover");
            let late = NewEvent::new(
                EventKind::Request(to),
                "drbot",
                &request.channel,
                format!(
                    "{} {} by a replica that had lost it (it was taken over meanwhile): {outcome}",
                    request.label(),
                    to.as_str()
                ),
            )
            .detail(json!({"action_id": request.label(), "state": to.as_str(), "fenced": true}))
            .incident(request.incident.clone());
            let _ = crate::store::persist("a fenced outcome", STORE_PATIENCE, || {
                app.store.append(late.clone())
            })
            .await;
            false
        }
        Err(e) => {
            tracing::error!(action_id = %request.label(), error = %e, "could not record the outcome");
            false
        }
    }
}
