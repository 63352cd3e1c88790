//! The HTTP routes where LINE and WeChat deliver: verify, hand to core,
//! answer. Nothing else lives here.

use axum::Router;
use madoguchi_core::Core;

/// Returns the webhook routes, mounted under `/webhooks`.
pub fn routes(core: Core) -> Router {
    Router::new().with_state(core)
}
