//! `/dr timeline [incident]`: the incident's timeline, newest last, posted in the channel
//! in pages. Slack: chat.postMessage. Approval: none. Read-only.

use crate::store::StoredEvent;

/// Lines per Slack message.
pub const PAGE: usize = 40;

/// The timeline as message texts, each at most [`PAGE`] events.
pub fn pages(incident: &str, events: &[StoredEvent]) -> Vec<String> {
    if events.is_empty() {
        return vec![format!("*Timeline of {incident}*: no events yet.")];
    }
    let total = events.len().div_ceil(PAGE);
    events
        .chunks(PAGE)
        .enumerate()
        .map(|(n, chunk)| {
            let mut out = format!("*Timeline of {incident}* ({}/{total})\n", n + 1);
            for e in chunk {
                let actor = if e.actor == "drbot" || e.actor.is_empty() {
                    "drbot".to_string()
                } else {
                    format!("<@{}>", e.actor)
                };
                out.push_str(&format!(
                    "`{}` {actor} _{}_ {}\n",
                    e.at.replace('T', " ").trim_end_matches('Z'),
                    e.kind,
                    // Recorded text quotes what users typed: shown, never interpreted.
                    crate::slack::text::escape(&e.text)
                ));
            }
            out.trim_end().to_string()
        })
        .collect()
}
