//! One connection to a restored instance's database, PostgreSQL or MySQL/MariaDB, and its
//! queries: each in its own read-only transaction, under the session's statement timeout and
//! drbot's own, over the extended protocol (one statement per query, never a second).

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use futures_util::future::BoxFuture;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlRow, MySqlSslMode};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow, PgSslMode};
use sqlx::{ConnectOptions, Connection, Row, TypeInfo, ValueRef};

use super::value::{self, Value};
use crate::config::alarms::glob_matches;
use crate::config::VerifyTls;

/// Where RDS images keep AWS's CA bundle (deploy/Dockerfile): the default `verify_ca`.
pub const RDS_CA_BUNDLE: &str = "/etc/ssl/certs/rds-global-bundle.pem";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    MySql,
}

impl Engine {
    /// The engine of an RDS instance, when drbot can read its data.
    pub fn of(engine: &str) -> Result<Self, String> {
        match engine {
            "postgres" => Ok(Self::Postgres),
            "mysql" | "mariadb" => Ok(Self::MySql),
            other => Err(format!(
                "engine `{other}`: drbot checks the data of postgres, mysql and mariadb instances"
            )),
        }
    }
}

/// How to reach and sign in.
pub struct Target<'a> {
    pub engine: Engine,
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub database: Option<&'a str>,
    pub tls: VerifyTls,
    pub ca: Option<&'a Path>,
    /// IAM authentication: MySQL then sends the token as a clear-text password (over TLS).
    pub iam: bool,
    pub timeout: Duration,
}

pub enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

fn said(e: sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        other => other.to_string(),
    }
}

/// The host and port to dial for `host:port`: itself, unless `DRBOT_TEST_RESOLVE` (tests
/// only) sends hosts matching a glob elsewhere.
pub fn dial(host: &str, port: u16) -> (String, u16) {
    let rules = std::env::var("DRBOT_TEST_RESOLVE").unwrap_or_default();
    resolve(&rules, host).unwrap_or_else(|| (host.to_string(), port))
}

/// `<host glob>=<host>:<port>,…`: the first rule whose glob (`*` any characters) matches.
pub fn resolve(rules: &str, host: &str) -> Option<(String, u16)> {
    rules.split(',').find_map(|rule| {
        let (glob, to) = rule.trim().split_once('=')?;
        let (to_host, to_port) = to.trim().rsplit_once(':')?;
        let port = to_port.parse().ok()?;
        // Host names are case-insensitive.
        glob_matches(
            &glob.trim().to_ascii_lowercase(),
            &host.to_ascii_lowercase(),
        )
        .then(|| (to_host.to_string(), port))
    })
}

/// Connects, within `timeout`.
pub async fn connect(t: &Target<'_>) -> Result<Conn, String> {
    let (host, port) = dial(t.host, t.port);
    let ms = t.timeout.as_millis().max(1);
    let ca =
        t.ca.map(Path::to_path_buf)
            .or_else(|| Some(Path::new(RDS_CA_BUNDLE).to_path_buf()).filter(|p| p.is_file()));
    // Boxed: sqlx's executors are generic over lifetimes the compiler cannot prove `Send`
    // for inside a larger future.
    let connecting: BoxFuture<'_, Result<Conn, String>> = Box::pin(async {
        match t.engine {
            Engine::Postgres => {
                let mode = match t.tls {
                    VerifyTls::VerifyFull => PgSslMode::VerifyFull,
                    VerifyTls::Require => PgSslMode::Require,
                    VerifyTls::Disable => PgSslMode::Disable,
                };
                let mut o = PgConnectOptions::new_without_pgpass()
                    .ssl_mode(mode)
                    .host(&host)
                    .port(port)
                    .username(t.user)
                    .password(t.password)
                    .application_name("drbot-verify")
                    .options([
                        ("default_transaction_read_only", "on".to_string()),
                        ("statement_timeout", format!("{ms}")),
                    ])
                    .disable_statement_logging();
                o = match (t.tls, &ca) {
                    (VerifyTls::VerifyFull, Some(ca)) => o.ssl_root_cert(ca),
                    _ => o,
                };
                if let Some(db) = t.database {
                    o = o.database(db);
                }
                o.connect().await.map(Conn::Pg).map_err(said)
            }
            Engine::MySql => {
                let mut o = MySqlConnectOptions::new()
                    .host(&host)
                    .port(port)
                    .username(t.user)
                    .password(t.password)
                    .enable_cleartext_plugin(t.iam)
                    .ssl_mode(match t.tls {
                        VerifyTls::VerifyFull => MySqlSslMode::VerifyIdentity,
                        VerifyTls::Require => MySqlSslMode::Required,
                        VerifyTls::Disable => MySqlSslMode::Disabled,
                    })
                    .disable_statement_logging();
                if let Some(db) = t.database {
                    o = o.database(db);
                }
                if let (VerifyTls::VerifyFull, Some(ca)) = (t.tls, &ca) {
                    o = o.ssl_ca(ca);
                }
                let mut c = o.connect().await.map_err(said)?;
                my_exec(&mut c, "SET SESSION TRANSACTION READ ONLY")
                    .await
                    .map_err(said)?;
                // MariaDB's statement timeout (seconds), else MySQL's (milliseconds, SELECT).
                let secs = t.timeout.as_secs().max(1);
                if my_exec(&mut c, &format!("SET SESSION max_statement_time = {secs}"))
                    .await
                    .is_err()
                {
                    let _ =
                        my_exec(&mut c, &format!("SET SESSION max_execution_time = {ms}")).await;
                }
                Ok(Conn::My(c))
            }
        }
    });
    match crate::clock::timeout(t.timeout, connecting).await {
        Ok(conn) => conn,
        Err(_) => Err(format!(
            "{host}:{port} did not answer within {}",
            crate::duration::human(chrono::Duration::from_std(t.timeout).unwrap_or_default())
        )),
    }
}

impl Conn {
    /// The first column of the first row of `sql`, read in a read-only transaction;
    /// `Ok(None)` when it answers no row. An error after `timeout` leaves the connection
    /// unusable (the caller stops).
    pub async fn first_value(
        &mut self,
        sql: &str,
        timeout: Duration,
    ) -> Result<Option<Value>, String> {
        let asked: BoxFuture<'_, Result<Option<Value>, String>> = Box::pin(async move {
            match self {
                Conn::Pg(c) => {
                    pg_exec(c, "BEGIN READ ONLY").await.map_err(said)?;
                    let row = pg_row(c, sql).await;
                    let _ = pg_exec(c, "ROLLBACK").await;
                    row.map_err(said)?.map(|r| pg_value(&r)).transpose()
                }
                Conn::My(c) => {
                    my_exec(c, "START TRANSACTION READ ONLY")
                        .await
                        .map_err(said)?;
                    let row = my_row(c, sql).await;
                    let _ = my_exec(c, "ROLLBACK").await;
                    row.map_err(said)?.map(|r| my_value(&r)).transpose()
                }
            }
        });
        // The server's statement timeout answers first; this one covers a server that
        // stopped answering altogether.
        match crate::clock::timeout(timeout + Duration::from_secs(5), asked).await {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within {}",
                crate::duration::human(chrono::Duration::from_std(timeout).unwrap_or_default())
            )),
        }
    }

    pub async fn close(self) {
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
        };
    }
}

// Concrete helpers: sqlx's executors are generic over lifetimes the compiler cannot prove
// `Send` for inside a larger future.
fn pg_exec<'a>(c: &'a mut PgConnection, sql: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::Executor::execute(c, sql).await.map(|_| ()) })
}

fn my_exec<'a>(c: &'a mut MySqlConnection, sql: &'a str) -> BoxFuture<'a, Result<(), sqlx::Error>> {
    Box::pin(async move { sqlx::Executor::execute(c, sql).await.map(|_| ()) })
}

fn pg_row<'a>(
    c: &'a mut PgConnection,
    sql: &'a str,
) -> BoxFuture<'a, Result<Option<PgRow>, sqlx::Error>> {
    Box::pin(async move { sqlx::query(sql).persistent(false).fetch_optional(c).await })
}

fn my_row<'a>(
    c: &'a mut MySqlConnection,
    sql: &'a str,
) -> BoxFuture<'a, Result<Option<MySqlRow>, sqlx::Error>> {
    Box::pin(async move { sqlx::query(sql).persistent(false).fetch_optional(c).await })
}

/// Tries each type in turn on the first column (sqlx refuses a type that does not match).
macro_rules! first_of {
    ($row:expr, $( $t:ty => $to:expr ),+ $(,)?) => {
        $( if let Ok(v) = $row.try_get::<$t, _>(0) { return Ok($to(v)); } )+
    };
}

fn unreadable(ty: &str) -> String {
    format!("its first column is of type {ty}, which drbot does not read: cast it to a number, a text or a timestamp")
}

/// The SQL type of the first column of `row`, `None` when it is NULL.
fn type_of_first<R: Row>(row: &R) -> Result<Option<String>, String>
where
    usize: sqlx::ColumnIndex<R>,
{
    if row.columns().is_empty() {
        return Err("it answers no column".into());
    }
    let raw = row.try_get_raw(0).map_err(said)?;
    if raw.is_null() {
        return Ok(None);
    }
    Ok(Some(raw.type_info().name().to_string()))
}

fn pg_value(row: &PgRow) -> Result<Value, String> {
    let Some(ty) = type_of_first(row)? else {
        return Ok(Value::Null);
    };
    first_of!(row,
        i64 => |v: i64| Value::Number(v as f64),
        i32 => |v: i32| Value::Number(f64::from(v)),
        i16 => |v: i16| Value::Number(f64::from(v)),
        f64 => Value::Number,
        f32 => |v: f32| Value::Number(f64::from(v)),
        bool => Value::Bool,
        DateTime<Utc> => Value::Time,
        NaiveDateTime => value::naive,
        NaiveDate => value::date,
        String => Value::Text,
    );
    if ty == "NUMERIC" {
        let raw = row.try_get_raw(0).map_err(said)?;
        if let Some(n) = raw.as_bytes().ok().and_then(value::pg_numeric) {
            return Ok(Value::Number(n));
        }
    }
    Err(unreadable(&ty))
}

fn my_value(row: &MySqlRow) -> Result<Value, String> {
    let Some(ty) = type_of_first(row)? else {
        return Ok(Value::Null);
    };
    first_of!(row,
        i64 => |v: i64| Value::Number(v as f64),
        u64 => |v: u64| Value::Number(v as f64),
        f64 => Value::Number,
        f32 => |v: f32| Value::Number(f64::from(v)),
        DateTime<Utc> => Value::Time,
        NaiveDateTime => value::naive,
        NaiveDate => value::date,
        String => Value::Text,
    );
    // DECIMAL comes as its digits, in text.
    if let Ok(text) = row.try_get_unchecked::<String, _>(0) {
        return Ok(Value::Text(text));
    }
    Err(unreadable(&ty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_resolution_sends_matching_hosts_elsewhere() {
        let rules = "drbot-drill-*.rds.amazonaws.com=127.0.0.1:5432, *-restored-*=localhost:3306";
        assert_eq!(
            resolve(
                rules,
                "drbot-drill-aifai-db-202612041000.abc.eu-central-1.rds.amazonaws.com"
            ),
            Some(("127.0.0.1".into(), 5432))
        );
        assert_eq!(
            resolve(rules, "aifai-db-restored-1.abc.rds.amazonaws.com"),
            Some(("localhost".into(), 3306))
        );
        assert_eq!(resolve(rules, "aifai-db.abc.rds.amazonaws.com"), None);
        assert_eq!(resolve("", "x"), None);
        assert_eq!(resolve("x=nope", "x"), None);
        assert_eq!(
            resolve("DRBOT-DRILL-*=h:1", "drbot-drill-x"),
            Some(("h".into(), 1))
        );
        assert_eq!(Engine::of("mariadb"), Ok(Engine::MySql));
        assert!(Engine::of("sqlserver-ex")
            .unwrap_err()
            .contains("sqlserver-ex"));
    }
}
