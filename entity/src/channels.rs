//! A connected LINE or WeChat official account. Secret columns hold AES-256-GCM sealed bytes.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "channels")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub organization_id: Uuid,
    pub kind: String,
    pub name: String,
    pub department_id: Uuid,
    pub brand_id: Option<Uuid>,
    pub status: String,
    pub icon_blob_key: Option<String>,
    pub line_channel_id: Option<String>,
    pub line_bot_user_id: Option<String>,
    pub line_basic_id: Option<String>,
    pub line_mode: Option<String>,
    pub line_plan: Option<String>,
    pub wechat_original_id: Option<String>,
    pub wechat_app_id: Option<String>,
    pub line_channel_secret: Option<Vec<u8>>,
    pub line_access_token: Option<Vec<u8>>,
    pub wechat_app_secret: Option<Vec<u8>>,
    pub wechat_token: Option<Vec<u8>>,
    pub wechat_encoding_aes_key: Option<Vec<u8>>,
    /// The key before a rotation, still accepted until the new one is confirmed.
    pub wechat_previous_encoding_aes_key: Option<Vec<u8>>,
    pub auto_ticket_after_secs: Option<i64>,
    pub missed_close_after_secs: Option<i64>,
    pub idle_close_after_secs: Option<i64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
