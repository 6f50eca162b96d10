//! What blocking an address means, shared by `block-ip`, `unblock-ip`, `blocked` and the
//! worker that lifts timed blocks: normalising and vetting CIDRs against the configured
//! rules, and read–modify–write of a WAF IP set that never drops someone else's addresses.

use std::collections::BTreeSet;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::aws::waf::{WafBlocklist, WriteError};
use crate::aws::AwsError;
use crate::config::{Settings, WafIpSetRef, WafIpSets, WafScope};
use crate::gate::execute::Run;
use crate::router::{Invalid, ParsedCommand, Value};
use crate::store::RequestState;
use serde_json::json;

/// WAF's limit of addresses in one IP set.
pub const MAX_ADDRESSES: usize = 10_000;

/// An address as typed and as it will be stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cidr {
    pub typed: String,
    pub cidr: String,
    pub v6: bool,
}

impl Cidr {
    pub fn net(&self) -> IpNet {
        self.cidr.parse().expect("normalised CIDRs parse")
    }

    /// True when the typed form was not already the network (host bits were set).
    pub fn was_normalised(&self) -> bool {
        let typed = self.typed.parse::<IpNet>().ok();
        typed.is_some_and(|t| t.to_string() != self.cidr)
    }
}

/// Normalises one typed address: a bare address becomes /32 or /128, host bits are cleared.
pub fn normalise(typed: &str) -> Result<Cidr, Invalid> {
    let net = typed
        .parse::<IpNet>()
        .or_else(|_| typed.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{typed}` is not an IPv4/IPv6 address or CIDR (like 203.0.113.7 or 203.0.113.0/24)"))?;
    let network = net.trunc();
    Ok(Cidr {
        typed: typed.to_string(),
        cidr: network.to_string(),
        v6: matches!(network, IpNet::V6(_)),
    })
}

/// The checks of SPEC §5/§6 for an address to be blocked.
pub fn vet_for_blocking(cidr: &Cidr, settings: &Settings, set: &WafIpSets) -> Result<(), Invalid> {
    let net = cidr.net();
    if net.prefix_len() == 0 {
        return Err(format!(
            "`{}` is the whole Internet; drbot never blocks /0",
            cidr.typed
        )
        .into());
    }
    let (min, family) = if cidr.v6 {
        (settings.waf.min_prefix_v6, "IPv6")
    } else {
        (settings.waf.min_prefix_v4, "IPv4")
    };
    if net.prefix_len() < min {
        return Err(format!(
            "`{}` is broader than /{min}, the widest {family} block allowed (waf.min_prefix_{})",
            cidr.cidr,
            if cidr.v6 { "v6" } else { "v4" }
        )
        .into());
    }
    for protected in settings.never_block() {
        if protected.contains(&net) || net.contains(&protected) {
            return Err(format!(
                "`{}` overlaps `{protected}`, which is in waf.never_block",
                cidr.cidr
            )
            .into());
        }
    }
    fits_set(cidr, set)
}

/// An IPv6 address needs the set's `ipv6_set`.
pub fn fits_set(cidr: &Cidr, set: &WafIpSets) -> Result<(), Invalid> {
    if cidr.v6 && set.ipv6_set.is_none() {
        return Err(format!(
            "`{}` is IPv6 but IP set `{}` has no ipv6_set configured",
            cidr.cidr, set.name
        )
        .into());
    }
    Ok(())
}

/// The IP sets `block-ip` writes to: the first `[[waf.ip_sets]]`.
/// The distinct `<ip-or-cidr>` arguments of `cmd`, normalised, each vetted by `vet`
/// against the default IP set, which is answered with them.
pub fn addresses(
    cmd: &ParsedCommand,
    settings: &Settings,
    vet: impl Fn(&Cidr, &WafIpSets) -> Result<(), Invalid>,
) -> Result<(WafIpSets, Vec<Cidr>), Invalid> {
    let set = default_set(settings)?.clone();
    let mut seen = BTreeSet::new();
    let mut cidrs = Vec::new();
    for value in cmd.arg_all("ip-or-cidr") {
        let typed = match value {
            Value::Address(net) => net.to_string(),
            Value::Word(w) => w.clone(),
            _ => continue,
        };
        let cidr = normalise(&typed)?;
        vet(&cidr, &set)?;
        if seen.insert(cidr.cidr.clone()) {
            cidrs.push(cidr);
        }
    }
    if cidrs.is_empty() {
        return Err("missing <ip-or-cidr>".into());
    }
    Ok((set, cidrs))
}

pub fn default_set(settings: &Settings) -> Result<&WafIpSets, Invalid> {
    settings
        .waf
        .ip_sets
        .first()
        .ok_or_else(|| "no [[waf.ip_sets]] is configured in drbot.toml".into())
}

/// Which configured set (v4 or v6) holds `cidr`.
pub fn set_for<'a>(set: &'a WafIpSets, cidr: &Cidr) -> Option<&'a WafIpSetRef> {
    if cidr.v6 {
        set.ipv6_set.as_ref()
    } else {
        Some(&set.ipv4_set)
    }
}

/// The CIDRs grouped by the configured set (v4 or v6) that holds them; families without
/// addresses (or without a configured set) are left out.
pub fn by_set<'a>(set: &'a WafIpSets, cidrs: &[Cidr]) -> Vec<(&'a WafIpSetRef, Vec<String>)> {
    [false, true]
        .into_iter()
        .filter_map(|v6| {
            let set_ref = if v6 {
                set.ipv6_set.as_ref()
            } else {
                Some(&set.ipv4_set)
            }?;
            let wanted: Vec<String> = cidrs
                .iter()
                .filter(|c| c.v6 == v6)
                .map(|c| c.cidr.clone())
                .collect();
            (!wanted.is_empty()).then_some((set_ref, wanted))
        })
        .collect()
}

/// The canonical form of whatever WAF holds (it may hold host bits or odd spacing).
pub fn canonical(address: &str) -> String {
    normalise(address.trim())
        .map(|c| c.cidr)
        .unwrap_or_else(|_| address.trim().to_string())
}

/// How a read–modify–write ended.
#[derive(Debug, Clone)]
pub struct Written {
    /// The AWS request id of the UpdateIPSet, or None when nothing needed writing.
    pub request_id: Option<String>,
    /// Conflicts retried before the write went through.
    pub conflicts: u32,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// [`modify`] of `set_ref` in an approved run, recording the `UpdateIPSet` it made; when it
/// fails, the error is recorded and the run ends failed with `failed(e)` (`None`).
pub async fn write(
    run: &Run<'_>,
    set: &WafIpSets,
    set_ref: &WafIpSetRef,
    (add, remove): (&[String], &[String]),
    failed: impl FnOnce(&AwsError) -> String,
) -> Option<Written> {
    let written = match modify(run.app.aws.waf(set.scope), set_ref, set.scope, add, remove).await {
        Ok(written) => written,
        Err(e) => {
            run.record_aws_error(&e).await;
            run.finish(RequestState::Failed, &failed(&e)).await;
            return None;
        }
    };
    if let Some(request_id) = &written.request_id {
        let detail = if add.is_empty() {
            json!({"removed": written.removed, "conflicts_retried": written.conflicts})
        } else {
            json!({"added": written.added, "conflicts_retried": written.conflicts})
        };
        let resource = format!("ip set {} ({})", set_ref.name, set_ref.id);
        run.record_aws_call("UpdateIPSet", &resource, request_id, detail)
            .await;
    }
    Some(written)
}

/// Adds `add` and removes `remove` from the set, keeping every other address as it is
/// in WAF at the moment of writing. On `WAFOptimisticLockException` it reads again and
/// retries (up to 8 times, with jittered backoff).
pub async fn modify(
    waf: &impl WafBlocklist,
    set: &WafIpSetRef,
    scope: WafScope,
    add: &[String],
    remove: &[String],
) -> Result<Written, AwsError> {
    let mut conflicts = 0;
    loop {
        let current = waf.read_set(set, scope).await?;
        let present: BTreeSet<String> = current.addresses.iter().map(|a| canonical(a)).collect();
        let added: Vec<String> = add
            .iter()
            .filter(|a| !present.contains(*a))
            .cloned()
            .collect();
        let removed: Vec<String> = remove
            .iter()
            .filter(|a| present.contains(*a))
            .cloned()
            .collect();
        if added.is_empty() && removed.is_empty() {
            return Ok(Written {
                request_id: None,
                conflicts,
                added,
                removed,
            });
        }
        // Keep addresses exactly as WAF holds them; only drop the ones being removed.
        let mut next: Vec<String> = current
            .addresses
            .iter()
            .filter(|a| !removed.contains(&canonical(a)))
            .cloned()
            .collect();
        next.extend(added.iter().cloned());
        if next.len() > MAX_ADDRESSES {
            return Err(AwsError::not_found(
                "UpdateIPSet",
                &format!("ip set {} ({})", set.name, set.id),
                &format!(
                    "the set would hold {} addresses, over WAF's limit of {MAX_ADDRESSES}",
                    next.len()
                ),
            ));
        }
        match waf.write_set(set, scope, next, &current.lock_token).await {
            Ok(request_id) => {
                return Ok(Written {
                    request_id: Some(request_id),
                    conflicts,
                    added,
                    removed,
                })
            }
            Err(WriteError::Conflict) if conflicts < 8 => {
                conflicts += 1;
                tracing::info!(set = %set.name, conflicts, "IP set changed under us; reading it again");
                tokio::time::sleep(jitter(conflicts)).await;
            }
            Err(WriteError::Conflict) => return Err(AwsError::not_found(
                "UpdateIPSet",
                &format!("ip set {} ({})", set.name, set.id),
                "the set kept changing (WAFOptimisticLockException 9 times); nothing was written",
            )),
            Err(WriteError::Aws(e)) => return Err(e),
        }
    }
}

fn jitter(attempt: u32) -> Duration {
    let base = 50u64 * 2u64.pow(attempt.min(5));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    Duration::from_millis(base / 2 + nanos % (base / 2 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings::parse(
            r#"
[approval]
officers = ["U0SECOFF1"]
[[waf.ip_sets]]
name = "blocklist"
scope = "REGIONAL"
ipv4_set = { name = "v4", id = "1" }
[waf]
never_block = ["10.0.0.0/8", "192.0.2.10"]
"#,
            "t",
        )
        .unwrap()
    }

    #[test]
    fn bare_addresses_become_host_routes_and_host_bits_are_cleared() {
        assert_eq!(normalise("203.0.113.7").unwrap().cidr, "203.0.113.7/32");
        assert_eq!(normalise("2001:db8::1").unwrap().cidr, "2001:db8::1/128");
        let cleared = normalise("203.0.113.77/24").unwrap();
        assert_eq!(cleared.cidr, "203.0.113.0/24");
        assert!(cleared.was_normalised());
        assert!(!normalise("203.0.113.0/24").unwrap().was_normalised());
    }

    #[test]
    fn the_rules_refuse_what_must_never_be_blocked() {
        let s = settings();
        let set = default_set(&s).unwrap();
        let vet = |a: &str| vet_for_blocking(&normalise(a).unwrap(), &s, set);
        assert!(vet("0.0.0.0/0").unwrap_err().0.contains("never blocks /0"));
        assert!(vet("198.0.0.0/8")
            .unwrap_err()
            .0
            .contains("broader than /16"));
        assert!(vet("10.1.2.3").unwrap_err().0.contains("never_block"));
        assert!(
            vet("192.0.2.0/24").unwrap_err().0.contains("never_block"),
            "a range containing a protected host"
        );
        assert!(vet("2001:db8::1").unwrap_err().0.contains("no ipv6_set"));
        assert!(vet("203.0.113.7").is_ok());
    }
}
