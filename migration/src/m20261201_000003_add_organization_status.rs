//! Organizations can be disabled by whoever runs the platform: their
//! webhooks, sessions and keys stop working, their data stays.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table("organizations").add_column(timestamp_with_time_zone_null("disabled_at")).take(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table("organizations").drop_column("disabled_at").take()).await
    }
}
