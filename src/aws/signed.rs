//! AWS calls drbot signs itself with the SDK's SigV4 signer and credentials, for the few
//! operations whose SDK crate would cost minutes of every cold build for one call: EC2's
//! `DescribeSecurityGroups`, Secrets Manager's `GetSecretValue`, and the presigned IAM
//! database authentication token of RDS (`rds-db:connect`). Sent over the same rustls as the
//! rest of drbot, bounded by the region's call timeout.

use std::time::{Duration, SystemTime};

use aws_sdk_rds::config::Credentials;
use aws_sdk_rds::config::ProvideCredentials;
use aws_sigv4::http_request::{
    sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};

use super::{AwsClients, AwsError};

/// The endpoint of `service` (as in `AWS_ENDPOINT_URL_<SERVICE>`), else `AWS_ENDPOINT_URL`,
/// else AWS's own `https://<host>.<region>.amazonaws.com/`.
pub fn endpoint(env_service: &str, host: &str, region: &str) -> String {
    [
        format!("AWS_ENDPOINT_URL_{env_service}"),
        "AWS_ENDPOINT_URL".to_string(),
    ]
    .iter()
    .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
    .map(|u| format!("{}/", u.trim_end_matches('/')))
    .unwrap_or_else(|| format!("https://{host}.{region}.amazonaws.com/"))
}

/// An error of `operation` on `resource`, with no request id.
pub fn failed(operation: &'static str, resource: &str, message: String) -> AwsError {
    AwsError {
        operation,
        resource: resource.to_string(),
        message,
        request_id: None,
        throttled: false,
        unknown: false,
    }
}

/// One POST to sign and send: `operation` on `resource`, to `service` (its signing name,
/// and the host `<service>.<region>.amazonaws.com` unless `AWS_ENDPOINT_URL_<ENV>` or
/// `AWS_ENDPOINT_URL` say otherwise).
pub struct Call<'a> {
    pub operation: &'static str,
    pub resource: &'a str,
    pub service: &'static str,
    /// The service's name in `AWS_ENDPOINT_URL_<ENV>`.
    pub env: &'static str,
    pub region: &'a str,
}

impl Call<'_> {
    /// Signs and sends `body` with `headers`: the status and the answer's text.
    pub async fn send(
        &self,
        aws: &AwsClients,
        headers: &[(&'static str, &str)],
        body: String,
    ) -> Result<(axum::http::StatusCode, String), AwsError> {
        send(aws, self, headers, body).await
    }
}

async fn credentials(
    aws: &AwsClients,
    call_of: (&'static str, &str),
) -> Result<Credentials, AwsError> {
    let (operation, resource) = call_of;
    match aws.base.credentials_provider() {
        Some(provider) => provider
            .provide_credentials()
            .await
            .map_err(|e| failed(operation, resource, format!("no AWS credentials: {e}"))),
        None => Err(failed(
            operation,
            resource,
            "no AWS credentials are configured".into(),
        )),
    }
}

/// Signs and sends `call`; answers the status and the body, or an error that says why
/// (no answer within the call timeout, unreachable, unsigned).
async fn send(
    aws: &AwsClients,
    call: &Call<'_>,
    headers: &[(&'static str, &str)],
    body: String,
) -> Result<(axum::http::StatusCode, String), AwsError> {
    let fail = |message: String| failed(call.operation, call.resource, message);
    let url = endpoint(call.env, call.service, call.region);
    let identity = credentials(aws, (call.operation, call.resource))
        .await?
        .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(call.region)
        .name(call.service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(format!("could not sign the request: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| fail(format!("could not sign the request: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| fail(format!("could not sign the request: {e}")))?
        .into_parts();
    let mut request = axum::http::Request::post(&url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| fail(e.to_string()))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| fail(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<Bytes>>(https);
    let exchange = async {
        let answer = client.request(request).await.map_err(|e| e.to_string())?;
        let status = answer.status();
        let bytes = answer
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok::<_, String>((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    let wait = aws.timeout_in(Some(call.region)).call;
    match crate::clock::timeout(wait, exchange).await {
        Err(_) => Err(fail(super::NO_ANSWER.to_string())),
        Ok(Err(e)) => Err(fail(format!("{} could not be reached: {e}", call.service))),
        Ok(Ok(answer)) => Ok(answer),
    }
}

/// How long an RDS IAM authentication token is valid (AWS's fixed 15 minutes).
pub const DB_TOKEN_LIFETIME: Duration = Duration::from_secs(900);

/// An RDS IAM database authentication token for `user` at `host:port` in `region`: the
/// presigned `rds-db:connect` request, as the AWS SDKs' `generate_db_auth_token` make it
/// (`HOST:PORT/?Action=connect&DBUser=USER&X-Amz-…`), used as the password over TLS.
pub async fn db_auth_token(
    aws: &AwsClients,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
) -> Result<String, AwsError> {
    const OPERATION: &str = "rds-db:connect";
    let resource = format!("{user}@{host}:{port}");
    let fail = |message: String| failed(OPERATION, &resource, message);
    let credentials = credentials(aws, (OPERATION, &resource)).await?;
    presign_db_token(credentials, region, host, port, user, SystemTime::now()).map_err(fail)
}

fn presign_db_token(
    credentials: Credentials,
    region: &str,
    host: &str,
    port: u16,
    user: &str,
    at: SystemTime,
) -> Result<String, String> {
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(DB_TOKEN_LIFETIME);
    let identity = credentials.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("rds-db")
        .time(at)
        .settings(settings)
        .build()
        .map_err(|e| format!("could not sign the token: {e}"))?
        .into();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("Action", "connect")
        .append_pair("DBUser", user)
        .finish();
    let url = format!("https://{host}:{port}/?{query}");
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("could not sign the token: {e}"))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| format!("could not sign the token: {e}"))?
        .into_parts();
    let mut token = url::Url::parse(&url).map_err(|e| e.to_string())?;
    {
        let mut pairs = token.query_pairs_mut();
        for (name, value) in instructions.params() {
            pairs.append_pair(name, value);
        }
    }
    Ok(token.as_str().trim_start_matches("https://").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_db_token_is_the_presigned_connect_request_without_its_scheme() {
        let creds = Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        );
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let token = presign_db_token(
            creds,
            "eu-central-1",
            "db.abc.eu-central-1.rds.amazonaws.com",
            5432,
            "drbot_verify",
            at,
        )
        .unwrap();
        assert!(
            token.starts_with(
                "db.abc.eu-central-1.rds.amazonaws.com:5432/?Action=connect&DBUser=drbot_verify&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20251124%2Feu-central-1%2Frds-db%2Faws4_request&X-Amz-Date=20251124T160000Z&X-Amz-Expires=900"
            ),
            "{token}"
        );
        assert!(
            token.contains("&X-Amz-SignedHeaders=host&X-Amz-Signature="),
            "{token}"
        );
        let signature = token.rsplit("X-Amz-Signature=").next().unwrap();
        assert_eq!(signature.len(), 64);
        assert!(signature.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
