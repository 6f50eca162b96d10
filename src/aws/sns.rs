//! SNS, for alarms delivered over HTTPS (`POST /aws/sns`): the signing certificates (fetched
//! only over HTTPS, from a host `alarms::sns::certificate_url_allowed` accepts, and kept) and
//! `ConfirmSubscription` with `AuthenticateOnUnsubscribe=true`, so nobody can unsubscribe drbot
//! with the unsigned link. IAM: `sns:ConfirmSubscription` on the configured topics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty};

use super::signed::Call;
use super::{AwsClients, AwsError};

/// Tests only: a CA (PEM file) trusted for the certificates' HTTPS fetch instead of the
/// public roots.
pub const TEST_CA_VAR: &str = "DRBOT_TEST_SNS_CA";

/// Certificates already fetched, by URL.
fn kept() -> &'static Mutex<HashMap<String, Arc<Vec<u8>>>> {
    static KEPT: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    KEPT.get_or_init(Default::default)
}

/// The most a certificate may weigh.
const CERTIFICATE_MAX: usize = 16 * 1024;

/// The signing certificate at `url` (PEM), from the cache or fetched over HTTPS within
/// `timeout`.
pub async fn signing_certificate(
    url: &url::Url,
    timeout: std::time::Duration,
) -> Result<Arc<Vec<u8>>, String> {
    if let Some(pem) = kept()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(url.as_str())
    {
        return Ok(pem.clone());
    }
    let roots = match std::env::var_os(TEST_CA_VAR) {
        Some(path) => {
            use rustls::pki_types::pem::PemObject;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::CertificateDer::pem_file_iter(&path)
                .map_err(|e| format!("{TEST_CA_VAR}: {e}"))?
                .flatten()
            {
                roots.add(cert).map_err(|e| format!("{TEST_CA_VAR}: {e}"))?;
            }
            Some(roots)
        }
        None => None,
    };
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let https = match roots {
        Some(roots) => builder.with_tls_config(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth(),
        ),
        None => builder
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| e.to_string())?,
    }
    .https_only()
    .enable_http1()
    .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<Bytes>>(https);
    let fetch = async {
        let uri: axum::http::Uri = url.as_str().parse().map_err(|_| "not a URI".to_string())?;
        let answer = client
            .get(uri)
            .await
            .map_err(|e| format!("could not fetch it: {e}"))?;
        if !answer.status().is_success() {
            return Err(format!("fetching it answered HTTP {}", answer.status()));
        }
        let body = http_body_util::Limited::new(answer.into_body(), CERTIFICATE_MAX)
            .collect()
            .await
            .map_err(|e| format!("could not read it: {e}"))?
            .to_bytes();
        Ok(body.to_vec())
    };
    let pem = crate::clock::timeout(timeout, fetch)
        .await
        .map_err(|_| "fetching it did not answer in time".to_string())??;
    let pem = Arc::new(pem);
    kept()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(url.to_string(), pem.clone());
    Ok(pem)
}

/// Confirms drbot's subscription to `topic` with SNS's `token`; answers the subscription ARN.
pub async fn confirm_subscription(
    aws: &AwsClients,
    topic: &str,
    token: &str,
) -> Result<String, AwsError> {
    let region = topic.split(':').nth(3).unwrap_or_default().to_string();
    let resource = format!("topic {topic}");
    let call = Call {
        operation: "ConfirmSubscription",
        resource: &resource,
        service: "sns",
        env: "SNS",
        region: &region,
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "ConfirmSubscription")
        .append_pair("Version", "2010-03-31")
        .append_pair("TopicArn", topic)
        .append_pair("Token", token)
        .append_pair("AuthenticateOnUnsubscribe", "true")
        .finish();
    let form = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let (status, text) = call.send(aws, &form, body).await?;
    let value = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(text[start..end].trim().to_string())
    };
    if !status.is_success() {
        return Err(super::signed::failed(
            "ConfirmSubscription",
            &resource,
            format!(
                "{}: {}",
                value("Code").unwrap_or_else(|| format!("HTTP {status}")),
                value("Message").unwrap_or_default()
            ),
        ));
    }
    Ok(value("SubscriptionArn").unwrap_or_default())
}
