//! Who is asking, as the AWS Application Load Balancer's OIDC authentication says (SPEC
//! §19, the web console). The ALB signs `x-amzn-oidc-data` — a JWT whose header
//! names its key (`kid`), the load balancer that signed it (`signer`) and its expiry — with
//! ES256; its public key is at `https://public-keys.auth.elb.<region>.amazonaws.com/<kid>`.
//! [`verify`] is pure: given the token, that key's PEM, the expected signer and the time, it
//! answers the verified identity or why not; [`AlbKeys`] alone speaks to the key endpoint
//! (fetched by `kid` once, kept).

use base64::Engine;
use serde_json::Value;

/// A verified identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub email: String,
    pub subject: String,
}

/// Why a token is not accepted (said in a 401; never echoes the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the request carries no sign-in from the load balancer")]
    Missing,
    #[error("the sign-in token is malformed ({0})")]
    Malformed(&'static str),
    #[error("the sign-in token is not signed with ES256")]
    Algorithm,
    #[error("the sign-in token was signed by another load balancer")]
    Signer,
    #[error("the sign-in token's signature does not verify")]
    Signature,
    #[error("the sign-in has expired")]
    Expired,
    #[error("the sign-in names no email")]
    NoEmail,
    #[error("the sign-in's email is not verified by the identity provider")]
    Unverified,
    #[error("the load balancer's public key is not a P-256 key")]
    Key,
    #[error("the load balancer's public key could not be fetched ({0}); try again in a moment")]
    KeyUnreachable(String),
}

impl Refusal {
    /// 503 when drbot could not check (the key endpoint did not answer), else 401.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::KeyUnreachable(_) => 503,
            _ => 401,
        }
    }
}

/// The header's checks that need no key — ES256, our load balancer — and its `kid`: a
/// token of another signer never makes drbot fetch anything.
pub fn precheck(token: &str, signer: &str) -> Result<String, Refusal> {
    let head = token.split('.').next().ok_or(Refusal::Missing)?;
    let header = json(&part(head)?)?;
    if header["alg"] != "ES256" {
        return Err(Refusal::Algorithm);
    }
    if header["signer"].as_str() != Some(signer) {
        return Err(Refusal::Signer);
    }
    kid(token)
}

type Https = crate::web::Client<http_body_util::Empty<axum::body::Bytes>>;

/// Keys kept at most (the ALB rotates a few; more would be someone trying kids).
const KEYS_KEPT: usize = 32;
/// One fetch of a key may take this long.
const KEY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The load balancers' public keys of one region, by `kid`, fetched once and kept.
pub struct AlbKeys {
    base: String,
    client: Https,
    kept: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl AlbKeys {
    /// The regional endpoint, or (tests only) another base URL serving `<kid>` → PEM.
    pub fn new(region: &str, test_base: Option<String>) -> Self {
        let base = test_base.unwrap_or_else(|| key_url(region, "").trim_end_matches('/').into());
        AlbKeys {
            base: base.trim_end_matches('/').to_string(),
            client: crate::web::client(),
            kept: Default::default(),
        }
    }

    async fn pem(&self, kid: &str) -> Result<String, Refusal> {
        if let Some(pem) = self.kept.lock().unwrap_or_else(|e| e.into_inner()).get(kid) {
            return Ok(pem.clone());
        }
        let unreachable = |e: String| Refusal::KeyUnreachable(e);
        let uri: axum::http::Uri = format!("{}/{kid}", self.base)
            .parse()
            .map_err(|_| Refusal::Malformed("no usable kid"))?;
        let fetch = async {
            let answer = self
                .client
                .get(uri)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            let status = answer.status();
            let body = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                answer.into_body(),
                8 * 1024,
            ))
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
            match status.as_u16() {
                200 => Ok(String::from_utf8_lossy(&body).to_string()),
                // The endpoint has no such key: the token was not signed by an ALB key.
                400..=499 => Err(Refusal::Signature),
                _ => Err(unreachable(format!("HTTP {status}"))),
            }
        };
        let pem = tokio::time::timeout(KEY_TIMEOUT, fetch)
            .await
            .map_err(|_| unreachable(format!("no answer within {}s", KEY_TIMEOUT.as_secs())))??;
        p256_point(&pem)?;
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() >= KEYS_KEPT {
            kept.clear();
        }
        kept.insert(kid.to_string(), pem.clone());
        Ok(pem)
    }

    /// The identity `token` (the `x-amzn-oidc-data` header) verifies as, signed by `signer`,
    /// at `now` (seconds).
    pub async fn identify(
        &self,
        token: Option<&str>,
        signer: &str,
        now: i64,
    ) -> Result<Identity, Refusal> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Refusal::Missing)?;
        let kid = precheck(token, signer)?;
        let pem = self.pem(&kid).await?;
        verify(token, &pem, signer, now)
    }
}

fn part(text: &str) -> Result<Vec<u8>, Refusal> {
    // The ALB pads its base64url; JWTs elsewhere do not: accept both.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| Refusal::Malformed("not base64url"))
}

fn json(bytes: &[u8]) -> Result<Value, Refusal> {
    serde_json::from_slice(bytes).map_err(|_| Refusal::Malformed("not JSON"))
}

/// The token's header: its `kid` (which key to fetch) before anything is verified.
pub fn kid(token: &str) -> Result<String, Refusal> {
    let head = token.split('.').next().ok_or(Refusal::Missing)?;
    let header = json(&part(head)?)?;
    header["kid"]
        .as_str()
        .filter(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .ok_or(Refusal::Malformed("no usable kid"))
}

/// Where the load balancers of `region` publish key `kid`.
pub fn key_url(region: &str, kid: &str) -> String {
    format!("https://public-keys.auth.elb.{region}.amazonaws.com/{kid}")
}

/// The DER a P-256 `PUBLIC KEY` (SubjectPublicKeyInfo) starts with, before its point.
pub const SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// The PEM of a P-256 public key given its uncompressed point (as the key endpoint serves).
pub fn p256_pem(point: &[u8]) -> String {
    let mut spki = SPKI_PREFIX.to_vec();
    spki.extend_from_slice(point);
    format!(
        "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
        base64::engine::general_purpose::STANDARD.encode(spki)
    )
}

/// The uncompressed P-256 point of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
pub fn p256_point(pem: &str) -> Result<Vec<u8>, Refusal> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| Refusal::Key)?;
    match der.strip_prefix(&SPKI_PREFIX[..]) {
        Some(point) if point.len() == 65 && point[0] == 4 => Ok(point.to_vec()),
        _ => Err(Refusal::Key),
    }
}

/// Verifies `token` with the key `pem`: ES256, signed by `signer` (the load balancer's ARN),
/// not expired at `now` (seconds), naming an email.
pub fn verify(token: &str, pem: &str, signer: &str, now: i64) -> Result<Identity, Refusal> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("not three parts"));
    };
    let header = json(&part(head)?)?;
    if header["alg"] != "ES256" {
        return Err(Refusal::Algorithm);
    }
    if header["signer"].as_str() != Some(signer) {
        return Err(Refusal::Signer);
    }
    let point = p256_point(pem)?;
    let signed = format!("{head}.{body}");
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(signed.as_bytes(), &part(sig)?)
        .map_err(|_| Refusal::Signature)?;
    let claims = json(&part(body)?)?;
    // The ALB puts the expiry in the header; a claim `exp` is honoured too.
    let expires = [header["exp"].as_i64(), claims["exp"].as_i64()]
        .into_iter()
        .flatten()
        .min()
        .ok_or(Refusal::Malformed("no expiry"))?;
    if now >= expires {
        return Err(Refusal::Expired);
    }
    // An IdP that says the email is not verified (a self-asserted address) names nobody.
    if matches!(&claims["email_verified"], Value::Bool(false))
        || claims["email_verified"].as_str() == Some("false")
    {
        return Err(Refusal::Unverified);
    }
    let email = claims["email"]
        .as_str()
        .filter(|e| e.contains('@'))
        .ok_or(Refusal::NoEmail)?
        .to_lowercase();
    Ok(Identity {
        email,
        subject: claims["sub"].as_str().unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    use super::*;

    const SIGNER: &str = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/drbot/50dc6c495c0c9188";

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A key pair as the ALB has one: the signer, and its public key as PEM.
    fn key() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let pem = p256_pem(pair.public_key().as_ref());
        (pair, pem)
    }

    fn token(pair: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let signed = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = pair.sign(&SystemRandom::new(), signed.as_bytes()).unwrap();
        // The ALB pads its parts.
        format!("{signed}.{}==", b64(sig.as_ref()))
    }

    #[test]
    fn only_an_unexpired_es256_token_of_our_load_balancer_names_someone() {
        let (pair, pem) = key();
        let header =
            serde_json::json!({"alg": "ES256", "kid": "8c1f-2b", "signer": SIGNER, "exp": 2000});
        let claims = serde_json::json!({"sub": "00u1", "email": "Dana@Example.com", "exp": 2000});
        let good = token(&pair, header.clone(), claims.clone());
        assert_eq!(kid(&good).unwrap(), "8c1f-2b");
        assert_eq!(
            verify(&good, &pem, SIGNER, 1000),
            Ok(Identity {
                email: "dana@example.com".into(),
                subject: "00u1".into()
            })
        );
        assert_eq!(verify(&good, &pem, SIGNER, 2000), Err(Refusal::Expired));
        assert_eq!(
            verify(
                &good,
                &pem,
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/other/1",
                1000
            ),
            Err(Refusal::Signer)
        );
        // Another key (a forger's), a changed claim, another algorithm, no email.
        let (_, other_pem) = key();
        assert_eq!(
            verify(&good, &other_pem, SIGNER, 1000),
            Err(Refusal::Signature)
        );
        let mut parts: Vec<&str> = good.split('.').collect();
        let forged_claims = b64(
            serde_json::json!({"sub": "00u1", "email": "officer@example.com", "exp": 2000})
                .to_string()
                .as_bytes(),
        );
        parts[1] = &forged_claims;
        assert_eq!(
            verify(&parts.join("."), &pem, SIGNER, 1000),
            Err(Refusal::Signature)
        );
        let mut none = header.clone();
        none["alg"] = "none".into();
        assert_eq!(
            verify(&token(&pair, none, claims.clone()), &pem, SIGNER, 1000),
            Err(Refusal::Algorithm)
        );
        let nameless = serde_json::json!({"sub": "00u1", "exp": 2000});
        assert_eq!(
            verify(&token(&pair, header.clone(), nameless), &pem, SIGNER, 1000),
            Err(Refusal::NoEmail)
        );
        for unverified in [serde_json::json!(false), serde_json::json!("false")] {
            let claims = serde_json::json!({"sub": "00u9", "email": "sam@example.com", "email_verified": unverified});
            assert_eq!(
                verify(&token(&pair, header.clone(), claims), &pem, SIGNER, 1000),
                Err(Refusal::Unverified),
                "a self-asserted email is not an officer's"
            );
        }
        assert_eq!(
            verify("a.b", &pem, SIGNER, 1000),
            Err(Refusal::Malformed("not three parts"))
        );
        assert_eq!(
            p256_point("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"),
            Err(Refusal::Key)
        );
        assert_eq!(
            key_url("eu-west-1", "8c1f-2b"),
            "https://public-keys.auth.elb.eu-west-1.amazonaws.com/8c1f-2b"
        );
    }
}
