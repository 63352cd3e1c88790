//! An HTTP client for the WeChat Official Account API endpoints Madoguchi
//! calls: access tokens (`token`, `stable_token`), customer-service messages,
//! temporary media upload and download.
//!
//! WeChat puts the access token and the AppSecret in query strings and
//! bodies, so no URL is ever put in an error or a log line: transport errors
//! are kept without their URL. WeChat answers HTTP 200 with an `errcode` for
//! most failures; [`WechatError`] says whether a retry can help, whether the
//! token must be dropped, and what WeChat said.

use std::fmt;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::wechat::outbound::CustomMessage;

/// A WeChat access token. `Debug` prints `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct WechatAccessToken(String);

impl WechatAccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// Returns the token itself, for the query string and for sealed storage.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for WechatAccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A fetched access token and how long WeChat says it lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: WechatAccessToken,
    pub expires_in: Duration,
}

/// Where WeChat's API is (`https://api.weixin.qq.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WechatEndpoints {
    pub api_base: Url,
}

impl WechatEndpoints {
    pub fn production() -> Self {
        Self { api_base: Url::parse("https://api.weixin.qq.com").expect("a valid url") }
    }
}

/// The kinds of temporary media (`/cgi-bin/media/upload?type=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Image,
    Voice,
    Video,
    Thumb,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Voice => "voice",
            Self::Video => "video",
            Self::Thumb => "thumb",
        }
    }
}

/// Downloaded media.
#[derive(Debug, Clone, PartialEq)]
pub struct Media {
    pub bytes: Bytes,
    pub content_type: Option<String>,
}

/// A WeChat API client, cheap to clone and shared by every channel.
#[derive(Debug, Clone)]
pub struct WechatClient {
    http: reqwest::Client,
    endpoints: WechatEndpoints,
    timeout: Duration,
    media_timeout: Duration,
}

impl WechatClient {
    /// Returns a client over `http` calling `endpoints`, with a 10-second
    /// timeout per call and 60 seconds for media.
    pub fn new(http: reqwest::Client, endpoints: WechatEndpoints) -> Self {
        Self { http, endpoints, timeout: Duration::from_secs(10), media_timeout: Duration::from_secs(60) }
    }

    pub fn endpoints(&self) -> &WechatEndpoints {
        &self.endpoints
    }

    /// Fetches an access token with the classic endpoint
    /// (`GET /cgi-bin/token`); each call invalidates the previous token.
    pub async fn token(&self, app_id: &str, app_secret: &str) -> Result<IssuedToken, WechatError> {
        let url = self.url(&["cgi-bin", "token"]);
        let request =
            self.http.get(url).query(&[("grant_type", "client_credential"), ("appid", app_id), ("secret", app_secret)]);
        issued(self.call(request, self.timeout).await?).await
    }

    /// Fetches an access token with the stable endpoint
    /// (`POST /cgi-bin/stable_token`): while a token is valid WeChat answers
    /// the same one, so processes that ask at once do not revoke each
    /// other's. `force_refresh` asks for a new one.
    pub async fn stable_token(
        &self,
        app_id: &str,
        app_secret: &str,
        force_refresh: bool,
    ) -> Result<IssuedToken, WechatError> {
        #[derive(Serialize)]
        struct Body<'a> {
            grant_type: &'static str,
            appid: &'a str,
            secret: &'a str,
            force_refresh: bool,
        }
        let url = self.url(&["cgi-bin", "stable_token"]);
        let body = Body { grant_type: "client_credential", appid: app_id, secret: app_secret, force_refresh };
        issued(self.call(self.http.post(url).json(&body), self.timeout).await?).await
    }

    /// Sends a customer-service message (`POST /cgi-bin/message/custom/send`).
    pub async fn send_custom(&self, token: &WechatAccessToken, message: &CustomMessage) -> Result<(), WechatError> {
        let url = self.url(&["cgi-bin", "message", "custom", "send"]);
        let request = self.http.post(url).query(&[("access_token", token.expose_secret())]).json(message);
        json::<Ack>(self.call(request, self.timeout).await?).await.map(|_| ())
    }

    /// Uploads temporary media (`POST /cgi-bin/media/upload`, three days);
    /// returns its `media_id`.
    pub async fn upload_media(
        &self,
        token: &WechatAccessToken,
        media_type: MediaType,
        file_name: &str,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<String, WechatError> {
        #[derive(Deserialize)]
        struct Uploaded {
            // WeChat names a thumb's ID `thumb_media_id`.
            #[serde(alias = "thumb_media_id")]
            media_id: String,
        }
        let part = reqwest::multipart::Part::stream(bytes)
            .file_name(file_name.to_owned())
            .mime_str(content_type)
            .map_err(|_| WechatError::Decode { reason: format!("{content_type:?} is not a media type") })?;
        let form = reqwest::multipart::Form::new().part("media", part);
        let url = self.url(&["cgi-bin", "media", "upload"]);
        let request = self
            .http
            .post(url)
            .query(&[("access_token", token.expose_secret()), ("type", media_type.as_str())])
            .multipart(form);
        json::<Uploaded>(self.call(request, self.media_timeout).await?).await.map(|uploaded| uploaded.media_id)
    }

    /// Downloads temporary media a consumer sent (`GET /cgi-bin/media/get`),
    /// refusing more than `limit` bytes while it streams in. WeChat answers
    /// a video with a JSON body naming where it is; that is followed once.
    pub async fn media(&self, token: &WechatAccessToken, media_id: &str, limit: u64) -> Result<Media, WechatError> {
        let url = self.url(&["cgi-bin", "media", "get"]);
        let request = self.http.get(url).query(&[("access_token", token.expose_secret()), ("media_id", media_id)]);
        let response = self.call(request, self.media_timeout).await?;
        if is_json(&response) {
            #[derive(Deserialize)]
            struct VideoLink {
                video_url: String,
            }
            let link: VideoLink = json(response).await?;
            let url = Url::parse(&link.video_url)
                .map_err(|_| WechatError::Decode { reason: "the video link is not a URL".into() })?;
            let response = self.call(self.http.get(url), self.media_timeout).await?;
            return read_within(response, limit).await;
        }
        read_within(response, limit).await
    }

    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.endpoints.api_base.clone();
        url.path_segments_mut().expect("an http base url").pop_if_empty().extend(segments);
        url
    }

    async fn call(&self, request: RequestBuilder, timeout: Duration) -> Result<Response, WechatError> {
        let response = request.timeout(timeout).send().await.map_err(transport)?;
        let status = response.status();
        if status.is_server_error() {
            return Err(WechatError::Status { status: status.as_u16() });
        }
        if !status.is_success() {
            return Err(WechatError::Decode { reason: format!("wechat answered http {status}") });
        }
        Ok(response)
    }
}

/// What WeChat says on success (`{"errcode":0,"errmsg":"ok"}`) or failure.
#[derive(Deserialize)]
struct Ack {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

async fn issued(response: Response) -> Result<IssuedToken, WechatError> {
    #[derive(Deserialize)]
    struct Issued {
        access_token: String,
        expires_in: u64,
    }
    let issued: Issued = json(response).await?;
    Ok(IssuedToken {
        token: WechatAccessToken::new(issued.access_token),
        expires_in: Duration::from_secs(issued.expires_in),
    })
}

/// Reads a JSON answer: an `errcode` other than 0 is WeChat's error.
async fn json<T: DeserializeOwned>(response: Response) -> Result<T, WechatError> {
    let body = response.bytes().await.map_err(transport)?;
    if let Ok(ack) = serde_json::from_slice::<Ack>(&body)
        && ack.errcode != 0
    {
        return Err(WechatError::Api { errcode: ack.errcode, errmsg: ack.errmsg });
    }
    serde_json::from_slice(&body).map_err(|error| WechatError::Decode { reason: error.to_string() })
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json") || value.starts_with("text/plain"))
}

async fn read_within(mut response: Response, limit: u64) -> Result<Media, WechatError> {
    let declared = response
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(WechatError::MediaTooLarge { limit });
    }
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).map(str::to_owned);
    let mut bytes = BytesMut::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if (bytes.len() + chunk.len()) as u64 > limit {
            return Err(WechatError::MediaTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Media { bytes: bytes.freeze(), content_type })
}

/// Keeps a transport error without its URL, which carries secrets.
fn transport(error: reqwest::Error) -> WechatError {
    let sent = !(error.is_connect() || error.is_builder());
    WechatError::Transport { reason: error.without_url().to_string(), sent }
}

/// A failed WeChat call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WechatError {
    /// WeChat answered with an `errcode`.
    #[error("wechat error {errcode}: {errmsg}")]
    Api { errcode: i64, errmsg: String },
    /// WeChat answered with a server error status.
    #[error("wechat answered http {status}")]
    Status { status: u16 },
    /// WeChat could not be reached, or the call failed or timed out;
    /// `sent` says whether the request may have reached it.
    #[error("wechat could not be reached: {reason}")]
    Transport { reason: String, sent: bool },
    /// WeChat answered with a body that is not what its API documents.
    #[error("wechat answered an unexpected body: {reason}")]
    Decode { reason: String },
    #[error("the media is larger than {limit} bytes")]
    MediaTooLarge { limit: u64 },
}

/// WeChat's error codes Madoguchi acts on.
pub mod codes {
    /// The system is busy: try again.
    pub const BUSY: i64 = -1;
    /// The access token is invalid (or a newer one replaced it).
    pub const INVALID_CREDENTIAL: i64 = 40001;
    pub const INVALID_ACCESS_TOKEN: i64 = 40014;
    /// The access token expired.
    pub const ACCESS_TOKEN_EXPIRED: i64 = 42001;
    pub const INVALID_APP_ID: i64 = 40013;
    pub const INVALID_APP_SECRET: i64 = 40125;
    /// The calling IP address is not on the account's allow-list.
    pub const IP_NOT_ALLOWED: i64 = 40164;
    /// The API's daily or per-minute limit is reached.
    pub const API_LIMIT: i64 = 45009;
    pub const API_MINUTE_LIMIT: i64 = 45011;
    /// The 48-hour window for customer-service messages is closed.
    pub const WINDOW_CLOSED: i64 = 45015;
    /// Too many customer-service messages to this consumer.
    pub const TOO_MANY_MESSAGES: i64 = 45047;
}

impl WechatError {
    /// Returns the errcode WeChat answered, if it did.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    /// Returns whether the access token is dead: drop it, fetch another,
    /// and try once more.
    pub fn is_token_invalid(&self) -> bool {
        matches!(
            self.errcode(),
            Some(codes::INVALID_CREDENTIAL | codes::INVALID_ACCESS_TOKEN | codes::ACCESS_TOKEN_EXPIRED)
        )
    }

    /// Returns whether trying again later can succeed and is safe for any
    /// call: WeChat was busy or limited, or the request never left.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { errcode, .. } => {
                matches!(*errcode, codes::BUSY | codes::API_LIMIT | codes::API_MINUTE_LIMIT)
            }
            Self::Transport { sent, .. } => !sent,
            Self::Status { .. } | Self::Decode { .. } | Self::MediaTooLarge { .. } => false,
        }
    }

    /// Returns whether repeating a call that is safe to repeat (a token, an
    /// upload, a download) can succeed: [`Self::is_retryable`] or
    /// [`Self::outcome_unknown`].
    pub fn may_pass_when_repeated(&self) -> bool {
        self.is_retryable() || self.outcome_unknown()
    }

    /// Returns whether the request may have had its effect although no
    /// answer says so (a timeout after sending, a garbled answer, a gateway's
    /// 5xx that may have come after WeChat took it). Calls that are safe to
    /// repeat (token, upload, download) may retry these too.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            Self::Transport { sent, .. } => *sent,
            Self::Status { .. } | Self::Decode { .. } => true,
            Self::Api { .. } | Self::MediaTooLarge { .. } => false,
        }
    }
}
