//! Channels (connected LINE and WeChat accounts), the agents associated with
//! them, the consumers writing to them (end users), the customer records they
//! can be linked to (contacts) and the passcodes that link them.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{create_all, created_at, drop_all, index, references, table_with_uuid_key, tenant, updated_at};

const TABLES: &[&str] = &["channels", "channel_agents", "contacts", "end_users", "passcodes"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut channels = table_with_uuid_key("channels");
        tenant(&mut channels, "channels");
        channels
            .col(string("kind"))
            .col(string("name"))
            .col(uuid("department_id"))
            .col(uuid_null("brand_id"))
            .col(string("status"))
            .col(string_null("icon_blob_key"))
            // LINE: identifiers, sending mode and plan.
            .col(string_null("line_channel_id"))
            .col(string_null("line_bot_user_id"))
            .col(string_null("line_basic_id"))
            .col(string_null("line_mode"))
            .col(string_null("line_plan"))
            // WeChat: identifiers.
            .col(string_null("wechat_original_id"))
            .col(string_null("wechat_app_id"))
            // Third-party secrets, AES-256-GCM sealed with the row's tenant, id and
            // column name as associated data (nonce ‖ ciphertext).
            .col(blob_null("line_channel_secret"))
            .col(blob_null("line_access_token"))
            .col(blob_null("wechat_app_secret"))
            .col(blob_null("wechat_token"))
            .col(blob_null("wechat_encoding_aes_key"))
            // Timers, in seconds; null means off.
            .col(big_integer_null("auto_ticket_after_secs"))
            .col(big_integer_null("missed_close_after_secs"))
            .col(big_integer_null("idle_close_after_secs"))
            .col(created_at())
            .col(updated_at())
            .col(timestamp_with_time_zone_null("deleted_at"));
        references(&mut channels, "channels", "department_id", "departments", ForeignKeyAction::Restrict);
        references(&mut channels, "channels", "brand_id", "brands", ForeignKeyAction::SetNull);

        let mut channel_agents = Table::create()
            .table("channel_agents")
            .col(uuid("channel_id"))
            .col(uuid("agent_id"))
            .col(created_at())
            .primary_key(Index::create().col("channel_id").col("agent_id"))
            .take();
        references(&mut channel_agents, "channel_agents", "channel_id", "channels", ForeignKeyAction::Cascade);
        references(&mut channel_agents, "channel_agents", "agent_id", "agents", ForeignKeyAction::Cascade);

        let mut contacts = table_with_uuid_key("contacts");
        tenant(&mut contacts, "contacts");
        contacts
            .col(string("name"))
            .col(string_null("email"))
            .col(string_null("phone"))
            .col(string_null("account_name"))
            .col(string_null("sla_name"))
            .col(string_null("contract_name"))
            .col(string_null("owner_name"))
            .col(created_at())
            .col(updated_at());

        let mut end_users = table_with_uuid_key("end_users");
        tenant(&mut end_users, "end_users");
        end_users
            .col(uuid("channel_id"))
            .col(string("external_id"))
            .col(string_null("display_name"))
            .col(string_null("picture_url"))
            .col(uuid_null("contact_id"))
            // Blocked by an agent: messages are kept but open nothing, nothing is sent.
            .col(timestamp_with_time_zone_null("blocked_at"))
            // The consumer blocked (unfollowed) the official account.
            .col(timestamp_with_time_zone_null("unfollowed_at"))
            .col(timestamp_with_time_zone_null("profile_fetched_at"))
            .col(created_at())
            .col(updated_at());
        references(&mut end_users, "end_users", "channel_id", "channels", ForeignKeyAction::Cascade);
        references(&mut end_users, "end_users", "contact_id", "contacts", ForeignKeyAction::SetNull);

        let mut passcodes = table_with_uuid_key("passcodes");
        tenant(&mut passcodes, "passcodes");
        passcodes
            .col(uuid("contact_id"))
            .col(string("code"))
            .col(timestamp_with_time_zone("expires_at"))
            .col(timestamp_with_time_zone_null("used_at"))
            .col(uuid_null("used_by_end_user_id"))
            .col(uuid_null("created_by_agent_id"))
            .col(created_at());
        references(&mut passcodes, "passcodes", "contact_id", "contacts", ForeignKeyAction::Cascade);
        references(&mut passcodes, "passcodes", "used_by_end_user_id", "end_users", ForeignKeyAction::SetNull);
        references(&mut passcodes, "passcodes", "created_by_agent_id", "agents", ForeignKeyAction::SetNull);

        create_all(
            manager,
            vec![channels, channel_agents, contacts, end_users, passcodes],
            vec![
                index("channels", &["organization_id"], false),
                index("channel_agents", &["agent_id"], false),
                index("contacts", &["organization_id", "name"], false),
                index("contacts", &["organization_id", "email"], false),
                index("contacts", &["organization_id", "phone"], false),
                index("end_users", &["channel_id", "external_id"], true),
                index("end_users", &["organization_id", "contact_id"], false),
                index("passcodes", &["organization_id", "code"], true),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
