//! The read side of one connection: bytes in, frames parsed, fragments joined into
//! messages, text checked as it arrives (`utf8`), the deadline of a message in
//! progress, and the protocol's own answers (a pong for a ping, the close for a close),
//! which it queues for the write side.
//!
//! It hands on whole messages and events and must not look inside a message. What it
//! keeps between reads, and for how long, follows "Memory while idle" in `ws`.

use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, ReadBuf};
use tokio::time::Sleep;

use super::frame::{
    close_payload_ok, parse, parse_head, unmask, Violation, CLOSE_NORMAL, CLOSE_POLICY,
    CLOSE_PROTOCOL, CLOSE_TOO_BIG, OP_BINARY, OP_CLOSE, OP_CONTINUE, OP_PING, OP_PONG, OP_TEXT,
};
use super::utf8::Utf8Check;
use super::write::WriteQueue;
use crate::config::Limits;

/// Bytes read per system call, into a buffer on the stack.
pub(super) const READ_CHUNK: usize = 4096;

/// What the peer sent, one message or event at a time.
#[derive(Debug, PartialEq)]
pub(super) enum Received {
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

impl From<Violation> for Received {
    fn from((code, reason): Violation) -> Received {
        Received::Violation { code, reason }
    }
}

/// A fragmented message so far.
struct Partial {
    text: bool,
    bytes: Vec<u8>,
}

/// The time a message (or a frame) may take once it started.
struct Deadline {
    limit: Duration,
    /// Runs while a message or frame is in progress; none otherwise.
    timer: Option<Pin<Box<Sleep>>>,
    /// What was in progress when `timer` was set is done: the next one starts anew.
    done: bool,
}

impl Deadline {
    /// Err once what is in progress had `limit` to finish (counted from when it
    /// started, not from its last fragment, so trickling bytes or answering pings does
    /// not extend it).
    fn poll(&mut self, in_progress: bool, cx: &mut Context<'_>) -> Result<(), Violation> {
        if !in_progress {
            self.timer = None;
            return Ok(());
        }
        let due = tokio::time::Instant::now() + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if std::mem::take(&mut self.done) {
            timer.as_mut().reset(due);
        }
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Err((CLOSE_POLICY, "message not finished in time")),
            Poll::Pending => Ok(()),
        }
    }
}

/// The read state of one connection.
pub(super) struct Reader {
    /// The part of a frame still in flight (nothing, and no allocation, between frames).
    pending: Vec<u8>,
    /// A fragmented message so far.
    partial: Option<Partial>,
    /// The check of the text message in progress, in flight or fragmented.
    utf8: Utf8Check,
    max_frame: usize,
    /// Nothing more will be read: the peer closed, the connection failed, or it broke
    /// the protocol.
    done: bool,
    deadline: Deadline,
}

impl Reader {
    /// `read_ahead`: what the HTTP server read past the handshake.
    pub(super) fn new(read_ahead: &[u8], limits: &Limits) -> Reader {
        Reader {
            pending: read_ahead.to_vec(),
            partial: None,
            utf8: Utf8Check::default(),
            max_frame: limits.max_frame_bytes,
            done: false,
            deadline: Deadline {
                limit: limits.message_deadline,
                timer: None,
                done: false,
            },
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.done
    }

    /// The next message or event from the peer on `io`; the protocol's answers go to
    /// `out`.
    pub(super) fn poll_receive<R: AsyncRead + Unpin>(
        &mut self,
        io: &mut R,
        out: &mut WriteQueue,
        cx: &mut Context<'_>,
    ) -> Poll<Received> {
        if self.done {
            return Poll::Ready(Received::Closed);
        }
        loop {
            if !self.pending.is_empty() {
                let mut pending = std::mem::take(&mut self.pending);
                let (used, got) = self.next_frame(&pending, out);
                pending.drain(..used);
                if !pending.is_empty() {
                    self.pending = pending;
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
            match Pin::new(&mut *io).poll_read(cx, &mut rb) {
                Poll::Pending => {
                    let in_progress = self.partial.is_some() || !self.pending.is_empty();
                    if let Err(v) = self.deadline.poll(in_progress, cx) {
                        return Poll::Ready(self.finish(v.into()));
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
            if self.pending.is_empty() {
                // The usual case: whole frames, parsed where they were read.
                let mut at = 0;
                while at < read.len() {
                    let (used, got) = self.next_frame(&read[at..], out);
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
                self.pending.extend_from_slice(read);
            }
            if let Err(v) = self.check_in_flight() {
                return Poll::Ready(self.finish(v.into()));
            }
        }
    }

    /// A text frame still arriving is checked as far as it has come, so text that is not
    /// UTF-8 fails when the bad bytes arrive, not once the peer has sent the rest of its
    /// frame (which it may take its time over). Whole frames are left to `next_frame`.
    fn check_in_flight(&mut self) -> Result<(), Violation> {
        let Ok(Some(h)) = parse_head(&self.pending, self.max_frame) else {
            // No header yet, or a broken one: `next_frame` says so.
            return Ok(());
        };
        if self.pending.len() >= h.end || !self.is_text(h.opcode) {
            return Ok(());
        }
        let arrived = self.pending.get(h.start..).unwrap_or_default();
        self.utf8.arrived(arrived, h.mask)
    }

    /// Whether a frame with this opcode carries text, given the message in progress.
    fn is_text(&self, opcode: u8) -> bool {
        match (opcode, &self.partial) {
            (OP_TEXT, None) => true,
            (OP_CONTINUE, Some(p)) => p.text,
            _ => false,
        }
    }

    /// Keeps unparsed bytes for the next call.
    fn keep(&mut self, rest: &[u8]) {
        if !rest.is_empty() {
            self.pending.extend_from_slice(rest);
        }
    }

    fn finish(&mut self, r: Received) -> Received {
        if matches!(r, Received::Closed | Received::Violation { .. }) {
            self.done = true;
            self.pending = Vec::new();
            self.partial = None;
            self.deadline.timer = None;
        }
        r
    }

    /// Handles the frame at the start of `data`: the bytes it used (0 when it is not
    /// all there yet) and what it amounts to, if anything yet.
    fn next_frame(&mut self, data: &[u8], out: &mut WriteQueue) -> (usize, Option<Received>) {
        let h = match parse(data, self.max_frame) {
            Ok(Some(h)) => h,
            Ok(None) => return (0, None),
            Err(v) => return (data.len(), Some(v.into())),
        };
        let payload = unmask(&data[h.start..h.end], h.mask);
        let got = self.on_frame(h.fin, h.opcode, payload, out);
        // A frame is whole; unless it is part of a message, what follows starts anew.
        if self.partial.is_none() {
            self.deadline.done = true;
        }
        (h.end, got)
    }

    /// One whole frame: what it amounts to, if anything yet.
    pub(super) fn on_frame(
        &mut self,
        fin: bool,
        opcode: u8,
        payload: Vec<u8>,
        out: &mut WriteQueue,
    ) -> Option<Received> {
        match opcode {
            OP_PING => {
                out.push_pong(payload);
                Some(Received::Alive)
            }
            OP_PONG => Some(Received::Alive),
            OP_CLOSE => match close_payload_ok(&payload) {
                Ok(code) => {
                    // Answer with the peer's code, as the closing handshake asks.
                    out.push_close(code.unwrap_or(CLOSE_NORMAL), "");
                    Some(Received::Closed)
                }
                Err(v) => Some(v.into()),
            },
            OP_TEXT | OP_BINARY if self.partial.is_some() => {
                Some((CLOSE_PROTOCOL, "a new message inside a fragmented one").into())
            }
            OP_TEXT | OP_BINARY => {
                let p = Partial {
                    text: opcode == OP_TEXT,
                    bytes: payload,
                };
                self.add(p, 0, fin)
            }
            _ => {
                // OP_CONTINUE: parse() lets nothing else through.
                let Some(mut p) = self.partial.take() else {
                    return Some(
                        (CLOSE_PROTOCOL, "a continuation with nothing to continue").into(),
                    );
                };
                if p.bytes.len() + payload.len() > self.max_frame {
                    return Some((CLOSE_TOO_BIG, "message larger than the limit").into());
                }
                let from = p.bytes.len();
                p.bytes.extend_from_slice(&payload);
                self.add(p, from, fin)
            }
        }
    }

    /// The message `p` after a frame whose payload starts at `from`: the message if the
    /// frame was its last, else kept (its new text checked) for the next fragment.
    fn add(&mut self, p: Partial, from: usize, fin: bool) -> Option<Received> {
        if fin {
            if !p.text {
                return Some(Received::Binary(p.bytes));
            }
            return Some(match self.utf8.message(p.bytes) {
                Ok(t) => Received::Text(t),
                Err(v) => v.into(),
            });
        }
        if p.text {
            if let Err(v) = self.utf8.fragment(p.bytes.get(from..).unwrap_or_default()) {
                return Some(v.into());
            }
        }
        self.partial = Some(p);
        None
    }
}

#[cfg(test)]
mod tests;
