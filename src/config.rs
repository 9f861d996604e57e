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
    /// Bytes of frames queued to one agent connection: a frame that would take it past
    /// this drops the connection as too slow, and from a quarter of it on the queue
    /// counts as full (as at `outbound_queue`).
    pub agent_queue_bytes: usize,
    /// The same for a visitor connection (visitors are sent far less).
    pub visitor_queue_bytes: usize,
    /// Bytes of one frame the server sends that carries a list (a welcome, a page of
    /// history, an agent's `ready` or `conversation`): the list is cut to what fits.
    pub max_list_frame_bytes: usize,
    /// Time a client has to finish a message once its first fragment (or a frame once
    /// its first byte) arrived; past it the connection is closed with 1008.
    pub message_deadline: Duration,
    /// Bytes queued to one connection's socket past which its writer waits.
    pub max_write_buffer_bytes: usize,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
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
            // An agent hears every message of its inboxes (up to 16 KB each): room for
            // a burst of hundreds. A visitor hears its own conversation only.
            agent_queue_bytes: 8 * 1024 * 1024,
            visitor_queue_bytes: 1024 * 1024,
            // Dozens of the longest messages, a thousand usual ones, or the newest 500
            // conversations of a usual inbox (about 650 bytes a summary) in `ready`.
            max_list_frame_bytes: 512 * 1024,
            message_deadline: Duration::from_secs(10),
            max_write_buffer_bytes: 256 * 1024,
            max_connections: 50_000,
            max_connections_per_ip: 50_000,
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
        }
    }
}
