//! frontdesk's wire protocol, version 1, as serde types.
//!
//! This crate is the code form of `PROTOCOL.md` at its root (itself written from the
//! project's contract). It owns the shape of every frame that crosses a frontdesk
//! WebSocket and nothing else: no I/O, no runtime, no validation beyond what the types
//! say. The server, the headless clients, the load generator and the tests all speak
//! through it.
//!
//! Every frame is one JSON object tagged by `"type"` (snake_case). Unknown fields are
//! ignored, so clients and servers can grow fields without breaking each other; that
//! is why no type here uses `deny_unknown_fields`.
//!
//! ```
//! use widget_protocol::{decode, VisitorClient};
//! let frame: VisitorClient = decode(r#"{"type":"send","client_msg_id":"a","text":"Hallo"}"#).unwrap();
//! assert!(matches!(frame, VisitorClient::Send { .. }));
//! ```

pub mod agent;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod visitor;

pub use agent::{AgentClient, AgentServer, SummaryUpdates};
pub use error::{close, ErrorCode, ErrorFrame};
pub use model::*;
pub use visitor::{VisitorClient, VisitorServer, Welcome};

/// The protocol version a server speaks, sent in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Why a text frame could not be read as a client frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Reads one frame. The error says what was wrong in words a client developer can act
/// on (not JSON, unknown `type`, a missing or mistyped field); it never echoes the frame.
///
/// A frame is a JSON object. Anything else is refused here, before serde sees it: serde
/// would read a struct, and even an internally tagged enum, from a JSON array
/// (`["send","id","text"]` would be a `send`).
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    let json_ws: &[char] = &[' ', '\t', '\n', '\r'];
    if !text.trim_start_matches(json_ws).starts_with('{') {
        let valid = serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok();
        return Err(DecodeError(if valid {
            "frame does not match the protocol: a frame is a JSON object".to_string()
        } else {
            "frame is not valid JSON".to_string()
        }));
    }
    serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "frame is not valid JSON".to_string()
            }
            _ => match describe_mismatch(&e.to_string()) {
                Some(why) => format!("frame does not match the protocol: {why}"),
                None => "frame does not match the protocol".to_string(),
            },
        };
        DecodeError(what)
    })
}

/// Rewrites serde's message for a frame of the wrong shape so that it keeps what comes
/// from our types (field names, expected types and variants) and drops what came from
/// the client: serde quotes the offending value (`unknown variant `<value>``,
/// `invalid type: string "<value>"`), which would otherwise be reflected back to the
/// client and into logs. Messages of a shape not known here are dropped whole.
fn describe_mismatch(msg: &str) -> Option<String> {
    // serde_json appends the position; the value, if quoted, is before it.
    let msg = msg.rfind(" at line ").map_or(msg, |i| &msg[..i]);
    // Field names come from our types and never contain a backtick.
    for prefix in ["missing field `", "duplicate field `"] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let name = &rest[..rest.find('`')?];
            return Some(format!("{prefix}{name}`"));
        }
    }
    // `<what> <value>, expected <our text>`: our text never contains ", expected ", so
    // the last occurrence is the boundary even when the client's value contains it.
    let expected = msg.rfind(", expected ").map(|i| &msg[i..]).unwrap_or("");
    if msg.starts_with("unknown variant ") {
        return Some(format!("unknown variant{expected}"));
    }
    if msg.starts_with("invalid length ") {
        return Some(format!("invalid length{expected}"));
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            // serde's `Unexpected`: a kind ("string", "integer", "map", ...) then, for
            // scalars, the value in quotes or backticks. Keep the kind only.
            let kind = rest[..rest.find(['`', '"', ',']).unwrap_or(rest.len())].trim_end();
            let kind = if kind.chars().all(|c| c.is_ascii_lowercase() || c == ' ') {
                kind
            } else {
                "value"
            };
            return Some(format!("{prefix}{kind}{expected}"));
        }
    }
    None
}

/// Writes one frame as the JSON text of a WebSocket message.
pub fn encode<T: serde::Serialize>(frame: &T) -> String {
    // Our frame types contain only strings, numbers, bools and maps with string keys,
    // which serde_json always serializes.
    serde_json::to_string(frame).unwrap_or_else(|_| String::from("{}"))
}
