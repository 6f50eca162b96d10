//! Slack down and back (SPEC §19). The outbox worker says what each attempt heard from
//! Slack; failing without one success for `[console] slack_down_after` is "Slack is down"
//! (said in the web console and `/readyz`, never failing readiness). When Slack answers
//! again, the messages that waited get time to go out, and each channel where people worked
//! through the console is told, after what waited, what was done there meanwhile.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::app::{App, SlackTurn};
use crate::store::{Outgoing, StoredEvent};

/// Records what an attempt heard (`Some(true)`: Slack answered; `Some(false)`: it did not);
/// answers whether Slack is down now.
pub async fn heard(app: &Arc<App>, heard: Option<bool>) -> bool {
    let turn = match heard {
        Some(true) => app.slack_health.answered(crate::clock::now()),
        Some(false) => app.slack_health.failed(
            crate::clock::now(),
            app.settings.console.slack_down_after.as_duration(),
        ),
        None => SlackTurn::Same,
    };
    match turn {
        SlackTurn::Same => {}
        SlackTurn::WentDown(since) => tracing::error!(
            since = %crate::clock::rfc3339(since),
            "Slack's Web API has not answered since then: Slack is down; messages wait in the outbox, the web console works"
        ),
        SlackTurn::CameBack { answered, since } => {
            if let Err(e) = back(app, answered, since).await {
                tracing::error!(error = %e, "could not tell the channels what was done while Slack was down");
            }
        }
    }
    let down = app.slack_health.down_since().is_some();
    crate::metrics::SLACK_DOWN.set(i64::from(down));
    down
}

/// Slack answers again: it last answered at `answered` and failed from `since`.
async fn back(
    app: &Arc<App>,
    answered: chrono::DateTime<chrono::Utc>,
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(), crate::store::StoreError> {
    let now = crate::clock::now();
    tracing::warn!(since = %crate::clock::rfc3339(since), "Slack answers again");
    app.store.outbox_after_outage().await?;
    // What was done in the console since Slack last answered (the outage's first commands
    // were typed before its first failure was seen).
    let events = app
        .store
        .events_since(&crate::clock::rfc3339(answered))
        .await?;
    let fallback = app
        .settings
        .slack
        .command_channels
        .first()
        .cloned()
        .unwrap_or_default();
    let posts = summaries(&events, since, now, &fallback);
    let mut tx = app.store.begin().await?;
    for (key, post) in posts {
        tx.send_slack_keyed(post, Some(key)).await?;
    }
    tx.commit().await
}

/// One post per channel where something was done through the console (`events`: since
/// Slack last answered), the outage from `since` to `now`, keyed by its newest event (replicas that saw the same outage queue it once).
pub fn summaries(
    events: &[StoredEvent],
    since: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
    fallback: &str,
) -> Vec<(String, Outgoing)> {
    let mut by_channel: BTreeMap<String, Vec<&StoredEvent>> = BTreeMap::new();
    for e in events {
        let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap_or_default();
        if detail.pointer("/via/surface").and_then(|s| s.as_str()) != Some("console") {
            continue;
        }
        let channel = if e.channel.is_empty() {
            fallback
        } else {
            &e.channel
        };
        if !channel.is_empty() {
            by_channel.entry(channel.to_string()).or_default().push(e);
        }
    }
    let minutes = (now - since).num_minutes().max(1);
    by_channel
        .into_iter()
        .map(|(channel, done)| {
            let newest = done.last().map(|e| e.seq).unwrap_or_default();
            let mut text = format!(
                ":information_source: *Slack did not answer drbot from {} to {} UTC (about {minutes} min).* Meanwhile, in drbot's web console, for this channel ({} events; the messages above waited for Slack and are in order):",
                hhmm(since),
                hhmm(now),
                done.len()
            );
            for e in done.iter().take(30) {
                let detail: serde_json::Value =
                    serde_json::from_str(&e.detail).unwrap_or_default();
                let email = detail
                    .pointer("/via/email")
                    .and_then(|s| s.as_str())
                    .unwrap_or("");
                let what = if e.kind.starts_with("command.") {
                    format!("`{}`", crate::slack::text::inert(&e.text))
                } else {
                    e.text.clone()
                };
                text.push_str(&format!(
                    "\n• {} {} ({}) — {what}",
                    e.at.get(11..16).unwrap_or(""),
                    crate::slack::text::mention(&e.actor),
                    crate::slack::text::escape(email)
                ));
            }
            if done.len() > 30 {
                text.push_str(&format!(
                    "\n… and {} more: `/dr timeline` or the audit log has them all.",
                    done.len() - 30
                ));
            }
            (
                format!("console-summary:{channel}:{newest}"),
                Outgoing::post(&channel, text),
            )
        })
        .collect()
}

fn hhmm(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%H:%M").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(seq: i64, channel: &str, kind: &str, text: &str, via: bool) -> StoredEvent {
        let detail = if via {
            serde_json::json!({"via": {"surface": "console", "email": "dana@example.com", "user": "U0ONCALL1"}})
        } else {
            serde_json::json!({})
        };
        StoredEvent {
            seq,
            at: format!("2026-12-05T14:0{seq}:00.000Z"),
            actor: "U0ONCALL1".into(),
            channel: channel.into(),
            incident: None,
            kind: kind.into(),
            text: text.into(),
            detail: detail.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn each_channel_hears_only_what_was_done_there_through_the_console_with_typed_text_inert() {
        let since = "2026-12-05T14:00:00Z".parse().unwrap();
        let now = "2026-12-05T14:30:00Z".parse().unwrap();
        let events = [
            event(
                1,
                "C0OPS",
                "command.accepted",
                "/dr rollback api <!channel>",
                true,
            ),
            event(
                2,
                "C0OPS",
                "approval.approved",
                "A-1 approved by <@U0SECOFF1>; executing",
                true,
            ),
            event(3, "C0OPS", "slack.reaction_added", "from Slack", false),
            event(4, "C0INC", "command.accepted", "/dr status", true),
        ];
        let posts = summaries(&events, since, now, "C0OPS");
        assert_eq!(posts.len(), 2);
        let (key, Outgoing::Post { channel, text, .. }) = &posts[1] else {
            panic!("a post")
        };
        assert_eq!(
            (key.as_str(), channel.as_str()),
            ("console-summary:C0OPS:2", "C0OPS")
        );
        assert!(text.contains("14:00 to 14:30 UTC (about 30 min)"), "{text}");
        assert!(
            text.contains("`/dr rollback api &lt;!channel&gt;`"),
            "{text}"
        );
        assert!(text.contains("A-1 approved by <@U0SECOFF1>"), "{text}");
        assert!(!text.contains("from Slack"), "{text}");
        assert!(text.contains("dana@example.com"), "{text}");
    }
}
