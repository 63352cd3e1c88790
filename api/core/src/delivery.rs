//! The provider-neutral outbound pipeline: a message an agent sends gets a
//! delivery method from its channel's provider strategy (LINE: reply token,
//! push or auto, within the push quota; WeChat: customer-service messages
//! within the 48-hour window or the monthly allowance), a delivery job in the same
//! transaction, and delivery states with an event for each change. Chats
//! send through here without naming a provider.

use chrono::{DateTime, Utc};
use madoguchi_entity::{channels, chats, messages};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use crate::Core;
use crate::chats::{append_chat_message_event, message_from_row};
use crate::db::Write;
use crate::error::{Error, Result};
use crate::ids::{ChatId, MessageId};
use crate::jobs::Lease;
use crate::kinds::{ChannelKind, DeliveryMethod, DeliveryState, MessageKind, SendWindowState};
use crate::providers::line::LineOutbound;
use crate::providers::wechat::WechatOutbound;

/// Whether and how much a chat's consumer can be written to now, for
/// providers that limit it (WeChat); agent UIs warn before the agent types.
#[derive(Clone, Debug, PartialEq)]
pub struct SendWindow {
    pub state: SendWindowState,
    /// When the free window closes, while it is open.
    pub open_until: Option<DateTime<Utc>>,
    /// Messages sent outside the window this month, and how many may be.
    pub allowance_used: i64,
    pub allowance_limit: i64,
    pub allowance_resets_at: DateTime<Utc>,
    /// Why, in words.
    pub reason: String,
}

/// Delivery use cases; within a job's run, every write is fenced by its lease.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    core: &'a Core,
    lease: Option<&'a Lease>,
}

impl<'a> Delivery<'a> {
    pub(crate) fn new(core: &'a Core, lease: Option<&'a Lease>) -> Self {
        Self { core, lease }
    }

    /// Chooses how a new message on `channel` leaves, per its provider's
    /// strategy (refusing it, say, past a quota).
    pub(crate) async fn choose_method(
        &self,
        write: &Write<'_>,
        channel: &channels::Model,
        chat: &chats::Model,
        now: DateTime<Utc>,
    ) -> Result<DeliveryMethod> {
        match ChannelKind::parse(&channel.kind)? {
            ChannelKind::Line => LineOutbound::new(self.core).choose_method(write, channel, chat, now).await,
            ChannelKind::Wechat => WechatOutbound::new(self.core).choose_method(write, chat, now).await,
            ChannelKind::Partner => Err(partner_chat()),
        }
    }

    /// A chat's send window, where its provider limits one (`None`: LINE,
    /// whose limit is the channel's push quota).
    pub(crate) async fn send_window(
        &self,
        channel: &channels::Model,
        chat: &chats::Model,
        now: DateTime<Utc>,
    ) -> Result<Option<SendWindow>> {
        match ChannelKind::parse(&channel.kind)? {
            ChannelKind::Line | ChannelKind::Partner => Ok(None),
            ChannelKind::Wechat => {
                WechatOutbound::new(self.core).send_window(self.core.db(), chat, now).await.map(Some)
            }
        }
    }

    /// Refuses a kind of message the channel's provider cannot carry (LINE's
    /// audio and video need a duration and a preview this API does not take).
    pub(crate) fn accepts(&self, channel: &channels::Model, kind: MessageKind) -> Result<()> {
        let accepted = match ChannelKind::parse(&channel.kind)? {
            ChannelKind::Line => matches!(kind, MessageKind::Text | MessageKind::Image),
            ChannelKind::Wechat => {
                matches!(kind, MessageKind::Text | MessageKind::Image | MessageKind::Audio | MessageKind::Video)
            }
            ChannelKind::Partner => return Err(partner_chat()),
        };
        if accepted {
            Ok(())
        } else {
            Err(Error::failed_precondition(format!(
                "this channel cannot send {} messages",
                kind.as_str().to_lowercase()
            )))
        }
    }

    /// Queues the job that delivers a message, in the caller's transaction.
    pub(crate) async fn enqueue(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        chat: &chats::Model,
        message_id: MessageId,
        method: DeliveryMethod,
        now: DateTime<Utc>,
    ) -> Result<()> {
        match ChannelKind::parse(&channel.kind)? {
            ChannelKind::Line => {
                LineOutbound::new(self.core).enqueue_delivery(write, chat, message_id, method, now).await
            }
            ChannelKind::Wechat => {
                WechatOutbound::new(self.core).enqueue_delivery(write, chat, message_id, method, now).await
            }
            ChannelKind::Partner => Err(partner_chat()),
        }
    }

    /// What a channel's provider does when its consumers write: `chats`
    /// are the channel's chats given a new message that carries a reply
    /// token.
    pub(crate) async fn after_inbound_messages(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        chats: &[ChatId],
        now: DateTime<Utc>,
    ) -> Result<()> {
        match ChannelKind::parse(&channel.kind)? {
            ChannelKind::Line => LineOutbound::new(self.core).after_inbound_messages(write, channel, chats, now).await,
            ChannelKind::Wechat | ChannelKind::Partner => Ok(()),
        }
    }

    /// Moves messages to a delivery state, appending one event each, in
    /// one transaction fenced by the job's lease.
    pub(crate) async fn set_states(
        &self,
        provider: ChannelKind,
        chat: &chats::Model,
        rows: &[messages::Model],
        state: DeliveryState,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut write = self.core.write().await?.fenced_by(self.lease);
        set_states_in(&mut write, provider, chat, rows, state, error, now).await?;
        write.commit().await
    }
}

/// Moves messages to a delivery state in the caller's transaction, each only
/// from the state `rows` show it in (a conditional update), appending one
/// event per change; returns the rows that changed, as they now stand.
pub(crate) async fn set_states_in(
    write: &mut Write<'_>,
    provider: ChannelKind,
    chat: &chats::Model,
    rows: &[messages::Model],
    state: DeliveryState,
    error: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<messages::Model>> {
    let mut changed = Vec::with_capacity(rows.len());
    for row in rows {
        let mut update = messages::Entity::update_many()
            .col_expr(messages::Column::DeliveryState, Expr::value(state.as_str()))
            .col_expr(messages::Column::DeliveryError, Expr::value(error.map(str::to_owned)))
            .filter(messages::Column::Id.eq(row.id))
            .filter(messages::Column::DeliveryState.eq(row.delivery_state.clone()));
        if state == DeliveryState::Sent {
            update = update.col_expr(messages::Column::SentAt, Expr::value(now));
        }
        if update.exec(&**write).await?.rows_affected != 1 {
            continue;
        }
        if matches!(state, DeliveryState::Sent | DeliveryState::Failed | DeliveryState::Unconfirmed) {
            let labels = [("provider", provider.as_str().to_lowercase()), ("result", state.as_str().to_owned())];
            metrics::counter!("deliveries_total", &labels).increment(1);
        }
        let updated =
            messages::Entity::find_by_id(row.id).one(&**write).await?.ok_or_else(|| Error::not_found("message"))?;
        let message = message_from_row(updated.clone(), Vec::new())?;
        append_chat_message_event(write, chat, "message.delivery_changed", &message, now).await?;
        changed.push(updated);
    }
    Ok(changed)
}

/// Returns a chat and its channel.
pub(crate) async fn chat_and_channel(
    db: &impl sea_orm::ConnectionTrait,
    chat_id: uuid::Uuid,
) -> Result<(chats::Model, channels::Model)> {
    let chat = chats::Entity::find_by_id(chat_id).one(db).await?.ok_or_else(|| Error::not_found("chat"))?;
    let channel =
        channels::Entity::find_by_id(chat.channel_id).one(db).await?.ok_or_else(|| Error::not_found("channel"))?;
    Ok((chat, channel))
}

/// The rows still `PENDING`.
pub(crate) fn only_pending(rows: &[messages::Model]) -> Vec<messages::Model> {
    rows.iter().filter(|row| row.delivery_state == DeliveryState::Pending.as_str()).cloned().collect()
}

/// A submitted chat is answered in the partner's own product.
fn partner_chat() -> Error {
    Error::failed_precondition("a chat a partner system submitted is answered in the partner's product, not here")
}
