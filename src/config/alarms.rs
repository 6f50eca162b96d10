//! `[alarms]` (SPEC §16): where CloudWatch alarms reach drbot (an SQS queue subscribed to the
//! alarm topic, or SNS's HTTPS deliveries to `POST /aws/sns`), which topics are accepted, and
//! `[[alarms.routes]]`: which alarm proposes (or opens) which scenario's incident, where.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlarmSettings {
    /// The SQS queue URL drbot long-polls (subscribed to the topics).
    pub queue: Option<String>,
    /// The SNS topic ARNs whose messages are accepted (both intakes).
    pub topics: Vec<String>,
    /// Serve `POST /aws/sns` for SNS's HTTPS deliveries.
    pub https: bool,
    pub routes: Vec<AlarmRoute>,
}

/// Propose an incident (buttons) or open it at once.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OpenMode {
    #[default]
    Propose,
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlarmRoute {
    /// A glob (`*` any characters) on the alarm's `AlarmName`.
    #[serde(default)]
    pub alarm: Option<String>,
    /// A glob on the alarm's `<Namespace>/<MetricName>` (e.g. `AWS/RDS/CPUUtilization`).
    #[serde(default)]
    pub metric: Option<String>,
    pub scenario: String,
    /// Where the proposal goes (default: the first command channel).
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub open: OpenMode,
    /// The alarm's return to `OK` ends the incident's measured recovery time.
    #[serde(default)]
    pub ends_recovery: bool,
}

impl AlarmSettings {
    pub fn enabled(&self) -> bool {
        self.queue.is_some() || self.https
    }

    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.enabled() && self.topics.is_empty() {
            return Err((
                "alarms.topics",
                "alarms are taken in (`queue` or `https`) but no topic is accepted: list the SNS topic ARNs, e.g. topics = [\"arn:aws:sns:eu-west-1:123456789012:aifai-security-alerts\"]".into(),
            ));
        }
        for topic in &self.topics {
            let parts: Vec<&str> = topic.split(':').collect();
            if parts.len() != 6 || parts[0] != "arn" || parts[2] != "sns" {
                return Err((
                    "alarms.topics",
                    format!("'{topic}' is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"),
                ));
            }
        }
        if let Some(queue) = &self.queue {
            let ok = url::Url::parse(queue)
                .map(|u| {
                    matches!(u.scheme(), "https" | "http")
                        && u.path_segments().is_some_and(|s| s.count() == 2)
                })
                .unwrap_or(false);
            if !ok {
                return Err((
                    "alarms.queue",
                    format!("'{queue}' is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"),
                ));
            }
        }
        for route in &self.routes {
            let key = "alarms.routes";
            let glob = |g: &Option<String>| g.as_deref().is_some_and(|g| !g.trim().is_empty());
            if !glob(&route.alarm) && !glob(&route.metric) {
                return Err((
                    key,
                    format!("the route to '{}' matches nothing: give `alarm = \"<glob on the alarm name>\"` or `metric = \"<Namespace>/<MetricName> glob>\"`", route.scenario),
                ));
            }
            if let Some(channel) = &route.channel {
                if !super::is_slack_id(channel, &['C', 'G']) {
                    return Err((
                        key,
                        format!("'{channel}' is not a Slack channel ID (like C0123OPS); use IDs, not names"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Does `glob` (`*` any characters, case-sensitive as alarm names are) match `text`?
pub fn glob_matches(glob: &str, text: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    #[test]
    fn globs_match_alarm_names() {
        assert!(glob_matches("aifai-*-5xx", "aifai-api-5xx"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("exact", "exact") && !glob_matches("exact", "exact2"));
        assert!(!glob_matches("a*b*c", "aXcYb"));
        assert!(glob_matches("a*b*c", "aXbYc"));
        assert!(!glob_matches("ab*ba", "aba"), "the ends do not overlap");
        assert!(glob_matches("AWS/RDS/*", "AWS/RDS/CPUUtilization"));
    }
}
