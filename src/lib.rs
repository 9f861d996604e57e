//! frontdesk: the backend of an embeddable website live chat.
//!
//! Calls go one way: `server` → `transport` (HTTP and the WebSocket upgrade) →
//! `session` (visitor, agent) → the domain modules
//! (`conversations`, `contacts`, `capture`, `followup`, `mail`, `inboxes`, `agents`,
//! `signin`) → `store`.
//! Both tell other connections what happened through `fanout` (who hears what), which
//! delivers through the `hub` of live connections.
//! `main.rs` only parses the command line (`cli`) and maps errors to one line.

pub mod agents;
pub mod app;
pub mod attachments;
pub mod canned;
pub mod capture;
pub mod chatflow;
pub mod cli;
pub mod clock;
pub mod config;
pub mod contacts;
pub mod conversations;
pub mod deadlines;
pub mod error;
pub mod fanout;
pub mod fdlimit;
pub mod followup;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod hours;
pub mod hub;
pub mod identity;
pub mod ids;
pub mod inboxes;
pub mod listing;
pub mod mail;
pub mod metrics;
pub mod reading;
pub mod search;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod signin;
pub mod store;
pub mod team;
pub mod text;
pub mod throttle;
pub mod transport;
pub mod typing;
pub mod validate;

pub use config::Config;
pub use server::{ServeError, Server};
