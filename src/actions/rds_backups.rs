//! `/dr backups <database> [--enforce]` and the daily check (SPEC §6, §12): the snapshots
//! RDS holds against `[rds.retention]` (the plan's 7 daily / 4 weekly / 12 monthly; see
//! `retention.rs` for the rules). Without `--enforce` a read, recorded as
//! `backups.checked`; with it (officer) drbot copies the at-risk weekly/monthly snapshots
//! to manual `drbot-weekly-…`/`drbot-monthly-…` ones and deletes only its own retention
//! copies that hold no kept slot (checked again right before each `DeleteDBSnapshot`).
//!
//! AWS calls: DescribeDBInstances, DescribeDBSnapshots (read, plan, re-check),
//! CopyDBSnapshot, DeleteDBSnapshot (execute). IAM: `rds:CopyDBSnapshot`,
//! `rds:DeleteDBSnapshot` on `drbot-weekly-<instance>-*`/`drbot-monthly-<instance>-*`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PlanFailure;
use crate::app::App;
use crate::aws::rds::RdsRecovery;
use crate::aws::AwsError;
use crate::config::{RdsDatabase, Settings};
use crate::actions::database::{self, Waited, Watched};
use crate::gate::execute::Run;
use crate::retention::{self, Copy, Deletion, Inventory, Policy, RETENTION_TAG};
use crate::router::{Invalid, ParsedCommand};
use crate::store::{EventKind, NewEvent, Outgoing, RequestState, StoreError};

#[derive(Debug, Clone)]
pub struct BackupsArgs {
    pub db: RdsDatabase,
    pub enforce: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnforcePlan {
    pub database: String,
    pub instance: String,
    pub copies: Vec<Copy>,
    pub deletions: Vec<Deletion>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<BackupsArgs, Invalid> {
    Ok(BackupsArgs {
        db: database::parse_database(cmd, settings)?,
        enforce: cmd.flag("enforce").is_some(),
    })
}

/// The policy in force: `[rds.retention]`, else the plan's own.
fn policy(settings: &Settings) -> Policy {
    settings.rds.retention.unwrap_or_default().into()
}

/// Why there is no inventory of a database's backups.
#[derive(Debug, thiserror::Error)]
pub enum NoInventory {
    #[error("instance `{instance}` of database `{database}` does not exist")]
    NoInstance { instance: String, database: String },
    #[error(transparent)]
    Aws(#[from] AwsError),
}

/// Reads RDS and takes the inventory of `db`.
pub async fn inventory(
    rds: &impl RdsRecovery,
    db: &RdsDatabase,
    settings: &Settings,
) -> Result<Inventory, NoInventory> {
    let Some(instance) = rds.instance(&db.instance).await? else {
        return Err(NoInventory::NoInstance {
            instance: db.instance.clone(),
            database: db.name.clone(),
        });
    };
    let snapshots = rds.snapshots_of(&db.instance).await?;
    Ok(retention::inventory(
        &db.name,
        &db.instance,
        instance.backup_retention_days,
        policy(settings),
        &snapshots,
        crate::clock::now(),
    ))
}

/// `/dr backups <database>`: the inventory, recorded as evidence.
pub async fn reply(app: &Arc<App>, cmd: &ParsedCommand, user: &str, channel: &str) -> String {
    let args = match parse(cmd, &app.settings) {
        Ok(args) => args,
        Err(why) => return format!(":no_entry: {}.", crate::slack::text::escape(&why.0)),
    };
    let rds = app.rds_for(&args.db);
    let (inventory, copy) = tokio::join!(
        inventory(&rds, &args.db, &app.settings),
        backup_copy(app, &args.db)
    );
    match inventory {
        Ok(inv) => {
            if let Err(e) = record_check(app, &inv, user, channel, false).await {
                tracing::error!(error = %e, "could not record a backup check");
            }
            format!("{}{}", inv.describe(), copy.map(|c| format!("\n{c}")).unwrap_or_default())
        }
        Err(why @ NoInventory::NoInstance { .. }) => {
            format!(":no_entry: {}.", crate::slack::text::escape(&why.to_string()))
        }
        Err(NoInventory::Aws(e)) => format!(
            ":warning: Could not read RDS: {}",
            crate::slack::text::escape(&e.to_string())
        ),
    }
}

/// The newest copy of `db` in the backup region against the RPO of the scenario that
/// restores from it (else the plan's database RPO); `None` without a backup region.
async fn backup_copy(app: &Arc<App>, db: &RdsDatabase) -> Option<String> {
    let region = app.settings.regions.backup.clone()?;
    if app.settings.region_of(db.region.as_deref()).as_deref() == Some(region.as_str()) {
        return None;
    }
    let (whose, rpo) = crate::actions::readiness::copy_rpo(&db.name, &app.scenarios, &app.commands, &app.settings)
        .map(|(s, secs)| (format!("`{s}`"), secs))
        .unwrap_or_else(|| ("the plan".to_string(), database::DATABASE_RPO.as_secs()));
    let rpo = chrono::Duration::seconds(rpo as i64);
    let rds = app.aws.rds_in(Some(&region));
    let wait = app.aws.timeout_in(Some(&region)).call;
    let held = match crate::clock::timeout(wait, rds.snapshots_of(&db.instance)).await {
        Err(_) => return Some(format!(":grey_question: *Backup region ({region})*: did not answer within {}s.", wait.as_secs())),
        Ok(Err(e)) => return Some(format!(":warning: *Backup region ({region})*: {}", crate::slack::text::escape(&e.to_string()))),
        Ok(Ok(held)) => held,
    };
    let newest = held
        .iter()
        .filter(|s| s.status == "available")
        .filter_map(|s| Some((s.created?, s)))
        .max_by_key(|(c, _)| *c);
    Some(match newest {
        None => format!(
            ":x: *Backup region ({region})*: no copy of `{}`. With the primary region gone nothing could be restored; `/dr snapshot copy {} --to-region backup`, and `[rds.copies]` to keep one.",
            db.instance, db.name
        ),
        Some((taken, s)) => {
            let age = crate::clock::now() - taken;
            let within = age <= rpo;
            format!(
                "{} *Backup region ({region})*: newest copy `{}` holds data from {} UTC, {} old — {} the RPO of {whose} ({}).",
                if within { ":white_check_mark:" } else { ":x:" },
                s.id,
                taken.format("%Y-%m-%d %H:%M"),
                crate::duration::human(age),
                if within { "within" } else { "*older than*" },
                crate::duration::human(rpo)
            )
        }
    })
}

async fn record_check(
    app: &Arc<App>,
    inv: &Inventory,
    actor: &str,
    channel: &str,
    scheduled: bool,
) -> Result<(), StoreError> {
    let mut detail = inv.record();
    detail["scheduled"] = json!(scheduled);
    let missing = inv.missing().len();
    app.store
        .append(
            NewEvent::new(
                EventKind::BackupsChecked,
                actor,
                channel,
                format!(
                    "backups of {} {}: {} slot(s) missing, {} at risk",
                    inv.database,
                    if inv.compliant() {
                        "compliant"
                    } else {
                        "not compliant"
                    },
                    missing,
                    inv.copies.len()
                ),
            )
            .detail(detail),
        )
        .await
        .map(|_| ())
}

/// The daily check: recorded, and posted to the ops channel when something is missing.
pub async fn check_scheduled(app: &Arc<App>, db: &RdsDatabase) -> Result<(), StoreError> {
    let channel = app.settings.ops_channel().unwrap_or("").to_string();
    match inventory(&app.rds_for(db), db, &app.settings).await {
        Ok(inv) => {
            record_check(app, &inv, "drbot", &channel, true).await?;
            if !inv.compliant() && !channel.is_empty() {
                app.store
                    .send_slack(vec![Outgoing::post(
                        &channel,
                        format!(":calendar: Daily backup check: {}", inv.describe()),
                    )])
                    .await?;
            }
        }
        Err(why @ NoInventory::NoInstance { .. }) => {
            tracing::warn!(database = %db.name, why = %why, "daily backup check not made")
        }
        Err(NoInventory::Aws(e)) => {
            tracing::warn!(database = %db.name, error = %e, "daily backup check: could not read RDS")
        }
    }
    Ok(())
}

/// `--enforce`: what would be copied and deleted.
pub async fn plan(
    rds: &impl RdsRecovery,
    args: &BackupsArgs,
    settings: &Settings,
) -> Result<(EnforcePlan, String), PlanFailure> {
    let inv = inventory(rds, &args.db, settings)
        .await
        .map_err(|e| match e {
            NoInventory::Aws(e) => PlanFailure::Aws(e),
            other => PlanFailure::Invalid(other.to_string()),
        })?;
    if inv.copies.is_empty() && inv.deletions.is_empty() {
        return Err(PlanFailure::Invalid(format!(
            "nothing to enforce for `{}`: no weekly or monthly slot is held only by an automated snapshot, and none of drbot's copies is past retention. {}",
            args.db.name,
            inv.describe()
        )));
    }
    let plan = EnforcePlan {
        database: args.db.name.clone(),
        instance: args.db.instance.clone(),
        copies: inv.copies.clone(),
        deletions: inv.deletions.clone(),
    };
    let mut summary = format!(
        "*Enforce retention* of `{}` (instance `{}`, the plan's {} daily / {} weekly / {} monthly):",
        plan.database, plan.instance, inv.policy.daily, inv.policy.weekly, inv.policy.monthly
    );
    for c in &plan.copies {
        summary.push_str(&format!(
            "\n• copy `{}` → `{}` (keeps the {} slot {})",
            c.source,
            c.target,
            c.tier.as_str(),
            c.slot
        ));
    }
    for d in &plan.deletions {
        summary.push_str(&format!(
            "\n• delete drbot's own `{}`{} (past retention, holds no kept slot)",
            d.snapshot,
            d.taken
                .as_deref()
                .map(|t| format!(" taken {}", &t[..10.min(t.len())]))
                .unwrap_or_default()
        ));
    }
    summary.push_str("\n• Nothing else is deleted: only snapshots named `drbot-weekly-…`/`drbot-monthly-…` and tagged `drbot:retention`.");
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>, approved: EnforcePlan) {
    let app = run.app;
    let Some((db, client)) = run.database_and_rds(&approved.database).await else {
        return;
    };
    let rds = &client;
    let args = BackupsArgs { db, enforce: true };
    if !run
        .recheck(
            plan(rds, &args, &app.settings).await,
            "the snapshots changed since the plan",
        )
        .await
    {
        return;
    }
    let mut done = Vec::new();
    let mut problems = Vec::new();
    for copy in &approved.copies {
        let tags = vec![
            (RETENTION_TAG.to_string(), copy.tier.as_str().to_string()),
            ("drbot:source-snapshot".to_string(), copy.source.clone()),
            (
                "drbot:requested-by".to_string(),
                run.request.requester.clone(),
            ),
        ];
        match rds
            .copy_snapshot(&copy.source, None, &copy.target, &tags, None)
            .await
        {
            Ok(request_id) => {
                run.record_aws_call(
                    "CopyDBSnapshot",
                    &format!("snapshot {}", copy.source),
                    &request_id,
                    json!({"target": copy.target, "tier": copy.tier, "slot": copy.slot}),
                )
                .await;
                done.push(copy.target.clone());
            }
            Err(e) => {
                run.record_aws_error(&e).await;
                problems.push(format!("copy of `{}` failed: {e}", copy.source));
            }
        }
    }
    let mut deleted = Vec::new();
    for deletion in &approved.deletions {
        // Checked again right before: still drbot's own retention copy of this instance.
        match rds.snapshot(&deletion.snapshot).await {
            Ok(Some(s)) if retention::is_drbot_copy(&approved.instance, &s) => {}
            Ok(Some(_)) => {
                problems.push(format!(
                    "`{}` is not drbot's retention copy any more; left alone",
                    deletion.snapshot
                ));
                continue;
            }
            Ok(None) => continue,
            Err(e) => {
                run.record_aws_error(&e).await;
                problems.push(format!("could not re-read `{}`: {e}", deletion.snapshot));
                continue;
            }
        }
        match rds.delete_snapshot(&deletion.snapshot).await {
            Ok(request_id) => {
                run.record_aws_call(
                    "DeleteDBSnapshot",
                    &format!("snapshot {}", deletion.snapshot),
                    &request_id,
                    json!({"reason": "past retention"}),
                )
                .await;
                deleted.push(deletion.snapshot.clone());
            }
            Err(e) => {
                run.record_aws_error(&e).await;
                problems.push(format!("delete of `{}` failed: {e}", deletion.snapshot));
            }
        }
    }
    for target in &done {
        let waited = database::follow(run, rds, Watched::Snapshot(target)).await;
        match waited {
            Ok(Waited::Available) => {}
            Ok(Waited::Failed(why)) | Ok(Waited::TimedOut(why)) => problems.push(why),
            Err(e) => problems.push(format!("following `{target}` failed: {e}")),
        }
    }
    let mut outcome = format!(
        "{} copied ({}), {} deleted ({})",
        done.len(),
        names(&done),
        deleted.len(),
        names(&deleted)
    );
    if problems.is_empty() {
        run.finish(RequestState::Executed, &outcome).await;
    } else {
        outcome.push_str(&format!("; problems: {}", problems.join("; ")));
        run.finish(RequestState::Failed, &outcome).await;
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        crate::slack::text::codes(list)
    }
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "rds:DescribeDBInstances", "rds:DescribeDBSnapshots", "rds:CopyDBSnapshot",
        "rds:DeleteDBSnapshot", "rds:AddTagsToResource"
    ],
    plan(app, args, _asker) {
        plan(&app.rds_for(&args.db), &args, &app.settings).await?
    }
    read(app, cmd, asker) {
        reply(app, cmd, &asker.user, &asker.channel).await
    }
}
