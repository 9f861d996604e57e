//! The at-most-once delivery of one outbox email, as the module `mail` describes it: a
//! due `Delivery` deadline [`begin`]s an attempt (recorded `Sending` with its watchdog
//! before the first byte leaves), `smtp::attempt` runs it, and
//! [`record_outcome`] records its outcome (sent, queued again after [`backoff`], or
//! failed).
//!
//! It owns every change of an `OutboxRecord`'s state after `enqueue`, as pure steps
//! ([`begin`], [`record_outcome`]) that the store's `Outbox` carries out in one write
//! each. It must not retry anything the server may have taken, and logs errors only
//! without the recipient.

use std::time::Duration;

use widget_protocol::Millis;

use super::smtp::{self, without_address, Attempt, Sender};
use super::MailError;
use crate::app::App;
use crate::clock;
use crate::config::MailConfig;
use crate::deadlines::Change;
use crate::ids::{ConversationId, OutboxId};
use crate::store::records::{OutboxRecord, OutboxState};

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
        conversation_id: ConversationId,
    },
    /// Schedule the next attempt at this time.
    Retry {
        due: Millis,
    },
    Failed {
        conversation_id: ConversationId,
        why: GaveUp,
    },
}

/// Backoff before attempt `attempts + 1`: `base · 2^(attempts-1)`, at most `max`.
pub fn backoff(c: &MailConfig, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    c.retry_base.saturating_mul(factor).min(c.retry_max)
}

/// What a due deadline finds the email ready for.
#[derive(Debug)]
pub enum Begin {
    /// Nothing to do (the write may delete a stale deadline).
    Nothing,
    /// No SMTP server: leave everything as it is.
    Waiting,
    Send(OutboxRecord),
    /// A watchdog found the record still `Sending`: it was interrupted by a restart.
    Interrupted(OutboxRecord),
}

/// What one write does to an email: the record to store (if it changed), the changes
/// to its `Delivery` deadlines, and what the caller learns.
#[derive(Debug)]
pub struct Step<T> {
    pub record: Option<OutboxRecord>,
    pub deadlines: Vec<Change>,
    pub out: T,
}

impl<T> Step<T> {
    fn only(out: T) -> Step<T> {
        Step {
            record: None,
            deadlines: Vec::new(),
            out,
        }
    }
}

/// A `Delivery` deadline for email `id` fell due: attempt it, record the outcome.
pub async fn deliver(app: &App, id: OutboxId, due: Millis) -> Result<Delivery, MailError> {
    let sender = Sender::from_config(&app.config.mail)?;
    let configured = sender.is_some();
    let begin = app
        .outbox
        .claim_delivery(id, due, configured, app.now())
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
    log_outcome(id, &record.to, record.attempts, &outcome);
    let ended = Ended {
        attempt_no: record.attempts,
        outcome,
        now: app.now(),
        mail: app.config.mail.clone(),
    };
    Ok(app.outbox.record_attempt(id, ended).await?)
}

/// The write a due deadline `due` makes on the email `r`: a queued email becomes
/// `Sending` with one more attempt and its watchdog deadline; one still `Sending` was
/// interrupted and fails; a stale deadline is deleted.
pub fn begin(r: Option<OutboxRecord>, due: Millis, configured: bool, now: Millis) -> Step<Begin> {
    let stale = Step {
        deadlines: vec![Change::Disarm(due)],
        ..Step::only(Begin::Nothing)
    };
    let Some(mut r) = r else {
        return stale;
    };
    if r.next_attempt_at != Some(due) {
        return stale;
    }
    match r.state {
        OutboxState::Queued if !configured => Step::only(Begin::Waiting),
        OutboxState::Queued => {
            r.state = OutboxState::Sending;
            r.attempts += 1;
            // The watchdog: only a restart ever loads it (see the module docs of `mail`).
            let watchdog = now.max(0).max(due + 1);
            r.next_attempt_at = Some(watchdog);
            Step {
                record: Some(r.clone()),
                deadlines: vec![Change::Disarm(due), Change::Arm(watchdog)],
                out: Begin::Send(r),
            }
        }
        OutboxState::Sending => {
            r.state = OutboxState::Failed;
            r.next_attempt_at = None;
            r.last_error = Some("interrupted; may have been sent".to_string());
            Step {
                record: Some(r.clone()),
                out: Begin::Interrupted(r),
                ..stale
            }
        }
        OutboxState::Sent | OutboxState::Failed => stale,
    }
}

/// How an attempt ended, for the write that records it.
#[derive(Debug, Clone)]
pub struct Ended {
    pub attempt_no: u32,
    pub outcome: Attempt,
    pub now: Millis,
    /// The retry settings.
    pub mail: MailConfig,
}

/// One log line per attempt, without the recipient's address.
fn log_outcome(id: OutboxId, to: &str, attempt_no: u32, outcome: &Attempt) {
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

/// The write that ends an attempt on the email `r`: its watchdog deleted, the record
/// settled.
pub fn record_outcome(r: Option<OutboxRecord>, ended: Ended) -> Step<Delivery> {
    let Ended {
        attempt_no,
        outcome,
        now,
        mail,
    } = ended;
    let Some(mut r) = r else {
        return Step::only(Delivery::Nothing);
    };
    if r.state != OutboxState::Sending || r.attempts != attempt_no {
        // Someone else recorded this attempt's end (it cannot happen in one
        // process); the truth that it was sent still wins.
        let mut step = Step::only(Delivery::Nothing);
        if outcome == Attempt::Sent && r.state != OutboxState::Sent {
            r.state = OutboxState::Sent;
            r.sent_at = Some(now);
            step.record = Some(r);
        }
        return step;
    }
    let mut deadlines: Vec<Change> = r
        .next_attempt_at
        .take()
        .map(Change::Disarm)
        .into_iter()
        .collect();
    let delivery = settle(&mut r, outcome, now, &mail);
    if let Delivery::Retry { due } = delivery {
        deadlines.push(Change::Arm(due));
    }
    Step {
        record: Some(r),
        deadlines,
        out: delivery,
    }
}

/// What an attempt's outcome makes of its record: sent; queued again after the backoff
/// (the caller arms the next attempt's deadline); or failed for good.
fn settle(r: &mut OutboxRecord, outcome: Attempt, now: Millis, mail: &MailConfig) -> Delivery {
    let conversation_id = r.conversation_id;
    match outcome {
        Attempt::Sent => {
            r.state = OutboxState::Sent;
            r.sent_at = Some(now);
            r.last_error = None;
            Delivery::Sent { conversation_id }
        }
        Attempt::Retry(e) if r.attempts < mail.max_attempts => {
            let due = clock::after(now.max(0), backoff(mail, r.attempts));
            r.state = OutboxState::Queued;
            r.next_attempt_at = Some(due);
            r.last_error = Some(e);
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
