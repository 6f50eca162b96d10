//! The plan's retention policy (dr-plan.md: 7 daily, 4 weekly, 12 monthly snapshots)
//! checked against the snapshots RDS holds: which slots are held, which are only held by
//! an automated snapshot that RDS will delete with its backup retention (at most 35 days),
//! and which are missing; what `--enforce` copies and deletes. Pure: the caller reads RDS.
//!
//! Slots are UTC days, ISO weeks (Monday first) and calendar months, the current one
//! included. A daily slot is held by any snapshot taken that day. A weekly or monthly slot
//! is held only by a manual snapshot (automated ones expire); one held by an automated
//! snapshot alone is *at risk*, and `--enforce` copies that snapshot to a manual
//! `drbot-weekly-<instance>-<yyyy>w<ww>` or `drbot-monthly-<instance>-<yyyymm>`. The current
//! slot with nothing in it yet is *not yet*, not missing. `--enforce` deletes only drbot's
//! own retention copies (named so and tagged `drbot:retention`) that hold no kept slot.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::rds::Snapshot;
use crate::config::RetentionSettings;

/// The tag drbot puts on its retention copies (`weekly` or `monthly`).
pub const RETENTION_TAG: &str = "drbot:retention";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    Daily,
    Weekly,
    Monthly,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Daily => "daily",
            Tier::Weekly => "weekly",
            Tier::Monthly => "monthly",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SlotState {
    Held { by: String },
    AtRisk { by: String, expires: Option<String> },
    Missing,
    NotYet,
}

#[derive(Debug, Clone, Serialize)]
pub struct Slot {
    pub tier: Tier,
    /// `2026-11-27`, `2026-W48`, `2026-11`.
    pub label: String,
    #[serde(flatten)]
    pub state: SlotState,
}

/// A copy `--enforce` makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Copy {
    pub tier: Tier,
    pub slot: String,
    pub source: String,
    pub target: String,
}

/// A snapshot `--enforce` deletes: drbot's own retention copy that holds no kept slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    pub snapshot: String,
    pub taken: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inventory {
    pub database: String,
    pub instance: String,
    pub policy: Policy,
    /// RDS's automated backup retention of the instance, in days.
    pub automated_retention_days: i32,
    pub slots: Vec<Slot>,
    pub copies: Vec<Copy>,
    pub deletions: Vec<Deletion>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Policy {
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
}

impl From<RetentionSettings> for Policy {
    fn from(r: RetentionSettings) -> Self {
        Policy {
            daily: r.daily,
            weekly: r.weekly,
            monthly: r.monthly,
        }
    }
}

/// One slot of time: `[start, end)`.
#[derive(Debug, Clone)]
struct Window {
    tier: Tier,
    label: String,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    current: bool,
}

impl Window {
    fn holds(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc()
}

fn windows(policy: Policy, now: DateTime<Utc>) -> Vec<Window> {
    let today = now.date_naive();
    let mut out = Vec::new();
    for i in 0..policy.daily as i64 {
        let day = today - Duration::days(i);
        out.push(Window {
            tier: Tier::Daily,
            label: day.format("%Y-%m-%d").to_string(),
            start: midnight(day),
            end: midnight(day + Duration::days(1)),
            current: i == 0,
        });
    }
    let monday = today - Duration::days(today.weekday().num_days_from_monday() as i64);
    for i in 0..policy.weekly as i64 {
        let start = monday - Duration::weeks(i);
        let week = start.iso_week();
        out.push(Window {
            tier: Tier::Weekly,
            label: format!("{}-W{:02}", week.year(), week.week()),
            start: midnight(start),
            end: midnight(start + Duration::weeks(1)),
            current: i == 0,
        });
    }
    let mut first = NaiveDate::from_ymd_opt(today.year(), today.month(), 1).expect("a first");
    for i in 0..policy.monthly {
        let next = first
            .checked_add_months(chrono::Months::new(1))
            .expect("a next month");
        out.push(Window {
            tier: Tier::Monthly,
            label: first.format("%Y-%m").to_string(),
            start: midnight(first),
            end: midnight(next),
            current: i == 0,
        });
        first = first
            .checked_sub_months(chrono::Months::new(1))
            .expect("a previous month");
    }
    out
}

/// The name of a retention copy for `instance` in slot `window`.
fn copy_name(instance: &str, window: &Window) -> String {
    match window.tier {
        Tier::Monthly => format!("drbot-monthly-{instance}-{}", window.start.format("%Y%m")),
        _ => {
            let week = window.start.date_naive().iso_week();
            format!("drbot-weekly-{instance}-{}w{:02}", week.year(), week.week())
        }
    }
}

/// Whether `s` is one of drbot's retention copies of `instance` (named and tagged so).
pub fn is_drbot_copy(instance: &str, s: &Snapshot) -> bool {
    let named = s.id.starts_with(&format!("drbot-weekly-{instance}-"))
        || s.id.starts_with(&format!("drbot-monthly-{instance}-"));
    named && s.tag(RETENTION_TAG).is_some() && !s.is_automated()
}

/// The inventory of `snapshots` (all of one instance) against `policy` at `now`.
pub fn inventory(
    database: &str,
    instance: &str,
    automated_retention_days: i32,
    policy: Policy,
    snapshots: &[Snapshot],
    now: DateTime<Utc>,
) -> Inventory {
    let usable: Vec<&Snapshot> = snapshots
        .iter()
        .filter(|s| s.status == "available" && s.created.is_some())
        .collect();
    let taken = |s: &Snapshot| s.created.expect("filtered on created");
    // Manual snapshots, and the copies planned so far (they hold slots once made).
    let mut manual: Vec<(String, DateTime<Utc>, bool)> = usable
        .iter()
        .filter(|s| !s.is_automated())
        .map(|s| (s.id.clone(), taken(s), is_drbot_copy(instance, s)))
        .collect();
    let mut slots = Vec::new();
    let mut copies = Vec::new();
    let mut holders: Vec<String> = Vec::new();
    let all = windows(policy, now);
    // Weekly before monthly, so a weekly copy can hold its month too.
    let mut order: Vec<&Window> = all.iter().filter(|w| w.tier == Tier::Daily).collect();
    order.extend(all.iter().filter(|w| w.tier == Tier::Weekly));
    order.extend(all.iter().filter(|w| w.tier == Tier::Monthly));
    for window in order {
        fn newest(list: Vec<&Snapshot>) -> Option<&Snapshot> {
            list.into_iter().max_by_key(|s| s.created)
        }
        let state = if window.tier == Tier::Daily {
            match newest(
                usable
                    .iter()
                    .copied()
                    .filter(|s| window.holds(taken(s)))
                    .collect(),
            ) {
                Some(s) => SlotState::Held { by: s.id.clone() },
                None if window.current => SlotState::NotYet,
                None => SlotState::Missing,
            }
        } else {
            // Prefer a copy made for this tier, then any other manual snapshot.
            let mut in_slot: Vec<&(String, DateTime<Utc>, bool)> =
                manual.iter().filter(|m| window.holds(m.1)).collect();
            in_slot.sort_by_key(|m| {
                let own_tier = m.0.starts_with(&format!("drbot-{}-", window.tier.as_str()));
                (!own_tier, std::cmp::Reverse(m.1))
            });
            if let Some(m) = in_slot.first() {
                SlotState::Held { by: m.0.clone() }
            } else {
                let automated = newest(
                    usable
                        .iter()
                        .copied()
                        .filter(|s| s.is_automated() && window.holds(taken(s)))
                        .collect(),
                );
                match automated {
                    Some(s) => {
                        let target = copy_name(instance, window);
                        copies.push(Copy {
                            tier: window.tier,
                            slot: window.label.clone(),
                            source: s.id.clone(),
                            target: target.clone(),
                        });
                        manual.push((target, taken(s), true));
                        SlotState::AtRisk {
                            by: s.id.clone(),
                            expires: (automated_retention_days > 0).then(|| {
                                crate::clock::rfc3339(
                                    taken(s) + Duration::days(automated_retention_days as i64),
                                )
                            }),
                        }
                    }
                    None if window.current => SlotState::NotYet,
                    None => SlotState::Missing,
                }
            }
        };
        if let SlotState::Held { by } = &state {
            holders.push(by.clone());
        }
        slots.push(Slot {
            tier: window.tier,
            label: window.label.clone(),
            state,
        });
    }
    // Keep the order of the policy (daily, weekly, monthly; newest first).
    let deletions = usable
        .iter()
        .filter(|s| is_drbot_copy(instance, s))
        .filter(|s| !holders.contains(&s.id))
        .filter(|s| {
            // Inside its own tier's window it stays, even when another snapshot holds it.
            let tier = if s.id.starts_with("drbot-weekly-") {
                Tier::Weekly
            } else {
                Tier::Monthly
            };
            !all.iter().any(|w| w.tier == tier && w.holds(taken(s)))
        })
        .map(|s| Deletion {
            snapshot: s.id.clone(),
            taken: s.created.map(crate::clock::rfc3339),
        })
        .collect();
    Inventory {
        database: database.to_string(),
        instance: instance.to_string(),
        policy,
        automated_retention_days,
        slots,
        copies,
        deletions,
    }
}

impl Inventory {
    fn count(&self, tier: Tier, pred: impl Fn(&SlotState) -> bool) -> usize {
        self.slots
            .iter()
            .filter(|s| s.tier == tier && pred(&s.state))
            .count()
    }

    /// Every past slot is held by a snapshot that will stay.
    pub fn compliant(&self) -> bool {
        self.slots
            .iter()
            .all(|s| matches!(s.state, SlotState::Held { .. } | SlotState::NotYet))
    }

    pub fn missing(&self) -> Vec<&Slot> {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Missing)
            .collect()
    }

    /// What an auditor and the report keep of a check.
    pub fn record(&self) -> serde_json::Value {
        let tier = |t: Tier| {
            serde_json::json!({
                "slots": self.count(t, |_| true),
                "held": self.count(t, |s| matches!(s, SlotState::Held { .. })),
                "at_risk": self.count(t, |s| matches!(s, SlotState::AtRisk { .. })),
                "missing": self.slots.iter().filter(|s| s.tier == t && s.state == SlotState::Missing).map(|s| s.label.clone()).collect::<Vec<_>>(),
            })
        };
        serde_json::json!({
            "database": self.database,
            "instance": self.instance,
            "compliant": self.compliant(),
            "policy": self.policy,
            "automated_retention_days": self.automated_retention_days,
            "daily": tier(Tier::Daily),
            "weekly": tier(Tier::Weekly),
            "monthly": tier(Tier::Monthly),
            "copies_needed": self.copies.len(),
            "deletions_due": self.deletions.len(),
        })
    }

    /// The answer in Slack (mrkdwn).
    pub fn describe(&self) -> String {
        let p = self.policy;
        let mut out = format!(
            "*Backups of `{}`* (instance `{}`; RDS keeps automated backups {} day(s)) against the plan's {} daily / {} weekly / {} monthly: {}\n",
            self.database,
            self.instance,
            self.automated_retention_days,
            p.daily,
            p.weekly,
            p.monthly,
            if self.compliant() { ":white_check_mark: *compliant*" } else { ":warning: *gaps found*" }
        );
        for (tier, of) in [
            (Tier::Daily, p.daily),
            (Tier::Weekly, p.weekly),
            (Tier::Monthly, p.monthly),
        ] {
            if of == 0 {
                continue;
            }
            let held = self.count(tier, |s| matches!(s, SlotState::Held { .. }));
            let labels = |pred: &dyn Fn(&SlotState) -> bool| {
                self.slots
                    .iter()
                    .filter(|s| s.tier == tier && pred(&s.state))
                    .map(|s| s.label.clone())
                    .collect::<Vec<_>>()
            };
            let mut line = format!("• {}: {held} of {of} held", capital(tier.as_str()));
            let at_risk = labels(&|s| matches!(s, SlotState::AtRisk { .. }));
            if !at_risk.is_empty() {
                line.push_str(&format!(
                    "; *at risk* (only an automated snapshot, deleted by RDS with its retention): {}",
                    list(&at_risk)
                ));
            }
            let missing = labels(&|s| *s == SlotState::Missing);
            if !missing.is_empty() {
                line.push_str(&format!("; *missing*: {}", list(&missing)));
            }
            let not_yet = labels(&|s| *s == SlotState::NotYet);
            if !not_yet.is_empty() {
                line.push_str(&format!("; not taken yet: {}", list(&not_yet)));
            }
            out.push_str(&line);
            out.push('\n');
        }
        if self.automated_retention_days < p.daily as i32 {
            out.push_str(&format!(
                "• RDS keeps automated backups only {} day(s), fewer than the {} daily the plan asks for: raise the instance's backup retention period.\n",
                self.automated_retention_days, p.daily
            ));
        }
        if self.copies.is_empty() && self.deletions.is_empty() {
            out.push_str("Nothing for `--enforce` to do.");
        } else {
            out.push_str(&format!(
                "`/dr backups {} --enforce` (officer) would copy {} snapshot(s) to manual ones and delete {} of drbot's own past retention.",
                self.database,
                self.copies.len(),
                self.deletions.len()
            ));
        }
        out
    }
}

fn capital(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// At most six labels, then how many more.
fn list(labels: &[String]) -> String {
    let mut shown = labels
        .iter()
        .take(6)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if labels.len() > 6 {
        shown.push_str(&format!(" and {} more", labels.len() - 6));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn snap(id: &str, kind: &str, created: &str, tags: &[(&str, &str)]) -> Snapshot {
        Snapshot {
            id: id.to_string(),
            arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{id}"),
            instance: "db".to_string(),
            source_region: None,
            status: "available".to_string(),
            created: Some(at(created)),
            kind: kind.to_string(),
            engine: "postgres".to_string(),
            engine_version: "16.3".to_string(),
            allocated_storage_gib: 20,
            encrypted: true,
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const POLICY: Policy = Policy {
        daily: 7,
        weekly: 4,
        monthly: 12,
    };

    #[test]
    fn a_week_of_automated_backups_holds_the_days_and_puts_the_weeks_at_risk() {
        let now = at("2026-11-27T12:00:00Z"); // a Friday, ISO week 48
        let snaps: Vec<Snapshot> = (0..7)
            .map(|i| {
                let t = now - Duration::days(i) - Duration::hours(9);
                snap(
                    &format!("rds:db-{}", t.format("%Y-%m-%d")),
                    "automated",
                    &crate::clock::rfc3339(t),
                    &[],
                )
            })
            .collect();
        let inv = inventory("main", "db", 7, POLICY, &snaps, now);
        let daily: Vec<_> = inv.slots.iter().filter(|s| s.tier == Tier::Daily).collect();
        assert!(daily
            .iter()
            .all(|s| matches!(s.state, SlotState::Held { .. })));
        // Weeks 48 and 47 hold automated snapshots only; 46 and 45 hold nothing.
        let weekly: Vec<_> = inv
            .slots
            .iter()
            .filter(|s| s.tier == Tier::Weekly)
            .map(|s| (s.label.as_str(), s.state.clone()))
            .collect();
        assert!(matches!(weekly[0], ("2026-W48", SlotState::AtRisk { .. })));
        assert!(matches!(weekly[1], ("2026-W47", SlotState::AtRisk { .. })));
        assert_eq!(weekly[2], ("2026-W46", SlotState::Missing));
        // The weekly copy made in November holds November's slot too: one copy, not two.
        let targets: Vec<&str> = inv.copies.iter().map(|c| c.target.as_str()).collect();
        assert_eq!(
            targets,
            ["drbot-weekly-db-2026w48", "drbot-weekly-db-2026w47"]
        );
        let november = inv.slots.iter().find(|s| s.label == "2026-11").unwrap();
        assert_eq!(
            november.state,
            SlotState::Held {
                by: "drbot-weekly-db-2026w48".into()
            }
        );
        assert!(!inv.compliant());
    }

    #[test]
    fn only_drbots_own_copies_past_retention_are_deleted() {
        let now = at("2026-11-27T12:00:00Z");
        let retention = [(RETENTION_TAG, "weekly")];
        let snaps = vec![
            // drbot's weekly copy from September: past 4 weeks, and October/September are
            // held by monthly copies, so it goes.
            snap(
                "drbot-weekly-db-2026w37",
                "manual",
                "2026-09-08T03:00:00Z",
                &retention,
            ),
            snap(
                "drbot-monthly-db-202609",
                "manual",
                "2026-09-01T03:00:00Z",
                &[(RETENTION_TAG, "monthly")],
            ),
            // A monthly copy from 2025-06: past 12 months, goes.
            snap(
                "drbot-monthly-db-202506",
                "manual",
                "2025-06-01T03:00:00Z",
                &[(RETENTION_TAG, "monthly")],
            ),
            // Named like drbot's but not tagged: not drbot's, stays.
            snap(
                "drbot-weekly-db-2026w30",
                "manual",
                "2026-07-21T03:00:00Z",
                &[],
            ),
            // Someone's manual snapshot, old: never drbot's to delete.
            snap("db-before-migration", "manual", "2024-01-01T00:00:00Z", &[]),
            // A weekly copy that is the only manual snapshot of August: holds a monthly
            // slot, stays.
            snap(
                "drbot-weekly-db-2026w33",
                "manual",
                "2026-08-11T03:00:00Z",
                &retention,
            ),
        ];
        let inv = inventory("main", "db", 7, POLICY, &snaps, now);
        let deleted: Vec<&str> = inv.deletions.iter().map(|d| d.snapshot.as_str()).collect();
        assert_eq!(
            deleted,
            ["drbot-weekly-db-2026w37", "drbot-monthly-db-202506"]
        );
        let august = inv.slots.iter().find(|s| s.label == "2026-08").unwrap();
        assert_eq!(
            august.state,
            SlotState::Held {
                by: "drbot-weekly-db-2026w33".into()
            }
        );
    }

    #[test]
    fn the_current_slot_with_nothing_yet_is_not_a_gap() {
        let now = at("2026-11-02T01:00:00Z"); // Monday, before the backup window
        let inv = inventory(
            "main",
            "db",
            7,
            Policy {
                daily: 1,
                weekly: 1,
                monthly: 1,
            },
            &[],
            now,
        );
        assert!(inv.slots.iter().all(|s| s.state == SlotState::NotYet));
        assert!(inv.compliant());
    }
}
