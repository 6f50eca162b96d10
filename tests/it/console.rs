//! When Slack is down: the web console behind the load balancer's sign-in (SPEC §19). A
//! stand-in plays the ALB (it signs `x-amzn-oidc-data` with a key made here and serves the
//! public key); Slack's stand-in answers 503 to everything. In Chromium, the on-call engineer
//! asks for a rollback in the console, an outsider's approval is refused, an officer's
//! executes it exactly once; each event says it came from the console and who signed in.
//! When Slack answers again, what waited is posted in order, then what was done meanwhile.
//! Forged, expired, foreign and unknown sign-ins, and changes from another origin or
//! without the session's token, change nothing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::alb::{self, AlbStandIn};
use crate::support::aws::{seed_service, SeededService};
use crate::support::browser::Browser;
use crate::support::flow::wait_for_event;
use crate::support::standin::Failure;
use crate::support::*;

const DANA: &str = "dana@example.com";
const SAM: &str = "sam@example.com";
const ALEX: &str = "alex@example.com";

fn config(svc: &SeededService) -> String {
    // Dotted keys: the console's own settings stand out from the rest.
    let people = format!(
        r#"{{ "{DANA}" = "U0ONCALL1", "Sam@Example.com" = "U0SECOFF1", "{ALEX}" = "U0OUTSIDE" }}"#
    );
    [
        r#"slack.command_channels = ["C0123OPS"]"#.to_string(),
        r#"approval.officers = ["U0SECOFF1", "U0SECOFF2"]"#.to_string(),
        r#"ecs.poll_interval = "1s""#.to_string(),
        "console.enabled = true".to_string(),
        format!("console.load_balancer_arn = \"{}\"", alb::SIGNER),
        r#"console.slack_down_after = "2s""#.to_string(),
        format!("console.people = {people}"),
        svc.config(),
    ]
    .join("\n")
}

async fn start(svc: &SeededService) -> (TestApp, AlbStandIn) {
    let alb = AlbStandIn::start().await;
    let app = spawn_app_custom(
        &config(svc),
        &[],
        &[("DRBOT_TEST_ALB_KEYS_URL", &alb.keys_url())],
    )
    .await;
    alb.point_at(app.addr);
    (app, alb)
}

fn update_services(events: &[Value]) -> usize {
    events
        .iter()
        .filter(|e| e["kind"] == "aws.call" && e["detail"]["operation"] == "UpdateService")
        .count()
}

/// Signs in as `email` (the ALB's cookie) and waits for the console to say so.
async fn sign_in(browser: &Browser, alb: &AlbStandIn, email: &str) {
    browser.open(&alb.login_url(email)).await;
    browser
        .wait_for_text(&format!("signed in as {}", email.to_lowercase()), 15)
        .await;
}

#[tokio::test]
async fn with_slack_down_a_rollback_is_asked_refused_to_an_outsider_and_approved_once_in_the_console(
) {
    let svc = seed_service(3, 1).await;
    let (app, alb) = start(&svc).await;
    app.slack.fail("*", Failure::Unavailable);

    let browser = Browser::start().await;
    // Forged, expired and foreign sign-ins, and an unknown person: the console never opens.
    for (forge, said) in [
        ("key", "signature does not verify"),
        ("expired", "sign-in has expired"),
        ("signer", "signed by another load balancer"),
    ] {
        browser.open(&alb.forged_login_url(SAM, forge)).await;
        browser.wait_for_text(said, 10).await;
    }
    browser.open(&alb.login_url("eve@example.com")).await;
    browser
        .wait_for_text("not one of drbot's console people", 10)
        .await;
    sign_in(&browser, &alb, DANA).await;
    browser.type_into("#text", "/dr rollback api").await;
    browser.click("#composer button").await;
    // The plan is shown at once, from the outbox, waiting for Slack.
    browser.wait_for_text("A-1 · approval needed", 20).await;
    browser.wait_for_text("waiting for Slack", 5).await;
    browser
        .wait_for_text("Typed by the requester in drbot's web console", 5)
        .await;
    // Slack has failed for longer than slack_down_after: said on the page and in /readyz.
    browser.wait_for_text("Slack is down since", 20).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "Slack down never fails readiness");
    let said = ready.text().await.unwrap();
    assert!(said.contains("slack: down since"), "{said}");
    browser
        .screenshot(&repo_root().join("target/console-slack-down.png"))
        .await;

    // An outsider signs in and presses Approve: refused, nothing runs.
    sign_in(&browser, &alb, ALEX).await;
    browser.wait_for_text("A-1 · approval needed", 10).await;
    browser.click("button[data-action='drbot_approve']").await;
    browser
        .wait_for_text("Only security officers can approve A-1", 10)
        .await;
    let ignored = wait_for_event(&app, "approval.ignored").await;
    assert_eq!(ignored["actor"], "U0OUTSIDE");
    assert_eq!(ignored["detail"]["via"]["surface"], "console");
    assert_eq!(ignored["detail"]["via"]["email"], ALEX);
    assert_eq!(svc.task_definition().await, format!("{}:3", svc.family));

    // An officer (whose email the IdP spells in another case) approves: executed.
    sign_in(&browser, &alb, "SAM@example.com").await;
    browser.wait_for_text("A-1 · approval needed", 10).await;
    browser.click("button[data-action='drbot_approve']").await;
    let executed = wait_for_event(&app, "request.executed").await;
    assert_eq!(executed["detail"]["action_id"], "A-1");
    assert_eq!(
        executed["detail"]["via"]["email"], DANA,
        "an execution says the request was typed in the console, and by whom"
    );
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    let approved = wait_for_event(&app, "approval.approved").await;
    assert_eq!(approved["actor"], "U0SECOFF1");
    assert_eq!(approved["detail"]["via"]["surface"], "console");
    assert_eq!(approved["detail"]["via"]["email"], SAM);

    // The same click delivered twice (a retry), and a second approval: nothing runs again.
    let again = r#"const [n] = arguments; const h = {"content-type": "application/json", "x-drbot-csrf": state.csrf};
        const body = JSON.stringify({action_id: "drbot_approve", request: 1, nonce: n});
        const a = await (await fetch("/console/api/click", {method: "POST", headers: h, body})).json();
        const b = await (await fetch("/console/api/click", {method: "POST", headers: h, body})).json();
        return [a, b];"#;
    let answers = browser
        .run(
            &format!("return (async () => {{ {again} }})();"),
            json!(["00112233445566778899aabbccddeeff"]),
        )
        .await;
    assert!(
        answers[1]["answer"]
            .as_str()
            .unwrap_or("")
            .contains("already received"),
        "{answers}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = app.events().await;
    assert_eq!(
        update_services(&events),
        1,
        "one UpdateService, whatever was clicked"
    );
    assert!(events
        .iter()
        .filter(|e| e["kind"] == "command.accepted")
        .all(|e| e["detail"]["via"]["email"] == DANA));
    let requested = events
        .iter()
        .find(|e| e["kind"] == "approval.requested")
        .unwrap();
    assert_eq!(
        requested["detail"]["via"]["surface"], "console",
        "{requested}"
    );
    assert!(
        app.slack
            .calls("chat.postMessage")
            .iter()
            .all(|c| c.answer["ok"] != true),
        "nothing reached Slack while it was down"
    );

    // Slack answers again: what waited goes out in order, then what happened meanwhile.
    app.slack.recover("*");
    let mut posted = Vec::new();
    let summary_seen = app
        .run_time_until(|| {
            posted = app
                .slack
                .calls("chat.postMessage")
                .into_iter()
                .filter(|c| c.answer["ok"] == true && c.params["channel"] == OPS_CHANNEL)
                .map(|c| c.params["text"].as_str().unwrap_or("").to_string())
                .collect();
            posted
                .iter()
                .any(|t| t.contains("Slack did not answer drbot"))
        })
        .await;
    assert!(
        summary_seen,
        "no summary after Slack came back: {posted:#?}"
    );
    assert!(posted[0].contains("A-1"), "the request first: {posted:#?}");
    let summary = posted.last().unwrap();
    assert!(
        summary.contains("Slack did not answer drbot") && summary.contains(DANA),
        "the summary last: {posted:#?}"
    );
    assert!(summary.contains("`/dr rollback api`"), "{summary}");
    assert!(summary.contains("approved by <@U0SECOFF1>"), "{summary}");
    let executed_note = posted.iter().position(|t| t.contains("executed"));
    assert!(executed_note.is_some(), "{posted:#?}");
    let updates = app.slack.calls("chat.update");
    assert!(
        updates.iter().any(|c| c.answer["ok"] == true
            && c.params["text"].as_str().unwrap_or("").contains("executed")),
        "the request message is brought up to date"
    );
    browser.wait_for_text("answering", 20).await;
    browser.quit().await;
}

/// A request straight to drbot with this `x-amzn-oidc-data` (as if it came past the ALB).
async fn ask(app: &TestApp, token: Option<&str>, method: &str, path: &str) -> (u16, String) {
    let mut request = match method {
        "POST" => app
            .http
            .post(app.url(path))
            .header("origin", format!("http://{}", app.addr))
            .json(&json!({"channel": OPS_CHANNEL, "text": "/dr rollback api", "nonce": "00112233445566778899aabbccddeeff"})),
        _ => app.http.get(app.url(path)),
    };
    if let Some(token) = token {
        request = request.header("x-amzn-oidc-data", token);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test]
async fn forged_expired_foreign_and_unknown_sign_ins_and_cross_site_changes_change_nothing() {
    let svc = seed_service(3, 1).await;
    let (app, alb) = start(&svc).await;
    let exp = alb::now() + 600;
    let forger = alb::Key::new();
    let other_lb = {
        let mut h = alb::header(exp);
        h["signer"] =
            json!("arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/app/evil/1");
        h
    };
    let none_alg = {
        let mut h = alb::header(exp);
        h["alg"] = json!("none");
        h
    };
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no sign-in", None, 401),
        ("garbage", Some("not.a.jwt".into()), 401),
        (
            "signed by a forger's key",
            Some(forger.sign(&alb::header(exp), &alb::claims(SAM, exp))),
            401,
        ),
        (
            "expired",
            Some(alb.key.sign(
                &alb::header(alb::now() - 5),
                &alb::claims(SAM, alb::now() - 5),
            )),
            401,
        ),
        (
            "another load balancer",
            Some(alb.key.sign(&other_lb, &alb::claims(SAM, exp))),
            401,
        ),
        (
            "alg none",
            Some(alb.key.sign(&none_alg, &alb::claims(SAM, exp))),
            401,
        ),
        (
            "claims edited after signing",
            Some({
                let good = alb
                    .key
                    .sign(&alb::header(exp), &alb::claims("eve@example.com", exp));
                let mut parts: Vec<String> = good.split('.').map(str::to_string).collect();
                use base64::Engine;
                parts[1] = base64::engine::general_purpose::URL_SAFE
                    .encode(alb::claims(SAM, exp).to_string());
                parts.join(".")
            }),
            401,
        ),
        ("an unknown email", Some(alb.token("eve@example.com")), 403),
    ];
    for (what, token, status) in &cases {
        for (method, path) in [
            ("GET", "/console/"),
            ("GET", "/console/api/state"),
            ("POST", "/console/api/command"),
        ] {
            let (got, said) = ask(&app, token.as_deref(), method, path).await;
            assert_eq!(
                got, *status,
                "{what}: {method} {path} answered {got}: {said}"
            );
            assert!(
                !said.contains("eyJ"),
                "{what}: the answer never echoes a token: {said}"
            );
        }
    }

    // A good sign-in, but a change from another origin, or without the session's token.
    let token = alb.token(DANA);
    let page = app
        .http
        .get(app.url("/console/"))
        .header("x-amzn-oidc-data", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    // At /console too (no redirect), its script and style named from /console/.
    let bare = app
        .http
        .get(app.url("/console"))
        .header("x-amzn-oidc-data", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 200);
    assert!(bare
        .text()
        .await
        .unwrap()
        .contains("src=\"/console/console.js\""));
    // Outside /console, the console's sign-in is not asked: what drbot does not serve is 404.
    let elsewhere = app.http.post(app.url("/api/click")).send().await.unwrap();
    assert_eq!(elsewhere.status(), 404);
    let cross_site = app
        .http
        .post(app.url("/console/api/command"))
        .header("x-amzn-oidc-data", &token)
        .header("origin", "https://evil.example")
        .json(&json!({"channel": OPS_CHANNEL, "text": "/dr rollback api", "nonce": "00112233445566778899aabbccddeeff"}))
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let (no_token, said) = ask(&app, Some(&token), "POST", "/console/api/command").await;
    assert_eq!(no_token, 403, "{said}");
    assert!(said.contains("session's token"), "{said}");
    // Another person's session token does not do either.
    let state = app
        .http
        .get(app.url("/console/api/state"))
        .header("x-amzn-oidc-data", alb.token(ALEX))
        .send()
        .await
        .unwrap();
    let cookie = state.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let alex: Value = state.json().await.unwrap();
    let borrowed = app
        .http
        .post(app.url("/console/api/command"))
        .header("x-amzn-oidc-data", &token)
        .header("origin", format!("http://{}", app.addr))
        .header("cookie", &cookie)
        .header("x-drbot-csrf", alex["csrf"].as_str().unwrap())
        .json(&json!({"channel": OPS_CHANNEL, "text": "/dr rollback api", "nonce": "00112233445566778899aabbccddeeff"}))
        .send()
        .await
        .unwrap();
    assert_eq!(borrowed.status(), 403, "Alex's session is not Dana's");

    tokio::time::sleep(Duration::from_millis(500)).await;
    let events = app.events().await;
    assert!(
        !events
            .iter()
            .any(|e| e["kind"].as_str().unwrap_or("").starts_with("command.")
                || e["kind"].as_str().unwrap_or("").starts_with("approval.")),
        "nothing was recorded or asked: {events:#?}"
    );
    assert_eq!(svc.task_definition().await, format!("{}:3", svc.family));
    // The refusals are logged, and no token ever is.
    assert!(app
        .logs()
        .iter()
        .any(|l| l.contains("console: sign-in refused")));
    assert!(!app.logs().iter().any(|l| l.contains(&token)));
}

#[tokio::test]
async fn a_key_host_other_than_this_machine_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let svc = seed_service(2, 1).await;
    std::fs::write(
        dir.path().join("drbot.toml"),
        with_test_lease(&config(&svc)),
    )
    .unwrap();
    let slack = SlackStandIn::start().await;
    let started = start_binary(
        dir.path(),
        &slack,
        &[],
        &[(
            "DRBOT_TEST_ALB_KEYS_URL".to_string(),
            "https://keys.attacker.example".to_string(),
        )],
    )
    .await;
    let Err(said) = started else {
        panic!("drbot started with a key host elsewhere");
    };
    assert!(said.contains("DRBOT_TEST_ALB_KEYS_URL"), "{said}");
}

/// A signed-in person's console session over plain HTTP, as the page keeps it: the ALB's
/// token on every request, the session cookie and its token on every change.
struct Session<'a> {
    app: &'a TestApp,
    token: String,
    cookie: String,
    csrf: String,
}

impl<'a> Session<'a> {
    async fn open(app: &'a TestApp, alb: &AlbStandIn, email: &str) -> Session<'a> {
        let token = alb.token(email);
        let answer = app
            .http
            .get(app.url("/console/api/state"))
            .header("x-amzn-oidc-data", &token)
            .send()
            .await
            .unwrap();
        let cookie = answer.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
            "{cookie}"
        );
        let cookie = cookie.split(';').next().unwrap().to_string();
        let state: Value = answer.json().await.unwrap();
        Session {
            app,
            token,
            cookie,
            csrf: state["csrf"].as_str().unwrap().to_string(),
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let nonce = format!(
            "{:032x}",
            TRIGGER_NONCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut body = body;
        body["nonce"] = json!(nonce);
        let answer = self
            .app
            .http
            .post(self.app.url(path))
            .header("x-amzn-oidc-data", &self.token)
            .header("origin", format!("http://{}", self.app.addr))
            .header("cookie", &self.cookie)
            .header("x-drbot-csrf", &self.csrf)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        answer.json().await.unwrap()
    }

    /// What the console answered a change: its answer, else its error.
    async fn said(&self, path: &str, body: Value) -> String {
        let answer = self.post(path, body).await;
        answer["answer"]
            .as_str()
            .or(answer["error"].as_str())
            .unwrap_or_default()
            .to_string()
    }

    async fn command(&self, channel: &str, text: &str) -> String {
        let body = json!({"channel": channel, "text": text});
        self.said("/console/api/command", body).await
    }

    async fn click(&self, action: &str, request: i64) -> String {
        let body = json!({"action_id": action, "request": request});
        self.said("/console/api/click", body).await
    }

    /// `path` of the console, as this person's page asks for it.
    async fn get(&self, path: &str) -> reqwest::Response {
        let request = self.app.http.get(self.app.url(path));
        let signed = request.header("x-amzn-oidc-data", &self.token);
        signed.header("cookie", &self.cookie).send().await.unwrap()
    }

    /// The messages of `channel` as the console shows them.
    async fn channel(&self, channel: &str) -> Vec<Value> {
        let path = format!("/console/api/state?channel={channel}");
        let state: Value = self.get(&path).await.json().await.unwrap();
        state["messages"].as_array().unwrap().clone()
    }
}

static TRIGGER_NONCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Waits until the console shows request `label`'s message in `channel`.
async fn wait_for_request(session: &Session<'_>, channel: &str, label: &str) -> Value {
    for _ in 0..150 {
        if let Some(m) = session.channel(channel).await.into_iter().find(|m| {
            m["text"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("{label} · approval needed"))
        }) {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the console never showed {label}: {:#?}",
        session.channel(channel).await
    );
}

#[tokio::test]
async fn the_consoles_gate_is_slacks_gate_four_eyes_expiry_and_reject() {
    let svc = seed_service(3, 1).await;
    let (app, alb) = start(&svc).await;
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert!(ready.text().await.unwrap().contains("slack: answering"));
    let dana = Session::open(&app, &alb, DANA).await;
    let sam = Session::open(&app, &alb, SAM).await;

    // Outside a command channel: refused with the way to do it right.
    let said = dana.command(OTHER_CHANNEL, "/dr rollback api").await;
    assert!(said.contains("C0123OPS"), "{said}");
    let said = dana.command(OPS_CHANNEL, "please roll back").await;
    assert!(said.contains("/dr help"), "{said}");

    let said = dana.command(OPS_CHANNEL, "/dr rollback api").await;
    assert!(said.contains("rollback api"), "{said}");
    let request = wait_for_request(&dana, OPS_CHANNEL, "A-1").await;
    assert_eq!(request["request"], 1);
    // The requester's own approval: four eyes.
    let said = dana.click("drbot_approve", 1).await;
    assert!(
        said.contains("You asked for A-1, so you cannot approve it"),
        "{said}"
    );
    // Past its expiry, an officer's approval does nothing.
    app.advance_clock(Duration::from_secs(16 * 60));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let said = sam.click("drbot_approve", 1).await;
    assert!(said.contains("A-1") && said.contains("expired"), "{said}");

    // A new request, rejected by the officer.
    dana.command(OPS_CHANNEL, "/dr rollback api").await;
    wait_for_request(&dana, OPS_CHANNEL, "A-2").await;
    let said = sam.click("drbot_reject", 2).await;
    assert!(said.contains("A-2 is rejected"), "{said}");
    let said = sam.click("drbot_approve", 2).await;
    assert!(said.contains("already rejected"), "{said}");
    let said = sam.click("drbot_postmortem", 2).await;
    assert!(said.contains("acts only in Slack"), "{said}");

    // Home (readiness, pending approvals) and the records are there too, records without
    // any script.
    let state: Value = sam.get("/console/api/state").await.json().await.unwrap();
    assert_eq!(state["home"]["type"], "home", "{state}");
    assert_eq!(state["you"]["officer"], true);
    let report = sam.get("/console/report.html").await;
    assert_eq!(report.status(), 200);
    let csp = report.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        !csp.contains("script-src") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        report.text().await.unwrap().contains("A-2"),
        "the report lists the requests"
    );

    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = app.events().await;
    assert_eq!(update_services(&events), 0, "nothing was changed");
    let rejected = events
        .iter()
        .find(|e| e["kind"] == "approval.rejected")
        .unwrap();
    assert_eq!(rejected["detail"]["via"]["email"], SAM);

    // Work queued behind the acknowledgement says where it came from too: an incident.
    dana.command(
        OPS_CHANNEL,
        "/dr incident open code-corruption Bad deploy of api",
    )
    .await;
    let opened = wait_for_event(&app, "incident.opened").await;
    assert_eq!(opened["detail"]["via"]["email"], DANA, "{opened}");
    assert_eq!(svc.task_definition().await, format!("{}:3", svc.family));
}
