//! Running an approved request: re-read AWS and compare with the approved plan's hash,
//! execute, follow, and report in the request's thread. Only the caller that moved the
//! request to `executing` gets here, so this runs once per request.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tracing::Instrument;

use super::reactions::FollowUp;
use super::{message, plan_hash};
use crate::actions::{ecs_rollback, ActionKind};
use crate::app::App;
use crate::aws::ecs::EcsRollback;
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
    if let Err(e) = app.slack.update_message(&request.channel, &ts, &text).await {
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

async fn record(
    app: &Arc<App>,
    request: &Request,
    kind: &str,
    text: String,
    detail: serde_json::Value,
) {
    let mut detail = detail;
    detail["action_id"] = json!(request.label());
    let event = NewEvent::new(kind, "drbot", &request.channel, text)
        .detail(detail)
        .incident(request.incident.clone());
    if let Err(e) = app.store.append(event).await {
        tracing::error!(error = %e, kind, "could not record an execution step");
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
        Ok(true) => refresh(app, request.id, &format!("*{}* — {outcome}", to.as_str())).await,
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
    match request.action.parse::<ActionKind>() {
        Ok(ActionKind::EcsRollback) => run_rollback(&app, &request).await,
        _ => {
            finish(
                &app,
                &request,
                RequestState::Failed,
                &format!("this drbot cannot execute `{}`", request.action),
            )
            .await;
        }
    }
}

async fn run_rollback(app: &Arc<App>, request: &Request) {
    let approved: ecs_rollback::RollbackPlan = match serde_json::from_str(&request.plan) {
        Ok(p) => p,
        Err(e) => {
            finish(
                app,
                request,
                RequestState::Failed,
                &format!("the stored plan is unreadable: {e}"),
            )
            .await;
            return;
        }
    };
    thread(
        app,
        request,
        &format!(
            "Approved. Re-reading `{}` before changing anything…",
            approved.service
        ),
    )
    .await;
    let ecs = &app.aws.ecs;
    match ecs_rollback::recheck(ecs, &approved, &app.settings).await {
        Err(ecs_rollback::PlanError::Invalid(why)) => {
            record(
                app,
                request,
                "recheck.changed",
                format!("{}: AWS no longer matches the plan: {why}", request.label()),
                json!({}),
            )
            .await;
            finish(
                app,
                request,
                RequestState::Void,
                &format!("not executed: {why}"),
            )
            .await;
            return;
        }
        Err(ecs_rollback::PlanError::Aws(e)) => {
            record(app, request, "aws.error", format!("{}: {e}", request.label()), json!({"operation": e.operation, "resource": e.resource, "request_id": e.request_id})).await;
            finish(
                app,
                request,
                RequestState::Failed,
                &format!("could not re-read AWS, so nothing was changed: {e}"),
            )
            .await;
            return;
        }
        Ok(now) => {
            let now_json = serde_json::to_value(&now).unwrap_or_default();
            if plan_hash(&now_json) != request.plan_hash {
                let why = ecs_rollback::drift(&approved, &now);
                record(
                    app,
                    request,
                    "recheck.changed",
                    format!("{}: AWS no longer matches the plan: {why}", request.label()),
                    json!({"plan_hash": request.plan_hash, "now_hash": plan_hash(&now_json)}),
                )
                .await;
                finish(
                    app,
                    request,
                    RequestState::Void,
                    &format!("not executed: {why}. Ask again if the rollback is still needed."),
                )
                .await;
                return;
            }
            record(
                app,
                request,
                "recheck.ok",
                format!("{}: AWS still matches the approved plan", request.label()),
                json!({"plan_hash": request.plan_hash}),
            )
            .await;
        }
    }

    let target = approved.target.pinned();
    let resource = format!("{}/{}", approved.cluster, approved.ecs_service);
    match ecs
        .roll_to(&approved.cluster, &approved.ecs_service, &target)
        .await
    {
        Err(e) => {
            record(app, request, "aws.error", format!("{}: UpdateService failed: {e}", request.label()), json!({"operation": "UpdateService", "resource": resource, "request_id": e.request_id, "throttled": e.throttled})).await;
            finish(
                app,
                request,
                RequestState::Failed,
                &format!("UpdateService failed: {e}"),
            )
            .await;
            return;
        }
        Ok(request_id) => {
            record(
                app,
                request,
                "aws.call",
                format!("{}: UpdateService {resource} → {target} (request id {request_id})", request.label()),
                json!({"operation": "UpdateService", "resource": resource, "task_definition": target, "aws_request_id": request_id}),
            )
            .await;
            thread(app, request, &format!("UpdateService sent: `{resource}` → `{target}` (AWS request id `{request_id}`). Following the deployment…")).await;
        }
    }

    let ecs_settings = &app.settings.ecs;
    let timing = ecs_rollback::Follow {
        first_poll: ecs_settings.poll_interval.as_duration(),
        max_poll: Duration::from_secs(30),
        timeout: ecs_settings.rollout_timeout.as_duration(),
        progress_every: Duration::from_secs(30),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let reporter = {
        let app = app.clone();
        let request = request.clone();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                thread(&app, &request, &line).await;
            }
        })
    };
    let outcome = ecs_rollback::follow(ecs, &approved, timing, |line| {
        let _ = tx.send(line);
    })
    .await;
    drop(tx);
    let _ = reporter.await;
    match outcome {
        Ok(ecs_rollback::Rollout::Stable) => {
            finish(
                app,
                request,
                RequestState::Executed,
                &format!("`{}` is stable on `{target}`", approved.service),
            )
            .await
        }
        Ok(ecs_rollback::Rollout::Failed(why)) => {
            finish(
                app,
                request,
                RequestState::Failed,
                &format!("the deployment of `{target}` failed: {why}"),
            )
            .await
        }
        Ok(ecs_rollback::Rollout::TimedOut { last }) => {
            finish(
                app,
                request,
                RequestState::Failed,
                &format!(
                "`{target}` was not stable after {} ({last}); check the service in the ECS console",
                ecs_settings.rollout_timeout
            ),
            )
            .await
        }
        Err(e) => {
            record(app, request, "aws.error", format!("{}: {e}", request.label()), json!({"operation": e.operation, "resource": e.resource, "request_id": e.request_id})).await;
            finish(
                app,
                request,
                RequestState::Failed,
                &format!("UpdateService was sent, but following the deployment failed: {e}"),
            )
            .await
        }
    }
}
