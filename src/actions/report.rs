//! `/dr report [quarter|<from> <to>]` (SPEC §6, §12): posts the review report's summary in
//! the channel with the full report (HTML, charts inline, no links) shared as a file.
//! Reads the store only; the same report as `drbot report`.

use std::sync::Arc;

use crate::app::App;
use crate::report::{self, Period};
use crate::router::{ParsedCommand, Invalid};
use crate::store::Outgoing;
use crate::timeline::Format;

/// The period asked for: nothing or `quarter` is this quarter so far; else two dates.
pub fn period(cmd: &ParsedCommand) -> Result<Period, Invalid> {
    let words: Vec<String> = cmd
        .text("period")
        .map(|t| t.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let now = crate::clock::now();
    let period = match words.as_slice() {
        [] => Period::parse(None, None, now),
        [q] if q.eq_ignore_ascii_case("quarter") => Period::parse(None, None, now),
        [from, to] => Period::parse(Some(from), Some(to), now),
        _ => return Err(Invalid("give `quarter` (this quarter so far) or two dates, e.g. `/dr report 2026-10-01 2026-12-31`".to_string())),
    };
    period.map_err(|e| Invalid(e.unflagged()))
}

/// Builds the report, queues its summary and file in `channel`, and says so.
pub async fn post(app: &Arc<App>, cmd: &ParsedCommand, user: &str, channel: &str) -> String {
    let period = match period(cmd) {
        Ok(p) => p,
        Err(why) => return format!(":no_entry: {}.", crate::slack::text::escape(&why.0)),
    };
    let events = match app.store.events(None).await {
        Ok(events) => events,
        Err(e) => {
            tracing::error!(error = %e, "could not read the log for a report");
            return ":warning: drbot could not read its store; try again in a moment.".to_string();
        }
    };
    let r = report::build(&events, period, |id| {
        app.scenarios.get(id).and_then(|s| s.rto.seconds())
    });
    let title = format!("DR review: {}", report::period_text(&r));
    let summary = format!(
        ":bar_chart: *{}* (asked by <@{user}>)\n• Incidents: {} · RTO achievement: {}\n• Drills: {}\n• Restore tests: {}\n• Backup compliance: {}\n• Approvals: {}\n• Changes: {}\n• Follow-ups: {}\n• Time to declare: {}\nThe full report (tables and charts, works offline) is attached; `drbot report` prints the same as html, md or json.",
        crate::slack::text::escape(&title),
        r.incidents.len(),
        crate::slack::text::escape(&report::rto_rate(&r)),
        r.drills.len(),
        crate::slack::text::escape(&report::restore_tests_text(&r)),
        crate::slack::text::escape(&report::backups_text(&r)),
        crate::slack::text::escape(&report::approvals_text(&r.approvals)),
        crate::slack::text::escape(&report::changes::text(&r.changes)),
        crate::slack::text::escape(&report::glance::followups_text(&r.followups)),
        crate::slack::text::escape(&report::declare_text(&r)),
    );
    let filename = format!(
        "dr-review-{}-{}.html",
        r.from.format("%Y%m%d"),
        (r.to - chrono::Duration::days(1)).format("%Y%m%d")
    );
    let queued = app
        .store
        .send_slack(vec![Outgoing::Upload {
            channel: channel.to_string(),
            filename,
            title: title.clone(),
            content: report::render(Format::Html, &r),
            comment: summary,
        }])
        .await;
    match queued {
        Ok(()) => format!(
            "Posting the {} in this channel.",
            crate::slack::text::escape(&title)
        ),
        Err(e) => {
            tracing::error!(error = %e, "could not queue a report");
            ":warning: drbot could not record this request; the report was not posted.".to_string()
        }
    }
}

/// This action's entry in the registry (`crate::actions::registry`).
pub struct Entry;

impl super::Action for Entry {
    fn validate(
        &self,
        cmd: &crate::router::ParsedCommand,
        _settings: &crate::config::Settings,
    ) -> Result<(), crate::router::Invalid> {
        period(cmd).map(|_| ())
    }

    fn read<'a>(
        &'a self,
        app: &'a std::sync::Arc<crate::app::App>,
        cmd: &'a crate::router::ParsedCommand,
        asker: &'a crate::gate::request::Asker,
    ) -> futures_util::future::BoxFuture<'a, String> {
        Box::pin(post(app, cmd, &asker.user, &asker.channel))
    }
}
