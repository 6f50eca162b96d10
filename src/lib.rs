//! drbot: a Slack ChatOps bot that runs a disaster-recovery plan on AWS.
//!
//! # Layout
//! - [`cli`]: the command line (`serve`, `check-config`, `timeline export`, `audit verify`).
//! - [`startup`]: wires the store, the Slack client and the HTTP listener.
//! - [`slack::http`]: the endpoints; signature check, body limit, acknowledgement.
//! - [`slack::client`]: the Web API client (slack-morphism) pointed at `DRBOT_SLACK_API_URL`.
//! - [`dispatch`]: from a verified request to an action, recorded in the event log.
//! - [`router`]: `commands/*.toml` definitions, tokenizer and typed parser.
//! - [`actions`]: one file per action (parse/plan/execute).
//! - [`gate`]: the approval gate: requests, reactions, exactly-once execution.
//! - [`blocklist`]: CIDR rules and read–modify–write of WAF IP sets (block-ip & co.).
//! - [`database`]: RDS naming rules, the database RPO, following snapshots and restores.
//! - [`scenarios`], [`incident`]: the plan's scenarios; incident channels and checklists.
//! - [`workers`]: planning queued commands, expiring requests, start-up recovery.
//! - [`store`]: the SQLite store, its migrations and the hash-chained event log.
//! - [`timeline`]: Markdown, JSON and HTML exports.
//! - [`aws`]: the only module that talks to the AWS SDK.
//! - [`config`], [`duration`], [`clock`], [`metrics`], [`telemetry`].

pub mod actions;
pub mod app;
pub mod aws;
pub mod blocklist;
pub mod cli;
pub mod clock;
pub mod config;
pub mod database;
pub mod dispatch;
pub mod duration;
pub mod evidence;
pub mod gate;
pub mod healthcheck;
pub mod iam;
pub mod incident;
pub mod memory;
pub mod metrics;
pub mod report;
pub mod retention;
pub mod router;
pub mod sandbox;
pub mod scenarios;
pub mod slack;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod timeline;
pub mod workers;
