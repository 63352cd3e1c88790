//! A partial index of the outbound LINE replies that wait for a reply
//! token. Every consumer's message asks whether its chat has any; before,
//! the answer read every message the chat ever had. The index holds only
//! the waiting ones (a handful at most), so a consumer's message does not
//! touch it and the question costs one probe however long the chat's
//! history.
//!
//! Its predicate is spelled with literals, not bound values: a query uses
//! it only when its own `WHERE` states the same predicate the same way
//! (`madoguchi_core`'s `WAITING_REPLY`).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX messages_waiting_reply_idx ON messages (chat_id, created_at) \
                 WHERE direction = 'OUTBOUND' AND delivery_method = 'REPLY' \
                 AND delivery_state IN ('PENDING', 'UNSENT')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name("messages_waiting_reply_idx").table("messages").to_owned()).await
    }
}
