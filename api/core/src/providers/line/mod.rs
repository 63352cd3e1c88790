//! LINE as a provider: its webhook verified and parsed into neutral
//! inbound events for [`crate::intake`], its delivery strategy (reply token,
//! push, auto; the push quota) for [`crate::delivery`], and the jobs that
//! call LINE afterwards: profiles, media, replies, pushes, quota checks.
//! [`accounts`] is LINE's side of channel management.

pub mod accounts;

use chrono::{DateTime, Duration, Utc};
use madoguchi_channels::line::OutboundMessage;
use madoguchi_channels::line::batching::{QueuedMessage, batch_messages};
use madoguchi_channels::line::client::{ContentOutcome, LineError};
use madoguchi_channels::line::signature::verify_signature;
use madoguchi_channels::line::webhook::{ContentProvider, Event, EventKind, MessageContent, Source, parse_webhook};
use madoguchi_entity::{attachments, channels, chats, end_users, jobs, messages, push_usage};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    Statement,
};
use sha2::Digest;

use crate::Core;
use crate::chats::{append_chat_message_event, message_from_row};
use crate::db::Write;
use crate::delivery::{Delivery, chat_and_channel, only_pending, set_states_in};
use crate::error::{Error, Result};
use crate::ids::{AttachmentId, ChannelId, ChatId, EndUserId, MessageId};
use crate::intake::{InboundEvent, InboundKind, InboundMedia, InboundMessage, WebhookOutcome};
use crate::jobs::{JobKind, Lease, NewJob, Outcome, RetryPolicy};
use crate::kinds::{ChannelKind, ChannelStatus, DeliveryMethod, DeliveryState, LineMode, LinePlan, MessageKind};
use crate::media::{DownloadTarget, download_target, media_limit};
use accounts::japan_month;

pub use madoguchi_channels::line::friend::ButtonLanguage;

/// How consumers add a LINE account as a friend: the link, its QR code, and
/// LINE's button — the same for every surface (GraphQL, gRPC, the SDKs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FriendLinks {
    basic: madoguchi_channels::line::friend::BasicId,
}

impl FriendLinks {
    /// For an account's basic id (`@abc1234`); `None` when it has none or it
    /// is not one.
    pub fn for_basic_id(basic_id: Option<&str>) -> Option<Self> {
        let basic = madoguchi_channels::line::friend::BasicId::parse(basic_id?).ok()?;
        Some(Self { basic })
    }

    /// The link that adds the account as a friend.
    pub fn link(&self) -> String {
        madoguchi_channels::line::friend::friend_link(&self.basic)
    }

    /// The link as a QR code in SVG.
    pub fn qr_svg(&self) -> String {
        madoguchi_channels::line::friend::qr_svg(&self.basic)
    }

    /// The link as a QR code in PNG, as a `data:` URL; `module_pixels` is
    /// kept within what the encoder allows.
    pub fn qr_png_data_url(&self, module_pixels: u32) -> String {
        use base64::Engine;
        let png = madoguchi_channels::line::friend::qr_png(&self.basic, module_pixels);
        format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(png))
    }

    /// LINE's "Add friend" button as HTML to embed.
    pub fn button_html(&self, language: ButtonLanguage) -> String {
        madoguchi_channels::line::friend::add_friend_button_html(&self.basic, language)
    }
}

/// What an agent is told of a message whose delivery outcome is unknown.
const UNCONFIRMED: &str =
    "LINE's answer was lost: the message may or may not have reached the customer; send it again if needed";

/// LINE's webhook.
#[derive(Debug, Clone, Copy)]
pub struct LineInbound<'a> {
    core: &'a Core,
}

impl<'a> LineInbound<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Verifies and stores one webhook delivery for a channel. Returns only
    /// once every new event is committed, exactly once: a redelivered event
    /// (same `webhookEventId`) adds nothing.
    pub async fn receive(&self, channel_id: &str, signature: Option<&str>, body: &[u8]) -> Result<WebhookOutcome> {
        let channel_id = ChannelId::parse(channel_id).map_err(|_| Error::not_found("channel"))?;
        let channel = crate::channels::receiving_channel(self.core, channel_id, ChannelKind::Line).await?;
        let secret = self.core.channels().line_secret(&channel)?;
        verify_signature(secret.expose().as_bytes(), body, signature.unwrap_or_default())
            .map_err(|_| Error::unauthenticated("invalid x-line-signature"))?;
        if channel.status == ChannelStatus::Disabled.as_str() {
            return Ok(WebhookOutcome::Ignored);
        }
        let webhook =
            parse_webhook(body).map_err(|error| Error::invalid_argument(format!("malformed webhook body: {error}")))?;
        if webhook.events.is_empty() {
            return Ok(WebhookOutcome::Accepted { stored: 0, duplicates: 0 });
        }
        let events: Vec<InboundEvent> = webhook.events.iter().map(inbound).collect();
        let (stored, duplicates) = self.core.intake().record(&channel, events).await?;
        Ok(WebhookOutcome::Accepted { stored, duplicates })
    }
}

/// Outbound reply messages that wait for a reply token, as the partial
/// index `messages_waiting_reply_idx` states them. Literals, not bound
/// values: only a query whose `WHERE` states the index's predicate the same
/// way can use it, on SQLite and PostgreSQL alike (a bound value is not
/// known when the statement is planned).
pub const WAITING_REPLY: &str = "messages.direction = 'OUTBOUND' AND messages.delivery_method = 'REPLY' \
     AND messages.delivery_state IN ('PENDING', 'UNSENT')";

/// The `FROM` of every query for waiting replies. SQLite is told to take
/// the partial index: knowing no row counts, its planner rates it the same
/// as `(chat_id, external_id)` and took either from one run to the next,
/// and that one reads every message the chat ever had. (`INDEXED BY` also
/// makes a statement fail to prepare, rather than run slowly, should the
/// index no longer fit.)
fn waiting_from(backend: DbBackend) -> &'static str {
    match backend {
        DbBackend::Sqlite => "messages INDEXED BY messages_waiting_reply_idx",
        _ => "messages",
    }
}

/// The query for which of `chats` chats have replies waiting for a token:
/// one row per waiting reply, its chat's id. Neither `DISTINCT` nor `ORDER
/// BY`: callers dedup. Public so that a test can ask the planner about
/// exactly this statement.
pub fn waiting_chats_statement(backend: DbBackend, chats: &[uuid::Uuid]) -> Statement {
    let placeholders: Vec<String> = (1..=chats.len()).map(|n| placeholder(backend, n)).collect();
    let sql = format!(
        "SELECT messages.chat_id FROM {} WHERE {WAITING_REPLY} AND messages.chat_id IN ({})",
        waiting_from(backend),
        placeholders.join(", ")
    );
    Statement::from_sql_and_values(backend, sql, chats.iter().map(|chat_id| (*chat_id).into()))
}

/// The `n`th bound value's placeholder (from 1).
fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_owned(),
    }
}

/// The query for one chat's waiting replies, oldest first.
pub fn waiting_replies_statement(backend: DbBackend, chat_id: uuid::Uuid) -> Statement {
    let sql = format!(
        "SELECT messages.* FROM {} WHERE {WAITING_REPLY} AND messages.chat_id = {} \
         ORDER BY messages.created_at, messages.id",
        waiting_from(backend),
        placeholder(backend, 1)
    );
    Statement::from_sql_and_values(backend, sql, [chat_id.into()])
}

/// Turns a LINE event into the neutral form intake records.
fn inbound(event: &Event) -> InboundEvent {
    let provider_event_id = match &event.webhook_event_id {
        Some(id) => id.clone(),
        // Very old bodies carry no id: the event's own bytes identify it.
        None => format!("sha256:{}", hex::encode(sha2::Sha256::digest(event.raw.to_string().as_bytes()))),
    };
    let consumer = match &event.source {
        Some(Source::User { user_id, .. }) => user_id.clone(),
        _ => None,
    };
    let kind = match &event.kind {
        EventKind::Message(content) => InboundKind::Message(inbound_message(event, content)),
        EventKind::Follow { .. } => InboundKind::Followed,
        EventKind::Unfollow => InboundKind::Unfollowed,
        EventKind::Unsend { message_id } => InboundKind::Unsent { message_id: message_id.clone() },
        _ => InboundKind::Other,
    };
    InboundEvent {
        provider_event_id,
        event_type: event.event_type.clone(),
        raw: event.raw.clone(),
        consumer,
        reply_token: event.reply_token.clone(),
        kind,
    }
}

fn inbound_message(event: &Event, content: &MessageContent) -> InboundMessage {
    let (kind, text) = match content {
        MessageContent::Text(text) => (MessageKind::Text, Some(text.text.clone())),
        MessageContent::Image(_) => (MessageKind::Image, None),
        MessageContent::Video(_) => (MessageKind::Video, None),
        MessageContent::Audio(_) => (MessageKind::Audio, None),
        MessageContent::File(file) => (MessageKind::File, Some(file.file_name.clone())),
        MessageContent::Location(location) => {
            (MessageKind::Location, location.address.clone().or(location.title.clone()))
        }
        MessageContent::Sticker(_) => (MessageKind::Sticker, None),
        MessageContent::Unknown { .. } => (MessageKind::Unknown, None),
    };
    // Media LINE holds for us; media hosted elsewhere is only referenced.
    let media = match content {
        MessageContent::Image(image) => (image.content_provider == ContentProvider::Line).then_some(None),
        MessageContent::Video(video) => (video.content_provider == ContentProvider::Line).then_some(None),
        MessageContent::Audio(audio) => (audio.content_provider == ContentProvider::Line).then_some(None),
        MessageContent::File(file) => Some(Some(file.file_name.clone())),
        _ => None,
    };
    InboundMessage {
        external_id: content.id().map(str::to_owned),
        kind,
        text,
        payload: event.raw.get("message").cloned(),
        media: media.map(|file_name| InboundMedia { file_name }),
    }
}

/// Outbound LINE delivery: choosing reply or push, the quota, and the jobs
/// that call LINE.
#[derive(Debug, Clone, Copy)]
pub struct LineOutbound<'a> {
    core: &'a Core,
    /// The lease of the job this runs for: its writes commit only while the
    /// job still carries it.
    lease: Option<&'a Lease>,
}

impl<'a> LineOutbound<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core, lease: None }
    }

    /// For a job's run: every write is fenced by its lease.
    pub(crate) fn fenced(core: &'a Core, lease: &'a Lease) -> Self {
        Self { core, lease: Some(lease) }
    }

    /// Begins a write, fenced by the job's lease when running for one.
    async fn write(&self) -> Result<Write<'a>> {
        Ok(self.core.write().await?.fenced_by(self.lease))
    }

    /// Chooses how a new message leaves: `REPLY` mode replies, `PUSH` mode
    /// pushes (reserving quota now, so a push beyond the plan is refused
    /// before anything is sent), `AUTO` replies when a fresh token exists and
    /// pushes otherwise.
    pub(crate) async fn choose_method(
        &self,
        write: &Write<'_>,
        channel: &channels::Model,
        chat: &chats::Model,
        now: DateTime<Utc>,
    ) -> Result<DeliveryMethod> {
        let mode = LineMode::parse(channel.line_mode.as_deref().unwrap_or("REPLY"))?;
        let reply = match mode {
            LineMode::Reply => true,
            LineMode::Push => false,
            LineMode::Auto => {
                self.fresh_reply_token(&**write, chat.id.into(), now).await?.is_some()
                    || self.has_waiting(&**write, chat.id.into()).await?
            }
        };
        if reply {
            return Ok(DeliveryMethod::Reply);
        }
        self.reserve_push(write, channel, now).await?;
        Ok(DeliveryMethod::Push)
    }

    /// After consumers' messages: a new reply token lets answers that wait
    /// for one go now (not in `PUSH` mode). `chats` are the chats of one
    /// channel given a message with a token; one query finds which of them
    /// have answers waiting.
    pub(crate) async fn after_inbound_messages(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        chats: &[ChatId],
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mode = LineMode::parse(channel.line_mode.as_deref().unwrap_or("REPLY"))?;
        if chats.is_empty() || mode == LineMode::Push {
            return Ok(());
        }
        let chats: Vec<uuid::Uuid> = chats.iter().map(|chat_id| chat_id.uuid()).collect();
        let mut waiting = std::collections::BTreeSet::new();
        // Well within either store's bound parameters per statement.
        for rows in chats.chunks(500) {
            let statement = waiting_chats_statement(write.get_database_backend(), rows);
            for row in write.query_all_raw(statement).await? {
                waiting.insert(row.try_get::<uuid::Uuid>("", "chat_id")?);
            }
        }
        for chat_id in waiting {
            write
                .enqueue(NewJob::of_channel(JobKind::LineReply { chat_id: chat_id.into() }, channel, now), now)
                .await?;
        }
        Ok(())
    }

    /// Queues the job that delivers a message.
    pub(crate) async fn enqueue_delivery(
        &self,
        write: &mut Write<'_>,
        chat: &chats::Model,
        message_id: MessageId,
        method: DeliveryMethod,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut job = match method {
            DeliveryMethod::Reply => NewJob::new(JobKind::LineReply { chat_id: chat.id.into() }, now),
            DeliveryMethod::Push => {
                let mut job = NewJob::new(JobKind::LinePush { message_id }, now);
                job.retry_key = Some(uuid::Uuid::new_v4());
                job
            }
        };
        job.organization_id = Some(chat.organization_id.into());
        job.channel_id = Some(chat.channel_id.into());
        job.message_id = Some(message_id);
        write.enqueue(job, now).await
    }

    /// Returns whether outbound reply messages of a chat wait for a token.
    pub(crate) async fn has_waiting(&self, db: &impl ConnectionTrait, chat_id: ChatId) -> Result<bool> {
        let statement = waiting_replies_statement(db.get_database_backend(), chat_id.uuid());
        Ok(messages::Entity::find().from_raw_sql(statement).one(db).await?.is_some())
    }

    /// Returns the newest unused reply token of a chat still inside the
    /// reply window.
    async fn fresh_reply_token(
        &self,
        db: &impl ConnectionTrait,
        chat_id: ChatId,
        now: DateTime<Utc>,
    ) -> Result<Option<messages::Model>> {
        Ok(messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat_id.uuid()))
            .filter(messages::Column::ReplyToken.is_not_null())
            .filter(messages::Column::ReplyTokenUsedAt.is_null())
            .filter(messages::Column::CreatedAt.gte(now - self.core.reply_window()))
            .order_by_desc(messages::Column::CreatedAt)
            .one(db)
            .await?)
    }

    /// Counts one push against this month's allowance, or refuses it.
    async fn reserve_push(&self, write: &Write<'_>, channel: &channels::Model, now: DateTime<Utc>) -> Result<()> {
        let plan = LinePlan::parse(channel.line_plan.as_deref().unwrap_or("FREE"))?;
        let month = japan_month(now);
        push_usage::Entity::insert(push_usage::ActiveModel {
            channel_id: Set(channel.id),
            month: Set(month.clone()),
            pushed: Set(0),
            reconciled_total: Set(None),
            reconciled_at: Set(None),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([push_usage::Column::ChannelId, push_usage::Column::Month]).do_nothing().to_owned(),
        )
        .exec_without_returning(&**write)
        .await?;
        let limit = plan.monthly_pushes();
        let reserved = push_usage::Entity::update_many()
            .col_expr(push_usage::Column::Pushed, Expr::col(push_usage::Column::Pushed).add(1))
            .col_expr(push_usage::Column::UpdatedAt, Expr::value(now))
            .filter(push_usage::Column::ChannelId.eq(channel.id))
            .filter(push_usage::Column::Month.eq(month))
            .filter(Expr::col(push_usage::Column::Pushed).lt(limit))
            .filter(
                Condition::any()
                    .add(push_usage::Column::ReconciledTotal.is_null())
                    .add(push_usage::Column::ReconciledTotal.lt(limit)),
            )
            .exec(&**write)
            .await?;
        if reserved.rows_affected != 1 {
            return Err(Error::resource_exhausted(format!(
                "the channel's monthly push allowance ({limit}) is used up"
            )));
        }
        Ok(())
    }

    /// Fails a push that was never delivered and gives it back to its
    /// month's allowance, in one transaction fenced by the job's lease: only
    /// the run that moves the message to `FAILED` gives the push back, so a
    /// run again after a crash or a lost lease does not give it back twice.
    async fn fail_push(
        &self,
        chat: &chats::Model,
        message: messages::Model,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let month = japan_month(message.created_at);
        let mut write = self.write().await?;
        let failed =
            set_states_in(&mut write, ChannelKind::Line, chat, &[message], DeliveryState::Failed, Some(reason), now)
                .await?;
        if !failed.is_empty() {
            push_usage::Entity::update_many()
                .col_expr(push_usage::Column::Pushed, Expr::col(push_usage::Column::Pushed).sub(1))
                .filter(push_usage::Column::ChannelId.eq(chat.channel_id))
                .filter(push_usage::Column::Month.eq(month))
                .filter(Expr::col(push_usage::Column::Pushed).gt(0))
                .exec(&*write)
                .await?;
        }
        write.commit().await
    }

    /// Runs a `line.reply` job: sends the chat's waiting reply messages on
    /// its newest fresh token (at most one call of 5 objects); what does not
    /// fit, or has no token, waits as `UNSENT` for the next one.
    ///
    /// The messages are claimed (`SENDING`, held by this job) and the token
    /// taken in one transaction of conditional updates, so two reply jobs of
    /// one chat never send the same answers: the second finds them claimed.
    /// An attempt whose answer from LINE was lost leaves them `UNCONFIRMED`
    /// rather than sending them blindly again.
    pub(crate) async fn run_reply(&self, job: &jobs::Model, chat_id: ChatId, policy: RetryPolicy) -> Result<Outcome> {
        let now = self.core.now();
        let Some(chat) = chats::Entity::find_by_id(chat_id.uuid()).one(self.core.db()).await? else {
            return Ok(Outcome::Done);
        };
        let channel = channels::Entity::find_by_id(chat.channel_id)
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("channel"))?;
        // An earlier attempt of this job stopped while LINE had the messages.
        let interrupted = messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat.id))
            .filter(messages::Column::DeliveryJobId.eq(job.id))
            .filter(messages::Column::DeliveryState.eq(DeliveryState::Sending.as_str()))
            .all(self.core.db())
            .await?;
        self.set_states(&chat, &interrupted, DeliveryState::Unconfirmed, Some(UNCONFIRMED), now).await?;

        let waiting = self.waiting_replies(chat.id).await?;
        if waiting.is_empty() {
            return Ok(Outcome::Done);
        }
        if channel.status != ChannelStatus::Active.as_str() {
            self.set_states(&chat, &waiting, DeliveryState::Failed, Some("the channel is not active"), now).await?;
            return Ok(Outcome::Done);
        }
        let mut outbound = Vec::with_capacity(waiting.len());
        for message in &waiting {
            outbound.push(QueuedMessage { id: message.id, message: self.outbound_message(message, now).await? });
        }
        let first = batch_messages(outbound).into_iter().next().expect("waiting is not empty");
        let batch: Vec<_> = waiting.iter().filter(|m| first.source_ids().any(|id| *id == m.id)).cloned().collect();
        let Some((token_message, claimed)) = self.claim_reply(job, &chat, &batch, now).await? else {
            // Another delivery holds some of these answers or took the token:
            // look again once it is done.
            return Ok(Outcome::RetryAt(now + Duration::milliseconds(200), "another reply is in flight".into()));
        };
        let Some(token_message) = token_message else {
            self.set_states(&chat, &only_pending(&waiting), DeliveryState::Unsent, None, now).await?;
            return Ok(Outcome::Done);
        };
        let token = self.core.channels().line_token(&channel)?;
        let reply_token = token_message.reply_token.clone().unwrap_or_default();
        match self.core.line().reply(&token, &reply_token, &first.outbound()).await {
            Ok(_) => {
                self.set_states(&chat, &claimed, DeliveryState::Sent, None, now).await?;
                let rest: Vec<_> = waiting.iter().filter(|m| !claimed.iter().any(|c| c.id == m.id)).cloned().collect();
                self.set_states(&chat, &only_pending(&rest), DeliveryState::Unsent, None, now).await?;
                Ok(Outcome::Done)
            }
            Err(error) if error.is_invalid_reply_token() => {
                // The token died early; the next one may still be fresh.
                self.set_states(&chat, &claimed, DeliveryState::Unsent, None, now).await?;
                let another = self.fresh_reply_token(self.core.db(), chat_id, now).await?.is_some();
                Ok(if another { Outcome::RetryAt(now, error.to_string()) } else { Outcome::Done })
            }
            Err(error) if error.outcome_unknown() => {
                tracing::warn!(chat = %chat.id, %error, "a line reply's outcome is unknown; marking it unconfirmed");
                self.set_states(&chat, &claimed, DeliveryState::Unconfirmed, Some(UNCONFIRMED), now).await?;
                Ok(Outcome::Done)
            }
            Err(error) if error.is_retryable() => {
                // Refused without effect (429): the token is still good.
                let unused = messages::Entity::update_many()
                    .col_expr(messages::Column::ReplyTokenUsedAt, Expr::value(Option::<DateTime<Utc>>::None))
                    .filter(messages::Column::Id.eq(token_message.id));
                self.core.write_alone(unused).await?;
                self.set_states(&chat, &claimed, DeliveryState::Unsent, None, now).await?;
                Ok(retry_later(&error, job, policy, now))
            }
            Err(error) => {
                self.set_states(&chat, &claimed, DeliveryState::Failed, Some(&error.to_string()), now).await?;
                Ok(Outcome::Done)
            }
        }
    }

    /// Returns a chat's outbound reply messages waiting to leave, oldest first.
    async fn waiting_replies(&self, chat_id: uuid::Uuid) -> Result<Vec<messages::Model>> {
        let db = self.core.db();
        Ok(messages::Entity::find()
            .from_raw_sql(waiting_replies_statement(db.get_database_backend(), chat_id))
            .all(db)
            .await?)
    }

    /// In one transaction, takes the chat's freshest reply token and claims
    /// `batch` for this job (`SENDING`). Returns `None` when another delivery
    /// won either race (nothing changed), `Some((None, _))` when no fresh
    /// token exists (nothing changed), else the token's message and the
    /// claimed rows as they now stand.
    async fn claim_reply(
        &self,
        job: &jobs::Model,
        chat: &chats::Model,
        batch: &[messages::Model],
        now: DateTime<Utc>,
    ) -> Result<Option<(Option<messages::Model>, Vec<messages::Model>)>> {
        let mut write = self.write().await?;
        let Some(token_message) = self.fresh_reply_token(&*write, chat.id.into(), now).await? else {
            return Ok(Some((None, Vec::new())));
        };
        let taken = messages::Entity::update_many()
            .col_expr(messages::Column::ReplyTokenUsedAt, Expr::value(now))
            .filter(messages::Column::Id.eq(token_message.id))
            .filter(messages::Column::ReplyTokenUsedAt.is_null())
            .exec(&*write)
            .await?;
        if taken.rows_affected != 1 {
            return Ok(None);
        }
        let ids: Vec<uuid::Uuid> = batch.iter().map(|message| message.id).collect();
        let claimed = messages::Entity::update_many()
            .col_expr(messages::Column::DeliveryState, Expr::value(DeliveryState::Sending.as_str()))
            .col_expr(messages::Column::DeliveryJobId, Expr::value(job.id))
            .col_expr(messages::Column::DeliveryError, Expr::value(Option::<String>::None))
            .filter(messages::Column::ChatId.eq(chat.id))
            .filter(messages::Column::Id.is_in(ids.clone()))
            .filter(
                messages::Column::DeliveryState
                    .is_in([DeliveryState::Pending.as_str(), DeliveryState::Unsent.as_str()]),
            )
            .exec(&*write)
            .await?;
        if claimed.rows_affected != ids.len() as u64 {
            // Dropping the transaction rolls the token back too.
            return Ok(None);
        }
        let mut rows = Vec::with_capacity(batch.len());
        for message in batch {
            let row = messages::Entity::find_by_id(message.id)
                .one(&*write)
                .await?
                .ok_or_else(|| Error::not_found("message"))?;
            let claimed = message_from_row(row.clone(), Vec::new())?;
            append_chat_message_event(&mut write, chat, "message.delivery_changed", &claimed, now).await?;
            rows.push(row);
        }
        write.commit().await?;
        Ok(Some((Some(token_message), rows)))
    }

    /// Runs a `line.push` job: pushes one message with the retry key chosen
    /// when it was queued, so a retry after a crash is delivered once.
    pub(crate) async fn run_push(
        &self,
        job: &jobs::Model,
        message_id: MessageId,
        policy: RetryPolicy,
    ) -> Result<Outcome> {
        let now = self.core.now();
        let Some(message) = messages::Entity::find_by_id(message_id.uuid()).one(self.core.db()).await? else {
            return Ok(Outcome::Done);
        };
        if message.delivery_state != DeliveryState::Pending.as_str() {
            return Ok(Outcome::Done);
        }
        let (chat, channel) = chat_and_channel(self.core.db(), message.chat_id).await?;
        let user = end_users::Entity::find_by_id(chat.end_user_id)
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("end user"))?;
        if channel.status != ChannelStatus::Active.as_str() {
            self.fail_push(&chat, message, "the channel is not active", now).await?;
            return Ok(Outcome::Done);
        }
        let token = self.core.channels().line_token(&channel)?;
        let retry_key =
            job.retry_key.ok_or_else(|| Error::internal(std::io::Error::other("push job without a retry key")))?;
        let outbound = [self.outbound_message(&message, now).await?];
        match self.core.line().push(&token, &user.external_id, &outbound, retry_key).await {
            Ok(_) => {
                self.set_states(&chat, &[message], DeliveryState::Sent, None, now).await?;
                // Compare with LINE's own count at most once an hour per channel.
                let kind = JobKind::LineReconcileQuota { channel_id: channel.id.into() };
                let dedupe_key = format!("{}:{}:{}", kind.name(), channel.id, now.format("%Y-%m-%dT%H"));
                let mut reconcile = NewJob::new(kind, now);
                reconcile.organization_id = Some(channel.organization_id.into());
                reconcile.channel_id = Some(channel.id.into());
                reconcile.dedupe_key = Some(dedupe_key);
                let mut write = self.core.write().await?;
                write.enqueue(reconcile, now).await?;
                write.commit().await?;
                Ok(Outcome::Done)
            }
            Err(error) if error.is_retryable() && job.attempts < policy.max_attempts => {
                Ok(retry_later(&error, job, policy, now))
            }
            Err(error) => {
                self.fail_push(&chat, message, &error.to_string(), now).await?;
                Ok(Outcome::Done)
            }
        }
    }

    /// Returns the LINE message object for a stored outbound message: its
    /// text, or its image behind an expiring URL LINE can fetch.
    async fn outbound_message(&self, message: &messages::Model, now: DateTime<Utc>) -> Result<OutboundMessage> {
        if message.kind != MessageKind::Image.as_str() {
            return Ok(OutboundMessage::text(message.text.clone().unwrap_or_default()));
        }
        let attachment = attachments::Entity::find()
            .filter(attachments::Column::MessageId.eq(message.id))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("attachment"))?;
        let url = self.core.media().url(attachment.id.into(), now + crate::media::PROVIDER_LINK_LIFETIME);
        Ok(OutboundMessage::image(url.clone(), url))
    }

    /// Moves messages to a delivery state (see [`Delivery::set_states`]).
    async fn set_states(
        &self,
        chat: &chats::Model,
        rows: &[messages::Model],
        state: DeliveryState,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        Delivery::new(self.core, self.lease).set_states(ChannelKind::Line, chat, rows, state, error, now).await
    }

    /// Runs a `line.reconcile_quota` job.
    pub(crate) async fn run_reconcile_quota(
        &self,
        job: &jobs::Model,
        channel_id: ChannelId,
        policy: RetryPolicy,
    ) -> Result<Outcome> {
        let Some(channel) = channels::Entity::find_by_id(channel_id.uuid()).one(self.core.db()).await? else {
            return Ok(Outcome::Done);
        };
        match self.core.channels().reconcile(&channel).await {
            Ok(()) => Ok(Outcome::Done),
            Err(error) if job.attempts < policy.max_attempts => {
                Ok(Outcome::RetryAt(self.core.now() + policy.backoff(job.attempts), error.to_string()))
            }
            Err(error) => Ok(Outcome::Failed(error.to_string())),
        }
    }

    /// Runs a `line.fetch_profile` job: the consumer's display name and picture.
    pub(crate) async fn run_fetch_profile(
        &self,
        job: &jobs::Model,
        user_id: EndUserId,
        policy: RetryPolicy,
    ) -> Result<Outcome> {
        let now = self.core.now();
        let Some(user) = end_users::Entity::find_by_id(user_id.uuid()).one(self.core.db()).await? else {
            return Ok(Outcome::Done);
        };
        let channel = channels::Entity::find_by_id(user.channel_id)
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("channel"))?;
        let token = self.core.channels().line_token(&channel)?;
        let profile = match self.core.line().profile(&token, &user.external_id).await {
            Ok(profile) => profile,
            Err(error) if error.is_retryable() && job.attempts < policy.max_attempts => {
                return Ok(retry_later(&error, job, policy, now));
            }
            // Not a friend, or gone: nothing to show.
            Err(error) => return Ok(Outcome::Failed(error.to_string())),
        };
        let mut write = self.write().await?;
        end_users::Entity::update_many()
            .col_expr(end_users::Column::DisplayName, Expr::value(profile.display_name))
            .col_expr(end_users::Column::PictureUrl, Expr::value(profile.picture_url))
            .col_expr(end_users::Column::ProfileFetchedAt, Expr::value(now))
            .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
            .filter(end_users::Column::Id.eq(user.id))
            .exec(&*write)
            .await?;
        let chat = chats::Entity::find()
            .filter(chats::Column::ChannelId.eq(user.channel_id))
            .filter(chats::Column::EndUserId.eq(user.id))
            .one(&*write)
            .await?;
        if let Some(chat) = chat {
            self.core.chats().append_chat_event(&mut write, chat.id.into(), "chat.updated", now).await?;
        }
        write.commit().await?;
        Ok(Outcome::Done)
    }

    /// Runs a `line.download_content` job: fetches media into blob storage,
    /// asking again while LINE is still preparing it, within SPEC.md's limits.
    pub(crate) async fn run_download_content(
        &self,
        job: &jobs::Model,
        attachment_id: AttachmentId,
        policy: RetryPolicy,
    ) -> Result<Outcome> {
        let now = self.core.now();
        let Some(DownloadTarget { attachment, message, chat, channel }) =
            download_target(self.core, attachment_id).await?
        else {
            return Ok(Outcome::Done);
        };
        let token = self.core.channels().line_token(&channel)?;
        let kind = MessageKind::parse(&attachment.kind)?;
        let external_id = message.external_id.clone().unwrap_or_default();
        let fetched = match self.core.line().content_within(&token, &external_id, media_limit(kind)).await {
            Ok(ContentOutcome::NotReady) if job.attempts < policy.max_attempts => {
                return Ok(Outcome::RetryAt(
                    now + Duration::seconds(i64::from(job.attempts.clamp(1, 15)) * 2),
                    "content not ready yet".into(),
                ));
            }
            Ok(ContentOutcome::NotReady) => Err("LINE never finished preparing the content".to_owned()),
            Ok(ContentOutcome::Ready(content)) => Ok((content.bytes, content.content_type)),
            Err(error) if error.is_retryable() && job.attempts < policy.max_attempts => {
                return Ok(retry_later(&error, job, policy, now));
            }
            Err(LineError::ContentTooLarge { .. }) => Err(format!("over the {} limit", kind.as_str().to_lowercase())),
            Err(error) => Err(error.to_string()),
        };
        crate::media::record_download(self.core, self.lease, &chat, &attachment, fetched, now).await
    }
}

/// Retries a job later: when LINE asked (`Retry-After`, capped by the
/// policy), else after the policy's backoff.
fn retry_later(error: &LineError, job: &jobs::Model, policy: RetryPolicy, now: DateTime<Utc>) -> Outcome {
    let delay = match error.retry_after() {
        Some(asked) => policy.honour_retry_after(asked, job.attempts),
        None => policy.backoff(job.attempts),
    };
    Outcome::RetryAt(now + delay, error.to_string())
}
