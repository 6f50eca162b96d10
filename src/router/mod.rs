//! The `/dr` command router: declarative definitions (`commands/*.toml`), a tokenizer, and
//! a parser that turns text into a typed [`ParsedCommand`] or a [`Refusal`].

pub mod action;
pub mod definition;
pub mod parse;
pub mod tokenize;

pub use action::{ActionKind, Effect, UnknownAction};
pub use definition::{Approval, CommandDef, CommandSet, DefinitionError, ValueKind};
pub use parse::{parse, ParsedCommand, Refusal, TimeSpec, Value};
