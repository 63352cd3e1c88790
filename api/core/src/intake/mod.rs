//! Provider-neutral intake. A provider module (see [`crate::providers`])
//! verifies and parses its webhook into [`InboundEvent`]s; one path records
//! them, in one transaction before the provider gets its answer (shared with
//! the deliveries that arrive meanwhile: [`group_commit`]): a receipt
//! per event (unique, so a redelivery adds nothing), the end user, the chat
//! (reopened when it was completed), the message and its attachments'
//! download jobs, passcode redemption, follow and unfollow, unsend, and the
//! events describing all of it.

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{attachments, channels, chats, end_users, messages, passcodes, webhook_receipts};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait};
use serde_json::json;

use crate::Core;
use crate::chats::{Attachment, Message, append_message_event, message_from_row, preview};
use crate::db::Write;
use crate::error::{Error, Result};
use crate::events::NewEvent;
use crate::ids::{AttachmentId, ChatId, EndUserId, MessageId};
use crate::jobs::NewJob;
use crate::kinds::{AttachmentStatus, ChatStatus, DeliveryState, MessageDirection, MessageKind};
use crate::providers;
use crate::rate_limits::Limit;

pub(crate) mod group_commit;

pub(crate) use group_commit::GroupCommit;
use group_commit::{Counts, Delivery};

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
    pub(crate) async fn record(&self, channel: &channels::Model, events: &[InboundEvent]) -> Result<(usize, usize)> {
        // One lock order for every delivery: consumers in id order (each
        // consumer's own events keep theirs), so two deliveries touching the
        // same consumers never wait on each other in a cycle.
        let mut events = events.to_vec();
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
        let mut outcomes = self.core.retrying(|| self.store_batch(std::slice::from_ref(delivery))).await?;
        outcomes.pop().expect("one outcome per delivery")
    }

    /// Stores deliveries in one transaction, each in a savepoint of its own:
    /// one that fails is rolled back alone and answered with its error. A
    /// transaction that lost a race fails as a whole, to be run again.
    pub(crate) async fn store_batch(&self, batch: &[Delivery]) -> Result<Vec<Result<Counts>>> {
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for delivery in batch {
            if batch.len() == 1 {
                outcomes.push(Ok(self.store(&mut write, &delivery.channel, &delivery.events, now).await?));
                continue;
            }
            let savepoint = write.savepoint().await?;
            match self.store(&mut write, &delivery.channel, &delivery.events, now).await {
                Ok(counts) => {
                    write.release(savepoint).await?;
                    outcomes.push(Ok(counts));
                }
                Err(error) if error.is_transient() || error.is_lease_lost() => return Err(error),
                Err(error) => {
                    tracing::warn!(channel = %delivery.channel.id, cause = ?error.cause(), %error, "a delivery failed in a shared intake transaction; rolled back alone");
                    write.rollback_to(savepoint).await?;
                    outcomes.push(Err(error));
                }
            }
        }
        write.commit().await?;
        Ok(outcomes)
    }

    /// Stores a delivery's events in `write`; returns how many were new and
    /// how many seen before.
    async fn store(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        events: &[InboundEvent],
        now: DateTime<Utc>,
    ) -> Result<Counts> {
        let (mut stored, mut duplicates) = (0, 0);
        for event in events {
            if self.record_receipt(write, channel, event, now).await? {
                self.apply(write, channel, event, now).await?;
                stored += 1;
            } else {
                duplicates += 1;
            }
        }
        Ok((stored, duplicates))
    }

    /// Records the receipt; returns `false` when the event was seen before.
    async fn record_receipt(
        &self,
        write: &Write<'_>,
        channel: &channels::Model,
        event: &InboundEvent,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        let provider_event_id = event.provider_event_id.clone();
        let inserted = webhook_receipts::Entity::insert(webhook_receipts::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            organization_id: Set(channel.organization_id),
            channel_id: Set(channel.id),
            provider_event_id: Set(provider_event_id),
            event_type: Set(event.event_type.clone()),
            raw: Set(event.raw.clone()),
            received_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([webhook_receipts::Column::ChannelId, webhook_receipts::Column::ProviderEventId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&**write)
        .await?;
        Ok(inserted == 1)
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
                self.apply_message(write, channel, event.reply_token.as_deref(), user_id, message, now).await
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

    async fn apply_message(
        &self,
        write: &mut Write<'_>,
        channel: &channels::Model,
        reply_token: Option<&str>,
        user_id: &str,
        inbound: &InboundMessage,
        now: DateTime<Utc>,
    ) -> Result<()> {
        let mut user = self.end_user(write, channel, user_id, now).await?;
        if user.unfollowed_at.is_some() {
            set_unfollowed(write, user.id, None, now).await?;
            user.unfollowed_at = None;
        }
        let blocked = user.blocked_at.is_some();
        let (chat, created) = self.chat_for(write, channel, &user, now).await?;
        let (kind, text) = (inbound.kind, inbound.text.clone());
        let passcode = match (&text, kind) {
            (Some(text), MessageKind::Text) => self.redeem_passcode(write, channel, &user, text, now).await?,
            _ => false,
        };
        let message_id = MessageId::generate();
        let inserted = messages::Entity::insert(messages::ActiveModel {
            id: Set(message_id.uuid()),
            organization_id: Set(channel.organization_id),
            chat_id: Set(chat.id),
            direction: Set(MessageDirection::Inbound.as_str().into()),
            kind: Set(kind.as_str().into()),
            text: Set(text.clone()),
            payload: Set(inbound.payload.clone()),
            sender_agent_id: Set(None),
            external_id: Set(inbound.external_id.clone()),
            is_passcode: Set(passcode),
            delivery_state: Set(DeliveryState::Received.as_str().into()),
            delivery_method: Set(None),
            delivery_error: Set(None),
            reply_token: Set(reply_token.map(str::to_owned)),
            reply_token_used_at: Set(None),
            created_at: Set(now),
            sent_at: Set(None),
            delivery_job_id: Set(None),
        })
        .on_conflict(
            OnConflict::columns([messages::Column::ChatId, messages::Column::ExternalId]).do_nothing().to_owned(),
        )
        .exec_without_returning(&**write)
        .await?;
        if inserted == 0 {
            return Ok(());
        }
        let mut message_attachments = Vec::new();
        if let Some(media) = &inbound.media {
            let attachment_id = AttachmentId::generate();
            message_attachments.push(Attachment {
                id: attachment_id,
                kind,
                status: AttachmentStatus::Pending,
                content_type: None,
                size_bytes: None,
                file_name: media.file_name.clone(),
            });
            attachments::Entity::insert(attachments::ActiveModel {
                id: Set(attachment_id.uuid()),
                organization_id: Set(channel.organization_id),
                message_id: Set(message_id.uuid()),
                kind: Set(kind.as_str().into()),
                status: Set(AttachmentStatus::Pending.as_str().into()),
                content_type: Set(None),
                size_bytes: Set(None),
                blob_key: Set(None),
                file_name: Set(media.file_name.clone()),
                error: Set(None),
                created_at: Set(now),
            })
            .exec_without_returning(&**write)
            .await?;
            if let Some(kind) = providers::media_job(channel, attachment_id) {
                let mut job = NewJob::new(kind, now);
                job.organization_id = Some(channel.organization_id.into());
                job.channel_id = Some(channel.id.into());
                job.message_id = Some(message_id);
                write.enqueue(job, now).await?;
            }
        }
        if blocked {
            // Kept, but it opens nothing and notifies no one.
            return Ok(());
        }
        let reopened = !created && chat.status == ChatStatus::Completed.as_str();
        let preview_text = match (&text, kind) {
            (Some(text), MessageKind::Text) => preview(text),
            _ => format!("[{}]", kind.as_str().to_lowercase()),
        };
        let mut update = chats::Entity::update_many()
            .col_expr(chats::Column::LastMessageAt, Expr::value(now))
            .col_expr(chats::Column::LastInboundAt, Expr::value(now))
            .col_expr(chats::Column::UpdatedAt, Expr::value(now))
            .filter(chats::Column::Id.eq(chat.id));
        if !passcode {
            // The first customer message after a conversion opens the next
            // ticket window.
            update = update
                .col_expr(chats::Column::LastMessagePreview, Expr::value(preview_text))
                .col_expr(chats::Column::UnreadCount, Expr::col(chats::Column::UnreadCount).add(1))
                .col_expr(
                    chats::Column::TicketWindowStartedAt,
                    Func::coalesce([Expr::col(chats::Column::TicketWindowStartedAt), Expr::value(now)]).into(),
                );
        }
        if reopened {
            update = update
                .col_expr(chats::Column::Status, Expr::value(ChatStatus::New.as_str()))
                .col_expr(chats::Column::OpenedAt, Expr::value(now))
                .col_expr(chats::Column::CompletedAt, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(chats::Column::CompletionReason, Expr::value(Option::<String>::None));
        }
        // The chat as this change leaves it, for its event and its timers,
        // without reading it again.
        let chat = update.exec_with_returning(&**write).await?.pop().ok_or_else(|| Error::not_found("chat"))?;
        if passcode {
            // Redeeming linked the consumer to a contact.
            user = end_users::Entity::find_by_id(user.id)
                .one(&**write)
                .await?
                .ok_or_else(|| Error::not_found("end user"))?;
        }
        let chat_id: ChatId = chat.id.into();
        let chats = self.core.chats();
        let kind_of_change = if created {
            "chat.created"
        } else if reopened {
            "chat.reopened"
        } else {
            "chat.updated"
        };
        let message = Message {
            id: message_id,
            chat_id,
            direction: MessageDirection::Inbound,
            kind,
            text,
            payload: inbound.payload.clone(),
            sender_agent_id: None,
            is_passcode: passcode,
            delivery_state: DeliveryState::Received,
            delivery_method: None,
            delivery_error: None,
            attachments: message_attachments,
            created_at: now,
            sent_at: None,
        };
        append_message_event(
            write,
            channel.organization_id.into(),
            channel.id.into(),
            "message.created",
            &message,
            now,
        )
        .await?;
        crate::timers::arm_for(write, channel, &chat, now).await?;
        chats.append_chat_event_of(write, chat, user, kind_of_change, now).await?;

        // What the provider does when a consumer writes (LINE: answers
        // waiting for a reply token can go now).
        self.core.delivery().after_inbound_message(write, channel, chat_id, reply_token.is_some(), now).await
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
        let inserted = end_users::Entity::insert(end_users::ActiveModel {
            id: Set(id.uuid()),
            organization_id: Set(channel.organization_id),
            channel_id: Set(channel.id),
            external_id: Set(user_id.to_owned()),
            display_name: Set(None),
            picture_url: Set(None),
            contact_id: Set(None),
            blocked_at: Set(None),
            unfollowed_at: Set(None),
            profile_fetched_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([end_users::Column::ChannelId, end_users::Column::ExternalId]).do_nothing().to_owned(),
        )
        .exec_without_returning(&**write)
        .await?;
        if inserted == 1
            && let Some(kind) = providers::profile_job(channel, id)
        {
            let mut job = NewJob::new(kind, now);
            job.organization_id = Some(channel.organization_id.into());
            job.channel_id = Some(channel.id.into());
            write.enqueue(job, now).await?;
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
        let inserted = chats::Entity::insert(chats::ActiveModel {
            id: Set(ChatId::generate().uuid()),
            organization_id: Set(channel.organization_id),
            channel_id: Set(channel.id),
            end_user_id: Set(user.id),
            department_id: Set(channel.department_id),
            status: Set(ChatStatus::New.as_str().into()),
            claimed_by_agent_id: Set(None),
            claimed_at: Set(None),
            last_message_at: Set(None),
            last_message_preview: Set(None),
            last_inbound_at: Set(None),
            last_agent_message_at: Set(None),
            unread_count: Set(0),
            opened_at: Set(now),
            completed_at: Set(None),
            completion_reason: Set(None),
            send_window_closed_at: Set(None),
            ticket_window_started_at: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .on_conflict(OnConflict::columns([chats::Column::ChannelId, chats::Column::EndUserId]).do_nothing().to_owned())
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
    let chat = chats::Entity::find().filter(chats::Column::EndUserId.eq(user)).one(&**write).await?;
    let mut event = NewEvent::new(kind, json!({"endUserId": user}), now).in_channel(channel.id.into());
    if let Some(chat) = chat {
        event = event.in_chat(chat.id.into());
    }
    write.append(channel.organization_id.into(), event).await?;
    Ok(())
}
