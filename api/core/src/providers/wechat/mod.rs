//! WeChat Official Accounts as a provider: the callback URL (verification,
//! plaintext, compatible and secure modes) verified, decrypted and parsed
//! into neutral inbound events for [`crate::intake`]; the delivery strategy
//! for [`crate::delivery`] — customer-service messages, free within 48 hours
//! of the consumer's last message and limited to a monthly allowance per
//! consumer after it — and the jobs that call WeChat: sending and media
//! downloads, on one access token per account ([`tokens`]). [`accounts`]
//! is WeChat's side of channel management.

pub mod accounts;
pub(crate) mod tokens;

use std::future::Future;

use chrono::{DateTime, Datelike, Duration, FixedOffset, TimeZone, Utc};
use madoguchi_channels::wechat::client::{MediaType, WechatAccessToken, WechatError, codes};
use madoguchi_channels::wechat::crypto::{self, CryptoError};
use madoguchi_channels::wechat::outbound::{CustomMessage, Video};
use madoguchi_channels::wechat::xml::{self, Callback, Fields, Message};
use madoguchi_entity::{attachments, callback_nonces, channels, chats, consumer_allowances, end_users, jobs, messages};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Deserialize;
use serde_json::json;

use crate::Core;
use crate::chats::{append_chat_message_event, message_from_row};
use crate::db::Write;
use crate::delivery::{Delivery, SendWindow, chat_and_channel, set_states_in};
use crate::error::{Error, ErrorCode, Result};
use crate::ids::{AttachmentId, ChannelId, MessageId};
use crate::intake::{InboundEvent, InboundKind, InboundMedia, InboundMessage, WebhookOutcome};
use crate::jobs::{JobKind, Lease, NewJob, Outcome, RetryPolicy};
use crate::kinds::{ChannelKind, ChannelStatus, DeliveryMethod, DeliveryState, MessageKind, SendWindowState};
use crate::media::{DownloadTarget, download_target, media_limit};
use tokens::Tokens;

/// How long after the consumer's last message the account may send freely.
pub const FREE_WINDOW: Duration = Duration::hours(48);
/// Messages per consumer per calendar month (China time) outside the window.
pub const MONTHLY_ALLOWANCE: i64 = 4;
/// How far a callback's timestamp may be from our clock.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::minutes(5);
/// What a URL verification's signature is remembered as having signed: no
/// body's digest (64 hexadecimal digits) is ever this.
const URL_VERIFICATION: &str = "url verification";

/// What an agent is told of a message whose delivery outcome is unknown.
const UNCONFIRMED: &str =
    "WeChat's answer was lost: the message may or may not have reached the customer; send it again if needed";

/// The query string WeChat calls the callback URL with.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CallbackQuery {
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    /// URL verification only.
    pub echostr: Option<String>,
    /// `aes` in secure and compatible modes.
    pub encrypt_type: Option<String>,
    pub msg_signature: Option<String>,
    pub openid: Option<String>,
}

/// WeChat's callback URL.
#[derive(Debug, Clone, Copy)]
pub struct WechatInbound<'a> {
    core: &'a Core,
}

impl<'a> WechatInbound<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Answers WeChat's URL verification (`GET`): the `echostr` when the
    /// signature matches — decrypted when WeChat sent it encrypted (with a
    /// `msg_signature`).
    ///
    /// The signature's inputs are remembered as callbacks' are: a plaintext
    /// callback's signature does not cover its body, so a verification
    /// URL's signature (in an access log, say) must not sign a callback.
    pub async fn verify_url(&self, channel_id: &str, query: &CallbackQuery) -> Result<String> {
        let channel = self.channel(channel_id).await?;
        let token = self.core.channels().wechat_token(&channel)?;
        let (timestamp, nonce) = verify_signature(token.expose(), query)?;
        self.check_fresh(timestamp)?;
        let echostr = query.echostr.as_deref().ok_or_else(|| Error::invalid_argument("echostr is missing"))?;
        self.refuse_replays(&channel, timestamp, nonce, URL_VERIFICATION).await?;
        let Some(msg_signature) = query.msg_signature.as_deref() else {
            return Ok(echostr.to_owned());
        };
        crypto::verify_msg_signature(token.expose(), timestamp, nonce, echostr, msg_signature)
            .map_err(|_| Error::unauthenticated("invalid msg_signature"))?;
        let plain = self.decrypt(&channel, echostr)?;
        String::from_utf8(plain).map_err(|_| Error::invalid_argument("the decrypted echostr is not UTF-8"))
    }

    /// Verifies, decrypts when encrypted, and stores one callback. Returns
    /// only once a new message is committed, exactly once: WeChat's retries
    /// of the same `MsgId` (or event) add nothing.
    pub async fn receive(&self, channel_id: &str, query: &CallbackQuery, body: &[u8]) -> Result<WebhookOutcome> {
        let channel = self.channel(channel_id).await?;
        let token = self.core.channels().wechat_token(&channel)?;
        let (timestamp, nonce) = verify_signature(token.expose(), query)?;
        self.check_fresh(timestamp)?;
        if channel.status == ChannelStatus::Disabled.as_str() {
            return Ok(WebhookOutcome::Ignored);
        }
        let outer = parse_xml(body)?;
        let fields = if query.encrypt_type.as_deref().is_some_and(|mode| mode.eq_ignore_ascii_case("aes")) {
            let encrypted =
                outer.get("Encrypt").ok_or_else(|| Error::invalid_argument("the encrypted body has no Encrypt"))?;
            let msg_signature =
                query.msg_signature.as_deref().ok_or_else(|| Error::unauthenticated("msg_signature is missing"))?;
            crypto::verify_msg_signature(token.expose(), timestamp, nonce, encrypted, msg_signature)
                .map_err(|_| Error::unauthenticated("invalid msg_signature"))?;
            parse_xml(&self.decrypt(&channel, encrypted)?)?
        } else {
            outer
        };
        let message = Message::from_fields(&fields)
            .ok_or_else(|| Error::invalid_argument("the body is not a WeChat message or event"))?;
        if let Some(original_id) = &channel.wechat_original_id
            && &message.to_user != original_id
        {
            return Err(Error::invalid_argument("the message is for another official account"));
        }
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body));
        self.refuse_replays(&channel, timestamp, nonce, &digest).await?;
        let event = inbound(&message, &fields);
        let (stored, duplicates) = self.core.intake().record(&channel, vec![event]).await?;
        Ok(WebhookOutcome::Accepted { stored, duplicates })
    }

    /// Refuses a signed `timestamp` more than [`TIMESTAMP_TOLERANCE`] away.
    fn check_fresh(&self, timestamp: &str) -> Result<()> {
        let sent_at = timestamp.trim().parse::<i64>().ok().and_then(|seconds| Utc.timestamp_opt(seconds, 0).single());
        match sent_at {
            Some(sent_at) if (self.core.now() - sent_at).abs() <= TIMESTAMP_TOLERANCE => Ok(()),
            Some(_) => Err(Error::invalid_argument("the timestamp is stale")),
            None => Err(Error::invalid_argument("the timestamp is not a number of seconds")),
        }
    }

    /// Remembers the signature's inputs with what they signed (the body's
    /// digest, or [`URL_VERIFICATION`]): WeChat's own retries (the same
    /// query and body) pass, but the same signature with another body — it
    /// does not cover a plaintext body — is refused.
    ///
    /// Written in a write transaction of its own: on SQLite it queues with
    /// the other writers of this process instead of meeting their lock and
    /// sleeping in SQLite's busy handler.
    async fn refuse_replays(
        &self,
        channel: &channels::Model,
        timestamp: &str,
        nonce: &str,
        digest: &str,
    ) -> Result<()> {
        let now = self.core.now();
        let write = self.core.write().await?;
        let inserted = callback_nonces::Entity::insert(callback_nonces::ActiveModel {
            channel_id: Set(channel.id),
            timestamp: Set(timestamp.to_owned()),
            nonce: Set(nonce.to_owned()),
            body_digest: Set(digest.to_owned()),
            received_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([
                callback_nonces::Column::ChannelId,
                callback_nonces::Column::Timestamp,
                callback_nonces::Column::Nonce,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&*write)
        .await?;
        if inserted == 0 {
            let seen = callback_nonces::Entity::find_by_id((channel.id, timestamp.to_owned(), nonce.to_owned()))
                .one(&*write)
                .await?;
            if seen.is_some_and(|seen| seen.body_digest != digest) {
                return Err(Error::unauthenticated("this signature was already used with another body"));
            }
        } else if rand::random_ratio(1, 64) {
            // Now and then, forget what no accepted timestamp can reuse.
            callback_nonces::Entity::delete_many()
                .filter(callback_nonces::Column::ReceivedAt.lt(now - TIMESTAMP_TOLERANCE * 2))
                .exec(&*write)
                .await?;
        }
        write.commit().await
    }

    async fn channel(&self, channel_id: &str) -> Result<channels::Model> {
        let channel_id = ChannelId::parse(channel_id).map_err(|_| Error::not_found("channel"))?;
        crate::channels::receiving_channel(self.core, channel_id, ChannelKind::Wechat).await
    }

    /// Decrypts with the current key, or the previous one while a rotation
    /// is unconfirmed.
    fn decrypt(&self, channel: &channels::Model, encrypted: &str) -> Result<Vec<u8>> {
        let app_id = channel.wechat_app_id.as_deref().unwrap_or_default();
        let mut last = CryptoError::BadPadding;
        for key in self.core.channels().wechat_keys(channel)? {
            match crypto::decrypt(&key, app_id, encrypted) {
                Ok(plain) => return Ok(plain),
                Err(error) => last = error,
            }
        }
        Err(Error::invalid_argument(format!("cannot decrypt the message: {last}")))
    }
}

/// Checks `signature` over the Token, `timestamp` and `nonce`; returns those two.
fn verify_signature<'q>(token: &str, query: &'q CallbackQuery) -> Result<(&'q str, &'q str)> {
    let (Some(signature), Some(timestamp), Some(nonce)) = (&query.signature, &query.timestamp, &query.nonce) else {
        return Err(Error::unauthenticated("signature, timestamp and nonce are required"));
    };
    crypto::verify_signature(token, timestamp, nonce, signature)
        .map_err(|_| Error::unauthenticated("invalid signature"))?;
    Ok((timestamp, nonce))
}

/// The file name an upload goes by: WeChat checks its extension.
fn upload_name(media_type: MediaType, content_type: &str) -> &'static str {
    match (media_type, content_type) {
        (MediaType::Image, "image/png") => "image.png",
        (MediaType::Image, _) => "image.jpg",
        (MediaType::Voice, "audio/mpeg") => "voice.mp3",
        (MediaType::Voice, _) => "voice.amr",
        (MediaType::Video, _) => "video.mp4",
        (MediaType::Thumb, _) => "thumb.jpg",
    }
}

fn parse_xml(body: &[u8]) -> Result<Fields> {
    xml::parse(body).map_err(|error| Error::invalid_argument(format!("malformed callback XML: {error}")))
}

/// Turns a WeChat callback into the neutral form intake records.
fn inbound(message: &Message, fields: &Fields) -> InboundEvent {
    let raw = serde_json::Value::Object(fields.iter().map(|(name, value)| (name.to_owned(), json!(value))).collect());
    let media = |kind: MessageKind, text: Option<String>, payload: serde_json::Value| {
        InboundKind::Message(InboundMessage {
            external_id: message.msg_id.clone(),
            kind,
            text,
            payload: Some(payload),
            media: Some(InboundMedia { file_name: None }),
        })
    };
    let plain = |kind: MessageKind, text: Option<String>, payload: serde_json::Value| {
        InboundKind::Message(InboundMessage {
            external_id: message.msg_id.clone(),
            kind,
            text,
            payload: Some(payload),
            media: None,
        })
    };
    let kind = match &message.callback {
        Callback::Text { content } => plain(MessageKind::Text, Some(content.clone()), json!({"content": content})),
        Callback::Image { pic_url, media_id } => {
            media(MessageKind::Image, None, json!({"mediaId": media_id, "picUrl": pic_url}))
        }
        Callback::Voice { media_id, format, recognition } => media(
            MessageKind::Audio,
            recognition.clone(),
            json!({"mediaId": media_id, "format": format, "recognition": recognition}),
        ),
        Callback::Video { media_id, thumb_media_id, short } => media(
            MessageKind::Video,
            None,
            json!({"mediaId": media_id, "thumbMediaId": thumb_media_id, "short": short}),
        ),
        Callback::Location { latitude, longitude, scale, label } => plain(
            MessageKind::Location,
            label.clone(),
            json!({"latitude": latitude, "longitude": longitude, "scale": scale, "label": label}),
        ),
        Callback::Link { title, description, url } => plain(
            MessageKind::Link,
            title.clone().or(url.clone()),
            json!({"title": title, "description": description, "url": url}),
        ),
        Callback::Subscribe => InboundKind::Followed,
        Callback::Unsubscribe => InboundKind::Unfollowed,
        // A message type added after this code: kept for the agent, raw.
        Callback::Other { msg_type } if message.msg_id.is_some() => {
            plain(MessageKind::Unknown, None, json!({"msgType": msg_type, "fields": raw.clone()}))
        }
        Callback::Event { .. } | Callback::Other { .. } => InboundKind::Other,
    };
    InboundEvent {
        provider_event_id: message.provider_event_id(fields),
        event_type: match &message.callback {
            Callback::Event { event } => format!("event.{event}"),
            _ => fields.get("MsgType").unwrap_or_default().to_owned(),
        },
        raw,
        consumer: Some(message.from_user.clone()),
        reply_token: None,
        kind,
    }
}

/// Returns the calendar month in China time (`YYYY-MM`), the allowance's period.
pub fn china_month(now: DateTime<Utc>) -> String {
    now.with_timezone(&china()).format("%Y-%m").to_string()
}

/// Returns when the next calendar month starts in China time.
pub fn next_china_month(now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&china());
    let (year, month) = if local.month() == 12 { (local.year() + 1, 1) } else { (local.year(), local.month() + 1) };
    china().with_ymd_and_hms(year, month, 1, 0, 0, 0).single().map_or(now, |start| start.with_timezone(&Utc))
}

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("+08:00 is a valid offset")
}

/// Until when a chat's free window is open: 48 hours after the consumer's
/// last message, unless WeChat said since that it is closed (`45015`).
/// `None` when the consumer never wrote.
fn free_until(chat: &chats::Model) -> Option<DateTime<Utc>> {
    let last = chat.last_inbound_at?;
    match chat.send_window_closed_at {
        Some(closed) if closed >= last => Some(std::cmp::min(closed, last + FREE_WINDOW)),
        _ => Some(last + FREE_WINDOW),
    }
}

/// Outbound WeChat delivery: the window and allowance, and the jobs that
/// call WeChat.
#[derive(Debug, Clone, Copy)]
pub struct WechatOutbound<'a> {
    core: &'a Core,
    lease: Option<&'a Lease>,
}

impl<'a> WechatOutbound<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core, lease: None }
    }

    /// For a job's run: every write is fenced by its lease.
    pub(crate) fn fenced(core: &'a Core, lease: &'a Lease) -> Self {
        Self { core, lease: Some(lease) }
    }

    /// The chat's window as an agent UI shows it before the agent types.
    pub(crate) async fn send_window(
        &self,
        db: &impl ConnectionTrait,
        chat: &chats::Model,
        now: DateTime<Utc>,
    ) -> Result<SendWindow> {
        let month = china_month(now);
        let used =
            consumer_allowances::Entity::find_by_id((chat.end_user_id, month)).one(db).await?.map_or(0, |row| row.used);
        let resets_at = next_china_month(now);
        let until = free_until(chat);
        let (state, reason) = match until {
            None => (SendWindowState::Closed, "the consumer has not written; only they can start a conversation"),
            Some(until) if until > now => (SendWindowState::Open, "within 48 hours of the consumer's last message"),
            Some(_) if used < MONTHLY_ALLOWANCE => {
                (SendWindowState::Limited, "outside the 48-hour window: a few messages a month remain")
            }
            Some(_) => (SendWindowState::Closed, "outside the 48-hour window, and this month's allowance is used"),
        };
        Ok(SendWindow {
            state,
            open_until: until.filter(|until| *until > now),
            allowance_used: used,
            allowance_limit: MONTHLY_ALLOWANCE,
            allowance_resets_at: resets_at,
            reason: reason.to_owned(),
        })
    }

    /// Customer-service messages leave at once; outside the free window one
    /// of the consumer's monthly allowance is taken now (a conditional
    /// update, so racing sends never exceed it) or the send is refused.
    pub(crate) async fn choose_method(
        &self,
        write: &Write<'_>,
        chat: &chats::Model,
        now: DateTime<Utc>,
    ) -> Result<DeliveryMethod> {
        let Some(until) = free_until(chat) else {
            return Err(Error::failed_precondition(
                "on WeChat only the consumer can start a conversation, and this one has not written yet",
            ));
        };
        if until > now {
            return Ok(DeliveryMethod::Push);
        }
        let month = china_month(now);
        consumer_allowances::Entity::insert(consumer_allowances::ActiveModel {
            end_user_id: Set(chat.end_user_id),
            month: Set(month.clone()),
            used: Set(0),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([consumer_allowances::Column::EndUserId, consumer_allowances::Column::Month])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&**write)
        .await?;
        let reserved = consumer_allowances::Entity::update_many()
            .col_expr(consumer_allowances::Column::Used, Expr::col(consumer_allowances::Column::Used).add(1))
            .col_expr(consumer_allowances::Column::UpdatedAt, Expr::value(now))
            .filter(consumer_allowances::Column::EndUserId.eq(chat.end_user_id))
            .filter(consumer_allowances::Column::Month.eq(month))
            .filter(Expr::col(consumer_allowances::Column::Used).lt(MONTHLY_ALLOWANCE))
            .exec(&**write)
            .await?;
        if reserved.rows_affected != 1 {
            let resets = next_china_month(now).with_timezone(&china());
            return Err(Error::failed_precondition(format!(
                "outside WeChat's 48-hour window (it closed at {}), and this month's {MONTHLY_ALLOWANCE} messages \
                 outside it are used: the window reopens when the consumer writes again, and the allowance on {} \
                 (China time)",
                until.to_rfc3339(),
                resets.format("%Y-%m-%d %H:%M"),
            )));
        }
        Ok(DeliveryMethod::Push)
    }

    /// Queues the job that sends a message, naming the allowance it took.
    pub(crate) async fn enqueue_delivery(
        &self,
        write: &mut Write<'_>,
        chat: &chats::Model,
        message_id: MessageId,
        _method: DeliveryMethod,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let allowance_month = free_until(chat).filter(|until| *until <= now).map(|_| china_month(now));
        let mut job = NewJob::new(JobKind::WechatSend { message_id, allowance_month }, now);
        job.organization_id = Some(chat.organization_id.into());
        job.channel_id = Some(chat.channel_id.into());
        job.message_id = Some(message_id);
        write.enqueue(job, now).await
    }

    /// Runs a `wechat.send` job: one customer-service message (an image is
    /// uploaded first). The message is claimed (`SENDING`, held by this job)
    /// before WeChat is called, so no attempt ever sends it again after one
    /// that may have: an attempt that finds it still claimed by this job
    /// leaves it `UNCONFIRMED`. Only failures WeChat says had no effect go
    /// back to `PENDING` for a retry; the last attempt's error fails it.
    pub(crate) async fn run_send(
        &self,
        job: &jobs::Model,
        message_id: MessageId,
        allowance_month: Option<&str>,
        policy: RetryPolicy,
    ) -> Result<Outcome> {
        let now = self.core.now();
        let Some(message) = messages::Entity::find_by_id(message_id.uuid()).one(self.core.db()).await? else {
            return Ok(Outcome::Done);
        };
        let (chat, channel) = chat_and_channel(self.core.db(), message.chat_id).await?;
        if message.delivery_state == DeliveryState::Sending.as_str() && message.delivery_job_id == Some(job.id) {
            self.set_states(&chat, &[message], DeliveryState::Unconfirmed, Some(UNCONFIRMED), now).await?;
            return Ok(Outcome::Done);
        }
        if message.delivery_state != DeliveryState::Pending.as_str() {
            return Ok(Outcome::Done);
        }
        let sent = self.send(job, &chat, &channel, message, allowance_month, policy, now).await;
        let last = job.attempts >= policy.max_attempts;
        match sent {
            // Out of attempts, or WeChat refused the account's credentials.
            Err(error) if (last || error.code() == ErrorCode::FailedPrecondition) && !error.is_lease_lost() => {
                let current = messages::Entity::find_by_id(message_id.uuid()).one(self.core.db()).await?;
                if let Some(current) = current.filter(|row| row.delivery_state == DeliveryState::Pending.as_str()) {
                    self.fail(&chat, current, allowance_month, &error.to_string(), now).await?;
                }
                Ok(Outcome::Failed(error.to_string()))
            }
            other => other,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        job: &jobs::Model,
        chat: &chats::Model,
        channel: &channels::Model,
        message: messages::Model,
        allowance_month: Option<&str>,
        policy: RetryPolicy,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        if channel.status != ChannelStatus::Active.as_str() {
            return self.fail(chat, message, allowance_month, "the channel is not active", now).await;
        }
        let openid = end_users::Entity::find_by_id(chat.end_user_id)
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("end user"))?
            .external_id;
        let wechat = self.core.wechat();
        // Media first: uploading again is harmless, so any failure that may
        // pass is retried.
        let kind = MessageKind::parse(&message.kind)?;
        let mut media_ids = Vec::new();
        for (media_type, attachment) in self.media_of(&message, kind).await? {
            let key = attachment.blob_key.clone().ok_or_else(|| Error::not_found("attachment"))?;
            let bytes = self.core.blobs().get(&key).await?;
            let content_type = attachment.content_type.clone().unwrap_or_default();
            let name = upload_name(media_type, &content_type);
            let uploaded = self
                .with_token(channel, |token| {
                    let (bytes, content_type) = (bytes.clone(), content_type.clone());
                    async move { wechat.upload_media(&token, media_type, name, &content_type, bytes).await }
                })
                .await?;
            match uploaded {
                Ok(media_id) => media_ids.push(media_id),
                Err(error) if error.may_pass_when_repeated() && job.attempts < policy.max_attempts => {
                    return Ok(Outcome::RetryAt(now + policy.backoff(job.attempts), error.to_string()));
                }
                Err(error) => {
                    let reason = format!("WeChat did not take the {}: {error}", media_type.as_str());
                    return self.fail(chat, message, allowance_month, &reason, now).await;
                }
            }
        }
        let mut media_ids = media_ids.into_iter();
        let mut next = || media_ids.next().unwrap_or_default();
        let body = match kind {
            MessageKind::Image => CustomMessage::image(openid, next()),
            MessageKind::Audio => CustomMessage::voice(openid, next()),
            MessageKind::Video => CustomMessage::video(
                openid,
                Video { media_id: next(), thumb_media_id: next(), title: None, description: None },
            ),
            _ => CustomMessage::text(openid, message.text.clone().unwrap_or_default()),
        };
        let Some(claimed) = self.claim(job, chat, &message, now).await? else {
            return Ok(Outcome::Done);
        };
        let sent = self
            .with_token(channel, |token| {
                let body = body.clone();
                async move { wechat.send_custom(&token, &body).await }
            })
            .await?;
        let error = match sent {
            Ok(()) => {
                self.set_states(chat, &[claimed], DeliveryState::Sent, None, now).await?;
                return Ok(Outcome::Done);
            }
            Err(error) => error,
        };
        match error.errcode() {
            Some(codes::WINDOW_CLOSED) => {
                self.close_window(chat, now).await?;
                let reason = format!(
                    "WeChat says the consumer's 48-hour window is closed ({error}); it reopens when they write again"
                );
                return self.fail(chat, claimed, allowance_month, &reason, now).await;
            }
            Some(codes::TOO_MANY_MESSAGES) => {
                let reason = format!("WeChat refused it: too many messages to this consumer ({error})");
                return self.fail(chat, claimed, allowance_month, &reason, now).await;
            }
            _ => {}
        }
        if error.is_retryable() && job.attempts < policy.max_attempts {
            // Refused without effect: waiting again, as before the claim.
            self.set_states(chat, &[claimed], DeliveryState::Pending, None, now).await?;
            return Ok(Outcome::RetryAt(now + policy.backoff(job.attempts), error.to_string()));
        }
        if error.outcome_unknown() {
            tracing::warn!(message = %claimed.id, %error, "a wechat send's outcome is unknown; marking it unconfirmed");
            self.set_states(chat, &[claimed], DeliveryState::Unconfirmed, Some(UNCONFIRMED), now).await?;
            return Ok(Outcome::Done);
        }
        self.fail(chat, claimed, allowance_month, &error.to_string(), now).await
    }

    /// Claims a `PENDING` message for this job (`SENDING`), in one fenced
    /// transaction with its event; `None` when something else moved it.
    async fn claim(
        &self,
        job: &jobs::Model,
        chat: &chats::Model,
        message: &messages::Model,
        now: DateTime<Utc>,
    ) -> Result<Option<messages::Model>> {
        let mut write = self.core.write().await?.fenced_by(self.lease);
        let claimed = messages::Entity::update_many()
            .col_expr(messages::Column::DeliveryState, Expr::value(DeliveryState::Sending.as_str()))
            .col_expr(messages::Column::DeliveryJobId, Expr::value(job.id))
            .col_expr(messages::Column::DeliveryError, Expr::value(Option::<String>::None))
            .filter(messages::Column::Id.eq(message.id))
            .filter(messages::Column::DeliveryState.eq(DeliveryState::Pending.as_str()))
            .exec(&*write)
            .await?;
        if claimed.rows_affected != 1 {
            return Ok(None);
        }
        let row =
            messages::Entity::find_by_id(message.id).one(&*write).await?.ok_or_else(|| Error::not_found("message"))?;
        let event = message_from_row(row.clone(), Vec::new())?;
        append_chat_message_event(&mut write, chat, "message.delivery_changed", &event, now).await?;
        write.commit().await?;
        Ok(Some(row))
    }

    /// Runs a `wechat.download_media` job: fetches a consumer's media into
    /// blob storage within SPEC.md's limits; the last attempt's error marks
    /// the attachment `FAILED` rather than leaving it `PENDING`.
    pub(crate) async fn run_download_media(
        &self,
        job: &jobs::Model,
        attachment_id: AttachmentId,
        policy: RetryPolicy,
    ) -> Result<Outcome> {
        let now = self.core.now();
        let Some(target) = download_target(self.core, attachment_id).await? else {
            return Ok(Outcome::Done);
        };
        match self.download(job, &target, policy, now).await {
            Err(error) if job.attempts >= policy.max_attempts && !error.is_lease_lost() => {
                let DownloadTarget { chat, attachment, .. } = &target;
                crate::media::record_download(self.core, self.lease, chat, attachment, Err(error.to_string()), now)
                    .await
            }
            other => other,
        }
    }

    async fn download(
        &self,
        job: &jobs::Model,
        target: &DownloadTarget,
        policy: RetryPolicy,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let DownloadTarget { attachment, message, chat, channel } = target;
        let kind = MessageKind::parse(&attachment.kind)?;
        let media_id = message
            .payload
            .as_ref()
            .and_then(|payload| payload.get("mediaId"))
            .and_then(|id| id.as_str())
            .unwrap_or_default()
            .to_owned();
        let wechat = self.core.wechat();
        let limit = media_limit(kind);
        let fetched = self
            .with_token(channel, |token| {
                let media_id = media_id.clone();
                async move { wechat.media(&token, &media_id, limit).await }
            })
            .await?;
        let fetched = match fetched {
            Ok(media) => Ok((media.bytes, media.content_type)),
            // Downloading twice is harmless: any failure that may pass is retried.
            Err(error) if error.may_pass_when_repeated() && job.attempts < policy.max_attempts => {
                return Ok(Outcome::RetryAt(now + policy.backoff(job.attempts), error.to_string()));
            }
            Err(WechatError::MediaTooLarge { .. }) => Err(format!("over the {} limit", kind.as_str().to_lowercase())),
            Err(error) => Err(error.to_string()),
        };
        crate::media::record_download(self.core, self.lease, chat, attachment, fetched, now).await
    }

    /// Calls WeChat with the account's token; when WeChat says the token is
    /// dead (`40001`, `42001`), drops it, gets another and calls once more.
    async fn with_token<T, F, Fut>(
        &self,
        channel: &channels::Model,
        call: F,
    ) -> Result<std::result::Result<T, WechatError>>
    where
        F: Fn(WechatAccessToken) -> Fut,
        Fut: Future<Output = std::result::Result<T, WechatError>>,
    {
        let tokens = Tokens::new(self.core);
        let held = tokens.get(channel).await?;
        match call(held.token.clone()).await {
            Err(error) if error.is_token_invalid() => {
                tracing::info!(channel = %channel.id, code = ?error.errcode(), "wechat refused the access token");
                tokens.drop_refused(channel, &held).await?;
                let held = tokens.get(channel).await?;
                Ok(call(held.token.clone()).await)
            }
            other => Ok(other),
        }
    }

    /// The files a message's kind sends, in the order WeChat wants their
    /// media ids: the image, the voice, or the video then its thumbnail.
    async fn media_of(
        &self,
        message: &messages::Model,
        kind: MessageKind,
    ) -> Result<Vec<(MediaType, attachments::Model)>> {
        let files = attachments::Entity::find()
            .filter(attachments::Column::MessageId.eq(message.id))
            .all(self.core.db())
            .await?;
        let find = |kind: MessageKind, thumbnail: bool| {
            files
                .iter()
                .find(|file| {
                    file.kind == kind.as_str() && (file.file_name.as_deref() == Some("thumbnail")) == thumbnail
                })
                .cloned()
                .ok_or_else(|| Error::not_found("attachment"))
        };
        Ok(match kind {
            MessageKind::Image => vec![(MediaType::Image, find(MessageKind::Image, false)?)],
            MessageKind::Audio => vec![(MediaType::Voice, find(MessageKind::Audio, false)?)],
            MessageKind::Video => vec![
                (MediaType::Video, find(MessageKind::Video, false)?),
                (MediaType::Thumb, find(MessageKind::Image, true)?),
            ],
            _ => Vec::new(),
        })
    }

    /// Records that WeChat closed the chat's window, with an event so agent
    /// UIs show it.
    async fn close_window(&self, chat: &chats::Model, now: DateTime<Utc>) -> Result<()> {
        let mut write = self.core.write().await?.fenced_by(self.lease);
        chats::Entity::update_many()
            .col_expr(chats::Column::SendWindowClosedAt, Expr::value(now))
            .col_expr(chats::Column::UpdatedAt, Expr::value(now))
            .filter(chats::Column::Id.eq(chat.id))
            .exec(&*write)
            .await?;
        self.core.chats().append_chat_event(&mut write, chat.id.into(), "chat.updated", now).await?;
        write.commit().await
    }

    /// Fails a message for good and gives back the allowance it took, in
    /// one fenced transaction, and only if this call moved it: a failure
    /// recorded twice (a lost lease, a crash) gives back once.
    async fn fail(
        &self,
        chat: &chats::Model,
        message: messages::Model,
        allowance_month: Option<&str>,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome> {
        let mut write = self.core.write().await?.fenced_by(self.lease);
        let changed =
            set_states_in(&mut write, ChannelKind::Wechat, chat, &[message], DeliveryState::Failed, Some(reason), now)
                .await?;
        if let (false, Some(month)) = (changed.is_empty(), allowance_month) {
            consumer_allowances::Entity::update_many()
                .col_expr(consumer_allowances::Column::Used, Expr::col(consumer_allowances::Column::Used).sub(1))
                .filter(consumer_allowances::Column::EndUserId.eq(chat.end_user_id))
                .filter(consumer_allowances::Column::Month.eq(month))
                .filter(Expr::col(consumer_allowances::Column::Used).gt(0))
                .exec(&*write)
                .await?;
        }
        write.commit().await?;
        Ok(Outcome::Done)
    }

    async fn set_states(
        &self,
        chat: &chats::Model,
        rows: &[messages::Model],
        state: DeliveryState,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        Delivery::new(self.core, self.lease).set_states(ChannelKind::Wechat, chat, rows, state, error, now).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn the_allowance_month_turns_at_midnight_china_time() {
        assert_eq!(china_month(at("2026-11-30T15:59:59Z")), "2026-11");
        assert_eq!(china_month(at("2026-11-30T16:00:00Z")), "2026-12");
        assert_eq!(next_china_month(at("2026-12-15T00:00:00Z")), at("2026-12-31T16:00:00Z"));
        assert_eq!(next_china_month(at("2026-11-30T16:00:00Z")), at("2026-12-31T16:00:00Z"));
    }

    #[test]
    fn callbacks_become_neutral_events_with_their_dedupe_keys() {
        let body =
            b"<xml><ToUserName><![CDATA[gh_abc123456]]></ToUserName><FromUserName><![CDATA[oUser]]></FromUserName>\
<CreateTime>1700000000</CreateTime><MsgType><![CDATA[voice]]></MsgType><MediaId><![CDATA[m1]]></MediaId>\
<Format><![CDATA[amr]]></Format><Recognition><![CDATA[hello]]></Recognition><MsgId>42</MsgId></xml>";
        let fields = xml::parse(body).unwrap();
        let event = inbound(&Message::from_fields(&fields).unwrap(), &fields);
        assert_eq!(event.provider_event_id, "msg:42");
        assert_eq!(event.consumer.as_deref(), Some("oUser"));
        let InboundKind::Message(message) = event.kind else { panic!("a message") };
        assert_eq!((message.kind, message.text.as_deref()), (MessageKind::Audio, Some("hello")));
        assert!(message.media.is_some());

        let body = b"<xml><ToUserName>gh_abc123456</ToUserName><FromUserName>oUser</FromUserName>\
<CreateTime>1700000001</CreateTime><MsgType>event</MsgType><Event>subscribe</Event></xml>";
        let fields = xml::parse(body).unwrap();
        let event = inbound(&Message::from_fields(&fields).unwrap(), &fields);
        assert_eq!(event.provider_event_id, "event:oUser:1700000001:subscribe");
        assert_eq!(event.kind, InboundKind::Followed);
    }
}
