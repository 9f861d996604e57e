//! One integration-test binary: a module per area, all on `support` (the servers and
//! clients every test shares).

mod support;

/// The agent socket: auth, the live inbox, replies, assigning visitors, access.
mod agents;
/// The widget and the pages over HTTP: compressed, validated, cached.
mod assets;
/// Attachments over HTTP: uploads' limits, types, names, rates, who may upload.
mod attachments;
/// The pages in a real browser (Chromium through tests/e2e).
mod browser;
/// Canned replies: listing, saving and deleting, who hears it, checks and limits.
mod canned;
/// Email capture: chatflow modes, the prompt's timing, contacts from emails.
mod capture;
/// The command line, run as a user runs it.
mod cli;
/// Connection caps, handshake timeouts, heartbeats.
mod connections;
/// The real binary stopped by SIGTERM or killed by SIGKILL keeps every acked message.
mod crash;
/// Follow-up emails through a real SMTP server.
mod followup;
/// The fuzz seed corpus through the server's frame decoding.
mod fuzz_corpus;
/// Hostile frames: random texts, RFC 6455 violations, early frames, closes.
mod hostile;
/// Business hours: away outside them with the next opening, their settings and checks.
mod hours;
/// A visitor never sees another's data; an agent nothing outside its inboxes.
mod isolation;
/// The conversation list: paging, filters, order, search, its index, its abuse.
mod listing;
/// What one connection may make the server hold.
mod memory;
/// `/metrics`: every series, and the counters moving.
mod metrics;
/// Origins of visitor pages and of the agent inbox.
mod origins;
/// Read cursors, unread per agent, the visitor's seen cursor, seen replies not mailed.
mod reading;
/// Links, tokens, lookalike emails, file modes, page headers, logs.
mod secrets;
/// Sign-in sessions: the cookie, auth by it, signing out, expiry, limits, refusals.
mod signin;
/// Team administration while the server runs: agents, invites, inboxes, widget settings.
mod team;
/// Shared rate limits and presence coalescing.
mod throttle;
/// Typing both ways: who hears it, its rate, its end.
mod typing;
/// The visitor socket: identity, history, tabs, idempotency, resume, bad input.
mod visitor;
/// Conversation status and assignee: set_status, assign, reopening.
mod workflow;
