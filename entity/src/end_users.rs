//! A consumer identity on one channel (LINE userId, WeChat OpenID).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "end_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub channel_id: Uuid,
    pub external_id: String,
    pub display_name: Option<String>,
    pub picture_url: Option<String>,
    pub contact_id: Option<Uuid>,
    pub blocked_at: Option<DateTimeUtc>,
    pub unfollowed_at: Option<DateTimeUtc>,
    pub profile_fetched_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
