//! Tickets and the chats they were made from, ticket classifications, and the
//! link between a chat product and a helpdesk portal: ZSC keys, the link
//! itself and its department mapping.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{create_all, created_at, drop_all, index, references, table_with_uuid_key, tenant, updated_at};

const TABLES: &[&str] =
    &["tickets", "ticket_chats", "ticket_classifications", "zsc_keys", "helpdesk_links", "department_mappings"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut tickets = table_with_uuid_key("tickets");
        tenant(&mut tickets, "tickets");
        tickets
            .col(big_integer("number"))
            .col(string("subject"))
            .col(text_null("description"))
            .col(string("status"))
            .col(string("priority"))
            .col(string_null("classification"))
            .col(uuid_null("department_id"))
            .col(uuid_null("contact_id"))
            .col(string_null("email"))
            .col(created_at())
            .col(updated_at())
            .col(timestamp_with_time_zone_null("closed_at"));
        references(&mut tickets, "tickets", "department_id", "departments", ForeignKeyAction::SetNull);
        references(&mut tickets, "tickets", "contact_id", "contacts", ForeignKeyAction::SetNull);

        let mut ticket_chats = Table::create()
            .table("ticket_chats")
            .col(uuid("ticket_id"))
            .col(uuid("chat_id"))
            // Set for automatic conversions (`auto:{chat}:{window start}`): unique,
            // so a timer that fires twice makes one ticket.
            .col(string_null("conversion_key"))
            .col(created_at())
            .primary_key(Index::create().col("ticket_id").col("chat_id"))
            .take();
        references(&mut ticket_chats, "ticket_chats", "ticket_id", "tickets", ForeignKeyAction::Cascade);
        references(&mut ticket_chats, "ticket_chats", "chat_id", "chats", ForeignKeyAction::Cascade);

        let mut classifications = table_with_uuid_key("ticket_classifications");
        tenant(&mut classifications, "ticket_classifications");
        classifications.col(string("name")).col(created_at());

        // Helpdesk side: keys a portal's admin generated; only a digest is kept.
        let mut zsc_keys = table_with_uuid_key("zsc_keys");
        tenant(&mut zsc_keys, "zsc_keys");
        zsc_keys
            .col(string_uniq("digest"))
            .col(string("prefix"))
            .col(uuid_null("created_by_agent_id"))
            .col(created_at())
            .col(timestamp_with_time_zone_null("revoked_at"));
        references(&mut zsc_keys, "zsc_keys", "created_by_agent_id", "agents", ForeignKeyAction::SetNull);

        // Chat side: one link per organization to one helpdesk portal.
        let mut links = table_with_uuid_key("helpdesk_links");
        tenant(&mut links, "helpdesk_links");
        links
            .col(string("helpdesk_portal_name"))
            .col(uuid_null("helpdesk_organization_id"))
            .col(string("admin_email"))
            .col(blob("zsc_key"))
            .col(boolean("enabled").default(true))
            .col(string("auto_ticket_rule"))
            .col(string("ticket_status_on_create"))
            .col(string("recent_tickets_scope"))
            .col(created_at())
            .col(updated_at());
        references(
            &mut links,
            "helpdesk_links",
            "helpdesk_organization_id",
            "organizations",
            ForeignKeyAction::SetNull,
        );

        let mut mappings = Table::create()
            .table("department_mappings")
            .col(uuid("link_id"))
            .col(uuid("department_id"))
            .col(string("mode"))
            .col(uuid_null("helpdesk_department_id"))
            .col(updated_at())
            .primary_key(Index::create().col("link_id").col("department_id"))
            .take();
        references(&mut mappings, "department_mappings", "link_id", "helpdesk_links", ForeignKeyAction::Cascade);
        references(&mut mappings, "department_mappings", "department_id", "departments", ForeignKeyAction::Cascade);

        create_all(
            manager,
            vec![tickets, ticket_chats, classifications, zsc_keys, links, mappings],
            vec![
                index("tickets", &["organization_id", "number"], true),
                index("tickets", &["organization_id", "status"], false),
                index("ticket_chats", &["conversion_key"], true),
                index("ticket_chats", &["chat_id"], false),
                index("ticket_classifications", &["organization_id", "name"], true),
                index("helpdesk_links", &["organization_id"], true),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
