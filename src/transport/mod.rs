//! Transport: HTTP routes and the WebSocket upgrade on one port.
//!
//! The only place that knows hyper and tungstenite. It answers plain HTTP (pages,
//! health, metrics), checks a WebSocket handshake (path, inbox, origin, connection caps,
//! the visitor cookie) before upgrading, configures tungstenite from our limits, and
//! hands the session a socket of protocol-level [`Inbound`]/[`Outbound`] values. It
//! must not interpret frames.

mod assets;
pub mod http;
mod limiter;
mod ws;

pub use limiter::Limiter;
