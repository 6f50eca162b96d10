//! Logging to stderr: `RUST_LOG` filters (default `info`), `DRBOT_LOG_FORMAT=json|text`.
//!
//! JSON lines are one object each: `{"timestamp":…,"level":…,"fields":{"message":…,…},
//! "span":{…,"name":…}}` (the innermost span's fields and name). They are written by
//! [`JsonLine`] and [`JsonFields`] rather than tracing-subscriber's own JSON format, which
//! parses a span's stored fields back from JSON at every field recorded into it and at every
//! event inside it (a tenth of the acknowledgement path's time under load, measured): here
//! a span's fields are kept as the inside of a JSON object, a field recorded later is
//! appended to it, and an event copies them as they are.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("DRBOT_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    if json {
        let _ = builder
            .fmt_fields(JsonFields)
            .event_format(JsonLine)
            .try_init();
    } else {
        let _ = builder.with_ansi(false).try_init();
    }
}

/// Fields as the members of a JSON object, without its braces: `"user":"U1","n":3`.
pub struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut members = Members(String::new());
        fields.record(&mut members);
        writer.write_str(&members.0)
    }

    fn add_fields(
        &self,
        current: &'w mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let mut members = Members(std::mem::take(&mut current.fields));
        fields.record(&mut members);
        current.fields = members.0;
        Ok(())
    }
}

/// One JSON object per event (see the module's documentation).
pub struct JsonLine;

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'w> FormatFields<'w> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(256);
        line.push_str("{\"timestamp\":\"");
        SystemTime.format_time(&mut Writer::new(&mut line))?;
        let _ = write!(
            line,
            "\",\"level\":\"{}\",\"fields\":{{",
            event.metadata().level()
        );
        let mut members = Members(line);
        event.record(&mut members);
        let mut line = members.0;
        line.push('}');
        if let Some(span) = ctx.lookup_current() {
            line.push_str(",\"span\":{");
            if let Some(fields) = span.extensions().get::<FormattedFields<N>>() {
                if !fields.fields.is_empty() {
                    line.push_str(&fields.fields);
                    line.push(',');
                }
            }
            line.push_str("\"name\":");
            string(&mut line, span.name());
            line.push('}');
        }
        line.push_str("}\n");
        writer.write_str(&line)
    }
}

/// Appends each field visited as a JSON member, after a comma when there are some already.
struct Members(String);

impl Members {
    fn key(&mut self, field: &Field) {
        if !self.0.is_empty() && !self.0.ends_with('{') {
            self.0.push(',');
        }
        string(&mut self.0, field.name());
        self.0.push(':');
    }
}

impl Visit for Members {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.key(field);
        string(&mut self.0, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.key(field);
        string(&mut self.0, &format!("{value:?}"));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.key(field);
        string(&mut self.0, &value.to_string());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.key(field);
        let _ = write!(self.0, "{value}");
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.key(field);
        self.0.push_str(if value { "true" } else { "false" });
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.key(field);
        if value.is_finite() {
            let _ = write!(self.0, "{value}");
        } else {
            string(&mut self.0, &value.to_string());
        }
    }
}

/// `s` as a JSON string: quotes, backslashes and control characters escaped.
fn string(out: &mut String, s: &str) {
    out.push('"');
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let escaped = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 || c == '\u{7f}' => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(escaped);
        }
        plain = i + c.len_utf8();
    }
    out.push_str(&s[plain..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a log shipper reads: one JSON object a line, the event's fields and the span's,
    /// whatever the text holds.
    #[test]
    fn a_json_line_is_one_object_with_the_event_and_its_span() {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
        let sink = lines.clone();
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(JsonFields)
            .event_format(JsonLine)
            .with_writer(move || Sink(sink.clone()));
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!(
                "slack.command",
                user = "U1",
                outcome = tracing::field::Empty
            );
            let _entered = span.enter();
            span.record("outcome", "refused");
            tracing::warn!(
                n = 3,
                ok = true,
                text = "a \"quote\"\n\u{1b}[31m<!channel>",
                "refused: {}",
                "why"
            );
            drop(_entered);
            tracing::info!("outside");
        });
        let text = String::from_utf8(lines.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "WARN");
        assert_eq!(lines[0]["fields"]["message"], "refused: why");
        assert_eq!(lines[0]["fields"]["n"], 3);
        assert_eq!(lines[0]["fields"]["ok"], true);
        assert_eq!(
            lines[0]["fields"]["text"],
            "a \"quote\"\n\u{1b}[31m<!channel>"
        );
        assert_eq!(
            lines[0]["span"],
            serde_json::json!({"user": "U1", "outcome": "refused", "name": "slack.command"})
        );
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["fields"]["message"], "outside");
        assert!(lines[1].get("span").is_none());
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
}
