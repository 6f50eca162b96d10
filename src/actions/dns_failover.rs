//! `/dr dns failover <record> --to primary|backup`: the plan's "update DNS to point to
//! backup region". Route 53 `ChangeResourceRecordSets` (UPSERT) from the record's current
//! target to the configured one (a CNAME, or an alias A), followed with `GetChange` until
//! INSYNC. The old value is recorded and shown for undo.
//!
//! AWS calls: ListResourceRecordSets (plan, re-check), ChangeResourceRecordSets (execute),
//! GetChange (follow). IAM: `route53:ListResourceRecordSets`,
//! `route53:ChangeResourceRecordSets` on the configured zones, `route53:GetChange`.
//! Undo: `/dr dns failover <record> --to <the other side>`. Approval: `officer`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PlanFailure;
use crate::aws::dns::{same_name, DnsFailover, RecordValue};
use crate::config::{DnsRecord, RecordType, Settings};
use crate::gate::execute::{Run, Sent};
use crate::router::{Invalid, ParsedCommand};
use crate::store::RequestState;

#[derive(Debug, Clone)]
pub struct FailoverArgs {
    pub record: DnsRecord,
    /// `primary` or `backup`.
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverPlan {
    pub name: String,
    pub zone_id: String,
    pub record: String,
    pub kind: RecordType,
    pub to: String,
    /// What the record holds now (kept for undo).
    pub current: Option<RecordValue>,
    pub target: RecordValue,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<FailoverArgs, Invalid> {
    let name = cmd.arg_word("record").ok_or("missing <record>")?;
    let record = settings.dns_record(name).cloned().ok_or_else(|| {
        let known: Vec<String> = settings
            .dns
            .records
            .iter()
            .map(|r| format!("`{}`", r.name))
            .collect();
        if known.is_empty() {
            format!("unknown record `{name}`: no [[dns.records]] are configured")
        } else {
            format!("unknown record `{name}`; configured: {}", known.join(", "))
        }
    })?;
    let to = match cmd.flag_word("to") {
        Some(side @ ("primary" | "backup")) => side.to_string(),
        Some(other) => {
            return Err(format!("`--to {other}`: write `--to primary` or `--to backup`").into())
        }
        None => return Err("missing `--to primary|backup`".into()),
    };
    Ok(FailoverArgs { record, to })
}

pub async fn plan(
    dns: &impl DnsFailover,
    args: &FailoverArgs,
) -> Result<(FailoverPlan, String), PlanFailure> {
    let r = &args.record;
    let current = dns.record(&r.zone_id, &r.record, r.kind).await?;
    let (target, alias_zone) = r.target(&args.to).expect("parse checked the side");
    let target = RecordValue {
        target: target.to_string(),
        alias_zone: alias_zone.map(str::to_string),
        ttl: (r.kind == RecordType::Cname).then_some(r.ttl),
    };
    if let Some(now) = &current {
        if same_name(&now.target, &target.target) {
            return Err(PlanFailure::Invalid(format!(
                "`{}` already points to the {} target `{}`; nothing to change",
                r.name, args.to, now.target
            )));
        }
    }
    let plan = FailoverPlan {
        name: r.name.clone(),
        zone_id: r.zone_id.clone(),
        record: r.record.clone(),
        kind: r.kind,
        to: args.to.clone(),
        current: current.clone(),
        target,
    };
    let kind = match r.kind {
        RecordType::Cname => "CNAME",
        RecordType::A => "alias A",
    };
    let other = if args.to == "backup" {
        "primary"
    } else {
        "backup"
    };
    let summary = format!(
        "*DNS failover* of `{}` ({kind} `{}` in zone `{}`) to the *{}* target:\n• now: `{}`\n• after: `{}`{}\n• Followed until Route 53 reports INSYNC. Undo: `/dr dns failover {} --to {other}`.",
        plan.name,
        plan.record,
        plan.zone_id,
        plan.to,
        current.as_ref().map(|c| c.target.as_str()).unwrap_or("(no such record yet: it will be created)"),
        plan.target.target,
        plan.target.ttl.map(|t| format!(" (TTL {t}s)")).unwrap_or_default(),
        plan.name,
    );
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>, approved: FailoverPlan) {
    let app = run.app;
    let record = app.settings.dns_record(&approved.name);
    let Some(record) = run.configured(record, "record", &approved.name).await else {
        return;
    };
    let dns = &app.aws.route53;
    let args = FailoverArgs {
        record,
        to: approved.to.clone(),
    };
    if !run
        .recheck(plan(dns, &args).await, "the record changed since the plan")
        .await
    {
        return;
    }
    let comment = format!("drbot {}: failover to {}", run.request.label(), approved.to);
    let answer = dns
        .point(
            &approved.zone_id,
            &approved.record,
            approved.kind,
            &approved.target,
            &comment,
        )
        .await;
    let sent = Sent {
        operation: "ChangeResourceRecordSets",
        resource: format!("{} {}", approved.zone_id, approved.record),
        detail: json!({"change_id": answer.as_ref().map(|a| a.0.clone()).ok(), "previous": approved.current, "new": approved.target}),
    };
    let check = format!(
        "where `{}` points in zone `{}` (Route 53 console, or ListResourceRecordSets)",
        approved.record, approved.zone_id
    );
    let Some((change, request_id)) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!(
        "ChangeResourceRecordSets sent: `{}` → `{}` (change `{change}`, AWS request id `{request_id}`). Waiting for INSYNC…",
        approved.record, approved.target.target
    ))
    .await;
    let timeout = app.settings.dns.sync_timeout.as_duration();
    let longest = Duration::from_secs(30);
    let mut polls = crate::clock::Backoff::new(Duration::from_secs(2), longest, timeout, timeout);
    let undo = format!(
        "was `{}`; undo: `/dr dns failover {} --to {}`",
        approved
            .current
            .as_ref()
            .map(|c| c.target.as_str())
            .unwrap_or("absent"),
        approved.name,
        if approved.to == "backup" {
            "primary"
        } else {
            "backup"
        }
    );
    loop {
        match dns.in_sync(&change).await {
            Ok(true) => {
                return run
                    .finish(
                        RequestState::Executed,
                        &format!(
                            "`{}` points to `{}` (INSYNC; {undo})",
                            approved.record, approved.target.target
                        ),
                    )
                    .await
            }
            Ok(false) if polls.timed_out() => {
                return run
                    .finish(
                        RequestState::Failed,
                        &format!(
                            "the change was made but is not INSYNC after {} ({undo})",
                            app.settings.dns.sync_timeout
                        ),
                    )
                    .await
            }
            Ok(false) => {}
            Err(e) => {
                run.record_aws_error(&e).await;
                return run
                    .finish(
                        RequestState::Failed,
                        &format!("the change was sent, but following it failed: {e} ({undo})"),
                    )
                    .await;
            }
        }
        polls.wait().await;
    }
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets", "route53:GetChange"
    ],
    plan(app, args, _asker) {
        plan(&app.aws.route53, &args).await?
    }
}
