//! `/dr followup add <text> [--owner @user] [--due YYYY-MM-DD]`, `/dr followup done <id>`,
//! `/dr followup list [--open]` (SPEC §18): what an incident or a drill leaves to do — the
//! plan's "document lessons learned; update procedures" — stored, in the timeline (so in
//! the postmortem and the report), reminded in the ops channel once a day while overdue.
//! Answered from drbot's own state on the acknowledgement path; no AWS.

use chrono::NaiveDate;
use serde_json::json;

use super::run_control::Controlled;
use crate::router::ParsedCommand;
use crate::slack::text::inert;
use crate::store::{EventKind, Followup, Incident, NewEvent, Outgoing, Store, StoreError};

/// `<@U123>`, `<@U123|dana>` or `U123` → `U123`; `@dana` (what Slack sends for a mention when
/// the command does not ask it to escape them) → `@dana`, kept as the handle typed.
fn owner(raw: &str) -> Option<String> {
    if let Some(handle) = raw.strip_prefix('@') {
        let ok = !handle.is_empty()
            && handle.len() <= 80
            && handle
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
        return ok.then(|| raw.to_string());
    }
    let id = raw
        .strip_prefix("<@")
        .and_then(|r| r.strip_suffix('>'))
        .map(|r| r.split('|').next().unwrap_or(r))
        .unwrap_or(raw);
    let ok = id.len() >= 3
        && (id.starts_with('U') || id.starts_with('W'))
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    ok.then(|| id.to_string())
}

/// An owner as Slack shows it: a mention of a user id, or the handle as typed.
pub fn mention(owner: &str) -> String {
    if owner.starts_with('@') {
        inert(owner)
    } else {
        format!("<@{owner}>")
    }
}

/// `F-12` or `12`.
fn followup_id(raw: &str) -> Option<i64> {
    raw.strip_prefix("F-")
        .or_else(|| raw.strip_prefix("f-"))
        .unwrap_or(raw)
        .parse()
        .ok()
        .filter(|n| *n > 0)
}

/// One line about `f`, its text made inert.
pub fn line(f: &Followup) -> String {
    let mut out = format!(
        "{} *{}* {}",
        if f.done_at.is_some() {
            ":white_check_mark:"
        } else {
            ":white_large_square:"
        },
        f.label(),
        inert(&f.text)
    );
    if let Some(o) = &f.owner {
        out.push_str(&format!(" — {}", mention(o)));
    }
    if let Some(d) = &f.due {
        out.push_str(&format!(", due {d}"));
    }
    if let Some(i) = &f.incident {
        out.push_str(&format!(" · {i}"));
    }
    out
}

/// Applies `cmd`; `accepted` (the command's own event) is recorded with what it changes.
pub async fn apply(
    store: &Store,
    cmd: &ParsedCommand,
    user: &str,
    channel: &str,
    incident: Option<&Incident>,
    accepted: NewEvent,
) -> Result<Controlled, StoreError> {
    let incident_id = incident.map(|i| i.id.clone());
    match cmd.def.name.as_str() {
        "followup add" => {
            let text = cmd.text("text").unwrap_or_default();
            if text.trim().is_empty() {
                return Ok(Controlled::Refused("say what must be done: `/dr followup add <text> [--owner @user] [--due YYYY-MM-DD]`".into()));
            }
            if text.chars().count() > 500 {
                return Ok(Controlled::Refused(
                    "a follow-up is one task: at most 500 characters".into(),
                ));
            }
            let owner = match cmd.flag_word("owner") {
                None => None,
                Some(raw) => match owner(raw) {
                    Some(id) => Some(id),
                    None => {
                        return Ok(Controlled::Refused(format!(
                            "`--owner {}` is not a person: mention them, like `--owner @dana`",
                            inert(raw)
                        )))
                    }
                },
            };
            let due = match cmd.flag_word("due") {
                None => None,
                Some(raw) => match NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
                    Ok(d) => Some(d.format("%Y-%m-%d").to_string()),
                    Err(_) => {
                        return Ok(Controlled::Refused(format!(
                            "`--due {}` is not a day like 2026-12-15",
                            inert(raw)
                        )))
                    }
                },
            };
            let mut tx = store.begin().await?;
            tx.append(accepted).await?;
            let f = tx
                .add_followup(
                    incident_id.as_deref(),
                    channel,
                    &text,
                    owner.as_deref(),
                    due.as_deref(),
                    user,
                )
                .await?;
            tx.append(
                NewEvent::new(
                    EventKind::FollowupAdded,
                    user,
                    channel,
                    format!("{} added: {text}", f.label()),
                )
                .detail(json!({"followup": f.label(), "text": text, "owner": owner, "due": due}))
                .incident(incident_id.clone()),
            )
            .await?;
            tx.send_slack(Outgoing::post(
                channel,
                format!(":memo: Follow-up added by <@{user}>: {}", line(&f)),
            ))
            .await?;
            tx.commit().await?;
            Ok(Controlled::Done(format!(
                "Follow-up {} recorded. `/dr followup done {}` when it is done.",
                f.label(),
                f.label()
            )))
        }
        "followup done" => {
            let raw = cmd.arg_word("id").unwrap_or_default();
            let Some(id) = followup_id(raw) else {
                return Ok(Controlled::Refused(format!(
                    "`{}` is not a follow-up id; they look like F-3 (`/dr followup list`)",
                    inert(raw)
                )));
            };
            let mut tx = store.begin().await?;
            let Some(f) = tx.followup(id).await? else {
                return Ok(Controlled::Refused(format!(
                    "there is no follow-up F-{id}; `/dr followup list` shows them"
                )));
            };
            if !tx.finish_followup(id, user).await? {
                return Ok(Controlled::Refused(format!(
                    "{} is already done",
                    f.label()
                )));
            }
            tx.append(accepted).await?;
            tx.append(
                NewEvent::new(
                    EventKind::FollowupDone,
                    user,
                    channel,
                    format!("{} done: {}", f.label(), f.text),
                )
                .detail(json!({"followup": f.label()}))
                .incident(f.incident.clone()),
            )
            .await?;
            tx.send_slack(Outgoing::post(
                channel,
                format!(
                    ":white_check_mark: <@{user}> marked {} done: {}",
                    f.label(),
                    inert(&f.text)
                ),
            ))
            .await?;
            tx.commit().await?;
            Ok(Controlled::Done(format!("{} is done.", f.label())))
        }
        _ => {
            let open = cmd.flag("open").is_some();
            let list = store.followups(incident_id.as_deref(), open).await?;
            store.append(accepted).await?;
            let whose = match &incident_id {
                Some(i) => format!("of {i}"),
                None => "of every incident".to_string(),
            };
            if list.is_empty() {
                return Ok(Controlled::Done(format!(
                    "No {}follow-ups {whose}.",
                    if open { "open " } else { "" }
                )));
            }
            let lines: Vec<String> = list.iter().map(line).collect();
            Ok(Controlled::Done(format!(
                "*Follow-ups {whose}*\n{}",
                lines.join("\n")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_mentions_and_ids_are_f_numbers() {
        assert_eq!(owner("<@U0DANA1|dana>").as_deref(), Some("U0DANA1"));
        assert_eq!(owner("<@U0DANA1>").as_deref(), Some("U0DANA1"));
        assert_eq!(owner("U0DANA1").as_deref(), Some("U0DANA1"));
        assert_eq!(owner("@dana.smith").as_deref(), Some("@dana.smith"));
        for bad in ["@", "@<!channel>", "<!channel>", "<@U0D|x", "u0dana1", ""] {
            assert_eq!(owner(bad), None, "{bad}");
        }
        assert_eq!(followup_id("F-12"), Some(12));
        assert_eq!(followup_id("12"), Some(12));
        assert_eq!(followup_id("F-0"), None);
        assert_eq!(followup_id("A-3"), None);
    }
}
