//! One file per action (STYLE §1). `ActionKind` is the closed list of actions a command
//! file may name; `commands/*.toml` picks one with `action = "…"`.

use std::str::FromStr;
use std::sync::Arc;

use crate::app::App;
use crate::aws::AwsError;
use crate::gate::execute::Run;
use crate::gate::request::Asker;
use crate::gate::Planned;
use crate::router::ParsedCommand;
use crate::store::RequestState;

pub mod approvals;
pub mod cancel;
pub mod dns_failover;
pub mod ecs_rollback;
pub mod ecs_scale;
pub mod help;
pub mod incident_list;
pub mod incident_open;
pub mod incident_resolve;
pub mod incident_update;
pub mod rds_backups;
pub mod rds_cutover;
pub mod rds_pitr;
pub mod rds_restore;
pub mod rds_restore_test;
pub mod rds_snapshot;
pub mod rds_snapshot_copy;
pub mod report;
pub mod status;
pub mod timeline;
pub mod waf_block;
pub mod waf_blocked;
pub mod waf_rate_limit;
pub mod waf_unblock;

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
    RdsRestoreTest,
    RdsBackups,
    Report,
    EcsScale,
    RdsSnapshotCopy,
    RdsCutover,
    DnsFailover,
    WafRateLimit,
    IncidentOpen,
    IncidentUpdate,
    IncidentResolve,
    IncidentList,
    Timeline,
    Approvals,
    Cancel,
}

impl ActionKind {
    pub const ALL: [ActionKind; 24] = [
        ActionKind::Help,
        ActionKind::Status,
        ActionKind::EcsRollback,
        ActionKind::WafBlock,
        ActionKind::WafUnblock,
        ActionKind::WafBlocked,
        ActionKind::RdsSnapshot,
        ActionKind::RdsRestore,
        ActionKind::RdsPitr,
        ActionKind::RdsRestoreTest,
        ActionKind::RdsBackups,
        ActionKind::Report,
        ActionKind::EcsScale,
        ActionKind::RdsSnapshotCopy,
        ActionKind::RdsCutover,
        ActionKind::DnsFailover,
        ActionKind::WafRateLimit,
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
            ActionKind::RdsRestoreTest => "rds_restore_test",
            ActionKind::RdsBackups => "rds_backups",
            ActionKind::Report => "report",
            ActionKind::EcsScale => "ecs_scale",
            ActionKind::RdsSnapshotCopy => "rds_snapshot_copy",
            ActionKind::RdsCutover => "rds_cutover",
            ActionKind::DnsFailover => "dns_failover",
            ActionKind::WafRateLimit => "waf_rate_limit",
            ActionKind::IncidentOpen => "incident_open",
            ActionKind::IncidentUpdate => "incident_update",
            ActionKind::IncidentResolve => "incident_resolve",
            ActionKind::IncidentList => "incident_list",
            ActionKind::Timeline => "timeline",
            ActionKind::Approvals => "approvals",
            ActionKind::Cancel => "cancel",
        }
    }
}

impl ActionKind {
    /// Actions that change AWS: planned after the acknowledgement, then executed once
    /// (after approval when the command's policy is `officer`).
    pub fn changes_aws(self) -> bool {
        matches!(
            self,
            ActionKind::EcsRollback
                | ActionKind::WafBlock
                | ActionKind::WafUnblock
                | ActionKind::RdsSnapshot
                | ActionKind::RdsRestore
                | ActionKind::RdsPitr
                | ActionKind::RdsRestoreTest
                | ActionKind::EcsScale
                | ActionKind::RdsSnapshotCopy
                | ActionKind::RdsCutover
                | ActionKind::DnsFailover
                | ActionKind::WafRateLimit
        )
    }

    /// Whether this command, with the flags it was given, changes AWS (`backups` reads;
    /// `backups --enforce` changes).
    pub fn changes_aws_with(self, cmd: &ParsedCommand) -> bool {
        self.changes_aws() || (self == ActionKind::RdsBackups && cmd.flag("enforce").is_some())
    }

    /// Read-only actions that call AWS: answered inline when quick, else via `response_url`.
    pub fn reads_aws(self) -> bool {
        matches!(
            self,
            ActionKind::WafBlocked | ActionKind::Status | ActionKind::RdsBackups
        )
    }
}

/// Why an action could not be planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanFailure {
    /// Cannot be done as asked; shown to the user with the usage.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

impl From<ecs_rollback::PlanError> for PlanFailure {
    fn from(e: ecs_rollback::PlanError) -> Self {
        match e {
            ecs_rollback::PlanError::Invalid(why) => PlanFailure::Invalid(why),
            ecs_rollback::PlanError::Aws(e) => PlanFailure::Aws(e),
        }
    }
}

/// Offline checks of a command's arguments, run on the acknowledgement path so bad input
/// is refused at once and never reaches AWS.
pub fn validate(
    action: ActionKind,
    cmd: &ParsedCommand,
    settings: &crate::config::Settings,
) -> Result<(), String> {
    match action {
        ActionKind::EcsRollback => ecs_rollback::parse(cmd, settings).map(|_| ()),
        ActionKind::WafBlock => waf_block::parse(cmd, settings).map(|_| ()),
        ActionKind::WafUnblock => waf_unblock::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsSnapshot => rds_snapshot::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsRestore => rds_restore::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsPitr => rds_pitr::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsRestoreTest => rds_restore_test::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsBackups => rds_backups::parse(cmd, settings).map(|_| ()),
        ActionKind::EcsScale => ecs_scale::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsSnapshotCopy => rds_snapshot_copy::parse(cmd, settings).map(|_| ()),
        ActionKind::RdsCutover => rds_cutover::parse(cmd, settings).map(|_| ()),
        ActionKind::DnsFailover => dns_failover::parse(cmd, settings).map(|_| ()),
        ActionKind::WafRateLimit => waf_rate_limit::parse(cmd, settings).map(|_| ()),
        _ => Ok(()),
    }
}

/// Reads AWS and describes the exact change `cmd` would make.
pub async fn plan(
    app: &Arc<App>,
    action: ActionKind,
    cmd: &ParsedCommand,
    asker: &Asker,
) -> Result<Planned, PlanFailure> {
    let command = cmd.def.name.clone();
    match action {
        ActionKind::EcsRollback => {
            let args = ecs_rollback::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let ecs = app.aws.ecs_in(
                app.settings
                    .region_of(args.service.region.as_deref())
                    .as_deref(),
            );
            let plan = ecs_rollback::plan(&ecs, &args).await?;
            planned(command, action, &plan, ecs_rollback::describe(&plan))
        }
        ActionKind::WafBlock => {
            let args = waf_block::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) = waf_block::plan(app.aws.waf(args.set.scope), &args).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::WafUnblock => {
            let args = waf_unblock::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) = waf_unblock::plan(app.aws.waf(args.set.scope), &args).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsSnapshot => {
            let db = rds_snapshot::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) = rds_snapshot::plan(
                &app.rds_for(&db),
                &db,
                &asker.user,
                asker.incident.as_deref(),
            )
            .await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsRestore => {
            let args = rds_restore::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let source = app.rds_for(&args.db);
            let target = match &args.region {
                Some(r) => app.aws.rds_in(Some(r)),
                None => source.clone(),
            };
            let (plan, summary) = rds_restore::plan(&source, &target, &args).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsPitr => {
            let args = rds_pitr::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) = rds_pitr::plan(&app.rds_for(&args.db), &args).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsRestoreTest => {
            let args = rds_restore_test::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) =
                rds_restore_test::plan(&app.rds_for(&args.db), &args, &app.settings).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsBackups => {
            let args = rds_backups::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) =
                rds_backups::plan(&app.rds_for(&args.db), &args, &app.settings).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::EcsScale => {
            let args = ecs_scale::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) =
                ecs_scale::plan(&app.ecs_for(&args.service), &args, &app.settings).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsSnapshotCopy => {
            let args =
                rds_snapshot_copy::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let from = app.rds_for(&args.db);
            let to = app.aws.rds_in(Some(&args.to_region));
            let (plan, summary) = rds_snapshot_copy::plan(
                &from,
                &to,
                &args,
                app.aws.default_region().as_deref(),
                (&asker.user, asker.incident.as_deref()),
                None,
            )
            .await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::RdsCutover => {
            let args = rds_cutover::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let ssm = app
                .aws
                .ssm_in(app.settings.region_of(args.db.region.as_deref()).as_deref());
            let (plan, summary) =
                rds_cutover::plan(&app.rds_for(&args.db), &ssm, &args, &app.settings).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::DnsFailover => {
            let args = dns_failover::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) = dns_failover::plan(&app.aws.route53, &args).await?;
            planned(command, action, &plan, summary)
        }
        ActionKind::WafRateLimit => {
            let args = waf_rate_limit::parse(cmd, &app.settings).map_err(PlanFailure::Invalid)?;
            let (plan, summary) = waf_rate_limit::plan(app.aws.waf(args.acl.scope), &args).await?;
            planned(command, action, &plan, summary)
        }
        other => Err(PlanFailure::Invalid(format!(
            "`{}` has no planner",
            other.name()
        ))),
    }
}

/// Runs a read-only action that calls AWS and returns the answer's text.
pub async fn read(
    app: &Arc<App>,
    action: ActionKind,
    cmd: &ParsedCommand,
    asker: &Asker,
) -> String {
    match action {
        ActionKind::WafBlocked => waf_blocked::reply(app).await,
        ActionKind::Status => status::reply(app).await,
        ActionKind::RdsBackups => rds_backups::reply(app, cmd, &asker.user, &asker.channel).await,
        ActionKind::Report => report::post(app, cmd, &asker.user, &asker.channel).await,
        other => format!("`{}` is not a read action", other.name()),
    }
}

/// The plan as the gate stores and hashes it. A plan that cannot be serialised is refused
/// (its hash would bind nothing), never stored as `null`.
fn planned<T: serde::Serialize>(
    command: String,
    action: ActionKind,
    plan: &T,
    summary: String,
) -> Result<Planned, PlanFailure> {
    let plan = serde_json::to_value(plan).map_err(|e| {
        PlanFailure::Invalid(format!(
            "drbot could not record its plan ({e}); nothing was asked"
        ))
    })?;
    Ok(Planned {
        command,
        action: action.name().to_string(),
        plan,
        summary,
    })
}

/// Executes a request whose plan was made by [`plan`].
pub async fn execute(action: ActionKind, run: &Run<'_>) {
    match action {
        ActionKind::EcsRollback => ecs_rollback::execute(run).await,
        ActionKind::WafBlock => waf_block::execute(run).await,
        ActionKind::WafUnblock => waf_unblock::execute(run).await,
        ActionKind::RdsSnapshot => rds_snapshot::execute(run).await,
        ActionKind::RdsRestore => rds_restore::execute(run).await,
        ActionKind::RdsPitr => rds_pitr::execute(run).await,
        ActionKind::RdsRestoreTest => rds_restore_test::execute(run).await,
        ActionKind::RdsBackups => rds_backups::execute(run).await,
        ActionKind::EcsScale => ecs_scale::execute(run).await,
        ActionKind::RdsSnapshotCopy => rds_snapshot_copy::execute(run).await,
        ActionKind::RdsCutover => rds_cutover::execute(run).await,
        ActionKind::DnsFailover => dns_failover::execute(run).await,
        ActionKind::WafRateLimit => waf_rate_limit::execute(run).await,
        other => {
            run.finish(
                RequestState::Failed,
                &format!("this drbot cannot execute `{}`", other.name()),
            )
            .await
        }
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
