//! Acknowledgements per second under concurrent load (issue: a store that cannot wedge).
//!
//! 32 keep-alive connections send signed `/dr help` slash commands as fast as they are
//! answered, for `DRBOT_BENCH_SECONDS` (default 10). The server under test is pinned to CPU 0
//! and this load generator to CPU 1 (`taskset`), so the figures are one core's worth. Each
//! drbot answer is sent only after the command is durable in the hash-chained log (group
//! commit, `synchronous=FULL` on SQLite).
//!
//! Runs, in order: a bare axum server that only checks the HMAC signature (the ceiling for
//! this machine and HTTP stack), drbot on SQLite, and — when `DRBOT_TEST_POSTGRES` is set
//! (`scripts/bench` sets it) — three drbot replicas on one PostgreSQL database with the load
//! spread over them. Prints a Markdown table; nothing here asserts on time.

#[path = "../tests/it/support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const CONNECTIONS: usize = 32;

fn pin(pid: u32, cpu: u32) {
    let _ = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status();
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

/// CPU time the process has used so far (all its threads, user and system), in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are the 14th and 15th fields, the 12th and 13th after the name;
    // clock ticks are 1/100 s on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs [`load`] and adds how busy the servers' one core was over it.
async fn load_measured(addrs: &[SocketAddr], pids: &[u32], seconds: f64) -> (Figures, f64) {
    let cpu = || pids.iter().map(|&p| cpu_seconds(p)).sum::<f64>();
    let before = cpu();
    let started = Instant::now();
    let figures = load(addrs, seconds).await;
    let busy = (cpu() - before) / started.elapsed().as_secs_f64();
    (figures, busy)
}

fn signed_request(addr: SocketAddr, n: u64) -> Vec<u8> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("token", "deprecated-verification-token")
        .append_pair("team_id", "T0DRBOT")
        .append_pair("channel_id", support::OPS_CHANNEL)
        .append_pair("user_id", support::REQUESTER)
        .append_pair("command", "/dr")
        .append_pair("text", "help")
        .append_pair("api_app_id", "A0DRBOT")
        .append_pair("response_url", "http://127.0.0.1:9/response")
        .append_pair("trigger_id", &format!("bench.{n}"))
        .finish();
    let ts = support::now_unix();
    let sig = support::sign(support::SIGNING_SECRET, ts, &body);
    format!(
        "POST /slack/commands HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/x-www-form-urlencoded\r\nx-slack-request-timestamp: {ts}\r\nx-slack-signature: {sig}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

struct Figures {
    requests: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    failures: u64,
}

/// Drives `CONNECTIONS` keep-alive connections spread over `addrs` for `seconds`.
async fn load(addrs: &[SocketAddr], seconds: f64) -> Figures {
    let counter = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let addr = addrs[c % addrs.len()];
        let counter = counter.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let (read, mut write) = stream.into_split();
            let mut read = BufReader::new(read);
            let mut line = String::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                let request = signed_request(addr, n);
                let t = Instant::now();
                write.write_all(&request).await.unwrap();
                // Status line, headers, then the body by its length.
                line.clear();
                read.read_line(&mut line).await.unwrap();
                if !line.starts_with("HTTP/1.1 200") {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                let mut length = 0usize;
                loop {
                    line.clear();
                    read.read_line(&mut line).await.unwrap();
                    if line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                read.read_exact(&mut body).await.unwrap();
                if body.windows(15).any(|w| w == b"could not recor") {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| all[((p * all.len() as f64).ceil() as usize).clamp(1, all.len()) - 1];
    Figures {
        requests: all.len() as u64,
        per_second: all.len() as f64 / elapsed,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        failures: failures.load(Ordering::Relaxed),
    }
}

fn row(what: &str, f: &Figures, extra: &str) {
    println!(
        "| {what} | {:.0}/s | {:.2} ms | {:.2} ms | {} | {} | {extra} |",
        f.per_second, f.p50_ms, f.p99_ms, f.requests, f.failures
    );
}

/// The baseline: axum answering after the same HMAC check, nothing recorded.
async fn bare_server() {
    {
        let app = axum::Router::new().route(
            "/slack/commands",
            axum::routing::post(|headers: axum::http::HeaderMap, body: String| async move {
                let ts = headers
                    .get("x-slack-request-timestamp")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let sig = headers
                    .get("x-slack-signature")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("v0="))
                    .and_then(|v| hex::decode(v).ok())
                    .unwrap_or_default();
                let mut mac =
                    Hmac::<Sha256>::new_from_slice(support::SIGNING_SECRET.as_bytes()).unwrap();
                mac.update(format!("v0:{ts}:{body}").as_bytes());
                if mac.verify_slice(&sig).is_err() {
                    return (axum::http::StatusCode::UNAUTHORIZED, String::new());
                }
                (
                    axum::http::StatusCode::OK,
                    r#"{"response_type":"ephemeral","text":"ok"}"#.to_string(),
                )
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("{}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--bare-server") {
        bare_server().await;
        return;
    }
    let seconds: f64 = std::env::var("DRBOT_BENCH_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    pin(std::process::id(), 1);
    // The servers below run pinned to one core, so they run one runtime worker, as tokio
    // chooses by itself for a process started on one core (or given one CPU by its cgroup);
    // pinned after they start, they would otherwise keep two workers switching on one core.
    std::env::set_var("TOKIO_WORKER_THREADS", "1");
    println!("| server (pinned to CPU 0) | acks/s | p50 | p99 | requests | failed | notes |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");

    // 1. The bare baseline.
    let skip_bare = std::env::var("DRBOT_BENCH_SKIP_BARE").is_ok();
    let mut bare = tokio::process::Command::new(std::env::current_exe().unwrap())
        .arg("--bare-server")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    pin(bare.id().unwrap(), 0);
    let mut out = BufReader::new(bare.stdout.take().unwrap());
    let mut addr = String::new();
    out.read_line(&mut addr).await.unwrap();
    let bare_addr: SocketAddr = addr.trim().parse().unwrap();
    let (baseline, busy) = load_measured(
        &[bare_addr],
        &[bare.id().unwrap()],
        if skip_bare { 0.5 } else { seconds },
    )
    .await;
    row(
        "bare axum + HMAC check (nothing recorded)",
        &baseline,
        &format!("1.00× (baseline); CPU 0 busy {:.0} %", busy * 100.0),
    );
    let _ = bare.kill().await;

    // 2. drbot on SQLite (the harness uses PostgreSQL while DRBOT_TEST_POSTGRES is set).
    let postgres = std::env::var("DRBOT_TEST_POSTGRES").ok();
    std::env::remove_var("DRBOT_TEST_POSTGRES");
    let log = std::env::var("DRBOT_BENCH_RUST_LOG").unwrap_or_else(|_| "info".into());
    let app = support::spawn_app_custom(support::CONFIG, &[], &[("RUST_LOG", &log)]).await;
    let pid = app.pid().unwrap();
    pin(pid, 0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_mib(pid);
    let (sqlite, busy) = load_measured(&[app.addr], &[pid], seconds).await;
    row(
        "drbot, SQLite (each command durable before its 200)",
        &sqlite,
        &format!(
            "{:.2}× of bare; CPU 0 busy {:.0} %; RSS idle {idle:.1} MiB, after {:.1} MiB",
            sqlite.per_second / baseline.per_second,
            busy * 100.0,
            rss_mib(pid)
        ),
    );
    let verified = app.cli(&["audit", "verify"]).await;
    println!(
        "\nSQLite chain after the run: {}",
        String::from_utf8_lossy(&verified.stdout).trim()
    );
    drop(app);

    // 3. Three replicas on PostgreSQL.
    if let Some(url) = postgres.filter(|u| !u.is_empty()) {
        std::env::set_var("DRBOT_TEST_POSTGRES", url);
        let a = support::spawn_app().await;
        let b = a.another_replica().await;
        let c = a.another_replica().await;
        for r in [&a, &b, &c] {
            pin(r.pid().unwrap(), 0);
        }
        let pids = [a.pid().unwrap(), b.pid().unwrap(), c.pid().unwrap()];
        let (pg, busy) = load_measured(&[a.addr, b.addr, c.addr], &pids, seconds).await;
        row(
            "drbot, 3 replicas on PostgreSQL (all three on CPU 0; PostgreSQL unpinned)",
            &pg,
            &format!(
                "{:.2}× of bare; CPU 0 busy {:.0} % (drbot's share)",
                pg.per_second / baseline.per_second,
                busy * 100.0
            ),
        );
        let verified = a.cli(&["audit", "verify"]).await;
        println!(
            "PostgreSQL chain after the run: {}",
            String::from_utf8_lossy(&verified.stdout).trim()
        );
    }
}
