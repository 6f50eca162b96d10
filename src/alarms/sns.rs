//! SNS's JSON envelope (SPEC §16) and the CloudWatch alarm inside it: what drbot reads of a
//! message, whichever intake brought it. Pure; fuzzed with the other parsers of untrusted
//! input.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// SNS's envelope, as delivered to SQS (not raw) and to an HTTPS endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Envelope {
    #[serde(rename = "Type")]
    pub kind: String,
    pub message_id: String,
    pub topic_arn: String,
    pub message: String,
    #[serde(default)]
    pub timestamp: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    #[serde(default)]
    pub signature_version: Option<String>,
    #[serde(default)]
    pub signature: Option<String>,
    #[serde(default, rename = "SigningCertURL")]
    pub signing_cert_url: Option<String>,
    #[serde(default, rename = "SubscribeURL")]
    pub subscribe_url: Option<String>,
    #[serde(default)]
    pub token: Option<String>,
}

/// A CloudWatch alarm's state change, as drbot records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alarm {
    pub message_id: String,
    pub topic: String,
    pub name: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: String,
    pub changed_at: DateTime<Utc>,
    /// `<Namespace>/<MetricName>`, when the alarm watches one metric.
    pub metric: Option<String>,
    pub region: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct AlarmJson {
    alarm_name: String,
    new_state_value: String,
    #[serde(default)]
    new_state_reason: String,
    #[serde(default)]
    state_change_time: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    trigger: Option<Trigger>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Trigger {
    #[serde(default)]
    metric_name: Option<String>,
    #[serde(default)]
    namespace: Option<String>,
}

/// The longest alarm name and reason drbot keeps (CloudWatch allows 255 and 1023).
const NAME_MAX: usize = 255;
const REASON_MAX: usize = 1023;

impl Envelope {
    pub fn parse(body: &str) -> Result<Self, String> {
        let envelope: Envelope = serde_json::from_str(body)
            .map_err(|e| format!("not an SNS message (Type, MessageId, TopicArn, Message): {e}"))?;
        if envelope.message_id.is_empty() || envelope.message_id.len() > 100 {
            return Err("the MessageId is empty or too long".into());
        }
        Ok(envelope)
    }

    /// [`Envelope::alarm`], received now.
    pub fn alarm_now(&self) -> Result<Alarm, String> {
        self.alarm(crate::clock::now())
    }

    /// The CloudWatch alarm a `Notification` carries; `received` stands in for a missing
    /// or unreadable state-change time.
    pub fn alarm(&self, received: DateTime<Utc>) -> Result<Alarm, String> {
        if self.kind != "Notification" {
            return Err(format!("a `{}` message, not a Notification", self.kind));
        }
        let json: AlarmJson = serde_json::from_str(&self.message).map_err(|e| {
            format!("the message is not a CloudWatch alarm (AlarmName, NewStateValue): {e}")
        })?;
        if json.alarm_name.is_empty() || json.alarm_name.chars().count() > NAME_MAX {
            return Err("the AlarmName is empty or longer than 255 characters".into());
        }
        if !matches!(
            json.new_state_value.as_str(),
            "ALARM" | "OK" | "INSUFFICIENT_DATA"
        ) {
            return Err(format!(
                "NewStateValue `{}` is not ALARM, OK or INSUFFICIENT_DATA",
                json.new_state_value.chars().take(40).collect::<String>()
            ));
        }
        let changed_at = json
            .state_change_time
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(received);
        let metric = json
            .trigger
            .and_then(|t| match (t.namespace, t.metric_name) {
                (Some(ns), Some(m)) => Some(format!("{ns}/{m}")),
                _ => None,
            });
        Ok(Alarm {
            message_id: self.message_id.clone(),
            topic: self.topic_arn.clone(),
            name: json.alarm_name,
            state: json.new_state_value,
            reason: json.new_state_reason.chars().take(REASON_MAX).collect(),
            changed_at,
            metric,
            region: json.region,
        })
    }
}

/// The text SNS signs for a message: `key\nvalue\n` for each field of its type, in this
/// order (SNS's documentation; `Subject` only when present).
pub fn string_to_sign(e: &Envelope) -> Result<String, String> {
    let mut out = String::new();
    let mut add = |key: &str, value: Option<&str>| -> Result<(), String> {
        let value = value.ok_or_else(|| format!("the message has no `{key}`"))?;
        out.push_str(key);
        out.push('\n');
        out.push_str(value);
        out.push('\n');
        Ok(())
    };
    match e.kind.as_str() {
        "Notification" => {
            add("Message", Some(&e.message))?;
            add("MessageId", Some(&e.message_id))?;
            if e.subject.is_some() {
                add("Subject", e.subject.as_deref())?;
            }
            add("Timestamp", e.timestamp.as_deref())?;
            add("TopicArn", Some(&e.topic_arn))?;
            add("Type", Some(&e.kind))?;
        }
        "SubscriptionConfirmation" | "UnsubscribeConfirmation" => {
            add("Message", Some(&e.message))?;
            add("MessageId", Some(&e.message_id))?;
            add("SubscribeURL", e.subscribe_url.as_deref())?;
            add("Timestamp", e.timestamp.as_deref())?;
            add("Token", e.token.as_deref())?;
            add("TopicArn", Some(&e.topic_arn))?;
            add("Type", Some(&e.kind))?;
        }
        other => return Err(format!("an SNS message of type `{other}`")),
    }
    Ok(out)
}

/// Is `url` where SNS keeps its signing certificates — `https://sns.<region>.amazonaws.com`
/// (or `.amazonaws.com.cn`), a `.pem` — or under `test_base` (tests only)?
pub fn certificate_url_allowed(url: &str, test_base: Option<&str>) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|_| "SigningCertURL is not a URL".to_string())?;
    // Tests only, and only ever a stand-in on this machine.
    let loopback = |base: &str| {
        url::Url::parse(base).is_ok_and(|b| {
            b.scheme() == "https"
                && matches!(b.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"))
        })
    };
    if let Some(base) = test_base.filter(|b| loopback(b)) {
        if url.starts_with(base) && parsed.scheme() == "https" {
            return Ok(parsed);
        }
    }
    let host = parsed.host_str().unwrap_or("");
    let region_ok = |r: &str| {
        !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let sns_host = host
        .strip_prefix("sns.")
        .and_then(|rest| {
            rest.strip_suffix(".amazonaws.com")
                .or_else(|| rest.strip_suffix(".amazonaws.com.cn"))
        })
        .is_some_and(region_ok);
    if parsed.scheme() != "https"
        || !sns_host
        || parsed.port().is_some()
        || !parsed.username().is_empty()
        || !parsed.path().ends_with(".pem")
    {
        return Err(format!(
            "SigningCertURL `{}` is not an SNS certificate (https://sns.<region>.amazonaws.com/….pem)",
            url.chars().take(200).collect::<String>()
        ));
    }
    Ok(parsed)
}

/// SHA1withRSA, for `SignatureVersion` 1 (webpki offers only SHA-2).
#[derive(Debug)]
struct RsaSha1;

impl rustls::pki_types::SignatureVerificationAlgorithm for RsaSha1 {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), rustls::pki_types::InvalidSignature> {
        ring::signature::UnparsedPublicKey::new(
            &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
            public_key,
        )
        .verify(message, signature)
        .map_err(|_| rustls::pki_types::InvalidSignature)
    }

    fn public_key_alg_id(&self) -> rustls::pki_types::AlgorithmIdentifier {
        rustls::pki_types::alg_id::RSA_ENCRYPTION
    }

    fn signature_alg_id(&self) -> rustls::pki_types::AlgorithmIdentifier {
        rustls::pki_types::alg_id::RSA_PKCS1_SHA256
    }
}

/// Checks the message's signature with the signing certificate (PEM).
pub fn verify(e: &Envelope, certificate_pem: &[u8]) -> Result<(), String> {
    use base64::Engine;
    use rustls::pki_types::pem::PemObject;
    let signed = string_to_sign(e)?;
    let signature = e.signature.as_deref().ok_or("the message is not signed")?;
    let signature = base64::engine::general_purpose::STANDARD
        .decode(signature.trim())
        .map_err(|_| "the signature is not base64".to_string())?;
    let der = rustls::pki_types::CertificateDer::from_pem_slice(certificate_pem)
        .map_err(|_| "the signing certificate is not a PEM certificate".to_string())?;
    let cert = webpki::EndEntityCert::try_from(&der)
        .map_err(|e| format!("the signing certificate cannot be read: {e}"))?;
    let checked = match e.signature_version.as_deref() {
        Some("1") => cert.verify_signature(&RsaSha1, signed.as_bytes(), &signature),
        Some("2") => cert.verify_signature(
            webpki::ring::RSA_PKCS1_2048_8192_SHA256,
            signed.as_bytes(),
            &signature,
        ),
        other => {
            return Err(format!(
                "SignatureVersion {other:?}: drbot checks versions 1 and 2"
            ))
        }
    };
    checked.map_err(|_| "the signature does not match the message".to_string())
}

/// CloudWatch's `2026-12-04T19:00:00.000+0000`, or RFC 3339.
fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z")
        .or_else(|_| DateTime::parse_from_rfc3339(text))
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub fn envelope(message: &str) -> String {
        serde_json::json!({
            "Type": "Notification",
            "MessageId": "5f1c-0001",
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:aifai-security-alerts",
            "Subject": "ALARM: \"aifai-api-5xx\" in EU (Ireland)",
            "Message": message,
            "Timestamp": "2026-12-04T19:00:01.000Z",
            "SignatureVersion": "1",
            "Signature": "c2ln",
            "SigningCertURL": "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem",
        })
        .to_string()
    }

    #[test]
    fn a_cloudwatch_alarm_is_read_from_sns_envelope() {
        let message = r#"{"AlarmName":"aifai-api-5xx","NewStateValue":"ALARM","NewStateReason":"Threshold Crossed: 1 datapoint [12.0] was greater than 5.0","StateChangeTime":"2026-12-04T19:00:00.000+0000","Region":"EU (Ireland)","Trigger":{"MetricName":"HTTPCode_Target_5XX_Count","Namespace":"AWS/ApplicationELB"}}"#;
        let now = Utc::now();
        let alarm = Envelope::parse(&envelope(message))
            .unwrap()
            .alarm(now)
            .unwrap();
        assert_eq!(alarm.name, "aifai-api-5xx");
        assert_eq!(alarm.state, "ALARM");
        assert_eq!(alarm.changed_at.to_rfc3339(), "2026-12-04T19:00:00+00:00");
        assert_eq!(
            alarm.metric.as_deref(),
            Some("AWS/ApplicationELB/HTTPCode_Target_5XX_Count")
        );
        assert_eq!(alarm.message_id, "5f1c-0001");
    }

    #[test]
    fn certificates_come_only_from_sns_over_https() {
        for ok in [
            "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem",
            "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        ] {
            assert!(certificate_url_allowed(ok, None).is_ok(), "{ok}");
        }
        for bad in [
            "http://sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com.evil.com/x.pem",
            "https://evil.com/sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com:8443/x.pem",
            "https://user@sns.eu-west-1.amazonaws.com/x.pem",
            "https://sns.eu-west-1.amazonaws.com/x.txt",
            "https://sns..amazonaws.com/x.pem",
            "https://s3.amazonaws.com/x.pem",
            "not a url",
        ] {
            assert!(certificate_url_allowed(bad, None).is_err(), "{bad}");
        }
        // The tests' override names a stand-in on this machine, nothing else.
        let local = "https://localhost:4443/cert.pem";
        assert!(certificate_url_allowed(local, Some("https://localhost:4443/")).is_ok());
        assert!(certificate_url_allowed(local, None).is_err());
        let remote = "https://evil.com/cert.pem";
        assert!(certificate_url_allowed(remote, Some("https://evil.com/")).is_err());
    }

    #[test]
    fn the_string_to_sign_is_snss() {
        let e = Envelope::parse(&envelope(r#"{"AlarmName":"x","NewStateValue":"OK"}"#)).unwrap();
        let text = string_to_sign(&e).unwrap();
        assert!(text.starts_with("Message\n{\"AlarmName\""), "{text}");
        assert!(text.ends_with("TopicArn\narn:aws:sns:eu-west-1:123456789012:aifai-security-alerts\nType\nNotification\n"), "{text}");
        assert!(
            text.contains("\nSubject\nALARM: \"aifai-api-5xx\" in EU (Ireland)\nTimestamp\n"),
            "{text}"
        );
        // A signature that is not base64, or no certificate: refused, never a panic.
        assert!(verify(&e, b"not a certificate").is_err());
    }

    #[test]
    fn anything_else_is_refused_with_its_reason() {
        let now = Utc::now();
        for (body, says) in [
            ("not json", "not an SNS message"),
            (r#"{"Type":"Notification"}"#, "not an SNS message"),
        ] {
            assert!(Envelope::parse(body).unwrap_err().contains(says), "{body}");
        }
        for (message, says) in [
            ("hello", "not a CloudWatch alarm"),
            (r#"{"AlarmName":"","NewStateValue":"ALARM"}"#, "empty"),
            (
                r#"{"AlarmName":"x","NewStateValue":"ON FIRE"}"#,
                "is not ALARM",
            ),
        ] {
            let e = Envelope::parse(&envelope(message))
                .unwrap()
                .alarm(now)
                .unwrap_err();
            assert!(e.contains(says), "{message}: {e}");
        }
        // A missing state-change time is the time it was received.
        let alarm = Envelope::parse(&envelope(r#"{"AlarmName":"x","NewStateValue":"OK"}"#))
            .unwrap()
            .alarm(now)
            .unwrap();
        assert_eq!(alarm.changed_at, now);
    }
}
