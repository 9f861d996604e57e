//! A real SMTP server for the follow-up tests: `tests/smtp_sink.py` (aiosmtpd) on a
//! loopback port, keeping every message it accepts in a temporary folder.
//!
//! It never skips: when the sink cannot start, the test fails with one line that says
//! to run `.ci/setup`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::WAIT;

/// Debian's Python, which has python3-aiosmtpd (see `.ci/setup-smtp`).
fn python() -> PathBuf {
    std::env::var_os("FRONTDESK_SMTP_PYTHON")
        .map_or_else(|| PathBuf::from("/usr/bin/python3"), PathBuf::from)
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

pub struct SmtpSink {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// One message as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    /// The raw RFC 5322 message.
    pub raw: String,
    /// Envelope, parsed headers and decoded parts (see `tests/smtp_sink.py`).
    pub parsed: Value,
}

impl Received {
    /// The header section exactly as it was on the wire.
    pub fn raw_headers(&self) -> &str {
        self.raw
            .split("\r\n\r\n")
            .next()
            .unwrap_or(self.raw.as_str())
    }

    /// Every value of a header, as a mail client decodes it.
    pub fn headers(&self, name: &str) -> Vec<String> {
        self.parsed["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map(|h| h[1].as_str().unwrap_or_default().to_string())
            .collect()
    }

    pub fn header(&self, name: &str) -> String {
        let v = self.headers(name);
        assert_eq!(
            v.len(),
            1,
            "expected one {name} header in {}",
            self.raw_headers()
        );
        v[0].clone()
    }

    pub fn text(&self) -> String {
        self.parsed["text"]
            .as_str()
            .expect("a text/plain part")
            .to_string()
    }

    pub fn html(&self) -> String {
        self.parsed["html"]
            .as_str()
            .expect("a text/html part")
            .to_string()
    }

    pub fn rcpt_tos(&self) -> Vec<String> {
        serde_json::from_value(self.parsed["rcpt_tos"].clone()).expect("rcpt_tos")
    }
}

impl SmtpSink {
    /// A sink on a free port.
    pub fn start() -> SmtpSink {
        Self::spawn(free_port(), None)
    }

    /// A sink on this port (e.g. one the server was told about while nothing listened).
    pub fn start_on(port: u16) -> SmtpSink {
        Self::spawn(port, None)
    }

    /// A sink that keeps each message but never answers the end of DATA.
    pub fn start_hanging() -> SmtpSink {
        Self::spawn(free_port(), Some("--hang"))
    }

    /// A sink that refuses every recipient for good with a 550 quoting the address.
    pub fn start_rejecting() -> SmtpSink {
        Self::spawn(free_port(), Some("--reject"))
    }

    /// `mode`: `--hang` or `--reject` (see `tests/smtp_sink.py`).
    fn spawn(port: u16, mode: Option<&str>) -> SmtpSink {
        let dir = tempfile::tempdir().expect("temp dir");
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/smtp_sink.py");
        let mut cmd = Command::new(python());
        cmd.arg(&script)
            .arg("--port")
            .arg(port.to_string())
            .arg("--dir")
            .arg(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(mode) = mode {
            cmd.arg(mode);
        }
        let fail = |why: String| -> ! {
            panic!("the SMTP sink for the follow-up tests cannot start ({why}); run .ci/setup (it installs python3-aiosmtpd)")
        };
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| fail(format!("{}: {e}", python().display())));
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut first = String::new();
            let _ = BufReader::new(stdout).read_line(&mut first);
            let _ = tx.send(first);
        });
        match rx.recv_timeout(WAIT) {
            Ok(line) if line.trim() == "ready" => {}
            other => {
                let _ = child.kill();
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                let last = err.lines().last().unwrap_or("no output").to_string();
                let _ = child.wait();
                fail(match other {
                    Ok(_) => last,
                    Err(_) => format!("not ready within {WAIT:?}"),
                })
            }
        }
        SmtpSink { port, dir, child }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Received> {
        let mut names: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("sink dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| {
                let raw = std::fs::read(&eml).expect("message file");
                let json = std::fs::read(eml.with_extension("json")).expect("parsed message");
                Received {
                    raw: String::from_utf8_lossy(&raw).into_owned(),
                    parsed: serde_json::from_slice(&json).expect("sink json"),
                }
            })
            .collect()
    }

    /// Waits until `n` messages arrived (failing after `timeout`), and returns them all.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let until = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "expected {n} email(s) within {timeout:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
