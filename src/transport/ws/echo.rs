//! The echo route: every data message back, with the production framing, limits and
//! answer to a violation. The WebSocket conformance suite runs against it (only with
//! `--test-echo`); it must not be reachable otherwise.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use futures::Sink;
use hyper::upgrade::Upgraded;
use tokio::io::{AsyncRead, ReadBuf};
use tokio::net::TcpStream;

use super::accept;
use super::frame::{OP_BINARY, OP_TEXT};
use super::read::{Received, READ_CHUNK};
use super::write::Body;
use crate::config::Limits;

/// How long the closing handshake may take before the connection is dropped.
const ECHO_CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Echoes every data message back until the connection ends.
pub async fn echo(upgraded: Upgraded, limits: &Limits) {
    let Some(mut ws) = accept(upgraded, limits) else {
        return;
    };
    loop {
        match poll_fn(|cx| ws.poll_receive(cx)).await {
            Received::Text(t) => ws.write.push(OP_TEXT, Body::Owned(t.into_bytes())),
            Received::Binary(b) => ws.write.push(OP_BINARY, Body::Owned(b)),
            Received::Alive => {}
            Received::Closed => {
                let flush = poll_fn(|cx| Pin::new(&mut ws).poll_close(cx));
                let _ = tokio::time::timeout(ECHO_CLOSE_WAIT, flush).await;
                return;
            }
            Received::Violation { code, reason } => {
                ws.write.push_close(code, reason);
                let closing = async {
                    poll_fn(|cx| ws.poll_write_out(cx)).await?;
                    // Let the peer answer the close, as the closing handshake asks.
                    while poll_fn(|cx| poll_discard(&mut ws.io, cx)).await {}
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

/// Reads and discards: false once the connection has ended.
fn poll_discard(io: &mut TcpStream, cx: &mut Context<'_>) -> Poll<bool> {
    let mut buf = [0u8; READ_CHUNK];
    let mut rb = ReadBuf::new(&mut buf);
    match ready!(Pin::new(io).poll_read(cx, &mut rb)) {
        Ok(()) => Poll::Ready(!rb.filled().is_empty()),
        Err(_) => Poll::Ready(false),
    }
}
