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
use crate::support::repo_root;

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

/// A moto of the sandbox's own: each sandbox seeds the same named estate, so two cannot
/// share the suite's.
async fn private_moto() -> (tokio::process::Child, String) {
    let port = free_port();
    let root = repo_root();
    let moto = crate::support::spawn_quietly(
        Command::new(root.join(".venv/bin/python"))
            .arg(root.join("scripts/moto-server.py"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ECS_SERVICE_RUNNING", "1"),
        "the suite's moto venv (scripts/ensure-moto)",
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if reqwest::get(format!("{url}/moto-api/")).await.is_ok() {
            return (moto, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("moto did not start on {url}");
}

/// Starts `drbot sandbox` against a moto of its own and waits for its "ready" line.
async fn start_sandbox(
    dir: &std::path::Path,
    port: u16,
) -> (tokio::process::Child, String, tokio::process::Child) {
    let (moto, endpoint) = private_moto().await;
    let mut sandbox = Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["sandbox", "--port", &port.to_string(), "--dir"])
        .arg(dir)
        .env("AWS_ENDPOINT_URL", &endpoint)
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
    (sandbox, ready, moto)
}

#[tokio::test]
async fn a_newcomer_approves_a_rollback_in_the_sandbox_console() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut sandbox, ready, _one) = start_sandbox(dir.path(), port).await;
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

    // Security officer 1 looks at drbot's Home tab first: the request waits there, with
    // its buttons, beside each scenario's readiness.
    be(&browser, "U0SECOFF1").await;
    browser
        .click_until("[data-c='HOME']", "drbot · Home", 15)
        .await;
    browser.wait_for_text("Pending approvals", 15).await;
    browser.wait_for_text("Approve A-1", 15).await;
    browser.wait_for_text("/dr rollback api", 2).await;
    browser.wait_for_text("Readiness", 2).await;
    browser.screenshot(&shots.join("sandbox-home.png")).await;
    browser
        .click_until("[data-c='C0123OPS']", "#ops · you are", 15)
        .await;
    browser.wait_for_text("A-1 · approval needed", 5).await;

    // Security officer 1 approves; drbot rolls back and the AWS panel shows it.
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
    // Every message drbot sent reached the console's Slack: `/dr status` names none that
    // could not be sent (the message updates above included).
    be(&browser, "U0ONCALL1").await;
    browser.type_into("#text", "/dr status\u{E007}").await;
    browser.wait_for_text("Slack delivery", 20).await;
    let page = browser.text().await;
    assert!(
        !page.contains("could not send") && page.contains("none failed"),
        "{page}"
    );

    // The tabletop: a drill incident, where the team runs the real region-failure plan
    // against the emulator and follows its live message.
    browser.click("[data-s='region-failure']").await;
    browser.wait_for_text("# inc-", 20).await;
    browser
        .run(
            "[...document.querySelectorAll('#channels a')].find(a => a.innerText.includes('inc-')).click();",
            json!([]),
        )
        .await;
    browser.wait_for_text("#inc-", 5).await;
    browser
        .type_into("#text", "/dr run region-failure --mode graceful\u{E007}")
        .await;
    browser.wait_for_text("Run the plan of", 30).await;
    let approve_last = |what: &'static str| {
        format!("return [...document.querySelectorAll('.msg')].filter(m => m.innerText.includes('approval needed') && m.innerText.includes('{what}')).pop().dataset.ts;")
    };
    let run_ts = browser
        .run(&approve_last("Run the plan of"), json!([]))
        .await;
    be(&browser, "U0SECOFF1").await;
    browser
        .click(&format!(
            ".msg[data-ts='{}'] .reaction[data-name='white_check_mark']",
            run_ts.as_str().unwrap()
        ))
        .await;
    browser.wait_for_text("Plan run R-1", 30).await;
    // The DNS step asks an officer again when it is reached.
    browser
        .wait_for_text("waiting for an officer's approval of", 60)
        .await;
    let dns_ts = browser.run(&approve_last("DNS"), json!([])).await;
    be(&browser, "U0SECOFF2").await;
    browser
        .click(&format!(
            ".msg[data-ts='{}'] .reaction[data-name='white_check_mark']",
            dns_ts.as_str().unwrap()
        ))
        .await;
    browser.wait_for_text("waiting for a person", 60).await;
    be(&browser, "U0ONCALL1").await;
    browser
        .type_into("#text", "/dr run done verify\u{E007}")
        .await;
    browser.wait_for_text("Recovered in", 30).await;
    browser
        .screenshot(&shots.join("sandbox-tabletop-run.png"))
        .await;
    let page = browser.text().await;
    assert!(page.contains("RTO 24h 00m: met"), "{page}");

    // Telling users: a real incident's notice, drafted, approved by the officer, shown on
    // the sandbox's status page and in its mail outbox.
    browser
        .click_until("[data-c='C0123OPS']", "#ops · you are", 15)
        .await;
    browser
        .type_into("#text", "/dr incident open ddos Login flood\u{E007}")
        .await;
    browser.wait_for_text("login-flood", 20).await;
    browser
        .run(
            "[...document.querySelectorAll('#channels a')].find(a => a.innerText.includes('login-flood')).click();",
            json!([]),
        )
        .await;
    browser.wait_for_text("#inc-", 5).await;
    browser
        .type_into(
            "#text",
            "/dr notify users Blocking the flood at the edge\u{E007}",
        )
        .await;
    browser.wait_for_text("Tell users", 30).await;
    let notice_ts = browser.run(&approve_last("Tell users"), json!([])).await;
    be(&browser, "U0SECOFF1").await;
    browser
        .click(&format!(
            ".msg[data-ts='{}'] .reaction[data-name='white_check_mark']",
            notice_ts.as_str().unwrap()
        ))
        .await;
    browser
        .wait_for_text("Bcc: ops@customer-one.example", 30)
        .await;
    browser.wait_for_text("impact major", 5).await;
    browser
        .wait_for_text("Published on the status page", 15)
        .await;
    browser.screenshot(&shots.join("sandbox-notify.png")).await;
    browser.quit().await;
    let _ = sandbox.kill().await;
}

/// `drbot sandbox --port PORT` with `env`, which must refuse to start: what it said.
async fn refused_sandbox(port: u16, env: &[(&str, &str)]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["sandbox", "--port", &port.to_string()])
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_port_in_use_is_named_with_how_to_choose_another() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let err = refused_sandbox(port, &[]).await;
    assert!(
        err.contains(&format!("port {port}")) && err.contains("--port"),
        "{err}"
    );
}

#[tokio::test]
async fn the_sandbox_never_talks_to_an_aws_endpoint_off_this_machine() {
    for (var, value) in [
        ("AWS_ENDPOINT_URL", "https://rds.eu-west-1.amazonaws.com"),
        (
            "AWS_ENDPOINT_URL_RDS",
            "https://rds.eu-west-1.amazonaws.com",
        ),
    ] {
        let env = [("AWS_ENDPOINT_URL", "http://127.0.0.1:1"), (var, value)];
        let err = refused_sandbox(free_port(), &env).await;
        assert!(
            err.contains(var) && err.contains("not on this machine"),
            "{err}"
        );
    }
}

#[tokio::test]
async fn the_console_refuses_other_hosts_and_cross_site_changes_and_shows_uploads_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut sandbox, _, _one) = start_sandbox(dir.path(), port).await;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();

    // A DNS name rebound to 127.0.0.1 reaches the port, but not the console.
    let rebound = http
        .get(format!("{base}/api/state"))
        .header("host", format!("attacker.example:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // A cross-site POST (a form on another site) changes nothing.
    let forged = http
        .post(format!("{base}/api/command"))
        .header("origin", "http://attacker.example")
        .json(&json!({"user": "U0ONCALL1", "channel": "C0SANDBOX", "text": "rollback api"}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("its own pages"));
    // The console's own pages still work.
    let own = http
        .get(format!("{base}/api/state"))
        .header("origin", &base)
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 200);

    // An uploaded HTML file is shown as text, never as a page of the console.
    let asked = http
        .post(format!("{base}/slack-api/files.getUploadURLExternal"))
        .form(&[("filename", "evil.html"), ("length", "40")])
        .send();
    let upload: serde_json::Value =
        serde_json::from_str(&asked.await.unwrap().text().await.unwrap()).unwrap();
    let url = upload["upload_url"].as_str().unwrap();
    http.post(url)
        .body("<script>fetch('/api/command')</script>")
        .send()
        .await
        .unwrap();
    let id = upload["file_id"].as_str().unwrap();
    let shown = http.get(format!("{base}/files/{id}")).send().await.unwrap();
    assert_eq!(shown.status(), 200);
    let headers = shown.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    let _ = sandbox.kill().await;
}
