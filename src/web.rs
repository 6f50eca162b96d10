//! drbot's HTTP client for the REST peers it speaks to itself (Statuspage, the load
//! balancer's key endpoint): hyper over rustls with ring and the public web roots drbot
//! carries, HTTP/1. Plain `http://` is allowed by the client; each peer's configuration
//! says where it may be used (a stand-in on this machine only).

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;

/// A client whose request bodies are `B`.
pub type Client<B> = hyper_util::client::legacy::Client<HttpsConnector<HttpConnector>, B>;

/// A new client (each peer keeps its own, with its connections).
pub fn client<B>() -> Client<B>
where
    B: axum::body::HttpBody + Send + 'static,
    B::Data: Send,
{
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .expect("ring offers the safe default protocol versions")
        .https_or_http()
        .enable_http1()
        .build();
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// An http(s) URL whose host is this machine (what a test stand-in may be).
pub fn is_loopback(url: &str) -> bool {
    let Ok(url) = url::Url::parse(url.trim()) else {
        return false;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
