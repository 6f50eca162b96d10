//! `/dr status`: each service's task definition and running/desired count, each database's
//! state, latest restorable time and newest snapshot age (RPO exposure), blocked address
//! counts, and pending approvals — one AWS call per resource, all at once. Each region gets
//! at most its call timeout (and never more than [`STATUS_WAIT`]): a region that does not
//! answer is named as such, and the rest of the answer (the backup region's services and
//! databases, the store's incidents and approvals) comes without it.
//!
//! AWS calls: DescribeServices, DescribeDBInstances, DescribeDBSnapshots, GetIPSet.
//! IAM: the read actions of the other action files. Approval: none. Read-only.

use futures_util::future::join_all;

use crate::app::App;
use crate::aws::ecs::EcsRollback;
use crate::aws::rds::RdsRecovery;
use crate::aws::waf::WafBlocklist;
use crate::actions::database::DATABASE_RPO;
use crate::store::RequestState;

/// A part of the answer the store could not give: said so, never shown as "none".
fn unreadable(e: &crate::store::StoreError) -> String {
    tracing::error!(error = %e, "could not read the store for /dr status");
    ":warning: drbot could not read its store; try again in a moment".to_string()
}

/// `*title*: ` and the items, `none`, or that the store could not be read; one line.
fn listed<T>(
    title: &str,
    items: &Result<Vec<T>, crate::store::StoreError>,
    each: impl Fn(&T) -> String,
) -> String {
    let body = match items {
        Err(e) => unreadable(e),
        Ok(items) if items.is_empty() => "none".to_string(),
        Ok(items) => items.iter().map(each).collect::<Vec<_>>().join(", "),
    };
    format!("*{title}*: {body}\n")
}

/// The longest `/dr status` waits for any region (Slack's `response_url` answer follows).
pub const STATUS_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The regions that did not answer in time, for the answer's head.
#[derive(Default)]
struct Dark(std::sync::Mutex<std::collections::BTreeMap<String, std::time::Duration>>);

impl Dark {
    /// `read` in `region`, or — when the region has not answered within its call timeout
    /// (at most [`STATUS_WAIT`]) — a line saying so, and the region is noted as dark.
    async fn within<T>(
        &self,
        app: &App,
        region: Option<String>,
        read: impl std::future::Future<Output = T>,
    ) -> Result<T, String> {
        let wait = app.aws.timeout_in(region.as_deref()).call.min(STATUS_WAIT);
        crate::clock::timeout(wait, read).await.map_err(|_| {
            let name = region
                .or(app.aws.default_region())
                .unwrap_or_else(|| "the default region".to_string());
            let line = format!(
                ":warning: {name} did not answer within {}s (region down or unreachable?)",
                wait.as_secs()
            );
            self.0.lock().unwrap().insert(name, wait);
            line
        })
    }

    fn note(&self, region: &str) -> &'static str {
        if self.0.lock().unwrap().contains_key(region) {
            " (:warning: not answering)"
        } else {
            ""
        }
    }
}

pub async fn reply(app: &App) -> String {
    let settings = &app.settings;
    let dark = Dark::default();
    let dark = &dark;
    let region_label = |region: Option<&str>| {
        if settings.regions.backup.is_none() && region.is_none() {
            String::new()
        } else {
            format!(
                " [{}]",
                settings
                    .region_of(region)
                    .or(app.aws.default_region())
                    .unwrap_or_else(|| "default region".to_string())
            )
        }
    };
    let services = join_all(settings.ecs.services.iter().map(|svc| async move {
        let ecs = app.ecs_for(svc);
        let svc_label = format!("{}{}", svc.name, region_label(svc.region.as_deref()));
        let region = settings.region_of(svc.region.as_deref());
        let state = dark
            .within(app, region, ecs.service_state(&svc.cluster, &svc.service))
            .await;
        match state {
            Err(line) => format!("• `{svc_label}`: {line}"),
            Ok(Ok(state)) => {
                let rollout = state
                    .deployments
                    .iter()
                    .find(|d| d.status == "PRIMARY")
                    .and_then(|d| d.rollout_state.clone())
                    .unwrap_or_else(|| "unknown".to_string());
                let deploying = if state.deployments.len() > 1 {
                    format!(", {} deployments (rolling out)", state.deployments.len())
                } else {
                    String::new()
                };
                format!(
                    "• `{}`: `{}`, running {}/{}, rollout {}{deploying}",
                    svc_label, state.task_definition, state.running, state.desired, rollout
                )
            }
            Ok(Err(e)) => format!("• `{}`: :warning: {e}", svc_label),
        }
    }));
    let databases = join_all(settings.rds.databases.iter().map(|db| async move {
        let rds = app.rds_for(db);
        let region = settings.region_of(db.region.as_deref());
        let both = dark
            .within(
                app,
                region,
                futures_util::future::join(rds.instance(&db.instance), rds.snapshots_of(&db.instance)),
            )
            .await;
        let (instance, snapshots) = match both {
            Ok(both) => both,
            Err(line) => {
                return format!(
                    "• `{}`{} (`{}`): {line}",
                    db.name,
                    region_label(db.region.as_deref()),
                    db.instance
                )
            }
        };
        let now = crate::clock::now();
        let head = match instance {
            Ok(Some(i)) => format!(
                "• `{}`{} (`{}`): {}, latest restorable {}",
                db.name,
                region_label(db.region.as_deref()),
                db.instance,
                i.status,
                i.latest_restorable
                    .map(|t| format!("{} UTC", t.format("%H:%M:%S")))
                    .unwrap_or_else(|| "none (no automated backups)".to_string())
            ),
            Ok(None) => format!(
                "• `{}`: :warning: instance `{}` does not exist",
                db.name, db.instance
            ),
            Err(e) => format!("• `{}`: :warning: {e}", db.name),
        };
        let tail = match snapshots {
            Ok(list) => match list
                .iter()
                .filter_map(|s| s.created.map(|c| (c, s)))
                .max_by_key(|(c, _)| *c)
            {
                Some((created, snap)) => {
                    let age = now - created;
                    let flag = if age > chrono::Duration::from_std(DATABASE_RPO).unwrap_or_default()
                    {
                        " :warning: older than the 1h RPO"
                    } else {
                        ""
                    };
                    format!(
                        ", newest snapshot `{}` {} old{flag}",
                        snap.id,
                        crate::duration::human(age)
                    )
                }
                None => ", no snapshots :warning:".to_string(),
            },
            Err(e) => format!(", snapshots unknown ({e})"),
        };
        format!("{head}{tail}")
    }));
    let blocked = join_all(settings.waf.ip_sets.iter().flat_map(|set| {
        std::iter::once(&set.ipv4_set)
            .chain(set.ipv6_set.as_ref())
            .map(move |set_ref| async move {
                let region = match set.scope {
                    crate::config::WafScope::Cloudfront => {
                        Some(crate::aws::CLOUDFRONT_REGION.to_string())
                    }
                    crate::config::WafScope::Regional => None,
                };
                let read = app.aws.waf(set.scope).read_set(set_ref, set.scope);
                match dark.within(app, region, read).await.and_then(|r| r.map_err(|e| format!(":warning: {e}"))) {
                    Ok(c) => format!(
                        "• `{}`: {} blocked address(es)",
                        set_ref.name,
                        c.addresses.len()
                    ),
                    Err(line) => format!("• `{}`: {line}", set_ref.name),
                }
            })
    }));
    let (services, databases, blocked) = tokio::join!(services, databases, blocked);
    let incidents = app.store.open_incidents().await;
    let pending = app.store.requests_in_state(RequestState::Pending).await;

    let mut out = String::from("*drbot status*\n");
    if settings.regions.primary.is_some() || settings.regions.backup.is_some() {
        let primary = settings
            .regions
            .primary
            .clone()
            .or(app.aws.default_region())
            .unwrap_or_else(|| "the default".to_string());
        let backup = settings.regions.backup.as_deref();
        out.push_str(&format!(
            "*Regions*: primary {primary}{}, backup {}{}\n",
            dark.note(&primary),
            backup.unwrap_or("none configured"),
            backup.map(|b| dark.note(b)).unwrap_or("")
        ));
    }
    for (region, wait) in dark.0.lock().unwrap().iter() {
        out.push_str(&format!(
            ":warning: *{region} is not answering* (no reply within {}s): its resources are shown as unknown; commands that need it fail the same way until it answers; other regions work as usual.\n",
            wait.as_secs()
        ));
    }
    let mut section = |title: &str, lines: Vec<String>| {
        out.push_str(&format!("*{title}*\n"));
        if lines.is_empty() {
            out.push_str("• none configured\n");
        }
        for l in lines {
            out.push_str(&l);
            out.push('\n');
        }
    };
    section("Services", services);
    section("Databases", databases);
    section("Blocked addresses", blocked);
    out.push_str(&listed("Open incidents", &incidents, |i| {
        format!(
            "{} <#{}> ({}, {} so far)",
            i.id,
            i.channel_id,
            i.scenario,
            crate::duration::human(crate::clock::now() - i.started_at)
        )
    }));
    out.push_str(&listed("Pending approvals", &pending, |r| {
        format!(
            "{} `/dr {}`",
            r.label(),
            crate::slack::text::escape(&r.command)
        )
    }));
    out.push_str(&slack_delivery(app).await);
    out.trim_end().to_string()
}

/// The outbox: messages waiting to be sent, and the latest that could not be (SPEC §10).
async fn slack_delivery(app: &App) -> String {
    match app.store.outbox_status(5).await {
        Err(e) => format!("*Slack delivery*: :warning: unknown ({e})\n"),
        Ok((waiting, failed)) if failed.is_empty() => {
            format!("*Slack delivery*: {waiting} message(s) waiting, none failed\n")
        }
        Ok((waiting, failed)) => {
            let mut out = format!(
                "*Slack delivery*: {waiting} message(s) waiting; :warning: could not send:\n"
            );
            for f in failed {
                out.push_str(&format!(
                    "• #{} {} to `{}` at {}: {}\n",
                    f.id,
                    f.method,
                    crate::slack::text::escape(&f.lane),
                    f.at,
                    crate::slack::text::escape(&f.error)
                ));
            }
            out
        }
    }
}

// This action's entry in the registry.
super::reads_aws! {
    iam: [
        "ecs:DescribeServices", "rds:DescribeDBInstances", "rds:DescribeDBSnapshots",
        "wafv2:GetIPSet"
    ],
    read(app, _cmd, _asker) {
        reply(app).await
    }
}
