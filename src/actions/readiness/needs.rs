//! What a scenario relies on, read from its plan (or, for a scenario without one, its
//! checklist's commands): pure, over the configuration.

use crate::actions::{self, ActionKind};
use crate::config::Settings;
use crate::router::CommandSet;
use crate::scenarios::{plan::command_for, Scenario};

/// One thing a scenario's recovery needs to exist (or to be true) before the day it runs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Need {
    /// A copy of the database's snapshot in `region`, younger than the scenario's RPO.
    BackupCopy { database: String, region: String },
    /// The database's `backup_placement` exists in `region` (subnet group).
    Placement { database: String, region: String },
    /// The ECS service exists, with a task definition.
    Service { name: String },
    /// The record exists and points at its primary or backup target.
    Dns { record: String },
    /// The cutover parameter exists where the plan writes it.
    CutoverParameter {
        database: String,
        region: Option<String>,
    },
    /// A restore test passed within its schedule.
    RestoreTest { database: String },
    /// The last backup check found the retention policy held.
    Compliance { database: String },
    /// A restore's new instance name is one the least-privilege policy lets drbot create.
    RestoreName { database: String, name: String },
}

/// What `scenario` relies on, each once, in a stable order.
pub fn needs(scenario: &Scenario, commands: &CommandSet, settings: &Settings) -> Vec<Need> {
    let mut out = Vec::new();
    match &scenario.plan {
        Some(plan) => {
            for (_, step) in plan.for_mode(plan.default_mode) {
                let Some(run) = &step.run else { continue };
                let text = command_for(run, crate::scenarios::plan::CHECK_STAMP);
                if let Ok(cmd) = crate::router::parse(&text, commands, settings) {
                    of_command(&cmd, settings, &mut out);
                }
            }
        }
        None => {
            for step in &scenario.steps {
                let Some(command) = &step.command else {
                    continue;
                };
                of_checklist(command, settings, &mut out);
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn of_database(database: &str, settings: &Settings, out: &mut Vec<Need>) {
    let tested = settings
        .drills
        .restore_test
        .as_ref()
        .is_some_and(|t| t.databases.iter().any(|d| d == database));
    if tested {
        out.push(Need::RestoreTest {
            database: database.to_string(),
        });
    }
    if settings.rds.retention.is_some() {
        out.push(Need::Compliance {
            database: database.to_string(),
        });
    }
}

fn of_command(cmd: &crate::router::ParsedCommand, settings: &Settings, out: &mut Vec<Need>) {
    match cmd.def.action {
        ActionKind::RdsRestore => {
            let Ok(args) = actions::rds_restore::parse(cmd, settings) else {
                return;
            };
            let own = settings.region_of(args.db.region.as_deref());
            if let Some(region) = args.region.clone().filter(|r| Some(r) != own.as_ref()) {
                out.push(Need::BackupCopy {
                    database: args.db.name.clone(),
                    region: region.clone(),
                });
                out.push(Need::Placement {
                    database: args.db.name.clone(),
                    region,
                });
            }
            if let Some(name) = &args.new_instance {
                out.push(Need::RestoreName {
                    database: args.db.name.clone(),
                    name: name.clone(),
                });
            }
            of_database(&args.db.name, settings, out);
        }
        ActionKind::RdsPitr
        | ActionKind::RdsSnapshot
        | ActionKind::RdsSnapshotCopy
        | ActionKind::RdsBackups
        | ActionKind::RdsRestoreTest => {
            if let Ok(db) = actions::database::parse_database(cmd, settings) {
                of_database(&db.name, settings, out);
            }
        }
        ActionKind::RdsCutover => {
            if let Ok(args) = actions::rds_cutover::parse(cmd, settings) {
                out.push(Need::CutoverParameter {
                    database: args.db.name.clone(),
                    region: args.region.clone(),
                });
            }
        }
        ActionKind::EcsScale | ActionKind::EcsRollback => {
            if let Some(name) = cmd.arg_word("service") {
                if settings.service(name).is_some() {
                    out.push(Need::Service {
                        name: name.to_string(),
                    });
                }
            }
        }
        ActionKind::DnsFailover => {
            if let Some(name) = cmd.arg_word("record") {
                if settings.dns_record(name).is_some() {
                    out.push(Need::Dns {
                        record: name.to_string(),
                    });
                }
            }
        }
        _ => {}
    }
}

/// A checklist step's command (`restore`, `scale`, …): what it would need of every
/// configured resource of its kind (the checklist names no resource).
fn of_checklist(command: &str, settings: &Settings, out: &mut Vec<Need>) {
    let word = command.split_whitespace().next().unwrap_or("");
    match word {
        "restore" | "pitr" | "snapshot" | "backups" | "drill" => {
            for db in &settings.rds.databases {
                of_database(&db.name, settings, out);
            }
        }
        "scale" | "rollback" => {
            for s in &settings.ecs.services {
                out.push(Need::Service {
                    name: s.name.clone(),
                });
            }
        }
        "dns" => {
            for r in &settings.dns.records {
                out.push(Need::Dns {
                    record: r.name.clone(),
                });
            }
        }
        _ => {}
    }
}
