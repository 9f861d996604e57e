//! WebSocket framing (RFC 6455, the server's side) on the upgraded TCP connection, and
//! the protocol-level values the session sees on top of it.
//!
//! Owns the bytes of one connection: frames in (unmasked, checked against our limits,
//! fragments joined, text checked to be UTF-8), frames out, and the protocol's own
//! traffic (pong for ping, the closing handshake). It must not look inside a message.
//! The handshake itself is hyper's, answered in `http`.
//!
//! - `frame`: a frame's header on the wire, unmasking, close payloads (pure functions);
//! - `read`: the read state machine, fragments, the message deadline, and the answers
//!   to pings and closes; `utf8`: the incremental UTF-8 check it uses;
//! - `write`: the queue of frames out and its vectored writes;
//! - `echo`: the route the conformance suite runs against.
//!
//! # Memory while idle
//!
//! Most connections are idle most of the time, so an idle connection holds no buffer:
//! - Reads go into a buffer on the stack, and a frame that arrives whole is parsed where
//!   it was read. Only the part of a frame still in flight is kept on the heap, and only
//!   until the frame is whole; then that memory is released, not kept for the next one.
//! - A fragmented message is kept until its last fragment, and no longer.
//! - Frames out are queued as the session's shared, already-encoded frame (no copy per
//!   recipient) with their few header bytes, written with vectored writes, and the
//!   queue's memory is released once it is written.
//! - What is kept is kept for a while only: a message (or frame) in progress must be
//!   finished within `message_deadline` of its first fragment (or byte), or the
//!   connection is closed with 1008. The timer exists only while one is in progress.

mod echo;
mod frame;
mod read;
#[cfg(test)]
mod testing;
mod utf8;
mod write;

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use futures::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWrite;
use tokio::net::TcpStream;

use crate::config::Limits;
use crate::session::{Inbound, Outbound};
pub use echo::echo;
use frame::{OP_PING, OP_TEXT};
use read::{Reader, Received};
use write::{Body, WriteQueue};

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

/// A WebSocket connection, server side.
pub struct WsSocket {
    io: TcpStream,
    read: Reader,
    write: WriteQueue,
}

impl WsSocket {
    fn new(io: TcpStream, read_ahead: Bytes, limits: &Limits) -> WsSocket {
        WsSocket {
            io,
            read: Reader::new(&read_ahead, limits),
            write: WriteQueue::new(limits.max_write_buffer_bytes),
        }
    }

    /// The next message or event from the peer.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Received> {
        // A pong or close answer queued earlier goes out as soon as it can.
        if !self.read.is_done() && !self.write.is_empty() {
            let _ = self.poll_write_out(cx);
        }
        self.read.poll_receive(&mut self.io, &mut self.write, cx)
    }

    /// Writes what is queued.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.write.poll_write(&mut self.io, cx)
    }
}

impl Stream for WsSocket {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if self.read.is_done() {
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
        if self.write.is_full() {
            ready!(self.poll_write_out(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> io::Result<()> {
        match item {
            Outbound::Text(t) => self.write.push(OP_TEXT, Body::Shared(t)),
            Outbound::Ping => self.write.push(OP_PING, Body::Owned(Vec::new())),
            Outbound::Close(code, reason) => self.write.push_close(code, reason),
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
