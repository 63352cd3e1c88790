//! Typed LINE webhook bodies: every event and message type LINE documents, each with its raw JSON.
//!
//! Parsing is strict about the envelope and lenient about everything LINE may add
//! or leave out: an unknown event or message type becomes an `Unknown` variant, a
//! known type whose payload does not have the documented shape becomes
//! [`EventKind::Invalid`], and every event keeps the JSON it came from in
//! [`Event::raw`], so nothing LINE sends is lost. Only a body that is not JSON or
//! lacks the envelope (`events`, each event's `type` and `timestamp`; a
//! `destination` that is not a string) is a [`ParseError`].
//!
//! Fields LINE's schema marks as required but that older bodies lack (the Java
//! SDK's fixtures have no `webhookEventId`, `deliveryContext`, `quoteToken` or
//! `follow`) are optional here.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// Why a webhook body could not be parsed at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("webhook body is not json: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON but not an object.
    #[error("webhook body is not a json object")]
    NotAnObject,
    /// The body's `destination` is there but not a string.
    #[error("webhook body's destination is not a string")]
    MalformedDestination,
    /// The body has no `events` array.
    #[error("webhook body has no events array")]
    MissingEvents,
    /// An event lacks what every event has (an object with `type` and `timestamp`).
    #[error("webhook event {index} is malformed: {reason}")]
    MalformedEvent {
        /// Position of the event in `events`.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A parsed webhook request body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookBody {
    /// User ID of the bot the events are for (`U` followed by 32 hex
    /// digits); older platform versions and the SDKs' own fixtures leave it
    /// out, and the webhook URL names the channel anyway.
    pub destination: Option<String>,
    /// The events in the order LINE sent them; LINE sends an empty list to check
    /// that the webhook URL answers.
    pub events: Vec<Event>,
}

/// Parses a webhook request body (the same raw bytes whose signature was checked).
pub fn parse_webhook(body: &[u8]) -> Result<WebhookBody, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(ParseError::NotJson)?;
    let Value::Object(mut envelope) = value else {
        return Err(ParseError::NotAnObject);
    };
    let destination = match envelope.remove("destination") {
        Some(Value::String(destination)) => Some(destination),
        None | Some(Value::Null) => None,
        Some(_) => return Err(ParseError::MalformedDestination),
    };
    let events = match envelope.remove("events") {
        Some(Value::Array(events)) => events,
        _ => return Err(ParseError::MissingEvents),
    };
    let events =
        events.into_iter().enumerate().map(|(index, raw)| Event::parse(index, raw)).collect::<Result<_, _>>()?;
    Ok(WebhookBody { destination, events })
}

/// One webhook event: the fields every event shares, its typed content and its raw JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event type as LINE spelled it (`message`, `follow`, …), also for unknown types.
    pub event_type: String,
    /// When the event happened, in milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Whether the channel is `active` or `standby` (absent in very old bodies).
    pub mode: Option<EventMode>,
    /// The event's ULID, stable across redeliveries: the key to deduplicate on.
    pub webhook_event_id: Option<String>,
    /// Whether LINE is delivering this event again after a failed delivery.
    pub is_redelivery: bool,
    /// Where the event came from (absent on some module-channel events).
    pub source: Option<Source>,
    /// The token to answer this event with, on the event types that carry one.
    pub reply_token: Option<String>,
    /// The typed content.
    pub kind: EventKind,
    /// The event exactly as LINE sent it.
    pub raw: Value,
}

impl Event {
    fn parse(index: usize, raw: Value) -> Result<Self, ParseError> {
        let malformed = |reason| ParseError::MalformedEvent { index, reason };
        let Value::Object(object) = &raw else {
            return Err(malformed("not an object"));
        };
        let event_type = object.get("type").and_then(Value::as_str).ok_or_else(|| malformed("no type"))?.to_owned();
        let timestamp =
            object.get("timestamp").and_then(Value::as_i64).ok_or_else(|| malformed("no integer timestamp"))?;
        let mode = string(object, "mode").map(EventMode::from);
        let webhook_event_id = string(object, "webhookEventId");
        let is_redelivery = object
            .get("deliveryContext")
            .and_then(|context| context.get("isRedelivery"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let source = object.get("source").cloned().map(Source::from_json);
        let reply_token = string(object, "replyToken");
        let kind = EventKind::parse(&event_type, object).unwrap_or_else(|reason| EventKind::Invalid { reason });
        Ok(Self { event_type, timestamp, mode, webhook_event_id, is_redelivery, source, reply_token, kind, raw })
    }

    /// Returns the user who caused the event, when LINE says.
    pub fn user_id(&self) -> Option<&str> {
        self.source.as_ref().and_then(Source::user_id)
    }

    /// Returns when the event happened.
    pub fn occurred_at(&self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.timestamp)
    }
}

open_string_enum! {
    /// The channel's state when the event was sent.
    pub enum EventMode {
        /// The channel answers; reply tokens can be used.
        Active => "active",
        /// Another module channel is active; this one only listens.
        Standby => "standby",
    }
}

/// Where an event came from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// A one-to-one chat with a user.
    User {
        /// The user's ID (documented as optional, in practice always present).
        user_id: Option<String>,
    },
    /// A group chat.
    Group {
        /// The group's ID.
        group_id: String,
        /// The user who sent the message, on message events.
        user_id: Option<String>,
    },
    /// A multi-person chat.
    Room {
        /// The room's ID.
        room_id: String,
        /// The user who sent the message, on message events.
        user_id: Option<String>,
    },
    /// A source type this code does not know, or one without its documented ID.
    Unknown {
        /// The `type` LINE sent, empty when there was none.
        source_type: String,
        /// The source as LINE sent it.
        raw: Value,
    },
}

impl Source {
    fn from_json(raw: Value) -> Self {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Fields {
            #[serde(rename = "type")]
            source_type: String,
            user_id: Option<String>,
            group_id: Option<String>,
            room_id: Option<String>,
        }
        let unknown = |raw: Value| Self::Unknown {
            source_type: raw.get("type").and_then(Value::as_str).unwrap_or_default().to_owned(),
            raw,
        };
        let Ok(fields) = Fields::deserialize(&raw) else {
            return unknown(raw);
        };
        match (fields.source_type.as_str(), fields.group_id, fields.room_id) {
            ("user", _, _) => Self::User { user_id: fields.user_id },
            ("group", Some(group_id), _) => Self::Group { group_id, user_id: fields.user_id },
            ("room", _, Some(room_id)) => Self::Room { room_id, user_id: fields.user_id },
            _ => unknown(raw),
        }
    }

    /// Returns the user ID, if the source names a user.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Self::User { user_id } | Self::Group { user_id, .. } | Self::Room { user_id, .. } => user_id.as_deref(),
            Self::Unknown { .. } => None,
        }
    }
}

impl<'de> Deserialize<'de> for Source {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::from_json)
    }
}

/// What happened, by event type.
#[derive(Debug, Clone, PartialEq)]
pub enum EventKind {
    /// A user sent a message (`message`).
    Message(MessageContent),
    /// A user edited a text message they had sent (`messageEdited`; not yet in
    /// LINE's OpenAPI file, but in the official SDKs' fixtures).
    MessageEdited(MessageContent),
    /// A user unsent a message (`unsend`).
    Unsend {
        /// ID of the message that was unsent.
        message_id: String,
    },
    /// A user added the account as a friend or unblocked it (`follow`).
    Follow {
        /// Whether this was an unblock rather than a first add (false when LINE
        /// did not say).
        is_unblocked: bool,
    },
    /// A user blocked the account (`unfollow`).
    Unfollow,
    /// The account joined a group or room (`join`).
    Join,
    /// The account left or was removed from a group or room (`leave`).
    Leave,
    /// Users joined a group or room the account is in (`memberJoined`).
    MemberJoined {
        /// The users who joined.
        members: Vec<Source>,
    },
    /// Users left a group or room the account is in (`memberLeft`).
    MemberLeft {
        /// The users who left.
        members: Vec<Source>,
    },
    /// A user triggered a postback action (`postback`).
    Postback(Postback),
    /// A user watched a tracked video to the end (`videoPlayComplete`).
    VideoPlayComplete {
        /// The `trackingId` given to the video message.
        tracking_id: String,
    },
    /// A user came within range of a LINE Beacon (`beacon`).
    Beacon(Beacon),
    /// A user linked their LINE account to a provider account (`accountLink`).
    AccountLink(AccountLink),
    /// A LINE Things device event (`things`; retired by LINE, still parsed).
    Things(Things),
    /// A user joined, left or renewed a membership (`membership`).
    Membership(Membership),
    /// A module channel was attached or detached (`module`).
    Module(ModuleContent),
    /// The module channel became active (`activated`).
    Activated {
        /// When chat control expires, in milliseconds since the Unix epoch.
        expire_at: i64,
    },
    /// The module channel went to standby (`deactivated`).
    Deactivated,
    /// The account was suspended (`botSuspended`).
    BotSuspended,
    /// The account is no longer suspended (`botResumed`).
    BotResumed,
    /// A LINE notification message was delivered (`delivery`).
    Delivery {
        /// The hashed phone number or the `X-Line-Delivery-Tag` value.
        data: String,
    },
    /// An event type this code does not know; its name is
    /// [`Event::event_type`] and its payload [`Event::raw`].
    Unknown,
    /// A known event type whose payload does not have the documented shape.
    Invalid {
        /// What did not match, for the log.
        reason: String,
    },
}

impl EventKind {
    fn parse(event_type: &str, event: &Map<String, Value>) -> Result<Self, String> {
        Ok(match event_type {
            "message" => Self::Message(MessageContent::parse(required(event, "message")?)?),
            "messageEdited" => Self::MessageEdited(MessageContent::parse(required(event, "message")?)?),
            "unsend" => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Unsend {
                    message_id: String,
                }
                let unsend: Unsend = required(event, "unsend")?;
                Self::Unsend { message_id: unsend.message_id }
            }
            "follow" => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Follow {
                    is_unblocked: bool,
                }
                let follow: Option<Follow> = optional(event, "follow")?;
                Self::Follow { is_unblocked: follow.is_some_and(|follow| follow.is_unblocked) }
            }
            "unfollow" => Self::Unfollow,
            "join" => Self::Join,
            "leave" => Self::Leave,
            "memberJoined" => Self::MemberJoined { members: required::<Members>(event, "joined")?.members },
            "memberLeft" => Self::MemberLeft { members: required::<Members>(event, "left")?.members },
            "postback" => Self::Postback(required(event, "postback")?),
            "videoPlayComplete" => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct VideoPlayComplete {
                    tracking_id: String,
                }
                let video: VideoPlayComplete = required(event, "videoPlayComplete")?;
                Self::VideoPlayComplete { tracking_id: video.tracking_id }
            }
            "beacon" => Self::Beacon(required(event, "beacon")?),
            "accountLink" => Self::AccountLink(required(event, "link")?),
            "things" => Self::Things(required(event, "things")?),
            "membership" => Self::Membership(required(event, "membership")?),
            "module" => Self::Module(ModuleContent::parse(required(event, "module")?)?),
            "activated" => {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct ChatControl {
                    expire_at: i64,
                }
                let control: ChatControl = required(event, "chatControl")?;
                Self::Activated { expire_at: control.expire_at }
            }
            "deactivated" => Self::Deactivated,
            "botSuspended" => Self::BotSuspended,
            "botResumed" => Self::BotResumed,
            "delivery" => {
                #[derive(Deserialize)]
                struct Delivery {
                    data: String,
                }
                let delivery: Delivery = required(event, "delivery")?;
                Self::Delivery { data: delivery.data }
            }
            _ => Self::Unknown,
        })
    }
}

#[derive(Deserialize)]
struct Members {
    members: Vec<Source>,
}

/// The content of a postback event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Postback {
    /// The `data` of the postback action.
    pub data: String,
    /// What the user picked in a datetime picker (`date`, `time` or `datetime`)
    /// or a rich menu switch (`newRichMenuAliasId`, `status`).
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

/// The content of a beacon event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Beacon {
    /// Hardware ID of the beacon.
    pub hwid: String,
    /// What the user did.
    #[serde(rename = "type")]
    pub beacon_type: BeaconType,
    /// The beacon's device message, if it sent one.
    pub dm: Option<String>,
}

open_string_enum! {
    /// What a user did near a beacon.
    pub enum BeaconType {
        /// Entered its range.
        Enter => "enter",
        /// Tapped its banner.
        Banner => "banner",
        /// Is staying in its range.
        Stay => "stay",
    }
}

/// The content of an account link event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AccountLink {
    /// Whether linking succeeded.
    pub result: AccountLinkResult,
    /// The nonce given when the link was started.
    pub nonce: String,
}

open_string_enum! {
    /// Whether an account link succeeded.
    pub enum AccountLinkResult {
        /// The accounts are linked.
        Ok => "ok",
        /// Linking failed; the event then has no reply token.
        Failed => "failed",
    }
}

/// The content of a LINE Things event.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Things {
    /// The device's ID.
    pub device_id: String,
    /// `link`, `unlink` or `scenarioResult`.
    #[serde(rename = "type")]
    pub things_type: String,
    /// The scenario result, on `scenarioResult`.
    pub result: Option<Value>,
}

/// The content of a membership event.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    /// What happened to the membership.
    #[serde(rename = "type")]
    pub membership_type: MembershipChange,
    /// The membership plan's ID.
    pub membership_id: i64,
}

open_string_enum! {
    /// What happened to a user's membership.
    pub enum MembershipChange {
        /// The user subscribed.
        Joined => "joined",
        /// The user unsubscribed.
        Left => "left",
        /// The user renewed.
        Renewed => "renewed",
    }
}

/// The content of a module event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleContent {
    /// The module channel was attached to an account.
    Attached {
        /// User ID of the account's bot.
        bot_id: String,
        /// The scopes the account's admin granted.
        scopes: Vec<String>,
    },
    /// The module channel was detached from an account.
    Detached {
        /// User ID of the account's bot.
        bot_id: String,
        /// Why, e.g. `bot_deleted`.
        reason: String,
    },
    /// A module event type this code does not know.
    Unknown {
        /// The `type` LINE sent.
        module_type: String,
    },
}

impl ModuleContent {
    fn parse(raw: Map<String, Value>) -> Result<Self, String> {
        Ok(match string(&raw, "type").as_deref() {
            Some("attached") => Self::Attached { bot_id: required(&raw, "botId")?, scopes: required(&raw, "scopes")? },
            Some("detached") => Self::Detached { bot_id: required(&raw, "botId")?, reason: required(&raw, "reason")? },
            Some(other) => Self::Unknown { module_type: other.to_owned() },
            None => return Err("module has no type".to_owned()),
        })
    }
}

/// The message of a message event, by message type.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// A text message.
    Text(TextMessage),
    /// An image; fetch the bytes with the content endpoint when provided by LINE.
    Image(ImageMessage),
    /// A video.
    Video(VideoMessage),
    /// An audio recording (LINE sends m4a).
    Audio(AudioMessage),
    /// A file.
    File(FileMessage),
    /// A location.
    Location(LocationMessage),
    /// A sticker.
    Sticker(StickerMessage),
    /// A message type this code does not know.
    Unknown {
        /// The `type` LINE sent.
        message_type: String,
        /// The message ID, if there was one.
        id: Option<String>,
        /// The message as LINE sent it.
        raw: Value,
    },
}

impl MessageContent {
    fn parse(raw: Map<String, Value>) -> Result<Self, String> {
        fn typed<T: DeserializeOwned>(message_type: &str, raw: Map<String, Value>) -> Result<T, String> {
            serde_json::from_value(Value::Object(raw)).map_err(|error| format!("{message_type} message: {error}"))
        }
        let message_type = string(&raw, "type").ok_or("message has no type")?;
        Ok(match message_type.as_str() {
            "text" => Self::Text(typed(&message_type, raw)?),
            "image" => Self::Image(typed(&message_type, raw)?),
            "video" => Self::Video(typed(&message_type, raw)?),
            "audio" => Self::Audio(typed(&message_type, raw)?),
            "file" => Self::File(typed(&message_type, raw)?),
            "location" => Self::Location(typed(&message_type, raw)?),
            "sticker" => Self::Sticker(typed(&message_type, raw)?),
            _ => Self::Unknown { id: string(&raw, "id"), raw: Value::Object(raw), message_type },
        })
    }

    /// Returns the message ID (the key for the content endpoints).
    pub fn id(&self) -> Option<&str> {
        Some(match self {
            Self::Text(message) => &message.id,
            Self::Image(message) => &message.id,
            Self::Video(message) => &message.id,
            Self::Audio(message) => &message.id,
            Self::File(message) => &message.id,
            Self::Location(message) => &message.id,
            Self::Sticker(message) => &message.id,
            Self::Unknown { id, .. } => return id.as_deref(),
        })
    }

    /// Returns the message type as LINE spells it.
    pub fn message_type(&self) -> &str {
        match self {
            Self::Text(_) => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::File(_) => "file",
            Self::Location(_) => "location",
            Self::Sticker(_) => "sticker",
            Self::Unknown { message_type, .. } => message_type,
        }
    }
}

/// A text message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextMessage {
    /// Message ID.
    pub id: String,
    /// The text.
    pub text: String,
    /// LINE emoji in the text.
    #[serde(default)]
    pub emojis: Vec<Emoji>,
    /// Mentions in the text.
    pub mention: Option<Mention>,
    /// Token for quoting this message in a reply.
    pub quote_token: Option<String>,
    /// ID of the message this one quotes.
    pub quoted_message_id: Option<String>,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

/// A LINE emoji inside a text message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Emoji {
    /// Where the emoji starts in the text.
    pub index: u32,
    /// How long its placeholder (like `(hello)`) is.
    pub length: u32,
    /// The emoji set's product ID.
    pub product_id: String,
    /// The emoji's ID in the set.
    pub emoji_id: String,
}

/// The mentions in a text message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Mention {
    /// Who was mentioned (at most 20).
    pub mentionees: Vec<Mentionee>,
}

/// One mention in a text message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "MentioneeFields")]
pub struct Mentionee {
    /// Where the mention starts in the text.
    pub index: u32,
    /// How long the mention text is.
    pub length: u32,
    /// Who was mentioned.
    pub target: MentionTarget,
}

/// Who a mention names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MentionTarget {
    /// One user.
    User {
        /// The user's ID, when they allowed the account to see their profile.
        user_id: Option<String>,
        /// Whether the mentioned user is this account's bot.
        is_self: bool,
    },
    /// Everyone in the group (`@All`).
    All,
    /// A mention type this code does not know.
    Other(String),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MentioneeFields {
    #[serde(rename = "type")]
    mentionee_type: String,
    index: u32,
    length: u32,
    user_id: Option<String>,
    is_self: Option<bool>,
}

impl From<MentioneeFields> for Mentionee {
    fn from(fields: MentioneeFields) -> Self {
        let target = match fields.mentionee_type.as_str() {
            "user" => MentionTarget::User { user_id: fields.user_id, is_self: fields.is_self.unwrap_or(false) },
            "all" => MentionTarget::All,
            _ => MentionTarget::Other(fields.mentionee_type),
        };
        Self { index: fields.index, length: fields.length, target }
    }
}

/// Who holds a media file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ContentProvider {
    /// LINE: fetch the bytes from the content endpoint.
    Line,
    /// The sender's own service, at these URLs.
    #[serde(rename_all = "camelCase")]
    External {
        /// URL of the file.
        original_content_url: Option<String>,
        /// URL of the preview image.
        preview_image_url: Option<String>,
    },
    /// A provider type this code does not know.
    #[serde(other)]
    Unknown,
}

/// An image message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageMessage {
    /// Message ID.
    pub id: String,
    /// Who holds the bytes.
    pub content_provider: ContentProvider,
    /// Set when several images were sent at once.
    pub image_set: Option<ImageSet>,
    /// Token for quoting this message in a reply.
    pub quote_token: Option<String>,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

/// Images sent together.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageSet {
    /// The set's ID.
    pub id: String,
    /// Position of this image in the set, from 1 (absent from old Android clients).
    pub index: Option<u32>,
    /// How many images the set has.
    pub total: Option<u32>,
}

/// A video message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VideoMessage {
    /// Message ID.
    pub id: String,
    /// Length in milliseconds.
    pub duration: Option<u64>,
    /// Who holds the bytes.
    pub content_provider: ContentProvider,
    /// Token for quoting this message in a reply.
    pub quote_token: Option<String>,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

/// An audio message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioMessage {
    /// Message ID.
    pub id: String,
    /// Length in milliseconds.
    pub duration: Option<u64>,
    /// Who holds the bytes.
    pub content_provider: ContentProvider,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

/// A file message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileMessage {
    /// Message ID.
    pub id: String,
    /// The file's name.
    pub file_name: String,
    /// The file's size in bytes.
    pub file_size: u64,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

/// A location message.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocationMessage {
    /// Message ID.
    pub id: String,
    /// The place's title.
    pub title: Option<String>,
    /// The place's address.
    pub address: Option<String>,
    /// Latitude.
    pub latitude: f64,
    /// Longitude.
    pub longitude: f64,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

/// A sticker message.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StickerMessage {
    /// Message ID.
    pub id: String,
    /// The sticker package's ID.
    pub package_id: String,
    /// The sticker's ID.
    pub sticker_id: String,
    /// How the sticker is drawn (absent in very old bodies).
    pub sticker_resource_type: Option<StickerResourceType>,
    /// Up to 15 keywords describing the sticker (experimental on LINE's side).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Text the user typed into a message sticker.
    pub text: Option<String>,
    /// Token for quoting this message in a reply.
    pub quote_token: Option<String>,
    /// ID of the message this one quotes.
    pub quoted_message_id: Option<String>,
    /// Token for marking this message as read.
    pub mark_as_read_token: Option<String>,
}

open_string_enum! {
    /// How a sticker is drawn.
    pub enum StickerResourceType {
        /// A still image.
        Static => "STATIC",
        /// An animation.
        Animation => "ANIMATION",
        /// A sticker with sound.
        Sound => "SOUND",
        /// An animation with sound.
        AnimationSound => "ANIMATION_SOUND",
        /// A pop-up sticker.
        Popup => "POPUP",
        /// A pop-up sticker with sound.
        PopupSound => "POPUP_SOUND",
        /// A custom sticker with text the user chose.
        Custom => "CUSTOM",
        /// A message sticker with text the user typed.
        Message => "MESSAGE",
        /// A custom name sticker.
        NameText => "NAME_TEXT",
        /// A sticker whose text the user set per sticker.
        PerStickerText => "PER_STICKER_TEXT",
    }
}

fn string(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn required<T: DeserializeOwned>(object: &Map<String, Value>, name: &str) -> Result<T, String> {
    optional(object, name)?.ok_or_else(|| format!("missing field `{name}`"))
}

fn optional<T: DeserializeOwned>(object: &Map<String, Value>, name: &str) -> Result<Option<T>, String> {
    match object.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value).map(Some).map_err(|error| format!("field `{name}`: {error}")),
    }
}

#[cfg(test)]
mod tests;
