//! What Slack sends drbot, by surface: the HTTP endpoints ([`http`]) and Socket Mode
//! ([`socket`]) verify and acknowledge; slash commands ([`commands`]), Events API
//! deliveries ([`events`]) and Block Kit interactions ([`interactions`]) are handled;
//! the App Home ([`home`]) is rendered and published. [`alb`]: the load balancer's sign-in
//! token verified (groundwork of the web console, not served yet).

pub mod alb;
pub mod commands;
pub mod events;
pub mod home;
pub mod http;
pub mod interactions;
pub mod socket;
