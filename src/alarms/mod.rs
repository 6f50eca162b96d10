//! CloudWatch alarms (SPEC §16): SNS's envelope and the alarm inside it ([`sns`]), and which
//! route an alarm takes and what it does ([`route`]) — pure, so the intake around them
//! (`workers::alarms`: the SQS queue, `POST /aws/sns`) stays thin. An alarm becomes an event
//! and maybe a proposal or an incident; it never reaches the gate by itself.

pub mod route;
pub mod sns;

/// `[[alarms.routes]]` against the plan: a route to a scenario the plan does not have
/// (`check-config` refuses it; `serve` warns and records such an alarm as refused).
pub fn check_routes(
    settings: &crate::config::Settings,
    scenarios: &crate::scenarios::ScenarioSet,
) -> Vec<String> {
    settings
        .alarms
        .routes
        .iter()
        .filter(|r| scenarios.get(&r.scenario).is_none())
        .map(|r| {
            format!(
                "alarms.routes: scenario '{}' is not one of the plan's ({})",
                r.scenario,
                scenarios.ids().join(", ")
            )
        })
        .collect()
}
