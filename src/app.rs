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
