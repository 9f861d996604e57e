//! The outbox and its delivery: emails persisted in the `outbox` tree, handed to an SMTP
//! server with lettre, retried with capped exponential backoff across restarts.
//!
//! Owns every state change of an `OutboxRecord` (`Queued` → `Sending` → `Sent`, back to
//! `Queued` for a retry, or `Failed`), the `Delivery` deadlines that drive them, the
//! SMTP URL and address checks the command line runs, and the listing behind
//! `frontdesk outbox list`. It knows nothing of conversations: what an email says and
//! what a conversation shows when it went out belong to `followup`.
//!
//! # Delivery policy: at most once
//!
//! An email must never reach the visitor twice. Each attempt is recorded durably as
//! `Sending` (with `attempts + 1`) *before* the first byte goes to the server, and its
//! outcome is recorded after. That leaves one window: the process dies while sending.
//! A record found in `Sending` after a restart may or may not have been accepted, and
//! SMTP gives no way to ask; so it is never sent again but marked `Failed` with
//! "interrupted; may have been sent" (an operator can see it in `outbox list`). The
//! same holds for a connection that breaks after the message was handed over within
//! one run. Only failures that prove the server did not take the message are retried:
//! connecting, TLS or login failing before the envelope, or a `4xx` reply. A `5xx`
//! reply fails the email at once. Every email also carries a stable
//! `Message-ID: <outbox-id@frontdesk>`, so that if a copy ever were duplicated by a
//! relay, receivers could recognise it.
//!
//! The crash window is closed without scanning the outbox at start: the write that
//! marks an attempt `Sending` also persists a `Delivery` deadline due at once (a
//! "watchdog"), which this process never schedules in memory and the write that records
//! the outcome deletes. Only a restart loads it; firing it finds the record still
//! `Sending` and fails it. Start-up cost grows with pending emails, not with sent ones.
//!
//! Without `--smtp-url` a due delivery does nothing and its deadline stays persisted,
//! so the email waits as `Queued` and goes out after a start with SMTP configured.
//!
//! It must not block a worker thread on the network beyond the configured timeouts, and
//! must never log passwords or email bodies.
//!
//! # Layout
//!
//! This file is the outbox: its records ([`queued`]) and the settings [`check`]; the
//! store's `Outbox` keeps them (enqueue, claim, record an attempt, list). [`url`] parses the SMTP server's URL, [`delivery`] is the
//! at-most-once state machine above, and `smtp` runs one SMTP session. Errors name
//! settings, not command-line flags: the command line words them.

pub mod delivery;
mod smtp;
pub mod url;

use widget_protocol::Millis;

pub use delivery::{backoff, deliver, Begin, Delivery, Ended, GaveUp, Step};
pub use smtp::Attempt;
pub use url::{Security, SmtpTarget};

use crate::config::MailConfig;
use crate::ids::{ConversationId, OutboxId};
use crate::store::records::{OutboxRecord, OutboxState};
use crate::store::StoreError;
use crate::text::one_line;

/// An address like those the settings take, for error messages.
pub const ADDRESS_EXAMPLE: &str = "Acme Support <support@acme.test>";

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(
        "the SMTP URL {url:?} is not usable: {reason} (expected {})",
        url::FORMS
    )]
    Url { url: String, reason: String },
    #[error("a sender address is required with an SMTP URL (the sender of follow-up emails, e.g. \"{ADDRESS_EXAMPLE}\")")]
    MissingFrom,
    #[error("{} {value:?} is not an email address like \"{ADDRESS_EXAMPLE}\": {reason}", which.name())]
    Address {
        which: Party,
        value: String,
        reason: String,
    },
    #[error("the public URL {0:?} must start with http:// or https://")]
    PublicUrl(String),
    #[error("cannot build the email: {0}")]
    Build(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whose address a [`MailError::Address`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The sender of every email (`MailConfig::from`).
    Sender,
    /// Where replies go (`MailConfig::reply_to`).
    ReplyTo,
    /// The visitor an email is for.
    Recipient,
}

impl Party {
    /// How an error names it; the recipient's wording is stored in the outbox.
    pub fn name(self) -> &'static str {
        match self {
            Party::Sender => "the sender",
            Party::ReplyTo => "the reply-to address",
            Party::Recipient => "the recipient",
        }
    }
}

/// Checks the mail settings once, for the command line: a usable SMTP URL, a sender
/// with it, addresses that parse, an http(s) public URL.
pub fn check(c: &MailConfig) -> Result<(), MailError> {
    smtp::Sender::from_config(c)?;
    if let Some(from) = &c.from {
        smtp::mailbox(Party::Sender, from)?;
    }
    if let Some(r) = &c.reply_to {
        smtp::mailbox(Party::ReplyTo, r)?;
    }
    if let Some(u) = &c.public_url {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            return Err(MailError::PublicUrl(u.clone()));
        }
    }
    Ok(())
}

/// An email to put in the outbox.
#[derive(Debug, Clone)]
pub struct Email {
    pub conversation_id: ConversationId,
    pub to: String,
    /// One line; callers strip line breaks, and `compose` does again.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The outbox record for `email`, queued and due at once (`next_attempt_at`; the store
/// arms its `Delivery` deadline in the same write).
pub fn queued(email: Email, now: Millis) -> (OutboxId, OutboxRecord) {
    let id = OutboxId::generate();
    let record = OutboxRecord {
        id,
        message_id: format!("<{id}@frontdesk>"),
        conversation_id: email.conversation_id,
        to: email.to,
        subject: one_line(&email.subject),
        text: email.text,
        html: email.html,
        created_at: now,
        attempts: 0,
        last_error: None,
        state: OutboxState::Queued,
        next_attempt_at: Some(now.max(0)),
        sent_at: None,
    };
    (id, record)
}

/// The name of a state, as `outbox list` prints it.
pub fn state_name(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Queued => "queued",
        OutboxState::Sending => "sending",
        OutboxState::Sent => "sent",
        OutboxState::Failed => "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_wants_a_sender_with_smtp_and_valid_addresses() {
        let mut c = MailConfig::default();
        assert!(check(&c).is_ok(), "no mail at all is fine");
        c.smtp_url = Some("smtp://127.0.0.1:25".into());
        assert!(matches!(check(&c), Err(MailError::MissingFrom)));
        c.from = Some("Acme <support@acme.test>".into());
        assert!(check(&c).is_ok());
        c.reply_to = Some("not an address".into());
        assert!(matches!(check(&c), Err(MailError::Address { .. })));
        c.reply_to = None;
        c.public_url = Some("ftp://x".into());
        assert!(matches!(check(&c), Err(MailError::PublicUrl(_))));
    }
}
