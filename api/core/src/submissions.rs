//! Chats partner systems submit from channels we do not host (an external
//! live-chat product, say): stored finished, in the organization's partner
//! channel, once per partner chat id — then the helpdesk link's rule treats
//! them as it treats LINE and WeChat chats.

use chrono::{DateTime, Duration, Utc};
use madoguchi_entity::{channels, chats, contacts, end_users, messages, submitted_chats};
use sea_orm::sea_query::{Expr, ExprTrait, Func, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::Core;
use crate::auth::{Caller, Email, Permission};
use crate::channels::new_channel_row;
use crate::chats::{Chat, preview};
use crate::db::Write;
use crate::error::{Error, Result};
use crate::ids::{ChatId, ContactId, DepartmentId, OrganizationId};
use crate::kinds::{ChannelKind, ChatStatus, CompletionReason, DeliveryState, MessageDirection, MessageKind};

/// The most messages one submitted transcript may hold.
pub const MAX_TRANSCRIPT: usize = 1_000;
/// The longest a submitted message's text may be, in characters.
pub const MAX_TEXT_CHARS: usize = 5_000;

/// One line of a submitted transcript.
#[derive(Clone, Debug)]
pub struct SubmittedMessage {
    /// The visitor's (`true`) or an agent's.
    pub from_visitor: bool,
    pub text: String,
    pub sent_at: DateTime<Utc>,
}

/// A finished chat from a partner's channel.
#[derive(Clone, Debug)]
pub struct SubmitChat {
    /// The partner's own id of the chat: submitting it again changes nothing.
    pub partner_chat_id: String,
    /// The partner's id of the visitor: their chats share one conversation.
    pub visitor_id: String,
    pub visitor_name: Option<String>,
    /// Linked to the organization's contact with this email (made if none).
    pub visitor_email: Option<Email>,
    pub department_id: DepartmentId,
    pub transcript: Vec<SubmittedMessage>,
    /// Whether an agent took the chat (the link's `ATTENDED` / `MISSED`).
    pub attended: bool,
}

/// What a submission became.
#[derive(Clone, Debug)]
pub struct Submitted {
    pub chat: Chat,
    /// `false` when this partner chat id was submitted before.
    pub created: bool,
}

impl SubmitChat {
    /// Checks the submission; the error names the field.
    fn check(&self, now: DateTime<Utc>) -> Result<()> {
        let bounded = |field: &str, text: &str| {
            let length = text.trim().chars().count();
            if length == 0 || length > 200 {
                return Err(Error::invalid_field(field, "1 to 200 characters"));
            }
            Ok(())
        };
        bounded("partner_chat_id", &self.partner_chat_id)?;
        bounded("visitor.id", &self.visitor_id)?;
        if let Some(name) = &self.visitor_name {
            bounded("visitor.name", name)?;
        }
        if self.transcript.is_empty() || self.transcript.len() > MAX_TRANSCRIPT {
            return Err(Error::invalid_field("transcript", format!("1 to {MAX_TRANSCRIPT} messages")));
        }
        for (index, message) in self.transcript.iter().enumerate() {
            let length = message.text.trim().chars().count();
            if length == 0 || length > MAX_TEXT_CHARS {
                let field = format!("transcript[{index}].text");
                return Err(Error::invalid_field(field, format!("1 to {MAX_TEXT_CHARS} characters")));
            }
            if message.sent_at > now + Duration::minutes(5) {
                return Err(Error::invalid_field(format!("transcript[{index}].send_time"), "in the future"));
            }
        }
        Ok(())
    }
}

/// Submission use cases.
#[derive(Debug, Clone, Copy)]
pub struct Submissions<'a> {
    core: &'a Core,
}

impl<'a> Submissions<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Stores a partner's finished chat, once per partner chat id: its
    /// visitor, transcript (in time order) and department, completed as
    /// submitted; its conversion, by the helpdesk link's rule, is queued in
    /// the same transaction. Submitting the same id again returns the chat
    /// as it is, `created: false`, and changes nothing.
    pub async fn submit(&self, caller: &Caller, mut command: SubmitChat) -> Result<Submitted> {
        caller.require(Permission::WriteChats)?;
        let now = self.core.now();
        command.check(now)?;
        command.transcript.sort_by_key(|message| message.sent_at);
        let organization_id = caller.organization_id();
        self.core.organizations().find_department(organization_id, command.department_id).await.map_err(|error| {
            match error.code() {
                crate::ErrorCode::NotFound => Error::invalid_field("department_id", "no such department"),
                _ => error,
            }
        })?;
        let stored = self.core.retrying(|| self.store(organization_id, &command)).await?;
        let (chat_id, created) = match stored {
            Some(chat_id) => (chat_id, true),
            None => (self.existing(organization_id, &command.partner_chat_id).await?, false),
        };
        let chat = self.core.chats().get(caller, chat_id).await?;
        Ok(Submitted { chat, created })
    }

    async fn existing(&self, organization_id: OrganizationId, partner_chat_id: &str) -> Result<ChatId> {
        let row = submitted_chats::Entity::find_by_id((organization_id.uuid(), partner_chat_id.to_owned()))
            .one(self.core.db())
            .await?
            .ok_or_else(|| Error::not_found("submitted chat"))?;
        Ok(row.chat_id.into())
    }

    /// Writes the submission; `None` when its partner chat id is taken.
    async fn store(&self, organization_id: OrganizationId, command: &SubmitChat) -> Result<Option<ChatId>> {
        if submitted_chats::Entity::find_by_id((organization_id.uuid(), command.partner_chat_id.clone()))
            .one(self.core.db())
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let now = self.core.now();
        let mut write = self.core.write().await?;
        let channel = self.partner_channel(&write, organization_id, command.department_id, now).await?;
        let intake = self.core.intake();
        let user = intake.end_user(&mut write, &channel, command.visitor_id.trim(), now).await?;
        let contact_id = match &command.visitor_email {
            Some(email) => Some(self.contact_for(&write, organization_id, command, email, now).await?),
            None => None,
        };
        // From the row as it is now, not as read above: a contact an agent
        // linked meanwhile stays.
        end_users::Entity::update_many()
            .col_expr(
                end_users::Column::DisplayName,
                Func::coalesce([Expr::value(command.visitor_name.clone()), Expr::col(end_users::Column::DisplayName)])
                    .into(),
            )
            .col_expr(
                end_users::Column::ContactId,
                Func::coalesce([Expr::col(end_users::Column::ContactId), Expr::value(contact_id.map(ContactId::uuid))])
                    .into(),
            )
            .col_expr(end_users::Column::UpdatedAt, Expr::value(now))
            .filter(end_users::Column::Id.eq(user.id))
            .exec(&*write)
            .await?;
        let (chat, _) = intake.chat_for(&write, &channel, &user, now).await?;
        // The partner chat id is the key: of two submissions at once, the
        // second waits here for the first's commit, then writes nothing.
        let claimed = submitted_chats::Entity::insert(submitted_chats::ActiveModel {
            organization_id: Set(organization_id.uuid()),
            partner_chat_id: Set(command.partner_chat_id.clone()),
            chat_id: Set(chat.id),
            created_at: Set(now),
        })
        .on_conflict(
            OnConflict::columns([submitted_chats::Column::OrganizationId, submitted_chats::Column::PartnerChatId])
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&*write)
        .await?;
        if claimed == 0 {
            return Ok(None);
        }
        let rows = command.transcript.iter().enumerate().map(|(index, message)| {
            let direction = if message.from_visitor { MessageDirection::Inbound } else { MessageDirection::Outbound };
            let state = if message.from_visitor { DeliveryState::Received } else { DeliveryState::Sent };
            messages::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                organization_id: Set(organization_id.uuid()),
                chat_id: Set(chat.id),
                direction: Set(direction.as_str().into()),
                kind: Set(MessageKind::Text.as_str().into()),
                text: Set(Some(message.text.trim().to_owned())),
                payload: Set(None),
                sender_agent_id: Set(None),
                external_id: Set(Some(format!("{}:{index}", command.partner_chat_id))),
                is_passcode: Set(false),
                delivery_state: Set(state.as_str().into()),
                delivery_method: Set(None),
                delivery_error: Set(None),
                reply_token: Set(None),
                reply_token_used_at: Set(None),
                created_at: Set(message.sent_at),
                sent_at: Set((!message.from_visitor).then_some(message.sent_at)),
                delivery_job_id: Set(None),
            }
        });
        messages::Entity::insert_many(rows).exec_without_returning(&*write).await?;
        let (first, last) = (&command.transcript[0], &command.transcript[command.transcript.len() - 1]);
        let last_from = |visitor: bool| {
            command
                .transcript
                .iter()
                .rev()
                .find(|message| message.from_visitor == visitor)
                .map(|message| message.sent_at)
        };
        chats::Entity::update_many()
            .col_expr(chats::Column::Status, Expr::value(ChatStatus::Completed.as_str()))
            .col_expr(chats::Column::DepartmentId, Expr::value(command.department_id.uuid()))
            .col_expr(chats::Column::ClaimedByAgentId, Expr::value(Option::<uuid::Uuid>::None))
            .col_expr(chats::Column::OpenedAt, Expr::value(first.sent_at))
            .col_expr(chats::Column::LastMessageAt, Expr::value(last.sent_at))
            .col_expr(chats::Column::LastMessagePreview, Expr::value(preview(&last.text)))
            .col_expr(
                chats::Column::LastInboundAt,
                Func::coalesce([Expr::value(last_from(true)), Expr::col(chats::Column::LastInboundAt)]).into(),
            )
            .col_expr(
                chats::Column::LastAgentMessageAt,
                Func::coalesce([Expr::value(last_from(false)), Expr::col(chats::Column::LastAgentMessageAt)]).into(),
            )
            .col_expr(chats::Column::CompletedAt, Expr::value(now))
            .col_expr(chats::Column::CompletionReason, Expr::value(CompletionReason::Submitted.as_str()))
            .col_expr(chats::Column::TicketWindowStartedAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(chats::Column::UpdatedAt, Expr::value(now))
            .filter(chats::Column::Id.eq(chat.id))
            .exec(&*write)
            .await?;
        let chat_id: ChatId = chat.id.into();
        self.core.chats().append_chat_event(&mut write, chat_id, "chat.completed", now).await?;
        let chat = chats::Entity::find_by_id(chat.id).one(&*write).await?.ok_or_else(|| Error::not_found("chat"))?;
        let window = (first.sent_at, last.sent_at);
        crate::timers::queue_conversion_in(&mut write, &chat, window, command.attended, false, now).await?;
        write.commit().await?;
        Ok(Some(chat_id))
    }

    /// The organization's partner channel, made on its first submission
    /// (its id derives from the organization's, so two first submissions at
    /// once make one).
    async fn partner_channel(
        &self,
        write: &Write<'_>,
        organization_id: OrganizationId,
        department_id: DepartmentId,
        now: DateTime<Utc>,
    ) -> Result<channels::Model> {
        let id = uuid::Uuid::new_v5(&organization_id.uuid(), b"madoguchi partner channel");
        let row = new_channel_row(id, organization_id, ChannelKind::Partner, "Partner systems", department_id, now);
        channels::Entity::insert(row)
            .on_conflict(OnConflict::column(channels::Column::Id).do_nothing().to_owned())
            .exec_without_returning(&**write)
            .await?;
        channels::Entity::find_by_id(id).one(&**write).await?.ok_or_else(|| Error::not_found("partner channel"))
    }

    /// The organization's contact with this email (any case), made if none.
    async fn contact_for(
        &self,
        write: &Write<'_>,
        organization_id: OrganizationId,
        command: &SubmitChat,
        email: &Email,
        now: DateTime<Utc>,
    ) -> Result<ContactId> {
        let existing = contacts::Entity::find()
            .filter(contacts::Column::OrganizationId.eq(organization_id.uuid()))
            .filter(Expr::from(Func::lower(Expr::col(contacts::Column::Email))).eq(email.as_str().to_lowercase()))
            .one(&**write)
            .await?;
        if let Some(contact) = existing {
            return Ok(contact.id.into());
        }
        let id = ContactId::generate();
        contacts::Entity::insert(contacts::ActiveModel {
            id: Set(id.uuid()),
            organization_id: Set(organization_id.uuid()),
            name: Set(command.visitor_name.clone().unwrap_or_else(|| command.visitor_id.clone())),
            email: Set(Some(email.as_str().to_owned())),
            phone: Set(None),
            account_name: Set(None),
            sla_name: Set(None),
            contract_name: Set(None),
            owner_name: Set(None),
            created_at: Set(now),
            updated_at: Set(now),
        })
        .exec_without_returning(&**write)
        .await?;
        Ok(id)
    }
}
