//! The deploy kit as a platform engineer deploys it, read against AWS's documented
//! behaviour (moto accepts the template but ignores most of it, so cfn-lint and moto are no
//! proof of these): each test names a defect the stack once had, so it cannot come back.

use serde_json::Value;

use crate::support::*;

/// The stack as JSON (short-form tags spelled out), through the project's `.venv`.
fn template() -> Value {
    let out = std::process::Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/it/support/cfn_to_json.py"))
        .arg(repo_root().join("deploy/cloudformation/drbot.yaml"))
        .output()
        .expect("the project's .venv (scripts/test makes it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn resources_of_type<'a>(t: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

fn container(t: &Value) -> &Value {
    &t["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
}

#[test]
fn the_tasks_reach_the_database_by_its_security_group_in_any_vpc() {
    let t = template();
    let text = t.to_string();
    assert!(
        !text.contains("10.0.0.0/8"),
        "no rule may assume the VPC is in 10.0.0.0/8 (a 172.31/16 default VPC is common)"
    );
    // Every way to port 5432 goes to a security group: the created database's, or the
    // existing one's (DatabaseSecurityGroupId).
    let mut to_database = Vec::new();
    for (name, r) in resources_of_type(&t, "AWS::EC2::SecurityGroupEgress") {
        if r["Properties"]["FromPort"] == 5432 {
            assert!(r["Properties"].get("CidrIp").is_none(), "{name}: {r}");
            to_database.push(r["Properties"]["DestinationSecurityGroupId"]["Ref"].clone());
        }
    }
    let inline = &t["Resources"]["TaskSecurityGroup"]["Properties"]["SecurityGroupEgress"];
    for rule in inline.as_array().unwrap() {
        assert_ne!(
            rule["FromPort"], 5432,
            "an address-based rule to PostgreSQL: {rule}"
        );
    }
    to_database.sort_by_key(|v| v.to_string());
    assert_eq!(
        to_database,
        vec![
            Value::from("DatabaseSecurityGroup"),
            Value::from("DatabaseSecurityGroupId")
        ]
    );
}

#[test]
fn only_slacks_endpoints_and_the_signed_in_console_are_public_behind_the_load_balancer() {
    let t = template();
    let listener = &t["Resources"]["HttpsListener"]["Properties"];
    let default = &listener["DefaultActions"][0];
    assert_eq!(default["Type"], "fixed-response", "{listener}");
    assert_eq!(default["FixedResponseConfig"]["StatusCode"], "404");
    let rules = resources_of_type(&t, "AWS::ElasticLoadBalancingV2::ListenerRule");
    assert_eq!(rules.len(), 2, "{rules:?}");
    let rule = &t["Resources"]["SlackRequests"]["Properties"];
    assert_eq!(
        rule["Conditions"][0]["PathPatternConfig"]["Values"],
        serde_json::json!(["/slack/*"])
    );
    assert_eq!(rule["Actions"][0]["Type"], "forward");
    // The console is forwarded only after the IdP's sign-in (SPEC §19).
    let console = &t["Resources"]["ConsoleRequests"];
    assert_eq!(console["Condition"], "UseConsole");
    let console = &console["Properties"];
    assert_eq!(
        console["Conditions"][0]["PathPatternConfig"]["Values"],
        serde_json::json!(["/console", "/console/*"])
    );
    let actions = console["Actions"].as_array().unwrap();
    assert_eq!(actions[0]["Type"], "authenticate-oidc");
    assert_eq!(actions[0]["Order"], 1);
    assert_eq!(
        actions[0]["AuthenticateOidcConfig"]["OnUnauthenticatedRequest"],
        "authenticate"
    );
    let secret = actions[0]["AuthenticateOidcConfig"]["ClientSecret"].to_string();
    assert!(
        secret.contains("resolve:secretsmanager"),
        "the client secret comes from Secrets Manager: {secret}"
    );
    assert_eq!(
        (actions[1]["Type"].as_str(), actions[1]["Order"].as_i64()),
        (Some("forward"), Some(2))
    );
    // Nothing else forwards to the tasks (so /metrics, /readyz stay inside).
    let forwards = t.to_string().matches("\"forward\"").count();
    assert_eq!(forwards, 2);
}

#[test]
fn replicas_are_replaced_one_at_a_time_with_time_to_wait_for_a_lease() {
    let t = template();
    let service = &t["Resources"]["Service"]["Properties"];
    let deployment = &service["DeploymentConfiguration"];
    assert_eq!(deployment["MinimumHealthyPercent"], 100, "{deployment}");
    assert_eq!(deployment["MaximumPercent"], 150, "{deployment}");
    // With one replica, 150 % rounds down to one task and a deployment could never start.
    assert!(
        t["Parameters"]["DesiredCount"]["MinValue"]
            .as_i64()
            .unwrap()
            >= 2
    );
    assert!(service["HealthCheckGracePeriodSeconds"].as_i64().unwrap() >= 60);
    assert!(
        container(&t)["HealthCheck"]["StartPeriod"]
            .as_i64()
            .unwrap()
            >= 60
    );
}

#[test]
fn a_stack_missing_what_its_transport_needs_is_refused_before_anything_is_created() {
    let t = template();
    let rules = t["Rules"].as_object().expect("a Rules section");
    let asserted = |rule: &str| -> String { rules[rule]["Assertions"].to_string() };
    let http = rules
        .iter()
        .find(|(_, r)| r["RuleCondition"].to_string().contains("\"http\""))
        .map(|(name, _)| asserted(name))
        .expect("a rule for Transport=http");
    for needed in ["SlackSigningSecretArn", "CertificateArn", "PublicSubnetIds"] {
        assert!(http.contains(needed), "{needed} is not asserted: {http}");
    }
    let socket = rules
        .iter()
        .find(|(_, r)| r["RuleCondition"].to_string().contains("socket-mode"))
        .map(|(name, _)| asserted(name))
        .expect("a rule for Transport=socket-mode");
    assert!(socket.contains("SlackAppTokenSecretArn"), "{socket}");
    let all = t["Rules"].to_string();
    assert!(
        all.contains("DatabaseSecurityGroupId") && all.contains("AWS::Region"),
        "an existing database needs its group; drbot never runs in the primary region: {all}"
    );
}

#[test]
fn the_task_reads_its_configuration_and_keys_from_secrets_without_writing_to_disk() {
    let t = template();
    let c = container(&t);
    let command = c["Command"].to_string();
    assert!(
        !command.contains("/data") && !command.contains("printf") && c.get("EntryPoint").is_none(),
        "the configuration is not written to a file by a shell: {command}"
    );
    let secrets: Vec<String> = c["Secrets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["Name"].as_str().map(str::to_string))
        .collect();
    for needed in ["DRBOT_CONFIG_TOML", "DRBOT_AUDIT_KEY", "DRBOT_DATABASE_URL"] {
        assert!(secrets.iter().any(|s| s == needed), "{needed}: {secrets:?}");
    }
    assert_eq!(
        t["Resources"]["TaskDefinition"]["Properties"]["RuntimePlatform"]["CpuArchitecture"],
        serde_json::json!({"Ref": "CpuArchitecture"})
    );
    let regions: Vec<&str> = c["Environment"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["Name"].as_str())
        .collect();
    assert!(regions.contains(&"DRBOT_PRIMARY_REGION") && regions.contains(&"DRBOT_BACKUP_REGION"));
    // The example configuration is over SSM's standard tier (4 KB): the kit says which tier.
    let example = std::fs::read_to_string(repo_root().join("drbot.example.toml")).unwrap();
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    if example.len() > 4096 {
        assert!(
            readme.contains("--tier Advanced"),
            "README: put-parameter --tier Advanced"
        );
        assert!(t["Parameters"]["ConfigParameterName"]["Description"]
            .as_str()
            .unwrap()
            .contains("Advanced"));
    }
}

#[test]
fn the_created_database_is_reached_over_tls_verified_against_the_rds_ca_the_image_carries() {
    let t = template();
    let url = t["Resources"]["DatabaseUrl"]["Properties"]["SecretString"].to_string();
    assert!(
        url.contains("sslmode=verify-full&sslrootcert=/etc/ssl/certs/rds-global-bundle.pem"),
        "{url}"
    );
    let dockerfile = std::fs::read_to_string(repo_root().join("deploy/Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("/etc/ssl/certs/rds-global-bundle.pem"),
        "the image carries the bundle the URL names"
    );
}

#[test]
fn the_slack_manifest_agrees_with_the_stack_and_covers_private_channels() {
    let t = template();
    let manifest = std::fs::read_to_string(repo_root().join("deploy/slack/manifest.yml")).unwrap();
    assert!(
        manifest.contains("- groups:read"),
        "conversations.info on a private channel"
    );
    let socket_default = t["Parameters"]["Transport"]["Default"] == "socket-mode";
    assert_eq!(
        manifest.contains("socket_mode_enabled: true"),
        socket_default,
        "the manifest and the stack's default transport agree"
    );
}
