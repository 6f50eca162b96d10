//! What a channel shows in the web console `serve` offers: drbot's own messages there, read
//! from the outbox (sent to Slack or still waiting for it), in the shape the console draws —
//! the shape of the sandbox's Slack-like workspace. Pure: rows in, messages out.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::store::{console_answer, AfterPost, Anchor, OutboxRow, Outgoing};

/// The messages of `channel` that `viewer` may see, oldest first: posts (with their
/// updates, reactions and pins applied), files, the answers to `viewer` (ephemeral, and the
/// console's own answers to their commands). Each says whether it still waits for Slack.
pub fn messages(rows: &[OutboxRow], channel: &str, viewer: &str, bot: &str) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    // A post's row key / Slack ts → its index in `out`.
    let mut by_anchor: BTreeMap<String, usize> = BTreeMap::new();
    let find = |by: &BTreeMap<String, usize>, a: &Anchor| match a {
        Anchor::Ts(ts) => by.get(ts).copied(),
        Anchor::Row(key) => by.get(key).copied(),
    };
    for row in rows {
        let Some(message) = &row.message else {
            continue;
        };
        let waiting = matches!(row.state.as_str(), "pending" | "sending");
        let id = if row.ts.is_empty() {
            format!("q{}", row.id)
        } else {
            row.ts.clone()
        };
        let base = |text: &str, blocks: Option<&Value>, only_for: Option<&str>| {
            json!({
                "channel": channel,
                "ts": id,
                "at": row.created_at,
                "thread_ts": null,
                "user": bot,
                "text": text,
                "blocks": blocks,
                "reactions": {},
                "pinned": false,
                "only_for": only_for,
                "edited": false,
                "file": null,
                "queued": waiting,
                "failed": row.state == "failed",
                "request": null,
            })
        };
        match message {
            Outgoing::Post {
                channel: c,
                text,
                blocks,
                thread,
                after,
            } if c == channel => {
                let mut m = base(text, blocks.as_ref(), None);
                if let Some(parent) = thread.as_ref().and_then(|t| find(&by_anchor, t)) {
                    m["thread_ts"] = out[parent]["ts"].clone();
                }
                if let Some(AfterPost::RequestMessage { request }) = after {
                    m["request"] = json!(request);
                }
                if !row.key.is_empty() {
                    by_anchor.insert(row.key.clone(), out.len());
                }
                if !row.ts.is_empty() {
                    by_anchor.insert(row.ts.clone(), out.len());
                }
                out.push(m);
            }
            Outgoing::Update {
                channel: c,
                message: anchor,
                text,
                blocks,
            } if c == channel => {
                if let Some(i) = find(&by_anchor, anchor) {
                    out[i]["text"] = json!(text);
                    out[i]["blocks"] = json!(blocks);
                    out[i]["edited"] = json!(true);
                    out[i]["queued"] = json!(waiting || out[i]["queued"] == true);
                }
            }
            Outgoing::React {
                channel: c,
                message: anchor,
                name,
            } if c == channel => {
                if let Some(i) = find(&by_anchor, anchor) {
                    out[i]["reactions"][name.as_str()] = json!([bot]);
                }
            }
            Outgoing::Pin {
                channel: c,
                message: anchor,
            } if c == channel => {
                if let Some(i) = find(&by_anchor, anchor) {
                    out[i]["pinned"] = json!(true);
                }
            }
            Outgoing::Ephemeral {
                channel: c,
                user,
                text,
            } if c == channel && user == viewer => out.push(base(text, None, Some(viewer))),
            Outgoing::Respond { url, text } => {
                if console_answer(url).is_some_and(|(c, u, _)| c == channel && u == viewer) {
                    let mut m = base(text, None, Some(viewer));
                    m["queued"] = json!(false);
                    out.push(m);
                }
            }
            Outgoing::Upload {
                channel: c,
                filename,
                title,
                comment,
                ..
            } if c == channel => {
                let mut m = base(comment, None, None);
                m["file"] = json!({"id": row.id.to_string(), "title": title, "name": filename});
                out.push(m);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, key: &str, state: &str, ts: &str, message: Outgoing) -> OutboxRow {
        OutboxRow {
            id,
            key: key.into(),
            state: state.into(),
            ts: ts.into(),
            message: Some(message),
            created_at: "2026-12-05T14:00:00.000Z".into(),
        }
    }

    #[test]
    fn a_request_waiting_for_slack_shows_with_its_updates_and_only_the_viewers_answers() {
        let rows = vec![
            row(
                1,
                "request:1",
                "pending",
                "",
                Outgoing::Post {
                    channel: "C0OPS".into(),
                    text: "A-1 · approval needed".into(),
                    blocks: None,
                    thread: None,
                    after: Some(AfterPost::RequestMessage { request: 1 }),
                },
            ),
            row(
                2,
                "",
                "pending",
                "",
                Outgoing::Update {
                    channel: "C0OPS".into(),
                    message: Anchor::Row("request:1".into()),
                    text: "A-1 · approved".into(),
                    blocks: None,
                },
            ),
            row(
                3,
                "",
                "sent",
                "",
                Outgoing::Respond {
                    url: crate::store::console_url("C0OPS", "U0ONCALL1", "dana@example.com"),
                    text: "Planned A-1".into(),
                },
            ),
            row(
                4,
                "",
                "sent",
                "",
                Outgoing::Respond {
                    url: crate::store::console_url("C0OPS", "U0OTHER", "eve@example.com"),
                    text: "not yours".into(),
                },
            ),
        ];
        let shown = messages(&rows, "C0OPS", "U0ONCALL1", "UDRBOT");
        assert_eq!(shown.len(), 2, "{shown:?}");
        assert_eq!(shown[0]["text"], "A-1 · approved");
        assert_eq!(shown[0]["request"], 1);
        assert_eq!(shown[0]["queued"], true);
        assert_eq!(shown[0]["ts"], "q1");
        assert_eq!(shown[1]["text"], "Planned A-1");
        assert_eq!(shown[1]["only_for"], "U0ONCALL1");
    }
}
