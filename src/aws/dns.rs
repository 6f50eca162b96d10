//! Route 53 behind a port named for a DNS failover. IAM: `route53:ListResourceRecordSets`,
//! `route53:ChangeResourceRecordSets` (the configured zones), `route53:GetChange`.

use aws_sdk_route53::operation::RequestId;
use aws_sdk_route53::types::{
    AliasTarget, Change, ChangeAction, ChangeBatch, ChangeStatus, ResourceRecord,
    ResourceRecordSet, RrType,
};
use serde::{Deserialize, Serialize};

use super::AwsError;
use crate::config::RecordType;

/// What a record points to now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordValue {
    /// The CNAME's target, or the alias target's DNS name.
    pub target: String,
    /// Alias only: the target's hosted zone.
    pub alias_zone: Option<String>,
    /// CNAME only.
    pub ttl: Option<i64>,
}

/// Normalises a DNS name for comparison: lowercase, one trailing dot, no `dualstack.`.
pub fn same_name(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().to_ascii_lowercase();
        let s = s.strip_prefix("dualstack.").unwrap_or(&s).to_string();
        format!("{}.", s.trim_end_matches('.'))
    };
    norm(a) == norm(b)
}

fn rr_type(kind: RecordType) -> RrType {
    match kind {
        RecordType::Cname => RrType::Cname,
        RecordType::A => RrType::A,
    }
}

/// The Route 53 calls a failover makes.
#[allow(async_fn_in_trait)]
pub trait DnsFailover {
    async fn record(
        &self,
        zone: &str,
        name: &str,
        kind: RecordType,
    ) -> Result<Option<RecordValue>, AwsError>;
    /// UPSERTs the record to `to`; returns (change id, AWS request id).
    async fn point(
        &self,
        zone: &str,
        name: &str,
        kind: RecordType,
        to: &RecordValue,
        comment: &str,
    ) -> Result<(String, String), AwsError>;
    /// `true` once the change is INSYNC.
    async fn in_sync(&self, change: &str) -> Result<bool, AwsError>;
}

impl DnsFailover for aws_sdk_route53::Client {
    async fn record(
        &self,
        zone: &str,
        name: &str,
        kind: RecordType,
    ) -> Result<Option<RecordValue>, AwsError> {
        let resource = format!("{zone}/{name}");
        let out = self
            .list_resource_record_sets()
            .hosted_zone_id(zone)
            .start_record_name(name)
            .start_record_type(rr_type(kind))
            .max_items(1)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListResourceRecordSets", &resource, &e))?;
        Ok(out
            .resource_record_sets()
            .iter()
            .find(|r| same_name(r.name(), name) && r.r#type() == &rr_type(kind))
            .and_then(|r| match kind {
                RecordType::Cname => r.resource_records().first().map(|v| RecordValue {
                    target: v.value().to_string(),
                    alias_zone: None,
                    ttl: r.ttl(),
                }),
                RecordType::A => r.alias_target().map(|a| RecordValue {
                    target: a.dns_name().to_string(),
                    alias_zone: Some(a.hosted_zone_id().to_string()),
                    ttl: None,
                }),
            }))
    }

    async fn point(
        &self,
        zone: &str,
        name: &str,
        kind: RecordType,
        to: &RecordValue,
        comment: &str,
    ) -> Result<(String, String), AwsError> {
        let resource = format!("{zone}/{name}");
        let fail = |e: aws_sdk_route53::error::BuildError| AwsError {
            operation: "ChangeResourceRecordSets",
            resource: resource.clone(),
            message: format!("the change could not be built: {e}"),
            request_id: None,
            throttled: false,
            unknown: false,
        };
        let mut set = ResourceRecordSet::builder()
            .name(name)
            .r#type(rr_type(kind));
        set = match kind {
            RecordType::Cname => set.ttl(to.ttl.unwrap_or(60)).resource_records(
                ResourceRecord::builder()
                    .value(&to.target)
                    .build()
                    .map_err(fail)?,
            ),
            RecordType::A => set.alias_target(
                AliasTarget::builder()
                    .dns_name(&to.target)
                    .hosted_zone_id(to.alias_zone.clone().unwrap_or_default())
                    .evaluate_target_health(true)
                    .build()
                    .map_err(fail)?,
            ),
        };
        let change = Change::builder()
            .action(ChangeAction::Upsert)
            .resource_record_set(set.build().map_err(fail)?)
            .build()
            .map_err(fail)?;
        let batch = ChangeBatch::builder()
            .comment(comment)
            .changes(change)
            .build()
            .map_err(fail)?;
        let call = self
            .change_resource_record_sets()
            .hosted_zone_id(zone)
            .change_batch(batch);
        let out = super::mutate("ChangeResourceRecordSets", &resource, || {
            super::once!(aws_sdk_route53, call.clone())
        })
        .await?;
        let id = out
            .change_info()
            .map(|c| c.id().to_string())
            .unwrap_or_default();
        Ok((id, out.request_id().unwrap_or("unknown").to_string()))
    }

    async fn in_sync(&self, change: &str) -> Result<bool, AwsError> {
        let out = self
            .get_change()
            .id(change)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetChange", change, &e))?;
        Ok(out.change_info().map(|c| c.status()) == Some(&ChangeStatus::Insync))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_as_dns_does() {
        assert!(same_name("www.Example.com", "www.example.com."));
        assert!(same_name(
            "dualstack.alb-1.us-east-1.elb.amazonaws.com.",
            "alb-1.us-east-1.elb.amazonaws.com"
        ));
        assert!(!same_name("a.example.com", "b.example.com"));
    }
}
