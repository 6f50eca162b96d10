//! Turns `/dr` text into a [`ParsedCommand`]: the command found by name or alias, each
//! argument and flag checked against its declared type. Anything wrong is a [`Refusal`]
//! that says what and shows the usage.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

use super::definition::{Approval, CommandDef, CommandSet, ValueKind};
use super::tokenize::tokenize;
use super::Invalid;
use crate::config::Settings;
use crate::duration::HumanDuration;

/// A value that passed its type check.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Word(String),
    Integer(u64),
    Duration(HumanDuration),
    Address(IpNet),
    Time(TimeSpec),
    ActionId(u64),
    /// A switch flag that was given.
    Switch,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSpec {
    Latest,
    At(DateTime<Utc>),
}

impl Value {
    pub fn as_word(&self) -> Option<&str> {
        match self {
            Value::Word(w) => Some(w),
            _ => None,
        }
    }
}

/// A command ready for its action.
#[derive(Debug, Clone)]
pub struct ParsedCommand {
    pub def: Arc<CommandDef>,
    /// Each argument's values (several for a repeated argument; the words of a text one).
    pub args: BTreeMap<String, Vec<Value>>,
    pub flags: BTreeMap<String, Value>,
}

impl ParsedCommand {
    /// The approval in force: the command's, raised by any flag given that names one.
    pub fn approval(&self) -> Approval {
        let raised = self
            .def
            .flags
            .iter()
            .any(|f| f.approval == Some(Approval::Officer) && self.flags.contains_key(&f.name));
        if raised {
            Approval::Officer
        } else {
            self.def.approval
        }
    }

    pub fn arg(&self, name: &str) -> Option<&Value> {
        self.args.get(name).and_then(|v| v.first())
    }

    pub fn arg_all(&self, name: &str) -> &[Value] {
        self.args.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// A text argument joined back with single spaces.
    pub fn text(&self, name: &str) -> Option<String> {
        let words: Vec<&str> = self
            .arg_all(name)
            .iter()
            .filter_map(Value::as_word)
            .collect();
        (!words.is_empty()).then(|| words.join(" "))
    }

    pub fn flag(&self, name: &str) -> Option<&Value> {
        self.flags.get(name)
    }

    /// Argument `name`, when it is a word.
    pub fn arg_word(&self, name: &str) -> Option<&str> {
        self.arg(name).and_then(Value::as_word)
    }

    /// Flag `--name`'s value, when it is a word.
    pub fn flag_word(&self, name: &str) -> Option<&str> {
        self.flag(name).and_then(Value::as_word)
    }
}

/// Why a command was not accepted; shown to the user with the usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
    /// The usage of the command concerned, when one was recognised.
    pub usage: Option<String>,
    pub command: Option<String>,
}

impl Refusal {
    fn new(reason: impl Into<String>, def: Option<&CommandDef>) -> Self {
        Self {
            reason: reason.into(),
            usage: def.map(|d| d.usage.clone()),
            command: def.map(|d| d.name.clone()),
        }
    }
}

/// Finds the command that `words` start with: a two-word name first, then one word.
fn find<'a>(set: &'a CommandSet, words: &[String]) -> Option<(&'a Arc<CommandDef>, usize)> {
    if words.len() >= 2 {
        let two = format!("{} {}", words[0], words[1]);
        if let Some(def) = set.get(&two) {
            return Some((def, 2));
        }
    }
    words.first().and_then(|w| set.get(w)).map(|def| (def, 1))
}

/// Parses the text after `/dr`.
pub fn parse(text: &str, set: &CommandSet, settings: &Settings) -> Result<ParsedCommand, Refusal> {
    let words = tokenize(text).map_err(|e| Refusal::new(e.to_string(), None))?;
    if words.is_empty() {
        let help = set.get("help").cloned();
        return Ok(ParsedCommand {
            def: help.ok_or_else(|| Refusal::new("no help command is defined", None))?,
            args: BTreeMap::new(),
            flags: BTreeMap::new(),
        });
    }
    let lowered: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let Some((def, used)) = find(set, &lowered) else {
        let group = set.group(&lowered[0]);
        let reason = if group.is_empty() {
            format!(
                "`{}` is not a /dr command. Try `/dr help` for the list.",
                words[0]
            )
        } else {
            let subs: Vec<String> = group.iter().map(|d| format!("`{}`", d.name)).collect();
            match words.get(1) {
                Some(sub) => format!(
                    "`{} {}` is not a /dr command; did you mean one of {}?",
                    words[0],
                    sub,
                    subs.join(", ")
                ),
                None => format!("`{}` needs a subcommand: {}", words[0], subs.join(", ")),
            }
        };
        return Err(Refusal::new(reason, None));
    };
    let def = def.clone();
    let rest = &words[used..];

    let mut positionals: Vec<&str> = Vec::new();
    let mut flags = BTreeMap::new();
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        // Commands without flags take `--` words literally (free text like an update).
        if word.starts_with("--") && word.len() > 2 && !def.flags.is_empty() {
            let (name, inline) = match word[2..].split_once('=') {
                Some((n, v)) => (n.to_string(), Some(v.to_string())),
                None => (word[2..].to_string(), None),
            };
            let Some(flag) = def.flags.iter().find(|f| f.name == name) else {
                let known: Vec<String> =
                    def.flags.iter().map(|f| format!("--{}", f.name)).collect();
                return Err(Refusal::new(
                    format!(
                        "`/dr {}` has no flag `--{}`; its flags are {}",
                        def.name,
                        name,
                        known.join(", ")
                    ),
                    Some(&def),
                ));
            };
            if flags.contains_key(&flag.name) {
                return Err(Refusal::new(
                    format!("`--{}` is given twice", flag.name),
                    Some(&def),
                ));
            }
            if flag.kind == ValueKind::Switch {
                if inline.is_some() {
                    return Err(Refusal::new(
                        format!("`--{}` takes no value", flag.name),
                        Some(&def),
                    ));
                }
                flags.insert(flag.name.clone(), Value::Switch);
                i += 1;
                continue;
            }
            let raw = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    rest.get(i).cloned().ok_or_else(|| {
                        Refusal::new(
                            format!("`--{}` needs a value: {}", flag.name, flag.kind.describe()),
                            Some(&def),
                        )
                    })?
                }
            };
            let value = check(flag.kind, &raw, settings)
                .map_err(|why| Refusal::new(format!("`--{}`: {why}", flag.name), Some(&def)))?;
            flags.insert(flag.name.clone(), value);
        } else if word.starts_with("--")
            && word.len() > 2
            && def.args.iter().all(|a| a.kind != ValueKind::Text)
        {
            return Err(Refusal::new(
                format!(
                    "`/dr {}` takes no flags, but `{}` was given",
                    def.name, word
                ),
                Some(&def),
            ));
        } else {
            positionals.push(word);
        }
        i += 1;
    }

    let mut args = BTreeMap::new();
    let mut next = 0;
    for arg in &def.args {
        let takes_rest = arg.repeat || arg.kind == ValueKind::Text;
        let taken: Vec<&str> = if takes_rest {
            positionals[next.min(positionals.len())..].to_vec()
        } else {
            positionals.get(next).map(|w| vec![*w]).unwrap_or_default()
        };
        if taken.is_empty() {
            if arg.required {
                return Err(Refusal::new(
                    format!("missing <{}>: {}", arg.name, arg.kind.describe()),
                    Some(&def),
                ));
            }
            continue;
        }
        next += taken.len();
        // Text is the rest of the line: its words together are one value.
        let chars = taken.iter().map(|w| w.chars().count() + 1).sum::<usize>();
        if arg.kind == ValueKind::Text && chars > MAX_TEXT_CHARS + 1 {
            return Err(Refusal::new(
                format!("<{}>: {}", arg.name, too_long(chars - 1).0),
                Some(&def),
            ));
        }
        let values = taken
            .iter()
            .map(|raw| {
                check(arg.kind, raw, settings)
                    .map_err(|why| Refusal::new(format!("<{}>: {why}", arg.name), Some(&def)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        args.insert(arg.name.clone(), values);
    }
    if let Some(extra) = positionals.get(next) {
        return Err(Refusal::new(
            format!("unexpected argument `{extra}`"),
            Some(&def),
        ));
    }
    Ok(ParsedCommand { def, args, flags })
}

/// The longest free text drbot takes in one value (a reason, a title, an update, a word):
/// what an officer reads beside the plan stays short enough never to crowd it out.
pub const MAX_TEXT_CHARS: usize = 300;

fn too_long(chars: usize) -> Invalid {
    Invalid(format!(
        "{chars} characters is too long: at most {MAX_TEXT_CHARS} (say the rest in the incident channel or with `/dr incident update`)"
    ))
}

/// Checks one raw value against its declared type.
fn check(kind: ValueKind, raw: &str, settings: &Settings) -> Result<Value, Invalid> {
    let word = || Value::Word(raw.to_string());
    match kind {
        ValueKind::Word | ValueKind::Text | ValueKind::Command
            if raw.chars().count() > MAX_TEXT_CHARS =>
        {
            Err(too_long(raw.chars().count()))
        }
        ValueKind::Word | ValueKind::Text | ValueKind::Command => Ok(word()),
        // Only as a flag, where no value is read.
        ValueKind::Switch => Ok(Value::Switch),
        ValueKind::Integer => raw
            .parse::<u64>()
            .map(Value::Integer)
            .map_err(|_| Invalid(format!("`{raw}` is not a whole number"))),
        ValueKind::Duration => raw
            .parse::<HumanDuration>()
            .map(Value::Duration)
            .map_err(|e| Invalid(e.to_string())),
        ValueKind::Service => {
            if settings.service(raw).is_some() {
                Ok(word())
            } else {
                Err(Invalid(unknown("service", raw, settings.ecs.services.iter().map(|s| s.name.as_str()))))
            }
        }
        ValueKind::Database => {
            if settings.database(raw).is_some() {
                Ok(word())
            } else {
                Err(Invalid(unknown("database", raw, settings.rds.databases.iter().map(|d| d.name.as_str()))))
            }
        }
        ValueKind::Address => raw
            .parse::<IpNet>()
            .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
            .map(Value::Address)
            .map_err(|_| Invalid(format!("`{raw}` is not an IPv4/IPv6 address or CIDR (like 203.0.113.7 or 203.0.113.0/24)"))),
        ValueKind::Time => {
            if raw.eq_ignore_ascii_case("latest") {
                Ok(Value::Time(TimeSpec::Latest))
            } else {
                DateTime::parse_from_rfc3339(raw)
                    .map(|t| Value::Time(TimeSpec::At(t.with_timezone(&Utc))))
                    .map_err(|_| Invalid(format!("`{raw}` is not an RFC 3339 time like 2026-11-27T05:00:00Z, nor `latest`")))
            }
        }
        ValueKind::ActionId => raw
            .strip_prefix("A-")
            .or_else(|| raw.strip_prefix("a-"))
            .and_then(|n| n.parse::<u64>().ok())
            .map(Value::ActionId)
            .ok_or_else(|| Invalid(format!("`{raw}` is not an action id like A-12"))),
    }
}

fn unknown<'a>(what: &str, raw: &str, known: impl Iterator<Item = &'a str>) -> String {
    let known: Vec<String> = known.map(|k| format!("`{k}`")).collect();
    if known.is_empty() {
        format!("unknown {what} `{raw}`: no {what}s are configured in drbot.toml")
    } else {
        format!("unknown {what} `{raw}`; configured: {}", known.join(", "))
    }
}
