//! The request message in each state, and the lines posted in its thread.

use crate::config::ApprovalSettings;
use crate::store::{Request, RequestState};

fn icon(state: RequestState) -> &'static str {
    match state {
        RequestState::Pending => ":lock:",
        RequestState::Executing => ":hourglass_flowing_sand:",
        RequestState::Executed => ":white_check_mark:",
        RequestState::Failed => ":boom:",
        RequestState::Rejected => ":no_entry:",
        RequestState::Expired => ":alarm_clock:",
        RequestState::Void => ":warning:",
        RequestState::Cancelled => ":heavy_minus_sign:",
        RequestState::Interrupted => ":warning:",
    }
}

fn emoji_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!(":{n}:"))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The whole request message for `request` in its current state.
pub fn render(request: &Request, approval: &ApprovalSettings) -> String {
    let header = match request.state {
        RequestState::Pending => format!(
            "{} *{} · approval needed*",
            icon(request.state),
            request.label()
        ),
        state => format!("{} *{} · {}*", icon(state), request.label(), state.as_str()),
    };
    let mut out = format!(
        "{header} — requested by <@{}> with `/dr {}`\n{}\nPlan `{}` · ",
        request.requester,
        crate::slack::text::escape(&request.command),
        request.summary,
        &request.plan_hash[..12.min(request.plan_hash.len())]
    );
    match request.state {
        RequestState::Pending => {
            let officers: Vec<String> = approval
                .officers
                .iter()
                .map(|o| format!("<@{o}>"))
                .collect();
            let who = if approval.allow_self_approval {
                ""
            } else {
                ", not the requester"
            };
            let quorum = if approval.required_approvals > 1 {
                format!(" ({} officers must approve)", approval.required_approvals)
            } else {
                String::new()
            };
            out.push_str(&format!(
                "expires {}\nApprove: {} — a security officer ({}){who}{quorum}\nReject: {} — an officer or the requester",
                request.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
                emoji_list(&approval.approve_reactions),
                officers.join(", "),
                emoji_list(&approval.reject_reactions),
            ));
        }
        _ => {
            if let Some(by) = &request.decided_by {
                out.push_str(&format!("decided by <@{by}>"));
            } else {
                out.push_str("no decision");
            }
            if let Some(outcome) = &request.outcome {
                out.push_str(&format!("\n*Outcome:* {outcome}"));
            }
        }
    }
    out
}
