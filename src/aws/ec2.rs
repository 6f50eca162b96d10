//! EC2's Query API for one read: which of some VPC security groups exist
//! (`DescribeSecurityGroups` with a `group-id` filter, which answers the existing ones and
//! never fails for a missing one). Signed with the SDK's SigV4 signer and credentials, sent
//! over the same rustls as the rest of drbot, to `AWS_ENDPOINT_URL_EC2`, else
//! `AWS_ENDPOINT_URL`, else `https://ec2.<region>.amazonaws.com`. IAM:
//! `ec2:DescribeSecurityGroups` (EC2 allows no narrower resource than `*`).

use super::signed::{self, Call};
use super::AwsClients;
use super::AwsError;

const OPERATION: &str = "DescribeSecurityGroups";

fn failed(resource: &str, message: String) -> AwsError {
    signed::failed(OPERATION, resource, message)
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
    let call = Call {
        operation: OPERATION,
        resource: &resource,
        service: "ec2",
        env: "EC2",
        region,
    };
    let form = [(
        "content-type",
        "application/x-www-form-urlencoded; charset=utf-8",
    )];
    let (status, text) = call.send(aws, &form, query(ids)).await?;
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
