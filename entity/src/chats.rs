//! The conversation between one end user and the business on one channel.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub channel_id: Uuid,
    pub end_user_id: Uuid,
    pub department_id: Uuid,
    pub status: String,
    pub claimed_by_agent_id: Option<Uuid>,
    pub claimed_at: Option<DateTimeUtc>,
    pub last_message_at: Option<DateTimeUtc>,
    pub last_message_preview: Option<String>,
    pub last_inbound_at: Option<DateTimeUtc>,
    pub last_agent_message_at: Option<DateTimeUtc>,
    pub unread_count: i32,
    pub opened_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub completion_reason: Option<String>,
    /// When the provider last refused a message because the consumer's
    /// window is closed (WeChat's 45015); a later inbound message reopens it.
    pub send_window_closed_at: Option<DateTimeUtc>,
    /// Where the messages not yet in an automatic ticket begin: set by the
    /// first customer message after the last conversion, cleared when the
    /// auto-ticket timer or the chat's completion converts them.
    pub ticket_window_started_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
