//! The one web console (SPEC §11, §19), used by `drbot sandbox` (the sandbox's Slack-like
//! workspace, with personas and the emulator's panel) and by `drbot serve` behind the load
//! balancer's sign-in (`server/console.rs`: drbot's own messages read from the outbox, the
//! signed-in person as the only persona). Both serve the same page, script and style; the
//! state each answers has the same shape, and `mode` says which is which.
//!
//! [`view`] draws a channel from the outbox; [`records`] renders the timeline exports and
//! the DR review both show.

pub mod records;
pub mod view;

/// The page: both consoles serve it as is (it loads `console.js` and `console.css` beside it).
pub const PAGE: &str = include_str!("console.html");
pub const SCRIPT: &str = include_str!("console.js");
pub const STYLE: &str = include_str!("console.css");

/// The Content-Security-Policy of the console's own page and API: nothing but its own
/// script, style and calls; never framed.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The Content-Security-Policy of a rendered record (timeline export, DR review): its own
/// inline style and charts, no script at all; never framed.
pub const RECORD_CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
