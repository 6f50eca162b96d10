//! `drbot report` (SPEC §2, §12): the review the plan asks for each quarter, from the store
//! alone — every incident and drill of the period with its recovery time against the
//! scenario's RTO and its data-loss window against the RPO, the RTO achievement rate, how
//! long approvals took, and a chart of recovery time per incident against its target.
//! Restore tests and backup compliance have sections of their own, which say plainly that
//! nothing of the kind is recorded yet.

use std::collections::BTreeMap;
use std::fmt::Write;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

use crate::store::StoredEvent;
use crate::timeline::mrkdwn::{esc, md_row};
use crate::timeline::rto_verdict;
use crate::timeline::summary::{human, summarise, Summary};
use crate::timeline::Format;

/// The period a report covers, `[from, to)`.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
}

impl Period {
    /// From `--from`/`--to` (`YYYY-MM-DD`, `to` inclusive); by default the current quarter.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Period, String> {
        let day = |flag: &str, s: &str| {
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("{flag}: '{s}' is not a date like 2026-10-01"))
        };
        let quarter_start = {
            use chrono::Datelike;
            let month = (now.month0() / 3) * 3 + 1;
            NaiveDate::from_ymd_opt(now.year(), month, 1).expect("a valid first of a month")
        };
        let from = match from {
            Some(s) => day("--from", s)?,
            None => quarter_start,
        };
        let to_exclusive = match to {
            Some(s) => day("--to", s)?
                .succ_opt()
                .ok_or_else(|| format!("--to: '{s}' is out of range"))?,
            None => now.date_naive().succ_opt().unwrap_or(now.date_naive()),
        };
        if to_exclusive <= from {
            return Err(format!(
                "--to must not be before --from ({from} … {})",
                to_exclusive.pred_opt().unwrap_or(to_exclusive)
            ));
        }
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        Ok(Period {
            from: midnight(from),
            to: midnight(to_exclusive),
        })
    }
}

/// Approval response times over the period.
#[derive(Debug, Clone, Serialize)]
pub struct Approvals {
    pub count: usize,
    pub median_secs: Option<i64>,
    pub p90_secs: Option<i64>,
    pub max_secs: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub incidents: Vec<Summary>,
    pub drills: Vec<Summary>,
    /// Resolved incidents with a numeric RTO, and how many met it.
    pub rto_measured: usize,
    pub rto_met: usize,
    pub approvals: Approvals,
    /// Restore tests recorded in the period (none are recorded by this build).
    pub restore_tests: Vec<serde_json::Value>,
    /// Backup compliance checks recorded in the period (none by this build).
    pub backup_checks: Vec<serde_json::Value>,
}

/// Builds the report from every stored event.
pub fn build(
    events: &[StoredEvent],
    period: Period,
    rto_of: impl Fn(&str) -> Option<u64>,
) -> Report {
    let mut by_incident: BTreeMap<&str, Vec<StoredEvent>> = BTreeMap::new();
    for e in events {
        if let Some(id) = e.incident.as_deref() {
            by_incident.entry(id).or_default().push(e.clone());
        }
    }
    let mut incidents = Vec::new();
    let mut drills = Vec::new();
    for evs in by_incident.values() {
        let scenario = evs
            .iter()
            .find(|e| e.kind == "incident.opened")
            .and_then(|e| serde_json::from_str::<serde_json::Value>(&e.detail).ok())
            .and_then(|d| d["scenario"].as_str().map(str::to_string))
            .unwrap_or_default();
        let Some(s) = summarise(evs, rto_of(&scenario)) else {
            continue;
        };
        if s.opened_at < period.from || s.opened_at >= period.to {
            continue;
        }
        if s.drill {
            drills.push(s);
        } else {
            incidents.push(s);
        }
    }
    incidents.sort_by_key(|s| s.opened_at);
    drills.sort_by_key(|s| s.opened_at);
    let rto_measured = incidents.iter().filter(|s| s.rto_met.is_some()).count();
    let rto_met = incidents.iter().filter(|s| s.rto_met == Some(true)).count();
    let mut waits: Vec<i64> = incidents
        .iter()
        .chain(&drills)
        .flat_map(|s| s.actions.iter())
        .filter(|a| !a.approvers.is_empty())
        .filter_map(|a| a.wait_secs)
        .collect();
    waits.sort();
    let pick = |q: f64| -> Option<i64> {
        if waits.is_empty() {
            None
        } else {
            let i = ((waits.len() as f64 - 1.0) * q).round() as usize;
            Some(waits[i])
        }
    };
    Report {
        from: period.from,
        to: period.to,
        rto_measured,
        rto_met,
        approvals: Approvals {
            count: waits.len(),
            median_secs: pick(0.5),
            p90_secs: pick(0.9),
            max_secs: waits.last().copied(),
        },
        incidents,
        drills,
        restore_tests: Vec::new(),
        backup_checks: Vec::new(),
    }
}

pub fn render(format: Format, r: &Report) -> String {
    match format {
        Format::Json => serde_json::to_string_pretty(r).expect("a report serialises") + "\n",
        Format::Md => markdown(r),
        Format::Html => html(r),
    }
}

fn period_text(r: &Report) -> String {
    format!(
        "{} to {}",
        r.from.format("%Y-%m-%d"),
        (r.to - chrono::Duration::days(1)).format("%Y-%m-%d")
    )
}

fn rto_rate(r: &Report) -> String {
    if r.rto_measured == 0 {
        "no resolved incident with a numeric RTO".to_string()
    } else {
        format!(
            "{} of {} resolved incidents met their RTO ({:.0}%)",
            r.rto_met,
            r.rto_measured,
            100.0 * r.rto_met as f64 / r.rto_measured as f64
        )
    }
}

fn approvals_text(a: &Approvals) -> String {
    match (a.median_secs, a.p90_secs, a.max_secs) {
        (Some(m), Some(p), Some(x)) => format!(
            "{} approved change(s): median wait {}, 90th percentile {}, longest {}",
            a.count,
            human(m),
            human(p),
            human(x)
        ),
        _ => "no approved changes".to_string(),
    }
}

/// One row per incident: id, scenario, opened, recovery, RTO verdict, RPO verdict.
fn row(s: &Summary) -> [String; 6] {
    let rpo = match (s.data_loss_secs, s.rpo_secs) {
        (Some(loss), Some(rpo)) if loss <= rpo => {
            format!("{} (within {})", human(loss), human(rpo))
        }
        (Some(loss), Some(rpo)) => format!("{} (exceeds {})", human(loss), human(rpo)),
        (Some(loss), None) => human(loss),
        (None, _) => "no restore".to_string(),
    };
    [
        s.incident.clone(),
        s.scenario.clone(),
        s.opened_at.format("%Y-%m-%d %H:%M").to_string(),
        human(s.recovery_secs),
        rto_verdict(s),
        rpo,
    ]
}

const HEADERS: [&str; 6] = [
    "incident",
    "scenario",
    "opened (UTC)",
    "recovery",
    "RTO",
    "data loss (RPO)",
];

fn markdown(r: &Report) -> String {
    let mut out = format!("# DR review: {}\n\n", period_text(r));
    let _ = writeln!(out, "- **RTO achievement:** {}", rto_rate(r));
    let _ = writeln!(out, "- **Approvals:** {}", approvals_text(&r.approvals));
    let _ = writeln!(out, "- **Drills (tests of the plan):** {}", r.drills.len());
    for (title, list) in [("Incidents", &r.incidents), ("Drills", &r.drills)] {
        let _ = writeln!(out, "\n## {title}\n");
        if list.is_empty() {
            out.push_str("_None in this period._\n");
            continue;
        }
        let _ = writeln!(out, "| {} |\n|{}", HEADERS.join(" | "), "---|".repeat(6));
        for s in list.iter() {
            let _ = writeln!(out, "{}", md_row(&row(s)));
        }
    }
    out.push_str("\n## Restore tests\n\n_No restore tests are recorded in this period (drbot does not run them yet)._\n");
    out.push_str("\n## Backup compliance\n\n_No backup compliance checks are recorded in this period (drbot does not run them yet)._\n");
    out
}

/// Recovery time per incident against its RTO, as horizontal bars.
fn chart(list: &[Summary]) -> String {
    let measured: Vec<&Summary> = list.iter().filter(|s| s.resolved_at.is_some()).collect();
    if measured.is_empty() {
        return "<p>No resolved incidents to chart.</p>".to_string();
    }
    let scale = measured
        .iter()
        .map(|s| s.recovery_secs.max(s.rto_secs.unwrap_or(0)))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (left, width, row_h) = (220.0, 640.0, 26.0);
    let height = 30.0 + measured.len() as f64 * row_h;
    let mut svg = format!(
        "<svg class=\"chart\" viewBox=\"0 0 900 {height}\" width=\"100%\" role=\"img\" aria-label=\"Recovery time per incident against its RTO\"><title>Recovery time per incident against its RTO</title>"
    );
    for (i, s) in measured.iter().enumerate() {
        let y = 10.0 + i as f64 * row_h;
        let w = (s.recovery_secs as f64 / scale * width).max(2.0);
        let fill = if s.rto_met == Some(false) {
            "#a00"
        } else {
            "#333"
        };
        let _ = write!(
            svg,
            "<text x=\"0\" y=\"{:.1}\" font-size=\"12\">{}</text><rect class=\"recovery\" x=\"{left}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"16\" fill=\"{fill}\"><title>{}: {}</title></rect>",
            y + 12.0,
            esc(&s.incident),
            esc(&s.incident),
            human(s.recovery_secs)
        );
        if let Some(rto) = s.rto_secs {
            let x = left + rto as f64 / scale * width;
            let _ = write!(
                svg,
                "<line class=\"target\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#c00\" stroke-width=\"2\" stroke-dasharray=\"4 2\"><title>RTO {}</title></line>",
                y - 2.0,
                y + 18.0,
                human(rto)
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{left}\" y=\"{:.1}\" font-size=\"11\" fill=\"#333\">bars: recovery time · dashed: the scenario's RTO · scale 0 to {}</text></svg>",
        height - 4.0,
        human(scale as i64)
    );
    svg
}

fn html(r: &Report) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<dl><dt>RTO achievement</dt><dd>{}</dd><dt>Approvals</dt><dd>{}</dd><dt>Drills (tests of the plan)</dt><dd>{}</dd></dl>",
        esc(&rto_rate(r)),
        esc(&approvals_text(&r.approvals)),
        r.drills.len()
    );
    for (title, list) in [("Incidents", &r.incidents), ("Drills", &r.drills)] {
        let _ = write!(body, "<h2>{title}</h2>");
        if list.is_empty() {
            body.push_str("<p>None in this period.</p>");
            continue;
        }
        body.push_str("<table><thead><tr>");
        for h in HEADERS {
            let _ = write!(body, "<th>{}</th>", esc(h));
        }
        body.push_str("</tr></thead><tbody>");
        for s in list.iter() {
            body.push_str("<tr class=\"incident\">");
            for c in row(s) {
                let _ = write!(body, "<td>{}</td>", esc(&c));
            }
            body.push_str("</tr>");
        }
        body.push_str("</tbody></table>");
        let _ = write!(
            body,
            "<figure><figcaption>Recovery time per {} against its RTO</figcaption>{}</figure>",
            if title == "Drills" {
                "drill"
            } else {
                "incident"
            },
            chart(list)
        );
    }
    body.push_str("<h2>Restore tests</h2><p>No restore tests are recorded in this period (drbot does not run them yet).</p>");
    body.push_str("<h2>Backup compliance</h2><p>No backup compliance checks are recorded in this period (drbot does not run them yet).</p>");
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>DR review: {p}</title>\n<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#111}}table{{border-collapse:collapse;width:100%}}th,td{{border:1px solid #999;padding:4px 6px;text-align:left;font-size:14px}}th{{background:#eee}}dl{{display:grid;grid-template-columns:max-content auto;gap:2px 12px}}dt{{font-weight:bold}}dd{{margin:0}}figure{{margin:1em 0}}figcaption{{font-size:12px;color:#444}}@media print{{figure,tr{{page-break-inside:avoid}}}}</style></head>\n<body><h1>DR review: {p}</h1>\n{body}\n</body></html>\n",
        p = esc(&period_text(r)),
    )
}
