//! `/dr waf rate-limit on|off [--limit <n>]`: the plan's "enable AWS WAF protection" (DDoS).
//! Adds, changes or removes drbot's own rate-based rule (`drbot-rate-limit`: block a client
//! IP above `<n>` requests per 5 minutes) in `[waf.web_acl]`, passing every other rule back
//! exactly as read; `GetWebACL`/`UpdateWebACL` under the LockToken, retried on
//! `WAFOptimisticLockException` like the IP sets.
//!
//! AWS calls: GetWebACL (plan, re-check, each write), UpdateWebACL (execute).
//! IAM: `wafv2:GetWebACL`, `wafv2:UpdateWebACL` on the configured web ACL.
//! Undo: `/dr waf rate-limit off` (or `on` again). Approval: `officer`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PlanFailure;
use crate::aws::waf::WriteError;
use crate::aws::web_acl::{AclView, RateLimit, DRBOT_RULE};
use crate::config::{Settings, WebAclRef, RATE_LIMIT_RANGE};
use crate::gate::execute::Run;
use crate::router::{Invalid, ParsedCommand, Value};
use crate::store::RequestState;

#[derive(Debug, Clone)]
pub struct RateLimitArgs {
    pub acl: WebAclRef,
    /// `None`: off.
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimitPlan {
    pub acl: String,
    pub acl_id: String,
    pub current: AclView,
    pub limit: Option<i64>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<RateLimitArgs, Invalid> {
    let on = match cmd.arg_word("state") {
        Some("on") => true,
        Some("off") => false,
        Some(other) => return Err(format!("`{other}`: write `on` or `off`").into()),
        None => return Err("missing `on` or `off`".into()),
    };
    let acl = settings
        .waf
        .web_acl
        .clone()
        .ok_or("no `[waf.web_acl]` is configured (name, id, scope, rate_limit): drbot does not know which web ACL to protect")?;
    let limit = match cmd.flag("limit") {
        None => acl.rate_limit,
        Some(Value::Integer(n)) if RATE_LIMIT_RANGE.contains(&(*n as i64)) && *n <= i64::MAX as u64 => *n as i64,
        Some(Value::Integer(n)) => {
            return Err(format!(
                "`--limit {n}` is outside what WAF allows: 10 to 2000000000 requests per 5 minutes per client IP"
            ).into())
        }
        Some(_) => return Err("`--limit` needs a whole number of requests per 5 minutes".into()),
    };
    if !on && cmd.flag("limit").is_some() {
        return Err("`--limit` goes with `on`; `off` removes drbot's rule".into());
    }
    Ok(RateLimitArgs {
        acl,
        limit: on.then_some(limit),
    })
}

pub async fn plan(
    waf: &impl RateLimit,
    args: &RateLimitArgs,
) -> Result<(RateLimitPlan, String), PlanFailure> {
    let current = waf.read_acl(&args.acl).await?;
    match (current.drbot_limit, args.limit) {
        (None, None) => {
            return Err(PlanFailure::Invalid(format!(
                "drbot's rate limit is not in `{}`; nothing to turn off",
                args.acl.name
            )))
        }
        (Some(now), Some(wanted)) if now == wanted => {
            return Err(PlanFailure::Invalid(format!(
                "drbot's rate limit is already on at {now} requests per 5 minutes in `{}`",
                args.acl.name
            )))
        }
        _ => {}
    }
    let others: Vec<String> = current
        .rules
        .iter()
        .filter(|(name, _)| name != DRBOT_RULE)
        .map(|(name, priority)| format!("`{name}` ({priority})"))
        .collect();
    let change = match (current.drbot_limit, args.limit) {
        (None, Some(limit)) => format!("*add* drbot's rule `{DRBOT_RULE}`: block a client IP above *{limit}* requests per 5 minutes"),
        (Some(now), Some(limit)) => format!("*change* drbot's rule `{DRBOT_RULE}` from {now} to *{limit}* requests per 5 minutes per client IP"),
        (Some(now), None) => format!("*remove* drbot's rule `{DRBOT_RULE}` (now {now} requests per 5 minutes per client IP)"),
        (None, None) => unreachable!("refused above"),
    };
    let summary = format!(
        "*WAF rate limit* in web ACL `{}` ({}): {change}.\n• Other rules, untouched: {}.\n• Undo: `/dr waf rate-limit {}`.",
        args.acl.name,
        args.acl.scope.as_str(),
        if others.is_empty() { "none".to_string() } else { others.join(", ") },
        match current.drbot_limit {
            None => "off".to_string(),
            Some(now) => format!("on --limit {now}"),
        }
    );
    let plan = RateLimitPlan {
        acl: args.acl.name.clone(),
        acl_id: args.acl.id.clone(),
        current,
        limit: args.limit,
    };
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>, approved: RateLimitPlan) {
    let app = run.app;
    let acl = app.settings.waf.web_acl.as_ref().filter(|a| a.id == approved.acl_id);
    let Some(acl) = run.configured(acl, "web ACL", &approved.acl).await else {
        return;
    };
    let waf = app.aws.waf(acl.scope);
    let args = RateLimitArgs {
        acl: acl.clone(),
        limit: approved.limit,
    };
    if !run
        .recheck(
            plan(waf, &args).await,
            "the web ACL's rules changed since the plan",
        )
        .await
    {
        return;
    }
    let mut conflicts = 0;
    let request_id = loop {
        match waf.write_rate_rule(&acl, approved.limit).await {
            Ok(id) => break id,
            Err(WriteError::Conflict) if conflicts < 8 => {
                conflicts += 1;
                tokio::time::sleep(Duration::from_millis(50 * 2u64.pow(conflicts.min(5)))).await;
            }
            Err(WriteError::Conflict) => {
                return run
                    .finish(
                        RequestState::Failed,
                        "the web ACL kept changing (WAFOptimisticLockException 9 times); nothing was written",
                    )
                    .await
            }
            Err(WriteError::Aws(e)) => {
                run.record_aws_error(&e).await;
                return run
                    .finish(RequestState::Failed, &e.outcome(&format!("whether web ACL `{}` holds the rule `{DRBOT_RULE}` (WAF console, or GetWebACL)", acl.name)))
                    .await;
            }
        }
    };
    run.record_aws_call(
        "UpdateWebACL",
        &format!("web ACL {} ({})", acl.name, acl.id),
        &request_id,
        json!({"rule": DRBOT_RULE, "limit": approved.limit, "previous_limit": approved.current.drbot_limit, "lock_conflicts": conflicts}),
    )
    .await;
    let done = match approved.limit {
        Some(limit) => format!(
            "drbot's rate limit is on in `{}`: a client IP above {limit} requests per 5 minutes is blocked (undo: `/dr waf rate-limit off`)",
            acl.name
        ),
        None => format!("drbot's rate limit is off in `{}`", acl.name),
    };
    run.finish(RequestState::Executed, &done).await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: ["wafv2:GetWebACL", "wafv2:UpdateWebACL"],
    plan(app, args, _asker) {
        plan(app.aws.waf(args.acl.scope), &args).await?
    }
}
