//! `/dr help [command]`: the command list, or one command's usage.
//!
//! AWS calls: none. IAM: none. Approval: none. Read-only.

use crate::router::{Approval, CommandDef, CommandSet, Invalid, ParsedCommand};

/// Renders the reply for a parsed `help` command (Slack mrkdwn).
pub fn reply(cmd: &ParsedCommand, set: &CommandSet) -> Result<String, Invalid> {
    match cmd.text("command") {
        None => Ok(set.listing(list).to_string()),
        Some(topic) => {
            let topic = topic.to_lowercase();
            if let Some(def) = set.get(&topic) {
                return Ok(one(def));
            }
            let group = set.group(&topic);
            if !group.is_empty() {
                return Ok(group
                    .iter()
                    .map(|d| one(d))
                    .collect::<Vec<_>>()
                    .join("\n\n"));
            }
            Err(Invalid(format!(
                "there is no command `{topic}`; `/dr help` lists them all"
            )))
        }
    }
}

fn list(set: &CommandSet) -> String {
    let mut out = String::from("*drbot — disaster-recovery commands*\n");
    for def in set.all() {
        let raised = def
            .flags
            .iter()
            .find(|f| f.approval == Some(Approval::Officer));
        let gate = match (def.approval, raised) {
            (Approval::Officer, _) => "  _(needs officer approval)_".to_string(),
            (Approval::None, Some(flag)) => {
                format!("  _(`--{}` needs officer approval)_", flag.name)
            }
            (Approval::None, None) => String::new(),
        };
        out.push_str(&format!(
            "• `/dr {}` — {}{}\n",
            def.usage, def.summary, gate
        ));
    }
    out.push_str("\n`/dr help <command>` shows one command in detail.");
    out
}

fn one(def: &CommandDef) -> String {
    let mut out = format!("*`/dr {}`*\n{}\n", def.usage, def.summary);
    if !def.help.trim().is_empty() {
        out.push_str(&format!("\n{}\n", def.help.trim()));
    }
    if !def.args.is_empty() {
        out.push_str("\n*Arguments*\n");
        for arg in &def.args {
            let opt = if arg.required { "" } else { " (optional)" };
            let many = if arg.repeat { " (one or more)" } else { "" };
            out.push_str(&format!(
                "• `<{}>`{}{} — {}{}\n",
                arg.name,
                opt,
                many,
                arg.kind.describe(),
                if arg.help.is_empty() {
                    String::new()
                } else {
                    format!(": {}", arg.help)
                }
            ));
        }
    }
    if !def.flags.is_empty() {
        out.push_str("\n*Flags*\n");
        for flag in &def.flags {
            let value = if flag.kind == crate::router::ValueKind::Switch {
                String::new()
            } else if flag.value_name.is_empty() {
                flag.kind.describe().to_string()
            } else {
                format!("<{}>", flag.value_name)
            };
            out.push_str(&format!(
                "• `--{}{}` — {}\n",
                flag.name,
                if value.is_empty() {
                    String::new()
                } else {
                    format!(" {value}")
                },
                if flag.help.is_empty() {
                    flag.kind.describe()
                } else {
                    &flag.help
                }
            ));
            if flag.approval == Some(Approval::Officer) {
                out.push_str("  _(needs a security officer's approval)_\n");
            }
        }
    }
    out.push_str(&format!(
        "\n*Approval:* {}\n",
        match def.approval {
            Approval::Officer =>
                "a security officer must approve with a reaction before anything changes",
            Approval::None => match def
                .flags
                .iter()
                .find(|f| f.approval == Some(Approval::Officer))
            {
                Some(_) => "none; the flags marked so need a security officer's approval",
                None => "none",
            },
        }
    ));
    if !def.aliases.is_empty() {
        out.push_str(&format!(
            "*Aliases:* {}\n",
            crate::slack::text::codes(&def.aliases)
        ));
    }
    if !def.allowed_users.is_empty() {
        out.push_str(&format!(
            "*Who may run it:* {}\n",
            crate::slack::text::mentions(&def.allowed_users)
        ));
    }
    if !def.examples.is_empty() {
        out.push_str("*Examples*\n");
        for ex in &def.examples {
            out.push_str(&format!("• `{ex}`\n"));
        }
    }
    out.trim_end().to_string()
}
