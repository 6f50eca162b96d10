//! Restore tests that prove the data (SPEC §18): drbot restores a snapshot in moto, then
//! connects to the RESTORED instance's endpoint — sent by `DRBOT_TEST_RESOLVE` to a real
//! PostgreSQL or MariaDB loaded with test data, since moto runs no database — signs in with
//! an IAM token or a Secrets Manager secret (moto's), runs the checks read-only and
//! measures the real RPO. Runs in `scripts/test`'s PostgreSQL pass, which has both servers
//! (`scripts/with-postgres`, `scripts/with-mariadb`).

use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Connection;

use crate::support::aws::{
    create_instance_of, create_secret, rds, seed_database, unique, SeededDatabase,
};
use crate::support::flow::*;
use crate::support::postgres::{make_ca, PrivatePostgres, TLS_PASSWORD};
use crate::support::*;

/// The servers the data lives on, when `scripts/test` started them.
struct Servers {
    pg_admin: String,
    mariadb: String,
}

fn servers() -> Option<Servers> {
    let pg_admin = std::env::var("DRBOT_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty());
    let mariadb = std::env::var("DRBOT_TEST_MARIADB")
        .ok()
        .filter(|u| !u.is_empty());
    match (pg_admin, mariadb) {
        (Some(pg_admin), Some(mariadb)) => Some(Servers { pg_admin, mariadb }),
        _ => {
            eprintln!(
                "runs in scripts/test's PostgreSQL pass (real PostgreSQL and MariaDB servers)"
            );
            None
        }
    }
}

fn host_port(url: &str) -> String {
    let u = url::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap(), u.port().unwrap())
}

/// A database named like the test's on PostgreSQL: `orders` with `rows` rows, the newest
/// written `newest_age` ago; a role `user` may read it (the server trusts it, as the IAM
/// token is not checked here). Answers the database's name.
async fn pg_data(admin: &str, rows: i64, newest_age: Duration, user: &str) -> String {
    let name = unique("drbot_t_data").replace('-', "_");
    let mut c = sqlx::PgConnection::connect(admin).await.unwrap();
    sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await
        .unwrap();
    let _ = sqlx::raw_sql(&format!(
        "DO $$ BEGIN CREATE ROLE {user} LOGIN; EXCEPTION WHEN others THEN NULL; END $$"
    ))
    .execute(&mut c)
    .await;
    let mut url = url::Url::parse(admin).unwrap();
    url.set_path(&name);
    let mut d = sqlx::PgConnection::connect(url.as_str()).await.unwrap();
    sqlx::raw_sql(&format!(
        "CREATE TABLE orders (id bigint primary key, total numeric(10,2), created_at timestamptz not null);
         INSERT INTO orders SELECT n, n * 1.5, now() - interval '{} seconds' - (n || ' seconds')::interval FROM generate_series(1, {rows}) n;
         GRANT SELECT ON orders TO {user};",
        newest_age.as_secs().saturating_sub(1)
    ))
    .execute(&mut d)
    .await
    .unwrap();
    name
}

/// The MariaDB twin of [`pg_data`], with a user signing in by password: (database, user,
/// password).
async fn mariadb_data(root: &str, rows: i64, newest_age: Duration) -> (String, String, String) {
    let name = unique("drbot_t").replace('-', "_");
    let user = format!("u{}", &name[name.len() - 12..]);
    let password = "Mdb-pass-42";
    let mut c = sqlx::MySqlConnection::connect(root).await.unwrap();
    let values: Vec<String> = (1..=rows)
        .map(|n| {
            format!(
                "({n}, {}, UTC_TIMESTAMP(6) - INTERVAL {} SECOND)",
                n as f64 * 1.5,
                newest_age.as_secs() + n as u64 - 1
            )
        })
        .collect();
    for sql in [
        format!("CREATE DATABASE {name}"),
        format!("CREATE TABLE {name}.orders (id bigint primary key, total decimal(10,2), created_at datetime(6) not null)"),
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
        format!("CREATE USER '{user}'@'localhost' IDENTIFIED BY '{password}'"),
        format!("GRANT SELECT ON {name}.* TO '{user}'@'%'"),
        format!("GRANT SELECT ON {name}.* TO '{user}'@'localhost'"),
    ] {
        sqlx::raw_sql(&sql).execute(&mut c).await.unwrap();
    }
    if !values.is_empty() {
        sqlx::raw_sql(&format!(
            "INSERT INTO {name}.orders VALUES {}",
            values.join(",")
        ))
        .execute(&mut c)
        .await
        .unwrap();
    }
    (name, user, password.to_string())
}

const PG_CHECKS: &str = r#"
newest_write_sql = "select max(created_at) from orders"

[[rds.databases.checks]]
name = "orders"
sql = "select count(*) from orders"
expect = ">= 1000"

[[rds.databases.checks]]
name = "revenue"
sql = "select sum(total) from orders"
expect = "> 0"

[[rds.databases.checks]]
name = "tables"
sql = "select count(*) from information_schema.tables where table_schema = 'public'"
expect = "= 1"
"#;

/// `main` on PostgreSQL, signing in with an IAM token as `user`.
fn pg_database(db: &SeededDatabase, database: &str, user: &str) -> String {
    format!(
        "[[rds.databases]]\nname = \"main\"\ninstance = \"{}\"\nverify_database = \"{database}\"\nverify_user = \"{user}\"\nverify_credentials = \"iam\"\nverify_tls = \"disable\"\n{PG_CHECKS}",
        db.instance
    )
}

/// drbot.toml: the ops channel, two officers, RDS followed every second, `databases`.
fn config(databases: &str, extra: &str) -> String {
    let people = r#"approval = { officers = ["U0SECOFF1", "U0SECOFF2"] }"#;
    let rds = "[rds]\npoll_interval = \"1s\"\nwait_timeout = \"1m\"\nverify_timeout = \"3s\"";
    format!(
        "slack = {{ command_channels = [\"C0123OPS\"] }}\n{people}\n{rds}\n{databases}\n{extra}"
    )
}

const ON_COMMAND: &str = "[drills.restore_test]\nkeep_for = \"1h\"\n";

/// `DRBOT_TEST_RESOLVE` sending `instance`'s drill instances to `to`.
fn drills_of(instance: &str, to: &str) -> String {
    format!("drbot-drill-{instance}-*={to}")
}

async fn wait_for_kind(app: &TestApp, kind: &str, count: usize, secs: u64) -> Vec<Value> {
    for _ in 0..secs * 10 {
        let found = app.events_of_kind(kind).await;
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "fewer than {count} {kind} events; log: {:#?}",
        app.events().await
    );
}

fn check<'a>(result: &'a Value, name: &str) -> &'a Value {
    result["detail"]["data"]["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no data checks in {result}"))
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {result}"))
}

fn thread_texts(app: &TestApp) -> String {
    app.slack
        .calls("chat.postMessage")
        .iter()
        .map(|c| c.params["text"].as_str().unwrap_or("").to_string())
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test]
async fn a_scheduled_restore_test_proves_the_data_on_postgres_and_mariadb_and_the_report_shows_the_real_rpo(
) {
    let Some(servers) = servers() else { return };
    // Two databases: `main` on PostgreSQL (IAM token), `shop` on MariaDB (a secret).
    let main = seed_database(7).await;
    main.snapshot(&format!("{}-nightly", main.instance)).await;
    let pg_db = pg_data(
        &servers.pg_admin,
        1200,
        Duration::from_secs(600),
        "drbot_verify_iam",
    )
    .await;
    let shop = unique("shop").replace('_', "-");
    // moto cannot create a `mariadb` instance (KeyError in its engine defaults): a `mysql`
    // one, which drbot reads through the same MySQL protocol as MariaDB.
    create_instance_of("us-east-1", &shop, Some(7), "mysql").await;
    SeededDatabase {
        instance: shop.clone(),
    }
    .snapshot(&format!("{shop}-nightly"))
    .await;
    let (my_db, my_user, my_password) =
        mariadb_data(&servers.mariadb, 1500, Duration::from_secs(900)).await;
    let secret = unique("drbot-verify");
    create_secret(
        &secret,
        &json!({"username": my_user, "password": my_password, "engine": "mariadb"}),
    )
    .await;
    let databases = format!(
        "{}\n[[rds.databases]]\nname = \"shop\"\ninstance = \"{shop}\"\nverify_database = \"{my_db}\"\nverify_credentials = \"secret:{secret}\"\nverify_tls = \"disable\"\nnewest_write_sql = \"select max(created_at) from orders\"\n\n[[rds.databases.checks]]\nname = \"orders\"\nsql = \"select count(*) from orders\"\nexpect = \">= 1000\"\n\n[[rds.databases.checks]]\nname = \"revenue\"\nsql = \"select sum(total) from orders\"\nexpect = \"> 1000\"\n",
        pg_database(&main, &pg_db, "drbot_verify_iam")
    );
    let resolve = format!(
        "{},{}",
        drills_of(&main.instance, &host_port(&servers.pg_admin)),
        drills_of(&shop, &host_port(&servers.mariadb))
    );
    let app = spawn_app_custom(
        &config(
            &databases,
            "[drills.restore_test]\ndatabases = [\"main\", \"shop\"]\nevery = \"30d\"\nwindow = \"30d\"\nkeep_for = \"1h\"\n",
        ),
        &[],
        &[("DRBOT_TEST_RESOLVE", &resolve)],
    )
    .await;

    let results = wait_for_kind(&app, "drill.restore_test", 2, 40).await;
    for result in &results {
        let d = &result["detail"];
        assert_eq!(d["passed"], true, "{result}");
        assert_eq!(d["data"]["reached"], true, "{result}");
        assert_eq!(check(&result, "orders")["passed"], true, "{result}");
        assert_eq!(check(result, "revenue")["passed"], true, "{result}");
        // The real RPO: the snapshot's time minus the newest write, 10 or 15 minutes.
        let rpo = d["rpo_seconds"]
            .as_i64()
            .unwrap_or_else(|| panic!("{result}"));
        assert!((500..1200).contains(&rpo), "{result}");
        assert_eq!(d["rpo_met"], true, "{result}");
        assert_eq!(d["rpo_target_seconds"], 3600, "{result}");
        assert!(
            d["data"]["arn"]
                .as_str()
                .unwrap()
                .contains(":db:drbot-drill-"),
            "{result}"
        );
    }
    let by_db = |name: &str| {
        results
            .iter()
            .find(|r| r["detail"]["database"] == name)
            .unwrap_or_else(|| panic!("no restore test of {name}"))
    };
    let main_result = by_db("main");
    assert_eq!(main_result["detail"]["data"]["credentials"], "iam");
    assert_eq!(check(main_result, "orders")["value"], "1200");
    assert_eq!(
        check(main_result, "revenue")["value"],
        "1080900",
        "numeric sum"
    );
    assert_eq!(check(main_result, "tables")["value"], "1");
    let shop_result = by_db("shop");
    assert_eq!(
        shop_result["detail"]["data"]["credentials"],
        format!("secret {secret}")
    );
    assert_eq!(check(shop_result, "orders")["value"], "1500");
    assert!(shop_result["detail"]["data"]["engine"]
        .as_str()
        .unwrap()
        .starts_with("mysql"));

    // The thread says so; the password is nowhere.
    let posted = thread_texts(&app);
    assert!(
        posted.contains("*Data checks*") && posted.contains("Real RPO"),
        "{posted}"
    );
    assert!(!posted.contains(&my_password));
    assert!(
        !app.logs().join("\n").contains(&my_password),
        "the password is in the logs"
    );
    assert!(!Value::from(app.events().await)
        .to_string()
        .contains(&my_password));

    // The review shows each test's data checks and real RPO, with its chart.
    let html = app.cli(&["report", "--format", "html"]).await;
    let html = String::from_utf8_lossy(&html.stdout);
    assert!(html.contains("Real RPO per restore test"), "{html}");
    assert!(html.contains("<svg class=\"chart real-rpo\""), "{html}");
    assert!(
        html.contains("3 of 3 passed") && html.contains("2 of 2 passed"),
        "{html}"
    );
    let json = app.cli(&["report", "--format", "json"]).await;
    let report: Value = serde_json::from_slice(&json.stdout).unwrap();
    let tests = report["restore_tests"].as_array().unwrap();
    assert!(
        tests
            .iter()
            .all(|t| t["rpo_met"] == true && t["rpo_secs"].as_i64().is_some()),
        "{report}"
    );
}

/// An officer-approved restore test of `main`, whose restored data is `rows` orders on
/// PostgreSQL, the newest `newest_age` old; it fails. The app and the result.
async fn restore_test_on_postgres(
    servers: &Servers,
    rows: i64,
    newest_age: Duration,
) -> (TestApp, Value) {
    let main = seed_database(7).await;
    let pg_db = pg_data(&servers.pg_admin, rows, newest_age, "drbot_verify_iam").await;
    failing_restore_test(
        &main,
        &pg_db,
        "drbot_verify_iam",
        &host_port(&servers.pg_admin),
    )
    .await
}

/// An officer-approved restore test of `main` (its data `database`, signing in as `user`
/// with an IAM token), the drill instance's endpoint sent to `to`; it fails. The app and
/// the result.
async fn failing_restore_test(
    main: &SeededDatabase,
    database: &str,
    user: &str,
    to: &str,
) -> (TestApp, Value) {
    main.snapshot(&format!("{}-nightly", main.instance)).await;
    let resolve = drills_of(&main.instance, to);
    let databases = pg_database(main, database, user);
    let app = spawn_app_custom(
        &config(&databases, ON_COMMAND),
        &[],
        &[("DRBOT_TEST_RESOLVE", &resolve)],
    )
    .await;
    let done = ask_and_approve(&app, "drill restore-test main").await;
    assert_eq!(done["kind"], "request.failed", "{done}");
    let result = wait_for_kind(&app, "drill.restore_test", 1, 10)
        .await
        .remove(0);
    (app, result)
}

#[tokio::test]
async fn an_emptied_table_fails_its_check_and_the_restore_test() {
    let Some(servers) = servers() else { return };
    let (app, result) = restore_test_on_postgres(&servers, 0, Duration::from_secs(60)).await;
    assert_eq!(result["detail"]["passed"], false, "{result}");
    let orders = check(&result, "orders");
    assert_eq!(orders["passed"], false, "{result}");
    assert_eq!(orders["value"], "0", "{result}");
    // The empty table has no newest write: that is a failure too, with its reason.
    assert!(
        result["detail"]["data"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("holds no writes"),
        "{result}"
    );
    let posted = thread_texts(&app);
    assert!(
        posted.contains(":x: orders: 0 (expected &gt;= 1000)"),
        "{posted}"
    );
}

#[tokio::test]
async fn a_newest_write_older_than_the_rpo_misses_it() {
    let Some(servers) = servers() else { return };
    // The newest order is three hours older than the snapshot: the RPO is one hour.
    let (app, result) =
        restore_test_on_postgres(&servers, 1200, Duration::from_secs(3 * 3600)).await;
    let d = &result["detail"];
    assert_eq!(d["passed"], false, "{result}");
    assert_eq!(d["rpo_met"], false, "{result}");
    assert!(
        d["rpo_seconds"].as_i64().unwrap() >= 3 * 3600 - 60,
        "{result}"
    );
    assert_eq!(
        check(&result, "orders")["passed"],
        true,
        "the rows are all there: {result}"
    );
    let posted = thread_texts(&app);
    assert!(
        posted.contains("Real RPO: 2h 59m") || posted.contains("Real RPO: 3h"),
        "{posted}"
    );
    assert!(posted.contains(":x: *missed*"), "{posted}");
}

#[tokio::test]
async fn a_database_that_does_not_answer_fails_the_test_after_the_timeout() {
    let Some(_servers) = servers() else { return };
    let main = seed_database(7).await;
    // A port that accepts connections and never says a word.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            open.push(s);
        }
    });
    let to = format!("127.0.0.1:{port}");
    let (app, result) = failing_restore_test(&main, "nothing", "drbot_verify_iam", &to).await;
    let d = &result["detail"];
    assert_eq!(d["passed"], false, "{result}");
    assert_eq!(d["data"]["reached"], false, "{result}");
    let error = d["data"]["error"].as_str().unwrap_or("");
    assert!(error.contains("did not answer within 3s"), "{result}");
    assert!(thread_texts(&app).contains("did not answer within 3s"));
    held.abort();
}

#[tokio::test]
async fn verify_full_tls_and_a_secret_reach_a_tls_only_server_and_a_wrong_ca_is_refused() {
    let Some(_servers) = servers() else { return };
    if PrivatePostgres::binaries().is_none() {
        eprintln!("runs in scripts/test's PostgreSQL pass (it starts a private PostgreSQL server)");
        return;
    }
    // As on RDS: TLS only, a password, a certificate from the RDS CA naming the host.
    let cas = tempfile::tempdir().unwrap();
    make_ca(cas.path(), "rds-ca");
    make_ca(cas.path(), "someone-else");
    let server = PrivatePostgres::start_tls_only(cas.path(), "rds-ca");
    let admin = format!(
        "postgres://postgres:{TLS_PASSWORD}@localhost:{}/postgres?sslmode=require",
        server.port
    );
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::raw_sql(
        "CREATE TABLE orders (id bigint primary key, total numeric, created_at timestamptz not null);
         INSERT INTO orders SELECT n, 1, now() - interval '5 minutes' FROM generate_series(1, 1000) n;",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let secret = unique("rds-master");
    create_secret(
        &secret,
        &json!({"username": "postgres", "password": TLS_PASSWORD}),
    )
    .await;

    for (ca, passes) in [("rds-ca", true), ("someone-else", false)] {
        let main = seed_database(7).await;
        main.snapshot(&format!("{}-nightly", main.instance)).await;
        let ca_path = cas.path().join(format!("{ca}.pem"));
        let databases = format!(
            "[[rds.databases]]\nname = \"main\"\ninstance = \"{}\"\nverify_database = \"postgres\"\nverify_credentials = \"secret:{secret}\"\nverify_tls = \"verify-full\"\nverify_ca = \"{}\"\n[[rds.databases.checks]]\nname = \"orders\"\nsql = \"select count(*) from orders\"\nexpect = \"= 1000\"\n",
            main.instance,
            ca_path.display()
        );
        let app = spawn_app_custom(
            &config(&databases, ON_COMMAND),
            &[],
            &[(
                "DRBOT_TEST_RESOLVE",
                &drills_of(&main.instance, &format!("localhost:{}", server.port)),
            )],
        )
        .await;
        let done = ask_and_approve(&app, "drill restore-test main").await;
        let result = &wait_for_kind(&app, "drill.restore_test", 1, 10).await[0];
        assert_eq!(result["detail"]["passed"], passes, "{ca}: {result}");
        if passes {
            assert_eq!(done["kind"], "request.executed", "{done}");
            assert_eq!(check(&result, "orders")["value"], "1000");
            assert_eq!(result["detail"]["data"]["tls"], "verify-full");
        } else {
            let error = result["detail"]["data"]["error"].as_str().unwrap_or("");
            assert!(error.contains("could not connect"), "{result}");
            assert!(!error.contains(TLS_PASSWORD), "{result}");
        }
    }
}

#[tokio::test]
async fn a_restore_asked_with_verify_checks_the_new_instance_and_never_the_source() {
    let Some(servers) = servers() else { return };
    let main = seed_database(7).await;
    let snapshot = format!("{}-nightly", main.instance);
    main.snapshot(&snapshot).await;
    let pg_db = pg_data(
        &servers.pg_admin,
        1200,
        Duration::from_secs(300),
        "drbot_verify_iam",
    )
    .await;
    // Only restored instances reach the data; the source's endpoint goes nowhere.
    let resolve = format!(
        "{0}-restored-*={1},{0}-pitr.*={1},{0}.*=127.0.0.1:9",
        main.instance,
        host_port(&servers.pg_admin),
    );
    let app = spawn_app_custom(
        &config(&pg_database(&main, &pg_db, "drbot_verify_iam"), ""),
        &[],
        &[("DRBOT_TEST_RESOLVE", &resolve)],
    )
    .await;
    let ts = ask(
        &app,
        &format!("restore main --snapshot {snapshot} --verify"),
        REQUESTER,
    )
    .await;
    let asked = posted_message(&app, &ts).params["text"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        asked.contains("checks the data") && asked.contains("`orders` &gt;= 1000"),
        "{asked}"
    );
    react(&app, &ts, "white_check_mark", OFFICER).await;
    let done = wait_for_any_event(&app, &["request.executed", "request.failed"]).await;
    assert_eq!(done["kind"], "request.executed", "{done}");
    let verified = &wait_for_kind(&app, "restore.verified", 1, 10).await[0];
    let d = &verified["detail"];
    assert_eq!(d["passed"], true, "{verified}");
    let new_instance = d["instance"].as_str().unwrap();
    assert!(new_instance.starts_with(&format!("{}-restored-", main.instance)));
    assert_ne!(new_instance, main.instance);
    assert!(
        d["data"]["endpoint"]
            .as_str()
            .unwrap()
            .starts_with(new_instance),
        "{verified}"
    );
    assert!(d["rpo_seconds"].as_i64().is_some(), "{verified}");
    // The new instance carries the tag drbot checked before connecting.
    let tags: Vec<(String, String)> = rds()
        .await
        .describe_db_instances()
        .db_instance_identifier(new_instance)
        .send()
        .await
        .unwrap()
        .db_instances()[0]
        .tag_list()
        .iter()
        .map(|t| (t.key().unwrap_or("").into(), t.value().unwrap_or("").into()))
        .collect();
    assert!(
        tags.contains(&("drbot:verify".into(), "data".into())),
        "{tags:?}"
    );

    // `--verify` on a database with nothing to check is refused, and says how.
    let plain = config(
        &format!(
            "[[rds.databases]]\nname = \"main\"\ninstance = \"{}\"\n",
            main.instance
        ),
        "",
    );
    let bare = spawn_app_with(&plain).await;
    let reply = bare
        .slash(&format!("restore main --snapshot {snapshot} --verify"))
        .reply()
        .await;
    assert!(
        reply.contains("nothing to check") && reply.contains("[[rds.databases.checks]]"),
        "{reply}"
    );
}

#[tokio::test]
async fn check_config_refuses_a_check_that_writes_and_names_the_database_and_the_check() {
    let main = seed_database(7).await;
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "verify_credentials = \"iam\"\nverify_user = \"x\"\n[[rds.databases.checks]]\nname = \"purge\"\nsql = \"select 1; delete from orders\"\nexpect = \"= 1\"\n",
            "'main' check 'purge'",
            "more than one statement",
        ),
        (
            "verify_credentials = \"iam\"\nverify_user = \"x\"\n[[rds.databases.checks]]\nname = \"wipe\"\nsql = \"delete from orders\"\nexpect = \"= 1\"\n",
            "'main' check 'wipe'",
            "read-only statement",
        ),
        (
            "verify_credentials = \"iam\"\nverify_user = \"x\"\n[[rds.databases.checks]]\nname = \"orders\"\nsql = \"select count(*) from orders\"\nexpect = \"lots\"\n",
            "'main' check 'orders'",
            "`>= N`",
        ),
        (
            "verify_credentials = \"password:hunter2\"\n[[rds.databases.checks]]\nname = \"orders\"\nsql = \"select count(*) from orders\"\nexpect = \">= 1\"\n",
            "verify_credentials",
            "secret:<name or ARN>",
        ),
        (
            "[[rds.databases.checks]]\nname = \"orders\"\nsql = \"select count(*) from orders\"\nexpect = \">= 1\"\n",
            "verify_credentials",
            "never a password",
        ),
    ];
    for (keys, names, says) in cases {
        let file = dir.path().join("drbot.toml");
        std::fs::write(
            &file,
            config(
                &format!(
                    "[[rds.databases]]\nname = \"main\"\ninstance = \"{}\"\n{keys}",
                    main.instance
                ),
                "",
            ),
        )
        .unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
            .args(["check-config", "--config", file.to_str().unwrap()])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{keys}: accepted");
        assert!(
            stderr.contains(names) && stderr.contains(says),
            "{keys}: {stderr}"
        );
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    // With --aws: a secret that does not exist, and an engine drbot cannot read.
    let oracle = unique("ora").replace('_', "-");
    create_instance_of("us-east-1", &oracle, Some(7), "oracle-ee").await;
    let checks = "[[rds.databases.checks]]\nname = \"orders\"\nsql = \"select count(*) from orders\"\nexpect = \">= 1\"\n";
    for (instance, credentials, says) in [
        (
            main.instance.as_str(),
            "secret:no-such-secret-here",
            "no-such-secret-here",
        ),
        (
            oracle.as_str(),
            "iam\"\nverify_user = \"x",
            "engine `oracle-ee`",
        ),
    ] {
        let file = dir.path().join("drbot.toml");
        std::fs::write(
            &file,
            config(&format!("[[rds.databases]]\nname = \"main\"\ninstance = \"{instance}\"\nverify_credentials = \"{credentials}\"\n{checks}"), ""),
        )
        .unwrap();
        let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_drbot"))
            .args(["check-config", "--aws", "--config", file.to_str().unwrap()])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{instance}: accepted");
        assert!(
            stderr.contains("rds.databases 'main'") && stderr.contains(says),
            "{stderr}"
        );
    }
}

/// A PostgreSQL server as far as the password: it asks for it in clear text (as RDS does for
/// an IAM user over TLS), keeps what it got, and refuses the login.
async fn password_catcher() -> (u16, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                // The startup message: its length, then the rest.
                let len = s.read_i32().await.ok()? as usize;
                let mut startup = vec![0; len - 4];
                s.read_exact(&mut startup).await.ok()?;
                // AuthenticationCleartextPassword.
                s.write_all(&[b'R', 0, 0, 0, 8, 0, 0, 0, 3]).await.ok()?;
                let tag = s.read_u8().await.ok()?;
                let len = s.read_i32().await.ok()? as usize;
                let mut password = vec![0; len - 4];
                s.read_exact(&mut password).await.ok()?;
                if tag == b'p' {
                    let text = String::from_utf8_lossy(&password)
                        .trim_end_matches('\0')
                        .to_string();
                    let _ = tx.send(text);
                }
                let fields = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0";
                let mut error = vec![b'E'];
                error.extend_from_slice(&((fields.len() + 4) as i32).to_be_bytes());
                error.extend_from_slice(fields);
                s.write_all(&error).await.ok()
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn the_iam_login_is_a_presigned_rds_db_connect_token_for_the_restored_endpoint() {
    let main = seed_database(7).await;
    let (port, mut passwords) = password_catcher().await;
    let to = format!("127.0.0.1:{port}");
    let (app, result) = failing_restore_test(&main, "orders", "drbot_verify", &to).await;
    let endpoint = result["detail"]["data"]["endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    let host = endpoint.split(':').next().unwrap();
    assert!(host.starts_with("drbot-drill-"), "{result}");
    let token = passwords.try_recv().expect("drbot sent a password");
    // HOST:PORT/?Action=connect&DBUser=USER&X-Amz-…, signed for rds-db in the region.
    let expected = format!("{endpoint}/?Action=connect&DBUser=drbot_verify&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
    assert!(token.starts_with(&expected), "{token}");
    assert!(
        token.contains("%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date="),
        "{token}"
    );
    assert!(
        token.contains("&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature="),
        "{token}"
    );
    let parsed = url::Url::parse(&format!("https://{token}")).unwrap();
    let param = |name: &str| {
        parsed
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_string())
    };
    assert_eq!(param("Action").as_deref(), Some("connect"));
    let signature = param("X-Amz-Signature").unwrap();
    let signature = signature.as_str();
    assert!(
        signature.len() == 64 && signature.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    // The refusal is the test's reason; the token itself is nowhere.
    let error = result["detail"]["data"]["error"].as_str().unwrap_or("");
    assert!(error.contains("password authentication failed"), "{result}");
    assert!(!Value::from(app.events().await)
        .to_string()
        .contains(signature));
    assert!(!app.logs().join("\n").contains(signature));
    assert!(!thread_texts(&app).contains(signature));
}
