//! The store under the load Slack puts on it: clients that give up mid-request (Slack closes
//! the connection after 3 s, load balancers after their idle timeout) must never leave a write
//! half-done or wedge the store for everyone after them.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use crate::support::flow::*;
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
