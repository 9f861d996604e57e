//! Hardening (issue 7): connection caps and handshake timeouts, origins, heartbeats,
//! slow consumers, graceful shutdown, observability, visitor isolation as a property,
//! hostile frames, and a SIGKILL loop. Each test is the proof a sceptic would ask for:
//! it drives the server from outside, over real sockets, and checks what comes back.
//!
//! Some clients here are raw TCP (`Raw`): tokio-tungstenite answers pings and drains
//! the socket whenever it is polled, so a client that must *not* read, or that must
//! send frames no well-behaved library would, is written by hand.
//!
//! The randomized tests take their seed from `FRONTDESK_SEED` (else a fresh one) and
//! print it when they fail; the crash loop runs `FRONTDESK_CRASH_CYCLES` cycles (20).

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;
use widget_protocol::Role;

use crate::support::{BinaryServer, Client, TestServer, WAIT};

// ---------------------------------------------------------------------------------
// Helpers: plain HTTP, WebSocket clients we control fully, a raw client, an SMTP sink.
// ---------------------------------------------------------------------------------

/// One HTTP/1.1 request with `Connection: close`; the status and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("an answer in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

async fn metrics(addr: SocketAddr) -> String {
    let (status, body) = http_get(addr, "/metrics").await;
    assert_eq!(status, 200);
    body
}

/// The value of one series (`name` with its labels, exactly as rendered).
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in /metrics"))
}

type Ws = WebSocketStream<TcpStream>;

/// A WebSocket to `path`, optionally from a chosen local address and with an Origin.
async fn ws_open(
    addr: SocketAddr,
    path: &str,
    origin: Option<&str>,
    from: Option<IpAddr>,
) -> Result<Ws, WsError> {
    let mut req = format!("ws://{addr}{path}").into_client_request()?;
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).expect("origin"));
    }
    let sock = TcpSocket::new_v4().expect("socket");
    if let Some(ip) = from {
        sock.bind(SocketAddr::new(ip, 0))
            .expect("bind the source address");
    }
    let stream = sock.connect(addr).await.expect("tcp connect");
    let (ws, _) = tokio_tungstenite::client_async(req, stream).await?;
    Ok(ws)
}

/// The HTTP status (and Retry-After) of a refused handshake.
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

async fn ws_send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.expect("send");
}

/// What a connection did next.
#[derive(Debug)]
enum Next {
    Frame(Value),
    /// Closed: the close code, if a close frame came.
    Closed(Option<u16>),
}

async fn ws_next(ws: &mut Ws) -> Next {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await {
            Err(_) => panic!("nothing from the server within {WAIT:?}"),
            Ok(Some(Ok(Message::Text(t)))) => {
                return Next::Frame(serde_json::from_str(t.as_str()).expect("frames are JSON"))
            }
            Ok(Some(Ok(Message::Close(f)))) => return Next::Closed(f.map(|f| f.code.into())),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return Next::Closed(None),
        }
    }
}

async fn ws_expect(ws: &mut Ws, kind: &str) -> Value {
    loop {
        match ws_next(ws).await {
            Next::Frame(f) if f["type"] == kind => return f,
            Next::Frame(_) => continue,
            Next::Closed(c) => panic!("closed ({c:?}) while expecting {kind}"),
        }
    }
}

/// A visitor on the default inbox from `from`, after hello and welcome.
async fn visitor_from(addr: SocketAddr, from: IpAddr) -> Result<Ws, WsError> {
    let mut ws = ws_open(addr, "/ws/visitor?inbox=default", None, Some(from)).await?;
    ws_send(&mut ws, json!({"type":"hello"})).await;
    ws_expect(&mut ws, "welcome").await;
    Ok(ws)
}

async fn ws_say(ws: &mut Ws, text: &str) -> Value {
    let id = uuid::Uuid::new_v4().to_string();
    ws_send(ws, json!({"type":"send","client_msg_id":id,"text":text})).await;
    let ack = ws_expect(ws, "ack").await;
    assert_eq!(ack["client_msg_id"], id.as_str());
    ack["message"].clone()
}

/// A WebSocket client written by hand over TCP: it reads only when told to, and sends
/// any bytes at all.
struct Raw {
    s: BufReader<TcpStream>,
}

/// Client frames must be masked; the key does not matter.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A client frame: `b0` is FIN, RSV and the opcode; `len` is what the header claims.
fn client_frame(b0: u8, payload: &[u8], masked: bool) -> Vec<u8> {
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

const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const FIN: u8 = 0x80;

impl Raw {
    /// TCP to the server; `rcvbuf` shrinks the receive buffer (before connecting, so
    /// the window is small from the start).
    async fn tcp(addr: SocketAddr, rcvbuf: Option<u32>) -> TcpStream {
        let sock = TcpSocket::new_v4().expect("socket");
        if let Some(n) = rcvbuf {
            sock.set_recv_buffer_size(n).expect("SO_RCVBUF");
        }
        sock.connect(addr).await.expect("tcp connect")
    }

    /// Completes the upgrade to `path` and returns the socket, reading nothing more.
    async fn upgrade(addr: SocketAddr, path: &str, rcvbuf: Option<u32>) -> Raw {
        Self::try_upgrade(addr, path, &[], &[], rcvbuf)
            .await
            .unwrap_or_else(|status| panic!("upgrade to {path} refused: {status}"))
    }

    /// `early`: bytes sent in the same write as the request, before any answer.
    async fn try_upgrade(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
        early: &[u8],
        rcvbuf: Option<u32>,
    ) -> Result<Raw, u16> {
        let mut s = BufReader::new(Self::tcp(addr, rcvbuf).await);
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        );
        for (k, v) in headers {
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

    async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.s.write_all(bytes).await?;
        self.s.flush().await
    }

    async fn send_text(&mut self, text: &str) {
        self.send_bytes(&client_frame(FIN | OP_TEXT, text.as_bytes(), true))
            .await
            .expect("send a text frame");
    }

    async fn send_json(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// The next server message or control frame (opcode, payload), fragments joined;
    /// None at EOF or reset.
    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
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
    async fn read_until_eof(&mut self, within: Duration) -> Vec<(u8, Vec<u8>)> {
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

    /// The next text frame as JSON, skipping pings; or the close code (None: no close
    /// frame, the connection just ended).
    async fn next(&mut self) -> Next {
        loop {
            match tokio::time::timeout(WAIT, self.read_frame()).await {
                Err(_) => panic!("nothing from the server within {WAIT:?}"),
                Ok(None) => return Next::Closed(None),
                Ok(Some((OP_TEXT, p))) => {
                    return Next::Frame(serde_json::from_slice(&p).expect("frames are JSON"))
                }
                Ok(Some((OP_CLOSE, p))) => return Next::Closed(close_code(&p)),
                Ok(Some(_)) => continue,
            }
        }
    }
}

fn close_code(payload: &[u8]) -> Option<u16> {
    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))
}

/// The text frames among raw frames, as JSON.
fn texts_of(frames: &[(u8, Vec<u8>)]) -> Vec<Value> {
    frames
        .iter()
        .filter(|(op, _)| *op == OP_TEXT)
        .map(|(_, p)| serde_json::from_slice(p).expect("frames are JSON"))
        .collect()
}

/// A tiny SMTP server: answers just enough for lettre and counts delivered messages.
/// With `reject`, every recipient is refused for good with a 550 that quotes the
/// address back, as real servers do.
struct SmtpSink {
    port: u16,
    delivered: Arc<AtomicUsize>,
}

async fn smtp_sink(reject: bool) -> SmtpSink {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
    let port = l.local_addr().expect("addr").port();
    let delivered = Arc::new(AtomicUsize::new(0));
    let count = delivered.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Some(line)) = lines.next_line().await {
                    let reply: String = if in_data {
                        if line != "." {
                            continue;
                        }
                        in_data = false;
                        count.fetch_add(1, Ordering::SeqCst);
                        "250 queued".into()
                    } else {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        match verb.as_str() {
                            "EHLO" | "HELO" => "250 sink".into(),
                            "RCPT" if reject => {
                                let who = line.split(':').nth(1).unwrap_or("").trim();
                                format!("550 5.1.1 {who}: recipient address rejected")
                            }
                            "DATA" => {
                                in_data = true;
                                "354 go ahead".into()
                            }
                            "QUIT" => {
                                let _ = w.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            _ => "250 ok".into(),
                        }
                    };
                    if w.write_all(format!("{reply}\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    SmtpSink { port, delivered }
}

/// The seed for a randomized test: `FRONTDESK_SEED`, else a fresh one. Printed, so a
/// failure can be replayed.
fn seed(test: &str) -> u64 {
    let seed = std::env::var("FRONTDESK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    eprintln!("{test}: FRONTDESK_SEED={seed}");
    seed
}

/// Prints the seed again when the test fails (it panics while this is alive).
struct SeedOnFailure(&'static str, u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "{} failed; replay with FRONTDESK_SEED={} cargo test --test it {}",
                self.0, self.1, self.0
            );
        }
    }
}

/// Every message of a visitor's conversation: the welcome's page, then `history`
/// backwards until there is no more.
async fn all_messages(addr: SocketAddr, token: &str) -> Vec<Value> {
    let mut ws = ws_open(addr, "/ws/visitor?inbox=default", None, None)
        .await
        .expect("visitor connects");
    ws_send(&mut ws, json!({"type":"hello","visitor_token":token})).await;
    let w = ws_expect(&mut ws, "welcome").await;
    let mut all: Vec<Value> = w["messages"].as_array().cloned().unwrap_or_default();
    let mut more = w["has_more"] == true;
    while more {
        let before = all.first().and_then(|m| m["seq"].as_u64()).expect("a seq");
        ws_send(
            &mut ws,
            json!({"type":"history","before":before,"limit":200}),
        )
        .await;
        let h = ws_expect(&mut ws, "history").await;
        let mut page = h["messages"].as_array().cloned().unwrap_or_default();
        page.extend(all);
        all = page;
        more = h["has_more"] == true;
    }
    all
}

// ---------------------------------------------------------------------------------
// 1. Connection limits
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn connection_caps_answer_503_and_429_at_the_handshake_and_others_are_served() {
    let s = TestServer::start_with(|c| {
        c.limits.max_connections = 3;
        c.limits.max_connections_per_ip = 2;
    })
    .await;
    let ip = |d: u8| IpAddr::from([127, 0, 0, d]);
    let mut a1 = visitor_from(s.addr, ip(1)).await.expect("1st from .1");
    let a2 = visitor_from(s.addr, ip(1)).await.expect("2nd from .1");
    // A third from the same address: 429, with a hint when to come back.
    assert_eq!(
        refusal(visitor_from(s.addr, ip(1)).await),
        (429, Some("5".into()))
    );
    let mut b1 = visitor_from(s.addr, ip(2)).await.expect("1st from .2");
    // The server is full: 503 for anyone, agents too.
    assert_eq!(
        refusal(visitor_from(s.addr, ip(2)).await),
        (503, Some("5".into()))
    );
    assert_eq!(
        refusal(ws_open(s.addr, "/ws/agent", None, Some(ip(3))).await).0,
        503
    );

    // A flood beyond the caps: every attempt is answered at once, none hangs. Each
    // comes from an address of its own, so the total cap is what refuses it.
    let started = Instant::now();
    let flood = futures::future::join_all((0..60u8).map(|i| async move {
        tokio::time::timeout(
            Duration::from_secs(5),
            ws_open(s.addr, "/ws/visitor", None, Some(ip(10 + i))),
        )
        .await
        .expect("a refusal, not a hang")
    }))
    .await;
    for r in flood {
        assert_eq!(refusal(r).0, 503);
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // At the cap, plain HTTP is still served, and the connections inside the caps work.
    assert_eq!(http_get(s.addr, "/healthz").await.0, 200);
    assert_eq!(ws_say(&mut a1, "still served").await["seq"], 1);
    assert_eq!(ws_say(&mut b1, "me too").await["seq"], 1);
    let m = metrics(s.addr).await;
    assert!(metric(&m, "frontdesk_connections_refused_total") >= 63.0);

    // A slot comes back when its connection ends.
    drop(a2);
    let until = Instant::now() + WAIT;
    loop {
        match visitor_from(s.addr, ip(3)).await {
            Ok(_) => break,
            Err(e) => {
                assert!(Instant::now() < until, "the slot never came back: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_the_http_handshake_is_dropped() {
    let timeout = Duration::from_millis(300);
    let s = TestServer::start_with(|c| c.limits.handshake_timeout = timeout).await;
    let started = Instant::now();

    // Opens TCP and says nothing.
    let silent = TcpStream::connect(s.addr).await.expect("connect");
    // Sends half a request and stalls.
    let mut partial = TcpStream::connect(s.addr).await.expect("connect");
    partial
        .write_all(b"GET /ws/visitor HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n")
        .await
        .expect("write");
    // Slowloris: a whole upgrade request, one byte every 50 ms.
    let slow = TcpStream::connect(s.addr).await.expect("connect");
    let (mut slow_r, mut slow_w) = slow.into_split();
    let dribble = tokio::spawn(async move {
        let req = b"GET /ws/visitor HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        for b in req {
            if slow_w.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // Finishes a request on a keep-alive connection, then idles.
    let mut idle = TcpStream::connect(s.addr).await.expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");

    async fn ended(mut s: impl tokio::io::AsyncRead + Unpin, started: Instant) -> Duration {
        let mut sink = Vec::new();
        let r = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut sink)).await;
        assert!(r.is_ok(), "the connection was not dropped");
        started.elapsed()
    }
    let (a, b, c, d) = tokio::join!(
        ended(silent, started),
        ended(partial, started),
        ended(&mut slow_r, started),
        ended(idle, started)
    );
    dribble.abort();
    for (what, t) in [
        ("silent", a),
        ("partial", b),
        ("slowloris", c),
        ("idle keep-alive", d),
    ] {
        assert!(
            t >= timeout - Duration::from_millis(50) && t < Duration::from_secs(3),
            "{what}: dropped after {t:?}"
        );
    }
    // Everyone else is served as usual.
    let (mut v, _) = s.visitor().await;
    v.say("hello after the stalls").await;
}

// ---------------------------------------------------------------------------------
// 2. Origins
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn an_inbox_with_origins_accepts_visitors_only_from_them() {
    let s = TestServer::start().await;
    s.create_inbox("shop", &["https://shop.example"]).await;
    let shop = "/ws/visitor?inbox=shop";
    for bad in [
        Some("https://evil.example"),
        Some("http://shop.example"),
        Some("https://shop.example.evil.example"),
        Some("https://shop.example:8443"),
        Some("null"),
        None,
    ] {
        assert_eq!(
            refusal(ws_open(s.addr, shop, bad, None).await).0,
            403,
            "origin {bad:?}"
        );
    }
    let mut ws = ws_open(s.addr, shop, Some("https://shop.example"), None)
        .await
        .expect("the shop's own page connects");
    ws_send(&mut ws, json!({"type":"hello"})).await;
    ws_expect(&mut ws, "welcome").await;
    assert_eq!(ws_say(&mut ws, "from the shop").await["seq"], 1);
    // An inbox without origins takes any page.
    let mut any = ws_open(s.addr, "/ws/visitor", Some("https://evil.example"), None)
        .await
        .expect("the default inbox has no origin list");
    ws_send(&mut any, json!({"type":"hello"})).await;
    ws_expect(&mut any, "welcome").await;
}

#[tokio::test]
async fn the_agent_endpoint_accepts_only_its_own_and_configured_origins() {
    use clap::Parser;
    use frontdesk::cli::{Cli, Command};
    // `--agent-origin` is validated and normalized once, by the command line.
    let parse = |origin: &str| {
        let cli = Cli::try_parse_from(["frontdesk", "serve", "--agent-origin", origin])
            .expect("arguments parse");
        match cli.command {
            Command::Serve(args) => args.into_config(),
            _ => unreachable!("serve"),
        }
    };
    let config = parse("https://Inbox.Example/").expect("a valid origin");
    assert_eq!(config.agent_origins, ["https://inbox.example"]);
    for bad in [
        "inbox.example",
        "ftp://inbox.example",
        "https://inbox.example/path",
    ] {
        assert!(parse(bad).is_err(), "{bad} was accepted");
    }

    let s = TestServer::start_with(|c| c.agent_origins = config.agent_origins).await;
    s.create_inbox("shop", &["https://shop.example"]).await;
    // Cross-site WebSocket hijacking: a foreign page's socket is refused.
    for bad in [
        "https://evil.example",
        "https://shop.example",
        "null",
        "http://127.0.0.1",
    ] {
        assert_eq!(
            refusal(ws_open(s.addr, "/ws/agent", Some(bad), None).await).0,
            403,
            "origin {bad}"
        );
    }
    let own = format!("http://{}", s.addr);
    for good in [Some(own.as_str()), Some("https://inbox.example"), None] {
        let mut ws = ws_open(s.addr, "/ws/agent", good, None)
            .await
            .unwrap_or_else(|e| panic!("origin {good:?} refused: {e}"));
        ws_send(&mut ws, json!({"type":"auth","token":s.admin_token})).await;
        ws_expect(&mut ws, "ready").await;
    }
}

// ---------------------------------------------------------------------------------
// 3. Heartbeat
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_client_that_answers_no_ping_is_closed_and_its_presence_cleared() {
    let beat = Duration::from_millis(300);
    let s = TestServer::start_with(|c| {
        c.limits.heartbeat = beat;
        // Timed from the close: the departure is announced at once, not after a grace.
        c.limits.presence_grace = Duration::ZERO;
    })
    .await;
    let (mut agent, _) = s.admin().await;
    // A client that does answer pings (tungstenite does, while it reads) stays.
    let (mut alive, _) = s.visitor().await;
    let control = tokio::spawn(async move {
        alive.expect_silence(2_000, &[]).await;
        alive.say("still here").await;
    });

    // The honest ping-less client: upgrades, says something, then never reads again.
    let mut raw = Raw::upgrade(s.addr, "/ws/visitor?inbox=default", None).await;
    raw.send_json(json!({"type":"hello"})).await;
    raw.send_json(json!({"type":"send","client_msg_id":"p1","text":"then silence"}))
        .await;
    let silent_since = Instant::now();
    let conv = agent.expect_skipping("message").await["message"]["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_string();
    loop {
        let u = agent.expect_skipping("conversation_updated").await;
        if u["conversation"]["id"] == conv.as_str()
            && u["conversation"]["visitor"]["online"] == false
        {
            break;
        }
    }
    let after = silent_since.elapsed();
    // Two intervals without a pong; the ticks fall between 2 and 3 intervals after it
    // last spoke.
    assert!(
        after >= beat * 2 - Duration::from_millis(50) && after < beat * 5,
        "closed after {after:?} with a {beat:?} heartbeat"
    );
    control
        .await
        .expect("the pinged client kept its connection");

    // What the silent client was sent: its welcome and ack, pings, then close 1001.
    let frames = raw.read_until_eof(Duration::from_secs(2)).await;
    let kinds: Vec<String> = texts_of(&frames)
        .iter()
        .map(|f| f["type"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(kinds, ["welcome", "ack"]);
    assert!(
        frames.iter().any(|(op, _)| *op == OP_PING),
        "no ping was sent"
    );
    let (op, payload) = frames.last().expect("frames");
    assert_eq!(*op, OP_CLOSE);
    assert_eq!(close_code(payload), Some(1001));
}

// ---------------------------------------------------------------------------------
// 4. Slow consumers
// ---------------------------------------------------------------------------------

#[tokio::test]
async fn a_reader_that_stops_is_dropped_and_recovers_while_others_keep_up() {
    let s = TestServer::start_with(|c| {
        c.limits.outbound_queue = 16;
        c.limits.max_write_buffer_bytes = 16 * 1024;
        c.limits.rate_count = 1_000_000;
        c.limits.send_per_address.count = 0;
        // The whole replay in one welcome (paging a long one is memory.rs's), however
        // many messages the flood got in before the silent readers were cut off.
        c.limits.max_list_frame_bytes = 64 * 1024 * 1024;
        c.limits.max_history = 2000;
    })
    .await;
    let (mut talker, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    // Two clients that never read, with small receive windows: an agent, and a second
    // tab of the talking visitor.
    let mut slow_agent = Raw::upgrade(s.addr, "/ws/agent", Some(4096)).await;
    slow_agent
        .send_json(json!({"type":"auth","token":s.admin_token}))
        .await;
    let mut slow_tab = Raw::upgrade(s.addr, "/ws/visitor?inbox=default", Some(4096)).await;
    slow_tab
        .send_json(json!({"type":"hello","visitor_token":token}))
        .await;
    // A reader that keeps up: every message it gets, and when.
    let (mut fast, _) = s.admin().await;
    let (got_tx, mut got_rx) = tokio::sync::mpsc::unbounded_channel::<(u64, Instant)>();
    let reader = tokio::spawn(async move {
        while let Some(f) = fast.next().await {
            if f["type"] == "message" {
                let seq = f["message"]["seq"].as_u64().expect("seq");
                if got_tx.send((seq, Instant::now())).is_err() {
                    return;
                }
            }
        }
    });
    let gone = |s: &TestServer| {
        s.app.metrics.agent_connections.load(Ordering::Relaxed) == 1
            && s.app.metrics.visitor_connections.load(Ordering::Relaxed) == 1
    };
    // Flood in pipelined batches until both silent readers are gone. A batch is two
    // frames per message for an agent (the message and the summary), so a batch of 4
    // fills half the fast reader's 16-frame queue; while it keeps taking frames it may
    // fall four queues behind (a scheduling hiccup of the shared test machine), the
    // silent ones are cut off once they hold that much or took nothing for a second.
    const BATCH: u64 = 4;
    let text = "x".repeat(3000);
    let mut acked_at: Vec<Instant> = vec![Instant::now()]; // seq 0 unused
    let mut n = 0u64;
    while !gone(&s) {
        assert!(n < 3000, "the silent readers were never dropped");
        for i in 0..BATCH {
            talker
                .send(json!({"type":"send","client_msg_id":format!("f{}", n + i),"text":text}))
                .await;
        }
        for _ in 0..BATCH {
            talker.expect_skipping("ack").await;
            acked_at.push(Instant::now());
        }
        n += BATCH;
    }
    eprintln!("slow readers dropped after {n} messages");
    assert!(s.app.metrics.slow_consumers_dropped.load(Ordering::Relaxed) >= 2);
    // The one that kept reading got every message, in order, never far behind.
    let mut worst = Duration::ZERO;
    for seq in 1..=n {
        let (got, at) = tokio::time::timeout(WAIT, got_rx.recv())
            .await
            .expect("the fast reader got every message")
            .expect("reader alive");
        assert_eq!(got, seq);
        worst = worst.max(at.saturating_duration_since(acked_at[seq as usize]));
    }
    assert!(
        worst < Duration::from_secs(1),
        "the fast reader lagged {worst:?}"
    );
    reader.abort();

    // The silent ones were cut off: after what their buffers held, the connection ends.
    let agent_frames = slow_agent.read_until_eof(WAIT).await;
    let tab_frames = slow_tab.read_until_eof(WAIT).await;
    let tab_seen = texts_of(&tab_frames)
        .iter()
        .filter(|f| f["type"] == "message")
        .filter_map(|f| f["message"]["seq"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(
        tab_seen < n,
        "the slow tab got everything ({tab_seen} of {n})"
    );
    assert!(
        texts_of(&agent_frames).len() < 2 * n as usize,
        "the slow agent got everything"
    );
    // Both recover: the tab resumes after the last message it has, the agent reloads.
    let mut back = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
        .await
        .expect("reconnect");
    back.send(json!({"type":"hello","visitor_token":token,"resume_after":tab_seen}))
        .await;
    let w = back.expect("welcome").await;
    let seqs: Vec<u64> = w["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["seq"].as_u64())
        .collect();
    assert_eq!(seqs, (tab_seen + 1..=n).collect::<Vec<_>>());
    let (_agent, ready) = s.admin().await;
    assert_eq!(ready["conversations"][0]["last_message"]["seq"], n);
}

/// The write buffer bounds what tungstenite holds for a connection, not the size of a
/// frame: a welcome or history page of long messages (here 50 × 4000 three-byte
/// characters, ~600 KB) is bigger than the 256 KiB buffer and must still arrive.
#[tokio::test]
async fn frames_bigger_than_the_write_buffer_still_arrive() {
    let s = TestServer::start_with(|c| {
        c.limits.rate_count = 1_000;
        // Lists of them bigger than the buffer, too (the default cuts them at 512 KiB).
        c.limits.max_list_frame_bytes = 1024 * 1024;
    })
    .await;
    let (mut c, w) = s.visitor().await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    let long = "日".repeat(4000);
    let mut conv = String::new();
    for _ in 0..60 {
        conv = c.say(&long).await["conversation_id"]
            .as_str()
            .expect("id")
            .to_string();
    }
    let (mut again, w) = s.visitor_with(Some(&token), None).await;
    assert_eq!(w["messages"].as_array().map(Vec::len), Some(50));
    again
        .send(json!({"type":"history","before":61,"limit":200}))
        .await;
    assert_eq!(
        again.expect("history").await["messages"]
            .as_array()
            .map(Vec::len),
        Some(60)
    );
    let (mut agent, _) = s.admin().await;
    agent
        .send(json!({"type":"open","conversation_id":conv,"limit":200}))
        .await;
    let open = agent.expect_skipping("conversation").await;
    assert_eq!(open["messages"].as_array().map(Vec::len), Some(60));
}

// ---------------------------------------------------------------------------------
// 5. Graceful shutdown
// ---------------------------------------------------------------------------------

fn admin_token(data: &Path) -> String {
    std::fs::read_to_string(data.join("admin-token"))
        .expect("admin-token file")
        .trim()
        .to_string()
}

async fn agent_ws(addr: SocketAddr, token: &str) -> Ws {
    let mut ws = ws_open(addr, "/ws/agent", None, None)
        .await
        .expect("agent connects");
    ws_send(&mut ws, json!({"type":"auth","token":token})).await;
    ws_expect(&mut ws, "ready").await;
    ws
}

/// A visitor on the default inbox after hello; its token.
async fn visitor_ws(addr: SocketAddr, token: Option<&str>) -> (Ws, String) {
    let mut ws = ws_open(addr, "/ws/visitor?inbox=default", None, None)
        .await
        .expect("visitor connects");
    ws_send(&mut ws, json!({"type":"hello","visitor_token":token})).await;
    let w = ws_expect(&mut ws, "welcome").await;
    let token = w["visitor_token"].as_str().expect("token").to_string();
    (ws, token)
}

/// Frames until the connection closes; its close code.
async fn closed_with(ws: &mut Ws) -> Option<u16> {
    loop {
        if let Next::Closed(code) = ws_next(ws).await {
            return code;
        }
    }
}

#[tokio::test]
async fn sigterm_closes_every_socket_with_1001_exits_0_in_time_and_keeps_every_ack() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let addr = server.addr;
    let mut agent = agent_ws(addr, &admin_token(dir.path())).await;
    // Visitors who chatted and now idle.
    let mut idle = Vec::new();
    for i in 0..5 {
        let (mut ws, token) = visitor_ws(addr, None).await;
        let mut acked = Vec::new();
        for j in 0..3 {
            acked.push(ws_say(&mut ws, &format!("idle {i} says {j}")).await);
        }
        idle.push((ws, token, acked));
    }
    // Visitors still sending when the signal comes.
    let mut senders = Vec::new();
    for i in 0..3 {
        let (mut ws, token) = visitor_ws(addr, None).await;
        senders.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for j in 0.. {
                let id = format!("busy-{i}-{j}");
                ws_send(
                    &mut ws,
                    json!({"type":"send","client_msg_id":id,"text":format!("busy {i} says {j}")}),
                )
                .await;
                loop {
                    match ws_next(&mut ws).await {
                        Next::Frame(f) if f["type"] == "ack" => {
                            acked.push(f["message"].clone());
                            break;
                        }
                        Next::Frame(f) if f["type"] == "error" => {
                            assert_eq!(f["code"], "rate_limited", "{f}");
                            break;
                        }
                        Next::Frame(_) => continue,
                        Next::Closed(code) => return (token, acked, code),
                    }
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            unreachable!("the loop ends when the connection closes")
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    let status = server.terminate().await;
    let took = started.elapsed();
    assert!(status.success(), "exit status {status:?}");
    assert!(took < Duration::from_secs(10), "took {took:?} to exit");

    assert_eq!(closed_with(&mut agent).await, Some(1001), "the agent");
    let mut expected: Vec<(String, Vec<Value>)> = Vec::new();
    for (mut ws, token, acked) in idle {
        assert_eq!(closed_with(&mut ws).await, Some(1001), "an idle visitor");
        expected.push((token, acked));
    }
    for s in senders {
        let (token, acked, code) = s.await.expect("sender");
        assert_eq!(code, Some(1001), "a visitor that was sending");
        assert!(!acked.is_empty());
        expected.push((token, acked));
    }

    // Everything acked is there after a restart, once.
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    for (token, acked) in expected {
        let stored = all_messages(server.addr, &token).await;
        for a in acked {
            let n = stored.iter().filter(|m| m["id"] == a["id"]).count();
            assert_eq!(n, 1, "acked message {a} is stored {n} times");
            assert!(stored.contains(&a), "{a} is stored differently");
        }
    }
    server.kill9().await;
}

// ---------------------------------------------------------------------------------
// 6. Observability
// ---------------------------------------------------------------------------------

const FOLLOW_UP_FLOW: &str = r#"{"email_capture":{"when":"first_message","delay_secs":60},"follow_up":{"enabled":true,"delay_secs":1}}"#;

/// Skips agent frames until this conversation's visitor is offline.
async fn until_offline(agent: &mut Client, conv: &str) {
    loop {
        let u = agent.expect_skipping("conversation_updated").await;
        if u["conversation"]["id"] == conv && u["conversation"]["visitor"]["online"] == false {
            return;
        }
    }
}

#[tokio::test]
async fn metrics_expose_every_series_and_the_counters_move() {
    let smtp = smtp_sink(false).await;
    let s = TestServer::start_with(|c| {
        c.mail.smtp_url = Some(format!("smtp://127.0.0.1:{}", smtp.port));
        c.mail.from = Some("Acme Support <support@acme.test>".into());
    })
    .await;
    let series = [
        "frontdesk_connections{kind=\"visitor\"}",
        "frontdesk_connections{kind=\"agent\"}",
        "frontdesk_frames_in_total",
        "frontdesk_frames_out_total",
        "frontdesk_errors_total{code=\"bad_frame\"}",
        "frontdesk_errors_total{code=\"invalid_email\"}",
        "frontdesk_errors_total{code=\"rate_limited\"}",
        "frontdesk_errors_total{code=\"internal\"}",
        "frontdesk_ack_latency_seconds_bucket{le=\"0.01\"}",
        "frontdesk_ack_latency_seconds_bucket{le=\"+Inf\"}",
        "frontdesk_ack_latency_seconds_sum",
        "frontdesk_ack_latency_seconds_count",
        "frontdesk_flush_batch_size_bucket{le=\"1\"}",
        "frontdesk_flush_batch_size_bucket{le=\"+Inf\"}",
        "frontdesk_flush_batch_size_count",
        "frontdesk_store_sync_seconds_bucket{le=\"0.001\"}",
        "frontdesk_store_sync_seconds_bucket{le=\"+Inf\"}",
        "frontdesk_store_sync_seconds_sum",
        "frontdesk_store_sync_seconds_count",
        "frontdesk_prompts_sent_total",
        "frontdesk_contacts_created_total",
        "frontdesk_follow_ups_sent_total",
        "frontdesk_slow_consumers_dropped_total",
        "frontdesk_connections_refused_total",
        "frontdesk_store_flushes_total",
        "frontdesk_store_writes_total",
        "frontdesk_store_checkpoints_total",
    ];
    let before = metrics(s.addr).await;
    for name in series {
        metric(&before, name);
    }
    for t in [
        "# TYPE frontdesk_connections gauge",
        "# TYPE frontdesk_frames_in_total counter",
        "# TYPE frontdesk_errors_total counter",
        "# TYPE frontdesk_ack_latency_seconds histogram",
        "# TYPE frontdesk_flush_batch_size histogram",
        "# TYPE frontdesk_store_sync_seconds histogram",
    ] {
        assert!(before.contains(t), "no {t:?}");
    }

    s.set_chatflow(serde_json::from_str(FOLLOW_UP_FLOW).expect("json"))
        .await;
    let (mut agent, _) = s.admin().await;
    let (mut v, _) = s.visitor().await;
    let until = Instant::now() + WAIT;
    loop {
        let m = metrics(s.addr).await;
        if metric(&m, "frontdesk_connections{kind=\"visitor\"}") == 1.0
            && metric(&m, "frontdesk_connections{kind=\"agent\"}") == 1.0
        {
            break;
        }
        assert!(Instant::now() < until, "the gauges never showed 1 and 1");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let conv = v.say("hello there").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    v.expect("email_prompt").await;
    v.send_text("not json").await;
    v.expect_error("bad_frame").await;
    v.send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    v.expect("email_captured").await;
    drop(v);
    until_offline(&mut agent, &conv).await;
    agent.reply(&conv, "we are back").await;
    let until = Instant::now() + WAIT;
    let after = loop {
        let m = metrics(s.addr).await;
        if metric(&m, "frontdesk_follow_ups_sent_total") >= 1.0 {
            break m;
        }
        assert!(Instant::now() < until, "no follow-up was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(smtp.delivered.load(Ordering::SeqCst), 1);
    let moved = |name: &str| metric(&after, name) - metric(&before, name);
    assert!(moved("frontdesk_frames_in_total") >= 4.0);
    assert!(moved("frontdesk_frames_out_total") >= 6.0);
    assert_eq!(moved("frontdesk_errors_total{code=\"bad_frame\"}"), 1.0);
    assert_eq!(moved("frontdesk_ack_latency_seconds_count"), 2.0);
    assert_eq!(
        moved("frontdesk_ack_latency_seconds_bucket{le=\"+Inf\"}"),
        2.0
    );
    assert!(moved("frontdesk_ack_latency_seconds_sum") > 0.0);
    assert!(moved("frontdesk_flush_batch_size_count") >= 1.0);
    assert!(moved("frontdesk_store_flushes_total") >= 1.0);
    // Group commits that wrote are log syncs, timed.
    assert!(moved("frontdesk_store_sync_seconds_count") >= 1.0);
    assert!(moved("frontdesk_store_sync_seconds_sum") > 0.0);
    // Writes spread over more than a checkpoint interval: the engine was flushed and
    // old log segments let go at least once (on the checkpoint thread, so poll).
    let until = Instant::now() + WAIT;
    while metric(&metrics(s.addr).await, "frontdesk_store_checkpoints_total")
        <= metric(&before, "frontdesk_store_checkpoints_total")
    {
        assert!(Instant::now() < until, "no checkpoint was counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(moved("frontdesk_prompts_sent_total"), 1.0);
    assert_eq!(moved("frontdesk_contacts_created_total"), 1.0);
    assert_eq!(moved("frontdesk_follow_ups_sent_total"), 1.0);
    assert_eq!(
        metric(&after, "frontdesk_connections{kind=\"visitor\"}"),
        0.0
    );
}

/// Skips agent frames until this conversation's visitor is `online` (or not).
async fn presence(agent: &mut Ws, conv: &str, online: bool) {
    loop {
        let u = ws_expect(agent, "conversation_updated").await;
        if u["conversation"]["id"] == conv && u["conversation"]["visitor"]["online"] == online {
            return;
        }
    }
}

#[tokio::test]
async fn info_logs_hold_no_message_text_email_or_token() {
    // The SMTP server refuses the follow-up quoting the address, as real ones do: the
    // error that gets logged must not carry it either.
    let smtp = smtp_sink(true).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let smtp_url = format!("smtp://127.0.0.1:{}", smtp.port);
    let server = BinaryServer::spawn_with(
        &data,
        &[
            "--smtp-url",
            &smtp_url,
            "--mail-from",
            "Acme <support@acme.test>",
        ],
        "info",
        log.into(),
    )
    .await;
    let addr = server.addr;
    let admin = admin_token(&data);
    let text = "SECRET-MESSAGE-TEXT-7f3a";
    let email = "secret.person.7f3a@example.com";
    let reply = "SECRET-AGENT-REPLY-7f3a";

    let mut agent = agent_ws(addr, &admin).await;
    ws_send(
        &mut agent,
        json!({"type":"update_chatflow","inbox":"default","chatflow":serde_json::from_str::<Value>(FOLLOW_UP_FLOW).expect("json")}),
    )
    .await;
    ws_expect(&mut agent, "chatflow").await;

    let (mut v, token) = visitor_ws(addr, None).await;
    let conv = ws_say(&mut v, text).await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    ws_expect(&mut v, "email_prompt").await;
    // Bad input that carries secrets too.
    ws_send(
        &mut v,
        json!({"type":"submit_email","email":format!("{text}@@{email}")}),
    )
    .await;
    ws_expect(&mut v, "error").await;
    ws_send(&mut v, json!({"type":text,"email":email})).await;
    ws_expect(&mut v, "error").await;
    v.send(Message::text(format!(
        "{{\"type\":\"send\",\"text\":\"{text}"
    )))
    .await
    .expect("send");
    ws_expect(&mut v, "error").await;
    ws_send(&mut v, json!({"type":"submit_email","email":email})).await;
    ws_expect(&mut v, "email_captured").await;
    drop(v);
    // Gone, back with the token, gone again.
    presence(&mut agent, &conv, false).await;
    let (v2, _) = visitor_ws(addr, Some(&token)).await;
    presence(&mut agent, &conv, true).await;
    drop(v2);
    presence(&mut agent, &conv, false).await;
    ws_send(
        &mut agent,
        json!({"type":"reply","conversation_id":conv,"client_msg_id":"r1","text":reply}),
    )
    .await;
    ws_expect(&mut agent, "ack").await;
    ws_send(&mut agent, json!({"type":"lookup_contact","email":email})).await;
    ws_expect(&mut agent, "contact_lookup").await;
    ws_send(
        &mut agent,
        json!({"type":"assign_visitor","conversation_id":conv,"email":email}),
    )
    .await;
    ws_expect(&mut agent, "visitor_assigned").await;
    // The follow-up is attempted and refused; the conversation is told.
    loop {
        let m = ws_expect(&mut agent, "message").await;
        if m["message"]["text"] == frontdesk::followup::UNDELIVERABLE {
            break;
        }
    }
    // A bad agent token is refused and must not be logged either.
    let bad_token = "fda_SECRETBADTOKEN7f3a";
    let mut bad = ws_open(addr, "/ws/agent", None, None)
        .await
        .expect("connect");
    ws_send(&mut bad, json!({"type":"auth","token":bad_token})).await;
    assert_eq!(closed_with(&mut bad).await, Some(4001));

    assert!(server.terminate().await.success());
    let logged = std::fs::read_to_string(&log_path).expect("read the log");
    assert!(
        logged.contains("shutting down"),
        "info-level lines were not logged at all:\n{logged}"
    );
    assert!(
        logged.contains("email not sent"),
        "the mail error path did not run:\n{logged}"
    );
    for secret in [text, email, reply, &token, &admin, bad_token, "7f3a"] {
        assert!(
            !logged.contains(secret),
            "the log holds {secret:?}:\n{logged}"
        );
    }
}

// ---------------------------------------------------------------------------------
// 7. Visitor isolation
// ---------------------------------------------------------------------------------

/// Texts of frames that must not hold any of `needles`.
fn assert_none_of(who: &str, frames: &[String], needles: &[(String, String)]) {
    for f in frames {
        for (what, needle) in needles {
            assert!(
                !f.contains(needle.as_str()),
                "{who} received {what} ({needle}) in {}",
                &f[..f.len().min(600)]
            );
        }
    }
}

#[tokio::test]
async fn typing_someone_elses_email_shows_nothing_of_theirs() {
    let s = TestServer::start().await;
    let (mut a, wa) = s.visitor().await;
    let a_token = wa["visitor_token"].as_str().expect("token").to_string();
    let a_id = wa["visitor_id"].as_str().expect("id").to_string();
    let a_msg = a.say("my order 4711 is late").await;
    let a_conv = a_msg["conversation_id"].as_str().expect("id").to_string();
    a.send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    a.expect("email_captured").await;
    let (mut agent, _) = s.admin().await;
    agent
        .reply(&a_conv, "your refund of 99 EUR is on its way")
        .await;
    a.expect_skipping("message").await;

    // Someone else types A's email, in another browser and on a fresh device, then
    // reads every way a visitor can read.
    let mut seen: Vec<Value> = Vec::new();
    let (mut b, wb) = s.visitor().await;
    seen.push(wb.clone());
    let b_token = wb["visitor_token"].as_str().expect("token").to_string();
    b.send(json!({"type":"submit_email","email":"ADA@example.com"}))
        .await;
    let captured = b.expect("email_captured").await;
    assert_eq!(
        captured["email"].as_str().map(str::to_lowercase).as_deref(),
        Some("ada@example.com")
    );
    seen.push(captured);
    let b_msg = b.say("hi, it is me").await;
    assert_eq!(b_msg["seq"], 1, "B starts their own conversation");
    assert_ne!(b_msg["conversation_id"], a_conv.as_str());
    seen.push(b_msg);
    let cookie = b.cookie_pair();
    drop(b);
    for (token, cookie) in [
        (Some(b_token.as_str()), None),
        (None, Some(cookie.as_str())),
    ] {
        let (mut c, w) = s.visitor_with(token, cookie).await;
        seen.push(w);
        c.send(json!({"type":"history","before":1_000_000,"limit":200}))
            .await;
        seen.push(c.expect("history").await);
        let mut r = Client::connect(&s.ws_url("/ws/visitor?inbox=default"))
            .await
            .expect("connect");
        r.send(json!({"type":"hello","visitor_token":b_token,"resume_after":1}))
            .await;
        seen.push(r.expect("welcome").await);
    }
    let (mut fresh, w) = s.visitor().await;
    let fresh_token = w["visitor_token"].as_str().expect("token").to_string();
    fresh
        .send(json!({"type":"submit_email","email":"ada@example.com"}))
        .await;
    seen.push(fresh.expect("email_captured").await);
    drop(fresh);
    let (mut again, w) = s.visitor_with(Some(&fresh_token), None).await;
    assert_eq!(w["conversation_id"], Value::Null);
    seen.push(w);
    again
        .send(json!({"type":"history","before":1_000_000,"limit":200}))
        .await;
    seen.push(again.expect("history").await);

    let frames: Vec<String> = seen.iter().map(Value::to_string).collect();
    let needles = [
        ("A's conversation id", a_conv.clone()),
        ("A's visitor id", a_id.clone()),
        ("A's token", a_token.clone()),
        ("A's message", "order 4711".to_string()),
        ("the reply to A", "refund of 99".to_string()),
    ];
    assert_none_of(
        "a visitor who typed A's email",
        &frames,
        &needles.map(|(w, n)| (w.to_string(), n)),
    );
    // A heard nothing of it, and still has everything.
    a.expect_silence(200, &[]).await;
    let (_a2, w) = s.visitor_with(Some(&a_token), None).await;
    assert_eq!(w["messages"].as_array().map(Vec::len), Some(2));
    assert_eq!(w["email"], "ada@example.com");
}

/// Every frame one participant received, as text.
type Log = Arc<Mutex<Vec<String>>>;

/// A connection whose frames a task appends to a log while the test sends.
struct Tab {
    sink: futures::stream::SplitSink<Ws, Message>,
    reader: tokio::task::JoinHandle<()>,
}

impl Tab {
    async fn open(addr: SocketAddr, path: &str, cookie: Option<&str>, log: &Log) -> Tab {
        let mut req = format!("ws://{addr}{path}")
            .into_client_request()
            .expect("request");
        if let Some(c) = cookie {
            req.headers_mut()
                .insert("cookie", HeaderValue::from_str(c).expect("cookie"));
        }
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(req, stream)
            .await
            .expect("handshake");
        let (sink, mut stream) = ws.split();
        let log = log.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                match m {
                    Message::Text(t) => log.lock().expect("log").push(t.to_string()),
                    Message::Close(c) => log
                        .lock()
                        .expect("log")
                        .push(format!("CLOSED BY THE SERVER {c:?}")),
                    _ => {}
                }
            }
        });
        Tab { sink, reader }
    }

    async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    async fn send_text(&mut self, t: String) {
        self.sink
            .send(Message::text(t))
            .await
            .expect("the server keeps the connection open");
    }

    fn close(self) {
        self.reader.abort();
    }
}

struct Visitor {
    inbox: &'static str,
    token: String,
    id: String,
    email: String,
    tabs: Vec<Tab>,
    log: Log,
}

impl Visitor {
    /// A new tab of this visitor that has sent `hello` with its token and `extra`
    /// fields (e.g. `resume_after`).
    async fn open_tab(&self, addr: SocketAddr, extra: serde_json::Value) -> Tab {
        let path = format!("/ws/visitor?inbox={}", self.inbox);
        let mut tab = Tab::open(addr, &path, None, &self.log).await;
        let mut hello = json!({"type":"hello","visitor_token":self.token});
        if let (Some(h), Some(extra)) = (hello.as_object_mut(), extra.as_object()) {
            h.extend(extra.clone());
        }
        tab.send(hello).await;
        tab
    }
}

struct Agent {
    inboxes: Vec<&'static str>,
    tab: Tab,
    log: Log,
}

/// The conversation id in a visitor's acks, once there is one.
fn conversation_of(log: &Log) -> Option<String> {
    log.lock().expect("log").iter().find_map(|f| {
        let v: Value = serde_json::from_str(f).ok()?;
        (v["type"] == "ack")
            .then(|| v["message"]["conversation_id"].as_str().map(str::to_string))?
    })
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> &'a T {
    &items[rng.gen_range(0..items.len())]
}

#[tokio::test]
async fn visitors_and_agents_never_see_what_is_not_theirs() {
    let seed = seed("visitors_and_agents_never_see_what_is_not_theirs");
    let _guard = SeedOnFailure("visitors_and_agents_never_see_what_is_not_theirs", seed);
    let mut rng = StdRng::seed_from_u64(seed);
    let s = TestServer::start_with(|c| c.limits.rate_count = 1_000_000).await;
    s.create_inbox("shop", &[]).await;
    let addr = s.addr;

    let mut visitors: Vec<Visitor> = Vec::new();
    for i in 0..8 {
        let inbox = if i % 2 == 0 { "default" } else { "shop" };
        let log: Log = Default::default();
        let mut tab = Tab::open(addr, &format!("/ws/visitor?inbox={inbox}"), None, &log).await;
        tab.send(json!({"type":"hello"})).await;
        let until = Instant::now() + WAIT;
        let welcome = loop {
            if let Some(w) = log.lock().expect("log").first().cloned() {
                break serde_json::from_str::<Value>(&w).expect("json");
            }
            assert!(Instant::now() < until, "no welcome");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        visitors.push(Visitor {
            inbox,
            token: welcome["visitor_token"].as_str().expect("token").into(),
            id: welcome["visitor_id"].as_str().expect("id").into(),
            email: format!("v{i}.{}@iso.example", rng.gen::<u32>()),
            tabs: vec![tab],
            log,
        });
    }
    let mut agents: Vec<Agent> = Vec::new();
    for (name, inboxes) in [
        ("Dee", vec!["default"]),
        ("Sam", vec!["shop"]),
        ("Bo", vec!["default", "shop"]),
    ] {
        let token = s.create_agent(name, &inboxes, Role::Agent).await;
        let log: Log = Default::default();
        let mut tab = Tab::open(addr, "/ws/agent", None, &log).await;
        tab.send(json!({"type":"auth","token":token})).await;
        agents.push(Agent { inboxes, tab, log });
    }
    let strangers: Log = Default::default();
    let mut stranger_tabs = Vec::new();

    // Who each marker belongs to: Some(visitor) for text stored in their conversation,
    // None for text that must reach nobody (a reply refused as not_found).
    let mut markers: Vec<(String, Option<usize>)> = Vec::new();
    // Emails each visitor typed; every email and name an agent made up.
    let mut typed: Vec<HashSet<String>> = vec![HashSet::new(); visitors.len()];
    let mut agent_emails: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut ops: BTreeMap<&str, usize> = BTreeMap::new();
    let garbage = [
        "",
        "{",
        "[]",
        "{\"type\":7}",
        "{\"type\":\"teleport\"}",
        "null",
    ];

    for n in 0..400 {
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let convs: Vec<(usize, String)> = visitors
            .iter()
            .enumerate()
            .filter_map(|(i, v)| conversation_of(&v.log).map(|c| (i, c)))
            .collect();
        let mut emails: Vec<String> = visitors.iter().map(|v| v.email.clone()).collect();
        emails.extend(agent_emails.iter().cloned());
        let marker = format!("MK{n}x{:08x}", rng.gen::<u32>());
        let roll = rng.gen_range(0..100);
        if roll < 55 {
            // A visitor acts.
            let i = rng.gen_range(0..visitors.len());
            let v = &mut visitors[i];
            if v.tabs.is_empty() || (roll >= 50 && v.tabs.len() < 3) {
                *ops.entry("visitor opens a tab").or_default() += 1;
                let tab = v
                    .open_tab(addr, json!({"resume_after": rng.gen_range(0..4)}))
                    .await;
                v.tabs.push(tab);
                continue;
            }
            let t = rng.gen_range(0..v.tabs.len());
            let op = rng.gen_range(0..100);
            let tab = &mut v.tabs[t];
            if op < 45 {
                *ops.entry("visitor sends").or_default() += 1;
                tab.send(
                    json!({"type":"send","client_msg_id":format!("id{n}"),"text":format!("{marker} hello")}),
                )
                .await;
                markers.push((marker, Some(i)));
            } else if op < 55 {
                *ops.entry("visitor sends something invalid").or_default() += 1;
                let bad = match rng.gen_range(0..5) {
                    0 => json!({"type":"send","client_msg_id":format!("id{n}"),"text":"   "}),
                    1 => {
                        json!({"type":"send","client_msg_id":format!("id{n}"),"text":"x".repeat(4001)})
                    }
                    2 => json!({"type":"send","text":marker}),
                    3 => json!({"type":"hello","visitor_token":visitors[rng.gen_range(0..8)].id}),
                    _ => json!({"type":"submit_email","email":marker}),
                };
                let v = &mut visitors[i];
                v.tabs[t].send(bad).await;
            } else if op < 62 {
                *ops.entry("visitor types their email").or_default() += 1;
                tab.send(json!({"type":"submit_email","email":v.email}))
                    .await;
                typed[i].insert(v.email.clone());
            } else if op < 72 {
                *ops.entry("visitor types someone else's email").or_default() += 1;
                let e = pick(&mut rng, &emails).clone();
                let v = &mut visitors[i];
                v.tabs[t]
                    .send(json!({"type":"submit_email","email":e}))
                    .await;
                typed[i].insert(e);
            } else if op < 85 {
                *ops.entry("visitor reads history").or_default() += 1;
                let before = match rng.gen_range(0..4) {
                    0 => json!(null),
                    1 => json!(rng.gen_range(0..20)),
                    2 => json!(u64::MAX),
                    _ => json!(-1),
                };
                tab.send(json!({"type":"history","before":before,"limit":rng.gen_range(0..300)}))
                    .await;
            } else if op < 93 {
                *ops.entry("visitor reconnects").or_default() += 1;
                v.tabs.remove(t).close();
                let tab = v.open_tab(addr, json!({})).await;
                v.tabs.push(tab);
            } else {
                *ops.entry("visitor closes a tab").or_default() += 1;
                v.tabs.remove(t).close();
            }
        } else if roll < 92 {
            // An agent acts, on any conversation it can name.
            let g = rng.gen_range(0..agents.len());
            let (conv_owner, conv) = if convs.is_empty() || rng.gen_range(0..10) == 0 {
                (None, uuid::Uuid::new_v4().to_string())
            } else {
                let (i, c) = pick(&mut rng, &convs).clone();
                (Some(i), c)
            };
            let visible =
                conv_owner.is_some_and(|i| agents[g].inboxes.contains(&visitors[i].inbox));
            let a = &mut agents[g];
            let op = rng.gen_range(0..100);
            if op < 40 {
                *ops.entry("agent replies").or_default() += 1;
                a.tab
                    .send(json!({"type":"reply","conversation_id":conv,"client_msg_id":format!("id{n}"),"text":format!("{marker} reply")}))
                    .await;
                markers.push((marker, conv_owner.filter(|_| visible)));
            } else if op < 60 {
                *ops.entry("agent opens").or_default() += 1;
                a.tab
                    .send(
                        json!({"type":"open","conversation_id":conv,"limit":rng.gen_range(1..60)}),
                    )
                    .await;
            } else if op < 68 {
                *ops.entry("agent looks up a contact").or_default() += 1;
                let e = pick(&mut rng, &emails).clone();
                agents[g]
                    .tab
                    .send(json!({"type":"lookup_contact","email":e}))
                    .await;
            } else if op < 80 {
                *ops.entry("agent assigns a visitor").or_default() += 1;
                let e = pick(&mut rng, &emails).clone();
                agents[g]
                    .tab
                    .send(json!({"type":"assign_visitor","conversation_id":conv,"email":e}))
                    .await;
            } else if op < 90 {
                *ops.entry("agent creates a contact").or_default() += 1;
                let e = format!("c{n}.{:x}@agent.example", rng.gen::<u32>());
                let (first, last) = (format!("First{marker}"), format!("Last{marker}"));
                agents[g]
                    .tab
                    .send(json!({"type":"create_contact","conversation_id":conv,"email":e,"first_name":first,"last_name":last}))
                    .await;
                agent_emails.push(e);
                names.push(first);
                names.push(last);
            } else if op < 95 {
                *ops.entry("agent reads a chatflow").or_default() += 1;
                let inbox = pick(&mut rng, &["default", "shop", "nope"]).to_string();
                agents[g]
                    .tab
                    .send(json!({"type":"get_chatflow","inbox":inbox}))
                    .await;
            } else {
                *ops.entry("agent sends garbage").or_default() += 1;
                let g_text = pick(&mut rng, &garbage).to_string();
                agents[g].tab.send_text(g_text).await;
            }
        } else {
            // A stranger with a forged or borrowed identity.
            *ops.entry("stranger").or_default() += 1;
            let v = pick(&mut rng, &visitors);
            let inbox = v.inbox;
            let mut forged = v.token.clone().into_bytes();
            let k = forged.len() / 2;
            forged[k] = if forged[k] == b'A' { b'B' } else { b'A' };
            let forged = String::from_utf8(forged).expect("ascii");
            let conv = conversation_of(&v.log).unwrap_or_default();
            let (token, cookie) = match rng.gen_range(0..4) {
                0 => (Some(forged), None),
                1 => (Some(conv), None),
                2 => (Some(v.id.clone()), None),
                _ => (None, Some(format!("fd_visitor={forged}"))),
            };
            let mut tab = Tab::open(
                addr,
                &format!("/ws/visitor?inbox={inbox}"),
                cookie.as_deref(),
                &strangers,
            )
            .await;
            tab.send(json!({"type":"hello","visitor_token":token}))
                .await;
            tab.send(json!({"type":"history","before":null,"limit":200}))
                .await;
            stranger_tabs.push(tab);
        }
    }

    // Everybody reads everything once more: a fresh welcome and history for each.
    tokio::time::sleep(Duration::from_millis(200)).await;
    for v in &mut visitors {
        let mut tab = v.open_tab(addr, json!({})).await;
        tab.send(json!({"type":"history","before":null,"limit":200}))
            .await;
        v.tabs.push(tab);
    }
    for a in &mut agents {
        for (_, c) in visitors
            .iter()
            .enumerate()
            .filter_map(|(i, v)| conversation_of(&v.log).map(|c| (i, c)))
        {
            a.tab
                .send(json!({"type":"open","conversation_id":c,"limit":200}))
                .await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    eprintln!("operations: {ops:?}");

    // The checks.
    let convs: Vec<Option<String>> = visitors.iter().map(|v| conversation_of(&v.log)).collect();
    // What was stored: Bo works in both inboxes and never disconnects, so he received
    // every stored message. (A send from a tab closed right after it may not have been
    // read by the server at all.)
    let stored: HashSet<&str> = {
        let bo = agents[2].log.lock().expect("log");
        markers
            .iter()
            .filter(|(m, o)| o.is_some() && bo.iter().any(|f| f.contains(m.as_str())))
            .map(|(m, _)| m.as_str())
            .collect()
    };
    let owned = markers.iter().filter(|(_, o)| o.is_some()).count();
    assert!(
        stored.len() * 10 >= owned * 9,
        "only {} of {owned} messages were stored",
        stored.len()
    );
    let mut all_emails: Vec<String> = visitors.iter().map(|v| v.email.clone()).collect();
    all_emails.extend(agent_emails.iter().cloned());
    let about = |j: usize| -> Vec<(String, String)> {
        let mut n = vec![
            (format!("visitor {j}'s id"), visitors[j].id.clone()),
            (format!("visitor {j}'s token"), visitors[j].token.clone()),
        ];
        if let Some(c) = &convs[j] {
            n.push((format!("visitor {j}'s conversation"), c.clone()));
        }
        n.extend(markers.iter().filter(|(_, o)| *o == Some(j)).map(|(m, _)| {
            (
                format!("a message of visitor {j}'s conversation"),
                m.clone(),
            )
        }));
        n
    };
    let refused: Vec<(String, String)> = markers
        .iter()
        .filter(|(_, o)| o.is_none())
        .map(|(m, _)| ("a refused reply".to_string(), m.clone()))
        .collect();
    for (i, v) in visitors.iter().enumerate() {
        let mut needles = refused.clone();
        for j in (0..visitors.len()).filter(|j| *j != i) {
            needles.extend(about(j));
        }
        needles.extend(
            all_emails
                .iter()
                .filter(|e| !typed[i].contains(*e))
                .map(|e| ("an email they did not type".to_string(), e.clone())),
        );
        needles.extend(
            names
                .iter()
                .map(|n| ("a contact name".to_string(), n.clone())),
        );
        let log = v.log.lock().expect("log").clone();
        assert_none_of(&format!("visitor {i}"), &log, &needles);
        assert!(
            !log.iter().any(|f| f.starts_with("CLOSED")),
            "visitor {i} was closed"
        );
        // Not vacuous: they did see their own.
        for (m, _) in markers
            .iter()
            .filter(|(m, o)| *o == Some(i) && stored.contains(m.as_str()))
        {
            assert!(
                log.iter().any(|f| f.contains(m.as_str())),
                "visitor {i} never saw {m}"
            );
        }
    }
    for (g, a) in agents.iter().enumerate() {
        let mut needles = refused.clone();
        for j in (0..visitors.len()).filter(|j| !a.inboxes.contains(&visitors[*j].inbox)) {
            needles.extend(about(j).into_iter().filter(|(w, _)| !w.contains("token")));
        }
        let log = a.log.lock().expect("log").clone();
        assert_none_of(&format!("agent {g} of {:?}", a.inboxes), &log, &needles);
        assert!(
            !log.iter().any(|f| f.starts_with("CLOSED")),
            "agent {g} was closed"
        );
        for (m, o) in &markers {
            if o.is_some_and(|j| a.inboxes.contains(&visitors[j].inbox))
                && stored.contains(m.as_str())
            {
                assert!(
                    log.iter().any(|f| f.contains(m.as_str())),
                    "agent {g} never saw {m}"
                );
            }
        }
        assert!(
            log.iter().any(|f| f.contains("\"not_found\"")),
            "agent {g} never asked for something it may not see"
        );
    }
    let mut needles = refused.clone();
    for j in 0..visitors.len() {
        needles.extend(about(j));
    }
    needles.extend(
        all_emails
            .iter()
            .map(|e| ("an email".to_string(), e.clone())),
    );
    needles.extend(
        names
            .iter()
            .map(|n| ("a contact name".to_string(), n.clone())),
    );
    let log = strangers.lock().expect("log").clone();
    assert_none_of("a stranger", &log, &needles);
    assert!(log.iter().filter(|f| f.contains("\"welcome\"")).count() >= 3);
    for t in stranger_tabs {
        t.close();
    }
}

// ---------------------------------------------------------------------------------
// 8. Hostile frames
// ---------------------------------------------------------------------------------

const SERVER_TYPES: [&str; 13] = [
    "welcome",
    "ack",
    "message",
    "email_prompt",
    "email_captured",
    "history",
    "error",
    "ready",
    "conversation",
    "conversation_updated",
    "contact_lookup",
    "visitor_assigned",
    "chatflow",
];
/// Pushed to a connection on the server's own account, not as an answer.
const UNSOLICITED: [&str; 3] = ["message", "conversation_updated", "email_prompt"];
const CLIENT_TYPES: [&str; 12] = [
    "hello",
    "send",
    "submit_email",
    "history",
    "auth",
    "open",
    "reply",
    "lookup_contact",
    "assign_visitor",
    "create_contact",
    "get_chatflow",
    "update_chatflow",
];
const FIELDS: [&str; 20] = [
    "type",
    "visitor_token",
    "resume_after",
    "page",
    "client_msg_id",
    "text",
    "email",
    "before",
    "limit",
    "token",
    "conversation_id",
    "first_name",
    "last_name",
    "inbox",
    "chatflow",
    "url",
    "title",
    "__proto__",
    "constructor",
    "",
];
const NUMBERS: [&str; 12] = [
    "1e400",
    "-1e400",
    "-1",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "1.5",
    "-0",
    "1e-400",
    "9007199254740993",
    "0x10",
    "NaN",
    "Infinity",
];

/// A string with whatever a hostile client likes: controls, bidi overrides, NUL, quotes,
/// astral characters, lone surrogates' neighbours; usually short, sometimes huge.
fn hostile_string(rng: &mut StdRng) -> String {
    const PIECES: [&str; 16] = [
        "a", "\0", "\u{1}", "\u{1f}", "\u{7f}", "\"", "\\", "\u{202e}", "\u{200b}", "\u{2028}",
        "\u{feff}", "😀", "日", "\r\n", "<script>", "%00",
    ];
    let n = if rng.gen_range(0..20) == 0 {
        rng.gen_range(1_000..8_000)
    } else {
        rng.gen_range(0..40)
    };
    (0..n).map(|_| *pick(rng, &PIECES)).collect()
}

fn hostile_value(rng: &mut StdRng, depth: usize) -> Value {
    match rng.gen_range(0..if depth > 3 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.gen::<bool>()),
        2 => match rng.gen_range(0..4) {
            0 => json!(rng.gen::<i64>()),
            1 => json!(u64::MAX),
            2 => json!(rng.gen::<f64>() * 1e300),
            _ => json!(rng.gen_range(-3..300)),
        },
        3 | 4 => json!(hostile_string(rng)),
        5 => Value::Array(
            (0..rng.gen_range(0..5))
                .map(|_| hostile_value(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.gen_range(0..6))
                .map(|_| {
                    (
                        pick(rng, &FIELDS).to_string(),
                        hostile_value(rng, depth + 1),
                    )
                })
                .collect(),
        ),
    }
}

/// One hostile text message, valid UTF-8 and under 64 KiB.
fn hostile_text(rng: &mut StdRng, conv: &str) -> String {
    loop {
        let t = hostile_text_any_size(rng, conv);
        if t.len() < 64 * 1024 {
            return t;
        }
    }
}

/// The start of a long text, for failure messages.
fn excerpt(t: &str) -> String {
    t.chars().take(200).collect()
}

fn hostile_text_any_size(rng: &mut StdRng, conv: &str) -> String {
    let kind = *pick(rng, &CLIENT_TYPES);
    match rng.gen_range(0..10) {
        // Any JSON at all.
        0 => hostile_value(rng, 0).to_string(),
        // A known type with random fields of random types.
        1 | 2 => {
            let mut o = serde_json::Map::new();
            o.insert("type".into(), json!(kind));
            for _ in 0..rng.gen_range(0..6) {
                o.insert(pick(rng, &FIELDS).to_string(), hostile_value(rng, 1));
            }
            if rng.gen() {
                o.insert("conversation_id".into(), json!(conv));
            }
            Value::Object(o).to_string()
        }
        // Numbers no integer type holds, where integers belong.
        3 => {
            let field = *pick(rng, &["before", "limit", "resume_after", "delay_secs"]);
            let num = *pick(rng, &NUMBERS);
            format!(
                r#"{{"type":"{kind}","{field}":{num},"conversation_id":"{conv}","client_msg_id":"n","text":"t"}}"#
            )
        }
        // Deep nesting, bare or where a string belongs.
        4 => {
            let depth = rng.gen_range(10..30_000);
            let (open, close) = if rng.gen() {
                ("[", "]")
            } else {
                ("{\"a\":", "}")
            };
            let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            if nested.len() > 60_000 || rng.gen() {
                format!(
                    "{}{}",
                    "[".repeat(depth.min(30_000)),
                    "]".repeat(depth.min(30_000))
                )
            } else {
                format!(r#"{{"type":"send","client_msg_id":"d","text":{nested}}}"#)
            }
        }
        // Raw control characters and broken escapes inside strings (invalid JSON), or
        // lone surrogates in escapes.
        5 => {
            let c = *pick(
                rng,
                &[
                    "\u{0}", "\u{8}", "\n", "\u{1b}", "\\ud800", "\\udfff", "\\u12", "\\x41", "\\",
                ],
            );
            format!(r#"{{"type":"send","client_msg_id":"c","text":"a{c}b"}}"#)
        }
        // Giant strings under the frame limit.
        6 => {
            let field = *pick(
                rng,
                &[
                    "text",
                    "email",
                    "client_msg_id",
                    "type",
                    "conversation_id",
                    "visitor_token",
                    "first_name",
                    "inbox",
                ],
            );
            let n = rng.gen_range(10_000..60_000);
            let mut o = serde_json::Map::new();
            o.insert("type".into(), json!(kind));
            o.insert("client_msg_id".into(), json!("g"));
            o.insert("conversation_id".into(), json!(conv));
            o.insert(field.into(), json!("é".repeat(n / 2)));
            Value::Object(o).to_string()
        }
        // Truncated, padded, doubled and otherwise mangled frames.
        7 => {
            let valid = json!({"type":kind,"client_msg_id":"t","text":"hi","conversation_id":conv,"email":"a@b.example","before":3,"limit":2}).to_string();
            match rng.gen_range(0..7) {
                0 => valid[..rng.gen_range(0..valid.len())].to_string(),
                1 => format!("{valid}garbage"),
                2 => format!("\u{feff}{valid}"),
                3 => format!("{valid}{valid}"),
                4 => valid.replacen("{", r#"{"type":"hello","#, 1),
                5 => (*pick(
                    rng,
                    &[
                        "",
                        " ",
                        "null",
                        "true",
                        "0",
                        "\"send\"",
                        "[]",
                        "{}",
                        "{\"type\":null}",
                    ],
                ))
                .to_string(),
                _ => String::from_utf8_lossy(
                    &(0..rng.gen_range(1..200))
                        .map(|_| rng.gen::<u8>())
                        .collect::<Vec<_>>(),
                )
                .to_string(),
            }
        }
        // Plausible frames with unknown fields: these may well be valid.
        _ => {
            let mut o = serde_json::Map::new();
            o.insert("type".into(), json!(kind));
            for (k, v) in [
                ("client_msg_id", json!(format!("u{}", rng.gen::<u16>()))),
                ("text", json!("hello")),
                ("conversation_id", json!(conv)),
                ("email", json!(format!("x{}@example.com", rng.gen::<u16>()))),
                ("inbox", json!("default")),
                ("limit", json!(5)),
            ] {
                o.insert(k.into(), v);
            }
            o.insert(hostile_string(rng), hostile_value(rng, 2));
            Value::Object(o).to_string()
        }
    }
}

/// Reads the answer to one frame: the next frame that is not pushed unsolicited. It
/// must be a known server frame; an error must have a known code and a short message
/// (nothing of a giant input echoed back). A close is returned as is.
async fn answer(raw: &mut Raw, codes: &[&str], sent: &str) -> Option<Value> {
    loop {
        match raw.next().await {
            Next::Closed(code) => {
                panic!("closed ({code:?}) after {}", excerpt(sent))
            }
            Next::Frame(f) => {
                let kind = f["type"].as_str().unwrap_or_default();
                assert!(SERVER_TYPES.contains(&kind), "unknown frame {f}");
                if UNSOLICITED.contains(&kind) {
                    continue;
                }
                if kind == "error" {
                    let code = f["code"].as_str().unwrap_or_default();
                    assert!(codes.contains(&code), "unknown error code in {f}");
                    let len = f["message"].as_str().map(str::len).unwrap_or(usize::MAX);
                    assert!(
                        len <= 500,
                        "an error message of {len} bytes for {}",
                        excerpt(sent)
                    );
                }
                return Some(f);
            }
        }
    }
}

/// A frame that fails the connection, and the close codes that may answer it.
fn closers() -> Vec<(&'static str, Vec<u8>, &'static [u16])> {
    let big = vec![b'a'; 70_000];
    let mut over_in_fragments = client_frame(OP_TEXT, &vec![b'a'; 40_000], true);
    over_in_fragments.extend(client_frame(0x0, &vec![b'a'; 40_000], true));
    over_in_fragments.extend(client_frame(FIN, b"a", true));
    let mut huge_header = vec![FIN | OP_TEXT, 0x80 | 127];
    huge_header.extend((1u64 << 40).to_be_bytes());
    huge_header.extend(MASK);
    let mut split_char = client_frame(OP_TEXT, &[0xe6, 0x97], true);
    split_char.extend(client_frame(FIN, &[0x41], true));
    let mut close_bad_code = 999u16.to_be_bytes().to_vec();
    close_bad_code.extend(b"bye");
    let mut close_bad_reason = 1000u16.to_be_bytes().to_vec();
    close_bad_reason.extend([0xff, 0xfe]);
    vec![
        (
            "invalid UTF-8 text",
            client_frame(FIN | OP_TEXT, &[0x7b, 0xff, 0xfe, 0x7d], true),
            &[1007],
        ),
        (
            "text cut inside a character",
            client_frame(FIN | OP_TEXT, b"{\"a\":\"\xe6\x97\"}", true),
            &[1007],
        ),
        ("UTF-8 broken across fragments", split_char, &[1007]),
        (
            "a 70 000 byte text",
            client_frame(FIN | OP_TEXT, &big, true),
            &[1009],
        ),
        (
            "a 70 000 byte binary",
            client_frame(FIN | OP_BINARY, &big, true),
            &[1009],
        ),
        ("80 000 bytes in fragments", over_in_fragments, &[1009]),
        ("a header claiming 1 TiB", huge_header, &[1009]),
        (
            "reserved bit 1",
            client_frame(FIN | 0x40 | OP_TEXT, b"{}", true),
            &[1002],
        ),
        (
            "reserved opcode 3",
            client_frame(FIN | 0x3, b"{}", true),
            &[1002],
        ),
        (
            "reserved control opcode 11",
            client_frame(FIN | 0xb, b"", true),
            &[1002],
        ),
        (
            "an unmasked frame",
            client_frame(FIN | OP_TEXT, b"{}", false),
            &[1002],
        ),
        (
            "a continuation without a start",
            client_frame(FIN, b"{}", true),
            &[1002],
        ),
        (
            "a new message inside a fragmented one",
            [
                client_frame(OP_TEXT, b"{", true),
                client_frame(FIN | OP_TEXT, b"{}", true),
            ]
            .concat(),
            &[1002],
        ),
        (
            "a 126 byte ping",
            client_frame(FIN | OP_PING, &[0u8; 126], true),
            &[1002],
        ),
        (
            "a fragmented ping",
            client_frame(OP_PING, b"x", true),
            &[1002],
        ),
        (
            "a close with code 999",
            client_frame(FIN | OP_CLOSE, &close_bad_code, true),
            &[1002],
        ),
        (
            "a close with a broken reason",
            client_frame(FIN | OP_CLOSE, &close_bad_reason, true),
            &[1002, 1007],
        ),
        (
            "a 1 byte close",
            client_frame(FIN | OP_CLOSE, b"x", true),
            &[1002],
        ),
    ]
}

#[tokio::test]
async fn hostile_frames_get_an_error_or_a_documented_close_and_the_server_carries_on() {
    let seed = seed("hostile_frames_get_an_error_or_a_documented_close_and_the_server_carries_on");
    let _guard = SeedOnFailure(
        "hostile_frames_get_an_error_or_a_documented_close_and_the_server_carries_on",
        seed,
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let s = TestServer::start().await;
    let codes: Vec<&str> = widget_protocol::ErrorCode::ALL
        .iter()
        .map(|c| c.as_str())
        .collect();
    let agent_token = s.create_agent("Tess", &["default"], Role::Agent).await;
    let (mut v, _) = s.visitor().await;
    let conv = v.say("a real conversation").await["conversation_id"]
        .as_str()
        .expect("id")
        .to_string();
    let mut frames = 0usize;

    // Before hello / auth: one at a time, since an agent's bad token closes (4001).
    for (path, first) in [
        ("/ws/visitor?inbox=default", "hello"),
        ("/ws/agent", "auth"),
    ] {
        let mut raw = Raw::upgrade(s.addr, path, None).await;
        for _ in 0..150 {
            let text = hostile_text(&mut rng, &conv);
            raw.send_text(&text).await;
            frames += 1;
            match raw.next().await {
                Next::Frame(f) => {
                    assert!(
                        SERVER_TYPES.contains(&f["type"].as_str().unwrap_or_default()),
                        "{f}"
                    );
                    if f["type"] == "error" {
                        assert!(
                            codes.contains(&f["code"].as_str().unwrap_or_default()),
                            "{f}"
                        );
                    } else {
                        // The hostile frame was a valid enough hello: start over.
                        assert_eq!(f["type"], "welcome", "{f} before {first}");
                        raw = Raw::upgrade(s.addr, path, None).await;
                    }
                }
                Next::Closed(Some(4001)) if first == "auth" => {
                    raw = Raw::upgrade(s.addr, path, None).await;
                }
                Next::Closed(code) => {
                    panic!("closed ({code:?}) before {first} after {}", excerpt(&text))
                }
            }
        }
    }

    // After hello / auth: pipelined batches of text and binary.
    for (path, hello) in [
        ("/ws/visitor?inbox=default", json!({"type":"hello"})),
        ("/ws/agent", json!({"type":"auth","token":agent_token})),
    ] {
        let mut raw = Raw::upgrade(s.addr, path, None).await;
        raw.send_json(hello).await;
        answer(&mut raw, &codes, "hello").await;
        for _ in 0..100 {
            let mut sent = Vec::new();
            for _ in 0..16 {
                if rng.gen_range(0..12) == 0 {
                    let bytes: Vec<u8> = (0..rng.gen_range(0..300)).map(|_| rng.gen()).collect();
                    raw.send_bytes(&client_frame(FIN | OP_BINARY, &bytes, true))
                        .await
                        .expect("send binary");
                    sent.push("(binary)".to_string());
                } else {
                    let text = hostile_text(&mut rng, &conv);
                    raw.send_text(&text).await;
                    sent.push(text);
                }
            }
            frames += sent.len();
            for text in &sent {
                let f = answer(&mut raw, &codes, text).await.expect("an answer");
                if text == "(binary)" {
                    assert_eq!(f["code"], "bad_frame", "binary got {f}");
                }
            }
        }
    }

    // Frames that break the WebSocket protocol or the size limit: each closes its
    // connection with the code RFC 6455 and our protocol document give.
    for path in ["/ws/visitor?inbox=default", "/ws/agent"] {
        for (what, bytes, expected) in closers() {
            let mut raw = Raw::upgrade(s.addr, path, None).await;
            raw.send_bytes(&bytes).await.expect("send");
            frames += 1;
            let frames_back = raw.read_until_eof(WAIT).await;
            let code = frames_back
                .iter()
                .find(|(op, _)| *op == OP_CLOSE)
                .and_then(|(_, p)| close_code(p));
            assert!(
                code.is_some_and(|c| expected.contains(&c)),
                "{what} on {path}: closed with {code:?}, expected one of {expected:?}"
            );
        }
    }
    eprintln!("{frames} hostile frames");
    assert!(frames >= 3_500);

    // The server still serves, the first visitor's connection included.
    let m = v.say("still here").await;
    assert_eq!(m["text"], "still here");
    let (mut w, _) = s.visitor().await;
    w.say("new here").await;
    let (_a, ready) = s.agent(&agent_token).await;
    assert!(ready["conversations"]
        .as_array()
        .is_some_and(|c| !c.is_empty()));
}

/// RFC 6455: the endpoint that receives a close frame answers with one. Without the
/// answer a browser reports an unclean close (1006) every time a tab closes the chat.
/// A client may send frames right behind its upgrade request, before the 101 arrives:
/// the server reads them with the request and must not lose them.
#[tokio::test]
async fn frames_sent_with_the_upgrade_request_are_not_lost() {
    let s = TestServer::start().await;
    let mut early = client_frame(FIN | OP_PING, b"early", true);
    early.extend(client_frame(
        FIN | OP_TEXT,
        json!({"type":"hello"}).to_string().as_bytes(),
        true,
    ));
    let mut raw = Raw::try_upgrade(s.addr, "/ws/visitor?inbox=default", &[], &early, None)
        .await
        .expect("upgraded");
    let pong = tokio::time::timeout(WAIT, raw.read_frame())
        .await
        .expect("a pong in time");
    assert_eq!(
        pong,
        Some((0xA, b"early".to_vec())),
        "the ping is answered first"
    );
    match raw.next().await {
        Next::Frame(f) => assert_eq!(f["type"], "welcome", "{f}"),
        Next::Closed(code) => panic!("closed ({code:?}) instead of a welcome"),
    }
    raw.send_json(json!({"type":"send","client_msg_id":"c1","text":"hi"}))
        .await;
    match raw.next().await {
        Next::Frame(f) => {
            assert_eq!(f["type"], "ack", "{f}");
            assert_eq!(f["message"]["text"], "hi");
        }
        Next::Closed(code) => panic!("closed ({code:?}) instead of an ack"),
    }
}

#[tokio::test]
async fn a_close_from_the_client_is_answered() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    let s = TestServer::start().await;
    let (visitor, _) = visitor_ws(s.addr, None).await;
    let agent = agent_ws(s.addr, &s.admin_token).await;
    let before_hello = ws_open(s.addr, "/ws/visitor", None, None)
        .await
        .expect("connect");
    for (what, mut ws) in [
        ("visitor", visitor),
        ("agent", agent),
        ("before hello", before_hello),
    ] {
        ws.close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "bye".into(),
        }))
        .await
        .expect("close sent");
        match tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("an answer in time")
        {
            Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, CloseCode::Normal, "{what}"),
            other => panic!("{what}: the close was not answered: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// 9. Crash loop
// ---------------------------------------------------------------------------------

/// One visitor sending for the whole loop: what was acked, and what was in flight
/// when the server died (sent again, with the same client_msg_id, after the restart).
#[derive(Default)]
struct Sender {
    n: usize,
    token: Option<String>,
    acked: Vec<Value>,
    in_flight: Option<(String, String)>,
    sent: usize,
    /// Messages sent again after a crash because their ack never came.
    resent: usize,
}

/// Connects and sends until the connection dies; gives the state back.
async fn send_until_killed(addr: SocketAddr, mut me: Sender) -> Sender {
    let Ok(mut ws) = ws_open(addr, "/ws/visitor?inbox=default", None, None).await else {
        return me;
    };
    if ws_send_ok(&mut ws, json!({"type":"hello","visitor_token":me.token}))
        .await
        .is_none()
    {
        return me;
    }
    let welcome = loop {
        match ws_next(&mut ws).await {
            Next::Frame(f) if f["type"] == "welcome" => break f,
            Next::Frame(_) => continue,
            Next::Closed(_) => return me,
        }
    };
    me.token = welcome["visitor_token"].as_str().map(str::to_string);
    if me.in_flight.is_some() {
        me.resent += 1;
    }
    loop {
        let (id, text) = me.in_flight.clone().unwrap_or_else(|| {
            me.sent += 1;
            (
                uuid::Uuid::new_v4().to_string(),
                format!("sender {} message {}", me.n, me.sent),
            )
        });
        me.in_flight = Some((id.clone(), text.clone()));
        let frame = json!({"type":"send","client_msg_id":id,"text":text});
        if ws_send_ok(&mut ws, frame).await.is_none() {
            return me;
        }
        loop {
            match ws_next(&mut ws).await {
                Next::Frame(f) if f["type"] == "ack" && f["client_msg_id"] == id.as_str() => {
                    assert_eq!(f["message"]["text"], text.as_str());
                    me.acked.push(f["message"].clone());
                    me.in_flight = None;
                    break;
                }
                Next::Frame(f) if f["type"] == "error" => {
                    // Over the rate limit: not stored; wait for the next life.
                    assert_eq!(f["code"], "rate_limited", "{f}");
                    me.in_flight = None;
                    me.sent -= 1;
                    return me;
                }
                Next::Frame(_) => continue,
                Next::Closed(_) => return me,
            }
        }
    }
}

async fn ws_send_ok(ws: &mut Ws, v: Value) -> Option<()> {
    ws.send(Message::text(v.to_string())).await.ok()
}

#[tokio::test]
async fn sigkill_again_and_again_loses_and_duplicates_no_acked_message() {
    let cycles: usize = std::env::var("FRONTDESK_CRASH_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20);
    let seed = seed("sigkill_again_and_again_loses_and_duplicates_no_acked_message");
    let _guard = SeedOnFailure(
        "sigkill_again_and_again_loses_and_duplicates_no_acked_message",
        seed,
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut senders: Vec<Sender> = (0..4)
        .map(|n| Sender {
            n,
            ..Default::default()
        })
        .collect();
    let started = Instant::now();
    for _ in 0..cycles {
        let server = BinaryServer::spawn(dir.path(), &[]).await;
        let tasks: Vec<_> = senders
            .drain(..)
            .map(|s| tokio::spawn(send_until_killed(server.addr, s)))
            .collect();
        tokio::time::sleep(Duration::from_millis(rng.gen_range(30..400))).await;
        server.kill9().await;
        for t in tasks {
            senders.push(t.await.expect("sender"));
        }
    }
    let server = BinaryServer::spawn(dir.path(), &[]).await;
    let mut acked_total = 0;
    for s in &senders {
        let token = s.token.as_deref().expect("the sender got a token");
        let stored = all_messages(server.addr, token).await;
        let seqs: Vec<u64> = stored.iter().filter_map(|m| m["seq"].as_u64()).collect();
        assert_eq!(
            seqs,
            (1..=stored.len() as u64).collect::<Vec<_>>(),
            "seqs have gaps"
        );
        let mut texts = HashSet::new();
        for m in &stored {
            let t = m["text"].as_str().expect("text");
            assert!(texts.insert(t), "sender {} has {t:?} twice", s.n);
            assert!(
                t.starts_with(&format!("sender {} message ", s.n)),
                "a stranger's {t:?}"
            );
        }
        for a in &s.acked {
            let same: Vec<&Value> = stored.iter().filter(|m| m["id"] == a["id"]).collect();
            assert_eq!(same, [a], "acked {a} is not stored exactly once as acked");
        }
        // Whatever was stored but never acked can only be the one in flight at the end.
        let unacked: Vec<&Value> = stored
            .iter()
            .filter(|m| !s.acked.iter().any(|a| a["id"] == m["id"]))
            .collect();
        assert!(unacked.len() <= 1, "stored but never acked: {unacked:?}");
        if let Some(m) = unacked.first() {
            assert_eq!(
                Some(m["text"].as_str().unwrap_or_default()),
                s.in_flight.as_ref().map(|(_, t)| t.as_str())
            );
        }
        acked_total += s.acked.len();
    }
    let resent: usize = senders.iter().map(|s| s.resent).sum();
    eprintln!(
        "{cycles} SIGKILL cycles, {acked_total} acked messages, {resent} sent again after a crash, {:?}",
        started.elapsed()
    );
    assert!(
        acked_total >= cycles,
        "too little was sent to prove anything"
    );
    server.kill9().await;
}
