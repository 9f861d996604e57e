//! The server's configuration, validated once from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Limits applied to every connection. Defaults are the protocol's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Characters of message text after trimming.
    pub max_text_chars: usize,
    pub max_name_chars: usize,
    pub max_email_chars: usize,
    /// Bytes of one WebSocket message (and frame).
    pub max_frame_bytes: usize,
    /// `send`/`reply` frames allowed per `rate_window` per connection; 0 means no limit.
    pub rate_count: u32,
    pub rate_window: Duration,
    /// Time a client has to send `hello` / `auth`.
    pub hello_timeout: Duration,
    /// Time a client has to finish the HTTP upgrade.
    pub handshake_timeout: Duration,
    pub max_history: u32,
    pub default_page: u32,
    /// Frames queued to one connection past which it is dropped as too slow once it
    /// takes nothing for `hub::STALLED` (or holds `hub::BURST_ROOM` times as many).
    pub outbound_queue: usize,
    /// Bytes queued to one connection's socket past which its writer waits.
    pub max_write_buffer_bytes: usize,
    /// WebSocket connections in total (503 at the upgrade past it); at most the socket cap.
    pub max_connections: usize,
    /// Per client address (an IPv4 address, an IPv6 /64): WebSocket connections (429 at
    /// the upgrade past it), and apart from those, sockets not upgraded (still in their
    /// HTTP handshake or on plain HTTP; closed at accept past it). A trusted proxy's own
    /// address is not capped at accept: its clients are counted at the upgrade.
    pub max_connections_per_ip: usize,
    /// Open TCP sockets of every kind, counted from accept until they close (closed at
    /// accept past it). `None`: the file-descriptor limit less `fdlimit::RESERVE`; a
    /// number is still held below that.
    pub max_sockets: Option<usize>,
    pub heartbeat: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_chars: 4000,
            max_name_chars: 100,
            max_email_chars: 254,
            max_frame_bytes: 64 * 1024,
            rate_count: 20,
            rate_window: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_history: 200,
            default_page: 50,
            // Agents hear every message of their inboxes: a burst needs room. A queue
            // allocates as it fills, so an idle one costs nothing.
            outbound_queue: 4096,
            max_write_buffer_bytes: 256 * 1024,
            max_connections: 50_000,
            // A household or an office behind one address.
            max_connections_per_ip: 200,
            max_sockets: None,
            heartbeat: Duration::from_secs(20),
        }
    }
}

/// Outgoing mail for follow-ups.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// `smtp://[user:pass@]host[:port][?tls=starttls|opportunistic]` or
    /// `smtps://[user:pass@]host[:port]` (see `mail::SmtpTarget`); none: emails wait in
    /// the outbox.
    pub smtp_url: Option<String>,
    pub from: Option<String>,
    pub reply_to: Option<String>,
    /// Base URL of this server, for links in emails when the page is unknown.
    pub public_url: Option<String>,
    /// Wait before the first retry of a failed delivery; doubles per attempt.
    pub retry_base: Duration,
    /// The longest wait between two attempts.
    pub retry_max: Duration,
    /// Attempts before an email is marked failed.
    pub max_attempts: u32,
    /// Time for connecting (with TLS and login), and again for handing over one email.
    pub send_timeout: Duration,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            from: None,
            reply_to: None,
            public_url: None,
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            max_attempts: 10,
            send_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub limits: Limits,
    /// Mark the visitor cookie `Secure` (when served over TLS by a proxy).
    pub secure_cookie: bool,
    /// Extra origins the agent endpoint accepts besides the server's own.
    pub agent_origins: Vec<String>,
    pub mail: MailConfig,
    /// Serve `/ws/echo` for WebSocket conformance tests.
    pub test_echo: bool,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` name the client
    /// (`transport::http::client_ip`); from any other peer those headers are ignored.
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl Config {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> Self {
        Config {
            listen,
            data_dir,
            limits: Limits::default(),
            secure_cookie: false,
            agent_origins: Vec::new(),
            mail: MailConfig::default(),
            test_echo: false,
            trusted_proxies: Vec::new(),
        }
    }
}

/// A `--trusted-proxy` value: a range (`10.0.0.0/8`, `2001:db8::/32`) or one address.
pub fn parse_trusted_proxy(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    s.parse::<ipnet::IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .ok()
}
