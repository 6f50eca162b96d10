//! `/dr block-ip <ip-or-cidr>... [--reason TEXT] [--for DURATION]`: addresses into the
//! configured WAF IP sets (IPv4 and IPv6 to their own sets), optionally lifted by a worker
//! when the time is up.
//!
//! AWS calls: GetIPSet (plan, re-check, each write attempt), UpdateIPSet (execute).
//! IAM: `wafv2:GetIPSet`, `wafv2:UpdateIPSet` on the configured IP sets.
//! Undo: `/dr unblock-ip <cidr>`, or `--for` lifts it by itself.
//! Approval: `officer` (commands/block-ip.toml).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::PlanFailure;
use crate::aws::waf::WafBlocklist;
use crate::aws::AwsError;
use crate::actions::blocklist::{self, Cidr, MAX_ADDRESSES};
use crate::config::{Settings, WafIpSets, WafScope};
use crate::duration::HumanDuration;
use crate::gate::execute::Run;
use crate::router::{Invalid, ParsedCommand, Value};
use crate::store::{NewBlock, RequestState};

/// The typed, vetted arguments.
#[derive(Debug, Clone)]
pub struct BlockArgs {
    pub cidrs: Vec<Cidr>,
    pub reason: Option<String>,
    pub duration: Option<HumanDuration>,
    pub set: WafIpSets,
}

/// The change officers approve: these CIDRs into these sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockPlan {
    pub ip_set: String,
    pub scope: WafScope,
    pub cidrs: Vec<Cidr>,
    pub reason: Option<String>,
    pub for_secs: Option<u64>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<BlockArgs, Invalid> {
    let vet = |cidr: &Cidr, set: &WafIpSets| blocklist::vet_for_blocking(cidr, settings, set);
    let (set, cidrs) = blocklist::addresses(cmd, settings, vet)?;
    let reason = cmd.flag_word("reason").map(str::to_string);
    let duration = match cmd.flag("for") {
        Some(Value::Duration(d)) => Some(*d),
        _ => None,
    };
    Ok(BlockArgs {
        cidrs,
        reason,
        duration,
        set,
    })
}

/// Reads the sets: what is already there, and whether the block fits under WAF's limit.
pub async fn plan(
    waf: &impl WafBlocklist,
    args: &BlockArgs,
) -> Result<(BlockPlan, String), PlanFailure> {
    let mut lines = Vec::new();
    for (v6, set_ref) in [
        (false, Some(&args.set.ipv4_set)),
        (true, args.set.ipv6_set.as_ref()),
    ] {
        let wanted: Vec<&Cidr> = args.cidrs.iter().filter(|c| c.v6 == v6).collect();
        let Some(set_ref) = set_ref else { continue };
        if wanted.is_empty() {
            continue;
        }
        let contents = waf.read_set(set_ref, args.set.scope).await?;
        let present: BTreeSet<String> = contents
            .addresses
            .iter()
            .map(|a| blocklist::canonical(a))
            .collect();
        let new = wanted.iter().filter(|c| !present.contains(&c.cidr)).count();
        if present.len() + new > MAX_ADDRESSES {
            return Err(PlanFailure::Invalid(format!(
                "IP set `{}` holds {} addresses; adding {new} would pass WAF's limit of {MAX_ADDRESSES}",
                set_ref.name,
                present.len()
            )));
        }
        for cidr in wanted {
            let note = if cidr.was_normalised() {
                format!(" (you typed `{}`; host bits cleared)", cidr.typed)
            } else {
                String::new()
            };
            if present.contains(&cidr.cidr) {
                lines.push(format!(
                    "• `{}`{note} is already in `{}`: reported, not added again",
                    cidr.cidr, set_ref.name
                ));
            } else {
                lines.push(format!("• `{}`{note} → `{}`", cidr.cidr, set_ref.name));
            }
        }
        lines.push(format!(
            "  `{}` will hold {} of {MAX_ADDRESSES} addresses",
            set_ref.name,
            present.len() + new
        ));
    }
    let plan = BlockPlan {
        ip_set: args.set.name.clone(),
        scope: args.set.scope,
        cidrs: args.cidrs.clone(),
        reason: args.reason.clone(),
        for_secs: args.duration.map(HumanDuration::as_secs),
    };
    let mut summary = format!(
        "*Block* in WAF IP set `{}` ({})\n{}",
        plan.ip_set,
        plan.scope,
        lines.join("\n")
    );
    summary.push_str(&format!(
        "\nReason: {}",
        plan.reason
            .as_deref()
            .map_or_else(|| "none given".to_string(), crate::slack::text::inert)
    ));
    match args.duration {
        Some(d) => summary.push_str(&format!(" · lifted automatically {d} after it is applied")),
        None => summary.push_str(" · until someone runs `/dr unblock-ip`"),
    }
    Ok((plan, summary))
}

/// Runs an approved block: re-check, read–modify–write each set, remember the blocks.
pub async fn execute(run: &Run<'_>, approved: BlockPlan) {
    let app = run.app;
    let set = app.settings.ip_set(&approved.ip_set);
    let Some(set) = run.configured(set, "IP set", &approved.ip_set).await else {
        return;
    };
    let args = BlockArgs {
        cidrs: approved.cidrs.clone(),
        reason: approved.reason.clone(),
        duration: approved.for_secs.map(HumanDuration::from_secs),
        set: set.clone(),
    };
    if !run
        .recheck(
            plan(app.aws.waf(args.set.scope), &args).await,
            "the configuration changed since the plan",
        )
        .await
    {
        return;
    }
    let expires_at = approved
        .for_secs
        .map(|s| crate::clock::now() + chrono::Duration::seconds(s as i64));
    let mut added_total = Vec::new();
    let mut reported = Vec::new();
    let mut unrecorded: Vec<String> = Vec::new();
    for (set_ref, cidrs) in blocklist::by_set(&set, &approved.cidrs) {
        // A timed block of one of these addresses that is being lifted right now: superseded
        // before WAF is written, so the lifting worker puts the address back (it reads the
        // state after its removal) rather than leaving this block without it.
        let superseded =
            crate::store::persist("blocks", crate::gate::execute::STORE_PATIENCE, || async {
                let mut tx = app.store.begin().await?;
                let mut taken = Vec::new();
                for cidr in &cidrs {
                    if tx.supersede_lifting(&set_ref.id, cidr).await? > 0 {
                        taken.push(cidr.clone());
                    }
                }
                tx.commit().await?;
                Ok(taken)
            })
            .await;
        // drbot's own blocks, whatever the lift does with them now: this block takes them over.
        let taken_over = superseded.unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not mark timed blocks being lifted as superseded");
            Vec::new()
        });
        let failed = |e: &AwsError| {
            let partial = if added_total.is_empty() {
                String::new()
            } else {
                format!(" (already added: {})", added_total.join(", "))
            };
            let check = format!(
                "whether IP set `{}` holds {} (WAF console, or `/dr blocked`)",
                set_ref.name,
                cidrs.join(", ")
            );
            format!("{}{partial}", e.outcome(&check))
        };
        let Some(written) = blocklist::write(run, &set, set_ref, (&cidrs, &[]), failed).await
        else {
            return;
        };
        // drbot owns (and may later lift) what it added, and what it had blocked before.
        let mut owned: Vec<String> = written.added.clone();
        for cidr in taken_over {
            if !owned.contains(&cidr) {
                owned.push(cidr);
            }
        }
        let held = match app.store.active_blocks().await {
            Ok(held) => Some(held),
            Err(e) => {
                tracing::error!(error = %e, "could not read the blocks drbot holds; addresses already in the set are left as they are");
                None
            }
        };
        for cidr in &cidrs {
            if !owned.contains(cidr) {
                let ours = held.as_ref().map(|held| {
                    held.iter()
                        .any(|b| &b.cidr == cidr && b.set_id == set_ref.id)
                });
                if ours == Some(true) {
                    owned.push(cidr.clone());
                } else if ours.is_none() {
                    reported.push(format!(
                        "`{cidr}` was already in `{}`; drbot could not read its store to tell whether it added it, so it is left as it is and not lifted by drbot",
                        set_ref.name
                    ));
                } else {
                    reported.push(format!(
                        "`{cidr}` was already in `{}` (not added by drbot; left as it is)",
                        set_ref.name
                    ));
                }
            }
        }
        let stored =
            crate::store::persist("blocks", crate::gate::execute::STORE_PATIENCE, || async {
                let mut tx = app.store.begin().await?;
                for cidr in &owned {
                    tx.add_block(&NewBlock {
                        cidr: cidr.clone(),
                        ip_set: set.name.clone(),
                        set_name: set_ref.name.clone(),
                        set_id: set_ref.id.clone(),
                        scope: set.scope,
                        requested_by: run.request.requester.clone(),
                        approved_by: run.request.decided_by.clone(),
                        reason: approved.reason.clone(),
                        channel: run.request.channel.clone(),
                        incident: run.request.incident.clone(),
                        request_id: Some(run.request.id),
                        expires_at,
                    })
                    .await?;
                }
                tx.commit().await
            })
            .await;
        if let Err(e) = stored {
            // The addresses are blocked, but drbot has no record to lift them by: it must
            // not promise an undo it cannot do.
            tracing::error!(error = %e, "could not record the blocks drbot added; they will not be lifted automatically");
            unrecorded.extend(owned.iter().cloned());
        }
        if written.conflicts > 0 {
            run.thread(&format!(
                "`{}` changed {} time(s) while drbot wrote it; re-read and retried, keeping everyone's addresses.",
                set_ref.name, written.conflicts
            ))
            .await;
        }
        added_total.extend(written.added);
    }
    let mut outcome = if added_total.is_empty() {
        "nothing new to block".to_string()
    } else {
        format!("blocked {}", crate::slack::text::codes(&added_total))
    };
    if !unrecorded.is_empty() {
        outcome.push_str(&format!(
            ". :warning: drbot could not record {} in its store, so it will not lift {} or list {} in `/dr blocked`; lift {} with `/dr unblock` when due",
            crate::slack::text::codes(&unrecorded),
            if unrecorded.len() == 1 { "it" } else { "them" },
            if unrecorded.len() == 1 { "it" } else { "them" },
            if unrecorded.len() == 1 { "it" } else { "them" },
        ));
    } else if let Some(at) = expires_at {
        outcome.push_str(&format!(
            "; lifted automatically at {}",
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ));
    }
    if !reported.is_empty() {
        outcome.push_str(&format!(". {}", reported.join("; ")));
    }
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
