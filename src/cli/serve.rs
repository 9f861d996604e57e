//! `frontdesk serve`: its options, validated once into a [`Config`]. Every option's
//! `--help` line is here, and so is every check of a value against another; a bad
//! value is a [`CliError::Invalid`] naming the option.

use std::net::SocketAddr;

use clap::Args;

use super::{CliError, DataArg};
use crate::config::{Config, MailConfig, Rate};
use crate::inboxes::normalize_origin;
use crate::mail::{MailError, Party, ADDRESS_EXAMPLE};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on for HTTP and WebSocket.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub data: DataArg,
    /// Seconds between server pings; a connection silent for two is closed.
    #[arg(long, default_value_t = 20)]
    pub heartbeat_secs: u64,
    /// Mark the visitor cookie Secure (when a TLS proxy fronts the server).
    #[arg(long)]
    pub secure_cookie: bool,
    /// Days a visitor token (and its cookie) lives from its issue time, 1 to 400
    /// (browsers keep a cookie at most 400 days).
    #[arg(long, default_value_t = 395, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=400))]
    pub visitor_token_days: u32,
    /// Hours after which a visitor token in use is replaced by a fresh one for the same
    /// visitor (at least 1, less than the token's lifetime).
    #[arg(long, default_value_t = 24, value_name = "HOURS", value_parser = clap::value_parser!(u32).range(1..))]
    pub visitor_token_renew_hours: u32,
    /// Another origin allowed to open the agent socket (repeatable).
    #[arg(long = "agent-origin")]
    pub agent_origins: Vec<String>,
    /// `send` frames one visitor (across tabs and reconnects), and `reply` frames one
    /// agent, may send per 10 s (0: no limit).
    #[arg(long, default_value_t = 20)]
    pub rate_limit: u32,
    #[command(flatten)]
    pub throttle: ThrottleArgs,
    /// Most WebSocket connections in total (held below the socket cap).
    #[arg(long, default_value_t = 50_000)]
    pub max_connections: usize,
    /// Most WebSocket connections from one client address (an IPv4 address or an IPv6
    /// /64), and as many sockets besides that are not upgraded (in their HTTP handshake
    /// or on plain HTTP).
    #[arg(long, default_value_t = 200)]
    pub max_connections_per_ip: usize,
    /// Most open TCP sockets of every kind [default: the file-descriptor limit, raised
    /// to the hard limit at start, less 128 kept for the store, logs and SMTP].
    #[arg(long, value_name = "N")]
    pub max_sockets: Option<usize>,
    /// A reverse proxy (an address or a CIDR range, repeatable) whose X-Forwarded-For or
    /// Forwarded header names the client; from any other peer those headers are ignored.
    #[arg(long = "trusted-proxy", value_name = "CIDR")]
    pub trusted_proxies: Vec<String>,
    /// Most bytes of one server frame that carries a list (welcome, history, ready): a
    /// longer replay or page carries the newest messages that fit, with has_more.
    #[arg(long, default_value_t = 512 * 1024, value_name = "BYTES")]
    pub max_list_frame_bytes: usize,
    /// Most bytes of frames queued to one agent connection before it is closed as too
    /// slow (4029).
    #[arg(long, default_value_t = 8 * 1024 * 1024, value_name = "BYTES")]
    pub agent_queue_bytes: usize,
    /// Most bytes of frames queued to one visitor connection before it is closed as
    /// too slow (4029).
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub visitor_queue_bytes: usize,
    /// Seconds a client has to finish a message from its first fragment (or a frame
    /// from its first byte) before it is closed with 1008.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub message_deadline_secs: u64,
    /// SMTP server for follow-up emails:
    /// smtp://[USER:PASS@]HOST[:PORT] (plain, port 25),
    /// smtp://…?tls=starttls (STARTTLS required, port 587; ?tls=opportunistic: if offered),
    /// smtps://[USER:PASS@]HOST[:PORT] (TLS, port 465). Percent-encode @ and : in
    /// credentials. Without it, emails wait in the outbox (see `frontdesk outbox list`).
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// Sender of follow-up emails, e.g. "Acme Support <support@acme.test>" (required with --smtp-url).
    #[arg(long)]
    pub mail_from: Option<String>,
    /// Reply-To of follow-up emails.
    #[arg(long)]
    pub reply_to: Option<String>,
    /// Where follow-up emails link when the visitor's page is not on the inbox's origins.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Serve /ws/echo for WebSocket conformance tests. Never in production.
    #[arg(long, hide = true)]
    pub test_echo: bool,
}

/// Shared rate limits, each COUNT/WINDOW (a burst of COUNT, then one more every
/// WINDOW/COUNT; WINDOW in ms, s, m or h; 0: no limit). An address is an IPv4 address
/// or an IPv6 /64.
#[derive(Debug, Args)]
pub struct ThrottleArgs {
    /// `send` frames from one client address.
    #[arg(long, default_value = "120/10s", value_name = "COUNT/WINDOW")]
    pub send_rate_per_ip: Rate,
    /// New visitors (tokens minted) for one client address.
    #[arg(long, default_value = "100/10m", value_name = "COUNT/WINDOW")]
    pub new_visitors_per_ip: Rate,
    /// New conversations started from one client address.
    #[arg(long, default_value = "20/10m", value_name = "COUNT/WINDOW")]
    pub new_conversations_per_ip: Rate,
    /// New conversations started in one inbox.
    #[arg(long, default_value = "600/10m", value_name = "COUNT/WINDOW")]
    pub new_conversations_per_inbox: Rate,
    /// `submit_email` frames from one visitor.
    #[arg(long, default_value = "5/10m", value_name = "COUNT/WINDOW")]
    pub email_rate: Rate,
    /// `submit_email` frames from one client address.
    #[arg(long, default_value = "30/10m", value_name = "COUNT/WINDOW")]
    pub email_rate_per_ip: Rate,
    /// Keys (visitors, addresses, …) each shared limit tracks; past it new keys share one limit.
    #[arg(long, default_value_t = 100_000)]
    pub throttle_max_keys: usize,
    /// Milliseconds a visitor's departure is held before agents hear of it (a reload or
    /// reconnect within it is not announced at all; 0: announce at once).
    #[arg(long, default_value_t = 2500)]
    pub presence_grace_ms: u64,
    /// `typing` frames forwarded from one connection (more are dropped silently).
    #[arg(long, default_value = "2/1s", value_name = "COUNT/WINDOW")]
    pub typing_rate: Rate,
    /// Milliseconds a typing state lasts unless renewed (then `active: false` is sent).
    #[arg(long, default_value_t = 6000)]
    pub typing_expiry_ms: u64,
    /// Bytes of one attachment upload (413 past it).
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    pub max_upload_bytes: u64,
    /// Attachment uploads from one visitor or agent.
    #[arg(long, default_value = "10/1m", value_name = "COUNT/WINDOW")]
    pub upload_rate: Rate,
    /// Attachment uploads from one client address.
    #[arg(long, default_value = "60/10m", value_name = "COUNT/WINDOW")]
    pub upload_rate_per_ip: Rate,
}

impl ThrottleArgs {
    fn apply(&self, l: &mut crate::config::Limits) {
        l.send_per_address = self.send_rate_per_ip;
        l.new_visitors_per_address = self.new_visitors_per_ip;
        l.new_conversations_per_address = self.new_conversations_per_ip;
        l.new_conversations_per_inbox = self.new_conversations_per_inbox;
        l.email_per_visitor = self.email_rate;
        l.email_per_address = self.email_rate_per_ip;
        l.throttle_max_keys = self.throttle_max_keys.max(1);
        l.presence_grace = std::time::Duration::from_millis(self.presence_grace_ms);
        l.typing = self.typing_rate;
        l.typing_expiry = std::time::Duration::from_millis(self.typing_expiry_ms.max(1));
        l.max_upload_bytes = self.max_upload_bytes;
        l.uploads_per_uploader = self.upload_rate;
        l.uploads_per_address = self.upload_rate_per_ip;
    }
}

impl ServeArgs {
    pub fn into_config(self) -> Result<Config, CliError> {
        let mut c = Config::new(self.listen, self.data.data.clone());
        if self.heartbeat_secs == 0 {
            return Err(CliError::Invalid(
                "--heartbeat-secs must be at least 1".into(),
            ));
        }
        c.limits.heartbeat = std::time::Duration::from_secs(self.heartbeat_secs);
        self.memory_limits(&mut c.limits)?;
        c.limits.max_connections = self.max_connections;
        c.limits.rate_count = self.rate_limit;
        self.throttle.apply(&mut c.limits);
        c.limits.max_connections_per_ip = self.max_connections_per_ip;
        c.limits.max_sockets = self.max_sockets;
        for p in &self.trusted_proxies {
            c.trusted_proxies.push(parse_proxy(p)?);
        }
        c.secure_cookie = self.secure_cookie;
        c.token_lifetime = self.token_lifetime()?;
        for o in &self.agent_origins {
            let n = normalize_origin(o).ok_or_else(|| {
                CliError::Invalid(format!(
                    "--agent-origin {o:?} is not an origin like https://app.example.com"
                ))
            })?;
            c.agent_origins.push(n);
        }
        c.mail = MailConfig {
            smtp_url: self.smtp_url,
            from: self.mail_from,
            reply_to: self.reply_to,
            public_url: self.public_url,
            ..MailConfig::default()
        };
        crate::mail::check(&c.mail).map_err(mail_invalid)?;
        c.test_echo = self.test_echo;
        Ok(c)
    }
}

/// A mail setting's problem, said with the flag that holds the setting.
fn mail_invalid(e: MailError) -> CliError {
    let flag = |which| match which {
        Party::Sender => "--mail-from",
        Party::ReplyTo => "--reply-to",
        Party::Recipient => Party::Recipient.name(),
    };
    CliError::Invalid(match e {
        MailError::Url { url, reason } => format!(
            "--smtp-url {url:?} is not usable: {reason} (expected {})",
            crate::mail::url::FORMS
        ),
        MailError::MissingFrom => format!(
            "--mail-from is required with --smtp-url (the sender of follow-up emails, e.g. \"{ADDRESS_EXAMPLE}\")"
        ),
        MailError::Address {
            which,
            value,
            reason,
        } => format!(
            "{} {value:?} is not an email address like \"{ADDRESS_EXAMPLE}\": {reason}",
            flag(which)
        ),
        MailError::PublicUrl(u) => {
            format!("--public-url {u:?} must start with http:// or https://")
        }
        other => other.to_string(),
    })
}

/// `--trusted-proxy`: `10.0.0.0/8`, `2001:db8::/32`, or a single address.
fn parse_proxy(s: &str) -> Result<ipnet::IpNet, CliError> {
    crate::config::parse_trusted_proxy(s).ok_or_else(|| {
        CliError::Invalid(format!(
            "--trusted-proxy {s:?} is not an address or a range like 10.0.0.0/8"
        ))
    })
}

/// Raises the soft descriptor limit to the hard one, and says what it is now.
pub(super) fn raise_fd_limit() {
    match crate::fdlimit::raise() {
        Ok(n) if n.soft > n.before => tracing::info!(
            from = n.before,
            to = n.soft,
            hard = n.hard,
            "raised the file-descriptor limit"
        ),
        Ok(n) => tracing::info!(soft = n.soft, hard = n.hard, "file-descriptor limit"),
        Err(e) => tracing::warn!(error = %e, "keeping the file-descriptor limit as it is"),
    }
}

/// The least a list frame may take: the longest message (4000 characters, each up to
/// six bytes as escaped JSON) and the rest of its frame, so that paging moves on.
const MIN_LIST_FRAME_BYTES: usize = 32 * 1024;
/// The least a connection's queue may take: a few frames.
const MIN_QUEUE_BYTES: usize = 64 * 1024;

impl ServeArgs {
    /// The visitor token's lifetime and renewal age, checked against each other.
    fn token_lifetime(&self) -> Result<crate::identity::TokenLifetime, CliError> {
        const HOUR_MS: i64 = 3_600_000;
        let valid_ms = i64::from(self.visitor_token_days) * 24 * HOUR_MS;
        let renew_after_ms = i64::from(self.visitor_token_renew_hours) * HOUR_MS;
        if renew_after_ms >= valid_ms {
            return Err(CliError::Invalid(
                "--visitor-token-renew-hours must be less than --visitor-token-days".into(),
            ));
        }
        Ok(crate::identity::TokenLifetime {
            valid_ms,
            renew_after_ms,
        })
    }

    /// The byte budgets of frames and queues, and the deadline of a message.
    fn memory_limits(&self, l: &mut crate::config::Limits) -> Result<(), CliError> {
        if self.max_list_frame_bytes < MIN_LIST_FRAME_BYTES {
            return Err(CliError::Invalid(format!(
                "--max-list-frame-bytes must be at least {MIN_LIST_FRAME_BYTES}"
            )));
        }
        for (name, v) in [
            ("--agent-queue-bytes", self.agent_queue_bytes),
            ("--visitor-queue-bytes", self.visitor_queue_bytes),
        ] {
            if v < MIN_QUEUE_BYTES {
                return Err(CliError::Invalid(format!(
                    "{name} must be at least {MIN_QUEUE_BYTES}"
                )));
            }
        }
        if self.message_deadline_secs == 0 {
            return Err(CliError::Invalid(
                "--message-deadline-secs must be at least 1".into(),
            ));
        }
        l.max_list_frame_bytes = self.max_list_frame_bytes;
        l.agent_queue_bytes = self.agent_queue_bytes;
        l.visitor_queue_bytes = self.visitor_queue_bytes;
        l.message_deadline = std::time::Duration::from_secs(self.message_deadline_secs);
        Ok(())
    }
}
