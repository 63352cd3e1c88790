//! Counting attempts that are limited (sign-ins by account and by address,
//! passcodes by consumer and by organization), settled by the database: one
//! atomic upsert counts the attempt *before* it is tried and returns the
//! count, so racing attempts cannot slip past a limit between a read and a
//! write, and replicas share the counters.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{ConnectionTrait, Statement};

use crate::Core;
use crate::error::{Error, Result};

/// At most `max` attempts per key in a fixed window of `window`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limit {
    pub max: i32,
    pub window: Duration,
}

/// Counts one attempt under `key` in the caller's transaction; returns
/// whether it is within `limit`, and when the window ends.
pub(crate) async fn count_attempt_in(
    db: &impl ConnectionTrait,
    key: &str,
    limit: Limit,
    now: DateTime<Utc>,
) -> Result<(bool, DateTime<Utc>)> {
    let stale = now - limit.window;
    let sql = "INSERT INTO rate_limits (key, hits, window_started_at, blocked_until) VALUES ($1, 1, $2, NULL) \
               ON CONFLICT (key) DO UPDATE SET \
               hits = CASE WHEN rate_limits.window_started_at <= $3 THEN 1 ELSE rate_limits.hits + 1 END, \
               window_started_at = CASE WHEN rate_limits.window_started_at <= $3 THEN $2 \
                                        ELSE rate_limits.window_started_at END \
               RETURNING hits, window_started_at";
    let statement = Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [key.to_owned().into(), now.into(), stale.into()],
    );
    let row = db.query_one_raw(statement).await?.ok_or_else(|| Error::internal(std::io::Error::other("no row")))?;
    let hits: i32 = row.try_get("", "hits")?;
    let started: DateTime<Utc> = row.try_get("", "window_started_at")?;
    let allowed = hits <= limit.max;
    if !allowed {
        let name: Vec<&str> = key.split(':').take(2).collect();
        metrics::counter!("rate_limited_total", "limit" => name.join(":")).increment(1);
    }
    Ok((allowed, started + limit.window))
}

/// Counts one attempt under `key` in a transaction of its own; refuses it
/// with `RESOURCE_EXHAUSTED` (saying when to try again, as `refusal` words
/// it) once the window holds more than `limit.max`.
pub(crate) async fn count_attempt(core: &Core, key: &str, limit: Limit, refusal: &str) -> Result<()> {
    count_attempts(core, &[key.to_owned()], limit, refusal).await
}

/// Counts one attempt under each of `keys` in one transaction; refuses it
/// as [`count_attempt`] does once any of them is over `limit.max`.
pub(crate) async fn count_attempts(core: &Core, keys: &[String], limit: Limit, refusal: &str) -> Result<()> {
    let write = core.write().await?;
    let mut refused_until = None;
    for key in keys {
        let (allowed, again) = count_attempt_in(&*write, key, limit, core.now()).await?;
        if !allowed {
            refused_until = refused_until.max(Some(again));
        }
    }
    write.commit().await?;
    if let Some(again) = refused_until {
        return Err(Error::resource_exhausted(format!("{refusal}; try again after {}", again.format("%H:%M UTC"))));
    }
    Ok(())
}

/// Forgets the attempts under `key` (a successful sign-in).
pub(crate) async fn clear(core: &Core, key: &str) -> Result<()> {
    let write = core.write().await?;
    write
        .execute_raw(Statement::from_sql_and_values(
            core.backend(),
            "DELETE FROM rate_limits WHERE key = $1",
            [key.to_owned().into()],
        ))
        .await?;
    write.commit().await
}
