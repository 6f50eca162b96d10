//! The sandbox as a newcomer sees it: `drbot sandbox` against moto, the console in a real
//! browser (chromium under chromedriver). The on-call engineer asks for a rollback, an
//! outsider's ✅ is refused, officer 1's ✅ approves, and the AWS panel shows the service on
//! the previous revision. Screenshots are kept in the target directory.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::browser::Browser;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Selects a persona in the composer's menu, as a person would.
async fn be(browser: &Browser, user: &str) {
    browser
        .click(&format!("#persona option[value='{user}']"))
        .await;
    browser
        .wait_for_text(&format!("you are {}", name(user)), 5)
        .await;
}

fn name(user: &str) -> &'static str {
    match user {
        "U0ONCALL1" => "Dana Smith",
        "U0SECOFF1" => "Sam Okafor",
        "U0SECOFF2" => "Lee Chen",
        _ => "Alex Outsider",
    }
}

#[tokio::test]
async fn a_newcomer_approves_a_rollback_in_the_sandbox_console() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["sandbox", "--port", &port.to_string(), "--dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(sandbox.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("ready. Open") {
                return line;
            }
        }
        panic!("the sandbox stopped before it was ready");
    })
    .await
    .expect("the sandbox is ready within a minute");
    let url = format!("http://127.0.0.1:{port}/");
    assert!(ready.contains(&url), "{ready}");

    let browser = Browser::start().await;
    browser.open(&url).await;
    browser.wait_for_text("drbot sandbox", 10).await;
    browser.wait_for_text("aifai-backend:3", 15).await;

    // The on-call engineer asks for the rollback.
    be(&browser, "U0ONCALL1").await;
    browser.type_into("#text", "/dr rollback api\u{E007}").await;
    browser.wait_for_text("A-1 · approval needed", 20).await;
    browser
        .wait_for_text("from aifai-backend:3 (running now)", 5)
        .await;
    let shots = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    browser
        .screenshot(&shots.join("sandbox-approval.png"))
        .await;
    let ts = browser
        .run(
            "return [...document.querySelectorAll('.msg')].find(m => m.innerText.includes('approval needed')).dataset.ts;",
            json!([]),
        )
        .await
        .as_str()
        .unwrap()
        .to_string();
    let approve = format!(".msg[data-ts='{ts}'] .reaction[data-name='white_check_mark']");

    // An outsider's ✅ changes nothing.
    be(&browser, "U0OUTSIDE").await;
    browser.click(&approve).await;
    browser
        .wait_for_text("Only security officers can approve A-1", 15)
        .await;
    browser.wait_for_text("A-1 · approval needed", 2).await;

    // Security officer 1 approves; drbot rolls back and the AWS panel shows it.
    be(&browser, "U0SECOFF1").await;
    browser.click(&approve).await;
    browser.wait_for_text("A-1 · executed", 30).await;
    browser.wait_for_text("aifai-backend:2", 15).await;
    browser
        .screenshot(&shots.join("sandbox-executed.png"))
        .await;
    assert!(
        browser.text().await.contains("UpdateService sent"),
        "the thread shows the AWS call"
    );
    browser.quit().await;
    let _ = sandbox.kill().await;
}

#[tokio::test]
async fn a_port_in_use_is_named_with_how_to_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["sandbox", "--port", &port.to_string()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {port}")) && err.contains("--port"),
        "{err}"
    );
}
