//! The `error` frame, its codes, and the close codes a server may use.

use serde::{Deserialize, Serialize};

/// `{"type":"error","code":"invalid_email","message":"…","ref":"client_msg_id or null"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorFrame {
    pub code: ErrorCode,
    /// Human-readable text for the client developer; never contains internals.
    pub message: String,
    /// The `client_msg_id` of the frame this answers, when it had one.
    #[serde(rename = "ref", default)]
    pub reference: Option<String>,
}

impl ErrorFrame {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorFrame {
            code,
            message: message.into(),
            reference: None,
        }
    }

    pub fn with_ref(mut self, reference: Option<String>) -> Self {
        self.reference = reference;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadFrame,
    NotAuthenticated,
    InvalidEmail,
    InvalidName,
    MessageTooLong,
    EmptyMessage,
    RateLimited,
    NotFound,
    Forbidden,
    ContactNotFound,
    ContactExists,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::BadFrame,
        ErrorCode::NotAuthenticated,
        ErrorCode::InvalidEmail,
        ErrorCode::InvalidName,
        ErrorCode::MessageTooLong,
        ErrorCode::EmptyMessage,
        ErrorCode::RateLimited,
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::ContactNotFound,
        ErrorCode::ContactExists,
        ErrorCode::Internal,
    ];

    /// The code as it appears on the wire, e.g. `"bad_frame"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::NotAuthenticated => "not_authenticated",
            ErrorCode::InvalidEmail => "invalid_email",
            ErrorCode::InvalidName => "invalid_name",
            ErrorCode::MessageTooLong => "message_too_long",
            ErrorCode::EmptyMessage => "empty_message",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ContactNotFound => "contact_not_found",
            ErrorCode::ContactExists => "contact_exists",
            ErrorCode::Internal => "internal",
        }
    }
}

/// WebSocket close codes the server uses.
pub mod close {
    /// The agent's token did not verify (or was revoked); also (extension) the agent was
    /// revoked while connected.
    pub const BAD_TOKEN: u16 = 4001;
    /// The page's origin is not allowed for this inbox.
    pub const ORIGIN_NOT_ALLOWED: u16 = 4003;
    /// No `hello` / `auth` within the deadline (10 s by default).
    pub const HELLO_TIMEOUT: u16 = 4008;
    /// A frame larger than the limit (64 KiB by default).
    pub const TOO_BIG: u16 = 1009;
    /// The server is shutting down, or the client stopped answering.
    pub const GOING_AWAY: u16 = 1001;
    /// Extension: a rate limit refused the connection (a new visitor from an address
    /// over its limit); the `error` frame before it says when to retry.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// A message (or frame) not finished within the deadline of its first fragment
    /// (10 s by default): the standard "policy violation".
    pub const MESSAGE_TIMEOUT: u16 = 1008;
    /// Extension: the connection's outbound queue overflowed (the client did not read);
    /// reconnect with `resume_after`.
    pub const TOO_SLOW: u16 = 4029;
    /// Extension: an admin changed this agent's inboxes or role; reconnect at once for
    /// a fresh `ready`.
    pub const ACCESS_CHANGED: u16 = 4010;
}
