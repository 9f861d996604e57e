//! What the framing's unit tests share: client frames as a browser sends them, and a
//! server socket on a loopback connection.

use bytes::Bytes;
use tokio::net::TcpStream;

use super::read::Received;
use super::WsSocket;
use crate::config::Limits;

/// A client frame: masked, as a browser sends it.
pub(super) fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
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
pub(super) async fn pair() -> (WsSocket, TcpStream) {
    pair_with(&Limits::default()).await
}

pub(super) async fn pair_with(limits: &Limits) -> (WsSocket, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let client = TcpStream::connect(addr).await.expect("connect");
    let (server, _) = listener.accept().await.expect("accept");
    let ws = WsSocket::new(server, Bytes::new(), limits);
    (ws, client)
}

/// Hands the socket one whole frame, as if it had just been read.
pub(super) fn on_frame(
    ws: &mut WsSocket,
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
) -> Option<Received> {
    ws.read.on_frame(fin, opcode, payload, &mut ws.write)
}
