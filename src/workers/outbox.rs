//! The outbox worker (SPEC §10): sends the Slack messages queued in the store, in order per
//! lane (channel, DM, `response_url`), paced under Slack's per-channel limit, each call tried
//! once with its timeout and, when Slack asks or does not answer, tried again later from the
//! store's schedule: a 429 waits its `Retry-After`, a 5xx, a timeout or a broken connection
//! backs off with jitter. A message still not sent at its deadline is recorded as failed,
//! counted in `/metrics`, kept in the audit log and shown by `/dr status`.
//!
//! Nothing is sent twice: a row is claimed in the store before it is sent; a post whose answer
//! was lost (timeout, or a replica killed while sending) is looked for in the channel, by the
//! row id drbot attaches as message metadata, before it is posted again.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use serde_json::json;
use slack_morphism::prelude::SlackBlock;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tracing::Instrument;

use crate::app::App;
use crate::slack::client::{SlackApi, SlackError};
use crate::store::{
    AfterPost, Anchor, AnchorState, Claimed, EventKind, NewEvent, Outgoing, StoreError,
};

/// How many lanes are sent to at once.
const LANES_AT_ONCE: usize = 32;
/// How often the store is looked at when nothing woke the worker (other replicas' rows,
/// retries coming due).
const POLL: Duration = Duration::from_millis(200);
/// Posts in one channel: a burst of this many, then one per second (Slack allows about one
/// message per second per channel, with short bursts).
const BURST: f64 = 20.0;
const PER_SECOND: f64 = 1.0;
/// The first backoff after a 5xx or no answer; doubled each time, at most [`LONGEST_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const LONGEST_BACKOFF: Duration = Duration::from_secs(30);

/// What became of one attempt.
enum Attempt {
    Sent(Option<String>),
    /// An answer to someone in the web console: it shows it from the outbox, nothing to send.
    Kept,
    /// A publication to users made (status page, email).
    Published(super::publish::Published),
    /// Try again after this long; `uncertain` when Slack may have done it.
    Later {
        wait: Duration,
        uncertain: bool,
        error: String,
        /// Slack did not answer (5xx, timeout, no connection): counts toward "Slack is down".
        outage: bool,
    },
    Failed(String),
}

/// Runs until `stop`; in-flight sends get a few seconds to finish.
pub async fn run(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let slack = app.slack.once();
    let pace: Arc<DashMap<String, Bucket>> = Arc::default();
    let mut sending = JoinSet::new();
    let mut moved = crate::clock::moved();
    loop {
        // Claims go in batches (each claim is a write): when half the lanes are free.
        let room = LANES_AT_ONCE.saturating_sub(sending.len());
        if room >= LANES_AT_ONCE / 2 || sending.is_empty() {
            match app.store.claim_outbox(room as i64).await {
                Ok(rows) => {
                    for row in rows {
                        let span = tracing::info_span!(
                            "slack_send",
                            row = row.id,
                            method = row.message.method()
                        );
                        sending.spawn(
                            deliver(app.clone(), slack.clone(), pace.clone(), row).instrument(span),
                        );
                    }
                }
                Err(e) => tracing::error!(error = %e, "could not claim Slack messages to send"),
            }
        }
        tokio::select! {
            _ = app.store.outbox_wake().notified() => {}
            Some(_) = sending.join_next(), if !sending.is_empty() => {
                while sending.try_join_next().is_some() {}
            }
            _ = tokio::time::sleep(POLL) => {}
            // Moved time can bring retries due at once.
            _ = moved.changed() => {}
            _ = stop.changed() => break,
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while sending.join_next().await.is_some() {}
    })
    .await;
}

/// Sends one row and records what became of it.
async fn deliver(app: Arc<App>, slack: SlackApi, pace: Arc<DashMap<String, Bucket>>, row: Claimed) {
    let method = row.message.method();
    let attempt = attempt(&app, &slack, &pace, &row).await;
    // What this attempt says of Slack itself: it answered, or it did not.
    let heard = match &attempt {
        _ if row.message.is_notice() => None,
        Attempt::Kept => None,
        Attempt::Sent(_) => Some(true),
        Attempt::Later { outage: true, .. } => Some(false),
        _ => None,
    };
    let down = super::slack_down::heard(&app, heard).await;
    let recorded = async {
        let mut tx = app.store.begin().await?;
        match attempt {
            Attempt::Sent(ts) => {
                let after = match &row.message {
                    Outgoing::Post { after, .. } => after.clone(),
                    _ => None,
                };
                tx.outbox_sent(row.id, row.fence, ts, after).await?;
                crate::metrics::SLACK_SENT.with_label_values(&[method]).inc();
            }
            Attempt::Kept => tx.outbox_sent(row.id, row.fence, None, None).await?,
            Attempt::Published(published) => {
                tx.outbox_sent(row.id, row.fence, Some(published.id.clone()), None)
                    .await?;
                super::publish::record(&mut tx, &row, &published).await?;
                crate::metrics::SLACK_SENT.with_label_values(&[method]).inc();
            }
            Attempt::Later {
                wait,
                uncertain,
                error,
                outage,
            } => {
                let at = crate::store::epoch_ms() + wait.as_millis() as i64;
                // While Slack is down its messages wait for it, however long (SPEC §19).
                if at > row.deadline && !(outage && down) {
                    fail(&mut tx, &row, format!("not sent before its deadline; last: {error}"))
                        .await?;
                } else {
                    tracing::warn!(wait_ms = wait.as_millis() as u64, error = %error, "Slack message will be sent again");
                    crate::metrics::SLACK_RETRIES
                        .with_label_values(&[method])
                        .inc();
                    tx.outbox_retry((row.id, row.fence), at, uncertain, error)
                        .await?;
                }
            }
            Attempt::Failed(error) => fail(&mut tx, &row, error).await?,
        }
        tx.commit().await
    }
    .await;
    if let Err(e) = recorded {
        // The row stays `sending` under this replica: it is sent again (carefully) after
        // `SENDING_DEADLINE`, or once this replica restarts or is taken for gone.
        tracing::error!(error = %e, "could not record what became of a Slack message");
    }
    app.store.outbox_wake().notify_one();
}

/// Records `row` as failed, in the audit log too; a request message that cannot be posted
/// is also told to its requester (who could otherwise wait for an approval that cannot come).
async fn fail(
    tx: &mut crate::store::StoreTx<'_>,
    row: &Claimed,
    error: String,
) -> Result<(), StoreError> {
    let method = row.message.method();
    crate::metrics::SLACK_UNDELIVERED
        .with_label_values(&[method])
        .inc();
    if row.message.is_notice() {
        tracing::error!(error = %error, "a publication to users could not be made");
        super::publish::failed(tx, row, &error).await?;
        return tx.outbox_failed((row.id, row.fence), error).await;
    }
    tracing::error!(error = %error, "a Slack message could not be sent");
    let channel = row.message.channel().unwrap_or_default().to_string();
    tx.append(
        NewEvent::new(
            EventKind::SlackUndelivered,
            "drbot",
            &channel,
            format!("a Slack message ({method}) could not be sent: {error}"),
        )
        .detail(json!({"outbox_row": row.id, "method": method, "queued_at": row.created_at, "attempts": row.attempts + 1, "error": error})),
    )
    .await?;
    tx.outbox_failed((row.id, row.fence), error.clone()).await?;
    if let Outgoing::Post {
        after: Some(AfterPost::RequestMessage { request }),
        ..
    } = &row.message
    {
        if let Some(request) = tx.request(*request).await? {
            tx.send_slack(Outgoing::Respond {
                url: request.response_url.clone(),
                text: format!(":warning: {} was planned but could not be posted here ({error}), so nobody can approve it yet; drbot will post it again when it restarts, or `/dr cancel {}`.", request.label(), request.label()),
            })
            .await?;
        }
    }
    Ok(())
}

async fn attempt(
    app: &Arc<App>,
    slack: &SlackApi,
    pace: &DashMap<String, Bucket>,
    row: &Claimed,
) -> Attempt {
    if row.message.is_notice() {
        return match super::publish::attempt(app, row).await {
            Ok(published) => Attempt::Published(published),
            Err((e, true)) => {
                let (wait, uncertain) = super::publish::wait(&e, backoff(row.attempts));
                Attempt::Later {
                    wait,
                    uncertain,
                    error: e.to_string(),
                    outage: false,
                }
            }
            Err((e, false)) => Attempt::Failed(e.to_string()),
        };
    }
    if let Outgoing::Respond { url, .. } = &row.message {
        if crate::store::console_answer(url).is_some() {
            return Attempt::Kept;
        }
    }
    let resolved = match resolve(app, row).await {
        Ok(r) => r,
        Err(early) => return early,
    };
    if row.uncertain {
        match already_posted(slack, row, &resolved).await {
            Ok(Some(ts)) => {
                tracing::info!("found the message already posted; not posting it again");
                return Attempt::Sent(Some(ts));
            }
            Ok(None) => {}
            Err(e) => return later(row, e),
        }
    }
    if matches!(
        row.message,
        Outgoing::Post { .. }
            | Outgoing::Ephemeral { .. }
            | Outgoing::Direct { .. }
            | Outgoing::Upload { .. }
    ) {
        let wait = take_token(pace, &row.message.lane(), crate::clock::now());
        if !wait.is_zero() {
            crate::clock::sleep(wait).await;
        }
    }
    let sent = match &row.message {
        Outgoing::Post {
            channel,
            text,
            blocks,
            ..
        } => slack
            .post_blocks(
                channel,
                text,
                blocks_of(blocks),
                resolved.thread.as_deref(),
                Some(row.id),
            )
            .await
            .map(Some),
        Outgoing::Update {
            channel,
            text,
            blocks,
            ..
        } => slack
            .update_blocks(channel, &resolved.message, text, blocks_of(blocks))
            .await
            .map(|_| None),
        Outgoing::Ephemeral {
            channel,
            user,
            text,
        } => slack
            .post_ephemeral(channel, user, text)
            .await
            .map(|_| None),
        Outgoing::React { channel, name, .. } => slack
            .add_reaction(channel, &resolved.message, name)
            .await
            .map(|_| None),
        Outgoing::Pin { channel, .. } => slack.pin(channel, &resolved.message).await.map(|_| None),
        Outgoing::Invite { channel, users } => slack.invite(channel, users).await.map(|_| None),
        Outgoing::Respond { url, text } => slack.respond(url, text).await.map(|_| None),
        Outgoing::Direct { text, .. } => slack
            .post_blocks(&resolved.message, text, None, None, Some(row.id))
            .await
            .map(Some),
        Outgoing::Upload {
            channel,
            filename,
            title,
            content,
            comment,
        } => slack
            .upload(channel, filename, title, content, comment)
            .await
            .map(|_| None),
        Outgoing::PublishHome { user, view } => slack.publish_home(user, view).await.map(|_| None),
        Outgoing::StatusPage { .. } | Outgoing::Email { .. } => {
            return Attempt::Failed("a publication is not a Slack message".into())
        }
    };
    match sent {
        Ok(ts) => Attempt::Sent(ts),
        Err(e) => later(row, e),
    }
}

/// The ts a row points to, once known.
#[derive(Default)]
struct Resolved {
    /// The thread to post in (a post's anchor; a failed parent posts in the channel).
    thread: Option<String>,
    /// The message an update, reaction or pin is about; the DM channel of a direct message.
    message: String,
}

async fn resolve(app: &Arc<App>, row: &Claimed) -> Result<Resolved, Attempt> {
    let anchor = |a: &Anchor| {
        let a = a.clone();
        let app = app.clone();
        async move {
            match a {
                Anchor::Ts(ts) => Ok(AnchorState::Posted(ts)),
                Anchor::Row(key) => app.store.outbox_anchor(&key).await,
            }
        }
    };
    let waiting = || Attempt::Later {
        wait: Duration::from_millis(250),
        uncertain: false,
        error: "the message it refers to is not posted yet".into(),
        outage: false,
    };
    let store_error = |e: StoreError| Attempt::Later {
        wait: FIRST_BACKOFF,
        uncertain: false,
        error: e.to_string(),
        outage: false,
    };
    match &row.message {
        Outgoing::Post {
            thread: Some(a), ..
        } => match anchor(a).await.map_err(store_error)? {
            AnchorState::Posted(ts) => Ok(Resolved {
                thread: Some(ts),
                ..Default::default()
            }),
            AnchorState::Waiting => Err(waiting()),
            // The thread's first message was never posted: the reply goes in the channel.
            AnchorState::Failed => Ok(Resolved::default()),
        },
        Outgoing::Update { message: a, .. }
        | Outgoing::React { message: a, .. }
        | Outgoing::Pin { message: a, .. } => match anchor(a).await.map_err(store_error)? {
            AnchorState::Posted(ts) => Ok(Resolved {
                message: ts,
                ..Default::default()
            }),
            AnchorState::Waiting => Err(waiting()),
            AnchorState::Failed => Err(Attempt::Failed(
                "the message it refers to was never posted".into(),
            )),
        },
        Outgoing::Direct { user, .. } => match app.slack.once().open_direct(user).await {
            Ok(channel) => Ok(Resolved {
                message: channel,
                ..Default::default()
            }),
            Err(e) => Err(later(row, e)),
        },
        _ => Ok(Resolved::default()),
    }
}

/// For a post Slack may already have: its ts when it is there.
async fn already_posted(
    slack: &SlackApi,
    row: &Claimed,
    resolved: &Resolved,
) -> Result<Option<String>, SlackError> {
    let (channel, thread) = match &row.message {
        Outgoing::Post { channel, .. } => (channel.as_str(), resolved.thread.as_deref()),
        Outgoing::Direct { .. } => (resolved.message.as_str(), None),
        _ => return Ok(None),
    };
    let queued = chrono::DateTime::parse_from_rfc3339(&row.created_at)
        .map(|t| t.timestamp() - 60)
        .unwrap_or(0);
    slack
        .find_post(channel, thread, row.id, &format!("{queued}.000000"))
        .await
}

/// What to do after Slack answered `e`.
fn later(row: &Claimed, e: SlackError) -> Attempt {
    match e {
        SlackError::RateLimited { retry_after, .. } => {
            crate::metrics::SLACK_RATE_LIMITED
                .with_label_values(&[row.message.method()])
                .inc();
            Attempt::Later {
                wait: retry_after
                    .unwrap_or(Duration::from_secs(1))
                    .min(LONGEST_BACKOFF),
                uncertain: false,
                error: e.to_string(),
                outage: false,
            }
        }
        SlackError::Unavailable { maybe_done, .. } => Attempt::Later {
            wait: backoff(row.attempts),
            uncertain: maybe_done,
            error: e.to_string(),
            outage: true,
        },
        other => Attempt::Failed(other.to_string()),
    }
}

/// `FIRST_BACKOFF · 2^attempts`, capped, with up to a quarter more of jitter (replicas
/// retrying together spread out).
fn backoff(attempts: i64) -> Duration {
    let base = FIRST_BACKOFF
        .saturating_mul(1u32 << attempts.clamp(0, 16) as u32)
        .min(LONGEST_BACKOFF);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let quarter = (base.as_millis() as u64 / 4).max(1);
    base + Duration::from_millis(nanos % quarter)
}

fn blocks_of(blocks: &Option<serde_json::Value>) -> Option<Vec<SlackBlock>> {
    blocks
        .as_ref()
        .and_then(|b| serde_json::from_value(b.clone()).ok())
}

/// A token bucket per lane, in drbot's time (a test moves it instead of waiting).
struct Bucket {
    tokens: f64,
    at: chrono::DateTime<chrono::Utc>,
}

/// Takes a token from `lane`'s bucket at `now`; returns how long to wait for it.
fn take_token(
    pace: &DashMap<String, Bucket>,
    lane: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Duration {
    let mut bucket = pace.entry(lane.to_string()).or_insert(Bucket {
        tokens: BURST,
        at: now,
    });
    let elapsed = (now - bucket.at).to_std().unwrap_or_default();
    let refill = elapsed.as_secs_f64() * PER_SECOND;
    bucket.tokens = (bucket.tokens + refill).min(BURST) - 1.0;
    bucket.at = bucket.at.max(now);
    if bucket.tokens >= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(-bucket.tokens / PER_SECOND)
    }
}
