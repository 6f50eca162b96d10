//! Slack's Socket Mode, as the stand-in speaks it: `apps.connections.open` (with the app
//! token) hands out a local `ws://` URL; each connection gets `hello`, then the envelopes a
//! test sends (`slash_commands`, `events_api`, `interactive`), and must acknowledge each by
//! its `envelope_id`. A test can drop every connection, as Slack does when it refreshes
//! them, and see drbot reconnect.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// The app-level token the stand-in accepts for `apps.connections.open`.
pub const APP_TOKEN: &str = "xapp-1-A0DRBOT-test-0000";

#[derive(Default)]
struct Hub {
    /// Live connections: each takes frames to send.
    connections: Vec<mpsc::UnboundedSender<Option<String>>>,
    /// Every acknowledgement received, as sent.
    acks: Vec<Value>,
    opened: u64,
}

#[derive(Clone)]
pub struct SocketModeStandIn {
    pub addr: SocketAddr,
    hub: Arc<Mutex<Hub>>,
    next_envelope: Arc<AtomicU64>,
}

impl SocketModeStandIn {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hub: Arc<Mutex<Hub>> = Arc::default();
        let accepting = hub.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let hub = accepting.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                        serve(ws, hub).await;
                    }
                });
            }
        });
        Self {
            addr,
            hub,
            next_envelope: Arc::new(AtomicU64::new(1)),
        }
    }

    /// What `apps.connections.open` answers.
    pub fn open(&self) -> Value {
        self.hub.lock().unwrap().opened += 1;
        json!({"ok": true, "url": format!("ws://{}/link/?ticket=t{}", self.addr, self.next_envelope.load(Ordering::Relaxed))})
    }

    /// How many times a connection was opened.
    pub fn opened(&self) -> u64 {
        self.hub.lock().unwrap().opened
    }

    /// Live connections.
    pub fn connections(&self) -> usize {
        let mut hub = self.hub.lock().unwrap();
        hub.connections.retain(|c| !c.is_closed());
        hub.connections.len()
    }

    /// Waits until drbot holds at least one connection.
    pub async fn wait_connected(&self) {
        for _ in 0..400 {
            if self.connections() > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("drbot did not connect over Socket Mode");
    }

    /// Sends an envelope of `kind` over one live connection; returns its id.
    pub fn send(&self, kind: &str, payload: Value) -> String {
        let id = format!(
            "env-{:04}",
            self.next_envelope.fetch_add(1, Ordering::Relaxed)
        );
        self.send_as(&id, kind, payload, 0);
        id
    }

    /// Sends (or sends again, with `retry_attempt`) the envelope `id`.
    pub fn send_as(&self, id: &str, kind: &str, payload: Value, retry_attempt: u32) {
        let frame = json!({
            "envelope_id": id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind == "slash_commands",
            "retry_attempt": retry_attempt,
            "retry_reason": if retry_attempt > 0 { "timeout" } else { "" },
        });
        let mut hub = self.hub.lock().unwrap();
        hub.connections.retain(|c| !c.is_closed());
        let connection = hub
            .connections
            .first()
            .expect("drbot holds no Socket Mode connection");
        connection.send(Some(frame.to_string())).unwrap();
    }

    /// The acknowledgement of envelope `id`, waiting up to 10 s.
    pub async fn ack(&self, id: &str) -> Option<Value> {
        for _ in 0..400 {
            if let Some(ack) = self.acks_of(id).into_iter().next() {
                return Some(ack);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        None
    }

    pub fn acks_of(&self, id: &str) -> Vec<Value> {
        self.hub
            .lock()
            .unwrap()
            .acks
            .iter()
            .filter(|a| a["envelope_id"] == id)
            .cloned()
            .collect()
    }

    /// Closes every connection at once, as a network drop would.
    pub fn drop_connections(&self) {
        let mut hub = self.hub.lock().unwrap();
        for c in hub.connections.drain(..) {
            let _ = c.send(None);
        }
    }
}

async fn serve(
    ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    hub: Arc<Mutex<Hub>>,
) {
    let (mut sink, mut stream) = ws.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Option<String>>();
    let hello = json!({"type": "hello", "num_connections": 1,
        "connection_info": {"app_id": "A0DRBOT"},
        "debug_info": {"host": "stand-in", "approximate_connection_time": 18060}});
    if sink
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    hub.lock().unwrap().connections.push(tx);
    loop {
        tokio::select! {
            outgoing = rx.recv() => match outgoing {
                Some(Some(frame)) => {
                    if sink.send(Message::Text(frame.into())).await.is_err() {
                        return;
                    }
                }
                // Dropped by the test: close without a goodbye, as a broken network does.
                _ => return,
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    if let Ok(ack) = serde_json::from_str::<Value>(&text) {
                        hub.lock().unwrap().acks.push(ack);
                    }
                }
                Some(Ok(Message::Ping(p))) => {
                    let _ = sink.send(Message::Pong(p)).await;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
