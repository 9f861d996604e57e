//! The email-capture prompt: the one owner of its state machine ([`PromptState::step`]),
//! planning it from the chatflow after a visitor's first message, firing `no_reply`
//! deadlines, and delivering prompts owed to visitors who were offline.
//!
//! Every change of a conversation's `prompt` is a [`PromptState::step`]: a pure function
//! from the state and an event (the first message, an agent's reply, the email becoming
//! known, the deadline, a push that reached no one, the visitor coming back) to the new
//! state and at most one effect (push the prompt, arm or disarm its deadline). The
//! writes that carry those events (`conversations`, `contacts`, and the deadline and
//! delivery writes here) call it and apply the effect; they decide nothing themselves.
//! At most one prompt per conversation: `Sent` is left only when a push reached no
//! connection. A sent prompt whose visitor's email is still unknown is also shown by
//! every welcome ([`still_open`]): that is its state, not a second push, and it covers a
//! push the server stopped before writing.

use widget_protocol::{CaptureWhen, Millis};

use crate::app::App;
use crate::chatflow;
use crate::clock;
use crate::conversations::FirstMessagePlan;
use crate::deadlines::Change;
use crate::fanout::{self, Event};
use crate::hub::VisitorKey;
use crate::ids::ConversationId;
use crate::metrics::Metrics;
use crate::store::api::PromptFired;
use crate::store::keys::DeadlineKind;
use crate::store::records::{ConversationRecord, InboxRecord, PromptState, VisitorRecord};

/// What happens to a conversation, as far as its prompt is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptEvent {
    /// The visitor's first message was stored. `due` is when a `no_reply` prompt would
    /// fall due; `reachable`: their email is known already.
    FirstMessage {
        when: CaptureWhen,
        away: bool,
        reachable: bool,
        due: Millis,
    },
    /// An agent replied.
    AgentReplied,
    /// The visitor was linked to a contact (they typed their email, or an agent chose).
    EmailKnown,
    /// The deadline armed for `due` fell due; `online`: the visitor has a connection.
    Due { due: Millis, online: bool },
    /// A push of the prompt reached none of the visitor's connections.
    PushMissed,
    /// The visitor came back (a `welcome`).
    VisitorBack,
}

/// What the write that made a step must do besides storing the new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptEffect {
    /// Push the prompt to the visitor's connections, once the write is durable.
    Push,
    /// Arm or disarm the `Prompt` deadline.
    Deadline(Change),
}

impl PromptState {
    /// The prompt's state machine: the new state and what to do about it. An event that
    /// does not apply to the state leaves it as it is, with no effect.
    pub fn step(self, event: PromptEvent) -> (PromptState, Option<PromptEffect>) {
        use PromptEffect::*;
        use PromptEvent::*;
        use PromptState::*;
        match (self, event) {
            (
                None,
                FirstMessage {
                    when,
                    away,
                    reachable,
                    due,
                },
            ) => {
                if reachable || when == CaptureWhen::Never {
                    (Cancelled, Option::None)
                } else if away || when == CaptureWhen::FirstMessage {
                    (Sent, Some(Push))
                } else {
                    (Pending { due }, Some(Deadline(Change::Arm(due))))
                }
            }
            (Pending { due }, AgentReplied | EmailKnown) => {
                (Cancelled, Some(Deadline(Change::Disarm(due))))
            }
            (None | Owed, EmailKnown) => (Cancelled, Option::None),
            (Pending { due }, Due { due: fell, online }) if due == fell => {
                if online {
                    (Sent, Some(Push))
                } else {
                    (Owed, Option::None)
                }
            }
            (Sent, PushMissed) => (Owed, Option::None),
            (Owed, VisitorBack) => (Sent, Some(Push)),
            (state, _) => (state, Option::None),
        }
    }

    /// No visitor message has been handled yet: the next one is the first.
    pub fn before_first_message(self) -> bool {
        self == PromptState::None
    }
}

/// Applies `event` to a conversation's prompt: whether it changed, whether to push, and
/// what to do with its `Prompt` deadline (the store writes that with the conversation).
pub fn apply(conv: &mut ConversationRecord, event: PromptEvent) -> Applied {
    let (next, effect) = conv.prompt.step(event);
    let changed = next != conv.prompt;
    conv.prompt = next;
    Applied {
        changed,
        push: effect == Some(PromptEffect::Push),
        deadline: match effect {
            Some(PromptEffect::Deadline(change)) => Some(change),
            _ => Option::None,
        },
    }
}

/// The outcome of [`apply`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    pub changed: bool,
    pub push: bool,
    pub deadline: Option<Change>,
}

/// What the inbox's chatflow says for a first message, right now.
pub fn plan(app: &App, inbox: &InboxRecord) -> FirstMessagePlan {
    let c = &inbox.chatflow;
    let away = chatflow::away(c, app.hub.agents_online(&inbox.key), app.now()).message;
    FirstMessagePlan {
        when: c.email_capture.when,
        delay_ms: clock::from_secs(c.email_capture.delay_secs),
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
pub fn fire(app: &App, conv: ConversationId, due: Millis) {
    let app = app.clone();
    tokio::spawn(async move {
        let hub = app.clone();
        let online = Box::new(move |key: &VisitorKey| hub.hub.visitor_online(key));
        match app.store.prompt_due(conv, due, online).await {
            Ok(Some(PromptFired {
                key,
                push: true,
                text,
            })) => {
                if !push(&app, &key, text) {
                    // They left between the check and the push: owe it to them.
                    mark_owed(&app, conv).await;
                }
            }
            Ok(Some(PromptFired { key, .. })) => {
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

async fn mark_owed(app: &App, conv: ConversationId) {
    if let Err(e) = app.store.prompt_event(conv, PromptEvent::PushMissed).await {
        tracing::error!(error = %e, "could not record an owed prompt");
    }
}

/// After a `welcome` of `conv`: the prompt owed to the visitor is sent now.
pub async fn visitor_back(app: &App, key: &VisitorKey, conv: &ConversationRecord) {
    if conv.prompt == PromptState::Owed {
        deliver_owed(app, key, conv.id).await;
    }
}

/// A prompt that fell due while the visitor was away is sent now.
pub async fn deliver_owed(app: &App, key: &VisitorKey, conv: ConversationId) {
    match app.store.prompt_event(conv, PromptEvent::VisitorBack).await {
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
            move || clock.now_ms(),
            move |(due, kind, subject)| match kind {
                DeadlineKind::Prompt => fire(&fire_app, subject.into(), due),
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

#[cfg(test)]
mod tests {
    use super::PromptEffect::{Deadline, Push};
    use super::*;

    const DUE: Millis = 5_000;

    fn states() -> [PromptState; 5] {
        [
            PromptState::None,
            PromptState::Pending { due: DUE },
            PromptState::Owed,
            PromptState::Sent,
            PromptState::Cancelled,
        ]
    }

    /// Every event, with each of its variants that the machine tells apart.
    fn events() -> Vec<PromptEvent> {
        let mut all = Vec::new();
        for when in [
            CaptureWhen::Never,
            CaptureWhen::FirstMessage,
            CaptureWhen::NoReply,
        ] {
            for away in [false, true] {
                for reachable in [false, true] {
                    all.push(PromptEvent::FirstMessage {
                        when,
                        away,
                        reachable,
                        due: DUE,
                    });
                }
            }
        }
        for due in [DUE, DUE + 1] {
            for online in [false, true] {
                all.push(PromptEvent::Due { due, online });
            }
        }
        all.extend([
            PromptEvent::AgentReplied,
            PromptEvent::EmailKnown,
            PromptEvent::PushMissed,
            PromptEvent::VisitorBack,
        ]);
        all
    }

    /// The transitions that change something; every other pair leaves the state alone.
    fn expected(
        state: PromptState,
        event: PromptEvent,
    ) -> Option<(PromptState, Option<PromptEffect>)> {
        use PromptEvent::*;
        use PromptState::*;
        Some(match (state, event) {
            (
                None,
                FirstMessage {
                    when, reachable, ..
                },
            ) if reachable || when == CaptureWhen::Never => (Cancelled, Option::None),
            (None, FirstMessage { away: true, .. }) => (Sent, Some(Push)),
            (
                None,
                FirstMessage {
                    when: CaptureWhen::FirstMessage,
                    ..
                },
            ) => (Sent, Some(Push)),
            (None, FirstMessage { .. }) => (Pending { due: DUE }, Some(Deadline(Change::Arm(DUE)))),
            (Pending { .. }, AgentReplied | EmailKnown) => {
                (Cancelled, Some(Deadline(Change::Disarm(DUE))))
            }
            (None | Owed, EmailKnown) => (Cancelled, Option::None),
            (
                Pending { .. },
                Due {
                    due: DUE,
                    online: true,
                },
            ) => (Sent, Some(Push)),
            (
                Pending { .. },
                Due {
                    due: DUE,
                    online: false,
                },
            ) => (Owed, Option::None),
            (Sent, PushMissed) => (Owed, Option::None),
            (Owed, VisitorBack) => (Sent, Some(Push)),
            _ => return Option::None,
        })
    }

    #[test]
    fn every_state_and_every_event() {
        let mut changes = 0;
        for state in states() {
            for event in events() {
                let got = state.step(event);
                match expected(state, event) {
                    Some(want) => {
                        changes += 1;
                        assert_eq!(got, want, "{state:?} on {event:?}");
                    }
                    None => assert_eq!(got, (state, None), "{state:?} on {event:?} changed"),
                }
            }
        }
        assert_eq!(
            changes,
            12 + 2 + 2 + 2 + 1 + 1,
            "the table covers each rule"
        );
    }

    #[test]
    fn a_prompt_is_pushed_at_most_once_unless_it_reached_no_one() {
        for state in states() {
            for event in events() {
                let (next, effect) = state.step(event);
                if effect == Some(Push) {
                    assert_eq!(next, PromptState::Sent, "{state:?} on {event:?}");
                    assert_ne!(state, PromptState::Sent, "pushed twice");
                }
            }
        }
        let known_or_decided = [PromptState::Sent, PromptState::Cancelled];
        for state in known_or_decided {
            assert_eq!(state.step(PromptEvent::EmailKnown), (state, None));
        }
    }

    #[test]
    fn applying_a_step_keeps_the_state_and_names_its_deadline() {
        let mut c = ConversationRecord {
            visitor_messages: 1,
            read: Default::default(),
            visitor_seen_seq: 0,
            id: ConversationId::from_uuid(uuid::Uuid::from_u128(7)),
            inbox: "default".into(),
            visitor_id: crate::ids::VisitorId::from_uuid(uuid::Uuid::from_u128(8)),
            created_at: 0,
            updated_at: 0,
            last_seq: 1,
            last_message: None,
            prompt: PromptState::None,
            prompt_text: None,
            seen_seq: 1,
            follow_up_due: None,
            status: widget_protocol::Status::Open,
            assignee: None,
        };
        let first = PromptEvent::FirstMessage {
            when: CaptureWhen::NoReply,
            away: false,
            reachable: false,
            due: DUE,
        };
        let step = apply(&mut c, first);
        assert_eq!((step.changed, step.push), (true, false));
        assert_eq!(step.deadline, Some(Change::Arm(DUE)));
        assert_eq!(c.prompt, PromptState::Pending { due: DUE });
        let step = apply(&mut c, PromptEvent::AgentReplied);
        assert_eq!(c.prompt, PromptState::Cancelled);
        assert_eq!(step.deadline, Some(Change::Disarm(DUE)));
        assert!(!apply(&mut c, PromptEvent::AgentReplied).changed);
    }
}
