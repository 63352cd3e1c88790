//! Automatic tickets: where each chat's not-yet-converted messages begin
//! (its ticket window, closed by the auto-ticket timer or by completion),
//! and chats that partner systems submitted, once per partner chat id.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{created_at, references};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("chats")
                    .add_column(timestamp_with_time_zone_null("ticket_window_started_at"))
                    .take(),
            )
            .await?;
        let mut submitted = Table::create()
            .table("submitted_chats")
            .col(uuid("organization_id"))
            .col(string("partner_chat_id"))
            .col(uuid("chat_id"))
            .col(created_at())
            .primary_key(Index::create().col("organization_id").col("partner_chat_id"))
            .take();
        references(&mut submitted, "submitted_chats", "organization_id", "organizations", ForeignKeyAction::Cascade);
        references(&mut submitted, "submitted_chats", "chat_id", "chats", ForeignKeyAction::Cascade);
        manager.create_table(submitted).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("submitted_chats").take()).await?;
        manager.alter_table(Table::alter().table("chats").drop_column("ticket_window_started_at").take()).await
    }
}
