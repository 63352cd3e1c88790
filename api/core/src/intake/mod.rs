//! Provider-neutral intake. A provider module (see [`crate::providers`])
//! verifies and parses its webhook into [`InboundEvent`]s; one path records
//! them, in one transaction before the provider gets its answer (shared with
//! the deliveries that arrive meanwhile: [`group_commit`]): a receipt
//! per event (unique, so a redelivery adds nothing), the end user, the chat
//! (reopened when it was completed), the message and its attachments'
//! download jobs, passcode redemption, follow and unfollow, unsend, and the
//! events describing all of it.
//!
//! Consumers' messages are stored set-based ([`new_messages`]): a batch's
//! receipts are one multi-row insert, and its messages, whatever their
//! number, a few statements (end users, chats, messages, one update of
//! every chat they change), not a few per message.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{channels, chats, end_users, messages, passcodes, webhook_receipts};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use serde_json::json;

use crate::Core;
use crate::chats::{append_message_event, message_from_row};
use crate::db::Write;
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::EndUserId;
use crate::jobs::NewJob;
use crate::kinds::MessageKind;
use crate::providers;
use crate::rate_limits::Limit;

pub(crate) mod group_commit;
mod new_messages;
pub(crate) mod writer_thread;

pub(crate) use group_commit::GroupCommit;
use group_commit::{Counts, Delivery};
use new_messages::{NewMessage, new_chat_row, new_end_user_row};

/// One event of a provider's webhook, in the provider's neutral form.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundEvent {
    /// The provider's id of the event, unique per channel (LINE's
    /// `webhookEventId`, WeChat's `MsgId`, or a digest of the event).
    pub provider_event_id: String,
    /// The event's type as the provider spelled it, kept with the receipt.
    pub event_type: String,
    /// The event as it arrived.
    pub raw: serde_json::Value,
    /// The consumer's id at the provider; `None` for events that are not
    /// one consumer's (they are kept as receipts only).
    pub consumer: Option<String>,
    /// A token for answering this event, when the provider gives one.
    pub reply_token: Option<String>,
    pub kind: InboundKind,
}

/// What an inbound event is.
#[derive(Clone, Debug, PartialEq)]
pub enum InboundKind {
    Message(InboundMessage),
    Followed,
    Unfollowed,
    /// The consumer took back the message with this provider id.
    Unsent {
        message_id: String,
    },
    /// Anything else: kept as a receipt.
    Other,
}

/// A consumer's message.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMessage {
    /// The provider's id of the message (unique per chat).
    pub external_id: Option<String>,
    pub kind: MessageKind,
    /// Text, or a file's name, or a location's address.
    pub text: Option<String>,
    /// The provider's message object, kept as it came.
    pub payload: Option<serde_json::Value>,
    /// Media the provider holds for us to download.
    pub media: Option<InboundMedia>,
}

/// Media to download after the message is stored.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundMedia {
    pub file_name: Option<String>,
}

/// What became of a webhook delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookOutcome {
    /// Stored: `stored` new events, `duplicates` already seen.
    Accepted { stored: usize, duplicates: usize },
    /// The channel is disabled: answered, nothing recorded.
    Ignored,
}

/// Passcode-shaped messages checked per consumer per hour.
pub(crate) const PASSCODE_ATTEMPTS_PER_END_USER: Limit = Limit { max: 5, window: Duration::hours(1) };
/// Passcode-shaped messages checked per organization per hour, across all
/// its consumers.
pub(crate) const PASSCODE_ATTEMPTS_PER_ORGANIZATION: Limit = Limit { max: 100, window: Duration::hours(1) };

/// Intake use cases.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    core: &'a Core,
}

impl<'a> Intake<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Records a channel's verified, parsed delivery: every new event
    /// exactly once, committed before this returns. Returns how many events
    /// were new and how many seen before. Deliveries arriving together share
    /// one transaction (see [`group_commit`]).
    pub(crate) async fn record(
        &self,
        channel: &channels::Model,
        mut events: Vec<InboundEvent>,
    ) -> Result<(usize, usize)> {
        // One lock order for every delivery: consumers in id order (each
        // consumer's own events keep theirs), so two deliveries touching the
        // same consumers never wait on each other in a cycle.
        events.sort_by(|a, b| a.consumer.cmp(&b.consumer));
        let delivery = Delivery { channel: channel.clone(), events };
        let group_commit = self.core.group_commit();
        if group_commit.shares() {
            group_commit.submit(self.core, delivery).await
        } else {
            self.store_alone(&delivery).await
        }
    }

    /// Stores one delivery in a transaction of its own, run again when it
    /// loses a race.
    pub(crate) async fn store_alone(&self, delivery: &Delivery) -> Result<Counts> {
        self.core.retrying(|| self.store_one(delivery)).await
    }

    /// Stores one delivery in one transaction: set-based when every event
    /// can be ([`Intake::store_set`]), else its receipts (sorted), then its
    /// events one after another, consumers in order.
    async fn store_one(&self, delivery: &Delivery) -> Result<Counts> {
        if delivery.shares_transactions() {
            let mut counts = self.store_set(std::slice::from_ref(delivery)).await?;
            return Ok(counts.pop().expect("one count per delivery"));
        }
        let now = self.core.now();
        let mut write = self.core.intake_write().await?;
        let counts = self.store(&mut write, &delivery.channel, &delivery.events, now).await?;
        write.commit().await?;
        Ok(counts)
    }

    /// Stores a batch whose events are all consumers' messages or receipts
    /// only, set-based, in one transaction: one insert of every receipt
    /// (sorted), then every new message at once ([`Intake::store_messages`]:
    /// end users sorted, chats locked in id order). Every lock is taken in
    /// that one order, however many deliveries share the transaction.
    /// Returns each delivery's counts; on any error nothing is stored.
    pub(crate) async fn store_set(&self, batch: &[Delivery]) -> Result<Vec<Counts>> {
        let now = self.core.now();
        let mut write = self.core.intake_write().await?;
        let events: Vec<(usize, &channels::Model, &InboundEvent)> = batch
            .iter()
            .enumerate()
            .flat_map(|(index, delivery)| delivery.events.iter().map(move |event| (index, &delivery.channel, event)))
            .collect();
        let new = record_receipts(&write, events.iter().map(|(_, channel, event)| (*channel, *event)), now).await?;
        let mut counts = vec![(0, 0); batch.len()];
        let mut messages = Vec::new();
        for ((index, channel, event), new) in events.iter().zip(new) {
            if !new {
                counts[*index].1 += 1;
                continue;
            }
            counts[*index].0 += 1;
            if let (Some(consumer), InboundKind::Message(message)) = (&event.consumer, &event.kind) {
                messages.push(NewMessage { channel, consumer, reply_token: event.reply_token.as_deref(), message });
            }
        }
        self.store_messages(&mut write, &messages, now).await?;
        write.commit().await?;
        Ok(counts)
    }

    /// Stores a delivery's events in `write`, one after another; returns
    /// how many were new and how many seen before.
    async fn store(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        events: &[InboundEvent],
        now: DateTime<Utc>,
    ) -> Result<Counts> {
        let new = record_receipts(write, events.iter().map(|event| (channel, event)), now).await?;
        let (mut stored, mut duplicates) = (0, 0);
        for (event, new) in events.iter().zip(new) {
            if new {
                self.apply(write, channel, event, now).await?;
                stored += 1;
            } else {
                duplicates += 1;
            }
        }
        Ok((stored, duplicates))
    }

    async fn apply(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        event: &InboundEvent,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // Chats are one consumer and the business; events without a consumer
        // (a group's, say) are kept as receipts only.
        let Some(user_id) = &event.consumer else { return Ok(()) };
        match &event.kind {
            InboundKind::Message(message) => {
                let new = NewMessage { channel, consumer: user_id, reply_token: event.reply_token.as_deref(), message };
                self.store_messages(write, &[new], now).await
            }
            InboundKind::Followed => {
                let user = self.end_user(write, channel, user_id, now).await?;
                if user.unfollowed_at.is_some() {
                    set_unfollowed(write, user.id, None, now).await?;
                }
                append_end_user_event(write, channel, user.id, "end_user.followed", now).await
            }
            InboundKind::Unfollowed => {
                let user = self.end_user(write, channel, user_id, now).await?;
                set_unfollowed(write, user.id, Some(now), now).await?;
                append_end_user_event(write, channel, user.id, "end_user.unfollowed", now).await
            }
            InboundKind::Unsent { message_id } => self.apply_unsend(write, channel, message_id, now).await,
            InboundKind::Other => Ok(()),
        }
    }

    async fn apply_unsend(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        message_id: &str,
        now: DateTime<Utc>,
    ) -> Result<()> {
        // One indexed lookup through a sub-select, however many chats the
        // channel has.
        let chat_ids = chats::Entity::find()
            .select_only()
            .column(chats::Column::Id)
            .filter(chats::Column::ChannelId.eq(channel.id))
            .into_query();
        let Some(row) = messages::Entity::find()
            .filter(Expr::col((messages::Entity, messages::Column::ChatId)).in_subquery(chat_ids))
            .filter(messages::Column::ExternalId.eq(message_id))
            .one(&**write)
            .await?
        else {
            return Ok(());
        };
        messages::Entity::update_many()
            .col_expr(messages::Column::Text, Expr::value(Option::<String>::None))
            .col_expr(messages::Column::Payload, Expr::value(json!({"unsent": true})))
            .filter(messages::Column::Id.eq(row.id))
            .exec(&**write)
            .await?;
        let updated =
            messages::Entity::find_by_id(row.id).one(&**write).await?.ok_or_else(|| Error::not_found("message"))?;
        let message = message_from_row(updated, Vec::new())?;
        append_message_event(write, channel.organization_id.into(), channel.id.into(), "message.unsent", &message, now)
            .await?;
        Ok(())
    }

    /// Finds or creates the end user; a new one gets a profile fetch queued.
    pub(crate) async fn end_user(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        user_id: &str,
        now: DateTime<Utc>,
    ) -> Result<end_users::Model> {
        let find = || {
            end_users::Entity::find()
                .filter(end_users::Column::ChannelId.eq(channel.id))
                .filter(end_users::Column::ExternalId.eq(user_id))
        };
        if let Some(user) = find().one(&**write).await? {
            return Ok(user);
        }
        // Insert or get: a concurrent delivery for the same new consumer
        // waits here for the other's commit, then finds its row.
        let id = EndUserId::generate();
        let inserted = end_users::Entity::insert(new_end_user_row(channel, id, user_id, now))
            .on_conflict(
                OnConflict::columns([end_users::Column::ChannelId, end_users::Column::ExternalId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&**write)
            .await?;
        if inserted == 1
            && let Some(kind) = providers::profile_job(channel, id)
        {
            write.enqueue(NewJob::of_channel(kind, channel, now), now).await?;
        }
        find().one(&**write).await?.ok_or_else(|| Error::not_found("end user"))
    }

    /// Finds or opens the chat between an end user and the channel.
    pub(crate) async fn chat_for(
        &self,
        write: &Write<'_>,
        channel: &channels::Model,
        user: &end_users::Model,
        now: DateTime<Utc>,
    ) -> Result<(chats::Model, bool)> {
        let find = || {
            chats::Entity::find()
                .filter(chats::Column::ChannelId.eq(channel.id))
                .filter(chats::Column::EndUserId.eq(user.id))
        };
        if let Some(chat) = find().one(&**write).await? {
            return Ok((chat, false));
        }
        let inserted = chats::Entity::insert(new_chat_row(channel, user.id, now))
            .on_conflict(
                OnConflict::columns([chats::Column::ChannelId, chats::Column::EndUserId]).do_nothing().to_owned(),
            )
            .exec_without_returning(&**write)
            .await?;
        Ok((find().one(&**write).await?.ok_or_else(|| Error::not_found("chat"))?, inserted == 1))
    }

    /// Links the end user to a contact when `text` is a valid, unused,
    /// unexpired passcode of the organization; returns whether it was one.
    async fn redeem_passcode(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        user: &end_users::Model,
        text: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let Some(code) = crate::contacts::Passcode::recognise(text) else { return Ok(false) };
        // Guessing is bounded: past either limit a passcode-shaped message is
        // kept as an ordinary one and redeems nothing.
        for (key, limit) in [
            (format!("passcode:end_user:{}", user.id), PASSCODE_ATTEMPTS_PER_END_USER),
            (format!("passcode:organization:{}", channel.organization_id), PASSCODE_ATTEMPTS_PER_ORGANIZATION),
        ] {
            let (allowed, _) = crate::rate_limits::count_attempt_in(&**write, &key, limit, now).await?;
            if !allowed {
                tracing::warn!(end_user = %user.id, limit = %key, "passcode attempt over the limit; not checked");
                return Ok(false);
            }
        }
        let Some(passcode) = passcodes::Entity::find()
            .filter(passcodes::Column::OrganizationId.eq(channel.organization_id))
            .filter(passcodes::Column::Code.eq(code.as_str()))
            .one(&**write)
            .await?
        else {
            return Ok(false);
        };
        if passcode.used_at.is_some() || passcode.expires_at <= now {
            return Ok(false);
        }
        let used = passcodes::Entity::update_many()
            .col_expr(passcodes::Column::UsedAt, Expr::value(now))
            .col_expr(passcodes::Column::UsedByEndUserId, Expr::value(user.id))
            .filter(passcodes::Column::Id.eq(passcode.id))
            .filter(passcodes::Column::UsedAt.is_null())
            .exec(&**write)
            .await?;
        if used.rows_affected != 1 {
            return Ok(false);
        }
        end_users::Entity::update_many()
            .col_expr(end_users::Column::ContactId, Expr::value(passcode.contact_id))
            .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
            .filter(end_users::Column::Id.eq(user.id))
            .exec(&**write)
            .await?;
        write
            .append(
                channel.organization_id.into(),
                NewEvent::new(
                    "end_user.linked",
                    json!({"endUserId": user.id, "contactId": passcode.contact_id, "by": "PASSCODE"}),
                    now,
                )
                .in_channel(channel.id.into()),
            )
            .await?;
        Ok(true)
    }
}

/// Whether an event is stored by the set-based path: a consumer's message,
/// or an event kept as a receipt only.
pub(super) fn stored_set_based(event: &InboundEvent) -> bool {
    match event.kind {
        InboundKind::Message(_) | InboundKind::Other => true,
        InboundKind::Followed | InboundKind::Unfollowed | InboundKind::Unsent { .. } => event.consumer.is_none(),
    }
}

/// Inserts the receipts of `events` in one statement (or a few, for many);
/// returns, per event, whether it is new. An event seen before, or earlier
/// in `events`, is not. Receipts are inserted sorted, so transactions
/// inserting the same ones take their locks in one order.
async fn record_receipts<'e>(
    write: &Write<'_>,
    events: impl Iterator<Item = (&'e channels::Model, &'e InboundEvent)>,
    now: DateTime<Utc>,
) -> Result<Vec<bool>> {
    let mut firsts: BTreeMap<(uuid::Uuid, &str), (uuid::Uuid, usize)> = BTreeMap::new();
    let mut keys = Vec::new();
    let mut rows = HashMap::new();
    for (index, (channel, event)) in events.enumerate() {
        let key = (channel.id, event.provider_event_id.as_str());
        keys.push(key);
        firsts.entry(key).or_insert_with(|| {
            let id = uuid::Uuid::now_v7();
            rows.insert(
                id,
                webhook_receipts::ActiveModel {
                    id: Set(id),
                    organization_id: Set(channel.organization_id),
                    channel_id: Set(channel.id),
                    provider_event_id: Set(event.provider_event_id.clone()),
                    event_type: Set(event.event_type.clone()),
                    raw: Set(event.raw.clone()),
                    received_at: Set(now),
                },
            );
            (id, index)
        });
    }
    let sorted: Vec<webhook_receipts::ActiveModel> = firsts.values().filter_map(|(id, _)| rows.remove(id)).collect();
    let mut inserted: HashSet<uuid::Uuid> = HashSet::with_capacity(sorted.len());
    for chunk in new_messages::statements(sorted) {
        inserted.extend(
            webhook_receipts::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([
                        webhook_receipts::Column::ChannelId,
                        webhook_receipts::Column::ProviderEventId,
                    ])
                    .do_nothing()
                    .to_owned(),
                )
                .exec_with_returning_keys(&**write)
                .await?,
        );
    }
    Ok(keys
        .iter()
        .enumerate()
        .map(|(index, key)| firsts.get(key).is_some_and(|(id, first)| *first == index && inserted.contains(id)))
        .collect())
}

async fn set_unfollowed(
    write: &Write<'_>,
    user: uuid::Uuid,
    at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<()> {
    end_users::Entity::update_many()
        .col_expr(end_users::Column::UnfollowedAt, Expr::value(at))
        .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
        .filter(end_users::Column::Id.eq(user))
        .exec(&**write)
        .await?;
    Ok(())
}

async fn append_end_user_event(
    write: &mut Write<'_>,
    channel: &channels::Model,
    user: uuid::Uuid,
    kind: &'static str,
    now: DateTime<Utc>,
) -> Result<()> {
    let chat = chats::Entity::find()
        .filter(chats::Column::ChannelId.eq(channel.id))
        .filter(chats::Column::EndUserId.eq(user))
        .one(&**write)
        .await?;
    let mut event = NewEvent::new(kind, json!({"endUserId": user}), now).in_channel(channel.id.into());
    if let Some(chat) = chat {
        event = event.in_chat(chat.id.into());
    }
    write.append(channel.organization_id.into(), event).await?;
    Ok(())
}
