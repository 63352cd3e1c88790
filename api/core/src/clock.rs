//! Time as a dependency: production reads the system clock, tests move a
//! manual one.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;

use chrono::{DateTime, Duration, Utc};

use crate::error::{Error, Result};

/// The earliest instant a caller may name (1970-01-01).
const EARLIEST_SECONDS: i64 = 0;
/// The latest instant a caller may name (9999-12-31T23:59:59Z).
const LATEST_SECONDS: i64 = 253_402_300_799;

/// Accepts an instant a caller gave only within 1970–9999, so that every
/// sum or difference the core computes with it stays representable.
pub fn supported_instant(at: DateTime<Utc>, what: &str) -> Result<DateTime<Utc>> {
    if (EARLIEST_SECONDS..=LATEST_SECONDS).contains(&at.timestamp()) {
        Ok(at)
    } else {
        Err(Error::invalid_argument(format!("{what} must be between 1970 and 9999")))
    }
}

/// A source of the current time, and of waiting for a time to come.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    /// Resolves once [`Clock::now`] has reached `at` (at once if it has).
    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let left = (at - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(left))
    }
}

/// A clock that tests move by hand. Frozen ([`ManualClock::new`]) it only
/// moves when told to; following the system clock
/// ([`ManualClock::following_system`]) it runs on in real time and jumps
/// ahead when told to, so a running server's retries and timeouts still
/// happen while a test skips an hour. Sleepers wake when it is moved.
#[derive(Debug)]
pub struct ManualClock {
    /// The moved time (frozen) or the offset from the system clock (following).
    shift: watch::Sender<DateTime<Utc>>,
    following: bool,
}

impl ManualClock {
    /// A clock standing at `start` until moved.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self { shift: watch::channel(start).0, following: false }
    }

    /// A clock that reads the system clock plus whatever it was moved by.
    pub fn following_system() -> Self {
        Self { shift: watch::channel(DateTime::<Utc>::UNIX_EPOCH).0, following: true }
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.shift.send_modify(|shift| *shift += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        let shift = *self.shift.borrow();
        if self.following { Utc::now() + (shift - DateTime::<Utc>::UNIX_EPOCH) } else { shift }
    }

    fn sleep_until(&self, at: DateTime<Utc>) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let mut moved = self.shift.subscribe();
        let following = self.following;
        let now = move |shift: DateTime<Utc>| {
            if following { Utc::now() + (shift - DateTime::<Utc>::UNIX_EPOCH) } else { shift }
        };
        Box::pin(async move {
            loop {
                let current = now(*moved.borrow_and_update());
                if current >= at {
                    return;
                }
                // A frozen clock only moves when told; a following one moves
                // on its own too.
                let left =
                    if following { (at - current).to_std().unwrap_or_default() } else { std::time::Duration::MAX };
                tokio::select! {
                    changed = moved.changed() => if changed.is_err() { return std::future::pending().await },
                    _ = tokio::time::sleep(left.min(std::time::Duration::from_secs(86_400))) => {}
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_sleeper_wakes_when_the_clock_is_moved_past_its_time() {
        let clock = std::sync::Arc::new(ManualClock::new(Utc::now()));
        let at = clock.now() + Duration::hours(1);
        let sleeper = tokio::spawn(clock.sleep_until(at));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished(), "a frozen clock does not reach its time by itself");
        clock.advance(Duration::minutes(59));
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!sleeper.is_finished());
        clock.advance(Duration::minutes(2));
        tokio::time::timeout(std::time::Duration::from_secs(5), sleeper).await.unwrap().unwrap();
    }

    #[test]
    fn a_following_clock_runs_with_the_system_and_jumps_when_moved() {
        let clock = ManualClock::following_system();
        let before = Utc::now();
        assert!((clock.now() - before).num_seconds().abs() < 5);
        clock.advance(Duration::hours(2));
        assert!(clock.now() - Utc::now() > Duration::minutes(119));
    }
}
