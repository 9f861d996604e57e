//! How many connections the server holds and for how long: caps per address and in
//! total from accept on (sockets in their HTTP handshake or on plain HTTP count too), a
//! trusted reverse proxy's clients counted by the address it forwards, the soft
//! file-descriptor limit raised at start, handshakes that never finish dropped, and
//! clients that answer no ping closed.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Error as WsError;

use crate::support::http::{self, metric, metrics};
use crate::support::raw::{close_code, texts_of, Raw, OP_CLOSE, OP_PING};
use crate::support::{refusal, Client, Connect, TestServer, WAIT};

fn ip(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

/// A TCP connection to `addr` from the loopback address `from`.
async fn tcp_from(addr: SocketAddr, from: IpAddr) -> TcpStream {
    Connect::default().bind(from).tcp(addr).await
}

/// A visitor from `from` with these extra request headers, after hello and welcome.
async fn visitor_from(
    s: &TestServer,
    from: IpAddr,
    headers: &[(&str, &str)],
) -> Result<(Client, Value), WsError> {
    s.try_visitor(Connect::default().bind(from).headers(headers), None)
        .await
}

/// A keep-alive HTTP connection from `from` that was answered and stays open.
async fn keep_alive(s: &TestServer, from: IpAddr) -> TcpStream {
    let mut keep = tcp_from(s.addr, from).await;
    keep.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(WAIT, keep.read(&mut buf))
        .await
        .expect("an answer")
        .expect("read");
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    keep
}

/// Waits until a visitor from `from` is let in again.
async fn until_a_slot_is_free(s: &TestServer, from: IpAddr) {
    let until = Instant::now() + WAIT;
    while let Err(e) = visitor_from(s, from, &[]).await {
        assert!(Instant::now() < until, "the slot never came back: {e}");
        tokio::time::sleep(Duration::from_millis(20)).await;
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
        refusal(visitor_from(&s, ip(3), &[]).await),
        (429, Some("5".into())),
        "the 201st socket from one address"
    );
    let _other = visitor_from(&s, ip(4), &[])
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
    until_a_slot_is_free(&s, ip(3)).await;
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
    let _keep = keep_alive(&s, ip(5)).await;

    assert_eq!(refusal(visitor_from(&s, ip(5), &[]).await).0, 429);
    visitor_from(&s, ip(6), &[])
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
        c.limits.handshake_timeout = Duration::from_millis(300);
    })
    .await;
    let mut keep = keep_alive(&s, ip(7)).await;
    assert_eq!(refusal(visitor_from(&s, ip(7), &[]).await).0, 429);
    // Kept alive but silent: closed like a handshake that never ends, and its slot is free.
    let rest = read_all(&mut keep).await;
    assert!(rest.is_empty() || rest.contains("408"), "{rest:?}");
    until_a_slot_is_free(&s, ip(7)).await;
}

#[tokio::test]
async fn past_the_socket_cap_every_socket_is_answered_503_at_once() {
    let s = TestServer::start_with(|c| c.limits.max_sockets = Some(3)).await;
    let _a = tcp_from(s.addr, ip(10)).await;
    let _b = tcp_from(s.addr, ip(11)).await;
    let _ws = visitor_from(&s, ip(12), &[])
        .await
        .expect("a WebSocket takes the third");
    let mut over = tcp_from(s.addr, ip(13)).await;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let answer = read_all(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
    assert_eq!(
        refusal(visitor_from(&s, ip(14), &[]).await),
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
            visitor_from(&s, proxy, &xff(client))
                .await
                .unwrap_or_else(|e| panic!("{client} through the proxy: {e}")),
        );
    }
    // The client the proxy names is the one counted.
    assert_eq!(
        refusal(visitor_from(&s, proxy, &xff("203.0.113.1")).await),
        (429, Some("5".into()))
    );
    // A client prepending an address of its choice is still counted as itself.
    assert_eq!(
        refusal(visitor_from(&s, proxy, &xff("198.51.100.1, 203.0.113.2")).await).0,
        429
    );
    held.push(
        visitor_from(&s, proxy, &[("forwarded", "for=\"[2001:db8::1]:4711\"")])
            .await
            .expect("a third client, named by Forwarded"),
    );

    // The same headers from a peer that is not a trusted proxy are ignored.
    let untrusted = ip(21);
    for client in ["203.0.113.3", "203.0.113.4"] {
        held.push(
            visitor_from(&s, untrusted, &xff(client))
                .await
                .expect("within the cap"),
        );
    }
    assert_eq!(
        refusal(visitor_from(&s, untrusted, &xff("203.0.113.5")).await).0,
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

#[tokio::test]
async fn connection_caps_answer_503_and_429_at_the_handshake_and_others_are_served() {
    let s = TestServer::start_with(|c| {
        c.limits.max_connections = 3;
        c.limits.max_connections_per_ip = 2;
    })
    .await;
    let (mut a1, _) = visitor_from(&s, ip(1), &[]).await.expect("1st from .1");
    let a2 = visitor_from(&s, ip(1), &[]).await.expect("2nd from .1");
    // A third from the same address: 429, with a hint when to come back.
    assert_eq!(
        refusal(visitor_from(&s, ip(1), &[]).await),
        (429, Some("5".into()))
    );
    let (mut b1, _) = visitor_from(&s, ip(2), &[]).await.expect("1st from .2");
    // The server is full: 503 for anyone, agents too.
    assert_eq!(
        refusal(visitor_from(&s, ip(2), &[]).await),
        (503, Some("5".into()))
    );
    assert_eq!(
        refusal(Client::open(&s.ws_url("/ws/agent"), Connect::default().bind(ip(3))).await).0,
        503
    );

    // A flood beyond the caps: every attempt is answered at once, none hangs. Each
    // comes from an address of its own, so the total cap is what refuses it.
    let started = Instant::now();
    let url = s.ws_url("/ws/visitor");
    let flood = futures::future::join_all((0..60u8).map(|i| {
        let url = &url;
        async move {
            tokio::time::timeout(
                Duration::from_secs(5),
                Client::open(url, Connect::default().bind(ip(10 + i))),
            )
            .await
            .expect("a refusal, not a hang")
        }
    }))
    .await;
    for r in flood {
        assert_eq!(refusal(r).0, 503);
    }
    assert!(started.elapsed() < Duration::from_secs(5));

    // At the cap, plain HTTP is still served, and the connections inside the caps work.
    assert_eq!(http::get(s.addr, "/healthz").await.status, 200);
    assert_eq!(a1.say("still served").await["seq"], 1);
    assert_eq!(b1.say("me too").await["seq"], 1);
    let m = metrics(s.addr).await;
    assert!(metric(&m, "frontdesk_connections_refused_total") >= 63.0);

    // A slot comes back when its connection ends.
    drop(a2);
    until_a_slot_is_free(&s, ip(3)).await;
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
    let mut raw = Raw::upgrade(s.addr, "/ws/visitor?inbox=default", Connect::default()).await;
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
