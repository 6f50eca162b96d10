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
use crate::actions::database::{self, Waited, Watched};
use crate::actions::verify;
use crate::gate::execute::{Run, Sent};
use crate::router::{Invalid, ParsedCommand};

#[derive(Debug, Clone)]
pub struct RestoreArgs {
    pub db: RdsDatabase,
    pub snapshot: String,
    pub new_instance: Option<String>,
    /// `--region`: restore in this region (a snapshot copied there) instead of the
    /// database's own.
    pub region: Option<String>,
    /// drbot's own log records copying `snapshot` into `region` (see `Snapshot::not_of`).
    pub copied_by_drbot: bool,
    /// `--source-down`: the source's region is down; it is never called (with `--region`).
    pub source_down: bool,
    /// `--verify`: check the restored data.
    pub verify: bool,
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
    /// The region of the restore when it is not the database's own (`--region`).
    #[serde(default)]
    pub region: Option<String>,
    /// `--source-down`: planned and re-checked without calling the source's region.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub source_down: bool,
    /// `--verify`: connect to the new instance and check its data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify: bool,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<RestoreArgs, Invalid> {
    let db = database::parse_database(cmd, settings)?;
    let snapshot = cmd
        .flag_word("snapshot")
        .ok_or("missing `--snapshot <id>`: which snapshot to restore")?
        .to_string();
    let new_instance = database::parse_new_instance(cmd, &db)?;
    let region = database::other_region(cmd, settings, &db)?;
    if region.is_some()
        && db
            .backup_placement
            .as_ref()
            .and_then(|p| p.subnet_group.as_ref())
            .is_none()
    {
        return Err(format!(
            "a restore of `{}` in another region needs that region's placement: set `backup_placement = {{ subnet_group = \"…\", security_groups = [\"sg-…\"] }}` for it in drbot.toml (a restore never lands in a default VPC)",
            db.name
        ).into());
    }
    let source_down = cmd.flag("source-down").is_some();
    if source_down && region.is_none() {
        return Err(format!(
            "`--source-down` is for a restore in another region (`--region backup`): `{}`'s own region is where this restore goes",
            db.name
        )
        .into());
    }
    if source_down
        && db
            .backup_placement
            .as_ref()
            .and_then(|p| p.class.as_ref())
            .is_none()
    {
        return Err(format!(
            "`--source-down` needs `backup_placement.class` for `{}` in drbot.toml: without the source drbot cannot read which instance class to restore into",
            db.name
        )
        .into());
    }
    let verify = crate::actions::verify::parse_flag(cmd, &db)?;
    Ok(RestoreArgs {
        db,
        snapshot,
        new_instance,
        region,
        copied_by_drbot: false,
        source_down,
        verify,
    })
}

/// `source` is RDS in the database's region, `rds` in the region of the restore (the same
/// unless `--region`).
pub async fn plan(
    source_rds: &impl RdsRecovery,
    rds: &impl RdsRecovery,
    args: &RestoreArgs,
) -> Result<(RestorePlan, String), PlanFailure> {
    let db = &args.db;
    let (class, engine, placement, source_arn) = match &args.region {
        None => {
            let source = source_rds.instance(&db.instance).await?.ok_or_else(|| {
                PlanFailure::Invalid(format!(
                    "instance `{}` of database `{}` does not exist",
                    db.instance, db.name
                ))
            })?;
            (
                source.class.clone(),
                source.engine.clone(),
                source.placement.clone().with_overrides(
                    db.restore_subnet_group.as_ref(),
                    db.restore_security_groups.as_ref(),
                ),
                Some(source.arn.clone()),
            )
        }
        Some(region) => {
            // The source region may be the one that failed: its instance is read when it
            // answers, and the restore is placed by the backup placement either way.
            let source = if args.source_down {
                None
            } else {
                source_rds.instance(&db.instance).await.ok().flatten()
            };
            let backup = db.backup_placement.clone().unwrap_or_default();
            let class = backup
                .class
                .clone()
                .or(source.as_ref().map(|s| s.class.clone()))
                .ok_or_else(|| {
                    PlanFailure::Invalid(format!(
                        "`{}` cannot be read in its own region and `backup_placement.class` is not set: drbot does not know which instance class to restore into in {region}",
                        db.instance
                    ))
                })?;
            let placement = Placement {
                subnet_group: backup.subnet_group.clone(),
                security_groups: backup.security_groups.clone(),
                multi_az: source.as_ref().is_some_and(|s| s.placement.multi_az),
                storage_type: source
                    .as_ref()
                    .and_then(|s| s.placement.storage_type.clone()),
                tags: source
                    .as_ref()
                    .map(|s| s.placement.tags.clone())
                    .unwrap_or_default(),
                ..Placement::default()
            };
            let arn = source.as_ref().map(|s| s.arn.clone());
            (
                class,
                source.map(|s| s.engine).unwrap_or_default(),
                placement,
                arn,
            )
        }
    };
    let in_region = args
        .region
        .as_deref()
        .map(|r| format!(" in {r}"))
        .unwrap_or_default();
    let snapshot = rds.snapshot(&args.snapshot).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "snapshot `{}` does not exist{in_region}",
            args.snapshot
        ))
    })?;
    let engine = if engine.is_empty() {
        snapshot.engine.clone()
    } else {
        engine
    };
    if let Some(why) = snapshot.not_of(&db.instance, source_arn.as_deref(), args.copied_by_drbot) {
        return Err(PlanFailure::Invalid(why));
    }
    if snapshot.status != "available" {
        return Err(PlanFailure::Invalid(format!(
            "snapshot `{}` is `{}`, not `available`",
            snapshot.id, snapshot.status
        )));
    }
    let chosen = args.new_instance.as_deref();
    let new_instance =
        database::new_instance_name(rds, chosen, &db.instance, crate::clock::now()).await?;
    let mut plan = RestorePlan {
        database: db.name.clone(),
        instance: db.instance.clone(),
        snapshot: snapshot.id.clone(),
        new_instance,
        class,
        engine,
        snapshot_created: snapshot.created.map(crate::clock::rfc3339),
        placement,
        region: args.region.clone(),
        source_down: args.source_down,
        verify: args.verify,
    };
    if plan.verify {
        plan.placement.tags.retain(|(k, _)| k != verify::VERIFY_TAG.0);
        plan.placement.tags.push((
            verify::VERIFY_TAG.0.to_string(),
            verify::VERIFY_TAG.1.to_string(),
        ));
    }
    let taken = snapshot
        .created
        .map(|t| format!(" (taken {} UTC)", t.format("%Y-%m-%d %H:%M")))
        .unwrap_or_default();
    let summary = format!(
        "*Restore* snapshot `{}`{taken} of `{}` into a *NEW* instance `{}`{in_region} (class `{}`, engine `{}`).\n• Placed {}: {}.\n• The original instance `{}` is not touched.\n• Afterwards the application's connection settings must be switched to the new endpoint (the plan's \"update connection strings\" step; `/dr cutover {} --to {}`); drbot reports the endpoint when the instance is available.",
        plan.snapshot,
        plan.database,
        plan.new_instance,
        plan.class,
        plan.engine,
        if plan.region.is_some() { "by `backup_placement`".to_string() } else { format!("like `{}`", plan.instance) },
        plan.placement.describe(),
        plan.instance,
        plan.database,
        plan.new_instance,
    );
    let summary = if plan.verify {
        summary + &verify::plan_line(db, &plan.new_instance)
    } else {
        summary
    };
    Ok((plan, summary))
}

/// Whether drbot's log records copying `snapshot` into `region` (moto, unlike RDS, does not
/// say where a copy came from; RDS's `SourceRegion` is checked as well).
async fn copied_by_drbot(app: &crate::app::App, snapshot: &str, region: Option<&str>) -> bool {
    match region {
        Some(region) => app.store.copied_snapshot(snapshot, region).await.unwrap_or(false),
        None => false,
    }
}

/// `--snapshot latest`: the newest available snapshot of the database's instance in the
/// region of the restore that drbot may restore (its own, or a copy drbot made there).
async fn latest_snapshot(app: &crate::app::App, args: &RestoreArgs) -> Result<String, PlanFailure> {
    let rds = match &args.region {
        Some(r) => app.aws.rds_in(Some(r)),
        None => app.rds_for(&args.db),
    };
    let mut snapshots = rds.snapshots_of(&args.db.instance).await?;
    snapshots.retain(|s| s.status == "available");
    snapshots.sort_by_key(|s| std::cmp::Reverse(s.created));
    for s in snapshots {
        let copied = copied_by_drbot(app, &s.id, args.region.as_deref()).await;
        if s.not_of(&args.db.instance, None, copied).is_none() {
            return Ok(s.id);
        }
    }
    let in_region = args.region.as_deref().map(|r| format!(" in {r}")).unwrap_or_default();
    Err(PlanFailure::Invalid(format!(
        "`--snapshot latest`: no available snapshot of `{}`{in_region} to restore{}",
        args.db.instance,
        if args.region.is_some() { " (copy one there first: `/dr snapshot copy <database> --to-region backup`)" } else { "" }
    )))
}

pub async fn execute(run: &Run<'_>, approved: RestorePlan) {
    let app = run.app;
    let source = app.aws.rds_in(
        app.settings
            .region_of(
                app.settings
                    .database(&approved.database)
                    .and_then(|d| d.region.as_deref()),
            )
            .as_deref(),
    );
    let target = match &approved.region {
        Some(r) => app.aws.rds_in(Some(r)),
        None => source.clone(),
    };
    let rds = &target;
    let Some(db) = run.database(&approved.database).await else {
        return;
    };
    let copied_by_drbot = copied_by_drbot(app, &approved.snapshot, approved.region.as_deref()).await;
    let args = RestoreArgs {
        db,
        snapshot: approved.snapshot.clone(),
        new_instance: Some(approved.new_instance.clone()),
        region: approved.region.clone(),
        copied_by_drbot,
        source_down: approved.source_down,
        verify: approved.verify,
    };
    if !run
        .recheck(
            plan(&source, rds, &args).await,
            "the source instance changed since the plan",
        )
        .await
    {
        return;
    }
    let answer = rds
        .restore_snapshot(
            &approved.snapshot,
            &approved.new_instance,
            &approved.class,
            &approved.placement,
        )
        .await;
    let sent = Sent {
        operation: "RestoreDBInstanceFromDBSnapshot",
        resource: format!("snapshot {}", approved.snapshot),
        detail: json!({"new_instance": approved.new_instance, "restore_point": approved.snapshot_created}),
    };
    let check = database::instance_check(&approved.new_instance);
    let Some(request_id) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!(
        "Restore started into `{}` (AWS request id `{request_id}`). Waiting until it is available…",
        approved.new_instance
    ))
    .await;
    let then = approved.verify.then(|| Verify {
        database: approved.database.clone(),
        region: approved.region.clone(),
        restore_point: approved
            .snapshot_created
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
    });
    finish_restore(run, rds, &approved.new_instance, None, then).await;
}

/// `--verify`: what to check once the new instance is available.
pub struct Verify {
    pub database: String,
    pub region: Option<String>,
    pub restore_point: Option<chrono::DateTime<chrono::Utc>>,
}

/// Follows a new instance to `available` and reports its endpoint.
pub async fn finish_restore(
    run: &Run<'_>,
    rds: &impl RdsRecovery,
    new_instance: &str,
    extra: Option<String>,
    then: Option<Verify>,
) {
    let waited = database::follow(run, rds, Watched::Instance(new_instance)).await;
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
    if let (Some(then), Ok(Waited::Available)) = (then, &waited) {
        let checked = verify::after_restore(
            run,
            &then.database,
            new_instance,
            then.region.as_deref(),
            then.restore_point,
        )
        .await;
        available.push_str(&format!(".\n{checked}"));
    }
    database::finish_waited(run, waited, available, "the restore was started").await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "rds:DescribeDBInstances", "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceFromDBSnapshot", "rds:AddTagsToResource"
    ],
    plan(app, args, _asker) {
        let mut args = args;
        if args.snapshot == "latest" {
            args.snapshot = latest_snapshot(app, &args).await?;
        }
        args.copied_by_drbot =
            copied_by_drbot(app, &args.snapshot, args.region.as_deref()).await;
        let source = app.rds_for(&args.db);
        let target = match &args.region {
            Some(r) => app.aws.rds_in(Some(r)),
            None => source.clone(),
        };
        plan(&source, &target, &args).await?
    }
}
