//! The thread intake's batch writers run on.
//!
//! A batch is a chain of statements, each waiting on the database before
//! the next can go (nine round trips on PostgreSQL), and every webhook of
//! the batch waits for the whole chain. On the shared runtime each step
//! queued behind HTTP requests for a worker, so the chain grew longer with
//! the very load it carries. On a thread of its own, with its own runtime,
//! a writer runs as soon as the database answers. Measured on the intake
//! bench, PostgreSQL, 16 concurrent deliveries: a batch of eight took
//! 7.9–8.4 ms on the shared runtime and 6.6 ms here, and throughput rose by
//! a fifth. SQLite's writer already waits on a thread of sqlx's; there it
//! measured the same either way, and one path serves both.
//!
//! On PostgreSQL the writers also have connections of their own, made on
//! this thread, so that this thread's I/O driver is the one that sees their
//! answers. On SQLite they share the writer connection every write
//! transaction queues for (see [`crate::db::Writers`]).
//!
//! The thread ends when the core that started it is dropped.

use std::future::Future;

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::runtime::{Builder, Handle};
use tokio::sync::oneshot;

use crate::db;
use crate::error::{Error, Result};

#[derive(Debug)]
pub(crate) struct WriterThread {
    runtime: Handle,
    /// PostgreSQL: the batch writers' own connections.
    db: Option<DatabaseConnection>,
    /// Dropped with the core; the thread then stops its runtime and ends.
    _stop: oneshot::Sender<()>,
}

impl WriterThread {
    /// Starts the thread; on PostgreSQL, connects `connections` of the
    /// writers' own to `url`.
    pub(crate) async fn start(backend: DbBackend, url: &str, connections: u32) -> Result<Self> {
        let (started, runtime) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("madoguchi-intake".into())
            .spawn(move || {
                let runtime = match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(error) => {
                        let _ = started.send(Err(error));
                        return;
                    }
                };
                let _ = started.send(Ok(runtime.handle().clone()));
                // Until the core is dropped (the sender with it).
                let _ = runtime.block_on(stopped);
            })
            .map_err(|error| Error::internal(format!("cannot start the intake thread: {error}")))?;
        let runtime = runtime
            .await
            .map_err(|_| Error::internal("the intake thread ended while starting"))?
            .map_err(|error| Error::internal(format!("cannot start the intake thread's runtime: {error}")))?;
        let db = match backend {
            DbBackend::Postgres => {
                let url = url.to_owned();
                let connected = runtime.spawn(async move { db::connect(&url, connections).await });
                Some(connected.await.map_err(|_| Error::internal("the intake thread ended while connecting"))??)
            }
            _ => None,
        };
        Ok(Self { runtime, db, _stop: stop })
    }

    /// Runs `future` on the thread.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + Send + 'static) {
        drop(self.runtime.spawn(future));
    }

    /// PostgreSQL: the connections batches are written on.
    pub(crate) fn db(&self) -> Option<&DatabaseConnection> {
        self.db.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_run_on_their_own_thread_until_the_core_drops_it() {
        let thread = WriterThread::start(DbBackend::Sqlite, "sqlite::memory:", 1).await.unwrap();
        assert!(thread.db().is_none(), "SQLite's writers share the one writer connection");

        let (name, named) = oneshot::channel();
        thread.spawn(async move {
            let _ = name.send(std::thread::current().name().map(str::to_owned));
        });
        assert_eq!(named.await.unwrap().as_deref(), Some("madoguchi-intake"));

        // A task still waiting when the thread is dropped is dropped with
        // its runtime: the thread does not outlive the core.
        let (held, released) = oneshot::channel::<()>();
        thread.spawn(async move {
            std::future::pending::<()>().await;
            drop(held);
        });
        drop(thread);
        tokio::time::timeout(std::time::Duration::from_secs(10), released)
            .await
            .expect("the thread's runtime stops when it is dropped")
            .expect_err("the waiting task was dropped, not finished");
    }
}
