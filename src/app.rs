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
}

impl App {
    /// The bot's own Slack user id (from `auth.test`).
    pub fn bot_user_id(&self) -> &str {
        self.slack
            .identity()
            .map(|i| i.user_id.as_str())
            .unwrap_or("")
    }
}
