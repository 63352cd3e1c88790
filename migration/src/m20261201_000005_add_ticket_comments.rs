//! Agents' comments on tickets: the portal's own agents', and those of a
//! linked chat side whose mapping lets it write.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{created_at, index, references, table_with_uuid_key, tenant};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut comments = table_with_uuid_key("ticket_comments");
        // The ticket's portal.
        tenant(&mut comments, "ticket_comments");
        comments
            .col(uuid("ticket_id"))
            // Who wrote it: an agent of the portal, or of a linked chat side.
            .col(uuid("author_organization_id"))
            .col(uuid_null("author_agent_id"))
            .col(text("body"))
            .col(created_at());
        references(&mut comments, "ticket_comments", "ticket_id", "tickets", ForeignKeyAction::Cascade);
        references(&mut comments, "ticket_comments", "author_agent_id", "agents", ForeignKeyAction::SetNull);
        manager.create_table(comments).await?;
        manager.create_index(index("ticket_comments", &["ticket_id", "created_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("ticket_comments").take()).await
    }
}
