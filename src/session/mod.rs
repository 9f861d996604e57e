//! Sessions: what a visitor or agent connection does, frame by frame.
//!
//! A session speaks protocol frames over any `Stream` of [`Inbound`] and `Sink` of
//! [`Outbound`]; only `transport` knows hyper and the WebSocket framing. [`Link`] is the one
//! `select!` loop every connection runs: inbound frames, the hub's queue for this
//! connection, heartbeats, a kick for being too slow or a close the hub was told to
//! make (an agent revoked, or whose access changed), server shutdown, and the
//! session's one alarm (a typing state's end, [`Link::set_alarm`]). Sessions
//! must not touch the store directly; they call the domain modules.

pub mod agent;
pub mod visitor;

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::watch;
use widget_protocol::{close, encode, ErrorFrame};

use crate::app::App;
use crate::conversations::StoredMessages;
use crate::hub::{Closing, Ended, Frame, Mailbox};
use crate::metrics::Metrics;

/// A close frame is a courtesy: a peer that cannot take a few bytes within this long
/// is dropped without one (shutdown must not wait on it).
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(1);

/// The most queued frames written before one flush.
const MAX_BURST: usize = 256;

/// Fan-out to one connection is written at most once per this window: a frame queued
/// sooner after the last burst waits for the window's end and goes out with whatever
/// else queued meanwhile. A connection written to rarely gets every frame at once; an
/// agent following a busy inbox gets one system call per window instead of one per
/// message (each loopback or LAN send costs the sender as much as the receiver's TCP
/// work). Acks and answers are never delayed: they are written directly, not queued.
const COALESCE: Duration = Duration::from_millis(2);

/// The checks every `send` and `reply` passes before anything is stored: a usable
/// `client_msg_id`, the rate limits (`throttled`), and the text's length. Returns the
/// trimmed text.
pub fn admit(
    client_msg_id: &str,
    text: &str,
    limits: &crate::config::Limits,
    throttled: impl FnOnce() -> crate::error::Result<()>,
) -> crate::error::Result<String> {
    if client_msg_id.is_empty() || client_msg_id.len() > 128 {
        return Err(crate::error::Error::rejected(
            widget_protocol::ErrorCode::BadFrame,
            "client_msg_id must be 1 to 128 bytes",
        ));
    }
    throttled()?;
    crate::validate::text(text, limits)
}

/// What the transport hands a session.
#[derive(Debug)]
pub enum Inbound {
    Text(String),
    Binary,
    /// A pong or ping: the peer is alive.
    Alive,
    /// The peer broke the WebSocket protocol or our limits: close with this code (1009
    /// message too big, 1007 text not UTF-8, 1002 any other violation). Nothing follows.
    Violation {
        code: u16,
        reason: &'static str,
    },
}

/// What a session hands the transport.
#[derive(Debug, Clone)]
pub enum Outbound {
    Text(Frame),
    Ping,
    Close(u16, &'static str),
}

/// Any socket a session can run on.
pub trait Socket: Stream<Item = Inbound> + Sink<Outbound> + Send + Unpin + 'static {}
impl<T: Stream<Item = Inbound> + Sink<Outbound> + Send + Unpin + 'static> Socket for T {}

/// What ended a connection or what the session should act on next.
pub enum Event {
    Frame(String),
    /// A binary message: answered with `bad_frame` by the session.
    Binary,
    /// The connection is over (closed by the peer, kicked, timed out, or shutdown).
    End,
    /// The session's alarm went off (see [`Link::set_alarm`]).
    Alarm,
}

/// What a session gets next from its connection.
pub enum Input<T> {
    Frame(T),
    /// The alarm the session set is due.
    Alarm,
}

/// Closes a connection that may not have a session with `code` (the visitor endpoint's
/// refused origin), after sending nothing else.
pub async fn refuse<S: Socket>(app: &App, socket: S, code: u16, reason: &'static str) {
    Link::new(socket, app).close(code, reason).await;
}

/// One connection's loop around its socket.
pub struct Link<S> {
    socket: S,
    mailbox: Option<Mailbox>,
    shutdown: watch::Receiver<bool>,
    heartbeat: Duration,
    last_heard: Instant,
    /// When queued frames were last flushed (see [`COALESCE`]).
    last_burst: Instant,
    closed: bool,
    ticker: tokio::time::Interval,
    /// The session's one deadline (a typing state's end), boxed: only a connection that
    /// has one pays for its timer.
    alarm: Option<Pin<Box<tokio::time::Sleep>>>,
    app: App,
}

impl<S: Socket> Link<S> {
    pub fn new(socket: S, app: &App) -> Self {
        Link {
            socket,
            mailbox: None,
            shutdown: app.shutdown.clone(),
            heartbeat: app.config.limits.heartbeat,
            last_heard: Instant::now(),
            last_burst: Instant::now(),
            closed: false,
            ticker: heartbeat_ticker(app.config.limits.heartbeat),
            alarm: None,
            app: app.clone(),
        }
    }

    fn m(&self) -> &Metrics {
        &self.app.metrics
    }

    /// Wakes the session with [`Input::Alarm`] at `at` (None: never), instead of any
    /// alarm set before.
    pub fn set_alarm(&mut self, at: Option<Instant>) {
        match (at, self.alarm.as_mut()) {
            (None, _) => self.alarm = None,
            (Some(at), Some(alarm)) => alarm.as_mut().reset(at.into()),
            (Some(at), None) => self.alarm = Some(Box::pin(tokio::time::sleep_until(at.into()))),
        }
    }

    /// Attach the hub queue once the connection is registered.
    pub fn attach(&mut self, mailbox: Mailbox) {
        self.mailbox = Some(mailbox);
    }

    /// Bytes left for the list of `frame` (encoded with its list empty) within the
    /// limit on a frame that carries a list; the list is cut to them.
    pub fn list_room<T: serde::Serialize>(&self, frame: &T) -> usize {
        let limit = self.app.config.limits.max_list_frame_bytes;
        limit.saturating_sub(encode(frame).len())
    }

    /// Sends one frame straight to this connection.
    pub async fn send<T: serde::Serialize>(&mut self, frame: &T) {
        let text: Frame = encode(frame).into();
        self.send_raw(text).await;
    }

    /// Sends `frame`, built with an empty `messages` list, with `messages` in that list
    /// as they are stored (no decode and encode per message).
    pub async fn send_with_messages<T: serde::Serialize>(
        &mut self,
        frame: &T,
        messages: &StoredMessages,
    ) {
        let text: Frame = encode_with_messages(frame, messages.as_json()).into();
        self.send_raw(text).await;
    }

    pub async fn send_raw(&mut self, text: Frame) {
        if self.closed {
            return;
        }
        Metrics::inc(&self.m().frames_out);
        self.write(Outbound::Text(text)).await;
    }

    /// Hands the socket one frame or ping. A peer that stops reading fills the kernel's
    /// buffers and then the socket's bounded queue, and the write waits: it gives up
    /// when the hub kicks this connection or the server shuts down meanwhile, or after
    /// two heartbeat intervals (as dead as a peer that answers no ping). A kicked one is
    /// still sent its `4029` close behind what it has not read, in case it reads again
    /// within [`CLOSE_WRITE_TIMEOUT`]; otherwise the connection is dropped without a
    /// close frame, which could not be written either.
    /// Without this bound one stuck write would hold the task away from its heartbeat,
    /// its kick and shutdown for as long as the peer keeps the TCP connection open.
    async fn write(&mut self, item: Outbound) {
        self.write_batch(item, false).await;
    }

    /// Writes `first` and, with `drain`, whatever else is already queued for this
    /// connection (up to a bound), then flushes once: one system call for a burst of
    /// fan-out instead of one per frame.
    async fn write_batch(&mut self, first: Outbound, drain: bool) {
        if self.closed {
            return;
        }
        let stuck_for = self.heartbeat * 2;
        let Link {
            socket,
            shutdown,
            mailbox,
            app,
            ..
        } = self;
        let mailbox = mailbox.as_ref();
        let burst = async {
            socket.feed(first).await?;
            if let (true, Some(m)) = (drain, mailbox) {
                for _ in 1..MAX_BURST {
                    let Some(f) = m.try_recv() else { break };
                    Metrics::inc(&app.metrics.frames_out);
                    socket.feed(Outbound::Text(f)).await?;
                }
            }
            socket.flush().await
        };
        let written = tokio::select! {
            biased;
            r = tokio::time::timeout(stuck_for, burst) => Written::from(matches!(r, Ok(Ok(())))),
            e = ended(mailbox) => Written::Ended(e),
            _ = shutdown.wait_for(|s| *s) => Written::Failed,
        };
        match written {
            Written::Done => {}
            Written::Failed => self.closed = true,
            // It may still take the close behind what it has not read (see `close`).
            Written::Ended(Ended::Kicked) => Box::pin(self.kicked_out()).await,
            // The write is stuck: nothing more is flushed before the close.
            Written::Ended(Ended::Closed(c)) => Box::pin(self.close(c.code, c.reason)).await,
        }
    }

    /// Closes a connection the hub told to close, after writing what was queued for
    /// it before when `flush` says so (within [`CLOSE_WRITE_TIMEOUT`]).
    async fn told_to_close(&mut self, closing: Closing) {
        if closing.flush {
            if let (Some(m), false) = (self.mailbox.as_ref(), self.closed) {
                let (socket, app) = (&mut self.socket, &self.app);
                let queued = async {
                    while let Some(f) = m.try_recv() {
                        Metrics::inc(&app.metrics.frames_out);
                        socket.feed(Outbound::Text(f)).await?;
                    }
                    socket.flush().await
                };
                let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, queued).await;
            }
        }
        self.close(closing.code, closing.reason).await;
    }

    /// Closes a connection the hub kicked for not reading, with 4029.
    async fn kicked_out(&mut self) {
        Metrics::inc(&self.app.metrics.slow_consumers_dropped);
        let reason = "too slow: reconnect with resume_after";
        self.close(close::TOO_SLOW, reason).await;
    }

    /// The `ack` for a stored `send` or `reply` (the same frame on both endpoints), and
    /// its latency for the metrics.
    pub async fn send_ack(
        &mut self,
        client_msg_id: String,
        message: widget_protocol::Message,
        started: Instant,
    ) {
        self.send(&widget_protocol::VisitorServer::Ack {
            client_msg_id,
            message,
        })
        .await;
        self.app
            .metrics
            .ack_latency
            .observe(started.elapsed().as_secs_f64());
    }

    pub async fn send_error(&mut self, err: ErrorFrame) {
        self.m().error(err.code);
        self.send(&ErrorWrap::Error(err)).await;
    }

    /// Sends a close frame, if the peer takes it within [`CLOSE_WRITE_TIMEOUT`].
    pub async fn close(&mut self, code: u16, reason: &'static str) {
        if !self.closed {
            let close = self.socket.send(Outbound::Close(code, reason));
            let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, close).await;
            self.closed = true;
        }
    }

    /// The next client frame decoded as `T`. A binary message or a frame that does not
    /// decode is answered with `bad_frame` here and skipped. `None`: the connection ended.
    pub async fn next_frame<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        loop {
            match self.next_input().await? {
                Input::Frame(f) => return Some(f),
                Input::Alarm => continue,
            }
        }
    }

    /// The next client frame decoded as `T` (as [`Link::next_frame`]), or the alarm.
    pub async fn next_input<T: serde::de::DeserializeOwned>(&mut self) -> Option<Input<T>> {
        loop {
            let error = match self.next().await {
                Event::End => return None,
                Event::Alarm => return Some(Input::Alarm),
                Event::Binary => "binary messages are not part of the protocol".to_string(),
                Event::Frame(text) => match widget_protocol::decode::<T>(&text) {
                    Ok(frame) => return Some(Input::Frame(frame)),
                    Err(e) => e.0,
                },
            };
            let frame = ErrorFrame::new(widget_protocol::ErrorCode::BadFrame, error);
            Box::pin(self.send_error(frame)).await;
        }
    }

    /// The first frame (`hello` or `auth`), which must come before `deadline`: past it
    /// the connection is closed with 4008. `None`: the connection ended.
    pub async fn first_frame<T: serde::de::DeserializeOwned>(
        &mut self,
        deadline: tokio::time::Instant,
        what: &'static str,
    ) -> Option<T> {
        match tokio::time::timeout_at(deadline, self.next_frame::<T>()).await {
            Ok(frame) => frame,
            Err(_) => {
                self.close(close::HELLO_TIMEOUT, what).await;
                None
            }
        }
    }

    /// Waits for the next thing the session must handle, doing the rest meanwhile.
    pub async fn next(&mut self) -> Event {
        loop {
            if self.closed {
                return Event::End;
            }
            let mailbox = self.mailbox.as_ref();
            let alarm = self.alarm.as_mut();
            let wake = tokio::select! {
                biased;
                _ = async { let _ = self.shutdown.wait_for(|s| *s).await; } => Wake::Shutdown,
                e = ended(mailbox) => Wake::Ended(e),
                inbound = self.socket.next() => Wake::In(inbound),
                frame = async { match mailbox { Some(m) => m.recv().await, None => std::future::pending().await } } => Wake::Queued(frame),
                _ = self.ticker.tick() => Wake::Tick,
                _ = async { match alarm { Some(a) => a.await, None => std::future::pending().await } } => Wake::Alarm,
            };
            match wake {
                Wake::Shutdown => {
                    Box::pin(self.close(close::GOING_AWAY, "server shutting down")).await;
                    return Event::End;
                }
                Wake::Ended(Ended::Kicked) => {
                    Box::pin(self.kicked_out()).await;
                    return Event::End;
                }
                Wake::Ended(Ended::Closed(c)) => {
                    Box::pin(self.told_to_close(c)).await;
                    return Event::End;
                }
                Wake::In(inbound) => {
                    self.last_heard = Instant::now();
                    match inbound {
                        None => {
                            // The peer closed: send the answer to its close frame that
                            // the socket queued, so the peer sees a clean close.
                            let close =
                                tokio::time::timeout(CLOSE_WRITE_TIMEOUT, self.socket.close());
                            let _ = Box::pin(close).await;
                            self.closed = true;
                            return Event::End;
                        }
                        Some(Inbound::Alive) => continue,
                        Some(Inbound::Binary) => {
                            Metrics::inc(&self.m().frames_in);
                            return Event::Binary;
                        }
                        Some(Inbound::Violation { code, reason }) => {
                            Box::pin(self.close(code, reason)).await;
                            return Event::End;
                        }
                        Some(Inbound::Text(t)) => {
                            Metrics::inc(&self.m().frames_in);
                            return Event::Frame(t);
                        }
                    }
                }
                Wake::Queued(f) => {
                    Metrics::inc(&self.m().frames_out);
                    let window_end = self.last_burst + COALESCE;
                    if window_end > Instant::now() {
                        Box::pin(tokio::time::sleep_until(window_end.into())).await;
                    }
                    Box::pin(self.write_batch(Outbound::Text(f), true)).await;
                    self.last_burst = Instant::now();
                }
                Wake::Alarm => {
                    self.alarm = None;
                    return Event::Alarm;
                }
                Wake::Tick => {
                    if self.last_heard.elapsed() >= self.heartbeat * 2 {
                        Box::pin(self.close(close::GOING_AWAY, "no answer to pings")).await;
                        return Event::End;
                    }
                    Box::pin(self.write(Outbound::Ping)).await;
                }
            }
        }
    }
}

/// Heartbeats fall on one grid for every connection, of this step (or a twentieth of
/// the interval, if shorter): connections that opened within one step ping together,
/// so an idle server wakes once per step for all of them instead of once per connection
/// (each wake-up of an idle core is a context switch, and on a VM an exit). The step is
/// short because a step's pings run as one burst: thousands of connections opened in
/// the same second after a restart must not ping at one instant and hold up the
/// timers due then.
const HEARTBEAT_GRID: Duration = Duration::from_millis(50);
const HEARTBEAT_GRID_STEPS: u32 = 20;

/// A connection's heartbeat: the first tick at least one interval from now, on the grid.
fn heartbeat_ticker(every: Duration) -> tokio::time::Interval {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let step = (every / HEARTBEAT_GRID_STEPS)
        .min(HEARTBEAT_GRID)
        .max(Duration::from_millis(1));
    let due = tokio::time::Instant::now() + every;
    let since = due.duration_since(epoch).as_nanos();
    let step_ns = step.as_nanos();
    let up = (step_ns - since % step_ns) % step_ns;
    let first = due + Duration::from_nanos(u64::try_from(up).unwrap_or(0));
    let mut t = tokio::time::interval_at(first, every);
    // Late ticks are skipped, not shifted, so a connection stays on the grid.
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    t
}

/// Resolves once the hub kicked this connection or told it to close; never without a
/// mailbox.
async fn ended(mailbox: Option<&Mailbox>) -> Ended {
    match mailbox {
        Some(m) => m.ended().await,
        None => std::future::pending().await,
    }
}

/// How a write ended.
enum Written {
    Done,
    /// The peer stopped reading for two heartbeats, the socket failed, or the server is
    /// shutting down: dropped without a close frame.
    Failed,
    Ended(Ended),
}

impl From<bool> for Written {
    fn from(done: bool) -> Written {
        if done {
            Written::Done
        } else {
            Written::Failed
        }
    }
}

enum Wake {
    Shutdown,
    Ended(Ended),
    In(Option<Inbound>),
    Queued(Frame),
    Tick,
    Alarm,
}

/// An `error` frame on its own, for either side (both tag it `"type":"error"`).
#[derive(serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ErrorWrap {
    Error(ErrorFrame),
}

/// The frame's one empty message list, as serde_json writes it. Every frame that carries
/// messages has `messages` as its last list-valued field of that name, and a string
/// value cannot contain this text unescaped, so the last match is the field.
const EMPTY_MESSAGES: &str = "\"messages\":[]";

/// Bytes of `value` as JSON, counted without building the text.
fn json_len<T: serde::Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing to a counter cannot fail, nor can serialising a protocol type.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// Encodes `frame` (built with `messages: []`) with the given message JSON spliced in.
fn encode_with_messages<T: serde::Serialize>(frame: &T, messages: &[String]) -> String {
    let json = encode(frame);
    let Some(at) = json.rfind(EMPTY_MESSAGES) else {
        debug_assert!(false, "frame has no empty messages list: {json}");
        return json;
    };
    let inside = at + EMPTY_MESSAGES.len() - 1;
    let size = messages.iter().map(|m| m.len() + 1).sum::<usize>();
    let mut out = String::with_capacity(json.len() + size);
    out.push_str(&json[..inside]);
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m);
    }
    out.push_str(&json[inside..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use widget_protocol::{
        decode, AgentServer, AuthorKind, Summary, SummaryVisitor, VisitorServer,
    };

    fn stored(seqs: &[u64]) -> Vec<String> {
        seqs.iter()
            .map(|seq| {
                format!(
                    r#"{{"id":"m{seq}","conversation_id":"c","seq":{seq},"author":{{"kind":"visitor","name":null}},"text":"\"messages\":[] {seq}","at":{seq}}}"#
                )
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn heartbeats_of_connections_opened_apart_fall_on_one_grid() {
        let every = Duration::from_secs(20);
        let step = HEARTBEAT_GRID;
        let opened = tokio::time::Instant::now();
        let mut a = heartbeat_ticker(every);
        tokio::time::advance(Duration::from_millis(1370)).await;
        let mut b = heartbeat_ticker(every);
        let (ta, tb) = (a.tick().await, b.tick().await);
        // Each waits at least one interval, and at most one step more.
        assert!(ta >= opened + every && ta <= opened + every + step);
        let b_opened = opened + Duration::from_millis(1370);
        assert!(tb >= b_opened + every && tb <= b_opened + every + step);
        // Both on the same grid: a whole number of steps apart.
        assert_eq!((tb - ta).as_nanos() % step.as_nanos(), 0);
        assert_eq!(b.tick().await - tb, every);
    }

    #[test]
    fn stored_messages_are_spliced_into_each_frame_that_carries_them() {
        let history = VisitorServer::History {
            messages: Vec::new(),
            has_more: true,
        };
        let json = encode_with_messages(&history, &stored(&[4, 5]));
        match decode::<VisitorServer>(&json) {
            Ok(VisitorServer::History { messages, has_more }) => {
                assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5]);
                assert_eq!(messages[1].text, "\"messages\":[] 5");
                assert_eq!(messages[0].author.kind, AuthorKind::Visitor);
                assert!(has_more);
            }
            other => panic!("not a history frame: {other:?} from {json}"),
        }
        let conversation = AgentServer::Conversation {
            conversation: Summary {
                id: "c".into(),
                inbox: "default".into(),
                visitor: SummaryVisitor {
                    id: "v".into(),
                    label: "\"messages\":[]".into(),
                    online: true,
                    contact: None,
                    page: None,
                },
                last_message: None,
                created_at: 1,
                updated_at: 1,
                status: widget_protocol::Status::Open,
                assignee: None,
                unread: 0,
                visitor_seen_seq: 0,
            },
            messages: Vec::new(),
            has_more: false,
        };
        let json = encode_with_messages(&conversation, &stored(&[1]));
        match decode::<AgentServer>(&json) {
            Ok(AgentServer::Conversation {
                conversation,
                messages,
                ..
            }) => {
                assert_eq!(conversation.visitor.label, "\"messages\":[]");
                assert_eq!(messages.len(), 1);
            }
            other => panic!("not a conversation frame: {other:?} from {json}"),
        }
        let empty = encode_with_messages(&history, &[]);
        assert_eq!(empty, encode(&history));
    }
}
