//! One file per action (STYLE §1): its parse, plan and execute (or read), the IAM actions
//! it needs, and its entry in the [`registry`], which maps the router's `ActionKind` to it.
//! Adding a command: its `commands/<name>.toml`, its action file, its variant in
//! `router::action`, and the line here that declares its module and its registry arm.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::app::App;
use crate::config::Settings;
use crate::gate::execute::Run;
use crate::gate::request::Asker;
use crate::gate::Planned;
use crate::router::{Approval, CommandSet, Invalid, ParsedCommand};
use crate::store::RequestState;

pub use crate::gate::PlanFailure;
pub use crate::router::ActionKind;

pub mod approvals;
pub mod blocklist;
pub mod cancel;
pub mod database;
pub mod followup;
pub mod help;
pub mod incident;
pub mod incident_list;
pub mod incident_open;
pub mod incident_postmortem;
pub mod incident_resolve;
pub mod incident_update;
pub mod readiness;
pub mod run_control;
pub mod runs;
pub mod timeline;
pub mod verify;

/// What an action does, each step with a default for the actions that have no such step.
pub trait Action: Sync {
    /// Offline checks of the arguments, run on the acknowledgement path so bad input is
    /// refused at once and never reaches AWS.
    fn validate(&self, _cmd: &ParsedCommand, _settings: &Settings) -> Result<(), Invalid> {
        Ok(())
    }

    /// Reads AWS and describes the exact change the command would make.
    fn plan<'a>(
        &'a self,
        _app: &'a Arc<App>,
        cmd: &'a ParsedCommand,
        _asker: &'a Asker,
    ) -> BoxFuture<'a, Result<Planned, PlanFailure>> {
        let why = format!("`{}` has no planner", cmd.def.action);
        Box::pin(async move { Err(PlanFailure::Invalid(why)) })
    }

    /// A read-only answer from AWS, as the text to show.
    fn read<'a>(
        &'a self,
        _app: &'a Arc<App>,
        cmd: &'a ParsedCommand,
        _asker: &'a Asker,
    ) -> BoxFuture<'a, String> {
        let text = format!("`{}` is not a read action", cmd.def.action);
        Box::pin(async move { text })
    }

    /// What must already exist in AWS for it to run, whatever earlier steps of a plan make
    /// (a plan's dry run asks a step that is planned only when reached): one line per
    /// problem.
    fn prerequisites<'a>(
        &'a self,
        _app: &'a Arc<App>,
        _cmd: &'a ParsedCommand,
    ) -> BoxFuture<'a, Vec<String>> {
        Box::pin(async { Vec::new() })
    }

    /// Whether it plans changes to AWS (a command whose flag raises its approval needs one).
    fn plans(&self) -> bool {
        false
    }

    /// The IAM actions its plan, read and execute need (`drbot iam-policy` grants them on
    /// the configured resources).
    fn iam(&self) -> &'static [&'static str] {
        &[]
    }

    /// Executes a request whose plan this action made.
    fn execute<'a>(&'a self, run: &'a Run<'a>) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let why = format!("this drbot cannot execute `{}`", run.request.action);
            run.finish(RequestState::Failed, &why).await
        })
    }
}

/// The registry entry of an action that changes AWS: `validate` is the file's `parse`,
/// `execute` its `execute`; the invocation names the IAM actions it needs and gives the
/// body of `plan` — from the parsed arguments to the plan and its summary — (and of `read`,
/// for an action that reads without a flag and changes with one).
macro_rules! changes_aws {
    (
        iam: [$($iam:literal),* $(,)?],
        plan($app:ident, $args:ident, $asker:ident) { $($plan:tt)* }
        $(read($rapp:ident, $rcmd:ident, $rasker:ident) { $($read:tt)* })?
        $(prerequisites($papp:ident, $pargs:ident) { $($pre:tt)* })?
    ) => {
        /// This action's entry in the registry (`crate::actions::registry`).
        pub struct Entry;

        impl super::Action for Entry {
            fn plans(&self) -> bool {
                true
            }

            fn iam(&self) -> &'static [&'static str] {
                &[$($iam),*]
            }

            fn validate(
                &self,
                cmd: &$crate::router::ParsedCommand,
                settings: &$crate::config::Settings,
            ) -> Result<(), $crate::router::Invalid> {
                parse(cmd, settings).map(|_| ())
            }

            fn plan<'a>(
                &'a self,
                $app: &'a std::sync::Arc<$crate::app::App>,
                cmd: &'a $crate::router::ParsedCommand,
                $asker: &'a $crate::gate::request::Asker,
            ) -> futures_util::future::BoxFuture<
                'a,
                Result<$crate::gate::Planned, $crate::gate::PlanFailure>,
            > {
                Box::pin(async move {
                    let $args = parse(cmd, &$app.settings)?;
                    let (plan, summary) = { $($plan)* };
                    super::planned(cmd, &plan, summary)
                })
            }

            $(
            fn read<'a>(
                &'a self,
                $rapp: &'a std::sync::Arc<$crate::app::App>,
                $rcmd: &'a $crate::router::ParsedCommand,
                $rasker: &'a $crate::gate::request::Asker,
            ) -> futures_util::future::BoxFuture<'a, String> {
                Box::pin(async move { $($read)* })
            }
            )?

            $(
            fn prerequisites<'a>(
                &'a self,
                $papp: &'a std::sync::Arc<$crate::app::App>,
                cmd: &'a $crate::router::ParsedCommand,
            ) -> futures_util::future::BoxFuture<'a, Vec<String>> {
                Box::pin(async move {
                    match parse(cmd, &$papp.settings) {
                        Ok($pargs) => { $($pre)* }
                        Err(why) => vec![why.0],
                    }
                })
            }
            )?

            fn execute<'a>(
                &'a self,
                run: &'a $crate::gate::execute::Run<'a>,
            ) -> futures_util::future::BoxFuture<'a, ()> {
                Box::pin(async move {
                    // An unreadable plan has ended the run as failed.
                    if let Some(approved) = run.approved_plan().await {
                        execute(run, approved).await
                    }
                })
            }
        }
    };
}
pub(crate) use changes_aws;

/// The registry entry of a read-only action that calls AWS: the invocation gives the body
/// of `read`; nothing to validate beyond the router's typed arguments.
macro_rules! reads_aws {
    (
        iam: [$($iam:literal),* $(,)?],
        read($app:ident, $cmd:ident, $asker:ident) { $($read:tt)* }
    ) => {
        /// This action's entry in the registry (`crate::actions::registry`).
        pub struct Entry;

        impl super::Action for Entry {
            fn iam(&self) -> &'static [&'static str] {
                &[$($iam),*]
            }

            fn read<'a>(
                &'a self,
                $app: &'a std::sync::Arc<$crate::app::App>,
                $cmd: &'a $crate::router::ParsedCommand,
                $asker: &'a $crate::gate::request::Asker,
            ) -> futures_util::future::BoxFuture<'a, String> {
                Box::pin(async move { $($read)* })
            }
        }
    };
}
pub(crate) use reads_aws;

/// Actions answered from drbot's own state by the command handler (help, incidents, the
/// approval queue): nothing to plan, read or execute.
struct Local;

impl Action for Local {}

/// Declares each action's module and its arm in [`registry`], one line per action; the
/// actions answered from drbot's own state are listed first, under `local`. The match has no
/// catch-all: an `ActionKind` missing here does not compile.
macro_rules! registry {
    (local: [$($local:ident),* $(,)?], $($kind:ident => $module:ident,)*) => {
        $(pub mod $module;)*

        /// The functions of each action.
        pub fn registry(kind: ActionKind) -> &'static dyn Action {
            match kind {
                $(ActionKind::$kind => &$module::Entry,)*
                $(ActionKind::$local)|* => &Local,
            }
        }
    };
}

registry! {
    local: [
        Help, IncidentOpen, IncidentUpdate, IncidentResolve, IncidentList, Timeline, Approvals,
        Cancel, RunControl, IncidentPostmortem, Followup,
    ],
    Status => status,
    WafBlocked => waf_blocked,
    Report => report,
    EcsRollback => ecs_rollback,
    WafBlock => waf_block,
    WafUnblock => waf_unblock,
    RdsSnapshot => rds_snapshot,
    RdsRestore => rds_restore,
    RdsPitr => rds_pitr,
    RdsRestoreTest => rds_restore_test,
    RdsBackups => rds_backups,
    EcsScale => ecs_scale,
    RdsSnapshotCopy => rds_snapshot_copy,
    RdsCutover => rds_cutover,
    DnsFailover => dns_failover,
    WafRateLimit => waf_rate_limit,
    PlanRun => plan_run,
    Readiness => ready,
    NotifyUsers => notify_users,
}

/// Refuses command files whose flag raises the approval of an action that plans no change
/// (it would be refused only when someone types it): what to fix, per command.
pub fn check_commands(commands: &CommandSet) -> Result<(), crate::router::DefinitionError> {
    for def in commands.all() {
        let raised = def
            .flags
            .iter()
            .find(|f| f.approval == Some(Approval::Officer));
        if let Some(flag) = raised {
            if !registry(def.action).plans() {
                return Err(crate::router::DefinitionError {
                    file: commands.source.clone(),
                    message: format!(
                        "command `{}`: flag `--{}` asks for an officer's approval, but action `{}` makes no change to approve; remove `approval` from the flag or use an action that changes AWS",
                        def.name,
                        flag.name,
                        def.action.name()
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Offline checks of a command's arguments (see [`Action::validate`]).
pub fn validate(cmd: &ParsedCommand, settings: &Settings) -> Result<(), Invalid> {
    registry(cmd.def.action).validate(cmd, settings)
}

/// Reads AWS and describes the exact change `cmd` would make.
pub async fn plan(
    app: &Arc<App>,
    cmd: &ParsedCommand,
    asker: &Asker,
) -> Result<Planned, PlanFailure> {
    registry(cmd.def.action).plan(app, cmd, asker).await
}

/// What must already exist for `cmd` to run (see [`Action::prerequisites`]).
pub async fn prerequisites(app: &Arc<App>, cmd: &ParsedCommand) -> Vec<String> {
    registry(cmd.def.action).prerequisites(app, cmd).await
}

/// Runs a read-only action that calls AWS and returns the answer's text.
pub async fn read(app: &Arc<App>, cmd: &ParsedCommand, asker: &Asker) -> String {
    registry(cmd.def.action).read(app, cmd, asker).await
}

/// The plan as the gate stores and hashes it. A plan that cannot be serialised is refused
/// (its hash would bind nothing), never stored as `null`.
fn planned<T: serde::Serialize>(
    cmd: &ParsedCommand,
    plan: &T,
    summary: String,
) -> Result<Planned, PlanFailure> {
    let plan = serde_json::to_value(plan).map_err(|e| {
        PlanFailure::Invalid(format!(
            "drbot could not record its plan ({e}); nothing was asked"
        ))
    })?;
    Ok(Planned {
        name: cmd.def.name.clone(),
        action: cmd.def.action,
        plan,
        summary,
    })
}

/// Executes request `request_id` (already `executing`) with its action; an executed
/// request ticks its step in its incident's checklist.
pub async fn run(app: Arc<App>, request_id: i64) {
    // Nothing is sent to AWS without a current lease: a replica whose store stalled past
    // it waits to renew, then goes on only if the request is still its own.
    if !app.store.await_lease(app.store.lease()).await {
        tracing::error!(action_id = %format!("A-{request_id}"), "not executed: this replica's lease on the store has lapsed; another replica will mark it interrupted");
        return;
    }
    let request = match app.store.request(request_id).await {
        Ok(Some(r))
            if r.state == RequestState::Executing
                && r.owner.as_deref() == Some(app.store.replica()) =>
        {
            r
        }
        Ok(_) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not read an approved request");
            return;
        }
    };
    // A request typed in the web console: its execution's events say so too.
    let via = crate::store::via_of(&request.response_url);
    crate::store::VIA
        .scope(via, async {
            let run = Run::new(&app, &request);
            match request.action.parse::<ActionKind>() {
                Ok(action) => registry(action).execute(&run).await,
                Err(unknown) => {
                    run.finish(
                        RequestState::Failed,
                        &format!("this drbot cannot execute it: {unknown}"),
                    )
                    .await
                }
            }
            if let (Some(RequestState::Executed), Some(incident)) = (run.ended(), &request.incident)
            {
                crate::actions::incident::tick(&app, incident, &command_name(&app, &request)).await;
            }
        })
        .await;
    // A plan run waiting on this request goes on at once, not at its next half-second look.
    runs::drive::WAKE.notify_one();
}

/// The command a request was made with. Requests stored before the name was kept
/// beside the text have only the text, so it is routed again.
fn command_name(app: &App, request: &crate::store::Request) -> String {
    if !request.command_name.is_empty() {
        return request.command_name.clone();
    }
    crate::router::parse(&request.command, &app.commands, &app.settings)
        .map(|cmd| cmd.def.name.clone())
        .unwrap_or_default()
}

/// Starts the executions a committed decision asked for.
pub async fn follow_up(app: Arc<App>, follow: Vec<crate::gate::reactions::FollowUp>) {
    use tracing::Instrument;
    for step in follow {
        if let crate::gate::reactions::FollowUp::Execute { request_id } = step {
            let span = tracing::info_span!("action", action_id = %format!("A-{request_id}"));
            tokio::spawn(run(app.clone(), request_id).instrument(span));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The IAM actions in a policy's statements.
    fn granted(policy: &serde_json::Value) -> BTreeSet<String> {
        let statements = policy["Statement"].as_array().cloned().unwrap_or_default();
        statements
            .iter()
            .flat_map(|s| match &s["Action"] {
                serde_json::Value::String(one) => vec![one.clone()],
                many => many
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_string))
                    .collect(),
            })
            .collect()
    }

    #[test]
    fn every_action_names_the_iam_actions_it_needs_and_the_policy_grants_no_other() {
        let text = include_str!("../../drbot.example.toml");
        let settings = Settings::parse(text, "drbot.example.toml").expect("the example parses");
        let scope = crate::iam::Scope {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        let policy = crate::iam::policy(&settings, &scope);
        let mut declared = BTreeSet::new();
        for kind in ActionKind::ALL {
            let iam = registry(*kind).iam();
            // A plan run composes the other actions: their IAM actions are its own. A
            // notice to users changes the status page and mailboxes, not AWS.
            if kind.effect() == crate::router::Effect::Changes
                && !matches!(kind, ActionKind::PlanRun | ActionKind::NotifyUsers)
            {
                assert!(
                    !iam.is_empty(),
                    "{} changes AWS but names no IAM action",
                    kind.name()
                );
            }
            declared.extend(iam.iter().map(|a| a.to_string()));
        }
        // With every kind of resource configured (the example), the policy grants exactly
        // what the actions name: nothing an action needs is missing, nothing is extra.
        assert_eq!(declared, granted(&policy));
    }

    #[test]
    fn a_flag_asking_an_officer_to_approve_a_read_is_refused_when_the_commands_load() {
        let help =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/commands/help.toml"))
                .expect("help.toml");
        let status = r#"
name = "status"
action = "status"
summary = "Status"
usage = "status [--deep]"
approval = "none"
[[flags]]
name = "deep"
type = "switch"
approval = "officer"
"#;
        let files = vec![
            ("help.toml".to_string(), help),
            ("status.toml".to_string(), status.to_string()),
        ];
        let commands = CommandSet::from_files(files, "test").expect("the files parse");
        let refused = check_commands(&commands)
            .expect_err("a read cannot be approved")
            .to_string();
        assert!(
            refused.contains("`--deep`") && refused.contains("`status`"),
            "{refused}"
        );
        let shipped = CommandSet::embedded().expect("the shipped commands load");
        assert!(check_commands(&shipped).is_ok());
    }
}
