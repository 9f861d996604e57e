//! A WebSocket client written by hand over TCP: it reads only when told to, and sends
//! any bytes at all. tokio-tungstenite answers pings and drains the socket whenever it
//! is polled, so a client that must *not* read (a slow consumer, one that never
//! answers a ping), or that sends frames no well-behaved library would, is this one.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::client::{Closed, Connect, Next};
use super::WAIT;

pub const OP_CONTINUATION: u8 = 0x0;
pub const OP_TEXT: u8 = 0x1;
pub const OP_BINARY: u8 = 0x2;
pub const OP_CLOSE: u8 = 0x8;
pub const OP_PING: u8 = 0x9;
pub const OP_PONG: u8 = 0xA;
pub const FIN: u8 = 0x80;

/// Client frames must be masked; the key does not matter.
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: `b0` is FIN, RSV and the opcode; the length is the payload's.
pub fn client_frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![b0];
    let m = if masked { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        f.push(m | n as u8);
    } else if n < 65536 {
        f.push(m | 126);
        f.extend((n as u16).to_be_bytes());
    } else {
        f.push(m | 127);
        f.extend((n as u64).to_be_bytes());
    }
    if masked {
        f.extend(MASK);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        f.extend(payload);
    }
    f
}

/// The code of a close frame's payload, if it has one.
pub fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// The text frames among raw frames, as JSON.
pub fn texts_of(frames: &[(u8, Vec<u8>)]) -> Vec<Value> {
    frames
        .iter()
        .filter(|(op, _)| *op == OP_TEXT)
        .map(|(_, p)| serde_json::from_slice(p).expect("frames are JSON"))
        .collect()
}

pub struct Raw {
    s: BufReader<TcpStream>,
}

impl Raw {
    /// Completes the upgrade to `path` and returns the socket, reading nothing more.
    pub async fn upgrade(addr: SocketAddr, path: &str, how: Connect<'_>) -> Raw {
        Self::try_upgrade(addr, path, how, &[])
            .await
            .unwrap_or_else(|status| panic!("upgrade to {path} refused: {status}"))
    }

    /// The upgrade, or the status that refused it. `early`: bytes sent in the same
    /// write as the request, before any answer.
    pub async fn try_upgrade(
        addr: SocketAddr,
        path: &str,
        how: Connect<'_>,
        early: &[u8],
    ) -> Result<Raw, u16> {
        let mut s = BufReader::new(how.tcp(addr).await);
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (k, v) in how.request_headers() {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(early);
        s.write_all(&bytes).await.expect("write the handshake");
        // The response head, line by line, so no frame byte is consumed.
        let mut status = None;
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(WAIT, s.read_line(&mut line))
                .await
                .expect("a handshake answer in time")
                .expect("read the handshake answer");
            assert!(n > 0, "the server closed during the handshake");
            if status.is_none() {
                status = line.split(' ').nth(1).and_then(|c| c.parse::<u16>().ok());
            }
            if line == "\r\n" {
                break;
            }
        }
        match status {
            Some(101) => Ok(Raw { s }),
            Some(other) => Err(other),
            None => panic!("no status line"),
        }
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes).await?;
        self.s.flush().await
    }

    pub async fn send_text(&mut self, text: &str) {
        self.send_bytes(&client_frame(FIN | OP_TEXT, text.as_bytes(), true))
            .await
            .expect("send a text frame");
    }

    pub async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// The next server message or control frame (opcode, payload), fragments joined;
    /// None at EOF or reset.
    pub async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        let (fin, op, mut payload) = self.read_one().await?;
        if fin || op >= OP_CLOSE {
            return Some((op, payload));
        }
        loop {
            let (fin, next_op, more) = self.read_one().await?;
            if next_op >= OP_CLOSE {
                continue; // a control frame between fragments; these tests need none
            }
            payload.extend(more);
            if fin {
                return Some((op, payload));
            }
        }
    }

    /// One frame: FIN, opcode, payload.
    async fn read_one(&mut self) -> Option<(bool, u8, Vec<u8>)> {
        let mut h = [0u8; 2];
        self.s.read_exact(&mut h).await.ok()?;
        assert_eq!(h[1] & 0x80, 0, "server frames are never masked");
        let len = match h[1] & 0x7f {
            126 => {
                let mut b = [0u8; 2];
                self.s.read_exact(&mut b).await.ok()?;
                u16::from_be_bytes(b) as usize
            }
            127 => {
                let mut b = [0u8; 8];
                self.s.read_exact(&mut b).await.ok()?;
                u64::from_be_bytes(b) as usize
            }
            n => n as usize,
        };
        let mut payload = vec![0u8; len];
        self.s.read_exact(&mut payload).await.ok()?;
        Some((h[0] & FIN != 0, h[0] & 0x0f, payload))
    }

    /// Every frame until the server closes the TCP connection (which it must do
    /// within `within`).
    pub async fn read_until_eof(&mut self, within: Duration) -> Vec<(u8, Vec<u8>)> {
        let mut frames = Vec::new();
        tokio::time::timeout(within, async {
            while let Some(f) = self.read_frame().await {
                frames.push(f);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the server did not close the connection within {within:?}"));
        frames
    }

    /// The next text frame as JSON, skipping pings; or how the connection ended.
    pub async fn next(&mut self) -> Next {
        loop {
            match tokio::time::timeout(WAIT, self.read_frame()).await {
                Err(_) => panic!("nothing from the server within {WAIT:?}"),
                Ok(None) => return Next::Closed(Closed::Abrupt),
                Ok(Some((OP_TEXT, p))) => {
                    return Next::Frame(serde_json::from_slice(&p).expect("frames are JSON"))
                }
                Ok(Some((OP_CLOSE, p))) => {
                    return Next::Closed(close_code(&p).map_or(Closed::Abrupt, Closed::Code))
                }
                Ok(Some(_)) => continue,
            }
        }
    }
}
