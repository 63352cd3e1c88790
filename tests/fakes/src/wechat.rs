//! A fake WeChat Official Account API (`https://api.weixin.qq.com`): access
//! tokens, customer-service messages, temporary media upload and download.
//!
//! WeChat answers almost every failure with HTTP 200 and a JSON body
//! `{"errcode":N,"errmsg":"..."}`; so does this fake. What it checks, like WeChat:
//! - token requests (`GET /cgi-bin/token`, `POST /cgi-bin/stable_token`) need
//!   `grant_type=client_credential` (else 40002), an AppID added with
//!   [`FakeWechat::add_app`] (missing: 41002, unknown: 40013) and its AppSecret
//!   (missing: 41004, wrong: 40125);
//! - each classic token call mints a new token and invalidates the previous
//!   classic one (40001 after [`FakeWechat::set_replaced_token_grace`], zero by
//!   default; WeChat promises at most 5 minutes);
//! - the stable endpoint answers its current token with the remaining
//!   `expires_in` while it is valid, and mints a new one when it is not, in the
//!   last 1/24 of its lifetime (the last 5 minutes of 7200 s, the old one staying
//!   valid until it expires), or on `force_refresh` (the old one then answers
//!   40001); a forced refresh within 30 s of the previous one answers the current
//!   token, as WeChat does. Classic and stable tokens are independent, as on
//!   WeChat: minting one never invalidates the other;
//! - calls with `access_token`: missing 41001, unknown, replaced or revoked 40001,
//!   expired 42001 (lifetime [`FakeWechat::set_token_lifetime`], 7200 s by default);
//! - customer-service messages: JSON (else 47001), a `touser` (else 40003), a
//!   known `msgtype` (else 40008) and its object (text: non-empty `content`, else
//!   44004; image, voice, video and music: media IDs this account uploaded or
//!   [`FakeWechat::add_media`] registered, else 40007); a closed 48-hour window
//!   answers 45015 and too many messages 45047;
//! - uploads: `type` image, voice, video or thumb (else 40004), a `media` file
//!   part with a file name (else 41005) whose extension fits the type (else
//!   40005) and whose size is within WeChat's limit (else 40006); a thumb answers
//!   `thumb_media_id` rather than `media_id`, as WeChat does;
//! - media downloads: unknown media or another account's uploads answer 40007
//!   as `text/plain`; a video answers `{"video_url":…}` and is served from
//!   `/video/{media_id}` without a token, like WeChat's video links.
//!
//! Error messages are WeChat's without the ` rid: …` suffix it appends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use url::Url;

const JSON: &str = "application/json; encoding=utf-8";
const MAX_BODY: usize = 64 * 1024 * 1024;
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(7200);
const FORCE_REFRESH_INTERVAL: Duration = Duration::from_secs(30);
const MESSAGE_TYPES: [&str; 10] =
    ["text", "image", "voice", "video", "music", "news", "mpnews", "msgmenu", "wxcard", "miniprogrampage"];

const INVALID_CREDENTIAL: (i64, &str) = (40001, "invalid credential, access_token is invalid or not latest");
const ACCESS_TOKEN_EXPIRED: (i64, &str) = (42001, "access_token expired");
const ACCESS_TOKEN_MISSING: (i64, &str) = (41001, "access_token missing");
const INVALID_MEDIA_ID: (i64, &str) = (40007, "invalid media_id");
const DATA_FORMAT_ERROR: (i64, &str) = (47001, "data format error");
const MEDIA_DATA_MISSING: (i64, &str) = (41005, "media data missing");

/// A request the fake received.
#[derive(Debug, Clone)]
pub struct WechatRequest {
    /// The HTTP method.
    pub method: Method,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// The query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    /// The headers.
    pub headers: HeaderMap,
    /// The body parsed as JSON, when it was JSON.
    pub body: Option<Value>,
    /// The body bytes.
    pub raw_body: Bytes,
    /// When it arrived.
    pub received_at: Instant,
}

impl WechatRequest {
    /// Returns the first value of a query parameter.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Returns a header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

/// A running fake WeChat API. Stops when dropped or on [`FakeWechat::shutdown`].
#[derive(Debug)]
pub struct FakeWechat {
    address: SocketAddr,
    state: Arc<Mutex<WechatState>>,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl FakeWechat {
    /// Starts the fake on a loopback port chosen by the system.
    ///
    /// # Panics
    /// When a loopback port cannot be bound.
    pub async fn start() -> FakeWechat {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the fake wechat api binds a loopback port");
        let address = listener.local_addr().expect("a bound listener has an address");
        let state = Arc::new(Mutex::new(WechatState::default()));
        let shared = Shared { state: state.clone(), base: base_url(address) };
        let router = Router::new().fallback(handle).layer(DefaultBodyLimit::max(MAX_BODY)).with_state(shared);
        let (stop, mut stopped) = watch::channel(false);
        let server = tokio::spawn(async move {
            let until_stopped = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            let _ = axum::serve(listener, router).with_graceful_shutdown(until_stopped).await;
        });
        FakeWechat { address, state, stop, server: Some(server) }
    }

    /// Returns the base URL standing in for `https://api.weixin.qq.com`.
    pub fn base_url(&self) -> Url {
        base_url(self.address)
    }

    /// Stops the fake, letting requests in flight finish.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Adds an Official Account that gets tokens with `app_id` and `app_secret`.
    pub fn add_app(&self, app_id: &str, app_secret: &str) {
        self.state().apps.insert(app_id.to_owned(), App { secret: app_secret.to_owned(), ..App::default() });
    }

    /// Sets how long tokens minted from now on live (7200 s by default); their
    /// `expires_in` is its whole seconds.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        self.state().token_lifetime = Some(lifetime);
    }

    /// Sets how long a classic token stays usable after a newer classic token
    /// replaced it (zero by default; WeChat promises at most 5 minutes).
    pub fn set_replaced_token_grace(&self, grace: Duration) {
        self.state().replaced_token_grace = grace;
    }

    /// Makes the app's current classic and stable tokens expired now: calls
    /// with them answer 42001 and the stable endpoint mints a new one.
    pub fn expire_tokens(&self, app_id: &str) {
        let mut state = self.state();
        let current: Vec<String> = state
            .apps
            .get(app_id)
            .map(|app| app.classic.iter().chain(&app.stable).cloned().collect())
            .unwrap_or_default();
        for token in current {
            if let Some(record) = state.tokens.get_mut(&token)
                && !matches!(record.invalidated, Some(Invalidation::Revoked))
            {
                record.invalidated = Some(Invalidation::Expired);
            }
        }
    }

    /// Makes every token the app was issued answer 40001, as when its AppSecret
    /// is reset; the stable endpoint then mints a new one.
    pub fn revoke_tokens(&self, app_id: &str) {
        for record in self.state().tokens.values_mut().filter(|record| record.app_id == app_id) {
            record.invalidated = Some(Invalidation::Revoked);
        }
    }

    /// Returns how many tokens were minted for `app_id`, by either endpoint.
    pub fn tokens_issued(&self, app_id: &str) -> usize {
        self.state().tokens_issued.get(app_id).copied().unwrap_or_default()
    }

    /// Returns how many calls to either token endpoint named `app_id`, whether
    /// they minted a token, answered the current one or failed.
    pub fn token_calls(&self, app_id: &str) -> usize {
        self.state().token_calls.get(app_id).copied().unwrap_or_default()
    }

    /// Closes the 48-hour customer-service window of `openid`: sends to it
    /// answer 45015 until [`FakeWechat::open_window`].
    pub fn close_window(&self, openid: &str) {
        self.state().closed_windows.insert(openid.to_owned());
    }

    /// Opens the window of `openid` and resets its message count, as when the
    /// consumer writes again; undoes [`FakeWechat::close_window`] and
    /// [`FakeWechat::limit_messages`].
    pub fn open_window(&self, openid: &str) {
        let mut state = self.state();
        state.closed_windows.remove(openid);
        state.limited.remove(openid);
    }

    /// Makes sends to `openid` answer 45047 (too many messages) until
    /// [`FakeWechat::open_window`].
    pub fn limit_messages(&self, openid: &str) {
        self.state().limited.insert(openid.to_owned());
    }

    /// Makes the next send answer `errcode` and `errmsg` without taking effect,
    /// before any check. Failures queue: call it N times to fail N sends.
    pub fn fail_next_send(&self, errcode: i64, errmsg: &str) {
        self.state().scripted_sends.push_back(ScriptedSend::Fail { errcode, errmsg: errmsg.to_owned() });
    }

    /// Makes the next send take effect as usual (the message is delivered when
    /// valid) but lose its answer: the fake sends the start of a JSON body and
    /// drops the connection. Queues with [`FakeWechat::fail_next_send`].
    pub fn drop_next_send_after_taking_effect(&self) {
        self.state().scripted_sends.push_back(ScriptedSend::DropAnswer);
    }

    /// Registers media a consumer sent, served by `/cgi-bin/media/get` to every
    /// account with `content_type`, and usable in messages.
    pub fn add_media(&self, media_id: &str, content_type: &str, bytes: impl Into<Bytes>) {
        let kind = match content_type.split('/').next() {
            Some("image") => "image",
            Some("audio") => "voice",
            Some("video") => "video",
            _ => "file",
        };
        let media = StoredMedia {
            kind: kind.to_owned(),
            content_type: content_type.to_owned(),
            bytes: bytes.into(),
            owner: None,
            uploaded: false,
            linked: false,
        };
        self.state().media.insert(media_id.to_owned(), media);
    }

    /// Registers a video a consumer sent: `/cgi-bin/media/get` answers its
    /// `video_url` on this fake, which serves it as `video/mp4`.
    pub fn add_video(&self, media_id: &str, bytes: impl Into<Bytes>) {
        let media = StoredMedia {
            kind: "video".to_owned(),
            content_type: "video/mp4".to_owned(),
            bytes: bytes.into(),
            owner: None,
            uploaded: false,
            linked: true,
        };
        self.state().media.insert(media_id.to_owned(), media);
    }

    /// Returns an upload's type, content type (the part's, else
    /// `application/octet-stream`) and bytes.
    pub fn uploaded(&self, media_id: &str) -> Option<(String, String, Bytes)> {
        let state = self.state();
        let media = state.media.get(media_id).filter(|media| media.uploaded)?;
        Some((media.kind.clone(), media.content_type.clone(), media.bytes.clone()))
    }

    /// Returns how many uploads succeeded.
    pub fn uploads(&self) -> usize {
        self.state().media.values().filter(|media| media.uploaded).count()
    }

    /// Returns every delivered message body with the AppID that sent it, in order.
    pub fn sent(&self) -> Vec<(String, Value)> {
        self.state().sent.clone()
    }

    /// Returns the message bodies delivered to `openid`, in order.
    pub fn sent_to(&self, openid: &str) -> Vec<Value> {
        let state = self.state();
        state.sent.iter().filter(|(_, body)| body["touser"] == openid).map(|(_, body)| body.clone()).collect()
    }

    /// Returns every request received so far, in order.
    pub fn requests(&self) -> Vec<WechatRequest> {
        self.state().requests.clone()
    }

    /// Returns the requests received for exactly `path`, in order.
    pub fn requests_to(&self, path: &str) -> Vec<WechatRequest> {
        self.state().requests.iter().filter(|request| request.path == path).cloned().collect()
    }

    fn state(&self) -> MutexGuard<'_, WechatState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for FakeWechat {
    fn drop(&mut self) {
        if let Some(server) = &self.server {
            server.abort();
        }
    }
}

fn base_url(address: SocketAddr) -> Url {
    Url::parse(&format!("http://{address}")).expect("a loopback address makes a valid url")
}

#[derive(Debug, Clone)]
struct Shared {
    state: Arc<Mutex<WechatState>>,
    base: Url,
}

#[derive(Debug, Default)]
struct WechatState {
    apps: HashMap<String, App>,
    tokens: HashMap<String, TokenRecord>,
    token_lifetime: Option<Duration>,
    replaced_token_grace: Duration,
    tokens_issued: HashMap<String, usize>,
    token_calls: HashMap<String, usize>,
    closed_windows: HashSet<String>,
    limited: HashSet<String>,
    scripted_sends: VecDeque<ScriptedSend>,
    media: HashMap<String, StoredMedia>,
    sent: Vec<(String, Value)>,
    requests: Vec<WechatRequest>,
}

#[derive(Debug, Default)]
struct App {
    secret: String,
    classic: Option<String>,
    stable: Option<String>,
    last_forced_refresh: Option<Instant>,
}

#[derive(Debug)]
struct TokenRecord {
    app_id: String,
    expires_at: Instant,
    invalidated: Option<Invalidation>,
}

#[derive(Debug, Clone, Copy)]
enum Invalidation {
    /// A newer classic token replaced it.
    Replaced { at: Instant },
    /// Revoked, or replaced by a forced stable refresh: 40001.
    Revoked,
    /// Expired early by the test: 42001.
    Expired,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    Classic,
    Stable,
}

#[derive(Debug)]
enum ScriptedSend {
    Fail { errcode: i64, errmsg: String },
    DropAnswer,
}

#[derive(Debug)]
struct StoredMedia {
    kind: String,
    content_type: String,
    bytes: Bytes,
    /// The AppID that uploaded it; consumer media belong to every account.
    owner: Option<String>,
    uploaded: bool,
    /// Whether `media/get` answers a `video_url` rather than the bytes.
    linked: bool,
}

/// The `media` part of an upload.
#[derive(Debug)]
struct MediaPart {
    file_name: Option<String>,
    content_type: Option<String>,
    bytes: Bytes,
}

/// An answer built while the state is locked, turned into a response after.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
    content_type: String,
    body: Bytes,
    /// Send the body's first half, then drop the connection.
    dropped: bool,
}

impl Answer {
    fn json(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
            content_type: JSON.to_owned(),
            body: Bytes::from(body.to_string()),
            dropped: false,
        }
    }

    fn error((errcode, errmsg): (i64, &str)) -> Self {
        Self::json(json!({"errcode": errcode, "errmsg": errmsg}))
    }

    fn ok() -> Self {
        Self::error((0, "ok"))
    }

    fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            headers: Vec::new(),
            content_type: "text/html".to_owned(),
            body: Bytes::from_static(b"<html><body><h1>404 Not Found</h1></body></html>"),
            dropped: false,
        }
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let raw_body = axum::body::to_bytes(body, MAX_BODY).await.unwrap_or_default();
    let media_part = if parts.method == Method::POST && parts.uri.path() == "/cgi-bin/media/upload" {
        media_part(&parts, raw_body.clone()).await
    } else {
        None
    };
    let query = url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect();
    let recorded = WechatRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query,
        headers: parts.headers,
        body: serde_json::from_slice(&raw_body).ok(),
        raw_body,
        received_at: Instant::now(),
    };
    let answer = {
        let mut state = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.requests.push(recorded.clone());
        state.route(&recorded, media_part, &shared.base)
    };
    into_response(answer)
}

/// Reads the `media` part of a `multipart/form-data` body, if there is one.
async fn media_part(parts: &Parts, body: Bytes) -> Option<MediaPart> {
    let request = Request::from_parts(parts.clone(), Body::from(body));
    let mut multipart = Multipart::from_request(request, &()).await.ok()?;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("media") {
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.ok()?;
            return Some(MediaPart { file_name, content_type, bytes });
        }
    }
    None
}

fn into_response(answer: Answer) -> Response {
    let body = if answer.dropped {
        let half = answer.body.slice(..answer.body.len() / 2);
        let lost = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "the fake dropped the answer");
        Body::from_stream(futures::stream::iter([Ok(half), Err(lost)]))
    } else {
        Body::from(answer.body)
    };
    let mut response = (answer.status, body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&answer.content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    for (name, value) in answer.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}

impl WechatState {
    fn route(&mut self, request: &WechatRequest, media_part: Option<MediaPart>, base: &Url) -> Answer {
        let method = &request.method;
        match request.path.as_str() {
            "/cgi-bin/token" if method == Method::GET => self.classic_token(request),
            "/cgi-bin/stable_token" if method == Method::POST => self.stable_token(request),
            "/cgi-bin/message/custom/send" if method == Method::POST => self.send(request),
            "/cgi-bin/media/upload" if method == Method::POST => self.upload(request, media_part),
            "/cgi-bin/media/get" if method == Method::GET => self.media(request, base),
            path if method == Method::GET && path.starts_with("/video/") => self.video(&path["/video/".len()..]),
            _ => Answer::not_found(),
        }
    }

    fn token_lifetime(&self) -> Duration {
        self.token_lifetime.unwrap_or(DEFAULT_TOKEN_LIFETIME)
    }

    /// Checks the credentials of a token request; returns the AppID.
    fn credentials(
        &mut self,
        grant_type: Option<&str>,
        app_id: Option<&str>,
        secret: Option<&str>,
    ) -> Result<String, Answer> {
        if let Some(app_id) = app_id {
            *self.token_calls.entry(app_id.to_owned()).or_default() += 1;
        }
        if grant_type != Some("client_credential") {
            return Err(Answer::error((40002, "invalid grant_type")));
        }
        let Some(app_id) = app_id.filter(|app_id| !app_id.is_empty()) else {
            return Err(Answer::error((41002, "appid missing")));
        };
        let Some(app) = self.apps.get(app_id) else {
            return Err(Answer::error((40013, "invalid appid")));
        };
        match secret {
            None | Some("") => Err(Answer::error((41004, "appsecret missing"))),
            Some(secret) if secret != app.secret => Err(Answer::error((40125, "invalid appsecret"))),
            Some(_) => Ok(app_id.to_owned()),
        }
    }

    fn classic_token(&mut self, request: &WechatRequest) -> Answer {
        let app_id =
            match self.credentials(request.query("grant_type"), request.query("appid"), request.query("secret")) {
                Ok(app_id) => app_id,
                Err(answer) => return answer,
            };
        let (token, expires_in) = self.mint(&app_id, TokenKind::Classic);
        Answer::json(json!({"access_token": token, "expires_in": expires_in.as_secs()}))
    }

    fn stable_token(&mut self, request: &WechatRequest) -> Answer {
        let Some(body) = &request.body else {
            return Answer::error(DATA_FORMAT_ERROR);
        };
        let field = |name: &str| body.get(name).and_then(Value::as_str);
        let app_id = match self.credentials(field("grant_type"), field("appid"), field("secret")) {
            Ok(app_id) => app_id,
            Err(answer) => return answer,
        };
        let force_refresh = body.get("force_refresh").and_then(Value::as_bool).unwrap_or(false);
        let now = Instant::now();
        let current = self.apps[&app_id].stable.clone().filter(|token| self.check_token(token).is_ok()).map(|token| {
            let remaining = self.tokens[&token].expires_at.saturating_duration_since(now);
            (token, remaining)
        });
        let renew_within = self.token_lifetime() / 24;
        let recently_forced = self.apps[&app_id]
            .last_forced_refresh
            .is_some_and(|at| now.saturating_duration_since(at) < FORCE_REFRESH_INTERVAL);
        let keep = match &current {
            Some(_) if force_refresh => recently_forced,
            Some((_, remaining)) => *remaining > renew_within,
            None => false,
        };
        if let Some((token, remaining)) = current.filter(|_| keep) {
            return Answer::json(json!({"access_token": token, "expires_in": remaining.as_secs()}));
        }
        if force_refresh && let Some(app) = self.apps.get_mut(&app_id) {
            app.last_forced_refresh = Some(now);
            if let Some(old) = app.stable.as_ref().and_then(|old| self.tokens.get_mut(old))
                && old.invalidated.is_none()
            {
                old.invalidated = Some(Invalidation::Revoked);
            }
        }
        let (token, expires_in) = self.mint(&app_id, TokenKind::Stable);
        Answer::json(json!({"access_token": token, "expires_in": expires_in.as_secs()}))
    }

    /// Mints a token for `app_id`, replacing its current one of `kind`.
    fn mint(&mut self, app_id: &str, kind: TokenKind) -> (String, Duration) {
        let now = Instant::now();
        let lifetime = self.token_lifetime();
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.tokens.insert(
            token.clone(),
            TokenRecord { app_id: app_id.to_owned(), expires_at: now + lifetime, invalidated: None },
        );
        *self.tokens_issued.entry(app_id.to_owned()).or_default() += 1;
        let app = self.apps.get_mut(app_id).expect("tokens are minted for known apps");
        let previous = match kind {
            TokenKind::Classic => app.classic.replace(token.clone()),
            TokenKind::Stable => {
                // A stable token renewed near its end stays valid until it expires.
                app.stable = Some(token.clone());
                None
            }
        };
        if let Some(previous) = previous.and_then(|previous| self.tokens.get_mut(&previous))
            && previous.invalidated.is_none()
        {
            previous.invalidated = Some(Invalidation::Replaced { at: now });
        }
        (token, lifetime)
    }

    /// Checks an access token; returns its AppID.
    fn check_token(&self, token: &str) -> Result<String, Answer> {
        let Some(record) = self.tokens.get(token) else {
            return Err(Answer::error(INVALID_CREDENTIAL));
        };
        match record.invalidated {
            Some(Invalidation::Revoked) => return Err(Answer::error(INVALID_CREDENTIAL)),
            Some(Invalidation::Expired) => return Err(Answer::error(ACCESS_TOKEN_EXPIRED)),
            Some(Invalidation::Replaced { at }) if at.elapsed() >= self.replaced_token_grace => {
                return Err(Answer::error(INVALID_CREDENTIAL));
            }
            _ => {}
        }
        if Instant::now() >= record.expires_at {
            return Err(Answer::error(ACCESS_TOKEN_EXPIRED));
        }
        Ok(record.app_id.clone())
    }

    fn authenticate(&self, request: &WechatRequest) -> Result<String, Answer> {
        match request.query("access_token") {
            None | Some("") => Err(Answer::error(ACCESS_TOKEN_MISSING)),
            Some(token) => self.check_token(token),
        }
    }

    /// Returns whether `app_id` may use `media_id`.
    fn media_usable(&self, app_id: &str, media_id: &str) -> bool {
        self.media.get(media_id).is_some_and(|media| media.owner.as_deref().is_none_or(|owner| owner == app_id))
    }

    fn send(&mut self, request: &WechatRequest) -> Answer {
        let dropped = match self.scripted_sends.pop_front() {
            Some(ScriptedSend::Fail { errcode, errmsg }) => return Answer::error((errcode, &errmsg)),
            Some(ScriptedSend::DropAnswer) => true,
            None => false,
        };
        let mut answer = self.deliver(request);
        answer.dropped = dropped;
        answer
    }

    fn deliver(&mut self, request: &WechatRequest) -> Answer {
        let app_id = match self.authenticate(request) {
            Ok(app_id) => app_id,
            Err(answer) => return answer,
        };
        if request.raw_body.is_empty() {
            return Answer::error((44002, "empty post data"));
        }
        let Some(body) = request.body.as_ref().filter(|body| body.is_object()) else {
            return Answer::error(DATA_FORMAT_ERROR);
        };
        let touser = match body.get("touser").and_then(Value::as_str) {
            Some(touser) if !touser.is_empty() => touser,
            _ => return Answer::error((40003, "invalid openid")),
        };
        let msgtype = match body.get("msgtype").and_then(Value::as_str) {
            Some(msgtype) if MESSAGE_TYPES.contains(&msgtype) => msgtype,
            _ => return Answer::error((40008, "invalid message type")),
        };
        let Some(object) = body.get(msgtype).filter(|object| object.is_object()) else {
            return Answer::error(DATA_FORMAT_ERROR);
        };
        if let Err(answer) = self.check_message(&app_id, msgtype, object) {
            return answer;
        }
        if self.closed_windows.contains(touser) {
            return Answer::error((45015, "response out of time limit or subscription is canceled"));
        }
        if self.limited.contains(touser) {
            return Answer::error((45047, "out of response count limit"));
        }
        self.sent.push((app_id, body.clone()));
        Answer::ok()
    }

    fn check_message(&self, app_id: &str, msgtype: &str, object: &Value) -> Result<(), Answer> {
        let field = |name: &str| object.get(name).and_then(Value::as_str).filter(|value| !value.is_empty());
        let media = |name: &str| match field(name) {
            Some(media_id) if self.media_usable(app_id, media_id) => Ok(()),
            _ => Err(Answer::error(INVALID_MEDIA_ID)),
        };
        match msgtype {
            "text" if field("content").is_none() => Err(Answer::error((44004, "empty content"))),
            "image" | "voice" => media("media_id"),
            "video" => {
                media("media_id")?;
                if object.get("thumb_media_id").is_some() { media("thumb_media_id") } else { Ok(()) }
            }
            "music" => media("thumb_media_id"),
            "mpnews" if field("media_id").is_none() => Err(Answer::error(INVALID_MEDIA_ID)),
            "news" if object.get("articles").and_then(Value::as_array).is_none_or(|articles| articles.is_empty()) => {
                Err(Answer::error((44003, "empty news data")))
            }
            _ => Ok(()),
        }
    }

    fn upload(&mut self, request: &WechatRequest, part: Option<MediaPart>) -> Answer {
        let app_id = match self.authenticate(request) {
            Ok(app_id) => app_id,
            Err(answer) => return answer,
        };
        let (kind, extensions, max_size): (&str, &[&str], usize) = match request.query("type") {
            Some("image") => ("image", &["jpg", "jpeg", "png", "gif"], 10 * 1024 * 1024),
            Some("voice") => ("voice", &["amr", "mp3"], 2 * 1024 * 1024),
            Some("video") => ("video", &["mp4"], 10 * 1024 * 1024),
            Some("thumb") => ("thumb", &["jpg", "jpeg"], 64 * 1024),
            _ => return Answer::error((40004, "invalid media type")),
        };
        let Some(part) = part.filter(|part| !part.bytes.is_empty()) else {
            return Answer::error(MEDIA_DATA_MISSING);
        };
        let Some(file_name) = part.file_name.filter(|name| !name.is_empty()) else {
            return Answer::error(MEDIA_DATA_MISSING);
        };
        let extension = file_name.rsplit_once('.').map(|(_, extension)| extension.to_ascii_lowercase());
        if !extension.is_some_and(|extension| extensions.contains(&extension.as_str())) {
            return Answer::error((40005, "invalid file type"));
        }
        if part.bytes.len() > max_size {
            return Answer::error((40006, "invalid media size"));
        }
        let media_id = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        self.media.insert(
            media_id.clone(),
            StoredMedia {
                kind: kind.to_owned(),
                content_type: part.content_type.unwrap_or_else(|| "application/octet-stream".to_owned()),
                bytes: part.bytes,
                owner: Some(app_id),
                uploaded: true,
                linked: kind == "video",
            },
        );
        let created_at = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or_default();
        let id_field = if kind == "thumb" { "thumb_media_id" } else { "media_id" };
        Answer::json(json!({"type": kind, id_field: media_id, "created_at": created_at}))
    }

    fn media(&self, request: &WechatRequest, base: &Url) -> Answer {
        // WeChat answers media download errors as text/plain.
        let plain = |mut answer: Answer| {
            answer.content_type = "text/plain".to_owned();
            answer
        };
        let app_id = match self.authenticate(request) {
            Ok(app_id) => app_id,
            Err(answer) => return plain(answer),
        };
        let media_id = request.query("media_id").unwrap_or_default();
        let Some(media) = self.media.get(media_id).filter(|_| self.media_usable(&app_id, media_id)) else {
            return plain(Answer::error(if media_id.is_empty() {
                (41006, "media_id missing")
            } else {
                INVALID_MEDIA_ID
            }));
        };
        if media.linked {
            let url = base.join(&format!("video/{media_id}")).expect("a media id makes a valid path");
            return Answer::json(json!({"video_url": url.as_str()}));
        }
        Answer {
            status: StatusCode::OK,
            headers: vec![
                ("content-disposition", format!("attachment; filename=\"{media_id}.{}\"", extension(media))),
                ("cache-control", "no-cache, must-revalidate".to_owned()),
            ],
            content_type: media.content_type.clone(),
            body: media.bytes.clone(),
            dropped: false,
        }
    }

    fn video(&self, media_id: &str) -> Answer {
        match self.media.get(media_id).filter(|media| media.linked) {
            Some(media) => Answer {
                status: StatusCode::OK,
                headers: Vec::new(),
                content_type: "video/mp4".to_owned(),
                body: media.bytes.clone(),
                dropped: false,
            },
            None => Answer::not_found(),
        }
    }
}

/// The file extension WeChat names downloaded media with.
fn extension(media: &StoredMedia) -> &'static str {
    match media.content_type.as_str() {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "audio/amr" => "amr",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/speex" => "speex",
        "video/mp4" => "mp4",
        _ if media.kind == "voice" => "amr",
        _ => "jpg",
    }
}

#[cfg(test)]
mod tests {
    //! The fake's own behaviour that the client tests do not reach, checked
    //! with a plain HTTP client.

    use super::*;

    const APP: &str = "wx1234567890abcdef";
    const SECRET: &str = "app-secret";
    const USER: &str = "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o";

    fn http() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    async fn started() -> FakeWechat {
        let wechat = FakeWechat::start().await;
        wechat.add_app(APP, SECRET);
        wechat
    }

    fn url(wechat: &FakeWechat, path: &str, query: &[(&str, &str)]) -> Url {
        let mut url = wechat.base_url().join(path).unwrap();
        url.query_pairs_mut().extend_pairs(query);
        url
    }

    async fn get(wechat: &FakeWechat, path: &str, query: &[(&str, &str)]) -> reqwest::Response {
        http().get(url(wechat, path, query)).send().await.unwrap()
    }

    async fn post(wechat: &FakeWechat, path: &str, query: &[(&str, &str)], body: Value) -> Value {
        http().post(url(wechat, path, query)).json(&body).send().await.unwrap().json().await.unwrap()
    }

    async fn classic(wechat: &FakeWechat) -> String {
        let query = [("grant_type", "client_credential"), ("appid", APP), ("secret", SECRET)];
        let body: Value = get(wechat, "/cgi-bin/token", &query).await.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn stable(wechat: &FakeWechat, force_refresh: bool) -> Value {
        let body =
            json!({"grant_type": "client_credential", "appid": APP, "secret": SECRET, "force_refresh": force_refresh});
        post(wechat, "/cgi-bin/stable_token", &[], body).await
    }

    async fn send_text(wechat: &FakeWechat, token: &str) -> Value {
        let body = json!({"touser": USER, "msgtype": "text", "text": {"content": "hi"}});
        post(wechat, "/cgi-bin/message/custom/send", &[("access_token", token)], body).await
    }

    async fn upload(wechat: &FakeWechat, token: &str, kind: &str, file_name: &str, bytes: Vec<u8>) -> Value {
        let part =
            reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()).mime_str("image/jpeg").unwrap();
        let form = reqwest::multipart::Form::new().part("media", part);
        let url = url(wechat, "/cgi-bin/media/upload", &[("access_token", token), ("type", kind)]);
        http().post(url).multipart(form).send().await.unwrap().json().await.unwrap()
    }

    fn error(errcode: i64, errmsg: &str) -> Value {
        json!({"errcode": errcode, "errmsg": errmsg})
    }

    #[tokio::test]
    async fn token_requests_are_checked_in_wechats_order() {
        let wechat = started().await;
        let cases: [(&[(&str, &str)], Value); 5] = [
            (&[("appid", APP), ("secret", SECRET)], error(40002, "invalid grant_type")),
            (&[("grant_type", "password"), ("appid", APP), ("secret", SECRET)], error(40002, "invalid grant_type")),
            (&[("grant_type", "client_credential"), ("secret", SECRET)], error(41002, "appid missing")),
            (
                &[("grant_type", "client_credential"), ("appid", "wxunknown"), ("secret", SECRET)],
                error(40013, "invalid appid"),
            ),
            (&[("grant_type", "client_credential"), ("appid", APP)], error(41004, "appsecret missing")),
        ];
        for (query, expected) in cases {
            let response = get(&wechat, "/cgi-bin/token", query).await;
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()[CONTENT_TYPE], JSON);
            assert_eq!(response.json::<Value>().await.unwrap(), expected, "{query:?}");
        }
        assert_eq!(wechat.tokens_issued(APP), 0);
        assert_eq!(wechat.token_calls(APP), 3);
        assert_eq!(wechat.token_calls("wxunknown"), 1);
    }

    #[tokio::test]
    async fn a_stable_token_request_that_is_not_json_is_a_format_error() {
        let wechat = started().await;

        let response = http().post(url(&wechat, "/cgi-bin/stable_token", &[])).body("appid=x").send().await.unwrap();

        assert_eq!(response.json::<Value>().await.unwrap(), error(47001, "data format error"));
    }

    #[tokio::test]
    async fn classic_and_stable_tokens_do_not_invalidate_each_other() {
        let wechat = started().await;
        let stable_token = stable(&wechat, false).await["access_token"].as_str().unwrap().to_owned();
        let classic_token = classic(&wechat).await;

        assert_ne!(stable_token, classic_token);
        assert_eq!(stable(&wechat, false).await["access_token"], stable_token);
        assert_eq!(send_text(&wechat, &stable_token).await, error(0, "ok"));
        assert_eq!(send_text(&wechat, &classic_token).await, error(0, "ok"));
        assert_eq!(wechat.tokens_issued(APP), 2);
        assert_eq!(wechat.token_calls(APP), 3);
    }

    #[tokio::test]
    async fn a_replaced_classic_token_works_during_the_grace_only() {
        let wechat = started().await;
        wechat.set_replaced_token_grace(Duration::from_millis(300));
        let old = classic(&wechat).await;
        classic(&wechat).await;

        let during = send_text(&wechat, &old).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        let after = send_text(&wechat, &old).await;

        assert_eq!(during["errcode"], 0);
        assert_eq!(after["errcode"], 40001);
    }

    #[tokio::test]
    async fn a_token_past_its_lifetime_is_expired() {
        let wechat = started().await;
        wechat.set_token_lifetime(Duration::from_millis(100));
        let token = classic(&wechat).await;

        tokio::time::sleep(Duration::from_millis(150)).await;

        assert_eq!(send_text(&wechat, &token).await, error(42001, "access_token expired"));
    }

    #[tokio::test]
    async fn a_stable_token_near_its_end_is_renewed_and_the_old_one_still_works() {
        let wechat = started().await;
        // A 3.6 s life is renewed in its last 150 ms.
        wechat.set_token_lifetime(Duration::from_millis(3600));
        let first = stable(&wechat, false).await["access_token"].as_str().unwrap().to_owned();

        tokio::time::sleep(Duration::from_millis(3480)).await;
        let second = stable(&wechat, false).await;

        assert_ne!(second["access_token"], first.as_str());
        assert_eq!(send_text(&wechat, &first).await["errcode"], 0);
        assert_eq!(wechat.tokens_issued(APP), 2);
    }

    #[tokio::test]
    async fn a_second_forced_refresh_within_30_seconds_answers_the_current_token() {
        let wechat = started().await;
        let first = stable(&wechat, true).await["access_token"].clone();
        let second = stable(&wechat, true).await;

        assert_eq!(second["access_token"], first);
        assert!(second["expires_in"].as_u64().unwrap() <= 7200);
        assert_eq!(wechat.tokens_issued(APP), 1);
    }

    #[tokio::test]
    async fn api_calls_need_a_known_access_token() {
        let wechat = started().await;
        let body = json!({"touser": USER, "msgtype": "text", "text": {"content": "hi"}});

        let missing = post(&wechat, "/cgi-bin/message/custom/send", &[], body.clone()).await;
        let unknown = send_text(&wechat, "not-a-token").await;
        let media = get(&wechat, "/cgi-bin/media/get", &[("media_id", "m")]).await.json::<Value>().await.unwrap();

        assert_eq!(missing, error(41001, "access_token missing"));
        assert_eq!(unknown, error(40001, "invalid credential, access_token is invalid or not latest"));
        assert_eq!(media, error(41001, "access_token missing"));
        assert!(wechat.sent().is_empty());
    }

    #[tokio::test]
    async fn bad_messages_are_rejected_like_wechat_does() {
        let wechat = started().await;
        let token = classic(&wechat).await;
        let send = |body: Value| {
            let url = url(&wechat, "/cgi-bin/message/custom/send", &[("access_token", &token)]);
            async move { http().post(url).json(&body).send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let malformed = http()
            .post(url(&wechat, "/cgi-bin/message/custom/send", &[("access_token", &token)]))
            .body("{\"touser\":")
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();

        assert_eq!(malformed, error(47001, "data format error"));
        let cases = [
            (json!({"msgtype": "text", "text": {"content": "hi"}}), error(40003, "invalid openid")),
            (json!({"touser": USER, "msgtype": "sticker", "sticker": {}}), error(40008, "invalid message type")),
            (json!({"touser": USER, "msgtype": "text"}), error(47001, "data format error")),
            (json!({"touser": USER, "msgtype": "text", "text": {"content": ""}}), error(44004, "empty content")),
            (
                json!({"touser": USER, "msgtype": "image", "image": {"media_id": "nope"}}),
                error(40007, "invalid media_id"),
            ),
            (json!({"touser": USER, "msgtype": "news", "news": {"articles": []}}), error(44003, "empty news data")),
        ];
        for (body, expected) in cases {
            assert_eq!(send(body.clone()).await, expected, "{body}");
        }
        assert!(wechat.sent().is_empty());
    }

    #[tokio::test]
    async fn scripted_send_failures_come_first_and_in_order() {
        let wechat = started().await;
        let token = classic(&wechat).await;
        wechat.fail_next_send(-1, "system error");
        wechat.fail_next_send(45009, "reach max api daily quota limit");

        let first = send_text(&wechat, &token).await;
        let second = send_text(&wechat, &token).await;
        let third = send_text(&wechat, &token).await;

        assert_eq!(first, error(-1, "system error"));
        assert_eq!(second, error(45009, "reach max api daily quota limit"));
        assert_eq!(third, error(0, "ok"));
        assert_eq!(wechat.sent_to(USER).len(), 1);
    }

    #[tokio::test]
    async fn a_thumb_upload_answers_a_thumb_media_id() {
        let wechat = started().await;
        let token = classic(&wechat).await;

        let answer = upload(&wechat, &token, "thumb", "t.jpg", vec![1, 2, 3]).await;

        assert_eq!(answer["type"], "thumb");
        assert!(answer.get("media_id").is_none());
        let media_id = answer["thumb_media_id"].as_str().unwrap();
        assert_eq!(
            wechat.uploaded(media_id),
            Some(("thumb".into(), "image/jpeg".into(), Bytes::from_static(&[1, 2, 3])))
        );
    }

    #[tokio::test]
    async fn bad_uploads_are_rejected_like_wechat_does() {
        let wechat = started().await;
        let token = classic(&wechat).await;

        let bad_type = upload(&wechat, &token, "file", "a.jpg", vec![1]).await;
        let bad_extension = upload(&wechat, &token, "image", "a.exe", vec![1]).await;
        let no_extension = upload(&wechat, &token, "image", "image", vec![1]).await;
        let too_large = upload(&wechat, &token, "thumb", "t.jpg", vec![0; 64 * 1024 + 1]).await;
        let not_multipart = post(
            &wechat,
            "/cgi-bin/media/upload",
            &[("access_token", &token), ("type", "image")],
            json!({"media": "x"}),
        )
        .await;
        let other_part = {
            let part = reqwest::multipart::Part::bytes(vec![1]).file_name("a.jpg");
            let form = reqwest::multipart::Form::new().part("file", part);
            let url = url(&wechat, "/cgi-bin/media/upload", &[("access_token", &token), ("type", "image")]);
            http().post(url).multipart(form).send().await.unwrap().json::<Value>().await.unwrap()
        };

        assert_eq!(bad_type, error(40004, "invalid media type"));
        assert_eq!(bad_extension, error(40005, "invalid file type"));
        assert_eq!(no_extension, error(40005, "invalid file type"));
        assert_eq!(too_large, error(40006, "invalid media size"));
        assert_eq!(not_multipart, error(41005, "media data missing"));
        assert_eq!(other_part, error(41005, "media data missing"));
        assert_eq!(wechat.uploads(), 0);
    }

    #[tokio::test]
    async fn another_accounts_uploads_are_invalid_media() {
        let wechat = started().await;
        wechat.add_app("wxother", "other-secret");
        let token = classic(&wechat).await;
        let uploaded = upload(&wechat, &token, "image", "a.jpg", vec![1]).await;
        let media_id = uploaded["media_id"].as_str().unwrap();
        let query = [("grant_type", "client_credential"), ("appid", "wxother"), ("secret", "other-secret")];
        let other: Value = get(&wechat, "/cgi-bin/token", &query).await.json().await.unwrap();
        let other = other["access_token"].as_str().unwrap();

        let own = get(&wechat, "/cgi-bin/media/get", &[("access_token", &token), ("media_id", media_id)]).await;
        let foreign = get(&wechat, "/cgi-bin/media/get", &[("access_token", other), ("media_id", media_id)]).await;

        assert_eq!(own.bytes().await.unwrap(), Bytes::from_static(&[1]));
        assert_eq!(foreign.headers()[CONTENT_TYPE], "text/plain");
        assert_eq!(foreign.json::<Value>().await.unwrap(), error(40007, "invalid media_id"));
    }

    #[tokio::test]
    async fn media_is_served_as_an_attachment_named_after_its_id() {
        let wechat = started().await;
        let token = classic(&wechat).await;
        wechat.add_media("img1", "image/jpeg", &b"\xff\xd8jpeg"[..]);

        let response = get(&wechat, "/cgi-bin/media/get", &[("access_token", &token), ("media_id", "img1")]).await;

        assert_eq!(response.headers()[CONTENT_TYPE], "image/jpeg");
        assert_eq!(response.headers()[http::header::CONTENT_DISPOSITION], "attachment; filename=\"img1.jpg\"");
        assert_eq!(response.headers()[http::header::CONTENT_LENGTH], "6");
        assert_eq!(response.bytes().await.unwrap(), Bytes::from_static(b"\xff\xd8jpeg"));
    }

    #[tokio::test]
    async fn unknown_paths_are_not_found() {
        let wechat = started().await;

        let response = get(&wechat, "/cgi-bin/user/info", &[]).await;

        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert_eq!(wechat.requests_to("/cgi-bin/user/info").len(), 1);
    }
}
