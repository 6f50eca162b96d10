//! Typed values as users type them: durations, addresses and CIDRs, RFC 3339 times,
//! counts — alone and in the commands that take them.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let _ = value.parse::<drbot::duration::HumanDuration>();
    let _ = value.parse::<ipnet::IpNet>();
    for template in [
        "block-ip {} --for 1h",
        "block-ip 203.0.113.7 --for {}",
        "block-ip 203.0.113.7 --reason {}",
        "unblock-ip {}",
        "pitr main --time {}",
        "scale api --desired {}",
        "waf rate-limit on --limit {}",
        "restore main --snapshot {} --as aifai-db-x",
        "snapshot copy main --to-region {}",
        "dns failover app --to {}",
        "report {}",
    ] {
        common::command(&template.replace("{}", value));
    }
});
