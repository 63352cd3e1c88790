//! The signatures WeChat's callbacks came with, for the five minutes a
//! timestamp is accepted: a signature (which does not cover a plaintext
//! body) used again with another body is a replay.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{index, references};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut nonces = Table::create()
            .table("callback_nonces")
            .col(uuid("channel_id"))
            .col(string("timestamp"))
            .col(string("nonce"))
            .col(string("body_digest"))
            .col(timestamp_with_time_zone("received_at"))
            .primary_key(Index::create().col("channel_id").col("timestamp").col("nonce"))
            .take();
        references(&mut nonces, "callback_nonces", "channel_id", "channels", ForeignKeyAction::Cascade);
        manager.create_table(nonces).await?;
        manager.create_index(index("callback_nonces", &["received_at"], false)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("callback_nonces").take()).await
    }
}
