//! moto server as AWS: per-test resources with unique names, read back after the bot acts,
//! and a counting proxy in front of moto for exactly-once assertions.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;

use super::moto_endpoint;

pub fn unique(prefix: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    moto_endpoint();
    drbot::aws::sdk_defaults().load().await
}

pub async fn ecs() -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&sdk_config().await)
}

/// The SDK configuration for `region` (moto keeps each region apart).
pub async fn config_in(region: &str) -> aws_config::SdkConfig {
    sdk_config()
        .await
        .to_builder()
        .region(aws_config::Region::new(region.to_string()))
        .build()
}

pub async fn ecs_in(region: &str) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(&config_in(region).await)
}

pub async fn rds_in(region: &str) -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&config_in(region).await)
}

/// The snapshots of `instance` in `region`, as RDS describes them.
pub async fn snapshots_in(region: &str, instance: &str) -> Vec<aws_sdk_rds::types::DbSnapshot> {
    rds_in(region)
        .await
        .describe_db_snapshots()
        .db_instance_identifier(instance)
        .send()
        .await
        .unwrap()
        .db_snapshots()
        .to_vec()
}

pub async fn route53() -> aws_sdk_route53::Client {
    aws_sdk_route53::Client::new(&sdk_config().await)
}

pub async fn ssm() -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config().await)
}

pub async fn ssm_in(region: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&config_in(region).await)
}

/// Parameter `name` in `region` as SSM holds it now (decrypted): (value, version).
pub async fn parameter_in(region: &str, name: &str) -> (String, i64) {
    let out = ssm_in(region)
        .await
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let p = out.parameter().unwrap();
    (p.value().unwrap_or_default().to_string(), p.version())
}

/// A fresh String parameter `/<unique>/DATABASE_HOST` holding `value` in `region`; its name.
pub async fn seed_host_parameter(region: &str, value: &str) -> String {
    let parameter = format!("/{}/DATABASE_HOST", unique("aifai"));
    ssm_in(region)
        .await
        .put_parameter()
        .name(&parameter)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .send()
        .await
        .unwrap();
    parameter
}

/// An ECS service on revision `revisions` of a fresh family with images `app:1`…
pub struct SeededService {
    pub cluster: String,
    pub service: String,
    pub family: String,
}

impl SeededService {
    /// `[[ecs.services]]` naming it `api`.
    pub fn config(&self) -> String {
        format!(
            "[[ecs.services]]\nname = \"api\"\ncluster = \"{}\"\nservice = \"{}\"\n",
            self.cluster, self.service
        )
    }

    /// The service as ECS in `region` reports it.
    pub async fn described_in(&self, region: &str) -> aws_sdk_ecs::types::Service {
        let out = ecs_in(region)
            .await
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .unwrap();
        out.services()[0].clone()
    }

    /// The service's task definition as ECS reports it, in `family:revision` form.
    pub async fn task_definition(&self) -> String {
        let described = self.described_in("us-east-1").await;
        let td = described.task_definition().unwrap().to_string();
        td.rsplit_once(":task-definition/")
            .map(|(_, t)| t.to_string())
            .unwrap_or(td)
    }

    /// The service's desired count as ECS in `region` reports it.
    pub async fn desired_count_in(&self, region: &str) -> i32 {
        self.described_in(region).await.desired_count()
    }

    /// Someone else deploys `revision` (outside drbot).
    pub async fn deploy_outside(&self, revision: i32) {
        ecs()
            .await
            .update_service()
            .cluster(&self.cluster)
            .service(&self.service)
            .task_definition(format!("{}:{revision}", self.family))
            .send()
            .await
            .unwrap();
    }

    pub async fn deregister(&self, revision: i32) {
        ecs()
            .await
            .deregister_task_definition()
            .task_definition(format!("{}:{revision}", self.family))
            .send()
            .await
            .unwrap();
    }
}

/// Registers `revisions` revisions and a service on the last one with `desired` tasks.
pub async fn seed_service(revisions: i32, desired: i32) -> SeededService {
    seed_service_with(ecs().await, revisions, desired).await
}

/// [`seed_service`] in another region.
pub async fn seed_service_in(region: &str, revisions: i32, desired: i32) -> SeededService {
    seed_service_with(ecs_in(region).await, revisions, desired).await
}

async fn seed_service_with(
    ecs: aws_sdk_ecs::Client,
    revisions: i32,
    desired: i32,
) -> SeededService {
    let cluster = unique("cluster");
    let service = unique("svc");
    let family = unique("fam");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .unwrap();
    for i in 1..=revisions {
        ecs.register_task_definition()
            .family(&family)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image(format!("registry.example.com/app:1.{i}"))
                    .memory(256)
                    .build(),
            )
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("sidecar")
                    .image("registry.example.com/envoy:1.30")
                    .memory(64)
                    .build(),
            )
            .send()
            .await
            .unwrap();
    }
    ecs.create_service()
        .cluster(&cluster)
        .service_name(&service)
        .task_definition(format!("{family}:{revisions}"))
        .desired_count(desired)
        .send()
        .await
        .unwrap();
    SeededService {
        cluster,
        service,
        family,
    }
}

/// A proxy in front of moto that counts requests by `X-Amz-Target` operation.
type Hook =
    Box<dyn FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> + Send>;

#[derive(Clone)]
pub struct CountingProxy {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, std::time::Instant)>>>,
    hooks: Arc<Mutex<Vec<(String, Hook)>>>,
    /// Each request's form parameters (query protocols: RDS, EC2), by operation.
    bodies: Bodies,
    faults: Faults,
    /// Calls that reached moto (not answered by a fault).
    forwarded: Arc<Mutex<Vec<String>>>,
    after: Arc<Mutex<Vec<(String, Hook)>>>,
    dark: Dark,
    /// Every call's signed region and operation.
    signed: Signed,
}

/// The region each call was signed for, with its operation.
type Signed = Arc<Mutex<Vec<(String, String)>>>;

/// Regions whose requests the proxy swallows (a region that is down): by the region in the
/// request's SigV4 credential scope, so Route 53 (signed for us-east-1) goes dark with it.
type Dark = Arc<Mutex<std::collections::HashSet<String>>>;

/// What the proxy does to a call instead of (or after) forwarding it, as AWS and networks do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answers 400 `ThrottlingException` (`Throttling` on query protocols); not forwarded.
    Throttle,
    /// Answers 500 `InternalFailure`; not forwarded.
    ServerError,
    /// Never answers; not forwarded.
    Hang,
    /// Forwards it (AWS does it), then drops the connection without an answer.
    ResetAfterForward,
}

type Faults = Arc<Mutex<Vec<(String, Fault, usize)>>>;

type Bodies = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

impl CountingProxy {
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hooks = Arc::new(Mutex::new(Vec::new()));
        let bodies = Arc::new(Mutex::new(Vec::new()));
        let faults: Faults = Arc::new(Mutex::new(Vec::new()));
        let forwarded = Arc::new(Mutex::new(Vec::new()));
        let after = Arc::new(Mutex::new(Vec::new()));
        let dark: Dark = Arc::default();
        let signed: Signed = Arc::default();
        let state = ProxyState {
            signed: signed.clone(),
            dark: dark.clone(),
            seen: seen.clone(),
            moto: moto_endpoint(),
            client: reqwest::Client::new(),
            hooks: hooks.clone(),
            bodies: bodies.clone(),
            faults: faults.clone(),
            forwarded: forwarded.clone(),
            after: after.clone(),
        };
        let router = Router::new().fallback(any(forward)).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self {
            addr,
            seen,
            hooks,
            bodies,
            faults,
            forwarded,
            after,
            dark,
            signed,
        }
    }

    /// The operations of the calls signed for `region`, in order (Route 53 is signed for
    /// us-east-1).
    pub fn calls_in(&self, region: &str) -> Vec<String> {
        self.signed
            .lock()
            .unwrap()
            .iter()
            .filter(|(r, _)| r == region)
            .map(|(_, op)| op.clone())
            .collect()
    }

    /// From now on every request to `region` hangs, and its connection is dropped after two
    /// minutes without an answer, as when a region is down. Nothing of it reaches moto.
    pub fn darken(&self, region: &str) {
        self.dark.lock().unwrap().insert(region.to_string());
    }

    /// `region` answers again (requests already hanging stay lost).
    pub fn light(&self, region: &str) {
        self.dark.lock().unwrap().remove(region);
    }

    /// Applies `fault` to the next `times` calls of `operation`.
    pub fn fail(&self, operation: &str, fault: Fault, times: usize) {
        self.faults
            .lock()
            .unwrap()
            .push((operation.to_string(), fault, times));
    }

    /// How many calls of `operation` reached moto.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.forwarded
            .lock()
            .unwrap()
            .iter()
            .filter(|op| *op == operation)
            .count()
    }

    /// Runs `hook` once, right after moto answered the next `operation` (before drbot sees it).
    pub fn after_next<F, Fut>(&self, operation: &str, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.after
            .lock()
            .unwrap()
            .push((operation.to_string(), Box::new(move || Box::pin(hook()))));
    }

    /// The form parameters of each call of `operation` that went through (query protocols).
    pub fn params(&self, operation: &str) -> Vec<std::collections::HashMap<String, String>> {
        self.bodies
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, params)| params.iter().cloned().collect())
            .collect()
    }

    /// Runs `hook` once, just before the next `operation` is forwarded to moto.
    pub fn before_next<F, Fut>(&self, operation: &str, hook: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        self.hooks
            .lock()
            .unwrap()
            .push((operation.to_string(), Box::new(move || Box::pin(hook()))));
    }

    /// Every call that went through, whatever the operation.
    pub fn total(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Mutating calls (anything but Describe/List/Get) that went through.
    pub fn writes(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| {
                !(op.starts_with("Describe")
                    || op.starts_with("List")
                    || op.starts_with("Get")
                    || op == "other")
            })
            .count()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many calls of `operation` (e.g. `UpdateService`) went through.
    pub fn count(&self, operation: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| op == operation)
            .count()
    }

    /// When each call of `operation` arrived.
    pub fn times(&self, operation: &str) -> Vec<std::time::Instant> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(op, _)| op == operation)
            .map(|(_, t)| *t)
            .collect()
    }
}

#[derive(Clone)]
struct ProxyState {
    seen: Arc<Mutex<Vec<(String, std::time::Instant)>>>,
    moto: String,
    client: reqwest::Client,
    hooks: Arc<Mutex<Vec<(String, Hook)>>>,
    bodies: Bodies,
    faults: Faults,
    forwarded: Arc<Mutex<Vec<String>>>,
    after: Arc<Mutex<Vec<(String, Hook)>>>,
    dark: Dark,
    signed: Signed,
}

/// The region of a SigV4-signed request: `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
fn signed_region(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let scope = auth.split("Credential=").nth(1)?;
    scope.split('/').nth(2).map(str::to_string)
}

/// The error AWS sends for `fault`, in the protocol of the request.
fn fault_answer(headers: &HeaderMap, fault: Fault) -> Response {
    let (status, code, message) = match fault {
        Fault::Throttle => (
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate exceeded",
        ),
        _ => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "We encountered an internal error. Please try again.",
        ),
    };
    if headers.contains_key("x-amz-target") {
        Response::builder()
            .status(status)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amzn-errortype", code)
            .header("x-amzn-requestid", "fault-injected")
            .body(axum::body::Body::from(
                serde_json::json!({"__type": code, "message": message}).to_string(),
            ))
            .unwrap()
    } else {
        let code = if fault == Fault::Throttle {
            "Throttling"
        } else {
            code
        };
        Response::builder()
            .status(status)
            .header("content-type", "text/xml")
            .body(axum::body::Body::from(format!(
                "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-injected</RequestId></ErrorResponse>"
            )))
            .unwrap()
    }
}

/// The operation of an AWS request: `X-Amz-Target` (JSON protocols) or `Action=` (query protocols).
fn operation_of(headers: &HeaderMap, body: &Bytes) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or("other").to_string();
    }
    url::form_urlencoded::parse(body)
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| "other".to_string())
}

async fn forward(
    State(state): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ProxyState {
        seen,
        moto,
        client,
        hooks,
        bodies,
        faults,
        forwarded,
        after,
        dark,
        signed,
    } = state;
    let operation = operation_of(&headers, &body);
    let region = signed_region(&headers);
    signed
        .lock()
        .unwrap()
        .push((region.clone().unwrap_or_default(), operation.clone()));
    if region.is_some_and(|r| dark.lock().unwrap().contains(&r)) {
        seen.lock()
            .unwrap()
            .push((operation.clone(), std::time::Instant::now()));
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
        // The connection is dropped without an answer.
        panic!("region is dark: {operation} dropped");
    }
    let fault = {
        let mut faults = faults.lock().unwrap();
        let hit = faults
            .iter_mut()
            .find(|(op, _, left)| *op == operation && *left > 0)
            .map(|f| {
                f.2 -= 1;
                f.1
            });
        faults.retain(|(_, _, left)| *left > 0);
        hit
    };
    seen.lock()
        .unwrap()
        .push((operation.clone(), std::time::Instant::now()));
    bodies.lock().unwrap().push((
        operation.clone(),
        url::form_urlencoded::parse(&body)
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ));
    // The rest runs on its own task: once a request reached the proxy, it reaches moto even
    // if drbot dies meanwhile (as a request already on the wire reaches AWS).
    let work = tokio::spawn(async move {
        let hook = {
            let mut hooks = hooks.lock().unwrap();
            hooks
                .iter()
                .position(|(op, _)| *op == operation)
                .map(|i| hooks.remove(i).1)
        };
        if let Some(hook) = hook {
            hook().await;
        }
        match fault {
            Some(Fault::Throttle | Fault::ServerError) => {
                return fault_answer(&headers, fault.unwrap());
            }
            Some(Fault::Hang) => {
                tokio::time::sleep(std::time::Duration::from_secs(600)).await;
                return (StatusCode::GATEWAY_TIMEOUT, "hung").into_response();
            }
            _ => {}
        }
        forwarded.lock().unwrap().push(operation.clone());
        let url = format!(
            "{moto}{}",
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        );
        let mut request = client.request(method, url).body(body);
        for (name, value) in headers.iter() {
            if name != "host" && name != "content-length" {
                request = request.header(name, value);
            }
        }
        let answer = request.send().await;
        let after_hook = {
            let mut after = after.lock().unwrap();
            after
                .iter()
                .position(|(op, _)| *op == operation)
                .map(|i| after.remove(i).1)
        };
        if let Some(hook) = after_hook {
            hook().await;
        }
        if fault == Some(Fault::ResetAfterForward) {
            // The change is made; the caller never hears back (the connection is dropped).
            panic!("fault injected: connection reset after forwarding {operation}");
        }
        match answer {
            Ok(answer) => {
                let status = StatusCode::from_u16(answer.status().as_u16()).unwrap();
                let mut out = Response::builder().status(status);
                for (name, value) in answer.headers().iter() {
                    if name != "content-length" && name != "transfer-encoding" {
                        out = out.header(name, value);
                    }
                }
                out.body(axum::body::Body::from(
                    answer.bytes().await.unwrap_or_default(),
                ))
                .unwrap()
            }
            Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
        }
    });
    match work.await {
        Ok(response) => response,
        // The injected reset: the connection is dropped without an answer.
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

pub async fn wafv2() -> aws_sdk_wafv2::Client {
    aws_sdk_wafv2::Client::new(&sdk_config().await)
}

/// A v4 (and optionally v6) IP set pair in moto.
pub struct SeededSets {
    pub v4: (String, String),
    pub v6: Option<(String, String)>,
}

impl SeededSets {
    /// `[[waf.ip_sets]]` naming it `blocklist`.
    pub fn config(&self) -> String {
        let mut out = format!(
            "[[waf.ip_sets]]\nname = \"blocklist\"\nscope = \"REGIONAL\"\nipv4_set = {{ name = \"{}\", id = \"{}\" }}\n",
            self.v4.0, self.v4.1
        );
        if let Some((name, id)) = &self.v6 {
            out.push_str(&format!(
                "ipv6_set = {{ name = \"{name}\", id = \"{id}\" }}\n"
            ));
        }
        out
    }

    pub async fn v4_addresses(&self) -> Vec<String> {
        addresses(&self.v4).await
    }

    pub async fn v6_addresses(&self) -> Vec<String> {
        addresses(self.v6.as_ref().unwrap()).await
    }

    /// Someone else adds `address` to the v4 set (a proper read–modify–write).
    pub async fn add_outside(&self, address: &str) {
        add_outside(&self.v4, address).await
    }
}

pub async fn add_outside(set: &(String, String), address: &str) {
    let waf = wafv2().await;
    let got = waf
        .get_ip_set()
        .name(&set.0)
        .id(&set.1)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    let mut list = got.ip_set().unwrap().addresses().to_vec();
    list.push(address.to_string());
    waf.update_ip_set()
        .name(&set.0)
        .id(&set.1)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .set_addresses(Some(list))
        .lock_token(got.lock_token().unwrap())
        .send()
        .await
        .unwrap();
}

async fn addresses(set: &(String, String)) -> Vec<String> {
    let got = wafv2()
        .await
        .get_ip_set()
        .name(&set.0)
        .id(&set.1)
        .scope(aws_sdk_wafv2::types::Scope::Regional)
        .send()
        .await
        .unwrap();
    let mut list = got.ip_set().unwrap().addresses().to_vec();
    list.sort();
    list
}

/// A `CLOUDFRONT`-scope v4 set, created where AWS keeps them (us-east-1); its addresses.
pub async fn seed_cloudfront_set() -> (String, String) {
    use aws_sdk_wafv2::types::{IpAddressVersion, Scope};
    let name = unique("block-cf");
    let out = cloudfront_waf()
        .await
        .create_ip_set()
        .name(&name)
        .scope(Scope::Cloudfront)
        .ip_address_version(IpAddressVersion::Ipv4)
        .set_addresses(Some(vec![]))
        .send()
        .await
        .unwrap();
    (name, out.summary().unwrap().id().unwrap().to_string())
}

pub async fn cloudfront_addresses(set: &(String, String)) -> Vec<String> {
    let got = cloudfront_waf()
        .await
        .get_ip_set()
        .name(&set.0)
        .id(&set.1)
        .scope(aws_sdk_wafv2::types::Scope::Cloudfront)
        .send()
        .await
        .unwrap();
    got.ip_set().unwrap().addresses().to_vec()
}

async fn cloudfront_waf() -> aws_sdk_wafv2::Client {
    let config = sdk_config()
        .await
        .to_builder()
        .region(aws_config::Region::new("us-east-1"))
        .build();
    aws_sdk_wafv2::Client::new(&config)
}

/// Creates the sets; the v4 set starts with `initial`.
pub async fn seed_ip_sets(with_v6: bool, initial: Vec<String>) -> SeededSets {
    use aws_sdk_wafv2::types::{IpAddressVersion, Scope};
    let waf = wafv2().await;
    let v4_name = unique("block-v4");
    let v4 = waf
        .create_ip_set()
        .name(&v4_name)
        .scope(Scope::Regional)
        .ip_address_version(IpAddressVersion::Ipv4)
        .set_addresses(Some(initial))
        .send()
        .await
        .unwrap();
    let v4_id = v4.summary().unwrap().id().unwrap().to_string();
    let v6 = if with_v6 {
        let name = unique("block-v6");
        let out = waf
            .create_ip_set()
            .name(&name)
            .scope(Scope::Regional)
            .ip_address_version(IpAddressVersion::Ipv6)
            .set_addresses(Some(vec![]))
            .send()
            .await
            .unwrap();
        Some((name, out.summary().unwrap().id().unwrap().to_string()))
    } else {
        None
    };
    SeededSets {
        v4: (v4_name, v4_id),
        v6,
    }
}

pub async fn rds() -> aws_sdk_rds::Client {
    aws_sdk_rds::Client::new(&sdk_config().await)
}

/// An RDS instance in moto with `retention` days of automated backups.
pub struct SeededDatabase {
    pub instance: String,
}

impl SeededDatabase {
    /// `[[rds.databases]]` naming it `main`.
    pub fn config(&self) -> String {
        format!(
            "[[rds.databases]]\nname = \"main\"\ninstance = \"{}\"\n",
            self.instance
        )
    }

    pub async fn status_of(id: &str) -> Option<String> {
        Self::status_in("us-east-1", id).await
    }

    /// The status of instance `id` in `region`, if it exists there.
    pub async fn status_in(region: &str, id: &str) -> Option<String> {
        rds_in(region)
            .await
            .describe_db_instances()
            .db_instance_identifier(id)
            .send()
            .await
            .ok()
            .and_then(|o| {
                o.db_instances()
                    .first()
                    .and_then(|i| i.db_instance_status().map(str::to_string))
            })
    }

    pub async fn snapshot(&self, id: &str) {
        rds()
            .await
            .create_db_snapshot()
            .db_instance_identifier(&self.instance)
            .db_snapshot_identifier(id)
            .send()
            .await
            .unwrap();
    }

    pub async fn created(&self) -> chrono::DateTime<chrono::Utc> {
        let out = rds()
            .await
            .describe_db_instances()
            .db_instance_identifier(&self.instance)
            .send()
            .await
            .unwrap();
        let t = out.db_instances()[0].instance_create_time().unwrap();
        chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap()
    }
}

pub async fn seed_database(retention: i32) -> SeededDatabase {
    seed_database_in("us-east-1", retention).await
}

/// [`seed_database`] in `region`.
pub async fn seed_database_in(region: &str, retention: i32) -> SeededDatabase {
    let instance = unique("db").replace('_', "-");
    create_instance(region, &instance, Some(retention)).await;
    SeededDatabase { instance }
}

/// A small PostgreSQL instance `id` in moto's `region` (with `retention` days of automated
/// backups when given).
pub async fn create_instance(region: &str, id: &str, retention: Option<i32>) {
    create_instance_of(region, id, retention, "postgres").await
}

/// [`create_instance`] running `engine` (`mariadb`, `mysql`, …).
pub async fn create_instance_of(region: &str, id: &str, retention: Option<i32>, engine: &str) {
    rds_in(region)
        .await
        .create_db_instance()
        .db_instance_identifier(id)
        .db_instance_class("db.t3.micro")
        .engine(engine)
        .master_username("drbot")
        .master_user_password("not-a-real-password-1")
        .allocated_storage(20)
        .set_backup_retention_period(retention)
        .send()
        .await
        .unwrap();
}

/// A VPC with two subnets, a DB subnet group over them and a security group, in moto
/// (EC2 through its query API, which moto serves unsigned): (subnet group, security group).
pub async fn seed_network() -> (String, String) {
    seed_network_in("us-east-1").await
}

/// [`seed_network`] in `region`.
pub async fn seed_network_in(region: &'static str) -> (String, String) {
    let ec2 = |params: Vec<(&'static str, String)>| async move {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("Version", "2016-11-15");
        for (k, v) in &params {
            form.append_pair(k, v);
        }
        reqwest::Client::new()
            .post(moto_endpoint())
            .header("content-type", "application/x-www-form-urlencoded")
            .header(
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential=testing/20261127/{region}/ec2/aws4_request, SignedHeaders=host, Signature=0"),
            )
            .body(form.finish())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let between = |text: &str, tag: &str| {
        let open = format!("<{tag}>");
        let start = text
            .find(&open)
            .unwrap_or_else(|| panic!("no {tag} in {text}"))
            + open.len();
        let end = text[start..].find('<').unwrap() + start;
        text[start..end].to_string()
    };
    let vpc = between(
        &ec2(vec![
            ("Action", "CreateVpc".into()),
            ("CidrBlock", "10.42.0.0/16".into()),
        ])
        .await,
        "vpcId",
    );
    let mut subnets = Vec::new();
    for (i, zone) in [format!("{region}a"), format!("{region}b")]
        .iter()
        .enumerate()
    {
        let answer = ec2(vec![
            ("Action", "CreateSubnet".into()),
            ("VpcId", vpc.clone()),
            ("CidrBlock", format!("10.42.{i}.0/24")),
            ("AvailabilityZone", zone.to_string()),
        ])
        .await;
        subnets.push(between(&answer, "subnetId"));
    }
    let group = between(
        &ec2(vec![
            ("Action", "CreateSecurityGroup".into()),
            ("GroupName", unique("db-sg")),
            (
                "GroupDescription",
                "database access from the application".into(),
            ),
            ("VpcId", vpc.clone()),
        ])
        .await,
        "groupId",
    );
    let subnet_group = unique("db-private").replace('_', "-");
    rds_in(region)
        .await
        .create_db_subnet_group()
        .db_subnet_group_name(&subnet_group)
        .db_subnet_group_description("private subnets")
        .set_subnet_ids(Some(subnets))
        .send()
        .await
        .unwrap();
    (subnet_group, group)
}

/// How drbot writes times (RFC 3339, milliseconds, `Z`).
pub fn rfc3339_millis(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A Secrets Manager secret `name` in moto's us-east-1 holding `value` (JSON text); its ARN.
pub async fn create_secret(name: &str, value: &serde_json::Value) -> String {
    let answer = reqwest::Client::new()
        .post(moto_endpoint())
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", "secretsmanager.CreateSecret")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
        )
        .json(&serde_json::json!({"Name": name, "SecretString": value.to_string()}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let body: serde_json::Value = answer.json().await.unwrap();
    assert!(status.is_success(), "CreateSecret: {body}");
    body["ARN"].as_str().unwrap().to_string()
}

/// moto's query API, unsigned (moto takes the region from the credential scope).
pub async fn call(service: &str, params: &[(&str, &str)]) -> String {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        form.append_pair(k, v);
    }
    let answer = reqwest::Client::new()
        .post(moto_endpoint())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            format!("AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"),
        )
        .body(form.finish())
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let text = answer.text().await.unwrap();
    assert!(status.is_success(), "{service} {params:?}: {text}");
    text
}

pub fn between<'a>(xml: &'a str, tag: &str) -> &'a str {
    let start = xml
        .find(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no {tag} in {xml}"))
        + tag.len()
        + 2;
    let end = xml[start..].find(&format!("</{tag}>")).unwrap() + start;
    &xml[start..end]
}

/// A topic and a queue subscribed to it: (topic ARN, queue URL).
pub async fn topic_and_queue() -> (String, String) {
    let name = unique("alerts").replace('_', "-");
    let topic = call("sns", &[("Action", "CreateTopic"), ("Name", &name)]).await;
    let topic = between(&topic, "TopicArn").to_string();
    let queue = call("sqs", &[("Action", "CreateQueue"), ("QueueName", &name)]).await;
    let queue = between(&queue, "QueueUrl").to_string();
    let queue_arn = format!("arn:aws:sqs:us-east-1:123456789012:{name}");
    call(
        "sns",
        &[
            ("Action", "Subscribe"),
            ("TopicArn", &topic),
            ("Protocol", "sqs"),
            ("Endpoint", &queue_arn),
        ],
    )
    .await;
    (topic, queue)
}

/// CloudWatch's alarm JSON, as it publishes it to SNS.
pub fn alarm_json(name: &str, state: &str, reason: &str) -> String {
    serde_json::json!({
        "AlarmName": name,
        "AlarmDescription": "5xx from the API",
        "AWSAccountId": "123456789012",
        "NewStateValue": state,
        "NewStateReason": reason,
        "StateChangeTime": chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3f+0000").to_string(),
        "Region": "US East (N. Virginia)",
        "OldStateValue": if state == "OK" { "ALARM" } else { "OK" },
        "Trigger": {"MetricName": "HTTPCode_Target_5XX_Count", "Namespace": "AWS/ApplicationELB"}
    })
    .to_string()
}

/// Publishes `message` to `topic` (SNS delivers it to the topic's subscriptions).
pub async fn publish(topic: &str, message: &str) {
    call(
        "sns",
        &[
            ("Action", "Publish"),
            ("TopicArn", topic),
            ("Message", message),
            ("Subject", "ALARM"),
        ],
    )
    .await;
}
