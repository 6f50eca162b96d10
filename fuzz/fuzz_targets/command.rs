//! The tokenizer (quotes, Slack's escapes, curly quotes) and the command parser against the
//! shipped `commands/`, then each action's offline checks.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = drbot::router::tokenize::tokenize(text);
        common::command(text);
    }
});
