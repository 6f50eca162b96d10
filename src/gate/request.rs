//! Putting a planned change to the officers: the request is stored (with its audit entry)
//! before anything is posted, so a crash can only leave a request whose message is posted
//! at the next start-up.

use std::sync::Arc;

use serde_json::json;

use super::{message, plan_hash, Planned};
use crate::app::App;
use crate::store::{NewEvent, NewRequest, Request, RequestState, StoreError};

/// Who asked, where, and how to answer them.
#[derive(Debug, Clone)]
pub struct Asker {
    pub user: String,
    pub channel: String,
    pub response_url: String,
    /// The incident of the channel, when asked in an incident channel.
    pub incident: Option<String>,
}

/// Stores the request and its `approval.requested` event, finishing `job` in the same
/// transaction; then posts it.
pub async fn open(
    app: &Arc<App>,
    asker: &Asker,
    planned: Planned,
    job: Option<i64>,
) -> Result<Request, StoreError> {
    let hash = plan_hash(&planned.plan);
    let expires_at =
        crate::clock::now() + chrono::Duration::seconds(app.settings.approval.ttl.as_secs() as i64);
    let mut tx = app.store.begin().await?;
    let request = tx
        .create_request(NewRequest {
            command: planned.command.clone(),
            action: planned.action.clone(),
            requester: asker.user.clone(),
            channel: asker.channel.clone(),
            incident: asker.incident.clone(),
            response_url: asker.response_url.clone(),
            plan: planned.plan.to_string(),
            plan_hash: hash.clone(),
            summary: planned.summary.clone(),
            expires_at,
            state: RequestState::Pending,
        })
        .await?;
    tx.append(
        NewEvent::new(
            "approval.requested",
            &asker.user,
            &asker.channel,
            format!(
                "{} requested: {}",
                request.label(),
                first_line(&planned.summary)
            ),
        )
        .detail(json!({
            "action_id": request.label(),
            "command": planned.command,
            "action": planned.action,
            "plan": planned.plan,
            "plan_hash": hash,
            "expires_at": crate::clock::rfc3339(expires_at),
        }))
        .incident(request.incident.clone()),
    )
    .await?;
    if let Some(job) = job {
        tx.finish_job(job).await?;
    }
    tx.commit().await?;
    tracing::info!(action_id = %request.label(), "approval request stored");
    post(app, &request).await;
    Ok(request)
}

/// For a command whose policy is `none`: stores it as an `executing` request (so it runs
/// once and reports like any other) and posts its progress message.
pub async fn open_ungated(
    app: &Arc<App>,
    asker: &Asker,
    planned: Planned,
    job: Option<i64>,
) -> Result<Request, StoreError> {
    let hash = plan_hash(&planned.plan);
    let mut tx = app.store.begin().await?;
    let request = tx
        .create_request(NewRequest {
            command: planned.command.clone(),
            action: planned.action.clone(),
            requester: asker.user.clone(),
            channel: asker.channel.clone(),
            incident: asker.incident.clone(),
            response_url: asker.response_url.clone(),
            plan: planned.plan.to_string(),
            plan_hash: hash.clone(),
            summary: planned.summary.clone(),
            expires_at: crate::clock::now(),
            state: RequestState::Executing,
        })
        .await?;
    tx.append(
        NewEvent::new(
            "request.started",
            &asker.user,
            &asker.channel,
            format!(
                "{} started (no approval required): {}",
                request.label(),
                first_line(&planned.summary)
            ),
        )
        .detail(json!({
            "action_id": request.label(),
            "command": planned.command,
            "action": planned.action,
            "plan": planned.plan,
            "plan_hash": hash,
        }))
        .incident(request.incident.clone()),
    )
    .await?;
    if let Some(job) = job {
        tx.finish_job(job).await?;
    }
    tx.commit().await?;
    let text = message::render(&request, &app.settings.approval);
    match app.slack.post_message(&request.channel, &text, None).await {
        Ok(ts) => {
            let stored = async {
                let mut tx = app.store.begin().await?;
                tx.set_message_ts(request.id, &ts).await?;
                tx.commit().await
            }
            .await;
            if let Err(e) = stored {
                tracing::warn!(error = %e, "could not remember the progress message");
            }
            Ok(Request {
                message_ts: Some(ts),
                ..request
            })
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not post the progress message");
            Ok(request)
        }
    }
}

/// Posts the request message, remembers its ts, adds the approve/reject reactions.
pub async fn post(app: &Arc<App>, request: &Request) {
    let text = message::render(request, &app.settings.approval);
    let blocks = message::blocks(request, &text);
    let ts = match app
        .slack
        .post_blocks(&request.channel, &text, Some(blocks), None)
        .await
    {
        Ok(ts) => ts,
        Err(e) => {
            tracing::error!(action_id = %request.label(), error = %e, "could not post the approval request");
            let _ = app
                .slack
                .respond(&request.response_url, &format!(":warning: {} was planned but could not be posted here ({e}); drbot will post it again when it restarts, or `/dr cancel {}`.", request.label(), request.label()))
                .await;
            return;
        }
    };
    let stored = async {
        let mut tx = app.store.begin().await?;
        tx.set_message_ts(request.id, &ts).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = stored {
        tracing::error!(action_id = %request.label(), error = %e, "could not remember the request message");
        return;
    }
    let approval = &app.settings.approval;
    for name in approval
        .approve_reactions
        .iter()
        .chain(&approval.reject_reactions)
    {
        if let Err(e) = app.slack.add_reaction(&request.channel, &ts, name).await {
            tracing::warn!(action_id = %request.label(), reaction = %name, error = %e, "could not add a reaction");
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
