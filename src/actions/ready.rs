//! `/dr ready [scenario]` (SPEC §15): each scenario's readiness now — its plan dry-run and
//! what it relies on checked (see `crate::actions::readiness`) — recorded as the schedule records
//! it, so a change of state is posted once whoever noticed it first.
//!
//! AWS calls: the reads of the plan's steps, DescribeDBSnapshots and DescribeDBSubnetGroups
//! (backup region), DescribeServices, DescribeTaskDefinition, ListResourceRecordSets,
//! GetParameter. Approval: none. Read-only.

use std::sync::Arc;

use crate::app::App;
use crate::actions::readiness;
use crate::router::ParsedCommand;
use crate::slack::text::escape;

async fn reply(app: &Arc<App>, cmd: &ParsedCommand) -> String {
    let all = match cmd.arg_word("scenario") {
        Some(id) => match app.scenarios.get(&id.to_lowercase()) {
            Some(scenario) => vec![readiness::evaluate(app, scenario).await],
            None => {
                return format!(
                    ":no_entry: There is no scenario `{}`; the scenarios are: {}.",
                    escape(id),
                    app.scenarios.ids().join(", ")
                )
            }
        },
        None => readiness::evaluate_all(app).await,
    };
    for r in &all {
        if let Err(e) = readiness::record(app, r).await {
            tracing::error!(error = %e, "could not record readiness");
        }
    }
    readiness::describe(&all, &app.scenarios)
}

// This action's entry in the registry.
super::reads_aws! {
    iam: [
        "rds:DescribeDBSnapshots", "rds:DescribeDBSubnetGroups", "ec2:DescribeSecurityGroups",
        "ecs:DescribeServices",
        "ecs:DescribeTaskDefinition", "route53:ListResourceRecordSets", "ssm:GetParameter"
    ],
    read(app, cmd, _asker) {
        reply(app, cmd).await
    }
}
