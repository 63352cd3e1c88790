//! Schema migrations for Madoguchi, runnable on SQLite (the embedded default)
//! and PostgreSQL (production).
//!
//! Each migration is one file named `mYYYYMMDD_NNNNNN_verb_noun.rs` with an
//! `up` and a `down`. Tables are grouped by the part of the product that
//! writes them; the columns are documented in `entity/`.

pub use sea_orm_migration::prelude::*;

mod builders;
mod m20261122_000001_create_tenancy;
mod m20261122_000002_create_channels;
mod m20261122_000003_create_chats;
mod m20261122_000004_create_tickets;
mod m20261122_000005_create_log_and_queue;
mod m20261201_000001_add_review_fixes;
mod m20261201_000002_add_wechat;
mod m20261201_000003_add_organization_status;
mod m20261201_000004_add_callback_nonces;
mod m20261201_000005_add_ticket_comments;
mod m20261201_000006_add_ticket_windows;
mod m20261207_000001_add_waiting_reply_index;

/// Runs every migration in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_tenancy::Migration),
            Box::new(m20261122_000002_create_channels::Migration),
            Box::new(m20261122_000003_create_chats::Migration),
            Box::new(m20261122_000004_create_tickets::Migration),
            Box::new(m20261122_000005_create_log_and_queue::Migration),
            Box::new(m20261201_000001_add_review_fixes::Migration),
            Box::new(m20261201_000002_add_wechat::Migration),
            Box::new(m20261201_000003_add_organization_status::Migration),
            Box::new(m20261201_000004_add_callback_nonces::Migration),
            Box::new(m20261201_000005_add_ticket_comments::Migration),
            Box::new(m20261201_000006_add_ticket_windows::Migration),
            Box::new(m20261207_000001_add_waiting_reply_index::Migration),
        ]
    }
}
