//! A WAF web ACL behind a port named for drbot's rate limit: drbot adds or removes its own
//! rate-based rule and passes every other rule back exactly as it read it. IAM:
//! `wafv2:GetWebACL`, `wafv2:UpdateWebACL` (the configured web ACL only).

use aws_sdk_wafv2::error::BuildError;
use aws_sdk_wafv2::operation::RequestId;
use aws_sdk_wafv2::types::{
    BlockAction, RateBasedStatement, RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope,
    Statement, VisibilityConfig,
};
use serde::{Deserialize, Serialize};

use super::waf::WriteError;
use super::AwsError;
use crate::config::WebAclRef;

/// The name of drbot's rule (and its CloudWatch metric).
pub const DRBOT_RULE: &str = "drbot-rate-limit";

/// What the web ACL holds, as far as a plan needs to show and compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclView {
    /// Every rule as `(name, priority)`, in the ACL's order.
    pub rules: Vec<(String, i32)>,
    /// drbot's rule's limit, when the rule is there.
    pub drbot_limit: Option<i64>,
}

fn resource(acl: &WebAclRef) -> String {
    format!("web ACL {} ({})", acl.name, acl.id)
}

/// The rule drbot adds: block a client IP above `limit` requests per 5 minutes.
pub fn drbot_rule(limit: i64, priority: i32) -> Result<Rule, BuildError> {
    let statement = Statement::builder()
        .rate_based_statement(
            RateBasedStatement::builder()
                .limit(limit)
                .aggregate_key_type(RateBasedStatementAggregateKeyType::Ip)
                .build()?,
        )
        .build();
    Rule::builder()
        .name(DRBOT_RULE)
        .priority(priority)
        .action(
            RuleAction::builder()
                .block(BlockAction::builder().build())
                .build(),
        )
        .statement(statement)
        .visibility_config(
            VisibilityConfig::builder()
                .sampled_requests_enabled(true)
                .cloud_watch_metrics_enabled(true)
                .metric_name(DRBOT_RULE)
                .build()?,
        )
        .build()
}

#[allow(async_fn_in_trait)]
pub trait RateLimit {
    async fn read_acl(&self, acl: &WebAclRef) -> Result<AclView, AwsError>;
    /// Reads the ACL and writes it back with drbot's rule set to `limit` (or removed for
    /// `None`) under the LockToken just read; `Conflict` when someone wrote in between.
    async fn write_rate_rule(
        &self,
        acl: &WebAclRef,
        limit: Option<i64>,
    ) -> Result<String, WriteError>;
}

/// `GetWebACL` of `acl`.
async fn get_acl(
    wafv2: &aws_sdk_wafv2::Client,
    acl: &WebAclRef,
) -> Result<aws_sdk_wafv2::operation::get_web_acl::GetWebAclOutput, AwsError> {
    wafv2
        .get_web_acl()
        .name(&acl.name)
        .id(&acl.id)
        .scope(Scope::from(acl.scope.as_str()))
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("GetWebACL", &resource(acl), &e))
}

impl RateLimit for aws_sdk_wafv2::Client {
    async fn read_acl(&self, acl: &WebAclRef) -> Result<AclView, AwsError> {
        let out = get_acl(self, acl).await?;
        let rules = out.web_acl().map(|w| w.rules()).unwrap_or_default();
        Ok(AclView {
            rules: rules
                .iter()
                .map(|r| (r.name().to_string(), r.priority()))
                .collect(),
            drbot_limit: rules
                .iter()
                .find(|r| r.name() == DRBOT_RULE)
                .and_then(|r| r.statement())
                .and_then(|s| s.rate_based_statement())
                .map(|s| s.limit()),
        })
    }

    async fn write_rate_rule(
        &self,
        acl: &WebAclRef,
        limit: Option<i64>,
    ) -> Result<String, WriteError> {
        let out = get_acl(self, acl).await.map_err(WriteError::Aws)?;
        let token = out.lock_token().unwrap_or_default().to_string();
        let Some(current) = out.web_acl() else {
            return Err(WriteError::Aws(AwsError::not_found(
                "GetWebACL",
                &resource(acl),
                "the web ACL came back empty",
            )));
        };
        let mut rules: Vec<Rule> = current
            .rules()
            .iter()
            .filter(|r| r.name() != DRBOT_RULE)
            .cloned()
            .collect();
        if let Some(limit) = limit {
            // drbot's rule keeps its priority, else goes after every other rule.
            let priority = current
                .rules()
                .iter()
                .find(|r| r.name() == DRBOT_RULE)
                .map(|r| r.priority())
                .unwrap_or_else(|| {
                    rules
                        .iter()
                        .map(|r| r.priority())
                        .max()
                        .map_or(0, |p| p + 1)
                });
            let rule = drbot_rule(limit, priority).map_err(|why| {
                let why = why.to_string();
                WriteError::Aws(AwsError::not_found("UpdateWebACL", &resource(acl), &why))
            })?;
            rules.push(rule);
        }
        let call = self
            .update_web_acl()
            .name(&acl.name)
            .id(&acl.id)
            .scope(Scope::from(acl.scope.as_str()))
            .set_default_action(current.default_action().cloned())
            .set_description(current.description().map(str::to_string))
            .set_rules(Some(rules))
            .set_visibility_config(current.visibility_config().cloned())
            .set_custom_response_bodies(current.custom_response_bodies().cloned())
            .set_captcha_config(current.captcha_config().cloned())
            .set_challenge_config(current.challenge_config().cloned())
            .set_token_domains(Some(current.token_domains().to_vec()).filter(|d| !d.is_empty()))
            .set_association_config(current.association_config().cloned())
            .lock_token(token);
        let sent: Result<String, AwsError> =
            async { super::change!(aws_sdk_wafv2, "UpdateWebACL", resource(acl), call) }.await;
        sent.map_err(WriteError::from)
    }
}
