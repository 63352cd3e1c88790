//! GraphQL objects of the agent workspace: channels, chats, messages,
//! contacts. Channel secrets appear masked only.

use async_graphql::{ComplexObject, Context, Enum, ID, Json, Result, SimpleObject};
use chrono::{DateTime, Utc};
use madoguchi_core::channels;
use madoguchi_core::ids::{ChannelId, ChatId};
use madoguchi_core::providers::line::accounts::{self as line_accounts, LINE_SETUP};
use madoguchi_core::providers::line::{ButtonLanguage, FriendLinks};
use madoguchi_core::providers::wechat::accounts::WECHAT_SETUP;
use madoguchi_core::{chats, contacts, kinds};
use madoguchi_core::{delivery, providers::wechat::accounts as wechat_accounts};

use crate::context::{OrGraphql, caller, core};

mirror_enum!(ChannelKind, kinds::ChannelKind { Line, Wechat, Partner });
mirror_enum!(ChannelStatus, kinds::ChannelStatus { Active, Disabled, Deleted });
mirror_enum!(LineMode, kinds::LineMode { Reply, Push, Auto });
mirror_enum!(LinePlan, kinds::LinePlan { Free, Light, Standard });
mirror_enum!(ChatStatus, kinds::ChatStatus { New, InProgress, Completed });
mirror_enum!(CompletionReason, kinds::CompletionReason { Agent, Missed, Idle, Submitted });
mirror_enum!(MissedCloseWindow, kinds::MissedCloseWindow { FifteenMinutes, OneHour, OneDay, OneWeek, OneMonth });
mirror_enum!(MessageDirection, kinds::MessageDirection { Inbound, Outbound });
mirror_enum!(MessageKind, kinds::MessageKind { Text, Image, Video, Audio, File, Sticker, Location, Link, Unknown });
mirror_enum!(DeliveryState, kinds::DeliveryState { Received, Pending, Unsent, Sending, Sent, Unconfirmed, Failed });
mirror_enum!(DeliveryMethod, kinds::DeliveryMethod { Reply, Push });
mirror_enum!(AttachmentStatus, kinds::AttachmentStatus { Pending, Ready, Failed });
mirror_enum!(SendWindowState, kinds::SendWindowState { Open, Limited, Closed });

fn id<T: ToString>(value: T) -> ID {
    value.to_string().into()
}

/// A connected official account.
#[derive(SimpleObject, Debug)]
#[graphql(complex)]
pub struct Channel {
    pub id: ID,
    pub kind: ChannelKind,
    pub name: String,
    pub department_id: ID,
    pub status: ChannelStatus,
    pub has_icon: bool,
    /// Paste this into the provider's webhook setting.
    pub webhook_url: Option<String>,
    pub line: Option<LineChannel>,
    pub wechat: Option<WechatChannel>,
    pub timers: ChannelTimers,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A channel's chat timers; null is off.
#[derive(SimpleObject, Debug)]
pub struct ChannelTimers {
    /// A chat's messages become a ticket this long after the first customer
    /// message not yet in one (when the helpdesk link's rule takes the chat;
    /// see the README's decision table).
    pub auto_ticket_after_seconds: Option<i64>,
    /// A chat no agent answered is closed this long after it opened.
    pub missed_close_after: Option<MissedCloseWindow>,
    /// A claimed chat is closed after this long without a message from either
    /// side (at most 24 hours).
    pub idle_close_after_seconds: Option<i64>,
}

impl From<madoguchi_core::timers::ChannelTimers> for ChannelTimers {
    fn from(value: madoguchi_core::timers::ChannelTimers) -> Self {
        Self {
            auto_ticket_after_seconds: value.auto_ticket_after_secs,
            missed_close_after: value.missed_close_after.map(Into::into),
            idle_close_after_seconds: value.idle_close_after_secs,
        }
    }
}

/// The WeChat side of a channel. Secrets are masked.
#[derive(SimpleObject, Debug)]
pub struct WechatChannel {
    /// The account's Original ID (`gh_…`).
    pub original_id: String,
    pub app_id: String,
    pub app_secret: String,
    /// The callback Token.
    pub token: String,
    pub encoding_aes_key: String,
    /// A rotated EncodingAESKey waits for confirmation: the previous one
    /// still decrypts.
    pub previous_key_accepted: bool,
    /// Put these on the account's IP allow-list.
    pub outbound_ips: Vec<String>,
    /// What to set in WeChat's console for the channel to work.
    pub setup_steps: Vec<String>,
}

impl From<wechat_accounts::WechatChannel> for WechatChannel {
    fn from(value: wechat_accounts::WechatChannel) -> Self {
        Self {
            original_id: value.original_id,
            app_id: value.app_id,
            app_secret: value.app_secret_masked,
            token: value.token_masked,
            encoding_aes_key: value.encoding_aes_key_masked,
            previous_key_accepted: value.previous_key_accepted,
            outbound_ips: value.outbound_ips,
            setup_steps: WECHAT_SETUP.iter().map(|step| (*step).to_owned()).collect(),
        }
    }
}

/// A new WeChat channel with its callback secrets, shown only this once:
/// paste them into WeChat's console with the channel's `webhookUrl`.
#[derive(SimpleObject)]
pub struct WechatChannelCreated {
    pub channel: Channel,
    pub token: String,
    pub encoding_aes_key: String,
}

/// A new EncodingAESKey, shown only this once; the previous one keeps
/// decrypting until `confirmWechatEncodingAesKey`.
#[derive(SimpleObject)]
pub struct WechatKeyRotation {
    pub channel: Channel,
    pub encoding_aes_key: String,
}

// The secrets never reach a log through `Debug`.
impl std::fmt::Debug for WechatChannelCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatChannelCreated").field("channel", &self.channel).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WechatKeyRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WechatKeyRotation").field("channel", &self.channel).finish_non_exhaustive()
    }
}

/// Whether the chat's consumer can be written to now (WeChat: free within
/// 48 hours of their last message, then a few messages a month).
#[derive(SimpleObject, Debug)]
pub struct SendWindow {
    pub state: SendWindowState,
    /// When the free window closes, while it is open.
    pub open_until: Option<DateTime<Utc>>,
    /// Messages sent outside the window this month (China time).
    pub allowance_used: i64,
    pub allowance_limit: i64,
    pub allowance_resets_at: DateTime<Utc>,
    pub reason: String,
}

impl From<delivery::SendWindow> for SendWindow {
    fn from(value: delivery::SendWindow) -> Self {
        Self {
            state: value.state.into(),
            open_until: value.open_until,
            allowance_used: value.allowance_used,
            allowance_limit: value.allowance_limit,
            allowance_resets_at: value.allowance_resets_at,
            reason: value.reason,
        }
    }
}

/// The LINE side of a channel. Secrets are masked.
#[derive(SimpleObject, Debug)]
#[graphql(complex)]
pub struct LineChannel {
    pub channel_id: String,
    pub bot_user_id: Option<String>,
    pub basic_id: Option<String>,
    pub mode: LineMode,
    pub plan: LinePlan,
    pub channel_secret: String,
    pub access_token: String,
    /// What to set in LINE for the channel to work.
    pub setup_steps: Vec<String>,
}

#[ComplexObject]
impl LineChannel {
    /// The link that adds the account as a friend.
    async fn friend_link(&self) -> Option<String> {
        self.friend().map(|friend| friend.link())
    }

    /// A QR code of the friend link, as SVG.
    async fn friend_qr_svg(&self) -> Option<String> {
        self.friend().map(|friend| friend.qr_svg())
    }

    /// A QR code of the friend link, as a `data:image/png;base64,…` URL.
    async fn friend_qr_png(&self, #[graphql(default = 8)] module_pixels: u32) -> Option<String> {
        self.friend().map(|friend| friend.qr_png_data_url(module_pixels))
    }

    /// LINE's "Add friend" button, as HTML to embed in a web page.
    async fn add_friend_button_html(&self, #[graphql(default)] language: ButtonLanguageInput) -> Option<String> {
        self.friend().map(|friend| friend.button_html(language.into()))
    }
}

impl LineChannel {
    fn friend(&self) -> Option<FriendLinks> {
        FriendLinks::for_basic_id(self.basic_id.as_deref())
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(name = "ButtonLanguage")]
pub enum ButtonLanguageInput {
    #[default]
    Japanese,
    English,
    TraditionalChinese,
    Thai,
    Korean,
}

impl From<ButtonLanguageInput> for ButtonLanguage {
    fn from(value: ButtonLanguageInput) -> Self {
        match value {
            ButtonLanguageInput::Japanese => Self::Japanese,
            ButtonLanguageInput::English => Self::English,
            ButtonLanguageInput::TraditionalChinese => Self::TraditionalChinese,
            ButtonLanguageInput::Thai => Self::Thai,
            ButtonLanguageInput::Korean => Self::Korean,
        }
    }
}

#[ComplexObject]
impl Channel {
    /// Pushed messages this month (Japan time) against the plan's allowance.
    async fn push_usage(&self, ctx: &Context<'_>) -> Result<Option<PushUsage>> {
        if self.line.is_none() {
            return Ok(None);
        }
        let channel_id = ChannelId::parse(&self.id).graphql()?;
        let usage = core(ctx).channels().push_usage(&caller(ctx)?, channel_id).await.graphql()?;
        Ok(Some(usage.into()))
    }

    /// The agents associated with the channel.
    async fn agent_ids(&self, ctx: &Context<'_>) -> Result<Vec<ID>> {
        let channel_id = ChannelId::parse(&self.id).graphql()?;
        let agents = core(ctx).channels().agents(&caller(ctx)?, channel_id).await.graphql()?;
        Ok(agents.into_iter().map(id).collect())
    }
}

impl From<channels::Channel> for Channel {
    fn from(value: channels::Channel) -> Self {
        Self {
            id: id(value.id),
            kind: value.kind.into(),
            name: value.name,
            department_id: id(value.department_id),
            status: value.status.into(),
            has_icon: value.has_icon,
            webhook_url: value.webhook_url,
            timers: value.timers.into(),
            line: value.line.map(|line| LineChannel {
                channel_id: line.channel_id,
                bot_user_id: line.bot_user_id,
                basic_id: line.basic_id,
                mode: line.mode.into(),
                plan: line.plan.into(),
                channel_secret: line.channel_secret_masked,
                access_token: line.access_token_masked,
                setup_steps: LINE_SETUP.iter().map(|step| (*step).to_owned()).collect(),
            }),
            wechat: value.wechat.map(Into::into),
            created_at: value.created_at,
            updated_at: value.updated_at,
        }
    }
}

#[derive(SimpleObject, Debug)]
pub struct PushUsage {
    /// `YYYY-MM`, Japan time.
    pub month: String,
    pub pushed: i64,
    pub limit: i64,
    pub reconciled_total: Option<i64>,
    pub reconciled_at: Option<DateTime<Utc>>,
}

impl From<line_accounts::PushUsage> for PushUsage {
    fn from(value: line_accounts::PushUsage) -> Self {
        Self {
            month: value.month,
            pushed: value.pushed,
            limit: value.limit,
            reconciled_total: value.reconciled_total,
            reconciled_at: value.reconciled_at,
        }
    }
}

/// A consumer on a channel.
#[derive(SimpleObject, Debug)]
pub struct EndUser {
    pub id: ID,
    /// The provider's id of the consumer (LINE userId).
    pub customer_id: String,
    pub display_name: Option<String>,
    pub picture_url: Option<String>,
    pub contact_id: Option<ID>,
    pub blocked: bool,
    /// The consumer blocked the official account.
    pub unfollowed: bool,
}

/// A conversation between one consumer and the business on one channel.
#[derive(SimpleObject, Debug)]
#[graphql(complex)]
pub struct Chat {
    pub id: ID,
    pub channel_id: ID,
    pub department_id: ID,
    pub end_user: EndUser,
    pub status: ChatStatus,
    pub claimed_by: Option<ID>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub last_message_at: Option<DateTime<Utc>>,
    pub last_message_preview: Option<String>,
    pub unread_count: i32,
    pub completed_at: Option<DateTime<Utc>>,
    /// Why it was completed: by an agent, or by one of the channel's timers.
    pub completion_reason: Option<CompletionReason>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Core's word that the caller may see this chat.
    #[graphql(skip)]
    pub seen: chats::SeenChat,
}

#[ComplexObject]
impl Chat {
    /// The newest `first` messages (100 by default, at most 500) between
    /// `from` and `to` (by default the last 7 days), oldest first. For older
    /// ones ask again with `to` set to the oldest one's `createdAt`.
    #[graphql(
        complexity = "first.unwrap_or(chats::DEFAULT_MESSAGES).min(chats::MAX_MESSAGES) as usize * child_complexity + 1"
    )]
    async fn messages(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        first: Option<u64>,
    ) -> Result<Vec<Message>> {
        let messages = core(ctx).chats().messages_of(&caller(ctx)?, self.seen, from, to, first).await.graphql()?;
        Ok(messages.into_iter().map(Into::into).collect())
    }

    /// Whether the consumer can be written to now, where the provider limits
    /// it (WeChat); `null` for LINE, whose limit is the channel's push quota.
    async fn send_window(&self, ctx: &Context<'_>) -> Result<Option<SendWindow>> {
        let chat_id = ChatId::parse(&self.id).graphql()?;
        let window = core(ctx).chats().send_window(&caller(ctx)?, chat_id).await.graphql()?;
        Ok(window.map(Into::into))
    }
}

impl From<chats::Chat> for Chat {
    fn from(value: chats::Chat) -> Self {
        Self {
            seen: value.seen(),
            id: id(value.id),
            channel_id: id(value.channel_id),
            department_id: id(value.department_id),
            end_user: EndUser {
                id: id(value.end_user.id),
                customer_id: value.end_user.external_id,
                display_name: value.end_user.display_name,
                picture_url: value.end_user.picture_url,
                contact_id: value.end_user.contact_id.map(id),
                blocked: value.end_user.blocked,
                unfollowed: value.end_user.unfollowed,
            },
            status: value.status.into(),
            claimed_by: value.claimed_by.map(id),
            claimed_at: value.claimed_at,
            last_message_at: value.last_message_at,
            last_message_preview: value.last_message_preview,
            unread_count: value.unread_count,
            completed_at: value.completed_at,
            completion_reason: value.completion_reason.map(Into::into),
            created_at: value.created_at,
            updated_at: value.updated_at,
        }
    }
}

#[derive(SimpleObject, Debug)]
#[graphql(complex)]
pub struct Attachment {
    /// The attachment as core gave it, from a message the caller may see.
    #[graphql(skip)]
    pub source: chats::Attachment,
    pub id: ID,
    pub kind: MessageKind,
    pub status: AttachmentStatus,
    pub content_type: Option<String>,
    pub size_bytes: Option<i64>,
    pub file_name: Option<String>,
}

#[ComplexObject]
impl Attachment {
    /// A download link that works for 15 minutes; only for ready media.
    async fn url(&self, ctx: &Context<'_>) -> Option<String> {
        core(ctx).media().agent_url(&self.source)
    }
}

/// One message in a chat.
#[derive(SimpleObject, Debug)]
pub struct Message {
    pub id: ID,
    pub chat_id: ID,
    pub direction: MessageDirection,
    pub kind: MessageKind,
    pub text: Option<String>,
    /// Provider details: sticker ids, location, emoji and mention data.
    pub payload: Option<Json<serde_json::Value>>,
    pub sender_agent_id: Option<ID>,
    /// The customer sent a passcode: not a question.
    pub is_passcode: bool,
    pub delivery_state: DeliveryState,
    pub delivery_method: Option<DeliveryMethod>,
    pub delivery_error: Option<String>,
    pub attachments: Vec<Attachment>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

impl From<chats::Message> for Message {
    fn from(value: chats::Message) -> Self {
        Self {
            id: id(value.id),
            chat_id: id(value.chat_id),
            direction: value.direction.into(),
            kind: value.kind.into(),
            text: value.text,
            payload: value.payload.map(Json),
            sender_agent_id: value.sender_agent_id.map(id),
            is_passcode: value.is_passcode,
            delivery_state: value.delivery_state.into(),
            delivery_method: value.delivery_method.map(Into::into),
            delivery_error: value.delivery_error,
            attachments: value
                .attachments
                .into_iter()
                .map(|attachment| Attachment {
                    source: attachment.clone(),
                    id: id(attachment.id),
                    kind: attachment.kind.into(),
                    status: attachment.status.into(),
                    content_type: attachment.content_type,
                    size_bytes: attachment.size_bytes,
                    file_name: attachment.file_name,
                })
                .collect(),
            created_at: value.created_at,
            sent_at: value.sent_at,
        }
    }
}

/// A page of chats.
#[derive(SimpleObject, Debug)]
pub struct ChatConnection {
    pub edges: Vec<ChatEdge>,
    pub page_info: PageInfo,
}

#[derive(SimpleObject, Debug)]
pub struct ChatEdge {
    pub cursor: String,
    pub node: Chat,
}

#[derive(SimpleObject, Debug)]
pub struct PageInfo {
    pub has_next_page: bool,
    pub end_cursor: Option<String>,
}

impl From<chats::ChatPage> for ChatConnection {
    fn from(page: chats::ChatPage) -> Self {
        let end_cursor = page.chats.last().map(|(cursor, _)| cursor.clone());
        Self {
            edges: page.chats.into_iter().map(|(cursor, chat)| ChatEdge { cursor, node: chat.into() }).collect(),
            page_info: PageInfo { has_next_page: page.has_next_page, end_cursor },
        }
    }
}

/// A customer record.
#[derive(SimpleObject, Debug)]
pub struct Contact {
    pub id: ID,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub account_name: Option<String>,
    pub sla_name: Option<String>,
    pub contract_name: Option<String>,
    pub owner_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<contacts::Contact> for Contact {
    fn from(value: contacts::Contact) -> Self {
        Self {
            id: id(value.id),
            name: value.name,
            email: value.email,
            phone: value.phone,
            account_name: value.account_name,
            sla_name: value.sla_name,
            contract_name: value.contract_name,
            owner_name: value.owner_name,
            created_at: value.created_at,
            updated_at: value.updated_at,
        }
    }
}

/// A one-time passcode: the customer sends it to the official account to
/// link themselves to the contact.
#[derive(SimpleObject, Debug)]
pub struct Passcode {
    pub code: String,
    pub contact_id: ID,
    pub expires_at: DateTime<Utc>,
}

impl From<contacts::IssuedPasscode> for Passcode {
    fn from(value: contacts::IssuedPasscode) -> Self {
        Self { code: value.code, contact_id: id(value.contact_id), expires_at: value.expires_at }
    }
}

/// A job that ended failed.
#[derive(SimpleObject, Debug)]
pub struct FailedJob {
    pub id: ID,
    /// `line.reply`, `line.push`, `line.fetch_profile`, `line.download_content`, …
    pub kind: String,
    pub attempts: i32,
    /// Why it failed (the last attempt's error).
    pub error: Option<String>,
    pub channel_id: Option<ID>,
    pub message_id: Option<ID>,
    pub created_at: DateTime<Utc>,
    pub failed_at: Option<DateTime<Utc>>,
}

impl From<madoguchi_core::jobs::FailedJob> for FailedJob {
    fn from(value: madoguchi_core::jobs::FailedJob) -> Self {
        Self {
            id: id(value.id),
            kind: value.kind,
            attempts: value.attempts,
            error: value.error,
            channel_id: value.channel_id.map(id),
            message_id: value.message_id.map(id),
            created_at: value.created_at,
            failed_at: value.failed_at,
        }
    }
}
