//! Learning the display names of the people and channels in drbot's log, for exports that
//! say "Dana Smith (U0REQUEST)". Beside the request path: a loop reads the events recorded
//! since it last looked, asks Slack (`users.info`, `conversations.info`) about ids it has
//! no name for, and stores the answers with the time they were read. Failures are logged
//! (the id is asked about again at the next start); an export without a name shows the id.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::App;
use crate::timeline::names::{ids_in, is_slack_id, is_user};

/// How often the log is looked at (drbot's time: a test moves it).
const EVERY: Duration = Duration::from_secs(2);
/// Events read per look.
const BATCH: i64 = 5000;

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    // Names already in the store, and ids asked about by this process.
    let mut known: HashSet<String> = match app.store.names().await {
        Ok(names) => names.into_keys().collect(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the known names");
            HashSet::new()
        }
    };
    let mut cursor = 0;
    loop {
        match app.store.names_after(cursor, BATCH).await {
            Ok(named) => {
                cursor = named.last;
                let mentioned = named.texts.iter().flat_map(|text| ids_in(text));
                for id in named.ids.into_iter().chain(mentioned) {
                    if is_slack_id(&id) && known.insert(id.clone()) {
                        learn(&app, &id).await;
                    }
                }
                if named.read == BATCH {
                    continue;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read events to learn names from"),
        }
        tokio::select! {
            () = crate::clock::sleep(EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn learn(app: &App, id: &str) {
    let (kind, answer) = if is_user(id) {
        ("user", app.slack.user_name(id).await)
    } else {
        ("channel", app.slack.channel_name(id).await)
    };
    match answer {
        Ok(Some(name)) => {
            if let Err(e) = app.store.record_name(id, kind, &name).await {
                tracing::warn!(error = %e, "could not record a name");
            }
        }
        Ok(None) => {}
        Err(e) => tracing::debug!(id, error = %e, "no name for this id"),
    }
}
