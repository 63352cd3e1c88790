//! The agent workspace over GraphQL: channels (admins), chats, messages,
//! contacts, and the live subscriptions that never miss an event.

use std::io::Read;

use async_graphql::{Context, ID, InputObject, Object, Result, Subscription, Upload};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};
use madoguchi_core::auth::Email;
use madoguchi_core::channels::Icon;
use madoguchi_core::chats::{
    ChatFilter, MessageText, OutgoingImage, OutgoingVideo, OutgoingVoice, PageRequest, VisibleChatEvent,
};
use madoguchi_core::contacts::{ContactFields, Phone};
use madoguchi_core::ids::{AgentId, ChannelId, ChatId, ContactId, DepartmentId};
use madoguchi_core::organizations::Name;
use madoguchi_core::providers::line::accounts::{
    CreateLineChannel, LineAccessToken, LineChannelId, LineChannelSecret, UpdateLineChannel,
};
use madoguchi_core::providers::wechat::accounts::{
    CreateWechatChannel, ExistingCallback, UpdateWechatChannel, WechatAppId, WechatAppSecret, WechatEncodingAesKey,
    WechatOriginalId, WechatToken,
};
use madoguchi_core::{Error, kinds};

use crate::context::{OrGraphql, caller, core, to_graphql};
use crate::shared_events::{Handoff, OneEvent};
use crate::subscription::parse_cursor;

/// A channel's chat timers; a null turns one off.
#[derive(InputObject, Debug)]
pub struct ChannelTimersInput {
    /// 60 seconds up to 30 days.
    pub auto_ticket_after_seconds: Option<i64>,
    pub missed_close_after: Option<crate::workspace_types::MissedCloseWindow>,
    /// 60 seconds up to 24 hours.
    pub idle_close_after_seconds: Option<i64>,
}
use crate::workspace_types::{
    Channel, ChannelStatus, Chat, ChatConnection, ChatStatus, Contact, FailedJob, LineMode, LinePlan, Message,
    Passcode, WechatChannelCreated, WechatKeyRotation,
};

#[derive(Default, Debug)]
pub struct WorkspaceQuery;

#[derive(InputObject, Debug, Default)]
pub struct ChatFilterInput {
    pub statuses: Option<Vec<ChatStatus>>,
    pub channel_id: Option<ID>,
    pub department_id: Option<ID>,
    pub claimed_by: Option<ID>,
    /// The provider's id of the consumer (LINE userId), exactly.
    pub customer_id: Option<String>,
    /// Part of the consumer's or linked contact's name.
    pub customer_name: Option<String>,
    /// Part of the linked contact's phone number.
    pub phone: Option<String>,
    /// Only chats linked (`true`) or not linked (`false`) to a contact.
    pub linked: Option<bool>,
}

impl TryFrom<ChatFilterInput> for ChatFilter {
    type Error = Error;

    fn try_from(input: ChatFilterInput) -> madoguchi_core::Result<Self> {
        Ok(Self {
            statuses: input.statuses.unwrap_or_default().into_iter().map(Into::into).collect(),
            channel_id: input.channel_id.as_ref().map(|id| ChannelId::parse(id)).transpose()?,
            department_id: input.department_id.as_ref().map(|id| DepartmentId::parse(id)).transpose()?,
            claimed_by: input.claimed_by.as_ref().map(|id| AgentId::parse(id)).transpose()?,
            customer_id: input.customer_id,
            customer_name: input.customer_name,
            phone: input.phone,
            linked: input.linked,
        })
    }
}

#[Object]
impl WorkspaceQuery {
    /// Jobs that ended failed, newest first (admins): deliveries, downloads
    /// and fetches that could not be done, with the error and attempts.
    async fn failed_jobs(&self, ctx: &Context<'_>, first: Option<u64>) -> Result<Vec<FailedJob>> {
        let jobs = core(ctx).jobs().failed(&caller(ctx)?, first).await.graphql()?;
        Ok(jobs.into_iter().map(Into::into).collect())
    }

    /// The channels the caller may see.
    async fn channels(&self, ctx: &Context<'_>) -> Result<Vec<Channel>> {
        let channels = core(ctx).channels().list(&caller(ctx)?).await.graphql()?;
        Ok(channels.into_iter().map(Into::into).collect())
    }

    async fn channel(&self, ctx: &Context<'_>, id: ID) -> Result<Channel> {
        let id = ChannelId::parse(&id).graphql()?;
        core(ctx).channels().get(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// Chats the caller may see, most recent activity first; `first` is 20
    /// by default, at most 100.
    #[graphql(
        complexity = "first.unwrap_or(madoguchi_core::chats::DEFAULT_PAGE_SIZE).min(madoguchi_core::chats::MAX_PAGE_SIZE) as usize * child_complexity + 1"
    )]
    async fn chats(
        &self,
        ctx: &Context<'_>,
        filter: Option<ChatFilterInput>,
        first: Option<u64>,
        after: Option<String>,
    ) -> Result<ChatConnection> {
        let filter = ChatFilter::try_from(filter.unwrap_or_default()).graphql()?;
        let page = PageRequest { first, after };
        core(ctx).chats().list(&caller(ctx)?, filter, page).await.graphql().map(Into::into)
    }

    async fn chat(&self, ctx: &Context<'_>, id: ID) -> Result<Chat> {
        let id = ChatId::parse(&id).graphql()?;
        core(ctx).chats().get(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    async fn contact(&self, ctx: &Context<'_>, id: ID) -> Result<Contact> {
        let id = ContactId::parse(&id).graphql()?;
        core(ctx).contacts().get(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// Contacts whose name, email or phone contains `text`, or whose id it is.
    async fn search_contacts(
        &self,
        ctx: &Context<'_>,
        text: String,
        #[graphql(default = 20)] first: u64,
    ) -> Result<Vec<Contact>> {
        let contacts = core(ctx).contacts().search(&caller(ctx)?, &text, first).await.graphql()?;
        Ok(contacts.into_iter().map(Into::into).collect())
    }
}

#[derive(InputObject)]
pub struct CreateLineChannelInput {
    pub name: String,
    /// JPEG or PNG, at most 1 MB (GraphQL multipart upload).
    pub icon: Option<Upload>,
    pub channel_id: String,
    pub channel_secret: String,
    pub channel_access_token: String,
    pub department_id: ID,
    pub mode: LineMode,
    pub plan: LinePlan,
}

#[derive(InputObject, Default)]
pub struct UpdateLineChannelInput {
    pub name: Option<String>,
    pub icon: Option<Upload>,
    pub channel_secret: Option<String>,
    pub channel_access_token: Option<String>,
    /// Changing the department removes the channel's agent associations.
    pub department_id: Option<ID>,
    pub mode: Option<LineMode>,
    pub plan: Option<LinePlan>,
}

// Channel secrets and access tokens never reach a log through `Debug`.
impl std::fmt::Debug for CreateLineChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateLineChannelInput")
            .field("name", &self.name)
            .field("icon", &self.icon.is_some())
            .field("channel_id", &self.channel_id)
            .field("channel_secret", &"***")
            .field("channel_access_token", &"***")
            .field("department_id", &self.department_id)
            .field("mode", &self.mode)
            .field("plan", &self.plan)
            .finish()
    }
}

impl std::fmt::Debug for UpdateLineChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateLineChannelInput")
            .field("name", &self.name)
            .field("icon", &self.icon.is_some())
            .field("channel_secret", &self.channel_secret.as_ref().map(|_| "***"))
            .field("channel_access_token", &self.channel_access_token.as_ref().map(|_| "***"))
            .field("department_id", &self.department_id)
            .field("mode", &self.mode)
            .field("plan", &self.plan)
            .finish()
    }
}

#[derive(InputObject)]
pub struct CreateWechatChannelInput {
    pub name: String,
    /// JPEG or PNG, at most 1 MB (GraphQL multipart upload).
    pub icon: Option<Upload>,
    /// The account's Original ID (`gh_…`).
    pub original_id: String,
    pub app_id: String,
    pub app_secret: String,
    pub department_id: ID,
    /// For an account already configured elsewhere: its Token and
    /// EncodingAESKey (both, or neither for new ones).
    pub existing_token: Option<String>,
    pub existing_encoding_aes_key: Option<String>,
}

/// The account itself (AppID, Original ID) does not change: consumers'
/// OpenIDs belong to it, so another account is another channel.
#[derive(InputObject, Default)]
pub struct UpdateWechatChannelInput {
    pub name: Option<String>,
    pub icon: Option<Upload>,
    /// Checked with WeChat before it is stored.
    pub app_secret: Option<String>,
    /// Changing the department removes the channel's agent associations.
    pub department_id: Option<ID>,
}

impl std::fmt::Debug for CreateWechatChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateWechatChannelInput")
            .field("name", &self.name)
            .field("icon", &self.icon.is_some())
            .field("original_id", &self.original_id)
            .field("app_id", &self.app_id)
            .field("app_secret", &"***")
            .field("department_id", &self.department_id)
            .field("existing_token", &self.existing_token.as_ref().map(|_| "***"))
            .field("existing_encoding_aes_key", &self.existing_encoding_aes_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl std::fmt::Debug for UpdateWechatChannelInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpdateWechatChannelInput")
            .field("name", &self.name)
            .field("icon", &self.icon.is_some())
            .field("app_secret", &self.app_secret.as_ref().map(|_| "***"))
            .field("department_id", &self.department_id)
            .finish()
    }
}

#[derive(InputObject, Debug, Default)]
pub struct ContactInput {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub account_name: Option<String>,
    pub sla_name: Option<String>,
    pub contract_name: Option<String>,
    pub owner_name: Option<String>,
}

impl TryFrom<ContactInput> for ContactFields {
    type Error = Error;

    fn try_from(input: ContactInput) -> madoguchi_core::Result<Self> {
        Ok(Self {
            name: input.name.as_deref().map(Name::parse).transpose()?,
            email: input.email.as_deref().map(Email::parse).transpose()?,
            phone: input.phone.as_deref().map(Phone::parse).transpose()?,
            account_name: input.account_name,
            sla_name: input.sla_name,
            contract_name: input.contract_name,
            owner_name: input.owner_name,
        })
    }
}

/// Reads an upload, never more than one byte past `limit` (so the parser
/// can refuse it as too large without reading it all).
fn read_upload(ctx: &Context<'_>, upload: &Upload, limit: usize) -> madoguchi_core::Result<Bytes> {
    let value = upload.value(ctx).map_err(|_| Error::invalid_argument("the upload is missing"))?;
    let mut bytes = Vec::new();
    value
        .into_read()
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| Error::invalid_argument("the upload cannot be read"))?;
    Ok(Bytes::from(bytes))
}

fn read_icon(ctx: &Context<'_>, upload: &Upload) -> madoguchi_core::Result<Icon> {
    read_upload(ctx, upload, Icon::MAX_BYTES).and_then(Icon::parse)
}

#[derive(Default, Debug)]
pub struct WorkspaceMutation;

#[Object]
impl WorkspaceMutation {
    /// Connects a LINE Official Account (admins). The access token is checked
    /// with LINE first.
    async fn create_line_channel(&self, ctx: &Context<'_>, input: CreateLineChannelInput) -> Result<Channel> {
        let command = CreateLineChannel {
            name: Name::parse(&input.name).graphql()?,
            icon: input.icon.as_ref().map(|icon| read_icon(ctx, icon)).transpose().graphql()?,
            line_channel_id: LineChannelId::parse(&input.channel_id).graphql()?,
            channel_secret: LineChannelSecret::parse(&input.channel_secret).graphql()?,
            access_token: LineAccessToken::parse(&input.channel_access_token).graphql()?,
            department_id: DepartmentId::parse(&input.department_id).graphql()?,
            mode: input.mode.into(),
            plan: input.plan.into(),
        };
        core(ctx).channels().create_line_channel(&caller(ctx)?, command).await.graphql().map(Into::into)
    }

    async fn update_line_channel(&self, ctx: &Context<'_>, id: ID, input: UpdateLineChannelInput) -> Result<Channel> {
        let id = ChannelId::parse(&id).graphql()?;
        let command = UpdateLineChannel {
            name: input.name.as_deref().map(Name::parse).transpose().graphql()?,
            icon: input.icon.as_ref().map(|icon| read_icon(ctx, icon)).transpose().graphql()?,
            channel_secret: input.channel_secret.as_deref().map(LineChannelSecret::parse).transpose().graphql()?,
            access_token: input.channel_access_token.as_deref().map(LineAccessToken::parse).transpose().graphql()?,
            department_id: input.department_id.as_ref().map(|id| DepartmentId::parse(id)).transpose().graphql()?,
            mode: input.mode.map(Into::into),
            plan: input.plan.map(Into::into),
        };
        core(ctx).channels().update_line_channel(&caller(ctx)?, id, command).await.graphql().map(Into::into)
    }

    /// Connects a WeChat Official Account (admins). AppID and AppSecret are
    /// checked by fetching an access token; the callback Token and
    /// EncodingAESKey come back only in this answer.
    async fn create_wechat_channel(
        &self,
        ctx: &Context<'_>,
        input: CreateWechatChannelInput,
    ) -> Result<WechatChannelCreated> {
        let existing = match (&input.existing_token, &input.existing_encoding_aes_key) {
            (Some(token), Some(key)) => Some(ExistingCallback {
                token: WechatToken::parse(token).graphql()?,
                encoding_aes_key: WechatEncodingAesKey::parse(key).graphql()?,
            }),
            (None, None) => None,
            _ => {
                return Err(Error::invalid_argument("give both the existing Token and EncodingAESKey, or neither"))
                    .graphql();
            }
        };
        let command = CreateWechatChannel {
            name: Name::parse(&input.name).graphql()?,
            icon: input.icon.as_ref().map(|icon| read_icon(ctx, icon)).transpose().graphql()?,
            original_id: WechatOriginalId::parse(&input.original_id).graphql()?,
            app_id: WechatAppId::parse(&input.app_id).graphql()?,
            app_secret: WechatAppSecret::parse(&input.app_secret).graphql()?,
            department_id: DepartmentId::parse(&input.department_id).graphql()?,
            existing,
        };
        let created = core(ctx).channels().create_wechat_channel(&caller(ctx)?, command).await.graphql()?;
        Ok(WechatChannelCreated {
            channel: created.channel.into(),
            token: created.token.expose().clone(),
            encoding_aes_key: created.encoding_aes_key.expose().clone(),
        })
    }

    async fn update_wechat_channel(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateWechatChannelInput,
    ) -> Result<Channel> {
        let id = ChannelId::parse(&id).graphql()?;
        let command = UpdateWechatChannel {
            name: input.name.as_deref().map(Name::parse).transpose().graphql()?,
            icon: input.icon.as_ref().map(|icon| read_icon(ctx, icon)).transpose().graphql()?,
            app_secret: input.app_secret.as_deref().map(WechatAppSecret::parse).transpose().graphql()?,
            department_id: input.department_id.as_ref().map(|id| DepartmentId::parse(id)).transpose().graphql()?,
        };
        core(ctx).channels().update_wechat_channel(&caller(ctx)?, id, command).await.graphql().map(Into::into)
    }

    /// Generates a new EncodingAESKey (admins), shown only in this answer;
    /// the previous one keeps decrypting until it is confirmed.
    async fn rotate_wechat_encoding_aes_key(&self, ctx: &Context<'_>, id: ID) -> Result<WechatKeyRotation> {
        let id = ChannelId::parse(&id).graphql()?;
        let (channel, key) = core(ctx).channels().rotate_wechat_key(&caller(ctx)?, id).await.graphql()?;
        Ok(WechatKeyRotation { channel: channel.into(), encoding_aes_key: key.expose().clone() })
    }

    /// The new EncodingAESKey is saved in WeChat's console: the previous one
    /// stops working (admins).
    async fn confirm_wechat_encoding_aes_key(&self, ctx: &Context<'_>, id: ID) -> Result<Channel> {
        let id = ChannelId::parse(&id).graphql()?;
        core(ctx).channels().confirm_wechat_key(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// Disables (nothing in or out, data kept), enables, or deletes (final;
    /// chats stay readable) a channel.
    async fn set_channel_status(&self, ctx: &Context<'_>, id: ID, status: ChannelStatus) -> Result<Channel> {
        let id = ChannelId::parse(&id).graphql()?;
        let status: kinds::ChannelStatus = status.into();
        core(ctx).channels().set_status(&caller(ctx)?, id, status).await.graphql().map(Into::into)
    }

    /// Sets a channel's chat timers (admins); a null turns one off. Chats
    /// open now follow the new settings at once.
    async fn set_channel_timers(&self, ctx: &Context<'_>, id: ID, timers: ChannelTimersInput) -> Result<Channel> {
        let id = ChannelId::parse(&id).graphql()?;
        let timers = madoguchi_core::timers::ChannelTimers::new(
            timers.auto_ticket_after_seconds,
            timers.missed_close_after.map(Into::into),
            timers.idle_close_after_seconds,
        )
        .graphql()?;
        core(ctx).channels().set_timers(&caller(ctx)?, id, timers).await.graphql().map(Into::into)
    }

    /// Reads the account's message count from LINE now and returns the usage
    /// with it (admins). It is also refreshed hourly while pushes go out.
    async fn reconcile_push_usage(
        &self,
        ctx: &Context<'_>,
        channel_id: ID,
    ) -> Result<crate::workspace_types::PushUsage> {
        let id = ChannelId::parse(&channel_id).graphql()?;
        core(ctx).channels().reconcile_push_usage(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// Replaces the agents associated with a channel (admins).
    async fn set_channel_agents(&self, ctx: &Context<'_>, id: ID, agent_ids: Vec<ID>) -> Result<Vec<ID>> {
        let id = ChannelId::parse(&id).graphql()?;
        let agents = agent_ids
            .iter()
            .map(|agent| AgentId::parse(agent))
            .collect::<madoguchi_core::Result<Vec<_>>>()
            .graphql()?;
        let set = core(ctx).channels().set_agents(&caller(ctx)?, id, &agents).await.graphql()?;
        Ok(set.into_iter().map(|agent| agent.to_string().into()).collect())
    }

    /// Claims a `NEW` chat; of agents racing, exactly one wins (`CONFLICT` for the others).
    async fn claim_chat(&self, ctx: &Context<'_>, id: ID) -> Result<Chat> {
        let id = ChatId::parse(&id).graphql()?;
        core(ctx).chats().claim(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    async fn complete_chat(&self, ctx: &Context<'_>, id: ID) -> Result<Chat> {
        let id = ChatId::parse(&id).graphql()?;
        core(ctx).chats().complete(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    async fn transfer_chat(&self, ctx: &Context<'_>, id: ID, agent_id: ID) -> Result<Chat> {
        let (id, agent_id) = (ChatId::parse(&id).graphql()?, AgentId::parse(&agent_id).graphql()?);
        core(ctx).chats().transfer(&caller(ctx)?, id, agent_id).await.graphql().map(Into::into)
    }

    /// Releases a claim so the chat is `NEW` again (admins).
    async fn release_chat(&self, ctx: &Context<'_>, id: ID) -> Result<Chat> {
        let id = ChatId::parse(&id).graphql()?;
        core(ctx).chats().release(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    async fn mark_chat_read(&self, ctx: &Context<'_>, id: ID) -> Result<Chat> {
        let id = ChatId::parse(&id).graphql()?;
        core(ctx).chats().mark_read(&caller(ctx)?, id).await.graphql().map(Into::into)
    }

    /// Blocks or unblocks the chat's consumer.
    async fn set_end_user_blocked(&self, ctx: &Context<'_>, chat_id: ID, blocked: bool) -> Result<Chat> {
        let id = ChatId::parse(&chat_id).graphql()?;
        core(ctx).chats().set_blocked(&caller(ctx)?, id, blocked).await.graphql().map(Into::into)
    }

    /// Sends text in a chat the caller claimed. Watch its delivery state on
    /// `chatMessages`.
    async fn send_message(&self, ctx: &Context<'_>, chat_id: ID, text: String) -> Result<Message> {
        let (id, text) = (ChatId::parse(&chat_id).graphql()?, MessageText::parse(&text).graphql()?);
        core(ctx).chats().send_text(&caller(ctx)?, id, text).await.graphql().map(Into::into)
    }

    /// Sends an image (JPEG or PNG, at most 10 MB; GraphQL multipart upload)
    /// in a chat the caller claimed.
    async fn send_image(&self, ctx: &Context<'_>, chat_id: ID, image: Upload) -> Result<Message> {
        let id = ChatId::parse(&chat_id).graphql()?;
        let image = read_upload(ctx, &image, OutgoingImage::MAX_BYTES).and_then(OutgoingImage::parse).graphql()?;
        core(ctx).chats().send_image(&caller(ctx)?, id, image).await.graphql().map(Into::into)
    }

    /// Sends a voice message (AMR or MP3, at most 2 MB) in a chat the caller
    /// claimed, where the channel takes one (WeChat; `FAILED_PRECONDITION`
    /// on LINE).
    async fn send_voice(&self, ctx: &Context<'_>, chat_id: ID, voice: Upload) -> Result<Message> {
        let id = ChatId::parse(&chat_id).graphql()?;
        let voice = read_upload(ctx, &voice, OutgoingVoice::MAX_BYTES).and_then(OutgoingVoice::parse).graphql()?;
        core(ctx).chats().send_voice(&caller(ctx)?, id, voice).await.graphql().map(Into::into)
    }

    /// Sends a video (MP4, at most 10 MB) with its JPEG thumbnail (at most
    /// 64 KB) in a chat the caller claimed, where the channel takes one
    /// (WeChat; `FAILED_PRECONDITION` on LINE).
    async fn send_video(&self, ctx: &Context<'_>, chat_id: ID, video: Upload, thumbnail: Upload) -> Result<Message> {
        let id = ChatId::parse(&chat_id).graphql()?;
        let video = OutgoingVideo::parse(
            read_upload(ctx, &video, OutgoingVideo::MAX_BYTES).graphql()?,
            read_upload(ctx, &thumbnail, OutgoingVideo::MAX_THUMBNAIL_BYTES).graphql()?,
        )
        .graphql()?;
        core(ctx).chats().send_video(&caller(ctx)?, id, video).await.graphql().map(Into::into)
    }

    async fn create_contact(&self, ctx: &Context<'_>, input: ContactInput) -> Result<Contact> {
        let fields = ContactFields::try_from(input).graphql()?;
        core(ctx).contacts().create(&caller(ctx)?, fields).await.graphql().map(Into::into)
    }

    async fn update_contact(&self, ctx: &Context<'_>, id: ID, input: ContactInput) -> Result<Contact> {
        let (id, fields) = (ContactId::parse(&id).graphql()?, ContactFields::try_from(input).graphql()?);
        core(ctx).contacts().update(&caller(ctx)?, id, fields).await.graphql().map(Into::into)
    }

    /// Links the chat's consumer to a contact; `contactId: null` unlinks.
    async fn link_chat_to_contact(&self, ctx: &Context<'_>, chat_id: ID, contact_id: Option<ID>) -> Result<Chat> {
        let chat_id = ChatId::parse(&chat_id).graphql()?;
        let contact_id = contact_id.as_ref().map(|id| ContactId::parse(id)).transpose().graphql()?;
        core(ctx).contacts().link_chat(&caller(ctx)?, chat_id, contact_id).await.graphql().map(Into::into)
    }

    /// Issues a one-time passcode for a contact, valid for `validMinutes`.
    async fn issue_passcode(
        &self,
        ctx: &Context<'_>,
        contact_id: ID,
        #[graphql(desc = "30 when not given; at most 10080 (7 days)")] valid_minutes: Option<i64>,
    ) -> Result<Passcode> {
        let contact_id = ContactId::parse(&contact_id).graphql()?;
        core(ctx).contacts().issue_passcode(&caller(ctx)?, contact_id, valid_minutes).await.graphql().map(Into::into)
    }
}

/// A change to a chat the subscriber may see.
#[derive(async_graphql::SimpleObject, Debug)]
#[graphql(complex)]
pub struct ChatEvent {
    /// Resume after this event with `after: cursor`.
    pub cursor: String,
    /// `chat.created`, `chat.updated`, `chat.claimed`, `chat.completed`, …
    pub kind: String,
    pub chat_id: ID,
    pub channel_id: ID,
    pub created_at: DateTime<Utc>,
    /// Loads the chat once for every subscriber of this process.
    #[graphql(skip)]
    pub source: VisibleChatEvent,
}

#[async_graphql::ComplexObject]
impl ChatEvent {
    /// The chat as it is now.
    async fn chat(&self) -> Result<Chat> {
        self.source.chat().await.graphql().map(Into::into)
    }
}

/// A new message or a change to one, in one chat.
#[derive(async_graphql::SimpleObject, Debug)]
#[graphql(complex)]
pub struct MessageEvent {
    pub cursor: String,
    /// `message.created`, `message.delivery_changed`, `message.updated`, `message.unsent`.
    pub kind: String,
    pub message_id: ID,
    pub created_at: DateTime<Utc>,
}

#[async_graphql::ComplexObject]
impl MessageEvent {
    /// The message as it is now.
    async fn message(&self, ctx: &Context<'_>) -> Result<Message> {
        let id = madoguchi_core::ids::MessageId::parse(&self.message_id).graphql()?;
        core(ctx).chats().message(&caller(ctx)?, id).await.graphql().map(Into::into)
    }
}

#[derive(Default, Debug)]
pub struct WorkspaceSubscription;

#[Subscription]
impl WorkspaceSubscription {
    /// New chats, status and claim changes, and last-message updates of
    /// every chat the caller may see. With `after`, replays what followed that
    /// cursor first, then continues live.
    async fn chat_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<ChatEvent>>> {
        let caller = caller(ctx)?;
        let after = parse_cursor(after.as_deref()).graphql()?;
        // Rendering a shared payload: the one event, not the log.
        if let Some(one) = ctx.data_opt::<OneEvent>() {
            return Ok(futures::stream::iter(one.take()).boxed());
        }
        // Boxed while it runs: async-graphql keeps this resolver's future
        // inside every subscription's stream, sized for its largest state.
        let events = Box::pin(core(ctx).chats().follow_visible_chats(&caller, after)).await.graphql()?;
        let events = events
            .map(|event| {
                let source = event.map_err(to_graphql)?;
                Ok(ChatEvent {
                    cursor: source.event.seq.to_string(),
                    kind: source.event.kind.clone(),
                    chat_id: source.chat_id.to_string().into(),
                    channel_id: source.event.channel_id.map(|id| id.to_string()).unwrap_or_default().into(),
                    created_at: source.event.created_at,
                    source,
                })
            })
            .boxed();
        // A shared subscription's events go to the WebSocket, which renders
        // each once for every subscriber sharing it.
        match ctx.data_opt::<Handoff>() {
            Some(handoff) => Ok(handoff.hand_over(events).unwrap_or_else(|| futures::stream::empty().boxed())),
            None => Ok(events),
        }
    }

    /// New messages and delivery-state changes in one chat, resumable with `after`.
    async fn chat_messages(
        &self,
        ctx: &Context<'_>,
        chat_id: ID,
        after: Option<String>,
    ) -> Result<impl Stream<Item = Result<MessageEvent>> + use<>> {
        let caller = caller(ctx)?;
        let chat_id = ChatId::parse(&chat_id).graphql()?;
        let after = parse_cursor(after.as_deref()).graphql()?;
        Box::pin(core(ctx).chats().get(&caller, chat_id)).await.graphql()?;
        let events = Box::pin(core(ctx).chats().follow_visible(&caller, after)).await.graphql()?;
        Ok(events
            .filter_map(move |event| async move {
                match event {
                    Ok(event) if event.kind.starts_with("message.") && event.chat_id == Some(chat_id) => {
                        let message_id = event.payload["messageId"].as_str()?.to_owned();
                        Some(Ok(MessageEvent {
                            cursor: event.seq.to_string(),
                            kind: event.kind,
                            message_id: message_id.into(),
                            created_at: event.created_at,
                        }))
                    }
                    Ok(_) => None,
                    Err(error) => Some(Err(to_graphql(error))),
                }
            })
            .boxed())
    }
}
