//! The sandbox's status page and mail outbox: what `/dr notify users` publishes once an
//! officer approves it lands here (through drbot's real outbox worker) and the console shows
//! it, so a tabletop rehearses telling users too. Nothing leaves the machine.

use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde_json::{json, Value};

use crate::notify::email::Email;
use crate::notify::{Mail, Notifiers, NotifyError, PageIncident, PageUpdate, StatusPage};

#[derive(Default)]
struct Held {
    /// The page's incidents, each with its updates (newest first).
    incidents: Vec<Value>,
    /// Emails "sent", newest last.
    mail: Vec<Value>,
}

/// Shared by drbot (which publishes) and the console (which shows).
#[derive(Clone, Default)]
pub struct Notices(Arc<Mutex<Held>>);

impl Notices {
    /// drbot's peers for users: this page and this outbox.
    pub fn notifiers(&self) -> Notifiers {
        Notifiers {
            status_page: Some(Arc::new(self.clone())),
            email: Some(Arc::new(self.clone())),
        }
    }

    /// What the console shows.
    pub fn view(&self) -> Value {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        json!({"page": held.incidents, "mail": held.mail})
    }

    fn with<T>(&self, f: impl FnOnce(&mut Held) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn shown(incident: &Value) -> PageIncident {
    PageIncident {
        id: incident["id"].as_str().unwrap_or_default().to_string(),
        url: None,
        updates: incident["updates"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|u| u["body"].as_str().unwrap_or_default().to_string())
            .collect(),
    }
}

fn update_of(update: &PageUpdate) -> Value {
    json!({"status": update.status, "body": update.body, "at": crate::clock::now_rfc3339()})
}

impl StatusPage for Notices {
    fn find<'a>(
        &'a self,
        incident: &'a str,
    ) -> BoxFuture<'a, Result<Option<PageIncident>, NotifyError>> {
        let found = self.with(|h| {
            h.incidents
                .iter()
                .find(|i| i["drbot"] == incident)
                .map(shown)
        });
        Box::pin(async move { Ok(found) })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
        let found = self.with(|h| h.incidents.iter().find(|i| i["id"] == id).map(shown));
        Box::pin(async move {
            found.ok_or(NotifyError::Refused {
                peer: "the sandbox's page",
                message: format!("no incident {id}"),
            })
        })
    }

    fn create<'a>(
        &'a self,
        update: &'a PageUpdate,
    ) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
        let made = self.with(|h| {
            let incident = json!({
                "id": format!("sp{}", h.incidents.len() + 1),
                "drbot": update.incident,
                "name": update.name,
                "status": update.status,
                "impact": update.impact,
                "components": update.components.iter().map(|c| format!("{c}: {}", update.component_status)).collect::<Vec<_>>(),
                "updates": [update_of(update)],
            });
            h.incidents.push(incident.clone());
            shown(&incident)
        });
        Box::pin(async move { Ok(made) })
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        update: &'a PageUpdate,
    ) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
        let updated = self.with(|h| {
            let incident = h.incidents.iter_mut().find(|i| i["id"] == id)?;
            incident["status"] = json!(update.status);
            incident["components"] = json!(update
                .components
                .iter()
                .map(|c| format!("{c}: {}", update.component_status))
                .collect::<Vec<_>>());
            incident["updates"]
                .as_array_mut()?
                .insert(0, update_of(update));
            Some(shown(incident))
        });
        Box::pin(async move {
            updated.ok_or(NotifyError::Refused {
                peer: "the sandbox's page",
                message: format!("no incident {id}"),
            })
        })
    }
}

impl Mail for Notices {
    fn send<'a>(&'a self, email: &'a Email) -> BoxFuture<'a, Result<String, NotifyError>> {
        self.with(|h| {
            h.mail.push(json!({
                "bcc": email.bcc,
                "subject": email.subject,
                "body": email.body,
                "message_id": email.message_id,
                "at": crate::clock::now_rfc3339(),
            }))
        });
        Box::pin(async { Ok("250 kept in the sandbox's outbox".to_string()) })
    }

    fn domain(&self) -> String {
        "analyticalfire.com".to_string()
    }
}
