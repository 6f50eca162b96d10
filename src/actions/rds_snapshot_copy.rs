//! `/dr snapshot copy <database> --to-region <region> [--snapshot <id>|latest]`: the plan's
//! cross-region backup. `CopyDBSnapshot` in the target region from the source snapshot's
//! ARN (with `copy_kms_key` when the source is encrypted), named
//! `drbot-<instance>-<UTC yyyymmddhhmmss>` and tagged like snapshots (requester, incident)
//! plus its source; followed until available there.
//!
//! AWS calls: DescribeDBSnapshots (plan, re-check: source region; target region),
//! CopyDBSnapshot (execute, target region), DescribeDBSnapshots (follow, target region).
//! IAM: `rds:DescribeDBSnapshots`, `rds:CopyDBSnapshot`, `rds:AddTagsToResource` in both
//! regions (and `kms:CreateGrant`/`kms:DescribeKey` on the key for encrypted copies).
//! Undo: delete the copy (not done by drbot). Approval: none (commands/snapshot-copy.toml).

use serde::{Deserialize, Serialize};
use serde_json::json;

use std::sync::Arc;

use super::PlanFailure;
use crate::app::App;
use crate::aws::rds::{RdsRecovery, Snapshot};
use crate::aws::AwsError;
use crate::config::{RdsDatabase, Settings, SCHEDULER};
use crate::store::{EventKind, NewEvent, Outgoing, StoreError};
use crate::actions::database::{self, Watched};
use crate::gate::execute::{Run, Sent};
use crate::router::{Invalid, ParsedCommand};

#[derive(Debug, Clone)]
pub struct CopyArgs {
    pub db: RdsDatabase,
    /// `None`: the default region (`AWS_REGION`).
    pub from_region: Option<String>,
    pub to_region: String,
    /// `None`: the newest available snapshot.
    pub snapshot: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyPlan {
    pub database: String,
    pub instance: String,
    pub from_region: String,
    pub to_region: String,
    pub snapshot: String,
    pub snapshot_arn: String,
    pub snapshot_taken: Option<String>,
    pub target: String,
    pub kms_key: Option<String>,
    pub tags: Vec<(String, String)>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<CopyArgs, Invalid> {
    let db = database::parse_database(cmd, settings)?;
    let to = cmd
        .flag_word("to-region")
        .ok_or("missing `--to-region <region>`: `backup`, or a region name like us-west-2")?;
    let to_region = settings
        .region_named(to)
        .map_err(|why| format!("`--to-region {to}`: {why}"))?
        .ok_or_else(|| format!("`--to-region {to}`: [regions] primary is not set, so name the region (like us-east-1)"))?;
    let from_region = settings.region_of(db.region.as_deref());
    let snapshot = match cmd.flag_word("snapshot") {
        None | Some("latest") => None,
        Some(id) => Some(id.to_string()),
    };
    Ok(CopyArgs {
        db,
        from_region,
        to_region,
        snapshot,
    })
}

/// `from` is the source region's RDS, `to` the target region's; `default_region` names the
/// source region when the database names none.
pub async fn plan(
    from: &impl RdsRecovery,
    to: &impl RdsRecovery,
    args: &CopyArgs,
    default_region: Option<&str>,
    asker: (&str, Option<&str>),
    fixed_target: Option<&str>,
) -> Result<(CopyPlan, String), PlanFailure> {
    let db = &args.db;
    let from_region = args
        .from_region
        .clone()
        .or(default_region.map(str::to_string))
        .ok_or_else(|| {
            PlanFailure::Invalid(
                "the source region is unknown: set AWS_REGION or [regions] primary".to_string(),
            )
        })?;
    if from_region == args.to_region {
        return Err(PlanFailure::Invalid(format!(
            "`{}` already lives in {from_region}; `--to-region` must be another region (e.g. `backup`)",
            db.name
        )));
    }
    let mut snapshots: Vec<Snapshot> = from
        .snapshots_of(&db.instance)
        .await?
        .into_iter()
        .filter(|s| s.status == "available")
        .collect();
    snapshots.sort_by_key(|s| s.created);
    let snapshot = match &args.snapshot {
        Some(id) => snapshots
            .iter()
            .find(|s| &s.id == id)
            .cloned()
            .ok_or_else(|| {
                PlanFailure::Invalid(format!(
                    "snapshot `{id}` of `{}` is not available in {from_region}",
                    db.instance
                ))
            })?,
        None => snapshots.last().cloned().ok_or_else(|| {
            PlanFailure::Invalid(format!(
                "`{}` has no available snapshot in {from_region}; take one with `/dr snapshot {}`",
                db.instance, db.name
            ))
        })?,
    };
    let kms_key = match (snapshot.encrypted, &db.copy_kms_key) {
        (true, None) => {
            return Err(PlanFailure::Invalid(format!(
                "snapshot `{}` is encrypted: a copy to {} needs a KMS key there; set `copy_kms_key` for `{}` in drbot.toml",
                snapshot.id, args.to_region, db.name
            )))
        }
        (true, Some(key)) => Some(key.clone()),
        (false, _) => None,
    };
    let target = fixed_target
        .map(str::to_string)
        .unwrap_or_else(|| database::snapshot_name(&db.instance, crate::clock::now()));
    if to.snapshot(&target).await?.is_some() {
        return Err(PlanFailure::Invalid(format!(
            "a snapshot named `{target}` already exists in {}; ask again in a second",
            args.to_region
        )));
    }
    let (requester, incident) = asker;
    let mut tags = vec![
        ("drbot:requested-by".to_string(), requester.to_string()),
        ("drbot:source-snapshot".to_string(), snapshot.id.clone()),
        ("drbot:source-region".to_string(), from_region.clone()),
    ];
    if requester == SCHEDULER {
        // Only these may be deleted by drbot's schedule, past `[rds.copies] keep`.
        tags.push((SCHEDULED_TAG.0.to_string(), SCHEDULED_TAG.1.to_string()));
    }
    if let Some(incident) = incident {
        tags.push(("drbot:incident".to_string(), incident.to_string()));
    }
    let plan = CopyPlan {
        database: db.name.clone(),
        instance: db.instance.clone(),
        from_region,
        to_region: args.to_region.clone(),
        snapshot: snapshot.id.clone(),
        snapshot_arn: snapshot.arn.clone(),
        snapshot_taken: snapshot.created.map(crate::clock::rfc3339),
        target,
        kms_key,
        tags,
    };
    let summary = format!(
        "*Copy snapshot* `{}`{} of `{}` from {} to *{}* as `{}`{}.",
        plan.snapshot,
        snapshot
            .created
            .map(|t| format!(" (taken {} UTC)", t.format("%Y-%m-%d %H:%M")))
            .unwrap_or_default(),
        plan.database,
        plan.from_region,
        plan.to_region,
        plan.target,
        plan.kms_key
            .as_deref()
            .map(|k| format!(", encrypted there with `{k}`"))
            .unwrap_or_default()
    );
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>, approved: CopyPlan) {
    let app = run.app;
    let Some(db) = run.database(&approved.database).await else {
        return;
    };
    let from = app.aws.rds_in(Some(&approved.from_region));
    let to = app.aws.rds_in(Some(&approved.to_region));
    let args = CopyArgs {
        db,
        from_region: Some(approved.from_region.clone()),
        to_region: approved.to_region.clone(),
        snapshot: Some(approved.snapshot.clone()),
    };
    let requester = approved
        .tags
        .iter()
        .find(|(k, _)| k == "drbot:requested-by")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let fresh = plan(
        &from,
        &to,
        &args,
        None,
        (&requester, run.request.incident.as_deref()),
        Some(&approved.target),
    )
    .await;
    if !run
        .recheck(fresh, "the snapshot changed since the plan")
        .await
    {
        return;
    }
    let answer = to
        .copy_snapshot(
            &approved.snapshot_arn,
            Some(&approved.from_region),
            &approved.target,
            &approved.tags,
            approved.kms_key.as_deref(),
        )
        .await;
    let sent = Sent {
        operation: "CopyDBSnapshot",
        resource: format!("snapshot {} ({})", approved.snapshot, approved.from_region),
        detail: json!({"target": approved.target, "to_region": approved.to_region, "snapshot_taken": approved.snapshot_taken}),
    };
    let check = format!(
        "whether snapshot `{}` exists in {} (RDS console, or DescribeDBSnapshots)",
        approved.target, approved.to_region
    );
    let Some(request_id) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!(
        "CopyDBSnapshot sent: `{}` → `{}` in {} (AWS request id `{request_id}`). Waiting until the copy is available…",
        approved.snapshot, approved.target, approved.to_region
    ))
    .await;
    let waited = database::follow(run, &to, Watched::Snapshot(&approved.target)).await;
    let available = format!(
        "copy `{}` is available in {}; restore it there with `/dr restore {} --region {} --snapshot {}`",
        approved.target, approved.to_region, approved.database, approved.to_region, approved.target
    );
    database::finish_waited(run, waited, available, "CopyDBSnapshot was sent").await;
}

/// The tag of the copies drbot's schedule makes (`[rds.copies]`), the only ones it deletes.
pub const SCHEDULED_TAG: (&str, &str) = ("drbot:scheduled-copy", "true");

/// Whether `snapshot` is a copy of `instance` made by drbot's schedule: named
/// `drbot-<instance>-…` and tagged so.
pub fn is_scheduled_copy(snapshot: &Snapshot, instance: &str) -> bool {
    snapshot.id.starts_with(&format!("drbot-{instance}-"))
        && snapshot.tag(SCHEDULED_TAG.0) == Some(SCHEDULED_TAG.1)
}

/// drbot's scheduled copies of `instance` that are past `keep` at `now`, oldest first; the
/// newest available copy always stays, however old.
pub fn past_keep(
    snapshots: &[Snapshot],
    instance: &str,
    keep: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<Snapshot> {
    let mut ours: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| is_scheduled_copy(s, instance) && s.created.is_some())
        .collect();
    ours.sort_by_key(|s| s.created);
    let newest = ours.iter().rev().find(|s| s.status == "available").map(|s| s.id.clone());
    ours.into_iter()
        .filter(|s| Some(&s.id) != newest.as_ref())
        .filter(|s| s.status == "available")
        .filter(|s| s.created.is_some_and(|c| now - c > keep))
        .cloned()
        .collect()
}

/// Whether the schedule has a copy to make: the newest available snapshot of `db` in its
/// region has no copy in the backup region yet (one of drbot's, tagged with it as source).
/// Copying the same snapshot every hour would only pile up copies of the same data.
pub async fn newest_not_copied(app: &Arc<App>, db: &RdsDatabase) -> Result<Option<String>, AwsError> {
    let Some(to_region) = app.settings.regions.backup.clone() else {
        return Ok(None);
    };
    let from = app.rds_for(db);
    let newest = from
        .snapshots_of(&db.instance)
        .await?
        .into_iter()
        .filter(|s| s.status == "available")
        .max_by_key(|s| s.created);
    let Some(newest) = newest else {
        // Planning says why there is nothing to copy.
        return Ok(Some(String::new()));
    };
    let copied = app
        .aws
        .rds_in(Some(&to_region))
        .snapshots_of(&db.instance)
        .await?
        .iter()
        .any(|s| s.status != "failed" && s.tag("drbot:source-snapshot") == Some(newest.id.as_str()));
    Ok((!copied).then_some(newest.id))
}

/// Deletes drbot's scheduled copies of `db` in the backup region that are past
/// `[rds.copies] keep`, each checked again (name and tag) right before `DeleteDBSnapshot`;
/// recorded, and said in the ops channel.
pub async fn prune_scheduled(app: &Arc<App>, db: &RdsDatabase) -> Result<(), StoreError> {
    let Some(region) = app.settings.regions.backup.clone() else {
        return Ok(());
    };
    let Some(channel) = app.settings.ops_channel().map(str::to_string) else {
        return Ok(());
    };
    let to = app.aws.rds_in(Some(&region));
    let keep = chrono::Duration::seconds(app.settings.rds.copies.keep.as_secs() as i64);
    let held = match to.snapshots_of(&db.instance).await {
        Ok(held) => held,
        Err(e) => {
            tracing::warn!(error = %e, database = %db.name, "could not list the backup region's copies; pruning waits for the next copy");
            return Ok(());
        }
    };
    for old in past_keep(&held, &db.instance, keep, crate::clock::now()) {
        let (kind, text, detail) = match delete_copy(&to, &old.id, &db.instance).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, snapshot = %old.id, "could not delete an old scheduled copy; tried again after the next copy");
                continue;
            }
        };
        let mut tx = app.store.begin().await?;
        tx.append(NewEvent::new(kind, SCHEDULER, &channel, text.clone()).detail(detail))
            .await?;
        tx.send_slack(Outgoing::post(&channel, format!(":wastebasket: Scheduled copies of `{}`: {text}.", db.name)))
            .await?;
        tx.commit().await?;
    }
    Ok(())
}

async fn delete_copy(
    to: &impl RdsRecovery,
    id: &str,
    instance: &str,
) -> Result<(EventKind, String, serde_json::Value), AwsError> {
    let Some(found) = to.snapshot(id).await? else {
        return Ok((EventKind::CopyDeleted, format!("copy `{id}` was already gone"), json!({"snapshot": id})));
    };
    if !is_scheduled_copy(&found, instance) {
        let text = format!(
            "copy `{id}` was NOT deleted: it is not named `drbot-{instance}-…` and tagged `{}={}` any more",
            SCHEDULED_TAG.0, SCHEDULED_TAG.1
        );
        return Ok((EventKind::CopyDeleteRefused, text, json!({"snapshot": id, "tags": found.tags})));
    }
    let request_id = to.delete_snapshot(id).await?;
    let text = format!("copy `{id}` deleted: past `[rds.copies] keep` (AWS request id `{request_id}`)");
    let detail = json!({"snapshot": id, "operation": "DeleteDBSnapshot", "aws_request_id": request_id});
    Ok((EventKind::CopyDeleted, text, detail))
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: ["rds:DescribeDBSnapshots", "rds:CopyDBSnapshot", "rds:AddTagsToResource", "rds:DeleteDBSnapshot"],
    plan(app, args, asker) {
        let from = app.rds_for(&args.db);
        let to = app.aws.rds_in(Some(&args.to_region));
        plan(
            &from,
            &to,
            &args,
            app.aws.default_region().as_deref(),
            (&asker.user, asker.incident.as_deref()),
            None,
        )
        .await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(id: &str, hours_ago: i64, tags: &[(&str, &str)], status: &str) -> Snapshot {
        Snapshot {
            id: id.into(),
            arn: format!("arn:aws:rds:us-west-2:1:snapshot:{id}"),
            instance: "db".into(),
            source_region: Some("us-east-1".into()),
            status: status.into(),
            created: Some(chrono::Utc::now() - chrono::Duration::hours(hours_ago)),
            kind: "manual".into(),
            engine: "postgres".into(),
            engine_version: "16".into(),
            allocated_storage_gib: 20,
            encrypted: false,
            tags: tags.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    /// Only drbot's scheduled copies (named and tagged so) older than `keep`, and never the
    /// newest available one, however old.
    #[test]
    fn only_drbots_own_copies_past_keep_and_never_the_newest_are_deleted() {
        let ours = [SCHEDULED_TAG];
        let held = [
            snap("drbot-db-1", 300, &ours, "available"),
            snap("drbot-db-2", 200, &ours, "available"),
            snap("drbot-db-3", 100, &ours, "available"),
            // Named like drbot's, not tagged: someone else's.
            snap("drbot-db-4", 250, &[], "available"),
            // Tagged, named for another instance.
            snap("drbot-other-5", 250, &ours, "available"),
            // drbot's retention copy: not the schedule's.
            snap("drbot-weekly-db-2026w01", 400, &[("drbot:retention", "weekly")], "available"),
            // Still copying: left alone.
            snap("drbot-db-6", 150, &ours, "creating"),
        ];
        let keep = chrono::Duration::hours(24);
        let gone: Vec<String> = past_keep(&held, "db", keep, chrono::Utc::now())
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(gone, ["drbot-db-1", "drbot-db-2"]);
        // One copy only, very old: it stays.
        let alone = [snap("drbot-db-1", 900, &ours, "available")];
        assert!(past_keep(&alone, "db", keep, chrono::Utc::now()).is_empty());
    }
}
