//! `/dr incident open <scenario> <title…>`: a channel `inc-YYYYMMDD-<slug>` with the opener
//! and the officers, the scenario's summary and checklist pinned, the officers told at
//! once, and the incident announced where it was opened.
//!
//! Slack calls: conversations.create, conversations.invite, chat.postMessage, pins.add,
//! conversations.open. AWS calls: none. Approval: none.

use std::sync::Arc;

use serde_json::json;

use crate::app::App;
use crate::incident;
use crate::slack::client::SlackError;
use crate::store::{NewEvent, NewIncident, StoreError};

/// The job's input.
pub struct OpenIncident {
    pub scenario: String,
    pub title: String,
    pub user: String,
    pub channel: String,
    pub response_url: String,
}

/// Checks the scenario on the acknowledgement path.
pub fn check_scenario(app: &App, scenario: &str) -> Result<(), String> {
    if app.scenarios.get(scenario).is_some() {
        return Ok(());
    }
    let known: Vec<String> = app
        .scenarios
        .all()
        .map(|s| format!("`{}` ({}, RTO {})", s.id, s.title, s.rto_text()))
        .collect();
    Err(format!(
        "there is no scenario `{scenario}`; the scenarios are: {}",
        known.join(", ")
    ))
}

/// Runs after the acknowledgement (a durable job).
pub async fn run(app: &Arc<App>, open: &OpenIncident, job: i64) -> Result<(), StoreError> {
    let Some(scenario) = app.scenarios.get(&open.scenario).cloned() else {
        let mut tx = app.store.begin().await?;
        tx.finish_job(job).await?;
        tx.commit().await?;
        return Ok(());
    };
    let now = crate::clock::now();
    let prefix = &app.settings.slack.incident_channel_prefix;
    let mut created = None;
    for attempt in 1..=20 {
        let name = incident::channel_name(prefix, now, &open.title, attempt);
        if app.store.incident_exists(&name).await? {
            continue;
        }
        match app.slack.create_channel(&name).await {
            Ok(id) => {
                created = Some((name, id));
                break;
            }
            Err(SlackError::Api { code, .. }) if code == "name_taken" => continue,
            Err(e) => {
                let mut tx = app.store.begin().await?;
                tx.append(
                    NewEvent::new(
                        "incident.failed",
                        &open.user,
                        &open.channel,
                        format!("could not create the incident channel: {e}"),
                    )
                    .detail(json!({"scenario": open.scenario, "title": open.title})),
                )
                .await?;
                tx.finish_job(job).await?;
                tx.commit().await?;
                let _ = app
                    .slack
                    .respond(&open.response_url, &format!(":warning: Could not create the incident channel: {e}. Nothing was opened; try again."))
                    .await;
                return Ok(());
            }
        }
    }
    let Some((id, channel)) = created else {
        let _ = app
            .slack
            .respond(
                &open.response_url,
                ":warning: Every candidate channel name was taken; try a more specific title.",
            )
            .await;
        let mut tx = app.store.begin().await?;
        tx.finish_job(job).await?;
        return tx.commit().await;
    };
    let mut tx = app.store.begin().await?;
    let mut record = tx
        .create_incident(&NewIncident {
            id: id.clone(),
            scenario: scenario.id.clone(),
            title: open.title.clone(),
            opened_by: open.user.clone(),
            origin_channel: open.channel.clone(),
            channel_id: channel.clone(),
            steps: scenario.steps.len(),
        })
        .await?;
    tx.append(
        NewEvent::new(
            "incident.opened",
            &open.user,
            &channel,
            format!("incident {id} opened: {} ({})", open.title, scenario.title),
        )
        .detail(json!({
            "scenario": scenario.id,
            "title": open.title,
            "rto": scenario.rto_text(),
            "rpo": scenario.rpo_text(),
            "origin_channel": open.channel,
            "started_at": crate::clock::rfc3339(record.started_at),
        }))
        .incident(Some(id.clone())),
    )
    .await?;
    tx.finish_job(job).await?;
    tx.commit().await?;

    let officers = &app.settings.approval.officers;
    let mut invitees = vec![open.user.clone()];
    invitees.extend(officers.iter().filter(|o| **o != open.user).cloned());
    if let Err(e) = app.slack.invite(&channel, &invitees).await {
        tracing::warn!(error = %e, "could not invite everyone to the incident channel");
    }
    let text = incident::summary(&record, &scenario, &app.settings.incidents);
    match app.slack.post_message(&channel, &text, None).await {
        Ok(ts) => {
            if let Err(e) = app.slack.pin(&channel, &ts).await {
                tracing::warn!(error = %e, "could not pin the incident summary");
            }
            let mut tx = app.store.begin().await?;
            tx.set_checklist_ts(&id, &ts).await?;
            tx.commit().await?;
            record.checklist_ts = Some(ts);
        }
        Err(e) => tracing::warn!(error = %e, "could not post the incident summary"),
    }
    let alert = format!(
        ":rotating_light: *Security officer notice* — incident *{id}* opened by <@{}>: {} ({}, RTO {}). Join <#{channel}>.",
        open.user,
        crate::slack::text::escape(&open.title),
        scenario.title,
        scenario.rto_text()
    );
    let mut notified = Vec::new();
    for officer in officers {
        match app.slack.direct_message(officer, &alert).await {
            Ok(()) => notified.push(officer.clone()),
            Err(e) => tracing::warn!(officer = %officer, error = %e, "could not notify an officer"),
        }
    }
    let mut tx = app.store.begin().await?;
    tx.append(
        NewEvent::new(
            "incident.notified",
            "drbot",
            &channel,
            format!(
                "officers notified: {}",
                notified
                    .iter()
                    .map(|o| format!("<@{o}>"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .detail(json!({"officers": notified}))
        .incident(Some(id.clone())),
    )
    .await?;
    tx.commit().await?;
    let announce = format!(
        ":rotating_light: Incident *{id}* opened by <@{}>: {} — scenario *{}*, RTO {}, RPO {}. Follow it in <#{channel}>.",
        open.user,
        crate::slack::text::escape(&open.title),
        scenario.title,
        scenario.rto_text(),
        scenario.rpo_text()
    );
    if let Err(e) = app.slack.post_message(&open.channel, &announce, None).await {
        tracing::warn!(error = %e, "could not announce the incident");
    }
    Ok(())
}
