//! `/dr approvals`: the pending approval requests.
//!
//! AWS calls: none. IAM: none. Approval: none. Read-only.

use crate::store::Request;

pub fn reply(pending: &[Request]) -> String {
    if pending.is_empty() {
        return "No approval requests are pending.".to_string();
    }
    let mut out = format!("*{} pending approval request(s)*\n", pending.len());
    for r in pending {
        out.push_str(&format!(
            "• *{}* `/dr {}` — asked by <@{}> in <#{}>, expires {}\n",
            r.label(),
            crate::slack::text::escape(&r.command),
            r.requester,
            r.channel,
            r.expires_at.format("%H:%M:%S UTC")
        ));
    }
    out.trim_end().to_string()
}
