//! Time for an open-loop schedule: the precise sleep to an intended instant, and the
//! conversions between `Instant` and Unix time that let stamps and schedule starts cross
//! processes. Nothing here reads the network or the report.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{sleep_until, Instant};

/// Resolves at `due`, to within a few microseconds. tokio's timers have millisecond
/// granularity and round up, which alone would add about half a millisecond (and up to
/// one) to every latency measured from an intended send time; so this sleeps to a
/// millisecond before and yields (this process has its own core) until the instant.
pub async fn at(due: Instant) {
    let coarse = due.checked_sub(Duration::from_millis(1));
    if let Some(coarse) = coarse.filter(|c| *c > Instant::now()) {
        sleep_until(coarse).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

/// Keeps the load generator's thread from ever sleeping: it polls its sockets between
/// tasks instead of waiting in the kernel. It has a core of its own, and a sleeping core
/// takes a long while to wake when a packet arrives, which would be counted against
/// whichever server is measured. `--no-spin` turns it off.
pub async fn spin() {
    loop {
        tokio::task::yield_now().await;
    }
}

pub fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub fn unix_ms() -> u64 {
    unix_nanos() / 1_000_000
}

pub fn instant_of_unix_ms(ms: u64) -> Instant {
    let now_ms = unix_ms();
    let now = Instant::now();
    if ms >= now_ms {
        now + Duration::from_millis(ms - now_ms)
    } else {
        now.checked_sub(Duration::from_millis(now_ms - ms))
            .unwrap_or(now)
    }
}

/// The Unix time in nanoseconds of an `Instant`, for stamps that cross processes.
pub fn unix_nanos_of(at: Instant) -> u64 {
    let now = Instant::now();
    let now_ns = unix_nanos();
    if at >= now {
        now_ns + (at - now).as_nanos() as u64
    } else {
        now_ns.saturating_sub((now - at).as_nanos() as u64)
    }
}

/// The Unix time in milliseconds of an `Instant`, as the report's `*_unix_ms` facts.
pub fn unix_ms_of(at: Instant) -> u64 {
    unix_nanos_of(at) / 1_000_000
}

pub fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}
