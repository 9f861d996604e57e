//! Connection caps from accept on: sockets in their HTTP handshake or on plain HTTP count
//! per address and in total, a trusted reverse proxy's clients are counted by the address
//! it forwards, and the binary raises its soft file-descriptor limit at start.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use crate::support::{TestServer, WAIT};

type Ws = WebSocketStream<TcpStream>;

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn tcp_from(addr: SocketAddr, from: IpAddr) -> TcpStream {
    let sock = TcpSocket::new_v4().expect("socket");
    sock.bind(SocketAddr::new(from, 0))
        .expect("bind the source address");
    sock.connect(addr).await.expect("tcp connect")
}

/// A visitor from `from` with these extra request headers, after hello and welcome.
async fn visitor_from(
    addr: SocketAddr,
    from: IpAddr,
    headers: &[(&str, &str)],
) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}/ws/visitor?inbox=default").into_client_request()?;
    for (k, v) in headers {
        req.headers_mut().append(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    let stream = tcp_from(addr, from).await;
    let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, stream))
        .await
        .expect("an answer to the handshake in time")?;
    ws.send(Message::text(json!({"type":"hello"}).to_string()))
        .await
        .expect("send hello");
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.as_str().contains("\"welcome\"") => return Ok(ws),
            Ok(Some(Ok(_))) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    }
}

/// The HTTP status and Retry-After of a refused handshake.
fn refusal<T>(r: Result<T, WsError>) -> (u16, Option<String>) {
    match r {
        Ok(_) => panic!("the handshake was accepted"),
        Err(WsError::Http(resp)) => (
            resp.status().as_u16(),
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ),
        Err(e) => panic!("the handshake failed without an HTTP answer: {e}"),
    }
}

/// Everything a socket receives until the server closes it.
async fn read_all(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("closed in time")
        .expect("read");
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn by_default_one_address_holds_200_sockets_and_another_still_connects() {
    let s = TestServer::start().await;
    // Sockets that never send a byte: each counts from accept on.
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(tcp_from(s.addr, ip(3)).await);
    }
    assert_eq!(
        refusal(visitor_from(s.addr, ip(3), &[]).await),
        (429, Some("5".into())),
        "the 201st socket from one address"
    );
    let _other = visitor_from(s.addr, ip(4), &[])
        .await
        .expect("another address still connects");
    // A socket over the cap is answered and closed at once, before any request.
    let mut over = tcp_from(s.addr, ip(3)).await;
    let answer = read_all(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 429 "), "{answer:?}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 5"),
        "{answer:?}"
    );

    // The slots come back when those sockets close.
    drop(silent);
    let until = tokio::time::Instant::now() + WAIT;
    while visitor_from(s.addr, ip(3), &[]).await.is_err() {
        assert!(
            tokio::time::Instant::now() < until,
            "the slots never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sockets_in_their_handshake_or_on_plain_http_count_against_the_per_address_cap() {
    let s = TestServer::start_with(|c| c.limits.max_connections_per_ip = 3).await;
    let _silent = tcp_from(s.addr, ip(5)).await;
    let mut partial = tcp_from(s.addr, ip(5)).await;
    partial
        .write_all(b"GET /ws/visitor HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a request");
    // A keep-alive HTTP connection that was answered and stays open.
    let mut keep = tcp_from(s.addr, ip(5)).await;
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(WAIT, keep.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));

    assert_eq!(refusal(visitor_from(s.addr, ip(5), &[]).await).0, 429);
    visitor_from(s.addr, ip(6), &[])
        .await
        .expect("another address connects");
    let m = s
        .app
        .metrics
        .connections_refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(m >= 1, "refusals at accept are counted");
}

#[tokio::test]
async fn an_idle_keep_alive_socket_gives_its_slot_back_after_the_handshake_timeout() {
    let s = TestServer::start_with(|c| {
        c.limits.max_connections_per_ip = 1;
        c.limits.handshake_timeout = std::time::Duration::from_millis(300);
    })
    .await;
    let mut keep = tcp_from(s.addr, ip(7)).await;
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(WAIT, keep.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(refusal(visitor_from(s.addr, ip(7), &[]).await).0, 429);
    // Kept alive but silent: closed like a handshake that never ends, and its slot is free.
    let rest = read_all(&mut keep).await;
    assert!(rest.is_empty() || rest.contains("408"), "{rest:?}");
    let until = tokio::time::Instant::now() + WAIT;
    while visitor_from(s.addr, ip(7), &[]).await.is_err() {
        assert!(
            tokio::time::Instant::now() < until,
            "the slot never came back"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn past_the_socket_cap_every_socket_is_answered_503_at_once() {
    let s = TestServer::start_with(|c| c.limits.max_sockets = Some(3)).await;
    let _a = tcp_from(s.addr, ip(10)).await;
    let _b = tcp_from(s.addr, ip(11)).await;
    let _ws = visitor_from(s.addr, ip(12), &[])
        .await
        .expect("a WebSocket takes the third");
    let mut over = tcp_from(s.addr, ip(13)).await;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let answer = read_all(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert_eq!(
        refusal(visitor_from(s.addr, ip(14), &[]).await),
        (503, Some("5".into()))
    );
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count() {
    let s = TestServer::start_with(|c| {
        c.limits.max_connections_per_ip = 2;
        c.trusted_proxies = vec!["127.0.0.20/32".parse().expect("net")];
    })
    .await;
    let proxy = ip(20);
    let xff = |client: &'static str| [("x-forwarded-for", client)];
    // Requests of many clients in flight through the proxy at once: its own address is
    // not capped at accept.
    let mut in_flight = Vec::new();
    for _ in 0..3 {
        in_flight.push(tcp_from(s.addr, proxy).await);
    }
    let mut held = Vec::new();
    for client in ["203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.2"] {
        held.push(
            visitor_from(s.addr, proxy, &xff(client))
                .await
                .unwrap_or_else(|e| panic!("{client} through the proxy: {e}")),
        );
    }
    // The client the proxy names is the one counted.
    assert_eq!(
        refusal(visitor_from(s.addr, proxy, &xff("203.0.113.1")).await),
        (429, Some("5".into()))
    );
    // A client prepending an address of its choice is still counted as itself.
    assert_eq!(
        refusal(visitor_from(s.addr, proxy, &xff("198.51.100.1, 203.0.113.2")).await).0,
        429
    );
    held.push(
        visitor_from(
            s.addr,
            proxy,
            &[("forwarded", "for=\"[2001:db8::1]:4711\"")],
        )
        .await
        .expect("a third client, named by Forwarded"),
    );

    // The same headers from a peer that is not a trusted proxy are ignored.
    let untrusted = ip(21);
    for client in ["203.0.113.3", "203.0.113.4"] {
        held.push(
            visitor_from(s.addr, untrusted, &xff(client))
                .await
                .expect("within the cap"),
        );
    }
    assert_eq!(
        refusal(visitor_from(s.addr, untrusted, &xff("203.0.113.5")).await).0,
        429,
        "an untrusted peer is counted as itself"
    );
}

#[tokio::test]
async fn the_binary_raises_its_soft_descriptor_limit_to_the_hard_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Start it under a low soft limit, as a login shell or service manager might.
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg("ulimit -Sn 256 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_frontdesk"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    tokio::time::timeout(WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with("frontdesk listening on") {
                return;
            }
        }
        panic!("the binary ended before listening");
    })
    .await
    .expect("listening in time");
    let pid = child.id().expect("pid");
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("its limits");
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a line for open files")
        .split_whitespace()
        .skip(3)
        .take(2)
        .collect();
    assert_eq!(open_files.len(), 2, "{limits}");
    assert_eq!(
        open_files[0], open_files[1],
        "soft is raised to hard: {limits}"
    );
    child.kill().await.expect("kill");
}
