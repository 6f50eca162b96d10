//! `drbot audit verify` and the verification in `evidence export`: the chain recomputed,
//! then held against checkpoints — those recorded in the store, those drbot posted to
//! `[audit] checkpoint_channel` (read back from Slack, out of reach of whoever can write the
//! database) and those given with `--checkpoint`.

use crate::config::Settings;
use crate::slack::client::{build_client, SlackApi};
use crate::store::{audit_key, sign_checkpoint, Checkpoint, Store, VerifyReport};

/// How many pages (200 posts each) of the checkpoint channel are read back.
const SLACK_PAGES: usize = 25;

/// Checkpoints kept outside the database.
#[derive(Debug, Default)]
pub struct Outside {
    /// Given on the command line (`SEQ:HASH`): the user vouches for them.
    pub given: Vec<(i64, String)>,
    /// Posted by drbot in the checkpoint channel.
    pub slack: Vec<Checkpoint>,
    /// Why Slack's were not read, when they were not (said beside the result).
    pub slack_note: Option<String>,
}

/// Reads back the checkpoints drbot posted to `[audit] checkpoint_channel`, with the bot
/// token of the environment (`SLACK_BOT_TOKEN`, `DRBOT_SLACK_API_URL`).
pub async fn from_slack(settings: Option<&Settings>, outside: &mut Outside) {
    let Some(channel) = settings.and_then(|s| s.audit.checkpoint_channel.clone()) else {
        return;
    };
    let token = std::env::var("SLACK_BOT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        outside.slack_note = Some(format!(
            "SLACK_BOT_TOKEN is not set: the checkpoints posted in {channel} were not read"
        ));
        return;
    };
    let api_url = std::env::var("DRBOT_SLACK_API_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "https://slack.com/api".to_string())
        .trim_end_matches('/')
        .to_string();
    let read = async {
        let client = build_client(&api_url)?;
        let mut slack = SlackApi::new(client, &crate::config::Secret::new(token), &api_url);
        slack.authenticate().await?;
        slack.own_posts(&channel, SLACK_PAGES).await
    };
    match read.await {
        Ok(texts) => {
            let source = format!("posted in Slack {channel}");
            outside.slack = texts
                .iter()
                .filter_map(|t| Checkpoint::from_announcement(t, &source))
                .collect();
        }
        Err(e) => {
            outside.slack_note = Some(format!(
                "the checkpoints posted in {channel} could not be read from Slack: {e}"
            ))
        }
    }
}

/// Recomputes the chain and holds it against every checkpoint; the line to print when it
/// stands, the reason when it does not.
pub async fn verify(store: &Store, outside: &Outside) -> Result<String, String> {
    let count = match store.verify().await.map_err(|e| e.to_string())? {
        VerifyReport::Intact { count } => count,
        VerifyReport::Broken {
            seq,
            reason,
            checked,
        } => {
            return Err(format!(
                "audit chain broken at event {seq}: {reason} ({checked} events before it verified)"
            ))
        }
        VerifyReport::NotKeyed { count } => {
            return Err(format!(
                "audit chain not keyed: {}",
                crate::timeline::not_keyed(count)
            ))
        }
    };
    let keyed_from = store
        .keyed_from()
        .await
        .map_err(|e| e.to_string())?
        .map(|(seq, _)| seq);
    let recorded = store.checkpoints().await.map_err(|e| e.to_string())?;
    let given = outside.given.iter().map(|(seq, hash)| {
        let c = Checkpoint {
            seq: *seq,
            hash: hash.clone(),
            signature: None,
            at: String::new(),
            reason: String::new(),
        };
        (c, "given".to_string(), false)
    });
    let recorded = recorded.iter().map(|c| {
        let source = format!("recorded {} ({})", c.at, c.reason);
        (c.clone(), source, true)
    });
    let slack = outside
        .slack
        .iter()
        .map(|c| (c.clone(), c.at.clone(), true));
    let mut checked = 0;
    for (c, source, must_be_signed) in given.chain(recorded).chain(slack) {
        let (seq, hash) = (c.seq, &c.hash);
        // A checkpoint of a keyed chain is signed by drbot; one without a valid signature
        // was written or edited by someone without the key.
        if let (Some(key), Some(from)) = (audit_key(), keyed_from) {
            let signed = c.signature.as_deref() == Some(&sign_checkpoint(key, seq, hash));
            if must_be_signed && seq >= from && !signed {
                let what = if c.signature.is_none() {
                    "carries no signature"
                } else {
                    "carries a wrong signature"
                };
                return Err(format!(
                    "checkpoint {seq}:{hash} ({source}) {what}, though the chain is keyed from event {from}: the checkpoints were tampered with"
                ));
            }
        }
        match store.hash_of(seq).await.map_err(|e| e.to_string())? {
            None => {
                return Err(format!(
                    "the log is cut short: checkpoint {seq}:{hash} ({source}) is past its last event ({count} events); events after it were removed"
                ))
            }
            Some(found) if found != *hash => {
                return Err(format!(
                    "event {seq} does not match checkpoint {seq}:{hash} ({source}): the log was rewritten"
                ))
            }
            Some(_) => checked += 1,
        }
    }
    let mut line = if checked == 0 {
        format!("audit chain intact: {count} events verified")
    } else {
        format!("audit chain intact: {count} events verified; {checked} checkpoint(s) match")
    };
    if !outside.slack.is_empty() {
        line.push_str(&format!(
            " ({} of them posted in Slack)",
            outside.slack.len()
        ));
    }
    if let Some(note) = &outside.slack_note {
        line.push_str(&format!("\nnote: {note}"));
    }
    Ok(line)
}
