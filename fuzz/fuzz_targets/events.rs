//! Events API, interaction and slash-command payloads as they arrive, read the way the
//! endpoints read them, and a command request built from what parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slack_morphism::prelude::*;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<SlackPushEvent>(data);
    let _ = serde_json::from_slice::<SlackInteractionEvent>(data);
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = serde_json::from_value::<SlackPushEventCallback>(value);
    }
    if let Ok(form) = serde_urlencoded_like(data) {
        if let Ok(event) = serde_json::from_value::<SlackCommandEvent>(form) {
            let request = drbot::server::commands::CommandRequest::from_event(&event, "fuzz".into());
            common::command(&request.text);
        }
    }
});

/// A form body as a JSON object of strings (how the command extractor sees it).
fn serde_urlencoded_like(data: &[u8]) -> Result<serde_json::Value, ()> {
    let text = std::str::from_utf8(data).map_err(|_| ())?;
    let mut map = serde_json::Map::new();
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        map.insert(k.to_string(), serde_json::Value::String(v.replace('+', " ")));
    }
    Ok(serde_json::Value::Object(map))
}
