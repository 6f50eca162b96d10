//! `/dr snapshot <database>`: a manual RDS snapshot now, named
//! `drbot-<instance>-<UTC yyyymmddhhmmss>`, tagged `drbot:requested-by` and
//! `drbot:incident`, followed until available.
//!
//! AWS calls: DescribeDBInstances (plan, re-check), CreateDBSnapshot (execute),
//! DescribeDBSnapshots (follow). IAM: `rds:DescribeDBInstances`, `rds:CreateDBSnapshot`,
//! `rds:AddTagsToResource`, `rds:DescribeDBSnapshots`.
//! Undo: delete the snapshot (not done by drbot). Approval: none (commands/snapshot.toml).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::PlanFailure;
use crate::aws::rds::RdsRecovery;
use crate::config::{RdsDatabase, Settings};
use crate::actions::database::{self, Watched};
use crate::gate::execute::{Run, Sent};
use crate::router::{Invalid, ParsedCommand};
use crate::store::RequestState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotPlan {
    pub database: String,
    pub instance: String,
    pub snapshot: String,
    pub tags: Vec<(String, String)>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<RdsDatabase, Invalid> {
    database::parse_database(cmd, settings)
}

/// The instance must be `available`.
pub async fn plan(
    rds: &impl RdsRecovery,
    db: &RdsDatabase,
    requester: &str,
    incident: Option<&str>,
) -> Result<(SnapshotPlan, String), PlanFailure> {
    let instance = rds.instance(&db.instance).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "instance `{}` of database `{}` does not exist",
            db.instance, db.name
        ))
    })?;
    if instance.status != "available" {
        return Err(PlanFailure::Invalid(format!(
            "instance `{}` is `{}`; a snapshot needs it `available`",
            db.instance, instance.status
        )));
    }
    let mut tags = vec![("drbot:requested-by".to_string(), requester.to_string())];
    if let Some(incident) = incident {
        tags.push(("drbot:incident".to_string(), incident.to_string()));
    }
    let plan = SnapshotPlan {
        database: db.name.clone(),
        instance: db.instance.clone(),
        snapshot: database::snapshot_name(&db.instance, crate::clock::now()),
        tags,
    };
    let summary = format!(
        "*Snapshot* of `{}` (instance `{}`) now, as `{}`, tagged {}",
        plan.database,
        plan.instance,
        plan.snapshot,
        plan.tags
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok((plan, summary))
}

pub async fn execute(run: &Run<'_>, plan: SnapshotPlan) {
    let app = run.app;
    let client = app.rds_named(&plan.database);
    let rds = &client;
    match rds.instance(&plan.instance).await {
        Ok(Some(i)) if i.status == "available" => {}
        Ok(Some(i)) => {
            return run
                .finish(
                    RequestState::Void,
                    &format!(
                        "not executed: instance `{}` is now `{}`",
                        plan.instance, i.status
                    ),
                )
                .await
        }
        Ok(None) => {
            return run
                .finish(
                    RequestState::Void,
                    &format!("not executed: instance `{}` is gone", plan.instance),
                )
                .await
        }
        Err(e) => {
            run.record_aws_error(&e).await;
            return run
                .finish(
                    RequestState::Failed,
                    &format!("could not read the instance: {e}"),
                )
                .await;
        }
    }
    let answer = rds
        .create_snapshot(&plan.instance, &plan.snapshot, &plan.tags)
        .await;
    let sent = Sent {
        operation: "CreateDBSnapshot",
        resource: format!("instance {}", plan.instance),
        detail: json!({"snapshot": plan.snapshot}),
    };
    let check = format!(
        "whether snapshot `{}` exists (RDS console, or DescribeDBSnapshots)",
        plan.snapshot
    );
    let Some(request_id) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!("CreateDBSnapshot sent: `{}` (AWS request id `{request_id}`). Waiting until it is available…", plan.snapshot))
        .await;
    let waited = database::follow(run, rds, Watched::Snapshot(&plan.snapshot)).await;
    let available = format!("snapshot `{}` is available", plan.snapshot);
    database::finish_waited(run, waited, available, "CreateDBSnapshot was sent").await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "rds:DescribeDBInstances", "rds:CreateDBSnapshot", "rds:DescribeDBSnapshots",
        "rds:AddTagsToResource"
    ],
    plan(app, db, asker) {
        plan(
            &app.rds_for(&db),
            &db,
            &asker.user,
            asker.incident.as_deref(),
        )
        .await?
    }
}
