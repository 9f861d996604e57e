//! What every integration test shares: a real server on an ephemeral port with a
//! temporary data directory (in-process, or the real binary for crash tests), and
//! WebSocket clients with `expect_*` helpers that fail with a clear message instead of
//! hanging.

#![allow(dead_code)]

pub mod smtp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use widget_protocol::Role;

use frontdesk::app::App;
use frontdesk::clock::{Clock, SystemClock};
use frontdesk::config::Config;
use frontdesk::Server;

/// The wall clock moved by a test-controlled offset, for time-based behaviour measured
/// in days (token lifetimes) without waiting.
#[derive(Default)]
pub struct FakeClock {
    offset_ms: AtomicI64,
}

impl FakeClock {
    pub fn advance(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> widget_protocol::Millis {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// How long any single expectation waits before failing the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// The server, in this process, on 127.0.0.1:0 with its own data directory.
pub struct TestServer {
    pub addr: SocketAddr,
    pub admin_token: String,
    pub app: App,
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        Self::start_in(Some(dir), path, adjust).await
    }

    /// Starts on a data directory a stopped server left behind.
    pub async fn start_in_existing(dir: Option<tempfile::TempDir>, path: PathBuf) -> TestServer {
        Self::start_in(dir, path, |_| {}).await
    }

    /// With the time from `clock` (see [`FakeClock`]).
    pub async fn start_with_clock(
        clock: Arc<FakeClock>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        Self::start_in_clocked(Some(dir), path, adjust, clock).await
    }

    async fn start_in(
        dir: Option<tempfile::TempDir>,
        path: PathBuf,
        adjust: impl FnOnce(&mut Config),
    ) -> TestServer {
        Self::start_in_clocked(dir, path, adjust, Arc::new(SystemClock)).await
    }

    async fn start_in_clocked(
        dir: Option<tempfile::TempDir>,
        path: PathBuf,
        adjust: impl FnOnce(&mut Config),
        clock: Arc<dyn Clock>,
    ) -> TestServer {
        let mut config = Config::new("127.0.0.1:0".parse().expect("addr"), path.clone());
        adjust(&mut config);
        // After a restart the old server's last tasks may still be letting go of the
        // data directory for a moment.
        let mut tries = 0;
        let server = loop {
            match Server::bind_with_clock(config.clone(), clock.clone()).await {
                Ok(s) => break s,
                Err(frontdesk::ServeError::Open(frontdesk::app::OpenError::Locked(_)))
                    if tries < 100 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("server starts: {e}"),
            }
        };
        let addr = server.local_addr();
        let app = server.app().clone();
        let admin_token = std::fs::read_to_string(path.join("admin-token"))
            .expect("admin-token file")
            .trim()
            .to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            // `stop` waits for the store to close by waiting for the data directory.
            let _closing = server
                .run(async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        TestServer {
            addr,
            admin_token,
            app,
            dir,
            path,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn data_dir(&self) -> &Path {
        &self.path
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// Stops gracefully and waits until the data directory is released.
    pub async fn stop(mut self) -> (Option<tempfile::TempDir>, PathBuf) {
        self.shutdown().await;
        let (dir, path) = (self.dir.take(), self.path.clone());
        // The last handle to the app: the store closes and then lets the directory go.
        drop(self);
        let until = tokio::time::Instant::now() + WAIT;
        while frontdesk::app::DataDir::lock(&path).is_err() {
            assert!(
                tokio::time::Instant::now() < until,
                "the data directory was not released after the server stopped"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        (dir, path)
    }

    async fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.expect("server task");
        }
    }

    /// Stops and starts again on the same data directory (a new port).
    pub async fn restart(self) -> TestServer {
        self.restart_with(|_| {}).await
    }

    pub async fn restart_with(self, adjust: impl FnOnce(&mut Config)) -> TestServer {
        let (dir, path) = self.stop().await;
        Self::start_in(dir, path, adjust).await
    }

    /// A new agent, created through the same code path as `frontdesk agent add`.
    pub async fn create_agent(&self, name: &str, inboxes: &[&str], role: Role) -> String {
        let (_, token) = frontdesk::agents::create(
            self.app.admin.as_ref(),
            name,
            role,
            inboxes.iter().map(|s| s.to_string()).collect(),
            self.app.now(),
        )
        .await
        .expect("agent created");
        token
    }

    pub async fn create_inbox(&self, key: &str, origins: &[&str]) {
        self.app
            .inboxes
            .create(
                key,
                key,
                origins.iter().map(|s| s.to_string()).collect(),
                self.app.now(),
            )
            .await
            .expect("inbox created");
    }

    /// A visitor socket on the default inbox, after `hello` and `welcome`.
    pub async fn visitor(&self) -> (Client, Value) {
        self.visitor_with(None, None).await
    }

    /// A visitor connecting with an optional token in `hello` and optional Cookie header.
    pub async fn visitor_with(&self, token: Option<&str>, cookie: Option<&str>) -> (Client, Value) {
        let mut c = Client::connect_with(&self.ws_url("/ws/visitor?inbox=default"), cookie, None)
            .await
            .expect("visitor connects");
        c.send(json!({"type":"hello","visitor_token":token,"page":{"url":"https://shop.example/p","title":"Shop"}}))
            .await;
        let w = c.expect("welcome").await;
        (c, w)
    }

    /// A visitor socket on the default inbox from the local address `from` (see
    /// [`Client::connect_from`]), after `hello` and `welcome`.
    pub async fn visitor_from(
        &self,
        from: std::net::IpAddr,
        token: Option<&str>,
    ) -> (Client, Value) {
        let mut c = Client::connect_from(&self.ws_url("/ws/visitor?inbox=default"), from)
            .await
            .expect("visitor connects");
        c.send(json!({"type":"hello","visitor_token":token,"page":{"url":"https://shop.example/p","title":"Shop"}}))
            .await;
        let w = c.expect("welcome").await;
        (c, w)
    }

    /// An agent socket after `auth` and `ready`.
    pub async fn agent(&self, token: &str) -> (Client, Value) {
        let mut c = Client::connect(&self.ws_url("/ws/agent"))
            .await
            .expect("agent connects");
        c.send(json!({"type":"auth","token":token})).await;
        let ready = c.expect("ready").await;
        (c, ready)
    }

    pub async fn admin(&self) -> (Client, Value) {
        let token = self.admin_token.clone();
        self.agent(&token).await
    }

    /// Sets the default inbox's chatflow as the admin would.
    pub async fn set_chatflow(&self, chatflow: Value) {
        let (mut admin, _) = self.admin().await;
        admin
            .send(json!({"type":"update_chatflow","inbox":"default","chatflow":chatflow}))
            .await;
        admin.expect("chatflow").await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The handshake response's `Set-Cookie`, if any.
    pub set_cookie: Option<String>,
}

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Closed {
    Code(u16),
    /// Closed without a close frame.
    Abrupt,
}

impl Client {
    pub async fn connect(url: &str) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        Self::connect_with(url, None, None).await
    }

    pub async fn connect_with(
        url: &str,
        cookie: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut req = url.into_client_request()?;
        if let Some(c) = cookie {
            req.headers_mut()
                .insert("cookie", HeaderValue::from_str(c).expect("cookie header"));
        }
        if let Some(o) = origin {
            req.headers_mut()
                .insert("origin", HeaderValue::from_str(o).expect("origin header"));
        }
        let (ws, resp) = tokio_tungstenite::connect_async(req).await?;
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Client { ws, set_cookie })
    }

    /// Like [`Client::connect`], from the local address `from`: any 127.x.y.z reaches a
    /// server on 127.0.0.1, so a test can be several client addresses.
    pub async fn connect_from(
        url: &str,
        from: std::net::IpAddr,
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let req = url.into_client_request()?;
        let host = req.uri().host().unwrap_or("127.0.0.1").to_string();
        let port = req.uri().port_u16().unwrap_or(80);
        let to: SocketAddr = format!("{host}:{port}").parse().expect("a literal address");
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        let stream = socket.connect(to).await?;
        let (ws, resp) =
            tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream)).await?;
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok(Client { ws, set_cookie })
    }

    /// A client whose TCP receive buffer is `rcvbuf` bytes (set before connecting, so
    /// its window is small from the start): one that stops reading fills it quickly.
    pub async fn connect_with_rcvbuf(url: &str, rcvbuf: u32) -> Client {
        let req = url.into_client_request().expect("request");
        let host = req
            .uri()
            .authority()
            .expect("authority")
            .as_str()
            .to_string();
        let addr: SocketAddr = host.parse().expect("an ip:port url");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(rcvbuf).expect("rcvbuf");
        let stream = socket.connect(addr).await.expect("connect");
        let (ws, _) = tokio_tungstenite::client_async(req, MaybeTlsStream::Plain(stream))
            .await
            .expect("upgrade");
        Client {
            ws,
            set_cookie: None,
        }
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

    /// The next data frame as JSON, or None when the connection ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Err(_) => panic!("no frame within {WAIT:?}"),
                Ok(None) | Ok(Some(Err(_))) => return None,
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Some(serde_json::from_str(t.as_str()).expect("server frames are JSON"))
                }
                Ok(Some(Ok(Message::Close(_)))) => return None,
                Ok(Some(Ok(_))) => continue,
            }
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

/// The real `frontdesk` binary, for tests that kill it.
pub struct BinaryServer {
    pub child: tokio::process::Child,
    pub addr: SocketAddr,
    pub data: PathBuf,
    /// What the binary printed on stdout before its "listening" line.
    pub preamble: Vec<String>,
}

impl BinaryServer {
    pub async fn spawn(data: &Path, extra: &[&str]) -> BinaryServer {
        Self::spawn_with(data, extra, "warn", Stdio::inherit()).await
    }

    /// With this `RUST_LOG`, and stderr where the test wants it (a file, to read the logs).
    pub async fn spawn_with(
        data: &Path,
        extra: &[&str],
        rust_log: &str,
        stderr: Stdio,
    ) -> BinaryServer {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        cmd.env("RUST_LOG", rust_log).stderr(stderr);
        Self::from_command(cmd, data, extra).await
    }

    /// Started by a shell that sets the process umask first (e.g. "022").
    pub async fn spawn_with_umask(data: &Path, extra: &[&str], umask: &str) -> BinaryServer {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "umask \"$0\" && exec \"$@\"", umask])
            .arg(env!("CARGO_BIN_EXE_frontdesk"))
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit());
        Self::from_command(cmd, data, extra).await
    }

    /// Runs `cmd serve --listen 127.0.0.1:0 --data DATA EXTRA...` and waits for it to say
    /// where it listens.
    async fn from_command(
        mut cmd: tokio::process::Command,
        data: &Path,
        extra: &[&str],
    ) -> BinaryServer {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("the frontdesk binary starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut preamble = Vec::new();
        let addr = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.strip_prefix("frontdesk listening on http://") {
                    return rest.trim().parse::<SocketAddr>().ok();
                }
                preamble.push(line);
            }
            None
        })
        .await
        .expect("the binary says where it listens in time")
        .expect("a listening line");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        BinaryServer {
            child,
            addr,
            data: data.to_path_buf(),
            preamble,
        }
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// SIGKILL: no shutdown, no flush, nothing.
    pub async fn kill9(mut self) {
        self.child.kill().await.expect("kill -9");
        let _ = self.child.wait().await;
    }

    /// SIGTERM, and the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        if let Some(pid) = self.child.id() {
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
        tokio::time::timeout(Duration::from_secs(15), self.child.wait())
            .await
            .expect("exits after SIGTERM in time")
            .expect("exit status")
    }
}
