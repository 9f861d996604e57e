//! Rate limits shared by every connection, keyed by who is asking: a visitor (across
//! all their tabs and reconnects), an agent, a client address, an inbox.
//!
//! Each [`Rule`] is a token bucket per key (the generic cell rate algorithm: one
//! timestamp per key): `count` per `window` means a burst of `count`, then one more
//! every `window / count`. Its memory is bounded: keys whose bucket is full again are
//! swept, and past `max_keys` new keys share one overflow bucket, so a client cycling
//! addresses or tokens cannot grow the map. This module decides only yes or no (and
//! when to retry); it must not touch the store or the hub.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use widget_protocol::ErrorCode;

use crate::config::{Limits, Rate};
use crate::error::Error;
use crate::ids::VisitorId;

/// The key per-address limits use: an IPv4 address, or the /64 prefix of an IPv6 one
/// (one household or office gets a /64). An IPv4-mapped IPv6 address is its IPv4 one.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !((1u128 << 64) - 1))),
        },
    }
}

/// One limit, per key.
pub struct Rule<K> {
    /// What is limited, for the error message ("messages from this visitor").
    what: &'static str,
    rate: Rate,
    max_keys: usize,
    epoch: Instant,
    /// Per key, the bucket's "theoretical arrival time" in nanoseconds after `epoch`:
    /// the bucket is full again once that time has passed.
    keys: DashMap<K, u64>,
    /// The bucket every key shares once `keys` holds `max_keys`.
    overflow: Mutex<u64>,
    last_sweep: AtomicU64,
}

impl<K: Hash + Eq + Clone> Rule<K> {
    pub fn new(what: &'static str, rate: Rate, max_keys: usize) -> Self {
        Rule {
            what,
            rate,
            max_keys: max_keys.max(1),
            epoch: Instant::now(),
            keys: DashMap::new(),
            overflow: Mutex::new(0),
            last_sweep: AtomicU64::new(0),
        }
    }

    /// Counts one event for `key` now, or refuses it with `rate_limited`.
    pub fn admit(&self, key: &K) -> Result<(), Error> {
        self.check(key, Instant::now()).map_err(|retry| {
            Error::rejected(
                ErrorCode::RateLimited,
                format!(
                    "too many {} (at most {}); try again in {} s",
                    self.what,
                    self.rate,
                    retry.as_secs() + u64::from(retry.subsec_nanos() > 0)
                ),
            )
        })
    }

    /// Counts one event for `key` at `now`; `Err(wait)` when it is over the limit (and
    /// is not counted), with how long until one more would be allowed.
    pub fn check(&self, key: &K, now: Instant) -> Result<(), Duration> {
        if self.rate.count == 0 {
            return Ok(());
        }
        let t = nanos(now.saturating_duration_since(self.epoch));
        self.sweep(t);
        if let Some(mut tat) = self.keys.get_mut(key) {
            return self.take(&mut tat, t);
        }
        if self.keys.len() < self.max_keys {
            let mut tat = self.keys.entry(key.clone()).or_insert(0);
            return self.take(&mut tat, t);
        }
        let mut shared = self.overflow.lock().unwrap_or_else(|p| p.into_inner());
        self.take(&mut shared, t)
    }

    /// Keys tracked now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// One token from the bucket whose state is `tat`, at `t`.
    fn take(&self, tat: &mut u64, t: u64) -> Result<(), Duration> {
        let window = nanos(self.rate.window);
        let step = window / u64::from(self.rate.count);
        let tolerance = window - step;
        let start = (*tat).max(t);
        if start - t > tolerance {
            return Err(Duration::from_nanos(start - tolerance - t));
        }
        *tat = start + step;
        Ok(())
    }

    /// Forgets keys whose bucket is full again (they are as good as absent), at most
    /// once per window (and at least once a minute).
    fn sweep(&self, t: u64) {
        let every = nanos(
            self.rate
                .window
                .clamp(Duration::from_millis(1), MAX_SWEEP_EVERY),
        );
        let last = self.last_sweep.load(Ordering::Relaxed);
        if t.saturating_sub(last) < every {
            return;
        }
        if self
            .last_sweep
            .compare_exchange(last, t, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.keys.retain(|_, tat| *tat > t);
        }
    }
}

const MAX_SWEEP_EVERY: Duration = Duration::from_secs(60);

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Every shared limit of a running server.
pub struct Throttles {
    pub send_per_visitor: Rule<VisitorId>,
    pub send_per_address: Rule<IpAddr>,
    pub reply_per_agent: Rule<Arc<str>>,
    pub new_visitors_per_address: Rule<IpAddr>,
    pub new_conversations_per_address: Rule<IpAddr>,
    pub new_conversations_per_inbox: Rule<Arc<str>>,
    pub email_per_visitor: Rule<VisitorId>,
    pub email_per_address: Rule<IpAddr>,
    /// Keyed by the hub's connection id.
    pub list_per_connection: Rule<u64>,
    /// `mark_read`s below a conversation's last message (they count messages), keyed
    /// by the hub's connection id.
    pub count_reads_per_connection: Rule<u64>,
    /// Team administration frames, keyed by the hub's connection id.
    pub admin_per_connection: Rule<u64>,
    /// Attachment uploads, keyed by the uploader (`v:` visitor id or `a:` agent id).
    pub uploads_per_uploader: Rule<Arc<str>>,
    pub uploads_per_address: Rule<IpAddr>,
    /// Canned reply frames, keyed by the hub's connection id.
    pub canned_per_connection: Rule<u64>,
    /// Sign-in attempts (`POST /api/session`) per client address.
    pub sign_in_per_address: Rule<IpAddr>,
}

impl Throttles {
    pub fn new(l: &Limits) -> Self {
        let per_msg = Rate {
            count: l.rate_count,
            window: l.rate_window,
        };
        let keys = l.throttle_max_keys;
        Throttles {
            send_per_visitor: Rule::new("messages from this visitor", per_msg, keys),
            send_per_address: Rule::new("messages from this address", l.send_per_address, keys),
            reply_per_agent: Rule::new("replies from this agent", per_msg, keys),
            new_visitors_per_address: Rule::new(
                "new visitors from this address",
                l.new_visitors_per_address,
                keys,
            ),
            new_conversations_per_address: Rule::new(
                "new conversations from this address",
                l.new_conversations_per_address,
                keys,
            ),
            new_conversations_per_inbox: Rule::new(
                "new conversations in this inbox",
                l.new_conversations_per_inbox,
                keys,
            ),
            email_per_visitor: Rule::new("emails from this visitor", l.email_per_visitor, keys),
            email_per_address: Rule::new("emails from this address", l.email_per_address, keys),
            list_per_connection: Rule::new("lists on this connection", l.list_per_connection, keys),
            count_reads_per_connection: Rule::new(
                "reads below the last message on this connection",
                l.count_reads_per_connection,
                keys,
            ),
            admin_per_connection: Rule::new(
                "team changes on this connection",
                l.admin_per_connection,
                keys,
            ),
            uploads_per_uploader: Rule::new("uploads from you", l.uploads_per_uploader, keys),
            uploads_per_address: Rule::new(
                "uploads from this address",
                l.uploads_per_address,
                keys,
            ),
            canned_per_connection: Rule::new(
                "canned reply requests on this connection",
                l.canned_per_connection,
                keys,
            ),
            sign_in_per_address: Rule::new(
                "sign-in attempts from this address",
                l.sign_in_per_address,
                keys,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(count: u32, window_ms: u64, max_keys: usize) -> Rule<u32> {
        Rule::new(
            "things",
            Rate {
                count,
                window: Duration::from_millis(window_ms),
            },
            max_keys,
        )
    }

    #[test]
    fn a_burst_of_count_then_one_per_step() {
        let r = rule(20, 10_000, 10);
        let t0 = Instant::now();
        for i in 0..20 {
            assert!(r.check(&1, t0 + Duration::from_millis(i)).is_ok(), "{i}");
        }
        let wait = r
            .check(&1, t0 + Duration::from_millis(100))
            .expect_err("refused");
        assert!(
            wait <= Duration::from_millis(500) && wait > Duration::ZERO,
            "{wait:?}"
        );
        // One token back each window / count.
        assert!(r.check(&1, t0 + Duration::from_millis(520)).is_ok());
        assert!(r.check(&1, t0 + Duration::from_millis(600)).is_err());
        // Another key has its own bucket.
        assert!(r.check(&2, t0 + Duration::from_millis(600)).is_ok());
        // A full window later the whole burst is back.
        let later = t0 + Duration::from_secs(21);
        for i in 0..20 {
            assert!(r.check(&1, later).is_ok(), "{i}");
        }
        assert!(r.check(&1, later).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        let r = rule(0, 1_000, 1);
        let t0 = Instant::now();
        for _ in 0..1_000 {
            assert!(r.check(&1, t0).is_ok());
        }
        assert!(r.is_empty());
    }

    #[test]
    fn refusals_are_not_counted() {
        let r = rule(2, 1_000, 10);
        let t0 = Instant::now();
        assert!(r.check(&1, t0).is_ok());
        assert!(r.check(&1, t0).is_ok());
        for _ in 0..100 {
            assert!(r.check(&1, t0 + Duration::from_millis(10)).is_err());
        }
        // Hammering while refused does not push the next token further away.
        assert!(r.check(&1, t0 + Duration::from_millis(501)).is_ok());
    }

    #[test]
    fn keys_idle_for_a_window_are_swept() {
        let r = rule(3, 1_000, 1_000);
        let t0 = Instant::now();
        for k in 0..500 {
            assert!(r.check(&k, t0).is_ok());
        }
        assert_eq!(r.len(), 500);
        // A window on, every bucket is full again: the next check sweeps them all.
        assert!(r.check(&9_999, t0 + Duration::from_millis(1_001)).is_ok());
        assert_eq!(r.len(), 1);
    }

    #[test]
    fn past_the_key_cap_new_keys_share_one_bucket() {
        let r = rule(2, 60_000, 100);
        let t0 = Instant::now();
        for k in 0..100 {
            assert!(r.check(&k, t0).is_ok());
        }
        // Cycling keys gains nothing once the map is full: the rest share a bucket.
        let mut allowed = 0;
        for k in 100..10_000 {
            if r.check(&k, t0).is_ok() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 2);
        assert_eq!(r.len(), 100);
        // Known keys keep their own buckets.
        assert!(r.check(&5, t0).is_ok());
    }

    #[test]
    fn ipv6_addresses_are_keyed_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("an address");
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().expect("an address");
        let c: IpAddr = "2001:db8:1:3::1".parse().expect("an address");
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().expect("an address");
        assert_eq!(
            address_key(mapped),
            "192.0.2.7".parse::<IpAddr>().expect("an address")
        );
        let v4: IpAddr = "192.0.2.7".parse().expect("an address");
        assert_eq!(address_key(v4), v4);
    }

    #[test]
    fn the_refusal_says_when_to_retry() {
        let r = rule(1, 30_000, 10);
        assert!(r.admit(&1).is_ok());
        let e = r.admit(&1).expect_err("refused");
        assert_eq!(e.code(), ErrorCode::RateLimited);
        let text = e.to_string();
        assert!(text.contains("try again in 30 s"), "{text}");
        assert!(text.contains("things"), "{text}");
    }
}
