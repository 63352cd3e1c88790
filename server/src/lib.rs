//! The Madoguchi server: settings, telemetry, start-up, listeners and
//! background work around the core.
//!
//! # Layout
//! - [`settings`]: one typed tree from defaults, an optional TOML file and
//!   `MADOGUCHI_*` environment variables.
//! - [`application`]: `Application::build` connects, migrates, binds (port 0
//!   works) and reports the bound addresses; `run_until_stopped` serves until
//!   a shutdown future resolves, then drains.
//! - [`http`]: the axum router: GraphQL, its WebSocket, webhooks, probes, metrics.
//! - [`graphiql`]: the GraphiQL page and its assets, built into the binary.
//! - [`panics`]: the catch-panic layer, the last line behind input checks.
//! - [`telemetry`]: logs and Prometheus metrics.
//! - [`cli`]: the commands (`serve`, `migrate`, `export-schema`, `api-key …`).

pub mod application;
pub mod cli;
pub mod graphiql;
pub mod graphql_ws;
pub mod http;
pub mod panics;
pub mod settings;
pub mod telemetry;

pub use application::Application;
pub use settings::Settings;

/// The allocator the server runs on: every binary that serves (the
/// `madoguchi` binary, the benchmarks measuring it) declares it as its
/// `#[global_allocator]`.
///
/// Intake allocates and frees a great deal per batch (statements, bound
/// values, rows, JSON); with glibc's allocator about 30 % of the batch
/// writers' thread went to `malloc`, `free` and their consolidation.
/// mimalloc keeps per-thread free lists: intake at 64 concurrent deliveries
/// measured 5–15 % faster on both stores (see the README's benchmarks), at
/// the same resident memory per idle subscription.
pub use mimalloc::MiMalloc as Allocator;
