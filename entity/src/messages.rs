//! One inbound or outbound message in a chat, with its delivery state.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub chat_id: Uuid,
    pub direction: String,
    pub kind: String,
    #[sea_orm(column_type = "Text")]
    pub text: Option<String>,
    pub payload: Option<Json>,
    pub sender_agent_id: Option<Uuid>,
    pub external_id: Option<String>,
    pub is_passcode: bool,
    pub delivery_state: String,
    pub delivery_method: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub delivery_error: Option<String>,
    pub reply_token: Option<String>,
    pub reply_token_used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// The delivery job whose attempt holds the message while it is `SENDING`.
    pub delivery_job_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
