//! Renders stored events as a timeline a person can read: Markdown for postmortems, JSON for
//! tooling, a self-contained HTML page for auditors. People and channels carry their names
//! beside their ids, Slack markup is rendered (never interpreted: user text stays text), an
//! incident's export opens with its summary (and, in HTML, a picture of it in time), and
//! every export ends with the chain's verification and its head.

pub mod mrkdwn;
pub mod names;
pub mod summary;
mod svg;

use std::fmt::Write;

use mrkdwn::{esc, md_escape};
use names::Names;
use summary::{human, Summary};

use crate::store::{StoredEvent, VerifyReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Html,
}

impl Format {
    /// The file name extension of this format.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Md => "md",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

/// What an export shows.
pub struct Export<'a> {
    pub title: String,
    pub events: &'a [StoredEvent],
    pub report: &'a VerifyReport,
    /// The chain's newest event: sequence and hash.
    pub head: Option<(i64, String)>,
    pub names: Names,
    /// The incident's summary (one incident exported).
    pub summary: Option<Summary>,
}

fn verification_line(report: &VerifyReport) -> String {
    match report {
        VerifyReport::Intact { count } => format!("audit chain intact: {count} events verified"),
        VerifyReport::Broken {
            seq,
            reason,
            checked,
        } => {
            format!(
                "AUDIT CHAIN BROKEN at event {seq}: {reason} ({checked} events verified before it)"
            )
        }
        VerifyReport::NotKeyed { count } => format!("AUDIT CHAIN NOT KEYED: {}", not_keyed(*count)),
    }
}

/// Why a chain without a keyed marker fails for a verifier holding the key.
pub fn not_keyed(count: u64) -> String {
    format!("DRBOT_AUDIT_KEY is set, but none of the {count} events is keyed with it: the keyed marker was removed and the chain rehashed without the key (a downgrade), or drbot never ran with this key (start it once with the key to key the chain from there)")
}

fn head_line(head: &Option<(i64, String)>) -> String {
    match head {
        Some((seq, hash)) => format!("chain head: event {seq}, hash {hash}"),
        None => "chain head: no events".to_string(),
    }
}

/// Events whose text is what a person typed (the command line, a status update): shown
/// exactly as typed, never read as markup. Every other text is drbot's own, in Slack's
/// mrkdwn, and is rendered.
const TYPED: &[&str] = &["command.accepted", "command.refused", "incident.update"];

fn typed(e: &StoredEvent) -> bool {
    TYPED.contains(&e.kind.as_str())
}

fn text_html(e: &StoredEvent, names: &Names) -> String {
    if typed(e) {
        esc(&e.text).replace('\n', "<br>")
    } else {
        mrkdwn::html(&e.text, names)
    }
}

fn text_md(e: &StoredEvent, names: &Names) -> String {
    if typed(e) {
        md_escape(&e.text)
    } else {
        mrkdwn::markdown(&e.text, names)
    }
}

fn text_plain(e: &StoredEvent, names: &Names) -> String {
    if typed(e) {
        e.text.clone()
    } else {
        mrkdwn::plain(&e.text, names)
    }
}

pub fn render(format: Format, export: &Export) -> String {
    match format {
        Format::Md => markdown(export),
        Format::Json => json(export),
        Format::Html => html(export),
    }
}

/// The RTO verdict: "met with 59m 59s to spare", "missed by 1h 05m", "still open".
pub fn rto_verdict(s: &Summary) -> String {
    match (s.rto_met, s.rto_margin_secs, s.resolved_at) {
        (Some(true), Some(margin), _) => format!("met with {} to spare", human(margin)),
        (Some(false), Some(margin), _) => format!("missed by {}", human(-margin)),
        (_, _, None) => format!("still open after {}", human(s.recovery_secs)),
        _ => "no numeric target".to_string(),
    }
}

fn rpo_verdict(s: &Summary) -> Option<String> {
    let loss = s.data_loss_secs?;
    Some(match s.rpo_secs {
        Some(rpo) if loss <= rpo => format!(
            "data-loss window {} (restore point {}): within the RPO of {}",
            human(loss),
            s.restore_point.as_deref().unwrap_or("?"),
            human(rpo)
        ),
        Some(rpo) => format!(
            "data-loss window {} (restore point {}): exceeds the RPO of {} by {}",
            human(loss),
            s.restore_point.as_deref().unwrap_or("?"),
            human(rpo),
            human(loss - rpo)
        ),
        None => format!("data-loss window {}", human(loss)),
    })
}

/// The summary as lines of (label, value), the value plain text (names resolved).
fn summary_lines(s: &Summary, names: &Names) -> Vec<(&'static str, String)> {
    let mut lines = vec![
        (
            "Incident",
            format!(
                "{}{} — {}",
                if s.drill {
                    "DRILL (a test of the plan, not a real incident): "
                } else {
                    ""
                },
                s.incident,
                s.title
            ),
        ),
        (
            "Scenario",
            format!("{} (RTO {}, RPO {})", s.scenario, s.rto, s.rpo),
        ),
        (
            "Opened",
            format!(
                "{} UTC by {}",
                s.opened_at.format("%Y-%m-%d %H:%M:%S"),
                names.person(&s.opened_by)
            ),
        ),
        (
            "Resolved",
            match s.resolved_at {
                Some(t) => format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S")),
                None => "still open".to_string(),
            },
        ),
        (
            "Recovery time",
            format!("{} — RTO {}", human(s.recovery_secs), rto_verdict(s)),
        ),
    ];
    if let Some(rpo) = rpo_verdict(s) {
        lines.push(("RPO", rpo));
    }
    lines.push((
        "People",
        s.people
            .iter()
            .map(|p| names.person(p))
            .collect::<Vec<_>>()
            .join(", "),
    ));
    lines
}

fn action_cells(a: &summary::Action, names: &Names) -> [String; 6] {
    [
        a.label.clone(),
        format!("/dr {}", mrkdwn::decode(&a.command)),
        names.person(&a.requester),
        if a.approvers.is_empty() {
            "—".to_string()
        } else {
            a.approvers
                .iter()
                .map(|p| names.person(p))
                .collect::<Vec<_>>()
                .join(", ")
        },
        a.wait_secs.map(human).unwrap_or_else(|| "—".to_string()),
        a.outcome.clone(),
    ]
}

fn markdown(x: &Export) -> String {
    let mut out = format!("# Timeline: {}\n\n", md_escape(&x.title));
    if let Some(s) = &x.summary {
        out.push_str("## Summary\n\n");
        for (label, value) in summary_lines(s, &x.names) {
            let _ = writeln!(out, "- **{label}:** {}", md_escape(&value));
        }
        if !s.actions.is_empty() {
            out.push_str("\n| action | command | requested by | approved by | approval wait | outcome |\n|---|---|---|---|---|---|\n");
            for a in &s.actions {
                let _ = writeln!(out, "{}", mrkdwn::md_row(&action_cells(a, &x.names)));
            }
        }
        out.push_str("\n## Events\n\n");
    }
    if x.events.is_empty() {
        out.push_str("_No events._\n");
    } else {
        out.push_str(
            "| # | time (UTC) | actor | channel | kind | what |\n|---|---|---|---|---|---|\n",
        );
        for e in x.events {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                e.seq,
                e.at,
                md_escape(&x.names.person(&e.actor)),
                md_escape(&x.names.channel(&e.channel)),
                e.kind,
                text_md(e, &x.names)
            );
        }
    }
    let _ = writeln!(
        out,
        "\n_{}; {}_",
        verification_line(x.report).replace('_', "\\_"),
        head_line(&x.head)
    );
    out
}

fn json(x: &Export) -> String {
    let verification = match x.report {
        VerifyReport::Intact { count } => serde_json::json!({"intact": true, "count": count}),
        VerifyReport::Broken {
            seq,
            reason,
            checked,
        } => {
            serde_json::json!({"intact": false, "broken_at": seq, "reason": reason, "checked": checked})
        }
        VerifyReport::NotKeyed { count } => {
            serde_json::json!({"intact": false, "reason": not_keyed(*count), "checked": count})
        }
    };
    let events: Vec<serde_json::Value> = x
        .events
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap_or_default();
            v["text_plain"] = serde_json::json!(text_plain(e, &x.names));
            v["actor_name"] = serde_json::json!(x.names.get(&e.actor));
            v["channel_name"] = serde_json::json!(x.names.get(&e.channel));
            v
        })
        .collect();
    let doc = serde_json::json!({
        "timeline": x.title,
        "summary": x.summary,
        "names": x.events.iter()
            .flat_map(|e| [e.actor.as_str(), e.channel.as_str()])
            .filter_map(|id| x.names.get(id).map(|n| (id.to_string(), n.to_string())))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "events": events,
        "verification": verification,
        "head": x.head.as_ref().map(|(seq, hash)| serde_json::json!({"seq": seq, "hash": hash})),
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serialises") + "\n"
}

fn html(x: &Export) -> String {
    let mut summary_html = String::new();
    if let Some(s) = &x.summary {
        summary_html.push_str("<section id=\"summary\"><h2>Summary</h2><dl>");
        for (label, value) in summary_lines(s, &x.names) {
            let class = match (label, s.rto_met) {
                ("Recovery time", Some(true)) => " class=\"ok\"",
                ("Recovery time", Some(false)) => " class=\"broken\"",
                _ => "",
            };
            let _ = write!(
                summary_html,
                "<dt>{}</dt><dd{class}>{}</dd>",
                esc(label),
                esc(&value)
            );
        }
        summary_html.push_str("</dl>");
        if !s.actions.is_empty() {
            summary_html.push_str("<table class=\"actions\"><thead><tr><th>action</th><th>command</th><th>requested by</th><th>approved by</th><th>approval wait</th><th>outcome</th></tr></thead><tbody>");
            for a in &s.actions {
                summary_html.push_str("<tr class=\"action\">");
                for cell in action_cells(a, &x.names) {
                    let _ = write!(summary_html, "<td>{}</td>", esc(&cell));
                }
                summary_html.push_str("</tr>");
            }
            summary_html.push_str("</tbody></table>");
        }
        let _ = write!(
            summary_html,
            "<figure><figcaption>The incident in time: events as ticks, approval waits as bars, the RTO deadline as the dashed line.</figcaption>{}</figure></section>",
            svg::strip(s, x.events)
        );
    }
    let mut rows = String::new();
    for e in x.events {
        let _ = writeln!(
            rows,
            "<tr id=\"event-{seq}\" class=\"event\"><td>{seq}</td><td><time>{at}</time></td><td>{actor}</td><td>{channel}</td><td>{kind}</td><td class=\"text\">{text}</td><td class=\"hash\" title=\"{full}\">{hash}</td></tr>",
            seq = e.seq,
            at = esc(&e.at),
            actor = esc(&x.names.person(&e.actor)),
            channel = esc(&x.names.channel(&e.channel)),
            kind = esc(&e.kind),
            text = text_html(e, &x.names),
            full = esc(&e.hash),
            hash = esc(&e.hash[..16.min(e.hash.len())]),
        );
    }
    let intact = matches!(x.report, VerifyReport::Intact { .. });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Timeline: {t}</title>\n<style>\nbody{{font-family:system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #999;padding:4px 6px;text-align:left;vertical-align:top;font-size:14px}}th{{background:#eee}}.hash{{font-family:monospace}}.ok{{color:#060}}.broken{{color:#a00;font-weight:bold}}dl{{display:grid;grid-template-columns:max-content auto;gap:2px 12px}}dt{{font-weight:bold}}dd{{margin:0}}code,pre{{background:#f3f3f3;font-family:monospace}}pre{{white-space:pre-wrap;margin:2px 0}}.mention{{font-weight:600}}figure{{margin:1em 0}}figcaption{{font-size:12px;color:#444}}table.actions{{margin:1em 0}}@media print{{body{{margin:0}}tr{{page-break-inside:avoid}}figure{{page-break-inside:avoid}}}}\n</style></head>\n<body><h1>Timeline: {t}</h1>\n{summary}<h2>Events</h2>\n<table><thead><tr><th>#</th><th>time (UTC)</th><th>actor</th><th>channel</th><th>kind</th><th>what</th><th>hash</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n<p id=\"verification\" class=\"{cls}\">{v}</p>\n<p id=\"head\" class=\"hash\">{h}</p>\n</body></html>\n",
        t = esc(&x.title),
        summary = summary_html,
        rows = rows,
        cls = if intact { "ok" } else { "broken" },
        v = esc(&verification_line(x.report)),
        h = esc(&head_line(&x.head)),
    )
}
