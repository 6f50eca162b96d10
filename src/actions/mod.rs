//! One file per action (STYLE §1). `ActionKind` is the closed list of actions a command
//! file may name; `commands/*.toml` picks one with `action = "…"`.

use std::str::FromStr;

pub mod approvals;
pub mod cancel;
pub mod ecs_rollback;
pub mod help;

/// Every action the router can dispatch to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionKind {
    Help,
    Status,
    EcsRollback,
    WafBlock,
    WafUnblock,
    WafBlocked,
    RdsSnapshot,
    RdsRestore,
    RdsPitr,
    IncidentOpen,
    IncidentUpdate,
    IncidentResolve,
    IncidentList,
    Timeline,
    Approvals,
    Cancel,
}

impl ActionKind {
    pub const ALL: [ActionKind; 16] = [
        ActionKind::Help,
        ActionKind::Status,
        ActionKind::EcsRollback,
        ActionKind::WafBlock,
        ActionKind::WafUnblock,
        ActionKind::WafBlocked,
        ActionKind::RdsSnapshot,
        ActionKind::RdsRestore,
        ActionKind::RdsPitr,
        ActionKind::IncidentOpen,
        ActionKind::IncidentUpdate,
        ActionKind::IncidentResolve,
        ActionKind::IncidentList,
        ActionKind::Timeline,
        ActionKind::Approvals,
        ActionKind::Cancel,
    ];

    /// The name used in `commands/*.toml`.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::Help => "help",
            ActionKind::Status => "status",
            ActionKind::EcsRollback => "ecs_rollback",
            ActionKind::WafBlock => "waf_block",
            ActionKind::WafUnblock => "waf_unblock",
            ActionKind::WafBlocked => "waf_blocked",
            ActionKind::RdsSnapshot => "rds_snapshot",
            ActionKind::RdsRestore => "rds_restore",
            ActionKind::RdsPitr => "rds_pitr",
            ActionKind::IncidentOpen => "incident_open",
            ActionKind::IncidentUpdate => "incident_update",
            ActionKind::IncidentResolve => "incident_resolve",
            ActionKind::IncidentList => "incident_list",
            ActionKind::Timeline => "timeline",
            ActionKind::Approvals => "approvals",
            ActionKind::Cancel => "cancel",
        }
    }

    /// Whether this build implements the action. Commands whose action is not available
    /// yet are refused with a clear message; `tests/it/router.rs` lists them.
    pub fn is_available(self) -> bool {
        matches!(
            self,
            ActionKind::Help | ActionKind::EcsRollback | ActionKind::Approvals | ActionKind::Cancel
        )
    }
}

impl FromStr for ActionKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or(())
    }
}
