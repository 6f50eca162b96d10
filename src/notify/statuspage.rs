//! Atlassian Statuspage's REST API (`https://api.statuspage.io/v1`): incidents of one page,
//! created with their impact and component statuses, updated, resolved. The only module that
//! speaks it; the key travels in `Authorization: OAuth <key>` and is never logged.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{Method, Request, StatusCode};
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};

use super::{NotifyError, PageIncident, PageUpdate, StatusPage};
use crate::config::{Secret, StatusPageSettings};

const PEER: &str = "the status page";
/// One call's limit (connect, send, answer).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer drbot reads.
const ANSWER_MAX: usize = 4 << 20;

type Client = crate::web::Client<Full<Bytes>>;

pub struct Statuspage {
    api: String,
    page: String,
    key: Secret,
    client: Client,
}

impl Statuspage {
    pub fn new(settings: &StatusPageSettings, key: Secret) -> Self {
        // Plain http only reaches a stand-in on this machine (`[status_page]` checks it).
        let client = crate::web::client();
        Self {
            api: settings.api_url.trim_end_matches('/').to_string(),
            page: settings.page_id.clone(),
            key,
            client,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, NotifyError> {
        let writes = body.is_some();
        let unavailable = |message: String, maybe_done: bool| NotifyError::Unavailable {
            peer: PEER,
            message,
            maybe_done,
        };
        let request = Request::builder()
            .method(method)
            .uri(format!("{}/pages/{}{path}", self.api, self.page))
            .header("authorization", format!("OAuth {}", self.key.expose()))
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .map_err(|e| NotifyError::Refused {
                peer: PEER,
                message: format!("the request could not be made: {e}"),
            })?;
        let exchange = async {
            let answer = self
                .client
                .request(request)
                .await
                .map_err(|e| unavailable(format!("no answer ({e})"), writes))?;
            let status = answer.status();
            let retry_after = answer
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let body = http_body_util::Limited::new(answer.into_body(), ANSWER_MAX)
                .collect()
                .await
                .map_err(|e| unavailable(format!("the answer broke off ({e})"), writes))?
                .to_bytes();
            Ok::<_, NotifyError>((status, retry_after, body))
        };
        let (status, retry_after, body) = crate::clock::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| {
                unavailable(
                    format!("no answer within {}s", CALL_TIMEOUT.as_secs()),
                    writes,
                )
            })??;
        let said = || {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(200).collect();
            format!("HTTP {status}: {text}")
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(NotifyError::RateLimited {
                peer: PEER,
                retry_after,
            });
        }
        if status.is_server_error() {
            // A 5xx may come after the page took the write (a proxy's 502): looked for again.
            return Err(unavailable(said(), writes));
        }
        if !status.is_success() {
            return Err(NotifyError::Refused {
                peer: PEER,
                message: said(),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| unavailable(format!("its answer is not JSON ({e})"), writes))
    }
}

/// The page's incident in an answer.
fn incident(value: &Value) -> Option<PageIncident> {
    let id = value["id"].as_str()?.to_string();
    let mut updates: Vec<(String, String)> = value["incident_updates"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            (
                u["created_at"].as_str().unwrap_or_default().to_string(),
                u["body"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    updates.sort_by(|a, b| b.0.cmp(&a.0));
    Some(PageIncident {
        id,
        url: value["shortlink"].as_str().map(str::to_string),
        updates: updates.into_iter().map(|(_, body)| body).collect(),
    })
}

fn answered(value: Value) -> Result<PageIncident, NotifyError> {
    incident(&value).ok_or(NotifyError::Unavailable {
        peer: PEER,
        message: "its answer names no incident".into(),
        maybe_done: true,
    })
}

/// The fields of a create or an update.
fn fields(update: &PageUpdate) -> Value {
    let components: serde_json::Map<String, Value> = update
        .components
        .iter()
        .map(|c| (c.clone(), json!(update.component_status)))
        .collect();
    json!({
        "name": update.name,
        "status": update.status,
        "impact_override": update.impact,
        "body": update.body,
        "component_ids": update.components,
        "components": components,
        "deliver_notifications": true,
        "metadata": {"drbot": {"incident": update.incident}},
    })
}

impl StatusPage for Statuspage {
    fn find<'a>(
        &'a self,
        drbot_incident: &'a str,
    ) -> BoxFuture<'a, Result<Option<PageIncident>, NotifyError>> {
        Box::pin(async move {
            let listed = self
                .call(Method::GET, "/incidents?per_page=100", None)
                .await?;
            Ok(listed
                .as_array()
                .into_iter()
                .flatten()
                .find(|i| i["metadata"]["drbot"]["incident"].as_str() == Some(drbot_incident))
                .and_then(incident))
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
        Box::pin(async move {
            let path = format!("/incidents/{}", urlencode(id));
            answered(self.call(Method::GET, &path, None).await?)
        })
    }

    fn create<'a>(
        &'a self,
        update: &'a PageUpdate,
    ) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
        Box::pin(async move {
            let body = json!({ "incident": fields(update) });
            answered(self.call(Method::POST, "/incidents", Some(body)).await?)
        })
    }

    fn update<'a>(
        &'a self,
        id: &'a str,
        update: &'a PageUpdate,
    ) -> BoxFuture<'a, Result<PageIncident, NotifyError>> {
        Box::pin(async move {
            let mut fields = fields(update);
            // The name stays as the page's people may have edited it.
            fields.as_object_mut().map(|f| f.remove("name"));
            let body = json!({ "incident": fields });
            let path = format!("/incidents/{}", urlencode(id));
            answered(self.call(Method::PATCH, &path, Some(body)).await?)
        })
    }
}

fn urlencode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}
