//! The hub: every live connection, who it belongs to, and fan-out to them.
//!
//! It owns presence (a visitor is online while one of their connections is open; which
//! inboxes have agents connected) and delivery of already-encoded frames. Delivery never
//! waits: each connection has a bounded queue, and a connection whose queue is full is
//! kicked (it recovers with `resume_after`) so that one slow reader costs nobody else
//! anything. It must not touch the store, and never holds a map guard across an await.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use dashmap::DashMap;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

/// One frame, encoded once and shared by every recipient.
pub type Frame = Arc<str>;

/// Why a connection was told to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KickReason {
    /// Its queue was full: it did not read fast enough.
    TooSlow,
}

/// The sending side of one connection, held by the hub.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    /// An agent that wants `conversation_updated` after every message, not only after
    /// changes the message frame does not carry (see `SummaryUpdates`).
    pub every_summary: bool,
    tx: mpsc::Sender<Frame>,
    kick: Arc<Kick>,
}

/// Lets the hub tell a connection's task to close it.
#[derive(Default)]
pub struct Kick {
    kicked: AtomicBool,
    notify: Notify,
}

impl Kick {
    pub fn kick(&self) {
        if !self.kicked.swap(true, Ordering::AcqRel) {
            self.notify.notify_one();
        }
    }

    pub async fn kicked(&self) {
        if self.kicked.load(Ordering::Acquire) {
            return;
        }
        self.notify.notified().await;
    }
}

/// The receiving side, owned by the connection's task.
pub struct Mailbox {
    pub rx: mpsc::Receiver<Frame>,
    pub kick: Arc<Kick>,
}

/// Which visitor connections see a conversation: the visitor's, in that inbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisitorKey {
    pub visitor: Uuid,
    pub inbox: Arc<str>,
}

#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    visitors: DashMap<VisitorKey, Vec<Conn>>,
    agents: DashMap<Arc<str>, Vec<Conn>>,
    dropped_slow: AtomicU64,
}

/// Whether a registration changed a visitor's presence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    CameOnline,
    WentOffline,
    Unchanged,
}

impl Hub {
    /// A new connection's queue; register the returned `Conn` where it belongs.
    pub fn connection(&self, queue: usize) -> (Conn, Mailbox) {
        let (tx, rx) = mpsc::channel(queue.max(1));
        let kick = Arc::new(Kick::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (
            Conn {
                id,
                every_summary: true,
                tx,
                kick: kick.clone(),
            },
            Mailbox { rx, kick },
        )
    }

    pub fn add_visitor(&self, key: VisitorKey, conn: Conn) -> Presence {
        let mut entry = self.visitors.entry(key).or_default();
        entry.push(conn);
        if entry.len() == 1 {
            Presence::CameOnline
        } else {
            Presence::Unchanged
        }
    }

    pub fn remove_visitor(&self, key: &VisitorKey, id: u64) -> Presence {
        let emptied = match self.visitors.get_mut(key) {
            Some(mut conns) => {
                conns.retain(|c| c.id != id);
                conns.is_empty()
            }
            None => return Presence::Unchanged,
        };
        if emptied && self.visitors.remove_if(key, |_, c| c.is_empty()).is_some() {
            return Presence::WentOffline;
        }
        Presence::Unchanged
    }

    pub fn visitor_online(&self, key: &VisitorKey) -> bool {
        self.visitors.get(key).is_some_and(|c| !c.is_empty())
    }

    pub fn add_agent(&self, inboxes: &[Arc<str>], conn: Conn) {
        for inbox in inboxes {
            self.agents
                .entry(inbox.clone())
                .or_default()
                .push(conn.clone());
        }
    }

    pub fn remove_agent(&self, inboxes: &[Arc<str>], id: u64) {
        for inbox in inboxes {
            if let Some(mut conns) = self.agents.get_mut(inbox) {
                conns.retain(|c| c.id != id);
            }
            self.agents.remove_if(inbox, |_, c| c.is_empty());
        }
    }

    pub fn agents_online(&self, inbox: &str) -> bool {
        self.agents.get(inbox).is_some_and(|c| !c.is_empty())
    }

    /// To every connection of a visitor in an inbox, except `skip`.
    pub fn to_visitor(&self, key: &VisitorKey, frame: &Frame, skip: Option<u64>) -> usize {
        match self.visitors.get(key) {
            Some(conns) => self.deliver(conns.iter(), frame, skip),
            None => 0,
        }
    }

    /// To every agent connection of an inbox, except `skip`.
    pub fn to_agents(&self, inbox: &str, frame: &Frame, skip: Option<u64>) -> usize {
        match self.agents.get(inbox) {
            Some(conns) => self.deliver(conns.iter(), frame, skip),
            None => 0,
        }
    }

    /// Whether any agent of the inbox wants `conversation_updated` after every message
    /// (if none does, the summary need not be built).
    pub fn wants_every_summary(&self, inbox: &str) -> bool {
        self.agents
            .get(inbox)
            .is_some_and(|conns| conns.iter().any(|c| c.every_summary))
    }

    /// A `conversation_updated` that only repeats what a `message` frame just said: to
    /// the agents that want one after every message.
    pub fn to_agents_wanting_every_summary(&self, inbox: &str, frame: &Frame) -> usize {
        match self.agents.get(inbox) {
            Some(conns) => self.deliver(conns.iter().filter(|c| c.every_summary), frame, None),
            None => 0,
        }
    }

    /// Queues the frame for each target, under the map's read lock: `try_send` never
    /// waits, so the lock is held for a few atomic operations per target.
    fn deliver<'a>(
        &self,
        targets: impl Iterator<Item = &'a Conn>,
        frame: &Frame,
        skip: Option<u64>,
    ) -> usize {
        let mut delivered = 0;
        for c in targets.filter(|c| Some(c.id) != skip) {
            match c.tx.try_send(frame.clone()) {
                Ok(()) => delivered += 1,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped_slow.fetch_add(1, Ordering::Relaxed);
                    c.kick.kick();
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        delivered
    }

    pub fn slow_dropped(&self) -> u64 {
        self.dropped_slow.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(inbox: &str) -> VisitorKey {
        VisitorKey {
            visitor: Uuid::nil(),
            inbox: inbox.into(),
        }
    }

    #[test]
    fn presence_follows_the_first_and_last_connection() {
        let hub = Hub::default();
        let (a, _ma) = hub.connection(4);
        let (b, _mb) = hub.connection(4);
        let (aid, bid) = (a.id, b.id);
        assert_eq!(hub.add_visitor(key("x"), a), Presence::CameOnline);
        assert_eq!(hub.add_visitor(key("x"), b), Presence::Unchanged);
        assert!(hub.visitor_online(&key("x")));
        assert!(!hub.visitor_online(&key("y")));
        assert_eq!(hub.remove_visitor(&key("x"), aid), Presence::Unchanged);
        assert_eq!(hub.remove_visitor(&key("x"), bid), Presence::WentOffline);
        assert!(!hub.visitor_online(&key("x")));
    }

    #[tokio::test]
    async fn a_full_queue_kicks_only_that_connection() {
        let hub = Hub::default();
        let (slow, slow_box) = hub.connection(1);
        let (fast, mut fast_box) = hub.connection(8);
        hub.add_agent(&["i".into()], slow);
        hub.add_agent(&["i".into()], fast);
        let f: Frame = "{}".into();
        assert_eq!(hub.to_agents("i", &f, None), 2);
        fast_box.rx.recv().await.expect("first");
        // The slow one never reads: its second frame overflows.
        assert_eq!(hub.to_agents("i", &f, None), 1);
        slow_box.kick.kicked().await;
        assert_eq!(hub.slow_dropped(), 1);
        assert!(fast_box.rx.recv().await.is_some());
    }
}
