//! `/dr restore <database> --snapshot <id> [--as <new-instance>]`: the snapshot into a NEW
//! instance; the original is untouched. Then the application's connection settings must be
//! switched (the plan's "update connection strings" step).
//!
//! AWS calls: DescribeDBInstances, DescribeDBSnapshots (plan, re-check),
//! RestoreDBInstanceFromDBSnapshot (execute), DescribeDBInstances (follow).
//! IAM: `rds:DescribeDBInstances`, `rds:DescribeDBSnapshots`,
//! `rds:RestoreDBInstanceFromDBSnapshot`. Undo: delete the new instance (not done by drbot).
//! Approval: `officer` (commands/restore.toml).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PlanFailure;
use crate::aws::rds::{Placement, RdsRecovery};
use crate::config::{RdsDatabase, Settings};
use crate::database::{self, Waited};
use crate::gate::execute::Run;
use crate::router::{ParsedCommand, Value};
use crate::store::RequestState;

#[derive(Debug, Clone)]
pub struct RestoreArgs {
    pub db: RdsDatabase,
    pub snapshot: String,
    pub new_instance: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    pub database: String,
    pub instance: String,
    pub snapshot: String,
    pub new_instance: String,
    pub class: String,
    pub engine: String,
    /// When the snapshot was taken: the restore point, for the incident's RPO report.
    pub snapshot_created: Option<String>,
    /// Where the new instance goes (shown to the officers, bound by the plan's hash).
    pub placement: Placement,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<RestoreArgs, String> {
    let db = database::parse_database(cmd, settings)?;
    let snapshot = cmd
        .flag("snapshot")
        .and_then(Value::as_word)
        .ok_or("missing `--snapshot <id>`: which snapshot to restore")?
        .to_string();
    let new_instance = database::parse_new_instance(cmd, &db)?;
    Ok(RestoreArgs {
        db,
        snapshot,
        new_instance,
    })
}

pub async fn plan(
    rds: &impl RdsRecovery,
    args: &RestoreArgs,
) -> Result<(RestorePlan, String), PlanFailure> {
    let db = &args.db;
    let source = rds.instance(&db.instance).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "instance `{}` of database `{}` does not exist",
            db.instance, db.name
        ))
    })?;
    let snapshot = rds.snapshot(&args.snapshot).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!("snapshot `{}` does not exist", args.snapshot))
    })?;
    if snapshot.instance != db.instance {
        return Err(PlanFailure::Invalid(format!(
            "snapshot `{}` belongs to instance `{}`, not `{}`",
            snapshot.id, snapshot.instance, db.instance
        )));
    }
    if snapshot.status != "available" {
        return Err(PlanFailure::Invalid(format!(
            "snapshot `{}` is `{}`, not `available`",
            snapshot.id, snapshot.status
        )));
    }
    let new_instance = args
        .new_instance
        .clone()
        .unwrap_or_else(|| database::default_restore_name(&db.instance, crate::clock::now()));
    database::check_identifier(&new_instance).map_err(PlanFailure::Invalid)?;
    if rds.instance(&new_instance).await?.is_some() {
        return Err(PlanFailure::Invalid(format!(
            "an instance named `{new_instance}` already exists; choose another with `--as`"
        )));
    }
    let plan = RestorePlan {
        database: db.name.clone(),
        instance: db.instance.clone(),
        snapshot: snapshot.id.clone(),
        new_instance,
        class: source.class.clone(),
        engine: source.engine.clone(),
        snapshot_created: snapshot.created.map(crate::clock::rfc3339),
        placement: source.placement.clone().with_overrides(
            db.restore_subnet_group.as_ref(),
            db.restore_security_groups.as_ref(),
        ),
    };
    let taken = snapshot
        .created
        .map(|t| format!(" (taken {} UTC)", t.format("%Y-%m-%d %H:%M")))
        .unwrap_or_default();
    let summary = format!(
        "*Restore* snapshot `{}`{taken} of `{}` into a *NEW* instance `{}` (class `{}`, engine `{}`).\n• Placed like `{}`: {}.\n• The original instance `{}` is not touched.\n• Afterwards the application's connection settings must be switched to the new endpoint (the plan's \"update connection strings\" step); drbot reports the endpoint when the instance is available.",
        plan.snapshot,
        plan.database,
        plan.new_instance,
        plan.class,
        plan.engine,
        plan.instance,
        plan.placement.describe(),
        plan.instance
    );
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>) {
    let Some(approved) = run.approved_plan::<RestorePlan>().await else {
        return;
    };
    let app = run.app;
    let rds = &app.aws.rds;
    let Some(db) = app.settings.database(&approved.database).cloned() else {
        return run
            .finish(
                RequestState::Void,
                &format!(
                    "not executed: database `{}` is no longer configured",
                    approved.database
                ),
            )
            .await;
    };
    let args = RestoreArgs {
        db,
        snapshot: approved.snapshot.clone(),
        new_instance: Some(approved.new_instance.clone()),
    };
    if !run
        .recheck(
            plan(rds, &args).await,
            "the source instance changed since the plan",
        )
        .await
    {
        return;
    }
    match rds
        .restore_snapshot(
            &approved.snapshot,
            &approved.new_instance,
            &approved.class,
            &approved.placement,
        )
        .await
    {
        Ok(request_id) => {
            run.record_aws_call(
                "RestoreDBInstanceFromDBSnapshot",
                &format!("snapshot {}", approved.snapshot),
                &request_id,
                json!({"new_instance": approved.new_instance, "restore_point": approved.snapshot_created}),
            )
            .await;
            run.thread(&format!("Restore started into `{}` (AWS request id `{request_id}`). Waiting until it is available…", approved.new_instance))
                .await;
        }
        Err(e) => {
            run.record_aws_error(&e).await;
            return run
                .finish(
                    RequestState::Failed,
                    &format!("RestoreDBInstanceFromDBSnapshot failed: {e}"),
                )
                .await;
        }
    }
    finish_restore(run, &approved.new_instance, None).await;
}

/// Follows a new instance to `available` and reports its endpoint.
pub async fn finish_restore(run: &Run<'_>, new_instance: &str, extra: Option<String>) {
    let app = run.app;
    let rds = &app.aws.rds;
    let settings = &app.settings.rds;
    let waited = run
        .following(|progress| {
            database::wait_for_instance(
                rds,
                new_instance,
                settings.poll_interval.as_duration(),
                settings.wait_timeout.as_duration(),
                move |line| {
                    let _ = progress.send(line);
                },
            )
        })
        .await;
    let endpoint = match waited {
        Ok(Waited::Available) => rds
            .instance(new_instance)
            .await
            .ok()
            .flatten()
            .and_then(|i| i.endpoint),
        _ => None,
    };
    let mut available = format!(
        "new instance `{new_instance}` is available at `{}`. Next: switch the application's connection settings to it and verify the data",
        endpoint.as_deref().unwrap_or("(no endpoint reported)")
    );
    if let Some(extra) = extra {
        available.push_str(&format!(". {extra}"));
    }
    database::finish_waited(run, waited, available, "the restore was started").await;
}
