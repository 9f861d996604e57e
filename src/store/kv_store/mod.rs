//! The [`Store`] over the key-value engine: every domain write is one closure on the
//! group-commit [`Writer`], every read goes straight to the engine.
//!
//! Owns how the domain's records map onto trees and keys (`keys` has the table): a
//! message is a row of `messages` plus its `client_ids` entry and its words in the
//! search index, a conversation a row of `conversations` plus its visitor's entry and its
//! place in the list (`listing::put_conversation`, the one place a record is written), a
//! deadline a key of `deadlines`. Each method
//! reads what the domain's plan needs, calls the plan (`conversations`, `contacts`,
//! `capture`, `followup`, `reading`, `mail::delivery`), and turns it into one batch, so a visitor's `send` stays one writer
//! round trip and one log sync shared with its group. It decides nothing itself.

mod admin;
mod listing;
mod outbox;
mod read;
mod sign_ins;
mod upgrade;

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use widget_protocol::{Contact, Millis};

use super::api::{ComposeEmail, Online, PromptFired, Store};
use super::keys::{self, DeadlineKind};
use super::records::{ConversationRecord, ReadCursor, VisitorRecord};
use super::{Batch, Kv, StoreError, Tree, Writer};
use crate::capture::{self, PromptEvent};
use crate::contacts::{self, Link, Linked, Whom};
use crate::conversations::{self, AgentReply, Appended, Plan, Planned, VisitorSend, Workflow};
use crate::deadlines;
use crate::error::{Error, Result};
use crate::followup::state::{
    self as follow_up, FollowUp, FollowUpEffect, FollowUpEvent, FollowUpNews,
};
use crate::ids::{AgentId, ConversationId, OutboxId, VisitorId};
use crate::listing::{ListRequest, Page};
use crate::reading::{self, MarkedRead};
use crate::search;
use listing::{put_conversation, Place};
use read::{earlier, find_for_visitor, load, load_visitor, lookup, visitor_reachable, KvReads};

/// The domain store on a key-value engine.
#[derive(Clone)]
pub struct KvStore {
    kv: Arc<dyn Kv>,
    writer: Writer,
}

impl KvStore {
    pub fn new(kv: Arc<dyn Kv>, writer: Writer) -> KvStore {
        KvStore { kv, writer }
    }

    /// Every record of `tree`, in key order.
    fn all<T: serde::de::DeserializeOwned>(&self, tree: Tree) -> Result<Vec<T>, StoreError> {
        self.kv
            .scan_prefix(tree, b"", usize::MAX)?
            .into_iter()
            .map(|(_, v)| super::decode(tree, &v))
            .collect()
    }
}

fn remember(b: &mut Batch, conv_id: ConversationId, client_msg_id: &str, seq: u64) {
    b.put(
        Tree::ClientIds,
        keys::client_id(conv_id, client_msg_id),
        seq.to_be_bytes().to_vec(),
    );
}

/// Writes a conversation's plan into `b`: its messages and their words, its record
/// (listed where it now belongs; `was`: where it was listed), its deadlines, and
/// `more_words` (its contact's, for a new conversation). The deadline it armed, for
/// the scheduler.
fn write_plan(
    kv: &dyn Kv,
    b: &mut Batch,
    was: Option<&Place>,
    plan: &Plan,
    mut more_words: BTreeSet<String>,
) -> Result<Option<(Millis, DeadlineKind)>, StoreError> {
    let conv = &plan.conversation;
    for m in &plan.messages {
        b.put_json(Tree::Messages, keys::message(conv.id, m.seq), m);
        search::text_tokens(&m.text, &mut more_words);
    }
    listing::index_words(kv, b, &conv.inbox, conv.id, &more_words)?;
    put_conversation(b, was, conv);
    let mut armed = None;
    for &(kind, change) in &plan.deadlines {
        armed = deadlines::apply(b, kind, conv.id, change).or(armed);
    }
    Ok(armed)
}

/// The words of the contact `visitor` is linked to, if any.
fn contact_words(
    kv: &dyn Kv,
    visitor: Option<&VisitorRecord>,
) -> Result<BTreeSet<String>, StoreError> {
    let mut words = BTreeSet::new();
    if let Some(id) = visitor.and_then(|v| v.contact_id) {
        if let Some(c) = read::contact(kv, id)? {
            search::contact_tokens(&c, &mut words);
        }
    }
    Ok(words)
}

/// A conversation's deadline fell due: its key leaves the store with `b`, the write that
/// handles it. The conversation, if it still exists.
fn fell_due(
    kv: &dyn Kv,
    b: &mut Batch,
    due: Millis,
    kind: DeadlineKind,
    conv: ConversationId,
) -> Result<Option<ConversationRecord>, StoreError> {
    deadlines::apply(b, kind, conv, deadlines::Change::Disarm(due));
    load(kv, conv)
}

impl read::Engine for KvStore {
    fn engine(&self) -> &dyn Kv {
        self.kv.as_ref()
    }
}

#[async_trait]
impl Store for KvStore {
    async fn append_visitor(&self, s: VisitorSend) -> Result<Appended> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let existing = find_for_visitor(kv, s.visitor, &s.inbox)?;
                if let Some(conv) = &existing {
                    if let Some(message) = earlier(kv, conv.id, &s.client_msg_id)? {
                        return Ok((b, Appended::duplicate(message, conv.clone())));
                    }
                }
                let visitor = load_visitor(kv, s.visitor)?;
                let was = existing.as_ref().map(Place::of);
                // A new conversation of a visitor linked already is found by the contact.
                let contact = match existing {
                    None => contact_words(kv, visitor.as_ref())?,
                    Some(_) => BTreeSet::new(),
                };
                let planned = conversations::plan_visitor_message(existing, visitor, &s);
                let plan = &planned.plan;
                let conv_id = plan.conversation.id;
                if planned.created {
                    b.put(
                        Tree::ConvByVisitor,
                        keys::conv_by_visitor(s.visitor, &s.inbox),
                        keys::id(conv_id),
                    );
                }
                if let Some(visitor) = &planned.visitor {
                    b.put_json(Tree::Visitors, keys::id(s.visitor), visitor);
                }
                remember(&mut b, conv_id, &s.client_msg_id, planned.message.seq);
                let deadline = write_plan(kv, &mut b, was.as_ref(), plan, contact)?;
                let out = Appended {
                    created: planned.created,
                    visitor_changed: planned.visitor.is_some(),
                    system: planned.system,
                    prompt_now: planned.prompt_now,
                    deadline,
                    reopened: planned.reopened,
                    ..Appended::stored(planned.message, planned.plan.conversation)
                };
                Ok((b, out))
            })
            .await
    }

    async fn append_agent(&self, r: AgentReply) -> Result<Appended> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let conv = load(kv, r.conversation)?.ok_or_else(Error::not_found)?;
                if let Some(message) = earlier(kv, r.conversation, &r.client_msg_id)? {
                    return Ok((b, Appended::duplicate(message, conv)));
                }
                // Only an offline visitor's address matters (for the follow-up email).
                let reachable = !r.visitor_online && visitor_reachable(kv, &conv);
                let was = Place::of(&conv);
                let Planned { plan, message } =
                    conversations::plan_agent_reply(conv, reachable, &r);
                remember(&mut b, r.conversation, &r.client_msg_id, message.seq);
                let deadline = write_plan(kv, &mut b, Some(&was), &plan, BTreeSet::new())?;
                let out = Appended {
                    deadline,
                    ..Appended::stored(message, plan.conversation)
                };
                Ok((b, out))
            })
            .await
    }

    async fn append_system(
        &self,
        conversation: ConversationId,
        text: String,
        now: Millis,
    ) -> Result<Option<Appended>> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let Some(conv) = load(kv, conversation)? else {
                    return Ok((b, None));
                };
                let was = Place::of(&conv);
                let Planned { plan, message } = conversations::plan_system_message(conv, text, now);
                write_plan(kv, &mut b, Some(&was), &plan, BTreeSet::new())?;
                Ok((b, Some(Appended::stored(message, plan.conversation))))
            })
            .await
    }

    async fn set_workflow(
        &self,
        conversation: ConversationId,
        change: Workflow,
    ) -> Result<ConversationRecord> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let conv = load(kv, conversation)?.ok_or_else(Error::not_found)?;
                match conversations::plan_workflow(conv.clone(), &change) {
                    Some(changed) => {
                        put_conversation(&mut b, Some(&Place::of(&conv)), &changed);
                        Ok((b, changed))
                    }
                    None => Ok((b, conv)),
                }
            })
            .await
    }

    async fn mark_read(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        cursor: ReadCursor,
    ) -> Result<MarkedRead> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let conv = load(kv, conversation)?.ok_or_else(Error::not_found)?;
                let was = Place::of(&conv);
                let read = reading::plan_mark_read(conv, agent, cursor);
                if read.moved {
                    put_conversation(&mut b, Some(&was), &read.conversation);
                }
                Ok((b, read))
            })
            .await
    }

    async fn visitor_seen(
        &self,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(conv) = load(kv, conversation)? else {
                    return Ok((b, None));
                };
                let was = Place::of(&conv);
                let Some(seen) = reading::plan_seen(conv, seq) else {
                    return Ok((b, None));
                };
                if let Some(change) = seen.deadline {
                    deadlines::apply(&mut b, DeadlineKind::FollowUp, conversation, change);
                }
                put_conversation(&mut b, Some(&was), &seen.conversation);
                Ok((b, Some(seen.conversation)))
            })
            .await
    }

    async fn link_contact(
        &self,
        whom: Whom,
        email: String,
        how: Link,
        now: Millis,
    ) -> Result<Linked> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let (visitor_id, conv) = match &whom {
                    Whom::Visitor { visitor, inbox } => {
                        (*visitor, find_for_visitor(kv, *visitor, inbox)?)
                    }
                    Whom::Conversation(id) => {
                        let c = load(kv, *id)?.ok_or_else(Error::not_found)?;
                        (c.visitor_id, Some(c))
                    }
                };
                let existing = lookup(kv, &email)?;
                let visitor = load_visitor(kv, visitor_id)?;
                let was = conv.as_ref().map(Place::of);
                let plan =
                    contacts::plan_link(&how, &email, existing, visitor_id, visitor, conv, now)?;
                if plan.linked.created {
                    let id = keys::id(plan.contact_id);
                    b.put_json(Tree::Contacts, id.clone(), &plan.linked.contact);
                    b.put(Tree::ContactEmails, keys::contact_email(&email), id);
                }
                b.put_json(Tree::Visitors, keys::id(visitor_id), &plan.visitor);
                if let Some(c) = &plan.linked.conversation {
                    if let Some(change) = plan.prompt_deadline {
                        deadlines::apply(&mut b, DeadlineKind::Prompt, c.id, change);
                    }
                    if plan.conversation_changed {
                        put_conversation(&mut b, was.as_ref(), c);
                    }
                }
                let mut words = BTreeSet::new();
                search::contact_tokens(&plan.linked.contact, &mut words);
                for (inbox, id) in read::visitor_conversations(kv, visitor_id)? {
                    listing::index_words(kv, &mut b, &inbox, id, &words)?;
                }
                Ok((b, plan.linked))
            })
            .await
    }

    async fn prompt_due(
        &self,
        conversation: ConversationId,
        due: Millis,
        online: Online,
    ) -> Result<Option<PromptFired>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) = fell_due(kv, &mut b, due, DeadlineKind::Prompt, conversation)?
                else {
                    return Ok((b, None));
                };
                let was = Place::of(&c);
                let key = conversations::visitor_key(&c);
                let event = PromptEvent::Due {
                    due,
                    online: online(&key),
                };
                let step = capture::apply(&mut c, event);
                if !step.changed {
                    return Ok((b, None));
                }
                put_conversation(&mut b, Some(&was), &c);
                let text = capture::text(&c);
                Ok((
                    b,
                    Some(PromptFired {
                        key,
                        push: step.push,
                        text,
                    }),
                ))
            })
            .await
    }

    async fn prompt_event(
        &self,
        conversation: ConversationId,
        event: PromptEvent,
    ) -> Result<Option<String>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) = load(kv, conversation)? else {
                    return Ok((b, None));
                };
                let was = Place::of(&c);
                let step = capture::apply(&mut c, event);
                if let Some(change) = step.deadline {
                    deadlines::apply(&mut b, DeadlineKind::Prompt, conversation, change);
                }
                if step.changed {
                    put_conversation(&mut b, Some(&was), &c);
                }
                Ok((b, step.push.then(|| capture::text(&c))))
            })
            .await
    }

    async fn follow_up_event(
        &self,
        conversation: ConversationId,
        news: FollowUpNews,
        online: Online,
    ) -> Result<Option<(Millis, DeadlineKind)>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) = load(kv, conversation)? else {
                    return Ok((b, None));
                };
                let was = Place::of(&c);
                let event = news.event(
                    c.last_seq,
                    || online(&conversations::visitor_key(&c)),
                    || visitor_reachable(kv, &c),
                );
                let step = follow_up::apply(&mut c, event);
                let armed = step.deadline.and_then(|change| {
                    deadlines::apply(&mut b, DeadlineKind::FollowUp, conversation, change)
                });
                if step.changed {
                    put_conversation(&mut b, Some(&was), &c);
                }
                Ok((b, armed))
            })
            .await
    }

    async fn follow_up_due(
        &self,
        conversation: ConversationId,
        due: Millis,
        now: Millis,
        compose: ComposeEmail,
    ) -> Result<Option<(OutboxId, Millis)>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) = fell_due(kv, &mut b, due, DeadlineKind::FollowUp, conversation)?
                else {
                    return Ok((b, None));
                };
                let was = Place::of(&c);
                let event = FollowUpEvent::Due {
                    due: due as Millis,
                    last_seq: c.last_seq,
                };
                let (next, effect) = FollowUp::of(&c).step(event);
                let Some(FollowUpEffect::Email { after }) = effect else {
                    return Ok((b, None));
                };
                let email = compose(&KvReads(kv), &c, after)?;
                next.store(&mut c);
                put_conversation(&mut b, Some(&was), &c);
                let queued = email.map(|e| outbox::put_email(&mut b, e, now));
                Ok((b, queued))
            })
            .await
    }

    fn deadlines(&self) -> Result<Vec<deadlines::Entry>, StoreError> {
        let rows = self.kv.scan_prefix(Tree::Deadlines, b"", usize::MAX)?;
        Ok(rows
            .iter()
            .filter_map(|(k, _)| keys::read_deadline(k))
            .collect())
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.writer.write(|_| Ok((Batch::default(), ()))).await
    }

    fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>, StoreError> {
        load(self.kv.as_ref(), id)
    }

    fn conversation_for_visitor(
        &self,
        visitor: VisitorId,
        inbox: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        find_for_visitor(self.kv.as_ref(), visitor, inbox)
    }

    fn list(&self, inboxes: &[String], request: &ListRequest) -> Result<Page, StoreError> {
        listing::list(self.kv.as_ref(), inboxes, request)
    }

    fn contact_by_email(&self, email: &str) -> Result<Option<Contact>, StoreError> {
        Ok(lookup(self.kv.as_ref(), email)?.map(|(_, c)| c))
    }
}
