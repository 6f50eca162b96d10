//! `/dr cutover <database> --to <instance>`: the plan's "update application configuration,
//! update connection strings, restart application". The new instance must be available;
//! its endpoint host is written to the database's `cutover_parameter` (SSM
//! `PutParameter --overwrite`; the previous value and version are recorded and shown for
//! undo), then each `cutover_services` entry gets a new deployment (its new tasks read the
//! new host), followed until stable. With `--region` (the backup region, after a restore
//! there), the instance and the parameter are those of that region, and only the
//! `cutover_services` that run there are redeployed: the failed region is never called.
//!
//! AWS calls: DescribeDBInstances, GetParameter (plan, re-check), PutParameter,
//! UpdateService with forceNewDeployment (execute), DescribeServices (follow).
//! IAM: `ssm:GetParameter`, `ssm:PutParameter` on the configured parameters,
//! `ecs:UpdateService` on the configured services. Undo: `/dr cutover <database> --to
//! <the previous instance>` (the previous value is in the result). Approval: `officer`.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ecs_rollback::{follow_in_thread, judge, Rollout};
use super::PlanFailure;
use crate::aws::ecs::{EcsCapacity, EcsRollback};
use crate::aws::params::ConnectionSettings;
use crate::aws::rds::RdsRecovery;
use crate::config::{RdsDatabase, Settings};
use crate::actions::database;
use crate::gate::execute::{Run, Sent};
use crate::router::{Invalid, ParsedCommand};
use crate::store::RequestState;

#[derive(Debug, Clone)]
pub struct CutoverArgs {
    pub db: RdsDatabase,
    pub parameter: String,
    pub to: String,
    /// `--region`: the instance and the parameter are in this region, not the database's.
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutoverPlan {
    pub database: String,
    pub parameter: String,
    pub region: Option<String>,
    pub to: String,
    pub current_value: String,
    pub current_version: i64,
    pub kind: String,
    pub new_value: String,
    /// `(name, cluster, service)` redeployed afterwards.
    pub services: Vec<(String, String, String)>,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<CutoverArgs, Invalid> {
    let db = database::parse_database(cmd, settings)?;
    let parameter = db.cutover_parameter.clone().ok_or_else(|| {
        format!(
            "`{}` has no `cutover_parameter` in drbot.toml: drbot does not know where the application reads its database host",
            db.name
        )
    })?;
    let to = cmd
        .flag_word("to")
        .ok_or("missing `--to <instance>`: the instance the application should use")?
        .to_string();
    database::check_identifier(&to)?;
    let region = database::other_region(cmd, settings, &db)?;
    Ok(CutoverArgs {
        db,
        parameter,
        to,
        region,
    })
}

pub async fn plan(
    rds: &impl RdsRecovery,
    ssm: &impl ConnectionSettings,
    args: &CutoverArgs,
    settings: &Settings,
) -> Result<(CutoverPlan, String), PlanFailure> {
    let db = &args.db;
    let instance = rds
        .instance(&args.to)
        .await?
        .ok_or_else(|| PlanFailure::Invalid(format!("instance `{}` does not exist", args.to)))?;
    if instance.status != "available" {
        return Err(PlanFailure::Invalid(format!(
            "instance `{}` is `{}`; a cutover needs it `available`",
            args.to, instance.status
        )));
    }
    let host = instance
        .endpoint
        .as_deref()
        .map(|e| e.rsplit_once(':').map(|(h, _)| h).unwrap_or(e).to_string())
        .ok_or_else(|| {
            PlanFailure::Invalid(format!("instance `{}` reports no endpoint yet", args.to))
        })?;
    let current = ssm.parameter(&args.parameter).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "SSM parameter `{}` does not exist; create it with the application's current database host first",
            args.parameter
        ))
    })?;
    if current.value == host {
        return Err(PlanFailure::Invalid(format!(
            "`{}` already holds `{host}` (instance `{}`): the application already uses it",
            args.parameter, args.to
        )));
    }
    let region = args
        .region
        .clone()
        .or_else(|| settings.region_of(db.region.as_deref()));
    // With `--region`, only the services that run there: the other region may be down.
    let (services, elsewhere): (Vec<_>, Vec<_>) = db
        .cutover_services
        .iter()
        .filter_map(|name| settings.service(name))
        .partition(|s| args.region.is_none() || settings.region_of(s.region.as_deref()) == region);
    let services = services
        .into_iter()
        .map(|s| (s.name.clone(), s.cluster.clone(), s.service.clone()))
        .collect::<Vec<_>>();
    // A SecureString's value is a secret: never shown, stored or exported, only said to be
    // secret with a fingerprint (the same value, the same fingerprint: the re-check still
    // notices a change). SSM keeps the old version for undo.
    let current_value = if current.kind == "SecureString" {
        secret_fingerprint(&current.value)
    } else {
        current.value.clone()
    };
    let plan = CutoverPlan {
        database: db.name.clone(),
        parameter: args.parameter.clone(),
        region,
        to: args.to.clone(),
        current_value,
        current_version: current.version,
        kind: current.kind.clone(),
        new_value: host,
        services,
    };
    let redeploy = if plan.services.is_empty() {
        "no `cutover_services` to redeploy: restart the application yourself".to_string()
    } else {
        format!(
            "then a new deployment of {} (new tasks read the new host), followed until stable",
            plan.services
                .iter()
                .map(|(n, _, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let skipped = if elsewhere.is_empty() {
        String::new()
    } else {
        format!(
            "\n• Not redeployed (in another region): {}.",
            elsewhere
                .iter()
                .map(|s| format!("`{}`", s.name))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let in_region = match (&args.region, &plan.region) {
        (Some(_), Some(region)) => format!(" in {region}"),
        _ => String::new(),
    };
    let summary = format!(
        "*Cut over* `{}` to instance `{}`{in_region}:\n• `{}` (version {}): `{}` → `{}`\n• {redeploy}.{skipped}\n• Undo: the previous value stays as version {} of the parameter; `/dr cutover {} --to <previous instance>` puts it back.",
        plan.database,
        plan.to,
        plan.parameter,
        plan.current_version,
        plan.current_value,
        plan.new_value,
        plan.current_version,
        plan.database,
    );
    Ok((plan, summary))
}

/// How a secret value is shown: that it is secret, and the start of its SHA-256.
fn secret_fingerprint(value: &str) -> String {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(value.as_bytes()));
    format!("(SecureString, not shown; sha256 {})", &digest[..12])
}

pub async fn execute(run: &Run<'_>, approved: CutoverPlan) {
    let app = run.app;
    let Some(db) = run.database(&approved.database).await else {
        return;
    };
    let rds = app.aws.rds_in(approved.region.as_deref());
    let ssm = app.aws.ssm_in(approved.region.as_deref());
    let region = (approved.region != app.settings.region_of(db.region.as_deref()))
        .then(|| approved.region.clone())
        .flatten();
    let args = CutoverArgs {
        db,
        parameter: approved.parameter.clone(),
        to: approved.to.clone(),
        region,
    };
    if !run
        .recheck(
            plan(&rds, &ssm, &args, &app.settings).await,
            "the parameter or the instance changed since the plan",
        )
        .await
    {
        return;
    }
    let answer = ssm
        .overwrite(&approved.parameter, &approved.new_value, &approved.kind)
        .await;
    let sent = Sent {
        operation: "PutParameter",
        resource: format!("parameter {}", approved.parameter),
        detail: json!({"new_version": answer.as_ref().map(|a| a.0).ok(), "previous_version": approved.current_version, "previous_value": approved.current_value, "new_value": approved.new_value}),
    };
    let check = format!(
        "the value and version of `{}` (Systems Manager → Parameter Store); nothing was redeployed",
        approved.parameter
    );
    let Some((version, request_id)) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!(
        "PutParameter sent: `{}` is now `{}` (version {version}; the previous value is version {}). AWS request id `{request_id}`.",
        approved.parameter, approved.new_value, approved.current_version
    ))
    .await;
    let undo = format!(
        "previous value `{}` is version {} of `{}`",
        approved.current_value, approved.current_version, approved.parameter
    );
    let mut problems = Vec::new();
    for (name, cluster, service) in &approved.services {
        let Some(svc) = app.settings.service(name).cloned() else {
            problems.push(format!("`{name}` is no longer configured; not redeployed"));
            continue;
        };
        let ecs = app.ecs_for(&svc);
        let state = match ecs.service_state(cluster, service).await {
            Ok(state) => state,
            Err(e) => {
                run.record_aws_error(&e).await;
                problems.push(format!("could not read `{name}`: {e}"));
                continue;
            }
        };
        match ecs.redeploy(cluster, service).await {
            Ok(request_id) => {
                run.record_aws_call(
                    "UpdateService",
                    &format!("{cluster}/{service}"),
                    &request_id,
                    json!({"force_new_deployment": true, "reason": "cutover"}),
                )
                .await;
            }
            Err(e) => {
                run.record_aws_error(&e).await;
                problems.push(format!("redeploying `{name}` failed: {e}"));
                continue;
            }
        }
        let target = state.task_definition.clone();
        let doing = format!("redeploying `{name}`");
        let followed = (cluster.as_str(), service.as_str());
        let outcome = follow_in_thread(run, &ecs, followed, |s| judge(s, &target), &doing).await;
        match outcome {
            Ok(Rollout::Stable) => {
                run.thread(&format!("`{name}` redeployed and stable on `{target}`."))
                    .await
            }
            Ok(Rollout::Failed(why)) => problems.push(format!("`{name}`: {why}")),
            Ok(Rollout::TimedOut { last }) => problems.push(format!(
                "`{name}` not stable after {} ({last})",
                app.settings.ecs.rollout_timeout
            )),
            Err(e) => problems.push(format!("following `{name}` failed: {e}")),
        }
    }
    if problems.is_empty() {
        run.finish(
            RequestState::Executed,
            &format!(
                "`{}` now points to `{}` ({}); {} redeployed ({undo})",
                approved.parameter,
                approved.new_value,
                approved.to,
                if approved.services.is_empty() {
                    "nothing".to_string()
                } else {
                    format!("{} service(s)", approved.services.len())
                }
            ),
        )
        .await
    } else {
        run.finish(
            RequestState::Failed,
            &format!(
                "`{}` now points to `{}`, but: {} ({undo})",
                approved.parameter,
                approved.new_value,
                problems.join("; ")
            ),
        )
        .await
    }
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "rds:DescribeDBInstances", "ssm:GetParameter", "ssm:PutParameter", "ecs:DescribeServices",
        "ecs:UpdateService"
    ],
    plan(app, args, _asker) {
        let region = args
            .region
            .clone()
            .or_else(|| app.settings.region_of(args.db.region.as_deref()));
        let ssm = app.aws.ssm_in(region.as_deref());
        plan(&app.aws.rds_in(region.as_deref()), &ssm, &args, &app.settings).await?
    }
    prerequisites(app, args) {
        // The instance may be one an earlier step restores; the parameter must be there.
        let region = args
            .region
            .clone()
            .or_else(|| app.settings.region_of(args.db.region.as_deref()));
        let ssm = app.aws.ssm_in(region.as_deref());
        let in_region = region.map(|r| format!(" in {r}")).unwrap_or_default();
        match ssm.parameter(&args.parameter).await {
            Ok(Some(_)) => vec![],
            Ok(None) => vec![format!(
                "SSM parameter `{}` does not exist{in_region}; create it with the application's current database host first",
                args.parameter
            )],
            Err(e) => vec![format!("SSM parameter `{}` could not be read{in_region}: {e}", args.parameter)],
        }
    }
}
