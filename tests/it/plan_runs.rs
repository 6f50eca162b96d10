//! `/dr run <scenario>`: a scenario's recovery as one approved, followed, resumable plan.
//! The shipped region-failure plan is run against moto (two regions) with the real binary
//! and the Slack stand-in: in both modes end to end, as a dry run, with a step that fails
//! and is retried, killed with -9 in the middle of a step, and on two replicas.

use std::time::Duration;

use serde_json::Value;

use crate::plan_commands::base;
use crate::support::aws::*;
use crate::support::flow::*;
use crate::support::region::*;
use crate::support::*;

/// Events of `kind` about plan step `step`.
async fn step_events(app: &TestApp, kind: &str, step: &str) -> Vec<Value> {
    app.events_of_kind(kind)
        .await
        .into_iter()
        .filter(|e| e["detail"]["step"] == step)
        .collect()
}

/// Waits for an event of `kind` about `step`.
async fn wait_step(app: &TestApp, kind: &str, step: &str) -> Value {
    for _ in 0..600 {
        if let Some(e) = step_events(app, kind, step).await.pop() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no {kind} for step {step}; log: {:#?}", app.events().await);
}

/// The ts of the approval request of `A-<n>` named by `action_id`.
async fn request_ts(app: &TestApp, action_id: &str) -> String {
    for _ in 0..300 {
        let posted = app.slack.calls("chat.postMessage").into_iter().find(|c| {
            let text = c.params["text"].as_str().unwrap_or("");
            text.contains("approval needed") && text.contains(action_id)
        });
        if let Some(c) = posted {
            return c.answer["ts"].as_str().unwrap().to_string();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the approval request of {action_id} was never posted");
}

/// An officer approves the step that is waiting for its own approval.
async fn approve_step(app: &TestApp, channel: &str, step: &str) {
    let started = wait_step(app, "run.step_started", step).await;
    assert_eq!(started["detail"]["approval"], "officer", "{started}");
    let action = started["detail"]["action_id"].as_str().unwrap().to_string();
    let ts = request_ts(app, &action).await;
    react_in(app, channel, &ts, "white_check_mark", OFFICER).await;
}

/// The run's live message as last updated (or as posted, before any update).
fn progress(app: &TestApp) -> String {
    let is_run = |t: &String| t.contains("*Plan run R-");
    let texts = |method: &str| {
        app.slack
            .calls(method)
            .iter()
            .map(|c| c.params["text"].as_str().unwrap_or("").to_string())
            .filter(is_run)
            .collect::<Vec<_>>()
    };
    texts("chat.update")
        .pop()
        .or_else(|| texts("chat.postMessage").pop())
        .unwrap_or_default()
}

/// Waits until the run's live message contains `needle`; returns it.
async fn wait_progress(app: &TestApp, needle: &str) -> String {
    for _ in 0..200 {
        let shown = progress(app);
        if shown.contains(needle) {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the run's message never showed {needle}: {}", progress(app));
}

async fn instances_named(region: &str, prefix: &str) -> Vec<String> {
    let out = rds_in(region)
        .await
        .describe_db_instances()
        .send()
        .await
        .unwrap();
    out.db_instances()
        .iter()
        .filter_map(|i| i.db_instance_identifier())
        .filter(|id| id.starts_with(prefix))
        .map(str::to_string)
        .collect()
}

/// An incident channel for the region failure, with drbot's own copy of the database's
/// snapshot already in the backup region (what an ungraceful run restores).
struct Ready {
    estate: Estate,
    proxy: CountingProxy,
    app: TestApp,
    channel: String,
}

async fn ready_with_a_copy() -> Ready {
    let estate = estate(base(), true).await;
    let proxy = CountingProxy::start().await;
    let app = spawn_app_custom(&estate.config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;
    let (_, channel) = open_incident(&app, "region-failure us-east-1 is gone").await;
    app.slash("snapshot copy main --to-region backup")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "request.executed").await;
    Ready {
        estate,
        proxy,
        app,
        channel,
    }
}

/// Asks for an ungraceful run: the request's ts and text.
async fn ask_ungraceful(app: &TestApp, channel: &str) -> (String, String) {
    let ts = ask_in(
        app,
        "run region-failure --mode ungraceful",
        REQUESTER,
        channel,
    )
    .await;
    let request = posted_message(app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    (ts, request)
}

/// Asks for an ungraceful run and has an officer approve it.
async fn run_ungraceful(app: &TestApp, channel: &str) {
    let (ts, _) = ask_ungraceful(app, channel).await;
    react_in(app, channel, &ts, "white_check_mark", OFFICER).await;
}
/// The last steps: an officer approves the DNS step, a person marks `verify` done.
async fn finish_run(app: &TestApp, channel: &str) {
    approve_step(app, channel, "dns").await;
    wait_step(app, "run.step_started", "verify").await;
    app.slash("run done verify")
        .in_channel(channel)
        .reply()
        .await;
    wait_for_event(app, "run.finished").await;
}

/// SIGKILL to the drbot child a test started.
fn kill(pid: u32) {
    // SAFETY: sends SIGKILL to a process this test spawned.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
}

#[tokio::test]
async fn a_region_failure_runs_as_one_approved_plan_in_graceful_mode() {
    let estate = estate(base(), true).await;
    let proxy = CountingProxy::start().await;
    let app = spawn_app_custom(&estate.config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;
    let (incident, channel) = open_incident(&app, "region-failure us-east-1 degrading").await;

    // One request shows every step's exact change before anyone approves.
    let ts = ask_in(
        &app,
        "run region-failure --mode graceful",
        REQUESTER,
        &channel,
    )
    .await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    for shown in [
        "Run the plan of `region-failure`",
        "*graceful* mode",
        "`/dr snapshot main`",
        "`/dr snapshot copy main --to-region backup`",
        "side by side",
        "desired tasks *0 → 4*",
        ":lock: `dns`",
        "`verify`",
    ] {
        assert!(request.contains(shown), "{shown} missing from:\n{request}");
    }
    assert_eq!(
        proxy.count("CreateDBSnapshot"),
        0,
        "planning changed nothing"
    );
    // The requester cannot approve their own run.
    react_in(&app, &channel, &ts, "white_check_mark", REQUESTER).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let started = wait_for_event(&app, "run.started").await;
    assert_eq!(started["incident"], incident.as_str());

    // The DNS step waits for its own approval, then the manual step for a person.
    approve_step(&app, &channel, "dns").await;
    wait_step(&app, "run.step_started", "verify").await;
    let reply = app
        .slash("run done verify")
        .as_user(REQUESTER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("marked step `verify` done"), "{reply}");
    let finished = wait_for_event(&app, "run.finished").await;
    assert_eq!(finished["detail"]["rto_met"], true, "{finished}");
    // Measured until the scenario's check held: the backup region's service is stable.
    assert_eq!(
        finished["detail"]["recovered_when"]["service"], "api-dr",
        "{finished}"
    );
    assert_eq!(
        finished["detail"]["recovered_when"]["held"], true,
        "{finished}"
    );
    assert_eq!(finished["incident"], incident.as_str());

    // Each change once: a fresh snapshot, copied, restored from that copy.
    assert_eq!(proxy.forwarded("CreateDBSnapshot"), 1);
    assert_eq!(proxy.forwarded("CopyDBSnapshot"), 1);
    assert_eq!(proxy.forwarded("RestoreDBInstanceFromDBSnapshot"), 1);
    let fresh = proxy.params("CreateDBSnapshot")[0]["DBSnapshotIdentifier"].clone();
    let copy_of = proxy.params("CopyDBSnapshot")[0]["SourceDBSnapshotIdentifier"].clone();
    assert!(copy_of.ends_with(&fresh), "copied {copy_of}, took {fresh}");
    let copy = proxy.params("CopyDBSnapshot")[0]["TargetDBSnapshotIdentifier"].clone();
    assert_eq!(
        proxy.params("RestoreDBInstanceFromDBSnapshot")[0]["DBSnapshotIdentifier"],
        copy,
        "the restore used the copy this run made"
    );
    let restored = instances_named(BACKUP, "drbot-dr-").await;
    let (value, _) = parameter_in(BACKUP, &estate.parameter).await;
    assert!(
        restored.iter().any(|r| value.starts_with(r.as_str())),
        "cutover to {value}, restored {restored:?}"
    );
    assert_eq!(estate.dr.desired_count_in(BACKUP).await, 4);
    assert_eq!(
        cname(&estate.zone, &estate.record).await,
        "backup-alb.us-west-2.elb.amazonaws.com"
    );

    // The live message ends with every step done and the recovery against the RTO.
    let shown = wait_progress(&app, "— *done*").await;
    assert!(shown.contains("RTO 24h 00m: *met*"), "{shown}");
    assert_eq!(shown.matches(":white_check_mark:").count(), 7, "{shown}");
    assert!(shown.contains("AWS request ids"), "{shown}");
    // The quarter's review lists the run with its measured recovery against the RTO.
    let out = app.cli(&["report", "--format", "md"]).await;
    let review = String::from_utf8_lossy(&out.stdout);
    assert!(
        review.contains("**Plan runs:** 1 plan run(s): 1 finished (1 within the RTO)")
            && review.contains(&format!("R-1 \\({incident}\\)"))
            && review.contains("region-failure \\(graceful\\)")
            && review.contains("RTO 24h 00m: met"),
        "{review}"
    );
    // The record: each step started and done, in the incident's timeline.
    for step in [
        "snapshot", "copy", "restore", "scale", "cutover", "dns", "verify",
    ] {
        assert_eq!(
            step_events(&app, "run.step_started", step).await.len(),
            1,
            "{step}"
        );
        assert_eq!(
            step_events(&app, "run.step_done", step).await.len(),
            1,
            "{step}"
        );
    }
    let _ = estate.db;
}

/// The application's database host in the backup region, as before the failover.
async fn put_host_parameter(name: &str) {
    ssm_in(BACKUP)
        .await
        .put_parameter()
        .name(name)
        .value("aifai-db.us-east-1.internal")
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn ungraceful_mode_restores_the_newest_copy_and_a_failed_step_pauses_until_retried() {
    let estate = estate(base(), false).await;
    let proxy = CountingProxy::start().await;
    let app = spawn_app_custom(&estate.config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;
    let (_, channel) = open_incident(&app, "region-failure us-east-1 is gone").await;

    // `--source-down` (what the ungraceful restore step uses) only with `--region`.
    let reply = app
        .slash("restore main --snapshot latest --source-down")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(
        reply.contains("is for a restore in another region"),
        "{reply}"
    );
    // No copy in the backup region yet: the dry run says so and changes nothing.
    let reply = app
        .slash("run region-failure --dry-run")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.starts_with("Planning"), "{reply}");
    let answers = wait_for_responses(&app, 1).await;
    let report = answers.last().unwrap();
    assert!(
        report.contains("2 step(s) would block the run now")
            && report.contains("step `restore`")
            && report.contains("no available snapshot")
            && report.contains("step `cutover`")
            && report.contains(&format!(
                "SSM parameter `{}` does not exist in us-west-2",
                estate.parameter
            ))
            && report.contains("Nothing was changed"),
        "{report}"
    );
    assert_eq!(proxy.writes(), 0, "a dry run changed something");
    // Asked for real, it is refused for the same reason, before any approval.
    let reply = app
        .slash("run region-failure")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.starts_with("Planning"), "{reply}");
    let answers = wait_for_responses(&app, 2).await;
    assert!(
        answers.last().unwrap().contains("cannot run now"),
        "{answers:?}"
    );

    // With a copy there (drbot's own) and the parameter, the run restores the copy
    // without a new snapshot.
    put_host_parameter(&estate.parameter).await;
    app.slash("snapshot copy main --to-region backup")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "request.executed").await;
    let copy = proxy.params("CopyDBSnapshot")[0]["TargetDBSnapshotIdentifier"].clone();
    let primary_before = proxy.calls_in("us-east-1").len();
    let (ts, request) = ask_ungraceful(&app, &channel).await;
    assert!(request.contains(&format!("snapshot `{copy}`")), "{request}");
    assert!(!request.contains("`/dr snapshot main`"), "{request}");
    // The parameter is deleted before the officer approves: the cutover, planned when
    // reached, fails there, and the run pauses.
    ssm_in(BACKUP)
        .await
        .delete_parameter()
        .name(&estate.parameter)
        .send()
        .await
        .unwrap();
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;

    let failed = wait_step(&app, "run.step_failed", "cutover").await;
    assert!(
        failed["text"].as_str().unwrap().contains("cutover"),
        "{failed}"
    );
    wait_for_event(&app, "run.paused").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        step_events(&app, "run.step_started", "dns")
            .await
            .is_empty(),
        "nothing after a failed step starts"
    );
    wait_progress(&app, "*paused: step cutover failed*").await;
    let reply = app.slash("run resume").in_channel(&channel).reply().await;
    assert!(reply.contains("retry-step cutover"), "{reply}");
    // Skipping is an officer's; retrying any responder's.
    let reply = app
        .slash("run skip-step cutover")
        .as_user(REQUESTER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("only a security officer"), "{reply}");

    put_host_parameter(&estate.parameter).await;
    let reply = app
        .slash("run retry-step cutover")
        .as_user(REQUESTER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("retries step `cutover`"), "{reply}");
    wait_step(&app, "run.step_done", "cutover").await;
    approve_step(&app, &channel, "dns").await;
    wait_step(&app, "run.step_started", "verify").await;
    let reply = app
        .slash("run skip-step verify")
        .as_user(OFFICER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("skipped step `verify`"), "{reply}");
    let finished = wait_for_event(&app, "run.finished").await;
    assert_eq!(
        finished["detail"]["skipped"],
        serde_json::json!(["verify"]),
        "{finished}"
    );

    // Ungraceful: the primary region's RDS was never called (Route 53 is signed there).
    let primary: Vec<String> = proxy.calls_in("us-east-1")[primary_before..]
        .iter()
        .filter(|op| op.contains("DB"))
        .cloned()
        .collect();
    assert!(primary.is_empty(), "called the primary region: {primary:?}");
    // No snapshot was taken and only the prepared copy was restored, once.
    assert_eq!(proxy.forwarded("CreateDBSnapshot"), 0);
    assert_eq!(
        proxy.forwarded("CopyDBSnapshot"),
        1,
        "only the copy made before the run"
    );
    assert_eq!(proxy.forwarded("RestoreDBInstanceFromDBSnapshot"), 1);
    assert_eq!(
        proxy.params("RestoreDBInstanceFromDBSnapshot")[0]["DBSnapshotIdentifier"],
        copy
    );
    let _ = estate.db;
}

#[tokio::test]
async fn a_run_killed_in_the_middle_of_a_step_resumes_without_repeating_finished_steps() {
    let Ready {
        estate,
        proxy,
        mut app,
        channel,
    } = ready_with_a_copy().await;
    // kill -9 right before the cutover's change reaches AWS: restore and scale are done.
    let pid = app.pid().unwrap();
    proxy.before_next("PutParameter", move || async move {
        kill(pid);
        // The call never reaches AWS.
        std::future::pending::<()>().await;
    });
    run_ungraceful(&app, &channel).await;
    for _ in 0..600 {
        if proxy.count("PutParameter") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.wait_exit(Duration::from_secs(5)).await,
        "drbot was not killed"
    );
    assert_eq!(proxy.forwarded("PutParameter"), 0);
    app.restart().await;

    // Re-read from AWS (nothing changed), run again, and the run goes on from there.
    let retried = wait_step(&app, "run.step_retried", "cutover").await;
    let text = retried["text"].as_str().unwrap();
    assert!(text.contains("AWS re-read: as planned"), "{retried}");
    finish_run(&app, &channel).await;
    assert_eq!(
        proxy.forwarded("RestoreDBInstanceFromDBSnapshot"),
        1,
        "restore ran once"
    );
    assert_eq!(
        proxy.forwarded("PutParameter"),
        1,
        "the cutover ran once it was safe"
    );
    assert_eq!(step_events(&app, "run.step_done", "restore").await.len(), 1);
    assert_eq!(
        step_events(&app, "run.step_started", "scale").await.len(),
        1,
        "scale ran again"
    );
    let new = proxy.params("RestoreDBInstanceFromDBSnapshot")[0]["DBInstanceIdentifier"].clone();
    assert_eq!(instances_named(BACKUP, &new).await, [new.clone()]);
    let _ = estate.db;
}

#[tokio::test]
async fn two_replicas_run_one_plan_once() {
    if !on_postgres() {
        eprintln!("replicas share a PostgreSQL store: this test runs in the PostgreSQL pass");
        return;
    }
    let Ready {
        estate,
        proxy,
        app: a,
        channel,
    } = ready_with_a_copy().await;
    let b = a.another_replica().await;
    let ts = ask_in(
        &a,
        "run region-failure --mode ungraceful",
        REQUESTER,
        &channel,
    )
    .await;
    // Both officers' approvals, on both replicas; the rest on either.
    react_in(&b, &channel, &ts, "white_check_mark", OFFICER).await;
    react_in(&a, &channel, &ts, "white_check_mark", OFFICER_2).await;
    finish_run(&b, &channel).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.events_of_kind("run.started").await.len(), 1);
    for step in ["restore", "scale", "cutover", "dns", "verify"] {
        assert_eq!(
            step_events(&a, "run.step_started", step).await.len(),
            1,
            "{step}"
        );
        assert_eq!(
            step_events(&a, "run.step_done", step).await.len(),
            1,
            "{step}"
        );
    }
    assert_eq!(proxy.forwarded("RestoreDBInstanceFromDBSnapshot"), 1);
    assert_eq!(proxy.forwarded("PutParameter"), 1);
    assert_eq!(
        cname(&estate.zone, &estate.record).await,
        "backup-alb.us-west-2.elb.amazonaws.com"
    );
    let _ = (estate.db, estate.dr);
}

#[tokio::test]
async fn a_step_killed_after_its_change_reached_aws_is_reported_not_repeated() {
    let Ready {
        estate,
        proxy,
        mut app,
        channel,
    } = ready_with_a_copy().await;
    // kill -9 right after AWS took the cutover's change, before drbot heard the answer.
    let pid = app.pid().unwrap();
    proxy.after_next("PutParameter", move || async move { kill(pid) });
    run_ungraceful(&app, &channel).await;
    for _ in 0..600 {
        if proxy.forwarded("PutParameter") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.wait_exit(Duration::from_secs(5)).await,
        "drbot was not killed"
    );
    app.restart().await;

    // AWS is read again: the change is there, so the step is reported and the run waits.
    let failed = wait_step(&app, "run.step_failed", "cutover").await;
    let why = failed["text"].as_str().unwrap();
    assert!(
        why.contains("interrupted mid-change") && why.contains("already holds"),
        "{why}"
    );
    wait_progress(&app, "*paused: step cutover failed*").await;
    let reply = app
        .slash("run skip-step cutover")
        .as_user(OFFICER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("skipped step `cutover`"), "{reply}");
    finish_run(&app, &channel).await;
    assert_eq!(
        proxy.forwarded("PutParameter"),
        1,
        "the cutover was never sent twice"
    );
    let _ = estate.db;
}

#[tokio::test]
async fn a_drill_run_asked_outside_an_incident_opens_one_and_is_asked_in_its_channel() {
    let svc = seed_service(3, 1).await;
    let config = format!("{}\n{}", base(), svc.config());
    let app = spawn_app_with(&config).await;
    // Outside an incident, without --drill or --title: refused, with what to do.
    app.slash("run code-corruption").reply().await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers[0].contains("runs in an incident channel"),
        "{answers:?}"
    );
    let reply = app
        .slash("run code-corruption --drill --title \"Quarterly rollback test\"")
        .reply()
        .await;
    assert!(reply.contains("drill incident"), "{reply}");
    let opened = wait_for_event(&app, "incident.opened").await;
    assert_eq!(opened["detail"]["drill"], true, "{opened}");
    let channel = opened["channel"].as_str().unwrap().to_string();
    let requested = wait_for_event(&app, "approval.requested").await;
    assert_eq!(requested["channel"], channel.as_str(), "{requested}");
    assert!(
        requested["text"]
            .as_str()
            .unwrap()
            .contains("Run the plan of `code-corruption`"),
        "{requested}"
    );
    let ts = request_ts(&app, requested["detail"]["action_id"].as_str().unwrap()).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_step(&app, "run.step_done", "rollback").await;
    // Marked done by a person, the run ends with its recovery time.
    app.slash("run done verify")
        .in_channel(&channel)
        .reply()
        .await;
    let finished = wait_for_event(&app, "run.finished").await;
    assert_eq!(finished["incident"], opened["incident"], "{finished}");
    assert_eq!(
        svc.described_in("us-east-1")
            .await
            .task_definition()
            .map(|t| t.ends_with(":2")),
        Some(true)
    );
}

#[tokio::test]
async fn a_step_whose_region_stops_answering_fails_within_its_timeout_and_pauses_the_run() {
    let estate = estate(base(), true).await;
    let proxy = CountingProxy::start().await;
    let config = format!(
        "{}\n[regions.timeouts.backup]\ncall_timeout = \"2s\"\nconnect_timeout = \"1s\"\n",
        estate.config
    );
    let app = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;
    let (_, channel) = open_incident(&app, "region-failure us-east-1 is gone").await;
    app.slash("snapshot copy main --to-region backup")
        .in_channel(&channel)
        .reply()
        .await;
    wait_for_event(&app, "request.executed").await;
    let ts = ask_in(
        &app,
        "run region-failure --mode ungraceful",
        REQUESTER,
        &channel,
    )
    .await;
    // Approved, and then the backup region stops answering.
    proxy.darken(BACKUP);
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let failed = wait_step(&app, "run.step_failed", "restore").await;
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("could not re-read AWS"),
        "{failed}"
    );
    let paused = wait_for_event(&app, "run.paused").await;
    assert!(
        paused["text"].as_str().unwrap().contains("failed"),
        "{paused}"
    );
    assert_eq!(
        proxy.forwarded("RestoreDBInstanceFromDBSnapshot"),
        0,
        "nothing was changed"
    );
    assert!(step_events(&app, "run.step_started", "cutover")
        .await
        .is_empty());
    let _ = estate.db;
}

#[tokio::test]
async fn a_step_whose_resource_changed_since_the_approval_pauses_and_is_approved_again() {
    let Ready {
        estate,
        proxy,
        app,
        channel,
    } = ready_with_a_copy().await;
    let (ts, request) = ask_ungraceful(&app, &channel).await;
    assert!(request.contains("desired tasks *0 → 4*"), "{request}");
    // Someone scales the standby service by hand before the officer approves the run.
    ecs_in(BACKUP)
        .await
        .update_service()
        .cluster(&estate.dr.cluster)
        .service(&estate.dr.service)
        .desired_count(2)
        .send()
        .await
        .unwrap();
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    let failed = wait_step(&app, "run.step_failed", "scale").await;
    assert!(
        failed["text"]
            .as_str()
            .unwrap()
            .contains("changed since the plan"),
        "{failed}"
    );
    wait_progress(&app, "*paused: step scale failed*").await;

    // Retried, it is planned again; AWS differs from what was approved, so an officer
    // approves the new plan (2 → 4) before anything changes.
    app.slash("run retry-step scale")
        .in_channel(&channel)
        .reply()
        .await;
    let again = wait_step(&app, "run.step_started", "scale").await;
    let mut started = step_events(&app, "run.step_started", "scale").await;
    for _ in 0..100 {
        if started.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        started = step_events(&app, "run.step_started", "scale").await;
    }
    let retried = started.last().unwrap();
    assert_eq!(
        retried["detail"]["approval"], "officer",
        "{again} {retried}"
    );
    let action = retried["detail"]["action_id"].as_str().unwrap().to_string();
    let ts = request_ts(&app, &action).await;
    let text = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("desired tasks *2 → 4*") && text.contains("plan run R-1"),
        "{text}"
    );
    let updates = proxy.forwarded("UpdateService");
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_step(&app, "run.step_done", "scale").await;
    assert_eq!(proxy.forwarded("UpdateService"), updates + 1);
    assert_eq!(estate.dr.desired_count_in(BACKUP).await, 4);
    finish_run(&app, &channel).await;
}

#[tokio::test]
async fn only_an_officer_aborts_a_run_and_an_aborted_run_starts_nothing_more() {
    let svc = seed_service(3, 1).await;
    let config = format!("{}\n{}", base(), svc.config());
    let app = spawn_app_with(&config).await;
    let (_, channel) = open_incident(&app, "code-corruption bad deploy").await;
    let ts = ask_in(&app, "run code-corruption", REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_step(&app, "run.step_started", "verify").await;
    let reply = app
        .slash("run abort")
        .as_user(REQUESTER)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("only a security officer"), "{reply}");
    let reply = app
        .slash("run abort R-1")
        .as_user(OFFICER_2)
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("Aborted by"), "{reply}");
    let reply = app
        .slash("run resume R-1")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(
        reply.contains("only a paused run can be resumed"),
        "{reply}"
    );
    // A run is named `R-n`, or by the request that approved it; the step and run in any order.
    let reply = app
        .slash("run pause A-1")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("R-1 is aborted"), "{reply}");
    let reply = app
        .slash("run retry-step R-1 verify")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("step `verify` of R-1 is running"), "{reply}");
    let reply = app
        .slash("run pause R-9")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.contains("there is no run R-9"), "{reply}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(app.events_of_kind("run.finished").await.is_empty());
    assert_eq!(app.events_of_kind("run.aborted").await.len(), 1);
    wait_progress(&app, "*aborted*").await;
}

#[tokio::test]
async fn check_config_names_the_file_and_step_of_an_operators_plan_that_cannot_run_here() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo_root().join("commands")).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::create_dir(dir.path().join("scenarios")).unwrap();
    std::fs::write(
        dir.path().join("scenarios/standby.toml"),
        "id = \"standby\"\ntitle = \"Standby\"\nimpact = \"x\"\nrto = \"1h\"\nrpo = \"none\"\n\n[[steps]]\ntext = \"Scale the standby\"\n\n[plan]\n[[plan.steps]]\nid = \"up\"\nrun = \"scale nowhere --desired 2\"\n",
    )
    .unwrap();
    let svc = seed_service(1, 1).await;
    let app = spawn_app_with(&format!("{}\n{}", base(), svc.config())).await;
    let commands = dir.path().to_str().unwrap();
    let out = app
        .cli(&[
            "check-config",
            "--config",
            "drbot.toml",
            "--commands",
            commands,
        ])
        .await;
    assert!(
        !out.status.success(),
        "an operator's plan that cannot run is an error"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/scenarios/standby.toml: [plan] step 'up': `/dr scale nowhere --desired 2`")
            && err.contains("unknown service `nowhere`"),
        "{err}"
    );
    // An unknown command in a plan is refused when the commands load, naming the step.
    std::fs::write(
        dir.path().join("scenarios/standby.toml"),
        "id = \"standby\"\ntitle = \"Standby\"\nimpact = \"x\"\nrto = \"1h\"\nrpo = \"none\"\n\n[[steps]]\ntext = \"Scale the standby\"\n\n[plan]\n[[plan.steps]]\nid = \"up\"\nrun = \"levitate api\"\n",
    )
    .unwrap();
    let out = app
        .cli(&[
            "check-config",
            "--config",
            "drbot.toml",
            "--commands",
            commands,
        ])
        .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("standby.toml")
            && err.contains("step 'up': `/dr levitate api` is not a command"),
        "{err}"
    );
}
