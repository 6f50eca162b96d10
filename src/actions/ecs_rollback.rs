//! `/dr rollback <service> [--to <revision>]`: an ECS service back to an earlier
//! task-definition revision, pinned as `family:revision`, then followed until stable.
//!
//! AWS calls: DescribeServices, DescribeTaskDefinition, ListTaskDefinitions (plan and
//! re-check); UpdateService (execute); DescribeServices (follow).
//! IAM: `ecs:DescribeServices`, `ecs:DescribeTaskDefinition`, `ecs:ListTaskDefinitions`,
//! `ecs:UpdateService` on the configured cluster/service.
//! Undo: roll forward with `/dr rollback <service> --to <newer revision>`.
//! Approval: `officer` (commands/rollback.toml).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use serde_json::json;

use crate::aws::ecs::{EcsRollback, ServiceState, TaskDefinition};
use crate::aws::AwsError;
use crate::config::{EcsService, Settings};
use crate::gate::execute::{Run, Sent, Settled};
use crate::gate::PlanFailure;
use crate::router::{Invalid, ParsedCommand, Value};

/// The typed arguments.
#[derive(Debug, Clone)]
pub struct Rollback {
    pub service: EcsService,
    pub to: Option<i32>,
}

/// What the approval request shows, and what the approval is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackPlan {
    /// The name used in `/dr` commands.
    pub service: String,
    pub cluster: String,
    pub ecs_service: String,
    pub current: TaskDefinition,
    pub target: TaskDefinition,
}

pub fn parse(cmd: &ParsedCommand, settings: &Settings) -> Result<Rollback, Invalid> {
    let name = cmd.arg_word("service").ok_or("missing <service>")?;
    let service = settings.known_service(name)?.clone();
    let to = match cmd.flag("to") {
        None => None,
        Some(Value::Integer(n)) => {
            Some(i32::try_from(*n).map_err(|_| format!("`--to {n}` is not a revision number"))?)
        }
        Some(_) => return Err("`--to` needs a revision number".into()),
    };
    if to == Some(0) {
        return Err("revisions start at 1; `--to 0` is not a revision".into());
    }
    Ok(Rollback { service, to })
}

/// Reads AWS and works out the exact change.
pub async fn plan(ecs: &impl EcsRollback, args: &Rollback) -> Result<RollbackPlan, PlanFailure> {
    let svc = &args.service;
    let state = ecs.service_state(&svc.cluster, &svc.service).await?;
    let current = ecs
        .task_definition(&state.task_definition)
        .await?
        .ok_or_else(|| {
            PlanFailure::Invalid(format!(
                "the service's task definition `{}` cannot be read",
                state.task_definition
            ))
        })?;
    let target_revision = match args.to {
        Some(rev) => rev,
        None => {
            let revisions = ecs.active_revisions(&current.family).await?;
            previous_revision(&revisions, current.revision).ok_or_else(|| {
                PlanFailure::Invalid(format!(
                    "`{}` runs `{}` and the family has no earlier ACTIVE revision to roll back to",
                    svc.name,
                    current.pinned()
                ))
            })?
        }
    };
    if target_revision == current.revision {
        return Err(PlanFailure::Invalid(format!(
            "`{}` already runs `{}`; nothing to roll back",
            svc.name,
            current.pinned()
        )));
    }
    let wanted = format!("{}:{}", current.family, target_revision);
    let target = ecs.task_definition(&wanted).await?.ok_or_else(|| {
        PlanFailure::Invalid(format!(
            "revision `{wanted}` does not exist in the `{}` family",
            current.family
        ))
    })?;
    if !target.active {
        return Err(PlanFailure::Invalid(format!(
            "revision `{wanted}` is INACTIVE (deregistered); choose an ACTIVE revision"
        )));
    }
    if target.family != current.family {
        return Err(PlanFailure::Invalid(format!(
            "revision `{wanted}` belongs to family `{}`, not `{}`",
            target.family, current.family
        )));
    }
    Ok(RollbackPlan {
        service: svc.name.clone(),
        cluster: svc.cluster.clone(),
        ecs_service: svc.service.clone(),
        current,
        target,
    })
}

/// The highest ACTIVE revision below `current`.
pub fn previous_revision(active: &[i32], current: i32) -> Option<i32> {
    active.iter().copied().filter(|r| *r < current).max()
}

/// Re-reads AWS for the same target; the caller compares it with the approved plan.
pub async fn recheck(
    ecs: &impl EcsRollback,
    approved: &RollbackPlan,
    settings: &Settings,
) -> Result<RollbackPlan, PlanFailure> {
    let service = settings
        .service(&approved.service)
        .cloned()
        .ok_or_else(|| {
            PlanFailure::Invalid(format!(
                "service `{}` is no longer configured",
                approved.service
            ))
        })?;
    plan(
        ecs,
        &Rollback {
            service,
            to: Some(approved.target.revision),
        },
    )
    .await
}

/// Says what changed between the approved plan and AWS now.
pub fn drift(approved: &RollbackPlan, now: &RollbackPlan) -> String {
    if approved.current != now.current {
        format!(
            "the service now runs `{}` (the plan was made against `{}`): someone deployed in between",
            now.current.pinned(),
            approved.current.pinned()
        )
    } else if approved.target != now.target {
        format!(
            "revision `{}` changed since the plan was made",
            approved.target.pinned()
        )
    } else {
        "the service changed since the plan was made".to_string()
    }
}

/// The plan as officers read it.
pub fn describe(plan: &RollbackPlan) -> String {
    let mut out = format!(
        "*Roll back* `{}` (cluster `{}`, service `{}`)\n• from `{}` (running now)\n• to `{}`",
        plan.service,
        plan.cluster,
        plan.ecs_service,
        plan.current.pinned(),
        plan.target.pinned()
    );
    for container in &plan.target.containers {
        let before = plan
            .current
            .containers
            .iter()
            .find(|c| c.name == container.name)
            .map(|c| c.image.as_str());
        match before {
            Some(image) if image == container.image => out.push_str(&format!(
                "\n• container `{}`: `{}` (unchanged)",
                container.name, image
            )),
            Some(image) => out.push_str(&format!(
                "\n• container `{}`: `{}` → `{}` *(changes)*",
                container.name, image, container.image
            )),
            None => out.push_str(&format!(
                "\n• container `{}`: added, `{}` *(changes)*",
                container.name, container.image
            )),
        }
    }
    for gone in plan
        .current
        .containers
        .iter()
        .filter(|c| !plan.target.containers.iter().any(|t| t.name == c.name))
    {
        out.push_str(&format!(
            "\n• container `{}`: removed (was `{}`) *(changes)*",
            gone.name, gone.image
        ));
    }
    out
}

/// How a followed deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rollout {
    Stable,
    Failed(String),
    TimedOut { last: String },
}

/// Timing of the follow loop.
#[derive(Debug, Clone, Copy)]
pub struct Follow {
    pub first_poll: Duration,
    pub max_poll: Duration,
    pub timeout: Duration,
    pub progress_every: Duration,
}

/// The verdict on one DescribeServices answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Stable,
    Failed(String),
    InProgress(String),
}

/// Stable on real ECS means: the service is pinned to the target, the old deployment has
/// drained (exactly one deployment left), that deployment runs the desired count, and its
/// rollout (when ECS reports one) is COMPLETED. Failed means ECS marked the rollout
/// FAILED, or the circuit breaker put the service back on another revision.
pub fn judge(state: &ServiceState, target: &str) -> Verdict {
    if let Some(failed) = state
        .deployments
        .iter()
        .find(|d| d.rollout_state.as_deref() == Some("FAILED") && d.task_definition == target)
    {
        return Verdict::Failed(format!(
            "ECS marked the rollout FAILED: {}",
            failed
                .rollout_reason
                .as_deref()
                .unwrap_or("no reason given")
        ));
    }
    if state.task_definition != target {
        return Verdict::Failed(format!(
            "the service is back on `{}` (the deployment circuit breaker rolled it back, or someone deployed)",
            state.task_definition
        ));
    }
    let progress = format!(
        "{} deployment(s); running {}/{} tasks",
        state.deployments.len(),
        state.running,
        state.desired
    );
    match state.deployments.as_slice() {
        [only]
            if only.running == only.desired
                && state.running == state.desired
                && only
                    .rollout_state
                    .as_deref()
                    .is_none_or(|s| s == "COMPLETED") =>
        {
            Verdict::Stable
        }
        _ => Verdict::InProgress(progress),
    }
}

/// Polls the service with backoff until the rollout is stable, failed or out of time;
/// `progress` is called at most every `timing.progress_every`.
/// Follows `cluster/service` as [`follow_service`] does (timing from `[ecs]`), posting the
/// progress lines in the run's thread as they come.
pub async fn follow_in_thread(
    run: &Run<'_>,
    ecs: &impl EcsRollback,
    (cluster, service): (&str, &str),
    verdict: impl Fn(&ServiceState) -> Verdict,
    doing: &str,
) -> Result<Rollout, AwsError> {
    let timing = Follow::of(&run.app.settings.ecs);
    run.following(|progress| {
        follow_service(ecs, cluster, service, verdict, doing, timing, move |line| {
            let _ = progress.send(line);
        })
    })
    .await
}

/// Polls `cluster/service` with backoff until `verdict` says stable or failed, or time is
/// up; `doing` names the work in progress lines (scale and cutover follow the same way).
pub async fn follow_service(
    ecs: &impl EcsRollback,
    cluster: &str,
    service: &str,
    verdict: impl Fn(&ServiceState) -> Verdict,
    doing: &str,
    timing: Follow,
    mut progress: impl FnMut(String),
) -> Result<Rollout, AwsError> {
    let mut polls = crate::clock::Backoff::new(
        timing.first_poll,
        timing.max_poll,
        timing.timeout,
        timing.progress_every,
    );
    loop {
        let state = ecs.service_state(cluster, service).await?;
        match verdict(&state) {
            Verdict::Stable => return Ok(Rollout::Stable),
            Verdict::Failed(why) => return Ok(Rollout::Failed(why)),
            Verdict::InProgress(now) => {
                if polls.timed_out() {
                    return Ok(Rollout::TimedOut { last: now });
                }
                if polls.report_due() {
                    progress(format!("still {doing}: {now}"));
                }
            }
        }
        polls.wait().await;
    }
}

impl Follow {
    /// The timing of `[ecs]`: first poll, doubling to 30 s, up to `rollout_timeout`.
    pub fn of(settings: &crate::config::EcsSettings) -> Follow {
        Follow {
            first_poll: settings.poll_interval.as_duration(),
            max_poll: Duration::from_secs(30),
            timeout: settings.rollout_timeout.as_duration(),
            progress_every: Duration::from_secs(30),
        }
    }
}

/// Runs an approved rollback: re-check, UpdateService, follow.
pub async fn execute(run: &Run<'_>, approved: RollbackPlan) {
    let app = run.app;
    run.thread(&format!(
        "Approved. Re-reading `{}` before changing anything…",
        approved.service
    ))
    .await;
    let client = (app.settings.service(&approved.service))
        .map_or_else(|| app.aws.ecs.clone(), |s| app.ecs_for(s));
    let ecs = &client;
    let fresh = recheck(ecs, &approved, &app.settings).await;
    let drifted = |now: &RollbackPlan| {
        let why = drift(&approved, now);
        format!("{why}. Ask again if the rollback is still needed.")
    };
    if !run.recheck_with(fresh, drifted).await {
        return;
    }

    let target = approved.target.pinned();
    let resource = format!("{}/{}", approved.cluster, approved.ecs_service);
    let answer = ecs
        .roll_to(&approved.cluster, &approved.ecs_service, &target)
        .await;
    let sent = Sent {
        operation: "UpdateService",
        resource: resource.clone(),
        detail: json!({"task_definition": target}),
    };
    let check =
        format!("which task definition `{resource}` runs now (ECS console, or DescribeServices)");
    let Some(request_id) = run.sent(answer, sent, &check).await else {
        return;
    };
    run.thread(&format!(
        "UpdateService sent: `{resource}` → `{target}` (AWS request id `{request_id}`). Following the deployment…"
    ))
    .await;

    let ecs_settings = &app.settings.ecs;
    let service = (approved.cluster.as_str(), approved.ecs_service.as_str());
    let doing = format!("deploying `{target}`");
    let outcome = follow_in_thread(run, ecs, service, |state| judge(state, &target), &doing).await;
    let followed = outcome.map(|rollout| match rollout {
        Rollout::Stable => Settled::Reached(format!("`{}` is stable on `{target}`", approved.service)),
        Rollout::Failed(why) => Settled::Missed(format!("the deployment of `{target}` failed: {why}")),
        Rollout::TimedOut { last } => Settled::Missed(format!(
            "`{target}` was not stable after {} ({last}); check the service in the ECS console",
            ecs_settings.rollout_timeout
        )),
    });
    run.finish_followed(followed, |e| {
        format!("UpdateService was sent, but following the deployment failed: {e}")
    })
    .await;
}

// This action's entry in the registry: its `parse` and `execute`, the IAM actions it needs,
// and how it plans.
super::changes_aws! {
    iam: [
        "ecs:DescribeServices", "ecs:DescribeTaskDefinition", "ecs:ListTaskDefinitions",
        "ecs:UpdateService"
    ],
    plan(app, args, _asker) {
        let plan = plan(&app.ecs_for(&args.service), &args).await?;
        let summary = describe(&plan);
        (plan, summary)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::ecs::Deployment;

    fn deployment(td: &str, running: i32, desired: i32, rollout: Option<&str>) -> Deployment {
        Deployment {
            status: "PRIMARY".into(),
            task_definition: td.into(),
            desired,
            running,
            rollout_state: rollout.map(str::to_string),
            rollout_reason: None,
        }
    }

    #[test]
    fn the_previous_active_revision_is_the_highest_below_the_current_one() {
        assert_eq!(previous_revision(&[1, 3, 4, 7], 7), Some(4));
        assert_eq!(previous_revision(&[7], 7), None);
        assert_eq!(previous_revision(&[2, 9], 5), Some(2));
    }

    #[test]
    fn a_rollout_is_stable_only_when_the_old_deployment_has_drained() {
        let draining = ServiceState {
            task_definition: "web:4".into(),
            desired: 2,
            running: 3,
            deployments: vec![
                deployment("web:4", 2, 2, Some("IN_PROGRESS")),
                deployment("web:5", 1, 0, None),
            ],
        };
        assert!(matches!(judge(&draining, "web:4"), Verdict::InProgress(_)));
        let done = ServiceState {
            task_definition: "web:4".into(),
            desired: 2,
            running: 2,
            deployments: vec![deployment("web:4", 2, 2, Some("COMPLETED"))],
        };
        assert_eq!(judge(&done, "web:4"), Verdict::Stable);
    }

    #[test]
    fn a_circuit_breaker_rollback_is_a_failure() {
        let rolled_back = ServiceState {
            task_definition: "web:5".into(),
            desired: 2,
            running: 2,
            deployments: vec![deployment("web:5", 2, 2, Some("COMPLETED"))],
        };
        assert!(matches!(judge(&rolled_back, "web:4"), Verdict::Failed(_)));
        let failed = ServiceState {
            task_definition: "web:4".into(),
            desired: 2,
            running: 0,
            deployments: vec![deployment("web:4", 0, 2, Some("FAILED"))],
        };
        assert!(matches!(judge(&failed, "web:4"), Verdict::Failed(_)));
    }
}
