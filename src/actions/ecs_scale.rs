//! `/dr scale <service> --desired <n> [--confirm-zero]`: the plan's "scale resources" step
//! (DDoS, region failure). Shows current → target counts; `UpdateService` with the desired
//! count; followed until running = desired (or `ecs.rollout_timeout`). Taking a service to
//! 0 needs `--confirm-zero`; above the service's `max_desired` is refused.
//!
//! AWS calls: DescribeServices (plan, re-check, follow); UpdateService (execute).
//! IAM: `ecs:DescribeServices`, `ecs:UpdateService` on the configured service.
//! Undo: `/dr scale <service> --desired <the previous count>` (shown in the result).
//! Approval: `officer` (commands/scale.toml).

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ecs_rollback::{follow_in_thread, Rollout, Verdict};
use super::PlanFailure;
use crate::aws::ecs::{EcsCapacity, EcsRollback, ServiceState};
use crate::config::{EcsService, Settings};
use crate::gate::execute::{Run, Sent, Settled};
use crate::router::{Invalid, ParsedCommand, Value};

#[derive(Debug, Clone)]
pub struct ScaleArgs {
    pub service: EcsService,
    pub desired: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalePlan {
    pub service: String,
    pub cluster: String,
    pub ecs_service: String,
    pub region: Option<String>,
    pub current_desired: i32,
    pub desired: i32,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<ScaleArgs, Invalid> {
    let name = cmd.arg_word("service").ok_or("missing <service>")?;
    let service = settings.known_service(name)?.clone();
    let desired = match cmd.flag("desired") {
        Some(Value::Integer(n)) => *n,
        Some(_) => return Err("`--desired` needs a whole number of tasks".into()),
        None => {
            return Err("missing `--desired <n>`: how many tasks the service should run".into())
        }
    };
    if desired > service.max_desired.max(0) as u64 {
        return Err(format!(
            "`--desired {desired}` is above `{}`'s maximum of {} (`max_desired` in drbot.toml)",
            service.name, service.max_desired
        )
        .into());
    }
    if desired == 0 && cmd.flag("confirm-zero").is_none() {
        return Err(format!(
            "`--desired 0` takes `{}` down; if that is meant, say so: `--desired 0 --confirm-zero`",
            service.name
        )
        .into());
    }
    Ok(ScaleArgs {
        service,
        desired: desired as i32,
    })
}

pub async fn plan(
    ecs: &impl EcsRollback,
    args: &ScaleArgs,
    settings: &Settings,
) -> Result<(ScalePlan, String), PlanFailure> {
    let svc = &args.service;
    let state = ecs.service_state(&svc.cluster, &svc.service).await?;
    if state.desired == args.desired {
        return Err(PlanFailure::Invalid(format!(
            "`{}` already wants {} task(s) (running {}); nothing to change",
            svc.name, state.desired, state.running
        )));
    }
    let region = settings.region_of(svc.region.as_deref());
    let plan = ScalePlan {
        service: svc.name.clone(),
        cluster: svc.cluster.clone(),
        ecs_service: svc.service.clone(),
        region: region.clone(),
        current_desired: state.desired,
        desired: args.desired,
    };
    let summary = format!(
        "*Scale* `{}` (`{}/{}`{}): desired tasks *{} → {}* (running now: {}).{}\n• Followed until {} task(s) run. Undo: `/dr scale {} --desired {}`.",
        plan.service,
        plan.cluster,
        plan.ecs_service,
        region.as_deref().map(|r| format!(", {r}")).unwrap_or_default(),
        plan.current_desired,
        plan.desired,
        state.running,
        if plan.desired == 0 { "\n• :warning: This takes the service *down* (0 tasks)." } else { "" },
        plan.desired,
        plan.service,
        plan.current_desired.max(1),
    );
    Ok((plan, summary))
}

/// Stable when the service wants `desired` tasks and runs them all in one deployment.
pub fn judge(state: &ServiceState, desired: i32) -> Verdict {
    if state.desired != desired {
        return Verdict::Failed(format!(
            "the desired count is now {} (someone else changed it)",
            state.desired
        ));
    }
    let now = format!("running {}/{} tasks", state.running, state.desired);
    if state.running == desired && state.deployments.len() <= 1 {
        Verdict::Stable
    } else {
        Verdict::InProgress(now)
    }
}

pub async fn execute(run: &Run<'_>, approved: ScalePlan) {
    let app = run.app;
    let service = app.settings.service(&approved.service);
    let Some(service) = run.configured(service, "service", &approved.service).await else {
        return;
    };
    let ecs = app.aws.ecs_in(approved.region.as_deref());
    let args = ScaleArgs {
        service,
        desired: approved.desired,
    };
    if !run
        .recheck(
            plan(&ecs, &args, &app.settings).await,
            "the service's desired count changed since the plan",
        )
        .await
    {
        return;
    }
    let resource = format!("{}/{}", approved.cluster, approved.ecs_service);
    let answer = ecs
        .set_desired(&approved.cluster, &approved.ecs_service, approved.desired)
        .await;
    let sent = Sent {
        operation: "UpdateService",
        resource: resource.clone(),
        detail: json!({"desired_count": approved.desired, "previous_desired_count": approved.current_desired}),
    };
    let check = format!("the desired count of `{resource}` (ECS console, or DescribeServices)");
    let Some(request_id) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!(
        "UpdateService sent: `{resource}` desired {} → {} (AWS request id `{request_id}`). Following until the tasks run…",
        approved.current_desired, approved.desired
    ))
    .await;
    let settings = &app.settings.ecs;
    let desired = approved.desired;
    let doing = format!("scaling to {desired}");
    let service = (approved.cluster.as_str(), approved.ecs_service.as_str());
    let outcome = follow_in_thread(run, &ecs, service, |state| judge(state, desired), &doing).await;
    let undo = format!(
        "undo: `/dr scale {} --desired {}`",
        approved.service, approved.current_desired
    );
    let service = &approved.service;
    let followed = outcome.map(|rollout| match rollout {
        Rollout::Stable => Settled::Reached(format!("`{service}` runs {desired} task(s) ({undo})")),
        Rollout::Failed(why) => Settled::Missed(why),
        Rollout::TimedOut { last } => Settled::Missed(format!(
            "the desired count is set, but `{service}` did not reach {desired} running task(s) within {} ({last}); check capacity and the ECS events ({undo})",
            settings.rollout_timeout
        )),
    });
    run.finish_followed(followed, |e| {
        format!("UpdateService was sent, but following the service failed: {e} ({undo})")
    })
    .await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: ["ecs:DescribeServices", "ecs:UpdateService"],
    plan(app, args, _asker) {
        plan(&app.ecs_for(&args.service), &args, &app.settings).await?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(desired: i32, running: i32, deployments: usize) -> ServiceState {
        ServiceState {
            task_definition: "web:3".into(),
            desired,
            running,
            deployments: (0..deployments)
                .map(|_| crate::aws::ecs::Deployment {
                    status: "PRIMARY".into(),
                    task_definition: "web:3".into(),
                    desired,
                    running,
                    rollout_state: None,
                    rollout_reason: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_scale_is_done_when_every_desired_task_runs() {
        assert_eq!(judge(&state(4, 4, 1), 4), Verdict::Stable);
        assert!(matches!(judge(&state(4, 2, 1), 4), Verdict::InProgress(_)));
        assert!(matches!(judge(&state(3, 3, 1), 4), Verdict::Failed(_)));
        assert_eq!(judge(&state(0, 0, 1), 0), Verdict::Stable);
    }
}
