//! `/dr drill restore-test <database> [--pick latest|random]` and the schedule of
//! `[drills.restore_test]` (SPEC §12): the plan's monthly restore test. Picks a snapshot
//! taken inside the window, restores it into `drbot-drill-<instance>-<time>` placed like
//! the source (tagged `drbot:drill=restore-test`, deletable), follows it until available,
//! checks it (status, engine and version, storage, encryption), measures the restore time,
//! records the result as evidence (`drill.restore_test`), and deletes the drill instance
//! after `keep_for` — only ever an instance named and tagged so ([`delete_due`]).
//!
//! AWS calls: DescribeDBInstances, DescribeDBSnapshots (plan, re-check, checks),
//! RestoreDBInstanceFromDBSnapshot (execute), DeleteDBInstance (after `keep_for`).
//! IAM: as restore, plus `rds:DeleteDBInstance` on `drbot-drill-<instance>-*` tagged
//! `drbot:drill`. Approval: `officer` by command (commands/drill-restore-test.toml); the
//! schedule is approved by the configuration.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PlanFailure;
use crate::app::App;
use crate::aws::rds::{Placement, RdsRecovery, Snapshot};
use crate::aws::AwsError;
use crate::config::{RdsDatabase, Settings, SnapshotPick};
use crate::actions::database::{self, Waited, Watched};
use crate::actions::verify::{self, Verification};
use crate::gate::execute::Run;
use crate::router::{Invalid, ParsedCommand};
use crate::store::{
    DrillInstance, EventKind, Liveness, NewEvent, Outgoing, RequestState, StoreError,
};

/// The tag that marks an instance as a restore test's own (checked before deleting it).
pub const DRILL_TAG: (&str, &str) = ("drbot:drill", "restore-test");
/// Every drill instance's name starts so.
pub const DRILL_PREFIX: &str = "drbot-drill-";

#[derive(Debug, Clone)]
pub struct RestoreTestArgs {
    pub db: RdsDatabase,
    pub pick: SnapshotPick,
}

/// What the restored instance must look like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    pub engine: String,
    pub engine_version: String,
    pub allocated_storage_gib: i32,
    pub encrypted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreTestPlan {
    pub database: String,
    pub instance: String,
    pub pick: SnapshotPick,
    pub snapshot: String,
    pub snapshot_taken: Option<String>,
    pub new_instance: String,
    pub class: String,
    pub placement: Placement,
    pub expected: Expected,
    pub keep_for: String,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<RestoreTestArgs, Invalid> {
    let db = database::parse_database(cmd, settings)?;
    let pick = match cmd.flag_word("pick") {
        None => configured(settings).pick,
        Some("latest") => SnapshotPick::Latest,
        Some("random") => SnapshotPick::Random,
        Some(other) => {
            return Err(format!(
                "`--pick {other}`: write `--pick latest` (the newest snapshot) or `--pick random` (any inside the window)"
            ).into())
        }
    };
    Ok(RestoreTestArgs { db, pick })
}

fn configured(settings: &Settings) -> crate::config::RestoreTestSettings {
    settings.drills.restore_test.clone().unwrap_or_default()
}

/// `drbot-drill-<instance>-<yyyymmddhhmm>`, shortened to fit 63 characters.
pub fn drill_name(instance: &str, now: DateTime<Utc>) -> String {
    let suffix = format!("-{}", now.format("%Y%m%d%H%M"));
    let keep = 63 - DRILL_PREFIX.len() - suffix.len();
    let base: String = instance.chars().take(keep).collect();
    format!("{DRILL_PREFIX}{}{suffix}", base.trim_end_matches('-'))
}

pub async fn plan(
    rds: &impl RdsRecovery,
    args: &RestoreTestArgs,
    settings: &Settings,
) -> Result<(RestoreTestPlan, String), PlanFailure> {
    plan_with(rds, args, settings, None, None).await
}

/// Plans the test; with `chosen` (the re-check) the snapshot and instance name are fixed.
async fn plan_with(
    rds: &impl RdsRecovery,
    args: &RestoreTestArgs,
    settings: &Settings,
    chosen: Option<&str>,
    name: Option<&str>,
) -> Result<(RestoreTestPlan, String), PlanFailure> {
    let db = &args.db;
    let test = configured(settings);
    let source = rds.instance(&db.instance).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "instance `{}` of database `{}` does not exist",
            db.instance, db.name
        ))
    })?;
    let now = crate::clock::now();
    let since = now - chrono::Duration::seconds(test.window.as_secs() as i64);
    let mut candidates: Vec<Snapshot> = rds
        .snapshots_of(&db.instance)
        .await?
        .into_iter()
        .filter(|s| s.status == "available" && s.created.is_some_and(|t| t >= since))
        .collect();
    candidates.sort_by_key(|s| s.created);
    let snapshot = match chosen {
        Some(id) => candidates.iter().find(|s| s.id == id).cloned().ok_or_else(|| {
            PlanFailure::Invalid(format!(
                "snapshot `{id}` is no longer available inside the {} window",
                test.window
            ))
        })?,
        None if candidates.is_empty() => {
            return Err(PlanFailure::Invalid(format!(
                "no available snapshot of `{}` was taken in the last {}, so there is nothing to test; take one with `/dr snapshot {}`",
                db.instance, test.window, db.name
            )))
        }
        None => match args.pick {
            SnapshotPick::Latest => candidates.last().cloned().expect("not empty"),
            SnapshotPick::Random => candidates[(crate::clock::varying() % candidates.len() as u64) as usize].clone(),
        },
    };
    let new_instance = name
        .map(str::to_string)
        .unwrap_or_else(|| drill_name(&db.instance, now));
    database::check_identifier(&new_instance)?;
    if rds.instance(&new_instance).await?.is_some() {
        return Err(PlanFailure::Invalid(format!(
            "an instance named `{new_instance}` already exists; a restore test a minute later gets a new name"
        )));
    }
    let mut placement = source.placement.clone().with_overrides(
        db.restore_subnet_group.as_ref(),
        db.restore_security_groups.as_ref(),
    );
    placement
        .tags
        .retain(|(k, _)| k != DRILL_TAG.0 && k != "drbot:source-snapshot");
    placement
        .tags
        .push((DRILL_TAG.0.to_string(), DRILL_TAG.1.to_string()));
    placement
        .tags
        .push(("drbot:source-snapshot".to_string(), snapshot.id.clone()));
    let plan = RestoreTestPlan {
        database: db.name.clone(),
        instance: db.instance.clone(),
        pick: args.pick,
        snapshot: snapshot.id.clone(),
        snapshot_taken: snapshot.created.map(crate::clock::rfc3339),
        new_instance,
        class: source.class.clone(),
        placement,
        expected: Expected {
            engine: snapshot.engine.clone(),
            engine_version: snapshot.engine_version.clone(),
            allocated_storage_gib: snapshot.allocated_storage_gib,
            encrypted: snapshot.encrypted,
        },
        keep_for: test.keep_for.to_string(),
    };
    let taken = snapshot
        .created
        .map(|t| format!(" taken {} UTC", t.format("%Y-%m-%d %H:%M")))
        .unwrap_or_default();
    let how = match args.pick {
        SnapshotPick::Latest => "the newest".to_string(),
        SnapshotPick::Random => format!("picked at random among {}", candidates.len()),
    };
    let data = if db.verifies_data() {
        format!(
            "\n• Then connect to the drill instance (never to `{}`) and check the data: {}.",
            db.instance,
            data_checks_listed(db)
        )
    } else {
        String::new()
    };
    let mut summary = format!(
        "*Restore test* of `{}`: restore snapshot `{}`{taken} ({how} in the last {}) into the drill instance `{}` (class `{}`), placed like `{}`: {}.\n• Then check it: available, engine `{} {}`, at least {} GiB, encryption {}; and measure the restore time.\n• The drill instance is deleted {} after its checks. `{}` itself is not touched.",
        plan.database,
        plan.snapshot,
        test.window,
        plan.new_instance,
        plan.class,
        plan.instance,
        plan.placement.describe().replace("deletion protection on", "deletable (drbot deletes it)"),
        plan.expected.engine,
        plan.expected.engine_version,
        plan.expected.allocated_storage_gib,
        if plan.expected.encrypted { "on" } else { "off" },
        plan.keep_for,
        plan.instance,
    );
    if !data.is_empty() {
        let at = summary.find("\n• The drill instance is deleted").unwrap_or(summary.len());
        summary.insert_str(at, &data);
    }
    Ok((plan, summary))
}

/// The data checks of `db`, named with what they expect, and the newest write.
pub fn data_checks_listed(db: &RdsDatabase) -> String {
    let mut parts: Vec<String> = db
        .checks
        .iter()
        .map(|c| format!("`{}` {}", crate::slack::text::escape(&c.name), crate::slack::text::escape(&c.expect)))
        .collect();
    if db.newest_write_sql.is_some() {
        parts.push("the newest write against the restore point (the real RPO)".into());
    }
    parts.join(", ")
}

/// One check of the restored instance.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub expected: String,
    pub actual: String,
    pub ok: bool,
}

fn checks(expected: &Expected, got: &crate::aws::rds::Instance) -> Vec<Check> {
    let check = |name, expected: String, actual: String, ok| Check {
        name,
        expected,
        actual,
        ok,
    };
    vec![
        check(
            "status",
            "available".into(),
            got.status.clone(),
            got.status == "available",
        ),
        check(
            "engine",
            expected.engine.clone(),
            got.engine.clone(),
            got.engine == expected.engine,
        ),
        check(
            "engine version",
            expected.engine_version.clone(),
            got.engine_version.clone(),
            got.engine_version == expected.engine_version,
        ),
        check(
            "storage",
            format!(">= {} GiB", expected.allocated_storage_gib),
            format!("{} GiB", got.allocated_storage_gib),
            got.allocated_storage_gib >= expected.allocated_storage_gib,
        ),
        check(
            "encryption",
            on_off(expected.encrypted),
            on_off(got.encrypted),
            got.encrypted == expected.encrypted,
        ),
    ]
}

fn on_off(b: bool) -> String {
    if b { "on" } else { "off" }.to_string()
}

pub async fn execute(run: &Run<'_>, approved: RestoreTestPlan) {
    let app = run.app;
    let Some((db, client)) = run.database_and_rds(&approved.database).await else {
        return;
    };
    let rds = &client;
    let args = RestoreTestArgs {
        db,
        pick: approved.pick,
    };
    let fresh = plan_with(
        rds,
        &args,
        &app.settings,
        Some(&approved.snapshot),
        Some(&approved.new_instance),
    )
    .await;
    if !run
        .recheck(
            fresh,
            "the source instance or the snapshot changed since the plan",
        )
        .await
    {
        return;
    }
    // Recorded before the call: whatever happens next, drbot knows what to delete.
    let settings = &app.settings.rds;
    let keep_for = chrono::Duration::seconds(configured(&app.settings).keep_for.as_secs() as i64);
    let latest_delete = crate::clock::now()
        + chrono::Duration::seconds(settings.wait_timeout.as_secs() as i64)
        + keep_for;
    let kept = async {
        let mut tx = app.store.begin().await?;
        tx.keep_drill_instance(
            &approved.new_instance,
            &approved.database,
            run.request.id,
            &run.request.channel,
            latest_delete,
        )
        .await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = kept {
        return run
            .finish(
                RequestState::Failed,
                &format!(
                    "not executed: drbot could not record the drill instance it would create ({e})"
                ),
            )
            .await;
    }
    let started = crate::clock::now();
    match rds
        .restore_for_drill(
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
                json!({"new_instance": approved.new_instance, "drill": "restore-test"}),
            )
            .await;
            run.thread(&format!(
                "Restore test started into `{}` (AWS request id `{request_id}`). Waiting until it is available…",
                approved.new_instance
            ))
            .await;
        }
        Err(e) => {
            run.record_aws_error(&e).await;
            record_result(
                run,
                &approved,
                started,
                None,
                (Err(e.outcome(&format!("whether instance `{}` exists (it would be deleted after `keep_for` all the same)", approved.new_instance))), None),
                keep_for,
            )
            .await;
            return;
        }
    }
    let waited = database::follow(run, rds, Watched::Instance(&approved.new_instance)).await;
    let available_at = crate::clock::now();
    let mut verified = None;
    let outcome = match waited {
        Ok(Waited::Available) => match rds.instance(&approved.new_instance).await {
            Ok(Some(got)) => {
                let checked = checks(&approved.expected, &got);
                if args.db.verifies_data() && checked.iter().all(|c| c.ok) {
                    let subject = verify::Subject {
                        instance: &approved.new_instance,
                        region: None,
                        tag: DRILL_TAG,
                        restore_point: approved
                            .snapshot_taken
                            .as_deref()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .map(|t| t.with_timezone(&Utc)),
                    };
                    verified = Some(verify::verify(app, &args.db, subject).await);
                }
                Ok(checked)
            }
            Ok(None) => Err(format!(
                "`{}` vanished after it became available",
                approved.new_instance
            )),
            Err(e) => Err(format!("could not read the restored instance: {e}")),
        },
        Ok(Waited::Failed(why)) => Err(why),
        Ok(Waited::TimedOut(why)) => Err(format!("{why} after {}", settings.wait_timeout)),
        Err(e) => {
            run.record_aws_error(&e).await;
            Err(format!("following the restore failed: {e}"))
        }
    };
    record_result(
        run,
        &approved,
        started,
        Some(available_at),
        (outcome, verified),
        keep_for,
    )
    .await;
}

/// Records the test's result as evidence, schedules the drill instance's deletion, posts
/// the result (also in the ops channel when asked elsewhere) and ends the request.
async fn record_result(
    run: &Run<'_>,
    approved: &RestoreTestPlan,
    started: DateTime<Utc>,
    available_at: Option<DateTime<Utc>>,
    (outcome, verified): (Result<Vec<Check>, String>, Option<Verification>),
    keep_for: chrono::Duration,
) {
    let app = run.app;
    let took = available_at.map(|t| t - started);
    let (passed, checks, why) = match &outcome {
        Ok(checks) => (checks.iter().all(|c| c.ok), checks.clone(), None),
        Err(why) => (false, Vec::new(), Some(why.clone())),
    };
    let passed = passed && verified.as_ref().is_none_or(|v| v.passed);
    let delete_at = crate::clock::now() + keep_for;
    let verdict = if passed {
        ":white_check_mark: *passed*"
    } else {
        ":x: *FAILED*"
    };
    let mut text = format!(
        "Restore test of `{}` {verdict}: snapshot `{}` into `{}`",
        approved.database, approved.snapshot, approved.new_instance
    );
    if let (Some(took), true) = (took, why.is_none()) {
        text.push_str(&format!(
            ", available after {}",
            crate::duration::human(took)
        ));
    }
    text.push('.');
    for c in &checks {
        text.push_str(&format!(
            "\n{} {}: {} (expected {})",
            if c.ok { "•" } else { "• :x:" },
            c.name,
            c.actual,
            c.expected
        ));
    }
    if let Some(why) = &why {
        text.push_str(&format!("\n• {}", crate::slack::text::escape(why)));
    }
    if let Some(v) = &verified {
        text.push('\n');
        text.push_str(&v.describe());
    }
    text.push_str(&format!(
        "\nThe drill instance is deleted at {} UTC ({} after the test).",
        delete_at.format("%Y-%m-%d %H:%M"),
        approved.keep_for
    ));
    let summary = text.clone();
    let recorded = async {
        let mut tx = app.store.begin().await?;
        tx.append(
            NewEvent::new(
                EventKind::DrillRestoreTest,
                "drbot",
                &run.request.channel,
                format!(
                    "{}: restore test of {} {} (snapshot {}, {})",
                    run.request.label(),
                    approved.database,
                    if passed { "passed" } else { "failed" },
                    approved.snapshot,
                    took.map(crate::duration::human)
                        .unwrap_or_else(|| "not restored".into())
                ),
            )
            .detail(json!({
                "action_id": run.request.label(),
                "database": approved.database,
                "instance": approved.instance,
                "snapshot": approved.snapshot,
                "snapshot_taken": approved.snapshot_taken,
                "pick": approved.pick,
                "drill_instance": approved.new_instance,
                "started_at": crate::clock::rfc3339(started),
                "available_at": available_at.map(crate::clock::rfc3339),
                "restore_seconds": took.map(|t| t.num_seconds()),
                "passed": passed,
                "checks": checks,
                "data": verified,
                "rpo_seconds": verified.as_ref().and_then(|v| v.rpo_seconds),
                "rpo_target_seconds": verified.as_ref().and_then(|v| v.rpo_target_seconds),
                "rpo_met": verified.as_ref().and_then(|v| v.rpo_met),
                "error": why,
                "scheduled": run.request.requester == crate::config::SCHEDULER,
            }))
            .incident(run.request.incident.clone()),
        )
        .await?;
        tx.delete_drill_instance_at(&approved.new_instance, delete_at)
            .await?;
        if let Some(ops) = app.settings.ops_channel() {
            if ops != run.request.channel {
                tx.send_slack(Outgoing::post(ops, summary.clone())).await?;
            }
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        tracing::error!(error = %e, "could not record a restore test's result");
    }
    let state = if passed {
        RequestState::Executed
    } else {
        RequestState::Failed
    };
    run.finish(state, &text).await;
}

/// Deletes the drill instances whose time is up — each only after checking, right before
/// `DeleteDBInstance`, that it is still named and tagged as drbot's restore test.
pub async fn delete_due(app: &Arc<App>) -> Result<(), StoreError> {
    let due = app
        .store
        .claim::<DrillInstance>(crate::clock::now(), Liveness::Heartbeat)
        .await?;
    for drill in due {
        let rds = app.rds_named(&drill.database);
        let (state, kind, text, detail) = match delete_drill(&rds, &drill).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(instance = %drill.instance, error = %e, "could not read or delete a drill instance; will retry");
                let mut tx = app.store.begin().await?;
                tx.retry_drill_instance(
                    &drill.instance,
                    crate::clock::now() + chrono::Duration::minutes(1),
                )
                .await?;
                tx.commit().await?;
                continue;
            }
        };
        let mut tx = app.store.begin().await?;
        tx.end_drill_instance(&drill.instance, state).await?;
        let mut detail = detail;
        detail["action_id"] = json!(format!("A-{}", drill.request_id));
        tx.append(NewEvent::new(kind, "drbot", &drill.channel, text.clone()).detail(detail))
            .await?;
        let icon = if state == "refused" {
            ":warning:"
        } else {
            ":wastebasket:"
        };
        tx.send_slack(Outgoing::post(
            &drill.channel,
            format!("{icon} Restore test (A-{}): {text}.", drill.request_id),
        ))
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// What became of drill instance `drill`, due for deletion: `gone` already, `refused` (no
/// longer named and tagged as drbot's drill, so left alone), or `deleted` (being deleted, or
/// `DeleteDBInstance` sent now); with its event and text. An error: try again later.
async fn delete_drill(
    rds: &impl RdsRecovery,
    drill: &DrillInstance,
) -> Result<(&'static str, EventKind, String, serde_json::Value), AwsError> {
    let instance = &drill.instance;
    let plain = |state, text| Ok((state, EventKind::DrillDeleted, text, json!({"instance": instance})));
    let Some(found) = rds.instance(instance).await? else {
        return plain("gone", format!("drill instance {instance} was already gone"));
    };
    let tagged = found
        .placement
        .tags
        .iter()
        .any(|(k, v)| k == DRILL_TAG.0 && v == DRILL_TAG.1);
    if !found.id.starts_with(DRILL_PREFIX) || !tagged {
        let text = format!(
            "drill instance {instance} was NOT deleted: it is not named `{DRILL_PREFIX}…` and tagged `{}={}` any more",
            DRILL_TAG.0, DRILL_TAG.1
        );
        let detail = json!({"instance": instance, "tags": found.placement.tags});
        return Ok(("refused", EventKind::DrillDeleteRefused, text, detail));
    }
    if found.status == "deleting" {
        return plain("deleted", format!("drill instance {instance} is being deleted"));
    }
    let request_id = rds.delete_instance(instance).await?;
    let text = format!("drill instance {instance} deleted (AWS request id {request_id})");
    let detail = json!({"instance": instance, "operation": "DeleteDBInstance", "aws_request_id": request_id});
    Ok(("deleted", EventKind::DrillDeleted, text, detail))
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "rds:DescribeDBInstances", "rds:DescribeDBSnapshots",
        "rds:RestoreDBInstanceFromDBSnapshot", "rds:DeleteDBInstance", "rds:AddTagsToResource"
    ],
    plan(app, args, _asker) {
        plan(&app.rds_for(&args.db), &args, &app.settings).await?
    }
}
