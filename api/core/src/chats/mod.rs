//! The agent workspace: chats an agent may see, their messages, the status
//! lifecycle with exclusive claims, transfers, blocking, and sending.

use std::collections::{HashMap, HashSet};

use futures::StreamExt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{agents, attachments, channel_agents, chats, contacts, end_users, messages};
use sea_orm::sea_query::{Expr, ExprTrait, LockType};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, JoinType, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use serde_json::json;

use crate::Core;
use crate::auth::{Caller, Permission};
use crate::bounds;
use crate::db::Write;
use crate::error::{Error, Result};
use crate::events::{EventStream, NewEvent};
use crate::ids::{
    AgentId, AttachmentId, ChannelId, ChatId, ContactId, DepartmentId, EndUserId, MessageId, OrganizationId,
};
use crate::kinds::{
    AttachmentStatus, ChannelStatus, ChatStatus, CompletionReason, DeliveryMethod, DeliveryState, MessageDirection,
    MessageKind,
};

pub mod live;

pub use live::VisibleChatEvent;
pub(crate) use live::{ChatSnapshots, chat_snapshots};

/// The largest page of chats a caller may ask for.
pub const MAX_PAGE_SIZE: u64 = 100;
/// The page size of `chats` when the caller gives none.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// How many messages `chat.messages` returns when the caller gives no `first`.
pub const DEFAULT_MESSAGES: u64 = 100;
/// The most messages one `chat.messages` call returns.
pub const MAX_MESSAGES: u64 = 500;
/// What `chat.messages` covers when no `from` is given: the week before `to`.
pub const DEFAULT_MESSAGE_WINDOW: Duration = Duration::days(7);
/// The longest text an agent may send (LINE's limit, in UTF-16 code units).
pub const MAX_TEXT_LENGTH: usize = 5_000;

/// A consumer as shown on a chat.
#[derive(Clone, Debug, PartialEq)]
pub struct EndUser {
    pub id: EndUserId,
    pub channel_id: ChannelId,
    /// The provider's id (LINE userId, WeChat OpenID): the "customer ID".
    pub external_id: String,
    pub display_name: Option<String>,
    pub picture_url: Option<String>,
    pub contact_id: Option<ContactId>,
    pub blocked: bool,
    /// The consumer blocked (unfollowed) the official account.
    pub unfollowed: bool,
}

/// A chat as the API shows it.
#[derive(Clone, Debug, PartialEq)]
// Only core makes a `Chat`, after checking its caller may see it (see
// [`Chat::seen`]).
#[non_exhaustive]
pub struct Chat {
    pub id: ChatId,
    pub organization_id: OrganizationId,
    pub channel_id: ChannelId,
    pub department_id: DepartmentId,
    pub end_user: EndUser,
    pub status: ChatStatus,
    pub claimed_by: Option<AgentId>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    pub unread_count: i32,
    pub completed_at: Option<DateTime<Utc>>,
    pub completion_reason: Option<CompletionReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Chat {
    /// Returns the proof that the caller this chat was loaded for may see it.
    pub fn seen(&self) -> SeenChat {
        SeenChat { id: self.id, organization_id: self.organization_id }
    }
}

/// A chat a caller's use case found them allowed to see. Only core makes
/// one, so a use case given one (the messages of a chat just read) need not
/// look it up again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeenChat {
    id: ChatId,
    organization_id: OrganizationId,
}

/// Media attached to a message.
#[derive(Clone, Debug, PartialEq)]
pub struct Attachment {
    pub id: AttachmentId,
    pub kind: MessageKind,
    pub status: AttachmentStatus,
    pub content_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub file_name: Option<String>,
}

/// A message as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub chat_id: ChatId,
    pub direction: MessageDirection,
    pub kind: MessageKind,
    pub text: Option<String>,
    /// Provider details: sticker ids, location, emoji and mention data.
    pub payload: Option<serde_json::Value>,
    pub sender_agent_id: Option<AgentId>,
    pub is_passcode: bool,
    pub delivery_state: DeliveryState,
    pub delivery_method: Option<DeliveryMethod>,
    /// Why delivery failed, in the provider's words.
    pub delivery_error: Option<String>,
    pub attachments: Vec<Attachment>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

/// Which chats to list. Every field narrows the list.
#[derive(Clone, Debug, Default)]
pub struct ChatFilter {
    pub statuses: Vec<ChatStatus>,
    pub channel_id: Option<ChannelId>,
    pub department_id: Option<DepartmentId>,
    pub claimed_by: Option<AgentId>,
    /// The provider's id of the consumer, exactly.
    pub customer_id: Option<String>,
    /// Part of the consumer's display name or linked contact's name.
    pub customer_name: Option<String>,
    /// Part of the linked contact's phone number.
    pub phone: Option<String>,
    /// Linked to a contact (`true`) or not (`false`).
    pub linked: Option<bool>,
}

/// A page request: at most `first` chats after `after`.
#[derive(Clone, Debug, Default)]
pub struct PageRequest {
    pub first: Option<u64>,
    pub after: Option<String>,
}

/// A page of chats, newest activity first.
#[derive(Clone, Debug)]
pub struct ChatPage {
    pub chats: Vec<(String, Chat)>,
    pub has_next_page: bool,
}

/// Text an agent sends: 1 to 5,000 characters (UTF-16 code units).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: &str) -> Result<Self> {
        let length = text.encode_utf16().count();
        if text.trim().is_empty() || length > MAX_TEXT_LENGTH {
            return Err(Error::invalid_argument("a message has 1 to 5000 characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An image an agent sends: JPEG or PNG (by content), at most 10 MB.
#[derive(Clone, Debug)]
pub struct OutgoingImage {
    bytes: bytes::Bytes,
    content_type: &'static str,
}

impl OutgoingImage {
    pub const MAX_BYTES: usize = 10 * 1024 * 1024;

    pub fn parse(bytes: bytes::Bytes) -> Result<Self> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(Error::invalid_argument("an image may be at most 10 MB"));
        }
        let content_type = if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            "image/jpeg"
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            "image/png"
        } else {
            return Err(Error::invalid_argument("an image must be a JPEG or PNG"));
        };
        Ok(Self { bytes, content_type })
    }
}

/// A voice message an agent sends (WeChat): AMR or MP3 (by content), at
/// most 2 MB, WeChat's limit for voice.
#[derive(Clone, Debug)]
pub struct OutgoingVoice {
    bytes: bytes::Bytes,
    content_type: &'static str,
}

impl OutgoingVoice {
    pub const MAX_BYTES: usize = 2 * 1024 * 1024;

    pub fn parse(bytes: bytes::Bytes) -> Result<Self> {
        if bytes.len() > Self::MAX_BYTES {
            return Err(Error::invalid_argument("a voice message may be at most 2 MB"));
        }
        let mp3 = bytes.starts_with(b"ID3") || (bytes.len() > 1 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0);
        let content_type = if bytes.starts_with(b"#!AMR\n") {
            "audio/amr"
        } else if mp3 {
            "audio/mpeg"
        } else {
            return Err(Error::invalid_argument("a voice message must be AMR or MP3"));
        };
        Ok(Self { bytes, content_type })
    }
}

/// A video an agent sends (WeChat): MP4 (by content), at most 10 MB, with
/// the JPEG thumbnail WeChat shows before it plays (at most 64 KB).
#[derive(Clone, Debug)]
pub struct OutgoingVideo {
    video: bytes::Bytes,
    thumbnail: bytes::Bytes,
}

impl OutgoingVideo {
    pub const MAX_BYTES: usize = 10 * 1024 * 1024;
    pub const MAX_THUMBNAIL_BYTES: usize = 64 * 1024;

    pub fn parse(video: bytes::Bytes, thumbnail: bytes::Bytes) -> Result<Self> {
        if video.len() > Self::MAX_BYTES {
            return Err(Error::invalid_argument("a video may be at most 10 MB"));
        }
        if video.len() < 8 || &video[4..8] != b"ftyp" {
            return Err(Error::invalid_argument("a video must be an MP4"));
        }
        if thumbnail.len() > Self::MAX_THUMBNAIL_BYTES {
            return Err(Error::invalid_argument("a video's thumbnail may be at most 64 KB"));
        }
        if !thumbnail.starts_with(&[0xFF, 0xD8, 0xFF]) {
            return Err(Error::invalid_argument("a video's thumbnail must be a JPEG"));
        }
        Ok(Self { video, thumbnail })
    }
}

enum Outgoing {
    Text(MessageText),
    Image(OutgoingImage),
    Voice(OutgoingVoice),
    Video(OutgoingVideo),
}

/// A file stored with an outbound message.
struct OutgoingFile {
    kind: MessageKind,
    content_type: &'static str,
    bytes: bytes::Bytes,
    /// `thumbnail` for a video's.
    file_name: Option<&'static str>,
}

impl Outgoing {
    fn kind(&self) -> MessageKind {
        match self {
            Self::Text(_) => MessageKind::Text,
            Self::Image(_) => MessageKind::Image,
            Self::Voice(_) => MessageKind::Audio,
            Self::Video(_) => MessageKind::Video,
        }
    }

    fn files(&self) -> Vec<OutgoingFile> {
        let file = |kind, content_type, bytes: &bytes::Bytes, file_name| OutgoingFile {
            kind,
            content_type,
            bytes: bytes.clone(),
            file_name,
        };
        match self {
            Self::Text(_) => Vec::new(),
            Self::Image(image) => vec![file(MessageKind::Image, image.content_type, &image.bytes, None)],
            Self::Voice(voice) => vec![file(MessageKind::Audio, voice.content_type, &voice.bytes, None)],
            Self::Video(video) => vec![
                file(MessageKind::Video, "video/mp4", &video.video, None),
                file(MessageKind::Image, "image/jpeg", &video.thumbnail, Some("thumbnail")),
            ],
        }
    }
}

/// Chat use cases.
#[derive(Debug, Clone, Copy)]
pub struct Chats<'a> {
    core: &'a Core,
}

impl<'a> Chats<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Lists the chats the caller may see, most recent activity first.
    pub async fn list(&self, caller: &Caller, filter: ChatFilter, page: PageRequest) -> Result<ChatPage> {
        caller.require(Permission::ReadChats)?;
        let first = page.first.unwrap_or(DEFAULT_PAGE_SIZE);
        if first == 0 || first > MAX_PAGE_SIZE {
            return Err(Error::invalid_argument(format!("first must be between 1 and {MAX_PAGE_SIZE}")));
        }
        for (field, text) in
            [("customerId", &filter.customer_id), ("customerName", &filter.customer_name), ("phone", &filter.phone)]
        {
            if let Some(text) = text {
                bounds::short_text(field, text.trim())?;
            }
        }
        let organization_id = caller.organization_id();
        let mut condition = Condition::all().add(chats::Column::OrganizationId.eq(organization_id.uuid()));
        if let Some(visible) = self.core.channels().visible_channel_ids(caller).await? {
            condition = condition.add(chats::Column::ChannelId.is_in(visible.into_iter().map(ChannelId::uuid)));
        }
        if !filter.statuses.is_empty() {
            // Each status once, however often the request lists it.
            let statuses: std::collections::BTreeSet<&str> =
                filter.statuses.iter().map(|status| status.as_str()).collect();
            condition = condition.add(chats::Column::Status.is_in(statuses));
        }
        if let Some(channel_id) = filter.channel_id {
            condition = condition.add(chats::Column::ChannelId.eq(channel_id.uuid()));
        }
        if let Some(department_id) = filter.department_id {
            condition = condition.add(chats::Column::DepartmentId.eq(department_id.uuid()));
        }
        if let Some(agent_id) = filter.claimed_by {
            condition = condition.add(chats::Column::ClaimedByAgentId.eq(agent_id.uuid()));
        }
        let mut users = Condition::all().add(end_users::Column::OrganizationId.eq(organization_id.uuid()));
        let mut filters_users = false;
        if let Some(customer_id) = &filter.customer_id {
            users = users.add(end_users::Column::ExternalId.eq(customer_id.trim()));
            filters_users = true;
        }
        if let Some(linked) = filter.linked {
            users = users.add(if linked {
                end_users::Column::ContactId.is_not_null()
            } else {
                end_users::Column::ContactId.is_null()
            });
            filters_users = true;
        }
        if filter.customer_name.is_some() || filter.phone.is_some() {
            let mut contact_condition =
                Condition::all().add(contacts::Column::OrganizationId.eq(organization_id.uuid()));
            if let Some(phone) = &filter.phone {
                let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
                contact_condition = contact_condition.add(contacts::Column::Phone.contains(digits));
            }
            if let Some(name) = &filter.customer_name {
                contact_condition = contact_condition.add(contacts::Column::Name.contains(name.trim()));
            }
            // Sub-selects, not id lists: the statement stays the same size
            // however many contacts or consumers match.
            let contact_ids = contacts::Entity::find()
                .select_only()
                .column(contacts::Column::Id)
                .filter(contact_condition)
                .into_query();
            let mut either = Condition::any().add(Expr::col(end_users::Column::ContactId).in_subquery(contact_ids));
            if let (Some(name), None) = (&filter.customer_name, &filter.phone) {
                either = either.add(end_users::Column::DisplayName.contains(name.trim()));
            }
            users = users.add(either);
            filters_users = true;
        }
        if filters_users {
            let ids = end_users::Entity::find().select_only().column(end_users::Column::Id).filter(users).into_query();
            condition = condition.add(Expr::col(chats::Column::EndUserId).in_subquery(ids));
        }
        if let Some(after) = &page.after {
            let (at, id) = decode_cursor(after)?;
            condition =
                condition.add(Condition::any().add(Expr::col(chats::Column::UpdatedAt).lt(at)).add(
                    Condition::all().add(Expr::col(chats::Column::UpdatedAt).eq(at)).add(chats::Column::Id.lt(id)),
                ));
        }
        let rows = chats::Entity::find()
            .filter(condition)
            .order_by_desc(chats::Column::UpdatedAt)
            .order_by_desc(chats::Column::Id)
            .limit(first + 1)
            .all(self.core.db())
            .await?;
        let has_next_page = rows.len() as u64 > first;
        let rows: Vec<_> = rows.into_iter().take(first as usize).collect();
        let chats = self.with_end_users(rows).await?;
        Ok(ChatPage {
            chats: chats.into_iter().map(|chat| (encode_cursor(chat.updated_at, chat.id.uuid()), chat)).collect(),
            has_next_page,
        })
    }

    /// Returns a chat the caller may see; others are `NotFound`.
    pub async fn get(&self, caller: &Caller, id: ChatId) -> Result<Chat> {
        caller.require(Permission::ReadChats)?;
        let (row, end_user) = self.find_with_end_user(caller.organization_id(), id).await?;
        self.ensure_visible(caller, &row).await?;
        chat_from_rows(row, end_user)
    }

    /// Loads an organization's chat, for a caller already allowed to see it.
    pub(crate) async fn load(&self, organization_id: OrganizationId, id: ChatId) -> Result<Chat> {
        let (row, end_user) = self.find_with_end_user(organization_id, id).await?;
        chat_from_rows(row, end_user)
    }

    /// Reads a chat and its end user in one statement.
    async fn find_with_end_user(
        &self,
        organization_id: OrganizationId,
        id: ChatId,
    ) -> Result<(chats::Model, end_users::Model)> {
        let end_user = chats::Entity::belongs_to(end_users::Entity)
            .from(chats::Column::EndUserId)
            .to(end_users::Column::Id)
            .into();
        let (row, end_user) = chats::Entity::find_by_id(id.uuid())
            .filter(chats::Column::OrganizationId.eq(organization_id.uuid()))
            .join(JoinType::InnerJoin, end_user)
            .select_also(end_users::Entity)
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("chat"))?;
        Ok((row, end_user.ok_or_else(|| Error::not_found("end user"))?))
    }

    /// Returns whether the caller may see chats of a channel.
    pub async fn can_see_channel(&self, caller: &Caller, channel_id: ChannelId) -> Result<bool> {
        Ok(match self.core.channels().visible_channel_ids(caller).await? {
            Some(visible) => visible.contains(&channel_id),
            None => true,
        })
    }

    /// Follows the organization's event log for a caller, passing on only
    /// events of channels the caller may see. The visible channels are read
    /// again whenever associations change, so an agent removed from a
    /// channel stops receiving its events.
    pub async fn follow_visible(&self, caller: &Caller, after: Option<i64>) -> Result<EventStream> {
        caller.require(Permission::ReadChats)?;
        let core = self.core.clone();
        let caller = caller.clone();
        let mut events = core.events().follow_from(caller.organization_id(), after).await?;
        Ok(Box::pin(async_stream::try_stream! {
            let visible_now = |core: Core, caller: Caller| async move {
                Ok::<_, Error>(core.channels().visible_channel_ids(&caller).await?.map(|ids| ids.into_iter().collect::<HashSet<_>>()))
            };
            // Boxed while it queries, so an idle subscriber's state stays small.
            let mut visible = Box::pin(visible_now(core.clone(), caller.clone())).await?;
            while let Some(event) = events.next().await {
                let event = event?;
                if event.kind == "channel.agents_changed" {
                    visible = Box::pin(visible_now(core.clone(), caller.clone())).await?;
                }
                let allowed = match (&visible, event.channel_id) {
                    (None, _) => true,
                    (Some(channels), Some(channel_id)) => channels.contains(&channel_id),
                    (Some(_), None) => false,
                };
                if allowed {
                    yield event;
                }
            }
        }))
    }

    /// Returns a chat's messages between two times (default: the last 7
    /// days), oldest first.
    /// Returns the newest `first` messages (default [`DEFAULT_MESSAGES`], at
    /// most [`MAX_MESSAGES`]) between `from` and `to` (by default the week
    /// before now), oldest first; older ones are read with `to` set to the
    /// oldest one's time.
    pub async fn messages(
        &self,
        caller: &Caller,
        id: ChatId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        first: Option<u64>,
    ) -> Result<Vec<Message>> {
        caller.require(Permission::ReadChats)?;
        let first = first.unwrap_or(DEFAULT_MESSAGES);
        if first == 0 || first > MAX_MESSAGES {
            return Err(Error::invalid_argument(format!("first must be between 1 and {MAX_MESSAGES}")));
        }
        self.visible(caller, id).await?;
        self.messages_in(id, from, to, Some(first)).await
    }

    /// Returns the messages of a chat the caller has just been shown, as
    /// [`Chats::messages`] does, without looking the chat up again.
    pub async fn messages_of(
        &self,
        caller: &Caller,
        chat: SeenChat,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        first: Option<u64>,
    ) -> Result<Vec<Message>> {
        caller.require(Permission::ReadChats)?;
        if chat.organization_id != caller.organization_id() {
            return Err(Error::not_found("chat"));
        }
        self.messages_in(chat.id, from, to, first).await
    }

    async fn messages_in(
        &self,
        id: ChatId,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        first: Option<u64>,
    ) -> Result<Vec<Message>> {
        let first = first.unwrap_or(DEFAULT_MESSAGES);
        if first == 0 || first > MAX_MESSAGES {
            return Err(Error::invalid_argument(format!("first must be between 1 and {MAX_MESSAGES}")));
        }
        let from = from.map(|from| crate::clock::supported_instant(from, "from")).transpose()?;
        let to = to.map(|to| crate::clock::supported_instant(to, "to")).transpose()?;
        let to = to.unwrap_or_else(|| self.core.now() + Duration::seconds(1));
        let from = from.unwrap_or(to - DEFAULT_MESSAGE_WINDOW);
        if from > to {
            return Err(Error::invalid_argument("from must not be after to"));
        }
        let mut rows = messages::Entity::find()
            .filter(messages::Column::ChatId.eq(id.uuid()))
            .filter(messages::Column::CreatedAt.gte(from))
            .filter(messages::Column::CreatedAt.lte(to))
            .order_by_desc(messages::Column::CreatedAt)
            .order_by_desc(messages::Column::Id)
            .limit(first)
            .all(self.core.db())
            .await?;
        rows.reverse();
        self.with_attachments(rows).await
    }

    /// Returns one message of a chat the caller may see.
    pub async fn message(&self, caller: &Caller, id: MessageId) -> Result<Message> {
        caller.require(Permission::ReadChats)?;
        let row = messages::Entity::find_by_id(id.uuid())
            .filter(messages::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("message"))?;
        self.visible(caller, row.chat_id.into()).await.map_err(|_| Error::not_found("message"))?;
        Ok(self.with_attachments(vec![row]).await?.remove(0))
    }

    /// Claims a `NEW` chat for the calling agent. Of agents racing, exactly
    /// one wins: the claim is a conditional update in the database.
    pub async fn claim(&self, caller: &Caller, id: ChatId) -> Result<Chat> {
        caller.require(Permission::WriteChats)?;
        let agent = caller.agent().ok_or_else(|| Error::permission_denied("only agents claim chats"))?;
        let chat = self.visible(caller, id).await?;
        self.ensure_channel_usable(&chat).await?;
        let lost = match ChatStatus::parse(&chat.status)? {
            ChatStatus::Completed => Error::failed_precondition("the chat is completed"),
            _ => Error::aborted("the chat is already claimed"),
        };
        let now = self.core.now();
        let claim = chats::Entity::update_many()
            .col_expr(chats::Column::Status, Expr::value(ChatStatus::InProgress.as_str()))
            .col_expr(chats::Column::ClaimedByAgentId, Expr::value(agent.agent_id.uuid()))
            .col_expr(chats::Column::ClaimedAt, Expr::value(now))
            .filter(chats::Column::Status.eq(ChatStatus::New.as_str()));
        self.transition(id, claim, "chat.claimed", now, lost).await
    }

    /// Completes a chat (its claimer or an admin).
    pub async fn complete(&self, caller: &Caller, id: ChatId) -> Result<Chat> {
        caller.require(Permission::WriteChats)?;
        let chat = self.visible(caller, id).await?;
        self.require_claimer_or_admin(caller, &chat)?;
        if chat.status == ChatStatus::Completed.as_str() {
            return Err(Error::failed_precondition("the chat is already completed"));
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        if !self.complete_in(&mut write, &chat, CompletionReason::Agent, now).await? {
            return Err(changed_meanwhile());
        }
        write.commit().await?;
        self.get(caller, id).await
    }

    /// Completes the chat in `write` — by an agent, or by a timer (`reason`)
    /// — if it is still as `chat` was read (status, claimer, last message),
    /// ending its ticket window; `false` when it changed meanwhile.
    pub(crate) async fn complete_in(
        &self,
        write: &mut Write<'_>,
        chat: &chats::Model,
        reason: CompletionReason,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let last_message = match chat.last_message_at {
            Some(at) => chats::Column::LastMessageAt.eq(at),
            None => chats::Column::LastMessageAt.is_null(),
        };
        let completed = chats::Entity::update_many()
            .col_expr(chats::Column::Status, Expr::value(ChatStatus::Completed.as_str()))
            .col_expr(chats::Column::ClaimedByAgentId, Expr::value(Option::<uuid::Uuid>::None))
            .col_expr(chats::Column::CompletedAt, Expr::value(now))
            .col_expr(chats::Column::CompletionReason, Expr::value(reason.as_str()))
            .col_expr(chats::Column::UpdatedAt, Expr::value(now))
            .filter(chats::Column::Id.eq(chat.id))
            .filter(unchanged(chat))
            .filter(last_message)
            .exec(&**write)
            .await?;
        if completed.rows_affected != 1 {
            return Ok(false);
        }
        crate::timers::end_ticket_window_in(write, chat, false, now).await?;
        self.append_chat_event(write, chat.id.into(), "chat.completed", now).await?;
        Ok(true)
    }

    /// Hands a claimed chat to another agent (its claimer or an admin). The
    /// new agent must be able to see the chat's channel.
    pub async fn transfer(&self, caller: &Caller, id: ChatId, to: AgentId) -> Result<Chat> {
        caller.require(Permission::WriteChats)?;
        let chat = self.visible(caller, id).await?;
        self.require_claimer_or_admin(caller, &chat)?;
        self.ensure_channel_usable(&chat).await?;
        let target = agents::Entity::find_by_id(to.uuid())
            .filter(agents::Column::OrganizationId.eq(chat.organization_id))
            .filter(agents::Column::Active.eq(true))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("agent"))?;
        let target_is_admin = target.role == crate::auth::Role::Admin.as_str();
        let associated =
            channel_agents::Entity::find_by_id((chat.channel_id, to.uuid())).one(self.core.db()).await?.is_some();
        if !target_is_admin && !associated {
            return Err(Error::failed_precondition("that agent is not associated with the chat's channel"));
        }
        if chat.status == ChatStatus::Completed.as_str() {
            return Err(Error::failed_precondition("the chat is completed"));
        }
        let now = self.core.now();
        let transfer = chats::Entity::update_many()
            .col_expr(chats::Column::Status, Expr::value(ChatStatus::InProgress.as_str()))
            .col_expr(chats::Column::ClaimedByAgentId, Expr::value(to.uuid()))
            .col_expr(chats::Column::ClaimedAt, Expr::value(now))
            .filter(unchanged(&chat));
        self.transition(id, transfer, "chat.transferred", now, changed_meanwhile()).await
    }

    /// Releases a claim so the chat is `NEW` again (admins).
    pub async fn release(&self, caller: &Caller, id: ChatId) -> Result<Chat> {
        caller.require(Permission::WriteChats)?;
        let chat = self.visible(caller, id).await?;
        if !caller.is_admin() {
            return Err(Error::permission_denied("only admins release claims"));
        }
        if chat.status != ChatStatus::InProgress.as_str() {
            return Err(Error::failed_precondition("the chat is not claimed"));
        }
        let now = self.core.now();
        let release = chats::Entity::update_many()
            .col_expr(chats::Column::Status, Expr::value(ChatStatus::New.as_str()))
            .col_expr(chats::Column::ClaimedByAgentId, Expr::value(Option::<uuid::Uuid>::None))
            .col_expr(chats::Column::ClaimedAt, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(unchanged(&chat));
        self.transition(id, release, "chat.released", now, changed_meanwhile()).await
    }

    /// Applies a status change as one conditional update: if the row no
    /// longer matches the update's filters (someone else got there first),
    /// nothing changes and `lost` is returned.
    async fn transition(
        &self,
        id: ChatId,
        update: sea_orm::UpdateMany<chats::Entity>,
        kind: &'static str,
        now: DateTime<Utc>,
        lost: Error,
    ) -> Result<Chat> {
        let mut write = self.core.write().await?;
        let updated = update
            .col_expr(chats::Column::UpdatedAt, Expr::value(now))
            .filter(chats::Column::Id.eq(id.uuid()))
            .exec(&*write)
            .await?;
        if updated.rows_affected != 1 {
            return Err(lost);
        }
        let chat = self.append_chat_event(&mut write, id, kind, now).await?;
        // A claim starts the idle close; a release ends it. (Read in the
        // transaction: a second connection while holding this one could
        // wait on a pool that every writer holds.)
        let channel = madoguchi_entity::channels::Entity::find_by_id(chat.channel_id.uuid())
            .one(&*write)
            .await?
            .ok_or_else(|| Error::not_found("channel"))?;
        crate::timers::arm_in(&mut write, &channel, id.uuid(), now).await?;
        write.commit().await?;
        Ok(chat)
    }

    /// Marks a chat's messages as read for the organization.
    pub async fn mark_read(&self, caller: &Caller, id: ChatId) -> Result<Chat> {
        caller.require(Permission::ReadChats)?;
        let chat = self.visible(caller, id).await?;
        if chat.unread_count == 0 {
            return self.get(caller, id).await;
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        chats::Entity::update_many()
            .col_expr(chats::Column::UnreadCount, Expr::value(0))
            .filter(chats::Column::Id.eq(id.uuid()))
            .exec(&*write)
            .await?;
        let chat = self.append_chat_event(&mut write, id, "chat.read", now).await?;
        write.commit().await?;
        Ok(chat)
    }

    /// Blocks or unblocks the consumer of a chat: while blocked their
    /// messages are kept but open nothing and notify no one, and nothing can
    /// be sent to them.
    pub async fn set_blocked(&self, caller: &Caller, id: ChatId, blocked: bool) -> Result<Chat> {
        caller.require(Permission::WriteChats)?;
        let chat = self.visible(caller, id).await?;
        self.ensure_channel_not_deleted(&chat).await?;
        let now = self.core.now();
        let mut write = self.core.write().await?;
        end_users::Entity::update_many()
            .col_expr(end_users::Column::BlockedAt, Expr::value(blocked.then_some(now)))
            .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
            .filter(end_users::Column::Id.eq(chat.end_user_id))
            .exec(&*write)
            .await?;
        let kind = if blocked { "end_user.blocked" } else { "end_user.unblocked" };
        let chat = self.append_chat_event(&mut write, id, kind, now).await?;
        write.commit().await?;
        Ok(chat)
    }

    /// Sends text in a chat. Only the agent who claimed the chat may send;
    /// the message leaves through the channel's outbound path and its
    /// delivery state changes through the event log.
    pub async fn send_text(&self, caller: &Caller, id: ChatId, text: MessageText) -> Result<Message> {
        self.send(caller, id, Outgoing::Text(text)).await
    }

    /// Sends an image in a chat, under the same rules as text.
    pub async fn send_image(&self, caller: &Caller, id: ChatId, image: OutgoingImage) -> Result<Message> {
        self.send(caller, id, Outgoing::Image(image)).await
    }

    /// Sends a voice message, where the channel's provider takes one (WeChat).
    pub async fn send_voice(&self, caller: &Caller, id: ChatId, voice: OutgoingVoice) -> Result<Message> {
        self.send(caller, id, Outgoing::Voice(voice)).await
    }

    /// Sends a video, where the channel's provider takes one (WeChat).
    pub async fn send_video(&self, caller: &Caller, id: ChatId, video: OutgoingVideo) -> Result<Message> {
        self.send(caller, id, Outgoing::Video(video)).await
    }

    async fn send(&self, caller: &Caller, id: ChatId, content: Outgoing) -> Result<Message> {
        caller.require(Permission::WriteChats)?;
        let agent = caller.agent().ok_or_else(|| Error::permission_denied("only agents send messages"))?;
        let chat = self.visible(caller, id).await?;
        if chat.status != ChatStatus::InProgress.as_str() || chat.claimed_by_agent_id != Some(agent.agent_id.uuid()) {
            return Err(Error::permission_denied("only the agent who claimed the chat may send in it"));
        }
        let channel = self.ensure_channel_usable(&chat).await?;
        // Checked here to refuse before any upload, and again in the write
        // transaction, where it is settled.
        let end_user = end_users::Entity::find_by_id(chat.end_user_id).one(self.core.db()).await?;
        ensure_reachable(end_user.as_ref())?;
        let kind = content.kind();
        self.core.delivery().accepts(&channel, kind)?;
        let message_id = MessageId::generate();
        let (text, preview_text) = match &content {
            Outgoing::Text(text) => (Some(text.as_str().to_owned()), preview(text.as_str())),
            _ => (None, format!("[{}]", kind.as_str().to_lowercase())),
        };
        let mut files = Vec::new();
        for file in content.files() {
            let attachment_id = AttachmentId::generate();
            let key = format!("{}/attachments/{attachment_id}", chat.organization_id);
            self.core.blobs().put(&key, file.bytes.clone()).await?;
            files.push((attachment_id, key, file));
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        // What was read above may have changed since. The chat changes
        // only while this agent still holds it, and then the consumer is
        // locked against a block (the chat before its end user, the order
        // intake takes them in when a passcode links a contact): a send that
        // lost a race to a transfer, a release, a completion or a block
        // stores nothing.
        let held = chats::Entity::update_many()
            .col_expr(chats::Column::LastMessageAt, Expr::value(now))
            .col_expr(chats::Column::LastMessagePreview, Expr::value(preview_text))
            .col_expr(chats::Column::LastAgentMessageAt, Expr::value(now))
            .col_expr(chats::Column::UpdatedAt, Expr::value(now))
            .filter(chats::Column::Id.eq(chat.id))
            .filter(chats::Column::Status.eq(ChatStatus::InProgress.as_str()))
            .filter(chats::Column::ClaimedByAgentId.eq(agent.agent_id.uuid()))
            .exec(&*write)
            .await?;
        if held.rows_affected == 0 {
            return Err(Error::permission_denied("only the agent who claimed the chat may send in it"));
        }
        let end_user = end_users::Entity::find_by_id(chat.end_user_id).lock(LockType::Share).one(&*write).await?;
        ensure_reachable(end_user.as_ref())?;
        let method = self.core.delivery().choose_method(&write, &channel, &chat, now).await?;
        messages::ActiveModel {
            id: Set(message_id.uuid()),
            organization_id: Set(chat.organization_id),
            chat_id: Set(chat.id),
            direction: Set(MessageDirection::Outbound.as_str().into()),
            kind: Set(kind.as_str().into()),
            text: Set(text),
            payload: Set(None),
            sender_agent_id: Set(Some(agent.agent_id.uuid())),
            external_id: Set(None),
            is_passcode: Set(false),
            delivery_state: Set(DeliveryState::Pending.as_str().into()),
            delivery_method: Set(Some(method.as_str().into())),
            delivery_error: Set(None),
            reply_token: Set(None),
            reply_token_used_at: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            delivery_job_id: Set(None),
        }
        .insert(&*write)
        .await?;
        for (attachment_id, key, file) in &files {
            attachments::ActiveModel {
                id: Set(attachment_id.uuid()),
                organization_id: Set(chat.organization_id),
                message_id: Set(message_id.uuid()),
                kind: Set(file.kind.as_str().into()),
                status: Set(AttachmentStatus::Ready.as_str().into()),
                content_type: Set(Some(file.content_type.into())),
                size_bytes: Set(Some(file.bytes.len() as i64)),
                blob_key: Set(Some(key.clone())),
                file_name: Set(file.file_name.map(str::to_owned)),
                error: Set(None),
                created_at: Set(now),
            }
            .insert(&*write)
            .await?;
        }
        self.core.delivery().enqueue(&mut write, &channel, &chat, message_id, method, now).await?;
        let message = load_message(&*write, message_id.uuid()).await?;
        append_chat_message_event(&mut write, &chat, "message.created", &message, now).await?;
        self.append_chat_event(&mut write, id, "chat.updated", now).await?;
        // An answer ends the missed-chat close and moves the idle close.
        crate::timers::arm_in(&mut write, &channel, chat.id, now).await?;
        write.commit().await?;
        Ok(message)
    }

    /// Returns whether the chat's consumer can be written to now, where the
    /// provider limits it (WeChat's 48-hour window and monthly allowance).
    pub async fn send_window(&self, caller: &Caller, id: ChatId) -> Result<Option<crate::delivery::SendWindow>> {
        caller.require(Permission::ReadChats)?;
        let chat = self.visible(caller, id).await?;
        let channel = self.core.channels().find(chat.organization_id.into(), chat.channel_id.into()).await?;
        self.core.delivery().send_window(&channel, &chat, self.core.now()).await
    }

    /// Returns the chat row if the caller may see it; `NotFound` otherwise.
    pub(crate) async fn visible(&self, caller: &Caller, id: ChatId) -> Result<chats::Model> {
        let row = chats::Entity::find_by_id(id.uuid())
            .filter(chats::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("chat"))?;
        self.ensure_visible(caller, &row).await?;
        Ok(row)
    }

    /// `NotFound` unless the caller may see the chat's channel: a chat the
    /// caller may not see is one that does not exist for them.
    async fn ensure_visible(&self, caller: &Caller, row: &chats::Model) -> Result<()> {
        if self.can_see_channel(caller, row.channel_id.into()).await? { Ok(()) } else { Err(Error::not_found("chat")) }
    }

    fn require_claimer_or_admin(&self, caller: &Caller, chat: &chats::Model) -> Result<()> {
        let is_claimer = caller.agent().is_some_and(|agent| chat.claimed_by_agent_id == Some(agent.agent_id.uuid()));
        if is_claimer || caller.is_admin() {
            Ok(())
        } else {
            Err(Error::permission_denied("only the agent who claimed the chat or an admin may do this"))
        }
    }

    async fn ensure_channel_not_deleted(&self, chat: &chats::Model) -> Result<madoguchi_entity::channels::Model> {
        let channel = self.core.channels().find(chat.organization_id.into(), chat.channel_id.into()).await?;
        if channel.status == ChannelStatus::Deleted.as_str() {
            return Err(Error::failed_precondition("the channel is deleted"));
        }
        Ok(channel)
    }

    async fn ensure_channel_usable(&self, chat: &chats::Model) -> Result<madoguchi_entity::channels::Model> {
        let channel = self.ensure_channel_not_deleted(chat).await?;
        if channel.status == ChannelStatus::Disabled.as_str() {
            return Err(Error::failed_precondition("the channel is disabled"));
        }
        Ok(channel)
    }

    /// Appends a chat event carrying the chat as it now is.
    pub(crate) async fn append_chat_event(
        &self,
        write: &mut Write<'_>,
        id: ChatId,
        kind: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Chat> {
        let row = chats::Entity::find_by_id(id.uuid()).one(&**write).await?.ok_or_else(|| Error::not_found("chat"))?;
        let user = end_users::Entity::find_by_id(row.end_user_id)
            .one(&**write)
            .await?
            .ok_or_else(|| Error::not_found("end user"))?;
        self.append_chat_event_of(write, row, user, kind, now).await
    }

    /// [`Self::append_chat_event`] for a chat whose rows, as this
    /// transaction leaves them, are at hand.
    pub(crate) async fn append_chat_event_of(
        &self,
        write: &mut Write<'_>,
        row: chats::Model,
        user: end_users::Model,
        kind: &'static str,
        now: DateTime<Utc>,
    ) -> Result<Chat> {
        let chat = chat_from_rows(row, user)?;
        write
            .append(
                chat.organization_id,
                NewEvent::new(kind, chat_payload(&chat), now).in_channel(chat.channel_id).in_chat(chat.id),
            )
            .await?;
        Ok(chat)
    }

    async fn with_end_users(&self, rows: Vec<chats::Model>) -> Result<Vec<Chat>> {
        let users: HashMap<uuid::Uuid, end_users::Model> = end_users::Entity::find()
            .filter(end_users::Column::Id.is_in(rows.iter().map(|row| row.end_user_id)))
            .all(self.core.db())
            .await?
            .into_iter()
            .map(|user| (user.id, user))
            .collect();
        rows.into_iter()
            .map(|row| {
                let user = users.get(&row.end_user_id).cloned().ok_or_else(|| Error::not_found("end user"))?;
                chat_from_rows(row, user)
            })
            .collect()
    }

    async fn with_attachments(&self, rows: Vec<messages::Model>) -> Result<Vec<Message>> {
        let mut by_message: HashMap<uuid::Uuid, Vec<Attachment>> = HashMap::new();
        let found = attachments::Entity::find()
            .filter(attachments::Column::MessageId.is_in(rows.iter().map(|row| row.id)))
            .order_by_asc(attachments::Column::CreatedAt)
            .all(self.core.db())
            .await?;
        for row in found {
            by_message.entry(row.message_id).or_default().push(attachment_from_row(row)?);
        }
        rows.into_iter()
            .map(|row| {
                let attachments = by_message.remove(&row.id).unwrap_or_default();
                message_from_row(row, attachments)
            })
            .collect()
    }
}

/// Matches the chat only while its status and claimer are as read.
fn unchanged(chat: &chats::Model) -> Condition {
    let claimer = match chat.claimed_by_agent_id {
        Some(agent) => chats::Column::ClaimedByAgentId.eq(agent),
        None => chats::Column::ClaimedByAgentId.is_null(),
    };
    Condition::all().add(chats::Column::Status.eq(chat.status.clone())).add(claimer)
}

fn changed_meanwhile() -> Error {
    Error::aborted("the chat changed meanwhile; try again")
}

/// Returns the first characters of a message, for chat lists.
pub(crate) fn preview(text: &str) -> String {
    let mut preview: String = text.chars().take(100).collect();
    if preview.len() < text.len() {
        preview.push('…');
    }
    preview
}

/// Reads a message with its attachments.
pub(crate) async fn load_message(db: &impl sea_orm::ConnectionTrait, id: uuid::Uuid) -> Result<Message> {
    let row = messages::Entity::find_by_id(id).one(db).await?.ok_or_else(|| Error::not_found("message"))?;
    let attachments = attachments::Entity::find()
        .filter(attachments::Column::MessageId.eq(id))
        .order_by_asc(attachments::Column::CreatedAt)
        .all(db)
        .await?
        .into_iter()
        .map(attachment_from_row)
        .collect::<Result<Vec<_>>>()?;
    message_from_row(row, attachments)
}

pub(crate) fn chat_from_rows(row: chats::Model, user: end_users::Model) -> Result<Chat> {
    Ok(Chat {
        id: row.id.into(),
        organization_id: row.organization_id.into(),
        channel_id: row.channel_id.into(),
        department_id: row.department_id.into(),
        end_user: EndUser {
            id: user.id.into(),
            channel_id: user.channel_id.into(),
            external_id: user.external_id,
            display_name: user.display_name,
            picture_url: user.picture_url,
            contact_id: user.contact_id.map(Into::into),
            blocked: user.blocked_at.is_some(),
            unfollowed: user.unfollowed_at.is_some(),
        },
        status: ChatStatus::parse(&row.status)?,
        claimed_by: row.claimed_by_agent_id.map(Into::into),
        claimed_at: row.claimed_at,
        last_message_at: row.last_message_at,
        last_message_preview: row.last_message_preview,
        unread_count: row.unread_count,
        completed_at: row.completed_at,
        completion_reason: row.completion_reason.as_deref().map(CompletionReason::parse).transpose()?,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

pub(crate) fn message_from_row(row: messages::Model, attachments: Vec<Attachment>) -> Result<Message> {
    Ok(Message {
        id: row.id.into(),
        chat_id: row.chat_id.into(),
        direction: MessageDirection::parse(&row.direction)?,
        kind: MessageKind::parse(&row.kind)?,
        text: row.text,
        payload: row.payload,
        sender_agent_id: row.sender_agent_id.map(Into::into),
        is_passcode: row.is_passcode,
        delivery_state: DeliveryState::parse(&row.delivery_state)?,
        delivery_method: row.delivery_method.as_deref().map(DeliveryMethod::parse).transpose()?,
        delivery_error: row.delivery_error,
        attachments,
        created_at: row.created_at,
        sent_at: row.sent_at,
    })
}

pub(crate) fn attachment_from_row(row: attachments::Model) -> Result<Attachment> {
    Ok(Attachment {
        id: row.id.into(),
        kind: MessageKind::parse(&row.kind)?,
        status: AttachmentStatus::parse(&row.status)?,
        content_type: row.content_type,
        size_bytes: row.size_bytes,
        file_name: row.file_name,
    })
}

/// The payload of chat events: the chat as it now is.
pub(crate) fn chat_payload(chat: &Chat) -> serde_json::Value {
    json!({
        "chatId": chat.id,
        "channelId": chat.channel_id,
        "status": chat.status,
        "claimedBy": chat.claimed_by,
        "lastMessageAt": chat.last_message_at,
        "lastMessagePreview": chat.last_message_preview,
        "unreadCount": chat.unread_count,
        "endUserId": chat.end_user.id,
        "displayName": chat.end_user.display_name,
    })
}

/// Appends a message event of `chat`'s channel and organization.
pub(crate) async fn append_chat_message_event(
    write: &mut Write<'_>,
    chat: &chats::Model,
    kind: &'static str,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<()> {
    append_message_event(write, chat.organization_id.into(), chat.channel_id.into(), kind, message, now).await
}

/// Appends a message event carrying the message as it now is.
pub(crate) async fn append_message_event(
    write: &mut Write<'_>,
    organization_id: OrganizationId,
    channel_id: ChannelId,
    kind: &'static str,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<()> {
    let payload = json!({
        "messageId": message.id,
        "chatId": message.chat_id,
        "direction": message.direction,
        "kind": message.kind,
        "text": message.text,
        "deliveryState": message.delivery_state,
        "deliveryMethod": message.delivery_method,
        "deliveryError": message.delivery_error,
        "isPasscode": message.is_passcode,
    });
    write
        .append(organization_id, NewEvent::new(kind, payload, now).in_channel(channel_id).in_chat(message.chat_id))
        .await
}

fn encode_cursor(at: DateTime<Utc>, id: uuid::Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}|{id}", at.timestamp_micros()))
}

fn decode_cursor(cursor: &str) -> Result<(DateTime<Utc>, uuid::Uuid)> {
    let invalid = || Error::invalid_argument("malformed cursor");
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?).map_err(|_| invalid())?;
    let (micros, id) = text.split_once('|').ok_or_else(invalid)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| invalid())?).ok_or_else(invalid)?;
    Ok((at, uuid::Uuid::parse_str(id).map_err(|_| invalid())?))
}

/// Refuses a message to a consumer who is blocked, or who has blocked the
/// official account.
fn ensure_reachable(end_user: Option<&end_users::Model>) -> Result<()> {
    let end_user = end_user.ok_or_else(|| Error::not_found("end user"))?;
    if end_user.blocked_at.is_some() {
        return Err(Error::failed_precondition("the customer is blocked"));
    }
    if end_user.unfollowed_at.is_some() {
        return Err(Error::failed_precondition("the customer has blocked the official account"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_rejected() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = uuid::Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(at, id)).unwrap(), (at, id));
        assert!(decode_cursor("garbage!").is_err());
    }

    #[test]
    fn message_text_is_bounded_in_utf16_units() {
        assert!(MessageText::parse("hello").is_ok());
        assert!(MessageText::parse("   ").is_err());
        assert!(MessageText::parse(&"a".repeat(5_000)).is_ok());
        assert!(MessageText::parse(&"a".repeat(5_001)).is_err());
        // An emoji outside the BMP counts twice.
        assert!(MessageText::parse(&"😀".repeat(2_501)).is_err());
    }
}
