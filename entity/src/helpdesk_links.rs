//! A chat-side organization's link to a helpdesk portal.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "helpdesk_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub organization_id: Uuid,
    pub helpdesk_portal_name: String,
    pub helpdesk_organization_id: Option<Uuid>,
    pub admin_email: String,
    pub zsc_key: Vec<u8>,
    pub enabled: bool,
    pub auto_ticket_rule: String,
    pub ticket_status_on_create: String,
    pub recent_tickets_scope: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
