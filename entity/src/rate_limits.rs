//! Counters of attempts that are rate limited (logins by account and by
//! address, passcodes by consumer and by organization), one row per key.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "rate_limits")]
pub struct Model {
    /// What is counted, e.g. `login:account:<email>`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// Attempts counted in the current window.
    pub hits: i32,
    pub window_started_at: DateTimeUtc,
    /// Refused until then, however the window stands.
    pub blocked_until: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
