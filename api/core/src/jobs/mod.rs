//! The durable work queue: outbound deliveries, follow-up work after a
//! webhook (profile fetches, media downloads), timers.
//!
//! A job is written in the same transaction as the change that needs it, so
//! acknowledged work is never lost. Workers claim due jobs with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several replicas share the
//! queue); a job whose worker died is claimed again once its lease runs out.
//!
//! Leases are fenced. Each claim writes a token of its own into the job
//! (`locked_by`); on PostgreSQL the lease is taken, renewed and judged
//! expired by the database's clock, never a replica's. A job's writes
//! commit only while the job still carries its token (checked, with the row
//! locked, inside the same transaction), and its outcome is recorded only
//! then: a worker that lost its lease — learnt at its next renewal or at
//! commit — has its results dropped, so two workers never both complete one
//! job.
//!
//! Jobs are typed ([`JobKind`]); one that does not decode, panics, or keeps
//! failing past its kind's [`RetryPolicy`] ends as `FAILED` with its error
//! recorded, which admins can list — never retried forever.

pub mod kinds;

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use madoguchi_entity::jobs;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use uuid::Uuid;

pub use kinds::{JobKind, RetryPolicy};

use crate::Core;
use crate::auth::{Caller, Permission};
use crate::error::{Error, Result};
use crate::ids::{ChannelId, JobId, MessageId, OrganizationId};

/// How often an idle worker looks for due jobs without being woken.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// A job about to be queued.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub organization_id: Option<OrganizationId>,
    pub kind: JobKind,
    pub channel_id: Option<ChannelId>,
    pub message_id: Option<MessageId>,
    pub run_at: DateTime<Utc>,
    /// Chosen now, before any attempt, and kept across retries and restarts.
    pub retry_key: Option<Uuid>,
    /// At most one job per key is ever queued.
    pub dedupe_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: JobKind, run_at: DateTime<Utc>) -> Self {
        Self {
            organization_id: None,
            kind,
            channel_id: None,
            message_id: None,
            run_at,
            retry_key: None,
            dedupe_key: None,
        }
    }

    /// A job about one channel, in its organization.
    pub(crate) fn of_channel(
        kind: JobKind,
        channel: &madoguchi_entity::channels::Model,
        run_at: DateTime<Utc>,
    ) -> Self {
        Self {
            organization_id: Some(channel.organization_id.into()),
            channel_id: Some(channel.id.into()),
            ..Self::new(kind, run_at)
        }
    }
}

/// What became of one attempt.
#[derive(Debug)]
pub enum Outcome {
    Done,
    /// Try again at this time; the text says why it did not work now.
    RetryAt(DateTime<Utc>, String),
    /// Give up; the text says why.
    Failed(String),
    /// Not due yet (a timer whose deadline moved): run again at this time,
    /// as if never attempted.
    Later(DateTime<Utc>),
}

/// A claim on a job: its id and the token this claim wrote into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub job_id: Uuid,
    pub token: String,
}

impl Lease {
    /// Returns the lease a claimed row carries.
    pub fn of(job: &jobs::Model) -> Self {
        Self { job_id: job.id, token: job.locked_by.clone().unwrap_or_default() }
    }

    /// Checks, inside `db`'s transaction, that the job still carries this
    /// lease, locking its row (PostgreSQL) so no other worker takes it over
    /// before the transaction ends. `CONFLICT` ("lease lost") otherwise.
    pub(crate) async fn check(&self, db: &impl ConnectionTrait) -> Result<()> {
        let mut query = jobs::Entity::find_by_id(self.job_id)
            .filter(jobs::Column::LockedBy.eq(self.token.clone()))
            .filter(jobs::Column::Status.eq("RUNNING"));
        if db.get_database_backend() == DbBackend::Postgres {
            query = query.lock_exclusive();
        }
        match query.one(db).await? {
            Some(_) => Ok(()),
            None => Err(Error::lease_lost()),
        }
    }
}

/// A failed job as admins see it.
#[derive(Clone, Debug, PartialEq)]
pub struct FailedJob {
    pub id: JobId,
    pub kind: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub channel_id: Option<ChannelId>,
    pub message_id: Option<MessageId>,
    pub created_at: DateTime<Utc>,
    pub failed_at: Option<DateTime<Utc>>,
}

/// Writes a job with the given connection (usually the transaction that
/// needs it). With a `dedupe_key` already queued, writes nothing.
pub(crate) async fn enqueue(db: &impl ConnectionTrait, job: NewJob, now: DateTime<Utc>) -> Result<()> {
    jobs::Entity::insert(new_row(job, now))
        .on_conflict(OnConflict::column(jobs::Column::DedupeKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Arms a timer: queues the job under its `dedupe_key`, or moves the one
/// already there to the new time — queued again if it had run, and left to
/// its worker if it is running now (its outcome then yields to the new time;
/// see [`Jobs::finish`]). The timer's own work checks whether it is due.
pub(crate) async fn arm(db: &impl ConnectionTrait, job: NewJob, now: DateTime<Utc>) -> Result<()> {
    debug_assert!(job.dedupe_key.is_some(), "a timer is armed by its key");
    let running = |running: &str, otherwise: &str| {
        Expr::cust(format!("CASE WHEN jobs.status = 'RUNNING' THEN {running} ELSE {otherwise} END"))
    };
    let row = new_row(job, now);
    jobs::Entity::insert(row)
        .on_conflict(
            OnConflict::column(jobs::Column::DedupeKey)
                .values([
                    (jobs::Column::RunAt, Expr::cust("excluded.run_at")),
                    (jobs::Column::Payload, Expr::cust("excluded.payload")),
                    (jobs::Column::UpdatedAt, Expr::cust("excluded.updated_at")),
                    (jobs::Column::Status, running("jobs.status", "'QUEUED'")),
                    (jobs::Column::Attempts, running("jobs.attempts", "0")),
                    (jobs::Column::LastError, running("jobs.last_error", "NULL")),
                    (jobs::Column::FinishedAt, running("jobs.finished_at", "NULL")),
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn new_row(job: NewJob, now: DateTime<Utc>) -> jobs::ActiveModel {
    jobs::ActiveModel {
        id: Set(JobId::generate().uuid()),
        organization_id: Set(job.organization_id.map(Into::into)),
        kind: Set(job.kind.name().to_owned()),
        status: Set("QUEUED".to_owned()),
        payload: Set(job.kind.payload()),
        channel_id: Set(job.channel_id.map(Into::into)),
        message_id: Set(job.message_id.map(Into::into)),
        retry_key: Set(job.retry_key),
        dedupe_key: Set(job.dedupe_key),
        attempts: Set(0),
        run_at: Set(job.run_at),
        locked_until: Set(None),
        locked_by: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
}

/// Queue use cases for workers.
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    core: &'a Core,
}

/// A disabled organization's jobs wait: nothing is sent for it, no timer
/// fires, until it is enabled again.
macro_rules! active_organization {
    () => {
        "(organization_id IS NULL OR organization_id IN (SELECT id FROM organizations WHERE disabled_at IS NULL))"
    };
}

/// Queued jobs of one kind, for the queue gauges.
#[derive(Clone, Debug, PartialEq, sea_orm::FromQueryResult)]
pub struct QueueDepth {
    pub kind: String,
    pub queued: i64,
    /// When the longest-waiting one was due.
    pub oldest_due: Option<DateTime<Utc>>,
}

impl<'a> Jobs<'a> {
    /// Counts queued jobs by kind, with when the longest-waiting one was due.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>> {
        Ok(jobs::Entity::find()
            .select_only()
            .column(jobs::Column::Kind)
            .column_as(jobs::Column::Id.count(), "queued")
            .column_as(jobs::Column::RunAt.min(), "oldest_due")
            .filter(jobs::Column::Status.eq("QUEUED"))
            .group_by(jobs::Column::Kind)
            .into_model::<QueueDepth>()
            .all(self.core.db())
            .await?)
    }

    /// Keeps `job_queue_depth{kind}` and `job_queue_lag_seconds{kind}` (how
    /// long the longest-waiting due job has waited) current, every `every`.
    pub async fn observe_queue(&self, every: Duration) {
        let mut seen = std::collections::BTreeSet::new();
        loop {
            match self.queue_depths().await {
                Ok(depths) => {
                    let now = self.core.now();
                    let mut current = std::collections::BTreeSet::new();
                    for depth in depths {
                        let lag =
                            depth.oldest_due.map_or(0.0, |due| (now - due).num_milliseconds().max(0) as f64 / 1e3);
                        metrics::gauge!("job_queue_depth", "kind" => depth.kind.clone()).set(depth.queued as f64);
                        metrics::gauge!("job_queue_lag_seconds", "kind" => depth.kind.clone()).set(lag);
                        current.insert(depth.kind);
                    }
                    for gone in seen.difference(&current) {
                        metrics::gauge!("job_queue_depth", "kind" => gone.clone()).set(0.0);
                        metrics::gauge!("job_queue_lag_seconds", "kind" => gone.clone()).set(0.0);
                    }
                    seen.extend(current);
                }
                Err(error) => tracing::warn!(%error, "cannot read the job queue's depth"),
            }
            tokio::time::sleep(every).await;
        }
    }

    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Claims the most overdue job, if any, for `worker`, with a lease token
    /// of this claim's own. A job is due by the core's clock (its domain
    /// time); a lease runs by the database's clock on PostgreSQL (replicas'
    /// clocks may differ) and by the one process's on SQLite.
    pub async fn claim(&self, worker: &str) -> Result<Option<jobs::Model>> {
        let now = self.core.now();
        let backend = self.core.backend();
        let token = format!("{worker}/{}", Uuid::new_v4().simple());
        let lease = self.core.job_lease();
        let statement = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                concat!(
                    "UPDATE jobs SET status = 'RUNNING', locked_until = now() + make_interval(secs => $1), \
                     locked_by = $2, attempts = attempts + 1, updated_at = $3 \
                     WHERE id = (SELECT id FROM jobs WHERE ((status = 'QUEUED' AND run_at <= $3) \
                     OR (status = 'RUNNING' AND locked_until < now())) AND ",
                    active_organization!(),
                    " ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *"
                ),
                [seconds(lease).into(), token.into(), now.into()],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                concat!(
                    "UPDATE jobs SET status = 'RUNNING', locked_until = $1, locked_by = $2, \
                     attempts = attempts + 1, updated_at = $3 \
                     WHERE id = (SELECT id FROM jobs WHERE ((status = 'QUEUED' AND run_at <= $3) \
                     OR (status = 'RUNNING' AND locked_until < $3)) AND ",
                    active_organization!(),
                    " ORDER BY run_at LIMIT 1) RETURNING *"
                ),
                [(now + lease).into(), token.into(), now.into()],
            ),
        };
        // Through the write path like every other writer (on SQLite, the
        // process's writer queue rather than SQLite's busy handler).
        let write = self.core.write().await?;
        let job = jobs::Entity::find().from_raw_sql(statement).one(&*write).await?;
        write.commit().await?;
        Ok(job)
    }

    /// Records what became of a claimed job, in one transaction with the
    /// lease check: `CONFLICT` ("lease lost") and nothing recorded when
    /// another worker has taken the job over meanwhile. A timer armed again
    /// while it ran (its `run_at` moved) is queued for its new time instead.
    pub async fn finish(&self, job: &jobs::Model, outcome: &Outcome) -> Result<()> {
        let now = self.core.now();
        let (status, run_at, error, finished) = match outcome {
            Outcome::Done => ("DONE", job.run_at, None, Some(now)),
            Outcome::RetryAt(at, error) => ("QUEUED", *at, Some(error.clone()), None),
            Outcome::Failed(error) => ("FAILED", job.run_at, Some(error.clone()), Some(now)),
            Outcome::Later(at) => ("QUEUED", *at, None, None),
        };
        let attempts = match outcome {
            Outcome::Later(_) => Expr::value(0),
            _ => Expr::col(jobs::Column::Attempts),
        };
        let ours = || {
            Condition::all()
                .add(jobs::Column::Id.eq(job.id))
                .add(jobs::Column::LockedBy.eq(job.locked_by.clone()))
                .add(jobs::Column::Status.eq("RUNNING"))
        };
        let unlocked = |update: sea_orm::UpdateMany<jobs::Entity>| {
            update
                .col_expr(jobs::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
                .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
                .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        };
        let write = self.core.write().await?;
        let updated = unlocked(jobs::Entity::update_many())
            .col_expr(jobs::Column::Status, Expr::value(status))
            .col_expr(jobs::Column::RunAt, Expr::value(run_at))
            .col_expr(jobs::Column::Attempts, attempts)
            .col_expr(jobs::Column::LastError, Expr::value(error.or_else(|| job.last_error.clone())))
            .col_expr(jobs::Column::FinishedAt, Expr::value(finished))
            .filter(ours())
            .filter(jobs::Column::RunAt.eq(job.run_at))
            .exec(&*write)
            .await?;
        if updated.rows_affected != 1 {
            // Armed again while it ran: keep the new time, start afresh.
            let requeued = unlocked(jobs::Entity::update_many())
                .col_expr(jobs::Column::Status, Expr::value("QUEUED"))
                .col_expr(jobs::Column::Attempts, Expr::value(0))
                .filter(ours())
                .exec(&*write)
                .await?;
            if requeued.rows_affected != 1 {
                return Err(Error::lease_lost());
            }
        }
        write.commit().await
    }

    /// Extends a running job's lease while its worker is alive, so the lease
    /// can be short and a dead worker's job is taken over quickly. Returns
    /// when the lease is lost (another worker took the job).
    async fn keep_leased(&self, lease: &Lease) {
        let period = self.core.job_lease();
        let every = (period / 3).to_std().unwrap_or(Duration::from_secs(1)).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            match self.renew(lease, period).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(error) => tracing::warn!(job = %lease.job_id, error = ?error.cause(), "cannot renew a job lease"),
            }
        }
    }

    /// Renews a lease; `false` when the job no longer carries it.
    pub async fn renew(&self, lease: &Lease, period: chrono::Duration) -> Result<bool> {
        let backend = self.core.backend();
        let statement = match backend {
            DbBackend::Postgres => Statement::from_sql_and_values(
                backend,
                "UPDATE jobs SET locked_until = now() + make_interval(secs => $1) \
                 WHERE id = $2 AND locked_by = $3 AND status = 'RUNNING'",
                [seconds(period).into(), lease.job_id.into(), lease.token.clone().into()],
            ),
            _ => Statement::from_sql_and_values(
                backend,
                "UPDATE jobs SET locked_until = $1 WHERE id = $2 AND locked_by = $3 AND status = 'RUNNING'",
                [(self.core.now() + period).into(), lease.job_id.into(), lease.token.clone().into()],
            ),
        };
        let write = self.core.write().await?;
        let renewed = write.execute_raw(statement).await?.rows_affected() == 1;
        write.commit().await?;
        Ok(renewed)
    }

    /// Runs one claimed job to its outcome: decoded, run (a panic is caught
    /// and fails the job), retried within its kind's policy. `None` when the
    /// lease was lost meanwhile: the outcome is not this worker's to record.
    pub async fn run(&self, job: &jobs::Model) -> Option<Outcome> {
        use tracing::Instrument;
        let core = self.core;
        let span = tracing::info_span!("job", job.kind = %job.kind, job.id = %job.id, job.attempt = job.attempts + 1);
        self.run_with(job, |kind, lease| async move { core.run_job(job, &kind, &lease).await }).instrument(span).await
    }

    /// [`Self::run`] with the work itself given.
    async fn run_with<F, Fut>(&self, job: &jobs::Model, work: F) -> Option<Outcome>
    where
        F: FnOnce(JobKind, Lease) -> Fut,
        Fut: Future<Output = Result<Outcome>>,
    {
        let kind = match JobKind::decode(&job.kind, &job.payload) {
            Ok(kind) => kind,
            Err(reason) => return Some(Outcome::Failed(reason)),
        };
        let policy = kind.retry_policy();
        let lease = Lease::of(job);
        let attempt = std::panic::AssertUnwindSafe(work(kind, lease.clone())).catch_unwind();
        let result = tokio::select! {
            result = attempt => result,
            _ = self.keep_leased(&lease) => return None,
        };
        let outcome = match result {
            Err(panic) => Outcome::Failed(format!("the job panicked: {}", panic_message(&*panic))),
            Ok(Ok(outcome)) => outcome,
            Ok(Err(error)) if error.is_lease_lost() => return None,
            Ok(Err(error)) => {
                tracing::error!(job = %job.id, error = %error, cause = ?error.cause(), "job failed with an error");
                Outcome::RetryAt(self.core.now() + policy.backoff(job.attempts), error.to_string())
            }
        };
        Some(match outcome {
            Outcome::RetryAt(_, error) if job.attempts >= policy.max_attempts => {
                Outcome::Failed(format!("gave up after {} attempts: {error}", job.attempts))
            }
            other => other,
        })
    }

    /// Runs one worker until `stop` resolves: claims due jobs one at a time,
    /// runs them, records the outcome, and sleeps when there is nothing to do.
    pub async fn run_worker(&self, worker: String, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let claimed = tokio::select! {
                _ = &mut stop => return,
                claimed = self.claim(&worker) => claimed,
            };
            match claimed {
                Ok(Some(job)) => {
                    let Some(outcome) = self.run(&job).await else {
                        tracing::warn!(job = %job.id, kind = %job.kind, "lost a job's lease; its results are dropped");
                        continue;
                    };
                    if let Outcome::Failed(error) | Outcome::RetryAt(_, error) = &outcome {
                        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %error, "job did not succeed");
                    }
                    let result = match &outcome {
                        Outcome::Done => "done",
                        Outcome::RetryAt(..) => "retry",
                        Outcome::Failed(_) => "failed",
                        Outcome::Later(_) => "later",
                    };
                    metrics::counter!("job_attempts_total", "kind" => job.kind.clone(), "result" => result)
                        .increment(1);
                    if let Outcome::Failed(_) = &outcome {
                        metrics::counter!("jobs_failed_total", "kind" => job.kind.clone()).increment(1);
                    }
                    match self.finish(&job, &outcome).await {
                        Ok(()) => {}
                        Err(error) if error.is_lease_lost() => {
                            tracing::warn!(job = %job.id, "lost a job's lease before recording its outcome");
                        }
                        Err(error) => {
                            tracing::error!(job = %job.id, error = ?error.cause(), "cannot record a job's outcome")
                        }
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = self.core.job_waker().notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Err(error) => {
                    tracing::error!(error = ?error.cause(), "cannot claim a job");
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
        }
    }

    /// Lists the organization's failed jobs, newest first (admins): what
    /// could not be delivered or fetched, and why.
    /// `first` is 20 when not given, at most 100.
    pub async fn failed(&self, caller: &Caller, first: Option<u64>) -> Result<Vec<FailedJob>> {
        caller.require(Permission::ManageChannels)?;
        let rows = jobs::Entity::find()
            .filter(jobs::Column::OrganizationId.eq(caller.organization_id().uuid()))
            .filter(jobs::Column::Status.eq("FAILED"))
            .order_by_desc(jobs::Column::FinishedAt)
            .order_by_desc(jobs::Column::Id)
            .limit(first.unwrap_or(20).clamp(1, 100))
            .all(self.core.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| FailedJob {
                id: row.id.into(),
                kind: row.kind,
                attempts: row.attempts,
                error: row.last_error,
                channel_id: row.channel_id.map(Into::into),
                message_id: row.message_id.map(Into::into),
                created_at: row.created_at,
                failed_at: row.finished_at,
            })
            .collect())
    }

    /// Returns a job by id (tests and diagnostics).
    pub async fn get(&self, id: Uuid) -> Result<jobs::Model> {
        jobs::Entity::find_by_id(id).one(self.core.db()).await?.ok_or_else(|| Error::not_found("job"))
    }
}

fn seconds(duration: chrono::Duration) -> f64 {
    duration.num_milliseconds() as f64 / 1000.0
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CoreConfig;
    use crate::ids::ChatId;
    use crate::secrets::MasterKey;

    async fn core(dir: &std::path::Path) -> Core {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = format!("sqlite://{}?mode=rwc", dir.join("jobs.db").display());
        Core::open(CoreConfig::new(url, MasterKey::generate())).await.unwrap()
    }

    async fn claimed(core: &Core) -> jobs::Model {
        let job = NewJob::new(JobKind::LineReply { chat_id: ChatId::generate() }, core.now());
        enqueue(core.db(), job, core.now()).await.unwrap();
        core.jobs().claim("worker").await.unwrap().expect("a due job")
    }

    #[tokio::test]
    async fn queue_depths_count_queued_jobs_by_kind_with_the_oldest_due() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path()).await;
        assert_eq!(core.jobs().queue_depths().await.unwrap(), Vec::new());
        let now = core.now();
        let earlier = now - chrono::Duration::seconds(90);
        for run_at in [now, earlier] {
            let mut job = NewJob::new(JobKind::LineReply { chat_id: ChatId::generate() }, now);
            job.run_at = run_at;
            enqueue(core.db(), job, now).await.unwrap();
        }
        let push = NewJob::new(JobKind::LinePush { message_id: crate::ids::MessageId::generate() }, now);
        enqueue(core.db(), push, now).await.unwrap();
        let depths = core.jobs().queue_depths().await.unwrap();
        let reply = depths.iter().find(|depth| depth.kind == "line.reply").unwrap();
        assert_eq!(reply.queued, 2);
        let oldest = reply.oldest_due.unwrap();
        assert!((oldest - earlier).num_milliseconds().abs() < 1_000, "{oldest} vs {earlier}");
        assert_eq!(depths.iter().find(|depth| depth.kind == "line.push").unwrap().queued, 1);
        // A claimed job is no longer queued.
        core.jobs().claim("worker").await.unwrap().expect("a due job");
        let queued: i64 = core.jobs().queue_depths().await.unwrap().iter().map(|depth| depth.queued).sum();
        assert_eq!(queued, 2);
    }

    #[tokio::test]
    async fn arming_a_timer_moves_its_one_job_and_a_move_while_it_runs_queues_it_again() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
        let clock = std::sync::Arc::new(crate::clock::ManualClock::new("2026-12-01T09:00:00Z".parse().unwrap()));
        let mut config = CoreConfig::new(url, MasterKey::generate());
        config.clock = clock.clone();
        let core = Core::open(config).await.unwrap();
        let now = core.now();
        let chat_id = ChatId::generate();
        let timer = |at: DateTime<Utc>| {
            let mut job = NewJob::new(JobKind::ChatCloseIdle { chat_id }, at);
            job.dedupe_key = Some(format!("timer:idle:{chat_id}"));
            job
        };
        let rows = || async { jobs::Entity::find().all(core.db()).await.unwrap() };
        arm(core.db(), timer(now + chrono::Duration::minutes(10)), now).await.unwrap();
        arm(core.db(), timer(now), now).await.unwrap();
        let only = rows().await;
        assert_eq!(only.len(), 1, "one job per timer");
        assert_eq!((only[0].status.as_str(), only[0].run_at), ("QUEUED", now));

        // Moved while its worker runs it: the worker's "done" yields to the
        // new time, and the job is queued again for it, attempts afresh.
        let running = core.jobs().claim("worker").await.unwrap().expect("a due job");
        let later = now + chrono::Duration::minutes(5);
        arm(core.db(), timer(later), now).await.unwrap();
        assert_eq!(rows().await[0].status, "RUNNING", "left to its worker");
        core.jobs().finish(&running, &Outcome::Done).await.unwrap();
        let requeued = &rows().await[0];
        assert_eq!((requeued.status.as_str(), requeued.run_at, requeued.attempts), ("QUEUED", later, 0));

        // Once done, arming queues it again.
        clock.advance(chrono::Duration::minutes(6));
        let running = core.jobs().claim("worker").await.unwrap().expect("due again");
        core.jobs().finish(&running, &Outcome::Done).await.unwrap();
        assert_eq!(rows().await[0].status, "DONE");
        let next = now + chrono::Duration::hours(1);
        arm(core.db(), timer(next), now).await.unwrap();
        let again = &rows().await[0];
        assert_eq!((again.status.as_str(), again.run_at, again.finished_at), ("QUEUED", next, None));

        // Not due yet: queued for then, as if never attempted.
        clock.advance(chrono::Duration::hours(1));
        let running = core.jobs().claim("worker").await.unwrap().expect("due");
        let then = next + chrono::Duration::minutes(30);
        core.jobs().finish(&running, &Outcome::Later(then)).await.unwrap();
        let later = &rows().await[0];
        assert_eq!((later.status.as_str(), later.run_at, later.attempts), ("QUEUED", then, 0));
    }

    #[tokio::test]
    async fn a_panicking_job_ends_failed_with_the_panic_and_the_worker_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path()).await;
        let job = claimed(&core).await;
        let outcome = core
            .jobs()
            .run_with(&job, |_, _| async {
                if job.attempts > 0 {
                    panic!("reachable from a payload");
                }
                Ok(Outcome::Done)
            })
            .await;
        assert!(
            matches!(&outcome, Some(Outcome::Failed(error)) if error == "the job panicked: reachable from a payload"),
            "{outcome:?}"
        );
        core.jobs().finish(&job, &outcome.unwrap()).await.unwrap();
        let row = core.jobs().get(job.id).await.unwrap();
        assert_eq!(
            (row.status.as_str(), row.last_error.as_deref()),
            ("FAILED", Some("the job panicked: reachable from a payload"))
        );
        // The same worker claims and runs the next job.
        let next = claimed(&core).await;
        assert!(matches!(core.jobs().run_with(&next, |_, _| async { Ok(Outcome::Done) }).await, Some(Outcome::Done)));
    }

    #[tokio::test]
    async fn a_job_that_keeps_failing_ends_failed_after_its_policys_attempts() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path()).await;
        let mut job = claimed(&core).await;
        let policy = JobKind::LineReply { chat_id: ChatId::generate() }.retry_policy();
        let failing = |_, _| async { Err(Error::unavailable("provider down")) };
        assert!(matches!(core.jobs().run_with(&job, failing).await, Some(Outcome::RetryAt(..))));
        job.attempts = policy.max_attempts;
        let outcome = core.jobs().run_with(&job, failing).await;
        assert!(
            matches!(&outcome, Some(Outcome::Failed(error)) if error.starts_with(&format!("gave up after {} attempts", policy.max_attempts))),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_job_that_does_not_decode_ends_failed_without_running() {
        let dir = tempfile::tempdir().unwrap();
        let core = core(dir.path()).await;
        let mut job = claimed(&core).await;
        job.payload = serde_json::json!({"chatId": 42});
        let outcome = core.jobs().run_with(&job, |_, _| async { panic!("must not run") }).await;
        assert!(matches!(&outcome, Some(Outcome::Failed(error)) if error.contains("cannot decode")), "{outcome:?}");
    }
}
