//! `/dr incident list`: open and recent incidents. Approval: none. Read-only.

use crate::store::Incident;

pub fn reply(open: &[Incident], recent: &[Incident]) -> String {
    let mut out = String::new();
    if open.is_empty() {
        out.push_str("*Open incidents*: none\n");
    } else {
        out.push_str("*Open incidents*\n");
        for i in open {
            let age = crate::duration::human(crate::clock::now() - i.started_at);
            out.push_str(&format!(
                "• *{}* <#{}> — {} (`{}`), opened by <@{}>, {age} ago\n",
                i.id, i.channel_id, i.title, i.scenario, i.opened_by
            ));
        }
    }
    if !recent.is_empty() {
        out.push_str("*Recently resolved*\n");
        for i in recent {
            let took = i
                .resolved_at
                .map(|r| crate::duration::human(r - i.started_at))
                .unwrap_or_default();
            out.push_str(&format!(
                "• *{}* — {} (`{}`), lasted {took}\n",
                i.id, i.title, i.scenario
            ));
        }
    }
    out.trim_end().to_string()
}
