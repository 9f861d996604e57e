//! The hub: every live connection, who it belongs to, and delivery to them (who hears
//! what is `fanout`'s to decide).
//!
//! It owns presence (a visitor is online while one of their connections is open, and
//! for a grace period after the last one closed, so that a reload or a reconnect is not
//! announced to agents as leaving and coming back; which inboxes have agents
//! connected), delivery of already-encoded frames, and telling connections to close
//! (all of one agent's, [`Hub::close_agents`]; all signed in by one sign-in session,
//! [`Hub::close_sign_in`]). Delivery never waits: each connection
//! has a bounded queue, and a connection that stopped reading is kicked (it recovers with `resume_after`) so that one slow reader costs nobody else
//! anything, while one that is reading gets room for a burst. It must not touch the
//! store, and never holds a map guard across an await.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::task::AtomicWaker;
use tokio::sync::Notify;

/// One frame, encoded once and shared by every recipient.
pub type Frame = Arc<str>;

/// Why the server closes a connection it was told to close ([`Hub::close_agents`]):
/// the close frame's code and reason, and whether frames queued before are written
/// first (a reconnect's notice behind what the team told it) or dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closing {
    pub code: u16,
    pub reason: &'static str,
    pub flush: bool,
}

/// What ended a connection from the hub's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// It stopped reading while its queue was full.
    Kicked,
    /// It was told to close ([`Hub::close_agents`]).
    Closed(Closing),
}

/// The sending side of one connection, held by the hub.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    /// An admin's connection: it hears of changes to the team.
    pub admin: bool,
    /// An agent that wants `conversation_updated` after every message, not only after
    /// changes the message frame does not carry (see `SummaryUpdates`).
    pub every_summary: bool,
    /// The agent this connection is of (None: a visitor's), for what each agent hears
    /// apart (their own `unread`, their own typing).
    pub agent: Option<crate::ids::AgentId>,
    /// The sign-in session an agent connection was authenticated by (None: a token),
    /// so that signing out closes it.
    pub sign_in: Option<crate::signin::SessionKey>,
    queue: Arc<Queue>,
}

/// One connection's queue, between the hub (which pushes and kicks) and the
/// connection's task (which takes). An idle connection's queue holds no buffer: the
/// list allocates on the first frame (most visitors are never sent one), unlike a
/// channel, which allocates its first block of slots up front.
struct Queue {
    frames: Mutex<Frames>,
    /// Frames queued before the hub looks at whether the connection is still reading.
    capacity: usize,
    /// The most bytes of frames the queue holds (see [`Budget`]).
    max_bytes: usize,
    /// The connection's task, woken when a frame is queued or it is kicked.
    waker: AtomicWaker,
    kicked: AtomicBool,
    /// Set once when the connection is told to close.
    closing: std::sync::OnceLock<Closing>,
    /// The task is gone: frames for it are dropped.
    closed: AtomicBool,
}

#[derive(Default)]
struct Frames {
    list: VecDeque<Frame>,
    /// Bytes of the frames in `list`.
    bytes: usize,
    /// Frames the connection's task has taken so far: its progress.
    taken: u64,
    /// When the queue was last seen at capacity, and `taken` then.
    full_since: Option<(Instant, u64)>,
}

impl Queue {
    fn frames(&self) -> MutexGuard<'_, Frames> {
        // A panic while holding this lock left a list of frames, still whole.
        self.frames.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Slots an emptied queue keeps (more were a burst's, and are freed).
const KEEP_ROOM: usize = 32;

/// A connection at capacity is kicked once it has taken nothing for this long…
pub const STALLED: Duration = Duration::from_secs(1);
/// …or at once when it holds this many times its capacity: a reader that keeps taking
/// frames rides out a burst (or a scheduling hiccup of its task), one that stopped is
/// cut off, and memory stays bounded either way.
pub const BURST_ROOM: usize = 4;

/// What one connection's queue may hold.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Frames queued before the hub looks at whether the connection is still reading;
    /// it may hold [`BURST_ROOM`] times as many while it is.
    pub frames: usize,
    /// Bytes of queued frames the queue never goes past: a frame that would take it over
    /// kicks the connection (an empty queue takes any one frame). From a
    /// [`BURST_ROOM`]th of this on, the queue counts as full, as at `frames`.
    pub bytes: usize,
}

impl Frames {
    /// Whether the connection should be kicked rather than queue `adding` more bytes:
    /// the frame would take it past its bytes, or the queue is full (at its frames, or a
    /// [`BURST_ROOM`]th of its bytes) and the connection stalled.
    fn kick_before(&mut self, q: &Queue, adding: usize) -> bool {
        if !self.list.is_empty() && self.bytes.saturating_add(adding) > q.max_bytes {
            return true;
        }
        let full = self.list.len() >= q.capacity || self.bytes >= q.max_bytes / BURST_ROOM;
        full && self.stalled(q.capacity)
    }

    /// Whether a connection whose queue is full should be kicked now.
    fn stalled(&mut self, capacity: usize) -> bool {
        if self.list.len() >= capacity.saturating_mul(BURST_ROOM) {
            return true;
        }
        let now = Instant::now();
        match self.full_since {
            Some((since, taken)) if taken == self.taken => now.duration_since(since) >= STALLED,
            _ => {
                self.full_since = Some((now, self.taken));
                false
            }
        }
    }
}

/// What pushing a frame did.
enum Pushed {
    Queued,
    /// The queue was full: the connection was kicked.
    Full,
    Closed,
}

impl Conn {
    fn push(&self, frame: &Frame) -> Pushed {
        let q = &self.queue;
        if q.closed.load(Ordering::Acquire) {
            return Pushed::Closed;
        }
        {
            let mut frames = q.frames();
            if frames.kick_before(q, frame.len()) {
                drop(frames);
                q.kicked.store(true, Ordering::Release);
                q.waker.wake();
                return Pushed::Full;
            }
            frames.list.push_back(frame.clone());
            frames.bytes += frame.len();
        }
        q.waker.wake();
        Pushed::Queued
    }
}

/// The receiving side, owned by the connection's task. Both of its waits register the
/// same waker, so they may be polled side by side in one `select!`.
pub struct Mailbox {
    queue: Arc<Queue>,
}

impl Mailbox {
    /// A frame already queued, without waiting.
    pub fn try_recv(&self) -> Option<Frame> {
        let mut frames = self.queue.frames();
        let frame = frames.list.pop_front();
        if let Some(f) = &frame {
            frames.taken += 1;
            frames.bytes -= f.len();
        }
        // A burst's worth of room is given back once the burst is gone.
        if frames.list.is_empty() && frames.list.capacity() > KEEP_ROOM {
            frames.list = VecDeque::new();
        }
        frame
    }

    /// The next queued frame.
    pub async fn recv(&self) -> Frame {
        std::future::poll_fn(|cx| self.poll_when(cx, || self.try_recv())).await
    }

    /// Resolves once the hub kicked this connection or told it to close.
    pub async fn ended(&self) -> Ended {
        let ended = || match self.queue.closing.get() {
            Some(c) => Some(Ended::Closed(*c)),
            None => self
                .queue
                .kicked
                .load(Ordering::Acquire)
                .then_some(Ended::Kicked),
        };
        std::future::poll_fn(|cx| self.poll_when(cx, ended)).await
    }

    /// Ready with `check`'s value once it has one; the waker is registered before the
    /// second look, so a push between the two is not missed.
    fn poll_when<T>(&self, cx: &mut Context<'_>, check: impl Fn() -> Option<T>) -> Poll<T> {
        if let Some(v) = check() {
            return Poll::Ready(v);
        }
        self.queue.waker.register(cx.waker());
        match check() {
            Some(v) => Poll::Ready(v),
            None => Poll::Pending,
        }
    }
}

impl Drop for Mailbox {
    fn drop(&mut self) {
        self.queue.closed.store(true, Ordering::Release);
        let mut frames = self.queue.frames();
        frames.list.clear();
        frames.bytes = 0;
    }
}

/// Which visitor connections see a conversation: the visitor's, in that inbox.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VisitorKey {
    pub visitor: crate::ids::VisitorId,
    pub inbox: Arc<str>,
}

/// A hub without a grace period (every departure is announced at once); see [`Hub::new`].
#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    visitors: DashMap<VisitorKey, Vec<Conn>>,
    agents: DashMap<Arc<str>, Vec<Conn>>,
    /// Every agent connection by its id, whatever its inboxes (an agent may have none):
    /// for what the whole team hears and for closing an agent's connections.
    agent_conns: DashMap<u64, Conn>,
    dropped_slow: AtomicU64,
    /// How long a departure is held before it is announced.
    grace: Duration,
    /// The most departures held at once; past it they are announced at once.
    max_leaving: usize,
    leaving: Mutex<Leaving>,
    /// Woken when a departure is held, for the task that announces them when due.
    departure_held: Notify,
}

/// Visitors whose last connection closed less than the grace period ago.
#[derive(Default)]
struct Leaving {
    /// The held departure of each such visitor (its number).
    held: HashMap<VisitorKey, u64>,
    /// When each departure falls due, in order (the grace period is the same for all).
    /// An entry whose number is no longer in `held` was cancelled by a return.
    due: VecDeque<(Instant, VisitorKey, u64)>,
    next: u64,
}

/// Whether a registration changed a visitor's presence as agents see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    CameOnline,
    /// Gone, to be announced now.
    WentOffline,
    /// Gone, announced once the grace period ends without a return (see
    /// [`Hub::take_departures`]).
    Leaving,
    Unchanged,
}

impl Hub {
    /// A hub that holds a visitor's departure for `grace` (at most `max_leaving` at
    /// once) before it counts as one.
    pub fn new(grace: Duration, max_leaving: usize) -> Self {
        Hub {
            grace,
            max_leaving,
            ..Hub::default()
        }
    }

    fn leaving(&self) -> MutexGuard<'_, Leaving> {
        self.leaving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new connection's queue; register the returned `Conn` where it belongs.
    pub fn connection(&self, budget: Budget) -> (Conn, Mailbox) {
        let queue = Arc::new(Queue {
            frames: Mutex::new(Frames::default()),
            capacity: budget.frames.max(1),
            max_bytes: budget.bytes.max(1),
            waker: AtomicWaker::new(),
            kicked: AtomicBool::new(false),
            closing: std::sync::OnceLock::new(),
            closed: AtomicBool::new(false),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (
            Conn {
                id,
                every_summary: true,
                admin: false,
                agent: None,
                sign_in: None,
                queue: queue.clone(),
            },
            Mailbox { queue },
        )
    }

    /// Registers a visitor connection. A visitor whose departure is still held came
    /// back within the grace period: nothing changed for agents.
    pub fn add_visitor(&self, key: VisitorKey, conn: Conn) -> Presence {
        let mut entry = self.visitors.entry(key).or_default();
        entry.push(conn);
        if entry.len() > 1 {
            return Presence::Unchanged;
        }
        // Under the entry's lock, as the hold in `remove_visitor` is.
        if self.leaving().held.remove(entry.key()).is_some() {
            Presence::Unchanged
        } else {
            Presence::CameOnline
        }
    }

    pub fn remove_visitor(&self, key: &VisitorKey, id: u64) -> Presence {
        let dashmap::Entry::Occupied(mut entry) = self.visitors.entry(key.clone()) else {
            return Presence::Unchanged;
        };
        entry.get_mut().retain(|c| c.id != id);
        if !entry.get().is_empty() {
            return Presence::Unchanged;
        }
        let held = self.hold_departure(key);
        entry.remove();
        if held {
            Presence::Leaving
        } else {
            Presence::WentOffline
        }
    }

    /// Holds a departure for the grace period; false when it is to be announced now.
    fn hold_departure(&self, key: &VisitorKey) -> bool {
        if self.grace.is_zero() {
            return false;
        }
        let mut l = self.leaving();
        if l.held.len() >= self.max_leaving || l.due.len() >= self.max_leaving {
            return false;
        }
        l.next += 1;
        let n = l.next;
        l.held.insert(key.clone(), n);
        l.due
            .push_back((Instant::now() + self.grace, key.clone(), n));
        drop(l);
        self.departure_held.notify_one();
        true
    }

    /// The departures whose grace period ended by `now` (the visitor did not come back):
    /// to be announced. Also when the next one falls due.
    pub fn take_departures(&self, now: Instant) -> (Vec<VisitorKey>, Option<Instant>) {
        let mut l = self.leaving();
        let mut gone = Vec::new();
        while let Some((due, _, _)) = l.due.front() {
            if *due > now {
                return (gone, Some(*due));
            }
            let Some((_, key, n)) = l.due.pop_front() else {
                break;
            };
            if l.held.get(&key) == Some(&n) {
                l.held.remove(&key);
                gone.push(key);
            }
        }
        (gone, None)
    }

    /// Resolves when a departure is held (see [`Hub::take_departures`]).
    pub fn departure_held(&self) -> &Notify {
        &self.departure_held
    }

    /// Whether one of the visitor's connections is open.
    pub fn visitor_online(&self, key: &VisitorKey) -> bool {
        self.visitors.get(key).is_some_and(|c| !c.is_empty())
    }

    /// Whether agents see the visitor online: connected, or gone for less than the
    /// grace period.
    pub fn visitor_shown_online(&self, key: &VisitorKey) -> bool {
        self.visitor_online(key) || self.leaving().held.contains_key(key)
    }

    pub fn add_agent(&self, inboxes: &[Arc<str>], conn: Conn) {
        self.agent_conns.insert(conn.id, conn.clone());
        for inbox in inboxes {
            self.agents
                .entry(inbox.clone())
                .or_default()
                .push(conn.clone());
        }
    }

    pub fn remove_agent(&self, inboxes: &[Arc<str>], id: u64) {
        self.agent_conns.remove(&id);
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

    /// To every connection of a visitor in an inbox, except `skip`. Only `fanout`, which
    /// decides who hears what, delivers.
    pub(crate) fn to_visitor(&self, key: &VisitorKey, frame: &Frame, skip: Option<u64>) -> usize {
        match self.visitors.get(key) {
            Some(conns) => self.deliver(conns.iter(), frame, skip),
            None => 0,
        }
    }

    /// To every agent connection of an inbox, except `skip` (the tests' shorthand for
    /// [`Hub::to_agents_each`] with one frame for all).
    #[cfg(test)]
    pub(crate) fn to_agents(&self, inbox: &str, frame: &Frame, skip: Option<u64>) -> usize {
        match self.agents.get(inbox) {
            Some(conns) => self.deliver(conns.iter(), frame, skip),
            None => 0,
        }
    }

    /// To every admin connection, whatever its inboxes. Only `fanout` delivers.
    pub(crate) fn to_admins(&self, frame: &Frame) -> usize {
        let admins: Vec<Conn> = self
            .agent_conns
            .iter()
            .filter(|c| c.admin)
            .map(|c| c.clone())
            .collect();
        self.deliver(admins.iter(), frame, None)
    }

    /// Tells every agent connection `which` picks (e.g. all of one agent's) to close
    /// as `closing` says, at once: each one's task closes its socket on its next wake.
    /// How many were told.
    pub fn close_agents(&self, which: impl Fn(&Conn) -> bool, closing: Closing) -> usize {
        let mut told = 0;
        for c in self.agent_conns.iter().filter(|c| which(c)) {
            let q = &c.queue;
            if q.closing.set(closing).is_ok() {
                told += 1;
            }
            q.waker.wake();
        }
        told
    }

    /// Tells every agent connection signed in by the session `key` to close as
    /// `closing` says (see [`Hub::close_agents`]). How many were told.
    pub fn close_sign_in(&self, key: crate::signin::SessionKey, closing: Closing) -> usize {
        self.close_agents(|c| c.sign_in == Some(key), closing)
    }

    /// Whether any agent of the inbox wants `conversation_updated` after every message
    /// (if none does, the summary need not be built).
    pub fn wants_every_summary(&self, inbox: &str) -> bool {
        self.agents
            .get(inbox)
            .is_some_and(|conns| conns.iter().any(|c| c.every_summary))
    }

    /// To the agent connections of an inbox that `keep` picks, each its own frame
    /// (`frame` is asked per connection, under the map's read lock, so it must not
    /// wait: a lookup of frames already encoded, or an encoding the first time).
    pub(crate) fn to_agents_each(
        &self,
        inbox: &str,
        keep: impl Fn(&Conn) -> bool,
        mut frame: impl FnMut(&Conn) -> Frame,
    ) -> usize {
        let Some(conns) = self.agents.get(inbox) else {
            return 0;
        };
        let mut delivered = 0;
        for c in conns.iter().filter(|c| keep(c)) {
            delivered += self.deliver(std::iter::once(c), &frame(c), None);
        }
        delivered
    }

    /// Queues the frame for each target, under the map's read lock: a push never waits,
    /// so the lock is held for a short lock and a wake per target.
    fn deliver<'a>(
        &self,
        targets: impl Iterator<Item = &'a Conn>,
        frame: &Frame,
        skip: Option<u64>,
    ) -> usize {
        let mut delivered = 0;
        for c in targets.filter(|c| Some(c.id) != skip) {
            match c.push(frame) {
                Pushed::Queued => delivered += 1,
                Pushed::Full => {
                    self.dropped_slow.fetch_add(1, Ordering::Relaxed);
                }
                Pushed::Closed => {}
            }
        }
        delivered
    }

    pub fn slow_dropped(&self) -> u64 {
        self.dropped_slow.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
