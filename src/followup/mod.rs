//! Follow-up emails to visitors who left before reading agent replies.
//!
//! The follow-up's rules are its state machine, [`state::FollowUp::step`]: an agent's
//! reply to an offline visitor with a known email arms a `FollowUp` deadline; the
//! visitor coming back (`visitor_back`) marks every reply seen; a reply that reached
//! them, or missed them, after all (`reply_delivered`) corrects its fate; and when the
//! deadline falls due, one email with every unseen reply goes into the outbox in the
//! same write that clears `follow_up_due` and moves `seen_seq` (so one batch of replies
//! is one email, and the next batch starts fresh). This module tells the store what
//! happened (`Store::follow_up_event`, `Store::follow_up_due`) and handles what the
//! writes return; it decides nothing outside the machine.
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
use crate::capture;
use crate::conversations::{self, Cut};
use crate::fanout::{self, Event, SummaryNews};
use crate::hub::VisitorKey;
use crate::ids::{ConversationId, OutboxId};
use crate::mail::{self, Delivery, Email, GaveUp};
use crate::metrics::Metrics;
use crate::store::api::Reads;
use crate::store::keys::DeadlineKind;
use crate::store::records::ConversationRecord;
use crate::store::StoreError;
use state::{FollowUp, FollowUpNews};

pub use email::{continue_link, render, Content};

pub const SENT: &str = "Follow-up email sent to the visitor";
pub const UNDELIVERABLE: &str = "The follow-up email to the visitor could not be delivered";
pub const MAYBE_SENT: &str =
    "Sending the follow-up email to the visitor was interrupted; it may not have arrived";

/// Unseen replies gathered into one email, at most.
const MAX_REPLIES: usize = 200;

/// A `FollowUp` or `Delivery` deadline fell due. Runs as its own task, like
/// `capture::fire`, so slow SMTP servers never hold up the deadline queue.
pub fn fire(app: &App, kind: DeadlineKind, subject: Uuid, due: Millis) {
    let app = app.clone();
    tokio::spawn(async move {
        match kind {
            DeadlineKind::FollowUp => follow_up(&app, subject.into(), due).await,
            DeadlineKind::Delivery => deliver(&app, subject.into(), due).await,
            DeadlineKind::Prompt => {}
        }
    });
}

/// After a `welcome` of `conv`: the prompt owed to the visitor is sent, and, as they
/// now see every message, a pending follow-up is cancelled and the next one starts
/// after what they have.
pub async fn visitor_back(app: &App, key: &VisitorKey, conv: &ConversationRecord) {
    capture::visitor_back(app, key, conv).await;
    if FollowUp::unseen_in(conv) {
        news(app, conv.id, FollowUpNews::Welcomed).await;
    }
}

/// An agent's reply `seq` was stored assuming the visitor `was_online`; `reached`: it
/// reached a connection of theirs. When they came or went in between, what was assumed
/// (seen, or due a follow-up `delay` ms later) is corrected.
pub async fn reply_delivered(
    app: &App,
    conv: ConversationId,
    seq: u64,
    was_online: bool,
    reached_them: bool,
    delay: Option<Millis>,
) {
    match (was_online, reached_them, delay) {
        (false, true, _) => reached(app, conv, seq).await,
        (true, false, Some(delay)) => missed(app, conv, seq, delay).await,
        _ => {}
    }
}

/// An agent's reply stored while the visitor was offline reached a connection of theirs
/// after all (they came back between the store and the delivery): it counts as seen,
/// as it would have had they been online a moment earlier, and a follow-up pending only
/// for it is cancelled.
pub async fn reached(app: &App, conv: ConversationId, seq: u64) {
    news(app, conv, FollowUpNews::Reached { seq }).await
}

/// An agent's reply stored as seen while the visitor was online reached none of their
/// connections (they left between the store and the delivery): it is unseen after all,
/// and gets a follow-up like a reply to an offline visitor. Nothing changes when they
/// are back by the time this runs: their welcome, read after the reply was stored,
/// had it.
pub async fn missed(app: &App, conv: ConversationId, seq: u64, delay: Millis) {
    let now = app.now();
    news(app, conv, FollowUpNews::Missed { seq, delay, now }).await
}

/// Steps the conversation's follow-up in the store and schedules what it armed.
async fn news(app: &App, conv: ConversationId, news: FollowUpNews) {
    let inner = app.clone();
    let online = Box::new(move |k: &VisitorKey| inner.hub.visitor_online(k));
    match app.store.follow_up_event(conv, news, online).await {
        Ok(Some((due, kind))) => app.deadlines.schedule(due, kind, conv),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, ?news, "could not record what the visitor saw"),
    }
}

async fn follow_up(app: &App, conv: ConversationId, due: Millis) {
    let inner = app.clone();
    let compose = Box::new(
        move |reads: &dyn Reads, c: &ConversationRecord, after: u64| {
            compose(reads, &inner, c, after)
        },
    );
    match app.store.follow_up_due(conv, due, app.now(), compose).await {
        Ok(Some((id, due))) => app.deadlines.schedule(due, DeadlineKind::Delivery, id),
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not fire a follow-up deadline"),
    }
}

/// The email for a conversation's replies after `after`, or None when none is due: the
/// visitor is online (they read the replies), the follow-up was turned off, no address
/// is known, or there is no agent reply after `after`.
fn compose(
    reads: &dyn Reads,
    app: &App,
    c: &ConversationRecord,
    after: u64,
) -> Result<Option<Email>, StoreError> {
    let conv_id = c.id;
    let key = conversations::visitor_key(c);
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
    let Some(visitor) = reads.visitor(key.visitor)? else {
        return Ok(None);
    };
    let to = match (&visitor.email, &visitor.contact_id) {
        (Some(e), _) => Some(e.clone()),
        (None, Some(id)) => reads.contact(*id)?.map(|ct| ct.email),
        (None, None) => None,
    };
    let Some(to) = to else {
        return Ok(None);
    };
    // More than fit in one email: the newest ones.
    let (unseen, _) = reads.after(conv_id, after, Cut::count(MAX_REPLIES), MAX_REPLIES)?;
    let replies: Vec<Message> = unseen
        .decode()?
        .into_iter()
        .filter(|m| m.seq > after && m.author.kind == AuthorKind::Agent)
        .collect();
    if replies.is_empty() {
        return Ok(None);
    }
    let recent = reads.page(conv_id, None, Cut::count(100))?.0.decode()?;
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
        conversation_id: c.id,
        to,
        subject,
        text,
        html,
    }))
}

async fn deliver(app: &App, id: OutboxId, due: Millis) {
    match mail::deliver(app, id, due).await {
        Ok(Delivery::Nothing) => {}
        Ok(Delivery::Retry { due }) => app.deadlines.schedule(due, DeadlineKind::Delivery, id),
        Ok(Delivery::Sent { conversation_id }) => {
            Metrics::inc(&app.metrics.follow_ups_sent);
            announce(app, conversation_id, SENT).await;
        }
        Ok(Delivery::Failed {
            conversation_id,
            why,
        }) => {
            let text = match why {
                GaveUp::Undeliverable => UNDELIVERABLE,
                GaveUp::MaybeSent => MAYBE_SENT,
            };
            announce(app, conversation_id, text).await;
        }
        Err(e) => tracing::error!(email = %id, error = %e, "could not deliver an email"),
    }
}

/// A `system` message in the conversation, to its agents (with the new summary) and to
/// any open connection of the visitor; their history keeps it.
async fn announce(app: &App, conv: ConversationId, text: &str) {
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
