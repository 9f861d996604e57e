//! The process's file-descriptor limit: raising the soft limit to the hard one at start,
//! and the connection caps that leave room below it for the store, the logs and
//! outgoing SMTP. It reads and sets the limit only; it opens nothing.

use crate::config::Limits;
use crate::transport::limiter::Caps;

/// Descriptors kept out of the socket cap: the store and its log, the data directory's
/// lock, the listener, the runtime's own, outgoing SMTP, refused sockets being closed.
pub const RESERVE: u64 = 128;

/// The soft limit before and after [`raise`], and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoFile {
    pub before: u64,
    pub soft: u64,
    pub hard: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot read or raise the file-descriptor limit: {0}")]
pub struct LimitError(#[from] std::io::Error);

/// The soft and hard limit on open descriptors now.
pub fn current() -> Result<(u64, u64), LimitError> {
    Ok(rlimit::Resource::NOFILE.get()?)
}

/// Raises the soft limit on open descriptors to the hard limit.
pub fn raise() -> Result<NoFile, LimitError> {
    let (before, hard) = current()?;
    let soft = rlimit::increase_nofile_limit(hard)?;
    Ok(NoFile { before, soft, hard })
}

/// The caps in force under a soft descriptor limit of `soft`.
pub fn caps(limits: &Limits, soft: u64) -> Caps {
    let budget = usize::try_from(soft.saturating_sub(RESERVE)).unwrap_or(usize::MAX);
    let sockets = limits.max_sockets.map_or(budget, |n| n.min(budget));
    Caps {
        sockets,
        websockets: limits.max_connections.min(sockets),
        per_address: limits.max_connections_per_ip,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_caps_leave_the_reserve_below_the_descriptor_limit() {
        let limits = Limits::default();
        let c = caps(&limits, 1024);
        assert_eq!(c.sockets, 1024 - RESERVE as usize);
        assert_eq!(
            c.websockets, c.sockets,
            "the WebSocket cap is held below it"
        );
        assert_eq!(c.per_address, 200);
        let c = caps(&limits, 1 << 20);
        assert_eq!(c.websockets, 50_000);
        let small = Limits {
            max_sockets: Some(10),
            ..Limits::default()
        };
        assert_eq!(caps(&small, 1 << 20).sockets, 10);
        assert_eq!(caps(&small, 100).sockets, 0, "never above the budget");
        assert_eq!(caps(&limits, u64::MAX).websockets, 50_000);
    }

    #[test]
    fn raise_lifts_the_soft_limit_to_the_hard_one() {
        let got = raise().expect("raise");
        assert_eq!(got.soft, got.hard);
        assert_eq!(current().expect("read"), (got.hard, got.hard));
    }
}
