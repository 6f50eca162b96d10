//! Running an approved request: re-read AWS and compare with the approved plan's hash,
//! execute, follow, and report in the request's thread. Only the caller that moved the
//! request to `executing` gets here, so this runs once per request.

use std::sync::Arc;

use serde_json::json;
use tracing::Instrument;

use super::reactions::FollowUp;
use super::{message, plan_hash};
use crate::actions::{self, ActionKind};
use crate::app::App;
use crate::store::{NewEvent, Request, RequestState};

/// Carries out the Slack follow-ups of a reaction (after its transaction committed).
pub async fn follow_up(app: Arc<App>, follow: Vec<FollowUp>) {
    for step in follow {
        match step {
            FollowUp::Tell {
                channel,
                user,
                text,
            } => {
                if let Err(e) = app.slack.post_ephemeral(&channel, &user, &text).await {
                    tracing::warn!(error = %e, "could not tell a reactor why nothing happened");
                }
            }
            FollowUp::Refresh { request_id, note } => refresh(&app, request_id, &note).await,
            FollowUp::Execute { request_id } => {
                let app = app.clone();
                let span = tracing::info_span!("action", action_id = %format!("A-{request_id}"));
                tokio::spawn(run(app, request_id).instrument(span));
            }
        }
    }
}

/// Re-renders the request message from the store and posts `note` in its thread.
pub async fn refresh(app: &Arc<App>, request_id: i64, note: &str) {
    let request = match app.store.request(request_id).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not read a request to update its message");
            return;
        }
    };
    let Some(ts) = request.message_ts.clone() else {
        return;
    };
    let text = message::render(&request, &app.settings.approval);
    let blocks = message::blocks(&request, &text);
    if let Err(e) = app
        .slack
        .update_blocks(&request.channel, &ts, &text, Some(blocks))
        .await
    {
        tracing::warn!(error = %e, "could not update the request message");
    }
    thread(app, &request, note).await;
}

/// Posts `text` in the request's thread (or the channel when it has no message).
pub async fn thread(app: &Arc<App>, request: &Request, text: &str) {
    if let Err(e) = app
        .slack
        .post_message(&request.channel, text, request.message_ts.as_deref())
        .await
    {
        tracing::warn!(error = %e, "could not post in the request's thread");
    }
}

/// One execution of one request: what an action's `execute` reports through.
pub struct Run<'a> {
    pub app: &'a Arc<App>,
    pub request: &'a Request,
}

impl Run<'_> {
    /// Appends an event of this request (actor `drbot`).
    pub async fn record(&self, kind: &str, text: String, detail: serde_json::Value) {
        let mut detail = detail;
        detail["action_id"] = json!(self.request.label());
        let event = NewEvent::new(kind, "drbot", &self.request.channel, text)
            .detail(detail)
            .incident(self.request.incident.clone());
        if let Err(e) = self.app.store.append(event).await {
            tracing::error!(error = %e, kind, "could not record an execution step");
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
        let mut detail =
            json!({"operation": operation, "resource": resource, "aws_request_id": aws_request_id});
        if let (Some(d), Some(e)) = (detail.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        self.record(
            "aws.call",
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
            "aws.error",
            format!("{}: {e}", self.request.label()),
            json!({"operation": e.operation, "resource": e.resource, "request_id": e.request_id, "throttled": e.throttled}),
        )
        .await;
    }

    /// Posts in the request's thread.
    pub async fn thread(&self, text: &str) {
        thread(self.app, self.request, text).await;
    }

    /// Ends the run: `executing` → `to`, recorded, message updated.
    pub async fn finish(&self, to: RequestState, outcome: &str) {
        finish(self.app, self.request, to, outcome).await;
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

    /// The approved plan, decoded; an unreadable plan ends the run as failed.
    pub async fn approved_plan<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        match self.plan() {
            Ok(plan) => Some(plan),
            Err(why) => {
                self.finish(RequestState::Failed, &why).await;
                None
            }
        }
    }

    /// The approved plan, decoded.
    pub fn plan<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.request.plan)
            .map_err(|e| format!("the stored plan is unreadable: {e}"))
    }

    /// Applies the verdict of re-planning against AWS right before executing: the request
    /// is void when it can no longer be done as approved (or the plan changed), failed when
    /// AWS could not be read; `true` means go ahead.
    pub async fn recheck<T: serde::Serialize>(
        &self,
        fresh: Result<(T, String), crate::actions::PlanFailure>,
        what_changed: &str,
    ) -> bool {
        let label = self.request.label();
        match fresh {
            Err(crate::actions::PlanFailure::Invalid(why)) => {
                self.record(
                    "recheck.changed",
                    format!("{label}: AWS no longer matches the plan: {why}"),
                    json!({}),
                )
                .await;
                self.finish(RequestState::Void, &format!("not executed: {why}"))
                    .await;
                false
            }
            Err(crate::actions::PlanFailure::Aws(e)) => {
                self.record_aws_error(&e).await;
                self.finish(
                    RequestState::Failed,
                    &format!("could not re-read AWS, so nothing was changed: {e}"),
                )
                .await;
                false
            }
            Ok((now, _)) if !self.still_matches(&now) => {
                self.record(
                    "recheck.changed",
                    format!("{label}: AWS no longer matches the plan: {what_changed}"),
                    json!({}),
                )
                .await;
                self.finish(RequestState::Void, &format!("not executed: {what_changed}"))
                    .await;
                false
            }
            Ok(_) => {
                self.record(
                    "recheck.ok",
                    format!("{label}: AWS still matches the approved plan"),
                    json!({}),
                )
                .await;
                true
            }
        }
    }

    /// True when a fresh plan still has the approved plan's hash.
    pub fn still_matches<T: serde::Serialize>(&self, now: &T) -> bool {
        plan_hash(&serde_json::to_value(now).unwrap_or_default()) == self.request.plan_hash
    }
}

/// Moves the request from `executing` to `to`, records it, updates the message.
async fn finish(app: &Arc<App>, request: &Request, to: RequestState, outcome: &str) {
    let done = async {
        let mut tx = app.store.begin().await?;
        let moved = tx
            .transition(
                request.id,
                &[RequestState::Executing],
                to,
                None,
                Some(outcome),
            )
            .await?;
        if moved {
            tx.append(
                NewEvent::new(
                    &format!("request.{}", to.as_str()),
                    "drbot",
                    &request.channel,
                    format!("{} {}: {outcome}", request.label(), to.as_str()),
                )
                .detail(json!({"action_id": request.label(), "state": to.as_str()}))
                .incident(request.incident.clone()),
            )
            .await?;
        }
        tx.commit().await.map(|_| moved)
    }
    .await;
    match done {
        Ok(true) => {
            refresh(app, request.id, &format!("*{}* — {outcome}", to.as_str())).await;
            if let (RequestState::Executed, Some(incident)) = (to, &request.incident) {
                if let Ok(cmd) =
                    crate::router::parse(&request.command, &app.commands, &app.settings)
                {
                    crate::incident::tick(app, incident, &cmd.def.name).await;
                }
            }
        }
        Ok(false) => {
            tracing::warn!(action_id = %request.label(), "request left executing by someone else")
        }
        Err(e) => {
            tracing::error!(action_id = %request.label(), error = %e, "could not record the outcome")
        }
    }
}

/// Executes request `id` (already `executing`).
pub async fn run(app: Arc<App>, request_id: i64) {
    let request = match app.store.request(request_id).await {
        Ok(Some(r)) if r.state == RequestState::Executing => r,
        Ok(_) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not read an approved request");
            return;
        }
    };
    let run = Run {
        app: &app,
        request: &request,
    };
    match request.action.parse::<ActionKind>() {
        Ok(action) => actions::execute(action, &run).await,
        Err(()) => {
            run.finish(
                RequestState::Failed,
                &format!("this drbot cannot execute `{}`", request.action),
            )
            .await
        }
    }
}
