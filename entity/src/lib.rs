//! sea-orm entities for every Madoguchi table: columns only, no logic.
//!
//! The schema itself is created by `madoguchi-migration`; rules about what
//! may be written live in `madoguchi-core`. Enumerated columns (statuses,
//! kinds, roles) are stored as upper-case strings and parsed by core.

pub mod agent_departments;
pub mod agents;
pub mod api_keys;
pub mod attachments;
pub mod brands;
pub mod callback_nonces;
pub mod channel_agents;
pub mod channels;
pub mod chats;
pub mod consumer_allowances;
pub mod contacts;
pub mod department_mappings;
pub mod departments;
pub mod end_users;
pub mod events;
pub mod helpdesk_links;
pub mod jobs;
pub mod messages;
pub mod organizations;
pub mod passcodes;
pub mod provider_tokens;
pub mod push_usage;
pub mod rate_limits;
pub mod submitted_chats;
pub mod ticket_chats;
pub mod ticket_classifications;
pub mod ticket_comments;
pub mod tickets;
pub mod webhook_receipts;
pub mod zsc_keys;
