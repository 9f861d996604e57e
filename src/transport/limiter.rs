//! Caps on concurrent WebSocket connections, in total and per client address.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

#[derive(Default)]
pub struct Limiter {
    total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds as many connections as it may (HTTP 503).
    Full,
    /// This address holds as many as it may (HTTP 429).
    PerAddress,
}

/// Held for the life of a connection; gives its slots back when dropped.
pub struct Slot {
    limiter: Arc<Limiter>,
    ip: IpAddr,
}

impl Limiter {
    pub fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_ip: usize,
    ) -> Result<Slot, Refused> {
        if self.total.fetch_add(1, Ordering::AcqRel) >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        let mut n = self.per_ip.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            drop(n);
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::PerAddress);
        }
        *n += 1;
        Ok(Slot {
            limiter: self.clone(),
            ip,
        })
    }

    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.limiter.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(mut n) = self.limiter.per_ip.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
        }
        self.limiter.per_ip.remove_if(&self.ip, |_, n| *n == 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_total_and_per_address_and_releases_on_drop() {
        let l = Arc::new(Limiter::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let s1 = l.acquire(a, 3, 2).expect("1");
        let _s2 = l.acquire(a, 3, 2).expect("2");
        assert_eq!(l.acquire(a, 3, 2).err(), Some(Refused::PerAddress));
        let _s3 = l.acquire(b, 3, 2).expect("3");
        assert_eq!(l.acquire(b, 3, 2).err(), Some(Refused::Full));
        drop(s1);
        let _s4 = l.acquire(a, 3, 2).expect("the slot came back");
        assert_eq!(l.open(), 3);
    }
}
