//! The outbox rows that tell users (SPEC §17): an approved status page publication or email,
//! sent by the outbox worker like a Slack message — claimed before it is sent, tried again
//! with backoff on 429, 5xx, SMTP 4xx and timeouts, and a publication whose answer was lost
//! looked for on the page before it is made again (an email goes again with the Message-ID
//! chosen when it was queued). What was published lands in the incident's timeline with the
//! provider's id, and in its channel.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::app::App;
use crate::notify::{email::Email, NotifyError, PageUpdate};
use crate::store::{Claimed, EventKind, NewEvent, Outgoing, StoreError, StoreTx};

/// What a publication made: the provider's id for it and, for the page, its link.
#[derive(Debug, Clone)]
pub struct Published {
    pub id: String,
    pub url: Option<String>,
    /// The server's reply (email) or the page incident's status.
    pub said: String,
}

/// How many times a refusal (a 4xx of the page, an SMTP 5xx) is tried before the
/// publication is recorded as failed.
const REFUSALS_TRIED: i64 = 3;

/// One attempt at `row`: published, or the error and whether to try again.
pub async fn attempt(app: &Arc<App>, row: &Claimed) -> Result<Published, (NotifyError, bool)> {
    let retry = |e: NotifyError| {
        let again = match &e {
            NotifyError::Refused { .. } => row.attempts + 1 < REFUSALS_TRIED,
            _ => true,
        };
        (e, again)
    };
    match &row.message {
        Outgoing::StatusPage {
            incident,
            name,
            status,
            impact,
            body,
            components,
            component_status,
            ..
        } => {
            let Some(page) = &app.notify.status_page else {
                return Err((not_configured("[status_page]"), false));
            };
            let known = app
                .store
                .incident(incident)
                .await
                .ok()
                .flatten()
                .and_then(|i| i.page_incident);
            let update = PageUpdate {
                incident: incident.clone(),
                name: name.clone(),
                status: status.clone(),
                impact: impact.clone(),
                body: body.clone(),
                components: components.clone(),
                component_status: component_status.clone(),
            };
            let shown =
                crate::notify::publish(page.as_ref(), known.as_deref(), &update, row.uncertain)
                    .await
                    .map_err(retry)?;
            Ok(Published {
                id: shown.id,
                url: shown.url,
                said: status.clone(),
            })
        }
        Outgoing::Email {
            bcc,
            subject,
            body,
            message_id,
            ..
        } => {
            let Some(mailer) = &app.notify.email else {
                return Err((not_configured("[email]"), false));
            };
            let email = Email {
                bcc: bcc.clone(),
                subject: subject.clone(),
                body: body.clone(),
                message_id: message_id.clone(),
            };
            let said = mailer.send(&email).await.map_err(retry)?;
            Ok(Published {
                id: message_id.clone(),
                url: None,
                said,
            })
        }
        _ => Err((
            NotifyError::Refused {
                peer: "drbot",
                message: "not a publication".into(),
            },
            false,
        )),
    }
}

fn not_configured(section: &str) -> NotifyError {
    NotifyError::Refused {
        peer: "drbot",
        message: format!("{section} is no longer configured; nothing was published"),
    }
}

/// How long to wait before trying `e` again.
pub fn wait(e: &NotifyError, backoff: Duration) -> (Duration, bool) {
    match e {
        NotifyError::RateLimited { retry_after, .. } => (
            retry_after
                .unwrap_or(Duration::from_secs(1))
                .min(Duration::from_secs(300)),
            false,
        ),
        NotifyError::Unavailable { maybe_done, .. } => (backoff, *maybe_done),
        NotifyError::Refused { .. } => (backoff, false),
    }
}

/// Records in `tx` what `row` published: the timeline (with the provider's id), the
/// incident (when users were told, the page's incident), a line in the incident channel.
pub async fn record(
    tx: &mut StoreTx<'_>,
    row: &Claimed,
    published: &Published,
) -> Result<(), StoreError> {
    let (channel, incident, request, text, detail) = match &row.message {
        Outgoing::StatusPage {
            channel,
            incident,
            request,
            status,
            components,
            ..
        } => {
            tx.users_told(incident, Some((&published.id, published.url.as_deref())))
                .await?;
            let link = published
                .url
                .as_deref()
                .map(|u| format!(" — {u}"))
                .unwrap_or_default();
            (
                channel,
                incident,
                *request,
                format!(
                    ":loudspeaker: Published on the status page: incident `{}` now *{status}*{link}",
                    published.id
                ),
                json!({"provider": "statuspage", "page_incident": published.id, "url": published.url, "status": status, "components": components, "looked_up": row.uncertain}),
            )
        }
        Outgoing::Email {
            channel,
            incident,
            request,
            list,
            bcc,
            subject,
            message_id,
            ..
        } => {
            tx.users_told(incident, None).await?;
            (
                channel,
                incident,
                *request,
                format!(
                    ":email: Emailed list `{list}` ({} recipient{}, in Bcc): \"{}\" — Message-ID `{message_id}`",
                    bcc.len(),
                    if bcc.len() == 1 { "" } else { "s" },
                    crate::slack::text::escape(subject)
                ),
                json!({"provider": "smtp", "list": list, "recipients": bcc.len(), "subject": subject, "message_id": message_id, "server_said": published.said, "sent_again_after_a_lost_answer": row.uncertain}),
            )
        }
        _ => return Ok(()),
    };
    let mut detail = detail;
    detail["action_id"] = json!(format!("A-{request}"));
    detail["outbox_row"] = json!(row.id);
    let record = text.replace(":loudspeaker: ", "").replace(":email: ", "");
    tx.append(
        NewEvent::new(EventKind::NotifyPublished, "drbot", channel, record)
            .detail(detail)
            .incident(Some(incident.clone())),
    )
    .await?;
    tx.send_slack(Outgoing::post(channel, text)).await
}

/// Records in `tx` that `row` was not published, and tells the incident channel.
pub async fn failed(tx: &mut StoreTx<'_>, row: &Claimed, error: &str) -> Result<(), StoreError> {
    let (Outgoing::StatusPage {
        channel,
        incident,
        request,
        ..
    }
    | Outgoing::Email {
        channel,
        incident,
        request,
        ..
    }) = &row.message
    else {
        return Ok(());
    };
    let what = match &row.message {
        Outgoing::Email { list, .. } => format!("the email to list `{list}`"),
        _ => "the status page update".to_string(),
    };
    tx.append(
        NewEvent::new(
            EventKind::NotifyFailed,
            "drbot",
            channel,
            format!("A-{request}: {what} was not published: {error}"),
        )
        .detail(json!({"action_id": format!("A-{request}"), "outbox_row": row.id, "attempts": row.attempts + 1, "error": error}))
        .incident(Some(incident.clone())),
    )
    .await?;
    tx.send_slack(Outgoing::post(
        channel,
        format!(
            ":warning: A-{request}: {what} was *not* published: {}. Users were not told this way; publish it by hand or `/dr notify users` again.",
            crate::slack::text::escape(error)
        ),
    ))
    .await
}
