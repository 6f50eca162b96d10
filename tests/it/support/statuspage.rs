//! A local Atlassian Statuspage: the REST API's incident calls drbot makes (`GET`/`POST
//! /v1/pages/{page}/incidents`, `GET`/`PATCH …/incidents/{id}`), answered as Statuspage
//! does, with `Authorization: OAuth <key>` required. It records every call and can be told
//! to answer 429 (with Retry-After), 500, or to take a write and never answer.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

pub const PAGE: &str = "pg7drbot01";
pub const KEY: &str = "sp-test-key-0000";

/// How the next writes are answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFailure {
    RateLimited {
        retry_after: u64,
    },
    ServerError,
    /// Takes the write, then never answers.
    AnswerLost,
}

#[derive(Default)]
struct Page {
    incidents: Vec<Value>,
    /// (method, path, body) of every call.
    calls: Vec<(String, String, Value)>,
    failures: Vec<PageFailure>,
}

#[derive(Clone)]
pub struct StatuspageStandIn {
    pub addr: SocketAddr,
    page: Arc<Mutex<Page>>,
}

impl StatuspageStandIn {
    pub async fn start() -> Self {
        let page: Arc<Mutex<Page>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new()
            .route("/v1/pages/{page}/incidents", get(list).post(write_new))
            .route(
                "/v1/pages/{page}/incidents/{id}",
                get(one).patch(write_update),
            )
            .with_state(page.clone());
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { addr, page }
    }

    /// `api_url` for `[status_page]`.
    pub fn api_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The next writes fail as `failures` say, in order.
    pub fn fail_next(&self, failures: &[PageFailure]) {
        self.page.lock().unwrap().failures = failures.to_vec();
    }

    /// The page's incidents as they are now.
    pub fn incidents(&self) -> Vec<Value> {
        self.page.lock().unwrap().incidents.clone()
    }

    /// Every call as (method, path, JSON body).
    pub fn calls(&self) -> Vec<(String, String, Value)> {
        self.page.lock().unwrap().calls.clone()
    }

    /// Calls with `method`.
    pub fn count(&self, method: &str) -> usize {
        self.calls().iter().filter(|c| c.0 == method).count()
    }
}

type Shared = State<Arc<Mutex<Page>>>;

fn authorized(headers: &HeaderMap, page: &str) -> Result<(), Response> {
    let ok =
        headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("OAuth {KEY}"));
    if !ok {
        return Err((
            StatusCode::UNAUTHORIZED,
            r#"{"error":"Could not authenticate"}"#,
        )
            .into_response());
    }
    if page != PAGE {
        return Err((StatusCode::NOT_FOUND, r#"{"error":"page not found"}"#).into_response());
    }
    Ok(())
}

fn record(page: &Arc<Mutex<Page>>, method: Method, path: String, body: &[u8]) {
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    page.lock()
        .unwrap()
        .calls
        .push((method.to_string(), path, body));
}

async fn list(State(page): Shared, Path(id): Path<String>, headers: HeaderMap) -> Response {
    record(&page, Method::GET, format!("/pages/{id}/incidents"), b"");
    if let Err(no) = authorized(&headers, &id) {
        return no;
    }
    let mut all = page.lock().unwrap().incidents.clone();
    all.reverse();
    axum::Json(Value::Array(all)).into_response()
}

async fn one(
    State(page): Shared,
    Path((id, incident)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    record(
        &page,
        Method::GET,
        format!("/pages/{id}/incidents/{incident}"),
        b"",
    );
    if let Err(no) = authorized(&headers, &id) {
        return no;
    }
    let found = page
        .lock()
        .unwrap()
        .incidents
        .iter()
        .find(|i| i["id"] == incident.as_str())
        .cloned();
    match found {
        Some(i) => axum::Json(i).into_response(),
        None => (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#).into_response(),
    }
}

/// The failure the next write gets, if any; `AnswerLost` still writes.
fn next_failure(page: &Arc<Mutex<Page>>) -> Option<PageFailure> {
    let mut p = page.lock().unwrap();
    if p.failures.is_empty() {
        None
    } else {
        Some(p.failures.remove(0))
    }
}

async fn answer(failure: Option<PageFailure>, ok: Value) -> Response {
    match failure {
        Some(PageFailure::RateLimited { retry_after }) => (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", retry_after.to_string())],
            r#"{"error":"rate limited"}"#,
        )
            .into_response(),
        Some(PageFailure::ServerError) => {
            (StatusCode::INTERNAL_SERVER_ERROR, r#"{"error":"oops"}"#).into_response()
        }
        Some(PageFailure::AnswerLost) => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        None => axum::Json(ok).into_response(),
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A write as the page takes it: recorded, authorized, its scripted failure (a 429 or 500
/// answered at once; a lost answer after the write), its JSON `incident` fields.
async fn admit(
    page: &Arc<Mutex<Page>>,
    method: Method,
    id: &str,
    path: String,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Option<PageFailure>, Value), Response> {
    record(page, method, path, body);
    authorized(headers, id)?;
    let failure = next_failure(page);
    if matches!(
        failure,
        Some(PageFailure::RateLimited { .. } | PageFailure::ServerError)
    ) {
        return Err(answer(failure, Value::Null).await);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(asked) => Ok((failure, asked["incident"].clone())),
        Err(_) => Err((StatusCode::BAD_REQUEST, "not JSON").into_response()),
    }
}

async fn write_new(
    State(page): Shared,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/pages/{id}/incidents");
    let (failure, fields) = match admit(&page, Method::POST, &id, path, &headers, &body).await {
        Ok(admitted) => admitted,
        Err(no) => return no,
    };
    let made = {
        let mut p = page.lock().unwrap();
        let n = p.incidents.len() + 1;
        let incident = json!({
            "id": format!("inc{n:04}"),
            "name": fields["name"],
            "status": fields["status"],
            "impact": fields["impact_override"],
            "shortlink": format!("https://stspg.io/drbot{n}"),
            "metadata": fields["metadata"],
            "components": fields["components"],
            "created_at": now(),
            "incident_updates": [{"body": fields["body"], "status": fields["status"], "created_at": now()}],
        });
        p.incidents.push(incident.clone());
        incident
    };
    answer(failure, made).await
}

async fn write_update(
    State(page): Shared,
    Path((id, incident)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = format!("/pages/{id}/incidents/{incident}");
    let (failure, fields) = match admit(&page, Method::PATCH, &id, path, &headers, &body).await {
        Ok(admitted) => admitted,
        Err(no) => return no,
    };
    let updated = {
        let mut p = page.lock().unwrap();
        let Some(found) = p
            .incidents
            .iter_mut()
            .find(|i| i["id"] == incident.as_str())
        else {
            return (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#).into_response();
        };
        found["status"] = fields["status"].clone();
        found["components"] = fields["components"].clone();
        // Newest first, as Statuspage lists them.
        let update =
            json!({"body": fields["body"], "status": fields["status"], "created_at": now()});
        found["incident_updates"]
            .as_array_mut()
            .unwrap()
            .insert(0, update);
        found.clone()
    };
    answer(failure, updated).await
}
