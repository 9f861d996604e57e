//! The queue of frames to write: data frames as the session hands them (the shared,
//! already-encoded text, not a copy), the protocol's own pings, pongs and close, and
//! the vectored writes that drain it.
//!
//! It frames what it is given and must not read, or decide when to close: the read
//! side and the session do.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;

use super::frame::{OP_CLOSE, OP_PONG};
use crate::hub::Frame;

/// The most queued frames handed to one vectored write.
const WRITE_SLICES: usize = 64;

/// A frame's payload: the session's shared frame, or bytes of our own.
pub(super) enum Body {
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

/// One frame waiting to be written.
struct Out {
    head: [u8; 10],
    head_len: u8,
    body: Body,
    /// Bytes of head and body already written.
    written: usize,
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

/// The frames of one connection waiting to be written.
pub(super) struct WriteQueue {
    frames: VecDeque<Out>,
    /// Their bytes not yet written.
    bytes: usize,
    /// Queued bytes past which a sender waits for the socket.
    max: usize,
    /// A close frame is queued or written: no frame may follow it.
    closed: bool,
}

impl WriteQueue {
    pub(super) fn new(max: usize) -> WriteQueue {
        WriteQueue {
            frames: VecDeque::new(),
            bytes: 0,
            max,
            closed: false,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Whether a sender should wait for the socket before queueing more.
    pub(super) fn is_full(&self) -> bool {
        self.bytes >= self.max
    }

    pub(super) fn push(&mut self, opcode: u8, body: Body) {
        if self.closed {
            return;
        }
        if opcode == OP_CLOSE {
            self.closed = true;
        }
        let out = Out::new(opcode, body);
        self.bytes += out.len();
        self.frames.push_back(out);
    }

    pub(super) fn push_close(&mut self, code: u16, reason: &str) {
        let mut payload = Vec::with_capacity(2 + reason.len());
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(reason.as_bytes());
        self.push(OP_CLOSE, Body::Owned(payload));
    }

    /// Answers a ping. Only the latest ping is answered while pongs wait (RFC 6455
    /// 5.5.3): a peer that pings and never reads cannot grow the queue.
    pub(super) fn push_pong(&mut self, payload: Vec<u8>) {
        let unsent_pong = self
            .frames
            .back()
            .is_some_and(|o| o.written == 0 && o.head[0] == 0x80 | OP_PONG);
        if unsent_pong {
            if let Some(o) = self.frames.pop_back() {
                self.bytes -= o.len();
            }
        }
        self.push(OP_PONG, Body::Owned(payload));
    }

    /// The frames the queue has room for without growing.
    #[cfg(test)]
    pub(super) fn capacity(&self) -> usize {
        self.frames.capacity()
    }

    /// Writes what is queued, with as few system calls as the socket takes.
    pub(super) fn poll_write<W: AsyncWrite + Unpin>(
        &mut self,
        io: &mut W,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        while !self.frames.is_empty() {
            let mut slices = [IoSlice::new(&[]); WRITE_SLICES];
            let mut n = 0;
            for out in self.frames.iter() {
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
            let wrote = ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n]))?;
            if wrote == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.bytes -= wrote;
            let mut left = wrote;
            while let Some(front) = self.frames.front_mut() {
                let rest = front.len() - front.written;
                if left < rest {
                    front.written += left;
                    break;
                }
                left -= rest;
                self.frames.pop_front();
            }
        }
        // Written: the queue's memory goes back (the module header's idle design).
        self.frames = VecDeque::new();
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::{OP_PING, OP_TEXT};
    use super::super::testing::{on_frame, pair};
    use super::*;

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
    async fn pings_from_a_peer_that_never_reads_queue_one_pong() {
        let (mut ws, _client) = pair().await;
        for i in 0..10_000u32 {
            let r = on_frame(&mut ws, true, OP_PING, i.to_be_bytes().to_vec());
            assert_eq!(r, Some(super::super::read::Received::Alive));
        }
        assert_eq!(ws.write.frames.len(), 1);
        assert_eq!(ws.write.bytes, 2 + 4);
        assert_eq!(
            ws.write.frames[0].body.bytes(),
            9_999u32.to_be_bytes(),
            "the latest ping's"
        );
    }

    /// Once written, the queue holds no memory.
    #[tokio::test]
    async fn a_written_queue_is_given_back() {
        use tokio::io::AsyncReadExt;
        let (mut ws, mut client) = pair().await;
        ws.write.push(OP_TEXT, Body::Owned(b"hi".to_vec()));
        std::future::poll_fn(|cx| ws.write.poll_write(&mut ws.io, cx))
            .await
            .expect("write");
        assert_eq!(ws.write.frames.capacity(), 0);
        let mut got = [0u8; 4];
        client.read_exact(&mut got).await.expect("read");
        assert_eq!(got, [0x81, 2, b'h', b'i']);
    }
}
