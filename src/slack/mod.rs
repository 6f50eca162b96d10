//! Slack's Web API: the client (slack-morphism, pointed at `DRBOT_SLACK_API_URL`) and
//! how drbot writes text for Slack. Incoming requests are `crate::server`; the outbox that
//! sends what drbot queued is `crate::workers::outbox`.

pub mod client;
pub mod text;
