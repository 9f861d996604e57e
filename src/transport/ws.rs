//! tungstenite underneath, protocol-level values on top.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;

use futures::{Sink, Stream};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::error::{CapacityError, ProtocolError};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::config::Limits;
use crate::hub::Frame;
use crate::session::{Inbound, Outbound};

/// tungstenite configured from our limits: its defaults (64 MiB messages, a 128 KiB
/// read buffer, an unbounded write buffer) are not for a public server.
///
/// tungstenite refuses a frame bigger than its write buffer outright, while some of our
/// frames are big by design (a welcome or history page of long messages), so
/// [`WsSocket`] sends a message bigger than [`fragment_size`] as fragments.
pub fn config(limits: &Limits) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(limits.read_buffer_bytes)
        // tungstenite requires the gathering buffer to be below the bound.
        .write_buffer_size(
            limits
                .write_buffer_bytes
                .min(limits.max_write_buffer_bytes / 2),
        )
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

/// The largest payload handed to tungstenite in one frame: half its write buffer, so a
/// fragment always fits beside the pong or close frames it may hold.
fn fragment_size(limits: &Limits) -> usize {
    (limits.max_write_buffer_bytes / 2).max(1)
}

pub async fn accept(upgraded: Upgraded, limits: &Limits) -> WsSocket {
    let ws = WebSocketStream::from_raw_socket(
        TokioIo::new(upgraded),
        Role::Server,
        Some(config(limits)),
    )
    .await;
    WsSocket {
        ws,
        done: false,
        fragment: fragment_size(limits),
        sending: None,
    }
}

pub struct WsSocket {
    ws: WebSocketStream<TokioIo<Upgraded>>,
    done: bool,
    fragment: usize,
    /// A text message bigger than `fragment`, and how many of its bytes went out.
    sending: Option<(Frame, usize)>,
}

impl WsSocket {
    /// Hands tungstenite the rest of a fragmented message, a fragment each time its
    /// buffer is empty again. Ready when nothing of it is left.
    fn poll_fragments(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        while let Some((text, sent)) = self.sending.clone() {
            ready!(Pin::new(&mut self.ws).poll_ready(cx))?;
            let end = fragment_end(&text, sent, self.fragment);
            let last = end == text.len();
            let opcode = if sent == 0 {
                Data::Text
            } else {
                Data::Continue
            };
            let payload = Bytes::copy_from_slice(&text.as_bytes()[sent..end]);
            self.sending = (!last).then_some((text, end));
            let frame = WsFrame::message(payload, OpCode::Data(opcode), last);
            Pin::new(&mut self.ws).start_send(Message::Frame(frame))?;
        }
        Poll::Ready(Ok(()))
    }
}

/// Where the fragment starting at `from` ends: at most `max` bytes on, on a character
/// boundary when one is near (the protocol allows any split; clients like whole ones).
fn fragment_end(text: &str, from: usize, max: usize) -> usize {
    let mut end = from.saturating_add(max).min(text.len());
    while end > from + 1 && !text.is_char_boundary(end) {
        end -= 1;
    }
    end
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
        ready!(self.poll_fragments(cx))?;
        Pin::new(&mut self.ws).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Outbound) -> Result<(), WsError> {
        let msg = match item {
            Outbound::Text(t) if t.len() > self.fragment => {
                self.sending = Some((t, 0));
                return Ok(());
            }
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
        ready!(self.poll_fragments(cx))?;
        Pin::new(&mut self.ws).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        ready!(self.poll_fragments(cx))?;
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

#[cfg(test)]
mod tests {
    use super::fragment_end;

    #[test]
    fn fragments_end_on_character_boundaries_and_always_advance() {
        let t = "ab日本語";
        assert_eq!(fragment_end(t, 0, 2), 2);
        assert_eq!(fragment_end(t, 2, 4), 5);
        assert_eq!(fragment_end(t, 5, 100), t.len());
        // Smaller than a character: split inside it rather than stall.
        assert_eq!(fragment_end(t, 2, 1), 3);
    }
}
