//! Putting a planned change to the officers: the request, its audit entry and its message
//! (queued in the outbox) are stored in one transaction, so the message is posted once
//! whatever happens to this process or to Slack in between.

use std::sync::Arc;

use serde_json::json;

use super::{message, plan_hash, Planned};
use crate::app::App;
use crate::router::Approval;
use crate::store::{
    AfterPost, Anchor, EventKind, NewEvent, NewRequest, Outgoing, Request, RequestState,
    StoreError, StoreTx,
};

/// Who asked, where, and how to answer them.
#[derive(Debug, Clone)]
pub struct Asker {
    pub user: String,
    pub channel: String,
    pub response_url: String,
    /// The incident of the channel, when asked in an incident channel.
    pub incident: Option<String>,
}

/// Stores the request (`command`: as typed, without `/dr`) with its first event, finishing
/// `job` in the same transaction, and queues its message. With `Approval::Officer` it is
/// put to the officers (`approval.requested`, with its buttons and reactions); with
/// `Approval::None` it is stored `executing` (so it runs once and reports like any other)
/// with its progress message.
pub async fn open(
    app: &Arc<App>,
    asker: &Asker,
    command: &str,
    planned: Planned,
    job: Option<crate::store::JobClaim>,
    approval: Approval,
) -> Result<Request, StoreError> {
    let mut tx = app.store.begin().await?;
    let request = open_in(&mut tx, app, asker, command, planned, approval, None).await?;
    if let Some(job) = job {
        tx.finish_job(job).await?;
    }
    tx.commit().await?;
    if approval == Approval::Officer {
        tracing::info!(action_id = %request.label(), "approval request stored and queued");
    }
    Ok(request)
}

/// [`open`] in the caller's transaction; `ttl` overrides `[approval] ttl` for a request
/// put to the officers (a plan step's own timeout).
pub async fn open_in(
    tx: &mut StoreTx<'_>,
    app: &Arc<App>,
    asker: &Asker,
    command: &str,
    planned: Planned,
    approval: Approval,
    ttl: Option<chrono::Duration>,
) -> Result<Request, StoreError> {
    let gated = approval == Approval::Officer;
    let hash = plan_hash(&planned.plan);
    let now = crate::clock::now();
    let (expires_at, state) = if gated {
        let ttl = ttl.unwrap_or_else(|| {
            chrono::Duration::seconds(app.settings.approval.ttl.as_secs() as i64)
        });
        (now + ttl, RequestState::Pending)
    } else {
        (now, RequestState::Executing)
    };
    let request = tx
        .create_request(NewRequest {
            command: command.to_string(),
            command_name: planned.name.clone(),
            action: planned.action.name().to_string(),
            requester: asker.user.clone(),
            channel: asker.channel.clone(),
            incident: asker.incident.clone(),
            response_url: asker.response_url.clone(),
            plan: planned.plan.to_string(),
            plan_hash: hash.clone(),
            summary: planned.summary.clone(),
            expires_at,
            state,
        })
        .await?;
    let mut detail = json!({
        "action_id": request.label(),
        "command": command,
        "action": planned.action.name(),
        "plan": planned.plan,
        "plan_hash": hash,
        "summary": planned.summary,
    });
    let (kind, what) = if gated {
        detail["expires_at"] = json!(crate::clock::rfc3339(expires_at));
        (EventKind::ApprovalRequested, "requested")
    } else {
        (EventKind::RequestStarted, "started (no approval required)")
    };
    let text = format!(
        "{} {what}: {}",
        request.label(),
        first_line(&planned.summary)
    );
    let event = NewEvent::new(kind, &asker.user, &asker.channel, text)
        .detail(detail)
        .incident(request.incident.clone());
    tx.append(event).await?;
    if gated {
        queue_post(tx, app, &request).await?;
    } else {
        let text = message::render(&request, &app.settings.approval);
        tx.send_slack_keyed(
            Outgoing::Post {
                channel: request.channel.clone(),
                text,
                blocks: None,
                thread: None,
                after: Some(AfterPost::RequestMessage {
                    request: request.id,
                }),
            },
            Some(message_key(request.id)),
        )
        .await?;
    }
    Ok(request)
}

/// The outbox key of a request's message.
pub fn message_key(request: i64) -> String {
    format!("request:{request}")
}

/// Where a request's message is: posted, or queued in the outbox.
pub fn anchor(request: &Request) -> Anchor {
    match &request.message_ts {
        Some(ts) => Anchor::Ts(ts.clone()),
        None => Anchor::Row(message_key(request.id)),
    }
}

/// Queues the request message (with its Approve and Reject buttons) and drbot's approve and
/// reject reactions on it, in the transaction that stores the request. Queued at most once
/// per request (the outbox key), so recovery may call it again.
pub async fn queue_post(
    tx: &mut StoreTx<'_>,
    app: &App,
    request: &Request,
) -> Result<(), StoreError> {
    let text = message::render(request, &app.settings.approval);
    let blocks = serde_json::to_value(message::blocks(request, &app.settings.approval)).ok();
    tx.send_slack_keyed(
        Outgoing::Post {
            channel: request.channel.clone(),
            text,
            blocks,
            thread: None,
            after: Some(AfterPost::RequestMessage {
                request: request.id,
            }),
        },
        Some(message_key(request.id)),
    )
    .await?;
    let approval = &app.settings.approval;
    for name in approval
        .approve_reactions
        .iter()
        .chain(&approval.reject_reactions)
    {
        tx.send_slack_keyed(
            Outgoing::React {
                channel: request.channel.clone(),
                message: Anchor::Row(message_key(request.id)),
                name: name.clone(),
            },
            Some(format!("request:{}:react:{name}", request.id)),
        )
        .await?;
    }
    Ok(())
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}
