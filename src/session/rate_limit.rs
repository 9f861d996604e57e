//! A per-connection sliding-window limit on `send`/`reply` frames.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

pub struct RateLimit {
    max: usize,
    window: Duration,
    recent: VecDeque<Instant>,
}

impl RateLimit {
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimit {
            max: max as usize,
            window,
            // Grown on the first frame: most connections never send one.
            recent: VecDeque::new(),
        }
    }

    /// Counts a frame at `now`; false when it is over the limit (and is not counted).
    /// A limit of 0 allows everything.
    pub fn allow(&mut self, now: Instant) -> bool {
        if self.max == 0 {
            return true;
        }
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= self.window)
        {
            self.recent.pop_front();
        }
        if self.recent.len() >= self.max {
            return false;
        }
        self.recent.push_back(now);
        true
    }
}

/// The checks every `send` and `reply` passes before anything is stored: a usable
/// `client_msg_id`, the rate limit, and the text's length. Returns the trimmed text.
pub fn admit(
    rate: &mut RateLimit,
    client_msg_id: &str,
    text: &str,
    limits: &crate::config::Limits,
) -> crate::error::Result<String> {
    use crate::error::Error;
    use widget_protocol::ErrorCode;
    if client_msg_id.is_empty() || client_msg_id.len() > 128 {
        return Err(Error::rejected(
            ErrorCode::BadFrame,
            "client_msg_id must be 1 to 128 bytes",
        ));
    }
    if !rate.allow(Instant::now()) {
        return Err(Error::rejected(
            ErrorCode::RateLimited,
            format!(
                "more than {} messages in {:?}; this one was not stored",
                limits.rate_count, limits.rate_window
            ),
        ));
    }
    crate::validate::text(text, limits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twenty_per_ten_seconds() {
        let mut r = RateLimit::new(20, Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(r.allow(t0 + Duration::from_millis(i)), "{i}");
        }
        assert!(!r.allow(t0 + Duration::from_secs(1)));
        assert!(!r.allow(t0 + Duration::from_millis(9_999)));
        assert!(r.allow(t0 + Duration::from_secs(10)));
    }
}
