//! The GraphQL surface for agents' UIs: decode, call a core use case, map.
//!
//! # Layout
//! - [`schema`]: building the schema with its limits.
//! - [`context`]: who is calling (from the HTTP header or the WebSocket
//!   `connection_init` payload) and the one error mapping.
//! - [`limits`]: the alias limit (depth and complexity are async-graphql's own).
//! - [`shared_events`]: `chatEvents` payloads resolved once per event for
//!   every subscriber asking the same way.
//! - [`types`]: GraphQL objects mapped from core types.
//! - [`query`], [`mutation`], [`subscription`]: organization and identity operations.
//! - [`workspace`], [`workspace_types`]: channels, chats, messages, contacts, live events.
//! - [`helpdesk`]: ZSC keys, the helpdesk link, its rule and department mapping.

/// A GraphQL enum mirroring a core one, with conversions both ways.
macro_rules! mirror_enum {
    ($name:ident, $core:ty { $($variant:ident),+ $(,)? }) => {
        #[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl From<$core> for $name {
            fn from(value: $core) -> Self {
                match value { $(<$core>::$variant => Self::$variant),+ }
            }
        }

        impl From<$name> for $core {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => Self::$variant),+ }
            }
        }
    };
}

pub mod context;
pub mod helpdesk;
pub mod limits;
pub mod mutation;
pub mod query;
pub mod schema;
pub mod shared_events;
pub mod subscription;
pub mod types;
pub mod workspace;
pub mod workspace_types;

pub use context::{Authentication, ClientAddress, authenticate_bearer, authenticate_session, to_graphql};
pub use schema::{Limits, MadoguchiSchema, Schemas, build_schema};
pub use shared_events::SharedSubscriptions;
