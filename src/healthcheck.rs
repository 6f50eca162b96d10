//! `drbot healthcheck`: asks the local `serve` for `/readyz` over plain HTTP, so a container
//! health check needs no curl in the image. The address is `DRBOT_LISTEN` (an unspecified
//! address such as `0.0.0.0` is asked on loopback).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Why `serve` is not taken for ready.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error("DRBOT_LISTEN: '{0}' is not an address like 127.0.0.1:3000")]
    BadAddress(String),
    #[error("http://{addr}/readyz: {source}")]
    Unreachable {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("http://{addr}/readyz answered {status}: not ready")]
    Answered { addr: SocketAddr, status: u16 },
}

pub fn run() -> Result<(), NotReady> {
    let raw = std::env::var("DRBOT_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| "127.0.0.1:3000".to_string());
    let mut addr: SocketAddr = raw.parse().map_err(|_| NotReady::BadAddress(raw.clone()))?;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
        });
    }
    let status = ask(addr).map_err(|source| NotReady::Unreachable { addr, source })?;
    if status == 200 {
        println!("ready: http://{addr}/readyz answered 200");
        Ok(())
    } else {
        Err(NotReady::Answered { addr, status })
    }
}

/// The status code of `GET /readyz`, each step bounded by [`TIMEOUT`].
fn ask(addr: SocketAddr) -> Result<u16, std::io::Error> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(
        format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut head = [0u8; 64];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..])?;
        if n == 0 {
            break;
        }
        read += n;
    }
    let line = String::from_utf8_lossy(&head[..read]);
    line.split(' ')
        .nth(1)
        .and_then(|code| code.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "not an HTTP answer: {:?}",
                line.lines().next().unwrap_or("")
            ))
        })
}
