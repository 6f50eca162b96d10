//! The test harness (STYLE §7): the real `drbot` binary on a free port with a temp store,
//! the Slack stand-in as its Web API, requests signed exactly as Slack signs them, and
//! moto server as AWS (started by `scripts/test`, reached through `AWS_ENDPOINT_URL`).

#![allow(dead_code)]

pub mod alb;
pub mod aws;
pub mod browser;
pub mod flow;
pub mod insider;
pub mod postgres;
pub mod region;
pub mod socket_mode;
pub mod stall;
pub mod standin;
pub mod statuspage;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub use standin::{SlackStandIn, BOT_TOKEN, BOT_USER};

pub const SIGNING_SECRET: &str = "8f2c1e0d-test-signing-secret";
pub const OPS_CHANNEL: &str = "C0123OPS";
pub const OTHER_CHANNEL: &str = "C0999RANDOM";
pub const REQUESTER: &str = "U0ONCALL1";
pub const OFFICER: &str = "U0SECOFF1";
pub const OFFICER_2: &str = "U0SECOFF2";

/// The configuration most tests run with.
pub const CONFIG: &str = r#"
[slack]
command_channels = ["C0123OPS"]
incident_channel_prefix = "inc"

[approval]
officers = ["U0SECOFF1", "U0SECOFF2"]
approve_reactions = ["white_check_mark", "+1"]
reject_reactions = ["x"]
ttl = "15m"
allow_self_approval = false

[[ecs.services]]
name = "api"
cluster = "aifai-prod"
service = "aifai-backend-service"

[[rds.databases]]
name = "main"
instance = "aifai-db"

[waf]
never_block = ["10.0.0.0/8"]
min_prefix_v4 = 16
min_prefix_v6 = 48
"#;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bot scopes declared in `deploy/slack/manifest.yml`.
pub fn manifest_bot_scopes() -> Vec<String> {
    let text =
        std::fs::read_to_string(repo_root().join("deploy/slack/manifest.yml")).expect("manifest");
    let mut scopes = Vec::new();
    let mut in_bot = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed == "bot:" {
            in_bot = true;
            continue;
        }
        if in_bot {
            if let Some(scope) = trimmed.strip_prefix("- ") {
                let scope = scope.split('#').next().unwrap_or("");
                scopes.push(scope.trim().trim_matches('"').to_string());
            } else if !trimmed.is_empty() && !trimmed.starts_with('#') {
                in_bot = false;
            }
        }
    }
    scopes
}

/// `v0=` + hex HMAC-SHA256 of `v0:{ts}:{body}`, as Slack computes it.
pub fn sign(secret: &str, ts: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The timestamp to sign the next request with. Slack signs every delivery when it sends
/// it (a retry too), and drbot refuses a signature it has seen: requests the tests send in
/// the same second get distinct timestamps, each well inside the 5-minute window.
pub fn signing_ts() -> i64 {
    static SENT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    now_unix() - SENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 120
}

/// A running `drbot serve` and everything around it.
pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub slack: SlackStandIn,
    pub dir: Arc<tempfile::TempDir>,
    pub http: reqwest::Client,
    child: Child,
    logs: Arc<Mutex<Vec<String>>>,
    config: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

static TRIGGER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Starts drbot with the default configuration.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(CONFIG).await
}

pub async fn spawn_app_with(config: &str) -> TestApp {
    spawn_app_with_args(config, &[]).await
}

/// Starts drbot with `serve --config drbot.toml` plus `args`.
pub async fn spawn_app_with_args(config: &str, args: &[&str]) -> TestApp {
    spawn_app_custom(config, args, &[]).await
}

/// Starts drbot with extra `serve` arguments and environment.
pub async fn spawn_app_custom(config: &str, args: &[&str], env: &[(&str, &str)]) -> TestApp {
    spawn_app_in(tempfile::tempdir().unwrap(), config, args, env).await
}

/// [`spawn_app_custom`] in a folder chosen beforehand (whose store URL the test needs, e.g.
/// to put a proxy in front of it).
pub async fn spawn_app_in(
    dir: tempfile::TempDir,
    config: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> TestApp {
    let slack = SlackStandIn::start().await;
    std::fs::write(dir.path().join("drbot.toml"), with_test_lease(config)).unwrap();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (child, addr, logs) = start_binary(dir.path(), &slack, &args, &env)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    TestApp {
        addr,
        slack,
        dir: Arc::new(dir),
        http: reqwest::Client::new(),
        child,
        logs,
        config: config.to_string(),
        args,
        env,
    }
}

/// Spawns `cmd` with its output thrown away, killed when dropped; `what` says what must be
/// installed when it cannot start.
pub fn spawn_quietly(cmd: &mut Command, what: &str) -> Child {
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect(what)
}

/// Replicas are taken for dead after 3 s of silence in tests (15 s by default), so a killed
/// replica's work passes on quickly.
pub fn with_test_lease(config: &str) -> String {
    if config.contains("[store]") {
        config.to_string()
    } else {
        format!("{config}\n[store]\nlease = \"3s\"\n")
    }
}

/// The environment `serve` runs with in tests.
pub fn serve_env(dir: &Path, slack: &SlackStandIn) -> Vec<(String, String)> {
    vec![
        ("SLACK_SIGNING_SECRET".into(), SIGNING_SECRET.into()),
        ("SLACK_BOT_TOKEN".into(), BOT_TOKEN.into()),
        ("DRBOT_SLACK_API_URL".into(), slack.api_url()),
        ("DRBOT_LISTEN".into(), "127.0.0.1:0".into()),
        ("DRBOT_DATABASE_URL".into(), database_url(dir)),
        ("DRBOT_LOG_FORMAT".into(), "json".into()),
        ("RUST_LOG".into(), "info".into()),
        ("AWS_EC2_METADATA_DISABLED".into(), "true".into()),
        (
            "DRBOT_TEST_CLOCK".into(),
            dir.join("clock").to_string_lossy().into_owned(),
        ),
    ]
}

/// The PostgreSQL server the suite runs against instead of SQLite (`scripts/test` sets it
/// for its second run), as an admin URL: `postgres://postgres@127.0.0.1:5432/test`.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var("DRBOT_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

pub fn on_postgres() -> bool {
    postgres_admin_url().is_some()
}

/// The store of the app whose folder is `dir`: SQLite inside it, or a PostgreSQL database
/// named after it.
pub fn database_url(dir: &Path) -> String {
    match postgres_admin_url() {
        Some(admin) => {
            let mut url = url::Url::parse(&admin).expect("DRBOT_TEST_POSTGRES is a URL");
            url.set_path(&database_name(dir));
            url.to_string()
        }
        None => format!("sqlite://{}", dir.join("drbot.db").display()),
    }
}

fn database_name(dir: &Path) -> String {
    let folder = dir.file_name().unwrap().to_string_lossy().to_lowercase();
    let clean: String = folder
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("drbot_t_{clean}")
}

/// Creates the app's PostgreSQL database when the suite runs on PostgreSQL (once per folder).
pub async fn create_database(dir: &Path) {
    use sqlx::Connection;
    let Some(admin) = postgres_admin_url() else {
        return;
    };
    let name = database_name(dir);
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PostgreSQL at DRBOT_TEST_POSTGRES: {e}"));
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut conn)
        .await
        .unwrap();
    if exists.is_none() {
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

/// Starts the binary and waits for its "listening" log line.
pub async fn start_binary(
    dir: &Path,
    slack: &SlackStandIn,
    args: &[String],
    env: &[(String, String)],
) -> Result<(Child, std::net::SocketAddr, Arc<Mutex<Vec<String>>>), String> {
    create_database(dir).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["serve", "--config"])
        .arg(dir.join("drbot.toml"))
        .args(args)
        .current_dir(dir)
        .envs(serve_env(dir, slack))
        .envs(env.iter().cloned())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start drbot: {e}"))?;
    let stderr = child.stderr.take().unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = logs.clone();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if v.pointer("/fields/message").and_then(|m| m.as_str()) == Some("listening") {
                    if let Some(addr) = v.pointer("/fields/addr").and_then(|a| a.as_str()) {
                        if let Some(tx) = tx.take() {
                            let _ = tx.send(addr.parse().unwrap());
                        }
                    }
                }
            }
            eprintln!("[drbot] {line}");
            sink.lock().unwrap().push(line);
        }
    });
    match tokio::time::timeout(Duration::from_secs(30), rx).await {
        Ok(Ok(addr)) => Ok((child, addr, logs)),
        _ => {
            let status = child.try_wait().ok().flatten();
            Err(format!(
                "drbot did not start listening (exit: {status:?}); logs: {:?}",
                logs.lock().unwrap()
            ))
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn db_url(&self) -> String {
        self.env
            .iter()
            .find(|(k, _)| k == "DRBOT_DATABASE_URL")
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| database_url(self.dir.path()))
    }

    /// Moves drbot's time forward by `by` (it follows `DRBOT_TEST_CLOCK`, a file in its
    /// folder, every 20 ms; its timer loop wakes when time moves). Kept across restarts.
    pub fn advance_clock(&self, by: Duration) {
        let path = self.dir.path().join("clock");
        let now: i64 = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        let tmp = self.dir.path().join("clock.tmp");
        std::fs::write(&tmp, (now + by.as_millis() as i64).to_string()).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }

    /// One step of drbot's time running fast: a second of it, then 50 ms of real time for
    /// its loops to act on it.
    async fn tick(&self) {
        self.advance_clock(Duration::from_secs(1));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    /// Lets drbot's time run fast ([`Self::tick`]) until `done` holds (for what waits on
    /// its timers: Slack's call timeout and pacing, retries); true if it did.
    pub async fn run_time_until(&self, mut done: impl FnMut() -> bool) -> bool {
        for _ in 0..600 {
            if done() {
                return true;
            }
            self.tick().await;
        }
        done()
    }

    /// Awaits `work` while drbot's time runs fast ([`Self::tick`]; for what waits on a
    /// timer: a lease, an expiry, a timed unblock, the SDK's retry backoff).
    pub async fn with_time_running<F: std::future::Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            tokio::select! {
                out = &mut work => return out,
                () = self.tick() => {}
            }
        }
    }

    /// Lets `secs` seconds of drbot's time pass ([`Self::tick`]), so that every timer
    /// falling due meanwhile fires (for "and then nothing more happens").
    pub async fn run_time(&self, secs: u32) {
        for _ in 0..secs {
            self.tick().await;
        }
    }

    /// A direct connection to the bot's store (as someone with database access would have).
    pub async fn db(&self) -> sqlx::AnyConnection {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let url = self.db_url();
        let url = url.replace("sqlite://", "sqlite:");
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }

    /// `GET /metrics`, as Prometheus scrapes it.
    pub async fn metrics(&self) -> String {
        self.http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The bot's process id (None once it has exited).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// How many reactions drbot adds to a request (approve + reject) under this config.
    pub fn settings_reaction_count(&self) -> usize {
        let config: toml::Value = toml::from_str(&self.config).unwrap();
        let count = |key: &str, default: usize| {
            config
                .get("approval")
                .and_then(|a| a.get(key))
                .and_then(|v| v.as_array())
                .map_or(default, |a| a.len())
        };
        count("approve_reactions", 2) + count("reject_reactions", 1)
    }

    /// Log lines at WARN or ERROR: on a happy path there should be none (but the warning
    /// that the suite's `DRBOT_TEST_CLOCK` is set).
    pub fn warnings(&self) -> Vec<String> {
        self.logs()
            .into_iter()
            .filter(|l| !l.contains("DRBOT_TEST_CLOCK"))
            // The start-up note on an open `[access]` (most tests name no responders).
            .filter(|l| !l.contains("[access] responders is empty"))
            .filter(|l| l.contains("\"level\":\"WARN\"") || l.contains("\"level\":\"ERROR\""))
            .collect()
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// A slash command to send: `app.slash("help").as_user(U).in_channel(C).send()`.
    pub fn slash(&self, text: &str) -> Slash<'_> {
        Slash {
            app: self,
            text: text.to_string(),
            user: REQUESTER.to_string(),
            channel: OPS_CHANNEL.to_string(),
        }
    }

    /// POSTs `body` to `path`, signed with the right secret at the current time.
    pub async fn post_signed(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
    ) -> reqwest::Response {
        let ts = signing_ts();
        self.post_with(
            path,
            content_type,
            body,
            Some(ts),
            Some(sign(SIGNING_SECRET, ts, body)),
            None,
        )
        .await
    }

    /// POSTs `body` signed at `ts` exactly as a captured request would be sent again.
    pub async fn post_signed_at(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        ts: i64,
    ) -> reqwest::Response {
        let signature = sign(SIGNING_SECRET, ts, body);
        self.post_with(path, content_type, body, Some(ts), Some(signature), None)
            .await
    }

    pub async fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: &str,
        ts: Option<i64>,
        signature: Option<String>,
        retry: Option<u32>,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body.to_string());
        if let Some(ts) = ts {
            request = request.header("x-slack-request-timestamp", ts.to_string());
        }
        if let Some(sig) = signature {
            request = request.header("x-slack-signature", sig);
        }
        if let Some(n) = retry {
            request = request
                .header("x-slack-retry-num", n.to_string())
                .header("x-slack-retry-reason", "http_timeout");
        }
        request.send().await.expect("drbot answers")
    }

    /// Sends an Events API envelope around `event`, signed, with an optional retry number.
    pub async fn event(
        &self,
        event_id: &str,
        event: Value,
        retry: Option<u32>,
    ) -> reqwest::Response {
        let body = envelope(event_id, event).to_string();
        let ts = signing_ts();
        self.post_with(
            "/slack/events",
            "application/json",
            &body,
            Some(ts),
            Some(sign(SIGNING_SECRET, ts, &body)),
            retry,
        )
        .await
    }

    /// Runs a drbot subcommand against this app's store and configuration.
    pub async fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_drbot"))
            .args(args)
            .current_dir(self.dir.path())
            .env("DRBOT_DATABASE_URL", self.db_url())
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .await
            .unwrap()
    }

    /// Every stored event (through the real export command).
    pub async fn events(&self) -> Vec<Value> {
        let out = self
            .cli(&[
                "timeline",
                "export",
                "--incident",
                "all",
                "--format",
                "json",
            ])
            .await;
        assert!(
            out.status.success(),
            "export failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["events"].as_array().unwrap().clone()
    }

    pub async fn events_of_kind(&self, kind: &str) -> Vec<Value> {
        self.events()
            .await
            .into_iter()
            .filter(|e| e["kind"] == kind)
            .collect()
    }

    /// Asks the process to stop, as ECS does (SIGTERM), and waits for it to exit.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("drbot stops within 20 s of SIGTERM")
            .unwrap()
    }

    /// Stops the process at once, as `kill -9` would.
    /// Waits up to `at_most` for the process to end (killed by a test's hook, say); true
    /// when it has.
    pub async fn wait_exit(&mut self, at_most: Duration) -> bool {
        let until = std::time::Instant::now() + at_most;
        loop {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return true;
            }
            if std::time::Instant::now() >= until {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The process is still running.
    pub fn child_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Starts another replica: the same store, configuration, environment and Slack.
    pub async fn another_replica(&self) -> TestApp {
        let (child, addr, logs) = start_binary(self.dir.path(), &self.slack, &self.args, &self.env)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        TestApp {
            addr,
            slack: self.slack.clone(),
            dir: self.dir.clone(),
            http: reqwest::Client::new(),
            child,
            logs,
            config: self.config.clone(),
            args: self.args.clone(),
            env: self.env.clone(),
        }
    }

    /// Starts the binary again on the same store with `config` (what an operator does
    /// after changing `drbot.toml`).
    pub async fn restart_with(&mut self, config: &str) {
        self.config = config.to_string();
        self.restart().await;
    }

    /// Starts the binary again on the same store and configuration.
    pub async fn restart(&mut self) {
        self.kill().await;
        std::fs::write(
            self.dir.path().join("drbot.toml"),
            with_test_lease(&self.config),
        )
        .unwrap();
        let (child, addr, logs) = start_binary(self.dir.path(), &self.slack, &self.args, &self.env)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        self.child = child;
        self.addr = addr;
        self.logs = logs;
    }
}

pub fn envelope(event_id: &str, event: Value) -> Value {
    json!({
        "token": "deprecated-verification-token",
        "team_id": "T0DRBOT",
        "api_app_id": "A0DRBOT",
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now_unix(),
        "authorizations": [{"team_id": "T0DRBOT", "user_id": BOT_USER, "is_bot": true}]
    })
}

pub struct Slash<'a> {
    app: &'a TestApp,
    text: String,
    user: String,
    channel: String,
}

impl Slash<'_> {
    /// Sent by `user` (a builder step, named as the tests read: `slash(..).as_user(..)`).
    #[allow(clippy::wrong_self_convention)]
    pub fn as_user(mut self, user: &str) -> Self {
        self.user = user.to_string();
        self
    }

    pub fn in_channel(mut self, channel: &str) -> Self {
        self.channel = channel.to_string();
        self
    }

    /// The form body exactly as Slack posts it.
    pub fn body(&self) -> String {
        let response_url = self
            .app
            .slack
            .response_url(&format!("{}-{}", self.user, now_unix()));
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", "deprecated-verification-token")
            .append_pair("team_id", "T0DRBOT")
            .append_pair("team_domain", "drbot-test")
            .append_pair("channel_id", &self.channel)
            .append_pair("channel_name", "ops")
            .append_pair("user_id", &self.user)
            .append_pair("user_name", "someone")
            .append_pair("command", "/dr")
            .append_pair("text", &self.text)
            .append_pair("api_app_id", "A0DRBOT")
            .append_pair("is_enterprise_install", "false")
            .append_pair("response_url", &response_url)
            // Slack's trigger ids are unique per invocation, so no two bodies are the same.
            .append_pair(
                "trigger_id",
                &format!(
                    "1337.{}.abcdef",
                    TRIGGER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                ),
            )
            .finish()
    }

    pub async fn send(self) -> reqwest::Response {
        let body = self.body();
        self.app
            .post_signed(
                "/slack/commands",
                "application/x-www-form-urlencoded",
                &body,
            )
            .await
    }

    /// Sends and returns the ephemeral text, asserting a 200.
    pub async fn reply(self) -> String {
        let response = self.send().await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["response_type"], "ephemeral", "{body}");
        body["text"].as_str().unwrap().to_string()
    }
}

/// moto server's URL, from `scripts/test`.
pub fn moto_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").expect(
        "AWS_ENDPOINT_URL is not set: run the tests with scripts/test, which starts moto server",
    )
}
