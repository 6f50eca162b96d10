//! The incident at a glance: an inline SVG strip of its span, with each event as a tick,
//! each approval wait as a bar from request to decision, and the RTO deadline as a line.
//! Black and greys with one accent, so it reads on paper too.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use super::mrkdwn::esc;
use super::summary::{at, Summary};
use crate::store::StoredEvent;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 20.0;
const RIGHT: f64 = 20.0;

pub fn strip(summary: &Summary, events: &[StoredEvent]) -> String {
    let start = summary.opened_at;
    let end_of_events = events.iter().filter_map(at).max().unwrap_or(start);
    let end = summary
        .resolved_at
        .unwrap_or(end_of_events)
        .max(end_of_events);
    let deadline = summary
        .rto_secs
        .map(|s| start + chrono::Duration::seconds(s));
    // The axis runs to the later of the end and the RTO deadline (the deadline stays visible).
    let axis_end = deadline.map_or(end, |d| d.max(end));
    let span = (axis_end - start).num_milliseconds().max(1) as f64;
    let x = |t: DateTime<Utc>| {
        LEFT + ((t - start).num_milliseconds().max(0) as f64 / span) * (WIDTH - LEFT - RIGHT)
    };
    let rows = summary.actions.len().max(1) as f64;
    let height = 90.0 + rows * 18.0;

    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"strip\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"Timeline of incident {}\">",
        esc(&summary.incident)
    );
    let _ = write!(
        svg,
        "<title>Incident {} from {} to {}</title>",
        esc(&summary.incident),
        start.format("%Y-%m-%d %H:%M:%S UTC"),
        end.format("%Y-%m-%d %H:%M:%S UTC")
    );
    // The incident's span.
    let _ = write!(
        svg,
        "<rect class=\"span\" x=\"{:.1}\" y=\"20\" width=\"{:.1}\" height=\"14\" fill=\"#ddd\" stroke=\"#333\"/>",
        x(start),
        (x(end) - x(start)).max(1.0)
    );
    // Each event, as a tick on the span.
    for e in events {
        let Some(t) = at(e) else { continue };
        let color = if e.kind.starts_with("aws.") || e.kind.starts_with("request.executed") {
            "#000"
        } else if e.kind.starts_with("approval.") {
            "#555"
        } else {
            "#999"
        };
        let _ = write!(
            svg,
            "<line class=\"tick\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"16\" y2=\"38\" stroke=\"{color}\" stroke-width=\"1.5\"><title>#{1} {2} {3}</title></line>",
            x(t),
            e.seq,
            t.format("%H:%M:%S"),
            esc(&e.kind)
        );
    }
    // Approval waits, one row per request.
    for (i, a) in summary.actions.iter().enumerate() {
        let y = 50.0 + i as f64 * 18.0;
        let until = a.decided_at.unwrap_or(end);
        let _ = write!(
            svg,
            "<rect class=\"wait\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"10\" fill=\"#888\"><title>{} waited {} for approval ({})</title></rect>",
            x(a.requested_at),
            (x(until) - x(a.requested_at)).max(2.0),
            esc(&a.label),
            super::summary::human(a.wait_secs.unwrap_or((until - a.requested_at).num_seconds())),
            esc(&a.outcome)
        );
        let label_x = (x(until) + 4.0).min(WIDTH - 140.0);
        let _ = write!(
            svg,
            "<text x=\"{label_x:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#000\">{} · {}</text>",
            y + 9.0,
            esc(&a.label),
            esc(&a.outcome)
        );
    }
    // The RTO deadline.
    if let Some(d) = deadline {
        let _ = write!(
            svg,
            "<line class=\"rto\" x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"8\" y2=\"{1:.1}\" stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"6 3\"/><text x=\"{2:.1}\" y=\"10\" font-size=\"11\" fill=\"#c00\" text-anchor=\"end\">RTO {3}</text>",
            x(d),
            height - 20.0,
            (x(d) - 3.0).max(60.0),
            esc(&summary.rto)
        );
    }
    // The axis: start and end times.
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">{} UTC (opened)</text><text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\" text-anchor=\"end\">{} UTC ({})</text>",
        height - 4.0,
        start.format("%H:%M:%S"),
        WIDTH - RIGHT,
        height - 4.0,
        end.format("%H:%M:%S"),
        if summary.resolved_at.is_some() { "resolved" } else { "last event" }
    );
    svg.push_str("</svg>");
    svg
}
