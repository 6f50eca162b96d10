//! Reads the members of the user groups `[access]` names from Slack (`usergroups.users.list`)
//! at start and every `[access] refresh`, so the acknowledgement path checks who may run
//! commands without calling Slack. A failed read keeps what was read before (and logs);
//! a group never read refuses its members until it is, saying so.

use std::sync::Arc;

use tokio::sync::watch;

use crate::app::App;

pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let access = &app.settings.access;
    if access.groups().next().is_none() {
        return;
    }
    loop {
        for group in access.groups() {
            match app.slack.group_members(group).await {
                Ok(members) => {
                    tracing::debug!(group = %group, members = members.len(), "read a user group");
                    app.members.set(group, members);
                }
                Err(e) => {
                    tracing::warn!(group = %group, error = %e, "could not read the members of a user group named in [access]; the last members read still count")
                }
            }
        }
        tokio::select! {
            () = crate::clock::sleep(access.refresh.as_duration()) => {}
            _ = stop.changed() => return,
        }
    }
}
