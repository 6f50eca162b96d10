//! A browser driven through WebDriver: Debian's chromium under chromedriver (installed by
//! `scripts/ensure-chromium`), spoken to over HTTP with the W3C protocol.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::{Child, Command};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver and a headless chromium session.
    pub async fn start() -> Browser {
        let port = free_port();
        let driver = super::spawn_quietly(
            Command::new("chromedriver").arg(format!("--port={port}")),
            "chromedriver runs (scripts/test installs it with scripts/ensure-chromium)",
        );
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let answer: Value = http
            .post(format!("{base}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,900"]
                }
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = answer["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {answer}"))
            .to_string();
        Browser {
            driver,
            base,
            session,
            http,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut request = self.http.request(method.clone(), url);
        if method != reqwest::Method::GET {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    pub async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    /// The element matching `css`, waiting up to 15 s for it.
    pub async fn find(&self, css: &str) -> String {
        let mut last = Value::Null;
        for _ in 0..150 {
            let v = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            if let Some(id) = v[ELEMENT].as_str() {
                return id.to_string();
            }
            last = v;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no element {css} ({last}); page: {}", self.text().await);
    }

    pub async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            json!({"text": text}),
        )
        .await;
    }

    pub async fn run(&self, script: &str, args: Value) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        self.run("return document.body.innerText;", json!([]))
            .await
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Clicks `css` until the page shows `needle`, up to `secs`: a page that redraws the
    /// element between finding and clicking it (the console's channel list) loses a click.
    pub async fn click_until(&self, css: &str, needle: &str, secs: u64) {
        for _ in 0..secs * 2 {
            self.click(css).await;
            for _ in 0..5 {
                if self.text().await.contains(needle) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!(
            "clicking {css} never showed {needle:?}; the page shows:\n{}",
            self.text().await
        );
    }

    /// Waits up to `secs` until the page's text contains `needle`.
    pub async fn wait_for_text(&self, needle: &str, secs: u64) {
        for _ in 0..secs * 10 {
            if self.text().await.contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the page never showed {needle:?}; it shows:\n{}",
            self.text().await
        );
    }

    /// Saves a PNG screenshot to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64_png::decode;
        let data = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        let png = decode(data.as_str().unwrap_or(""));
        assert!(png.starts_with(b"\x89PNG"), "no screenshot: {data}");
        std::fs::write(path, png).unwrap();
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill().await;
    }
}

/// Standard base64 (the screenshot), without another crate.
mod base64_png {
    pub fn decode(s: &str) -> Vec<u8> {
        let value = |c: u8| -> Option<u32> {
            Some(match c {
                b'A'..=b'Z' => (c - b'A') as u32,
                b'a'..=b'z' => (c - b'a' + 26) as u32,
                b'0'..=b'9' => (c - b'0' + 52) as u32,
                b'+' => 62,
                b'/' => 63,
                _ => return None,
            })
        };
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let (mut acc, mut bits) = (0u32, 0);
        for v in s.bytes().filter_map(value) {
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        out
    }
}
