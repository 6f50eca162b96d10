//! People and places by name in exports: "Dana Smith (U0REQUEST)", "#ops (C0123OPS)". The
//! names come from the store (learned from Slack by `crate::workers::names`); an id without
//! one is shown as itself, never an error.

use std::collections::HashMap;

#[derive(Debug, Clone, Default)]
pub struct Names(HashMap<String, String>);

impl Names {
    pub fn new(map: HashMap<String, String>) -> Self {
        Names(map)
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Names(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    pub fn get(&self, id: &str) -> Option<&str> {
        self.0.get(id).map(String::as_str)
    }

    /// The name, or the id when none is known.
    pub fn name_or_id(&self, id: &str) -> String {
        self.get(id).unwrap_or(id).to_string()
    }

    /// "Dana Smith (U0REQUEST)", or the id alone.
    pub fn person(&self, id: &str) -> String {
        match self.get(id) {
            Some(name) => format!("{name} ({id})"),
            None => id.to_string(),
        }
    }

    /// "#ops (C0123OPS)", or the id alone.
    pub fn channel(&self, id: &str) -> String {
        match self.get(id) {
            Some(name) => format!("#{name} ({id})"),
            None => id.to_string(),
        }
    }
}

/// Slack ids in `text`: actors, channels and `<@U…>` / `<#C…>` mentions.
pub fn ids_in(text: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find('<') {
        let Some(len) = rest[start..].find('>') else {
            break;
        };
        let inner = &rest[start + 1..start + len];
        if let Some(id) = inner.strip_prefix('@').or_else(|| inner.strip_prefix('#')) {
            let id = id.split('|').next().unwrap_or(id);
            if is_slack_id(id) {
                ids.push(id.to_string());
            }
        }
        rest = &rest[start + len + 1..];
    }
    ids
}

/// A user (`U…`, `W…`) or conversation (`C…`, `G…`, `D…`) id.
pub fn is_slack_id(s: &str) -> bool {
    s.len() >= 5
        && s.len() <= 24
        && s.starts_with(['U', 'W', 'C', 'G', 'D'])
        && s.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

pub fn is_user(id: &str) -> bool {
    id.starts_with(['U', 'W'])
}
