//! The outgoing Slack Web API client: slack-morphism pointed at `DRBOT_SLACK_API_URL`, with
//! a connector that speaks https to Slack and plain http to a local stand-in.

use std::sync::Arc;
use std::time::Duration;

use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use slack_morphism::errors::{SlackClientError, SlackClientSystemError};
use slack_morphism::prelude::*;

use crate::config::Secret;

pub type Connector = SlackClientHyperConnector<HttpsConnector<HttpConnector>>;
pub type Client = SlackClient<Connector>;

#[derive(Debug, thiserror::Error)]
pub enum SlackError {
    #[error("cannot set up TLS for the Slack client: {0}")]
    Tls(String),
    #[error("Slack rejected SLACK_BOT_TOKEN at {url} (auth.test answered `{code}`); check the token and that the app is installed")]
    TokenRejected { url: String, code: String },
    #[error("cannot reach the Slack Web API at {url} ({method}): {message}")]
    Unreachable {
        url: String,
        method: &'static str,
        message: String,
    },
    #[error("Slack {method} failed: {code}")]
    Api { method: &'static str, code: String },
    /// 429: Slack asks to wait `retry_after` before the next call.
    #[error("Slack {method} was rate limited")]
    RateLimited {
        method: &'static str,
        retry_after: Option<Duration>,
    },
    /// A 5xx, a timeout or a broken connection: worth trying again later.
    #[error("Slack {method} did not answer: {message}")]
    Unavailable {
        method: &'static str,
        message: String,
        /// Slack may have done it (no answer after the request was sent).
        maybe_done: bool,
    },
}

impl SlackError {
    /// Slack said the call is wrong (`ok: false`): trying again changes nothing.
    pub fn is_final(&self) -> bool {
        !matches!(
            self,
            SlackError::RateLimited { .. } | SlackError::Unavailable { .. }
        )
    }
}

/// Marks drbot's posts with their outbox row, so a post whose answer was lost can be found
/// instead of posted twice.
pub const OUTBOX_METADATA: &str = "drbot_outbox";

/// Who drbot is in the workspace, learned from `auth.test`.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: String,
    pub team_id: String,
    pub bot_id: Option<String>,
    /// The app the bot belongs to (`bots.info`); requests naming another app are refused.
    pub app_id: Option<String>,
}

/// The Web API, with the bot token and the bot's identity.
#[derive(Clone)]
pub struct SlackApi {
    client: Arc<Client>,
    token: SlackApiToken,
    api_url: String,
    identity: Option<Identity>,
    /// Each call is tried once (the outbox keeps its own, durable, schedule of retries).
    once: bool,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi")
            .field("api_url", &self.api_url)
            .field("identity", &self.identity)
            .finish()
    }
}

/// Builds the HTTP client; `api_url` is the Web API base without a trailing slash.
pub fn build_client(api_url: &str) -> Result<Arc<Client>, SlackError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .map_err(|e| SlackError::Tls(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .build();
    let connector = SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_url);
    Ok(Arc::new(SlackClient::new(connector)))
}

impl SlackApi {
    pub fn new(client: Arc<Client>, token: &Secret, api_url: &str) -> Self {
        Self {
            client,
            token: SlackApiToken::new(token.expose().into()),
            api_url: api_url.to_string(),
            identity: None,
            once: false,
        }
    }

    /// The same API, each call tried once (with its timeout): the caller retries.
    pub fn once(&self) -> SlackApi {
        SlackApi {
            once: true,
            ..self.clone()
        }
    }

    /// Calls `method` with [`call`] and `repeat` (see [`Self::repeat`]).
    async fn api<T, F, Fut>(
        &self,
        method: &'static str,
        repeat: Repeat,
        attempt: F,
    ) -> Result<T, SlackError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SlackClientError>>,
    {
        call(method, self.repeat(repeat), attempt)
            .await
            .map_err(|e| api_error(method, e))
    }

    /// [`Self::api`] for a change whose error `done` means it was made already (a reaction
    /// already there, a user already in the channel): that is success too.
    async fn api_unless_done<T, F, Fut>(
        &self,
        method: &'static str,
        repeat: Repeat,
        done: &str,
        attempt: F,
    ) -> Result<(), SlackError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, SlackClientError>>,
    {
        match call(method, self.repeat(repeat), attempt).await {
            Ok(_) => Ok(()),
            Err(SlackClientError::ApiError(api)) if api.code == done => Ok(()),
            Err(e) => Err(api_error(method, e)),
        }
    }

    fn repeat(&self, repeat: Repeat) -> Repeat {
        if self.once {
            Repeat::Never
        } else {
            repeat
        }
    }

    pub fn client(&self) -> &Arc<Client> {
        &self.client
    }

    /// Calls `auth.test` and remembers the bot's identity; a rejected token is fatal.
    pub async fn authenticate(&mut self) -> Result<Identity, SlackError> {
        let session = self.client.open_session(&self.token);
        let answer = call("auth.test", Repeat::Never, || session.auth_test())
            .await
            .map_err(|e| match e {
                SlackClientError::ApiError(api) => SlackError::TokenRejected {
                    url: self.api_url.clone(),
                    code: api.code,
                },
                other => SlackError::Unreachable {
                    url: self.api_url.clone(),
                    method: "auth.test",
                    message: describe(&other),
                },
            })?;
        let app_id = match &answer.bot_id {
            Some(bot) => match call("bots.info", Repeat::Never, || {
                let info = SlackApiBotsInfoRequest::new().with_bot(bot.to_string());
                let session = &session;
                async move { session.bots_info(&info).await }
            })
            .await
            {
                Ok(info) => Some(info.bot.app_id),
                Err(e) => {
                    tracing::warn!(error = %describe(&e), "bots.info failed: requests will be checked against the workspace only, not the app");
                    None
                }
            },
            None => None,
        };
        let identity = Identity {
            user_id: answer.user_id.to_string(),
            team_id: answer.team_id.to_string(),
            bot_id: answer.bot_id.map(|b| b.to_string()),
            app_id,
        };
        self.identity = Some(identity.clone());
        Ok(identity)
    }

    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Posts `text` (with Block Kit `blocks` when given; `text` stays the notification text)
    /// in `channel`, in the thread of `thread_ts` when given, marked with its outbox row;
    /// returns the ts.
    pub async fn post_blocks(
        &self,
        channel: &str,
        text: &str,
        blocks: Option<Vec<SlackBlock>>,
        thread_ts: Option<&str>,
        outbox_row: Option<i64>,
    ) -> Result<String, SlackError> {
        let session = self.client.open_session(&self.token);
        let mut content = SlackMessageContent::new().with_text(text.to_string());
        if let Some(blocks) = blocks {
            content = content.with_blocks(blocks);
        }
        if let Some(row) = outbox_row {
            content = content.with_metadata(SlackMessageMetadata {
                event_type: OUTBOX_METADATA.to_string(),
                event_payload: Some([("row".to_string(), row.to_string())].into()),
            });
        }
        let mut request = SlackApiChatPostMessageRequest::new(channel.into(), content);
        if let Some(ts) = thread_ts {
            request = request.with_thread_ts(ts.into());
        }
        let answer = self
            .api("chat.postMessage", Repeat::OnlyIfRefused, || {
                session.chat_post_message(&request)
            })
            .await?;
        Ok(answer.ts.to_string())
    }
}

impl SlackApi {
    /// Publishes `user`'s App Home tab: `view` is the whole view (`{"type": "home",
    /// "blocks": …}`). Publishing it again replaces it, so a repeat is harmless.
    pub async fn publish_home(
        &self,
        user: &str,
        view: &serde_json::Value,
    ) -> Result<(), SlackError> {
        let view: SlackView =
            serde_json::from_value(view.clone()).map_err(|e| SlackError::Api {
                method: "views.publish",
                code: format!("the view drbot built does not read back: {e}"),
            })?;
        let session = self.client.open_session(&self.token);
        let request = SlackApiViewsPublishRequest::new(user.into(), view);
        self.api("views.publish", Repeat::Safe, || {
            session.views_publish(&request)
        })
        .await?;
        Ok(())
    }
}

impl SlackApi {
    /// Shares a file in `channel` with `comment` (Slack's three-step upload).
    pub async fn upload(
        &self,
        channel: &str,
        filename: &str,
        title: &str,
        content: &str,
        comment: &str,
    ) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let ask =
            SlackApiFilesGetUploadUrlExternalRequest::new(filename.to_string(), content.len());
        let target = self
            .api("files.getUploadURLExternal", Repeat::Safe, || {
                session.get_upload_url_external(&ask)
            })
            .await?;
        let body = SlackApiFilesUploadViaUrlRequest::new(
            target.upload_url.clone(),
            content.as_bytes().to_vec(),
            "application/octet-stream".to_string(),
        );
        self.api("files.upload (content)", Repeat::Safe, || {
            session.files_upload_via_url(&body)
        })
        .await?;
        let complete =
            SlackApiFilesCompleteUploadExternalRequest::new(vec![SlackApiFilesComplete::new(
                target.file_id.clone(),
            )
            .with_title(title.to_string())])
            .with_channel_id(channel.into())
            .with_initial_comment(comment.to_string());
        self.api(
            "files.completeUploadExternal",
            Repeat::OnlyIfRefused,
            || session.files_complete_upload_external(&complete),
        )
        .await?;
        Ok(())
    }

    /// A message only `user` sees, in `channel`.
    pub async fn post_ephemeral(
        &self,
        channel: &str,
        user: &str,
        text: &str,
    ) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiChatPostEphemeralRequest::new(
            channel.into(),
            user.into(),
            SlackMessageContent::new().with_text(text.to_string()),
        );
        self.api("chat.postEphemeral", Repeat::OnlyIfRefused, || {
            session.chat_post_ephemeral(&request)
        })
        .await?;
        Ok(())
    }

    /// Replaces message `ts`: its text and, when given, its blocks (an empty list removes
    /// them, e.g. the buttons of a decided request).
    pub async fn update_blocks(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
        blocks: Option<Vec<SlackBlock>>,
    ) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let mut content = SlackMessageContent::new().with_text(text.to_string());
        if let Some(blocks) = blocks {
            content = content.with_blocks(blocks);
        }
        let request = SlackApiChatUpdateRequest::new(channel.into(), content, ts.into());
        self.api("chat.update", Repeat::Safe, || {
            session.chat_update(&request)
        })
        .await?;
        Ok(())
    }

    /// Adds reaction `name` to message `ts` (as drbot).
    pub async fn add_reaction(
        &self,
        channel: &str,
        ts: &str,
        name: &str,
    ) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiReactionsAddRequest::new(channel.into(), name.into(), ts.into());
        self.api_unless_done("reactions.add", Repeat::Safe, "already_reacted", || {
            session.reactions_add(&request)
        })
        .await
    }

    /// Answers a slash command later through its `response_url` (shown only to the user).
    pub async fn respond(&self, response_url: &str, text: &str) -> Result<(), SlackError> {
        let url = url::Url::parse(response_url).map_err(|e| SlackError::Api {
            method: "response_url",
            code: e.to_string(),
        })?;
        let request = SlackApiPostWebhookMessageRequest::new(
            SlackMessageContent::new().with_text(text.to_string()),
        );
        self.api("response_url", Repeat::OnlyIfRefused, || {
            self.client.post_webhook_message(&url, &request)
        })
        .await?;
        Ok(())
    }
}

impl SlackApi {
    /// Creates a channel (private: only those invited can join it); `Err(SlackError::Api {
    /// code: "name_taken", .. })` when the name is in use.
    pub async fn create_channel(&self, name: &str, private: bool) -> Result<String, SlackError> {
        let session = self.client.open_session(&self.token);
        let create =
            SlackApiConversationsCreateRequest::new(name.to_string()).with_is_private(private);
        let answer = self
            .api("conversations.create", Repeat::OnlyIfRefused, || {
                session.conversations_create(&create)
            })
            .await?;
        Ok(answer.channel.id.to_string())
    }

    pub async fn invite(&self, channel: &str, users: &[String]) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiConversationsInviteRequest::new(
            channel.into(),
            users.iter().map(|u| u.as_str().into()).collect(),
        );
        self.api_unless_done(
            "conversations.invite",
            Repeat::Safe,
            "already_in_channel",
            || session.conversations_invite(&request),
        )
        .await
    }

    pub async fn pin(&self, channel: &str, ts: &str) -> Result<(), SlackError> {
        let session = self.client.open_session(&self.token);
        let pin = SlackApiPinsAddRequest::new(channel.into(), ts.into());
        self.api_unless_done("pins.add", Repeat::Safe, "already_pinned", || {
            session.pins_add(&pin)
        })
        .await
    }

    /// The name people know `user` by: display name, else real name, else handle.
    pub async fn user_name(&self, user: &str) -> Result<Option<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiUsersInfoRequest::new(user.into());
        let answer = self
            .api("users.info", Repeat::Safe, || session.users_info(&request))
            .await?;
        let u = answer.user;
        let profile = u.profile.as_ref();
        Ok([
            profile.and_then(|p| p.display_name.clone()),
            profile.and_then(|p| p.real_name.clone()),
            u.real_name.clone(),
            u.name.clone(),
        ]
        .into_iter()
        .flatten()
        .find(|n| !n.trim().is_empty()))
    }

    /// The id of the live channel named `name` that `creator` (drbot) created, if any: how a
    /// job run again after a lost commit finds the channel it made before (`conversations.list`,
    /// public and private, at most 20 pages of 200).
    pub async fn own_channel_named(
        &self,
        name: &str,
        creator: &str,
    ) -> Result<Option<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let mut cursor: Option<SlackCursorId> = None;
        for _ in 0..20 {
            let request = SlackApiConversationsListRequest::new()
                .with_types(vec![
                    SlackConversationType::Public,
                    SlackConversationType::Private,
                ])
                .with_exclude_archived(true)
                .with_limit(200)
                .opt_cursor(cursor.take());
            let page = self
                .api("conversations.list", Repeat::Safe, || {
                    session.conversations_list(&request)
                })
                .await?;
            let found = page.channels.iter().find(|c| {
                c.name.as_deref() == Some(name)
                    && c.creator.as_ref().map(|u| u.to_string()).as_deref() == Some(creator)
            });
            if let Some(c) = found {
                return Ok(Some(c.id.to_string()));
            }
            match page.response_metadata.and_then(|m| m.next_cursor) {
                Some(next) if !next.to_string().is_empty() => cursor = Some(next),
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    /// A channel's name (without `#`).
    pub async fn channel_name(&self, channel: &str) -> Result<Option<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let request = SlackApiConversationsInfoRequest::new(channel.into());
        let answer = self
            .api("conversations.info", Repeat::Safe, || {
                session.conversations_info(&request)
            })
            .await?;
        Ok(answer.channel.name.filter(|n| !n.trim().is_empty()))
    }

    /// The id of the direct-message channel with `user`.
    pub async fn open_direct(&self, user: &str) -> Result<String, SlackError> {
        let session = self.client.open_session(&self.token);
        let open = SlackApiConversationsOpenRequest::new().with_users(vec![user.into()]);
        let opened = self
            .api("conversations.open", Repeat::Safe, || {
                session.conversations_open(&open)
            })
            .await?;
        Ok(opened.channel.id.to_string())
    }

    /// The ts of a post drbot made for outbox row `row` in `channel` (in the thread of
    /// `thread_ts` when given) since `oldest` (a Slack ts), if Slack has it. Only drbot's
    /// own post counts: another app can attach the same metadata to a message of its own
    /// (and would have officers react to it), or metadata of another shape (which must not
    /// make the look-up fail).
    pub async fn find_post(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        row: i64,
        oldest: &str,
    ) -> Result<Option<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        // `conversations.replies` for a thread, `conversations.history` for the channel; the
        // same GET with `include_all_metadata`, read leniently (`Posted`).
        let (method, mut params) = match thread_ts {
            None => ("conversations.history", vec![]),
            Some(ts) => ("conversations.replies", vec![("ts", Some(ts.to_string()))]),
        };
        params.extend([
            ("channel", Some(channel.to_string())),
            ("oldest", Some(oldest.to_string())),
            ("limit", Some("200".to_string())),
            ("include_all_metadata", Some("true".to_string())),
        ]);
        let page: History = self
            .api(method, Repeat::Safe, || {
                let params = &params;
                let session = &session;
                async move {
                    session
                        .http_session_api
                        .http_get::<History, _, _>(method, params, None)
                        .await
                }
            })
            .await?;
        let Some(me) = self.identity.as_ref() else {
            return Ok(None);
        };
        Ok(page
            .messages
            .into_iter()
            .find(|m| m.is_drbots(me) && m.carries_row(row))
            .map(|m| m.ts))
    }
}

impl SlackApi {
    /// The user ids in user group `group` (`usergroups.users.list`).
    pub async fn group_members(&self, group: &str) -> Result<Vec<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let params = vec![("usergroup", Some(group.to_string()))];
        let answer: GroupUsers = self
            .api("usergroups.users.list", Repeat::Safe, || {
                let params = &params;
                let session = &session;
                async move {
                    session
                        .http_session_api
                        .http_get::<GroupUsers, _, _>("usergroups.users.list", params, None)
                        .await
                }
            })
            .await?;
        Ok(answer.users)
    }

    /// The texts of drbot's own top-level posts in `channel`, newest first, reading at most
    /// `pages` pages of history (another app's posts are left out: they prove nothing).
    pub async fn own_posts(&self, channel: &str, pages: usize) -> Result<Vec<String>, SlackError> {
        let session = self.client.open_session(&self.token);
        let Some(me) = self.identity.clone() else {
            return Ok(Vec::new());
        };
        let mut texts = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..pages {
            let mut params = vec![
                ("channel", Some(channel.to_string())),
                ("limit", Some("200".to_string())),
            ];
            if let Some(c) = &cursor {
                params.push(("cursor", Some(c.clone())));
            }
            let page: History = self
                .api("conversations.history", Repeat::Safe, || {
                    let params = &params;
                    let session = &session;
                    async move {
                        session
                            .http_session_api
                            .http_get::<History, _, _>("conversations.history", params, None)
                            .await
                    }
                })
                .await?;
            texts.extend(
                page.messages
                    .into_iter()
                    .filter(|m| m.is_drbots(&me))
                    .filter_map(|m| m.text),
            );
            cursor = page
                .response_metadata
                .and_then(|m| m.next_cursor)
                .filter(|c| !c.is_empty());
            if cursor.is_none() {
                break;
            }
        }
        Ok(texts)
    }
}

/// A page of `conversations.history` / `conversations.replies`, only what the look-up of a
/// lost post needs; anything else (another app's metadata of any shape) is ignored.
#[derive(serde::Deserialize)]
struct History {
    #[serde(default)]
    messages: Vec<Posted>,
    #[serde(default)]
    response_metadata: Option<NextPage>,
}

#[derive(serde::Deserialize)]
struct GroupUsers {
    #[serde(default)]
    users: Vec<String>,
}

#[derive(serde::Deserialize)]
struct NextPage {
    #[serde(default)]
    next_cursor: Option<String>,
}

#[derive(serde::Deserialize)]
struct Posted {
    ts: String,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    bot_id: Option<String>,
    #[serde(default)]
    metadata: Option<serde_json::Value>,
    #[serde(default)]
    text: Option<String>,
}

impl Posted {
    /// Posted by drbot's bot user (and, when both are known, its bot).
    fn is_drbots(&self, me: &Identity) -> bool {
        self.user.as_deref() == Some(me.user_id.as_str())
            && match (&me.bot_id, &self.bot_id) {
                (Some(ours), Some(theirs)) => ours == theirs,
                _ => true,
            }
    }

    /// Marked with drbot's outbox row `row`.
    fn carries_row(&self, row: i64) -> bool {
        let Some(meta) = &self.metadata else {
            return false;
        };
        meta["event_type"] == OUTBOX_METADATA
            && match &meta["event_payload"]["row"] {
                serde_json::Value::String(r) => *r == row.to_string(),
                serde_json::Value::Number(n) => n.as_i64() == Some(row),
                _ => false,
            }
    }
}

/// How long one Web API call may take before drbot gives up on it.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long drbot keeps retrying a call Slack asked it to retry (429, 5xx, no answer).
const RETRY_DEADLINE: Duration = Duration::from_secs(120);
/// The longest single wait, whatever `Retry-After` says.
const LONGEST_WAIT: Duration = Duration::from_secs(30);

/// Whether repeating a call after no answer is harmless (Slack may have done it already).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repeat {
    /// `chat.update`, `reactions.add`, `pins.add`, invites: doing them twice is the same.
    Safe,
    /// Posts and channel creation: retried only when Slack said it did nothing (429, 5xx).
    OnlyIfRefused,
    /// Start-up checks: one attempt (with the timeout); a failure stops `serve` at once.
    Never,
}

/// Runs one Web API call with a timeout and retries what Slack asks to retry: a 429 waits
/// `Retry-After`, a 5xx (and, for calls safe to repeat, a timeout or a broken connection)
/// backs off with jitter, until [`RETRY_DEADLINE`]. An `ok: false` answer is final.
pub(crate) async fn call<T, F, Fut>(
    method: &'static str,
    repeat: Repeat,
    mut attempt: F,
) -> Result<T, SlackClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SlackClientError>>,
{
    let started = tokio::time::Instant::now();
    let mut backoff = Duration::from_millis(250);
    loop {
        let outcome = match crate::clock::timeout(CALL_TIMEOUT, attempt()).await {
            Ok(outcome) => outcome,
            Err(_) => Err(SlackClientError::SystemError(
                SlackClientSystemError::new()
                    .with_message(format!("no answer within {}s", CALL_TIMEOUT.as_secs())),
            )),
        };
        let wait = match &outcome {
            Ok(_)
            | Err(SlackClientError::ApiError(_))
            | Err(SlackClientError::ProtocolError(_)) => return outcome,
            Err(_) if repeat == Repeat::Never => return outcome,
            Err(SlackClientError::RateLimitError(limited)) => {
                crate::metrics::SLACK_RATE_LIMITED
                    .with_label_values(&[method])
                    .inc();
                limited.retry_after.unwrap_or(Duration::from_secs(1))
            }
            Err(SlackClientError::HttpError(h)) if h.status_code.is_server_error() => backoff,
            Err(_) if repeat == Repeat::Safe => backoff,
            Err(_) => return outcome,
        };
        let wait = wait.min(LONGEST_WAIT) + jitter(backoff / 4);
        if started.elapsed() + wait > RETRY_DEADLINE {
            return outcome;
        }
        tracing::warn!(method, wait_ms = wait.as_millis() as u64, error = %outcome.as_ref().err().map(describe).unwrap_or_default(), "Slack call will be retried");
        crate::clock::sleep(wait).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// Up to `max` of random-enough delay (spreads retries of several replicas).
fn jitter(max: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let max = max.as_millis().max(1) as u64;
    Duration::from_millis(nanos % max)
}

fn api_error(method: &'static str, e: SlackClientError) -> SlackError {
    match e {
        SlackClientError::ApiError(api) => SlackError::Api {
            method,
            code: api.code,
        },
        SlackClientError::RateLimitError(limited) => SlackError::RateLimited {
            method,
            retry_after: limited.retry_after,
        },
        SlackClientError::HttpError(h) if h.status_code.is_server_error() => {
            SlackError::Unavailable {
                method,
                message: format!("HTTP {}", h.status_code),
                maybe_done: false,
            }
        }
        other @ (SlackClientError::SystemError(_) | SlackClientError::HttpProtocolError(_)) => {
            SlackError::Unavailable {
                method,
                message: describe(&other),
                maybe_done: true,
            }
        }
        other => SlackError::Api {
            method,
            code: describe(&other),
        },
    }
}

/// A one-line description of a client error that never includes request headers.
fn describe(e: &SlackClientError) -> String {
    match e {
        SlackClientError::ApiError(api) => api.code.clone(),
        SlackClientError::HttpError(h) => format!("HTTP {}", h.status_code),
        SlackClientError::RateLimitError(_) => "rate limited".to_string(),
        SlackClientError::HttpProtocolError(p) => p
            .to_string()
            .lines()
            .next()
            .unwrap_or("protocol error")
            .to_string(),
        SlackClientError::ProtocolError(_) => "an answer that is not Slack's JSON".to_string(),
        SlackClientError::SystemError(s) => s
            .to_string()
            .lines()
            .next()
            .unwrap_or("system error")
            .to_string(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or("error")
            .to_string(),
    }
}
