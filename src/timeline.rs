//! Renders stored events as a timeline: Markdown for postmortems, JSON for tooling, a
//! self-contained HTML page for auditors. Every export ends with the chain's verification.

use std::fmt::Write;

use crate::store::{StoredEvent, VerifyReport};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Json,
    Html,
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
    }
}

pub fn render(
    format: Format,
    title: &str,
    events: &[StoredEvent],
    report: &VerifyReport,
) -> String {
    match format {
        Format::Md => markdown(title, events, report),
        Format::Json => json(title, events, report),
        Format::Html => html(title, events, report),
    }
}

fn markdown(title: &str, events: &[StoredEvent], report: &VerifyReport) -> String {
    let mut out = format!("# Timeline: {title}\n\n");
    if events.is_empty() {
        out.push_str("_No events._\n");
    } else {
        out.push_str(
            "| # | time (UTC) | actor | channel | kind | what |\n|---|---|---|---|---|---|\n",
        );
        for e in events {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                e.seq,
                e.at,
                md_cell(&e.actor),
                md_cell(&e.channel),
                md_cell(&e.kind),
                md_cell(&e.text)
            );
        }
    }
    let _ = writeln!(out, "\n_{}_", verification_line(report));
    out
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn json(title: &str, events: &[StoredEvent], report: &VerifyReport) -> String {
    let verification = match report {
        VerifyReport::Intact { count } => serde_json::json!({"intact": true, "count": count}),
        VerifyReport::Broken {
            seq,
            reason,
            checked,
        } => {
            serde_json::json!({"intact": false, "broken_at": seq, "reason": reason, "checked": checked})
        }
    };
    let doc = serde_json::json!({
        "timeline": title,
        "events": events,
        "verification": verification,
    });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serialises") + "\n"
}

fn html(title: &str, events: &[StoredEvent], report: &VerifyReport) -> String {
    let mut rows = String::new();
    for e in events {
        let _ = writeln!(
            rows,
            "<tr id=\"event-{seq}\" class=\"event\"><td>{seq}</td><td><time>{at}</time></td><td>{actor}</td><td>{channel}</td><td>{kind}</td><td>{text}</td><td class=\"hash\">{hash}</td></tr>",
            seq = e.seq,
            at = esc(&e.at),
            actor = esc(&e.actor),
            channel = esc(&e.channel),
            kind = esc(&e.kind),
            text = esc(&e.text),
            hash = esc(&e.hash[..16.min(e.hash.len())]),
        );
    }
    let intact = matches!(report, VerifyReport::Intact { .. });
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Timeline: {t}</title>\n<style>\nbody{{font-family:system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #999;padding:4px 6px;text-align:left;vertical-align:top;font-size:14px}}th{{background:#eee}}.hash{{font-family:monospace}}.ok{{color:#060}}.broken{{color:#a00;font-weight:bold}}@media print{{body{{margin:0}}tr{{page-break-inside:avoid}}}}\n</style></head>\n<body><h1>Timeline: {t}</h1>\n<table><thead><tr><th>#</th><th>time (UTC)</th><th>actor</th><th>channel</th><th>kind</th><th>what</th><th>hash</th></tr></thead>\n<tbody>\n{rows}</tbody></table>\n<p id=\"verification\" class=\"{cls}\">{v}</p>\n</body></html>\n",
        t = esc(title),
        rows = rows,
        cls = if intact { "ok" } else { "broken" },
        v = esc(&verification_line(report)),
    )
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
