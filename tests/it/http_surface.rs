//! The HTTP surface as Slack and a load balancer see it: signatures, sizes, health.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn health_readiness_and_metrics_answer_and_auth_test_ran_at_start_up() {
    let app = spawn_app().await;
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("# TYPE drbot_http_requests_total counter"),
        "{metrics}"
    );
    assert!(
        metrics.contains("drbot_http_requests_total{path=\"/healthz\",status=\"200\"} 1"),
        "{metrics}"
    );
    let auth = app.slack.calls("auth.test");
    assert_eq!(auth.len(), 1);
    assert_eq!(
        auth[0].authorization.as_deref(),
        Some(format!("Bearer {BOT_TOKEN}").as_str())
    );
}

#[tokio::test]
async fn a_signed_help_is_answered_with_every_command() {
    let app = spawn_app().await;
    let text = app.slash("help").reply().await;
    for file in std::fs::read_dir(repo_root().join("commands")).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let def: toml::Value =
                toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let usage = def["usage"].as_str().unwrap();
            assert!(
                text.contains(&format!("`/dr {usage}`")),
                "help lacks {usage}:\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn unsigned_wrongly_signed_stale_and_future_requests_get_401_and_change_nothing() {
    let app = spawn_app().await;
    let body = app.slash("help").body();
    let form = "application/x-www-form-urlencoded";
    let now = now_unix();

    let unsigned = app
        .post_with("/slack/commands", form, &body, None, None, None)
        .await;
    assert_eq!(unsigned.status(), 401);

    let no_signature = app
        .post_with("/slack/commands", form, &body, Some(now), None, None)
        .await;
    assert_eq!(no_signature.status(), 401);

    let wrong_secret = app
        .post_with(
            "/slack/commands",
            form,
            &body,
            Some(now),
            Some(sign("not-the-secret", now, &body)),
            None,
        )
        .await;
    assert_eq!(wrong_secret.status(), 401);

    let tampered = app
        .post_with(
            "/slack/commands",
            form,
            &body.replace("help", "status"),
            Some(now),
            Some(sign(SIGNING_SECRET, now, &body)),
            None,
        )
        .await;
    assert_eq!(tampered.status(), 401);

    let stale_ts = now - 301;
    let stale = app
        .post_with(
            "/slack/commands",
            form,
            &body,
            Some(stale_ts),
            Some(sign(SIGNING_SECRET, stale_ts, &body)),
            None,
        )
        .await;
    assert_eq!(stale.status(), 401);

    let future_ts = now + 400;
    let future = app
        .post_with(
            "/slack/commands",
            form,
            &body,
            Some(future_ts),
            Some(sign(SIGNING_SECRET, future_ts, &body)),
            None,
        )
        .await;
    assert_eq!(future.status(), 401);

    let event = envelope("Ev0UNSIGNED", json!({"type": "app_mention", "user": REQUESTER, "channel": OPS_CHANNEL, "text": "hi", "ts": "1.1"})).to_string();
    assert_eq!(
        app.post_with(
            "/slack/events",
            "application/json",
            &event,
            Some(now),
            None,
            None
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        app.post_with(
            "/slack/interactions",
            form,
            "payload=%7B%7D",
            Some(now),
            Some("v0=00".into()),
            None
        )
        .await
        .status(),
        401
    );

    assert!(
        app.events().await.is_empty(),
        "an unsigned request reached the store"
    );
    assert!(app.slack.calls("chat.postMessage").is_empty());
    // Still serving.
    assert_eq!(app.slash("help").send().await.status(), 200);
}

#[tokio::test]
async fn a_70_kb_body_gets_413() {
    let app = spawn_app().await;
    let body = format!("{}&pad={}", app.slash("help").body(), "x".repeat(70 * 1024));
    let response = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await;
    assert_eq!(response.status(), 413);
    let event = format!(
        "{{\"type\":\"url_verification\",\"challenge\":\"{}\"}}",
        "y".repeat(70 * 1024)
    );
    assert_eq!(
        app.post_signed("/slack/events", "application/json", &event)
            .await
            .status(),
        413
    );
    assert!(app.events().await.is_empty());
    assert_eq!(
        app.http
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn signed_but_malformed_bodies_get_400() {
    let app = spawn_app().await;
    let broken_json = app
        .post_signed(
            "/slack/events",
            "application/json",
            "{\"type\": \"event_callback\", ",
        )
        .await;
    assert_eq!(broken_json.status(), 400);
    let not_an_event = app
        .post_signed("/slack/events", "application/json", "[1,2,3]")
        .await;
    assert_eq!(not_an_event.status(), 400);
    let missing_fields = app
        .post_signed(
            "/slack/commands",
            "application/x-www-form-urlencoded",
            "text=help&user_id=U1",
        )
        .await;
    assert_eq!(missing_fields.status(), 400);
    let bad_payload = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            "payload=not-json",
        )
        .await;
    assert_eq!(bad_payload.status(), 400);
    assert!(app.events().await.is_empty());
    assert_eq!(app.slash("help").send().await.status(), 200);
}

#[tokio::test]
async fn url_verification_echoes_the_challenge() {
    let app = spawn_app().await;
    let body = json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"}).to_string();
    let response = app
        .post_signed("/slack/events", "application/json", &body)
        .await;
    assert_eq!(response.status(), 200);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        answer["challenge"],
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );
}

#[tokio::test]
async fn an_event_retried_by_slack_takes_effect_once() {
    let app = spawn_app().await;
    let mention = json!({"type": "app_mention", "user": REQUESTER, "channel": OPS_CHANNEL, "text": "<@UDRBOT0001> help", "ts": "1764220000.000100", "event_ts": "1764220000.000100"});
    for retry in [None, Some(1), Some(2), Some(3)] {
        let response = app.event("Ev0MENTION1", mention.clone(), retry).await;
        assert_eq!(response.status(), 200);
    }
    let replies = app.slack.wait_for("chat.postMessage", 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.slack.calls("chat.postMessage").len(),
        1,
        "answered more than once"
    );
    assert_eq!(replies[0].params["thread_ts"], "1764220000.000100");
    assert_eq!(app.events_of_kind("slack.app_mention").await.len(), 1);
}

#[tokio::test]
async fn interactions_are_verified_and_recorded() {
    let app = spawn_app().await;
    let payload = json!({
        "type": "block_actions",
        "team": {"id": "T0DRBOT"},
        "user": {"id": OFFICER, "team_id": "T0DRBOT"},
        "api_app_id": "A0DRBOT",
        "token": "x",
        "trigger_id": "1.2.3",
        "container": {"type": "message", "message_ts": "1764220000.000100", "channel_id": OPS_CHANNEL, "is_ephemeral": false},
        "channel": {"id": OPS_CHANNEL, "name": "ops"},
        "actions": [{"type": "button", "action_id": "approve", "block_id": "b1", "action_ts": "1764220000.1"}]
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let response = app
        .post_signed(
            "/slack/interactions",
            "application/x-www-form-urlencoded",
            &body,
        )
        .await;
    assert_eq!(response.status(), 200);
    let recorded = app.events_of_kind("slack.interaction").await;
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0]["actor"], OFFICER);
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let app = spawn_app().await;
    app.slash("help").reply().await;
    app.slash("nonsense").reply().await;
    let body = app.slash("help").body();
    app.post_with(
        "/slack/commands",
        "application/x-www-form-urlencoded",
        &body,
        Some(now_unix()),
        Some("v0=bad".into()),
        None,
    )
    .await;
    let logs = app.logs().join("\n");
    assert!(!logs.is_empty());
    assert!(!logs.contains(SIGNING_SECRET), "signing secret in logs");
    assert!(!logs.contains(BOT_TOKEN), "bot token in logs");
}

#[tokio::test]
async fn a_captured_signed_request_replayed_is_refused_and_changes_nothing() {
    let mut app = spawn_app().await;
    let form = "application/x-www-form-urlencoded";
    let body = app.slash("incident open ddos replayed attack").body();
    let ts = now_unix();
    let first = app.post_signed_at("/slack/commands", form, &body, ts).await;
    assert_eq!(first.status(), 200);
    let recorded = app.events_of_kind("command.accepted").await.len();
    // Let the incident open before the process restarts.
    crate::support::flow::wait_for_event(&app, "incident.opened").await;

    // The same bytes again, at once and after a restart: refused.
    for restart in [false, true] {
        if restart {
            app.restart().await;
        }
        let replay = app.post_signed_at("/slack/commands", form, &body, ts).await;
        assert_eq!(replay.status(), 401);
        assert!(replay
            .text()
            .await
            .unwrap()
            .contains("this signed request was already received"));
    }
    assert_eq!(
        app.events_of_kind("command.accepted").await.len(),
        recorded,
        "a replay recorded nothing"
    );
    // One incident channel, not two.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(app.slack.calls("conversations.create").len(), 1);

    // Events are keyed the same way.
    let event = crate::support::flow::reaction("reaction_added", "1.2", "eyes", OFFICER);
    let body = envelope("Ev0REPLAY01", event).to_string();
    let ts = now_unix();
    for expected in [200, 401] {
        let answer = app
            .post_signed_at("/slack/events", "application/json", &body, ts)
            .await;
        assert_eq!(answer.status(), expected);
    }
    // Counted since the restart: the slash command's second replay and the event's.
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("drbot_slack_replays_refused_total 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn requests_from_another_workspace_or_app_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let form = "application/x-www-form-urlencoded";
    let body = app
        .slash("incident open ddos from elsewhere")
        .body()
        .replace("team_id=T0DRBOT", "team_id=T0EVIL");
    let answer = app.post_signed("/slack/commands", form, &body).await;
    assert_eq!(answer.status(), 403);
    assert!(answer
        .text()
        .await
        .unwrap()
        .contains("comes from workspace T0EVIL, but drbot serves T0DRBOT only"));

    let mut event = envelope(
        "Ev0FOREIGN1",
        crate::support::flow::reaction("reaction_added", "1.2", "eyes", OFFICER),
    );
    event["api_app_id"] = "A0OTHERAPP".into();
    let answer = app
        .post_signed("/slack/events", "application/json", &event.to_string())
        .await;
    assert_eq!(answer.status(), 403);
    assert!(answer
        .text()
        .await
        .unwrap()
        .contains("is for app A0OTHERAPP"));

    assert!(app.events().await.is_empty(), "nothing was recorded");
    assert!(app.slack.calls("conversations.create").is_empty());
    // The same workspace and app are served as usual.
    assert!(app.slash("help").reply().await.contains("rollback"));
}

#[tokio::test]
async fn drbot_healthcheck_exits_0_while_serve_is_ready_and_1_when_nothing_answers() {
    let app = spawn_app().await;
    let check = |listen: String| {
        std::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
            .arg("healthcheck")
            .env("DRBOT_LISTEN", listen)
            .output()
            .unwrap()
    };
    // As in the image: serve listens on 0.0.0.0, the check asks loopback.
    let ready = check(format!("0.0.0.0:{}", app.addr.port()));
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let down = check(format!("127.0.0.1:{port}"));
    assert!(!down.status.success());
    let err = String::from_utf8_lossy(&down.stderr);
    assert!(
        err.contains(&format!("http://127.0.0.1:{port}/readyz")),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test]
async fn metrics_show_latencies_and_the_stores_gauges_and_can_move_off_the_public_listener() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = free.local_addr().unwrap();
    drop(free);
    let app = spawn_app_custom(
        CONFIG,
        &[],
        &[("DRBOT_METRICS_LISTEN", &metrics_addr.to_string())],
    )
    .await;
    // Off the public listener...
    assert_eq!(
        app.http
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.slash("help").reply().await;
    app.slash("incident open ddos Flood").reply().await;
    // ...and on its own.
    let scrape = || async {
        reqwest::get(format!("http://{metrics_addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let mut metrics = scrape().await;
    for _ in 0..100 {
        if metrics.contains("drbot_open_incidents 1") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        metrics = scrape().await;
    }
    for expected in [
        "# TYPE drbot_ack_seconds histogram",
        "drbot_ack_seconds_count{path=\"/slack/commands\"} 2",
        "drbot_commands_total{command=\"help\",outcome=\"accepted\"} 1",
        "# TYPE drbot_approval_to_aws_seconds histogram",
        "drbot_open_incidents 1",
        "drbot_pending_approvals 0",
        "# TYPE drbot_slack_queued_messages gauge",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
}
