//! The declarative definition of a `/dr` subcommand, one TOML file per command in
//! `commands/` (embedded at build time, replaceable with `--commands DIR`).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use include_dir::{include_dir, Dir};
use serde::Deserialize;

use super::ActionKind;

pub(crate) static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/commands");

/// One `commands/<name>.toml` file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandDef {
    /// What the user types after `/dr`; one or two words (`incident open`).
    pub name: String,
    /// Which Rust action runs it.
    pub action: ActionKind,
    /// One line for the command list.
    pub summary: String,
    /// The synopsis without `/dr`, e.g. `rollback <service> [--to <revision>]`.
    pub usage: String,
    /// Longer help shown by `/dr help <command>`.
    #[serde(default)]
    pub help: String,
    /// `none` or `officer`, as the file says it; see [`CommandDef::approval`].
    #[serde(default, rename = "approval")]
    pub declared_approval: Option<Approval>,
    /// The policy in force: the declared one, or `officer` for a command that changes AWS
    /// and names none (SPEC §7.7: never `none` by omission).
    #[serde(skip)]
    pub approval: Approval,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Slack user IDs allowed to run it; empty means anyone.
    #[serde(default)]
    pub allowed_users: Vec<String>,
    /// Channel IDs where it may run; empty means `slack.command_channels`.
    #[serde(default)]
    pub allowed_channels: Vec<String>,
    #[serde(default)]
    pub args: Vec<ArgDef>,
    #[serde(default)]
    pub flags: Vec<FlagDef>,
    /// Example invocations shown in help.
    #[serde(default)]
    pub examples: Vec<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Approval {
    #[default]
    None,
    Officer,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Approval::None => "none",
            Approval::Officer => "officer",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueKind,
    #[serde(default = "yes")]
    pub required: bool,
    /// Takes one or more words (only the last argument).
    #[serde(default)]
    pub repeat: bool,
    #[serde(default)]
    pub help: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// The placeholder in usage, e.g. `revision`.
    #[serde(default)]
    pub value_name: String,
    #[serde(default)]
    pub help: String,
    /// A flag that makes the command change AWS may raise its approval (`backups
    /// --enforce` needs an officer; `backups` alone does not).
    #[serde(default)]
    pub approval: Option<Approval>,
}

fn yes() -> bool {
    true
}

/// The type of an argument or flag value; the router checks it before any action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    /// One word, any text.
    Word,
    /// The rest of the line (only as the last argument).
    Text,
    /// A whole number >= 0.
    Integer,
    /// `30s`, `15m`, `2h`, `7d`.
    Duration,
    /// A configured `[[ecs.services]]` name.
    Service,
    /// A configured `[[rds.databases]]` name.
    Database,
    /// An IPv4/IPv6 address or CIDR.
    Address,
    /// An RFC 3339 time or `latest`.
    Time,
    /// An approval request id, `A-<n>`.
    ActionId,
    /// A command name (for `help`).
    Command,
    /// A flag that takes no value: present or not (`--drill`).
    Switch,
}

impl ValueKind {
    pub fn describe(self) -> &'static str {
        match self {
            ValueKind::Word => "a word",
            ValueKind::Text => "text",
            ValueKind::Integer => "a whole number",
            ValueKind::Duration => "a duration like 30s, 15m, 2h or 7d",
            ValueKind::Service => "a configured service name",
            ValueKind::Database => "a configured database name",
            ValueKind::Address => "an IP address or CIDR",
            ValueKind::Time => "an RFC 3339 time (2026-11-27T05:00:00Z) or `latest`",
            ValueKind::ActionId => "an action id like A-12",
            ValueKind::Command => "a command name",
            ValueKind::Switch => "nothing (a switch)",
        }
    }
}

/// A problem in a command file, naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct DefinitionError {
    pub file: String,
    pub message: String,
}

/// Every command, looked up by name or alias.
#[derive(Debug, Clone)]
pub struct CommandSet {
    commands: Vec<Arc<CommandDef>>,
    by_word: HashMap<String, Arc<CommandDef>>,
    /// Where the set came from, for messages.
    pub source: String,
    /// What an operator should know about the files (defaults applied), for `check-config`.
    pub notes: Vec<String>,
    /// The rendered command list (`/dr help`), made once: the set never changes once loaded.
    listing: std::sync::OnceLock<String>,
}

impl CommandSet {
    /// The set compiled into the binary.
    pub fn embedded() -> Result<Self, DefinitionError> {
        let files = EMBEDDED
            .files()
            .filter(|f| f.path().extension().is_some_and(|e| e == "toml"))
            .map(|f| {
                let name = format!("commands/{}", f.path().display());
                let text = f.contents_utf8().ok_or_else(|| DefinitionError {
                    file: name.clone(),
                    message: "is not UTF-8".to_string(),
                })?;
                Ok((name, text.to_string()))
            })
            .collect::<Result<Vec<_>, DefinitionError>>()?;
        Self::from_files(files, "embedded commands/")
    }

    /// The `*.toml` files directly inside `dir` (sub-directories such as `scenarios/` are
    /// not commands). The directory replaces the embedded set entirely.
    pub fn from_dir(dir: &Path) -> Result<Self, DefinitionError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| DefinitionError {
            file: shown.clone(),
            message: format!("cannot read the commands directory: {e}"),
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| DefinitionError {
                    file: shown.clone(),
                    message: e.to_string(),
                })?
                .path();
            if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path).map_err(|e| DefinitionError {
                    file: path.display().to_string(),
                    message: e.to_string(),
                })?;
                files.push((path.display().to_string(), text));
            }
        }
        Self::from_files(files, &shown)
    }

    /// Builds and validates a set from `(file name, text)` pairs.
    pub fn from_files(
        mut files: Vec<(String, String)>,
        source: &str,
    ) -> Result<Self, DefinitionError> {
        files.sort();
        if files.is_empty() {
            return Err(DefinitionError {
                file: source.to_string(),
                message: "holds no command files (*.toml)".to_string(),
            });
        }
        let mut commands = Vec::new();
        let mut notes = Vec::new();
        let mut by_word: HashMap<String, Arc<CommandDef>> = HashMap::new();
        let mut origin: BTreeMap<String, String> = BTreeMap::new();
        for (file, text) in files {
            let def: CommandDef = toml::from_str(&text).map_err(|e| DefinitionError {
                file: file.clone(),
                message: e.message().replace('\n', " ").trim().to_string(),
            })?;
            let mut def = def;
            def.validate().map_err(|message| DefinitionError {
                file: file.clone(),
                message,
            })?;
            let changes_aws = def.action.changes_aws();
            def.approval = match def.declared_approval {
                Some(approval) => approval,
                None if changes_aws => {
                    notes.push(format!("{file}: `{}` changes AWS and names no `approval`, so it needs an officer's approval (write approval = \"officer\" to say so, or \"none\" to run it without)", def.name));
                    Approval::Officer
                }
                None => Approval::None,
            };
            let def = Arc::new(def);
            for word in std::iter::once(&def.name).chain(&def.aliases) {
                if let Some(other) = origin.get(word) {
                    return Err(DefinitionError {
                        file: file.clone(),
                        message: format!("'{word}' is already used by {other}"),
                    });
                }
                origin.insert(word.clone(), file.clone());
                by_word.insert(word.clone(), def.clone());
            }
            commands.push(def);
        }
        commands.sort_by(|a, b| a.name.cmp(&b.name));
        if !by_word.contains_key("help") {
            return Err(DefinitionError {
                file: source.to_string(),
                message: "has no `help` command; users could not find their way".to_string(),
            });
        }
        Ok(Self {
            commands,
            by_word,
            source: source.to_string(),
            notes,
            listing: std::sync::OnceLock::new(),
        })
    }

    /// The command list as `render` makes it, rendered the first time only.
    pub fn listing(&self, render: impl FnOnce(&Self) -> String) -> &str {
        self.listing.get_or_init(|| render(self))
    }

    /// Every command, sorted by name.
    pub fn all(&self) -> &[Arc<CommandDef>] {
        &self.commands
    }

    /// A command by its name or an alias.
    /// The command a text starts with (`snapshot copy main …` → `snapshot copy`).
    pub fn resolve(&self, text: &str) -> Option<&Arc<CommandDef>> {
        let words: Vec<String> = text
            .split_whitespace()
            .take(2)
            .map(str::to_lowercase)
            .collect();
        if words.len() == 2 {
            if let Some(def) = self.get(&words.join(" ")) {
                return Some(def);
            }
        }
        words.first().and_then(|w| self.get(w))
    }

    pub fn get(&self, word: &str) -> Option<&Arc<CommandDef>> {
        self.by_word.get(word)
    }

    /// Commands whose first word is `group` (e.g. every `incident …`).
    pub fn group(&self, group: &str) -> Vec<&Arc<CommandDef>> {
        self.commands
            .iter()
            .filter(|c| c.name.split(' ').next() == Some(group) && c.name.contains(' '))
            .collect()
    }
}

impl CommandDef {
    fn validate(&self) -> Result<(), String> {
        let words: Vec<&str> = self.name.split(' ').collect();
        if words.is_empty() || words.len() > 2 || words.iter().any(|w| !is_word(w)) {
            return Err(format!(
                "name '{}' must be one or two lowercase words (letters, digits, hyphens)",
                self.name
            ));
        }
        for alias in &self.aliases {
            if alias.split(' ').count() > 2 || alias.split(' ').any(|w| !is_word(w) && w != "?") {
                return Err(format!(
                    "alias '{alias}' must be one or two lowercase words"
                ));
            }
        }
        if self.summary.trim().is_empty() || self.usage.trim().is_empty() {
            return Err("summary and usage must not be empty".to_string());
        }
        if !self.usage.starts_with(&self.name) {
            return Err(format!(
                "usage '{}' must start with the command name '{}'",
                self.usage, self.name
            ));
        }
        let mut seen_optional = false;
        for (i, arg) in self.args.iter().enumerate() {
            let last = i + 1 == self.args.len();
            if (arg.repeat || arg.kind == ValueKind::Text) && !last {
                return Err(format!(
                    "argument '{}' takes the rest of the line, so it must be the last one",
                    arg.name
                ));
            }
            if arg.required && seen_optional {
                return Err(format!(
                    "required argument '{}' follows an optional one",
                    arg.name
                ));
            }
            seen_optional |= !arg.required;
        }
        for flag in &self.flags {
            if !is_word(&flag.name) {
                return Err(format!(
                    "flag '{}' must be a lowercase word without dashes in front",
                    flag.name
                ));
            }
            if flag.kind == ValueKind::Text {
                return Err(format!("flag '--{}' cannot take the rest of the line; use type = \"word\" (users quote longer values)", flag.name));
            }
        }
        for user in &self.allowed_users {
            if !user.starts_with(['U', 'W']) {
                return Err(format!("allowed_users: '{user}' is not a Slack user ID"));
            }
        }
        for channel in &self.allowed_channels {
            if !channel.starts_with(['C', 'G']) {
                return Err(format!(
                    "allowed_channels: '{channel}' is not a Slack channel ID"
                ));
            }
        }
        Ok(())
    }
}

fn is_word(w: &str) -> bool {
    !w.is_empty()
        && w.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
