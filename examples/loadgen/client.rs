//! One connection to the server: connecting (spread over loopback source addresses),
//! the visitor's hello and the agent's auth, reading and writing `widget-protocol`
//! frames, and `LgError`, under whose counter key every failure is reported. Nothing
//! here schedules or measures.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};
use tokio_tungstenite::WebSocketStream;
use widget_protocol::{
    decode, encode, AgentClient, AgentServer, Page, SummaryUpdates, VisitorClient, VisitorServer,
};

use crate::common::Common;

pub type Ws = WebSocketStream<TcpStream>;

#[derive(Debug)]
pub enum LgError {
    Connect(String),
    Ws(String),
    Closed(Option<u16>),
    Timeout(&'static str),
    Protocol(String),
}

impl LgError {
    /// The counter this error is reported under. With `LOADGEN_VERBOSE` set, the first
    /// errors are also printed in full on stderr.
    pub fn key(&self) -> String {
        static SHOWN: AtomicUsize = AtomicUsize::new(0);
        if std::env::var_os("LOADGEN_VERBOSE").is_some()
            && SHOWN.fetch_add(1, Ordering::Relaxed) < 20
        {
            eprintln!("loadgen: {self}");
        }
        match self {
            LgError::Connect(_) => "err_connect".into(),
            LgError::Ws(_) => "err_socket".into(),
            LgError::Closed(Some(code)) => format!("err_closed_{code}"),
            LgError::Closed(None) => "err_closed".into(),
            LgError::Timeout(what) => format!("err_timeout_{what}"),
            LgError::Protocol(_) => "err_protocol".into(),
        }
    }
}

impl std::fmt::Display for LgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LgError::Connect(e) => write!(f, "connect: {e}"),
            LgError::Ws(e) => write!(f, "websocket: {e}"),
            LgError::Closed(c) => write!(f, "closed by the server ({c:?})"),
            LgError::Timeout(w) => write!(f, "timed out waiting for {w}"),
            LgError::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

fn ws_config() -> WebSocketConfig {
    // A small read buffer: many thousands of idle sockets must stay cheap here too.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// The round-robin over loopback source addresses (127.0.0.1, 127.0.0.2, …). Linux
/// hands `connect()` the even half of the ephemeral port range first and slows down
/// sharply once it is used up; each extra source address has a port space of its own.
static NEXT_SOURCE: AtomicUsize = AtomicUsize::new(0);

async fn connect(c: &Common, path: &str) -> Result<Ws, LgError> {
    let addr = &c.addr;
    let target: SocketAddr = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| LgError::Connect(e.to_string()))?
        .next()
        .ok_or_else(|| LgError::Connect(format!("{addr} does not resolve")))?;
    let sources = c.source_ips;
    let tcp = match target.ip() {
        IpAddr::V4(ip) if ip.is_loopback() && sources > 1 => {
            let n = NEXT_SOURCE.fetch_add(1, Ordering::Relaxed) % sources;
            let socket = TcpSocket::new_v4().map_err(|e| LgError::Connect(e.to_string()))?;
            let source = Ipv4Addr::new(127, 0, 0, 1 + n as u8);
            socket
                .bind((source, 0).into())
                .map_err(|e| LgError::Connect(e.to_string()))?;
            socket.connect(target).await
        }
        _ => TcpStream::connect(target).await,
    }
    .map_err(|e| LgError::Connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
        .await
        .map_err(|e| LgError::Connect(e.to_string()))?;
    Ok(ws)
}

/// What `ws.next()` yielded, with the end of the connection (a close frame, an error,
/// the end of the stream) as the error it is reported under.
pub fn incoming(m: Option<Result<WsMessage, WsError>>) -> Result<WsMessage, LgError> {
    match m {
        Some(Ok(WsMessage::Close(cf))) => Err(LgError::Closed(cf.map(|c| u16::from(c.code)))),
        Some(Ok(m)) => Ok(m),
        Some(Err(e)) => Err(LgError::Ws(e.to_string())),
        None => Err(LgError::Closed(None)),
    }
}

/// The next text frame; pings are answered by tungstenite while we read.
pub async fn next_text(ws: &mut Ws) -> Result<String, LgError> {
    loop {
        if let WsMessage::Text(t) = incoming(ws.next().await)? {
            return Ok(t.as_str().to_owned());
        }
    }
}

pub async fn send_frame<T: Serialize>(ws: &mut Ws, frame: &T) -> Result<(), LgError> {
    ws.send(WsMessage::text(encode(frame)))
        .await
        .map_err(|e| LgError::Ws(e.to_string()))
}

/// Queues a frame without flushing; a later `flush` sends everything queued at once.
pub async fn feed_frame<T: Serialize>(ws: &mut Ws, frame: &T) -> Result<(), LgError> {
    ws.feed(WsMessage::text(encode(frame)))
        .await
        .map_err(|e| LgError::Ws(e.to_string()))
}

pub async fn flush(ws: &mut Ws) -> Result<(), LgError> {
    ws.flush().await.map_err(|e| LgError::Ws(e.to_string()))
}

/// The next text frame, decoded.
async fn next_frame<F: DeserializeOwned>(ws: &mut Ws) -> Result<F, LgError> {
    let text = next_text(ws).await?;
    decode(&text).map_err(|e| LgError::Protocol(e.to_string()))
}

pub async fn next_visitor(ws: &mut Ws) -> Result<VisitorServer, LgError> {
    next_frame(ws).await
}

pub async fn next_agent(ws: &mut Ws) -> Result<AgentServer, LgError> {
    next_frame(ws).await
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A visitor connection after hello/welcome.
pub struct Visitor {
    pub ws: Ws,
    pub token: String,
    pub welcome_messages: Vec<widget_protocol::Message>,
    pub has_more: bool,
    /// The prompt the welcome says is sent and unanswered (an extension of `welcome`).
    pub email_prompt: Option<String>,
}

pub async fn visitor_connect(
    c: &Common,
    token: Option<String>,
    resume_after: Option<u64>,
) -> Result<Visitor, LgError> {
    let hello = VisitorClient::Hello {
        visitor_token: token,
        resume_after,
        page: Some(Page {
            url: Some("http://127.0.0.1/loadgen".into()),
            title: Some("loadgen".into()),
        }),
    };
    let (ws, w) = handshake(c, &c.visitor_path(), &hello, "welcome", |f| match f {
        VisitorServer::Welcome(w) => Some(Ok(w)),
        VisitorServer::Error(e) => Some(Err(LgError::Protocol(format!(
            "hello: {}",
            e.code.as_str()
        )))),
        _ => None,
    })
    .await?;
    Ok(Visitor {
        ws,
        token: w.visitor_token,
        welcome_messages: w.messages,
        has_more: w.has_more,
        email_prompt: w.email_prompt,
    })
}

pub async fn agent_connect(c: &Common, token: &str) -> Result<Ws, LgError> {
    // Like the peer, one frame per agent per message: the agent keeps its list from the
    // `message` frames (the `changes` extension of `auth`).
    let auth = AgentClient::Auth {
        token: Some(token.to_string()),
        summaries: SummaryUpdates::Changes,
    };
    let (ws, ()) = handshake(c, "/ws/agent", &auth, "ready", |f| match f {
        AgentServer::Ready { .. } => Some(Ok(())),
        AgentServer::Error(e) => Some(Err(LgError::Protocol(format!("auth: {}", e.code.as_str())))),
        _ => None,
    })
    .await?;
    Ok(ws)
}

/// Connects to `path`, sends `first` and reads frames until `answer` ends the handshake
/// (other frames are skipped), within the handshake timeout (`Timeout(what)`).
async fn handshake<F: DeserializeOwned, T>(
    c: &Common,
    path: &str,
    first: &impl Serialize,
    what: &'static str,
    mut answer: impl FnMut(F) -> Option<Result<T, LgError>>,
) -> Result<(Ws, T), LgError> {
    let fut = async {
        let mut ws = connect(c, path).await?;
        send_frame(&mut ws, first).await?;
        loop {
            if let Some(end) = answer(next_frame(&mut ws).await?) {
                return end.map(|t| (ws, t));
            }
        }
    };
    timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .unwrap_or(Err(LgError::Timeout(what)))
}
