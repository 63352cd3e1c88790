//! Chats, their messages and the messages' attachments.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{create_all, created_at, drop_all, index, references, table_with_uuid_key, tenant, updated_at};

const TABLES: &[&str] = &["chats", "messages", "attachments"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut chats = table_with_uuid_key("chats");
        tenant(&mut chats, "chats");
        chats
            .col(uuid("channel_id"))
            .col(uuid("end_user_id"))
            .col(uuid("department_id"))
            .col(string("status"))
            // One claim per chat: a single column, set by a conditional update and
            // tied to the status by a check constraint.
            .col(uuid_null("claimed_by_agent_id"))
            .col(timestamp_with_time_zone_null("claimed_at"))
            .col(timestamp_with_time_zone_null("last_message_at"))
            .col(string_null("last_message_preview"))
            .col(timestamp_with_time_zone_null("last_inbound_at"))
            .col(timestamp_with_time_zone_null("last_agent_message_at"))
            .col(integer("unread_count").default(0))
            .col(timestamp_with_time_zone("opened_at"))
            .col(timestamp_with_time_zone_null("completed_at"))
            .col(string_null("completion_reason"))
            .col(created_at())
            .col(updated_at())
            .check(Expr::cust(
                "(status = 'IN_PROGRESS' AND claimed_by_agent_id IS NOT NULL) OR (status <> 'IN_PROGRESS' AND claimed_by_agent_id IS NULL)",
            ));
        references(&mut chats, "chats", "channel_id", "channels", ForeignKeyAction::Cascade);
        references(&mut chats, "chats", "end_user_id", "end_users", ForeignKeyAction::Cascade);
        references(&mut chats, "chats", "department_id", "departments", ForeignKeyAction::Restrict);
        references(&mut chats, "chats", "claimed_by_agent_id", "agents", ForeignKeyAction::SetNull);

        let mut messages = table_with_uuid_key("messages");
        tenant(&mut messages, "messages");
        messages
            .col(uuid("chat_id"))
            .col(string("direction"))
            .col(string("kind"))
            .col(text_null("text"))
            .col(json_binary_null("payload"))
            .col(uuid_null("sender_agent_id"))
            // The provider's message id (LINE message id, WeChat MsgId).
            .col(string_null("external_id"))
            .col(boolean("is_passcode").default(false))
            .col(string("delivery_state"))
            .col(string_null("delivery_method"))
            .col(text_null("delivery_error"))
            // LINE reply token of an inbound message; single use, marked when used.
            .col(string_null("reply_token"))
            .col(timestamp_with_time_zone_null("reply_token_used_at"))
            .col(created_at())
            .col(timestamp_with_time_zone_null("sent_at"));
        references(&mut messages, "messages", "chat_id", "chats", ForeignKeyAction::Cascade);
        references(&mut messages, "messages", "sender_agent_id", "agents", ForeignKeyAction::SetNull);

        let mut attachments = table_with_uuid_key("attachments");
        tenant(&mut attachments, "attachments");
        attachments
            .col(uuid("message_id"))
            .col(string("kind"))
            .col(string("status"))
            .col(string_null("content_type"))
            .col(big_integer_null("size_bytes"))
            .col(string_null("blob_key"))
            .col(string_null("file_name"))
            .col(text_null("error"))
            .col(created_at());
        references(&mut attachments, "attachments", "message_id", "messages", ForeignKeyAction::Cascade);

        create_all(
            manager,
            vec![chats, messages, attachments],
            vec![
                index("chats", &["channel_id", "end_user_id"], true),
                index("chats", &["organization_id", "last_message_at"], false),
                index("chats", &["organization_id", "status"], false),
                index("chats", &["claimed_by_agent_id"], false),
                index("messages", &["chat_id", "created_at"], false),
                index("messages", &["chat_id", "external_id"], true),
                index("attachments", &["message_id"], false),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
