//! The GraphQL surface for agents' UIs: decode, call a core use case, map.
//!
//! # Layout
//! - [`schema`]: building the schema with its limits.
//! - [`context`]: who is calling (from the HTTP header or the WebSocket
//!   `connection_init` payload) and the one error mapping.
//! - [`types`]: GraphQL objects mapped from core types.
//! - [`query`], [`mutation`], [`subscription`]: the operations.

pub mod context;
pub mod mutation;
pub mod query;
pub mod schema;
pub mod subscription;
pub mod types;

pub use context::{Authentication, authenticate_bearer};
pub use schema::{Limits, MadoguchiSchema, build_schema};
