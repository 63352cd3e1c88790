//! What the review's fixes need: which delivery attempt holds an outbound
//! message (so one chat's answers leave once), a token version per agent (so
//! revoking sessions is one increment), and counters for attempts that are
//! rate limited (logins, passcodes).

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::index;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager.alter_table(Table::alter().table("messages").add_column(uuid_null("delivery_job_id")).take()).await?;
        manager
            .alter_table(Table::alter().table("agents").add_column(integer("token_version").default(0)).take())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("rate_limits")
                    .col(string("key").primary_key())
                    .col(integer("hits"))
                    .col(timestamp_with_time_zone("window_started_at"))
                    .col(timestamp_with_time_zone_null("blocked_until"))
                    .take(),
            )
            .await?;
        manager.create_index(index("messages", &["delivery_job_id"], false)).await?;
        manager.create_index(index("rate_limits", &["window_started_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("rate_limits").take()).await?;
        manager.drop_index(Index::drop().name("messages_delivery_job_id_idx").table("messages").to_owned()).await?;
        manager.alter_table(Table::alter().table("agents").drop_column("token_version").take()).await?;
        manager.alter_table(Table::alter().table("messages").drop_column("delivery_job_id").take()).await
    }
}
