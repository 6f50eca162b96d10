//! `drbot.toml` (SPEC §5) and the environment (SPEC §3).
//!
//! Unknown keys are errors. Secrets come only from the environment and live in [`Secret`],
//! whose `Debug` and `Display` never show the value.

use std::collections::HashSet;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ipnet::IpNet;
use serde::Deserialize;

use crate::duration::HumanDuration;

pub mod alarms;
pub mod console;
pub mod data_checks;
pub mod notify;
pub use alarms::{AlarmRoute, AlarmSettings, OpenMode};
pub use console::ConsoleSettings;
pub use data_checks::{DataCheck, VerifyTls};
pub use notify::{EmailSettings, EmailTls, StatusPageSettings};

/// The requester of what drbot's schedule runs (restore tests): approved by the
/// configuration (`[drills.restore_test]`), not by an officer.
pub const SCHEDULER: &str = "drbot";

/// The whole of `drbot.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub slack: SlackSettings,
    pub approval: ApprovalSettings,
    #[serde(default)]
    pub ecs: EcsSettings,
    #[serde(default)]
    pub rds: RdsSettings,
    #[serde(default)]
    pub waf: WafSettings,
    #[serde(default)]
    pub incidents: IncidentSettings,
    #[serde(default)]
    pub store: StoreSettings,
    #[serde(default)]
    pub audit: AuditSettings,
    #[serde(default)]
    pub drills: DrillSettings,
    #[serde(default)]
    pub regions: RegionSettings,
    #[serde(default)]
    pub aws: AwsSettings,
    #[serde(default)]
    pub dns: DnsSettings,
    #[serde(default)]
    pub access: AccessSettings,
    #[serde(default)]
    pub readiness: ReadinessSettings,
    #[serde(default)]
    pub alarms: AlarmSettings,
    /// Where `/dr notify users` publishes (SPEC §17).
    #[serde(default)]
    pub status_page: Option<StatusPageSettings>,
    #[serde(default)]
    pub email: Option<EmailSettings>,
    /// The web console behind the load balancer's sign-in (SPEC §19).
    #[serde(default)]
    pub console: ConsoleSettings,
}

/// `[readiness]` (SPEC §15): how often each scenario's readiness is checked.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReadinessSettings {
    pub every: HumanDuration,
}

impl Default for ReadinessSettings {
    fn default() -> Self {
        Self {
            every: HumanDuration::from_secs(30 * 60),
        }
    }
}

/// `[rds.copies]` (SPEC §15): the newest snapshot of each listed database copied to the
/// backup region every `every`, approved by this configuration; drbot's own copies older
/// than `keep` are deleted (the newest always stays).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CopySettings {
    /// `[[rds.databases]]` names copied on schedule.
    pub databases: Vec<String>,
    pub every: HumanDuration,
    /// Default: the plan's daily retention (7 days).
    pub keep: HumanDuration,
}

impl Default for CopySettings {
    fn default() -> Self {
        Self {
            databases: Vec::new(),
            every: HumanDuration::from_secs(3600),
            keep: HumanDuration::from_secs(7 * 86_400),
        }
    }
}

/// `[access]`: who may run `/dr` commands, in every channel (incident channels included).
/// Empty (the default) lets anyone in a command channel or an incident channel run them;
/// set, only these users, the members of these Slack user groups, and the officers may.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessSettings {
    /// Slack user IDs (`U…`/`W…`) and user group IDs (`S…`; their members are read from
    /// Slack, `usergroups:read`).
    pub responders: Vec<String>,
    /// How often group membership is read again.
    pub refresh: HumanDuration,
}

impl Default for AccessSettings {
    fn default() -> Self {
        Self {
            responders: Vec::new(),
            refresh: HumanDuration::from_secs(300),
        }
    }
}

impl AccessSettings {
    /// Whether anyone may run commands (nobody is named).
    pub fn is_open(&self) -> bool {
        self.responders.is_empty()
    }

    /// The users named.
    pub fn users(&self) -> impl Iterator<Item = &String> {
        self.responders.iter().filter(|r| !r.starts_with('S'))
    }

    /// The user groups named.
    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.responders.iter().filter(|r| r.starts_with('S'))
    }
}

/// `[aws]`: how drbot calls AWS (kept for older files: `[regions] call_timeout` is the key).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsSettings {
    /// Each attempt of an AWS call is given up after this long, when `[regions]
    /// call_timeout` does not say.
    pub call_timeout: Option<HumanDuration>,
}

/// `[regions]`: where resources live unless they name another region (SPEC §5), and how
/// long drbot waits for each region's AWS endpoints.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSettings {
    /// Default: `AWS_REGION`.
    #[serde(default)]
    pub primary: Option<String>,
    /// The plan's backup region (region failure).
    #[serde(default)]
    pub backup: Option<String>,
    /// Each attempt of an AWS call may take this long to connect (default 3s).
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    /// Each attempt of an AWS call, whole, is given up after this long (default 10s).
    #[serde(default)]
    pub call_timeout: Option<HumanDuration>,
    /// Per region (`primary`, `backup` or a region name): its own `call_timeout` and
    /// `connect_timeout`.
    #[serde(default)]
    pub timeouts: std::collections::BTreeMap<String, RegionTimeouts>,
}

/// `[regions.timeouts.<region>]`
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionTimeouts {
    #[serde(default)]
    pub connect_timeout: Option<HumanDuration>,
    #[serde(default)]
    pub call_timeout: Option<HumanDuration>,
}

/// How long one attempt of an AWS call may take in a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeout {
    pub connect: std::time::Duration,
    pub call: std::time::Duration,
}

/// Every region's [`CallTimeout`]: `regions` is keyed by region name, or `primary` while
/// the primary region is left to `AWS_REGION`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsTimeouts {
    pub default: CallTimeout,
    pub regions: std::collections::HashMap<String, CallTimeout>,
}

impl AwsTimeouts {
    /// The timeouts of `region`; `default_region` is where drbot's SDK points (`AWS_REGION`).
    pub fn of(&self, region: &str, default_region: Option<&str>) -> CallTimeout {
        self.regions
            .get(region)
            .or_else(|| {
                (Some(region) == default_region)
                    .then(|| self.regions.get("primary"))
                    .flatten()
            })
            .copied()
            .unwrap_or(self.default)
    }
}

/// drbot's defaults: a region that does not answer holds a call at most this long.
pub const DEFAULT_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
pub const DEFAULT_CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// `[[dns.records]]`: Route 53 records `/dr dns failover` may switch.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DnsSettings {
    pub records: Vec<DnsRecord>,
    /// How long a change is followed (GetChange) before it is reported as not in sync.
    pub sync_timeout: HumanDuration,
}

impl Default for DnsSettings {
    fn default() -> Self {
        Self {
            records: Vec::new(),
            sync_timeout: HumanDuration::from_secs(10 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum RecordType {
    #[serde(rename = "CNAME")]
    Cname,
    /// An alias A record (to a load balancer).
    #[serde(rename = "A")]
    A,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsRecord {
    /// The name used in `/dr dns failover`.
    pub name: String,
    pub zone_id: String,
    /// The record's DNS name, e.g. `www.analyticalfire.com.`.
    pub record: String,
    #[serde(rename = "type")]
    pub kind: RecordType,
    pub primary: String,
    pub backup: String,
    /// CNAME only.
    #[serde(default = "default_ttl_dns")]
    pub ttl: i64,
    /// Alias A only: the hosted zone of each target (the load balancer's canonical zone).
    #[serde(default)]
    pub primary_alias_zone: Option<String>,
    #[serde(default)]
    pub backup_alias_zone: Option<String>,
}

fn default_ttl_dns() -> i64 {
    60
}

impl DnsRecord {
    /// The target for `primary` or `backup`, with its alias zone.
    pub fn target(&self, side: &str) -> Option<(&str, Option<&str>)> {
        match side {
            "primary" => Some((self.primary.as_str(), self.primary_alias_zone.as_deref())),
            "backup" => Some((self.backup.as_str(), self.backup_alias_zone.as_deref())),
            _ => None,
        }
    }
}

/// `[waf.web_acl]`: the web ACL `/dr waf rate-limit` adds drbot's rate-based rule to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebAclRef {
    pub name: String,
    pub id: String,
    #[serde(default = "regional")]
    pub scope: WafScope,
    /// Requests per 5 minutes per client IP when `--limit` is not given.
    #[serde(default = "default_rate_limit")]
    pub rate_limit: i64,
}

fn regional() -> WafScope {
    WafScope::Regional
}

fn default_rate_limit() -> i64 {
    2000
}

/// WAF's bounds for a rate-based rule's limit (requests per 5 minutes).
pub const RATE_LIMIT_RANGE: std::ops::RangeInclusive<i64> = 10..=2_000_000_000;

/// The plan's tests (SPEC §12): the scheduled restore test.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrillSettings {
    #[serde(default)]
    pub restore_test: Option<RestoreTestSettings>,
}

/// `[drills.restore_test]`: the plan's monthly restore test, on schedule.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestoreTestSettings {
    /// The `[[rds.databases]]` names tested on schedule.
    pub databases: Vec<String>,
    pub every: HumanDuration,
    pub pick: SnapshotPick,
    /// Only snapshots taken inside this window before the test are picked.
    pub window: HumanDuration,
    /// The drill instance is deleted this long after its checks.
    pub keep_for: HumanDuration,
    /// Where scheduled results are posted (a channel id); default the first of
    /// `slack.command_channels`, else `audit.checkpoint_channel`.
    pub channel: Option<String>,
}

impl Default for RestoreTestSettings {
    fn default() -> Self {
        Self {
            databases: Vec::new(),
            every: default_restore_test_every(),
            pick: SnapshotPick::default(),
            window: default_restore_test_every(),
            keep_for: HumanDuration::from_secs(2 * 3600),
            channel: None,
        }
    }
}

fn default_restore_test_every() -> HumanDuration {
    HumanDuration::from_secs(30 * 86_400)
}

/// Which snapshot a restore test restores.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SnapshotPick {
    Latest,
    #[default]
    Random,
}

impl SnapshotPick {
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotPick::Latest => "latest",
            SnapshotPick::Random => "random",
        }
    }
}

/// `[rds.retention]`: how many daily, weekly and monthly snapshots the plan keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            daily: 7,
            weekly: 4,
            monthly: 12,
        }
    }
}

/// Checkpoints of the audit chain (SPEC §12).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditSettings {
    /// Where checkpoints are posted (a channel id); without it they are only recorded.
    pub checkpoint_channel: Option<String>,
    pub checkpoint_every: HumanDuration,
}

impl Default for AuditSettings {
    fn default() -> Self {
        Self {
            checkpoint_channel: None,
            checkpoint_every: HumanDuration::from_secs(15 * 60),
        }
    }
}

/// How replicas sharing one PostgreSQL store watch each other (SPEC §9).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// A replica that has not renewed its heartbeat for this long is taken for dead: its
    /// executing requests become `interrupted`, its jobs and claims pass to another replica.
    pub lease: HumanDuration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            lease: HumanDuration::from_secs(15),
        }
    }
}

/// How drbot keeps an incident's communication going (dr-plan.md, Communication).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncidentSettings {
    /// Remind the channel when no status update was made for this long.
    pub reminder_interval: HumanDuration,
    /// Post the users' service-outage notice when the incident has lasted this long.
    pub user_notice_after: HumanDuration,
    /// The service named in the outage notice.
    pub service_name: String,
    /// The status page named in the outage notice.
    pub status_page_url: String,
    /// Incident channels are created private (only those drbot invites can join, and so
    /// run commands there); `false` makes them public.
    pub private: bool,
}

impl Default for IncidentSettings {
    fn default() -> Self {
        Self {
            reminder_interval: HumanDuration::from_secs(2 * 3600),
            user_notice_after: HumanDuration::from_secs(4 * 3600),
            service_name: "analyticalfire.com".to_string(),
            status_page_url: "https://status.analyticalfire.com".to_string(),
            private: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    /// Channels where `/dr` may be used; empty means any channel.
    pub command_channels: Vec<String>,
    pub incident_channel_prefix: String,
}

impl Default for SlackSettings {
    fn default() -> Self {
        Self {
            command_channels: Vec::new(),
            incident_channel_prefix: "inc".to_string(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalSettings {
    /// Slack user IDs of the security officers, never display names.
    pub officers: Vec<String>,
    #[serde(default = "default_approve_reactions")]
    pub approve_reactions: Vec<String>,
    #[serde(default = "default_reject_reactions")]
    pub reject_reactions: Vec<String>,
    #[serde(default = "default_ttl")]
    pub ttl: HumanDuration,
    #[serde(default)]
    pub allow_self_approval: bool,
    /// Distinct officers who must approve before a request executes.
    #[serde(default = "one")]
    pub required_approvals: usize,
}

fn one() -> usize {
    1
}

fn default_approve_reactions() -> Vec<String> {
    vec!["white_check_mark".to_string(), "+1".to_string()]
}

fn default_reject_reactions() -> Vec<String> {
    vec!["x".to_string()]
}

fn default_ttl() -> HumanDuration {
    HumanDuration::from_secs(15 * 60)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EcsSettings {
    pub services: Vec<EcsService>,
    /// How long a rollback's deployment is followed before it is reported as not stable.
    pub rollout_timeout: HumanDuration,
    /// First wait between DescribeServices polls; doubles up to 30s.
    pub poll_interval: HumanDuration,
}

impl Default for EcsSettings {
    fn default() -> Self {
        Self {
            services: Vec::new(),
            rollout_timeout: HumanDuration::from_secs(15 * 60),
            poll_interval: HumanDuration::from_secs(5),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EcsService {
    /// The name used in `/dr` commands.
    pub name: String,
    pub cluster: String,
    pub service: String,
    /// `primary` (default), `backup` or a region name.
    #[serde(default)]
    pub region: Option<String>,
    /// `/dr scale` refuses a desired count above this.
    #[serde(default = "default_max_desired")]
    pub max_desired: i32,
}

fn default_max_desired() -> i32 {
    50
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RdsSettings {
    pub databases: Vec<RdsDatabase>,
    /// How long a snapshot or restore is followed before it is reported as not finished.
    pub wait_timeout: HumanDuration,
    /// First wait between polls; doubles up to 60s.
    pub poll_interval: HumanDuration,
    /// The plan's retention policy; when given, drbot also checks it daily. `/dr backups`
    /// uses the plan's own (7 daily, 4 weekly, 12 monthly) when it is not given.
    pub retention: Option<RetentionSettings>,
    /// Scheduled copies to the backup region.
    pub copies: CopySettings,
    /// How long drbot waits for a restored instance's database to answer — to connect,
    /// and for each check (the statement timeout) — before the verification fails.
    pub verify_timeout: HumanDuration,
}

impl Default for RdsSettings {
    fn default() -> Self {
        Self {
            databases: Vec::new(),
            wait_timeout: HumanDuration::from_secs(2 * 3600),
            poll_interval: HumanDuration::from_secs(15),
            retention: None,
            copies: CopySettings::default(),
            verify_timeout: HumanDuration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RdsDatabase {
    pub name: String,
    pub instance: String,
    /// Restores go into this DB subnet group instead of the source's.
    #[serde(default)]
    pub restore_subnet_group: Option<String>,
    /// Restores get these VPC security groups instead of the source's.
    #[serde(default)]
    pub restore_security_groups: Option<Vec<String>>,
    /// `primary` (default), `backup` or a region name.
    #[serde(default)]
    pub region: Option<String>,
    /// SSM parameter the application reads its database host from (`/dr cutover`).
    #[serde(default)]
    pub cutover_parameter: Option<String>,
    /// `[[ecs.services]]` names redeployed after a cutover.
    #[serde(default)]
    pub cutover_services: Vec<String>,
    /// Where a restore in another region (`restore … --region`) is placed: that region's
    /// subnet group, security groups and instance class (the source may be unreachable).
    #[serde(default)]
    pub backup_placement: Option<BackupPlacement>,
    /// The KMS key (in the target region) for copies of an encrypted snapshot to another
    /// region (`/dr snapshot copy`).
    #[serde(default)]
    pub copy_kms_key: Option<String>,
    /// The database inside a restored instance that the checks read (`verify_database`).
    #[serde(default)]
    pub verify_database: Option<String>,
    /// The user drbot signs in as (IAM authentication; a secret may name its own).
    #[serde(default)]
    pub verify_user: Option<String>,
    /// `iam` or `secret:<name or ARN>` (parsed by [`data_checks::Credentials`]).
    #[serde(default)]
    pub verify_credentials: Option<String>,
    #[serde(default)]
    pub verify_tls: VerifyTls,
    /// The CA bundle a restored instance's certificate must chain to (verify-full);
    /// default: the RDS bundle of the image, `/etc/ssl/certs/rds-global-bundle.pem`.
    #[serde(default)]
    pub verify_ca: Option<std::path::PathBuf>,
    /// The newest write the restored data holds (`select max(created_at) from orders`):
    /// the real RPO is the restore point minus it.
    #[serde(default)]
    pub newest_write_sql: Option<String>,
    /// What the restored data must hold.
    #[serde(default)]
    pub checks: Vec<DataCheck>,
}

impl RdsDatabase {
    /// Does a restore of it get its data checked (checks or a newest write configured)?
    pub fn verifies_data(&self) -> bool {
        !self.checks.is_empty() || self.newest_write_sql.is_some()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPlacement {
    #[serde(default)]
    pub subnet_group: Option<String>,
    #[serde(default)]
    pub security_groups: Vec<String>,
    /// Default: the source instance's class, when it can be read.
    #[serde(default)]
    pub class: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WafSettings {
    pub ip_sets: Vec<WafIpSets>,
    pub web_acl: Option<WebAclRef>,
    /// CIDRs that may never be blocked.
    pub never_block: Vec<String>,
    pub min_prefix_v4: u8,
    pub min_prefix_v6: u8,
}

impl Default for WafSettings {
    fn default() -> Self {
        Self {
            ip_sets: Vec::new(),
            web_acl: None,
            never_block: Vec::new(),
            min_prefix_v4: 16,
            min_prefix_v6: 48,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafIpSets {
    pub name: String,
    pub scope: WafScope,
    pub ipv4_set: WafIpSetRef,
    pub ipv6_set: Option<WafIpSetRef>,
}

/// Why a name someone typed matches nothing in `drbot.toml`, said for them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotConfigured(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum WafScope {
    #[serde(rename = "REGIONAL")]
    Regional,
    #[serde(rename = "CLOUDFRONT")]
    Cloudfront,
}

impl WafScope {
    pub fn as_str(self) -> &'static str {
        match self {
            WafScope::Regional => "REGIONAL",
            WafScope::Cloudfront => "CLOUDFRONT",
        }
    }

    /// The scope named as WAF (and the store) names it.
    pub fn parse(name: &str) -> Option<WafScope> {
        [WafScope::Regional, WafScope::Cloudfront]
            .into_iter()
            .find(|scope| scope.as_str() == name)
    }
}

impl std::fmt::Display for WafScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WafIpSetRef {
    pub name: String,
    pub id: String,
}

/// A configuration problem, always naming the file and the key or value at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read the configuration file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}")]
    Syntax {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {key}: {message}")]
    Invalid {
        path: String,
        key: String,
        message: String,
    },
}

impl Settings {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// The configuration from `DRBOT_CONFIG_TOML` when that is set (the text itself, as
    /// ECS passes a secret or an SSM parameter: no file to write, so a task that cannot
    /// write its disk still starts), else from the file at `path`.
    ///
    /// `DRBOT_PRIMARY_REGION` and `DRBOT_BACKUP_REGION` (the stack's parameters) fill
    /// `[regions]` where the file says nothing, and must agree with it where it does.
    pub fn load_or_env(path: &Path) -> Result<Self, ConfigError> {
        let (mut settings, shown) = match std::env::var(CONFIG_TEXT_VAR) {
            Ok(text) if !text.trim().is_empty() => (
                Self::parse(&text, CONFIG_TEXT_VAR)?,
                CONFIG_TEXT_VAR.to_string(),
            ),
            _ => (Self::load(path)?, path.display().to_string()),
        };
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        for (var, key, slot) in [
            (
                "DRBOT_PRIMARY_REGION",
                "regions.primary",
                &mut settings.regions.primary,
            ),
            (
                "DRBOT_BACKUP_REGION",
                "regions.backup",
                &mut settings.regions.backup,
            ),
        ] {
            let Some(region) = from_env(var) else {
                continue;
            };
            let invalid = |message: String| ConfigError::Invalid {
                path: shown.clone(),
                key: key.to_string(),
                message,
            };
            if !is_region_name(&region) {
                return Err(invalid(format!(
                    "{var}='{region}' is not an AWS region name"
                )));
            }
            match slot {
                Some(set) if *set != region => {
                    return Err(invalid(format!(
                        "'{set}' differs from {var}='{region}' (the stack's parameter): make them agree"
                    )))
                }
                _ => *slot = Some(region),
            }
        }
        Ok(settings)
    }

    /// Parses and validates configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let settings: Settings = toml::from_str(text).map_err(|e| {
            let (line, column) = e
                .span()
                .map(|span| line_and_column(text, span.start))
                .unwrap_or((1, 1));
            ConfigError::Syntax {
                path: path.to_string(),
                line,
                column,
                message: e.message().replace('\n', " ").trim().to_string(),
            }
        })?;
        settings.validate(path)?;
        Ok(settings)
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            path: path.to_string(),
            key: key.to_string(),
            message,
        };

        for channel in &self.slack.command_channels {
            if !is_slack_id(channel, &['C', 'G']) {
                return Err(invalid(
                    "slack.command_channels",
                    format!(
                        "'{channel}' is not a Slack channel ID (like C0123OPS); use IDs, not names"
                    ),
                ));
            }
        }
        for responder in &self.access.responders {
            if !is_slack_id(responder, &['U', 'W', 'S']) {
                return Err(invalid(
                    "access.responders",
                    format!("'{responder}' is not a Slack user ID (like U0123ABCD) or user group ID (like S0123ABCD); use IDs, not names or handles"),
                ));
            }
        }
        if self.access.refresh.as_duration() < std::time::Duration::from_secs(10) {
            return Err(invalid(
                "access.refresh",
                "must be at least 10s (Slack rate-limits usergroups.users.list)".to_string(),
            ));
        }
        let prefix = &self.slack.incident_channel_prefix;
        if prefix.is_empty()
            || prefix.len() > 20
            || !prefix
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                "slack.incident_channel_prefix",
                format!("'{prefix}' must be 1-20 lowercase letters, digits or hyphens"),
            ));
        }

        let approval = &self.approval;
        if approval.officers.is_empty() {
            return Err(invalid(
                "approval.officers",
                "no officers are configured, so nothing could ever be approved; list the security officers' Slack user IDs".to_string(),
            ));
        }
        for officer in &approval.officers {
            if !is_slack_id(officer, &['U', 'W']) {
                return Err(invalid(
                    "approval.officers",
                    format!("'{officer}' is not a Slack user ID (like U0SECOFF1); use IDs, never display names"),
                ));
            }
        }
        if approval.required_approvals == 0 || approval.required_approvals > approval.officers.len()
        {
            return Err(invalid(
                "approval.required_approvals",
                format!(
                    "{} must be between 1 and the number of officers ({})",
                    approval.required_approvals,
                    approval.officers.len()
                ),
            ));
        }
        if approval.approve_reactions.is_empty() {
            return Err(invalid(
                "approval.approve_reactions",
                "at least one approve reaction is needed".to_string(),
            ));
        }
        for reaction in approval
            .approve_reactions
            .iter()
            .chain(&approval.reject_reactions)
        {
            if !is_reaction_name(reaction) {
                return Err(invalid(
                    "approval.approve_reactions",
                    format!("'{reaction}' is not a reaction name; write it without colons, e.g. white_check_mark"),
                ));
            }
        }
        if let Some(both) = approval
            .approve_reactions
            .iter()
            .find(|r| approval.reject_reactions.contains(r))
        {
            return Err(invalid(
                "approval.reject_reactions",
                format!("'{both}' cannot both approve and reject"),
            ));
        }

        unique_names(self.ecs.services.iter().map(|s| s.name.as_str())).map_err(|name| {
            invalid("ecs.services.name", format!("'{name}' is configured twice"))
        })?;
        unique_names(self.rds.databases.iter().map(|d| d.name.as_str())).map_err(|name| {
            invalid(
                "rds.databases.name",
                format!("'{name}' is configured twice"),
            )
        })?;
        unique_names(self.waf.ip_sets.iter().map(|s| s.name.as_str()))
            .map_err(|name| invalid("waf.ip_sets.name", format!("'{name}' is configured twice")))?;
        for name in self
            .ecs
            .services
            .iter()
            .map(|s| &s.name)
            .chain(self.rds.databases.iter().map(|d| &d.name))
            .chain(self.waf.ip_sets.iter().map(|s| &s.name))
        {
            if !is_command_word(name) {
                return Err(invalid(
                    "name",
                    format!("'{name}' must be lowercase letters, digits, hyphens or underscores, as typed in /dr commands"),
                ));
            }
        }
        for db in &self.rds.databases {
            if db.instance.trim().is_empty() {
                return Err(invalid(
                    "rds.databases.instance",
                    format!("database '{}' has an empty instance", db.name),
                ));
            }
        }
        for svc in &self.ecs.services {
            if svc.cluster.trim().is_empty() || svc.service.trim().is_empty() {
                return Err(invalid(
                    "ecs.services",
                    format!("service '{}' needs both cluster and service", svc.name),
                ));
            }
        }

        for cidr in &self.waf.never_block {
            cidr.parse::<IpNet>()
                .or_else(|_| cidr.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    invalid(
                        "waf.never_block",
                        format!("'{cidr}' is not an IP address or CIDR (like 10.0.0.0/8)"),
                    )
                })?;
        }
        if !(1..=32).contains(&self.waf.min_prefix_v4) {
            return Err(invalid(
                "waf.min_prefix_v4",
                format!("{} must be between 1 and 32", self.waf.min_prefix_v4),
            ));
        }
        if !(1..=128).contains(&self.waf.min_prefix_v6) {
            return Err(invalid(
                "waf.min_prefix_v6",
                format!("{} must be between 1 and 128", self.waf.min_prefix_v6),
            ));
        }
        for (key, region) in [
            ("regions.primary", &self.regions.primary),
            ("regions.backup", &self.regions.backup),
        ] {
            if let Some(r) = region {
                if !is_region_name(r) {
                    return Err(invalid(
                        key,
                        format!("'{r}' is not an AWS region name (like us-west-2)"),
                    ));
                }
            }
        }
        for (what, name, region) in self
            .ecs
            .services
            .iter()
            .map(|s| ("ecs.services.region", &s.name, &s.region))
            .chain(
                self.rds
                    .databases
                    .iter()
                    .map(|d| ("rds.databases.region", &d.name, &d.region)),
            )
        {
            if let Some(r) = region {
                self.region_named(r)
                    .map_err(|why| invalid(what, format!("'{name}': {why}")))?;
            }
        }
        for svc in &self.ecs.services {
            if svc.max_desired < 1 {
                return Err(invalid(
                    "ecs.services.max_desired",
                    format!("'{}': {} must be at least 1", svc.name, svc.max_desired),
                ));
            }
        }
        self.alarms
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        self.console
            .validate()
            .map_err(|(key, message)| invalid(key, message))?;
        if let Some(page) = &self.status_page {
            page.validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        if let Some(email) = &self.email {
            email
                .validate()
                .map_err(|(key, message)| invalid(key, message))?;
        }
        for db in &self.rds.databases {
            db.validate_verification()
                .map_err(|(key, message)| invalid(key, message))?;
            for svc in &db.cutover_services {
                if self.service(svc).is_none() {
                    return Err(invalid(
                        "rds.databases.cutover_services",
                        format!("'{}': '{svc}' is not an [[ecs.services]] name", db.name),
                    ));
                }
            }
            if let Some(p) = &db.cutover_parameter {
                if !p.starts_with('/') && p.contains('/') || p.trim().is_empty() {
                    return Err(invalid(
                        "rds.databases.cutover_parameter",
                        format!(
                            "'{p}' is not an SSM parameter name (like /aifai/prod/DATABASE_HOST)"
                        ),
                    ));
                }
            }
        }
        unique_names(self.dns.records.iter().map(|r| r.name.as_str()))
            .map_err(|name| invalid("dns.records.name", format!("'{name}' is configured twice")))?;
        for r in &self.dns.records {
            if !is_command_word(&r.name) {
                return Err(invalid(
                    "dns.records.name",
                    format!(
                        "'{}' must be lowercase letters, digits, hyphens or underscores",
                        r.name
                    ),
                ));
            }
            if r.kind == RecordType::A
                && (r.primary_alias_zone.is_none() || r.backup_alias_zone.is_none())
            {
                return Err(invalid("dns.records", format!("'{}': an alias A record needs primary_alias_zone and backup_alias_zone (the load balancers' hosted zones)", r.name)));
            }
            if r.kind == RecordType::Cname && !(1..=172_800).contains(&r.ttl) {
                return Err(invalid(
                    "dns.records.ttl",
                    format!(
                        "'{}': {} must be between 1 and 172800 seconds",
                        r.name, r.ttl
                    ),
                ));
            }
            if r.primary == r.backup {
                return Err(invalid(
                    "dns.records",
                    format!("'{}': primary and backup are the same target", r.name),
                ));
            }
        }
        if let Some(acl) = &self.waf.web_acl {
            if !RATE_LIMIT_RANGE.contains(&acl.rate_limit) {
                return Err(invalid(
                    "waf.web_acl.rate_limit",
                    format!(
                        "{} must be between 10 and 2000000000 requests per 5 minutes",
                        acl.rate_limit
                    ),
                ));
            }
        }
        self.check_timeouts(&invalid)?;
        let retention = self.rds.retention.unwrap_or_default();
        if retention.daily > 366 || retention.weekly > 520 || retention.monthly > 120 {
            return Err(invalid(
                "rds.retention",
                "at most 366 daily, 520 weekly and 120 monthly snapshots".to_string(),
            ));
        }
        if let Some(test) = &self.drills.restore_test {
            for name in &test.databases {
                if self.database(name).is_none() {
                    return Err(invalid(
                        "drills.restore_test.databases",
                        format!("'{name}' is not a [[rds.databases]] name"),
                    ));
                }
            }
            if test.every.as_secs() < 3600 {
                return Err(invalid(
                    "drills.restore_test.every",
                    format!(
                        "{} is too often: at least 1h (each test restores a whole instance)",
                        test.every
                    ),
                ));
            }
            if test.window.as_secs() == 0 {
                return Err(invalid(
                    "drills.restore_test.window",
                    "0s leaves no snapshot to pick; e.g. \"30d\"".to_string(),
                ));
            }
            if !test.databases.is_empty() && self.ops_channel().is_none() {
                return Err(invalid(
                    "drills.restore_test.channel",
                    "scheduled restore tests need a channel for their requests and results: set `channel`, or `slack.command_channels`".to_string(),
                ));
            }
            if let Some(channel) = &test.channel {
                if !is_slack_id(channel, &['C', 'G']) {
                    return Err(invalid(
                        "drills.restore_test.channel",
                        format!("'{channel}' is not a Slack channel ID (like C0123OPS)"),
                    ));
                }
            }
        }
        let copies = &self.rds.copies;
        for name in &copies.databases {
            if self.database(name).is_none() {
                return Err(invalid(
                    "rds.copies.databases",
                    format!("'{name}' is not a [[rds.databases]] name"),
                ));
            }
        }
        if !copies.databases.is_empty() {
            if self.regions.backup.is_none() {
                return Err(invalid(
                    "rds.copies",
                    "copies go to the backup region: set [regions] backup (and primary)"
                        .to_string(),
                ));
            }
            if self.ops_channel().is_none() {
                return Err(invalid(
                    "rds.copies",
                    "scheduled copies need a channel for their requests and results: set `slack.command_channels`".to_string(),
                ));
            }
            if copies.every.as_secs() < 600 {
                return Err(invalid(
                    "rds.copies.every",
                    format!(
                        "{} is too often: at least 10m (each copy moves a whole snapshot)",
                        copies.every
                    ),
                ));
            }
            if copies.keep.as_secs() < copies.every.as_secs() {
                return Err(invalid(
                    "rds.copies.keep",
                    format!("{} is shorter than `every` ({}): the last copy would be deleted before the next one", copies.keep, copies.every),
                ));
            }
        }
        if self.readiness.every.as_secs() < 60 {
            return Err(invalid(
                "readiness.every",
                format!(
                    "{} is too often: at least 1m (each check reads every region the plans use)",
                    self.readiness.every
                ),
            ));
        }
        if !(2..=600).contains(&self.store.lease.as_secs()) {
            return Err(invalid(
                "store.lease",
                format!(
                    "{} must be between 2s and 10m (replicas renew it every fifth of it)",
                    self.store.lease
                ),
            ));
        }
        Ok(())
    }

    /// The configured `/dr` name of every ECS service.
    pub fn service(&self, name: &str) -> Option<&EcsService> {
        self.ecs.services.iter().find(|s| s.name == name)
    }

    /// [`Self::service`], or why there is none, for the user.
    pub fn known_service(&self, name: &str) -> Result<&EcsService, NotConfigured> {
        self.service(name)
            .ok_or_else(|| NotConfigured(format!("unknown service `{name}`")))
    }

    /// Every region's AWS call timeouts (`[regions]`, then `[aws] call_timeout`, then
    /// drbot's defaults), with `backup` and a configured `primary` resolved to region names.
    pub fn aws_timeouts(&self) -> AwsTimeouts {
        let regions = &self.regions;
        let default = CallTimeout {
            connect: regions
                .connect_timeout
                .map(HumanDuration::as_duration)
                .unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            call: regions
                .call_timeout
                .or(self.aws.call_timeout)
                .map(HumanDuration::as_duration)
                .unwrap_or(DEFAULT_CALL_TIMEOUT),
        };
        let regions = regions
            .timeouts
            .iter()
            .map(|(name, t)| {
                let key = match name.as_str() {
                    "primary" => regions.primary.clone().unwrap_or_else(|| name.clone()),
                    "backup" => regions.backup.clone().unwrap_or_else(|| name.clone()),
                    _ => name.clone(),
                };
                let call = t
                    .call_timeout
                    .map(HumanDuration::as_duration)
                    .unwrap_or(default.call);
                let connect = t
                    .connect_timeout
                    .map(HumanDuration::as_duration)
                    .unwrap_or(default.connect)
                    .min(call);
                (key, CallTimeout { connect, call })
            })
            .collect();
        AwsTimeouts {
            default: CallTimeout {
                connect: default.connect.min(default.call),
                call: default.call,
            },
            regions,
        }
    }

    /// A warning when drbot itself runs (`own`: its `AWS_REGION`) in the primary region —
    /// the region whose failure the plan's first scenario is about: drbot should run, with
    /// its database, in the backup region, where it keeps working when the primary is dark.
    pub fn placement_warning(&self, own: Option<&str>) -> Option<String> {
        let own = own?;
        let backup = self.regions.backup.as_deref();
        let elsewhere = match backup {
            Some(b) if b != own => format!("the backup region, {b}"),
            _ => "a region other than the primary (set [regions] backup)".to_string(),
        };
        match self.regions.primary.as_deref() {
            Some(primary) if primary == own => Some(format!(
                "drbot runs in {own}, the primary region, whose failure is the region-failure scenario: run drbot and its database in {elsewhere}, or drbot goes dark with what it should recover"
            )),
            // drbot already runs in the backup region: left to AWS_REGION, the primary would
            // be the backup region itself (and resources without `region` looked up there).
            None if backup == Some(own) => Some(format!(
                "[regions] primary is not set, so it is AWS_REGION ({own}) — the backup region itself: set [regions] primary to the region drbot protects"
            )),
            None => Some(format!(
                "[regions] primary is not set, so the primary region is AWS_REGION ({own}), where drbot itself runs: set [regions] primary to the region drbot protects and run drbot and its database in {elsewhere}"
            )),
            _ => None,
        }
    }

    fn check_timeouts(
        &self,
        invalid: &impl Fn(&str, String) -> ConfigError,
    ) -> Result<(), ConfigError> {
        let in_range = |key: String, value: Option<HumanDuration>| match value {
            Some(v) if !(1..=600).contains(&v.as_secs()) => {
                Err(invalid(&key, format!("{v} must be between 1s and 10m")))
            }
            _ => Ok(()),
        };
        in_range("aws.call_timeout".into(), self.aws.call_timeout)?;
        in_range("regions.call_timeout".into(), self.regions.call_timeout)?;
        in_range(
            "regions.connect_timeout".into(),
            self.regions.connect_timeout,
        )?;
        for (name, t) in &self.regions.timeouts {
            if !matches!(name.as_str(), "primary" | "backup") && !is_region_name(name) {
                return Err(invalid(
                    &format!("regions.timeouts.{name}"),
                    format!("'{name}' is not `primary`, `backup` or an AWS region name (like eu-west-1)"),
                ));
            }
            if name == "backup" && self.regions.backup.is_none() {
                return Err(invalid(
                    "regions.timeouts.backup",
                    "`backup` needs [regions] backup".to_string(),
                ));
            }
            in_range(
                format!("regions.timeouts.{name}.call_timeout"),
                t.call_timeout,
            )?;
            in_range(
                format!("regions.timeouts.{name}.connect_timeout"),
                t.connect_timeout,
            )?;
        }
        Ok(())
    }

    /// The region a resource's `region` key names: `primary` (or none) is `[regions]
    /// primary` (`None`: the SDK's `AWS_REGION`), `backup` is `[regions] backup`, anything
    /// else a region name.
    pub fn region_named(&self, name: &str) -> Result<Option<String>, NotConfigured> {
        match name {
            "primary" => Ok(self.regions.primary.clone()),
            "backup" => self
                .regions
                .backup
                .clone()
                .map(Some)
                .ok_or_else(|| NotConfigured("`backup` needs [regions] backup".to_string())),
            other if is_region_name(other) => Ok(Some(other.to_string())),
            other => Err(NotConfigured(format!(
                "'{other}' is not `primary`, `backup` or an AWS region name"
            ))),
        }
    }

    /// The region of a resource whose `region` key is `region` (`None`: the default one).
    pub fn region_of(&self, region: Option<&str>) -> Option<String> {
        self.region_named(region.unwrap_or("primary"))
            .ok()
            .flatten()
    }

    pub fn ip_set(&self, name: &str) -> Option<&WafIpSets> {
        self.waf.ip_sets.iter().find(|s| s.name == name)
    }

    pub fn dns_record(&self, name: &str) -> Option<&DnsRecord> {
        self.dns.records.iter().find(|r| r.name == name)
    }

    /// Where drbot posts what nobody asked for in a channel (scheduled restore tests and
    /// backup checks): `drills.restore_test.channel`, else the first command channel, else
    /// the checkpoint channel.
    pub fn ops_channel(&self) -> Option<&str> {
        self.drills
            .restore_test
            .as_ref()
            .and_then(|t| t.channel.as_deref())
            .or(self.slack.command_channels.first().map(String::as_str))
            .or(self.audit.checkpoint_channel.as_deref())
    }

    pub fn database(&self, name: &str) -> Option<&RdsDatabase> {
        self.rds.databases.iter().find(|d| d.name == name)
    }

    pub fn is_officer(&self, user: &str) -> bool {
        self.approval.officers.iter().any(|o| o == user)
    }

    /// Never-block ranges, already validated at load.
    pub fn never_block(&self) -> Vec<IpNet> {
        self.waf
            .never_block
            .iter()
            .filter_map(|c| {
                c.parse::<IpNet>()
                    .ok()
                    .or_else(|| c.parse::<std::net::IpAddr>().ok().map(IpNet::from))
            })
            .collect()
    }
}

fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(name.to_string());
        }
    }
    Ok(())
}

fn is_slack_id(value: &str, prefixes: &[char]) -> bool {
    value.len() >= 3
        && value.starts_with(prefixes)
        && value
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

fn is_reaction_name(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '\''))
}

fn is_command_word(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `us-east-1`, `eu-central-2`, `ap-southeast-3`, `us-gov-west-1`…
pub fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.len() <= 4
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase()))
        && parts[parts.len() - 1].parse::<u8>().is_ok()
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// A value that must never be printed: `Debug` and `Display` show `[redacted]`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// What `serve` takes from the environment (SPEC §3).
#[derive(Debug, Clone)]
pub struct Environment {
    /// Verifies HTTP requests from Slack (none in Socket Mode).
    pub signing_secret: Option<Secret>,
    /// The `xapp-` token of Socket Mode (`serve --socket-mode`).
    pub app_token: Option<Secret>,
    /// `serve --socket-mode`: Slack's traffic arrives over Socket Mode, not HTTP.
    pub socket_mode: bool,
    /// A separate address for `/metrics` (then not served on `listen`).
    pub metrics_listen: Option<SocketAddr>,
    /// Keys the audit chain (HMAC) and signs its checkpoints.
    pub audit_key: Option<Secret>,
    pub bot_token: Secret,
    pub slack_api_url: String,
    pub listen: SocketAddr,
    pub database_url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EnvError {
    #[error("{name} is not set: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("{name}: {message}")]
    Invalid { name: &'static str, message: String },
}

impl Environment {
    /// Reads the environment through `get` (so tests can pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        Self::for_transport(get, false)
    }

    /// As [`Self::from_lookup`]; with `socket_mode`, `SLACK_APP_TOKEN` is required and the
    /// signing secret is not (nothing arrives over HTTP from Slack).
    pub fn for_transport(
        get: impl Fn(&str) -> Option<String>,
        socket_mode: bool,
    ) -> Result<Self, EnvError> {
        let non_empty = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let signing_secret = non_empty("SLACK_SIGNING_SECRET");
        if signing_secret.is_none() && !socket_mode {
            return Err(EnvError::Missing {
                name: "SLACK_SIGNING_SECRET",
                hint: "copy it from your Slack app's Basic Information page; drbot verifies every request with it (or run `drbot serve --socket-mode` with SLACK_APP_TOKEN)",
            });
        }
        let app_token = non_empty("SLACK_APP_TOKEN");
        if socket_mode {
            match &app_token {
                None => {
                    return Err(EnvError::Missing {
                        name: "SLACK_APP_TOKEN",
                        hint: "Socket Mode needs the app-level xapp- token with the connections:write scope (Basic Information → App-Level Tokens)",
                    })
                }
                Some(t) if !t.starts_with("xapp-") => {
                    return Err(EnvError::Invalid {
                        name: "SLACK_APP_TOKEN",
                        message: "must be an app-level token starting with xapp-".to_string(),
                    })
                }
                Some(_) => {}
            }
        }
        let bot_token = non_empty("SLACK_BOT_TOKEN").ok_or(EnvError::Missing {
            name: "SLACK_BOT_TOKEN",
            hint: "set the app's xoxb- bot token from OAuth & Permissions",
        })?;
        if !bot_token.starts_with("xoxb-") {
            return Err(EnvError::Invalid {
                name: "SLACK_BOT_TOKEN",
                message: "must be a bot token starting with xoxb- (not a user or app token)"
                    .to_string(),
            });
        }
        let slack_api_url = non_empty("DRBOT_SLACK_API_URL")
            .unwrap_or_else(|| "https://slack.com/api/".to_string());
        let parsed = url::Url::parse(&slack_api_url).map_err(|e| EnvError::Invalid {
            name: "DRBOT_SLACK_API_URL",
            message: format!("'{slack_api_url}' is not a URL: {e}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EnvError::Invalid {
                name: "DRBOT_SLACK_API_URL",
                message: format!("'{slack_api_url}' must be an http or https URL"),
            });
        }
        let listen_raw = non_empty("DRBOT_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".to_string());
        let listen = listen_raw.parse().map_err(|_| EnvError::Invalid {
            name: "DRBOT_LISTEN",
            message: format!("'{listen_raw}' is not an address like 127.0.0.1:3000"),
        })?;
        let metrics_listen = match non_empty("DRBOT_METRICS_LISTEN") {
            None => None,
            Some(raw) => Some(raw.parse().map_err(|_| EnvError::Invalid {
                name: "DRBOT_METRICS_LISTEN",
                message: format!("'{raw}' is not an address like 127.0.0.1:9100"),
            })?),
        };
        let database_url =
            non_empty("DRBOT_DATABASE_URL").unwrap_or_else(|| "sqlite://drbot.db".to_string());
        Ok(Self {
            signing_secret: signing_secret.map(Secret::new),
            app_token: app_token.map(Secret::new),
            socket_mode,
            metrics_listen,
            audit_key: non_empty("DRBOT_AUDIT_KEY").map(Secret::new),
            bot_token: Secret::new(bot_token),
            slack_api_url: slack_api_url.trim_end_matches('/').to_string(),
            listen,
            database_url,
        })
    }

    pub fn from_process(socket_mode: bool) -> Result<Self, EnvError> {
        Self::for_transport(|name| std::env::var(name).ok(), socket_mode)
    }
}

/// The database URL alone, for the offline subcommands (`timeline`, `audit`).
pub fn database_url_from_process() -> String {
    std::env::var("DRBOT_DATABASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "sqlite://drbot.db".to_string())
}

/// The variable that holds the configuration's text itself ([`Settings::load_or_env`]).
pub const CONFIG_TEXT_VAR: &str = "DRBOT_CONFIG_TOML";

/// Default location of the configuration file: `DRBOT_CONFIG` when set (the image sets
/// `/etc/drbot/drbot.toml`, where the file is mounted), else `drbot.toml` here.
pub fn default_config_path() -> PathBuf {
    std::env::var_os("DRBOT_CONFIG")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("drbot.toml"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[approval]
officers = ["U0SECOFF1"]
"#;

    #[test]
    fn a_waf_scope_is_named_as_waf_names_it_and_nothing_else_is_one() {
        for scope in [WafScope::Regional, WafScope::Cloudfront] {
            assert_eq!(WafScope::parse(scope.as_str()), Some(scope));
            // Plans and the store keep the same name (a plan's hash binds its JSON).
            assert_eq!(
                serde_json::to_string(&scope).unwrap(),
                format!("\"{}\"", scope.as_str())
            );
        }
        for other in ["", "regional", "CloudFront", "GLOBAL"] {
            assert_eq!(WafScope::parse(other), None, "{other}");
        }
    }

    #[test]
    fn minimal_config_takes_the_documented_defaults() {
        let s = Settings::parse(MINIMAL, "drbot.toml").unwrap();
        assert_eq!(s.approval.ttl.as_secs(), 900);
        assert_eq!(s.approval.approve_reactions, ["white_check_mark", "+1"]);
        assert!(!s.approval.allow_self_approval);
        assert_eq!(s.waf.min_prefix_v4, 16);
        assert_eq!(s.slack.incident_channel_prefix, "inc");
    }

    #[test]
    fn unknown_key_names_the_key_and_line() {
        let err = Settings::parse("[approval]\nofficers = [\"U1\"]\nttll = \"5m\"\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("x.toml:3:"), "{err}");
        assert!(err.contains("ttll"), "{err}");
    }

    #[test]
    fn display_names_are_not_officers() {
        let err = Settings::parse("[approval]\nofficers = [\"@alice\"]\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("approval.officers"), "{err}");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("xoxb-very-secret".into());
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
    }

    #[test]
    fn environment_requires_the_slack_secrets() {
        let err = Environment::from_lookup(|_| None).unwrap_err().to_string();
        assert!(err.starts_with("SLACK_SIGNING_SECRET is not set"), "{err}");
    }
}

#[cfg(test)]
mod timeout_tests {
    use super::*;

    #[test]
    fn each_region_waits_its_own_timeouts_with_drbots_defaults_elsewhere() {
        let settings = Settings::parse(
            "[approval]\nofficers = [\"U0SECOFF1\"]\n[regions]\nprimary = \"eu-west-1\"\nbackup = \"eu-central-1\"\ncall_timeout = \"8s\"\n[regions.timeouts.backup]\ncall_timeout = \"20s\"\n[regions.timeouts.us-east-1]\nconnect_timeout = \"1s\"\n",
            "drbot.toml",
        )
        .unwrap();
        let t = settings.aws_timeouts();
        let secs = std::time::Duration::from_secs;
        assert_eq!(t.of("eu-west-1", None).call, secs(8));
        assert_eq!(t.of("eu-west-1", None).connect, DEFAULT_CONNECT_TIMEOUT);
        assert_eq!(t.of("eu-central-1", None).call, secs(20));
        assert_eq!(
            t.of("us-east-1", None),
            CallTimeout {
                connect: secs(1),
                call: secs(8)
            }
        );
        let bad = Settings::parse(
            "[approval]\nofficers = [\"U0SECOFF1\"]\n[regions.timeouts.mars]\ncall_timeout = \"8s\"\n",
            "drbot.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("regions.timeouts.mars"), "{bad}");
        let bad = Settings::parse(
            "[approval]\nofficers = [\"U0SECOFF1\"]\n[regions]\ncall_timeout = \"11m\"\n",
            "drbot.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(bad.contains("between 1s and 10m"), "{bad}");
        // Where drbot runs against the primary region.
        let warn = |primary: &str, own| {
            Settings::parse(
                &format!("[approval]\nofficers = [\"U0SECOFF1\"]\n[regions]\n{primary}backup = \"eu-central-1\"\n"),
                "drbot.toml",
            )
            .unwrap()
            .placement_warning(Some(own))
        };
        assert!(warn("primary = \"eu-west-1\"\n", "eu-west-1")
            .unwrap()
            .contains("the backup region, eu-central-1"));
        assert_eq!(warn("primary = \"eu-west-1\"\n", "eu-central-1"), None);
        assert!(warn("", "eu-central-1")
            .unwrap()
            .contains("the backup region itself"));
        assert!(warn("", "eu-west-1")
            .unwrap()
            .contains("[regions] primary is not set"));
        // Without any of it: 3 s to connect, 10 s a call.
        let plain =
            Settings::parse("[approval]\nofficers = [\"U0SECOFF1\"]\n", "drbot.toml").unwrap();
        assert_eq!(
            plain.aws_timeouts().of("eu-west-1", None),
            CallTimeout {
                connect: DEFAULT_CONNECT_TIMEOUT,
                call: DEFAULT_CALL_TIMEOUT
            }
        );
    }
}
