//! Tenants and the people and systems acting in them: organizations,
//! departments, agents and their departments, brands, API keys.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

use crate::builders::{create_all, created_at, drop_all, index, references, table_with_uuid_key, tenant, updated_at};

const TABLES: &[&str] = &["organizations", "departments", "agents", "agent_departments", "brands", "api_keys"];

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let organizations = table_with_uuid_key("organizations")
            .col(string("name"))
            .col(string_uniq("portal_name"))
            // Per-organization counters, advanced with `UPDATE … RETURNING` inside
            // the writing transaction: the row lock orders concurrent writers, so
            // event cursors and ticket numbers are gap-free and commit-ordered.
            .col(big_integer("event_seq").default(0))
            .col(big_integer("ticket_seq").default(0))
            .col(created_at())
            .take();

        let mut departments = table_with_uuid_key("departments");
        tenant(&mut departments, "departments");
        departments.col(string("name")).col(created_at());

        let mut agents = table_with_uuid_key("agents");
        tenant(&mut agents, "agents");
        agents
            .col(string("email"))
            .col(string("name"))
            .col(string("role"))
            .col(string("password_hash"))
            .col(boolean("active").default(true))
            .col(created_at())
            .col(updated_at());

        let mut agent_departments = Table::create()
            .table("agent_departments")
            .col(uuid("agent_id"))
            .col(uuid("department_id"))
            .primary_key(Index::create().col("agent_id").col("department_id"))
            .take();
        references(&mut agent_departments, "agent_departments", "agent_id", "agents", ForeignKeyAction::Cascade);
        references(
            &mut agent_departments,
            "agent_departments",
            "department_id",
            "departments",
            ForeignKeyAction::Cascade,
        );

        let mut brands = table_with_uuid_key("brands");
        tenant(&mut brands, "brands");
        brands.col(string("name")).col(created_at());

        let mut api_keys = table_with_uuid_key("api_keys");
        tenant(&mut api_keys, "api_keys");
        api_keys
            .col(string("name"))
            .col(string_uniq("prefix"))
            .col(string("digest"))
            .col(string("scopes"))
            .col(uuid_null("created_by_agent_id"))
            .col(created_at())
            .col(timestamp_with_time_zone_null("last_used_at"))
            .col(timestamp_with_time_zone_null("revoked_at"));
        references(&mut api_keys, "api_keys", "created_by_agent_id", "agents", ForeignKeyAction::SetNull);

        create_all(
            manager,
            vec![organizations, departments, agents, agent_departments, brands, api_keys],
            vec![
                index("departments", &["organization_id", "name"], true),
                index("agents", &["organization_id", "email"], true),
                index("agents", &["email"], false),
                index("brands", &["organization_id", "name"], true),
                index("api_keys", &["organization_id"], false),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_all(manager, TABLES).await
    }
}
