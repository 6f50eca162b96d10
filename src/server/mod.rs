//! What Slack sends drbot, by surface: the HTTP endpoints ([`http`]) and Socket Mode
//! ([`socket`]) verify and acknowledge; slash commands ([`commands`]), Events API
//! deliveries ([`events`]) and Block Kit interactions ([`interactions`]) are handled;
//! the App Home ([`home`]) is rendered and published. The web console ([`console`]) is
//! served behind the load balancer's sign-in, its token verified by [`alb`].

pub mod alb;
pub mod commands;
pub mod console;
pub mod events;
pub mod home;
pub mod http;
pub mod interactions;
pub mod socket;
