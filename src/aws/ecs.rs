//! ECS behind a small port named for what a rollback, a scale and a cutover need. IAM:
//! `ecs:DescribeServices`, `ecs:DescribeTaskDefinition`, `ecs:ListTaskDefinitions`,
//! `ecs:UpdateService`.

use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionError;
use aws_sdk_ecs::operation::update_service::builders::UpdateServiceFluentBuilder;
use aws_sdk_ecs::operation::RequestId;
use aws_sdk_ecs::types::{SortOrder, TaskDefinitionStatus};
use serde::{Deserialize, Serialize};

use super::AwsError;

/// A container of a task definition and its image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerImage {
    pub name: String,
    pub image: String,
}

/// One revision of a task-definition family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskDefinition {
    pub arn: String,
    pub family: String,
    pub revision: i32,
    pub active: bool,
    pub containers: Vec<ContainerImage>,
}

impl TaskDefinition {
    /// `family:revision`, the form drbot pins a service to.
    pub fn pinned(&self) -> String {
        format!("{}:{}", self.family, self.revision)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub status: String,
    /// `family:revision`.
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
}

/// What DescribeServices says about one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceState {
    /// `family:revision` of the service's task definition.
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub deployments: Vec<Deployment>,
}

/// `family:revision` from an ARN (`…:task-definition/fam:3`) or from `fam:3` as given.
pub fn pinned_form(task_definition: &str) -> String {
    task_definition
        .rsplit_once(":task-definition/")
        .map(|(_, tail)| tail.to_string())
        .unwrap_or_else(|| task_definition.to_string())
}

/// The ECS calls a rollback makes.
#[allow(async_fn_in_trait)]
pub trait EcsRollback {
    async fn service_state(&self, cluster: &str, service: &str) -> Result<ServiceState, AwsError>;
    /// `None` when the revision does not exist.
    async fn task_definition(
        &self,
        family_revision: &str,
    ) -> Result<Option<TaskDefinition>, AwsError>;
    /// ACTIVE revisions of exactly this family, ascending.
    async fn active_revisions(&self, family: &str) -> Result<Vec<i32>, AwsError>;
    /// Pins the service to `family_revision`; returns the AWS request id.
    async fn roll_to(
        &self,
        cluster: &str,
        service: &str,
        family_revision: &str,
    ) -> Result<String, AwsError>;
}

/// The ECS calls a scale or a cutover makes.
#[allow(async_fn_in_trait)]
pub trait EcsCapacity {
    /// Sets the desired count; returns the AWS request id.
    async fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> Result<String, AwsError>;
    /// Forces a new deployment of the same task definition (new tasks read new settings).
    async fn redeploy(&self, cluster: &str, service: &str) -> Result<String, AwsError>;
}

impl EcsCapacity for aws_sdk_ecs::Client {
    async fn set_desired(
        &self,
        cluster: &str,
        service: &str,
        desired: i32,
    ) -> Result<String, AwsError> {
        update_service(self, cluster, service, |call| call.desired_count(desired)).await
    }

    async fn redeploy(&self, cluster: &str, service: &str) -> Result<String, AwsError> {
        update_service(self, cluster, service, |call| {
            call.force_new_deployment(true)
        })
        .await
    }
}

impl EcsRollback for aws_sdk_ecs::Client {
    async fn service_state(&self, cluster: &str, service: &str) -> Result<ServiceState, AwsError> {
        let resource = format!("{cluster}/{service}");
        let out = self
            .describe_services()
            .cluster(cluster)
            .services(service)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("DescribeServices", &resource, &e))?;
        let svc = out
            .services()
            .iter()
            .find(|s| s.status() == Some("ACTIVE"))
            .ok_or_else(|| {
                AwsError::not_found(
                    "DescribeServices",
                    &resource,
                    "the service does not exist or is not ACTIVE",
                )
            })?;
        Ok(ServiceState {
            task_definition: pinned_form(svc.task_definition().unwrap_or_default()),
            desired: svc.desired_count(),
            running: svc.running_count(),
            deployments: svc
                .deployments()
                .iter()
                .map(|d| Deployment {
                    status: d.status().unwrap_or_default().to_string(),
                    task_definition: pinned_form(d.task_definition().unwrap_or_default()),
                    desired: d.desired_count(),
                    running: d.running_count(),
                    rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
                    rollout_reason: d.rollout_state_reason().map(str::to_string),
                })
                .collect(),
        })
    }

    async fn task_definition(
        &self,
        family_revision: &str,
    ) -> Result<Option<TaskDefinition>, AwsError> {
        let answer = self
            .describe_task_definition()
            .task_definition(family_revision)
            .send()
            .await;
        let missing = |e: &DescribeTaskDefinitionError| e.is_client_exception();
        let operation = "DescribeTaskDefinition";
        let Some(out) = super::unless_missing(operation, family_revision, answer, missing)? else {
            return Ok(None);
        };
        let Some(td) = out.task_definition() else {
            return Ok(None);
        };
        Ok(Some(TaskDefinition {
            arn: td.task_definition_arn().unwrap_or_default().to_string(),
            family: td.family().unwrap_or_default().to_string(),
            revision: td.revision(),
            active: td.status() == Some(&TaskDefinitionStatus::Active),
            containers: td
                .container_definitions()
                .iter()
                .map(|c| ContainerImage {
                    name: c.name().unwrap_or_default().to_string(),
                    image: c.image().unwrap_or_default().to_string(),
                })
                .collect(),
        }))
    }

    async fn active_revisions(&self, family: &str) -> Result<Vec<i32>, AwsError> {
        let mut pages = self
            .list_task_definitions()
            .family_prefix(family)
            .status(TaskDefinitionStatus::Active)
            .sort(SortOrder::Desc)
            .into_paginator()
            .send();
        let mut revisions = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListTaskDefinitions", family, &e))?;
            for arn in page.task_definition_arns() {
                // familyPrefix also matches longer families (`web` → `web-worker`).
                if let Some((fam, rev)) = pinned_form(arn).rsplit_once(':') {
                    if fam == family {
                        if let Ok(rev) = rev.parse() {
                            revisions.push(rev);
                        }
                    }
                }
            }
        }
        // The emulator ignores `sort`; never rely on the order AWS returns.
        revisions.sort_unstable();
        revisions.dedup();
        Ok(revisions)
    }

    async fn roll_to(
        &self,
        cluster: &str,
        service: &str,
        family_revision: &str,
    ) -> Result<String, AwsError> {
        update_service(self, cluster, service, |call| {
            call.task_definition(family_revision)
        })
        .await
    }
}

/// `UpdateService` of `cluster/service`, with what `set` changes.
async fn update_service(
    ecs: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
    set: impl FnOnce(UpdateServiceFluentBuilder) -> UpdateServiceFluentBuilder,
) -> Result<String, AwsError> {
    let resource = format!("{cluster}/{service}");
    let call = set(ecs.update_service().cluster(cluster).service(service));
    super::change!(aws_sdk_ecs, "UpdateService", resource, call)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_form_reads_arns_and_short_forms() {
        assert_eq!(
            pinned_form("arn:aws:ecs:us-east-1:123456789012:task-definition/web:7"),
            "web:7"
        );
        assert_eq!(pinned_form("web:7"), "web:7");
    }
}
