//! Approved publications to users (SPEC §17). A `notify users` request's plan is the
//! publications themselves — every status page update and email, word for word, with
//! their recipients — so the hash the officer approves binds exactly what users will read.
//! Its execution is queueing them: done in the transaction of the approving decision, so
//! a crash right after the decision still publishes them, once, through the outbox.

use serde::{Deserialize, Serialize};
use serde_json::json;

use std::sync::Arc;

use crate::app::App;
use crate::store::{EventKind, NewEvent, Outgoing, Request, RequestState, StoreError, StoreTx};

/// The plan of a `notify users` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NoticePlan {
    pub incident: String,
    /// `outage`, `update` or `resolved`.
    pub template: String,
    /// In a drill nothing is published: `deliveries` shows what would have been.
    pub drill: bool,
    pub deliveries: Vec<Outgoing>,
}

/// Whether `request` is one whose execution is its publications.
pub fn is_notice(request: &Request) -> bool {
    request.action == crate::router::ActionKind::NotifyUsers.name()
}

/// Executes the notice `request_id`, just approved (`executing` in `tx`), inside the
/// decision's `tx`: its publications queued in the outbox (none in a drill), the request
/// executed.
pub async fn execute_in(
    tx: &mut StoreTx<'_>,
    app: &Arc<App>,
    request_id: i64,
) -> Result<(), StoreError> {
    let Some(request) = tx.request(request_id).await? else {
        return Ok(());
    };
    let request = &request;
    let plan: NoticePlan = match serde_json::from_str(&request.plan) {
        Ok(plan) => plan,
        Err(e) => {
            let why = format!("its plan is unreadable ({e}); nothing was published");
            return end(tx, app, request, RequestState::Failed, &why).await;
        }
    };
    let label = request.label();
    let mut published = Vec::new();
    for (i, delivery) in plan.deliveries.iter().enumerate() {
        published.push(describe(delivery));
        if plan.drill {
            continue;
        }
        let mut delivery = delivery.clone();
        if let Outgoing::StatusPage { request: r, .. } | Outgoing::Email { request: r, .. } =
            &mut delivery
        {
            *r = request.id;
        }
        tx.send_slack_keyed(delivery, Some(format!("notice:{}:{i}", request.id)))
            .await?;
    }
    let (kind, outcome) = if plan.drill {
        (
            EventKind::NotifyDrill,
            format!(
                "DRILL — nothing was published; it would have gone to {}",
                published.join(", ")
            ),
        )
    } else {
        (
            EventKind::NotifyQueued,
            format!("queued for publication: {}", published.join(", ")),
        )
    };
    tx.append(
        NewEvent::new(kind, "drbot", &request.channel, format!("{label}: {outcome}"))
            .detail(json!({"action_id": label, "template": plan.template, "drill": plan.drill, "deliveries": plan.deliveries}))
            .incident(request.incident.clone()),
    )
    .await?;
    if plan.drill {
        tx.users_told(&plan.incident, None).await?;
    }
    end(tx, app, request, RequestState::Executed, &outcome).await
}

/// One line per publication: where it goes.
fn describe(delivery: &Outgoing) -> String {
    match delivery {
        Outgoing::StatusPage { status, .. } => format!("the status page ({status})"),
        Outgoing::Email { list, bcc, .. } => format!(
            "email list `{list}` ({} recipient{})",
            bcc.len(),
            if bcc.len() == 1 { "" } else { "s" }
        ),
        other => other.method().to_string(),
    }
}

async fn end(
    tx: &mut StoreTx<'_>,
    app: &Arc<App>,
    request: &Request,
    to: RequestState,
    outcome: &str,
) -> Result<(), StoreError> {
    super::execute::finish_in(tx, app, request, to, outcome)
        .await
        .map(|_| ())
}
