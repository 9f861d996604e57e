//! The email-capture prompt: planning it after a visitor's first message, firing
//! `no_reply` deadlines, and delivering prompts owed to visitors who were offline.
//!
//! Owns the prompt's state transitions (`Pending` to `Sent` or `Owed`, `Owed` to `Sent`);
//! the first decision is recorded by `conversations` in the same write as the message.
//! At most one prompt per conversation, because `Sent` is final and only set in a write.
//! A sent prompt whose visitor's email is still unknown is also shown by every welcome
//! ([`still_open`]): that is its state, not a second push, and it covers a push the
//! server stopped before writing.

use uuid::Uuid;

use crate::app::App;
use crate::chatflow;
use crate::conversations::{self, FirstMessagePlan};
use crate::fanout::{self, Event};
use crate::hub::VisitorKey;
use crate::metrics::Metrics;
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::{ConversationRecord, InboxRecord, PromptState, VisitorRecord};
use crate::store::{Batch, Tree};

/// What the inbox's chatflow says for a first message, right now.
pub fn plan(app: &App, inbox: &InboxRecord) -> FirstMessagePlan {
    let c = &inbox.chatflow;
    let away =
        chatflow::away_active(c, app.hub.agents_online(&inbox.key)).then(|| chatflow::away_text(c));
    FirstMessagePlan {
        when: c.email_capture.when,
        delay_ms: c.email_capture.delay_secs.saturating_mul(1000),
        prompt_text: chatflow::prompt_text(c),
        away,
    }
}

/// Pushes the prompt to every connection of the visitor; true if any got it.
pub fn push(app: &App, key: &VisitorKey, text: String) -> bool {
    let prompt = Event::EmailPrompt { key, text: &text };
    let reached = fanout::publish(app, &prompt).is_some_and(|d| d.visitors > 0);
    if reached {
        Metrics::inc(&app.metrics.prompts_sent);
    }
    reached
}

/// The prompt a conversation was (or will be) sent: the text its inbox had when the
/// conversation began, else the built-in one.
pub fn text(c: &ConversationRecord) -> String {
    c.prompt_text
        .clone()
        .unwrap_or_else(|| chatflow::DEFAULT_PROMPT.to_string())
}

/// The prompt a welcome shows again: one that was sent to a visitor whose email is
/// still unknown (see `Welcome::email_prompt`).
pub fn still_open(c: &ConversationRecord, visitor: Option<&VisitorRecord>) -> Option<String> {
    let known = visitor.is_some_and(VisitorRecord::reachable);
    (c.prompt == PromptState::Sent && !known).then(|| text(c))
}

/// A `no_reply` deadline fell due. Runs as its own task, so a burst of due deadlines
/// shares group commits instead of waiting on each other.
pub fn fire(app: &App, conv: Uuid, due: u64) {
    let app = app.clone();
    tokio::spawn(async move {
        let inner = app.clone();
        let result = app
            .writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) =
                    conversations::fell_due(kv, &mut b, due, DeadlineKind::Prompt, conv)?
                else {
                    return Ok((b, None));
                };
                if c.prompt != (PromptState::Pending { due: due as i64 }) {
                    return Ok((b, None));
                }
                let Some(key) = conversations::visitor_key(&c) else {
                    return Ok((b, None));
                };
                let online = inner.hub.visitor_online(&key);
                c.prompt = if online {
                    PromptState::Sent
                } else {
                    PromptState::Owed
                };
                b.put_json(Tree::Conversations, keys::id(conv), &c);
                let text = text(&c);
                Ok((b, Some((key, online, text))))
            })
            .await;
        match result {
            Ok(Some((key, true, text))) => {
                if !push(&app, &key, text) {
                    // They left between the check and the push: owe it to them.
                    mark_owed(&app, conv).await;
                }
            }
            Ok(Some((key, false, _))) => {
                // They came online while the write was made durable: their welcome may
                // have read the conversation before `Owed` reached the store. Deliver
                // now; `deliver_owed` moves `Owed` to `Sent` once, whoever calls first.
                if app.hub.visitor_online(&key) {
                    deliver_owed(&app, &key, conv).await;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "could not fire an email-capture deadline"),
        }
    });
}

async fn mark_owed(app: &App, conv: Uuid) {
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            if let Some(mut c) = conversations::load(kv, conv)? {
                if c.prompt == PromptState::Sent {
                    c.prompt = PromptState::Owed;
                    b.put_json(Tree::Conversations, keys::id(conv), &c);
                }
            }
            Ok((b, ()))
        })
        .await;
    if let Err(e) = r {
        tracing::error!(error = %e, "could not record an owed prompt");
    }
}

/// After a `welcome`: a prompt that fell due while the visitor was away is sent now.
pub async fn deliver_owed(app: &App, key: &VisitorKey, conv: Uuid) {
    let r = app
        .writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut c) = conversations::load(kv, conv)? else {
                return Ok((b, None));
            };
            if c.prompt != PromptState::Owed {
                return Ok((b, None));
            }
            c.prompt = PromptState::Sent;
            b.put_json(Tree::Conversations, keys::id(conv), &c);
            Ok((b, c.prompt_text.clone()))
        })
        .await;
    match r {
        Ok(Some(text)) => {
            if !push(app, key, text) {
                mark_owed(app, conv).await;
            }
        }
        Ok(None) => {}
        Err(e) => tracing::error!(error = %e, "could not deliver an owed prompt"),
    }
}

/// Hands due deadlines to their owners; runs until shutdown.
pub async fn run_deadlines(app: App) {
    let mut stop = app.shutdown.clone();
    let fire_app = app.clone();
    let clock = app.clock.clone();
    app.deadlines
        .run(
            move || clock.now_ms().max(0) as u64,
            move |(due, kind, subject)| match kind {
                DeadlineKind::Prompt => fire(&fire_app, subject, due),
                DeadlineKind::FollowUp | DeadlineKind::Delivery => {
                    crate::followup::fire(&fire_app, kind, subject, due)
                }
            },
            async move {
                let _ = stop.wait_for(|s| *s).await;
            },
        )
        .await;
}
