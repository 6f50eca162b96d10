//! EC2's Query API for one read: which of some VPC security groups exist
//! (`DescribeSecurityGroups` with a `group-id` filter, which answers the existing ones and
//! never fails for a missing one). Signed with the SDK's SigV4 signer and credentials, sent
//! over the same rustls as the rest of drbot, to `AWS_ENDPOINT_URL_EC2`, else
//! `AWS_ENDPOINT_URL`, else `https://ec2.<region>.amazonaws.com`. IAM:
//! `ec2:DescribeSecurityGroups` (EC2 allows no narrower resource than `*`).

use std::time::SystemTime;

use aws_sdk_rds::config::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use axum::body::Bytes;
use http_body_util::{BodyExt, Full};

use super::{AwsClients, AwsError};

const OPERATION: &str = "DescribeSecurityGroups";

fn endpoint(region: &str) -> String {
    ["AWS_ENDPOINT_URL_EC2", "AWS_ENDPOINT_URL"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .map(|u| format!("{}/", u.trim_end_matches('/')))
        .unwrap_or_else(|| format!("https://ec2.{region}.amazonaws.com/"))
}

fn failed(resource: &str, message: String) -> AwsError {
    AwsError {
        operation: OPERATION,
        resource: resource.to_string(),
        message,
        request_id: None,
        throttled: false,
        unknown: false,
    }
}

/// The form body asking for `ids`.
fn query(ids: &[String]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", OPERATION)
        .append_pair("Version", "2016-11-15")
        .append_pair("Filter.1.Name", "group-id");
    for (i, id) in ids.iter().enumerate() {
        form.append_pair(&format!("Filter.1.Value.{}", i + 1), id);
    }
    form.finish()
}

/// The `<tag>` values of an XML answer, in order.
fn values<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find(&close) else { break };
        out.push(rest[..end].trim());
        rest = &rest[end..];
    }
    out
}

/// Of `ids`, those EC2 does not have in `region`.
pub async fn missing_security_groups(
    aws: &AwsClients,
    region: &str,
    ids: &[String],
) -> Result<Vec<String>, AwsError> {
    let resource = format!("security groups {}", ids.join(", "));
    let credentials = match aws.base.credentials_provider() {
        Some(provider) => provider
            .provide_credentials()
            .await
            .map_err(|e| failed(&resource, format!("no AWS credentials: {e}")))?,
        None => {
            return Err(failed(
                &resource,
                "no AWS credentials are configured".into(),
            ))
        }
    };
    let identity = credentials.into();
    let url = endpoint(region);
    let body = query(ids);
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("ec2")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| failed(&resource, format!("could not sign the request: {e}")))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        &url,
        std::iter::once(("content-type", content_type)),
        SignableBody::Bytes(body.as_bytes()),
    )
    .map_err(|e| failed(&resource, format!("could not sign the request: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| failed(&resource, format!("could not sign the request: {e}")))?
        .into_parts();
    let mut request = axum::http::Request::post(&url).header("content-type", content_type);
    for (name, value) in instructions.headers() {
        request = request.header(name, value);
    }
    let request = request
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| failed(&resource, e.to_string()))?;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| failed(&resource, e.to_string()))?
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
    let wait = aws.timeout_in(Some(region)).call;
    let (status, text) = match crate::clock::timeout(wait, exchange).await {
        Err(_) => return Err(failed(&resource, super::NO_ANSWER.to_string())),
        Ok(Err(e)) => return Err(failed(&resource, format!("EC2 could not be reached: {e}"))),
        Ok(Ok(answer)) => answer,
    };
    if !status.is_success() {
        let code = values(&text, "Code").first().copied().unwrap_or("error");
        let message = values(&text, "Message").first().copied().unwrap_or("");
        let mut e = failed(&resource, format!("{code}: {message}"));
        e.request_id = values(&text, "RequestID").first().map(|s| s.to_string());
        e.throttled = code == "RequestLimitExceeded";
        return Err(e);
    }
    let held = values(&text, "groupId");
    Ok(ids
        .iter()
        .filter(|id| !held.contains(&id.as_str()))
        .cloned()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_filters_by_group_id_and_the_answer_reads_its_groups() {
        let ids = vec!["sg-1".to_string(), "sg-2".to_string()];
        assert_eq!(
            query(&ids),
            "Action=DescribeSecurityGroups&Version=2016-11-15&Filter.1.Name=group-id&Filter.1.Value.1=sg-1&Filter.1.Value.2=sg-2"
        );
        let xml = "<DescribeSecurityGroupsResponse><securityGroupInfo><item><groupId>sg-2</groupId><ipPermissions><item><groups><item><groupId>sg-9</groupId></item></groups></item></ipPermissions></item></securityGroupInfo></DescribeSecurityGroupsResponse>";
        assert_eq!(values(xml, "groupId"), ["sg-2", "sg-9"]);
    }
}
