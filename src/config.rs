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
    /// `send` frames allowed per `rate_window` per visitor (across their connections),
    /// and `reply` frames per agent; 0 means no limit.
    pub rate_count: u32,
    pub rate_window: Duration,
    /// `send` frames from one client address (see `throttle::address_key`).
    pub send_per_address: Rate,
    /// Visitor tokens minted for one client address.
    pub new_visitors_per_address: Rate,
    /// Conversations started from one client address.
    pub new_conversations_per_address: Rate,
    /// Conversations started in one inbox.
    pub new_conversations_per_inbox: Rate,
    /// `submit_email` frames per visitor, and per client address.
    pub email_per_visitor: Rate,
    pub email_per_address: Rate,
    /// `list` frames per agent connection.
    pub list_per_connection: Rate,
    /// `mark_read` frames below a conversation's last message per agent connection.
    pub count_reads_per_connection: Rate,
    /// Team administration frames (`get_team` … `update_inbox`) per admin connection.
    pub admin_per_connection: Rate,
    /// Bytes of one attachment (`POST /api/uploads`; 413 past it).
    pub max_upload_bytes: u64,
    /// Uploads per visitor (or agent), and per client address.
    pub uploads_per_uploader: Rate,
    pub uploads_per_address: Rate,
    /// Age (by mtime) past which a stored upload no message refers to is removed.
    pub unreferenced_upload_ttl: Duration,
    /// Canned reply frames (`list_canned`, `save_canned`, `delete_canned`) per agent
    /// connection.
    pub canned_per_connection: Rate,
    /// `POST /api/session` requests (sign-in attempts) from one client address.
    pub sign_in_per_address: Rate,
    /// Keys each shared limit tracks at most; past it, new keys share one bucket.
    pub throttle_max_keys: usize,
    /// How long a visitor who lost their last connection still counts as online: one
    /// who comes back within it causes no presence update to agents.
    pub presence_grace: Duration,
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
    /// `typing` frames forwarded per connection (more are dropped silently).
    pub typing: Rate,
    /// How long a typing state lasts unless renewed.
    pub typing_expiry: Duration,
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
            // A shop's office or a household behind one address stays well inside these.
            send_per_address: Rate::new(120, Duration::from_secs(10)),
            new_visitors_per_address: Rate::new(100, Duration::from_secs(600)),
            new_conversations_per_address: Rate::new(20, Duration::from_secs(600)),
            new_conversations_per_inbox: Rate::new(600, Duration::from_secs(600)),
            email_per_visitor: Rate::new(5, Duration::from_secs(600)),
            email_per_address: Rate::new(30, Duration::from_secs(600)),
            // Paging as an agent scrolls and searching as they type, with room to spare.
            list_per_connection: Rate::new(20, Duration::from_secs(10)),
            // The inbox page reads to the last message; below it is rare.
            count_reads_per_connection: Rate::new(20, Duration::from_secs(10)),
            // A person editing settings, never a script's flood of writes.
            admin_per_connection: Rate::new(20, Duration::from_secs(10)),
            // A screenshot or a PDF now and then; a handful in a row when pasting.
            max_upload_bytes: 10 * 1024 * 1024,
            uploads_per_uploader: Rate::new(10, Duration::from_secs(60)),
            uploads_per_address: Rate::new(60, Duration::from_secs(600)),
            // Long enough to attach what one uploaded, short enough to bound the disk.
            unreferenced_upload_ttl: Duration::from_secs(24 * 3600),
            // A page loading the list, an admin editing a few replies.
            canned_per_connection: Rate::new(30, Duration::from_secs(10)),
            // A person typing a token, with retries; never a guessing loop.
            sign_in_per_address: Rate::new(10, Duration::from_secs(60)),
            throttle_max_keys: 100_000,
            presence_grace: Duration::from_millis(2500),
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
            // A household or an office behind one address.
            max_connections_per_ip: 200,
            max_sockets: None,
            heartbeat: Duration::from_secs(20),
            typing: Rate::new(2, Duration::from_secs(1)),
            typing_expiry: Duration::from_secs(6),
        }
    }
}

/// `count` events per `window` for one key: a burst of `count`, then one more every
/// `window / count`. A count of 0 means no limit. Written and parsed as `COUNT/WINDOW`
/// (`20/10s`, `5/10m`, `600/1h`, `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub window: Duration,
}

impl Rate {
    pub const fn new(count: u32, window: Duration) -> Self {
        Rate { count, window }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.window.as_millis();
        let (n, unit) = match ms {
            _ if ms % 3_600_000 == 0 && ms > 0 => (ms / 3_600_000, "h"),
            _ if ms % 60_000 == 0 && ms > 0 => (ms / 60_000, "min"),
            _ if ms % 1_000 == 0 => (ms / 1_000, "s"),
            _ => (ms, "ms"),
        };
        write!(f, "{} per {n} {unit}", self.count)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("expected COUNT/WINDOW such as 20/10s, 5/10m or 600/1h (or 0 for no limit), got {0:?}")]
pub struct BadRate(String);

impl std::str::FromStr for Rate {
    type Err = BadRate;
    fn from_str(s: &str) -> Result<Self, BadRate> {
        let bad = || BadRate(s.to_string());
        if s.trim() == "0" {
            return Ok(Rate::new(0, Duration::from_secs(1)));
        }
        let (count, window) = s.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let split = window.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (n, unit) = window.split_at(split);
        let n: u64 = n.parse().map_err(|_| bad())?;
        let window = match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" | "min" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            _ => return Err(bad()),
        };
        if window.is_zero() {
            return Err(bad());
        }
        Ok(Rate::new(count, window))
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
    /// Where follow-up emails link when the visitor's page is not on one of the
    /// inbox's origins (see `followup::continue_link`).
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
    /// How long a visitor token (and its cookie) lives, and when one in use is renewed.
    pub token_lifetime: crate::identity::TokenLifetime,
    /// How long a sign-in session (and its cookie) lasts from sign-in.
    pub sign_in_lifetime: Duration,
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
            token_lifetime: crate::identity::TokenLifetime::default(),
            sign_in_lifetime: crate::signin::DEFAULT_LIFETIME,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "5/10m".parse().expect("parses");
        assert_eq!(r, Rate::new(5, Duration::from_secs(600)));
        assert_eq!(r.to_string(), "5 per 10 min");
        assert_eq!(
            "120/10s".parse::<Rate>().expect("parses").to_string(),
            "120 per 10 s"
        );
        assert_eq!(
            "3/500ms"
                .parse::<Rate>()
                .expect("parses")
                .window
                .as_millis(),
            500
        );
        assert_eq!(
            "600/1h".parse::<Rate>().expect("parses").to_string(),
            "600 per 1 h"
        );
        assert_eq!("0".parse::<Rate>().expect("parses").count, 0);
        for bad in ["", "5", "5/", "5/10", "x/10s", "5/0s", "5/10y", "-1/10s"] {
            assert!(bad.parse::<Rate>().is_err(), "{bad:?}");
        }
    }
}
