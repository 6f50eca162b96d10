//! The `/dr` command router: declarative definitions (`commands/*.toml`), a tokenizer, and
//! a parser that turns text into a typed [`ParsedCommand`] or a [`Refusal`].

pub mod action;
pub mod definition;
pub mod parse;
pub mod tokenize;

/// Why a command cannot be done as typed: said to the user with the command's usage, and
/// nothing reaches AWS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl From<String> for Invalid {
    fn from(why: String) -> Self {
        Invalid(why)
    }
}

impl From<crate::config::NotConfigured> for Invalid {
    fn from(why: crate::config::NotConfigured) -> Self {
        Invalid(why.0)
    }
}

impl From<&str> for Invalid {
    fn from(why: &str) -> Self {
        Invalid(why.to_string())
    }
}

pub use action::{ActionKind, Effect, UnknownAction};
pub use definition::{Approval, CommandDef, CommandSet, DefinitionError, ValueKind};
pub use parse::{parse, ParsedCommand, Refusal, TimeSpec, Value};
