//! What WeChat needs: the previous EncodingAESKey while a rotation is not yet
//! confirmed, one access token per channel with a row lease for refreshing
//! it, the monthly allowance of messages per consumer outside the 48-hour
//! window, and when the provider last said a chat's window is closed.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{references, updated_at};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter().table("channels").add_column(blob_null("wechat_previous_encoding_aes_key")).take(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter().table("chats").add_column(timestamp_with_time_zone_null("send_window_closed_at")).take(),
            )
            .await?;
        let mut tokens = Table::create()
            .table("provider_tokens")
            .col(uuid("channel_id").primary_key())
            // Sealed like every channel secret; `None` until fetched, or
            // once dropped after the provider refused it.
            .col(blob_null("sealed_token"))
            .col(timestamp_with_time_zone_null("expires_at"))
            // The row lease: who refreshes the token, until when.
            .col(string_null("refresh_holder"))
            .col(timestamp_with_time_zone_null("refresh_until"))
            .col(big_integer("refreshes").default(0))
            .col(updated_at())
            .take();
        references(&mut tokens, "provider_tokens", "channel_id", "channels", ForeignKeyAction::Cascade);
        manager.create_table(tokens).await?;
        let mut allowances = Table::create()
            .table("consumer_allowances")
            .col(uuid("end_user_id"))
            .col(string("month"))
            .col(big_integer("used").default(0))
            .col(updated_at())
            .primary_key(Index::create().col("end_user_id").col("month"))
            .take();
        references(&mut allowances, "consumer_allowances", "end_user_id", "end_users", ForeignKeyAction::Cascade);
        manager.create_table(allowances).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("consumer_allowances").take()).await?;
        manager.drop_table(Table::drop().table("provider_tokens").take()).await?;
        manager.alter_table(Table::alter().table("chats").drop_column("send_window_closed_at").take()).await?;
        manager
            .alter_table(Table::alter().table("channels").drop_column("wechat_previous_encoding_aes_key").take())
            .await
    }
}
