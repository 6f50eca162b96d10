//! `drbot sandbox` (SPEC §2, §11): the whole product on one machine, without a Slack
//! workspace or an AWS account. drbot's real code — the HTTP endpoints with their signature
//! checks, the router, the gate, the store (SQLite in the sandbox folder), the outbox and the
//! AWS SDK calls — runs against the AWS emulator at `AWS_ENDPOINT_URL` (moto, seeded with
//! the plan's estate) and a Slack-like workspace kept here, shown by a console in the
//! browser. Kept apart from `serve`: nothing here runs in production.

mod console;
mod estate;
mod panel;
mod workspace;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::{Environment, Secret, Settings};
use crate::router::CommandSet;
use crate::scenarios::ScenarioSet;
use crate::startup::Application;

/// Runs the sandbox until Ctrl-C; every failure is one line.
pub async fn run(port: u16, dir: PathBuf) -> Result<(), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        format!("cannot listen on {addr} ({e}): something else uses port {port}; stop it, or choose another port with `scripts/sandbox --port 3100`")
    })?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .ok_or("the sandbox runs against an AWS emulator, and AWS_ENDPOINT_URL is not set: start it with `scripts/sandbox` (it installs and starts moto), never against a real account")?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the sandbox folder {}: {e}", dir.display()))?;
    // Each sandbox starts from the estate as seeded: a fresh store beside a fresh emulator.
    for file in ["drbot.db", "drbot.db-wal", "drbot.db-shm"] {
        let _ = std::fs::remove_file(dir.join(file));
    }

    eprintln!("drbot sandbox: seeding the plan's estate into the AWS emulator at {endpoint}");
    let estate = estate::seed(&endpoint).await?;
    let config = estate::config(&estate);
    let config_path = dir.join("drbot.toml");
    std::fs::write(&config_path, &config)
        .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let settings =
        Settings::parse(&config, &config_path.display().to_string()).map_err(|e| e.to_string())?;
    let commands = CommandSet::embedded().map_err(|e| e.to_string())?;
    let scenarios = ScenarioSet::embedded(&commands).map_err(|e| e.to_string())?;
    let scenario_list: Vec<(String, String)> = scenarios
        .ids()
        .into_iter()
        .filter_map(|id| scenarios.get(&id).map(|s| (id.clone(), s.title.clone())))
        .collect();

    let base = format!("http://{addr}");
    let secret = format!("sandbox-{:x}", crate::clock::varying());
    let console = console::Console::new(base.clone(), secret.clone(), scenario_list, estate);
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
    let app = Application::build(settings, commands, scenarios, env)
        .await
        .map_err(|e| e.to_string())?;
    let drbot = format!("http://{}", app.local_addr());
    let _ = shared.drbot.set(drbot.clone());
    let store = crate::store::Store::open(&database_url)
        .await
        .map_err(|e| e.to_string())?;
    let _ = shared.store.set(store);
    println!("drbot sandbox: ready. Open {base}/ in a browser (drbot itself listens on {drbot}; Ctrl-C stops both)");
    let running = app.run_until_stopped(crate::startup::shutdown_signal());
    tokio::select! {
        done = running => done.map_err(|e| e.to_string()),
        served = server => match served {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("the console stopped: {e}")),
            Err(e) => Err(format!("the console stopped: {e}")),
        },
    }
}
