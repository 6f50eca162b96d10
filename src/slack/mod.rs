//! Slack at its HTTP boundary: incoming requests (`http`) and the Web API client (`client`).

pub mod client;
pub mod http;
pub mod text;
