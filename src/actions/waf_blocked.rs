//! `/dr blocked`: addresses drbot blocked that are still in the IP sets — who, when, why,
//! expiry — and how many addresses in the sets drbot did not put there.
//!
//! AWS calls: GetIPSet per configured set. IAM: `wafv2:GetIPSet`. Approval: none. Read-only.

use std::collections::BTreeSet;

use crate::app::App;
use crate::aws::waf::WafBlocklist;
use crate::actions::blocklist;

pub async fn reply(app: &App) -> String {
    let blocks = match app.store.active_blocks().await {
        Ok(b) => b,
        Err(e) => return format!(":warning: could not read drbot's store: {e}"),
    };
    if app.settings.waf.ip_sets.is_empty() {
        return "No [[waf.ip_sets]] is configured.".to_string();
    }
    let mut out = String::new();
    for set in &app.settings.waf.ip_sets {
        for set_ref in std::iter::once(&set.ipv4_set).chain(set.ipv6_set.as_ref()) {
            let contents = match app.aws.waf(set.scope).read_set(set_ref, set.scope).await {
                Ok(c) => c,
                Err(e) => {
                    out.push_str(&format!(":warning: `{}`: {e}\n", set_ref.name));
                    continue;
                }
            };
            let present: BTreeSet<String> = contents
                .addresses
                .iter()
                .map(|a| blocklist::canonical(a))
                .collect();
            let ours: Vec<_> = blocks
                .iter()
                .filter(|b| b.set_id == set_ref.id && present.contains(&b.cidr))
                .collect();
            let gone = blocks
                .iter()
                .filter(|b| b.set_id == set_ref.id && !present.contains(&b.cidr))
                .count();
            let others = present.len() - ours.len();
            out.push_str(&format!(
                "*`{}`* ({}, {}): {} address(es), {} blocked by drbot, {others} put there by others\n",
                set_ref.name,
                set.name,
                set.scope.as_str(),
                present.len(),
                ours.len()
            ));
            for b in ours {
                let expiry = b
                    .expires_at
                    .map(|t| format!("until {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_else(|| "no expiry".to_string());
                out.push_str(&format!(
                    "• `{}` — by <@{}>{} at {}, {expiry}, reason: {}\n",
                    b.cidr,
                    b.requested_by,
                    b.approved_by
                        .as_deref()
                        .map(|a| format!(" (approved by <@{a}>)"))
                        .unwrap_or_default(),
                    &b.created_at[..16.min(b.created_at.len())].replace('T', " "),
                    b.reason
                        .as_deref()
                        .map_or_else(|| "none given".to_string(), crate::slack::text::escape)
                ));
            }
            if gone > 0 {
                out.push_str(&format!(
                    "_{gone} drbot block(s) were removed from the set outside drbot._\n"
                ));
            }
        }
    }
    out.trim_end().to_string()
}

// This action's entry in the registry.
super::reads_aws! {
    iam: ["wafv2:GetIPSet"],
    read(app, _cmd, _asker) {
        reply(app).await
    }
}
