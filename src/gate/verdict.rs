//! The approval policy (SPEC §7) as a pure function: what one reaction on a request
//! message means, from the request, the reaction, the settings and the time. Nothing
//! here reads or writes the store; `reactions` applies the verdict in one transaction
//! (where counting distinct approvers and the conditional state change happen).

use chrono::{DateTime, Utc};

use super::base_reaction;
use super::reactions::Reaction;
use crate::config::ApprovalSettings;
use crate::store::{Request, RequestState};

/// Which of the configured reactions this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Approve,
    Reject,
    Other,
}

/// `reaction` (as Slack sent it, e.g. `+1::skin-tone-3`) as the gate counts it.
pub fn kind(reaction: &str, approval: &ApprovalSettings) -> Kind {
    let base = base_reaction(reaction);
    if approval.approve_reactions.iter().any(|r| r == base) {
        Kind::Approve
    } else if approval.reject_reactions.iter().any(|r| r == base) {
        Kind::Reject
    } else {
        Kind::Other
    }
}

/// What a reaction on a request message does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Changes nothing: recorded as `approval.ignored` with `audit`; the reactor is told
    /// `tell` (ephemerally) when there is something to tell them.
    Ignore { audit: String, tell: Option<String> },
    /// An approve reaction removed while the request is pending: the reactor's approval,
    /// if they gave one, no longer counts.
    Withdraw,
    /// The request's time is up: it expires (if still pending) and the reactor is told.
    Expired,
    /// Rejected, by an officer or the requester.
    Reject,
    /// An officer's approval: counted, and the request executes once enough distinct
    /// officers have approved.
    Approve,
}

/// The verdict on reaction `r` on `request`'s message at `now`. `bot_user` is drbot's own
/// Slack user (it adds the approve and reject reactions itself).
pub fn verdict(
    request: &Request,
    r: &Reaction,
    approval: &ApprovalSettings,
    bot_user: &str,
    now: DateTime<Utc>,
) -> Verdict {
    let label = request.label();
    let verb = if r.added { "added" } else { "removed" };
    let ignore = |audit: String| Verdict::Ignore { audit, tell: None };
    if r.user == bot_user {
        return ignore(format!(
            "{label}: drbot's own :{}: {verb} (ignored)",
            r.name
        ));
    }
    let kind = kind(&r.name, approval);
    if kind == Kind::Other {
        return ignore(format!(
            "{label}: :{}: {verb} by <@{}> is not an approval reaction",
            r.name, r.user
        ));
    }
    if !r.added {
        // A withdrawn approval counts only while the request is still pending.
        return if kind == Kind::Approve && request.state == RequestState::Pending {
            Verdict::Withdraw
        } else {
            ignore(format!(
                "{label}: :{}: removed by <@{}> after the request was {} (changes nothing)",
                r.name,
                r.user,
                request.state.as_str()
            ))
        };
    }
    if request.state != RequestState::Pending {
        return Verdict::Ignore {
            audit: format!(
                "{label}: :{}: by <@{}> after it was {}",
                r.name,
                r.user,
                request.state.as_str()
            ),
            tell: Some(format!(
                "{label} is already {}; your :{}: changes nothing.",
                request.state.as_str(),
                r.name
            )),
        };
    }
    if now >= request.expires_at {
        return Verdict::Expired;
    }
    let is_officer = approval.officers.contains(&r.user);
    let is_requester = r.user == request.requester;
    match kind {
        Kind::Reject if is_officer || is_requester => Verdict::Reject,
        Kind::Reject => Verdict::Ignore {
            audit: format!(
                "{label}: reject by <@{}> refused: not an officer or the requester",
                r.user
            ),
            tell: Some(format!(
                "Only a security officer or the requester can reject {label}; your :{}: changes nothing.",
                r.name
            )),
        },
        Kind::Approve if is_requester && !approval.allow_self_approval => Verdict::Ignore {
            audit: format!(
                "{label}: approval by <@{}> refused: the requester may not approve their own request",
                r.user
            ),
            tell: Some(format!(
                "You asked for {label}, so you cannot approve it; another security officer must."
            )),
        },
        Kind::Approve if !is_officer => Verdict::Ignore {
            audit: format!(
                "{label}: approval by <@{}> refused: not a security officer",
                r.user
            ),
            tell: Some(format!(
                "Only security officers can approve {label} ({}); your :{}: changes nothing.",
                crate::slack::text::mentions(&approval.officers),
                r.name
            )),
        },
        Kind::Approve => Verdict::Approve,
        Kind::Other => unreachable!("returned above"),
    }
}

/// Whether `approvers` distinct officers are enough to execute.
pub fn enough(approvers: usize, approval: &ApprovalSettings) -> bool {
    approvers >= approval.required_approvals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::HumanDuration;

    const OFFICER: &str = "U0OFFICER1";
    const OFFICER2: &str = "U0OFFICER2";
    const ONCALL: &str = "U0ONCALL1";
    const OUTSIDER: &str = "U0OUTSIDER";
    const BOT: &str = "U0DRBOT";

    fn settings(allow_self: bool) -> ApprovalSettings {
        ApprovalSettings {
            officers: vec![OFFICER.into(), OFFICER2.into()],
            approve_reactions: vec!["white_check_mark".into(), "+1".into()],
            reject_reactions: vec!["x".into()],
            ttl: "15m".parse::<HumanDuration>().unwrap(),
            allow_self_approval: allow_self,
            required_approvals: 1,
        }
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn request(requester: &str, state: RequestState, expires_in_secs: i64) -> Request {
        Request {
            id: 7,
            command: "rollback api".into(),
            command_name: "rollback".into(),
            action: "ecs_rollback".into(),
            requester: requester.into(),
            channel: "C0OPS".into(),
            incident: None,
            response_url: String::new(),
            plan: "{}".into(),
            plan_hash: String::new(),
            summary: String::new(),
            state,
            created_at: now(),
            expires_at: now() + chrono::Duration::seconds(expires_in_secs),
            message_ts: Some("1.000".into()),
            decided_by: None,
            outcome: None,
            owner: None,
            fence: None,
        }
    }

    fn reaction(user: &str, name: &str, added: bool) -> Reaction {
        Reaction {
            event_id: "Ev1".into(),
            added,
            user: user.into(),
            name: name.into(),
            channel: "C0OPS".into(),
            ts: "1.000".into(),
            item_user: Some(BOT.into()),
            request: None,
        }
    }

    const CHECK: &str = "white_check_mark";

    /// What a verdict is, without its texts.
    fn shape(v: &Verdict) -> &'static str {
        match v {
            Verdict::Ignore { tell: None, .. } => "ignore",
            Verdict::Ignore { tell: Some(_), .. } => "ignore+tell",
            Verdict::Withdraw => "withdraw",
            Verdict::Expired => "expired",
            Verdict::Reject => "reject",
            Verdict::Approve => "approve",
        }
    }

    /// (who, reaction, added, requester, state, seconds to expiry, self-approval allowed, verdict)
    type Row = (
        &'static str,
        &'static str,
        bool,
        &'static str,
        RequestState,
        i64,
        bool,
        &'static str,
    );

    #[test]
    fn the_approval_policy_as_a_table() {
        use RequestState::*;
        // (who, reaction, added, requester, state, seconds to expiry, self-approval allowed, verdict)
        #[rustfmt::skip]
        let table: &[Row] = &[
            // Officers approve; any configured approve reaction and skin tone counts.
            (OFFICER, CHECK, true, ONCALL, Pending, 600, false, "approve"),
            (OFFICER, "+1::skin-tone-3", true, ONCALL, Pending, 600, false, "approve"),
            (OFFICER2, "+1", true, ONCALL, Pending, 1, false, "approve"),
            // Nobody else does, and they are told why.
            (OUTSIDER, CHECK, true, ONCALL, Pending, 600, false, "ignore+tell"),
            (ONCALL, CHECK, true, ONCALL, Pending, 600, false, "ignore+tell"),
            // The requester approving their own request: only when allowed, and only if an officer.
            (OFFICER, CHECK, true, OFFICER, Pending, 600, false, "ignore+tell"),
            (OFFICER, CHECK, true, OFFICER, Pending, 600, true, "approve"),
            (ONCALL, CHECK, true, ONCALL, Pending, 600, true, "ignore+tell"),
            // Rejecting: an officer or the requester; nobody else.
            (OFFICER, "x", true, ONCALL, Pending, 600, false, "reject"),
            (ONCALL, "x", true, ONCALL, Pending, 600, false, "reject"),
            (OUTSIDER, "x", true, ONCALL, Pending, 600, false, "ignore+tell"),
            // Other emoji and drbot's own reactions change nothing, silently.
            (OFFICER, "eyes", true, ONCALL, Pending, 600, false, "ignore"),
            (BOT, CHECK, true, ONCALL, Pending, 600, false, "ignore"),
            (BOT, "x", true, ONCALL, Pending, 600, false, "ignore"),
            // Expiry: at or after `expires_at`, whoever reacts.
            (OFFICER, CHECK, true, ONCALL, Pending, 0, false, "expired"),
            (OFFICER, CHECK, true, ONCALL, Pending, -60, false, "expired"),
            (OUTSIDER, "x", true, ONCALL, Pending, -60, false, "expired"),
            // A decided request cannot be decided again.
            (OFFICER, CHECK, true, ONCALL, Executing, 600, false, "ignore+tell"),
            (OFFICER, CHECK, true, ONCALL, Executed, 600, false, "ignore+tell"),
            (OFFICER, "x", true, ONCALL, Executing, 600, false, "ignore+tell"),
            (OFFICER, CHECK, true, ONCALL, Rejected, 600, false, "ignore+tell"),
            (OFFICER, CHECK, true, ONCALL, Expired, 600, false, "ignore+tell"),
            (OFFICER, CHECK, true, ONCALL, Cancelled, 600, false, "ignore+tell"),
            // Removing an approval withdraws it only while pending; removing a reject does nothing.
            (OFFICER, CHECK, false, ONCALL, Pending, 600, false, "withdraw"),
            (OUTSIDER, "+1", false, ONCALL, Pending, 600, false, "withdraw"),
            (OFFICER, CHECK, false, ONCALL, Executing, 600, false, "ignore"),
            (OFFICER, "x", false, ONCALL, Pending, 600, false, "ignore"),
            (OFFICER, "eyes", false, ONCALL, Pending, 600, false, "ignore"),
        ];
        for (i, (who, name, added, requester, state, expires, allow_self, want)) in
            table.iter().enumerate()
        {
            let got = verdict(
                &request(requester, *state, *expires),
                &reaction(who, name, *added),
                &settings(*allow_self),
                BOT,
                now(),
            );
            assert_eq!(
                shape(&got),
                *want,
                "row {i}: {who} {} :{name}: on a {} request by {requester}: {got:?}",
                if *added { "adds" } else { "removes" },
                state.as_str()
            );
        }
    }

    #[test]
    fn refusals_say_who_may_decide() {
        let r = request(ONCALL, RequestState::Pending, 600);
        let Verdict::Ignore {
            tell: Some(tell),
            audit,
        } = verdict(
            &r,
            &reaction(OUTSIDER, "white_check_mark", true),
            &settings(false),
            BOT,
            now(),
        )
        else {
            panic!("an outsider's approval is refused")
        };
        assert!(tell.contains("<@U0OFFICER1>, <@U0OFFICER2>"), "{tell}");
        assert!(audit.contains("not a security officer"), "{audit}");
    }

    #[test]
    fn enough_distinct_approvers_execute() {
        let mut two = settings(false);
        two.required_approvals = 2;
        assert!(!enough(1, &two));
        assert!(enough(2, &two));
        assert!(enough(1, &settings(false)));
    }
}
