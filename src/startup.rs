//! Wires `serve`: the store (migrated), Slack (`auth.test`), the HTTP listener. Tests and
//! `main` start the same thing; port 0 is allowed and the bound address is logged.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::app::App;
use crate::aws::AwsClients;
use crate::config::{Environment, Settings};
use crate::router::CommandSet;
use crate::scenarios::ScenarioSet;
use crate::server::http;
use crate::slack::client::{build_client, SlackApi, SlackError};
use crate::store::{redact_url, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Slack(#[from] SlackError),
    #[error("DRBOT_LISTEN: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
    #[error("DRBOT_AUDIT_KEY is not set, but the audit chain is keyed from event {0}: set the same key (events appended without it would break the chain)")]
    AuditKeyMissing(i64),
    #[error("DRBOT_AUDIT_KEY is not the key the audit chain is keyed with from event {seq} (key id {named}; this one is key id {ours}): set the same key on every replica")]
    AuditKeyDiffers {
        seq: i64,
        named: String,
        ours: String,
    },
    #[error("{0}")]
    Notify(String),
    #[error("[console]: {0}")]
    Console(String),
}

/// A test key host for the console's sign-in (`DRBOT_TEST_ALB_KEYS_URL`) is on this machine,
/// and warned about.
fn check_console(settings: &Settings) -> Result<(), StartupError> {
    let console = &settings.console;
    if let Some(url) = crate::server::console::test_keys_url() {
        if !crate::web::is_loopback(&url) {
            return Err(StartupError::Console(format!(
                "DRBOT_TEST_ALB_KEYS_URL is {url}, not on this machine: it exists only for tests (a local stand-in of the load balancer's key endpoint); unset it so the console verifies sign-ins with AWS's keys"
            )));
        }
        tracing::warn!(url = %url, "the console's sign-in keys come from DRBOT_TEST_ALB_KEYS_URL; never set it in production");
    }
    tracing::info!(
        load_balancer = %console.load_balancer_arn,
        people = console.people.len(),
        "the web console is on at /console, behind the load balancer's sign-in"
    );
    Ok(())
}

pub struct Application {
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    /// `/metrics` on its own address (`DRBOT_METRICS_LISTEN`), off the public listener.
    metrics_listener: Option<tokio::net::TcpListener>,
    /// HTTP from Slack, verified with this secret; or Socket Mode with this app token.
    transport: Transport,
}

enum Transport {
    Http(crate::config::Secret),
    SocketMode(crate::config::Secret),
}

impl Application {
    pub async fn build(
        settings: Settings,
        commands: CommandSet,
        scenarios: ScenarioSet,
        env: Environment,
    ) -> Result<Self, StartupError> {
        Self::build_with(settings, commands, scenarios, env, None).await
    }

    /// [`Self::build`], publishing to users through `notify` instead of the configured
    /// peers (the sandbox keeps its own status page and mail outbox).
    pub async fn build_with(
        settings: Settings,
        commands: CommandSet,
        scenarios: ScenarioSet,
        env: Environment,
        notify: Option<crate::notify::Notifiers>,
    ) -> Result<Self, StartupError> {
        let socket_mode = env.socket_mode;
        let store = Store::open_exclusively(&env.database_url)
            .await?
            .with_lease(settings.store.lease.as_duration());
        tracing::info!(store = %redact_url(&env.database_url), "store open and migrated");
        crate::store::set_audit_key(env.audit_key.as_ref().map(|k| k.expose()));
        let key = crate::store::audit_key();
        match (key, store.keyed_from().await?) {
            (Some(key), None) => {
                store
                    .append(
                        crate::store::NewEvent::new(
                            crate::store::EventKind::AuditKeyed,
                            "drbot",
                            "",
                            "the audit chain is keyed from here on (DRBOT_AUDIT_KEY): its hashes cannot be recomputed without the key".to_string(),
                        )
                        .detail(serde_json::json!({"key_id": crate::store::key_id(key)})),
                    )
                    .await?;
                tracing::info!("the audit chain is keyed from now on");
            }
            (Some(key), Some((seq, Some(named)))) if named != crate::store::key_id(key) => {
                return Err(StartupError::AuditKeyDiffers {
                    seq,
                    named,
                    ours: crate::store::key_id(key),
                })
            }
            (None, Some((seq, _))) => return Err(StartupError::AuditKeyMissing(seq)),
            _ => {}
        }
        if key.is_some() {
            crate::store::mark_chain_keyed();
        }

        let client = build_client(&env.slack_api_url)?;
        let mut slack = SlackApi::new(client, &env.bot_token, &env.slack_api_url);
        let identity = slack.authenticate().await?;
        tracing::info!(bot_user = %identity.user_id, team = %identity.team_id, "authenticated with Slack");

        let listener = tokio::net::TcpListener::bind(env.listen)
            .await
            .map_err(|source| StartupError::Bind {
                addr: env.listen,
                source,
            })?;
        let aws = AwsClients::from_env(settings.aws_timeouts()).await;
        // Where the plan has a backup region, drbot belongs there (check-config --aws says
        // so for any configuration).
        if settings.regions.backup.is_some() {
            if let Some(warning) = settings.placement_warning(aws.default_region().as_deref()) {
                tracing::warn!("{warning}");
            }
        }
        for problem in crate::actions::readiness::check_copies(&settings, &commands, &scenarios) {
            tracing::warn!("{problem} (check-config refuses it)");
        }
        for warning in settings
            .rds
            .databases
            .iter()
            .filter_map(|d| d.verification_warning())
        {
            tracing::warn!("{warning}");
        }
        for var in [
            crate::workers::alarms::TEST_CERTS_VAR,
            crate::aws::sns::TEST_CA_VAR,
        ] {
            if let Some(value) = std::env::var_os(var) {
                tracing::warn!(variable = var, value = ?value, "SNS signing certificates are also taken from a test stand-in; never set it in production");
            }
        }
        if let Some(rules) = std::env::var_os("DRBOT_TEST_RESOLVE") {
            // Tests only: restored instances' endpoints are dialled elsewhere.
            tracing::warn!(rules = ?rules, "restored databases are reached through DRBOT_TEST_RESOLVE; never set it in production");
        }
        if settings.access.is_open() {
            tracing::warn!("[access] responders is empty: anyone in a command channel or an incident channel may run every command; name the responders (user and user group ids)");
        }
        if settings.console.enabled {
            check_console(&settings)?;
        }
        let notify = match notify {
            Some(given) => given,
            None => crate::notify::Notifiers::new(&settings, |name| std::env::var(name).ok())
                .map_err(|e| StartupError::Notify(e.to_string()))?,
        };
        let app = Arc::new(App {
            notify,
            settings: Arc::new(settings),
            commands: Arc::new(commands),
            scenarios: Arc::new(scenarios),
            store,
            slack,
            aws,
            jobs: tokio::sync::Notify::new(),
            ready: Default::default(),
            members: Default::default(),
            slack_health: crate::app::SlackHealth::new(crate::clock::now()),
        });
        crate::workers::recover(&app).await?;
        let transport = match (env.app_token, env.signing_secret) {
            (Some(token), _) if socket_mode => Transport::SocketMode(token),
            (_, Some(secret)) => Transport::Http(secret),
            _ => unreachable!("Environment::for_transport requires one or the other"),
        };
        let metrics_listener = match env.metrics_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| StartupError::Bind { addr, source })?,
            ),
            None => None,
        };
        crate::metrics::init();
        Ok(Self {
            app,
            listener,
            metrics_listener,
            transport,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves until `shutdown` completes, then lets requests in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), StartupError> {
        let addr = self.local_addr();
        let with_metrics = self.metrics_listener.is_none();
        let router = match &self.transport {
            Transport::Http(secret) => {
                http::router(self.app.clone(), Some(secret.expose()), with_metrics)
            }
            Transport::SocketMode(_) => http::router(self.app.clone(), None, with_metrics),
        };
        if let Some(listener) = self.metrics_listener {
            let metrics_addr = listener.local_addr().ok();
            tracing::info!(addr = ?metrics_addr, "metrics listening");
            let metrics = http::metrics_router(self.app.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, metrics).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        if let Some(path) = std::env::var_os("DRBOT_TEST_CLOCK") {
            // Tests only: drbot's time follows this file (milliseconds ahead of the system
            // clock), so timers are tested by moving time instead of waiting.
            tracing::warn!(file = ?path, "drbot's time is moved by DRBOT_TEST_CLOCK; never set it in production");
            let path = std::path::PathBuf::from(path);
            if let Some(ms) = std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<i64>().ok())
            {
                crate::clock::set_offset_ms(ms);
            }
            crate::clock::follow_file(path);
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let workers = [
            tokio::spawn(crate::workers::run_jobs(self.app.clone(), stop_rx.clone())),
            tokio::spawn(crate::workers::run_expiry(
                self.app.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(crate::workers::run_heartbeat(
                self.app.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(crate::workers::access::run(
                self.app.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(crate::workers::runs::run(self.app.clone(), stop_rx.clone())),
            tokio::spawn(crate::workers::readiness::run(
                self.app.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(crate::server::home::run(self.app.clone(), stop_rx.clone())),
            tokio::spawn(crate::workers::alarms::run(
                self.app.clone(),
                stop_rx.clone(),
            )),
            tokio::spawn(crate::workers::names::run(self.app.clone(), stop_rx)),
        ];
        // The outbox stops last: what shutdown itself says still goes out.
        let (outbox_stop, outbox_rx) = tokio::sync::watch::channel(false);
        let outbox = tokio::spawn(crate::workers::outbox::run(self.app.clone(), outbox_rx));
        let socket = match &self.transport {
            Transport::SocketMode(token) => Some(
                crate::server::socket::Socket::connect(self.app.clone(), token)
                    .await
                    .map_err(StartupError::Slack)?,
            ),
            Transport::Http(_) => None,
        };
        // Store migrated, Slack authenticated, workers started: ready until shutdown begins.
        self.app
            .ready
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let stopping = self.app.clone();
        let shutdown = async move {
            shutdown.await;
            stopping
                .ready
                .store(false, std::sync::atomic::Ordering::Relaxed);
        };
        tracing::info!(%addr, commands = self.app.commands.all().len(), "listening");
        crate::memory::release_startup_code();
        let served = axum::serve(self.listener, router)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(StartupError::Serve);
        if let Some(socket) = socket {
            socket.shutdown().await;
        }
        let _ = stop_tx.send(true);
        for worker in workers {
            let _ = worker.await;
        }
        // Executions still running will not finish: say so now rather than at the next start.
        if let Err(e) = crate::workers::interrupt_executing(
            &self.app,
            crate::store::Whose::Mine,
            "interrupted: drbot was stopped (SIGTERM) while executing; check AWS before asking again",
        )
        .await
        {
            tracing::error!(error = %e, "could not mark unfinished requests interrupted");
        }
        // The head at shutdown, recorded and posted (SPEC §12).
        if let Err(e) = self
            .app
            .store
            .checkpoint(
                "shutdown",
                self.app.settings.audit.checkpoint_channel.as_deref(),
            )
            .await
        {
            tracing::error!(error = %e, "could not record the shutdown checkpoint");
        }
        // A moment for the outbox to send what is due (what it cannot is sent at the next
        // start, or by another replica).
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = outbox_stop.send(true);
        let _ = outbox.await;
        if let Err(e) = self.app.store.retire().await {
            tracing::error!(error = %e, "could not retire this replica");
        }
        tracing::info!("stopped");
        served
    }
}

/// Completes on SIGTERM (ECS stopping the task) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested");
}
