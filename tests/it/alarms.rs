//! Alarms open incidents (SPEC §16): a CloudWatch alarm published to moto's SNS topic lands
//! in the SQS queue subscribed to it; drbot long-polls the queue, proposes the incident in
//! the ops channel, a responder's click opens it, the alarm's repeats and its return to OK
//! land in the incident's timeline — and a message delivered twice, or waiting in the queue
//! while drbot is down, is recorded exactly once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::aws::{alarm_json, between, call, publish, topic_and_queue, unique};
use crate::support::flow::*;
use crate::support::*;

/// An SNS envelope sent straight to the queue: what a second delivery of one message is.
async fn deliver(queue: &str, envelope: &Value) {
    call(
        "sqs",
        &[
            ("Action", "SendMessage"),
            ("QueueUrl", queue),
            ("MessageBody", &envelope.to_string()),
        ],
    )
    .await;
}

fn envelope(topic: &str, message_id: &str, message: &str) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic,
        "Subject": "ALARM",
        "Message": message,
        "Timestamp": chrono::Utc::now().to_rfc3339(),
        "SignatureVersion": "1",
        "Signature": "EXAMPLE",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
}

fn config(topic: &str, queue: &str, open: &str) -> String {
    format!(
        "{CONFIG}\n[alarms]\nqueue = \"{queue}\"\ntopics = [\"{topic}\"]\n\n[[alarms.routes]]\nalarm = \"aifai-api-*\"\nscenario = \"code-corruption\"\nopen = \"{open}\"\nends_recovery = true\n"
    )
}

async fn wait_for_n(app: &TestApp, kind: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let found = app.events_of_kind(kind).await;
        if found.len() >= n {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {n} `{kind}` events; log: {:#?}",
        app.events().await
    );
}

fn click(message_id: &str, action: &str, user: &str, ts: &str) -> Value {
    let button = json!({"type": "button", "action_id": action, "block_id": "b1", "value": message_id, "action_ts": "1764220000.1"});
    let container = json!({"type": "message", "message_ts": ts, "channel_id": OPS_CHANNEL, "is_ephemeral": false});
    json!({
        "type": "block_actions", "actions": [button], "container": container,
        "message": {"ts": ts, "text": "alarm"}, "channel": {"id": OPS_CHANNEL, "name": "ops"},
        "user": {"id": user, "team_id": "T0DRBOT"}, "team": {"id": "T0DRBOT"},
        "api_app_id": "A0DRBOT", "token": "x", "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.test/actions/T0DRBOT/1/abc",
    })
}

#[tokio::test]
async fn an_alarm_is_proposed_a_click_opens_the_incident_and_its_ok_closes_the_loop() {
    let (topic, queue) = topic_and_queue().await;
    let app = spawn_app_with(&config(&topic, &queue, "propose")).await;
    let alarm = format!("aifai-api-5xx-{}", std::process::id());

    // CloudWatch publishes the alarm; it reaches the queue through the subscription.
    publish(
        &topic,
        &alarm_json(
            &alarm,
            "ALARM",
            // Text anyone who can edit the alarm writes: it stays text in Slack.
            "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0). <!channel> <https://evil.example/approve|Approve here>",
        ),
    )
    .await;
    let proposed = wait_for_event(&app, "alarm.proposed").await;
    let message_id = proposed["detail"]["message_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(proposed["detail"]["alarm"], alarm.as_str());
    let post = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| c.params["text"].as_str().unwrap_or("").contains("is ALARM"))
        .expect("the proposal is posted");
    assert_eq!(post.params["channel"], OPS_CHANNEL);
    let text = post.params["text"].as_str().unwrap();
    assert!(
        text.contains("Threshold Crossed") && text.contains("RTO"),
        "{text}"
    );
    assert!(
        text.contains("&lt;!channel&gt;") && !text.contains("<!channel>"),
        "{text}"
    );
    assert!(!text.contains("<https://evil.example"), "{text}");
    let blocks = post.params["blocks"].to_string();
    assert!(
        blocks.contains("alarm_open") && blocks.contains("alarm_dismiss"),
        "{blocks}"
    );
    assert!(
        app.events_of_kind("incident.opened").await.is_empty(),
        "an alarm alone opens nothing"
    );
    assert!(
        app.events_of_kind("request.created").await.is_empty(),
        "and runs nothing"
    );

    // The same message delivered again (SQS delivers at least once) adds nothing; the
    // alarm in ALARM again while its proposal waits is recorded with it, not proposed again.
    let ts = post.answer["ts"].as_str().unwrap().to_string();
    publish(&topic, &alarm_json(&alarm, "ALARM", "still failing")).await;
    wait_for_event(&app, "alarm.repeated").await;
    assert_eq!(app.events_of_kind("alarm.proposed").await.len(), 1);

    // A responder opens the incident; a second click (another officer) is told it was.
    let response = interact(&app, &click(&message_id, "alarm_open", REQUESTER, &ts)).await;
    assert_eq!(response.status(), 200);
    let opened = wait_for_event(&app, "incident.opened").await;
    let incident = opened["incident"].as_str().unwrap().to_string();
    assert_eq!(
        opened["detail"]["alarm"]["name"],
        alarm.as_str(),
        "{opened}"
    );
    let declared = opened["detail"]["alarm"]["declared_secs"].as_i64().unwrap();
    assert!((0..60).contains(&declared), "{opened}");
    interact(&app, &click(&message_id, "alarm_open", OFFICER, &ts)).await;
    let told = wait_for_ephemeral(&app, OFFICER).await;
    assert!(
        told.contains("already opened") && told.contains(REQUESTER),
        "{told}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.events_of_kind("incident.opened").await.len(), 1);

    // Its repeats land in the incident's timeline; its OK ends the measured recovery.
    publish(&topic, &alarm_json(&alarm, "ALARM", "worse")).await;
    let repeats = wait_for_n(&app, "alarm.repeated", 2).await;
    assert!(
        repeats.iter().any(|r| r["incident"] == incident.as_str()),
        "{repeats:?}"
    );
    publish(
        &topic,
        &alarm_json(&alarm, "OK", "Threshold Crossed: back under"),
    )
    .await;
    let ok = wait_for_event(&app, "alarm.ok").await;
    assert_eq!(ok["incident"], incident.as_str(), "{ok}");
    assert_eq!(ok["detail"]["ends_recovery"], true, "{ok}");
    assert!(ok["detail"]["recovery_secs"].as_i64().is_some(), "{ok}");
    let said = app.slack.calls("chat.postMessage").iter().any(|c| {
        c.params["text"]
            .as_str()
            .unwrap_or("")
            .contains("back to OK")
    });
    assert!(said, "the incident channel is told");

    // Resolved: the recovery the alarm measured, and the time to declare in the review.
    let channel = opened["channel"].as_str().unwrap().to_string();
    app.slash("incident resolve back up")
        .in_channel(&channel)
        .reply()
        .await;
    let resolved = wait_for_event(&app, "incident.resolved").await;
    let record = resolved["text"].as_str().unwrap();
    assert!(
        record.contains("Measured recovery (until the alarm was back to OK)"),
        "{record}"
    );
    assert!(
        record.contains(&format!("Declared from alarm `{alarm}`")),
        "{record}"
    );
    let json = app.cli(&["report", "--format", "json"]).await;
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["declare"]["count"], 1, "{report}");
    let md = String::from_utf8(app.cli(&["report", "--format", "md"]).await.stdout).unwrap();
    assert!(
        md.contains("**Time to declare:** 1 incident(s) declared from alarms"),
        "{md}"
    );

    // The same message again, straight into the queue: nothing more.
    let again = envelope(
        &topic,
        &message_id,
        &alarm_json(&alarm, "ALARM", "replayed"),
    );
    let before = app.events().await.len();
    deliver(&queue, &again).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = app.events().await;
    assert_eq!(after.len(), before, "{:#?}", &after[before..]);
}

#[tokio::test]
async fn an_auto_route_opens_the_incident_at_once_and_says_the_alarm_opened_it() {
    let (topic, queue) = topic_and_queue().await;
    let app = spawn_app_with(&config(&topic, &queue, "auto")).await;
    let alarm = format!("aifai-api-down-{}", std::process::id());
    publish(&topic, &alarm_json(&alarm, "ALARM", "Threshold Crossed")).await;
    let opened = wait_for_event(&app, "incident.opened").await;
    assert_eq!(opened["detail"]["alarm"]["name"], alarm.as_str());
    assert_eq!(opened["detail"]["scenario"], "code-corruption");
    let announced = app.slack.calls("chat.postMessage").iter().any(|c| {
        c.params["text"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("opened by alarm `{alarm}`"))
    });
    assert!(announced, "{:#?}", app.slack.calls("chat.postMessage"));
    // Nobody but the officers is invited (an alarm is not a Slack user).
    let invites = app.slack.wait_for("conversations.invite", 1).await;
    assert!(!invites[0].params["users"]
        .as_str()
        .unwrap_or("")
        .contains("drbot"));
}

#[tokio::test]
async fn alarms_waiting_in_the_queue_while_drbot_is_down_are_each_recorded_once() {
    let (topic, queue) = topic_and_queue().await;
    let mut app = spawn_app_with(&config(&topic, &queue, "propose")).await;
    app.kill().await;
    for n in 0..3 {
        publish(
            &topic,
            &alarm_json(
                &format!("aifai-api-{n}-{}", std::process::id()),
                "ALARM",
                "down",
            ),
        )
        .await;
    }
    // A message of another topic, and one that is not an alarm: refused, changing nothing.
    deliver(
        &queue,
        &envelope(
            "arn:aws:sns:us-east-1:123456789012:someone-else",
            "foreign-1",
            &alarm_json("aifai-api-x", "ALARM", "x"),
        ),
    )
    .await;
    deliver(&queue, &json!({"hello": "world"})).await;
    app.restart().await;
    let proposed = wait_for_n(&app, "alarm.proposed", 3).await;
    let refused = wait_for_n(&app, "alarm.refused", 2).await;
    assert!(
        refused
            .iter()
            .any(|r| r["text"].as_str().unwrap_or("").contains("is not one of")),
        "{refused:?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        app.events_of_kind("alarm.proposed").await.len(),
        3,
        "{proposed:?}"
    );
    // A responder dismisses one: recorded, its message says so, nothing is opened.
    let first = &proposed[0];
    let message_id = first["detail"]["message_id"].as_str().unwrap();
    let post = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| c.params["blocks"].to_string().contains(message_id))
        .expect("its proposal");
    let ts = post.answer["ts"].as_str().unwrap().to_string();
    interact(&app, &click(message_id, "alarm_dismiss", OFFICER, &ts)).await;
    let dismissed = wait_for_event(&app, "alarm.dismissed").await;
    assert_eq!(dismissed["actor"], OFFICER);
    let updated = app.slack.wait_for("chat.update", 1).await;
    assert!(
        updated[0].params["text"]
            .as_str()
            .unwrap()
            .contains("dismissed by"),
        "{:?}",
        updated[0].params
    );
    assert!(app.events_of_kind("incident.opened").await.is_empty());

    // The queue is empty: each message was deleted once recorded.
    let left = call(
        "sqs",
        &[
            ("Action", "GetQueueAttributes"),
            ("QueueUrl", &queue),
            ("AttributeName.1", "All"),
        ],
    )
    .await;
    assert!(
        left.contains("<Name>ApproximateNumberOfMessages</Name><Value>0</Value>"),
        "{left}"
    );
}

/// SNS's side of HTTPS deliveries (`tests/it/support/sns_standin.py`): its signing
/// certificate over HTTPS, and a signer.
struct SnsStandIn {
    child: std::process::Child,
    https: u16,
    http: u16,
    dir: tempfile::TempDir,
}

impl Drop for SnsStandIn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SnsStandIn {
    fn start() -> Self {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new(repo_root().join(".venv/bin/python"))
            .arg(repo_root().join("tests/it/support/sns_standin.py"))
            .arg(dir.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("the project's .venv (scripts/test makes it)");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let ports: Vec<u16> = line
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        SnsStandIn {
            child,
            https: ports[0],
            http: ports[1],
            dir,
        }
    }

    /// `message` signed with SignatureVersion `version` (by `key`: "sns" or "forger").
    async fn sign(&self, message: &Value, version: &str, key: &str) -> Value {
        reqwest::Client::new()
            .post(format!(
                "http://127.0.0.1:{}/sign?version={version}&key={key}",
                self.http
            ))
            .json(message)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

async fn post_sns(app: &TestApp, body: &str) -> (u16, String) {
    let answer = app
        .http
        .post(format!("http://{}/aws/sns", app.addr))
        .header("content-type", "text/plain; charset=UTF-8")
        .header("x-amz-sns-message-type", "Notification")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

fn notification(topic: &str, id: &str, alarm: &str, at: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "Type": "Notification",
        "MessageId": id,
        "TopicArn": topic,
        "Subject": "ALARM: \"aifai-api-5xx\" in US East (N. Virginia)",
        "Message": alarm_json(alarm, "ALARM", "Threshold Crossed"),
        "Timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
    })
}

#[tokio::test]
async fn https_deliveries_are_taken_only_when_sns_signed_them_for_a_configured_topic() {
    let sns = SnsStandIn::start();
    let topic_xml = call(
        "sns",
        &[
            ("Action", "CreateTopic"),
            ("Name", &unique("alerts").replace('_', "-")),
        ],
    )
    .await;
    let topic = between(&topic_xml, "TopicArn").to_string();
    let config = format!(
        "{CONFIG}\n[alarms]\nhttps = true\ntopics = [\"{topic}\"]\n\n[[alarms.routes]]\nalarm = \"aifai-api-*\"\nscenario = \"code-corruption\"\n"
    );
    let base = format!("https://localhost:{}/", sns.https);
    let ca = sns.dir.path().join("ca.pem");
    let app = spawn_app_custom(
        &config,
        &[],
        &[
            ("DRBOT_TEST_SNS_CERTS", &base),
            ("DRBOT_TEST_SNS_CA", ca.to_str().unwrap()),
        ],
    )
    .await;
    let now = chrono::Utc::now();
    let alarm = format!("aifai-api-5xx-{}", std::process::id());

    // Signed by SNS, versions 1 (SHA1withRSA) and 2 (SHA256withRSA): taken in.
    let v1 = sns
        .sign(&notification(&topic, "https-v1", &alarm, now), "1", "sns")
        .await;
    assert_eq!(post_sns(&app, &v1.to_string()).await.0, 200);
    wait_for_event(&app, "alarm.proposed").await;
    let v2 = sns
        .sign(&notification(&topic, "https-v2", &alarm, now), "2", "sns")
        .await;
    assert_eq!(post_sns(&app, &v2.to_string()).await.0, 200);
    let before = app.events().await.len();

    // Everything else is refused with 4xx and changes nothing.
    let mut refused = Vec::new();
    // The same message again: a replay.
    refused.push(("replayed", post_sns(&app, &v1.to_string()).await));
    // Its alarm changed after SNS signed it.
    let mut tampered = v2.clone();
    tampered["Message"] = json!(alarm_json(&alarm, "OK", "all fine, nothing to see"));
    refused.push(("tampered", post_sns(&app, &tampered.to_string()).await));
    // Signed by someone else's key, pointing at SNS's certificate.
    let forged = sns
        .sign(
            &notification(&topic, "forged-1", &alarm, now),
            "2",
            "forger",
        )
        .await;
    refused.push(("forged", post_sns(&app, &forged.to_string()).await));
    // Validly signed, but for a topic drbot does not take alarms from.
    let foreign = sns
        .sign(
            &notification(
                "arn:aws:sns:us-east-1:123456789012:someone-else",
                "foreign-1",
                &alarm,
                now,
            ),
            "2",
            "sns",
        )
        .await;
    refused.push(("foreign topic", post_sns(&app, &foreign.to_string()).await));
    // A certificate from a host that is not SNS, or over plain HTTP.
    for (i, url) in [
        "https://evil.example.com/SimpleNotificationService-test.pem",
        "http://sns.us-east-1.amazonaws.com/cert.pem",
    ]
    .iter()
    .enumerate()
    {
        let mut message = notification(&topic, &format!("elsewhere-{i}"), &alarm, now);
        message["SigningCertURL"] = json!(url);
        let signed = sns.sign(&message, "2", "sns").await;
        refused.push((
            "certificate host",
            post_sns(&app, &signed.to_string()).await,
        ));
    }
    // No signature at all.
    let mut unsigned = notification(&topic, "unsigned-1", &alarm, now);
    unsigned["SigningCertURL"] = json!(format!("{base}SimpleNotificationService-test.pem"));
    unsigned["SignatureVersion"] = json!("2");
    refused.push(("unsigned", post_sns(&app, &unsigned.to_string()).await));
    // Signed by SNS two hours ago: a replay of an old message.
    let old = sns
        .sign(
            &notification(&topic, "old-1", &alarm, now - chrono::Duration::hours(2)),
            "2",
            "sns",
        )
        .await;
    refused.push(("old", post_sns(&app, &old.to_string()).await));
    refused.push(("not json", post_sns(&app, "hello").await));
    for (what, (status, said)) in &refused {
        let expected = match *what {
            "replayed" => 409,
            "old" | "not json" => 400,
            _ => 403,
        };
        assert_eq!(*status, expected, "{what}: {said}");
    }
    let after = app.events().await;
    assert_eq!(after.len(), before, "{:#?}", &after[before..]);

    // A subscription: confirmed with AuthenticateOnUnsubscribe.
    let confirmation = json!({
        "Type": "SubscriptionConfirmation",
        "MessageId": "confirm-1",
        "Token": "2336412f37fb687f5d51e6e2425dacbba8ef5ccd1b2f4d4bcd6c7e1e0a1bba0ad6",
        "TopicArn": topic,
        "Message": "You have chosen to subscribe to the topic. To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription",
        "Timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    });
    let signed = sns.sign(&confirmation, "2", "sns").await;
    let (status, said) = post_sns(&app, &signed.to_string()).await;
    assert_eq!(status, 200, "{said}");
    let subscribed = app
        .events_of_kind("alarm.received")
        .await
        .into_iter()
        .find(|e| {
            e["text"]
                .as_str()
                .unwrap_or("")
                .contains("AuthenticateOnUnsubscribe")
        });
    assert!(subscribed.is_some(), "{:#?}", app.events().await);
}

#[tokio::test]
async fn an_alarm_back_to_ok_before_anyone_acted_closes_its_proposal_and_the_next_firing_proposes_again(
) {
    let (topic, queue) = topic_and_queue().await;
    let app = spawn_app_with(&config(&topic, &queue, "propose")).await;
    let alarm = format!("aifai-api-flap-{}", std::process::id());
    publish(&topic, &alarm_json(&alarm, "ALARM", "spike")).await;
    let first = wait_for_event(&app, "alarm.proposed").await;
    publish(&topic, &alarm_json(&alarm, "OK", "gone")).await;
    wait_for_event(&app, "alarm.ok").await;
    // Hours later it fires again: people are asked again, not left with a stale message.
    publish(&topic, &alarm_json(&alarm, "ALARM", "again")).await;
    let proposals = wait_for_n(&app, "alarm.proposed", 2).await;
    assert_eq!(proposals.len(), 2);
    // The first proposal's button now says why it no longer opens anything.
    let message_id = first["detail"]["message_id"].as_str().unwrap();
    interact(
        &app,
        &click(message_id, "alarm_open", REQUESTER, "1764220000.000100"),
    )
    .await;
    let told = wait_for_ephemeral(&app, REQUESTER).await;
    assert!(told.contains("back to OK before anyone acted"), "{told}");
    assert!(app.events_of_kind("incident.opened").await.is_empty());
}
