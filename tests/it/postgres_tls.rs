//! The store over TLS, as on RDS for PostgreSQL 15 and later (`rds.force_ssl = 1`): a
//! throwaway server that accepts only TLS connections with a password (scram-sha-256) and
//! rejects plain ones. drbot runs on it with `sslmode=require`, `verify-ca` and
//! `verify-full`; a certificate from an unknown CA, or for another host, is refused at
//! start-up with one line that names the database URL with its password redacted.

use crate::support::postgres::{make_ca, PrivatePostgres, TLS_PASSWORD};
use crate::support::*;

struct TlsOnly {
    server: PrivatePostgres,
    cas: tempfile::TempDir,
}

impl TlsOnly {
    fn start() -> Option<Self> {
        if !on_postgres() {
            eprintln!(
                "runs in scripts/test's PostgreSQL pass (it starts a private PostgreSQL server)"
            );
            return None;
        }
        let cas = tempfile::tempdir().unwrap();
        make_ca(cas.path(), "rds-ca");
        make_ca(cas.path(), "someone-else");
        let server = PrivatePostgres::start_tls_only(cas.path(), "rds-ca");
        Some(Self { server, cas })
    }

    fn ca(&self, name: &str) -> String {
        self.cas
            .path()
            .join(format!("{name}.pem"))
            .display()
            .to_string()
    }

    /// `postgres://postgres:PASSWORD@HOST:PORT/postgres?QUERY`
    fn url(&self, host: &str, query: &str) -> String {
        format!(
            "postgres://postgres:{TLS_PASSWORD}@{host}:{}/postgres?{query}",
            self.server.port
        )
    }
}

async fn works_on(url: &str) {
    let app = spawn_app_custom(CONFIG, &[], &[("DRBOT_DATABASE_URL", url)]).await;
    assert!(app.slash("help").reply().await.contains("rollback"));
    let pending = app.slash("approvals").as_user(OFFICER).reply().await;
    assert!(!pending.contains("could not"), "{pending}");
    let recorded = app.events_of_kind("command.accepted").await;
    assert!(!recorded.is_empty(), "the commands were recorded over TLS");
}

/// Starts `drbot serve` on `url`, expecting it to refuse; answers its last stderr line.
async fn refused(url: &str) -> String {
    let slack = standin::SlackStandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), CONFIG).unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["serve", "--config"])
        .arg(dir.path().join("drbot.toml"))
        .envs(serve_env(dir.path(), &slack))
        .env("DRBOT_DATABASE_URL", url)
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let line = stderr
        .lines()
        .rfind(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("no error line: {stderr}"))
        .to_string();
    assert!(
        !stderr.contains(TLS_PASSWORD),
        "the password leaked: {stderr}"
    );
    line
}

#[tokio::test]
async fn drbot_runs_on_a_postgres_that_accepts_only_tls_with_require_verify_ca_and_verify_full() {
    let Some(pg) = TlsOnly::start() else { return };

    // The server is as RDS: a plain connection is rejected.
    let plain = refused(&pg.url("127.0.0.1", "sslmode=disable")).await;
    assert!(
        plain.contains("no pg_hba.conf entry") || plain.contains("reject"),
        "{plain}"
    );

    works_on(&pg.url("127.0.0.1", "sslmode=require")).await;
    // verify-ca checks the chain, not the name: 127.0.0.1 is not in the certificate.
    works_on(&pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-ca&sslrootcert={}", pg.ca("rds-ca")),
    ))
    .await;
    works_on(&pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca("rds-ca")),
    ))
    .await;
}

#[tokio::test]
async fn an_unknown_ca_or_the_wrong_host_is_refused_at_start_up_with_the_url_redacted() {
    let Some(pg) = TlsOnly::start() else { return };

    let url = pg.url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca("someone-else")),
    );
    let line = refused(&url).await;
    assert!(
        line.contains(&format!(
            "postgres://postgres:redacted@localhost:{}/postgres",
            pg.server.port
        )) && line.contains("sslmode=verify-full"),
        "{line}"
    );
    assert!(
        line.to_lowercase().contains("certificate") || line.contains("TLS"),
        "{line}"
    );

    // The right CA, but a host the certificate was not issued for.
    let line = refused(&pg.url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca("rds-ca")),
    ))
    .await;
    assert!(
        line.contains("127.0.0.1") && line.contains("redacted"),
        "{line}"
    );

    // A password given as a parameter is redacted too.
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?password={TLS_PASSWORD}&sslmode=verify-full&sslrootcert={}",
        pg.server.port,
        pg.ca("someone-else")
    );
    let line = refused(&url).await;
    assert!(line.contains("password=redacted"), "{line}");
}
