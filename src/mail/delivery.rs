//! The at-most-once delivery of one outbox email, as the module `mail` describes it: a
//! due `Delivery` deadline [`begin`]s an attempt (recorded `Sending` with its watchdog
//! before the first byte leaves), `smtp::attempt` runs it, and
//! [`finish`] records its outcome (sent, queued again after [`backoff`], or failed).
//!
//! It owns every change of an `OutboxRecord`'s state after `enqueue`. It must not retry
//! anything the server may have taken, and logs errors only without the recipient.

use std::time::Duration;

use uuid::Uuid;
use widget_protocol::Millis;

use super::smtp::{self, without_address, Attempt, Sender};
use super::{get, MailError};
use crate::app::App;
use crate::config::MailConfig;
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::{OutboxRecord, OutboxState};
use crate::store::{Batch, Kv, StoreError, Tree};

/// Why an email will not be sent (again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GaveUp {
    /// The server refused it for good, or every attempt failed.
    Undeliverable,
    /// Sending was interrupted after the message may have reached the server.
    MaybeSent,
}

/// What a due delivery deadline led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A stale deadline, or no SMTP server configured (the email waits).
    Nothing,
    Sent {
        conversation_id: String,
    },
    /// Schedule the next attempt at this time.
    Retry {
        due: u64,
    },
    Failed {
        conversation_id: String,
        why: GaveUp,
    },
}

/// Backoff before attempt `attempts + 1`: `base · 2^(attempts-1)`, at most `max`.
pub fn backoff(c: &MailConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    c.retry_base.saturating_mul(factor).min(c.retry_max)
}

/// What a due deadline finds the email ready for.
enum Begin {
    /// Nothing to do; apply the batch (it may delete a stale deadline).
    Nothing,
    /// No SMTP server: leave everything as it is.
    Waiting,
    Send(OutboxRecord),
    /// A watchdog found the record still `Sending`: it was interrupted by a restart.
    Interrupted(OutboxRecord),
}

/// A `Delivery` deadline for email `id` fell due: attempt it, record the outcome.
pub async fn deliver(app: &App, id: Uuid, due: u64) -> Result<Delivery, MailError> {
    let sender = Sender::from_config(&app.config.mail)?;
    let configured = sender.is_some();
    let now = app.now();
    let begin = app
        .writer
        .write(move |kv| begin(kv, id, due, configured, now))
        .await?;
    let record = match begin {
        Begin::Nothing => return Ok(Delivery::Nothing),
        Begin::Waiting => {
            tracing::info!(email = %id, "no --smtp-url: the email waits in the outbox");
            return Ok(Delivery::Nothing);
        }
        Begin::Interrupted(r) => {
            tracing::warn!(email = %id, "an email was being sent when the server stopped; it may have arrived, so it is not sent again");
            return Ok(Delivery::Failed {
                conversation_id: r.conversation_id,
                why: GaveUp::MaybeSent,
            });
        }
        Begin::Send(r) => r,
    };
    let Some(sender) = sender else {
        return Ok(Delivery::Nothing);
    };
    let outcome = smtp::attempt(&sender, &record).await;
    finish(app, id, &record.to, record.attempts, outcome).await
}

/// The write a due deadline makes: a queued email becomes `Sending` with one more
/// attempt and its watchdog deadline; one still `Sending` was interrupted and fails; a
/// stale deadline is deleted.
fn begin(
    kv: &dyn Kv,
    id: Uuid,
    due: u64,
    configured: bool,
    now: Millis,
) -> Result<(Batch, Begin), StoreError> {
    let mut b = Batch::default();
    let key = keys::deadline(due, DeadlineKind::Delivery, id);
    let Some(mut r) = get(kv, id)? else {
        b.delete(Tree::Deadlines, key);
        return Ok((b, Begin::Nothing));
    };
    if r.next_attempt_at != Some(due as Millis) {
        b.delete(Tree::Deadlines, key);
        return Ok((b, Begin::Nothing));
    }
    match r.state {
        OutboxState::Queued if !configured => Ok((b, Begin::Waiting)),
        OutboxState::Queued => {
            b.delete(Tree::Deadlines, key);
            r.state = OutboxState::Sending;
            r.attempts += 1;
            // The watchdog: only a restart ever loads it (see the module docs of `mail`).
            let watchdog = (now.max(0) as u64).max(due + 1);
            r.next_attempt_at = Some(watchdog as Millis);
            b.put(
                Tree::Deadlines,
                keys::deadline(watchdog, DeadlineKind::Delivery, id),
                Vec::new(),
            );
            b.put_json(Tree::Outbox, keys::id(id), &r);
            Ok((b, Begin::Send(r)))
        }
        OutboxState::Sending => {
            b.delete(Tree::Deadlines, key);
            r.state = OutboxState::Failed;
            r.next_attempt_at = None;
            r.last_error = Some("interrupted; may have been sent".to_string());
            b.put_json(Tree::Outbox, keys::id(id), &r);
            Ok((b, Begin::Interrupted(r)))
        }
        OutboxState::Sent | OutboxState::Failed => {
            b.delete(Tree::Deadlines, key);
            Ok((b, Begin::Nothing))
        }
    }
}

/// Records the outcome of attempt number `attempt_no`.
async fn finish(
    app: &App,
    id: Uuid,
    to: &str,
    attempt_no: u32,
    outcome: Attempt,
) -> Result<Delivery, MailError> {
    log_outcome(id, to, attempt_no, &outcome);
    let now = app.now();
    let mail = app.config.mail.clone();
    Ok(app
        .writer
        .write(move |kv| record_outcome(kv, id, attempt_no, outcome, now, &mail))
        .await?)
}

/// One log line per attempt, without the recipient's address.
fn log_outcome(id: Uuid, to: &str, attempt_no: u32, outcome: &Attempt) {
    match outcome {
        Attempt::Sent => tracing::info!(email = %id, attempt = attempt_no, "email sent"),
        Attempt::Retry(e) => {
            let e = without_address(e, to);
            tracing::warn!(email = %id, attempt = attempt_no, error = %e, "email not sent; will retry")
        }
        Attempt::Rejected(e) | Attempt::Unknown(e) => {
            let e = without_address(e, to);
            tracing::error!(email = %id, attempt = attempt_no, error = %e, "email not sent; giving up")
        }
    }
}

/// The write that ends attempt `attempt_no`: its watchdog deleted, the record settled.
fn record_outcome(
    kv: &dyn Kv,
    id: Uuid,
    attempt_no: u32,
    outcome: Attempt,
    now: Millis,
    mail: &MailConfig,
) -> Result<(Batch, Delivery), StoreError> {
    let mut b = Batch::default();
    let Some(mut r) = get(kv, id)? else {
        return Ok((b, Delivery::Nothing));
    };
    if r.state != OutboxState::Sending || r.attempts != attempt_no {
        // Someone else recorded this attempt's end (it cannot happen in one
        // process); the truth that it was sent still wins.
        if outcome == Attempt::Sent && r.state != OutboxState::Sent {
            r.state = OutboxState::Sent;
            r.sent_at = Some(now);
            b.put_json(Tree::Outbox, keys::id(id), &r);
        }
        return Ok((b, Delivery::Nothing));
    }
    if let Some(watchdog) = r.next_attempt_at.take() {
        b.delete(
            Tree::Deadlines,
            keys::deadline(watchdog.max(0) as u64, DeadlineKind::Delivery, id),
        );
    }
    let delivery = settle(&mut b, &mut r, id, outcome, now, mail);
    b.put_json(Tree::Outbox, keys::id(id), &r);
    Ok((b, delivery))
}

/// What an attempt's outcome makes of its record: sent; queued again after the backoff,
/// with the next attempt's deadline in `b`; or failed for good.
fn settle(
    b: &mut Batch,
    r: &mut OutboxRecord,
    id: Uuid,
    outcome: Attempt,
    now: Millis,
    mail: &MailConfig,
) -> Delivery {
    let conversation_id = r.conversation_id.clone();
    match outcome {
        Attempt::Sent => {
            r.state = OutboxState::Sent;
            r.sent_at = Some(now);
            r.last_error = None;
            Delivery::Sent { conversation_id }
        }
        Attempt::Retry(e) if r.attempts < mail.max_attempts => {
            let wait = backoff(mail, r.attempts).as_millis() as u64;
            let due = now.max(0) as u64 + wait;
            r.state = OutboxState::Queued;
            r.next_attempt_at = Some(due as Millis);
            r.last_error = Some(e);
            b.put(
                Tree::Deadlines,
                keys::deadline(due, DeadlineKind::Delivery, id),
                Vec::new(),
            );
            Delivery::Retry { due }
        }
        Attempt::Retry(e) => {
            r.state = OutboxState::Failed;
            r.last_error = Some(format!("gave up after {} attempts: {e}", r.attempts));
            Delivery::Failed {
                conversation_id,
                why: GaveUp::Undeliverable,
            }
        }
        Attempt::Rejected(e) => {
            r.state = OutboxState::Failed;
            r.last_error = Some(e);
            Delivery::Failed {
                conversation_id,
                why: GaveUp::Undeliverable,
            }
        }
        Attempt::Unknown(e) => {
            r.state = OutboxState::Failed;
            r.last_error = Some(format!("may have been sent: {e}"));
            Delivery::Failed {
                conversation_id,
                why: GaveUp::MaybeSent,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let c = MailConfig {
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(600),
            ..MailConfig::default()
        };
        let waits: Vec<u64> = (1..=7).map(|n| backoff(&c, n).as_secs()).collect();
        assert_eq!(waits, [30, 60, 120, 240, 480, 600, 600]);
        assert_eq!(backoff(&c, u32::MAX).as_secs(), 600);
    }
}
