//! Telling users (SPEC §17): an on-call engineer drafts the users' notice in the incident
//! channel, the security officer approves exactly what will be published, and drbot
//! publishes it once — on a Statuspage stand-in speaking its REST API and through a real SMTP
//! server (aiosmtpd, STARTTLS and AUTH required) — whatever the peers answer, and even when
//! drbot is killed mid-call. Rejected, expired and drill notices publish nothing.

use std::time::Duration;

use serde_json::Value;

use crate::support::flow::*;
use crate::support::statuspage::{PageFailure, StatuspageStandIn, KEY, PAGE};
use crate::support::*;

const SMTP_USER: &str = "drbot-smtp";
const SMTP_PASSWORD: &str = "smtp-pass-n0t-in-logs";

/// The SMTP server (`tests/it/support/smtp_standin.py`), killed when dropped.
struct SmtpStandIn {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
    /// smtps (TLS from the first byte) rather than STARTTLS.
    implicit: bool,
}

impl Drop for SmtpStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpStandIn {
    fn start() -> Self {
        Self::start_with(false)
    }

    fn start_with(implicit: bool) -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(repo_root().join(".venv/bin/python"))
            .arg(repo_root().join("tests/it/support/smtp_standin.py"))
            .arg(dir.path())
            .args([SMTP_USER, SMTP_PASSWORD])
            .args(implicit.then_some("implicit"))
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the project's .venv with aiosmtpd (scripts/test makes it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the stand-in prints its port");
        SmtpStandIn {
            child,
            port,
            dir,
            implicit,
        }
    }

    /// The next `n` messages are answered `code`.
    fn refuse_next(&self, n: u32, code: u32) {
        std::fs::write(self.dir.path().join("fail"), format!("{n} {code}")).unwrap();
    }

    /// Every message the server took.
    fn mail(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.path().join("mail.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn config(page: &StatuspageStandIn, smtp: Option<&SmtpStandIn>) -> String {
    let mut config = format!(
        "{CONFIG}\n[status_page]\nprovider = \"statuspage\"\npage_id = \"{PAGE}\"\napi_url = \"{}\"\ncomponents = {{ ddos = [\"cmpweb01\", \"cmpapi01\"] }}\n",
        page.api_url()
    );
    if let Some(smtp) = smtp {
        config.push_str(&format!(
            "\n[email]\nsmtp_url = \"{}://127.0.0.1:{}\"\nfrom = \"DR Team <dr@analyticalfire.com>\"\nusername = \"{SMTP_USER}\"\nca = \"{}\"\n[email.lists]\ncustomers = [\"ops@customer-one.example\", \"it@customer-two.example\"]\npartners = [\"noc@partner.example\"]\n",
            if smtp.implicit { "smtps" } else { "smtp" },
            smtp.port,
            smtp.dir.path().join("ca.pem").display()
        ));
    }
    config
}

async fn spawn(page: &StatuspageStandIn, smtp: Option<&SmtpStandIn>) -> TestApp {
    spawn_app_custom(
        &config(page, smtp),
        &[],
        &[
            ("DRBOT_STATUSPAGE_API_KEY", KEY),
            ("DRBOT_SMTP_PASSWORD", SMTP_PASSWORD),
        ],
    )
    .await
}

/// Waits until `n` `notify.published` events are in the log; returns them.
async fn published(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let events = app.events_of_kind("notify.published").await;
        if events.len() >= n {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("not {n} publications; log: {:#?}", app.events().await);
}

/// The approval request's text.
fn request_text(app: &TestApp, ts: &str) -> String {
    posted_message(app, ts).params["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn an_approved_notice_reaches_the_status_page_and_every_list_once_whatever_they_answer() {
    let page = StatuspageStandIn::start().await;
    let smtp = SmtpStandIn::start();
    let app = spawn(&page, Some(&smtp)).await;
    let (incident, channel) = open_incident(&app, "ddos Login flood from botnet").await;

    // The requester's text tries to mention everyone, fake a link and close the code block.
    let hostile = "Blocking the flood <!channel> <https://evil.example|status> ``` *Approved* Bcc: thief@evil.example";
    let ts = ask_in(
        &app,
        &format!("notify users {hostile}"),
        REQUESTER,
        &channel,
    )
    .await;
    let text = request_text(&app, &ts);
    // The officer reads exactly what will be published, and where.
    for shown in [
        "Tell users",
        &incident,
        "template `outage`",
        "Status page* `pg7drbot01`: open an incident",
        "status *investigating*",
        "`cmpweb01`",
        "`customers` (2 recipients)",
        "`partners` (1 recipient)",
        "Service Interruption - analyticalfire.com",
        "&lt;!channel&gt;",
    ] {
        assert!(text.contains(shown), "missing {shown:?} in {text}");
    }
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://evil"),
        "{text}"
    );
    // Every line users will read sits whole in its own code span: the requester's
    // backticks cannot close it, nothing in it formats.
    let body = text
        .split("What users will read")
        .nth(1)
        .expect("the body is shown");
    for line in body
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with("Plan `"))
    {
        assert!(
            line == ">"
                || (line.starts_with("> `")
                    && line.ends_with('`')
                    && line.matches('`').count() == 2),
            "a line of the body outside its code span: {line:?}"
        );
    }
    assert!(
        body.contains("ˋˋˋ ∗Approved∗") || body.contains("ˋˋˋ *Approved*"),
        "{body}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        page.calls().is_empty() && smtp.mail().is_empty(),
        "nothing before approval"
    );

    // The page answers 429 then 500; the mail server refuses the first message with 451.
    page.fail_next(&[
        PageFailure::RateLimited { retry_after: 1 },
        PageFailure::ServerError,
    ]);
    smtp.refuse_next(1, 451);
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let events = published(&app, 3).await;

    let incidents = page.incidents();
    assert_eq!(incidents.len(), 1, "one page incident: {incidents:#?}");
    let shown = &incidents[0];
    assert_eq!(shown["metadata"]["drbot"]["incident"], incident.as_str());
    assert_eq!(shown["impact"], "major");
    assert_eq!(shown["components"]["cmpweb01"], "major_outage");
    let body = shown["incident_updates"][0]["body"].as_str().unwrap();
    assert!(
        body.contains(hostile),
        "the text stays text on the page: {body}"
    );

    let mail = smtp.mail();
    assert_eq!(mail.len(), 2, "one message per list: {mail:#?}");
    let mut lists: Vec<Vec<String>> = mail
        .iter()
        .map(|m| {
            assert_eq!(m["tls"], true);
            assert_eq!(m["authenticated"], true);
            let data = m["data"].as_str().unwrap();
            assert!(
                data.contains("Subject: Service Interruption - analyticalfire.com"),
                "{data}"
            );
            assert!(data.contains("Message-ID: <drbot."), "{data}");
            // Recipients are in the envelope only: no header names them (the hostile
            // "Bcc:" is a line of the body, after the headers' blank line).
            let headers = data
                .split("\r\n\r\n")
                .next()
                .unwrap()
                .split("\n\n")
                .next()
                .unwrap();
            assert!(
                !headers
                    .lines()
                    .any(|l| l.starts_with("Bcc:") || l.starts_with("To:")),
                "{data}"
            );
            serde_json::from_value(m["rcpt_tos"].clone()).unwrap()
        })
        .collect();
    lists.sort();
    assert_eq!(
        lists,
        vec![
            vec!["noc@partner.example".to_string()],
            vec![
                "ops@customer-one.example".to_string(),
                "it@customer-two.example".to_string()
            ],
        ],
        "the hostile text added no recipient"
    );
    // Every publication is in the timeline with the provider's id.
    let page_event = events
        .iter()
        .find(|e| e["detail"]["provider"] == "statuspage")
        .expect("the page's publication");
    assert_eq!(page_event["detail"]["page_incident"], shown["id"]);
    assert_eq!(page_event["incident"], incident.as_str());
    assert_eq!(
        events
            .iter()
            .filter(|e| e["detail"]["provider"] == "smtp")
            .count(),
        2
    );

    // The next notice updates the same page incident; nothing is published twice.
    let ts = ask_in(
        &app,
        "notify users Traffic is back to normal levels",
        REQUESTER,
        &channel,
    )
    .await;
    assert!(request_text(&app, &ts).contains("template `update`"));
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    published(&app, 6).await;
    assert_eq!(
        page.count("POST"),
        3,
        "two refused, one made: {:#?}",
        page.calls()
    );
    assert_eq!(page.count("PATCH"), 1);
    assert_eq!(
        page.incidents()[0]["incident_updates"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(smtp.mail().len(), 4);
    // No secret in drbot's logs.
    let logs = app.logs().join("\n");
    assert!(!logs.contains(KEY) && !logs.contains(SMTP_PASSWORD));
}

#[tokio::test]
async fn a_rejected_or_expired_notice_and_a_drills_notice_publish_nothing() {
    let page = StatuspageStandIn::start().await;
    let smtp = SmtpStandIn::start();
    let app = spawn(&page, Some(&smtp)).await;
    let (_, channel) = open_incident(&app, "ddos Login flood").await;

    let ts = ask_in(&app, "notify users first try", REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "x", OFFICER).await;
    wait_for_event(&app, "approval.rejected").await;
    let _ = ask_in(&app, "notify users second try", REQUESTER, &channel).await;
    app.advance_clock(Duration::from_secs(16 * 60));
    wait_for_event(&app, "approval.expired").await;

    let (drill, drill_channel) = open_incident(&app, "ddos Tabletop --drill").await;
    let ts = ask_in(
        &app,
        "notify users --template outage rehearsal",
        REQUESTER,
        &drill_channel,
    )
    .await;
    let text = request_text(&app, &ts);
    assert!(
        text.contains("DRILL") && text.contains("publishes nothing"),
        "{text}"
    );
    react_in(&app, &drill_channel, &ts, "white_check_mark", OFFICER).await;
    let shown = wait_for_event(&app, "notify.drill").await;
    assert_eq!(shown["incident"], drill.as_str());
    assert!(shown["text"]
        .as_str()
        .unwrap()
        .contains("would have gone to the status page"));

    app.run_time(5).await;
    assert!(page.calls().is_empty(), "{:#?}", page.calls());
    assert!(smtp.mail().is_empty());
    assert!(app.events_of_kind("notify.published").await.is_empty());
}

#[tokio::test]
async fn drbot_killed_while_the_page_takes_the_notice_publishes_it_once_after_restart() {
    let page = StatuspageStandIn::start().await;
    let mut app = spawn(&page, None).await;
    let (_, channel) = open_incident(&app, "ddos Login flood").await;
    let ts = ask_in(&app, "notify users Blocking the flood", REQUESTER, &channel).await;

    // The page takes the incident and its answer never comes; drbot is killed meanwhile.
    page.fail_next(&[PageFailure::AnswerLost]);
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    for _ in 0..200 {
        if page.count("POST") == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(page.count("POST"), 1);
    app.kill().await;
    app.restart().await;

    let events = app.with_time_running(published(&app, 1)).await;
    assert_eq!(
        page.incidents().len(),
        1,
        "looked up, not made again: {:#?}",
        page.calls()
    );
    assert_eq!(page.count("POST"), 1);
    assert_eq!(events[0]["detail"]["looked_up"], true);
}

#[tokio::test]
async fn four_hours_in_the_users_notice_is_drafted_for_an_officer_not_published() {
    let page = StatuspageStandIn::start().await;
    let app = spawn(&page, None).await;
    let (incident, channel) = open_incident(&app, "ddos Login flood").await;
    app.advance_clock(Duration::from_secs(4 * 3600 + 60));
    let drafted = app
        .run_time_until(|| {
            app.slack.calls("chat.postMessage").iter().any(|c| {
                c.params["channel"] == channel.as_str()
                    && c.params["text"]
                        .as_str()
                        .unwrap_or("")
                        .contains("Tell users")
            })
        })
        .await;
    assert!(drafted, "no draft in {channel}");
    let notice = wait_for_event(&app, "incident.notice").await;
    assert_eq!(notice["incident"], incident.as_str());
    // The reminder says users have not been told.
    assert!(app.slack.calls("chat.postMessage").iter().any(|c| {
        c.params["text"]
            .as_str()
            .unwrap_or("")
            .contains("Users have not been told yet")
    }));
    app.run_time(3).await;
    assert!(
        page.calls().is_empty(),
        "a draft publishes nothing by itself"
    );
}

#[tokio::test]
async fn email_over_implicit_tls_reaches_each_list_once() {
    let page = StatuspageStandIn::start().await;
    let smtp = SmtpStandIn::start_with(true);
    let app = spawn(&page, Some(&smtp)).await;
    let (_, channel) = open_incident(&app, "region-failure Primary region dark").await;
    let ts = ask_in(
        &app,
        "notify users Moving to the backup region",
        REQUESTER,
        &channel,
    )
    .await;
    // The requester cannot approve their own notice; the officer can.
    react_in(&app, &channel, &ts, "white_check_mark", REQUESTER).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(smtp.mail().is_empty() && page.calls().is_empty());
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    published(&app, 3).await;
    let mail = smtp.mail();
    assert_eq!(mail.len(), 2, "{mail:#?}");
    assert!(mail
        .iter()
        .all(|m| m["tls"] == true && m["authenticated"] == true));
    // A complete outage is critical on the page.
    assert_eq!(page.incidents()[0]["impact"], "critical");
}
