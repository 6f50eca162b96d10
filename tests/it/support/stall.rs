//! A TCP proxy between drbot and its PostgreSQL that can stall all traffic (a Multi-AZ
//! failover, a network partition: nothing is refused, nothing answers) and cut every
//! connection at once (mid-commit included).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct StallProxy {
    pub addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    pumps: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl StallProxy {
    /// Forwards to `target` (`host:port`).
    pub async fn start(target: String) -> StallProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let pumps: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Default::default();
        let (s, p) = (stalled.clone(), pumps.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = TcpStream::connect(&target).await else {
                    continue;
                };
                let (ri, wi) = inbound.into_split();
                let (ro, wo) = outbound.into_split();
                let mut pumps = p.lock().unwrap();
                pumps.push(tokio::spawn(pump(ri, wo, s.clone())).abort_handle());
                pumps.push(tokio::spawn(pump(ro, wi, s.clone())).abort_handle());
            }
        });
        StallProxy {
            addr,
            stalled,
            pumps,
        }
    }

    /// `url` (a PostgreSQL URL) through this proxy.
    pub fn through(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.addr.port())).unwrap();
        url.to_string()
    }

    /// Nothing passes (in either direction) until [`Self::resume`].
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.stalled.store(false, Ordering::SeqCst);
    }

    /// Drops every open connection, whatever it was doing.
    pub fn cut(&self) {
        for pump in self.pumps.lock().unwrap().drain(..) {
            pump.abort();
        }
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    stalled: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
