//! frontdesk's wire protocol, version 1, as serde types.
//!
//! This crate is the code form of `PROTOCOL.md` beside it (itself written from the
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
pub mod model;
pub mod visitor;

pub use agent::{AgentClient, AgentServer};
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
pub fn decode<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, DecodeError> {
    serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
                "frame is not valid JSON".to_string()
            }
            _ => {
                // serde's message names the variant or field, never the value sent.
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                format!("frame does not match the protocol: {msg}")
            }
        };
        DecodeError(what)
    })
}

/// Writes one frame as the JSON text of a WebSocket message.
pub fn encode<T: serde::Serialize>(frame: &T) -> String {
    // Our frame types contain only strings, numbers, bools and maps with string keys,
    // which serde_json always serializes.
    serde_json::to_string(frame).unwrap_or_else(|_| String::from("{}"))
}
