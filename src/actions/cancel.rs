//! `/dr cancel <action-id>`: the requester or an officer withdraws a pending request.
//!
//! AWS calls: none. IAM: none. Approval: none (only the requester or an officer may).
//! Undo: ask again.

use serde_json::json;

use crate::config::Settings;
use crate::store::{EventKind, NewEvent, RequestState, Store, StoreError};

/// What became of the cancellation.
pub enum Cancelled {
    Done { request_id: i64 },
    Refused(String),
}

/// Cancels request `id`; `command` (the accepted `/dr cancel`) is recorded first, in the
/// same transaction, when the cancellation goes through.
pub async fn run(
    store: &Store,
    settings: &Settings,
    id: u64,
    user: &str,
    channel: &str,
    command: NewEvent,
) -> Result<Cancelled, StoreError> {
    let label = format!("A-{id}");
    let mut tx = store.begin().await?;
    let Some(request) = tx.request(id as i64).await? else {
        return Ok(Cancelled::Refused(format!(
            "there is no request {label}; `/dr approvals` lists the pending ones"
        )));
    };
    if request.requester != user && !settings.is_officer(user) {
        return Ok(Cancelled::Refused(format!(
            "only the requester (<@{}>) or a security officer can cancel {label}",
            request.requester
        )));
    }
    let moved = tx
        .transition(
            request.id,
            &[RequestState::Pending],
            RequestState::Cancelled,
            Some(user),
            Some("cancelled; nothing was done"),
        )
        .await?;
    if !moved {
        return Ok(Cancelled::Refused(format!(
            "{label} is {}; only a pending request can be cancelled",
            request.state.as_str()
        )));
    }
    tx.append(command).await?;
    tx.append(
        NewEvent::new(
            EventKind::Request(RequestState::Cancelled),
            user,
            channel,
            format!("{label} cancelled by <@{user}>"),
        )
        .detail(json!({"action_id": label}))
        .incident(request.incident.clone()),
    )
    .await?;
    crate::gate::execute::queue_refresh(
        &mut tx,
        &settings.approval,
        request.id,
        &format!("Cancelled by <@{user}>. Nothing was done."),
    )
    .await?;
    tx.commit().await?;
    Ok(Cancelled::Done {
        request_id: request.id,
    })
}
