//! Reactions on request messages. Each delivery is handled in one store transaction: the
//! event id is remembered (Slack retries take effect once), the verdict is recorded, and
//! a state change is a conditional update, so concurrent approvals execute once.

use std::sync::Arc;

use serde_json::json;

use super::base_reaction;
use super::verdict::{self, verdict, Verdict};
use crate::app::App;
use crate::store::{EventKind, NewEvent, Request, RequestState, StoreError, StoreTx};

/// A `reaction_added` / `reaction_removed` as drbot needs it.
#[derive(Debug, Clone)]
pub struct Reaction {
    pub event_id: String,
    pub added: bool,
    pub user: String,
    /// As Slack sent it, e.g. `+1::skin-tone-3`.
    pub name: String,
    pub channel: String,
    pub ts: String,
    /// Who wrote the message reacted to.
    pub item_user: Option<String>,
    /// The request itself, when the decision names it rather than its Slack message (the
    /// web console's buttons: while Slack is down the message may not be posted yet).
    pub request: Option<i64>,
}

/// What became of one delivery.
#[derive(Debug)]
pub enum Handled {
    /// Slack delivered this `event_id` before: nothing happens again.
    Duplicate,
    /// Recorded (with its Slack messages queued); these follow-ups remain to be done.
    Done(Vec<FollowUp>),
    /// A reaction on drbot's message while a request in that channel is still being
    /// posted: not recorded, so Slack's retry is decided once the request is stored.
    Later,
}

/// Slack work to do after the transaction commits.
#[derive(Debug, Clone)]
pub enum FollowUp {
    /// Tell the reactor why nothing happened (ephemeral).
    Tell {
        channel: String,
        user: String,
        text: String,
    },
    /// Re-render the request message and post `note` in its thread.
    Refresh { request_id: i64, note: String },
    /// The request is now `executing`: run it.
    Execute { request_id: i64 },
}

/// A decision not yet committed, and its follow-ups.
type Decided<'a> = (StoreTx<'a>, Vec<FollowUp>);

/// Decides on one delivery; the decision, its audit entries and its Slack messages (queued
/// in the outbox) commit together. What remains is the executions to start.
pub async fn handle(app: &Arc<App>, r: &Reaction) -> Result<Handled, StoreError> {
    Ok(handle_told(app, r).await?.0)
}

/// [`handle`], and what the reactor is told (the texts of its `Tell` follow-ups), for a
/// surface that answers the person directly (the web console).
pub async fn handle_told(
    app: &Arc<App>,
    r: &Reaction,
) -> Result<(Handled, Vec<String>), StoreError> {
    match decide(app, r).await? {
        Some(Some((mut tx, mut follow))) => {
            let told = follow
                .iter()
                .filter_map(|f| match f {
                    FollowUp::Tell { text, .. } => Some(text.clone()),
                    _ => None,
                })
                .collect();
            if r.request.is_some() {
                // The console answers its person in the page: no ephemeral for Slack later.
                follow.retain(|f| !matches!(f, FollowUp::Tell { .. }));
            }
            let mut execute =
                super::execute::queue_follow_up(&mut tx, &app.settings.approval, follow).await?;
            // A notice's execution is queueing its publications: in this transaction.
            let mut run = Vec::new();
            for step in execute.drain(..) {
                if let FollowUp::Execute { request_id } = step {
                    match tx.request(request_id).await? {
                        Some(r) if super::publish::is_notice(&r) => {
                            super::publish::execute_in(&mut tx, app, request_id).await?
                        }
                        _ => run.push(step),
                    }
                }
            }
            tx.commit().await?;
            Ok((Handled::Done(run), told))
        }
        Some(None) => Ok((Handled::Later, Vec::new())),
        None => Ok((Handled::Duplicate, Vec::new())),
    }
}

/// `None`: a repeated delivery; `Some(None)`: try later; `Some(Some(..))`: decided. The
/// policy is [`verdict`]; this applies it.
async fn decide<'a>(
    app: &'a Arc<App>,
    r: &Reaction,
) -> Result<Option<Option<Decided<'a>>>, StoreError> {
    let approval = &app.settings.approval;
    let base = base_reaction(&r.name).to_string();
    let verb = if r.added { "added" } else { "removed" };
    let mut tx = app.store.begin().await?;
    if !tx.first_delivery(&r.event_id).await? {
        return Ok(None);
    }
    let request = match r.request {
        Some(id) => tx.request(id).await?,
        None => tx.request_by_message(&r.channel, &r.ts).await?,
    };
    let mut follow = Vec::new();
    let detail = json!({"event_id": r.event_id, "reaction": r.name, "message_ts": r.ts});

    let Some(request) = request else {
        let on_drbot = r.item_user.as_deref() == Some(app.bot_user_id());
        if r.added
            && on_drbot
            && verdict::kind(&r.name, approval) != verdict::Kind::Other
            && tx.has_unposted_request(&r.channel).await?
        {
            // Dropping `tx` forgets the delivery id too.
            return Ok(Some(None));
        }
        // Not a request message: recorded in the general log, nothing else.
        tx.append(
            NewEvent::new(
                EventKind::Slack(format!("reaction_{verb}")),
                &r.user,
                &r.channel,
                format!(":{}: {verb} by <@{}>", r.name, r.user),
            )
            .detail(detail),
        )
        .await?;
        return Ok(Some(Some((tx, follow))));
    };
    let label = request.label();
    let mut detail = detail;
    detail["action_id"] = json!(label);
    let record = |kind: EventKind, text: String| {
        NewEvent::new(kind, &r.user, &r.channel, text)
            .detail(detail.clone())
            .incident(request.incident.clone())
    };
    let tell = |text: String| FollowUp::Tell {
        channel: r.channel.clone(),
        user: r.user.clone(),
        text,
    };

    match verdict(
        &request,
        r,
        approval,
        app.bot_user_id(),
        crate::clock::now(),
    ) {
        Verdict::Ignore { audit, tell: told } => {
            tx.append(record(EventKind::ApprovalIgnored, audit)).await?;
            follow.extend(told.map(tell));
        }
        Verdict::Withdraw => {
            let (kind, text) = if tx.remove_approval(request.id, &r.user, &base).await? {
                (
                    EventKind::ApprovalWithdrawn,
                    format!("{label}: <@{}> withdrew their approval", r.user),
                )
            } else {
                (
                    EventKind::ApprovalIgnored,
                    format!(
                        "{label}: :{}: removed by <@{}> (no approval of theirs to withdraw)",
                        r.name, r.user
                    ),
                )
            };
            tx.append(record(kind, text)).await?;
        }
        Verdict::Expired => {
            let expired = expire_in(&mut tx, &request).await?;
            tx.append(record(
                EventKind::ApprovalIgnored,
                format!("{label}: :{}: by <@{}> after expiry", r.name, r.user),
            ))
            .await?;
            follow.push(tell(format!(
                "{label} expired at {}; nothing was done. Ask again with `/dr {}`.",
                request.expires_at.format("%H:%M:%S UTC"),
                crate::slack::text::escape(&request.command)
            )));
            if expired {
                follow.push(FollowUp::Refresh {
                    request_id: request.id,
                    note: format!("{label} expired unanswered; nothing was done."),
                });
            }
        }
        Verdict::Reject => {
            tx.transition(
                request.id,
                &[RequestState::Pending],
                RequestState::Rejected,
                Some(&r.user),
                Some("rejected; nothing was done"),
            )
            .await?;
            tx.append(record(
                EventKind::ApprovalRejected,
                format!("{label} rejected by <@{}>", r.user),
            ))
            .await?;
            follow.push(FollowUp::Refresh {
                request_id: request.id,
                note: format!("Rejected by <@{}>. Nothing was done.", r.user),
            });
        }
        Verdict::Approve => {
            tx.add_approval(request.id, &r.user, &base).await?;
            let approvers = tx.approvers(request.id).await?;
            if !verdict::enough(approvers.len(), approval) {
                tx.append(record(
                    EventKind::ApprovalApprove,
                    format!(
                        "{label}: approved by <@{}> ({} of {})",
                        r.user,
                        approvers.len(),
                        approval.required_approvals
                    ),
                ))
                .await?;
                return Ok(Some(Some((tx, follow))));
            }
            let won = tx
                .transition(
                    request.id,
                    &[RequestState::Pending],
                    RequestState::Executing,
                    Some(&r.user),
                    None,
                )
                .await?;
            if won {
                tx.append(record(
                    EventKind::ApprovalApproved,
                    format!(
                        "{label} approved by {}; executing",
                        crate::slack::text::mentions(&approvers)
                    ),
                ))
                .await?;
                follow.push(FollowUp::Execute {
                    request_id: request.id,
                });
            } else {
                tx.append(record(
                    EventKind::ApprovalIgnored,
                    format!(
                        "{label}: approval by <@{}> arrived after the decision",
                        r.user
                    ),
                ))
                .await?;
            }
        }
    }
    Ok(Some(Some((tx, follow))))
}

/// Pending → expired inside `tx`, with its audit entry; false if another caller did it.
pub async fn expire_in(
    tx: &mut crate::store::StoreTx<'_>,
    request: &Request,
) -> Result<bool, StoreError> {
    let done = tx
        .transition(
            request.id,
            &[RequestState::Pending],
            RequestState::Expired,
            None,
            Some("expired unanswered; nothing was done"),
        )
        .await?;
    if done {
        tx.append(
            NewEvent::new(EventKind::ApprovalExpired, "drbot", &request.channel, format!("{} expired unanswered", request.label()))
                .detail(json!({"action_id": request.label(), "expires_at": crate::clock::rfc3339(request.expires_at)}))
                .incident(request.incident.clone()),
        )
        .await?;
    }
    Ok(done)
}
