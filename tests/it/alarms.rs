//! Alarms open incidents (SPEC §16): a CloudWatch alarm published to moto's SNS topic lands
//! in the SQS queue subscribed to it; drbot long-polls the queue, proposes the incident in
//! the ops channel, a responder's click opens it, the alarm's repeats and its return to OK
//! land in the incident's timeline — and a message delivered twice, or waiting in the queue
//! while drbot is down, is recorded exactly once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::aws::unique;
use crate::support::flow::*;
use crate::support::*;

/// moto's query API, unsigned (moto takes the region from the credential scope).
async fn call(service: &str, params: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let answer = reqwest::Client::new()
        .post(moto_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert!(status.is_success(), "{service} {params:?}: {text}");
    text
}

fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml
        .find(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no {tag} in {xml}"))
        + tag.len()
        + 2;
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

/// A topic and a queue subscribed to it: (topic ARN, queue URL).
async fn topic_and_queue() -> (String, String) {
    let name = unique("alerts").replace('_', "-");
    let topic = call("sns", &[("Action", "CreateTopic"), ("Name", &name)]).await;
    let topic = between(&topic, "TopicArn").to_string();
    let queue = call("sqs", &[("Action", "CreateQueue"), ("QueueName", &name)]).await;
    let queue = between(&queue, "QueueUrl").to_string();
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    call(
        "sns",
        &[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "sqs"),
            ("Endpoint", &queue_arn),
        ],
    )
    .await;
    (topic, queue)
}

/// CloudWatch's alarm JSON, as it publishes it to SNS.
fn alarm_json(name: &str, state: &str, reason: &str) -> String {
    json!({
        "AlarmName": name,
        "AlarmDescription": "5xx from the API",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": reason,
        "StateChangeTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "Region": "US East (N. Virginia)",
        "OldStateValue": if state == "OK" { "ALARM" } else { "OK" },
        "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB"}
    })
    .to_string()
}

async fn publish(topic: &str, message: &str) {
    call(
        "sns",
        &[
            ("Action", "Publish"),
            ("TopicArn", topic),
            ("Message", message),
            ("Subject", "ALARM"),
        ],
    )
    .await;
}

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
    json!({
        "type": "block_actions",
        "team": {"id": "T0DRBOT"},
        "user": {"id": user, "team_id": "T0DRBOT"},
        "api_app_id": "A0DRBOT",
        "token": "x",
        "trigger_id": "1.2.3",
        "response_url": "https://hooks.slack.test/actions/T0DRBOT/1/abc",
        "container": {"type": "message", "message_ts": ts, "channel_id": OPS_CHANNEL, "is_ephemeral": false},
        "channel": {"id": OPS_CHANNEL, "name": "ops"},
        "message": {"ts": ts, "text": "alarm"},
        "actions": [{"type": "button", "action_id": action, "block_id": "b1", "value": message_id, "action_ts": "1764220000.1"}]
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
            "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (5.0).",
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
