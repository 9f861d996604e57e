//! The hub: every live connection, who it belongs to, and fan-out to them.
//!
//! It owns presence (a visitor is online while one of their connections is open; which
//! inboxes have agents connected) and delivery of already-encoded frames. Delivery never
//! waits: each connection has a bounded queue, and a connection that stopped reading is
//! kicked (it recovers with `resume_after`) so that one slow reader costs nobody else
//! anything, while one that is reading gets room for a burst. It must not touch the
//! store, and never holds a map guard across an await.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use futures::task::AtomicWaker;
use uuid::Uuid;

/// One frame, encoded once and shared by every recipient.
pub type Frame = Arc<str>;

/// The sending side of one connection, held by the hub.
#[derive(Clone)]
pub struct Conn {
    pub id: u64,
    /// An agent that wants `conversation_updated` after every message, not only after
    /// changes the message frame does not carry (see `SummaryUpdates`).
    pub every_summary: bool,
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

    /// Resolves once the hub kicked this connection.
    pub async fn kicked(&self) {
        let kicked = || self.queue.kicked.load(Ordering::Acquire).then_some(());
        std::future::poll_fn(|cx| self.poll_when(cx, kicked)).await
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
    pub fn connection(&self, budget: Budget) -> (Conn, Mailbox) {
        let queue = Arc::new(Queue {
            frames: Mutex::new(Frames::default()),
            capacity: budget.frames.max(1),
            max_bytes: budget.bytes.max(1),
            waker: AtomicWaker::new(),
            kicked: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        (
            Conn {
                id,
                every_summary: true,
                queue: queue.clone(),
            },
            Mailbox { queue },
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
mod tests {
    use super::*;

    /// A queue bounded in frames only.
    fn frames(n: usize) -> Budget {
        Budget {
            frames: n,
            bytes: usize::MAX,
        }
    }

    fn key(inbox: &str) -> VisitorKey {
        VisitorKey {
            visitor: Uuid::nil(),
            inbox: inbox.into(),
        }
    }

    #[test]
    fn presence_follows_the_first_and_last_connection() {
        let hub = Hub::default();
        let (a, _ma) = hub.connection(frames(4));
        let (b, _mb) = hub.connection(frames(4));
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
    async fn a_reader_rides_out_a_burst_and_one_that_stopped_is_kicked() {
        let hub = Hub::default();
        let (slow, slow_box) = hub.connection(frames(2));
        let (fast, fast_box) = hub.connection(frames(2));
        hub.add_agent(&["i".into()], slow);
        hub.add_agent(&["i".into()], fast);
        let f: Frame = "{}".into();
        // A burst past both queues' capacity, within the room a connection may hold.
        for _ in 0..2 * BURST_ROOM {
            assert_eq!(hub.to_agents("i", &f, None), 2);
        }
        assert_eq!(hub.slow_dropped(), 0);
        // The fast one takes its frames; the slow one took nothing and is full.
        for _ in 0..2 * BURST_ROOM {
            assert_eq!(&*fast_box.recv().await, "{}");
        }
        assert_eq!(hub.to_agents("i", &f, None), 1);
        slow_box.kicked().await;
        assert_eq!(hub.slow_dropped(), 1);
        assert_eq!(&*fast_box.recv().await, "{}");
        assert!(fast_box.try_recv().is_none());
    }

    #[tokio::test]
    async fn a_full_queue_that_takes_nothing_for_a_while_is_kicked() {
        let hub = Hub::default();
        let (stuck, stuck_box) = hub.connection(frames(2));
        let (taking, taking_box) = hub.connection(frames(2));
        hub.add_agent(&["i".into()], stuck);
        hub.add_agent(&["i".into()], taking);
        let f: Frame = "{}".into();
        for _ in 0..3 {
            assert_eq!(hub.to_agents("i", &f, None), 2);
        }
        std::thread::sleep(STALLED + Duration::from_millis(50));
        // Both are over capacity and far from the burst room; only the one that took
        // a frame in the meantime is still reading.
        assert!(taking_box.try_recv().is_some());
        assert_eq!(hub.to_agents("i", &f, None), 1);
        stuck_box.kicked().await;
        assert_eq!(hub.slow_dropped(), 1);
        let mut got = 0;
        while taking_box.try_recv().is_some() {
            got += 1;
        }
        assert_eq!(got, 3);
    }

    #[tokio::test]
    async fn a_waiting_connection_is_woken_and_a_burst_leaves_no_room_behind() {
        let hub = Hub::default();
        let (conn, mailbox) = hub.connection(frames(4096));
        hub.add_agent(&["i".into()], conn);
        let waiting = tokio::spawn(async move {
            let first = mailbox.recv().await;
            (first, mailbox)
        });
        tokio::task::yield_now().await;
        let f: Frame = "{}".into();
        for _ in 0..1000 {
            assert_eq!(hub.to_agents("i", &f, None), 1);
        }
        let (first, mailbox) = tokio::time::timeout(std::time::Duration::from_secs(5), waiting)
            .await
            .expect("woken")
            .expect("task");
        assert_eq!(&*first, "{}");
        let mut rest = 0;
        while mailbox.try_recv().is_some() {
            rest += 1;
        }
        assert_eq!(rest, 999);
        assert_eq!(
            mailbox.queue.frames().list.capacity(),
            0,
            "the burst's room is freed"
        );
        // Once the connection's side is gone, frames for it are dropped, not counted.
        drop(mailbox);
        assert_eq!(hub.to_agents("i", &f, None), 0);
        assert_eq!(hub.slow_dropped(), 0);
    }

    #[tokio::test]
    async fn a_queue_is_bounded_in_bytes_as_well_as_frames() {
        let hub = Hub::default();
        let budget = Budget {
            frames: 4096,
            bytes: 1000,
        };
        let (stuck, stuck_box) = hub.connection(budget);
        let (reading, reading_box) = hub.connection(budget);
        hub.add_agent(&["i".into()], stuck);
        hub.add_agent(&["i".into()], reading);
        let big: Frame = "x".repeat(300).into();
        // Three fit in the bytes (far from the frame count); the reader takes each.
        for _ in 0..3 {
            assert_eq!(hub.to_agents("i", &big, None), 2);
            assert_eq!(reading_box.try_recv().as_deref(), Some(&*big));
        }
        assert_eq!(stuck_box.queue.frames().bytes, 900);
        assert_eq!(reading_box.queue.frames().bytes, 0);
        // A fourth would take the one that took nothing past its bytes: it is kicked,
        // the reader is not.
        assert_eq!(hub.to_agents("i", &big, None), 1);
        stuck_box.kicked().await;
        assert_eq!(hub.slow_dropped(), 1);
        assert_eq!(
            stuck_box.queue.frames().bytes,
            900,
            "nothing past the budget"
        );
        assert_eq!(reading_box.try_recv().as_deref(), Some(&*big));
        // Taking gives the bytes back.
        while stuck_box.try_recv().is_some() {}
        assert_eq!(stuck_box.queue.frames().bytes, 0);
        // An empty queue takes one frame larger than its budget: a reader is never
        // kicked for one big frame.
        let huge: Frame = "y".repeat(5000).into();
        assert_eq!(hub.to_agents("i", &huge, None), 2);
        assert!(!reading_box.queue.kicked.load(Ordering::Acquire));
        assert_eq!(reading_box.try_recv().as_deref(), Some(&*huge));
        // Closing empties the count with the list.
        drop(stuck_box);
        assert_eq!(hub.to_agents("i", &big, None), 1);
    }

    #[tokio::test]
    async fn a_queue_a_quarter_full_in_bytes_that_takes_nothing_is_kicked() {
        let hub = Hub::default();
        let (stuck, stuck_box) = hub.connection(Budget {
            frames: 4096,
            bytes: 4000,
        });
        hub.add_agent(&["i".into()], stuck);
        let f: Frame = "z".repeat(600).into();
        // 1200 bytes: past a quarter of the budget, not past the budget.
        for _ in 0..2 {
            assert_eq!(hub.to_agents("i", &f, None), 1);
        }
        assert_eq!(hub.to_agents("i", &f, None), 1, "full: the clock starts");
        std::thread::sleep(STALLED + Duration::from_millis(50));
        assert_eq!(hub.to_agents("i", &f, None), 0);
        stuck_box.kicked().await;
    }
}
