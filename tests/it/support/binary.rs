//! The real `frontdesk` binary on a loopback port, for tests that signal or kill it, and
//! its clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::client::{Client, Connect};
use super::WAIT;

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

    /// The admin token the binary wrote into its data directory.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.data.join("admin-token"))
            .expect("admin-token file")
            .trim()
            .to_string()
    }

    /// A visitor on the default inbox after `hello` (with an optional token) and `welcome`.
    pub async fn visitor(&self, token: Option<&str>) -> (Client, Value) {
        Client::visitor(self.addr, Connect::default(), token)
            .await
            .expect("visitor connects")
    }

    /// An agent socket after `auth` and `ready`.
    pub async fn agent(&self, token: &str) -> (Client, Value) {
        Client::agent(self.addr, token).await
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
