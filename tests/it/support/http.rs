//! Plain HTTP/1.1 over a TCP socket, one request per connection, and the `/metrics`
//! page read series by series.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

pub struct Response {
    pub status: u16,
    /// The header lines, names lower-cased.
    pub head: Vec<(String, String)>,
    pub body: String,
    /// The body as sent (a compressed one is not text).
    pub bytes: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One GET with `Connection: close`, read to the end.
pub async fn get(addr: SocketAddr, path: &str) -> Response {
    get_with(addr, path, &[]).await
}

/// One GET with `Connection: close` and more request headers, read to the end.
pub async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Response {
    request(addr, "GET", path, headers, None).await
}

/// One POST of `body` (with its `Content-Length`) and `Connection: close`.
pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    request(addr, "POST", path, headers, Some(body)).await
}

/// A request's head: `METHOD path`, `Host`, the headers, `Connection: close`.
pub fn head(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Connection: close\r\n\r\n")
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let len = body.map(|b| b.len().to_string());
    let mut all: Vec<(&str, &str)> = headers.to_vec();
    if let Some(len) = len.as_deref() {
        all.push(("Content-Length", len));
    }
    s.write_all(head(addr, method, path, &all).as_bytes())
        .await
        .expect("write");
    if let Some(b) = body {
        s.write_all(b).await.expect("write the body");
    }
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(buf.len(), |i| i + 4);
    let bytes = buf[split..].to_vec();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let head = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        head,
        body: body.to_string(),
        bytes,
    }
}

/// The `/metrics` page.
pub async fn metrics(addr: SocketAddr) -> String {
    let r = get(addr, "/metrics").await;
    assert_eq!(r.status, 200);
    r.body
}

/// The value of one series (`name` with its labels, exactly as rendered).
pub fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}
