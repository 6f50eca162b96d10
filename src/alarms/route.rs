//! Which route an alarm takes, and what it does then (SPEC §16): a pure function of the
//! alarm's state, its route and what the store holds — tested as a table. An alarm never
//! runs a change: at most it proposes an incident, or opens one (`open = "auto"`).

use crate::config::alarms::glob_matches;
use crate::config::{AlarmRoute, OpenMode};

use super::sns::Alarm;

/// The first route whose globs match the alarm (its name, its `<Namespace>/<Metric>`).
pub fn route<'a>(routes: &'a [AlarmRoute], alarm: &Alarm) -> Option<&'a AlarmRoute> {
    routes.iter().find(|r| {
        let name = r
            .alarm
            .as_deref()
            .is_none_or(|g| glob_matches(g, &alarm.name));
        let metric = r
            .metric
            .as_deref()
            .is_none_or(|g| alarm.metric.as_deref().is_some_and(|m| glob_matches(g, m)));
        name && metric
    })
}

/// What the store holds about the alarm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Known {
    /// An open incident the alarm opened or joined: (id, channel).
    pub incident: Option<(String, String)>,
    /// Its proposal still waits for a click.
    pub proposed: bool,
}

/// What an alarm message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// No route: recorded, nothing else.
    Unrouted,
    /// Post a proposal with *Open incident* and *Dismiss*.
    Propose,
    /// Open the incident now, as `/dr incident open` would.
    Open,
    /// Again in ALARM while its incident is open: into that incident's timeline.
    Repeat { incident: String, channel: String },
    /// Again in ALARM while its proposal waits: recorded with it.
    RepeatOfProposal,
    /// Back to OK while its incident is open: recorded there (and, by the route, the end
    /// of the measured recovery).
    Recovered {
        incident: String,
        channel: String,
        ends_recovery: bool,
    },
    /// Back to OK with no incident open: said where the proposal was.
    ClearedBeforeIncident,
    /// Neither ALARM nor OK (INSUFFICIENT_DATA), or OK of an alarm nobody acted on.
    Recorded,
}

pub fn decide(state: &str, route: Option<&AlarmRoute>, known: &Known) -> Effect {
    let Some(route) = route else {
        return Effect::Unrouted;
    };
    match (state, &known.incident, known.proposed) {
        ("ALARM", Some((incident, channel)), _) => Effect::Repeat {
            incident: incident.clone(),
            channel: channel.clone(),
        },
        ("ALARM", None, true) => Effect::RepeatOfProposal,
        ("ALARM", None, false) => match route.open {
            OpenMode::Propose => Effect::Propose,
            OpenMode::Auto => Effect::Open,
        },
        ("OK", Some((incident, channel)), _) => Effect::Recovered {
            incident: incident.clone(),
            channel: channel.clone(),
            ends_recovery: route.ends_recovery,
        },
        ("OK", None, true) => Effect::ClearedBeforeIncident,
        _ => Effect::Recorded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route_to(open: OpenMode, ends_recovery: bool) -> AlarmRoute {
        AlarmRoute {
            alarm: Some("aifai-*".into()),
            metric: None,
            scenario: "region-failure".into(),
            channel: None,
            open,
            ends_recovery,
        }
    }

    #[test]
    fn what_an_alarm_does_by_its_state_and_what_is_known() {
        let incident = Some(("inc-1".to_string(), "C0INC".to_string()));
        let propose = route_to(OpenMode::Propose, true);
        let auto = route_to(OpenMode::Auto, false);
        let none = Known::default();
        let open = Known {
            incident: incident.clone(),
            proposed: false,
        };
        let waiting = Known {
            incident: None,
            proposed: true,
        };
        let repeat = Effect::Repeat {
            incident: "inc-1".into(),
            channel: "C0INC".into(),
        };
        let table = [
            ("ALARM", None, &none, Effect::Unrouted),
            ("ALARM", Some(&propose), &none, Effect::Propose),
            ("ALARM", Some(&auto), &none, Effect::Open),
            ("ALARM", Some(&propose), &open, repeat.clone()),
            ("ALARM", Some(&auto), &open, repeat),
            ("ALARM", Some(&propose), &waiting, Effect::RepeatOfProposal),
            ("ALARM", Some(&auto), &waiting, Effect::RepeatOfProposal),
            (
                "OK",
                Some(&propose),
                &open,
                Effect::Recovered {
                    incident: "inc-1".into(),
                    channel: "C0INC".into(),
                    ends_recovery: true,
                },
            ),
            (
                "OK",
                Some(&auto),
                &open,
                Effect::Recovered {
                    incident: "inc-1".into(),
                    channel: "C0INC".into(),
                    ends_recovery: false,
                },
            ),
            (
                "OK",
                Some(&propose),
                &waiting,
                Effect::ClearedBeforeIncident,
            ),
            ("OK", Some(&propose), &none, Effect::Recorded),
            ("INSUFFICIENT_DATA", Some(&propose), &open, Effect::Recorded),
        ];
        for (state, route, known, expected) in table {
            assert_eq!(
                decide(state, route, known),
                expected,
                "{state} {route:?} {known:?}"
            );
        }
    }

    #[test]
    fn the_first_route_whose_globs_match_is_taken() {
        let alarm = Alarm {
            message_id: "m".into(),
            topic: "t".into(),
            name: "aifai-db-cpu".into(),
            state: "ALARM".into(),
            reason: String::new(),
            changed_at: chrono::Utc::now(),
            metric: Some("AWS/RDS/CPUUtilization".into()),
            region: None,
        };
        let by_metric = AlarmRoute {
            alarm: None,
            metric: Some("AWS/RDS/*".into()),
            scenario: "db-corruption".into(),
            ..route_to(OpenMode::Propose, false)
        };
        let other = AlarmRoute {
            alarm: Some("aifai-api-*".into()),
            ..route_to(OpenMode::Auto, false)
        };
        let routes = [other, by_metric, route_to(OpenMode::Auto, false)];
        assert_eq!(route(&routes, &alarm).unwrap().scenario, "db-corruption");
        let unknown = Alarm {
            name: "billing".into(),
            metric: None,
            ..alarm
        };
        assert!(route(&routes, &unknown).is_none());
    }
}
