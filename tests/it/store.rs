//! The store under the load Slack puts on it: clients that give up mid-request (Slack closes
//! the connection after 3 s, load balancers after their idle timeout) must never leave a write
//! half-done or wedge the store for everyone after them.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::support::flow::*;
use crate::support::postgres::PrivatePostgres;
use crate::support::*;

/// A signed slash-command request as raw HTTP bytes.
fn raw_command(app: &TestApp, text: &str) -> Vec<u8> {
    let body = app.slash(text).body();
    let ts = now_unix();
    let sig = sign(SIGNING_SECRET, ts, &body);
    format!(
        "POST /slack/commands HTTP/1.1\r\nhost: {}\r\ncontent-type: application/x-www-form-urlencoded\r\nx-slack-request-timestamp: {ts}\r\nx-slack-signature: {sig}\r\ncontent-length: {}\r\n\r\n{body}",
        app.addr,
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn thousands_of_abandoned_commands_leave_commands_approvals_and_the_audit_chain_working() {
    let service = crate::support::aws::seed_service(3, 1).await;
    let config = format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n[approval]\nofficers = [\"U0SECOFF1\"]\n[ecs]\npoll_interval = \"1s\"\n{}",
        service.config()
    );
    let app = spawn_app_with(&config).await;
    let request = raw_command(&app, "help");

    // 16 clients send 200 signed commands each and hang up right after writing, some at
    // once, some a moment later (while the command is being recorded).
    let mut clients = Vec::new();
    for client in 0..16u64 {
        let addr = app.addr;
        let request = request.clone();
        clients.push(tokio::spawn(async move {
            for i in 0..200u64 {
                let Ok(mut socket) = tokio::net::TcpStream::connect(addr).await else {
                    continue;
                };
                let _ = socket.write_all(&request).await;
                if (client + i) % 3 == 0 {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                drop(socket);
            }
        }));
    }
    // Others are cut off by their own timeout while the bot is answering.
    for _ in 0..200 {
        let _ = tokio::time::timeout(Duration::from_millis(1), app.slash("help").send()).await;
    }
    for client in clients {
        client.await.unwrap();
    }

    // The next command is answered and recorded as usual.
    let reply = app.slash("help").reply().await;
    assert!(reply.contains("rollback"), "{reply}");
    assert!(!reply.contains("could not record"), "{reply}");

    // An approval goes through the gate and executes exactly once.
    let executed = ask_and_approve(&app, "rollback api").await;
    assert_eq!(executed["kind"], "request.executed", "{executed}");
    assert_eq!(
        service.task_definition().await,
        format!("{}:2", service.family)
    );

    // Every recorded event is one chain.
    let out = app.cli(&["audit", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refused = app
        .logs()
        .iter()
        .filter(|l| l.contains("could not record") || l.contains("non-zero transaction depth"))
        .count();
    assert_eq!(
        refused, 0,
        "the store refused writes after abandoned requests"
    );
}

#[tokio::test]
async fn when_the_database_goes_away_commands_are_refused_unrecorded_and_drbot_recovers_by_itself()
{
    if !on_postgres() {
        eprintln!("runs in scripts/test's PostgreSQL pass (it stops a private PostgreSQL server)");
        return;
    }
    let pg = PrivatePostgres::start();
    let url = pg.url();
    let app = spawn_app_custom(CONFIG, &[], &[("DRBOT_DATABASE_URL", &url)]).await;
    assert!(app.slash("help").reply().await.contains("rollback"));

    pg.stop();
    for text in ["help", "rollback api"] {
        let reply = app.slash(text).reply().await;
        assert!(
            reply.contains("could not record this request") && reply.contains("did nothing"),
            "{reply}"
        );
    }
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        503
    );

    pg.start_again();
    let mut recovered = false;
    for _ in 0..40 {
        let reply = app.slash("status").as_user(OFFICER).reply().await;
        if !reply.contains("could not record") {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        recovered,
        "drbot did not recover when the database came back"
    );
    assert!(app.slash("help").reply().await.contains("rollback"));

    // Nothing that was refused was recorded or run; the chain is whole.
    let events = app.events().await;
    assert!(
        !events.iter().any(|e| e["text"] == "/dr rollback api"),
        "{events:#?}"
    );
    assert!(app.slack.response_posts().is_empty(), "nothing was planned");
    let out = app.cli(&["audit", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn an_unreachable_database_at_start_up_is_one_line_naming_it_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("drbot.toml"), CONFIG).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    for (url, expected) in [
        (
            format!("postgres://drbot:hunter2@127.0.0.1:{closed}/drbot"),
            format!("cannot open the store at postgres://drbot:redacted@127.0.0.1:{closed}/drbot"),
        ),
        (
            "mysql://drbot:hunter2@127.0.0.1/drbot".to_string(),
            "is not supported; use sqlite://PATH".to_string(),
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
            .args(["serve", "--config"])
            .arg(dir.path().join("drbot.toml"))
            .env("SLACK_SIGNING_SECRET", SIGNING_SECRET)
            .env("SLACK_BOT_TOKEN", BOT_TOKEN)
            .env("DRBOT_DATABASE_URL", &url)
            .env("DRBOT_SLACK_API_URL", "http://127.0.0.1:9/api/")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{err}");
        assert!(lines[0].contains(&expected), "{err}");
        assert!(!err.contains("hunter2"), "the password leaked: {err}");
    }
}
