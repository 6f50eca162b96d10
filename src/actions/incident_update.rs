//! `/dr incident update <text…>`: a status update, posted in the incident channel and
//! recorded; it resets the reminder clock. Slack: chat.postMessage. Approval: none.

use serde_json::json;

use crate::store::{EventKind, Incident, NewEvent, Outgoing, Store, StoreError};

/// Records the command and the update, and queues its announcement, in one transaction.
pub async fn record(
    store: &Store,
    incident: &Incident,
    user: &str,
    text: &str,
    command: NewEvent,
) -> Result<(), StoreError> {
    let mut tx = store.begin().await?;
    tx.append(command).await?;
    tx.append(
        NewEvent::new(
            EventKind::IncidentUpdate,
            user,
            &incident.channel_id,
            text.to_string(),
        )
        .detail(json!({"incident": incident.id}))
        .incident(Some(incident.id.clone())),
    )
    .await?;
    tx.touch_update(&incident.id).await?;
    tx.send_slack(Outgoing::post(
        &incident.channel_id,
        announcement(user, text),
    ))
    .await?;
    tx.commit().await
}

pub fn announcement(user: &str, text: &str) -> String {
    format!(
        ":memo: *Status update* from <@{user}>: {}",
        crate::slack::text::inert(text)
    )
}
