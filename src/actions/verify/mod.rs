//! Verified restores (SPEC §18): after a restore test's instance is available (and after
//! `/dr restore` / `/dr pitr … --verify`), drbot connects to the RESTORED instance — never
//! the source: it is read again right before connecting and must be the new instance by
//! name, ARN and drbot's tag — signs in with an IAM token or a Secrets Manager secret over
//! verified TLS, runs the database's `[[rds.databases.checks]]` in read-only transactions
//! under a statement timeout, and measures the real RPO: the restore point minus the newest
//! write the restored data holds (`newest_write_sql`), against the tightest RPO of the
//! scenarios that restore the database.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::app::App;
use crate::aws::rds::RdsRecovery;
use crate::config::data_checks::{Credentials, Expect};
use crate::config::{RdsDatabase, VerifyTls};
use crate::slack::text::escape;

pub mod connect;
pub mod value;

use connect::{Conn, Engine, Target};

/// The instance to verify, as drbot made it.
pub struct Subject<'a> {
    pub instance: &'a str,
    /// The region drbot restored into (`None`: the database's own).
    pub region: Option<&'a str>,
    /// The tag drbot put on it, checked before connecting.
    pub tag: (&'a str, &'a str),
    /// The snapshot's time, or a PITR's target time.
    pub restore_point: Option<DateTime<Utc>>,
}

/// One data check's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub expect: String,
    /// The first value it answered.
    pub value: Option<String>,
    pub passed: bool,
    pub millis: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything drbot learnt from the restored data.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    pub instance: String,
    pub arn: String,
    pub endpoint: String,
    pub engine: String,
    /// `iam` or `secret <id>`: how drbot signed in (never the password).
    pub credentials: String,
    pub tls: String,
    pub reached: bool,
    pub checks: Vec<CheckResult>,
    pub restore_point: Option<DateTime<Utc>>,
    pub newest_write: Option<DateTime<Utc>>,
    /// Restore point − newest write, in seconds (0 when the newest write is later).
    pub rpo_seconds: Option<i64>,
    pub rpo_target_seconds: Option<u64>,
    pub rpo_scenario: Option<String>,
    pub rpo_met: Option<bool>,
    /// Why it could not be reached, or why the newest write could not be read.
    pub error: Option<String>,
    pub passed: bool,
}

fn millis_since(start: std::time::Instant) -> u64 {
    start.elapsed().as_millis() as u64
}

/// Verifies `subject`, restored from database `db`.
pub async fn verify(app: &Arc<App>, db: &RdsDatabase, subject: Subject<'_>) -> Verification {
    use tracing::Instrument;
    let span = tracing::info_span!("verify", database = %db.name, instance = %subject.instance);
    verify_in(app, db, subject).instrument(span).await
}

async fn verify_in(app: &Arc<App>, db: &RdsDatabase, subject: Subject<'_>) -> Verification {
    let mut v = Verification {
        instance: subject.instance.to_string(),
        tls: match db.verify_tls {
            VerifyTls::VerifyFull => "verify-full",
            VerifyTls::Require => "require",
            VerifyTls::Disable => "disable",
        }
        .into(),
        restore_point: subject.restore_point,
        ..Default::default()
    };
    if let Some((scenario, secs)) = app.scenarios.database_rpo(&db.name) {
        v.rpo_scenario = Some(scenario);
        v.rpo_target_seconds = Some(secs);
    }
    if let Err(why) = check_and_measure(app, db, &subject, &mut v).await {
        tracing::warn!(error = %why, "the restored data could not be verified");
        v.error = Some(why);
    }
    v.passed = v.error.is_none()
        && v.reached
        && v.checks.iter().all(|c| c.passed)
        && v.rpo_met != Some(false);
    v
}

/// The new instance, read again right before connecting: it must be the one drbot made.
async fn identify(
    app: &Arc<App>,
    db: &RdsDatabase,
    subject: &Subject<'_>,
) -> Result<crate::aws::rds::Instance, String> {
    let region = subject
        .region
        .map(str::to_string)
        .or_else(|| app.settings.region_of(db.region.as_deref()));
    let rds = app.aws.rds_in(region.as_deref());
    let id = subject.instance;
    if id == db.instance {
        return Err(format!(
            "`{id}` is the source instance: drbot never checks it"
        ));
    }
    let found = rds
        .instance(id)
        .await
        .map_err(|e| format!("could not read `{id}` before connecting: {e}"))?
        .ok_or_else(|| format!("`{id}` does not exist any more"))?;
    let arn_ok = found.id == id
        && found.arn.ends_with(&format!(":db:{id}"))
        && region
            .as_deref()
            .is_none_or(|r| crate::aws::rds::arn_place(&found.arn).is_some_and(|(at, _)| at == r));
    if !arn_ok {
        return Err(format!(
            "`{id}` answered with ARN `{}`, not drbot's new instance in {}: not connecting",
            found.arn,
            region.as_deref().unwrap_or("its region")
        ));
    }
    let (key, value) = subject.tag;
    if !found
        .placement
        .tags
        .iter()
        .any(|(k, v)| k == key && v == value)
    {
        return Err(format!(
            "`{id}` is not tagged `{key}={value}` as drbot tags what it restores: not connecting"
        ));
    }
    if found.status != "available" {
        return Err(format!("`{id}` is `{}`, not available", found.status));
    }
    Ok(found)
}

async fn check_and_measure(
    app: &Arc<App>,
    db: &RdsDatabase,
    subject: &Subject<'_>,
    v: &mut Verification,
) -> Result<(), String> {
    let instance = identify(app, db, subject).await?;
    v.arn = instance.arn.clone();
    v.engine = format!("{} {}", instance.engine, instance.engine_version);
    let endpoint = instance
        .endpoint
        .clone()
        .ok_or_else(|| format!("`{}` reports no endpoint", instance.id))?;
    v.endpoint = endpoint.clone();
    let engine = Engine::of(&instance.engine)?;
    let (host, port) = match endpoint.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .map_err(|_| format!("endpoint `{endpoint}` has no port"))?,
        ),
        None => (
            endpoint.clone(),
            if engine == Engine::Postgres {
                5432
            } else {
                3306
            },
        ),
    };
    let region = crate::aws::rds::arn_place(&instance.arn)
        .map(|(r, _)| r.to_string())
        .or_else(|| app.aws.default_region())
        .unwrap_or_default();
    let credentials = Credentials::parse(db.verify_credentials.as_deref().unwrap_or(""))?;
    let (user, password, iam) = match &credentials {
        Credentials::Iam => {
            v.credentials = "iam".into();
            let user = db.verify_user.clone().unwrap_or_default();
            let token = crate::aws::signed::db_auth_token(&app.aws, &region, &host, port, &user)
                .await
                .map_err(|e| format!("no IAM authentication token: {e}"))?;
            (user, token, true)
        }
        Credentials::Secret(id) => {
            v.credentials = format!("secret {id}");
            // An ARN says where the secret is; a name is in the database's own region.
            let at = crate::aws::rds::arn_place(id)
                .map(|(r, _)| r.to_string())
                .or_else(|| app.settings.region_of(db.region.as_deref()))
                .unwrap_or_else(|| region.clone());
            let login = crate::aws::secrets::login(&app.aws, &at, id)
                .await
                .map_err(|e| format!("could not read the login: {e}"))?;
            let user = db.verify_user.clone().unwrap_or(login.username);
            (user, login.password, false)
        }
    };
    let timeout = app.settings.rds.verify_timeout.as_duration();
    let target = Target {
        engine,
        host: &host,
        port,
        user: &user,
        password: &password,
        database: db.verify_database.as_deref(),
        tls: db.verify_tls,
        ca: db.verify_ca.as_deref(),
        iam,
        timeout,
    };
    let mut conn = connect::connect(&target)
        .await
        .map_err(|e| format!("could not connect to `{endpoint}` as `{user}`: {e}"))?;
    v.reached = true;
    let outcome = run_checks(&mut conn, db, v, timeout).await;
    conn.close().await;
    outcome
}

async fn run_checks(
    conn: &mut Conn,
    db: &RdsDatabase,
    v: &mut Verification,
    timeout: std::time::Duration,
) -> Result<(), String> {
    for check in &db.checks {
        let expect = Expect::parse(&check.expect)?;
        let started = std::time::Instant::now();
        let answer = conn.first_value(&check.sql, timeout).await;
        let millis = millis_since(started);
        let (value, passed, error) = match answer {
            Ok(Some(value)) => match value.number() {
                Some(n) => (Some(value.to_string()), expect.holds(n), None),
                None => (
                    Some(value.to_string()),
                    false,
                    Some(format!("`{value}` is not a number")),
                ),
            },
            Ok(None) => (None, false, Some("it answered no row".to_string())),
            Err(e) => (None, false, Some(e)),
        };
        let timed_out = error
            .as_deref()
            .is_some_and(|e| e.starts_with("no answer within"));
        v.checks.push(CheckResult {
            name: check.name.clone(),
            expect: check.expect.trim().to_string(),
            value,
            passed,
            millis,
            error,
        });
        if timed_out {
            return Err(format!(
                "check `{}` got no answer: stopped there",
                check.name
            ));
        }
    }
    let Some(sql) = &db.newest_write_sql else {
        return Ok(());
    };
    let newest = match conn.first_value(sql, timeout).await {
        Ok(Some(value)) => value.time().ok_or_else(|| {
            if value == value::Value::Null {
                "the newest write is NULL: the restored data holds no writes".to_string()
            } else {
                format!("newest_write_sql answered `{value}`, not a time")
            }
        })?,
        Ok(None) => return Err("newest_write_sql answered no row".into()),
        Err(e) => return Err(format!("newest_write_sql: {e}")),
    };
    v.newest_write = Some(newest);
    if let Some(point) = v.restore_point {
        let rpo = (point - newest).num_seconds().max(0);
        v.rpo_seconds = Some(rpo);
        v.rpo_met = v.rpo_target_seconds.map(|target| rpo as u64 <= target);
    }
    Ok(())
}

/// The tag a restore asked with `--verify` gets: checked before connecting to it.
pub const VERIFY_TAG: (&str, &str) = ("drbot:verify", "data");

/// `--verify` on a restore: only for a database whose data drbot knows how to check.
pub fn parse_flag(
    cmd: &crate::router::ParsedCommand,
    db: &RdsDatabase,
) -> Result<bool, crate::router::Invalid> {
    if cmd.flag("verify").is_none() {
        return Ok(false);
    }
    if !db.verifies_data() {
        return Err(format!(
            "`--verify`: database `{}` has no `[[rds.databases.checks]]` and no `newest_write_sql` in drbot.toml, so there is nothing to check; add them (README, \"Restore tests that prove the data\") or restore without `--verify`",
            db.name
        )
        .into());
    }
    Ok(true)
}

/// What the approval request says a `--verify` restore does after it.
pub fn plan_line(db: &RdsDatabase, new_instance: &str) -> String {
    format!(
        "\n• Then drbot connects to `{new_instance}` (never to `{}`) and checks the data: {}.",
        db.instance,
        crate::actions::rds_restore_test::data_checks_listed(db)
    )
}

/// After a `--verify` restore is available: verifies it, records `restore.verified` and
/// answers the text for the request's thread.
pub async fn after_restore(
    run: &crate::gate::execute::Run<'_>,
    database: &str,
    new_instance: &str,
    region: Option<&str>,
    restore_point: Option<DateTime<Utc>>,
) -> String {
    let Some(db) = run.app.settings.database(database).cloned() else {
        return format!("Data checks not run: `{database}` is no longer configured");
    };
    let subject = Subject {
        instance: new_instance,
        region,
        tag: VERIFY_TAG,
        restore_point,
    };
    let v = verify(run.app, &db, subject).await;
    run.record(
        crate::store::EventKind::RestoreVerified,
        format!(
            "{}: data checks on {new_instance} {}{}",
            run.request.label(),
            if v.passed { "passed" } else { "FAILED" },
            v.rpo_seconds
                .map(|s| format!(", real RPO {}", secs(s)))
                .unwrap_or_default()
        ),
        serde_json::json!({
            "action_id": run.request.label(),
            "database": database,
            "instance": new_instance,
            "data": v,
            "rpo_seconds": v.rpo_seconds,
            "rpo_met": v.rpo_met,
            "passed": v.passed,
        }),
    )
    .await;
    v.describe()
}

fn secs(s: i64) -> String {
    crate::duration::human(chrono::Duration::seconds(s))
}

impl Verification {
    /// The result in Slack: each check with its value and time, the real RPO, the verdict.
    pub fn describe(&self) -> String {
        let verdict = if self.passed {
            ":white_check_mark: passed"
        } else {
            ":x: FAILED"
        };
        let mut out = format!("*Data checks* on `{}` {verdict}", escape(&self.instance));
        if self.reached {
            out.push_str(&format!(
                " ({}, signed in with {}, TLS {})",
                escape(&self.engine),
                escape(&self.credentials),
                self.tls
            ));
        }
        out.push(':');
        for c in &self.checks {
            let icon = if c.passed { "•" } else { "• :x:" };
            let value = c.value.as_deref().unwrap_or("—");
            out.push_str(&format!(
                "\n{icon} {}: {} (expected {}) in {} ms",
                escape(&c.name),
                escape(value),
                escape(&c.expect),
                c.millis
            ));
            if let Some(e) = &c.error {
                out.push_str(&format!(" — {}", escape(e)));
            }
        }
        match (self.rpo_seconds, self.newest_write, self.restore_point) {
            (Some(rpo), Some(newest), Some(point)) => {
                let against = match (self.rpo_target_seconds, &self.rpo_scenario, self.rpo_met) {
                    (Some(t), Some(s), Some(met)) => format!(
                        " against the {} RPO of `{}`: {}",
                        secs(t as i64),
                        escape(s),
                        if met { "met" } else { ":x: *missed*" }
                    ),
                    _ => {
                        " (no scenario's plan restores this database: no RPO to hold it to)".into()
                    }
                };
                out.push_str(&format!(
                    "\n• Real RPO: {} — restore point {} UTC, newest write in the data {} UTC{against}",
                    secs(rpo),
                    point.format("%Y-%m-%d %H:%M:%S"),
                    newest.format("%Y-%m-%d %H:%M:%S")
                ));
            }
            (_, Some(newest), None) => out.push_str(&format!(
                "\n• Newest write in the data: {} UTC (no restore point known)",
                newest.format("%Y-%m-%d %H:%M:%S")
            )),
            _ => {}
        }
        if let Some(e) = &self.error {
            out.push_str(&format!("\n• :x: {}", escape(e)));
        }
        out
    }
}
