//! Time, injectable: the server asks a [`Clock`] instead of the system, so tests and
//! benchmarks can see exactly which time a deadline was computed from.
//!
//! Points in time are `Millis` everywhere (the protocol's type, stored as is); the
//! conversions to and from `Duration` are here, and nowhere else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
            .map(millis)
            .unwrap_or(0)
    }
}

/// A duration in milliseconds, saturating.
pub fn millis(d: Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// Whole seconds (a configured delay) in milliseconds, saturating.
pub fn from_secs(secs: u64) -> Millis {
    millis(Duration::from_secs(secs))
}

/// `d` after `at`, saturating.
pub fn after(at: Millis, d: Duration) -> Millis {
    at.saturating_add(millis(d))
}

/// How long from `now` until `at`; zero when it has passed.
pub fn until(at: Millis, now: Millis) -> Duration {
    Duration::from_millis(u64::try_from(at.saturating_sub(now)).unwrap_or(0))
}

/// The time `at` as the system's.
pub fn system_time(at: Millis) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(at).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_saturate_and_never_go_before_the_epoch() {
        assert_eq!(millis(Duration::from_millis(1_500)), 1_500);
        assert_eq!(millis(Duration::MAX), Millis::MAX);
        assert_eq!(from_secs(60), 60_000);
        assert_eq!(from_secs(u64::MAX), Millis::MAX);
        assert_eq!(after(1_000, Duration::from_secs(2)), 3_000);
        assert_eq!(after(Millis::MAX, Duration::from_secs(1)), Millis::MAX);
        assert_eq!(until(3_000, 1_000), Duration::from_secs(2));
        assert_eq!(until(1_000, 3_000), Duration::ZERO);
        assert_eq!(system_time(-5), UNIX_EPOCH);
        assert_eq!(system_time(1_000), UNIX_EPOCH + Duration::from_secs(1));
    }
}
