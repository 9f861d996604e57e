//! Time, injectable: the server asks a [`Clock`] instead of the system, so tests and
//! benchmarks can see exactly which time a deadline was computed from.

use std::time::{SystemTime, UNIX_EPOCH};

use widget_protocol::Millis;

pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> Millis;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> Millis {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as Millis)
            .unwrap_or(0)
    }
}
