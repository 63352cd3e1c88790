//! A fake LINE Messaging API: the API host and the content (data) host, sharing one state.
//!
//! What it checks, like LINE:
//! - `Authorization: Bearer …` must name a channel added with
//!   [`FakeLine::add_channel`] and not expired with [`FakeLine::expire_token`],
//!   else 401;
//! - reply tokens must have been issued with [`FakeLine::issue_reply_token`], be
//!   unused and younger than the window ([`FakeLine::set_reply_token_ttl`],
//!   60 s by default), else 400 `Invalid reply token`;
//! - `messages` must hold 1 to 5 objects; text must be non-empty and at most 5000
//!   UTF-16 code units; image URLs must be HTTPS; else 400 with LINE's `details`;
//! - a push whose `X-Line-Retry-Key` was already accepted answers 409 with
//!   `x-line-accepted-request-id` and delivers nothing;
//! - pushes beyond the monthly limit ([`FakeLine::set_quota`]) answer 429.
//!
//! Content endpoints are served on the data host only, as on LINE.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

const AUTHENTICATION_FAILED: &str =
    "Authentication failed. Confirm that the access token in the authorization header is valid.";
const MAX_TEXT_LENGTH: usize = 5000;
const MAX_MESSAGES: usize = 5;
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The bot profile `GET /v2/bot/info` answers for a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FakeBotInfo {
    /// The bot's user ID.
    pub user_id: String,
    /// The basic ID, like `@216ruabc`.
    pub basic_id: String,
    /// The premium ID, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub premium_id: Option<String>,
    /// The display name.
    pub display_name: String,
    /// The profile image URL, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    /// `chat` or `bot`.
    pub chat_mode: String,
    /// `auto` or `manual`.
    pub mark_as_read_mode: String,
}

impl FakeBotInfo {
    /// Returns a bot with chat on and manual read marking, its basic ID derived from `user_id`.
    pub fn new(user_id: impl Into<String>, display_name: impl Into<String>) -> Self {
        let user_id = user_id.into();
        let basic_id = format!("@{}", user_id.chars().skip(1).take(8).collect::<String>().to_lowercase());
        Self {
            user_id,
            basic_id,
            premium_id: None,
            display_name: display_name.into(),
            picture_url: None,
            chat_mode: "chat".to_owned(),
            mark_as_read_mode: "manual".to_owned(),
        }
    }
}

/// The profile `GET /v2/bot/profile/{userId}` answers for a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FakeProfile {
    /// The user's ID.
    pub user_id: String,
    /// The display name.
    pub display_name: String,
    /// The profile image URL, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture_url: Option<String>,
    /// The status message, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// The language tag, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl FakeProfile {
    /// Returns a profile with only an ID and a display name.
    pub fn new(user_id: impl Into<String>, display_name: impl Into<String>) -> Self {
        Self {
            user_id: user_id.into(),
            display_name: display_name.into(),
            picture_url: None,
            status_message: None,
            language: None,
        }
    }
}

/// Which of LINE's two hosts a request reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeHost {
    /// `api.line.me`.
    Api,
    /// `api-data.line.me`.
    Data,
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The host it reached.
    pub host: FakeHost,
    /// The HTTP method.
    pub method: Method,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// The headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<Value>,
    /// The body bytes.
    pub raw_body: Bytes,
    /// When it arrived.
    pub received_at: Instant,
}

impl RecordedRequest {
    /// Returns a header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A running fake LINE API. Stops when dropped or on [`FakeLine::shutdown`].
#[derive(Debug)]
pub struct FakeLine {
    api_address: SocketAddr,
    data_address: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    stop: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl FakeLine {
    /// Starts the API host and the data host on loopback ports chosen by the system.
    ///
    /// # Panics
    /// When loopback ports cannot be bound.
    pub async fn start() -> FakeLine {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let (stop, stopped) = watch::channel(false);
        let mut servers = Vec::new();
        let mut addresses = Vec::new();
        for host in [FakeHost::Api, FakeHost::Data] {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("the fake line api binds a loopback port");
            addresses.push(listener.local_addr().expect("a bound listener has an address"));
            let router = Router::new().fallback(handle).with_state(Shared { host, state: state.clone() });
            let mut stopped = stopped.clone();
            servers.push(tokio::spawn(async move {
                let until_stopped = async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                };
                let _ = axum::serve(listener, router).with_graceful_shutdown(until_stopped).await;
            }));
        }
        FakeLine { api_address: addresses[0], data_address: addresses[1], state, stop, servers }
    }

    /// Returns the base URL standing in for `https://api.line.me`.
    pub fn api_base(&self) -> Url {
        base_url(self.api_address)
    }

    /// Returns the base URL standing in for `https://api-data.line.me`.
    pub fn data_base(&self) -> Url {
        base_url(self.data_address)
    }

    /// Stops both hosts, letting requests in flight finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        for server in std::mem::take(&mut self.servers) {
            let _ = server.await;
        }
    }

    /// Adds a channel whose calls authenticate with `access_token`.
    pub fn add_channel(&self, access_token: &str, bot_info: FakeBotInfo) {
        self.state().channels.insert(access_token.to_owned(), Channel { bot_info, expired: false });
    }

    /// Makes `access_token` fail with 401 from now on, as a revoked or expired token does.
    pub fn expire_token(&self, access_token: &str) {
        if let Some(channel) = self.state().channels.get_mut(access_token) {
            channel.expired = true;
        }
    }

    /// Issues a reply token, as LINE does with a webhook event; its window starts now.
    pub fn issue_reply_token(&self, reply_token: &str) {
        self.state().reply_tokens.insert(reply_token.to_owned(), ReplyToken { issued_at: Instant::now(), used: false });
    }

    /// Sets how long reply tokens stay usable after they are issued (`Duration::ZERO`
    /// makes every token expired).
    pub fn set_reply_token_ttl(&self, ttl: Duration) {
        self.state().reply_token_ttl = Some(ttl);
    }

    /// Makes the next call whose path starts with `path_prefix` fail with `status`
    /// and `body`, without taking effect; `retry_after` adds a `Retry-After` header
    /// in seconds. Each call queues one failure: call it N times to fail N calls.
    ///
    /// # Panics
    /// When `status` is not a valid HTTP status code.
    pub fn fail_next(&self, path_prefix: &str, status: u16, body: Value, retry_after: Option<u64>) {
        self.state().failures.push_back(ScriptedFailure {
            path_prefix: path_prefix.to_owned(),
            status: StatusCode::from_u16(status).expect("a valid http status"),
            body,
            retry_after,
            after_taking_effect: false,
        });
    }

    /// Makes the next call whose path starts with `path_prefix` take effect as
    /// usual (a push is delivered and its retry key accepted) but answer `status`,
    /// as when LINE's answer is lost on the way back.
    ///
    /// # Panics
    /// When `status` is not a valid HTTP status code.
    pub fn fail_next_after_taking_effect(&self, path_prefix: &str, status: u16) {
        self.state().failures.push_back(ScriptedFailure {
            path_prefix: path_prefix.to_owned(),
            status: StatusCode::from_u16(status).expect("a valid http status"),
            body: json!({"message": "An error occurred in the backend"}),
            retry_after: None,
            after_taking_effect: true,
        });
    }

    /// Makes the next call whose path starts with `path_prefix` answer only
    /// after `delay`, with the answer as it stood when the call arrived: a
    /// slow way back, so a later call can be answered first.
    pub fn delay_next(&self, path_prefix: &str, delay: Duration) {
        self.state().delays.push_back((path_prefix.to_owned(), delay));
    }

    /// Stores the content of a user's message; the first `not_ready_times` content
    /// or transcoding calls for it answer "not ready" (202, or `processing`).
    pub fn set_content(&self, message_id: &str, bytes: impl Into<Bytes>, content_type: &str, not_ready_times: u32) {
        self.state().contents.insert(
            message_id.to_owned(),
            StoredContent {
                bytes: bytes.into(),
                content_type: content_type.to_owned(),
                not_ready_remaining: not_ready_times,
            },
        );
    }

    /// Sets the profile answered for `profile.user_id`.
    pub fn set_profile(&self, profile: FakeProfile) {
        self.state().profiles.insert(profile.user_id.clone(), profile);
    }

    /// Sets a monthly push limit (`type: limited`); without one the quota is `none`.
    /// Each accepted push counts one, as LINE counts one message per recipient.
    pub fn set_quota(&self, limit: u64) {
        self.state().quota = Some(limit);
    }

    /// Returns every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state().requests.clone()
    }

    /// Returns the requests received for exactly `path`, in order.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.state().requests.iter().filter(|request| request.path == path).cloned().collect()
    }

    /// Returns the message objects delivered to `to` by accepted pushes, in order.
    pub fn pushed_to(&self, to: &str) -> Vec<Value> {
        self.state()
            .pushed
            .iter()
            .filter(|(recipient, _)| recipient == to)
            .flat_map(|(_, messages)| messages.iter().cloned())
            .collect()
    }

    /// Returns the message objects delivered with `reply_token`.
    pub fn replied(&self, reply_token: &str) -> Vec<Value> {
        self.state().replied.get(reply_token).cloned().unwrap_or_default()
    }

    fn state(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeLine {
    fn drop(&mut self) {
        for server in &self.servers {
            server.abort();
        }
    }
}

fn base_url(address: SocketAddr) -> Url {
    Url::parse(&format!("http://{address}")).expect("a loopback address makes a valid url")
}

#[derive(Debug, Clone)]
struct Shared {
    host: FakeHost,
    state: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    channels: HashMap<String, Channel>,
    reply_tokens: HashMap<String, ReplyToken>,
    reply_token_ttl: Option<Duration>,
    accepted_retry_keys: HashMap<String, AcceptedPush>,
    failures: VecDeque<ScriptedFailure>,
    /// Answers held back: the next call per path prefix waits this long.
    delays: VecDeque<(String, Duration)>,
    contents: HashMap<String, StoredContent>,
    profiles: HashMap<String, FakeProfile>,
    quota: Option<u64>,
    accepted_pushes: u64,
    pushed: Vec<(String, Vec<Value>)>,
    replied: HashMap<String, Vec<Value>>,
    requests: Vec<RecordedRequest>,
    last_message_id: u64,
}

#[derive(Debug)]
struct Channel {
    bot_info: FakeBotInfo,
    expired: bool,
}

#[derive(Debug)]
struct ReplyToken {
    issued_at: Instant,
    used: bool,
}

#[derive(Debug)]
struct AcceptedPush {
    request_id: String,
    sent_messages: Vec<Value>,
}

#[derive(Debug)]
struct ScriptedFailure {
    path_prefix: String,
    status: StatusCode,
    body: Value,
    retry_after: Option<u64>,
    after_taking_effect: bool,
}

#[derive(Debug)]
struct StoredContent {
    bytes: Bytes,
    content_type: String,
    not_ready_remaining: u32,
}

/// An answer built while the state is locked, turned into a response after.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    content_type: String,
    body: Bytes,
}

impl Answer {
    fn json(status: StatusCode, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            content_type: "application/json".to_owned(),
            body: Bytes::from(body.to_string()),
        }
    }

    fn error(status: StatusCode, message: &str) -> Self {
        Self::json(status, json!({ "message": message }))
    }

    fn invalid(details: Vec<Value>) -> Self {
        Self::json(
            StatusCode::BAD_REQUEST,
            json!({
                "message": format!("The request body has {} error(s)", details.len()),
                "details": details,
            }),
        )
    }

    fn with_header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let recorded = RecordedRequest {
        host: shared.host,
        method: parts.method,
        path: parts.uri.path().to_owned(),
        headers: parts.headers,
        body: serde_json::from_slice(&raw_body).ok(),
        raw_body,
        received_at: Instant::now(),
    };
    let (answer, delay) = {
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(recorded.clone());
        let delay = state.delays.iter().position(|(prefix, _)| recorded.path.starts_with(prefix.as_str()));
        let delay = delay.and_then(|index| state.delays.remove(index)).map(|(_, delay)| delay);
        (state.answer(&recorded), delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    into_response(answer)
}

fn into_response(answer: Answer) -> Response {
    let mut response = (answer.status, Body::from(answer.body)).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        headers.insert("x-line-request-id", value);
    }
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

impl FakeState {
    fn answer(&mut self, request: &RecordedRequest) -> Answer {
        let scripted = self.failures.iter().position(|failure| request.path.starts_with(&failure.path_prefix));
        if let Some(index) = scripted
            && !self.failures[index].after_taking_effect
        {
            let failure = self.failures.remove(index).expect("the position exists");
            return scripted_answer(failure);
        }
        let answer = self.route(request);
        if let Some(index) = scripted {
            let failure = self.failures.remove(index).expect("the position exists");
            return scripted_answer(failure);
        }
        answer
    }

    fn route(&mut self, request: &RecordedRequest) -> Answer {
        let token = request.header(AUTHORIZATION.as_str()).and_then(|value| value.strip_prefix("Bearer "));
        let Some(channel) = token.and_then(|token| self.channels.get(token)) else {
            return Answer::error(StatusCode::UNAUTHORIZED, AUTHENTICATION_FAILED);
        };
        if channel.expired {
            return Answer::error(StatusCode::UNAUTHORIZED, AUTHENTICATION_FAILED);
        }
        let segments: Vec<&str> = request.path.trim_start_matches('/').split('/').collect();
        let method = &request.method;
        match (request.host, segments.as_slice()) {
            (FakeHost::Api, ["v2", "bot", "info"]) if method == Method::GET => {
                Answer::json(StatusCode::OK, json!(channel.bot_info))
            }
            (FakeHost::Api, ["v2", "bot", "message", "reply"]) if method == Method::POST => self.reply(request),
            (FakeHost::Api, ["v2", "bot", "message", "push"]) if method == Method::POST => self.push(request),
            (FakeHost::Api, ["v2", "bot", "profile", user_id]) if method == Method::GET => {
                match self.profiles.get(*user_id) {
                    Some(profile) => Answer::json(StatusCode::OK, json!(profile)),
                    None => Answer::error(StatusCode::NOT_FOUND, "Not found"),
                }
            }
            (FakeHost::Api, ["v2", "bot", "message", "quota"]) if method == Method::GET => {
                let quota = match self.quota {
                    Some(limit) => json!({"type": "limited", "value": limit}),
                    None => json!({"type": "none"}),
                };
                Answer::json(StatusCode::OK, quota)
            }
            (FakeHost::Api, ["v2", "bot", "message", "quota", "consumption"]) if method == Method::GET => {
                Answer::json(StatusCode::OK, json!({"totalUsage": self.accepted_pushes}))
            }
            (FakeHost::Data, ["v2", "bot", "message", message_id, "content"]) if method == Method::GET => {
                self.content(message_id)
            }
            (FakeHost::Data, ["v2", "bot", "message", message_id, "content", "transcoding"])
                if method == Method::GET =>
            {
                self.transcoding(message_id)
            }
            _ => Answer::error(StatusCode::NOT_FOUND, "Not found"),
        }
    }

    fn reply(&mut self, request: &RecordedRequest) -> Answer {
        let Some(body) = &request.body else {
            return unparsable_body();
        };
        let messages = match validate_messages(body) {
            Ok(messages) => messages,
            Err(answer) => return answer,
        };
        let ttl = self.reply_token_ttl.unwrap_or(Duration::from_secs(60));
        let reply_token = body.get("replyToken").and_then(Value::as_str).unwrap_or_default();
        let usable = match self.reply_tokens.get_mut(reply_token) {
            Some(token) if !token.used && token.issued_at.elapsed() < ttl => {
                token.used = true;
                true
            }
            _ => false,
        };
        if !usable {
            return Answer::error(StatusCode::BAD_REQUEST, "Invalid reply token");
        }
        let sent_messages = self.sent_messages(&messages);
        self.replied.insert(reply_token.to_owned(), messages);
        Answer::json(StatusCode::OK, json!({ "sentMessages": sent_messages }))
    }

    fn push(&mut self, request: &RecordedRequest) -> Answer {
        let Some(body) = &request.body else {
            return unparsable_body();
        };
        let retry_key = request.header("x-line-retry-key").map(str::to_owned);
        if let Some(key) = &retry_key {
            if uuid::Uuid::try_parse(key).is_err() {
                return Answer::error(
                    StatusCode::BAD_REQUEST,
                    "The value for the 'X-Line-Retry-Key' header is invalid",
                );
            }
            if let Some(accepted) = self.accepted_retry_keys.get(key) {
                return Answer::json(
                    StatusCode::CONFLICT,
                    json!({
                        "message": "The retry key is already accepted",
                        "sentMessages": accepted.sent_messages,
                    }),
                )
                .with_header("x-line-accepted-request-id", accepted.request_id.clone());
            }
        }
        let to = match body.get("to").and_then(Value::as_str) {
            Some(to) if !to.is_empty() => to.to_owned(),
            _ => {
                return Answer::invalid(vec![json!({"message": "must be specified", "property": "to"})]);
            }
        };
        let messages = match validate_messages(body) {
            Ok(messages) => messages,
            Err(answer) => return answer,
        };
        if self.quota.is_some_and(|limit| self.accepted_pushes >= limit) {
            return Answer::error(StatusCode::TOO_MANY_REQUESTS, "You have reached your monthly limit.");
        }
        self.accepted_pushes += 1;
        let sent_messages = self.sent_messages(&messages);
        let request_id = uuid::Uuid::new_v4().to_string();
        if let Some(key) = retry_key {
            self.accepted_retry_keys
                .insert(key, AcceptedPush { request_id: request_id.clone(), sent_messages: sent_messages.clone() });
        }
        self.pushed.push((to, messages));
        Answer::json(StatusCode::OK, json!({ "sentMessages": sent_messages }))
            .with_header("x-line-request-id", request_id)
    }

    fn content(&mut self, message_id: &str) -> Answer {
        let Some(content) = self.contents.get_mut(message_id) else {
            return Answer::error(StatusCode::NOT_FOUND, "Not found");
        };
        if content.not_ready_remaining > 0 {
            content.not_ready_remaining -= 1;
            return Answer {
                status: StatusCode::ACCEPTED,
                headers: Vec::new(),
                content_type: "text/plain".to_owned(),
                body: Bytes::new(),
            };
        }
        Answer {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type: content.content_type.clone(),
            body: content.bytes.clone(),
        }
    }

    fn transcoding(&mut self, message_id: &str) -> Answer {
        let Some(content) = self.contents.get_mut(message_id) else {
            return Answer::error(StatusCode::NOT_FOUND, "Not found");
        };
        let status = if content.not_ready_remaining > 0 {
            content.not_ready_remaining -= 1;
            "processing"
        } else {
            "succeeded"
        };
        Answer::json(StatusCode::OK, json!({ "status": status }))
    }

    fn sent_messages(&mut self, messages: &[Value]) -> Vec<Value> {
        messages
            .iter()
            .map(|_| {
                self.last_message_id += 1;
                let id = 500_000_000_000_000_000 + self.last_message_id;
                json!({"id": id.to_string(), "quoteToken": format!("quote-{id}")})
            })
            .collect()
    }
}

fn scripted_answer(failure: ScriptedFailure) -> Answer {
    let answer = Answer::json(failure.status, failure.body);
    match failure.retry_after {
        Some(seconds) => answer.with_header(RETRY_AFTER.as_str(), seconds.to_string()),
        None => answer,
    }
}

fn unparsable_body() -> Answer {
    Answer::error(StatusCode::BAD_REQUEST, "The request body could not be parsed as JSON")
}

/// Checks `messages` as LINE does for the types Madoguchi sends; other known types
/// pass unchecked.
fn validate_messages(body: &Value) -> Result<Vec<Value>, Answer> {
    let messages = body.get("messages").and_then(Value::as_array);
    let Some(messages) = messages.filter(|m| (1..=MAX_MESSAGES).contains(&m.len())) else {
        return Err(Answer::invalid(vec![json!({"message": "Size must be between 1 and 5", "property": "messages"})]));
    };
    let mut details = Vec::new();
    for (index, message) in messages.iter().enumerate() {
        let field = |name: &str| message.get(name).and_then(Value::as_str);
        let property = |name: &str| format!("messages[{index}].{name}");
        match field("type") {
            Some("text") => match field("text") {
                None | Some("") => details.push(json!({"message": "May not be empty", "property": property("text")})),
                Some(text) if text.encode_utf16().count() > MAX_TEXT_LENGTH => details.push(
                    json!({"message": "Length must be between 0 and 5000", "property": property("text")}),
                ),
                Some(_) => {}
            },
            Some("image") => {
                for name in ["originalContentUrl", "previewImageUrl"] {
                    let https = field(name).is_some_and(|url| url.starts_with("https://") && url.len() <= 2000);
                    if !https {
                        details.push(json!({"message": "Must be a valid HTTPS URL", "property": property(name)}));
                    }
                }
            }
            Some(
                "sticker" | "video" | "audio" | "location" | "imagemap" | "template" | "flex" | "textV2"
                | "coupon",
            ) => {}
            _ => details.push(json!({
                "message": "Must be one of the following values: [text, image, video, audio, location, sticker, template, imagemap, flex, textV2, coupon]",
                "property": property("type"),
            })),
        }
    }
    if details.is_empty() { Ok(messages.clone()) } else { Err(Answer::invalid(details)) }
}

#[cfg(test)]
mod tests;
