//! Transport: HTTP routes and the WebSocket upgrade on one port.
//!
//! The only place that knows hyper and WebSocket framing. It answers plain HTTP (pages,
//! health, metrics, signing in and out: `sign_in`), checks a WebSocket handshake (path, inbox, origin, connection caps,
//! the visitor cookie, the agent's sign-in cookie) before upgrading, frames messages under our limits (`ws`), and
//! hands the session a socket of protocol-level [`Inbound`]/[`Outbound`] values. It
//! must not interpret messages.

mod assets;
mod encoding;
pub mod http;
pub mod limiter;
pub mod proxy;
mod sign_in;
pub mod uploads;
mod ws;

pub use limiter::Limiter;
