//! `drbot sandbox` (SPEC §2, §11): the whole product on one machine, without a Slack
//! workspace or an AWS account. drbot's real code — the HTTP endpoints with their signature
//! checks, the router, the gate, the store (SQLite in the sandbox folder), the outbox and the
//! AWS SDK calls — runs against the AWS emulator at `AWS_ENDPOINT_URL` (moto, seeded with
//! the plan's estate) and a Slack-like workspace kept here, shown by a console in the
//! browser. Kept apart from `serve`: nothing here runs in production.

mod console;
mod estate;
mod notices;
mod panel;
mod workspace;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Environment, Secret, Settings};
use crate::router::CommandSet;
use crate::scenarios::ScenarioSet;
use crate::startup::Application;

/// Why the sandbox stopped or could not start; each said in one line.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot listen on {addr} ({source}): something else uses port {}; stop it, or choose another port with `scripts/sandbox --port 3100`", addr.port())]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the sandbox runs against an AWS emulator, and AWS_ENDPOINT_URL is not set: start it with `scripts/sandbox` (it installs and starts moto), never against a real account")]
    NoEmulator,
    #[error("{var} is {value}, which is not on this machine: the sandbox only ever talks to a local AWS emulator (127.0.0.1, ::1 or localhost), never to a real account; unset it or point it at the emulator `scripts/sandbox` starts")]
    NotLoopback { var: String, value: String },
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Seed(#[from] estate::SeedError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Definitions(#[from] crate::router::DefinitionError),
    #[error(transparent)]
    Startup(#[from] crate::startup::StartupError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the console stopped: {0}")]
    Console(String),
}

/// The emulator's endpoint (`AWS_ENDPOINT_URL`), once every AWS endpoint setting is known to
/// be on this machine; then the process's AWS credentials are replaced by dummy ones (and
/// every other source of credentials or endpoints is turned off), so that whatever the shell
/// held, no call can reach or be signed for a real account.
fn local_emulator() -> Result<String, SandboxError> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or(SandboxError::NoEmulator)?;
    for (var, value) in std::env::vars() {
        if var == "AWS_ENDPOINT_URL" || var.starts_with("AWS_ENDPOINT_URL_") {
            if !crate::web::is_loopback(&value) {
                return Err(SandboxError::NotLoopback { var, value });
            }
        }
    }
    for var in [
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    ] {
        std::env::remove_var(var);
    }
    for (var, value) in [
        ("AWS_ACCESS_KEY_ID", "sandbox"),
        ("AWS_SECRET_ACCESS_KEY", "sandbox"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", "/dev/null"),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
    ] {
        std::env::set_var(var, value);
    }
    Ok(endpoint)
}

/// Runs the sandbox until Ctrl-C; every failure is one line.
pub async fn run(port: u16, dir: PathBuf) -> Result<(), SandboxError> {
    let endpoint = local_emulator()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| SandboxError::Listen { addr, source })?;
    std::fs::create_dir_all(&dir).map_err(|source| SandboxError::File {
        what: "cannot create the sandbox folder",
        path: dir.clone(),
        source,
    })?;
    // Each sandbox starts from the estate as seeded: a fresh store beside a fresh emulator.
    for file in ["drbot.db", "drbot.db-wal", "drbot.db-shm"] {
        let _ = std::fs::remove_file(dir.join(file));
    }

    eprintln!("drbot sandbox: seeding the plan's estate into the AWS emulator at {endpoint}");
    let estate = estate::seed(&endpoint).await?;
    let config = estate::config(&estate);
    let config_path = dir.join("drbot.toml");
    std::fs::write(&config_path, &config).map_err(|source| SandboxError::File {
        what: "cannot write",
        path: config_path.clone(),
        source,
    })?;
    let settings = Settings::parse(&config, &config_path.display().to_string())?;
    let commands = CommandSet::embedded()?;
    let scenarios = ScenarioSet::embedded(&commands)?;
    let scenario_list: Vec<(String, String)> = scenarios
        .ids()
        .into_iter()
        .filter_map(|id| scenarios.get(&id).map(|s| (id.clone(), s.title.clone())))
        .collect();

    let base = format!("http://{addr}");
    let secret = format!("sandbox-{:x}", crate::clock::varying());
    let notices = notices::Notices::default();
    let console = console::Console::new(
        base.clone(),
        secret.clone(),
        scenario_list,
        estate,
        notices.clone(),
    );
    let shared = console.clone();
    let server = tokio::spawn(async move { axum::serve(listener, console.router()).await });

    let database_url = format!("sqlite://{}", dir.join("drbot.db").display());
    let env = Environment {
        signing_secret: Some(Secret::new(secret)),
        app_token: None,
        socket_mode: false,
        metrics_listen: None,
        audit_key: None,
        bot_token: Secret::new("xoxb-sandbox-token".to_string()),
        slack_api_url: format!("{base}/slack-api"),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        database_url: database_url.clone(),
    };
    let app = Application::build_with(
        settings,
        commands,
        scenarios,
        env,
        Some(notices.notifiers()),
    )
    .await?;
    let drbot = format!("http://{}", app.local_addr());
    let _ = shared.drbot.set(drbot.clone());
    let store = crate::store::Store::open(&database_url).await?;
    let _ = shared.store.set(store);
    println!("drbot sandbox: ready. Open {base}/ in a browser (drbot itself listens on {drbot}; Ctrl-C stops both)");
    let running = app.run_until_stopped(crate::startup::shutdown_signal());
    tokio::select! {
        done = running => Ok(done?),
        served = server => match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SandboxError::Console(e.to_string())),
            Err(e) => Err(SandboxError::Console(e.to_string())),
        },
    }
}
