//! drbot: a Slack ChatOps bot that runs a disaster-recovery plan on AWS.
//!
//! # Layout
//! Dependencies point one way, down this list (`tests/it/layers.rs` fails on any that
//! points up); a module may use those of its own layer.
//! 1. Server and workers: [`server`] (the HTTP endpoints and Socket Mode; slash commands,
//!    events and interactions, each in its file), [`workers`] (planning jobs, expiry,
//!    reminders, schedules, the Slack outbox, learning names), [`startup`], [`cli`],
//!    [`sandbox`], [`healthcheck`].
//! 2. Actions: [`actions`] (one file per action — parse, plan, execute, the IAM actions it
//!    needs — and the registry), with the helpers of each family beside them in
//!    `actions/` (`blocklist` for WAF, `database` for RDS, `incident`), and [`timeline`],
//!    [`report`], [`retention`], [`evidence`], [`audit`] (verification against
//!    checkpoints, Slack's included), [`iam`], [`console`] (the one web console: page,
//!    script, style, a channel's view from the outbox, the records it renders). Plan runs (`/dr run`) are the family
//!    `actions::runs` beside the actions they compose; readiness (whether each scenario could
//!    run now: its plan dry-run and what it relies on checked) is the family
//!    `actions::readiness`, beside the actions whose planners it reuses. [`alarms`]: SNS's
//!    envelope and the alarm in it, and the pure routing of an alarm (its intake is in
//!    `workers::alarms`, by SQS, and `server`, by HTTPS).
//! 3. The approval gate: [`gate`] (requests, reactions, exactly-once execution of a run).
//! 4. [`app`]: what a running drbot holds (settings, store, clients).
//! 5. [`scenarios`]: the plan's scenarios.
//! 6. Peers: [`router`] (`commands/*.toml`, the parser and `ActionKind`), [`aws`] (the only
//!    module that talks to the AWS SDK), [`slack`] (the Web API client, mrkdwn text),
//!    [`notify`] (the status page's REST API and SMTP: what tells users).
//! 7. [`metrics`], then [`store`] (SQLite or PostgreSQL, the writer, the hash-chained log).
//! 8. [`config`], then [`clock`], [`duration`], [`memory`], [`telemetry`], [`web`] (the
//!    HTTPS client of the REST peers).

pub mod actions;
pub mod alarms;
pub mod app;
pub mod audit;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod duration;
pub mod evidence;
pub mod gate;
pub mod healthcheck;
pub mod iam;
pub mod memory;
pub mod metrics;
pub mod notify;
pub mod report;
pub mod retention;
pub mod router;
pub mod sandbox;
pub mod scenarios;
pub mod server;
pub mod slack;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod timeline;
pub mod web;
pub mod workers;
