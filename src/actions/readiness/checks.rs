//! One check per thing a scenario relies on ([`Need`]): each reads AWS (or drbot's own
//! record) and answers a [`Check`] — passed, failed with what it means for the RTO/RPO and
//! how to fix it, or unknown when a region did not answer within its call timeout.

use std::sync::Arc;

use crate::app::App;
use crate::aws::dns::{same_name, DnsFailover};
use crate::aws::ecs::EcsRollback;
use crate::aws::params::ConnectionSettings;
use crate::aws::rds::RdsRecovery;
use crate::aws::AwsError;
use crate::scenarios::Scenario;

use super::needs::Need;
use super::Check;

/// What AWS's answer means for a check: its error as an unknown (no answer) or a failure.
fn aws_failure(name: &str, e: &AwsError, impact: &str) -> Check {
    if e.message == crate::aws::NO_ANSWER {
        return Check::unknown(name, format!("{} did not answer: {e}", e.operation));
    }
    if denied(e) {
        let fix = format!(
            "grant drbot `{}` (see `drbot iam-policy`)",
            iam_action(e.operation)
        );
        let mut check = Check::fail(name, e.to_string(), impact, &fix);
        check.denied = true;
        return check;
    }
    Check::fail(
        name,
        e.to_string(),
        impact,
        "check the AWS error above, then `/dr ready` again",
    )
}

/// Whether AWS refused the call for lack of permission.
fn denied(e: &AwsError) -> bool {
    let m = e.message.to_ascii_lowercase();
    m.contains("accessdenied")
        || m.contains("not authorized")
        || m.contains("unauthorizedoperation")
}

fn iam_action(operation: &str) -> String {
    crate::iam::OPERATIONS
        .iter()
        .find(|(_, _, iam)| iam.split(':').nth(1) == Some(operation))
        .map(|(_, _, iam)| iam.to_string())
        .unwrap_or_else(|| operation.to_string())
}

/// Runs `read` in `region` within the region's call timeout: a region that does not answer
/// makes the check unknown, never stalls the others.
async fn within<T>(
    app: &App,
    region: Option<&str>,
    name: &str,
    read: impl std::future::Future<Output = T>,
) -> Result<T, Check> {
    let wait = app.aws.timeout_in(region).call;
    crate::clock::timeout(wait, read).await.map_err(|_| {
        let region = region
            .map(str::to_string)
            .or(app.aws.default_region())
            .unwrap_or_else(|| "the default region".into());
        Check::unknown(
            name,
            format!("{region} did not answer within {}s", wait.as_secs()),
        )
    })
}

/// Checks one need of `scenario`.
pub async fn check(app: &Arc<App>, scenario: &Scenario, need: &Need) -> Check {
    match need {
        Need::BackupCopy { database, region } => copy_age(app, scenario, database, region).await,
        Need::Placement { database, region } => placement(app, database, region).await,
        Need::Service { name } => service(app, name).await,
        Need::Dns { record } => dns(app, record).await,
        Need::CutoverParameter { database, region } => {
            cutover_parameter(app, database, region.as_deref()).await
        }
        Need::RestoreTest { database } => restore_test(app, database).await,
        Need::Compliance { database } => compliance(app, database).await,
        Need::RestoreName { database, name } => restore_name(app, database, name),
    }
}

async fn copy_age(app: &Arc<App>, scenario: &Scenario, database: &str, region: &str) -> Check {
    let name = format!("backup copy of `{database}` in {region}");
    let Some(db) = app.settings.database(database) else {
        return Check::fail(&name, "not configured".into(), "", "");
    };
    let rpo = scenario
        .rpo
        .seconds()
        .map(|s| chrono::Duration::seconds(s as i64));
    let rds = app.aws.rds_in(Some(region));
    let read = rds.snapshots_of(&db.instance);
    let held = match within(app, Some(region), &name, read).await {
        Ok(Ok(held)) => held,
        Ok(Err(e)) => {
            return aws_failure(
                &name,
                &e,
                "the restore in the backup region cannot be planned",
            )
        }
        Err(unknown) => return unknown,
    };
    let fix = format!(
        "`/dr snapshot copy {database} --to-region backup` now, and `[rds.copies] databases = [\"{database}\"]` to keep one younger than the RPO"
    );
    let newest = held
        .iter()
        .filter(|s| s.status == "available")
        .filter_map(|s| s.created.map(|c| (c, s)))
        .max_by_key(|(c, _)| *c);
    let Some((taken, snapshot)) = newest else {
        return Check::fail(
            &name,
            format!("no available snapshot of `{}` in {region}", db.instance),
            &format!(
                "with the primary region gone nothing can be restored: neither the RTO ({}) nor the RPO ({}) can be met",
                scenario.rto_text(),
                scenario.rpo_text()
            ),
            &fix,
        );
    };
    let age = crate::clock::now() - taken;
    let detail = format!(
        "newest `{}` holds data from {} UTC ({} old)",
        snapshot.id,
        taken.format("%Y-%m-%d %H:%M"),
        crate::duration::human(age)
    );
    match rpo {
        Some(rpo) if age > rpo => Check::fail(
            &name,
            format!("{detail}, older than the RPO ({})", scenario.rpo_text()),
            &format!(
                "a restore there now would lose {} of data: the RPO ({}) is missed",
                crate::duration::human(age),
                scenario.rpo_text()
            ),
            &fix,
        ),
        _ => Check::pass(&name, detail),
    }
}

async fn placement(app: &Arc<App>, database: &str, region: &str) -> Check {
    let name = format!("backup placement of `{database}` in {region}");
    let impact = "the restore in the backup region fails at once: the RTO cannot be met";
    let placement = app
        .settings
        .database(database)
        .and_then(|d| d.backup_placement.clone());
    let Some(group) = placement.as_ref().and_then(|p| p.subnet_group.clone()) else {
        return Check::fail(
            &name,
            "no `backup_placement.subnet_group` is configured".into(),
            impact,
            &format!("set `backup_placement = {{ subnet_group = \"…\", security_groups = [\"sg-…\"] }}` for `{database}` in drbot.toml"),
        );
    };
    let security_groups = placement.map(|p| p.security_groups).unwrap_or_default();
    let rds = app.aws.rds_in(Some(region));
    let reads = async {
        let group = crate::aws::rds::subnet_group(&rds, &group).await;
        let missing = if security_groups.is_empty() {
            Ok(Vec::new())
        } else {
            crate::aws::ec2::missing_security_groups(&app.aws, region, &security_groups).await
        };
        (group, missing)
    };
    let (group_found, missing) = match within(app, Some(region), &name, reads).await {
        Err(unknown) => return unknown,
        Ok(found) => found,
    };
    let failure = |e: &AwsError| aws_failure(&name, e, impact);
    let g = match group_found {
        Err(e) => return failure(&e),
        Ok(None) => {
            return Check::fail(
                &name,
                format!("DB subnet group `{group}` does not exist in {region}"),
                impact,
                &format!("create DB subnet group `{group}` in {region}, or fix `backup_placement.subnet_group` of `{database}` in drbot.toml"),
            )
        }
        Ok(Some(g)) if g.subnets == 0 => {
            return Check::fail(
                &name,
                format!("DB subnet group `{group}` in {region} has no subnets"),
                impact,
                &format!("add the private subnets of {region} to `{group}`"),
            )
        }
        Ok(Some(g)) => g,
    };
    match missing {
        Err(e) => failure(&e),
        Ok(missing) if !missing.is_empty() => Check::fail(
            &name,
            format!(
                "security group(s) {} do not exist in {region}",
                missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
            ),
            impact,
            &format!("create them in {region}'s VPC, or fix `backup_placement.security_groups` of `{database}` in drbot.toml"),
        ),
        Ok(_) => Check::pass(
            &name,
            format!(
                "DB subnet group `{group}` ({} subnets{}){}",
                g.subnets,
                g.vpc.map(|v| format!(", {v}")).unwrap_or_default(),
                if security_groups.is_empty() {
                    String::new()
                } else {
                    format!(", security groups {}", security_groups.join(", "))
                }
            ),
        ),
    }
}

async fn service(app: &Arc<App>, service: &str) -> Check {
    let name = format!("service `{service}`");
    let Some(svc) = app.settings.service(service) else {
        return Check::fail(&name, "not configured".into(), "", "");
    };
    let region = app.settings.region_of(svc.region.as_deref());
    let impact =
        "the application cannot be brought up where the plan needs it: the RTO cannot be met";
    let ecs = app.ecs_for(svc);
    let read = async {
        let state = ecs.service_state(&svc.cluster, &svc.service).await?;
        let def = ecs.task_definition(&state.task_definition).await?;
        Ok::<_, AwsError>((state, def))
    };
    let fix = format!(
        "create ECS service `{}` in cluster `{}`{} with a task definition, or fix `[[ecs.services]] {service}` in drbot.toml",
        svc.service,
        svc.cluster,
        region.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    );
    match within(app, region.as_deref(), &name, read).await {
        Err(unknown) => unknown,
        Ok(Err(e)) if e.message.contains("does not exist") => {
            Check::fail(&name, e.to_string(), impact, &fix)
        }
        Ok(Err(e)) => aws_failure(&name, &e, impact),
        Ok(Ok((state, None))) => Check::fail(
            &name,
            format!(
                "its task definition `{}` does not exist",
                state.task_definition
            ),
            impact,
            &fix,
        ),
        Ok(Ok((state, Some(_)))) => Check::pass(
            &name,
            format!(
                "`{}`, {} of {} tasks running",
                state.task_definition, state.running, state.desired
            ),
        ),
    }
}

async fn dns(app: &Arc<App>, record: &str) -> Check {
    let name = format!("DNS record `{record}`");
    let Some(r) = app.settings.dns_record(record) else {
        return Check::fail(&name, "not configured".into(), "", "");
    };
    let impact = "users cannot be switched to the backup region: the RTO cannot be met";
    let read = app.aws.route53.record(&r.zone_id, &r.record, r.kind);
    match within(app, Some(crate::aws::CLOUDFRONT_REGION), &name, read).await {
        Err(unknown) => unknown,
        Ok(Err(e)) => aws_failure(&name, &e, impact),
        Ok(Ok(None)) => Check::fail(
            &name,
            format!("`{}` does not exist in zone `{}`", r.record, r.zone_id),
            impact,
            &format!(
                "create `{}` in zone `{}` pointing at `{}`, or fix `[[dns.records]] {record}` in drbot.toml",
                r.record, r.zone_id, r.primary
            ),
        ),
        Ok(Ok(Some(now))) => {
            let side = if same_name(&now.target, &r.primary) {
                Some("primary")
            } else if same_name(&now.target, &r.backup) {
                Some("backup")
            } else {
                None
            };
            match side {
                Some(side) => Check::pass(
                    &name,
                    format!("`{}` points at the {side} target `{}`", r.record, now.target),
                ),
                None => Check::fail(
                    &name,
                    format!(
                        "`{}` points at `{}`, neither the primary `{}` nor the backup `{}` target",
                        r.record, now.target, r.primary, r.backup
                    ),
                    "a failover would replace a target drbot does not know: the plan refuses it",
                    &format!("point `{}` at `{}`, or fix `[[dns.records]] {record}`", r.record, r.primary),
                ),
            }
        }
    }
}

async fn cutover_parameter(app: &Arc<App>, database: &str, region: Option<&str>) -> Check {
    let name = format!("cutover parameter of `{database}`");
    let Some(parameter) = app
        .settings
        .database(database)
        .and_then(|d| d.cutover_parameter.clone())
    else {
        return Check::fail(
            &name,
            "no `cutover_parameter` is configured".into(),
            "the application cannot be pointed at the restored database",
            &format!("set `cutover_parameter` of `{database}` in drbot.toml"),
        );
    };
    let region = region.map(str::to_string).or_else(|| {
        app.settings.region_of(
            app.settings
                .database(database)
                .and_then(|d| d.region.as_deref()),
        )
    });
    let shown = region
        .clone()
        .unwrap_or_else(|| "the default region".into());
    let ssm = app.aws.ssm_in(region.as_deref());
    let read = ssm.parameter(&parameter);
    let impact =
        "the application cannot be pointed at the restored database: the RTO cannot be met";
    match within(app, region.as_deref(), &name, read).await {
        Err(unknown) => unknown,
        Ok(Err(e)) => aws_failure(&name, &e, impact),
        Ok(Ok(None)) => Check::fail(
            &name,
            format!("SSM parameter `{parameter}` does not exist in {shown}"),
            impact,
            &format!("create SSM parameter `{parameter}` in {shown} (the application reads its database host there)"),
        ),
        Ok(Ok(Some(_))) => Check::pass(&name, format!("`{parameter}` exists in {shown}")),
    }
}

async fn restore_test(app: &Arc<App>, database: &str) -> Check {
    let name = format!("restore test of `{database}`");
    let every = app
        .settings
        .drills
        .restore_test
        .as_ref()
        .map(|t| chrono::Duration::seconds(t.every.as_secs() as i64));
    let fix = format!("`/dr drill restore-test {database}`");
    let last = match app
        .store
        .latest_events(
            crate::store::EventKind::DrillRestoreTest.as_str().as_ref(),
            200,
        )
        .await
    {
        Ok(events) => events.into_iter().find(|e| {
            serde_json::from_str::<serde_json::Value>(&e.detail)
                .is_ok_and(|d| d["database"] == database)
        }),
        Err(e) => return Check::unknown(&name, format!("drbot could not read its store: {e}")),
    };
    let Some(last) = last else {
        return Check::fail(
            &name,
            "no restore test has run".into(),
            "nobody has proven the backups restore: the RPO is unproven",
            &fix,
        );
    };
    let detail: serde_json::Value = serde_json::from_str(&last.detail).unwrap_or_default();
    let at = chrono::DateTime::parse_from_rfc3339(&last.at)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_else(|_| crate::clock::now());
    let age = crate::clock::now() - at;
    let when = format!("{} ago", crate::duration::human(age));
    if detail["passed"] != true {
        return Check::fail(
            &name,
            format!("the last restore test ({when}) failed"),
            "the backups did not restore: the RPO is at risk",
            &format!("read the last test's thread, fix it, then {fix}"),
        );
    }
    match every {
        Some(every) if age > every => Check::fail(
            &name,
            format!("the last one passed {when}, longer ago than its schedule"),
            "the backups are not proven restorable within the plan's schedule",
            &fix,
        ),
        _ => Check::pass(&name, format!("passed {when}")),
    }
}

async fn compliance(app: &Arc<App>, database: &str) -> Check {
    let name = format!("backups of `{database}`");
    let fix = format!("`/dr backups {database} --enforce`");
    let last = match app
        .store
        .latest_events(
            crate::store::EventKind::BackupsChecked.as_str().as_ref(),
            200,
        )
        .await
    {
        Ok(events) => events.into_iter().find_map(|e| {
            let d: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
            (d["database"] == database).then_some((e.at, d))
        }),
        Err(e) => return Check::unknown(&name, format!("drbot could not read its store: {e}")),
    };
    match last {
        None => Check::unknown(&name, "no backup check has run yet (daily)".into()),
        Some((_, d)) if d["compliant"] == true => Check::pass(
            &name,
            "the last backup check found the retention policy held".into(),
        ),
        Some((at, _)) => Check::fail(
            &name,
            format!("the backup check of {at} found slots of the retention policy missing"),
            "older restore points than the plan promises are missing",
            &fix,
        ),
    }
}

/// `new` is the plan's name with [`CHECK_STAMP`](crate::scenarios::plan::CHECK_STAMP)
/// for `{run}`; it is shown as the plan writes it.
fn restore_name(app: &Arc<App>, database: &str, new: &str) -> Check {
    let shown = new.replace(crate::scenarios::plan::CHECK_STAMP, "{run}");
    let name = format!("permission to restore `{database}` as `{shown}`");
    let Some(db) = app.settings.database(database) else {
        return Check::fail(&name, "not configured".into(), "", "");
    };
    if crate::iam::restore_name_allowed(&db.instance, new) {
        Check::pass(
            &name,
            format!("`drbot iam-policy` allows RestoreDBInstance* as `{shown}`"),
        )
    } else {
        Check::fail(
            &name,
            format!("`drbot iam-policy` allows no restore named `{shown}`"),
            "AWS would refuse the restore (AccessDenied): the RTO cannot be met",
            &format!("name the plan's restore `drbot-…` or `{}-…`", db.instance),
        )
    }
}
