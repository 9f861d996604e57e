//! Follow-up emails to visitors who left before reading agent replies.
//!
//! `conversations::append_agent` schedules a `FollowUp` deadline (`follow_up_due`) when
//! an agent replies to an offline visitor with a known email; from there this module
//! owns the conversation's follow-up state: marking replies seen when the visitor comes
//! back (`seen`), correcting a reply's fate when the visitor came or went between its
//! store and its delivery (`reached`, `missed`), and, when the deadline falls due,
//! writing one email with every unseen reply into the outbox in the same write that
//! clears `follow_up_due` and moves `seen_seq` (so one batch of replies is one email,
//! and the next batch starts fresh).
//! It also tells the conversation (a `system` message, to agents and to the visitor's
//! history) when the email went out or could not.
//!
//! Which replies go into the email, to whom, and with which link is decided here
//! (`compose`); what the email says is [`email`]'s ([`render`]); how it is delivered
//! (SMTP, retries, at-most-once) is `mail`'s. It must never show a visitor contact data
//! they did not type, so the system message names no address.

pub mod email;
pub mod state;

use uuid::Uuid;
use widget_protocol::{AuthorKind, Message, Millis};

use crate::app::App;
use crate::conversations::{self, parse_id, Cut};
use crate::fanout::{self, Event, SummaryNews};
use crate::mail::{self, Delivery, Email, GaveUp};
use crate::metrics::Metrics;
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::ConversationRecord;
use crate::store::{Batch, Kv, StoreError, Tree};

pub use email::{continue_link, render, Content};

pub const SENT: &str = "Follow-up email sent to the visitor";
pub const UNDELIVERABLE: &str = "The follow-up email to the visitor could not be delivered";
pub const MAYBE_SENT: &str =
    "Sending the follow-up email to the visitor was interrupted; it may not have arrived";

/// Unseen replies gathered into one email, at most.
const MAX_REPLIES: usize = 200;

/// A `FollowUp` or `Delivery` deadline fell due. Runs as its own task, like
/// `capture::fire`, so slow SMTP servers never hold up the deadline queue.
pub fn fire(app: &App, kind: DeadlineKind, subject: Uuid, due: u64) {
    let app = app.clone();
    tokio::spawn(async move {
        match kind {
            DeadlineKind::FollowUp => follow_up(&app, subject, due).await,
            DeadlineKind::Delivery => deliver(&app, subject, due).await,
            DeadlineKind::Prompt => {}
        }
    });
}

/// After a `welcome`: the visitor sees every message, so a pending follow-up is
/// cancelled and the next one starts after what they have now.
pub async fn seen(app: &App, conv: Uuid) {
    change(app, conv, "that a visitor saw the replies", move |b, c| {
        cancel(b, c, conv);
        c.seen_seq = c.last_seq;
        true
    })
    .await
}

/// An agent's reply stored while the visitor was offline reached a connection of theirs
/// after all (they came back between the store and the delivery): it counts as seen,
/// as it would have had they been online a moment earlier, and a follow-up pending only
/// for it is cancelled.
pub async fn reached(app: &App, conv: Uuid, seq: u64) {
    change(app, conv, "a reply the visitor saw", move |b, c| {
        if c.seen_seq >= seq {
            return false;
        }
        c.seen_seq = seq;
        if c.seen_seq >= c.last_seq {
            cancel(b, c, conv);
        }
        true
    })
    .await
}

/// Changes a conversation's follow-up state in one write; `f` returns whether it changed
/// anything to store.
async fn change(
    app: &App,
    conv: Uuid,
    what: &str,
    f: impl FnOnce(&mut Batch, &mut ConversationRecord) -> bool + Send + 'static,
) {
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            if let Some(mut c) = conversations::load(kv, conv)? {
                if f(&mut b, &mut c) {
                    b.put_json(Tree::Conversations, keys::id(conv), &c);
                }
            }
            Ok((b, ()))
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "could not record {what}");
    }
}

/// An agent's reply stored as seen while the visitor was online reached none of their
/// connections (they left between the store and the delivery): it is unseen after all,
/// and gets a follow-up like a reply to an offline visitor. Nothing changes when they
/// are back by the time this runs: their welcome, read after the reply was stored,
/// had it.
pub async fn missed(app: &App, conv: Uuid, seq: u64, delay_ms: u64) {
    let inner = app.clone();
    let now = app.now();
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut c) = conversations::load(kv, conv)? else {
                return Ok((b, None));
            };
            if conversations::visitor_key(&c).is_some_and(|k| inner.hub.visitor_online(&k)) {
                return Ok((b, None));
            }
            c.seen_seq = c.seen_seq.min(seq.saturating_sub(1));
            let armed = conversations::arm_follow_up(kv, &mut b, conv, &mut c, now, delay_ms);
            b.put_json(Tree::Conversations, keys::id(conv), &c);
            Ok((b, armed))
        })
        .await;
    match r {
        Ok(Some((due, kind))) => app.deadlines.schedule(due, kind, conv),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not follow up a reply the visitor missed"),
    }
}

/// Drops the conversation's pending follow-up, if any, and its deadline.
fn cancel(b: &mut Batch, c: &mut ConversationRecord, conv: Uuid) {
    if let Some(due) = c.follow_up_due.take() {
        b.delete(
            Tree::Deadlines,
            keys::deadline(due.max(0) as u64, DeadlineKind::FollowUp, conv),
        );
    }
}

/// Whether `seen` has anything to record for this conversation.
pub fn has_unseen(conv: &ConversationRecord) -> bool {
    conv.follow_up_due.is_some() || conv.seen_seq < conv.last_seq
}

async fn follow_up(app: &App, conv: Uuid, due: u64) {
    let inner = app.clone();
    let now = app.now();
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut c) =
                conversations::fell_due(kv, &mut b, due, DeadlineKind::FollowUp, conv)?
            else {
                return Ok((b, None));
            };
            if c.follow_up_due != Some(due as Millis) {
                return Ok((b, None));
            }
            let email = compose(kv, &inner, conv, &c)?;
            c.follow_up_due = None;
            c.seen_seq = c.last_seq;
            b.put_json(Tree::Conversations, keys::id(conv), &c);
            let queued = email.map(|e| mail::enqueue(&mut b, e, now));
            Ok((b, queued))
        })
        .await;
    match r {
        Ok(Some((id, due))) => app.deadlines.schedule(due, DeadlineKind::Delivery, id),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not fire a follow-up deadline"),
    }
}

/// The email for a conversation's unseen replies, or None when none is due: the visitor
/// is online (they read the replies), the follow-up was turned off, no address is
/// known, or there is no agent reply after `seen_seq`.
fn compose(
    kv: &dyn Kv,
    app: &App,
    conv_id: Uuid,
    c: &ConversationRecord,
) -> Result<Option<Email>, StoreError> {
    let Some(key) = conversations::visitor_key(c) else {
        return Ok(None);
    };
    if app.hub.visitor_online(&key) {
        return Ok(None);
    }
    let inbox = app.inboxes.get(&c.inbox);
    if inbox
        .as_ref()
        .is_some_and(|i| !i.chatflow.follow_up.enabled)
    {
        return Ok(None);
    }
    let Some(visitor) = conversations::load_visitor(kv, key.visitor)? else {
        return Ok(None);
    };
    let to = match (&visitor.email, &visitor.contact_id) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(id)) => conversations::contact(kv, id)?.map(|ct| ct.email),
        (None, None) => None,
    };
    let Some(to) = to else {
        return Ok(None);
    };
    // More than fit in one email: the newest ones.
    let (unseen, _) = conversations::after(
        kv,
        conv_id,
        c.seen_seq,
        Cut::count(MAX_REPLIES),
        MAX_REPLIES,
    )?;
    let replies: Vec<Message> = unseen
        .decode()?
        .into_iter()
        .filter(|m| m.seq > c.seen_seq && m.author.kind == AuthorKind::Agent)
        .collect();
    if replies.is_empty() {
        return Ok(None);
    }
    let recent = conversations::page(kv, conv_id, None, Cut::count(100))?
        .0
        .decode()?;
    let last_visitor = recent
        .iter()
        .rev()
        .find(|m| m.author.kind == AuthorKind::Visitor);
    let inbox_name = inbox
        .as_ref()
        .map_or_else(|| c.inbox.clone(), |i| i.name.clone());
    let origins = inbox.as_ref().map_or(&[][..], |i| i.origins.as_slice());
    let link = continue_link(
        visitor.page.and_then(|p| p.url).as_deref(),
        origins,
        app.config.mail.public_url.as_deref(),
    );
    let (subject, text, html) = render(&Content {
        inbox: &inbox_name,
        replies: &replies,
        last_visitor,
        link: link.as_deref(),
    });
    Ok(Some(Email {
        conversation_id: c.id.clone(),
        to,
        subject,
        text,
        html,
    }))
}

async fn deliver(app: &App, id: Uuid, due: u64) {
    match mail::deliver(app, id, due).await {
        Ok(Delivery::Nothing) => {}
        Ok(Delivery::Retry { due }) => app.deadlines.schedule(due, DeadlineKind::Delivery, id),
        Ok(Delivery::Sent { conversation_id }) => {
            Metrics::inc(&app.metrics.follow_ups_sent);
            announce(app, &conversation_id, SENT).await;
        }
        Ok(Delivery::Failed {
            conversation_id,
            why,
        }) => {
            let text = match why {
                GaveUp::Undeliverable => UNDELIVERABLE,
                GaveUp::MaybeSent => MAYBE_SENT,
            };
            announce(app, &conversation_id, text).await;
        }
        Err(e) => tracing::error!(email = %id, error = %e, "could not deliver an email"),
    }
}

/// A `system` message in the conversation, to its agents (with the new summary) and to
/// any open connection of the visitor; their history keeps it.
async fn announce(app: &App, conversation_id: &str, text: &str) {
    let Some(conv) = parse_id(conversation_id) else {
        return;
    };
    let appended = match app
        .store
        .append_system(conv, text.to_string(), app.now())
        .await
    {
        Ok(Some(a)) => a,
        Ok(None) => return,
        Err(e) => {
            tracing::error!(error = %e, "could not record a follow-up in its conversation");
            return;
        }
    };
    let conv = &appended.conversation;
    let message = &appended.message;
    fanout::publish(app, &Event::SystemMessage { conv, message });
    let news = SummaryNews::More;
    fanout::publish(app, &Event::SummaryChanged { conv, news });
}
