//! Slack's request signature check as drbot runs it: any signature, timestamp and body.
#![no_main]
use libfuzzer_sys::fuzz_target;
use slack_morphism::signature_verifier::SlackEventSignatureVerifier;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let signature = parts.next().unwrap_or("").to_string();
    let ts = parts.next().unwrap_or("").to_string();
    let body = parts.next().unwrap_or("").to_string();
    let verifier = SlackEventSignatureVerifier::new(&"8f2c1e0d-test-signing-secret".into());
    let _ = verifier.verify(&signature, &body, &ts);
});
