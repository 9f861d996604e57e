//! WebSocket framing (RFC 6455, the server's side) on the upgraded TCP connection, and
//! protocol-level values on top of it.
//!
//! Owns the bytes of one connection: frames in (unmasked, checked against our limits,
//! fragments joined, text checked to be UTF-8), frames out (written straight from the
//! shared, already-encoded frame with vectored writes: no copy per recipient), and the
//! protocol's own traffic (pong for ping, the closing handshake). It must not look
//! inside a message.
//!
//! An idle connection holds no buffer: a frame that arrives whole is read through a
//! buffer on the stack, only the part of a frame still in flight is kept, and the queue
//! of frames to write is released once written. What is kept is kept for a while only:
//! a message (or frame) in progress must be finished within `message_deadline` of its
//! first fragment (or byte), or the connection is closed with 1008; the timer exists
//! only while one is in progress. (tungstenite, used before, keeps a read
//! buffer and a write buffer the size of the largest frame it wrote for as long as a
//! connection lives: three quarters of what an idle connection cost.) The handshake
//! itself is hyper's, with tungstenite's accept key.

use std::collections::VecDeque;
use std::future::Future;
use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

use crate::config::Limits;
use crate::hub::Frame;
use crate::session::{Inbound, Outbound};

const OP_CONTINUE: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

const CLOSE_NORMAL: u16 = 1000;
const CLOSE_PROTOCOL: u16 = 1002;
const CLOSE_INVALID: u16 = 1007;
const CLOSE_TOO_BIG: u16 = 1009;
const CLOSE_POLICY: u16 = widget_protocol::close::MESSAGE_TIMEOUT;

/// Bytes read per system call, into a buffer on the stack.
const READ_CHUNK: usize = 4096;
/// The most queued frames handed to one vectored write.
const WRITE_SLICES: usize = 64;

/// Takes over the upgraded connection. None: it is not the TCP stream the server
/// accepted (which cannot happen with this server's listener).
pub fn accept(upgraded: Upgraded, limits: &Limits) -> Option<WsSocket> {
    match upgraded.downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => Some(WsSocket::new(parts.io.into_inner(), parts.read_buf, limits)),
        Err(_) => {
            tracing::error!("an upgraded connection is not a TCP stream; dropped");
            None
        }
    }
}

/// What the peer sent, one message or event at a time.
#[derive(Debug, PartialEq)]
enum Received {
    Text(String),
    Binary(Vec<u8>),
    /// A ping (answered) or a pong.
    Alive,
    /// The peer closed (its close frame is answered) or the connection is gone.
    Closed,
    /// The peer broke the protocol or our limits: close with this code.
    Violation {
        code: u16,
        reason: &'static str,
    },
}

/// A frame's first bytes, once all of them are there.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Where the payload starts and ends in the bytes parsed.
    start: usize,
    end: usize,
}

type Violation = (u16, &'static str);

/// The frame at the start of `data`: None while bytes are missing.
fn parse(data: &[u8], max_frame: usize) -> Result<Option<Header>, Violation> {
    Ok(parse_head(data, max_frame)?.filter(|h| data.len() >= h.end))
}

/// The header of the frame at the start of `data`, once the header itself is there: its
/// payload may still be arriving (`end` past the end of `data`).
fn parse_head(data: &[u8], max_frame: usize) -> Result<Option<Header>, Violation> {
    let [b0, b1, ..] = *data else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err((
            CLOSE_PROTOCOL,
            "reserved bits set (no extension was agreed)",
        ));
    }
    let opcode = b0 & 0x0F;
    let fin = b0 & 0x80 != 0;
    if !matches!(
        opcode,
        OP_CONTINUE | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
    ) {
        return Err((CLOSE_PROTOCOL, "unknown opcode"));
    }
    if b1 & 0x80 == 0 {
        return Err((CLOSE_PROTOCOL, "client frames must be masked"));
    }
    let (len, at) = match b1 & 0x7F {
        126 => match data.get(2..4) {
            Some(b) => (u64::from(u16::from_be_bytes([b[0], b[1]])), 4),
            None => return Ok(None),
        },
        127 => match data.get(2..10).and_then(|b| <[u8; 8]>::try_from(b).ok()) {
            Some(b) => (u64::from_be_bytes(b), 10),
            None => return Ok(None),
        },
        n => (u64::from(n), 2),
    };
    if opcode >= OP_CLOSE && (len > 125 || !fin) {
        return Err((CLOSE_PROTOCOL, "control frames are short and whole"));
    }
    let len = match usize::try_from(len) {
        Ok(l) if l <= max_frame => l,
        _ => return Err((CLOSE_TOO_BIG, "frame larger than the limit")),
    };
    let Some(mask) = data
        .get(at..at + 4)
        .and_then(|m| <[u8; 4]>::try_from(m).ok())
    else {
        return Ok(None);
    };
    let start = at + 4;
    Ok(Some(Header {
        fin,
        opcode,
        mask,
        start,
        end: start + len,
    }))
}

fn unmask(payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    unmask_from(payload, mask, 0)
}

/// Unmasks payload bytes that start `offset` bytes into their frame's payload.
fn unmask_from(payload: &[u8], mask: [u8; 4], offset: usize) -> Vec<u8> {
    payload
        .iter()
        .enumerate()
        .map(|(i, b)| b ^ mask[(offset + i) % 4])
        .collect()
}

/// Whether a close frame's payload is one a peer may send: empty, or a code that is
/// allowed on the wire followed by UTF-8.
fn close_payload_ok(p: &[u8]) -> Result<Option<u16>, Violation> {
    match p {
        [] => Ok(None),
        [_] => Err((CLOSE_PROTOCOL, "close frame of one byte")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            if !allowed {
                return Err((CLOSE_PROTOCOL, "close code not allowed"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err((CLOSE_INVALID, "close reason is not valid UTF-8"));
            }
            Ok(Some(code))
        }
    }
}

/// A fragmented message so far.
struct Partial {
    text: bool,
    bytes: Vec<u8>,
    /// For text: the bytes known to be UTF-8 (what follows may be a character cut in
    /// two by the fragmenting, not yet an error).
    checked: usize,
}

impl Partial {
    /// Checks what came since the last check, so invalid text fails at the fragment
    /// that broke it, not at the message's end.
    fn check(&mut self) -> Result<(), Violation> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.bytes[self.checked..]) {
            Ok(_) => self.checked = self.bytes.len(),
            // A character continues in the next fragment.
            Err(e) if e.error_len().is_none() => self.checked += e.valid_up_to(),
            Err(_) => return Err((CLOSE_INVALID, "text is not valid UTF-8")),
        }
        Ok(())
    }
}

/// One frame waiting to be written.
struct Out {
    head: [u8; 10],
    head_len: u8,
    body: Body,
    /// Bytes of head and body already written.
    written: usize,
}

enum Body {
    Shared(Frame),
    Owned(Vec<u8>),
}

impl Body {
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Shared(f) => f.as_bytes(),
            Body::Owned(v) => v,
        }
    }
}

impl Out {
    fn new(opcode: u8, body: Body) -> Out {
        let len = body.bytes().len();
        let mut head = [0u8; 10];
        head[0] = 0x80 | opcode;
        let head_len = if len < 126 {
            head[1] = len as u8;
            2
        } else if let Ok(l) = u16::try_from(len) {
            head[1] = 126;
            head[2..4].copy_from_slice(&l.to_be_bytes());
            4
        } else {
            head[1] = 127;
            head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
            10
        };
        Out {
            head,
            head_len,
            body,
            written: 0,
        }
    }

    fn len(&self) -> usize {
        usize::from(self.head_len) + self.body.bytes().len()
    }

    /// What is left to write, as at most two slices.
    fn remaining(&self) -> [&[u8]; 2] {
        let head = &self.head[..usize::from(self.head_len)];
        let body = self.body.bytes();
        if self.written < head.len() {
            [&head[self.written..], body]
        } else {
            [&[], &body[self.written - head.len()..]]
        }
    }
}

/// A WebSocket connection, server side.
pub struct WsSocket {
    io: TcpStream,
    /// The part of a frame still in flight (nothing, and no allocation, between frames).
    pending_in: Vec<u8>,
    /// A fragmented message so far.
    partial: Option<Partial>,
    /// Of the text frame in flight at the head of `pending_in`: how much is known to be
    /// UTF-8 (counting the unchecked end of `partial` first), so each read checks only
    /// what it brought, however finely the peer chops a frame.
    in_flight_checked: usize,
    out: VecDeque<Out>,
    out_bytes: usize,
    max_frame: usize,
    /// Queued bytes past which a sender waits for the socket.
    max_out: usize,
    /// Nothing more will be read: the peer closed, the connection failed, or it broke
    /// the protocol.
    read_done: bool,
    /// A close frame is queued or written: no frame may follow it.
    close_queued: bool,
    /// Time to finish a message (or frame) once it started.
    message_deadline: Duration,
    /// Runs while a message or frame is in progress; none otherwise.
    deadline: Option<Pin<Box<Sleep>>>,
    /// What was in progress when `deadline` was set is done: the next one starts anew.
    deadline_done: bool,
}

impl WsSocket {
    fn new(io: TcpStream, read_ahead: Bytes, limits: &Limits) -> WsSocket {
        WsSocket {
            io,
            pending_in: read_ahead.to_vec(),
            partial: None,
            in_flight_checked: 0,
            out: VecDeque::new(),
            out_bytes: 0,
            max_frame: limits.max_frame_bytes,
            max_out: limits.max_write_buffer_bytes,
            read_done: false,
            close_queued: false,
            message_deadline: limits.message_deadline,
            deadline: None,
            deadline_done: false,
        }
    }

    /// Waits for the peer with a message or frame in progress: Err once it had
    /// `message_deadline` to finish it (the deadline runs from when it started, not
    /// from its last fragment, so trickling bytes or answering pings does not extend it).
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Result<(), Violation> {
        if self.partial.is_none() && self.pending_in.is_empty() {
            self.deadline = None;
            return Ok(());
        }
        let due = tokio::time::Instant::now() + self.message_deadline;
        let timer = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if std::mem::take(&mut self.deadline_done) {
            timer.as_mut().reset(due);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err((CLOSE_POLICY, "message not finished in time")),
            Poll::Pending => Ok(()),
        }
    }

    fn queue(&mut self, opcode: u8, body: Body) {
        if self.close_queued {
            return;
        }
        if opcode == OP_CLOSE {
            self.close_queued = true;
        }
        let out = Out::new(opcode, body);
        self.out_bytes += out.len();
        self.out.push_back(out);
    }

    fn queue_close(&mut self, code: u16, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
        self.queue(OP_CLOSE, Body::Owned(payload));
    }

    /// Writes what is queued, with as few system calls as the socket takes.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut n = 0;
            for out in self.out.iter() {
                if n + 2 > WRITE_SLICES {
                    break;
                }
                for part in out.remaining() {
                    if !part.is_empty() {
                        slices[n] = IoSlice::new(part);
                        n += 1;
                    }
                }
            }
            let wrote = ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..n]))?;
            if wrote == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_bytes -= wrote;
            let mut left = wrote;
            while let Some(front) = self.out.front_mut() {
                let rest = front.len() - front.written;
                if left < rest {
                    front.written += left;
                    break;
                }
                left -= rest;
                self.out.pop_front();
            }
        }
        // Give the queue's memory back: an idle connection keeps none.
        self.out = VecDeque::new();
        Poll::Ready(Ok(()))
    }

    /// The next message or event from the peer.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Received> {
        if self.read_done {
            return Poll::Ready(Received::Closed);
        }
        // A pong or close answer queued earlier goes out as soon as it can.
        if !self.out.is_empty() {
            let _ = self.poll_write_out(cx);
        }
        loop {
            if !self.pending_in.is_empty() {
                let mut pending = std::mem::take(&mut self.pending_in);
                let (used, got) = self.next_frame(&pending);
                pending.drain(..used);
                if !pending.is_empty() {
                    self.pending_in = pending;
                }
                match got {
                    Some(r) => return Poll::Ready(self.finish(r)),
                    None if used > 0 => continue,
                    None => {}
                }
            }
            // Not zeroed: most polls find nothing to read.
            let mut buf = [MaybeUninit::<u8>::uninit(); READ_CHUNK];
            let mut rb = ReadBuf::uninit(&mut buf);
            match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                Poll::Pending => {
                    if let Err((code, reason)) = self.poll_deadline(cx) {
                        return Poll::Ready(self.finish(Received::Violation { code, reason }));
                    }
                    return Poll::Pending;
                }
                Poll::Ready(Err(_)) => return Poll::Ready(self.finish(Received::Closed)),
                Poll::Ready(Ok(())) => {}
            }
            let read = rb.filled();
            if read.is_empty() {
                return Poll::Ready(self.finish(Received::Closed));
            }
            if self.pending_in.is_empty() {
                // The usual case: whole frames, parsed where they were read.
                let mut at = 0;
                while at < read.len() {
                    let (used, got) = self.next_frame(&read[at..]);
                    at += used;
                    if let Some(r) = got {
                        self.keep(&read[at..]);
                        return Poll::Ready(self.finish(r));
                    }
                    if used == 0 {
                        break;
                    }
                }
                self.keep(&read[at..]);
            } else {
                self.pending_in.extend_from_slice(read);
            }
            if let Err((code, reason)) = self.check_in_flight() {
                return Poll::Ready(self.finish(Received::Violation { code, reason }));
            }
        }
    }

    /// A text frame still arriving is checked as far as it has come, so text that is not
    /// UTF-8 fails when the bad bytes arrive, not once the peer has sent the rest of its
    /// frame (which it may take its time over). A character cut in two by the chop is
    /// not an error yet. Whole frames are left to `next_frame`.
    fn check_in_flight(&mut self) -> Result<(), Violation> {
        let data = &self.pending_in;
        let Ok(Some(h)) = parse_head(data, self.max_frame) else {
            // No header yet, or a broken one: `next_frame` says so.
            return Ok(());
        };
        if data.len() >= h.end || data.len() <= h.start {
            return Ok(());
        }
        let carry = match (h.opcode, &self.partial) {
            (OP_TEXT, None) => &[][..],
            (OP_CONTINUE, Some(p)) if p.text => &p.bytes[p.checked..],
            _ => return Ok(()),
        };
        // The stream checked is `carry` then the payload so far, from where the last
        // check stopped (at most three bytes of a cut character before the new ones).
        let from = self.in_flight_checked;
        let mut text = carry.get(from..).unwrap_or_default().to_vec();
        let skip = from.saturating_sub(carry.len());
        text.extend(unmask_from(&data[h.start + skip..], h.mask, skip));
        match std::str::from_utf8(&text) {
            Ok(_) => self.in_flight_checked += text.len(),
            Err(e) if e.error_len().is_none() => self.in_flight_checked += e.valid_up_to(),
            Err(_) => return Err((CLOSE_INVALID, "text is not valid UTF-8")),
        }
        Ok(())
    }

    /// Keeps unparsed bytes for the next call.
    fn keep(&mut self, rest: &[u8]) {
        if !rest.is_empty() {
            self.pending_in.extend_from_slice(rest);
        }
    }

    fn finish(&mut self, r: Received) -> Received {
        if matches!(r, Received::Closed | Received::Violation { .. }) {
            self.read_done = true;
            self.pending_in = Vec::new();
            self.partial = None;
            self.deadline = None;
        }
        r
    }

    /// Handles the frame at the start of `data`: the bytes it used (0 when it is not
    /// all there yet) and what it amounts to, if anything yet.
    fn next_frame(&mut self, data: &[u8]) -> (usize, Option<Received>) {
        let h = match parse(data, self.max_frame) {
            Ok(Some(h)) => h,
            Ok(None) => return (0, None),
            Err((code, reason)) => return (data.len(), Some(Received::Violation { code, reason })),
        };
        let payload = unmask(&data[h.start..h.end], h.mask);
        self.in_flight_checked = 0;
        let got = self.on_frame(h.fin, h.opcode, payload);
        // A frame is whole; unless it is part of a message, what follows starts anew.
        if self.partial.is_none() {
            self.deadline_done = true;
        }
        (h.end, got)
    }

    fn on_frame(&mut self, fin: bool, opcode: u8, payload: Vec<u8>) -> Option<Received> {
        let violation = |code, reason| Some(Received::Violation { code, reason });
        match opcode {
            OP_PING => {
                // Only the latest ping is answered while pongs wait (RFC 6455 5.5.3):
                // a peer that pings and never reads cannot grow the queue.
                let unsent_pong = self
                    .out
                    .back()
                    .is_some_and(|o| o.written == 0 && o.head[0] == 0x80 | OP_PONG);
                if unsent_pong {
                    if let Some(o) = self.out.pop_back() {
                        self.out_bytes -= o.len();
                    }
                }
                self.queue(OP_PONG, Body::Owned(payload));
                Some(Received::Alive)
            }
            OP_PONG => Some(Received::Alive),
            OP_CLOSE => match close_payload_ok(&payload) {
                Ok(code) => {
                    // Answer with the peer's code, as the closing handshake asks.
                    self.queue_close(code.unwrap_or(CLOSE_NORMAL), "");
                    Some(Received::Closed)
                }
                Err((code, reason)) => violation(code, reason),
            },
            OP_TEXT | OP_BINARY if self.partial.is_some() => {
                violation(CLOSE_PROTOCOL, "a new message inside a fragmented one")
            }
            OP_TEXT | OP_BINARY if !fin => {
                let mut p = Partial {
                    text: opcode == OP_TEXT,
                    bytes: payload,
                    checked: 0,
                };
                if let Err((code, reason)) = p.check() {
                    return violation(code, reason);
                }
                self.partial = Some(p);
                None
            }
            OP_TEXT | OP_BINARY => Some(message(opcode == OP_TEXT, payload)),
            _ => {
                // OP_CONTINUE: parse() lets nothing else through.
                let Some(mut p) = self.partial.take() else {
                    return violation(CLOSE_PROTOCOL, "a continuation with nothing to continue");
                };
                if p.bytes.len() + payload.len() > self.max_frame {
                    return violation(CLOSE_TOO_BIG, "message larger than the limit");
                }
                p.bytes.extend_from_slice(&payload);
                if fin {
                    return Some(message(p.text, p.bytes));
                }
                if let Err((code, reason)) = p.check() {
                    return violation(code, reason);
                }
                self.partial = Some(p);
                None
            }
        }
    }
}

fn message(text: bool, payload: Vec<u8>) -> Received {
    if !text {
        return Received::Binary(payload);
    }
    match String::from_utf8(payload) {
        Ok(t) => Received::Text(t),
        Err(_) => Received::Violation {
            code: CLOSE_INVALID,
            reason: "text is not valid UTF-8",
        },
    }
}

impl Stream for WsSocket {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if self.read_done {
            return Poll::Ready(None);
        }
        Poll::Ready(match ready!(self.poll_receive(cx)) {
            Received::Text(t) => Some(Inbound::Text(t)),
            Received::Binary(_) => Some(Inbound::Binary),
            Received::Alive => Some(Inbound::Alive),
            Received::Closed => None,
            Received::Violation { code, reason } => Some(Inbound::Violation { code, reason }),
        })
    }
}

impl Sink<Outbound> for WsSocket {
    type Error = io::Error;

    /// Ready while the queue is under its bound: a peer that stops reading makes its
    /// senders wait (and the session gives up on it).
    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.out_bytes >= self.max_out {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> io::Result<()> {
        match item {
            Outbound::Text(t) => self.queue(OP_TEXT, Body::Shared(t)),
            Outbound::Ping => self.queue(OP_PING, Body::Owned(Vec::new())),
            Outbound::Close(code, reason) => self.queue_close(code, reason),
        }
        Ok(())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_write_out(cx)
    }

    /// Writes what is queued (the answer to a peer's close, if any) and ends the
    /// sending side.
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_write_out(cx))?;
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

const ECHO_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Echoes every data message back, with the production framing, limits and answer to
/// a violation: the route the WebSocket conformance suite runs against (only with
/// `--test-echo`).
pub async fn echo(upgraded: Upgraded, limits: &Limits) {
    use std::future::poll_fn;
    let Some(mut ws) = accept(upgraded, limits) else {
        return;
    };
    loop {
        match poll_fn(|cx| ws.poll_receive(cx)).await {
            Received::Text(t) => ws.queue(OP_TEXT, Body::Owned(t.into_bytes())),
            Received::Binary(b) => ws.queue(OP_BINARY, Body::Owned(b)),
            Received::Alive => {}
            Received::Closed => {
                let flush = poll_fn(|cx| Pin::new(&mut ws).poll_close(cx));
                let _ = tokio::time::timeout(ECHO_CLOSE_WAIT, flush).await;
                return;
            }
            Received::Violation { code, reason } => {
                ws.queue_close(code, reason);
                let closing = async {
                    poll_fn(|cx| ws.poll_write_out(cx)).await?;
                    // Let the peer answer the close, as the closing handshake asks.
                    while poll_fn(|cx| ws.poll_discard(cx)).await {}
                    Ok::<(), io::Error>(())
                };
                let _ = tokio::time::timeout(ECHO_CLOSE_WAIT, closing).await;
                return;
            }
        }
        if poll_fn(|cx| ws.poll_write_out(cx)).await.is_err() {
            return;
        }
    }
}

impl WsSocket {
    /// Reads and discards: false once the connection has ended.
    fn poll_discard(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut buf = [0u8; READ_CHUNK];
        let mut rb = ReadBuf::new(&mut buf);
        match ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb)) {
            Ok(()) => Poll::Ready(!rb.filled().is_empty()),
            Err(_) => Poll::Ready(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, as a browser sends it.
    fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut f = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
        f
    }

    /// The server's socket on a loopback connection, and the client's end.
    async fn pair() -> (WsSocket, TcpStream) {
        pair_with(&Limits::default()).await
    }

    async fn pair_with(limits: &Limits) -> (WsSocket, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let client = TcpStream::connect(addr).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let ws = WsSocket::new(server, Bytes::new(), limits);
        (ws, client)
    }

    #[test]
    fn a_frame_parses_only_once_all_of_it_is_there() {
        for len in [0, 5, 125, 126, 300, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let f = client_frame(true, OP_BINARY, &payload);
            for cut in [0, 1, 2, 3, f.len() / 2, f.len() - 1] {
                match parse(&f[..cut], 100_000) {
                    Ok(None) => {}
                    _ => panic!("a {len}-byte payload cut at {cut} parsed"),
                }
            }
            let h = match parse(&f, 100_000) {
                Ok(Some(h)) => h,
                _ => panic!("a whole {len}-byte frame did not parse"),
            };
            assert_eq!(h.end, f.len());
            assert_eq!(unmask(&f[h.start..h.end], h.mask), payload);
        }
    }

    #[test]
    fn broken_frames_get_the_close_code_they_deserve() {
        let code = |f: &[u8], max| parse(f, max).err().map(|(c, _)| c);
        let mut unmasked = client_frame(true, OP_TEXT, b"hi");
        unmasked[1] &= 0x7F;
        assert_eq!(code(&unmasked, 100), Some(CLOSE_PROTOCOL));
        let mut reserved = client_frame(true, OP_TEXT, b"hi");
        reserved[0] |= 0x40;
        assert_eq!(code(&reserved, 100), Some(CLOSE_PROTOCOL));
        assert_eq!(
            code(&client_frame(true, 0x3, b""), 100),
            Some(CLOSE_PROTOCOL)
        );
        assert_eq!(
            code(&client_frame(false, OP_PING, b""), 100),
            Some(CLOSE_PROTOCOL)
        );
        assert_eq!(
            code(&client_frame(true, OP_PING, &[0; 126]), 1000),
            Some(CLOSE_PROTOCOL)
        );
        // Too big is known from the header alone, before the payload arrives.
        let big = client_frame(true, OP_TEXT, &[b'a'; 101]);
        assert_eq!(code(&big[..4], 100), Some(CLOSE_TOO_BIG));
        assert_eq!(close_payload_ok(&[0x03, 0xe8]), Ok(Some(1000)));
        assert!(close_payload_ok(&[0x03]).is_err());
        assert!(
            close_payload_ok(&[0x03, 0xed]).is_err(),
            "1005 is not for the wire"
        );
        assert_eq!(
            close_payload_ok(&[0x03, 0xe8, 0xff]).err().map(|(c, _)| c),
            Some(CLOSE_INVALID)
        );
    }

    #[test]
    fn server_frames_carry_the_shortest_length_and_no_mask() {
        for (len, head_len) in [(0, 2), (125, 2), (126, 4), (65_535, 4), (65_536, 10)] {
            let out = Out::new(OP_TEXT, Body::Owned(vec![b'x'; len]));
            assert_eq!(usize::from(out.head_len), head_len, "{len} bytes");
            assert_eq!(out.head[0], 0x81);
            assert_eq!(out.head[1] & 0x80, 0, "server frames are not masked");
            assert_eq!(out.len(), head_len + len);
        }
    }

    #[tokio::test]
    async fn fragmented_text_fails_at_the_fragment_that_breaks_it() {
        let (mut ws, _client) = pair().await;
        // A character cut in two by the fragmenting is not an error.
        assert_eq!(ws.on_frame(false, OP_TEXT, b"caf\xC3".to_vec()), None);
        assert_eq!(
            ws.on_frame(true, OP_CONTINUE, b"\xA9!".to_vec()),
            Some(Received::Text("café!".into()))
        );
        // An invalid byte fails at its fragment, before the message ends.
        assert_eq!(ws.on_frame(false, OP_TEXT, b"ok ".to_vec()), None);
        match ws.on_frame(false, OP_CONTINUE, b"\xFF more".to_vec()) {
            Some(Received::Violation { code, .. }) => assert_eq!(code, CLOSE_INVALID),
            other => panic!("not failed at the bad fragment: {other:?}"),
        }
    }

    /// The next message or event, if one comes within 300 ms.
    async fn receive(ws: &mut WsSocket) -> Result<Received, tokio::time::error::Elapsed> {
        let next = std::future::poll_fn(|cx| ws.poll_receive(cx));
        tokio::time::timeout(std::time::Duration::from_millis(300), next).await
    }

    #[tokio::test]
    async fn text_that_is_not_utf8_fails_before_its_frame_is_whole() {
        use tokio::io::AsyncWriteExt;
        // A character cut by the chop waits for the rest of its frame.
        let (mut ws, mut client) = pair().await;
        let f = client_frame(true, OP_TEXT, "café au lait".as_bytes());
        let cut = 2 + 4 + 4; // header, mask, "caf" and the first byte of "é"
        client.write_all(&f[..cut]).await.expect("write");
        assert!(receive(&mut ws).await.is_err(), "nothing yet");
        client.write_all(&f[cut..]).await.expect("write");
        assert_eq!(
            receive(&mut ws).await.ok(),
            Some(Received::Text("café au lait".into()))
        );
        // A byte that can never be UTF-8 fails as it arrives, in a first frame and in
        // a continuation, while the peer holds back the rest.
        for opening in [None, Some(client_frame(false, OP_TEXT, b"ok "))] {
            let (mut ws, mut client) = pair().await;
            let opcode = if opening.is_some() {
                OP_CONTINUE
            } else {
                OP_TEXT
            };
            if let Some(o) = &opening {
                client.write_all(o).await.expect("write");
            }
            let f = client_frame(true, opcode, b"hello \xFF and the rest of a long frame");
            client.write_all(&f[..f.len() - 10]).await.expect("write");
            match receive(&mut ws).await {
                Ok(Received::Violation { code, .. }) => assert_eq!(code, CLOSE_INVALID),
                other => panic!("not failed before the frame was whole: {other:?}"),
            }
        }
    }

    /// Byte by byte, with a read between bytes: each read checks only what it brought
    /// (the cursor follows the bytes, a cut character waits for the rest), and the
    /// message is the same as if the frame had come whole.
    #[tokio::test]
    async fn a_text_frame_chopped_byte_by_byte_is_checked_as_it_comes() {
        use tokio::io::AsyncWriteExt;
        let (mut ws, mut client) = pair().await;
        // "café au lait, 日本" in two fragments that cut the "é" in two.
        let opening = client_frame(false, OP_TEXT, b"caf\xC3");
        let mut tail = vec![0xA9];
        tail.extend_from_slice(" au lait, 日本".as_bytes());
        let rest = client_frame(true, OP_CONTINUE, &tail);
        client.write_all(&opening).await.expect("write");
        let mut most_checked = 0;
        let mut got = None;
        for b in &rest {
            client.write_all(&[*b]).await.expect("write");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            let polled = std::future::poll_fn(|cx| Poll::Ready(ws.poll_receive(cx))).await;
            if let Poll::Ready(r) = polled {
                got = Some(r);
                break;
            }
            // The carried byte of "é" and the payload so far, never more.
            let arrived = ws.pending_in.len().saturating_sub(2 + 4);
            assert!(ws.in_flight_checked <= 1 + arrived);
            most_checked = most_checked.max(ws.in_flight_checked);
        }
        let got = match got {
            Some(r) => r,
            None => receive(&mut ws).await.expect("the message"),
        };
        assert_eq!(got, Received::Text("café au lait, 日本".into()));
        assert!(most_checked > 10, "checked as it came: {most_checked}");
    }

    #[tokio::test]
    async fn pings_from_a_peer_that_never_reads_queue_one_pong() {
        let (mut ws, _client) = pair().await;
        for i in 0..10_000u32 {
            let r = ws.on_frame(true, OP_PING, i.to_be_bytes().to_vec());
            assert_eq!(r, Some(Received::Alive));
        }
        assert_eq!(ws.out.len(), 1);
        assert_eq!(ws.out_bytes, 2 + 4);
        assert_eq!(
            ws.out[0].body.bytes(),
            9_999u32.to_be_bytes(),
            "the latest ping's"
        );
    }

    /// Frames split at every byte and pipelined many to a read come out whole, in order,
    /// with fragments joined, pings answered in between, and nothing kept once done.
    #[tokio::test]
    async fn messages_survive_any_split_and_nothing_is_kept_between_them() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut ws, mut client) = pair().await;
        let mut bytes = client_frame(false, OP_TEXT, "héllo ".as_bytes());
        bytes.extend(client_frame(true, OP_PING, b"p"));
        bytes.extend(client_frame(true, OP_CONTINUE, "wörld".as_bytes()));
        for i in 0..50 {
            bytes.extend(client_frame(true, OP_TEXT, format!("m{i}").as_bytes()));
        }
        let writer = tokio::spawn(async move {
            // One byte at a time for the first frames, then all the rest at once.
            for b in &bytes[..40] {
                client.write_all(&[*b]).await.expect("write");
                client.flush().await.expect("flush");
                tokio::task::yield_now().await;
            }
            client.write_all(&bytes[40..]).await.expect("write");
            client
        });
        let mut got = Vec::new();
        while got.len() < 52 {
            got.push(std::future::poll_fn(|cx| ws.poll_receive(cx)).await);
        }
        assert_eq!(
            got[0],
            Received::Alive,
            "the ping comes between the fragments"
        );
        assert_eq!(got[1], Received::Text("héllo wörld".into()));
        for (i, r) in got[2..].iter().enumerate() {
            assert_eq!(*r, Received::Text(format!("m{i}")));
        }
        assert!(ws.pending_in.is_empty() && ws.pending_in.capacity() == 0);
        assert!(ws.partial.is_none());
        // The pong went out, unmasked, with the ping's payload.
        let mut client = writer.await.expect("writer");
        std::future::poll_fn(|cx| ws.poll_write_out(cx))
            .await
            .expect("flush");
        assert_eq!(ws.out.capacity(), 0, "the write queue is given back");
        let mut pong = [0u8; 3];
        client.read_exact(&mut pong).await.expect("pong");
        assert_eq!(pong, [0x80 | OP_PONG, 1, b'p']);
    }

    const DEADLINE: std::time::Duration = std::time::Duration::from_millis(400);

    /// A socket whose messages must be finished within `deadline`.
    async fn pair_with_deadline(deadline: std::time::Duration) -> (WsSocket, TcpStream) {
        let limits = Limits {
            message_deadline: deadline,
            ..Limits::default()
        };
        pair_with(&limits).await
    }

    /// Until `ws` ends the connection, `step` sends the peer's next bytes every 50 ms:
    /// what it received meanwhile, and when it ended.
    async fn keep_sending(
        ws: &mut WsSocket,
        client: &mut TcpStream,
        mut step: impl FnMut(usize) -> Vec<u8>,
    ) -> (Vec<Received>, std::time::Duration) {
        use tokio::io::AsyncWriteExt;
        let started = tokio::time::Instant::now();
        let mut got = Vec::new();
        for i in 0.. {
            let bytes = step(i);
            client.write_all(&bytes).await.expect("write");
            let until = tokio::time::Instant::now() + std::time::Duration::from_millis(50);
            loop {
                let next = std::future::poll_fn(|cx| ws.poll_receive(cx));
                let Ok(r) = tokio::time::timeout_at(until, next).await else {
                    break;
                };
                let ended = matches!(r, Received::Violation { .. } | Received::Closed);
                got.push(r);
                if ended {
                    return (got, started.elapsed());
                }
            }
            assert!(i < 200, "never closed");
        }
        unreachable!()
    }

    #[tokio::test]
    async fn a_message_left_unfinished_is_closed_at_its_deadline_though_pings_keep_coming() {
        let (mut ws, mut client) = pair_with_deadline(DEADLINE).await;
        let (got, after) = keep_sending(&mut ws, &mut client, |i| {
            if i == 0 {
                client_frame(false, OP_TEXT, b"the start of a message ")
            } else {
                client_frame(true, OP_PING, b"still here")
            }
        })
        .await;
        let (last, pings) = got.split_last().expect("something");
        assert!(pings.iter().all(|r| *r == Received::Alive), "{got:?}");
        assert!(pings.len() >= 3, "pings were answered meanwhile: {got:?}");
        match last {
            Received::Violation { code, .. } => assert_eq!(*code, 1008),
            other => panic!("not closed with 1008: {other:?}"),
        }
        assert!(after >= DEADLINE, "closed after {after:?}");
        assert!(ws.deadline.is_none() && ws.partial.is_none());
    }

    #[tokio::test]
    async fn a_frame_trickled_byte_by_byte_is_closed_at_its_deadline() {
        let (mut ws, mut client) = pair_with_deadline(DEADLINE).await;
        let frame = client_frame(true, OP_TEXT, &[b'a'; 1000]);
        let (got, after) = keep_sending(&mut ws, &mut client, |i| vec![frame[i]]).await;
        assert!(
            matches!(got[..], [Received::Violation { code: 1008, .. }]),
            "{got:?}"
        );
        assert!(after >= DEADLINE);
    }

    /// Each message has the deadline from its own first fragment: messages that take
    /// most of it each, one after the other, all arrive.
    #[tokio::test]
    async fn messages_finished_in_time_arrive_and_each_starts_its_own_deadline() {
        let deadline = std::time::Duration::from_secs(1);
        let (mut ws, mut client) = pair_with_deadline(deadline).await;
        // Per message: an opening, three continuations and pings, the end: 250 ms,
        // eight of them in a row: twice the deadline.
        let (got, after) = keep_sending(&mut ws, &mut client, |i| match (i % 5, i) {
            (_, 40) => client_frame(true, OP_CLOSE, &1000u16.to_be_bytes()),
            (0, _) => client_frame(false, OP_TEXT, b"part"),
            (4, _) => client_frame(true, OP_CONTINUE, b"!"),
            (_, _) if i % 2 == 0 => client_frame(true, OP_PING, b""),
            _ => client_frame(false, OP_CONTINUE, b" part"),
        })
        .await;
        let texts = got
            .iter()
            .filter(|r| matches!(r, Received::Text(_)))
            .count();
        assert_eq!(texts, 8, "{got:?}");
        assert_eq!(got.last(), Some(&Received::Closed), "{got:?}");
        assert!(after > deadline);
        assert!(ws.deadline.is_none());
    }
}
