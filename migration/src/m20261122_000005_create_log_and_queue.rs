//! The append-only event log, the durable work queue (outbound deliveries,
//! follow-up work, timers), webhook receipts for de-duplication, and push
//! usage per channel and month.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{create_all, created_at, drop_all, index, references, table_with_uuid_key, tenant, updated_at};

const TABLES: &[&str] = &["events", "jobs", "webhook_receipts", "push_usage"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut events = Table::create().table("events").col(big_pk_auto("id")).take();
        tenant(&mut events, "events");
        events
            // Gap-free, commit-ordered cursor within the organization.
            .col(big_integer("seq"))
            .col(string("kind"))
            .col(uuid_null("channel_id"))
            .col(uuid_null("chat_id"))
            .col(json_binary("payload"))
            .col(created_at());

        let mut jobs = table_with_uuid_key("jobs");
        jobs.col(uuid_null("organization_id"))
            .col(string("kind"))
            .col(string("status"))
            .col(json_binary("payload"))
            .col(uuid_null("channel_id"))
            .col(uuid_null("message_id"))
            // Chosen before the first attempt and kept across retries and restarts
            // (LINE's X-Line-Retry-Key).
            .col(uuid_null("retry_key"))
            // Optional de-duplication: one job per key.
            .col(string_null("dedupe_key"))
            .col(integer("attempts").default(0))
            .col(timestamp_with_time_zone("run_at"))
            .col(timestamp_with_time_zone_null("locked_until"))
            .col(string_null("locked_by"))
            .col(text_null("last_error"))
            .col(created_at())
            .col(updated_at())
            .col(timestamp_with_time_zone_null("finished_at"));
        references(&mut jobs, "jobs", "organization_id", "organizations", ForeignKeyAction::Cascade);

        let mut receipts = table_with_uuid_key("webhook_receipts");
        tenant(&mut receipts, "webhook_receipts");
        receipts
            .col(uuid("channel_id"))
            .col(string("provider_event_id"))
            .col(string("event_type"))
            .col(json_binary("raw"))
            .col(timestamp_with_time_zone("received_at"));
        references(&mut receipts, "webhook_receipts", "channel_id", "channels", ForeignKeyAction::Cascade);

        let mut push_usage = Table::create()
            .table("push_usage")
            .col(uuid("channel_id"))
            .col(string("month"))
            .col(big_integer("pushed").default(0))
            .col(big_integer_null("reconciled_total"))
            .col(timestamp_with_time_zone_null("reconciled_at"))
            .col(updated_at())
            .primary_key(Index::create().col("channel_id").col("month"))
            .take();
        references(&mut push_usage, "push_usage", "channel_id", "channels", ForeignKeyAction::Cascade);

        create_all(
            manager,
            vec![events, jobs, receipts, push_usage],
            vec![
                index("events", &["organization_id", "seq"], true),
                index("jobs", &["status", "run_at"], false),
                index("jobs", &["dedupe_key"], true),
                index("jobs", &["message_id"], false),
                index("webhook_receipts", &["channel_id", "provider_event_id"], true),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
