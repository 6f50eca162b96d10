//! The request message in each state, and the lines posted in its thread.

use slack_morphism::prelude::*;

use crate::config::ApprovalSettings;

/// `action_id`s of the request message's buttons.
pub const APPROVE_BUTTON: &str = "drbot_approve";
pub const REJECT_BUTTON: &str = "drbot_reject";

/// The request message as Block Kit: its text, and while it is pending, Approve and Reject
/// buttons (an alternative to the reactions, under exactly the same rules).
pub fn blocks(request: &Request, text: &str) -> Vec<SlackBlock> {
    // A section holds at most 3,000 characters; the full text stays the message's `text`.
    let shown: String = if text.chars().count() > 2900 {
        text.chars().take(2900).chain("…".chars()).collect()
    } else {
        text.to_string()
    };
    let mut blocks = vec![SlackBlock::Section(
        SlackSectionBlock::new()
            .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(shown))),
    )];
    if request.state == RequestState::Pending {
        let button = |id: &str, label: &str, style: SlackBlockButtonStyle| {
            SlackActionBlockElement::Button(
                SlackBlockButtonElement::new(SlackBlockPlainTextOnly::from(label))
                    .with_action_id(id.into())
                    .with_value(request.label())
                    .with_style(style),
            )
        };
        blocks.push(SlackBlock::Actions(SlackActionsBlock::new(vec![
            button(APPROVE_BUTTON, "Approve", SlackBlockButtonStyle::Primary),
            button(REJECT_BUTTON, "Reject", SlackBlockButtonStyle::Danger),
        ])));
    }
    blocks
}
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
        "{header} — requested by {} with `/dr {}`\n{}\nPlan `{}` · ",
        crate::slack::text::mention(&request.requester),
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
