//! tungstenite underneath, protocol-level values on top.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::CapacityError;
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
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { .. })))
            | Some(Err(WsError::Capacity(CapacityError::TooManyHeaders))) => Some(Inbound::TooBig),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => None,
        };
        if matches!(out, None | Some(Inbound::TooBig)) {
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

/// Echoes every data message back, on the production settings: the route the
/// WebSocket conformance suite runs against (only with `--test-echo`).
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
            Err(_) => return,
        }
    }
}
