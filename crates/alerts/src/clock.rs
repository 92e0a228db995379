//! The wall clock, injected: leases, webhook timestamps and event times come from a [`Clock`]
//! so tests choose the time instead of waiting for it.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

/// A source of wall-clock time, epoch milliseconds.
pub trait Clock: Send + Sync + fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        metrics_schema::EventTime::now().as_millis()
    }
}

/// A clock that shows what it is set to (tests).
#[derive(Debug, Default)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(ms: i64) -> Self {
        FixedClock(AtomicI64::new(ms))
    }

    pub fn set(&self, ms: i64) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}
