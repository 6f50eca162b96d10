//! The approval gate (SPEC §7): a planned change becomes a request `A-<n>` posted in the
//! channel; officers' reactions decide it; an approved request executes at most once,
//! after AWS is re-read and found unchanged since the plan.
//!
//! - [`request`]: store the plan, post the request message, add the reactions.
//! - [`reactions`]: `reaction_added` / `reaction_removed` → verdicts, in one transaction
//!   with the event's dedupe and its audit entry.
//! - [`execute`]: re-check, execute, follow, report.
//! - [`verdict`]: the approval policy, a pure function of request, reaction, settings, time.
//! - [`message`]: how a request reads in Slack, in each state.
//! - [`publish`]: a notice to users, whose approval queues its publications.

pub mod execute;
pub mod message;
pub mod publish;
pub mod reactions;
pub mod request;
pub mod verdict;

use sha2::{Digest, Sha256};

/// A change planned by an action, ready to be put to the officers.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The `/dr` command's name (e.g. `rollback`).
    pub name: String,
    /// The action that made the plan and executes it.
    pub action: crate::router::ActionKind,
    /// The plan as JSON: exactly what the approval binds to.
    pub plan: serde_json::Value,
    /// The plan as officers read it.
    pub summary: String,
}

/// Why an action could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanFailure {
    /// Cannot be done as asked; shown to the user with the usage.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Aws(#[from] crate::aws::AwsError),
}

impl From<crate::router::Invalid> for PlanFailure {
    fn from(why: crate::router::Invalid) -> Self {
        PlanFailure::Invalid(why.0)
    }
}

/// The hash an approval is bound to.
pub fn plan_hash(plan: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(plan.to_string().as_bytes()))
}

/// `+1::skin-tone-3` counts as `+1`.
pub fn base_reaction(name: &str) -> &str {
    name.split("::").next().unwrap_or(name)
}
