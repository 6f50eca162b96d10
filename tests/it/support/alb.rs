//! A stand-in for the AWS Application Load Balancer's OIDC authentication, as drbot's web
//! console sees it: a reverse proxy that, for a browser signed in (here: `/login?as=<email>`
//! instead of the company's IdP), forwards each request to drbot with the headers the ALB
//! adds — `x-amzn-oidc-data` (an ES256 JWT whose header names `kid`, `signer` and `exp`),
//! `x-amzn-oidc-identity`, `x-forwarded-proto` — after dropping any the client sent; and the
//! regional public-key endpoint (`/keys/<kid>` → PEM), which drbot reaches through
//! `DRBOT_TEST_ALB_KEYS_URL`. Tokens are signed with a key made for the test.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde_json::{json, Value};

pub const SIGNER: &str =
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/drbot/50dc6c495c0c9188";
pub const KID: &str = "7b2c9e1a-4f30-4d7e-9a55-0c1d2e3f4a5b";

/// A P-256 key pair and its public key as the endpoint serves it (PEM).
pub struct Key {
    pair: EcdsaKeyPair,
    pub pem: String,
}

impl Key {
    pub fn new() -> Key {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let pem = drbot::server::alb::p256_pem(pair.public_key().as_ref());
        Key { pair, pem }
    }

    /// A JWT of `header` and `claims`, signed with this key, its parts padded as the ALB's.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE.encode(b);
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = self
            .pair
            .sign(&SystemRandom::new(), signed.as_bytes())
            .unwrap();
        format!("{signed}.{}", b64(sig.as_ref()))
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    crate::support::now_unix()
}

/// The ALB's token header: ES256, our key, our load balancer, expiring at `exp`.
pub fn header(exp: i64) -> Value {
    json!({"alg": "ES256", "kid": KID, "signer": SIGNER, "iss": "https://idp.example.com", "client": "drbot", "exp": exp, "typ": "JWT"})
}

/// The IdP's claims for `email`, as the ALB passes them on.
pub fn claims(email: &str, exp: i64) -> Value {
    json!({"sub": format!("sub-{email}"), "email": email, "email_verified": "true", "exp": exp, "iss": "https://idp.example.com"})
}

#[derive(Clone)]
struct Shared {
    key: Arc<Key>,
    /// Signs what `/login?as=…&forge=key` asks for: a key the endpoint does not serve.
    forger: Arc<Key>,
    target: Arc<Mutex<Option<SocketAddr>>>,
    http: reqwest::Client,
}

pub struct AlbStandIn {
    pub addr: SocketAddr,
    pub key: Arc<Key>,
    target: Arc<Mutex<Option<SocketAddr>>>,
}

impl AlbStandIn {
    pub async fn start() -> AlbStandIn {
        let key = Arc::new(Key::new());
        let target = Arc::new(Mutex::new(None));
        let shared = Shared {
            key: key.clone(),
            forger: Arc::new(Key::new()),
            target: target.clone(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        };
        let app = Router::new()
            .route("/keys/{kid}", get(public_key))
            .route("/login", get(login))
            .fallback(proxy)
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        AlbStandIn { addr, key, target }
    }

    /// What drbot takes as `DRBOT_TEST_ALB_KEYS_URL`.
    pub fn keys_url(&self) -> String {
        format!("http://{}/keys", self.addr)
    }

    /// Where a browser signs in as `email` (and lands on the console).
    pub fn login_url(&self, email: &str) -> String {
        format!("http://{}/login?as={email}", self.addr)
    }

    /// Where a browser is signed in as `email` with a token that is wrong in one way
    /// (`forge`: `key`, `expired` or `signer`), as an attacker in front of drbot would send.
    pub fn forged_login_url(&self, email: &str, forge: &str) -> String {
        format!("http://{}/login?as={email}&forge={forge}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Forwards to drbot at `addr` from now on.
    pub fn point_at(&self, addr: SocketAddr) {
        *self.target.lock().unwrap() = Some(addr);
    }

    /// A good token for `email`, valid an hour.
    pub fn token(&self, email: &str) -> String {
        let exp = now() + 3600;
        self.key.sign(&header(exp), &claims(email, exp))
    }
}

async fn public_key(State(s): State<Shared>, Path(kid): Path<String>) -> Response {
    if kid == KID {
        s.key.pem.clone().into_response()
    } else {
        (StatusCode::NOT_FOUND, "no such key").into_response()
    }
}

#[derive(serde::Deserialize)]
struct Login {
    #[serde(rename = "as")]
    email: String,
    #[serde(default)]
    forge: String,
}

/// The IdP's part, short: the browser is signed in as `email` (a cookie of the ALB's).
async fn login(Query(l): Query<Login>) -> Response {
    (
        StatusCode::FOUND,
        [
            (
                "set-cookie",
                format!(
                    "AWSELBAuthSessionCookie-0={}.{}; Path=/; HttpOnly",
                    hex::encode(&l.email),
                    if l.forge.is_empty() { "good" } else { &l.forge }
                ),
            ),
            ("location", "/console".to_string()),
        ],
    )
        .into_response()
}

fn signed_in_as(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|p| p.trim().split_once('='))
        .find(|(n, _)| *n == "AWSELBAuthSessionCookie-0")
        .map(|(_, v)| v.to_string())
}

/// As the ALB: unauthenticated → sent to sign in; else forwarded with its headers.
async fn proxy(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((email, forge)) = signed_in_as(&headers)
        .as_deref()
        .and_then(|v| v.split_once('.'))
        .and_then(|(e, f)| Some((String::from_utf8(hex::decode(e).ok()?).ok()?, f.to_string())))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            "sign in first at /login?as=<email>",
        )
            .into_response();
    };
    let Some(target) = *s.target.lock().unwrap() else {
        return (StatusCode::BAD_GATEWAY, "no target").into_response();
    };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = s
        .http
        .request(method, format!("http://{target}{path}"))
        .body(body);
    for (name, value) in headers.iter() {
        let n = name.as_str();
        if n.starts_with("x-amzn-oidc") || n == "x-forwarded-proto" || n == "content-length" {
            continue;
        }
        request = request.header(name, value);
    }
    let exp = match forge.as_str() {
        "expired" => now() - 60,
        _ => now() + 3600,
    };
    let mut head = header(exp);
    if forge == "signer" {
        head["signer"] =
            json!("arn:aws:elasticloadbalancing:us-east-1:999999999999:loadbalancer/app/other/1");
    }
    let signer = if forge == "key" { &s.forger } else { &s.key };
    let token = signer.sign(&head, &claims(&email, exp));
    request = request
        .header("x-amzn-oidc-data", token)
        .header("x-amzn-oidc-identity", format!("sub-{email}"))
        .header("x-forwarded-proto", "http");
    let answer = match request.send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if name.as_str() != "transfer-encoding" && name.as_str() != "content-length" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(bytes)).unwrap()
}
