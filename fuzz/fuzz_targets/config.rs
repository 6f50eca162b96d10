//! The TOML configuration loader and what is derived from a configuration it accepts.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(settings) = drbot::config::Settings::parse(text, "fuzz.toml") {
        let scope = drbot::iam::Scope {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
        };
        let _ = drbot::iam::policy(&settings, &scope);
        let _ = settings.ops_channel();
        let timeouts = settings.aws_timeouts();
        for r in ["eu-west-1", "us-west-2", "primary", ""] {
            let t = timeouts.of(r, Some("eu-west-1"));
            assert!(t.connect <= t.call, "a connect timeout longer than the call: {t:?}");
        }
        let _ = settings.placement_warning(Some("eu-west-1"));
        for r in ["primary", "backup", "us-west-2", ""] {
            let _ = settings.region_named(r);
        }
    }
});
