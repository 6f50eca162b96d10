//! The rest of the plan from Slack: scale, the WAF rate limit, DNS failover, the database
//! cutover, cross-region snapshot copies and restores — and the region-failure scenario
//! walked end to end. Against the real binary, the Slack stand-in and moto (which keeps
//! each region apart).

use std::time::Duration;

use aws_sdk_wafv2::types::{
    AllowAction, CountAction, DefaultAction, RateBasedStatement,
    RateBasedStatementAggregateKeyType, Rule, RuleAction, Scope, Statement, VisibilityConfig,
};
use serde_json::Value;

use crate::support::aws::*;
use crate::support::flow::*;
use crate::support::region::*;
use crate::support::*;

pub(crate) fn base() -> &'static str {
    r#"
[slack]
command_channels = ["C0123OPS"]

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]

[ecs]
poll_interval = "1s"
rollout_timeout = "20s"

[rds]
poll_interval = "1s"
wait_timeout = "1m"

[dns]
sync_timeout = "20s"
"#
}

async fn done(app: &TestApp) -> Value {
    wait_for_any_event(app, &["request.executed", "request.failed", "request.void"]).await
}

fn visibility(name: &str) -> VisibilityConfig {
    VisibilityConfig::builder()
        .sampled_requests_enabled(false)
        .cloud_watch_metrics_enabled(false)
        .metric_name(name)
        .build()
        .unwrap()
}

/// A web ACL holding someone else's rule; returns (name, id).
async fn seed_web_acl() -> (String, String) {
    let name = unique("acl");
    let theirs = Rule::builder()
        .name("partner-rate")
        .priority(3)
        .action(
            RuleAction::builder()
                .count(CountAction::builder().build())
                .build(),
        )
        .statement(
            Statement::builder()
                .rate_based_statement(
                    RateBasedStatement::builder()
                        .limit(5000)
                        .aggregate_key_type(RateBasedStatementAggregateKeyType::Ip)
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .visibility_config(visibility("partner-rate"))
        .build()
        .unwrap();
    let out = wafv2()
        .await
        .create_web_acl()
        .name(&name)
        .scope(Scope::Regional)
        .default_action(
            DefaultAction::builder()
                .allow(AllowAction::builder().build())
                .build(),
        )
        .visibility_config(visibility(&name))
        .rules(theirs)
        .send()
        .await
        .unwrap();
    (name, out.summary().unwrap().id().unwrap().to_string())
}

async fn acl_rules(name: &str, id: &str) -> Vec<(String, i32, Option<i64>)> {
    let out = wafv2()
        .await
        .get_web_acl()
        .name(name)
        .id(id)
        .scope(Scope::Regional)
        .send()
        .await
        .unwrap();
    out.web_acl()
        .unwrap()
        .rules()
        .iter()
        .map(|r| {
            (
                r.name().to_string(),
                r.priority(),
                r.statement()
                    .and_then(|s| s.rate_based_statement())
                    .map(|s| s.limit()),
            )
        })
        .collect()
}

#[tokio::test]
async fn scale_shows_the_counts_runs_once_under_repeated_approvals_and_refuses_bad_counts() {
    let svc = seed_service(2, 3).await;
    let proxy = CountingProxy::start().await;
    let config = format!("{}\n{}max_desired = 10\n", base(), svc.config());
    let app = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;

    // Bad input: refused at once, nothing reaches AWS.
    let before = proxy.count("DescribeServices");
    for (text, why) in [
        ("scale api --desired 0", "--confirm-zero"),
        ("scale api --desired 11", "maximum of 10"),
        ("scale api --desired many", "Usage"),
        ("scale api", "missing `--desired"),
        ("scale nowhere --desired 2", "unknown service"),
    ] {
        let reply = app.slash(text).reply().await;
        assert!(reply.contains(why), "{text}: {reply}");
    }
    assert_eq!(
        proxy.count("DescribeServices"),
        before,
        "bad input reached AWS"
    );

    let ts = ask(&app, "scale api --desired 1", REQUESTER).await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(request.contains("desired tasks *3 → 1*"), "{request}");
    // Both officers, and Slack's retry: one UpdateService.
    react(&app, &ts, "white_check_mark", OFFICER).await;
    react(&app, &ts, "+1", OFFICER_2).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = done(&app).await;
    assert_eq!(end["kind"], "request.executed", "{end}");
    assert_eq!(proxy.count("UpdateService"), 1);
    let out = ecs()
        .await
        .describe_services()
        .cluster(&svc.cluster)
        .services(&svc.service)
        .send()
        .await
        .unwrap();
    assert_eq!(out.services()[0].desired_count(), 1);
    assert!(
        last_update(&app).contains("undo: `/dr scale api --desired 3`"),
        "{}",
        last_update(&app)
    );
}

#[tokio::test]
async fn the_waf_rate_limit_adds_and_removes_only_drbots_rule() {
    let (name, id) = seed_web_acl().await;
    let config = format!(
        "{}\n[waf.web_acl]\nname = \"{name}\"\nid = \"{id}\"\nscope = \"REGIONAL\"\nrate_limit = 2000\n",
        base()
    );
    let app = spawn_app_with(&config).await;
    let reply = app.slash("waf rate-limit on --limit 5").reply().await;
    assert!(reply.contains("outside what WAF allows"), "{reply}");
    let reply = app.slash("waf rate-limit off").reply().await;
    assert!(reply.starts_with("Planning"), "{reply}");
    let refused = wait_for_responses(&app, 1).await;
    assert!(
        refused.iter().any(|r| r.contains("nothing to turn off")),
        "{refused:?}"
    );

    let ts = ask(&app, "waf rate-limit on --limit 500", REQUESTER).await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        request.contains("*add* drbot's rule `drbot-rate-limit`")
            && request.contains("`partner-rate` (3)"),
        "{request}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    assert_eq!(done(&app).await["kind"], "request.executed");
    let rules = acl_rules(&name, &id).await;
    assert!(
        rules.contains(&("partner-rate".into(), 3, Some(5000))),
        "{rules:?}"
    );
    assert!(
        rules.contains(&("drbot-rate-limit".into(), 4, Some(500))),
        "{rules:?}"
    );

    let ts = ask(&app, "waf rate-limit off", REQUESTER).await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    for _ in 0..100 {
        if app.events_of_kind("request.executed").await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        acl_rules(&name, &id).await,
        [("partner-rate".into(), 3, Some(5000))]
    );
}

#[tokio::test]
async fn dns_failover_switches_the_record_keeps_the_old_value_and_voids_a_stale_plan() {
    let record = format!("{}.analyticalfire.test.", unique("www"));
    let zone = seed_zone(&record, "primary-alb.us-east-1.elb.amazonaws.com").await;
    let app = spawn_app_with(&format!("{}\n{}", base(), dns_config(&zone, &record))).await;
    for (text, why) in [
        (
            "dns failover app --to sideways",
            "`--to primary` or `--to backup`",
        ),
        (
            "dns failover web --to backup",
            "unknown record `web`; configured: `app`",
        ),
    ] {
        let reply = app.slash(text).reply().await;
        assert!(reply.contains(why), "{text}: {reply}");
    }

    // Someone changes the record between the plan and the approval: nothing is written.
    let ts = ask(&app, "dns failover app --to backup", REQUESTER).await;
    set_cname(&zone, &record, "maintenance.analyticalfire.test").await;
    react(&app, &ts, "white_check_mark", OFFICER).await;
    assert_eq!(done(&app).await["kind"], "request.void");
    assert_eq!(
        cname(&zone, &record).await,
        "maintenance.analyticalfire.test"
    );

    let ts = ask(&app, "dns failover app --to backup", OFFICER_2).await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        request.contains("now: `maintenance.analyticalfire.test`")
            && request.contains("after: `backup-alb.us-west-2.elb.amazonaws.com`"),
        "{request}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    for _ in 0..100 {
        if !app.events_of_kind("request.executed").await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        cname(&zone, &record).await,
        "backup-alb.us-west-2.elb.amazonaws.com"
    );
    let call = app
        .events_of_kind("aws.call")
        .await
        .into_iter()
        .find(|e| e["detail"]["operation"] == "ChangeResourceRecordSets")
        .unwrap();
    assert_eq!(
        call["detail"]["previous"]["target"], "maintenance.analyticalfire.test",
        "{call}"
    );
    assert!(
        last_update(&app).contains("undo: `/dr dns failover app --to primary`"),
        "{}",
        last_update(&app)
    );
}

#[tokio::test]
async fn cutover_writes_the_new_host_keeps_the_old_one_and_redeploys_the_services() {
    let db = seed_database(1).await;
    let restored = seed_database(1).await;
    let svc = seed_service(1, 1).await;
    let parameter = seed_host_parameter("us-east-1", "old-db.internal").await;
    let config = format!(
        "{}\n{}\n{}cutover_parameter = \"{parameter}\"\ncutover_services = [\"api\"]\n",
        base(),
        svc.config(),
        db.config()
    );
    let app = spawn_app_with(&config).await;
    let reply = app.slash("cutover main").reply().await;
    assert!(reply.contains("missing `--to"), "{reply}");

    let (ts, request) = ask_text(&app, &format!("cutover main --to {}", restored.instance)).await;
    assert!(
        request.contains("`old-db.internal` →") && request.contains("`api`"),
        "{request}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let end = done(&app).await;
    assert_eq!(end["kind"], "request.executed", "{end}");
    let (value, version) = parameter_in("us-east-1", &parameter).await;
    assert_ne!(value, "old-db.internal");
    assert_eq!(version, 2, "the old value stays as version 1");
    let operations: Vec<String> = app
        .events_of_kind("aws.call")
        .await
        .iter()
        .map(|e| e["detail"]["operation"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(operations, ["PutParameter", "UpdateService"]);

    // Once there, a second cutover to the same instance is refused.
    app.slash(&format!("cutover main --to {}", restored.instance))
        .reply()
        .await;
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers.iter().any(|a| a.contains("already holds")),
        "{answers:?}"
    );
}

#[tokio::test]
async fn the_region_failure_scenario_is_walked_end_to_end_with_drbot() {
    let db = seed_database(1).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let dr = seed_service_in(BACKUP, 1, 0).await;
    let (dr_subnets, dr_group) = seed_network_in(BACKUP).await;
    let record = format!("{}.analyticalfire.test.", unique("www"));
    let zone = seed_zone(&record, "primary-alb.us-east-1.elb.amazonaws.com").await;
    let config = format!(
        "{}\n[regions]\nbackup = \"{BACKUP}\"\n\n[[ecs.services]]\nname = \"api-dr\"\ncluster = \"{}\"\nservice = \"{}\"\nregion = \"backup\"\n\n{}backup_placement = {{ subnet_group = \"{dr_subnets}\", security_groups = [\"{dr_group}\"], class = \"db.t3.micro\" }}\n\n{}",
        base(),
        dr.cluster,
        dr.service,
        db.config(),
        dns_config(&zone, &record)
    );
    let app = spawn_app_with(&config).await;
    let status = app.slash("status").reply().await;
    assert!(
        status.contains(&format!("backup {BACKUP}"))
            && status.contains(&format!("api-dr [{BACKUP}]")),
        "{status}"
    );

    let (incident, channel) = open_incident(&app, "region-failure us-east-1 is down").await;

    // 1. The latest snapshot to the backup region (no approval).
    let reply = app
        .slash("snapshot copy main --to-region backup")
        .in_channel(&channel)
        .reply()
        .await;
    assert!(reply.starts_with("Working on"), "{reply}");
    let copied = done(&app).await;
    assert_eq!(copied["kind"], "request.executed", "{copied}");
    let copy = app
        .events_of_kind("aws.call")
        .await
        .into_iter()
        .find(|e| e["detail"]["operation"] == "CopyDBSnapshot")
        .unwrap()["detail"]["target"]
        .as_str()
        .unwrap()
        .to_string();
    let there = rds_in(BACKUP)
        .await
        .describe_db_snapshots()
        .db_snapshot_identifier(&copy)
        .send()
        .await
        .unwrap();
    assert_eq!(there.db_snapshots()[0].status(), Some("available"));

    // 2. Restore it there (officer).
    let new = format!("{}-dr", db.instance);
    let ts = ask_in(
        &app,
        &format!("restore main --region backup --snapshot {copy} --as {new}"),
        REQUESTER,
        &channel,
    )
    .await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        request.contains(&format!("`{new}` in {BACKUP}"))
            && request.contains("by `backup_placement`"),
        "{request}"
    );
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_until_executed(&app, 2).await;
    let restored = rds_in(BACKUP)
        .await
        .describe_db_instances()
        .db_instance_identifier(&new)
        .send()
        .await
        .unwrap();
    let placed = &restored.db_instances()[0];
    assert_eq!(placed.db_instance_status(), Some("available"));
    assert_eq!(
        placed
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name()),
        Some(dr_subnets.as_str())
    );
    assert!(
        rds()
            .await
            .describe_db_instances()
            .db_instance_identifier(&new)
            .send()
            .await
            .is_err(),
        "restored in the backup region, not the primary"
    );

    // 3. Scale the backup region's service up (officer).
    let ts = ask_in(&app, "scale api-dr --desired 1", REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_until_executed(&app, 3).await;
    assert_eq!(dr.desired_count_in(BACKUP).await, 1);

    // 4. DNS to the backup region (officer).
    let ts = ask_in(&app, "dns failover app --to backup", REQUESTER, &channel).await;
    react_in(&app, &channel, &ts, "white_check_mark", OFFICER).await;
    wait_until_executed(&app, 4).await;
    assert_eq!(
        cname(&zone, &record).await,
        "backup-alb.us-west-2.elb.amazonaws.com"
    );

    // Each step ticked the incident's checklist; resolving reports the RTO.
    let ticked = app.events_of_kind("incident.step_done").await;
    assert!(ticked.len() >= 4, "{ticked:#?}");
    app.slash("incident resolve running in us-west-2")
        .in_channel(&channel)
        .reply()
        .await;
    let resolved = wait_for_event(&app, "incident.resolved").await;
    assert_eq!(resolved["incident"], incident.as_str());
    assert!(
        resolved["text"].as_str().unwrap().contains("RTO"),
        "{resolved}"
    );
}

pub(crate) async fn wait_until_executed(app: &TestApp, n: usize) {
    for _ in 0..300 {
        let ended = app
            .events()
            .await
            .into_iter()
            .filter(|e| {
                matches!(
                    e["kind"].as_str(),
                    Some("request.executed" | "request.failed" | "request.void")
                )
            })
            .collect::<Vec<_>>();
        if ended.len() >= n {
            let last = ended.last().unwrap();
            assert_eq!(last["kind"], "request.executed", "{last}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("fewer than {n} requests ended: {:#?}", app.events().await);
}

#[tokio::test]
async fn regions_snapshots_records_and_acls_that_are_not_configured_are_refused_before_aws() {
    let db = seed_database(1).await;
    db.snapshot(&format!("{}-nightly", db.instance)).await;
    let proxy = CountingProxy::start().await;
    let app = spawn_app_custom(
        &format!("{}\n{}", base(), db.config()),
        &[],
        &[("AWS_ENDPOINT_URL", &proxy.url())],
    )
    .await;
    for (text, why) in [
        (
            "snapshot copy main --to-region backup",
            "`backup` needs [regions] backup",
        ),
        (
            "snapshot copy main --to-region mars",
            "not `primary`, `backup` or an AWS region name",
        ),
        ("snapshot copy main", "missing `--to-region"),
        (
            "restore main --snapshot x --region backup",
            "`backup` needs [regions] backup",
        ),
        (
            "restore main --snapshot x --region us-west-2",
            "backup_placement",
        ),
        ("waf rate-limit on", "no `[waf.web_acl]` is configured"),
        ("waf rate-limit sideways", "write `on` or `off`"),
        (
            "dns failover app --to backup",
            "no [[dns.records]] are configured",
        ),
        ("cutover main --to other-db", "has no `cutover_parameter`"),
    ] {
        let reply = app.slash(text).reply().await;
        assert!(
            reply.contains(why) && reply.contains("Usage"),
            "{text}: {reply}"
        );
    }
    assert_eq!(
        proxy.count("other")
            + proxy.count("DescribeDBSnapshots")
            + proxy.count("DescribeDBInstances"),
        0,
        "bad input reached AWS"
    );
    assert_eq!(app.events_of_kind("command.refused").await.len(), 9);

    // A snapshot that was never copied to the backup region is not restored there.
    let config = format!(
        "{}\n[regions]\nbackup = \"{BACKUP}\"\n\n{}backup_placement = {{ subnet_group = \"dr-private\", class = \"db.t3.micro\" }}\n",
        base(),
        db.config()
    );
    let app = spawn_app_with(&config).await;
    let reply = app
        .slash(&format!(
            "restore main --region backup --snapshot {}-nightly",
            db.instance
        ))
        .reply()
        .await;
    assert!(reply.starts_with("Planning"), "{reply}");
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers
            .iter()
            .any(|a| a.contains(&format!("does not exist in {BACKUP}"))),
        "{answers:?}"
    );

    // An instance of the same name in the backup region (same account), and a snapshot of
    // it there: by name it looks like ours; by ARN it was taken in another region.
    crate::support::aws::create_instance(BACKUP, &db.instance, None).await;
    let lookalike = format!("{}-lookalike", db.instance);
    rds_in(BACKUP)
        .await
        .create_db_snapshot()
        .db_instance_identifier(&db.instance)
        .db_snapshot_identifier(&lookalike)
        .send()
        .await
        .unwrap();
    app.slash(&format!(
        "restore main --region backup --snapshot {lookalike}"
    ))
    .reply()
    .await;
    let answers = wait_for_responses(&app, 2).await;
    assert!(
        answers.iter().any(|a| a.contains(&format!(
            "was taken in {BACKUP}, but `{}` runs in us-east-1",
            db.instance
        ))),
        "{answers:?}"
    );
    assert!(app
        .slack
        .calls("chat.postMessage")
        .iter()
        .all(|c| !c.params["text"].as_str().unwrap_or("").contains(&lookalike)));
}

#[tokio::test]
async fn dns_failover_switches_an_alias_a_record_to_the_backup_load_balancer() {
    use aws_sdk_route53::types::*;
    let record = format!("{}.analyticalfire.test.", unique("api"));
    let zone = seed_zone(&format!("cname-{record}"), "unused.example.com").await;
    let alias = |target: &str, zone_id: &str| {
        ResourceRecordSet::builder()
            .name(&record)
            .r#type(RrType::A)
            .alias_target(
                AliasTarget::builder()
                    .dns_name(target)
                    .hosted_zone_id(zone_id)
                    .evaluate_target_health(true)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    route53()
        .await
        .change_resource_record_sets()
        .hosted_zone_id(&zone)
        .change_batch(
            ChangeBatch::builder()
                .changes(
                    Change::builder()
                        .action(ChangeAction::Upsert)
                        .resource_record_set(alias(
                            "primary-alb.us-east-1.elb.amazonaws.com",
                            "Z35SXDOTRQ7X7K",
                        ))
                        .build()
                        .unwrap(),
                )
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let config = format!(
        "{}\n[[dns.records]]\nname = \"api\"\nzone_id = \"{zone}\"\nrecord = \"{record}\"\ntype = \"A\"\nprimary = \"primary-alb.us-east-1.elb.amazonaws.com\"\nbackup = \"backup-alb.us-west-2.elb.amazonaws.com\"\nprimary_alias_zone = \"Z35SXDOTRQ7X7K\"\nbackup_alias_zone = \"Z1H1FL5HABSF5\"\n",
        base()
    );
    let app = spawn_app_with(&config).await;
    let ts = ask(&app, "dns failover api --to backup", REQUESTER).await;
    let request = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        request.contains("alias A")
            && request.contains("now: `primary-alb.us-east-1.elb.amazonaws.com"),
        "{request}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    assert_eq!(done(&app).await["kind"], "request.executed");
    let out = route53()
        .await
        .list_resource_record_sets()
        .hosted_zone_id(&zone)
        .send()
        .await
        .unwrap();
    let now = out
        .resource_record_sets()
        .iter()
        .find(|r| r.name() == record && r.r#type() == &RrType::A)
        .and_then(|r| r.alias_target())
        .map(|a| (a.dns_name().to_string(), a.hosted_zone_id().to_string()))
        .unwrap();
    assert!(
        now.0.starts_with("backup-alb.us-west-2.elb.amazonaws.com"),
        "{now:?}"
    );
    assert_eq!(now.1, "Z1H1FL5HABSF5");
}

#[tokio::test]
async fn a_cutover_to_an_instance_that_is_not_available_is_refused_before_any_change() {
    let db = seed_database(1).await;
    let stopped = seed_database(1).await;
    rds()
        .await
        .stop_db_instance()
        .db_instance_identifier(&stopped.instance)
        .send()
        .await
        .unwrap();
    let parameter = seed_host_parameter("us-east-1", "old-db.internal").await;
    let proxy = CountingProxy::start().await;
    let config = format!(
        "{}\n{}cutover_parameter = \"{parameter}\"\n",
        base(),
        db.config()
    );
    let app = spawn_app_custom(&config, &[], &[("AWS_ENDPOINT_URL", &proxy.url())]).await;
    let reply = app
        .slash(&format!("cutover main --to {}", stopped.instance))
        .reply()
        .await;
    assert!(reply.starts_with("Planning"), "{reply}");
    let answers = wait_for_responses(&app, 1).await;
    assert!(
        answers
            .iter()
            .any(|a| a.contains("is `stopped`; a cutover needs it `available`")),
        "{answers:?}"
    );
    assert_eq!(proxy.count("PutParameter"), 0);
    let value = ssm()
        .await
        .get_parameter()
        .name(&parameter)
        .send()
        .await
        .unwrap();
    assert_eq!(value.parameter().unwrap().value(), Some("old-db.internal"));
}

#[tokio::test]
async fn a_secure_string_parameters_value_is_never_shown_stored_or_exported() {
    const SECRET: &str = "old-db.internal?token=S3CRET-VALUE-42";
    let db = seed_database(1).await;
    let restored = seed_database(1).await;
    let parameter = format!("/{}/DATABASE_HOST", unique("aifai"));
    ssm()
        .await
        .put_parameter()
        .name(&parameter)
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let config = format!(
        "{}\n{}cutover_parameter = \"{parameter}\"\n",
        base(),
        db.config()
    );
    let app = spawn_app_with(&config).await;
    let (ts, request) = ask_text(&app, &format!("cutover main --to {}", restored.instance)).await;
    assert!(
        request.contains("(SecureString, not shown; sha256 "),
        "{request}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    assert_eq!(done(&app).await["kind"], "request.executed");
    assert_eq!(parameter_in("us-east-1", &parameter).await.1, 2);
    // Nowhere: not in Slack, not in the store's record, not in an export.
    for call in app.slack.all_calls() {
        assert!(!call.params.to_string().contains("S3CRET"), "{call:?}");
    }
    let events = serde_json::to_string(&app.events().await).unwrap();
    assert!(!events.contains("S3CRET"), "{events}");
    let mut conn = app.db().await;
    let plans: Vec<String> = sqlx::query_scalar("SELECT plan FROM requests")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    assert!(plans.iter().all(|p| !p.contains("S3CRET")), "{plans:?}");
}
