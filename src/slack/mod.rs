//! Slack at its HTTP boundary: incoming requests (`http`), the Web API client (`client`) and
//! the outbox worker that sends what drbot queued (`outbox`).

pub mod client;
pub mod http;
pub mod names;
pub mod outbox;
pub mod socket;
pub mod text;
