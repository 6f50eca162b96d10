//! Integration tests: the real `drbot` binary, a Slack stand-in and moto server.
//! Run them with `scripts/test` (it starts moto and sets `AWS_ENDPOINT_URL`).

mod support;

mod access;
mod alarms;
mod audit;
mod audit_key;
mod aws_check;
mod aws_faults;
mod config;
mod console;
mod crash;
mod dark_region;
mod evidence;
mod exports;
mod fencing;
mod http_surface;
mod iam;
mod incidents;
mod injection;
mod layers;
mod manifest;
mod notify;
mod plan_commands;
mod plan_runs;
mod postgres_tls;
mod rds;
mod readiness;
mod replicas;
mod report;
mod request_message;
mod review;
mod rollback;
mod router;
mod sandbox;
mod slack_delivery;
mod socket_mode;
mod stack;
mod status;
mod store;
mod tls;
mod verified_restores;
mod waf;
