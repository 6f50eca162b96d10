//! drbot's App Home (SPEC §15): what a responder needs at a glance — readiness per
//! scenario with its failing checks, open incidents against their RTO, pending approvals
//! (Approve/Reject for officers, through the same gate as the request's own buttons), the
//! last restore test, backup compliance and the newest backup-region copy's age.
//!
//! [`model`] reads it from the store; [`view`] renders it, pure. A user's view is published
//! (`views.publish`, through the outbox) when they open the tab and again whenever the log
//! has grown since, at most once per user per `store::HOME_EVERY` (10 s), for a day after
//! they last opened it (`store::HOME_KEPT`) ([`refresh_due`]).

use std::sync::Arc;

use serde_json::{json, Value};

use crate::actions::readiness::{Check, State, Status};
use crate::app::App;
use crate::slack::text::escape;
use crate::store::{Incident, Outgoing, Request, RequestState, StoreError, HOME_EVERY, HOME_KEPT};

/// The Approve and Reject buttons of a request listed in the App Home (their value is the
/// request's id).
pub const HOME_APPROVE: &str = "drbot_home_approve";
pub const HOME_REJECT: &str = "drbot_home_reject";

/// What the App Home shows.
#[derive(Debug, Clone, Default)]
pub struct Home {
    /// Each scenario's recorded state, its failing checks, and its RTO.
    pub readiness: Vec<(String, State, Vec<Check>, String)>,
    pub incidents: Vec<(Incident, String, Option<u64>)>,
    pub pending: Vec<Request>,
    /// When, which database, passed, and the test's line.
    pub restore_test: Option<(String, String, bool, String)>,
    /// Per database: compliant, when checked.
    pub compliance: Vec<(String, bool, String)>,
    /// The backup-copy checks (with the copy's age when there is one).
    pub copies: Vec<Check>,
    pub checked_at: Option<String>,
}

/// Reads the App Home's contents from the store.
pub async fn model(app: &App) -> Result<Home, StoreError> {
    let mut home = Home::default();
    for row in app.store.readiness().await? {
        let checks: Vec<Check> = serde_json::from_str(&row.checks).unwrap_or_default();
        let rto = app
            .scenarios
            .get(&row.scenario)
            .map(|s| s.rto_text())
            .unwrap_or_default();
        for c in &checks {
            if c.name.starts_with("backup copy of") && !home.copies.iter().any(|h| h.name == c.name)
            {
                home.copies.push(c.clone());
            }
        }
        let failing = checks
            .into_iter()
            .filter(|c| c.status != Status::Pass)
            .collect();
        home.checked_at = home.checked_at.max(Some(row.checked_at.clone()));
        home.readiness
            .push((row.scenario, State::parse(&row.state), failing, rto));
    }
    for incident in app.store.open_incidents().await? {
        let scenario = app.scenarios.get(&incident.scenario);
        let rto = scenario.map(|s| s.rto_text()).unwrap_or_default();
        let rto_secs = scenario.and_then(|s| s.rto.seconds());
        home.incidents.push((incident, rto, rto_secs));
    }
    home.pending = app.store.requests_in_state(RequestState::Pending).await?;
    let kind = crate::store::EventKind::DrillRestoreTest.as_str();
    if let Some(e) = app.store.latest_events(&kind, 1).await?.pop() {
        let d: Value = serde_json::from_str(&e.detail).unwrap_or_default();
        home.restore_test = Some((
            e.at.clone(),
            d["database"].as_str().unwrap_or_default().to_string(),
            d["passed"] == true,
            e.text.clone(),
        ));
    }
    let kind = crate::store::EventKind::BackupsChecked.as_str();
    for e in app.store.latest_events(&kind, 50).await? {
        let d: Value = serde_json::from_str(&e.detail).unwrap_or_default();
        let db = d["database"].as_str().unwrap_or_default().to_string();
        if !home.compliance.iter().any(|(name, _, _)| *name == db) {
            home.compliance
                .push((db, d["compliant"] == true, e.at.clone()));
        }
    }
    Ok(home)
}

/// Slack's bounds: a section's text holds 3,000 characters, a Home view 100 blocks.
const SECTION_CHARS: usize = 2_900;
const MOST_PENDING: usize = 15;
const MOST_INCIDENTS: usize = 10;

fn section(text: String) -> Value {
    let text = if text.chars().count() > SECTION_CHARS {
        let cut: String = text.chars().take(SECTION_CHARS).collect();
        format!("{cut}… _(cut; `/dr ready` shows it whole)_")
    } else {
        text
    };
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn header(text: &str) -> Value {
    json!({"type": "header", "text": {"type": "plain_text", "text": text}})
}

fn context(text: String) -> Value {
    json!({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})
}

fn since(at: &str, now: chrono::DateTime<chrono::Utc>) -> String {
    chrono::DateTime::parse_from_rfc3339(at)
        .map(|t| crate::duration::human(now - t.with_timezone(&chrono::Utc)) + " ago")
        .unwrap_or_else(|_| at.to_string())
}

/// The App Home view for `user` (`officer`: with Approve/Reject on pending requests).
pub fn view(home: &Home, officer: bool, now: chrono::DateTime<chrono::Utc>) -> Value {
    let mut blocks = vec![header("Disaster recovery at a glance")];
    blocks.push(header("Readiness"));
    if home.readiness.is_empty() {
        blocks.push(section(
            "_Not checked yet: `/dr ready` checks every scenario now._".into(),
        ));
    }
    for (scenario, state, failing, rto) in &home.readiness {
        let mut text = format!(
            "{} *{}* — {} (RTO {})",
            state.icon(),
            escape(scenario),
            state.as_str(),
            escape(rto)
        );
        for c in failing {
            text.push_str(&format!(
                "\n• {}: {}{}",
                escape(&c.name),
                escape(&c.detail),
                if c.fix.is_empty() {
                    String::new()
                } else {
                    format!(" — fix: {}", c.fix)
                }
            ));
        }
        blocks.push(section(text));
    }
    if let Some(at) = &home.checked_at {
        blocks.push(context(format!(
            "Checked {}; `/dr ready` checks again now.",
            since(at, now)
        )));
    }
    blocks.push(json!({"type": "divider"}));
    blocks.push(header("Open incidents"));
    if home.incidents.is_empty() {
        blocks.push(section("None.".into()));
    }
    if home.incidents.len() > MOST_INCIDENTS {
        blocks.push(context(format!(
            "The {MOST_INCIDENTS} oldest of {} shown; `/dr incident list` lists them all.",
            home.incidents.len()
        )));
    }
    for (incident, rto, rto_secs) in home.incidents.iter().take(MOST_INCIDENTS) {
        let age = now - incident.started_at;
        let over = rto_secs.is_some_and(|r| age.num_seconds() > r as i64);
        blocks.push(section(format!(
            "{} *{}*{} — {} · <#{}> · open {} (RTO {}){}",
            if over { ":rotating_light:" } else { ":fire:" },
            escape(&incident.id),
            if incident.drill { " (DRILL)" } else { "" },
            escape(&incident.title),
            incident.channel_id,
            crate::duration::human(age),
            escape(rto),
            if over { " — *past its RTO*" } else { "" }
        )));
    }
    blocks.push(json!({"type": "divider"}));
    blocks.push(header("Pending approvals"));
    if home.pending.is_empty() {
        blocks.push(section("None.".into()));
    }
    if home.pending.len() > MOST_PENDING {
        blocks.push(context(format!(
            "The {MOST_PENDING} oldest of {} shown; `/dr approvals` lists them all.",
            home.pending.len()
        )));
    }
    for request in home.pending.iter().take(MOST_PENDING) {
        blocks.push(section(format!(
            ":lock: *{}* requested by <@{}> in <#{}>, waiting {}, expires in {}",
            request.label(),
            request.requester,
            request.channel,
            crate::duration::human(now - request.created_at),
            crate::duration::human(request.expires_at - now)
        )));
        // What was typed stays text: plain_text cannot carry links, mentions or formatting.
        blocks.push(json!({"type": "context", "elements": [{"type": "plain_text", "text": format!("/dr {}", request.command), "emoji": false}]}));
        if officer {
            let id = request.id.to_string();
            blocks.push(json!({"type": "actions", "elements": [
                {"type": "button", "action_id": HOME_APPROVE, "value": id, "style": "primary", "text": {"type": "plain_text", "text": format!("Approve {}", request.label())}},
                {"type": "button", "action_id": HOME_REJECT, "value": id, "style": "danger", "text": {"type": "plain_text", "text": format!("Reject {}", request.label())}},
            ]}));
        }
    }
    blocks.push(json!({"type": "divider"}));
    blocks.push(header("Backups"));
    let mut lines = Vec::new();
    match &home.restore_test {
        Some((at, db, passed, _)) => lines.push(format!(
            "{} Last restore test: `{}` {} {}",
            if *passed { ":white_check_mark:" } else { ":x:" },
            escape(db),
            if *passed { "passed" } else { "failed" },
            since(at, now)
        )),
        None => lines.push(":grey_question: No restore test has run yet.".to_string()),
    }
    for (db, compliant, at) in &home.compliance {
        lines.push(format!(
            "{} Backup compliance of `{}`: {} (checked {})",
            if *compliant {
                ":white_check_mark:"
            } else {
                ":x:"
            },
            escape(db),
            if *compliant { "held" } else { "slots missing" },
            since(at, now)
        ));
    }
    for c in &home.copies {
        lines.push(format!(
            "{} {}: {}",
            if c.status == Status::Pass {
                ":white_check_mark:"
            } else {
                ":x:"
            },
            escape(&c.name),
            escape(&c.detail)
        ));
    }
    blocks.push(section(lines.join("\n")));
    json!({"type": "home", "blocks": blocks})
}

/// `user` opened the App Home: their view is published at once (through the outbox).
pub async fn opened(app: &App, user: &str) -> Result<(), StoreError> {
    let mut tx = app.store.begin().await?;
    tx.home_opened(user).await?;
    tx.commit().await?;
    WAKE.notify_one();
    Ok(())
}

/// Publishes again the views that are out of date ([`refresh_due`]) every second, or at
/// once when someone opens the tab, until `stop` turns true.
pub async fn run(app: Arc<App>, mut stop: tokio::sync::watch::Receiver<bool>) {
    loop {
        if let Err(e) = refresh_due(&app).await {
            tracing::error!(error = %e, "could not refresh App Home views");
        }
        tokio::select! {
            _ = WAKE.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Wakes [`run`]'s loop.
pub static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Publishes again the views of users whose view is older than the log, each claimed so
/// one replica publishes it, at most once per `HOME_EVERY` per user.
pub async fn refresh_due(app: &Arc<App>) -> Result<(), StoreError> {
    let Some((head, _)) = app.store.head().await? else {
        return Ok(());
    };
    let now = crate::clock::now();
    let every = chrono::Duration::from_std(HOME_EVERY).unwrap_or_default();
    let kept = chrono::Duration::from_std(HOME_KEPT).unwrap_or_default();
    let due = app.store.homes_due(head, now - every, now - kept).await?;
    if due.is_empty() {
        return Ok(());
    }
    let home = model(app).await?;
    for (user, from) in due {
        let view = view(&home, app.settings.is_officer(&user), now);
        let mut tx = app.store.begin().await?;
        if tx.claim_home(&user, from, head, now).await? {
            tx.send_slack(Outgoing::PublishHome { user, view }).await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// An Approve or Reject button of the App Home, as the reaction it stands for on the
/// request's own message: the same gate decides it.
pub async fn button(
    app: &App,
    raw: &Value,
) -> Option<Result<crate::gate::reactions::Reaction, super::events::DeliverAgain>> {
    if raw.pointer("/type").and_then(Value::as_str) != Some("block_actions") {
        return None;
    }
    let action = raw.pointer("/actions/0")?;
    let approval = &app.settings.approval;
    let name = match action.get("action_id")?.as_str()? {
        HOME_APPROVE => approval.approve_reactions.first()?,
        HOME_REJECT => approval.reject_reactions.first()?,
        _ => return None,
    };
    let id: i64 = action.get("value")?.as_str()?.parse().ok()?;
    let user = raw.pointer("/user/id")?.as_str()?.to_string();
    let action_ts = action
        .get("action_ts")
        .and_then(Value::as_str)
        .unwrap_or("");
    let request = async {
        let mut tx = app.store.begin().await?;
        let request = tx.request(id).await?;
        tx.commit().await?;
        Ok::<_, StoreError>(request)
    };
    let request = match request.await {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => return Some(Err(e.into())),
    };
    let Some(ts) = request.message_ts.clone() else {
        return Some(Err(super::events::DeliverAgain::RequestNotPostedYet));
    };
    Some(Ok(crate::gate::reactions::Reaction {
        event_id: format!("home:{id}:{user}:{action_ts}"),
        added: true,
        user,
        name: name.clone(),
        channel: request.channel.clone(),
        ts,
        item_user: Some(app.bot_user_id().to_string()),
        request: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: i64) -> Request {
        let now = chrono::Utc::now();
        Request {
            id,
            command: "rollback api *bold* <!channel>".into(),
            command_name: "rollback".into(),
            action: "ecs_rollback".into(),
            requester: "U0ONCALL1".into(),
            channel: "C0123OPS".into(),
            incident: None,
            response_url: String::new(),
            plan: "{}".into(),
            plan_hash: "h".into(),
            summary: String::new(),
            state: RequestState::Pending,
            created_at: now,
            expires_at: now + chrono::Duration::minutes(15),
            message_ts: Some("1.2".into()),
            decided_by: None,
            outcome: None,
            owner: None,
            fence: None,
        }
    }

    /// Whatever the store holds, the view stays inside Slack's bounds (100 blocks, 3,000
    /// characters a section), what was typed stays plain text, and only officers get buttons.
    #[test]
    fn the_view_stays_inside_slacks_bounds_and_buttons_are_for_officers() {
        let long = Check::fail("dry run of the plan", "x".repeat(5_000), "", "");
        let home = Home {
            readiness: vec![(
                "region-failure".into(),
                State::NotReady,
                vec![long],
                "24h".into(),
            )],
            pending: (1..=60).map(pending).collect(),
            ..Home::default()
        };
        let now = chrono::Utc::now();
        let officer = view(&home, true, now);
        let blocks = officer["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 100, "{} blocks", blocks.len());
        for b in blocks {
            if let Some(text) = b.pointer("/text/text").and_then(Value::as_str) {
                assert!(text.chars().count() <= 3_000, "{} characters", text.len());
            }
        }
        let shown = officer.to_string();
        assert!(shown.contains("The 15 oldest of 60 shown"));
        let typed = blocks
            .iter()
            .filter(|b| b["type"] == "context")
            .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
            .filter(|e| e["text"] == "/dr rollback api *bold* <!channel>")
            .collect::<Vec<_>>();
        assert_eq!(typed.len(), 15, "{shown}");
        assert!(typed.iter().all(|e| e["type"] == "plain_text"));
        assert_eq!(shown.matches(HOME_APPROVE).count(), 15);
        let engineer = view(&home, false, now).to_string();
        assert!(!engineer.contains(HOME_APPROVE) && !engineer.contains(HOME_REJECT));
    }
}
