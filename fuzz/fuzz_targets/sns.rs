//! SNS deliveries as they arrive at `POST /aws/sns` (and from the alarm queue): the
//! envelope, the alarm inside it, the string SNS signs, the certificate URL policy and the
//! signature check — with a real RSA certificate, and with the input itself as one.
#![no_main]
use drbot::alarms::sns::{certificate_url_allowed, string_to_sign, verify, Envelope};
use libfuzzer_sys::fuzz_target;

const CERT: &[u8] = include_bytes!("../sns-test-cert.pem");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = certificate_url_allowed(text, None);
    if let Ok(e) = Envelope::parse(text) {
        let _ = e.alarm_now();
        let _ = string_to_sign(&e);
        if let Some(url) = &e.signing_cert_url {
            let _ = certificate_url_allowed(url, Some("https://localhost:1/"));
        }
        let _ = verify(&e, CERT);
        let _ = verify(&e, data);
    }
});
