//! What every integration test shares: a real server on an ephemeral port with a
//! temporary data directory (in-process here, the real binary in `binary`), clients
//! (`client::Client`, and `raw::Raw` for what no WebSocket library would send), plain
//! HTTP and `/metrics` (`http`), a real SMTP server (`smtp`), and the seed of a
//! randomized test (`seed`).

#![allow(dead_code)]

pub mod binary;
pub mod client;
pub mod http;
pub mod raw;
pub mod seed;
pub mod smtp;

pub use binary::BinaryServer;
pub use client::{refusal, Client, Closed, Connect, Next};

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;
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

    /// Makes it `at` now (and running on from there).
    pub fn set(&self, at: widget_protocol::Millis) {
        self.offset_ms
            .store(at - SystemClock.now_ms(), Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> widget_protocol::Millis {
        SystemClock.now_ms() + self.offset_ms.load(Ordering::SeqCst)
    }
}

/// The seqs of a frame's `messages` (a welcome, history or conversation), in order.
pub fn seqs(frame: &Value) -> Vec<u64> {
    frame["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["seq"].as_u64().expect("seq"))
        .collect()
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
        self.try_visitor(Connect::default().cookie(cookie), token)
            .await
            .expect("visitor connects")
    }

    /// A visitor socket on the default inbox from the local address `from` (see
    /// [`Connect::bind`]), after `hello` and `welcome`.
    pub async fn visitor_from(&self, from: IpAddr, token: Option<&str>) -> (Client, Value) {
        self.try_visitor(Connect::default().bind(from), token)
            .await
            .expect("visitor connects")
    }

    /// A visitor connected as `how` says, after `hello` and `welcome`; or the refusal.
    pub async fn try_visitor(
        &self,
        how: Connect<'_>,
        token: Option<&str>,
    ) -> Result<(Client, Value), tokio_tungstenite::tungstenite::Error> {
        Client::visitor(self.addr, how, token).await
    }

    /// An agent socket after `auth` and `ready`.
    pub async fn agent(&self, token: &str) -> (Client, Value) {
        Client::agent(self.addr, token).await
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

/// The summary of conversation `conv` in a `ready` frame.
pub fn listed<'a>(ready: &'a Value, conv: &str) -> &'a Value {
    ready["conversations"]
        .as_array()
        .expect("conversations")
        .iter()
        .find(|c| c["id"] == conv)
        .expect("the conversation is listed")
}

/// The next `conversation_updated` about `conv`: its summary.
pub async fn updated(agent: &mut Client, conv: &str) -> Value {
    loop {
        let u = agent.expect_skipping("conversation_updated").await;
        if u["conversation"]["id"] == conv {
            return u["conversation"].clone();
        }
    }
}
