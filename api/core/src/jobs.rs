//! The durable work queue: outbound deliveries, follow-up work after a
//! webhook (profile fetches, media downloads), timers.
//!
//! A job is written in the same transaction as the change that needs it, so
//! acknowledged work is never lost. Workers claim due jobs with a lease
//! (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several replicas share the
//! queue); a job whose worker died is claimed again once its lease runs out.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use madoguchi_entity::jobs;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement};
use uuid::Uuid;

use crate::Core;
use crate::error::{Error, Result};
use crate::ids::{ChannelId, JobId, MessageId, OrganizationId};

/// How often an idle worker looks for due jobs without being woken.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// A job about to be queued.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub organization_id: Option<OrganizationId>,
    pub kind: &'static str,
    pub payload: serde_json::Value,
    pub channel_id: Option<ChannelId>,
    pub message_id: Option<MessageId>,
    pub run_at: DateTime<Utc>,
    /// Chosen now, before any attempt, and kept across retries and restarts.
    pub retry_key: Option<Uuid>,
    /// At most one job per key is ever queued.
    pub dedupe_key: Option<String>,
}

impl NewJob {
    pub fn new(kind: &'static str, payload: serde_json::Value, run_at: DateTime<Utc>) -> Self {
        Self {
            organization_id: None,
            kind,
            payload,
            channel_id: None,
            message_id: None,
            run_at,
            retry_key: None,
            dedupe_key: None,
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
}

/// Writes a job with the given connection (usually the transaction that
/// needs it). With a `dedupe_key` already queued, writes nothing.
pub(crate) async fn enqueue(db: &impl ConnectionTrait, job: NewJob, now: DateTime<Utc>) -> Result<()> {
    let row = jobs::ActiveModel {
        id: Set(JobId::generate().uuid()),
        organization_id: Set(job.organization_id.map(Into::into)),
        kind: Set(job.kind.to_owned()),
        status: Set("QUEUED".to_owned()),
        payload: Set(job.payload),
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
    };
    jobs::Entity::insert(row)
        .on_conflict(OnConflict::column(jobs::Column::DedupeKey).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Queue use cases for workers.
#[derive(Debug, Clone, Copy)]
pub struct Jobs<'a> {
    core: &'a Core,
}

impl<'a> Jobs<'a> {
    pub(crate) fn new(core: &'a Core) -> Self {
        Self { core }
    }

    /// Claims the most overdue job, if any, for `worker`.
    pub async fn claim(&self, worker: &str) -> Result<Option<jobs::Model>> {
        let now = self.core.now();
        let backend = self.core.backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "UPDATE jobs SET status = 'RUNNING', locked_until = $1, locked_by = $2, attempts = attempts + 1, updated_at = $3 \
                 WHERE id = (SELECT id FROM jobs WHERE (status = 'QUEUED' AND run_at <= $3) OR (status = 'RUNNING' AND locked_until < $3) \
                 ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING *"
            }
            _ => {
                "UPDATE jobs SET status = 'RUNNING', locked_until = $1, locked_by = $2, attempts = attempts + 1, updated_at = $3 \
                 WHERE id = (SELECT id FROM jobs WHERE (status = 'QUEUED' AND run_at <= $3) OR (status = 'RUNNING' AND locked_until < $3) \
                 ORDER BY run_at LIMIT 1) RETURNING *"
            }
        };
        let lease = self.core.job_lease();
        let statement =
            Statement::from_sql_and_values(backend, sql, [(now + lease).into(), worker.to_owned().into(), now.into()]);
        // Through the write path like every other writer (on SQLite, the
        // process's writer queue rather than SQLite's busy handler).
        let write = self.core.write().await?;
        let job = jobs::Entity::find().from_raw_sql(statement).one(&*write).await?;
        write.commit().await?;
        Ok(job)
    }

    /// Records what became of a claimed job, unless its lease was lost to
    /// another worker meanwhile.
    pub async fn finish(&self, job: &jobs::Model, outcome: &Outcome) -> Result<()> {
        let now = self.core.now();
        let (status, run_at, error, finished) = match outcome {
            Outcome::Done => ("DONE", job.run_at, None, Some(now)),
            Outcome::RetryAt(at, error) => ("QUEUED", *at, Some(error.clone()), None),
            Outcome::Failed(error) => ("FAILED", job.run_at, Some(error.clone()), Some(now)),
        };
        let write = self.core.write().await?;
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(status))
            .col_expr(jobs::Column::RunAt, Expr::value(run_at))
            .col_expr(jobs::Column::LastError, Expr::value(error.or_else(|| job.last_error.clone())))
            .col_expr(jobs::Column::FinishedAt, Expr::value(finished))
            .col_expr(jobs::Column::LockedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::LockedBy.eq(job.locked_by.clone()))
            .exec(&*write)
            .await?;
        write.commit().await
    }

    /// Extends a running job's lease while its worker is alive, so the lease
    /// can be short and a dead worker's job is taken over quickly.
    async fn keep_leased(&self, job: &jobs::Model) {
        let lease = self.core.job_lease();
        let every = (lease / 3).to_std().unwrap_or(Duration::from_secs(1)).max(Duration::from_millis(100));
        loop {
            tokio::time::sleep(every).await;
            let renewed = async {
                let write = self.core.write().await?;
                jobs::Entity::update_many()
                    .col_expr(jobs::Column::LockedUntil, Expr::value(self.core.now() + lease))
                    .filter(jobs::Column::Id.eq(job.id))
                    .filter(jobs::Column::LockedBy.eq(job.locked_by.clone()))
                    .exec(&*write)
                    .await?;
                write.commit().await
            }
            .await;
            if let Err(error) = renewed {
                tracing::warn!(job = %job.id, error = ?error, "cannot renew a job lease");
            }
        }
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
                    let outcome = tokio::select! {
                        outcome = self.core.run_job(&job) => outcome,
                        _ = self.keep_leased(&job) => unreachable!("renewing a lease never ends"),
                    };
                    if let Outcome::Failed(error) | Outcome::RetryAt(_, error) = &outcome {
                        tracing::warn!(job = %job.id, kind = %job.kind, attempt = job.attempts, %error, "job did not succeed");
                    }
                    if let Err(error) = self.finish(&job, &outcome).await {
                        tracing::error!(job = %job.id, error = ?error.cause(), "cannot record a job's outcome");
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

    /// Returns a job by id (tests and diagnostics).
    pub async fn get(&self, id: Uuid) -> Result<jobs::Model> {
        jobs::Entity::find_by_id(id).one(self.core.db()).await?.ok_or_else(|| Error::not_found("job"))
    }
}

/// Returns the delay before retry `attempt` (1-based): exponential from one
/// second, capped at ten minutes.
pub fn backoff(attempt: i32) -> chrono::Duration {
    let exponent = attempt.clamp(1, 10) as u32 - 1;
    chrono::Duration::seconds((1i64 << exponent).min(600))
}
