//! An HTTP client for the LINE Messaging API endpoints Madoguchi calls.
//!
//! Every method takes the channel's [`AccessToken`]; the token goes only into the
//! `Authorization` header and is never logged or displayed. Failures are a
//! [`LineError`] that says whether a retry can help and what LINE said.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;
use uuid::Uuid;

use crate::line::OutboundMessage;

const RETRY_KEY: &str = "x-line-retry-key";
const ACCEPTED_REQUEST_ID: &str = "x-line-accepted-request-id";
const REQUEST_ID: &str = "x-line-request-id";

/// A channel access token. `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(String);

impl AccessToken {
    /// Wraps a channel access token.
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Returns the token itself, for the `Authorization` header and for storage.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where LINE's two API hosts are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineEndpoints {
    /// The Messaging API (`https://api.line.me`).
    pub api_base: Url,
    /// The content API (`https://api-data.line.me`).
    pub data_base: Url,
}

impl LineEndpoints {
    /// Returns LINE's production hosts.
    pub fn production() -> Self {
        Self {
            api_base: Url::parse("https://api.line.me").expect("a valid url"),
            data_base: Url::parse("https://api-data.line.me").expect("a valid url"),
        }
    }
}

/// A LINE Messaging API client, cheap to clone and shared by every channel.
#[derive(Debug, Clone)]
pub struct LineClient {
    http: reqwest::Client,
    endpoints: LineEndpoints,
    timeout: Duration,
    content_timeout: Duration,
    max_content_length: u64,
}

impl LineClient {
    /// Returns a client over `http` (which needs a rustls crypto provider installed
    /// for HTTPS), calling `endpoints`, with a 10-second timeout per call and
    /// 60 seconds and 100 MiB for content downloads.
    pub fn new(http: reqwest::Client, endpoints: LineEndpoints) -> Self {
        Self {
            http,
            endpoints,
            timeout: Duration::from_secs(10),
            content_timeout: Duration::from_secs(60),
            max_content_length: 100 * 1024 * 1024,
        }
    }

    /// Returns the client with another timeout for calls other than content downloads.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Returns the client with another timeout and size limit for content downloads.
    pub fn with_content_limits(mut self, timeout: Duration, max_length: u64) -> Self {
        self.content_timeout = timeout;
        self.max_content_length = max_length;
        self
    }

    /// Returns the endpoints this client calls.
    pub fn endpoints(&self) -> &LineEndpoints {
        &self.endpoints
    }

    /// Gets the bot's own profile (`GET /v2/bot/info`); also a cheap way to check
    /// that an access token works.
    pub async fn bot_info(&self, token: &AccessToken) -> Result<BotInfo, LineError> {
        let url = api_url(&self.endpoints.api_base, &["v2", "bot", "info"]);
        let response = self.send(self.http.get(url), token, self.timeout).await?;
        json(response).await
    }

    /// Sends `messages` (1 to 5) as the answer to the event that carried
    /// `reply_token` (`POST /v2/bot/message/reply`). A reply token works once.
    pub async fn reply(
        &self,
        token: &AccessToken,
        reply_token: &str,
        messages: &[OutboundMessage],
    ) -> Result<Delivery, LineError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct ReplyRequest<'a> {
            reply_token: &'a str,
            messages: &'a [OutboundMessage],
        }
        let url = api_url(&self.endpoints.api_base, &["v2", "bot", "message", "reply"]);
        let request = self.http.post(url).json(&ReplyRequest { reply_token, messages });
        let response = self.send(request, token, self.timeout).await?;
        delivery(response).await
    }

    /// Sends `messages` (1 to 5) to a user, group or room at any time
    /// (`POST /v2/bot/message/push`), counted against the channel's monthly quota.
    ///
    /// Send the same `retry_key` when retrying a push whose outcome is unknown: if
    /// an earlier attempt was accepted, LINE delivers nothing again and this
    /// returns [`PushOutcome::AlreadyAccepted`].
    pub async fn push(
        &self,
        token: &AccessToken,
        to: &str,
        messages: &[OutboundMessage],
        retry_key: Uuid,
    ) -> Result<PushOutcome, LineError> {
        #[derive(Serialize)]
        struct PushRequest<'a> {
            to: &'a str,
            messages: &'a [OutboundMessage],
        }
        let url = api_url(&self.endpoints.api_base, &["v2", "bot", "message", "push"]);
        let request = self
            .http
            .post(url)
            .header(RETRY_KEY, retry_key.hyphenated().to_string())
            .json(&PushRequest { to, messages });
        let response = self.send(request, token, self.timeout).await?;
        if response.status() == StatusCode::CONFLICT
            && let Some(accepted_request_id) = header(response.headers(), ACCEPTED_REQUEST_ID)
        {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Conflict {
                #[serde(default)]
                sent_messages: Vec<SentMessage>,
            }
            let sent_messages = response
                .bytes()
                .await
                .ok()
                .and_then(|body| serde_json::from_slice::<Conflict>(&body).ok())
                .map(|conflict| conflict.sent_messages)
                .unwrap_or_default();
            return Ok(PushOutcome::AlreadyAccepted { accepted_request_id, sent_messages });
        }
        delivery(response).await.map(PushOutcome::Sent)
    }

    /// Gets a user's profile (`GET /v2/bot/profile/{userId}`); LINE answers 404
    /// for users who are not friends of the account.
    pub async fn profile(&self, token: &AccessToken, user_id: &str) -> Result<Profile, LineError> {
        let user_id = path_id("user id", user_id)?;
        let url = api_url(&self.endpoints.api_base, &["v2", "bot", "profile", user_id]);
        let response = self.send(self.http.get(url), token, self.timeout).await?;
        json(response).await
    }

    /// Downloads the image, video, audio or file a user sent
    /// (`GET {data}/v2/bot/message/{messageId}/content`).
    ///
    /// LINE answers 202 while a video or audio is still being prepared: that is
    /// [`ContentOutcome::NotReady`], to be asked again later.
    pub async fn content(&self, token: &AccessToken, message_id: &str) -> Result<ContentOutcome, LineError> {
        self.content_within(token, message_id, self.max_content_length).await
    }

    /// Like [`Self::content`], refusing content over `limit` bytes (or the
    /// client's own limit, whichever is smaller) while it streams in: a
    /// declared length over it is refused before the body is read, and the
    /// download stops at the first chunk past it.
    pub async fn content_within(
        &self,
        token: &AccessToken,
        message_id: &str,
        limit: u64,
    ) -> Result<ContentOutcome, LineError> {
        let message_id = path_id("message id", message_id)?;
        let url = api_url(&self.endpoints.data_base, &["v2", "bot", "message", message_id, "content"]);
        let mut response = self.send(self.http.get(url), token, self.content_timeout).await?;
        if response.status() == StatusCode::ACCEPTED {
            return Ok(ContentOutcome::NotReady);
        }
        if !response.status().is_success() {
            return Err(error_from(response).await);
        }
        let limit = limit.min(self.max_content_length);
        let declared =
            header(response.headers(), CONTENT_LENGTH.as_str()).and_then(|length| length.parse::<u64>().ok());
        if declared.is_some_and(|length| length > limit) {
            return Err(LineError::ContentTooLarge { limit });
        }
        let content_type = header(response.headers(), CONTENT_TYPE.as_str());
        let mut bytes = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(LineError::Transport)? {
            if (bytes.len() + chunk.len()) as u64 > limit {
                return Err(LineError::ContentTooLarge { limit });
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(ContentOutcome::Ready(Content { bytes: bytes.freeze(), content_type }))
    }

    /// Asks whether a video or audio is ready to download
    /// (`GET {data}/v2/bot/message/{messageId}/content/transcoding`).
    pub async fn content_transcoding(
        &self,
        token: &AccessToken,
        message_id: &str,
    ) -> Result<TranscodingStatus, LineError> {
        #[derive(Deserialize)]
        struct Transcoding {
            status: TranscodingStatus,
        }
        let message_id = path_id("message id", message_id)?;
        let url = api_url(&self.endpoints.data_base, &["v2", "bot", "message", message_id, "content", "transcoding"]);
        let response = self.send(self.http.get(url), token, self.timeout).await?;
        json::<Transcoding>(response).await.map(|t| t.status)
    }

    /// Gets the channel's monthly push target (`GET /v2/bot/message/quota`).
    pub async fn quota(&self, token: &AccessToken) -> Result<Quota, LineError> {
        #[derive(Deserialize)]
        struct QuotaResponse {
            #[serde(rename = "type")]
            quota_type: String,
            value: Option<u64>,
        }
        let url = api_url(&self.endpoints.api_base, &["v2", "bot", "message", "quota"]);
        let response = self.send(self.http.get(url), token, self.timeout).await?;
        let status = response.status();
        let quota: QuotaResponse = json(response).await?;
        match (quota.quota_type.as_str(), quota.value) {
            ("none", _) => Ok(Quota::Unlimited),
            ("limited", Some(limit)) => Ok(Quota::Limited(limit)),
            (other, _) => Err(LineError::Decode { status, reason: format!("unexpected quota type {other:?}") }),
        }
    }

    /// Gets how many messages the channel has sent this month
    /// (`GET /v2/bot/message/quota/consumption`, its `totalUsage`).
    pub async fn quota_consumption(&self, token: &AccessToken) -> Result<u64, LineError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Consumption {
            total_usage: u64,
        }
        let url = api_url(&self.endpoints.api_base, &["v2", "bot", "message", "quota", "consumption"]);
        let response = self.send(self.http.get(url), token, self.timeout).await?;
        json::<Consumption>(response).await.map(|c| c.total_usage)
    }

    async fn send(
        &self,
        request: RequestBuilder,
        token: &AccessToken,
        timeout: Duration,
    ) -> Result<Response, LineError> {
        let response =
            request.bearer_auth(token.expose_secret()).timeout(timeout).send().await.map_err(LineError::Transport)?;
        tracing::debug!(
            path = response.url().path(),
            status = response.status().as_u16(),
            request_id = header(response.headers(), REQUEST_ID),
            "line answered"
        );
        Ok(response)
    }
}

/// Returns `id` if it can stand as one path segment: URL parsers drop `.` and `..`
/// segments, which would silently call another endpoint.
fn path_id<'a>(what: &'static str, id: &'a str) -> Result<&'a str, LineError> {
    match id {
        "" | "." | ".." => Err(LineError::InvalidId { what }),
        id => Ok(id),
    }
}

/// Joins `segments` to `base`, percent-encoding each so that an ID can never
/// change the path.
fn api_url(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
}

async fn json<T: DeserializeOwned>(response: Response) -> Result<T, LineError> {
    let status = response.status();
    if !status.is_success() {
        return Err(error_from(response).await);
    }
    let body = response.bytes().await.map_err(LineError::Transport)?;
    serde_json::from_slice(&body).map_err(|error| LineError::Decode { status, reason: error.to_string() })
}

async fn delivery(response: Response) -> Result<Delivery, LineError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Sent {
        #[serde(default)]
        sent_messages: Vec<SentMessage>,
    }
    let request_id = header(response.headers(), REQUEST_ID);
    let sent: Sent = json(response).await?;
    Ok(Delivery { request_id, sent_messages: sent.sent_messages })
}

async fn error_from(response: Response) -> LineError {
    #[derive(Deserialize)]
    struct ErrorResponse {
        message: String,
        #[serde(default)]
        details: Vec<ErrorDetail>,
    }
    let status = response.status();
    let retry_after = header(response.headers(), RETRY_AFTER.as_str())
        .and_then(|seconds| seconds.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let request_id = header(response.headers(), REQUEST_ID);
    let body = response.bytes().await.unwrap_or_default();
    let (message, details) = match serde_json::from_slice::<ErrorResponse>(&body) {
        Ok(error) => (error.message, error.details),
        Err(_) => (format!("line answered {status}"), Vec::new()),
    };
    LineError::Api { status, message, details, retry_after, request_id }
}

/// The bot's own profile, from `GET /v2/bot/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotInfo {
    /// The bot's user ID: the `destination` of its webhooks.
    pub user_id: String,
    /// The basic ID (like `@216ru...`), used in friend-add links.
    pub basic_id: String,
    /// The premium ID, if the account bought one.
    pub premium_id: Option<String>,
    /// The account's display name.
    pub display_name: String,
    /// The account's profile image URL.
    pub picture_url: Option<String>,
    /// Whether chat is on in the LINE Official Account Manager.
    pub chat_mode: ChatMode,
    /// Whether messages are marked as read automatically.
    pub mark_as_read_mode: MarkAsReadMode,
}

open_string_enum! {
    /// The account's chat setting.
    pub enum ChatMode {
        /// Chat is on.
        Chat => "chat",
        /// Chat is off (bot only).
        Bot => "bot",
    }
}

open_string_enum! {
    /// Whether messages are marked as read automatically.
    pub enum MarkAsReadMode {
        /// Automatically.
        Auto => "auto",
        /// Only when the bot marks them.
        Manual => "manual",
    }
}

/// A user's profile, from `GET /v2/bot/profile/{userId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// The user's ID.
    pub user_id: String,
    /// The user's display name.
    pub display_name: String,
    /// The user's profile image URL, if they have one.
    pub picture_url: Option<String>,
    /// The user's status message, if they have one.
    pub status_message: Option<String>,
    /// The user's language as a BCP 47 tag, once they consented to LINE's privacy policy.
    pub language: Option<String>,
}

/// A message LINE accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SentMessage {
    /// LINE's ID of the sent message.
    pub id: String,
    /// Token for quoting the sent message later, for types that can be quoted.
    pub quote_token: Option<String>,
}

/// What LINE said after accepting a reply or push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// LINE's ID of the request (`X-Line-Request-Id`), for support enquiries.
    pub request_id: Option<String>,
    /// The accepted messages, in the order sent.
    pub sent_messages: Vec<SentMessage>,
}

/// The outcome of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// LINE accepted this request.
    Sent(Delivery),
    /// An earlier request with the same retry key was accepted; nothing was sent again.
    AlreadyAccepted {
        /// The ID of the request that was accepted (`x-line-accepted-request-id`).
        accepted_request_id: String,
        /// The messages that request sent, when LINE says.
        sent_messages: Vec<SentMessage>,
    },
}

/// The outcome of a content download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentOutcome {
    /// The bytes.
    Ready(Content),
    /// LINE is still preparing the content (it answered 202); ask again later.
    NotReady,
}

/// A downloaded message content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// The bytes.
    pub bytes: Bytes,
    /// The `Content-Type` LINE gave, e.g. `image/jpeg` or `audio/x-m4a`.
    pub content_type: Option<String>,
}

open_string_enum! {
    /// Whether a video or audio is ready to download.
    pub enum TranscodingStatus {
        /// Still being prepared.
        Processing => "processing",
        /// Ready.
        Succeeded => "succeeded",
        /// Could not be prepared; it will never be ready.
        Failed => "failed",
    }
}

/// The channel's monthly push target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quota {
    /// No target is set.
    Unlimited,
    /// At most this many messages a month.
    Limited(u64),
}

/// One entry of `details` in a LINE error body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// What is wrong.
    pub message: Option<String>,
    /// Where: a JSON field such as `messages[0].text`, or a query parameter.
    pub property: Option<String>,
}

/// A failed call to LINE.
///
/// `Display` shows what LINE said (agents see it); it never contains the access token.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// LINE answered with an error status.
    #[error("{}", api_message(.message, .details))]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// LINE's `message`, or a description of the status when the body had none.
        message: String,
        /// LINE's `details`.
        details: Vec<ErrorDetail>,
        /// How long LINE asked to wait (`Retry-After`, in seconds).
        retry_after: Option<Duration>,
        /// LINE's ID of the request (`X-Line-Request-Id`).
        request_id: Option<String>,
    },
    /// LINE could not be reached, or the connection failed or timed out.
    #[error("line could not be reached: {0}")]
    Transport(#[source] reqwest::Error),
    /// LINE answered success with a body that is not what its API documents.
    #[error("line answered {status} with an unexpected body: {reason}")]
    Decode {
        /// The HTTP status.
        status: StatusCode,
        /// What did not match.
        reason: String,
    },
    /// An ID passed to the client cannot be put in a URL; nothing was sent.
    #[error("the {what} is not a valid line id")]
    InvalidId {
        /// Which ID, e.g. `user id`.
        what: &'static str,
    },
    /// The content is larger than the client accepts.
    #[error("the content is larger than {limit} bytes")]
    ContentTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

fn api_message(message: &str, details: &[ErrorDetail]) -> String {
    let details: Vec<String> = details
        .iter()
        .filter_map(|detail| match (&detail.property, &detail.message) {
            (Some(property), Some(message)) => Some(format!("{property}: {message}")),
            (None, Some(message)) => Some(message.clone()),
            (Some(property), None) => Some(property.clone()),
            (None, None) => None,
        })
        .collect();
    if details.is_empty() { message.to_owned() } else { format!("{message} ({})", details.join("; ")) }
}

impl LineError {
    /// Returns whether trying again later can succeed: LINE's 5xx and 429 answers
    /// and transport failures (retry pushes with the same retry key).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            Self::Transport(_) => true,
            Self::Decode { .. } | Self::InvalidId { .. } | Self::ContentTooLarge { .. } => false,
        }
    }

    /// Whether LINE may have acted on the request although no success came
    /// back: the answer was lost (a timeout or a connection cut after the
    /// request left), LINE failed on its side (5xx), or a success had a body
    /// we could not read. A refusal (4xx, 429) or a connection that never
    /// opened means nothing was done.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Api { status, .. } => status.is_server_error(),
            Self::Transport(error) => !error.is_connect() && !error.is_builder(),
            Self::Decode { .. } => true,
            Self::InvalidId { .. } | Self::ContentTooLarge { .. } => false,
        }
    }

    /// Returns how long LINE asked to wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Returns the HTTP status LINE answered with.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } | Self::Decode { status, .. } => Some(*status),
            Self::Transport(error) => error.status(),
            Self::InvalidId { .. } | Self::ContentTooLarge { .. } => None,
        }
    }

    /// Returns LINE's own error message.
    pub fn line_message(&self) -> Option<&str> {
        match self {
            Self::Api { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Returns whether LINE rejected the access token (401): the channel needs a new one.
    pub fn is_unauthorized(&self) -> bool {
        self.status() == Some(StatusCode::UNAUTHORIZED)
    }

    /// Returns whether LINE rejected a reply token as unknown, used or expired;
    /// the messages then wait for the next token or go out by push.
    pub fn is_invalid_reply_token(&self) -> bool {
        matches!(self, Self::Api { status, message, .. }
            if *status == StatusCode::BAD_REQUEST && message == "Invalid reply token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_access_token_never_shows_in_debug() {
        let token = AccessToken::new("secret-token");

        assert_eq!(format!("{token:?}"), "***");
        assert_eq!(token.expose_secret(), "secret-token");
    }

    #[test]
    fn ids_are_percent_encoded_into_one_path_segment() {
        let base = Url::parse("http://127.0.0.1:8080").unwrap();

        let url = api_url(&base, &["v2", "bot", "profile", "../info?x=1#y"]);

        assert_eq!(url.as_str(), "http://127.0.0.1:8080/v2/bot/profile/..%2Finfo%3Fx=1%23y");
    }

    #[tokio::test]
    async fn dot_segments_and_empty_ids_are_refused_before_sending() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Nothing listens on the discard port: a request would fail as transport.
        let base = Url::parse("http://127.0.0.1:9").unwrap();
        let client = LineClient::new(reqwest::Client::new(), LineEndpoints { api_base: base.clone(), data_base: base });
        let token = AccessToken::new("t");

        for id in ["", ".", ".."] {
            let profile = client.profile(&token, id).await.unwrap_err();
            let content = client.content(&token, id).await.unwrap_err();
            let transcoding = client.content_transcoding(&token, id).await.unwrap_err();

            assert!(matches!(profile, LineError::InvalidId { what: "user id" }), "{profile:?}");
            assert!(matches!(content, LineError::InvalidId { what: "message id" }), "{content:?}");
            assert!(matches!(transcoding, LineError::InvalidId { .. }), "{transcoding:?}");
            assert!(!profile.is_retryable());
        }
    }

    #[test]
    fn a_base_with_a_path_keeps_it() {
        let base = Url::parse("http://127.0.0.1:8080/line/").unwrap();

        let url = api_url(&base, &["v2", "bot", "info"]);

        assert_eq!(url.as_str(), "http://127.0.0.1:8080/line/v2/bot/info");
    }

    #[test]
    fn an_api_error_displays_lines_message_and_details() {
        let error = LineError::Api {
            status: StatusCode::BAD_REQUEST,
            message: "The request body has 1 error(s)".into(),
            details: vec![ErrorDetail {
                message: Some("Length must be between 0 and 5000".into()),
                property: Some("messages[0].text".into()),
            }],
            retry_after: None,
            request_id: None,
        };

        assert_eq!(
            error.to_string(),
            "The request body has 1 error(s) (messages[0].text: Length must be between 0 and 5000)"
        );
        assert!(!error.is_retryable());
    }

    #[test]
    fn production_endpoints_are_lines_hosts() {
        let endpoints = LineEndpoints::production();

        assert_eq!(endpoints.api_base.as_str(), "https://api.line.me/");
        assert_eq!(endpoints.data_base.as_str(), "https://api-data.line.me/");
    }
}
