//! The command line (SPEC §2). Every failure is one line on stderr and a non-zero exit.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::aws::{reachability, AwsClients};
use crate::config::{database_url_from_process, default_config_path, Environment, Settings};
use crate::router::CommandSet;
use crate::scenarios::ScenarioSet;
use crate::startup::{shutdown_signal, Application};
use crate::store::Store;
use crate::timeline::{self, Format};

#[derive(Debug, Parser)]
#[command(
    name = "drbot",
    version,
    about = "Slack ChatOps bot that runs the disaster-recovery plan on AWS"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the bot: Slack endpoints, health, readiness and metrics over HTTP.
    Serve {
        /// The configuration file.
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
        /// A directory of command definitions replacing the embedded `commands/`.
        #[arg(long)]
        commands: Option<PathBuf>,
        /// Receive commands, events and button clicks over Slack's Socket Mode (needs
        /// SLACK_APP_TOKEN) instead of HTTP: no public URL. Health, readiness and metrics
        /// stay on DRBOT_LISTEN.
        #[arg(long)]
        socket_mode: bool,
    },
    /// Validate the configuration and command files offline (and AWS resources with --aws).
    CheckConfig {
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
        #[arg(long)]
        commands: Option<PathBuf>,
        /// Also check that each configured ECS service, RDS instance and WAF IP set exists.
        #[arg(long)]
        aws: bool,
    },
    /// Incident timelines.
    Timeline {
        #[command(subcommand)]
        command: TimelineCommand,
    },
    /// The audit hash chain.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Exit 0 when the local `serve` (at DRBOT_LISTEN) answers `/readyz` with 200; for
    /// container health checks in an image without curl.
    Healthcheck,
    /// The quarterly DR review: incidents and drills of the period with RTO/RPO achieved
    /// against their targets, approval times, and charts.
    Report {
        /// First day, `YYYY-MM-DD` (default: the start of this quarter).
        #[arg(long)]
        from: Option<String>,
        /// Last day, `YYYY-MM-DD` (default: today).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "html")]
        format: Format,
    },
    /// The change log (SPEC §18): every request of the period in any channel — command,
    /// exact change, requester, approvers or "configuration", waits, outcome with AWS
    /// request ids — and the refused, rejected, expired and cancelled ones.
    Changes {
        /// First day, `YYYY-MM-DD` (default: the start of this quarter).
        #[arg(long)]
        from: Option<String>,
        /// Last day, `YYYY-MM-DD` (default: today).
        #[arg(long)]
        to: Option<String>,
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
    },
    /// The whole product in a browser, without Slack or AWS: drbot against the AWS emulator
    /// at AWS_ENDPOINT_URL (seeded with the plan's estate) and a Slack-like console. Start it
    /// with `scripts/sandbox`, which installs and starts the emulator.
    Sandbox {
        /// The console's port on 127.0.0.1.
        #[arg(long, default_value_t = 3000)]
        port: u16,
        /// Where the sandbox keeps its store and configuration (wiped at each start).
        #[arg(long, default_value = ".sandbox")]
        dir: PathBuf,
    },
    /// Evidence for an auditor.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// Print the least-privilege IAM policy (JSON) for the configured resources.
    IamPolicy {
        #[arg(long, default_value_os_t = default_config_path())]
        config: PathBuf,
        /// The AWS account id in the ARNs (default: AWS_ACCOUNT_ID, else `*`).
        #[arg(long)]
        account: Option<String>,
        /// The region in the ARNs (default: AWS_REGION, else `*`).
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TimelineCommand {
    /// Print an incident's timeline (`--incident all` for every event).
    Export {
        #[arg(long)]
        incident: String,
        #[arg(long, value_enum, default_value = "md")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
pub enum EvidenceCommand {
    /// Write one archive (tar) with the period's timelines (md/json/html), the audit log,
    /// the review report, the checkpoints, the chain's verification and a SHA-256 manifest.
    Export {
        /// First day, `YYYY-MM-DD` (default: the start of this quarter).
        #[arg(long)]
        from: Option<String>,
        /// Last day, `YYYY-MM-DD` (default: today).
        #[arg(long)]
        to: Option<String>,
        /// The archive to write (e.g. `evidence-2026q4.tar`); never overwritten.
        #[arg(long)]
        out: PathBuf,
        /// A checkpoint kept elsewhere: `SEQ:HASH` (see `audit verify`).
        #[arg(long, value_parser = parse_checkpoint)]
        checkpoint: Vec<(i64, String)>,
        /// The configuration: checkpoints posted to `[audit] checkpoint_channel` are read
        /// back from Slack (SLACK_BOT_TOKEN) and checked too.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Re-compute the hash chain over every stored event, and check it against checkpoints
    /// (given, and those drbot recorded), so a log cut short is detected too.
    Verify {
        /// A checkpoint kept elsewhere (e.g. the one drbot posted in Slack): `SEQ:HASH`.
        #[arg(long, value_parser = parse_checkpoint)]
        checkpoint: Vec<(i64, String)>,
        /// The configuration: the checkpoints drbot posted to its `[audit]
        /// checkpoint_channel` are read back from Slack (SLACK_BOT_TOKEN) and checked too.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn parse_checkpoint(s: &str) -> Result<(i64, String), String> {
    let (seq, hash) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not SEQ:HASH (e.g. 1042:9f86d0…)"))?;
    let seq = seq
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("'{seq}' is not an event number"))?;
    let hash = hash.trim().to_ascii_lowercase();
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("'{hash}' is not a 64-digit hex hash"));
    }
    Ok((seq, hash))
}

/// Opens the store the offline commands read: it must exist (they never create one, so a
/// mistyped path is an error, not an empty log that "verifies").
async fn open_existing_store() -> Result<Store, Failure> {
    let url = database_url_from_process();
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        let path = path.split('?').next().unwrap_or(path);
        if !Path::new(path).exists() {
            return Err(Failure(format!(
                "DRBOT_DATABASE_URL: there is no store at {path} (nothing was created; check the path)"
            )));
        }
    }
    crate::store::set_audit_key(
        std::env::var("DRBOT_AUDIT_KEY")
            .ok()
            .filter(|k| !k.is_empty())
            .as_deref(),
    );
    Ok(Store::open(&url).await?)
}

/// A failure to report: one line, exit 1.
#[derive(Debug)]
pub struct Failure(pub String);

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure(e.to_string())
    }
}

fn load_commands(dir: Option<&Path>) -> Result<(CommandSet, ScenarioSet), Failure> {
    let (commands, scenarios) = match dir {
        Some(dir) => {
            let commands = CommandSet::from_dir(dir)?;
            // DIR/scenarios replaces the shipped scenarios only when it exists.
            let scenarios = if dir.join("scenarios").is_dir() {
                ScenarioSet::from_dir(dir, &commands)?
            } else {
                ScenarioSet::embedded(&commands)?
            };
            (commands, scenarios)
        }
        None => {
            let commands = CommandSet::embedded()?;
            let scenarios = ScenarioSet::embedded(&commands)?;
            (commands, scenarios)
        }
    };
    crate::actions::check_commands(&commands)?;
    Ok((commands, scenarios))
}

pub async fn run(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Serve {
            config,
            commands,
            socket_mode,
        } => {
            let settings = Settings::load_or_env(&config)?;
            let (commands, scenarios) = load_commands(commands.as_deref())?;
            let env = Environment::from_process(socket_mode)?;
            let app = Application::build(settings, commands, scenarios, env).await?;
            app.run_until_stopped(shutdown_signal()).await?;
            Ok(())
        }
        Command::CheckConfig {
            config,
            commands,
            aws,
        } => {
            let settings = Settings::load_or_env(&config)?;
            let (set, scenarios) = load_commands(commands.as_deref())?;
            let config = match std::env::var(crate::config::CONFIG_TEXT_VAR) {
                Ok(text) if !text.trim().is_empty() => {
                    std::path::PathBuf::from(crate::config::CONFIG_TEXT_VAR)
                }
                _ => config,
            };
            println!(
                "{}: ok ({} services, {} databases, {} IP sets, {} officers)",
                config.display(),
                settings.ecs.services.len(),
                settings.rds.databases.len(),
                settings.waf.ip_sets.len(),
                settings.approval.officers.len()
            );
            let with_plans: Vec<&str> = scenarios
                .all()
                .filter(|s| s.plan.is_some())
                .map(|s| s.id.as_str())
                .collect();
            println!(
                "{}: ok ({} commands, {} scenarios: {}; plans: {})",
                set.source,
                set.all().len(),
                scenarios.ids().len(),
                scenarios.ids().join(", "),
                with_plans.join(", ")
            );
            // The shipped plans name the example configuration's resources: a deployment that
            // does not use them is warned. Plans of the operator's own (`--commands`) are
            // meant to run here: what is wrong in them is an error.
            let problems = crate::actions::runs::check(&settings, &set, &scenarios);
            // Only scenarios of the operator's own directory are theirs.
            let own = commands
                .as_deref()
                .filter(|dir| dir.join("scenarios").is_dir());
            let source = match own {
                Some(dir) => dir.display().to_string(),
                None => "embedded commands".to_string(),
            };
            let level = if own.is_some() { "error" } else { "warning" };
            for problem in &problems {
                eprintln!("{level}: {source}/{problem}");
            }
            if own.is_some() && !problems.is_empty() {
                return Err(Failure(format!(
                    "{source}: {} plan step(s) cannot run with {}",
                    problems.len(),
                    config.display()
                )));
            }
            let mut copies = crate::actions::readiness::check_copies(&settings, &set, &scenarios);
            copies.extend(crate::alarms::check_routes(&settings, &scenarios));
            copies.extend(crate::actions::notify_users::check_components(
                &settings, &scenarios,
            ));
            for problem in &copies {
                eprintln!("error: {}: {problem}", config.display());
            }
            if !copies.is_empty() {
                return Err(Failure(format!(
                    "{}: {}",
                    config.display(),
                    copies.join("; ")
                )));
            }
            for note in &set.notes {
                println!("note: {note}");
            }
            for warning in settings
                .rds
                .databases
                .iter()
                .filter_map(|d| d.verification_warning())
            {
                eprintln!("warning: {}: {warning}", config.display());
            }
            // SSM Parameter Store's standard tier holds 4 KB (the deploy kit keeps the file there).
            if let Ok(meta) = std::fs::metadata(&config) {
                if meta.len() > 4096 {
                    println!(
                        "note: {} is {} bytes: in SSM Parameter Store it needs the Advanced tier (aws ssm put-parameter --tier Advanced); the standard tier holds 4 KB",
                        config.display(),
                        meta.len()
                    );
                }
            }
            if aws {
                let clients = AwsClients::from_env(settings.aws_timeouts()).await;
                if let Some(warning) =
                    settings.placement_warning(clients.default_region().as_deref())
                {
                    eprintln!("warning: {}: {warning}", config.display());
                }
                let problems = reachability::check(&clients, &settings).await;
                if let Some(first) = problems.first() {
                    for p in &problems[1..] {
                        eprintln!("error: {}: {p}", config.display());
                    }
                    return Err(Failure(format!("{}: {first}", config.display())));
                }
                println!("aws: ok (every configured service, database and IP set answered)");
            }
            Ok(())
        }
        Command::Timeline {
            command: TimelineCommand::Export { incident, format },
        } => {
            let store = open_existing_store().await?;
            let filter = (incident != "all").then_some(incident.as_str());
            let events = store.events(filter).await?;
            if filter.is_some() && events.is_empty() {
                return Err(Failure(format!("--incident {incident}: no events recorded for this incident (`--incident all` exports everything)")));
            }
            let report = store.verify().await?;
            let title = if filter.is_some() {
                format!("incident {incident}")
            } else {
                "all events".to_string()
            };
            let head = store.head().await?;
            // The scenario's RTO for an incident still open (a resolved one records its own).
            let scenario = timeline::summary::scenario_of(&events);
            let rto_fallback = Some(scenario).filter(|id| !id.is_empty()).and_then(|id| {
                let commands = CommandSet::embedded().ok()?;
                let scenarios = ScenarioSet::embedded(&commands).ok()?;
                scenarios.get(&id)?.rto.seconds()
            });
            let export = timeline::Export {
                title,
                events: &events,
                report: &report,
                head,
                names: timeline::names::Names::new(store.names().await?),
                summary: filter.and_then(|_| timeline::summary::summarise(&events, rto_fallback)),
            };
            print!("{}", timeline::render(format, &export));
            // Every export is a checkpoint of the head it showed.
            store.checkpoint("export", None).await?;
            Ok(())
        }
        Command::Healthcheck => Ok(crate::healthcheck::run()?),
        Command::Report { from, to, format } => {
            let period =
                crate::report::Period::parse(from.as_deref(), to.as_deref(), crate::clock::now())?;
            let store = open_existing_store().await?;
            let events = store.events(None).await?;
            let scenarios = CommandSet::embedded()
                .ok()
                .and_then(|c| ScenarioSet::embedded(&c).ok());
            let report = crate::report::build(&events, period, |id| {
                scenarios.as_ref()?.get(id)?.rto.seconds()
            });
            print!("{}", crate::report::render(format, &report));
            Ok(())
        }
        Command::Changes { from, to, format } => {
            let period =
                crate::report::Period::parse(from.as_deref(), to.as_deref(), crate::clock::now())?;
            let store = open_existing_store().await?;
            let events = store.events(None).await?;
            let log = crate::report::changes::build(&events, period);
            print!("{}", crate::report::changes::render(format, &log, period));
            Ok(())
        }
        Command::IamPolicy {
            config,
            account,
            region,
        } => {
            let settings = Settings::load(&config)?;
            let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
            let (Some(account), Some(region)) = (
                account.or_else(|| from_env("AWS_ACCOUNT_ID")),
                region.or_else(|| from_env("AWS_REGION")),
            ) else {
                return Err(Failure(
                    "drbot iam-policy needs the account and the region drbot runs in: pass --account 123456789012 --region eu-west-1 (or set AWS_ACCOUNT_ID and AWS_REGION); a policy with wildcards there would allow the same resources in every account and region".to_string(),
                ));
            };
            if !(account.len() == 12 && account.chars().all(|c| c.is_ascii_digit())) {
                return Err(Failure(format!(
                    "--account: '{account}' is not a 12-digit AWS account id"
                )));
            }
            if !crate::config::is_region_name(&region) {
                return Err(Failure(format!(
                    "--region: '{region}' is not an AWS region name (like eu-west-1)"
                )));
            }
            let policy = crate::iam::policy(&settings, &crate::iam::Scope { account, region });
            println!(
                "{}",
                serde_json::to_string_pretty(&policy).expect("a JSON value serialises")
            );
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify { checkpoint, config },
        } => {
            let store = open_existing_store().await?;
            let outside = outside_checkpoints(checkpoint, config).await?;
            println!(
                "{}",
                crate::audit::verify(&store, &outside)
                    .await
                    .map_err(Failure)?
            );
            Ok(())
        }
        Command::Evidence {
            command:
                EvidenceCommand::Export {
                    from,
                    to,
                    out,
                    checkpoint,
                    config,
                },
        } => {
            let outside = outside_checkpoints(checkpoint, config).await?;
            evidence_export(from, to, out, outside).await
        }
        Command::Sandbox { port, dir } => Ok(crate::sandbox::run(port, dir).await?),
    }
}

/// The checkpoints kept outside the database: those `given`, and those posted in Slack
/// when a configuration names a checkpoint channel (`--config`, else `DRBOT_CONFIG` /
/// `drbot.toml` when present).
async fn outside_checkpoints(
    given: Vec<(i64, String)>,
    config: Option<PathBuf>,
) -> Result<crate::audit::Outside, Failure> {
    let settings = match config {
        Some(path) => Some(Settings::load_or_env(&path)?),
        None => {
            let path = default_config_path();
            let inline = std::env::var(crate::config::CONFIG_TEXT_VAR).is_ok();
            (path.exists() || inline)
                .then(|| Settings::load_or_env(&path).ok())
                .flatten()
        }
    };
    let mut outside = crate::audit::Outside {
        given,
        ..Default::default()
    };
    crate::audit::from_slack(settings.as_ref(), &mut outside).await;
    Ok(outside)
}

/// `drbot evidence export`: see `evidence.rs`. A chain that does not verify is still
/// exported (the auditor must see it), with the failure in `verification.txt`, and exit 1.
async fn evidence_export(
    from: Option<String>,
    to: Option<String>,
    out: PathBuf,
    outside: crate::audit::Outside,
) -> Result<(), Failure> {
    use crate::evidence::{manifest, tar, File};
    let period = crate::report::Period::parse(from.as_deref(), to.as_deref(), crate::clock::now())?;
    if out.exists() {
        return Err(Failure(format!(
            "--out: {} already exists; evidence is never overwritten (choose another name)",
            out.display()
        )));
    }
    let store = open_existing_store().await?;
    // The archive's own checkpoint: what it holds can be checked against the live log later.
    let checkpoint = store.checkpoint("evidence export", None).await?;
    let verification = crate::audit::verify(&store, &outside)
        .await
        .map_err(Failure);
    let events = store.events(None).await?;
    let names = store.names().await?;
    let report_check = store.verify().await?;
    let head = store.head().await?;
    let scenarios = CommandSet::embedded()
        .ok()
        .and_then(|c| ScenarioSet::embedded(&c).ok());
    let rto_of = |id: &str| scenarios.as_ref()?.get(id)?.rto.seconds();
    let report = crate::report::build(&events, period, rto_of);
    let mut files = Vec::new();
    for format in [Format::Html, Format::Md, Format::Json] {
        files.push(File::new(
            format!("report.{}", format.extension()),
            crate::report::render(format, &report),
        ));
        // The change log alone too (it is also in the report).
        files.push(File::new(
            format!("changes.{}", format.extension()),
            crate::report::changes::render(format, &report.changes, period),
        ));
    }
    for p in &report.postmortems {
        let name = format!("postmortems/postmortem-{}.md", p.incident);
        files.push(File::new(name, p.markdown.clone()));
    }
    let in_period: Vec<String> = report
        .incidents
        .iter()
        .chain(&report.drills)
        .map(|s| s.incident.clone())
        .collect();
    for id in &in_period {
        let evs: Vec<_> = events
            .iter()
            .filter(|e| e.incident.as_deref() == Some(id.as_str()))
            .cloned()
            .collect();
        let scenario = timeline::summary::scenario_of(&evs);
        for format in [Format::Md, Format::Json, Format::Html] {
            let export = timeline::Export {
                title: format!("incident {id}"),
                events: &evs,
                report: &report_check,
                head: head.clone(),
                names: timeline::names::Names::new(names.clone()),
                summary: timeline::summary::summarise(&evs, rto_of(&scenario)),
            };
            files.push(File::new(
                format!("timelines/{id}.{}", format.extension()),
                timeline::render(format, &export),
            ));
        }
    }
    let period_events: Vec<_> = events
        .iter()
        .filter(|e| {
            chrono::DateTime::parse_from_rfc3339(&e.at)
                .map(|t| {
                    let t = t.with_timezone(&chrono::Utc);
                    t >= period.from && t < period.to
                })
                .unwrap_or(false)
        })
        .cloned()
        .collect();
    let log = timeline::Export {
        title: "the audit log of the period".to_string(),
        events: &period_events,
        report: &report_check,
        head: head.clone(),
        names: timeline::names::Names::new(names),
        summary: None,
    };
    files.push(File::new(
        "audit-log.json",
        timeline::render(Format::Json, &log),
    ));
    files.push(File::new(
        "checkpoints.json",
        serde_json::to_string_pretty(&store.checkpoints().await?)? + "\n",
    ));
    let verified = match &verification {
        Ok(line) => format!("{line}\n"),
        Err(Failure(why)) => format!("VERIFICATION FAILED: {why}\n"),
    };
    files.push(File::new("verification.txt", verified.clone()));
    let header = format!(
        "drbot evidence, {} to {} (UTC), exported {}\n{} incident(s) and drill(s); {} event(s) in the period\nchain head at export: {}\n{}keyed chain: {}",
        period.from.format("%Y-%m-%d"),
        (period.to - chrono::Duration::days(1)).format("%Y-%m-%d"),
        crate::clock::now_rfc3339(),
        in_period.len(),
        period_events.len(),
        checkpoint
            .as_ref()
            .map(|c| format!("{}:{}", c.seq, c.hash))
            .unwrap_or_else(|| "empty log".to_string()),
        verified,
        if crate::store::audit_key().is_some() { "yes (DRBOT_AUDIT_KEY)" } else { "no" },
    );
    let listed = manifest(&files, &header);
    files.push(listed);
    let root = format!(
        "drbot-evidence-{}-{}",
        period.from.format("%Y%m%d"),
        (period.to - chrono::Duration::days(1)).format("%Y%m%d")
    );
    let bytes = tar(&root, &files, crate::clock::now().timestamp());
    std::fs::write(&out, bytes)
        .map_err(|e| Failure(format!("--out: cannot write {}: {e}", out.display())))?;
    match verification {
        Ok(line) => {
            println!(
                "{}: {} files ({} incident(s) and drill(s)); {line}",
                out.display(),
                files.len(),
                in_period.len()
            );
            Ok(())
        }
        Err(Failure(why)) => Err(Failure(format!(
            "{} written, but the audit chain does NOT verify: {why}",
            out.display()
        ))),
    }
}
