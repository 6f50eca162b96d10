//! `/dr unblock-ip <ip-or-cidr>...`: exactly these addresses out of the WAF IP sets.
//!
//! AWS calls: GetIPSet (plan, re-check, each write attempt), UpdateIPSet (execute).
//! IAM: `wafv2:GetIPSet`, `wafv2:UpdateIPSet`.
//! Undo: `/dr block-ip`. Approval: `officer` (commands/unblock-ip.toml).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::PlanFailure;
use crate::aws::waf::WafBlocklist;
use crate::aws::AwsError;
use crate::actions::blocklist::{self, Cidr};
use crate::config::{Settings, WafIpSets};
use crate::gate::execute::Run;
use crate::router::{Invalid, ParsedCommand};
use crate::store::RequestState;

#[derive(Debug, Clone)]
pub struct UnblockArgs {
    pub cidrs: Vec<Cidr>,
    pub set: WafIpSets,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnblockPlan {
    pub ip_set: String,
    /// The addresses found in the sets, to remove.
    pub cidrs: Vec<Cidr>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<UnblockArgs, Invalid> {
    let (set, cidrs) = blocklist::addresses(cmd, settings, blocklist::fits_set)?;
    Ok(UnblockArgs { cidrs, set })
}

pub async fn plan(
    waf: &impl WafBlocklist,
    args: &UnblockArgs,
) -> Result<(UnblockPlan, String), PlanFailure> {
    let mut present = BTreeSet::new();
    for (v6, set_ref) in [
        (false, Some(&args.set.ipv4_set)),
        (true, args.set.ipv6_set.as_ref()),
    ] {
        let Some(set_ref) = set_ref else { continue };
        if !args.cidrs.iter().any(|c| c.v6 == v6) {
            continue;
        }
        let contents = waf.read_set(set_ref, args.set.scope).await?;
        present.extend(contents.addresses.iter().map(|a| blocklist::canonical(a)));
    }
    let (found, missing): (Vec<Cidr>, Vec<Cidr>) = args
        .cidrs
        .iter()
        .cloned()
        .partition(|c| present.contains(&c.cidr));
    if found.is_empty() {
        return Err(PlanFailure::Invalid(format!(
            "none of {} is in IP set `{}`; `/dr blocked` lists what is",
            missing
                .iter()
                .map(|c| format!("`{}`", c.cidr))
                .collect::<Vec<_>>()
                .join(", "),
            args.set.name
        )));
    }
    let mut summary = format!("*Unblock* in WAF IP set `{}`", args.set.name);
    for c in &found {
        summary.push_str(&format!("\n• remove `{}`", c.cidr));
    }
    for c in &missing {
        summary.push_str(&format!(
            "\n• `{}` is not in the set (nothing to do)",
            c.cidr
        ));
    }
    summary.push_str("\nEverything else in the set stays as it is.");
    Ok((
        UnblockPlan {
            ip_set: args.set.name.clone(),
            cidrs: found,
        },
        summary,
    ))
}

pub async fn execute(run: &Run<'_>, approved: UnblockPlan) {
    let app = run.app;
    let set = app.settings.ip_set(&approved.ip_set);
    let Some(set) = run.configured(set, "IP set", &approved.ip_set).await else {
        return;
    };
    let mut removed_total = Vec::new();
    for (set_ref, cidrs) in blocklist::by_set(&set, &approved.cidrs) {
        let failed = |e: &AwsError| {
            e.outcome(
                "the addresses of the IP set (WAF console, or GetIPSet); `/dr blocked` reads it",
            )
        };
        let Some(written) = blocklist::write(run, &set, set_ref, (&[], &cidrs), failed).await
        else {
            return;
        };
        let ended = async {
            let mut tx = app.store.begin().await?;
            for cidr in &cidrs {
                tx.end_blocks(&set_ref.id, cidr, "removed").await?;
            }
            tx.commit().await
        }
        .await;
        if let Err(e) = ended {
            tracing::error!(error = %e, "could not end blocks");
        }
        removed_total.extend(written.removed);
    }
    let outcome = if removed_total.is_empty() {
        "nothing to remove: the addresses were already gone".to_string()
    } else {
        format!("unblocked {}", crate::slack::text::codes(&removed_total))
    };
    run.finish(RequestState::Executed, &outcome).await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: ["wafv2:GetIPSet", "wafv2:UpdateIPSet"],
    plan(app, args, _asker) {
        plan(app.aws.waf(args.set.scope), &args).await?
    }
}
