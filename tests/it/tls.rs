//! Reaching AWS over TLS with only the operating system's roots (SPEC §13): the AWS SDK in
//! drbot trusts the CA bundle the system provides (in the image, Debian's
//! `ca-certificates`, which the Dockerfile installs), not roots compiled into the binary.
//! Shown with the real binary against an HTTPS endpoint (in front of moto) whose certificate
//! comes from a CA made for the test: with a bundle holding that CA, `check-config --aws`
//! reaches AWS; with a bundle holding only another CA, the TLS handshake fails.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::aws::seed_service;
use crate::support::*;

struct TlsEndpoint {
    child: std::process::Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for TlsEndpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_endpoint() -> TlsEndpoint {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(repo_root().join(".venv/bin/python"))
        .arg(repo_root().join("tests/it/support/tls_proxy.py"))
        .arg(dir.path())
        .env("AWS_ENDPOINT_URL", moto_endpoint())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the project's .venv (scripts/test makes it)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the proxy prints its port");
    TlsEndpoint { child, port, dir }
}

fn check_config(
    config: &std::path::Path,
    endpoint: &str,
    bundle: &std::path::Path,
) -> std::process::Output {
    let empty = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_drbot"))
        .args(["check-config", "--aws", "--config"])
        .arg(config)
        .env("AWS_ENDPOINT_URL", endpoint)
        // The system's roots, as the image has them: one bundle file, no other directory.
        .env("SSL_CERT_FILE", bundle)
        .env("SSL_CERT_DIR", empty.path())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_aws_sdk_reaches_aws_over_tls_with_the_systems_ca_bundle_only() {
    let svc = seed_service(2, 1).await;
    let tls = tls_endpoint();
    let config = tls.dir.path().join("drbot.toml");
    std::fs::write(
        &config,
        format!("[approval]\nofficers = [\"U0SECOFF1\"]\n\n{}", svc.config()),
    )
    .unwrap();
    let endpoint = format!("https://localhost:{}", tls.port);

    let trusted = check_config(&config, &endpoint, &tls.dir.path().join("ca.pem"));
    assert!(
        trusted.status.success(),
        "{}",
        String::from_utf8_lossy(&trusted.stderr)
    );
    assert!(String::from_utf8_lossy(&trusted.stdout).contains("aws: ok"));

    let untrusted = check_config(&config, &endpoint, &tls.dir.path().join("other-ca.pem"));
    assert!(
        !untrusted.status.success(),
        "a certificate from a CA outside the system's bundle was accepted"
    );
}
