//! Plain HTTP/1.1 over a TCP socket, one request of any method per connection (from
//! the address and with the headers a [`Connect`] names), and the `/metrics` page read
//! series by series.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Connect, WAIT};

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
    request(addr, Connect::default().headers(headers), "GET", path, b"").await
}

/// One request of any method with `Connection: close`, made as `how` says (its source
/// address, Origin, Cookie and other headers), with `body` (and its `Content-Length`
/// unless it is an empty GET), read to the end.
pub async fn request(
    addr: SocketAddr,
    how: Connect<'_>,
    method: &str,
    path: &str,
    body: &[u8],
) -> Response {
    let mut s = how.tcp(addr).await;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in how.request_headers() {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if method != "GET" || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).await.expect("write");
    s.write_all(body).await.expect("write the body");
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("an answer in time");
    // A server that answers before reading a whole body may reset the connection after
    // its answer: what arrived is the answer.
    if let Err(e) = read {
        assert!(!buf.is_empty(), "read: {e}");
    }
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
