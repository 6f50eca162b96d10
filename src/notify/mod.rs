//! The peers that tell users (SPEC §17): a status page ([`StatusPage`], Atlassian
//! Statuspage's REST API in [`statuspage`]) and email ([`email`], SMTP with TLS). Only the
//! outbox worker calls them, for publications an officer approved; each call is tried once
//! and its failure says whether to try again and whether the peer may already have it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;

use crate::config::{Secret, Settings};

pub mod email;
pub mod statuspage;

/// What the page should show for one drbot incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageUpdate {
    /// drbot's incident id, kept in the page incident's metadata to find it again.
    pub incident: String,
    pub name: String,
    /// `investigating`, `identified`, `monitoring` or `resolved`.
    pub status: String,
    /// `none`, `minor`, `major` or `critical`.
    pub impact: String,
    pub body: String,
    pub components: Vec<String>,
    /// `operational`, `degraded_performance`, `partial_outage` or `major_outage`.
    pub component_status: String,
}

/// The page's incident, as the page answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageIncident {
    pub id: String,
    /// Its public link, when the page gave one.
    pub url: Option<String>,
    /// The bodies of its updates, newest first.
    pub updates: Vec<String>,
}

/// Why a publication did not happen (this time).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NotifyError {
    /// HTTP 429: try again after `retry_after` (or a second).
    #[error("{peer} asked drbot to slow down (HTTP 429)")]
    RateLimited {
        peer: &'static str,
        retry_after: Option<Duration>,
    },
    /// A 5xx, an SMTP 4xx, a timeout or a broken connection: try again later;
    /// `maybe_done` when the peer may have it already (the answer was lost).
    #[error("{peer} did not take it: {message}")]
    Unavailable {
        peer: &'static str,
        message: String,
        maybe_done: bool,
    },
    /// A refusal that will not change by itself (a 4xx, an SMTP 5xx): tried a few times,
    /// then recorded as failed.
    #[error("{peer} refused it: {message}")]
    Refused { peer: &'static str, message: String },
}

/// A status page drbot publishes to. One provider today (Statuspage); another is a file
/// implementing these four calls.
pub trait StatusPage: Send + Sync {
    /// The page's incident opened for drbot's `incident`, if the page has one.
    fn find<'a>(
        &'a self,
        incident: &'a str,
    ) -> BoxFuture<'a, Result<Option<PageIncident>, NotifyError>>;
    /// The page's incident `id` as it is now.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PageIncident, NotifyError>>;
    fn create<'a>(
        &'a self,
        update: &'a PageUpdate,
    ) -> BoxFuture<'a, Result<PageIncident, NotifyError>>;
    fn update<'a>(
        &'a self,
        id: &'a str,
        update: &'a PageUpdate,
    ) -> BoxFuture<'a, Result<PageIncident, NotifyError>>;
}

/// Publishes `update` on `page`: an update of the page's incident drbot already knows
/// (`known`), else of the one the page holds for this incident, else a new one. A publication
/// whose answer was lost (`uncertain`) is looked for first and not made again.
pub async fn publish(
    page: &dyn StatusPage,
    known: Option<&str>,
    update: &PageUpdate,
    uncertain: bool,
) -> Result<PageIncident, NotifyError> {
    let shows = |found: &PageIncident| found.updates.first() == Some(&update.body);
    if let Some(id) = known {
        if uncertain {
            let found = page.get(id).await?;
            if shows(&found) {
                return Ok(found);
            }
        }
        return page.update(id, update).await;
    }
    // The page may hold drbot's incident even though the store does not (a create whose
    // answer was lost). When nothing of this publication can have been made, a page that
    // cannot be searched does not stop it.
    let existing = match page.find(&update.incident).await {
        Ok(found) => found,
        Err(e) if uncertain => return Err(e),
        Err(e) => {
            tracing::warn!(error = %e, "could not look for drbot's incident on the status page; creating it");
            None
        }
    };
    match existing {
        Some(found) if uncertain && shows(&found) => Ok(found),
        Some(found) => page.update(&found.id, update).await,
        None => page.create(update).await,
    }
}

/// A way to send email (SMTP in production; the sandbox keeps its own outbox).
pub trait Mail: Send + Sync {
    /// Sends `email`; answers what the server said.
    fn send<'a>(&'a self, email: &'a email::Email) -> BoxFuture<'a, Result<String, NotifyError>>;
    /// The sender's domain, for Message-IDs.
    fn domain(&self) -> String;
}

/// What drbot can publish to, built at start-up from the configuration and the
/// environment's secrets.
#[derive(Clone, Default)]
pub struct Notifiers {
    pub status_page: Option<Arc<dyn StatusPage>>,
    pub email: Option<Arc<dyn Mail>>,
}

/// A secret a configured peer needs is not in the environment.
#[derive(Debug, thiserror::Error)]
#[error("{name} is not set: {hint}")]
pub struct MissingSecret {
    pub name: &'static str,
    pub hint: &'static str,
}

impl Notifiers {
    /// The configured peers, with their secrets from `get` (the process environment).
    pub fn new(
        settings: &Settings,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, MissingSecret> {
        let secret = |name: &'static str, hint: &'static str| {
            get(name)
                .filter(|v| !v.trim().is_empty())
                .map(Secret::new)
                .ok_or(MissingSecret { name, hint })
        };
        let status_page = match &settings.status_page {
            Some(page) => {
                let key = secret(
                    "DRBOT_STATUSPAGE_API_KEY",
                    "[status_page] is configured: give drbot the page's API key (Statuspage → your avatar → API info)",
                )?;
                Some(Arc::new(statuspage::Statuspage::new(page, key)) as Arc<dyn StatusPage>)
            }
            None => None,
        };
        let email = match &settings.email {
            Some(email) => {
                let password = match &email.username {
                    Some(_) => Some(secret(
                        "DRBOT_SMTP_PASSWORD",
                        "[email] username is set: give drbot the SMTP password (for Amazon SES, the SMTP credentials made from an IAM user)",
                    )?),
                    None => None,
                };
                Some(Arc::new(email::Mailer::new(email, password)) as Arc<dyn Mail>)
            }
            None => None,
        };
        Ok(Self { status_page, email })
    }

    pub fn any(&self) -> bool {
        self.status_page.is_some() || self.email.is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A page that can fail its search, holding at most one incident.
    #[derive(Default)]
    struct Page {
        search_fails: bool,
        held: Mutex<Option<PageIncident>>,
        writes: Mutex<Vec<&'static str>>,
    }

    fn refused() -> NotifyError {
        NotifyError::Refused {
            peer: "page",
            message: "404".into(),
        }
    }

    impl StatusPage for Page {
        fn find<'a>(
            &'a self,
            _: &'a str,
        ) -> BoxFuture<'a, Result<Option<PageIncident>, NotifyError>> {
            let found = self.held.lock().unwrap().clone();
            let fails = self.search_fails;
            Box::pin(async move {
                if fails {
                    Err(refused())
                } else {
                    Ok(found)
                }
            })
        }
        fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
            let found = self.held.lock().unwrap().clone();
            Box::pin(async move { found.ok_or_else(refused) })
        }
        fn create<'a>(&'a self, u: &'a PageUpdate) -> Written<'a> {
            self.wrote("create", "p1", &u.body)
        }
        fn update<'a>(&'a self, id: &'a str, u: &'a PageUpdate) -> Written<'a> {
            self.wrote("update", id, &u.body)
        }
    }

    type Written<'a> = BoxFuture<'a, Result<PageIncident, NotifyError>>;

    impl Page {
        /// Records the write; a create is what the page holds from then on.
        fn wrote(&self, what: &'static str, id: &str, body: &str) -> Written<'static> {
            self.writes.lock().unwrap().push(what);
            let made = PageIncident {
                id: id.into(),
                url: None,
                updates: vec![body.into()],
            };
            if what == "create" {
                *self.held.lock().unwrap() = Some(made.clone());
            }
            Box::pin(async move { Ok(made) })
        }
    }

    fn update(body: &str) -> PageUpdate {
        PageUpdate {
            incident: "inc-1".into(),
            name: "Service Interruption".into(),
            status: "investigating".into(),
            impact: "major".into(),
            body: body.into(),
            components: vec![],
            component_status: "major_outage".into(),
        }
    }

    #[tokio::test]
    async fn a_lost_answer_is_looked_up_and_a_page_that_cannot_be_searched_stops_only_a_doubtful_write(
    ) {
        // Nothing made yet, the search fails: created (nothing of it can be on the page).
        let page = Page {
            search_fails: true,
            ..Default::default()
        };
        publish(&page, None, &update("a"), false).await.unwrap();
        assert_eq!(*page.writes.lock().unwrap(), ["create"]);
        // The same, after a lost answer: not written blindly.
        let page = Page {
            search_fails: true,
            ..Default::default()
        };
        assert!(publish(&page, None, &update("a"), true).await.is_err());
        assert!(page.writes.lock().unwrap().is_empty());
        // A lost create found on the page: not made again.
        let page = Page::default();
        publish(&page, None, &update("a"), false).await.unwrap();
        publish(&page, None, &update("a"), true).await.unwrap();
        assert_eq!(*page.writes.lock().unwrap(), ["create"]);
        // A known incident: updated; after a lost answer showing it already, nothing.
        publish(&page, Some("p1"), &update("a"), true)
            .await
            .unwrap();
        publish(&page, Some("p1"), &update("b"), false)
            .await
            .unwrap();
        assert_eq!(*page.writes.lock().unwrap(), ["create", "update"]);
    }
}
