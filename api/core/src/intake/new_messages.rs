//! Consumers' messages, stored set-based: however many a transaction
//! carries, their end users, chats and messages are found or inserted, and
//! their chats updated, by a few statements each — not a few per message.
//!
//! Every rule that concurrent transactions can race on is settled by the
//! database: end users, chats and messages are inserted with `ON CONFLICT DO
//! NOTHING` on their unique keys (a row a concurrent transaction inserted
//! first is read back, not inserted twice), chats are locked in id order
//! before they change, and the update that reopens a completed chat decides
//! so from the row it changes.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use madoguchi_entity::{attachments, channels, chats, end_users, messages};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait, Func, LockType, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use crate::chats::{Attachment, Message, append_message_event, preview};
use crate::db::Write;
use crate::error::{Error, Result};
use crate::ids::{AttachmentId, ChatId, EndUserId, MessageId};
use crate::intake::{InboundMessage, Intake};
use crate::jobs::NewJob;
use crate::kinds::{AttachmentStatus, ChatStatus, DeliveryState, MessageDirection, MessageKind};
use crate::providers;

/// Rows per multi-row insert: the widest table here (chats, 20 columns)
/// stays far below SQLite's 32,766 and PostgreSQL's 65,535 bound parameters.
const ROWS_PER_STATEMENT: usize = 500;

/// `rows` split into multi-row inserts of at most [`ROWS_PER_STATEMENT`],
/// in order; moved, not copied (a row carries the event's JSON).
pub(super) fn statements<T>(rows: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut rows = rows.into_iter();
    std::iter::from_fn(move || {
        let statement: Vec<T> = rows.by_ref().take(ROWS_PER_STATEMENT).collect();
        (!statement.is_empty()).then_some(statement)
    })
}

/// A consumer's message whose event is new (its receipt was just inserted).
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewMessage<'a> {
    pub(crate) channel: &'a channels::Model,
    /// The consumer's id at the provider.
    pub(crate) consumer: &'a str,
    pub(crate) reply_token: Option<&'a str>,
    pub(crate) message: &'a InboundMessage,
}

impl NewMessage<'_> {
    fn user_key(&self) -> (uuid::Uuid, &str) {
        (self.channel.id, self.consumer)
    }

    /// The end user this message comes from, among `users`.
    fn user<'u>(&self, users: &'u EndUsers) -> &'u end_users::Model {
        &users[&(self.channel.id, self.consumer.to_owned())]
    }
}

/// End users by channel and consumer.
type EndUsers = HashMap<(uuid::Uuid, String), end_users::Model>;

/// What a chat's new messages change.
struct ChatChange<'a> {
    channel: &'a channels::Model,
    /// The messages as stored, in the order they came.
    messages: Vec<Message>,
    /// Messages that count as unread (passcodes do not).
    unread: i32,
    /// The preview of the last message that is not a passcode.
    preview: Option<String>,
    /// Whether a new message carries a reply token.
    reply_token: bool,
}

impl<'a> Intake<'a> {
    /// Stores consumers' messages whose events are new, in `write`: the end
    /// users (a new one gets its profile fetched), the chats (a completed
    /// one reopens), the messages (one already stored under the same
    /// provider id is skipped), attachments and their download jobs,
    /// passcodes redeemed, the chats' counters and previews, their timers,
    /// LINE answers waiting for a token, and the events: for each chat its
    /// messages' events, then one event with the chat as it now stands.
    ///
    /// A blocked consumer's messages are kept but open nothing and notify
    /// no one.
    pub(crate) async fn store_messages(
        &self,
        write: &mut Write<'_>,
        new: &[NewMessage<'_>],
        now: DateTime<Utc>,
    ) -> Result<()> {
        if new.is_empty() {
            return Ok(());
        }
        let mut users = self.end_users_of(write, new, now).await?;
        // A consumer who writes follows again.
        let unfollowed: Vec<uuid::Uuid> =
            users.values().filter(|user| user.unfollowed_at.is_some()).map(|user| user.id).collect();
        if !unfollowed.is_empty() {
            end_users::Entity::update_many()
                .col_expr(end_users::Column::UnfollowedAt, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
                .filter(end_users::Column::Id.is_in(unfollowed))
                .exec(&**write)
                .await?;
            users.values_mut().for_each(|user| user.unfollowed_at = None);
        }
        let chats = chats_of(write, new, &users, now).await?;

        // Passcodes are rare and rate-limited: checked one by one.
        let mut passcodes = vec![false; new.len()];
        let mut linked = Vec::new();
        for (passcode, item) in passcodes.iter_mut().zip(new) {
            if let (Some(text), MessageKind::Text) = (&item.message.text, item.message.kind) {
                let user = item.user(&users);
                *passcode = self.redeem_passcode(write, item.channel, user, text, now).await?;
                if *passcode {
                    linked.push(user.id);
                }
            }
        }

        let ids: Vec<MessageId> = new.iter().map(|_| MessageId::generate()).collect();
        let rows = new.iter().zip(&ids).zip(&passcodes).map(|((item, id), passcode)| {
            let chat = &chats[&item.user(&users).id].0;
            message_row(item, *id, chat.id, *passcode, now)
        });
        let mut inserted: HashSet<uuid::Uuid> = HashSet::with_capacity(new.len());
        for chunk in statements(rows.collect()) {
            inserted.extend(
                messages::Entity::insert_many(chunk)
                    .on_conflict(
                        OnConflict::columns([messages::Column::ChatId, messages::Column::ExternalId])
                            .do_nothing()
                            .to_owned(),
                    )
                    .exec_with_returning_keys(&**write)
                    .await?,
            );
        }

        // Attachments of the stored messages, and their downloads.
        let mut changes: BTreeMap<usize, (uuid::Uuid, ChatChange<'_>)> = BTreeMap::new();
        let mut order: HashMap<uuid::Uuid, usize> = HashMap::new();
        let mut attachment_rows = Vec::new();
        for (index, ((item, id), passcode)) in new.iter().zip(&ids).zip(&passcodes).enumerate() {
            if !inserted.contains(&id.uuid()) {
                continue;
            }
            let user = item.user(&users);
            let chat = &chats[&user.id].0;
            let kind = item.message.kind;
            let mut message_attachments = Vec::new();
            if let Some(media) = &item.message.media {
                let attachment = Attachment {
                    id: AttachmentId::generate(),
                    kind,
                    status: AttachmentStatus::Pending,
                    content_type: None,
                    size_bytes: None,
                    file_name: media.file_name.clone(),
                };
                attachment_rows.push(attachment_row(item.channel, *id, &attachment, now));
                if let Some(job_kind) = providers::media_job(item.channel, attachment.id) {
                    let mut job = NewJob::of_channel(job_kind, item.channel, now);
                    job.message_id = Some(*id);
                    write.enqueue(job, now).await?;
                }
                message_attachments.push(attachment);
            }
            if user.blocked_at.is_some() {
                continue;
            }
            let position = *order.entry(chat.id).or_insert(index);
            let (_, change) = changes.entry(position).or_insert_with(|| {
                (
                    chat.id,
                    ChatChange {
                        channel: item.channel,
                        messages: Vec::new(),
                        unread: 0,
                        preview: None,
                        reply_token: false,
                    },
                )
            });
            if !*passcode {
                change.unread += 1;
                change.preview = Some(preview_of(kind, item.message.text.as_deref()));
            }
            change.reply_token |= item.reply_token.is_some();
            change.messages.push(Message {
                id: *id,
                chat_id: chat.id.into(),
                direction: MessageDirection::Inbound,
                kind,
                text: item.message.text.clone(),
                payload: item.message.payload.clone(),
                sender_agent_id: None,
                is_passcode: *passcode,
                delivery_state: DeliveryState::Received,
                delivery_method: None,
                delivery_error: None,
                attachments: message_attachments,
                created_at: now,
                sent_at: None,
            });
        }
        for chunk in statements(attachment_rows) {
            attachments::Entity::insert_many(chunk).exec_without_returning(&**write).await?;
        }
        if changes.is_empty() {
            return Ok(());
        }

        let updated = update_chats(write, changes.values(), now).await?;
        if !linked.is_empty() {
            // Redeeming linked these consumers to contacts.
            for user in end_users::Entity::find().filter(end_users::Column::Id.is_in(linked)).all(&**write).await? {
                users.insert((user.channel_id, user.external_id.clone()), user);
            }
        }
        let users_by_id: HashMap<uuid::Uuid, &end_users::Model> = users.values().map(|user| (user.id, user)).collect();
        let mut answerable: BTreeMap<uuid::Uuid, (&channels::Model, Vec<ChatId>)> = BTreeMap::new();
        let chats_service = self.core.chats();
        // Timers are armed in chat id order, as every other arming is: their
        // jobs' rows are locked by the upsert.
        let mut timed: BTreeMap<uuid::Uuid, (&channels::Model, chats::Model)> = BTreeMap::new();
        for (chat_id, change) in changes.into_values() {
            let row = updated.get(&chat_id).cloned().ok_or_else(|| Error::not_found("chat"))?;
            let (before, created) = &chats[&row.end_user_id];
            let kind_of_change = if *created {
                "chat.created"
            } else if before.status == ChatStatus::Completed.as_str() {
                "chat.reopened"
            } else {
                "chat.updated"
            };
            let channel = change.channel;
            for message in &change.messages {
                append_message_event(
                    write,
                    channel.organization_id.into(),
                    channel.id.into(),
                    "message.created",
                    message,
                    now,
                )
                .await?;
            }
            if crate::timers::has_timers(channel) {
                timed.insert(chat_id, (channel, row.clone()));
            }
            if change.reply_token {
                answerable.entry(channel.id).or_insert_with(|| (channel, Vec::new())).1.push(chat_id.into());
            }
            let user = users_by_id.get(&row.end_user_id).map(|user| (*user).clone());
            let user = user.ok_or_else(|| Error::not_found("end user"))?;
            chats_service.append_chat_event_of(write, row, user, kind_of_change, now).await?;
        }
        for (channel, row) in timed.values() {
            crate::timers::arm_for(write, channel, row, now).await?;
        }
        // What the provider does when a consumer writes (LINE: answers
        // waiting for a reply token can go now).
        for (channel, chats) in answerable.into_values() {
            self.core.delivery().after_inbound_messages(write, channel, &chats, now).await?;
        }
        Ok(())
    }

    /// Finds or inserts the end users `new` comes from, keyed by channel and
    /// consumer; each new one gets its profile fetched.
    async fn end_users_of(
        &self,
        write: &mut Write<'_>,
        new: &[NewMessage<'_>],
        now: DateTime<Utc>,
    ) -> Result<EndUsers> {
        // Sorted: one lock order for every transaction inserting end users.
        let wanted: BTreeMap<(uuid::Uuid, &str), &channels::Model> =
            new.iter().map(|item| (item.user_key(), item.channel)).collect();
        let find = |keys: Vec<(uuid::Uuid, &str)>| {
            end_users::Entity::find().filter(per_channel(
                keys,
                end_users::Column::ChannelId,
                end_users::Column::ExternalId,
            ))
        };
        let mut found: EndUsers = find(wanted.keys().copied().collect())
            .all(&**write)
            .await?
            .into_iter()
            .map(|user| ((user.channel_id, user.external_id.clone()), user))
            .collect();
        let missing: Vec<(&(uuid::Uuid, &str), &&channels::Model)> = wanted
            .iter()
            .filter(|((channel_id, consumer), _)| !found.contains_key(&(*channel_id, (*consumer).to_owned())))
            .collect();
        if missing.is_empty() {
            return Ok(found);
        }
        let rows: Vec<end_users::ActiveModel> = missing
            .iter()
            .map(|((_, consumer), channel)| new_end_user_row(channel, EndUserId::generate(), consumer, now))
            .collect();
        for chunk in statements(rows) {
            // A concurrent transaction inserting the same consumer makes
            // this one wait for its commit, then skip the row.
            let inserted = end_users::Entity::insert_many(chunk)
                .on_conflict(
                    OnConflict::columns([end_users::Column::ChannelId, end_users::Column::ExternalId])
                        .do_nothing()
                        .to_owned(),
                )
                .exec_with_returning(&**write)
                .await?;
            for user in inserted {
                let channel = wanted[&(user.channel_id, user.external_id.as_str())];
                if let Some(kind) = providers::profile_job(channel, user.id.into()) {
                    write.enqueue(NewJob::of_channel(kind, channel, now), now).await?;
                }
                found.insert((user.channel_id, user.external_id.clone()), user);
            }
        }
        let still_missing: Vec<(uuid::Uuid, &str)> = missing
            .iter()
            .map(|(key, _)| **key)
            .filter(|(channel_id, consumer)| !found.contains_key(&(*channel_id, (*consumer).to_owned())))
            .collect();
        if !still_missing.is_empty() {
            let expected = still_missing.len();
            let read = find(still_missing).all(&**write).await?;
            if read.len() != expected {
                return Err(Error::not_found("end user"));
            }
            found.extend(read.into_iter().map(|user| ((user.channel_id, user.external_id.clone()), user)));
        }
        Ok(found)
    }
}

/// Finds or opens the chats of `users` on their channels, locked for this
/// transaction in id order; keyed by end user, with whether this opened it.
async fn chats_of(
    write: &Write<'_>,
    new: &[NewMessage<'_>],
    users: &EndUsers,
    now: DateTime<Utc>,
) -> Result<HashMap<uuid::Uuid, (chats::Model, bool)>> {
    let channels: HashMap<uuid::Uuid, &channels::Model> =
        new.iter().map(|item| (item.channel.id, item.channel)).collect();
    // A chat is one consumer's on one channel: found through the unique
    // (channel, end user) index, never by scanning the chats. Locked (on
    // PostgreSQL; SQLite's transaction holds the database) so that whether
    // a chat was completed is still true when it is reopened.
    let find = |users: Vec<&end_users::Model>| {
        let keys = users.into_iter().map(|user| (user.channel_id, user.id));
        chats::Entity::find()
            .filter(per_channel(keys, chats::Column::ChannelId, chats::Column::EndUserId))
            .order_by_asc(chats::Column::Id)
            .lock(LockType::NoKeyUpdate)
    };
    let mut found: HashMap<uuid::Uuid, (chats::Model, bool)> = find(users.values().collect())
        .all(&**write)
        .await?
        .into_iter()
        .map(|chat| (chat.end_user_id, (chat, false)))
        .collect();
    let missing: Vec<&end_users::Model> = {
        let mut missing: Vec<&end_users::Model> = users.values().filter(|user| !found.contains_key(&user.id)).collect();
        missing.sort_unstable_by_key(|user| user.id);
        missing
    };
    if missing.is_empty() {
        return Ok(found);
    }
    let rows: Vec<chats::ActiveModel> = missing
        .iter()
        .map(|user| {
            let channel = channels[&user.channel_id];
            new_chat_row(channel, user.id, now)
        })
        .collect();
    for chunk in statements(rows) {
        let inserted = chats::Entity::insert_many(chunk)
            .on_conflict(
                OnConflict::columns([chats::Column::ChannelId, chats::Column::EndUserId]).do_nothing().to_owned(),
            )
            .exec_with_returning(&**write)
            .await?;
        found.extend(inserted.into_iter().map(|chat| (chat.end_user_id, (chat, true))));
    }
    let still_missing: Vec<&end_users::Model> =
        missing.into_iter().filter(|user| !found.contains_key(&user.id)).collect();
    if !still_missing.is_empty() {
        let expected = still_missing.len();
        let read = find(still_missing).all(&**write).await?;
        if read.len() != expected {
            return Err(Error::not_found("chat"));
        }
        found.extend(read.into_iter().map(|chat| (chat.end_user_id, (chat, false))));
    }
    Ok(found)
}

/// Rows whose `channel` and `key` are one of `keys`, as one condition: per
/// channel, `channel = … AND key IN (…)`, so each channel's rows are found
/// through its (channel, key) unique index.
fn per_channel<K: Into<sea_orm::Value>>(
    keys: impl IntoIterator<Item = (uuid::Uuid, K)>,
    channel: impl ColumnTrait,
    key: impl ColumnTrait,
) -> Condition {
    let mut by_channel: BTreeMap<uuid::Uuid, Vec<K>> = BTreeMap::new();
    for (channel_id, value) in keys {
        by_channel.entry(channel_id).or_default().push(value);
    }
    by_channel.into_iter().fold(Condition::any(), |any, (channel_id, values)| {
        any.add(Condition::all().add(channel.eq(channel_id)).add(key.is_in(values)))
    })
}

/// Updates every changed chat in one statement and returns the rows as it
/// leaves them, by id. A completed chat is reopened by the same statement,
/// from the row's own status.
async fn update_chats<'c>(
    write: &Write<'_>,
    changes: impl Iterator<Item = &'c (uuid::Uuid, ChatChange<'c>)>,
    now: DateTime<Utc>,
) -> Result<HashMap<uuid::Uuid, chats::Model>> {
    let id = || Expr::col(chats::Column::Id);
    let mut ids = Vec::new();
    let mut unread = Vec::new();
    let mut previews = Vec::new();
    for (chat_id, change) in changes {
        ids.push(*chat_id);
        if change.unread > 0 {
            unread.push((*chat_id, change.unread));
        }
        if let Some(preview) = &change.preview {
            previews.push((*chat_id, preview.clone()));
        }
    }
    let completed = || Expr::col(chats::Column::Status).eq(ChatStatus::Completed.as_str());
    let mut update = chats::Entity::update_many()
        .col_expr(chats::Column::LastMessageAt, Expr::value(now))
        .col_expr(chats::Column::LastInboundAt, Expr::value(now))
        .col_expr(chats::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            chats::Column::Status,
            Expr::case(completed(), Expr::value(ChatStatus::New.as_str()))
                .finally(Expr::col(chats::Column::Status))
                .into(),
        )
        .col_expr(
            chats::Column::OpenedAt,
            Expr::case(completed(), Expr::value(now)).finally(Expr::col(chats::Column::OpenedAt)).into(),
        )
        .col_expr(
            chats::Column::CompletedAt,
            Expr::case(completed(), Expr::value(Option::<DateTime<Utc>>::None))
                .finally(Expr::col(chats::Column::CompletedAt))
                .into(),
        )
        .col_expr(
            chats::Column::CompletionReason,
            Expr::case(completed(), Expr::value(Option::<String>::None))
                .finally(Expr::col(chats::Column::CompletionReason))
                .into(),
        );
    if !unread.is_empty() {
        // The first customer message after a conversion opens the next
        // ticket window; passcodes neither count nor open one.
        let counted: Vec<uuid::Uuid> = unread.iter().map(|(chat_id, _)| *chat_id).collect();
        let added: Expr = unread
            .into_iter()
            .fold(CaseStatement::new(), |case, (chat_id, count)| case.case(id().eq(chat_id), Expr::value(count)))
            .finally(Expr::value(0))
            .into();
        update =
            update.col_expr(chats::Column::UnreadCount, Expr::col(chats::Column::UnreadCount).add(added)).col_expr(
                chats::Column::TicketWindowStartedAt,
                Expr::case(
                    id().is_in(counted),
                    Func::coalesce([Expr::col(chats::Column::TicketWindowStartedAt), Expr::value(now)]),
                )
                .finally(Expr::col(chats::Column::TicketWindowStartedAt))
                .into(),
            );
    }
    if !previews.is_empty() {
        let preview = previews
            .into_iter()
            .fold(CaseStatement::new(), |case, (chat_id, preview)| case.case(id().eq(chat_id), Expr::value(preview)))
            .finally(Expr::col(chats::Column::LastMessagePreview));
        update = update.col_expr(chats::Column::LastMessagePreview, preview.into());
    }
    Ok(update
        .filter(chats::Column::Id.is_in(ids))
        .exec_with_returning(&**write)
        .await?
        .into_iter()
        .map(|chat| (chat.id, chat))
        .collect())
}

/// A new end user of `channel`: `consumer` at the provider.
pub(super) fn new_end_user_row(
    channel: &channels::Model,
    id: EndUserId,
    consumer: &str,
    now: DateTime<Utc>,
) -> end_users::ActiveModel {
    end_users::ActiveModel {
        id: Set(id.uuid()),
        organization_id: Set(channel.organization_id),
        channel_id: Set(channel.id),
        external_id: Set(consumer.to_owned()),
        display_name: Set(None),
        picture_url: Set(None),
        contact_id: Set(None),
        blocked_at: Set(None),
        unfollowed_at: Set(None),
        profile_fetched_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// A new chat between an end user and `channel`, in the channel's department.
pub(super) fn new_chat_row(
    channel: &channels::Model,
    end_user_id: uuid::Uuid,
    now: DateTime<Utc>,
) -> chats::ActiveModel {
    chats::ActiveModel {
        id: Set(ChatId::generate().uuid()),
        organization_id: Set(channel.organization_id),
        channel_id: Set(channel.id),
        end_user_id: Set(end_user_id),
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
    }
}

/// What a chat list shows of a message.
fn preview_of(kind: MessageKind, text: Option<&str>) -> String {
    match (text, kind) {
        (Some(text), MessageKind::Text) => preview(text),
        _ => format!("[{}]", kind.as_str().to_lowercase()),
    }
}

fn message_row(
    item: &NewMessage<'_>,
    id: MessageId,
    chat_id: uuid::Uuid,
    passcode: bool,
    now: DateTime<Utc>,
) -> messages::ActiveModel {
    messages::ActiveModel {
        id: Set(id.uuid()),
        organization_id: Set(item.channel.organization_id),
        chat_id: Set(chat_id),
        direction: Set(MessageDirection::Inbound.as_str().into()),
        kind: Set(item.message.kind.as_str().into()),
        text: Set(item.message.text.clone()),
        payload: Set(item.message.payload.clone()),
        sender_agent_id: Set(None),
        external_id: Set(item.message.external_id.clone()),
        is_passcode: Set(passcode),
        delivery_state: Set(DeliveryState::Received.as_str().into()),
        delivery_method: Set(None),
        delivery_error: Set(None),
        reply_token: Set(item.reply_token.map(str::to_owned)),
        reply_token_used_at: Set(None),
        created_at: Set(now),
        sent_at: Set(None),
        delivery_job_id: Set(None),
    }
}

fn attachment_row(
    channel: &channels::Model,
    message_id: MessageId,
    attachment: &Attachment,
    now: DateTime<Utc>,
) -> attachments::ActiveModel {
    attachments::ActiveModel {
        id: Set(attachment.id.uuid()),
        organization_id: Set(channel.organization_id),
        message_id: Set(message_id.uuid()),
        kind: Set(attachment.kind.as_str().into()),
        status: Set(attachment.status.as_str().into()),
        content_type: Set(None),
        size_bytes: Set(None),
        blob_key: Set(None),
        file_name: Set(attachment.file_name.clone()),
        error: Set(None),
        created_at: Set(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_go_in_statements_of_at_most_the_limit_in_order() {
        let rows: Vec<usize> = (0..2 * ROWS_PER_STATEMENT + 1).collect();
        let split: Vec<Vec<usize>> = statements(rows.clone()).collect();
        let sizes: Vec<usize> = split.iter().map(Vec::len).collect();
        assert_eq!(sizes, [ROWS_PER_STATEMENT, ROWS_PER_STATEMENT, 1]);
        assert_eq!(split.concat(), rows);
        assert_eq!(statements(Vec::<usize>::new()).count(), 0, "no rows, no statement");
    }
}
