//! The closed list of actions a command file may name (`action = "…"` in
//! `commands/*.toml`). The router owns it: a command file naming an action that does not
//! exist is refused when the definitions load. What each action does is in
//! `crate::actions` (its registry maps a kind to its functions).

use std::str::FromStr;

/// What an action does to AWS, which decides how a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Answered by drbot from its own state (help, incidents, the approval queue).
    Local,
    /// Reads AWS: answered inline when quick, else through `response_url`.
    Reads,
    /// Changes AWS: planned after the acknowledgement, then executed once (after an
    /// officer's approval when the command's policy is `officer`).
    Changes,
}

macro_rules! action_kinds {
    ($($variant:ident = $name:literal, $effect:ident;)*) => {
        /// Every action the router can dispatch to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ActionKind {
            $($variant,)*
        }

        impl ActionKind {
            pub const ALL: &'static [ActionKind] = &[$(ActionKind::$variant,)*];

            /// The name used in `commands/*.toml`.
            pub fn name(self) -> &'static str {
                match self {
                    $(ActionKind::$variant => $name,)*
                }
            }

            /// What it does to AWS.
            pub fn effect(self) -> Effect {
                match self {
                    $(ActionKind::$variant => Effect::$effect,)*
                }
            }
        }
    };
}

// One line per action: its variant, its name in command files, its effect.
action_kinds! {
    Help = "help", Local;
    Status = "status", Reads;
    EcsRollback = "ecs_rollback", Changes;
    WafBlock = "waf_block", Changes;
    WafUnblock = "waf_unblock", Changes;
    WafBlocked = "waf_blocked", Reads;
    RdsSnapshot = "rds_snapshot", Changes;
    RdsRestore = "rds_restore", Changes;
    RdsPitr = "rds_pitr", Changes;
    RdsRestoreTest = "rds_restore_test", Changes;
    RdsBackups = "rds_backups", Reads;
    Report = "report", Reads;
    Readiness = "readiness", Reads;
    EcsScale = "ecs_scale", Changes;
    RdsSnapshotCopy = "rds_snapshot_copy", Changes;
    RdsCutover = "rds_cutover", Changes;
    DnsFailover = "dns_failover", Changes;
    WafRateLimit = "waf_rate_limit", Changes;
    IncidentOpen = "incident_open", Local;
    IncidentUpdate = "incident_update", Local;
    IncidentResolve = "incident_resolve", Local;
    IncidentList = "incident_list", Local;
    Timeline = "timeline", Local;
    Approvals = "approvals", Local;
    Cancel = "cancel", Local;
    PlanRun = "plan_run", Changes;
    RunControl = "run_control", Local;
    NotifyUsers = "notify_users", Changes;
    IncidentPostmortem = "incident_postmortem", Local;
    Followup = "followup", Local;
}

impl ActionKind {
    /// Actions that change AWS whatever their flags.
    pub fn changes_aws(self) -> bool {
        self.effect() == Effect::Changes
    }

    /// Whether this command, with the flags it was given, changes AWS: a flag that raises
    /// the approval to `officer` (`backups --enforce`) makes a read a change.
    pub fn changes_aws_with(self, cmd: &super::ParsedCommand) -> bool {
        self.changes_aws()
            || cmd.def.flags.iter().any(|f| {
                f.approval == Some(super::Approval::Officer) && cmd.flag(&f.name).is_some()
            })
    }
}

/// A command file names an action drbot does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("action '{0}' does not exist; known actions: {known}", known = known())]
pub struct UnknownAction(pub String);

fn known() -> String {
    ActionKind::ALL
        .iter()
        .map(|a| a.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for ActionKind {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ActionKind::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAction(s.to_string()))
    }
}

impl<'de> serde::Deserialize<'de> for ActionKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for ActionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
