//! The sandbox's Slack: a small workspace that answers the Web API methods drbot calls the
//! way Slack does (JSON, `ok`, `ts`), and keeps what they do — channels, messages, threads,
//! reactions, pins, buttons, files, ephemeral answers — for the console to show. Only the
//! sandbox uses it; `serve` talks to Slack.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::{json, Value};

/// The sandbox's people: (user id, name, role shown in the console).
pub const PEOPLE: &[(&str, &str, &str)] = &[
    ("U0ONCALL1", "Dana Smith", "on-call engineer"),
    ("U0SECOFF1", "Sam Okafor", "security officer 1"),
    ("U0SECOFF2", "Lee Chen", "security officer 2"),
    ("U0OUTSIDE", "Alex Outsider", "an outsider (not an officer)"),
];
pub const BOT_USER: &str = "UDRBOT0001";
pub const OPS: &str = "C0123OPS";
pub const TEAM: &str = "T0SANDBOX";
pub const APP: &str = "A0SANDBOX";

#[derive(Debug, Clone, Serialize)]
pub struct Channel {
    pub id: String,
    pub name: String,
    /// `channel` or `dm`.
    pub kind: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Message {
    pub channel: String,
    pub ts: String,
    pub thread_ts: Option<String>,
    pub user: String,
    pub text: String,
    pub blocks: Option<Value>,
    /// Reaction name → who reacted.
    pub reactions: BTreeMap<String, Vec<String>>,
    pub pinned: bool,
    /// Shown only to this user.
    pub only_for: Option<String>,
    pub edited: bool,
    pub file: Option<FileShared>,
    #[serde(skip)]
    pub metadata: Option<Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileShared {
    pub id: String,
    pub title: String,
    pub name: String,
}

#[derive(Default)]
struct State {
    channels: Vec<Channel>,
    messages: Vec<Message>,
    /// Uploaded file contents by id (name, bytes).
    files: BTreeMap<String, (String, Vec<u8>)>,
    /// Each user's App Home view, as drbot last published it.
    homes: BTreeMap<String, Value>,
    next: u64,
}

/// The workspace, shared by the Web API handler and the console.
#[derive(Clone, Default)]
pub struct Workspace {
    state: Arc<Mutex<State>>,
}

impl Workspace {
    pub fn new() -> Self {
        let ws = Workspace::default();
        ws.state.lock().unwrap().channels.push(Channel {
            id: OPS.to_string(),
            name: "ops".to_string(),
            kind: "channel",
        });
        ws
    }

    fn ts(state: &mut State) -> String {
        state.next += 1;
        let now = chrono::Utc::now().timestamp();
        format!("{now}.{:06}", state.next)
    }

    pub fn channels(&self) -> Vec<Channel> {
        self.state.lock().unwrap().channels.clone()
    }

    /// Every message `viewer` may see (ephemeral ones only their own).
    pub fn messages(&self, viewer: &str) -> Vec<Message> {
        self.state
            .lock()
            .unwrap()
            .messages
            .iter()
            .filter(|m| m.only_for.as_deref().is_none_or(|u| u == viewer))
            .cloned()
            .collect()
    }

    /// `user`'s App Home, as drbot last published it.
    pub fn home(&self, user: &str) -> Option<Value> {
        self.state.lock().unwrap().homes.get(user).cloned()
    }

    pub fn file(&self, id: &str) -> Option<(String, Vec<u8>)> {
        self.state.lock().unwrap().files.get(id).cloned()
    }

    /// A message a person posts or drbot's answer to them (console side).
    pub fn post_as(&self, channel: &str, user: &str, text: &str, only_for: Option<&str>) -> String {
        let mut state = self.state.lock().unwrap();
        let ts = Self::ts(&mut state);
        state.messages.push(Message {
            channel: channel.to_string(),
            ts: ts.clone(),
            thread_ts: None,
            user: user.to_string(),
            text: text.to_string(),
            blocks: None,
            reactions: BTreeMap::new(),
            pinned: false,
            only_for: only_for.map(str::to_string),
            edited: false,
            file: None,
            metadata: None,
        });
        ts
    }

    /// Adds or removes `user`'s reaction; `false` when nothing changed.
    pub fn react(&self, channel: &str, ts: &str, name: &str, user: &str, add: bool) -> bool {
        let mut state = self.state.lock().unwrap();
        let Some(m) = state
            .messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts)
        else {
            return false;
        };
        let who = m.reactions.entry(name.to_string()).or_default();
        let had = who.iter().any(|u| u == user);
        if add && !had {
            who.push(user.to_string());
        } else if !add && had {
            who.retain(|u| u != user);
        } else {
            return false;
        }
        m.reactions.retain(|_, users| !users.is_empty());
        true
    }

    pub fn store_upload(&self, id: &str, bytes: Vec<u8>) {
        let mut state = self.state.lock().unwrap();
        if let Some(entry) = state.files.get_mut(id) {
            entry.1 = bytes;
        }
    }

    /// Answers one Web API call as Slack would.
    pub fn call(&self, method: &str, params: &Value, upload_base: &str) -> Value {
        let mut state = self.state.lock().unwrap();
        let text = |k: &str| {
            params
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let channel = text("channel");
        match method {
            "auth.test" => {
                json!({"ok": true, "url": "https://sandbox.slack.local/", "team": "drbot sandbox", "user": "drbot", "team_id": TEAM, "user_id": BOT_USER, "bot_id": "B0DRBOT"})
            }
            "bots.info" => {
                json!({"ok": true, "bot": {"id": "B0DRBOT", "deleted": false, "name": "drbot", "updated": 0, "app_id": APP, "user_id": BOT_USER}})
            }
            "chat.postMessage" | "chat.postEphemeral" => {
                let ts = Self::ts(&mut state);
                let blocks = params.get("blocks").cloned().map(|b| match b {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
                    other => other,
                });
                let metadata = params.get("metadata").cloned().map(|m| match m {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(Value::Null),
                    other => other,
                });
                let thread = params
                    .get("thread_ts")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let only_for = (method == "chat.postEphemeral").then(|| text("user"));
                state.messages.push(Message {
                    channel: channel.clone(),
                    ts: ts.clone(),
                    thread_ts: thread,
                    user: BOT_USER.to_string(),
                    text: text("text"),
                    blocks,
                    reactions: BTreeMap::new(),
                    pinned: false,
                    only_for,
                    edited: false,
                    file: None,
                    metadata,
                });
                if method == "chat.postEphemeral" {
                    json!({"ok": true, "message_ts": ts})
                } else {
                    json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": text("text"), "user": BOT_USER, "ts": ts}})
                }
            }
            "chat.update" => {
                let ts = text("ts");
                match state
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && m.ts == ts)
                {
                    Some(m) => {
                        m.text = text("text");
                        if let Some(b) = params.get("blocks") {
                            m.blocks = Some(match b {
                                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                                other => other.clone(),
                            });
                        }
                        m.edited = true;
                        // As Slack answers: the updated message, as drbot's bot sent it.
                        json!({"ok": true, "channel": channel, "ts": ts, "text": m.text,
                            "message": {"type": "message", "text": m.text, "user": BOT_USER,
                                "bot_id": "B0DRBOT", "edited": {"user": BOT_USER, "ts": ts}}})
                    }
                    None => json!({"ok": false, "error": "message_not_found"}),
                }
            }
            "reactions.add" => {
                let ts = text("timestamp");
                let name = text("name");
                match state
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && m.ts == ts)
                {
                    Some(m) => {
                        let who = m.reactions.entry(name).or_default();
                        if who.iter().any(|u| u == BOT_USER) {
                            json!({"ok": false, "error": "already_reacted"})
                        } else {
                            who.push(BOT_USER.to_string());
                            json!({"ok": true})
                        }
                    }
                    None => json!({"ok": false, "error": "message_not_found"}),
                }
            }
            "pins.add" => {
                let ts = text("timestamp");
                if let Some(m) = state
                    .messages
                    .iter_mut()
                    .find(|m| m.channel == channel && m.ts == ts)
                {
                    m.pinned = true;
                }
                json!({"ok": true})
            }
            "conversations.create" => {
                let name = text("name");
                if state.channels.iter().any(|c| c.name == name) {
                    return json!({"ok": false, "error": "name_taken"});
                }
                state.next += 1;
                let id = format!("CINC{:06}", state.next);
                state.channels.push(Channel {
                    id: id.clone(),
                    name: name.clone(),
                    kind: "channel",
                });
                json!({"ok": true, "channel": {"id": id, "name": name, "is_channel": true, "created": 0}})
            }
            "conversations.invite" | "conversations.setTopic" => {
                json!({"ok": true, "channel": {"id": channel, "created": 0, "is_channel": true}})
            }
            "conversations.info" => match state.channels.iter().find(|c| c.id == channel) {
                Some(c) => {
                    json!({"ok": true, "channel": {"id": c.id, "name": c.name, "is_channel": c.kind == "channel", "created": 0}})
                }
                None => json!({"ok": false, "error": "channel_not_found"}),
            },
            "conversations.open" => {
                let user = text("users");
                let id = format!("D{user}");
                if !state.channels.iter().any(|c| c.id == id) {
                    let name = PEOPLE
                        .iter()
                        .find(|(u, _, _)| *u == user)
                        .map(|(_, n, _)| format!("drbot ↔ {n}"))
                        .unwrap_or_else(|| format!("drbot ↔ {user}"));
                    state.channels.push(Channel {
                        id: id.clone(),
                        name,
                        kind: "dm",
                    });
                }
                json!({"ok": true, "channel": {"id": id}})
            }
            "conversations.history" | "conversations.replies" => {
                let thread = params.get("ts").and_then(Value::as_str);
                let messages: Vec<Value> = state
                    .messages
                    .iter()
                    .rev()
                    .filter(|m| m.channel == channel && m.only_for.is_none() && m.user == BOT_USER)
                    .filter(|m| match thread {
                        None => m.thread_ts.is_none(),
                        Some(t) => m.thread_ts.as_deref() == Some(t),
                    })
                    .map(|m| {
                        let mut v = json!({"type": "message", "user": BOT_USER, "text": m.text, "ts": m.ts});
                        if let Some(meta) = &m.metadata {
                            v["metadata"] = meta.clone();
                        }
                        v
                    })
                    .collect();
                json!({"ok": true, "messages": messages, "has_more": false})
            }
            "users.info" => {
                let user = text("user");
                match PEOPLE.iter().find(|(u, _, _)| *u == user) {
                    Some((id, name, _)) => {
                        json!({"ok": true, "user": {"id": id, "team_id": TEAM, "name": name.to_lowercase().replace(' ', "."), "real_name": name, "profile": {"display_name": name, "real_name": name}}})
                    }
                    None => json!({"ok": false, "error": "user_not_found"}),
                }
            }
            "files.getUploadURLExternal" => {
                state.next += 1;
                let id = format!("F{:09}", state.next);
                state
                    .files
                    .insert(id.clone(), (text("filename"), Vec::new()));
                json!({"ok": true, "file_id": id, "upload_url": format!("{upload_base}/{id}")})
            }
            "files.completeUploadExternal" => {
                let files = params.get("files").cloned().unwrap_or(json!([]));
                let files = match files {
                    Value::String(s) => serde_json::from_str(&s).unwrap_or(json!([])),
                    other => other,
                };
                let channel = params
                    .get("channel_id")
                    .and_then(Value::as_str)
                    .unwrap_or(OPS)
                    .to_string();
                for f in files.as_array().cloned().unwrap_or_default() {
                    let id = f["id"].as_str().unwrap_or("").to_string();
                    let name = state
                        .files
                        .get(&id)
                        .map(|(n, _)| n.clone())
                        .unwrap_or_default();
                    let ts = Self::ts(&mut state);
                    state.messages.push(Message {
                        channel: channel.clone(),
                        ts,
                        thread_ts: None,
                        user: BOT_USER.to_string(),
                        text: text("initial_comment"),
                        blocks: None,
                        reactions: BTreeMap::new(),
                        pinned: false,
                        only_for: None,
                        edited: false,
                        file: Some(FileShared {
                            id,
                            title: f["title"].as_str().unwrap_or("").to_string(),
                            name,
                        }),
                        metadata: None,
                    });
                }
                json!({"ok": true, "files": files})
            }
            "conversations.list" => {
                let channels: Vec<Value> = state
                    .channels
                    .iter()
                    .filter(|c| c.kind == "channel")
                    .map(|c| json!({"id": c.id, "name": c.name, "is_channel": true, "created": 0, "creator": BOT_USER}))
                    .collect();
                json!({"ok": true, "channels": channels, "response_metadata": {"next_cursor": ""}})
            }
            "views.publish" => {
                let view = match params.get("view") {
                    Some(Value::String(s)) => serde_json::from_str(s).unwrap_or(Value::Null),
                    Some(v) => v.clone(),
                    None => Value::Null,
                };
                let user = text("user_id");
                if view.get("type").and_then(Value::as_str) != Some("home") || user.is_empty() {
                    return json!({"ok": false, "error": "invalid_arguments"});
                }
                state.next += 1;
                let mut stored = view.clone();
                stored["id"] = json!(format!("V{:09}", state.next));
                stored["team_id"] = json!(TEAM);
                stored["hash"] = json!(format!("{}.home", state.next));
                state.homes.insert(user, view);
                json!({"ok": true, "view": stored})
            }
            _ => json!({"ok": false, "error": "unknown_method"}),
        }
    }
}
