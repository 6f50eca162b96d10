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

    /// The bot's own Slack user id (from `auth.test`).
    pub fn bot_user_id(&self) -> &str {
        self.slack
            .identity()
            .map(|i| i.user_id.as_str())
            .unwrap_or("")
    }
}
