//! `[status_page]` and `[email]` (SPEC §17): where `/dr notify users` publishes once an
//! officer approved it — Atlassian Statuspage's REST API and SMTP with TLS. The API key and
//! the SMTP password come from the environment (`DRBOT_STATUSPAGE_API_KEY`,
//! `DRBOT_SMTP_PASSWORD`), never from this file.

use std::collections::BTreeMap;

use serde::Deserialize;

/// `[status_page]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPageSettings {
    /// Only `statuspage` (Atlassian Statuspage) today.
    pub provider: String,
    pub page_id: String,
    #[serde(default = "statuspage_api")]
    pub api_url: String,
    /// The page's component ids each scenario affects.
    #[serde(default)]
    pub components: BTreeMap<String, Vec<String>>,
}

fn statuspage_api() -> String {
    "https://api.statuspage.io/v1".to_string()
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// `smtp://`: STARTTLS, required; `smtps://`: TLS from the first byte.
    #[default]
    Required,
    /// No TLS at all: tests against a local server only.
    None,
}

/// `[email]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// `smtp://HOST:PORT` (STARTTLS) or `smtps://HOST:PORT` (implicit TLS).
    pub smtp_url: String,
    #[serde(default)]
    pub tls: EmailTls,
    /// The sender, `Name <address>` or `address`.
    pub from: String,
    /// The SMTP user (the password is `DRBOT_SMTP_PASSWORD`); none: no authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// A PEM file of the certificate authority that signs the server's certificate, for a
    /// relay with a private CA (default: the public web roots drbot carries).
    #[serde(default)]
    pub ca: Option<String>,
    /// Recipient lists by audience; each list gets one message, its recipients in Bcc.
    #[serde(default)]
    pub lists: BTreeMap<String, Vec<String>>,
}

impl EmailSettings {
    /// The server's host and port, and whether TLS starts at once (`smtps`).
    pub fn server(&self) -> Option<(String, u16, bool)> {
        let url = url::Url::parse(&self.smtp_url).ok()?;
        let implicit = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            _ => return None,
        };
        let host = url.host_str()?.trim_matches(['[', ']']).to_string();
        let port = url.port().unwrap_or(if implicit { 465 } else { 587 });
        Some((host, port, implicit))
    }
}

/// A plain address (`local@domain`) with nothing a header could be split on.
pub fn is_address(address: &str) -> bool {
    let Some((local, domain)) = address.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && address
            .chars()
            .all(|c| c.is_ascii_graphic() && !"<>()[],;:\\\"@".contains(c) || c == '@')
        && address.matches('@').count() == 1
}

/// The address inside `Name <address>`, or the whole text.
pub fn address_of(mailbox: &str) -> &str {
    match (mailbox.rfind('<'), mailbox.rfind('>')) {
        (Some(open), Some(close)) if open < close && close == mailbox.len() - 1 => {
            &mailbox[open + 1..close]
        }
        _ => mailbox.trim(),
    }
}

/// Whether `host` is this machine (plain HTTP and `tls = "none"` are for stand-ins only).
fn loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl StatusPageSettings {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.provider != "statuspage" {
            return Err((
                "status_page.provider",
                format!("'{}' is not a status page drbot can publish to; use provider = \"statuspage\" (Atlassian Statuspage)", self.provider),
            ));
        }
        if self.page_id.is_empty() || !self.page_id.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err((
                "status_page.page_id",
                format!("'{}' is not a Statuspage page id (letters and digits, from the page's API settings)", self.page_id),
            ));
        }
        let url = url::Url::parse(&self.api_url).map_err(|e| {
            (
                "status_page.api_url",
                format!("'{}' is not a URL: {e}", self.api_url),
            )
        })?;
        let host = url.host_str().unwrap_or_default();
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback(host)) {
            return Err((
                "status_page.api_url",
                format!("'{}' must be an https URL (the API key travels with every call); plain http only reaches a stand-in on this machine", self.api_url),
            ));
        }
        for (scenario, ids) in &self.components {
            if ids.is_empty()
                || ids
                    .iter()
                    .any(|id| id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err((
                    "status_page.components",
                    format!("'{scenario}': give the page's component ids, like [\"8kbf7d35c070\"]"),
                ));
            }
        }
        Ok(())
    }
}

impl EmailSettings {
    pub(super) fn validate(&self) -> Result<(), (&'static str, String)> {
        let Some((host, _, implicit)) = self.server() else {
            return Err((
                "email.smtp_url",
                format!("'{}' is not an SMTP URL; use smtp://HOST:PORT (STARTTLS) or smtps://HOST:PORT (TLS)", self.smtp_url),
            ));
        };
        if self.tls == EmailTls::None && (implicit || !loopback(&host)) {
            return Err((
                "email.tls",
                "tls = \"none\" sends the password and the message in the clear: it is for a test server on this machine (smtp://127.0.0.1:PORT) only".into(),
            ));
        }
        if !is_address(address_of(&self.from)) || self.from.contains(['\r', '\n']) {
            return Err((
                "email.from",
                format!("'{}' is not a sender address; use \"DR Team <dr@example.com>\" or \"dr@example.com\"", self.from),
            ));
        }
        if self.lists.is_empty() {
            return Err((
                "email.lists",
                "no recipients: add a list, e.g. [email.lists] customers = [\"ops@customer.example\"]".into(),
            ));
        }
        for (list, addresses) in &self.lists {
            if addresses.is_empty() {
                return Err(("email.lists", format!("'{list}' has no addresses")));
            }
            if let Some(bad) = addresses.iter().find(|a| !is_address(a)) {
                return Err((
                    "email.lists",
                    format!("'{list}': '{}' is not an email address (one plain address per entry, like ops@customer.example)", bad.escape_debug()),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_addresses_are_recipients() {
        for good in ["ops@customer.example", "a.b+c@x.co.uk"] {
            assert!(is_address(good), "{good}");
        }
        for bad in [
            "",
            "ops",
            "@x.com",
            "a@b",
            "a@b.com\r\nBcc: evil@x.com",
            "a b@x.com",
            "a@x.com,b@y.com",
            "<a@x.com>",
            "a@@x.com",
        ] {
            assert!(!is_address(bad), "{bad:?}");
        }
        assert_eq!(address_of("DR Team <dr@example.com>"), "dr@example.com");
        assert_eq!(address_of("dr@example.com"), "dr@example.com");
    }
}
