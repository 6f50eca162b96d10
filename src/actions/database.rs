//! What the database actions share: RDS identifier rules, default names, the plan's RPO,
//! and following a snapshot or a new instance until it is available.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aws::rds::RdsRecovery;
use crate::aws::AwsError;
use crate::clock::Backoff;
use crate::config::{RdsDatabase, Settings};
use crate::gate::execute::{Run, Settled};
use crate::gate::PlanFailure;
use crate::router::{Invalid, ParsedCommand};

/// The plan's database RPO (dr-plan.md: "Database: 1 hour (point-in-time recovery)").
pub const DATABASE_RPO: Duration = Duration::from_secs(3600);

/// RDS's rules for a DB instance identifier: 1–63 letters, digits or hyphens, starting
/// with a letter, no two hyphens in a row, not ending with a hyphen.
pub fn check_identifier(id: &str) -> Result<(), Invalid> {
    let bad =
        |why: &str| Err(format!("`{id}` is not a valid RDS instance identifier: {why}").into());
    if id.is_empty() || id.len() > 63 {
        return bad("it must be 1 to 63 characters");
    }
    if !id.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return bad("it must start with a letter");
    }
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return bad("only letters, digits and hyphens are allowed");
    }
    if id.contains("--") {
        return bad("it cannot contain two hyphens in a row");
    }
    if id.ends_with('-') {
        return bad("it cannot end with a hyphen");
    }
    Ok(())
}

/// The configured database named by the `<database>` argument.
pub fn parse_database(cmd: &ParsedCommand, settings: &Settings) -> Result<RdsDatabase, Invalid> {
    let name = cmd.arg_word("database").ok_or("missing <database>")?;
    settings
        .database(name)
        .cloned()
        .ok_or_else(|| Invalid(format!("unknown database `{name}`")))
}

/// `--as <new-instance>`: a valid identifier that is not the original instance.
pub fn parse_new_instance(
    cmd: &ParsedCommand,
    db: &RdsDatabase,
) -> Result<Option<String>, Invalid> {
    let new_instance = cmd.flag_word("as").map(str::to_string);
    if let Some(id) = &new_instance {
        check_identifier(id)?;
        if id == &db.instance {
            return Err(format!(
                "`--as {id}` is the original instance; a restore always creates a NEW instance"
            )
            .into());
        }
        if !crate::iam::restore_name_allowed(&db.instance, id) {
            return Err(format!(
                "`--as {id}`: a restored instance is named `{0}-…` or `drbot-…` (drbot's IAM policy allows exactly those names); e.g. `--as {0}-recovered`",
                db.instance
            )
            .into());
        }
    }
    Ok(new_instance)
}

/// The instance a restore creates: `--as`'s (`chosen`) or [`default_restore_name`]'s,
/// valid and not taken yet.
pub async fn new_instance_name(
    rds: &impl RdsRecovery,
    chosen: Option<&str>,
    instance: &str,
    now: DateTime<Utc>,
) -> Result<String, PlanFailure> {
    let name = chosen.map_or_else(|| default_restore_name(instance, now), str::to_string);
    check_identifier(&name)?;
    if rds.instance(&name).await?.is_some() {
        return Err(PlanFailure::Invalid(format!(
            "an instance named `{name}` already exists; choose another with `--as`"
        )));
    }
    Ok(name)
}

/// `<instance>-restored-<yyyymmddhhmm>`, shortened to fit 63 characters.
pub fn default_restore_name(instance: &str, now: DateTime<Utc>) -> String {
    let suffix = format!("-restored-{}", now.format("%Y%m%d%H%M"));
    let keep = 63 - suffix.len();
    let base: String = instance.chars().take(keep).collect();
    format!("{}{suffix}", base.trim_end_matches('-'))
}

/// `drbot-<instance>-<UTC yyyymmddhhmmss>`.
pub fn snapshot_name(instance: &str, now: DateTime<Utc>) -> String {
    format!("drbot-{instance}-{}", now.format("%Y%m%d%H%M%S"))
}

/// How following something on RDS ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Waited {
    Available,
    Failed(String),
    TimedOut(String),
}

/// Something new on RDS that drbot follows until it is available.
#[derive(Debug, Clone, Copy)]
pub enum Watched<'a> {
    Instance(&'a str),
    Snapshot(&'a str),
}

impl Watched<'_> {
    async fn status(&self, rds: &impl RdsRecovery) -> Result<Option<String>, AwsError> {
        Ok(match self {
            Watched::Instance(id) => rds.instance(id).await?.map(|i| i.status),
            Watched::Snapshot(id) => rds.snapshot(id).await?.map(|s| s.status),
        })
    }

    /// A status from which it will not become available.
    fn failed(&self, status: &str) -> bool {
        match self {
            Watched::Instance(_) => matches!(
                status,
                "failed"
                    | "incompatible-restore"
                    | "incompatible-parameters"
                    | "incompatible-network"
                    | "storage-full"
                    | "deleting"
            ),
            Watched::Snapshot(_) => matches!(status, "failed" | "error" | "deleted"),
        }
    }
}

impl std::fmt::Display for Watched<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Watched::Instance(id) => write!(f, "instance `{id}`"),
            Watched::Snapshot(id) => write!(f, "snapshot `{id}`"),
        }
    }
}

/// What to check in AWS when the outcome of creating instance `id` is unknown.
pub fn instance_check(id: &str) -> String {
    format!("whether instance `{id}` exists (RDS console, or DescribeDBInstances)")
}

/// Follows `watched` until it is available (or failed, or `[rds] wait_timeout` passed),
/// posting how it stands in the request's thread once a minute.
pub async fn follow(
    run: &Run<'_>,
    rds: &impl RdsRecovery,
    watched: Watched<'_>,
) -> Result<Waited, AwsError> {
    let settings = &run.app.settings.rds;
    let (first_poll, timeout) = (
        settings.poll_interval.as_duration(),
        settings.wait_timeout.as_duration(),
    );
    run.following(|progress| {
        wait_for(rds, watched, first_poll, timeout, move |line| {
            let _ = progress.send(line);
        })
    })
    .await
}

/// Polls until `watched` is `available` (or failed, or out of time), first after
/// `first_poll`, then twice as long each time (at most a minute).
pub async fn wait_for(
    rds: &impl RdsRecovery,
    watched: Watched<'_>,
    first_poll: Duration,
    timeout: Duration,
    mut progress: impl FnMut(String),
) -> Result<Waited, AwsError> {
    let minute = Duration::from_secs(60);
    let mut polls = Backoff::new(first_poll, minute, timeout, minute);
    loop {
        let status = (watched.status(rds).await?).unwrap_or_else(|| "not visible yet".to_string());
        if status == "available" {
            return Ok(Waited::Available);
        }
        if watched.failed(&status) {
            return Ok(Waited::Failed(format!("{watched} is `{status}`")));
        }
        if polls.timed_out() {
            return Ok(Waited::TimedOut(format!("{watched} is still `{status}`")));
        }
        if polls.report_due() {
            let so_far = chrono::Duration::from_std(polls.so_far()).unwrap_or_default();
            let so_far = crate::duration::human(so_far);
            progress(format!("{watched} is `{status}` ({so_far} so far)"));
        }
        polls.wait().await;
    }
}

/// Ends a run that followed something on RDS: executed with `available` when it became
/// available, failed otherwise (`started` names what was already sent to AWS).
pub async fn finish_waited(
    run: &Run<'_>,
    waited: Result<Waited, AwsError>,
    available: String,
    started: &str,
) {
    let timeout = run.app.settings.rds.wait_timeout;
    let followed = waited.map(|waited| match waited {
        Waited::Available => Settled::Reached(available),
        Waited::Failed(why) => Settled::Missed(why),
        Waited::TimedOut(why) => Settled::Missed(format!("{why} after {timeout}")),
    });
    run.finish_followed(followed, |e| {
        format!("{started}, but following it failed: {e}")
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_rds_rules() {
        assert!(check_identifier("aifai-db-restored-202611270600").is_ok());
        for bad in ["", "1db", "db--x", "db-", "db_x", &"a".repeat(64)] {
            assert!(check_identifier(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn default_names_fit_and_are_valid() {
        let now = DateTime::parse_from_rfc3339("2026-11-27T06:05:09Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            default_restore_name("aifai-db", now),
            "aifai-db-restored-202611270605"
        );
        let long = default_restore_name(&"x".repeat(63), now);
        assert!(
            long.len() <= 63 && check_identifier(&long).is_ok(),
            "{long}"
        );
        assert_eq!(
            snapshot_name("aifai-db", now),
            "drbot-aifai-db-20261127060509"
        );
    }
}

/// `--region`: a region other than the database's own (`backup` or a region name), or
/// `None` when the flag is absent or names the database's own region.
pub fn other_region(
    cmd: &ParsedCommand,
    settings: &Settings,
    db: &RdsDatabase,
) -> Result<Option<String>, Invalid> {
    let Some(name) = cmd.flag_word("region") else {
        return Ok(None);
    };
    let region = settings
        .region_named(name)
        .map_err(|why| format!("`--region {name}`: {why}"))?;
    Ok((region != settings.region_of(db.region.as_deref()))
        .then_some(region)
        .flatten())
}
