//! tungstenite underneath, protocol-level values on top.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::config::Limits;
use crate::session::{Inbound, Outbound};

/// tungstenite configured from our limits: its defaults (64 MiB messages, a 128 KiB
/// read buffer, an unbounded write buffer) are not for a public server.
pub fn config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        .write_buffer_size(0)
        .max_write_buffer_size(limits.max_write_buffer_bytes)
        .max_message_size(Some(limits.max_frame_bytes))
        .max_frame_size(Some(limits.max_frame_bytes))
}

/// The close code and reason a read error deserves: RFC 6455 says to fail the
/// connection with a close frame when the peer broke the protocol. None: the
/// connection is gone (reset, closed, I/O error) and nothing can be sent.
fn violation(e: &WsError) -> Option<(u16, &'static str)> {
    match e {
        WsError::Capacity(CapacityError::MessageTooLong { .. })
        | WsError::Capacity(CapacityError::TooManyHeaders) => {
            Some((CloseCode::Size.into(), "frame larger than the limit"))
        }
        WsError::Utf8(_) => Some((CloseCode::Invalid.into(), "text is not valid UTF-8")),
        WsError::Protocol(p) if !matches!(p, ProtocolError::ResetWithoutClosingHandshake) => {
            Some((CloseCode::Protocol.into(), "WebSocket protocol violation"))
        }
        _ => None,
    }
}

pub async fn accept(upgraded: Upgraded, limits: &Limits) -> WsSocket {
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(config(limits)),
    )
    .await;
    WsSocket { ws, done: false }
}

pub struct WsSocket {
    ws: WebSocketStream<TokioIo<Upgraded>>,
    done: bool,
}

impl Stream for WsSocket {
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = match Pin::new(&mut self.ws).poll_next(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(item) => item,
        };
        let out = match item {
            Some(Ok(Message::Text(t))) => Some(Inbound::Text(t.as_str().to_owned())),
            Some(Ok(Message::Binary(_))) => Some(Inbound::Binary),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
                Some(Inbound::Alive)
            }
            Some(Err(e)) => violation(&e).map(|(code, reason)| Inbound::Violation { code, reason }),
            Some(Ok(Message::Close(_))) | None => None,
        };
        if matches!(out, None | Some(Inbound::Violation { .. })) {
            self.done = true;
        }
        Poll::Ready(out)
    }
}

impl Sink<Outbound> for WsSocket {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.ws).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), WsError> {
        let msg = match item {
            Outbound::Text(t) => Message::text(t.as_ref()),
            Outbound::Ping => Message::Ping(Default::default()),
            Outbound::Close(code, reason) => Message::Close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: reason.into(),
            })),
        };
        Pin::new(&mut self.ws).start_send(msg)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.ws).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Pin::new(&mut self.ws).poll_close(cx)
    }
}

const ECHO_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Echoes every data message back, on the production settings and with the
/// production answer to a violation: the route the WebSocket conformance suite runs
/// against (only with `--test-echo`).
pub async fn echo(upgraded: Upgraded, limits: &Limits) {
    use futures::{SinkExt, StreamExt};
    let mut ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(config(limits)),
    )
    .await;
    while let Some(msg) = ws.next().await {
        match msg {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                if let Some((code, reason)) = violation(&e) {
                    let frame = CloseFrame {
                        code: CloseCode::from(code),
                        reason: reason.into(),
                    };
                    if ws.close(Some(frame)).await.is_ok() {
                        // Let the peer answer the close, as the closing handshake asks.
                        let drain = async { while let Some(Ok(_)) = ws.next().await {} };
                        let _ = tokio::time::timeout(ECHO_CLOSE_WAIT, drain).await;
                    }
                }
                return;
            }
        }
    }
}
