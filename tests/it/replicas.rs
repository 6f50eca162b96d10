//! Several `drbot serve` replicas on one PostgreSQL store behind a load balancer (SPEC §9):
//! an event may reach any of them, a replica may be killed with `-9` at any time, and still
//! every approved change runs exactly once, every scheduled job runs once, and the audit
//! chain stays one chain. These run in the PostgreSQL pass of `scripts/test`.

use std::time::Duration;

use crate::support::aws::{seed_ip_sets, seed_service, CountingProxy, SeededService};
use crate::support::flow::*;
use crate::support::*;

fn rollback_config(svc: &SeededService, approval_extra: &str) -> String {
    format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\n{approval_extra}\n\n[ecs]\npoll_interval = \"1s\"\nrollout_timeout = \"10m\"\n\n{}",
        svc.config()
    )
}

/// True when the suite runs on PostgreSQL; otherwise says where these tests run.
fn replicas_possible() -> bool {
    if !on_postgres() {
        eprintln!(
            "replicas share a PostgreSQL store: this test runs in scripts/test's PostgreSQL pass"
        );
    }
    on_postgres()
}

async fn verify_chain(app: &TestApp) -> String {
    let out = app.cli(&["audit", "verify"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn approvals_and_retries_reaching_three_replicas_at_once_execute_once() {
    if !replicas_possible() {
        return;
    }
    let svc = seed_service(3, 1).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let a = spawn_app_custom(
        &rollback_config(&svc, ""),
        &[],
        &[("AWS_ENDPOINT_URL", &url)],
    )
    .await;
    let b = a.another_replica().await;
    let c = a.another_replica().await;

    // Commands reach every replica at once: all recorded, one chain.
    let mut helps = Vec::new();
    for app in [&a, &b, &c] {
        for _ in 0..20 {
            helps.push(app.slash("help").reply());
        }
    }
    for reply in futures_util::future::join_all(helps).await {
        assert!(reply.contains("rollback"), "{reply}");
    }

    // A captured command replayed to another replica is refused there.
    let body = a.slash("help").body();
    let sent = now_unix();
    let form = "application/x-www-form-urlencoded";
    let original = a.post_signed_at("/slack/commands", form, &body, sent).await;
    assert_eq!(original.status(), 200);
    let replayed = b.post_signed_at("/slack/commands", form, &body, sent).await;
    assert_eq!(replayed.status(), 401, "a replay on another replica");

    let ts = ask(&a, "rollback api", REQUESTER).await;
    let first = reaction("reaction_added", &ts, "white_check_mark", OFFICER);
    let second = reaction("reaction_added", &ts, "+1", OFFICER_2);
    // Officer 1's approval on A, Slack's retries of it on B and C, officer 2's on C, and
    // officer 1's delivered twice to A: all at the same moment.
    let answers = tokio::join!(
        a.event("Ev0REPL0001", first.clone(), None),
        b.event("Ev0REPL0001", first.clone(), Some(1)),
        c.event("Ev0REPL0001", first.clone(), Some(2)),
        c.event("Ev0REPL0002", second, None),
        a.event("Ev0REPL0001", first, None),
    );
    for answer in [answers.0, answers.1, answers.2, answers.3, answers.4] {
        assert_eq!(answer.status(), 200);
    }
    let executed = wait_for_any_event(&a, &["request.executed", "request.failed"]).await;
    assert_eq!(executed["kind"], "request.executed", "{executed}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        proxy.count("UpdateService"),
        1,
        "exactly one mutating call across the replicas"
    );
    let events = a.events().await;
    let deliveries = events
        .iter()
        .filter(|e| e["detail"]["event_id"] == "Ev0REPL0001")
        .count();
    assert_eq!(deliveries, 1, "a retried delivery took effect once");
    assert_eq!(
        events
            .iter()
            .filter(|e| e["kind"] == "request.executed")
            .count(),
        1
    );
    assert_eq!(svc.task_definition().await, format!("{}:2", svc.family));
    let verified = verify_chain(&a).await;
    assert!(
        verified.contains(&format!("{} events verified", events.len())),
        "{verified}"
    );

    // Three outbox workers share one outbox: every message went out once.
    let mut seen = std::collections::HashSet::new();
    for post in a
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .filter(|c| c.answer["ok"] == true)
    {
        let key = (
            post.params["channel"].to_string(),
            post.params["thread_ts"].to_string(),
            post.params["text"].to_string(),
        );
        assert!(seen.insert(key.clone()), "posted twice: {key:?}");
    }
    let reactions = a
        .slack
        .calls("reactions.add")
        .into_iter()
        .filter(|c| c.params["timestamp"] == ts.as_str())
        .count();
    assert_eq!(
        reactions,
        a.settings_reaction_count(),
        "each reaction added once"
    );
}

#[tokio::test]
async fn a_replica_killed_while_executing_is_marked_interrupted_by_another_and_never_rerun() {
    if !replicas_possible() {
        return;
    }
    // Desired 2 while moto runs 1 task: the rollout never becomes stable, so the request
    // is still executing when its replica dies.
    let svc = seed_service(2, 2).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let mut a = spawn_app_custom(
        &rollback_config(&svc, ""),
        &[],
        &[("AWS_ENDPOINT_URL", &url)],
    )
    .await;
    let b = a.another_replica().await;
    let ts = ask(&a, "rollback api", REQUESTER).await;
    react(&a, &ts, "white_check_mark", OFFICER).await;
    wait_for_event(&a, "aws.call").await;
    a.kill().await;

    // A's lease lapses in drbot's time.
    let interrupted = b
        .with_time_running(wait_for_event(&b, "request.interrupted"))
        .await;
    assert_eq!(interrupted["detail"]["action_id"], "A-1");
    for _ in 0..60 {
        if last_update(&b).contains("interrupted") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        last_update(&b).contains("interrupted"),
        "{}",
        last_update(&b)
    );
    // Several leases later it still was not run again.
    b.run_time(20).await;
    assert_eq!(proxy.count("UpdateService"), 1, "never re-run by itself");
    assert_eq!(b.events_of_kind("request.interrupted").await.len(), 1);
    verify_chain(&b).await;
}

#[tokio::test]
async fn expiry_and_a_timed_unblock_run_once_across_replicas_and_outlive_the_replica_that_held_them(
) {
    if !replicas_possible() {
        return;
    }
    let sets = seed_ip_sets(false, vec![]).await;
    let proxy = CountingProxy::start().await;
    let url = proxy.url();
    let config = format!(
        "[slack]\ncommand_channels = [\"C0123OPS\"]\n\n[approval]\nofficers = [\"U0SECOFF1\", \"U0SECOFF2\"]\nttl = \"3s\"\n\n[waf]\nnever_block = [\"10.0.0.0/8\"]\n\n{}",
        sets.config()
    );
    let mut a = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &url)]).await;
    let b = a.another_replica().await;
    let c = a.another_replica().await;

    // A timed block executed by A, and a request left to expire; then A dies.
    let done = ask_and_approve(&a, "block-ip 203.0.113.9 --for 4s --reason probe").await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    ask(&a, "block-ip 203.0.113.10", REQUESTER).await;
    a.kill().await;

    // The block falls due and the request expires in drbot's time; A's lease lapses.
    let lifted = b.with_time_running(wait_for_event(&b, "waf.lifted")).await;
    assert_eq!(lifted["detail"]["cidr"], "203.0.113.9/32");
    c.with_time_running(wait_for_event(&c, "approval.expired"))
        .await;
    b.run_time(10).await;

    assert!(sets.v4_addresses().await.is_empty());
    assert_eq!(b.events_of_kind("waf.lifted").await.len(), 1, "lifted once");
    assert_eq!(
        b.events_of_kind("approval.expired").await.len(),
        1,
        "expired once"
    );
    assert_eq!(
        proxy.count("UpdateIPSet"),
        2,
        "one write to block, one to lift"
    );
    let announcements = b
        .slack
        .calls("chat.postMessage")
        .into_iter()
        .filter(|m| {
            m.params["text"]
                .as_str()
                .unwrap_or("")
                .contains("Lifted the timed block of `203.0.113.9/32`")
        })
        .count();
    assert_eq!(announcements, 1, "announced once");
    verify_chain(&b).await;
}
