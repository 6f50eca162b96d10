//! `/dr pitr <database> --time <RFC3339>|latest [--as <new-instance>]`: point-in-time
//! restore into a NEW instance. The time must lie inside the restorable window, which
//! drbot checks itself (RDS emulators accept any time).
//!
//! AWS calls: DescribeDBInstances, DescribeDBInstanceAutomatedBackups (plan, re-check),
//! RestoreDBInstanceToPointInTime (execute), DescribeDBInstances (follow).
//! IAM: `rds:DescribeDBInstances`, `rds:DescribeDBInstanceAutomatedBackups`,
//! `rds:RestoreDBInstanceToPointInTime`. Undo: delete the new instance (not done by drbot).
//! Approval: `officer` (commands/pitr.toml).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::rds_restore::{finish_restore, Verify};
use super::PlanFailure;
use crate::aws::rds::{Placement, RdsRecovery};
use crate::config::{RdsDatabase, Settings};
use crate::actions::database::{self, DATABASE_RPO};
use crate::gate::execute::{Run, Sent};
use crate::router::{Invalid, ParsedCommand, TimeSpec, Value};

#[derive(Debug, Clone)]
pub struct PitrArgs {
    pub db: RdsDatabase,
    pub time: TimeSpec,
    pub new_instance: Option<String>,
    /// `--verify`: check the restored data.
    pub verify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PitrPlan {
    pub database: String,
    pub instance: String,
    /// `None` = the latest restorable time.
    pub restore_time: Option<DateTime<Utc>>,
    pub new_instance: String,
    pub class: String,
    /// Where the new instance goes (shown to the officers, bound by the plan's hash).
    pub placement: Placement,
    /// `--verify`: connect to the new instance and check its data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub verify: bool,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<PitrArgs, Invalid> {
    let db = database::parse_database(cmd, settings)?;
    let time = match cmd.flag("time") {
        Some(Value::Time(t)) => *t,
        _ => return Err("missing `--time <RFC3339>|latest`: the point to restore to".into()),
    };
    if let TimeSpec::At(t) = time {
        if t > crate::clock::now() {
            return Err(format!("`--time {}` is in the future", t.to_rfc3339()).into());
        }
    }
    let new_instance = database::parse_new_instance(cmd, &db)?;
    let verify = crate::actions::verify::parse_flag(cmd, &db)?;
    Ok(PitrArgs {
        db,
        time,
        new_instance,
        verify,
    })
}

pub async fn plan(
    rds: &impl RdsRecovery,
    args: &PitrArgs,
) -> Result<(PitrPlan, String), PlanFailure> {
    let db = &args.db;
    let source = rds.instance(&db.instance).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "instance `{}` of database `{}` does not exist",
            db.instance, db.name
        ))
    })?;
    if source.backup_retention_days <= 0 {
        return Err(PlanFailure::Invalid(format!(
            "instance `{}` keeps no automated backups (retention 0), so it cannot be restored to a point in time; use `/dr restore` with a snapshot",
            db.instance
        )));
    }
    let now = crate::clock::now();
    let latest = source.latest_restorable.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "RDS reports no latest restorable time for `{}` yet",
            db.instance
        ))
    })?;
    let earliest = match rds.earliest_restorable(&db.instance).await? {
        Some(t) => t,
        None => now - chrono::Duration::days(source.backup_retention_days as i64),
    };
    let earliest = source.created.map_or(earliest, |c| earliest.max(c));
    let point = match args.time {
        TimeSpec::Latest => latest,
        TimeSpec::At(t) => {
            if t > now {
                return Err(PlanFailure::Invalid(format!(
                    "`{}` is in the future",
                    t.to_rfc3339()
                )));
            }
            if t > latest || t < earliest {
                return Err(PlanFailure::Invalid(format!(
                    "`{}` is outside the restorable window of `{}`: {} to {} (UTC)",
                    t.format("%Y-%m-%d %H:%M:%S"),
                    db.instance,
                    earliest.format("%Y-%m-%d %H:%M:%S"),
                    latest.format("%Y-%m-%d %H:%M:%S")
                )));
            }
            t
        }
    };
    let chosen = args.new_instance.as_deref();
    let new_instance = database::new_instance_name(rds, chosen, &db.instance, now).await?;
    let mut plan = PitrPlan {
        database: db.name.clone(),
        instance: db.instance.clone(),
        restore_time: match args.time {
            TimeSpec::Latest => None,
            TimeSpec::At(t) => Some(t),
        },
        new_instance,
        class: source.class.clone(),
        placement: source.placement.clone().with_overrides(
            db.restore_subnet_group.as_ref(),
            db.restore_security_groups.as_ref(),
        ),
        verify: args.verify,
    };
    if plan.verify {
        let (key, value) = crate::actions::verify::VERIFY_TAG;
        plan.placement.tags.retain(|(k, _)| k != key);
        plan.placement.tags.push((key.to_string(), value.to_string()));
    }
    let loss = now - point;
    let rpo = chrono::Duration::from_std(DATABASE_RPO).unwrap_or_default();
    let verdict = if loss <= rpo {
        format!("within the database RPO of {}", crate::duration::human(rpo))
    } else {
        format!(
            "*exceeds the database RPO of {} by {}*",
            crate::duration::human(rpo),
            crate::duration::human(loss - rpo)
        )
    };
    let when = match plan.restore_time {
        None => format!(
            "the latest restorable time (now {} UTC)",
            latest.format("%Y-%m-%d %H:%M:%S")
        ),
        Some(t) => format!("{} UTC", t.format("%Y-%m-%d %H:%M:%S")),
    };
    let summary = format!(
        "*Point-in-time restore* of `{}` (instance `{}`) to {when} into a *NEW* instance `{}` (class `{}`).\n• Data written after the restore point is not in the new instance: a data-loss window of {} — {verdict}.\n• Placed like `{}`: {}.\n• The original instance is not touched; afterwards switch the application's connection settings to the new endpoint.",
        plan.database,
        plan.instance,
        plan.new_instance,
        plan.class,
        crate::duration::human(loss),
        plan.instance,
        plan.placement.describe(),
    );
    let summary = if plan.verify {
        summary + &crate::actions::verify::plan_line(db, &plan.new_instance)
    } else {
        summary
    };
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>, approved: PitrPlan) {
    let Some((db, client)) = run.database_and_rds(&approved.database).await else {
        return;
    };
    let rds = &client;
    let args = PitrArgs {
        db,
        time: approved.restore_time.map_or(TimeSpec::Latest, TimeSpec::At),
        new_instance: Some(approved.new_instance.clone()),
        verify: approved.verify,
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
    // What the restore point really is, for the RPO report.
    let point = match approved.restore_time {
        Some(t) => Some(t),
        None => rds
            .instance(&approved.instance)
            .await
            .ok()
            .flatten()
            .and_then(|i| i.latest_restorable),
    };
    let answer = rds
        .restore_to_time(
            &approved.instance,
            &approved.new_instance,
            approved.restore_time,
            &approved.class,
            &approved.placement,
        )
        .await;
    let sent = Sent {
        operation: "RestoreDBInstanceToPointInTime",
        resource: format!("instance {}", approved.instance),
        detail: json!({
            "new_instance": approved.new_instance,
            "restore_point": point.map(crate::clock::rfc3339),
            "use_latest_restorable_time": approved.restore_time.is_none(),
        }),
    };
    let check = database::instance_check(&approved.new_instance);
    let Some(request_id) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!("Point-in-time restore started into `{}` (AWS request id `{request_id}`). Waiting until it is available…", approved.new_instance))
        .await;
    let extra = point.map(|p| format!("Restore point {} UTC", p.format("%Y-%m-%d %H:%M:%S")));
    let then = approved.verify.then(|| Verify {
        database: approved.database.clone(),
        region: None,
        restore_point: point,
    });
    finish_restore(run, rds, &approved.new_instance, extra, then).await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "rds:DescribeDBInstances", "rds:DescribeDBInstanceAutomatedBackups",
        "rds:RestoreDBInstanceToPointInTime", "rds:AddTagsToResource"
    ],
    plan(app, args, _asker) {
        plan(&app.rds_for(&args.db), &args).await?
    }
}
