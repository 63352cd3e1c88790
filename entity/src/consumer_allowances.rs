//! Messages sent to one consumer outside the provider's free window, per
//! calendar month in the provider's time zone (WeChat: 4 after 48 hours).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "consumer_allowances")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub end_user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub month: String,
    pub used: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
