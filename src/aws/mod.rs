//! AWS access. Only this module imports `aws_sdk_*`; credentials, region and endpoint come
//! from the SDK's default chain (`AWS_ENDPOINT_URL` points every client at an emulator).

pub mod dns;
pub mod ec2;
pub mod ecs;
pub mod params;
pub mod rds;
pub mod reachability;
pub mod secrets;
pub mod signed;
pub mod sns;
pub mod sqs;
pub mod waf;
pub mod web_acl;

use std::sync::Arc;

use dashmap::DashMap;

/// One client per service, built from the default chain; clients for other regions are
/// made on first use from the same configuration (`AWS_ENDPOINT_URL` still applies).
#[derive(Clone, Debug)]
pub struct AwsClients {
    /// The default chain's configuration, before any region's timeouts.
    base: aws_config::SdkConfig,
    /// `base` with the default region's timeouts.
    config: aws_config::SdkConfig,
    timeouts: Arc<crate::config::AwsTimeouts>,
    pub ecs: aws_sdk_ecs::Client,
    pub rds: aws_sdk_rds::Client,
    /// Route 53 is global.
    pub route53: aws_sdk_route53::Client,
    regional: Arc<DashMap<String, Regional>>,
    /// WAF for `REGIONAL` sets, in the configured region.
    pub wafv2: aws_sdk_wafv2::Client,
    /// WAF for `CLOUDFRONT` sets: AWS serves them from us-east-1 only, whatever
    /// `AWS_REGION` says.
    pub wafv2_cloudfront: aws_sdk_wafv2::Client,
}

/// Runs one AWS call that changes something and records its duration by operation and
/// outcome (`drbot_aws_call_seconds`).
pub(crate) async fn timed<T, E>(
    operation: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let out = call.await;
    crate::metrics::aws_call(operation, out.is_ok(), started.elapsed());
    out
}

/// Where AWS serves `CLOUDFRONT`-scope WAF resources.
pub const CLOUDFRONT_REGION: &str = "us-east-1";

/// The clients of one region other than the default.
#[derive(Clone, Debug)]
struct Regional {
    ecs: aws_sdk_ecs::Client,
    rds: aws_sdk_rds::Client,
    ssm: aws_sdk_ssm::Client,
}

/// The SDK's default configuration chain, with its HTTPS client on rustls and ring (CA
/// certificates from the system, as the default client).
pub fn sdk_defaults() -> aws_config::ConfigLoader {
    use aws_smithy_http_client::tls;
    let https = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https)
}

/// The SDK's own timers (its retry backoff, each attempt's timeout) on drbot's clock
/// ([`crate::clock::sleep`]), like every other timer; request signing keeps the real time.
#[derive(Debug)]
struct DrbotSleep;

impl aws_sdk_ecs::config::AsyncSleep for DrbotSleep {
    fn sleep(&self, duration: std::time::Duration) -> aws_sdk_ecs::config::Sleep {
        aws_sdk_ecs::config::Sleep::new(crate::clock::sleep(duration))
    }
}

/// The SDK configuration `config` with `timeout`: each attempt connects within
/// `timeout.connect` and ends within `timeout.call`; all attempts of one call (a read's
/// retries) end within twice `timeout.call`. A region that never answers holds nothing longer.
fn with_timeout(
    config: &aws_config::SdkConfig,
    region: Option<&str>,
    timeout: crate::config::CallTimeout,
) -> aws_config::SdkConfig {
    let mut builder = config.to_builder().timeout_config(
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(timeout.connect)
            .operation_attempt_timeout(timeout.call)
            .operation_timeout(timeout.call * 2)
            .build(),
    );
    if let Some(region) = region {
        builder = builder.region(aws_config::Region::new(region.to_string()));
    }
    builder.build()
}

impl AwsClients {
    /// Clients from the SDK's default chain; each attempt of a call is given up after its
    /// region's `call_timeout` (a call that hangs is an error, never a request stuck
    /// `executing`; a dark region never holds a command, a worker or start-up).
    pub async fn from_env(timeouts: crate::config::AwsTimeouts) -> Self {
        let base = sdk_defaults()
            .load()
            .await
            .to_builder()
            .sleep_impl(DrbotSleep)
            .build();
        let default_region = base.region().map(|r| r.to_string());
        let timeout_of =
            |region: Option<&str>| timeouts.of(region.unwrap_or(""), default_region.as_deref());
        let config = with_timeout(&base, None, timeout_of(default_region.as_deref()));
        // Route 53's API and CLOUDFRONT-scope WAF are served (and signed) in us-east-1.
        let us_east_1 = with_timeout(
            &base,
            Some(CLOUDFRONT_REGION),
            timeout_of(Some(CLOUDFRONT_REGION)),
        );
        Self {
            ecs: aws_sdk_ecs::Client::new(&config),
            rds: aws_sdk_rds::Client::new(&config),
            route53: aws_sdk_route53::Client::new(&us_east_1),
            regional: Arc::new(DashMap::new()),
            wafv2: aws_sdk_wafv2::Client::new(&config),
            wafv2_cloudfront: aws_sdk_wafv2::Client::new(&us_east_1),
            timeouts: Arc::new(timeouts),
            base,
            config,
        }
    }

    /// How long one attempt of a call may take in `region` (`None`: the default region).
    pub fn timeout_in(&self, region: Option<&str>) -> crate::config::CallTimeout {
        let default = self.default_region();
        self.timeouts.of(
            region.or(default.as_deref()).unwrap_or(""),
            default.as_deref(),
        )
    }

    /// The region the default clients use (`AWS_REGION`).
    pub fn default_region(&self) -> Option<String> {
        self.config.region().map(|r| r.to_string())
    }

    fn regional(&self, region: &str) -> Regional {
        self.regional
            .entry(region.to_string())
            .or_insert_with(|| {
                let config = with_timeout(&self.base, Some(region), self.timeout_in(Some(region)));
                Regional {
                    ecs: aws_sdk_ecs::Client::new(&config),
                    rds: aws_sdk_rds::Client::new(&config),
                    ssm: aws_sdk_ssm::Client::new(&config),
                }
            })
            .clone()
    }

    /// RDS in `region` (`None`: the default region).
    pub fn rds_in(&self, region: Option<&str>) -> aws_sdk_rds::Client {
        match region {
            Some(r) if Some(r) != self.default_region().as_deref() => self.regional(r).rds,
            _ => self.rds.clone(),
        }
    }

    /// ECS in `region` (`None`: the default region).
    pub fn ecs_in(&self, region: Option<&str>) -> aws_sdk_ecs::Client {
        match region {
            Some(r) if Some(r) != self.default_region().as_deref() => self.regional(r).ecs,
            _ => self.ecs.clone(),
        }
    }

    /// SSM Parameter Store in `region` (`None`: the default region).
    pub fn ssm_in(&self, region: Option<&str>) -> aws_sdk_ssm::Client {
        match region {
            Some(r) => self.regional(r).ssm,
            None => {
                let default = self
                    .default_region()
                    .unwrap_or_else(|| "us-east-1".to_string());
                self.regional(&default).ssm
            }
        }
    }

    /// The WAF client for sets of `scope`.
    pub fn waf(&self, scope: crate::config::WafScope) -> &aws_sdk_wafv2::Client {
        match scope {
            crate::config::WafScope::Regional => &self.wafv2,
            crate::config::WafScope::Cloudfront => &self.wafv2_cloudfront,
        }
    }
}

/// What a call that timed out says: the region (or Route 53's API) did not answer.
pub const NO_ANSWER: &str =
    "AWS did not answer within drbot's call timeout: the region or its API may be down or unreachable ([regions] call_timeout)";

/// One line for an SDK error: the service's error code and message, never request headers.
pub fn describe_error<E, R>(err: &aws_sdk_ecs::error::SdkError<E, R>) -> String
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error,
{
    use aws_sdk_ecs::error::SdkError;
    match err {
        SdkError::ServiceError(service) => {
            let e = service.err();
            match (e.code(), e.message()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_string(),
                _ => e.to_string(),
            }
        }
        SdkError::DispatchFailure(d) if d.is_timeout() => NO_ANSWER.to_string(),
        SdkError::DispatchFailure(_) => {
            "cannot reach the AWS endpoint (check AWS_REGION, AWS_ENDPOINT_URL and the network)"
                .to_string()
        }
        SdkError::TimeoutError(_) => NO_ANSWER.to_string(),
        SdkError::ConstructionFailure(_) => {
            "the request could not be built (check credentials and region)".to_string()
        }
        SdkError::ResponseError(_) => "AWS sent an answer drbot could not read".to_string(),
        _ => "AWS call failed".to_string(),
    }
}

/// A failed AWS call, naming the operation and the resource; never carries credentials.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{operation} on {resource}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub resource: String,
    pub message: String,
    pub request_id: Option<String>,
    pub throttled: bool,
    /// For a call that changes something: AWS may have done it (a 5xx, a timeout, a
    /// connection lost after the request was sent, an answer that could not be read).
    pub unknown: bool,
}

impl AwsError {
    pub fn from_sdk<E>(
        operation: &'static str,
        resource: &str,
        err: &aws_sdk_ecs::error::SdkError<E, aws_sdk_ecs::config::http::HttpResponse>,
    ) -> Self
    where
        E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error,
    {
        use aws_sdk_ecs::error::SdkError;
        let (request_id, throttled, unknown) = match err {
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                let throttled = code.contains("Throttl")
                    || code == "TooManyRequestsException"
                    || code == "RequestLimitExceeded"
                    || code == "SlowDown";
                (
                    service
                        .err()
                        .meta()
                        .extra("aws_request_id")
                        .map(str::to_string),
                    throttled,
                    // A throttled or refused (4xx) request was not carried out; a 5xx may
                    // have been.
                    !throttled && service.raw().status().is_server_error(),
                )
            }
            // Refused before it was sent: nothing happened.
            SdkError::ConstructionFailure(_) => (None, false, false),
            // The connection could not even be opened: nothing was sent.
            SdkError::DispatchFailure(d)
                if format!("{:?}", d.as_connector_error()).contains("Connection refused") =>
            {
                (None, false, false)
            }
            _ => (None, false, true),
        };
        Self {
            operation,
            resource: resource.to_string(),
            message: describe_error(err),
            request_id,
            throttled,
            unknown,
        }
    }

    pub fn not_found(operation: &'static str, resource: &str, message: &str) -> Self {
        Self {
            operation,
            resource: resource.to_string(),
            message: message.to_string(),
            request_id: None,
            throttled: false,
            unknown: false,
        }
    }
}

/// How often a change AWS throttled is tried again (each try once, no SDK retries).
pub const MUTATION_ATTEMPTS: u32 = 5;

/// Sends a call that changes something exactly as drbot means to: the SDK's own retries
/// are off for it (`attempt` builds the request with [`once!`]), so a request AWS may have
/// carried out is never sent again by itself; only an answer that AWS *throttled* it (it
/// was not carried out) is tried again, up to [`MUTATION_ATTEMPTS`] times with backoff.
/// Anything else comes back as it is, `unknown` when AWS may have done it.
pub(crate) async fn mutate<T, E, F, Fut>(
    operation: &'static str,
    resource: &str,
    mut attempt: F,
) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<
            T,
            aws_sdk_ecs::error::SdkError<E, aws_sdk_ecs::config::http::HttpResponse>,
        >,
    >,
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match timed(operation, attempt()).await {
            Ok(out) => return Ok(out),
            Err(e) => {
                let error = AwsError::from_sdk(operation, resource, &e);
                if error.throttled && tries < MUTATION_ATTEMPTS {
                    let wait = 200u64 * 2u64.pow(tries - 1) + jitter_ms(100);
                    tracing::warn!(
                        operation,
                        tries,
                        wait_ms = wait,
                        "AWS throttled a change; trying it again"
                    );
                    crate::clock::sleep(std::time::Duration::from_millis(wait)).await;
                    continue;
                }
                let mut error = error;
                if error.throttled {
                    error.message = format!(
                        "{} (throttled {tries} times; not carried out)",
                        error.message
                    );
                }
                return Err(error);
            }
        }
    }
}

fn jitter_ms(max: u64) -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 % max.max(1))
        .unwrap_or(0)
}

/// A request with the SDK's retries off, sent once (see [`mutate`]): `once!(aws_sdk_ecs, builder)`.
macro_rules! once {
    ($sdk:ident, $builder:expr) => {
        $builder
            .customize()
            .config_override(
                $sdk::config::Config::builder()
                    .retry_config($sdk::config::retry::RetryConfig::disabled()),
            )
            .send()
    };
}
pub(crate) use once;

/// The answer of a read; `None` when AWS answers that the thing asked for does not exist
/// (`missing` recognises that error).
pub(crate) fn unless_missing<T, E>(
    operation: &'static str,
    resource: &str,
    answer: Result<T, aws_sdk_ecs::error::SdkError<E, aws_sdk_ecs::config::http::HttpResponse>>,
    missing: impl Fn(&E) -> bool,
) -> Result<Option<T>, AwsError>
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error,
{
    match answer {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.as_service_error().is_some_and(&missing) => Ok(None),
        Err(e) => Err(AwsError::from_sdk(operation, resource, &e)),
    }
}

/// Sends the change `$call` with [`mutate`] (each attempt [`once!`]) and answers the AWS
/// request id of the attempt that succeeded.
macro_rules! change {
    ($sdk:ident, $operation:literal, $resource:expr, $call:expr) => {{
        let call = $call;
        let out =
            super::mutate($operation, &$resource, || super::once!($sdk, call.clone())).await?;
        Ok(out.request_id().unwrap_or("unknown").to_string())
    }};
}
pub(crate) use change;

impl AwsError {
    /// What to tell people about a change that failed: done or not, and where to look.
    pub fn outcome(&self, check: &str) -> String {
        if self.unknown {
            format!("outcome unknown — check AWS: {check} ({self})")
        } else {
            format!("failed: {self}; nothing was changed")
        }
    }
}
