//! `[console]` (SPEC §19): the web console `serve` offers behind the AWS Application Load
//! Balancer's OIDC sign-in, for the hours Slack is down. Off unless `enabled`; who is who comes
//! only from the load balancer's signed token, mapped here from a verified email to the Slack
//! user id drbot's rules already know (so officers are the same officers).

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::duration::HumanDuration;

/// `[console]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    pub enabled: bool,
    /// The ARN of the load balancer whose sign-in is trusted (the token's `signer`).
    pub load_balancer_arn: String,
    /// The load balancer's region (its public keys are regional); default: its ARN's.
    pub region: Option<String>,
    /// A verified email (lower case compared) → that person's Slack user id.
    pub people: BTreeMap<String, String>,
    /// Slack's Web API failing this long without one success: drbot says Slack is down.
    pub slack_down_after: HumanDuration,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            enabled: false,
            load_balancer_arn: String::new(),
            region: None,
            people: BTreeMap::new(),
            slack_down_after: HumanDuration::from_secs(60),
        }
    }
}

impl ConsoleSettings {
    /// The Slack user id of a verified `email`, if it is one of `people`.
    pub fn person(&self, email: &str) -> Option<&str> {
        self.people
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(email.trim()))
            .map(|(_, user)| user.as_str())
    }

    /// The region of the load balancer: `region`, else its ARN's (an enabled console's ARN
    /// always names one: [`Self::validate`]).
    pub fn region(&self) -> String {
        self.region
            .clone()
            .or_else(|| arn_region(&self.load_balancer_arn))
            .unwrap_or_default()
    }

    /// `(key, message)` of the first thing wrong, for a `ConfigError::Invalid`.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.slack_down_after.as_duration().is_zero() {
            return Err((
                "console.slack_down_after",
                "must be longer than 0s (like \"60s\")".into(),
            ));
        }
        if !self.enabled {
            return Ok(());
        }
        if arn_region(&self.load_balancer_arn).is_none()
            || !self.load_balancer_arn.contains(":loadbalancer/app/")
        {
            return Err((
                "console.load_balancer_arn",
                format!(
                    "'{}' is not an Application Load Balancer's ARN (like arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/drbot/50dc6c495c0c9188); the console trusts only that load balancer's sign-in",
                    self.load_balancer_arn
                ),
            ));
        }
        if self.people.is_empty() {
            return Err((
                "console.people",
                "is empty: map each person's sign-in email to their Slack user id, like people = { \"dana@example.com\" = \"U0ONCALL1\" }".into(),
            ));
        }
        for (email, user) in &self.people {
            let at = email.find('@');
            if at.is_none_or(|i| i == 0 || i + 1 == email.len())
                || email.contains(char::is_whitespace)
            {
                return Err((
                    "console.people",
                    format!("'{email}' is not an email address"),
                ));
            }
            if !(user.starts_with(['U', 'W'])
                && user.len() >= 3
                && user
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
            {
                return Err((
                    "console.people",
                    format!(
                        "'{email}' maps to '{user}', which is not a Slack user id (like U0ONCALL1)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The region inside an `arn:aws:elasticloadbalancing:<region>:…` ARN.
fn arn_region(arn: &str) -> Option<String> {
    let mut parts = arn.split(':');
    let (Some("arn"), Some(_partition), Some("elasticloadbalancing"), Some(region)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    (!region.is_empty()).then(|| region.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str =
        "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/drbot/50dc6c495c0c9188";

    #[test]
    fn people_are_found_by_email_whatever_its_case_and_bad_entries_are_refused() {
        let mut c = ConsoleSettings {
            enabled: true,
            load_balancer_arn: ARN.into(),
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().0, "console.people");
        c.people
            .insert("Dana@Example.com".into(), "U0ONCALL1".into());
        assert!(c.validate().is_ok());
        assert_eq!(c.person(" dana@example.COM "), Some("U0ONCALL1"));
        assert_eq!(c.person("eve@example.com"), None);
        assert_eq!(c.region(), "eu-west-1");
        c.people.insert("lee@example.com".into(), "lee".into());
        assert!(c.validate().unwrap_err().1.contains("not a Slack user id"));
        c.people.remove("lee@example.com");
        c.load_balancer_arn = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/x/1".into();
        assert_eq!(c.validate().unwrap_err().0, "console.load_balancer_arn");
        c.enabled = false;
        assert!(c.validate().is_ok(), "a console that is off is not checked");
    }
}
