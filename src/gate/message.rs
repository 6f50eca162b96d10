//! The request message in each state, and the lines posted in its thread.

use slack_morphism::prelude::*;

use crate::config::ApprovalSettings;

/// `action_id`s of the request message's buttons.
pub const APPROVE_BUTTON: &str = "drbot_approve";
pub const REJECT_BUTTON: &str = "drbot_reject";

/// What a Block Kit section holds at most; the plan is split over sections below it.
const SECTION_CHARS: usize = 2900;

/// drbot's own text in sections of at most [`SECTION_CHARS`], split between lines (a line
/// longer than a section is split inside it): never cut.
fn sections(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let mut line = line.to_string();
        while line.chars().count() > SECTION_CHARS {
            let head: String = line.chars().take(SECTION_CHARS).collect();
            line = line.chars().skip(SECTION_CHARS).collect();
            if !current.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            out.push(head);
        }
        if current.chars().count() + line.chars().count() + 1 > SECTION_CHARS {
            out.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push('\n');
        }
        current.push_str(&line);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn mrkdwn(text: String) -> SlackBlock {
    SlackBlock::Section(
        SlackSectionBlock::new()
            .with_text(SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text))),
    )
}

/// The request message as Block Kit, in the order an officer must read it: what will change,
/// in drbot's own words (first, split over sections, never cut); the plan hash, expiry and
/// who may approve; then what the requester typed, as plain text (no formatting, mention or
/// line of it can pass for drbot's); while pending, Approve and Reject buttons (an
/// alternative to the reactions, under exactly the same rules).
pub fn blocks(request: &Request, approval: &ApprovalSettings) -> Vec<SlackBlock> {
    let mut blocks = vec![mrkdwn(format!(
        "{} — requested by {}",
        header(request),
        crate::slack::text::mention(&request.requester)
    ))];
    blocks.extend(sections(&request.summary).into_iter().map(mrkdwn));
    blocks.push(mrkdwn(decision(request, approval)));
    blocks.push(SlackBlock::Section(
        SlackSectionBlock::new().with_text(SlackBlockText::Plain(
            SlackBlockPlainText::new(format!(
                "{}: /dr {}",
                origin(request),
                crate::slack::text::inert(&request.command)
            ))
            .with_emoji(false),
        )),
    ));
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

fn header(request: &Request) -> String {
    match request.state {
        RequestState::Pending => format!(
            "{} *{} · approval needed*",
            icon(request.state),
            request.label()
        ),
        state => format!("{} *{} · {}*", icon(state), request.label(), state.as_str()),
    }
}

/// The plan hash, and the expiry and who may approve (pending) or the decision and outcome.
fn decision(request: &Request, approval: &ApprovalSettings) -> String {
    let mut out = format!(
        "Plan `{}` · ",
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

/// Where the command came from: typed in Slack (a slash command answers through its
/// `response_url`), or issued by drbot itself — a plan run's step, a schedule.
fn origin(request: &Request) -> &'static str {
    if request.response_url.is_empty() {
        "Issued by drbot (a plan run's step or a schedule), not typed"
    } else if request.response_url.starts_with(crate::store::CONSOLE_URL) {
        "Typed by the requester in drbot's web console (signed in through the company's sign-in)"
    } else {
        "Typed by the requester"
    }
}

/// The whole request message for `request` in its current state, as the message's
/// notification text (the blocks above are what Slack shows): the same order, the plan
/// first, what the requester typed last and inert.
pub fn render(request: &Request, approval: &ApprovalSettings) -> String {
    format!(
        "{} — requested by {}\n{}\n{}\n{}: /dr {}",
        header(request),
        crate::slack::text::mention(&request.requester),
        request.summary,
        decision(request, approval),
        origin(request),
        crate::slack::text::inert(&request.command)
    )
}

#[cfg(test)]
mod tests {
    use super::{sections, SECTION_CHARS};

    #[test]
    fn a_long_plan_is_split_between_lines_and_never_cut() {
        let lines: Vec<String> = (0..200)
            .map(|i| format!("• `198.51.{}.{}/32` → `drbot-block-v4`", i / 250, i % 250))
            .collect();
        let text = lines.join("\n");
        let parts = sections(&text);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.chars().count() <= SECTION_CHARS));
        assert_eq!(parts.join("\n"), text, "nothing lost, nothing added");
        // One line longer than a section is split inside it, still whole when joined.
        let long = "x".repeat(SECTION_CHARS * 2 + 10);
        assert_eq!(sections(&long).concat(), long);
    }
}
