//! The database: connecting (SQLite by default, PostgreSQL in production),
//! migrating, and opening write transactions that also append events.

use std::time::Duration;

use madoguchi_migration::{Migrator, MigratorTrait};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::error::{Error, Result};
use crate::events::{EventLog, NewEvent};
use crate::ids::OrganizationId;
use crate::jobs::{self, Lease, NewJob};

/// How often, at most, SQLite's WAL is checkpointed in the background
/// after writes (see [`Writers::checkpoint_after_writes`]).
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// The WAL pages past which SQLite's writer checkpoints in its own commit
/// (SQLite's default is 1,000, ~4 MB). The background checkpointer keeps
/// the WAL well below this; it is the backstop should that fall behind.
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 10_000;

/// Connects SQLite's writer: one connection that every write transaction
/// of this process runs on ([`Write::begin`] queues them). SQLite drops a
/// connection's page cache whenever another connection has written since
/// its last transaction; a writer that is the only one keeps its cache, so
/// a transaction reads the pages it changes from memory instead of from
/// the file again.
pub async fn connect_writer(url: &str) -> Result<DatabaseConnection> {
    open(url, 1, Some(WRITER_AUTOCHECKPOINT_PAGES)).await
}

/// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`).
///
/// SQLite runs in WAL mode with `synchronous = NORMAL`: a committed
/// transaction survives the process dying at any point after the commit.
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection> {
    open(url, max_connections, None).await
}

/// Connects with SQLite's own WAL autocheckpoint threshold when `Some`.
async fn open(url: &str, max_connections: u32, autocheckpoint_pages: Option<u32>) -> Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(max_connections)
        .min_connections(1)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        // A connection in use is known to work; pinging each checkout cost
        // every statement of a request, and every write transaction, one
        // more round trip. One idle long enough to have been dropped (by the
        // server, a proxy, a firewall) is still checked.
        .test_before_acquire_if_idle_for(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |options| {
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(15))
                .foreign_keys(true);
            match autocheckpoint_pages {
                Some(pages) => options.pragma("wal_autocheckpoint", pages.to_string()),
                None => options,
            }
        });
    let mut db = Database::connect(options)
        .await
        .map_err(|error| Error::unavailable("cannot connect to the database").with_source(error))?;
    // Statements per request are what an N+1 shows in: `db_statements_total`.
    db.set_metric_callback(|info| {
        metrics::counter!("db_statements_total", "result" => if info.failed { "error" } else { "ok" }).increment(1);
    });
    Ok(db)
}

/// Brings the schema up to date.
pub async fn migrate(db: &DatabaseConnection) -> Result<()> {
    Migrator::up(db, None).await.map_err(Error::internal)
}

/// What the write transactions of this process share.
///
/// On SQLite they queue on one gate (SQLite has one writer at a time
/// anyway; queueing here beats its busy handler's sleeps), and each commit
/// wakes the checkpointer ([`Writers::checkpoint_after_writes`]).
#[derive(Debug, Default)]
pub struct Writers {
    gate: tokio::sync::Mutex<()>,
    written: Notify,
}

impl Writers {
    /// SQLite: checkpoints the WAL (copies its committed pages into the
    /// database file, then syncs it) after writes, at most once per
    /// [`CHECKPOINT_INTERVAL`], on a connection of `readers`; runs until
    /// dropped.
    ///
    /// SQLite's own autocheckpoint runs inside the commit that crosses its
    /// threshold, and every write transaction queues behind that commit (on
    /// the intake bench, 16 concurrent, it was a third of the writer's time
    /// in `COMMIT`, and p99 acknowledgement was 9 ms with it, 6 ms without). A
    /// passive checkpoint on another connection runs beside the writer,
    /// which goes on appending to the WAL, and starts the WAL over once a
    /// checkpoint has copied all of it.
    pub async fn checkpoint_after_writes(&self, readers: &DatabaseConnection) {
        loop {
            self.written.notified().await;
            tokio::time::sleep(CHECKPOINT_INTERVAL).await;
            if let Err(error) = readers.execute_unprepared("PRAGMA wal_checkpoint(PASSIVE)").await {
                tracing::warn!(error = %error, "WAL checkpoint failed; the next write tries again");
            }
        }
    }
}

/// A write transaction that remembers the events it appended, so that
/// readers are woken only once the transaction has committed.
#[derive(Debug)]
pub struct Write<'a> {
    // Declared first so the transaction ends before the gate opens.
    tx: DatabaseTransaction,
    /// SQLite's gate, held until the transaction ends.
    _gate: Option<tokio::sync::MutexGuard<'a, ()>>,
    writers: &'a Writers,
    log: &'a EventLog,
    job_waker: &'a Notify,
    /// Appended at commit, in order (see [`EventLog::append_all`]).
    pending: Vec<(OrganizationId, NewEvent)>,
    enqueued_jobs: bool,
    /// A job's lease that must still hold for this transaction to commit.
    fence: Option<Lease>,
}

impl<'a> Write<'a> {
    /// Begins a write transaction. On SQLite, writers of this process queue
    /// on `writers`' gate, and the transaction takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers never deadlock upgrading a read
    /// lock.
    pub async fn begin(
        db: &DatabaseConnection,
        log: &'a EventLog,
        job_waker: &'a Notify,
        writers: &'a Writers,
    ) -> Result<Self> {
        let sqlite = db.get_database_backend() == DbBackend::Sqlite;
        let gate = if sqlite { Some(writers.gate.lock().await) } else { None };
        let options = TransactionOptions {
            sqlite_transaction_mode: sqlite.then_some(SqliteTransactionMode::Immediate),
            ..Default::default()
        };
        let tx = db.begin_with_options(options).await?;
        Ok(Self { tx, _gate: gate, writers, log, job_waker, pending: Vec::new(), enqueued_jobs: false, fence: None })
    }

    /// Makes the commit conditional on a job's lease: a worker that lost it
    /// has this transaction rolled back (`CONFLICT`, lease lost).
    pub fn fenced_by(mut self, lease: Option<&Lease>) -> Self {
        self.fence = lease.cloned();
        self
    }

    /// Appends an event in this transaction. It is written at commit, after
    /// every other change of the transaction, and gets its cursor then.
    pub async fn append(&mut self, organization_id: OrganizationId, event: NewEvent) -> Result<()> {
        self.pending.push((organization_id, event));
        Ok(())
    }

    /// Queues a job in this transaction; workers are woken on commit.
    pub async fn enqueue(&mut self, job: NewJob, now: DateTime<Utc>) -> Result<()> {
        jobs::enqueue(&self.tx, job, now).await?;
        self.enqueued_jobs = true;
        Ok(())
    }

    /// Arms (queues or moves) a timer in this transaction; see [`jobs::arm`].
    pub async fn arm(&mut self, job: NewJob, now: DateTime<Utc>) -> Result<()> {
        jobs::arm(&self.tx, job, now).await?;
        self.enqueued_jobs = true;
        Ok(())
    }

    /// Writes the transaction's events (organizations in id order, so two
    /// writers lock organization rows in one order), commits, then wakes the
    /// readers of every organization written to, sessions if identities
    /// changed, and the job workers if jobs were queued.
    pub async fn commit(self) -> Result<()> {
        let Self { tx, _gate, writers, log, job_waker, pending, enqueued_jobs, fence } = self;
        if let Some(lease) = &fence {
            lease.check(&tx).await?;
        }
        let identity = pending.iter().any(|(_, event)| crate::events::is_identity_kind(event.kind));
        let configuration = pending.iter().any(|(_, event)| crate::events::is_configuration_kind(event.kind));
        let mut by_organization: std::collections::BTreeMap<OrganizationId, Vec<NewEvent>> = Default::default();
        for (organization_id, event) in pending {
            by_organization.entry(organization_id).or_default().push(event);
        }
        let mut heads = Vec::with_capacity(by_organization.len());
        for (organization_id, events) in by_organization {
            heads.push((organization_id, log.append_all(&tx, organization_id, events).await?));
        }
        tx.commit().await?;
        if _gate.is_some() {
            // SQLite: the checkpointer copies what this wrote, soon.
            writers.written.notify_one();
        }
        drop(_gate);
        if configuration {
            log.configuration_changed();
        }
        for (organization_id, seq) in heads {
            log.wake(organization_id, seq);
            log.announce(organization_id, seq, identity);
            if identity {
                log.identity_changed(organization_id, seq);
            }
        }
        if enqueued_jobs {
            job_waker.notify_waiters();
        }
        Ok(())
    }
}

impl std::ops::Deref for Write<'_> {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.tx
    }
}
