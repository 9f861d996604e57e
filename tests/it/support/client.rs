//! The test client: a WebSocket over tokio-tungstenite, opened the way a test needs
//! (`Connect`: a source address, a small receive window, Origin, Cookie, other headers),
//! with `expect_*` helpers that fail with a clear message instead of hanging.
//!
//! It speaks only well-formed WebSocket and answers pings whenever it reads; a client
//! that must not read, or must send frames no library would, is a [`super::raw::Raw`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::WAIT;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a test connection is made; the default is a plain one from 127.0.0.1.
#[derive(Default, Clone, Copy)]
pub struct Connect<'a> {
    from: Option<IpAddr>,
    rcvbuf: Option<u32>,
    origin: Option<&'a str>,
    cookie: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
}

impl<'a> Connect<'a> {
    /// From this local address: any 127.x.y.z reaches a server on 127.0.0.1, so a test
    /// can be several client addresses.
    pub fn bind(self, from: IpAddr) -> Self {
        Connect {
            from: Some(from),
            ..self
        }
    }

    /// With a TCP receive buffer of `bytes` (set before connecting, so the window is
    /// small from the start): a client that stops reading fills it quickly.
    pub fn rcvbuf(self, bytes: u32) -> Self {
        Connect {
            rcvbuf: Some(bytes),
            ..self
        }
    }

    /// With an Origin header (or, given None, without one).
    pub fn origin(self, origin: impl Into<Option<&'a str>>) -> Self {
        Connect {
            origin: origin.into(),
            ..self
        }
    }

    /// With a Cookie header (or, given None, without one).
    pub fn cookie(self, cookie: impl Into<Option<&'a str>>) -> Self {
        Connect {
            cookie: cookie.into(),
            ..self
        }
    }

    /// Any other request headers (e.g. X-Forwarded-For).
    pub fn headers(self, headers: &'a [(&'a str, &'a str)]) -> Self {
        Connect { headers, ..self }
    }

    /// Every request header this connection adds to the handshake.
    pub fn request_headers(&self) -> Vec<(&'a str, &'a str)> {
        let named = [("origin", self.origin), ("cookie", self.cookie)];
        named
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .chain(self.headers.iter().copied())
            .collect()
    }

    /// The TCP connection to `to`, from the chosen address with the chosen window.
    pub async fn tcp(&self, to: SocketAddr) -> TcpStream {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(ip) = self.from {
            socket
                .bind(SocketAddr::new(ip, 0))
                .expect("bind the source address");
        }
        if let Some(n) = self.rcvbuf {
            socket.set_recv_buffer_size(n).expect("SO_RCVBUF");
        }
        socket.connect(to).await.expect("tcp connect")
    }
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Code(u16),
    /// Closed without a close frame (or one without a code).
    Abrupt,
}

/// What a connection did next.
#[derive(Debug)]
pub enum Next {
    Frame(Value),
    Closed(Closed),
}

/// The HTTP status (and Retry-After) of a refused handshake.
pub fn refusal<T>(r: Result<T, Error>) -> (u16, Option<String>) {
    match r {
        Ok(_) => panic!("the handshake was accepted"),
        Err(Error::Http(resp)) => (
            resp.status().as_u16(),
            resp.headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
        ),
        Err(e) => panic!("the handshake failed without an HTTP answer: {e}"),
    }
}

pub struct Client {
    ws: Ws,
    /// The handshake response's `Set-Cookie`, if any.
    pub set_cookie: Option<String>,
}

impl Client {
    pub async fn connect(url: &str) -> Result<Client, Error> {
        Self::open(url, Connect::default()).await
    }

    /// A WebSocket to `url` (`ws://ip:port/path`), made as `how` says.
    pub async fn open(url: &str, how: Connect<'_>) -> Result<Client, Error> {
        let mut req = url.into_client_request()?;
        for (k, v) in how.request_headers() {
            req.headers_mut().append(
                HeaderName::from_bytes(k.as_bytes()).expect("header name"),
                HeaderValue::from_str(v).expect("header value"),
            );
        }
        let to: SocketAddr = req
            .uri()
            .authority()
            .expect("authority")
            .as_str()
            .parse()
            .expect("an ip:port url");
        let stream = how.tcp(to).await;
        let (ws, resp) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)),
        )
        .await
        .expect("an answer to the handshake in time")?;
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Client { ws, set_cookie })
    }

    /// A visitor on the default inbox of the server at `addr`, after `hello` (with an
    /// optional token) and `welcome`.
    pub async fn visitor(
        addr: SocketAddr,
        how: Connect<'_>,
        token: Option<&str>,
    ) -> Result<(Client, Value), Error> {
        let url = format!("ws://{addr}/ws/visitor?inbox=default");
        let mut c = Self::open(&url, how).await?;
        c.send(json!({"type":"hello","visitor_token":token,"page":{"url":"https://shop.example/p","title":"Shop"}}))
            .await;
        let w = c.expect("welcome").await;
        Ok((c, w))
    }

    /// An agent of the server at `addr`, after `auth` and `ready`.
    pub async fn agent(addr: SocketAddr, token: &str) -> (Client, Value) {
        let mut c = Self::connect(&format!("ws://{addr}/ws/agent"))
            .await
            .expect("agent connects");
        c.send(json!({"type":"auth","token":token})).await;
        let ready = c.expect("ready").await;
        (c, ready)
    }

    /// The socket itself, e.g. to split it between a reader task and a sender.
    pub fn into_inner(self) -> Ws {
        self.ws
    }

    /// The `name=value` part of the handshake's Set-Cookie, for a Cookie header.
    pub fn cookie_pair(&self) -> String {
        self.set_cookie
            .as_deref()
            .and_then(|c| c.split(';').next())
            .expect("a Set-Cookie on the handshake")
            .to_string()
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_text(&frame.to_string()).await;
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    /// Sends a frame on a connection that may have died (the server was killed).
    pub async fn try_send(&mut self, frame: Value) -> Result<(), Error> {
        self.ws.send(Message::text(frame.to_string())).await
    }

    /// Sends a close frame.
    pub async fn close(&mut self, frame: CloseFrame) {
        self.ws.close(Some(frame)).await.expect("close sent");
    }

    /// The next WebSocket message exactly as it came, control frames included.
    pub async fn next_message(&mut self) -> Option<Result<Message, Error>> {
        tokio::time::timeout(WAIT, self.ws.next())
            .await
            .expect("an answer in time")
    }

    /// The next text frame as the server wrote it, or None when the connection ended.
    pub async fn next_raw(&mut self) -> Option<String> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => panic!("no frame within {WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return None,
                Ok(Some(Ok(Message::Text(t)))) => return Some(t.as_str().to_string()),
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next data frame as JSON, or how the connection ended.
    pub async fn next_event(&mut self) -> Next {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => panic!("no frame within {WAIT:?}"),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Next::Frame(
                        serde_json::from_str(t.as_str()).expect("server frames are JSON"),
                    )
                }
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    return Next::Closed(Closed::Code(f.code.into()))
                }
                Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                    return Next::Closed(Closed::Abrupt)
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// The next data frame as JSON, or None when the connection ended.
    pub async fn next(&mut self) -> Option<Value> {
        match self.next_event().await {
            Next::Frame(f) => Some(f),
            Next::Closed(_) => None,
        }
    }

    /// The next frame, which must have this `type`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let f = self
            .next()
            .await
            .unwrap_or_else(|| panic!("connection ended while expecting {kind}"));
        assert_eq!(f["type"], kind, "expected a {kind} frame, got {f}");
        f
    }

    /// The next frame of this `type`, skipping others (e.g. `conversation_updated`).
    pub async fn expect_skipping(&mut self, kind: &str) -> Value {
        loop {
            let f = self
                .next()
                .await
                .unwrap_or_else(|| panic!("connection ended while expecting {kind}"));
            if f["type"] == kind {
                return f;
            }
        }
    }

    /// The next frame decoded as a protocol type.
    pub async fn expect_typed<T: DeserializeOwned>(&mut self) -> T {
        let f = self.next().await.expect("a frame");
        serde_json::from_value(f.clone())
            .unwrap_or_else(|e| panic!("frame {f} does not decode: {e}"))
    }

    /// An `error` frame with this code.
    pub async fn expect_error(&mut self, code: &str) -> Value {
        let f = self.expect_skipping("error").await;
        assert_eq!(f["code"], code, "error frame {f}");
        f
    }

    /// Nothing arrives for `ms` (apart from frames of the ignored types).
    pub async fn expect_silence(&mut self, ms: u64, ignore: &[&str]) {
        let until = tokio::time::Instant::now() + Duration::from_millis(ms);
        loop {
            match tokio::time::timeout_at(until, self.ws.next()).await {
                Err(_) => return,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("json");
                    let kind = v["type"].as_str().unwrap_or_default();
                    assert!(ignore.contains(&kind), "expected silence, got {v}");
                }
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("connection ended while expecting silence: {other:?}"),
            }
        }
    }

    /// Reads until the server closes; returns the close code.
    pub async fn expect_closed(&mut self) -> Closed {
        loop {
            match tokio::time::timeout(Duration::from_secs(30), self.ws.next()).await {
                Err(_) => panic!("the server did not close the connection"),
                Ok(Some(Ok(Message::Close(Some(f))))) => return Closed::Code(f.code.into()),
                Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                    return Closed::Abrupt
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Skips frames until this conversation's summary says the visitor is `online` (or
    /// not).
    pub async fn until_presence(&mut self, conv: &str, online: bool) {
        loop {
            let u = self.expect_skipping("conversation_updated").await;
            if u["conversation"]["id"] == conv && u["conversation"]["visitor"]["online"] == online {
                return;
            }
        }
    }

    /// Sends a visitor message and returns the ack's message.
    pub async fn say(&mut self, text: &str) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        self.send(json!({"type":"send","client_msg_id":id,"text":text}))
            .await;
        let ack = self.expect_skipping("ack").await;
        assert_eq!(ack["client_msg_id"], id.as_str());
        ack["message"].clone()
    }

    /// Sends an agent reply and returns the ack's message.
    pub async fn reply(&mut self, conversation_id: &str, text: &str) -> Value {
        let id = uuid::Uuid::new_v4().to_string();
        self.send(json!({"type":"reply","conversation_id":conversation_id,"client_msg_id":id,"text":text}))
            .await;
        let ack = self.expect_skipping("ack").await;
        assert_eq!(ack["client_msg_id"], id.as_str());
        ack["message"].clone()
    }
}
