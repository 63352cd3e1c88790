//! Time as a dependency: production reads the system clock, tests move a
//! manual one.

use std::sync::Mutex;

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

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self(Mutex::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
