//! What every request handler shares: configuration, commands, the store and Slack.

use std::sync::Arc;

use crate::aws::AwsClients;
use crate::config::Settings;
use crate::router::CommandSet;
use crate::scenarios::ScenarioSet;
use crate::slack::client::SlackApi;
use crate::store::Store;

pub struct App {
    pub settings: Arc<Settings>,
    pub commands: Arc<CommandSet>,
    pub scenarios: Arc<ScenarioSet>,
    pub store: Store,
    pub slack: SlackApi,
    pub aws: AwsClients,
    /// Wakes the job worker when a job is queued.
    pub jobs: tokio::sync::Notify,
    /// Serving: the store is migrated, Slack authenticated and the workers started (until
    /// shutdown begins). `/readyz` answers 503 otherwise.
    pub ready: std::sync::atomic::AtomicBool,
    /// The members of `[access] groups`, as Slack last listed them.
    pub members: Members,
    /// Where approved publications to users go (status page, email).
    pub notify: crate::notify::Notifiers,
    /// Whether Slack's Web API answers (SPEC §19): said in the console and `/readyz`.
    pub slack_health: SlackHealth,
}

/// How Slack's Web API has been answering drbot's outbox: since when it has failed without
/// one success. Each replica keeps its own view (each sends part of the outbox).
#[derive(Debug, Default)]
pub struct SlackHealth {
    state: std::sync::Mutex<Health>,
}

#[derive(Debug, Default)]
struct Health {
    /// The last success (or when drbot started).
    answered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The first failure after the last success.
    failing_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Set once the failures lasted `down_after`: Slack is down since `failing_since`.
    down: bool,
}

/// What an answer from Slack changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlackTurn {
    Same,
    /// Failing for `down_after` now: down since then.
    WentDown(chrono::DateTime<chrono::Utc>),
    /// Answering again after being down: it last answered at `answered`, failed from `since`.
    CameBack {
        answered: chrono::DateTime<chrono::Utc>,
        since: chrono::DateTime<chrono::Utc>,
    },
}

impl SlackHealth {
    /// Slack has not failed yet at `now` (start-up).
    pub fn new(now: chrono::DateTime<chrono::Utc>) -> Self {
        SlackHealth {
            state: std::sync::Mutex::new(Health {
                answered_at: Some(now),
                ..Health::default()
            }),
        }
    }

    /// Slack answered a call at `now`.
    pub fn answered(&self, now: chrono::DateTime<chrono::Utc>) -> SlackTurn {
        let mut h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let turn = match (h.down, h.failing_since) {
            (true, Some(since)) => SlackTurn::CameBack {
                answered: h.answered_at.unwrap_or(since),
                since,
            },
            _ => SlackTurn::Same,
        };
        *h = Health {
            answered_at: Some(now),
            ..Health::default()
        };
        turn
    }

    /// A call failed for want of Slack (5xx, no answer, no connection) at `now`.
    pub fn failed(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        down_after: std::time::Duration,
    ) -> SlackTurn {
        let mut h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let since = *h.failing_since.get_or_insert(now);
        let long = (now - since).to_std().unwrap_or_default() >= down_after;
        if long && !h.down {
            h.down = true;
            return SlackTurn::WentDown(since);
        }
        SlackTurn::Same
    }

    /// Since when Slack is down, if it is.
    pub fn down_since(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        let h = self.state.lock().unwrap_or_else(|e| e.into_inner());
        h.down.then_some(h.failing_since).flatten()
    }
}

/// The members of each user group `[access]` names, read from Slack every `refresh` (a
/// copy of Slack's truth, like display names; the acknowledgement path never calls Slack).
#[derive(Debug, Default)]
pub struct Members {
    groups: std::sync::RwLock<std::collections::HashMap<String, Vec<String>>>,
}

impl Members {
    /// Slack listed `members` for `group`.
    pub fn set(&self, group: &str, members: Vec<String>) {
        let mut groups = self.groups.write().unwrap_or_else(|e| e.into_inner());
        groups.insert(group.to_string(), members);
    }

    /// Whether `user` is in `group`; `None` while the group was never read.
    pub fn contains(&self, group: &str, user: &str) -> Option<bool> {
        let groups = self.groups.read().unwrap_or_else(|e| e.into_inner());
        groups.get(group).map(|m| m.iter().any(|u| u == user))
    }
}

/// Why `user` may not run commands under `[access]`, if not: the reason (plain text) and
/// drbot's own markup after it (the mentions of who may).
pub fn access_refusal(app: &App, user: &str) -> Option<(String, String)> {
    let access = &app.settings.access;
    if access.is_open()
        || access.users().any(|u| u == user)
        || app.settings.approval.officers.iter().any(|o| o == user)
    {
        return None;
    }
    let mut unread = Vec::new();
    for group in access.groups() {
        match app.members.contains(group, user) {
            Some(true) => return None,
            Some(false) => {}
            None => unread.push(format!("<!subteam^{group}>")),
        }
    }
    let named: Vec<String> = access
        .users()
        .map(|u| format!("<@{u}>"))
        .chain(access.groups().map(|g| format!("<!subteam^{g}>")))
        .collect();
    let why = "you are not allowed to run drbot commands, in this channel or any other: `[access]` allows ".to_string();
    let mut who = format!(
        "{} and the security officers; ask whoever runs drbot to add you",
        named.join(", ")
    );
    if !unread.is_empty() {
        who.push_str(&format!(
            " (drbot could not read the members of {} from Slack yet; if you are one, try again in a minute)",
            unread.join(", ")
        ));
    }
    Some((why, who))
}

impl App {
    /// Why a request from workspace `team` (and app `app`, when the payload names one) is
    /// refused: drbot answers only its own workspace and app (SPEC §10).
    pub fn foreign(&self, team: &str, app: Option<&str>) -> Option<String> {
        let me = self.slack.identity()?;
        if team != me.team_id {
            return Some(format!(
                "this request comes from workspace {team}, but drbot serves {} only",
                me.team_id
            ));
        }
        match (app, &me.app_id) {
            (Some(app), Some(mine)) if app != mine => Some(format!(
                "this request is for app {app}, but drbot is app {mine}"
            )),
            _ => None,
        }
    }

    /// RDS in the region of `db` (SPEC §5 `region`).
    pub fn rds_for(&self, db: &crate::config::RdsDatabase) -> aws_sdk_rds::Client {
        self.aws
            .rds_in(self.settings.region_of(db.region.as_deref()).as_deref())
    }

    /// RDS in the region of the configured database `name` (the default region when it is
    /// no longer configured).
    pub fn rds_named(&self, name: &str) -> aws_sdk_rds::Client {
        match self.settings.database(name) {
            Some(db) => self.rds_for(db),
            None => self.aws.rds.clone(),
        }
    }

    /// ECS in the region of `service`.
    pub fn ecs_for(&self, service: &crate::config::EcsService) -> aws_sdk_ecs::Client {
        self.aws.ecs_in(
            self.settings
                .region_of(service.region.as_deref())
                .as_deref(),
        )
    }

    /// The bot's own Slack user id (from `auth.test`).
    pub fn bot_user_id(&self) -> &str {
        self.slack
            .identity()
            .map(|i| i.user_id.as_str())
            .unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_is_down_after_failing_long_enough_and_back_at_its_first_answer() {
        let t = |s: i64| chrono::DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap();
        let after = std::time::Duration::from_secs(60);
        let health = SlackHealth::new(t(0));
        assert_eq!(health.answered(t(5)), SlackTurn::Same);
        assert_eq!(health.failed(t(10), after), SlackTurn::Same);
        assert_eq!(
            health.failed(t(69), after),
            SlackTurn::Same,
            "not yet a minute"
        );
        assert_eq!(health.down_since(), None);
        assert_eq!(health.failed(t(70), after), SlackTurn::WentDown(t(10)));
        assert_eq!(health.failed(t(100), after), SlackTurn::Same, "said once");
        assert_eq!(health.down_since(), Some(t(10)));
        assert_eq!(
            health.answered(t(130)),
            SlackTurn::CameBack {
                answered: t(5),
                since: t(10)
            }
        );
        assert_eq!(health.down_since(), None);
        assert_eq!(health.answered(t(131)), SlackTurn::Same);
        // A short blip between answers is not an outage.
        assert_eq!(health.failed(t(140), after), SlackTurn::Same);
        assert_eq!(health.answered(t(141)), SlackTurn::Same);
    }
}
