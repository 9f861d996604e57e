//! Caps on open connections: TCP sockets from accept until they close, and WebSocket
//! connections from the upgrade until they end, in total and per client address.
//!
//! A socket takes a slot at accept ([`Limiter::accept`], keyed by its TCP peer) and
//! holds it while it is in its HTTP handshake or on plain HTTP; an upgraded one holds a
//! WebSocket slot ([`Limiter::upgrade`], keyed by the client address, which behind a
//! trusted proxy is the forwarded one). Both kinds together stay under the socket cap,
//! which leaves room below the file-descriptor limit. Addresses are counted per IPv4
//! address and per IPv6 /64. This module only counts: it never reads or writes sockets.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use dashmap::DashMap;

/// The caps in force, fixed at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Open sockets of every kind (HTTP and WebSocket).
    pub sockets: usize,
    /// WebSocket connections.
    pub websockets: usize,
    /// Sockets not upgraded, and WebSocket connections, each per client address.
    pub per_address: usize,
}

/// Counts per address and in total for one kind of connection.
#[derive(Default)]
struct Pool {
    total: AtomicUsize,
    per_key: DashMap<IpAddr, usize>,
}

pub struct Limiter {
    caps: Caps,
    sockets: Arc<Pool>,
    websockets: Arc<Pool>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The server holds as many connections as it may (HTTP 503).
    Full,
    /// This address holds as many as it may (HTTP 429).
    PerAddress,
}

/// Held for the life of a socket or connection; gives its slots back when dropped.
pub struct Slot {
    pool: Arc<Pool>,
    key: Option<IpAddr>,
}

/// What an address is counted as: itself for IPv4 (also IPv4-mapped IPv6), its /64 for
/// IPv6, since one household or host is usually given a whole /64.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

impl Pool {
    /// One more, unless this pool's count plus `others` is at `max_total` or the key's
    /// count at `max_per`.
    fn take(
        self: &Arc<Self>,
        others: usize,
        max_total: usize,
        key: Option<IpAddr>,
        max_per: usize,
    ) -> Result<Slot, Refused> {
        if self.total.fetch_add(1, Ordering::AcqRel) + others >= max_total {
            self.total.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Full);
        }
        if let Some(k) = key {
            let mut n = self.per_key.entry(k).or_insert(0);
            if *n >= max_per {
                drop(n);
                self.per_key.remove_if(&k, |_, n| *n == 0);
                self.total.fetch_sub(1, Ordering::AcqRel);
                return Err(Refused::PerAddress);
            }
            *n += 1;
        }
        Ok(Slot {
            pool: self.clone(),
            key,
        })
    }

    fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Limiter {
    pub fn new(caps: Caps) -> Limiter {
        Limiter {
            caps,
            sockets: Arc::default(),
            websockets: Arc::default(),
        }
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// A slot for a socket just accepted from `peer`; `None` counts it in the total only
    /// (a trusted proxy, which carries many clients).
    pub fn accept(&self, peer: Option<IpAddr>) -> Result<Slot, Refused> {
        self.sockets.take(
            self.websockets.open(),
            self.caps.sockets,
            peer.map(address_key),
            self.caps.per_address,
        )
    }

    /// A slot for a WebSocket connection of `client`, taken at the upgrade. The socket
    /// already holds its place under the socket cap, and gives it up once upgraded.
    pub fn upgrade(&self, client: IpAddr) -> Result<Slot, Refused> {
        self.websockets.take(
            0,
            self.caps.websockets,
            Some(address_key(client)),
            self.caps.per_address,
        )
    }

    /// Open WebSocket connections.
    pub fn open(&self) -> usize {
        self.websockets.open()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.pool.total.fetch_sub(1, Ordering::AcqRel);
        if let Some(k) = self.key {
            if let Some(mut n) = self.pool.per_key.get_mut(&k) {
                *n = n.saturating_sub(1);
            }
            self.pool.per_key.remove_if(&k, |_, n| *n == 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(sockets: usize, websockets: usize, per_address: usize) -> Limiter {
        Limiter::new(Caps {
            sockets,
            websockets,
            per_address,
        })
    }

    #[test]
    fn caps_websockets_in_total_and_per_address_and_releases_on_drop() {
        let l = limiter(100, 3, 2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let s1 = l.upgrade(a).expect("1");
        let _s2 = l.upgrade(a).expect("2");
        assert_eq!(l.upgrade(a).err(), Some(Refused::PerAddress));
        let _s3 = l.upgrade(b).expect("3");
        assert_eq!(l.upgrade(b).err(), Some(Refused::Full));
        drop(s1);
        let _s4 = l.upgrade(a).expect("the slot came back");
        assert_eq!(l.open(), 3);
    }

    #[test]
    fn sockets_count_per_address_at_accept_and_share_the_total_with_websockets() {
        let l = limiter(4, 10, 2);
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let _p1 = l.accept(Some(a)).expect("1");
        let p2 = l.accept(Some(a)).expect("2");
        assert_eq!(l.accept(Some(a)).err(), Some(Refused::PerAddress));
        // A trusted proxy is counted in the total only.
        let _proxy = l.accept(None).expect("proxy");
        let _w = l.upgrade(b).expect("a websocket");
        // Four open: sockets and WebSockets together fill the socket cap.
        assert_eq!(l.accept(Some(b)).err(), Some(Refused::Full));
        assert_eq!(l.accept(None).err(), Some(Refused::Full));
        drop(p2);
        let _p3 = l.accept(Some(a)).expect("room again");
    }

    #[test]
    fn ipv6_addresses_are_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let l = limiter(100, 100, 2);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let _a = l.accept(Some(ip("2001:db8:1:2::1"))).expect("1");
        let _b = l.accept(Some(ip("2001:db8:1:2:ffff::9"))).expect("2");
        assert_eq!(
            l.accept(Some(ip("2001:db8:1:2::77"))).err(),
            Some(Refused::PerAddress),
            "the same /64"
        );
        let _c = l.accept(Some(ip("2001:db8:1:3::1"))).expect("another /64");
        assert_eq!(address_key(ip("::ffff:192.0.2.7")), ip("192.0.2.7"));
        assert_eq!(
            address_key(ip("2001:db8:1:2:3:4:5:6")),
            ip("2001:db8:1:2::")
        );
    }
}
