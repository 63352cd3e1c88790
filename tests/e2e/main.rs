//! End-to-end tests through the real server: one binary, one module per area.

/// Runs an async test body `fn(Backend)` once on SQLite and once on PostgreSQL.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$name(madoguchi_tests::Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                super::$name(madoguchi_tests::Backend::Postgres).await
            }
        }
    )*};
}

mod abuse;
mod graphiql;
mod grpc;
mod helpdesk;
mod identity;
mod input;
mod isolation;
mod jobs;
mod lifecycle;
mod line;
mod partner;
mod platform;
mod races;
mod scale;
mod sessions;
mod subscriptions;
mod tickets;
mod timers;
mod wechat;
mod workspace;
