//! A security officer under a DDoS: `/dr block-ip`, `/dr unblock-ip`, `/dr blocked`, timed
//! blocks, and every refusal that keeps drbot from blocking the wrong thing. Against the
//! real binary, the Slack stand-in and moto's WAFv2.

use std::time::Duration;

use crate::support::aws::{seed_ip_sets, CountingProxy, SeededSets};
use crate::support::flow::*;
use crate::support::*;

fn config(sets: &SeededSets, extra: &str) -> String {
    format!(
        r#"
[slack]
command_channels = ["C0123OPS"]

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]

[waf]
never_block = ["10.0.0.0/8", "192.0.2.10"]
min_prefix_v4 = 16
min_prefix_v6 = 48
{extra}

{}"#,
        sets.config()
    )
}

#[tokio::test]
async fn an_approved_block_lands_in_the_right_sets_normalised_and_listed() {
    let sets = seed_ip_sets(true, vec!["198.51.100.1/32".into()]).await;
    let app = spawn_app_with(&config(&sets, "")).await;
    let ts = ask(&app, "block-ip 203.0.113.7 203.0.113.77/24 2001:db8::1 198.51.100.1 --reason \"credential stuffing\"", REQUESTER).await;
    let request = posted_message(&app, &ts);
    let text = request.params["text"].as_str().unwrap().to_string();
    assert!(text.contains("`203.0.113.7/32` →"), "{text}");
    assert!(
        text.contains("`203.0.113.0/24` (you typed `203.0.113.77/24`; host bits cleared)"),
        "{text}"
    );
    assert!(text.contains("`2001:db8::1/128` →"), "{text}");
    assert!(text.contains("`198.51.100.1/32` is already in"), "{text}");
    assert!(text.contains("Reason: credential stuffing"), "{text}");
    assert!(
        sets.v4_addresses().await == vec!["198.51.100.1/32".to_string()],
        "changed before approval"
    );

    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(
        sets.v4_addresses().await,
        ["198.51.100.1/32", "203.0.113.0/24", "203.0.113.7/32"]
    );
    assert_eq!(sets.v6_addresses().await, ["2001:db8::1/128"]);
    let calls = app.events_of_kind("aws.call").await;
    assert_eq!(calls.len(), 2, "one UpdateIPSet per set: {calls:#?}");
    assert!(calls
        .iter()
        .all(|c| c["detail"]["operation"] == "UpdateIPSet"
            && !c["detail"]["aws_request_id"].as_str().unwrap().is_empty()));

    let listed = app.slash("blocked").reply().await;
    assert!(
        listed.contains("`203.0.113.7/32` — by <@U0ONCALL1> (approved by <@U0SECOFF1>)"),
        "{listed}"
    );
    assert!(listed.contains("reason: credential stuffing"), "{listed}");
    assert!(listed.contains("no expiry"), "{listed}");
    assert!(
        listed.contains("3 address(es), 2 blocked by drbot, 1 put there by others"),
        "{listed}"
    );
    assert!(listed.contains("`2001:db8::1/128`"), "{listed}");
    assert!(app.warnings().is_empty(), "{:#?}", app.warnings());
}

#[tokio::test]
async fn bad_addresses_are_refused_at_once_and_nothing_reaches_aws() {
    let sets = seed_ip_sets(false, vec![]).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(&config(&sets, ""), &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let cases = [
        (
            "block-ip 0.0.0.0/0",
            "is the whole Internet; drbot never blocks /0",
        ),
        ("block-ip ::/0", "is the whole Internet"),
        ("block-ip 198.0.0.0/8", "`198.0.0.0/8` is broader than /16"),
        (
            "block-ip 10.20.30.40",
            "`10.20.30.40/32` overlaps `10.0.0.0/8`, which is in waf.never_block",
        ),
        ("block-ip 192.0.2.0/24", "overlaps `192.0.2.10/32`"),
        ("block-ip 2001:db8::1", "has no ipv6_set configured"),
        (
            "block-ip 203.0.113.7 banana",
            "`banana` is not an IPv4/IPv6 address or CIDR",
        ),
        ("block-ip", "missing &lt;ip-or-cidr&gt;"),
        (
            "block-ip 203.0.113.7 --for forever",
            "'forever' is not a duration",
        ),
    ];
    for (text, expected) in cases {
        let reply = app.slash(text).reply().await;
        assert!(reply.contains(expected), "{text}: {reply}");
        assert!(
            reply.contains(
                "Usage: `/dr block-ip &lt;ip-or-cidr&gt;... [--reason TEXT] [--for DURATION]`"
            ),
            "{reply}"
        );
    }
    assert_eq!(
        app.events_of_kind("command.refused").await.len(),
        cases.len()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(proxy.total(), 0, "a refused command reached AWS");
    assert!(app.slack.calls("chat.postMessage").is_empty());
}

#[tokio::test]
async fn a_block_that_would_pass_the_10000_address_limit_is_refused() {
    let full: Vec<String> = (0..9_999)
        .map(|i| format!("100.{}.{}.{}/32", 64 + i / 65536, (i / 256) % 256, i % 256))
        .collect();
    let sets = seed_ip_sets(false, full).await;
    let app = spawn_app_with(&config(&sets, "")).await;
    app.slash("block-ip 203.0.113.7 203.0.113.8").reply().await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("holds 9999 addresses; adding 2 would pass WAF's limit of 10000"),
        "{answers:?}"
    );
    assert!(app.events_of_kind("approval.requested").await.is_empty());
}

#[tokio::test]
async fn a_concurrent_writer_is_kept_when_the_lock_token_goes_stale() {
    let sets = seed_ip_sets(false, vec![]).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(&config(&sets, ""), &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let ts = ask(&app, "block-ip 203.0.113.7", REQUESTER).await;
    // Just before drbot's write arrives, someone else writes the set.
    let v4 = sets.v4.clone();
    proxy.before_next("UpdateIPSet", move || async move {
        crate::support::aws::add_outside(&v4, "198.51.100.99/32").await;
    });
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(
        sets.v4_addresses().await,
        ["198.51.100.99/32", "203.0.113.7/32"]
    );
    assert_eq!(
        proxy.count("UpdateIPSet"),
        2,
        "the conflicting write was retried once"
    );
    let call = wait_for_event(&app, "aws.call").await;
    assert_eq!(call["detail"]["conflicts_retried"], 1);
}

#[tokio::test]
async fn a_timed_block_is_lifted_when_its_time_is_up() {
    let sets = seed_ip_sets(false, vec!["198.51.100.1/32".into()]).await;
    let app = spawn_app_with(&config(&sets, "")).await;
    let done = ask_and_approve(&app, "block-ip 203.0.113.7 --for 2h --reason probe").await;
    assert_eq!(done["kind"], "request.executed");
    assert!(sets
        .v4_addresses()
        .await
        .contains(&"203.0.113.7/32".to_string()));
    // An hour later it still holds; two hours later it is lifted.
    app.advance_clock(Duration::from_secs(3600));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert!(app.events_of_kind("waf.lifted").await.is_empty());
    app.advance_clock(Duration::from_secs(3601));
    let lifted = wait_for_event(&app, "waf.lifted").await;
    assert_eq!(lifted["detail"]["cidr"], "203.0.113.7/32");
    assert_eq!(
        sets.v4_addresses().await,
        ["198.51.100.1/32"],
        "only the timed block was removed"
    );
    let announced = app.slack.calls("chat.postMessage").into_iter().any(|c| {
        c.params["channel"] == OPS_CHANNEL
            && c.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("Lifted the timed block of `203.0.113.7/32`")
    });
    assert!(
        announced,
        "the lift was not announced where the block was asked for"
    );
}

#[tokio::test]
async fn a_timed_block_due_during_a_restart_is_lifted_once_afterwards() {
    let sets = seed_ip_sets(false, vec![]).await;
    let mut app = spawn_app_with(&config(&sets, "")).await;
    let done = ask_and_approve(&app, "block-ip 203.0.113.9 --for 30m").await;
    assert_eq!(done["kind"], "request.executed");
    app.kill().await;
    app.advance_clock(Duration::from_secs(31 * 60));
    assert_eq!(
        sets.v4_addresses().await,
        ["203.0.113.9/32"],
        "nothing lifts it while drbot is down"
    );
    app.restart().await;
    wait_for_event(&app, "waf.lifted").await;
    assert!(sets.v4_addresses().await.is_empty());
    // Later passes of the timer loop (woken by moving time) do not lift it again.
    for _ in 0..3 {
        app.advance_clock(Duration::from_secs(60));
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(
        app.events_of_kind("waf.lifted").await.len(),
        1,
        "lifted twice"
    );
}

#[tokio::test]
async fn unblock_removes_exactly_the_named_addresses() {
    let sets = seed_ip_sets(
        false,
        vec![
            "198.51.100.1/32".into(),
            "198.51.100.2/32".into(),
            "198.51.100.3/32".into(),
        ],
    )
    .await;
    let app = spawn_app_with(&config(&sets, "")).await;
    let done = ask_and_approve(&app, "unblock-ip 198.51.100.2 203.0.113.250").await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(
        sets.v4_addresses().await,
        ["198.51.100.1/32", "198.51.100.3/32"]
    );
    let request = app
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .find(|c| {
            c.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("approval needed")
        })
        .unwrap();
    assert!(request.params["text"]
        .as_str()
        .unwrap()
        .contains("`203.0.113.250/32` is not in the set (nothing to do)"));

    app.slash("unblock-ip 203.0.113.250").reply().await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("none of `203.0.113.250/32` is in IP set `blocklist`"),
        "{answers:?}"
    );
}

#[tokio::test]
async fn a_cloudfront_set_is_written_in_us_east_1_whatever_aws_region_says() {
    let set = crate::support::aws::seed_cloudfront_set().await;
    let config = format!(
        "[approval]\nofficers = [\"U0SECOFF1\"]\n\n[[waf.ip_sets]]\nname = \"edge\"\nscope = \"CLOUDFRONT\"\nipv4_set = {{ name = \"{}\", id = \"{}\" }}\n",
        set.0, set.1
    );
    // drbot runs in another region; CLOUDFRONT sets still live in us-east-1.
    let app = spawn_app_custom(&config, &[], &[("AWS_REGION", "eu-west-1")]).await;
    let ts = ask(&app, "block-ip 203.0.113.9 --reason edge", REQUESTER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(
        &app,
        &["request.executed", "request.failed", "request.void"],
    )
    .await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    assert_eq!(
        crate::support::aws::cloudfront_addresses(&set).await,
        ["203.0.113.9/32"]
    );
}

#[tokio::test]
async fn a_block_for_longer_than_ten_years_is_refused_before_anything_is_planned() {
    let sets = seed_ip_sets(false, vec![]).await;
    let app = spawn_app_with(&config(&sets, "")).await;
    let reply = app
        .slash("block-ip 203.0.113.8 --for 95000000d")
        .reply()
        .await;
    assert!(reply.contains("too long: at most 3650d"), "{reply}");
    assert!(app.events_of_kind("approval.requested").await.is_empty());
    assert!(sets.v4_addresses().await.is_empty());
}

#[tokio::test]
async fn a_permanent_block_approved_while_the_timed_one_is_lifted_keeps_the_address_blocked() {
    let sets = seed_ip_sets(false, vec![]).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let app = spawn_app_custom(&config(&sets, ""), &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let done = ask_and_approve(&app, "block-ip 203.0.113.9 --for 30m --reason probe").await;
    assert_eq!(done["kind"], "request.executed");
    // The worker's removal is held at the proxy until the permanent block has executed.
    let (release, held) = tokio::sync::oneshot::channel::<()>();
    proxy.before_next("UpdateIPSet", move || async move {
        let _ = held.await;
    });
    let updates = proxy.count("UpdateIPSet");
    app.advance_clock(Duration::from_secs(31 * 60));
    for _ in 0..200 {
        if proxy.count("UpdateIPSet") > updates {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        proxy.count("UpdateIPSet") > updates,
        "the lift is on its way"
    );
    // Meanwhile the same address is blocked for good: asked and approved.
    let ts = ask(
        &app,
        "block-ip 203.0.113.9 --reason \"confirmed attacker\"",
        REQUESTER,
    )
    .await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    for _ in 0..200 {
        if app.events_of_kind("request.executed").await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(app.events_of_kind("request.executed").await.len(), 2);
    let _ = release.send(());

    // The lift went through, found the newer block and put the address back.
    let kept = wait_for_event(&app, "waf.lifted").await;
    assert!(
        kept["text"].as_str().unwrap().contains("stays blocked"),
        "{kept}"
    );
    assert_eq!(sets.v4_addresses().await, ["203.0.113.9/32"]);
    // drbot's record: the timed block superseded, the permanent one active.
    let mut conn = app.db().await;
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT state, reason FROM blocks WHERE cidr = '203.0.113.9/32' ORDER BY id",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    assert_eq!(
        rows,
        [
            ("superseded".to_string(), Some("probe".to_string())),
            ("active".to_string(), Some("confirmed attacker".to_string()))
        ]
    );
}
