//! A channel's access token fetched from its provider (WeChat), sealed, with
//! the row lease that lets one process at a time refresh it.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "provider_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub channel_id: Uuid,
    pub sealed_token: Option<Vec<u8>>,
    pub expires_at: Option<DateTimeUtc>,
    pub refresh_holder: Option<String>,
    pub refresh_until: Option<DateTimeUtc>,
    /// How many tokens were fetched in all.
    pub refreshes: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
