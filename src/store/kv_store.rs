//! The [`Store`] over the key-value engine: every domain write is one closure on the
//! group-commit [`Writer`], every read goes straight to the engine.
//!
//! Owns how the domain's records map onto trees and keys (`keys` has the table): a
//! message is a row of `messages` plus its `client_ids` entry, a conversation a row of
//! `conversations` plus its two indexes, a deadline a key of `deadlines`. Each method
//! reads what the domain's plan needs, calls the plan (`conversations`, `contacts`,
//! `capture`), and turns it into one batch, so a visitor's `send` stays one writer
//! round trip and one log sync shared with its group. It decides nothing itself.

use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;
use widget_protocol::{Contact, Message, Millis};

use super::api::{Online, PromptFired, Store};
use super::keys::{self, DeadlineKind};
use super::records::{ConversationRecord, VisitorRecord};
use super::{Batch, Kv, StoreError, Tree, Writer};
use crate::capture::{self, PromptEvent};
use crate::contacts::{self, Link, Linked, Whom};
use crate::conversations::{
    self, parse_id, AgentReply, Appended, Cut, Plan, Planned, StoredMessages, VisitorSend,
};
use crate::deadlines;
use crate::error::{Error, Result};

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
}

fn corrupt(tree: Tree, what: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: what.to_string(),
    }
}

pub(crate) fn load(kv: &dyn Kv, id: Uuid) -> Result<Option<ConversationRecord>, StoreError> {
    super::get_json(kv, Tree::Conversations, &keys::id(id))
}

fn find_for_visitor(
    kv: &dyn Kv,
    visitor: Uuid,
    inbox: &str,
) -> Result<Option<ConversationRecord>, StoreError> {
    match kv.get(Tree::ConvByVisitor, &keys::conv_by_visitor(visitor, inbox))? {
        None => Ok(None),
        Some(id) => {
            let id = keys::read_id(&id)
                .ok_or_else(|| corrupt(Tree::ConvByVisitor, "conversation id"))?;
            load(kv, id)
        }
    }
}

pub(crate) fn load_visitor(
    kv: &dyn Kv,
    visitor: Uuid,
) -> Result<Option<VisitorRecord>, StoreError> {
    super::get_json(kv, Tree::Visitors, &keys::id(visitor))
}

fn lookup(kv: &dyn Kv, email: &str) -> Result<Option<Contact>, StoreError> {
    match kv.get(Tree::ContactEmails, &keys::contact_email(email))? {
        None => Ok(None),
        Some(id) => super::get_json(kv, Tree::Contacts, &id),
    }
}

pub(crate) fn contact(kv: &dyn Kv, id: &str) -> Result<Option<Contact>, StoreError> {
    match parse_id(id) {
        Some(id) => super::get_json(kv, Tree::Contacts, &keys::id(id)),
        None => Ok(None),
    }
}

/// Whether the team can email the conversation's visitor (see [`VisitorRecord::reachable`]);
/// an unreadable visitor record counts as no address.
pub(crate) fn visitor_reachable(kv: &dyn Kv, conv: &ConversationRecord) -> bool {
    parse_id(&conv.visitor_id)
        .and_then(|v| load_visitor(kv, v).ok().flatten())
        .is_some_and(|v| v.reachable())
}

/// The earlier message for a repeated `client_msg_id`, if any.
fn earlier(kv: &dyn Kv, conv_id: Uuid, client_msg_id: &str) -> Result<Option<Message>, StoreError> {
    let Some(seq) = kv.get(Tree::ClientIds, &keys::client_id(conv_id, client_msg_id))? else {
        return Ok(None);
    };
    let seq = keys::read_u64(&seq).ok_or_else(|| corrupt(Tree::ClientIds, "seq"))?;
    super::get_json(kv, Tree::Messages, &keys::message(conv_id, seq))
}

fn remember(b: &mut Batch, conv_id: Uuid, client_msg_id: &str, seq: u64) {
    b.put(
        Tree::ClientIds,
        keys::client_id(conv_id, client_msg_id),
        seq.to_be_bytes().to_vec(),
    );
}

fn conversation_id(conv: &ConversationRecord) -> Result<Uuid, StoreError> {
    parse_id(&conv.id).ok_or_else(|| corrupt(Tree::Conversations, "id"))
}

fn put_conversation(b: &mut Batch, conv_id: Uuid, conv: &ConversationRecord) {
    b.put_json(Tree::Conversations, keys::id(conv_id), conv);
}

/// Writes a conversation's plan into `b`: its messages, its record, its deadlines. The
/// deadline it armed, for the scheduler.
fn write_plan(b: &mut Batch, conv_id: Uuid, plan: &Plan) -> Option<(u64, DeadlineKind)> {
    for m in &plan.messages {
        b.put_json(Tree::Messages, keys::message(conv_id, m.seq), m);
    }
    put_conversation(b, conv_id, &plan.conversation);
    let mut armed = None;
    for &(kind, change) in &plan.deadlines {
        armed = deadlines::apply(b, kind, conv_id, change).or(armed);
    }
    armed
}

/// Rows read from the store at a time while filling a byte budget: the most read past
/// the budget is one read's worth.
const READ_AHEAD: usize = 16;

/// The newest messages with `from_seq <= seq < before` (`before` none: up to the last),
/// oldest first, within `cut`, and whether more of that range were left out. Reads the
/// store a few rows at a time, from the newest, and stops once the cut is reached, so
/// an oversized list is never loaded.
pub(crate) fn newest(
    kv: &dyn Kv,
    conv: Uuid,
    from_seq: u64,
    before: Option<u64>,
    cut: Cut,
) -> Result<(StoredMessages, bool), StoreError> {
    let from = keys::message(conv, from_seq);
    let mut to = keys::message(conv, before.unwrap_or(u64::MAX));
    let limit = cut.limit.max(1);
    let (mut rows, mut bytes) = (Vec::new(), 0usize);
    loop {
        let want = (limit + 1 - rows.len()).min(READ_AHEAD);
        let chunk = kv.range_rev(Tree::Messages, &from, &to, want)?;
        let exhausted = chunk.len() < want;
        for (key, value) in chunk {
            let adding = value.len() + usize::from(!rows.is_empty());
            if rows.len() == limit || (!rows.is_empty() && bytes + adding > cut.bytes) {
                return Ok((StoredMessages::from_newest(rows)?, true));
            }
            bytes += adding;
            to = key;
            rows.push(value);
        }
        if exhausted {
            return Ok((StoredMessages::from_newest(rows)?, false));
        }
    }
}

pub(crate) fn page(
    kv: &dyn Kv,
    conversation: Uuid,
    before: Option<u64>,
    cut: Cut,
) -> Result<(StoredMessages, bool), StoreError> {
    newest(kv, conversation, 0, before, cut)
}

pub(crate) fn after(
    kv: &dyn Kv,
    conversation: Uuid,
    after: u64,
    cut: Cut,
    page: usize,
) -> Result<(StoredMessages, bool), StoreError> {
    let (mut messages, more) = newest(kv, conversation, after.saturating_add(1), None, cut)?;
    if more && messages.len() >= cut.limit {
        messages.keep_newest(page.max(1));
    }
    Ok((messages, more))
}

/// A conversation's deadline fell due: its key leaves the store with `b`, the write that
/// handles it. The conversation, if it still exists.
pub(crate) fn fell_due(
    kv: &dyn Kv,
    b: &mut Batch,
    due: u64,
    kind: DeadlineKind,
    conv: Uuid,
) -> Result<Option<ConversationRecord>, StoreError> {
    deadlines::apply(b, kind, conv, deadlines::Change::Disarm(due as Millis));
    load(kv, conv)
}

/// Arms the conversation's follow-up email `delay` ms after `now`, unless one is pending
/// or the visitor has no address. Puts the deadline in `b`; the caller stores `conv` and
/// schedules what this returns.
pub(crate) fn arm_follow_up(
    kv: &dyn Kv,
    b: &mut Batch,
    conv_id: Uuid,
    conv: &mut ConversationRecord,
    now: Millis,
    delay: u64,
) -> Option<(u64, DeadlineKind)> {
    let event = crate::followup::state::FollowUpEvent::Missed {
        seq: conv.seen_seq.saturating_add(1),
        online: false,
        delay: delay as Millis,
        reachable: visitor_reachable(kv, conv),
        now,
    };
    let step = crate::followup::state::apply(conv, event);
    deadlines::apply(b, DeadlineKind::FollowUp, conv_id, step.deadline?)
}

#[async_trait]
impl Store for KvStore {
    async fn append_visitor(&self, s: VisitorSend) -> Result<Appended> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let existing = find_for_visitor(kv, s.visitor, &s.inbox)?;
                if let Some(conv) = &existing {
                    if let Some(message) = earlier(kv, conversation_id(conv)?, &s.client_msg_id)? {
                        return Ok((b, Appended::duplicate(message, conv.clone())));
                    }
                }
                let visitor = load_visitor(kv, s.visitor)?;
                let planned = conversations::plan_visitor_message(existing, visitor, &s);
                let plan = &planned.plan;
                let conv_id = conversation_id(&plan.conversation)?;
                if planned.created {
                    b.put(
                        Tree::ConvByVisitor,
                        keys::conv_by_visitor(s.visitor, &s.inbox),
                        keys::id(conv_id),
                    );
                    b.put(
                        Tree::ConvByInbox,
                        keys::conv_by_inbox(&s.inbox, conv_id),
                        Vec::new(),
                    );
                }
                if let Some(visitor) = &planned.visitor {
                    b.put_json(Tree::Visitors, keys::id(s.visitor), visitor);
                }
                remember(&mut b, conv_id, &s.client_msg_id, planned.message.seq);
                let deadline = write_plan(&mut b, conv_id, plan);
                let out = Appended {
                    created: planned.created,
                    visitor_changed: planned.visitor.is_some(),
                    system: planned.system,
                    prompt_now: planned.prompt_now,
                    deadline,
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
                let Planned { plan, message } =
                    conversations::plan_agent_reply(conv, reachable, &r);
                remember(&mut b, r.conversation, &r.client_msg_id, message.seq);
                let deadline = write_plan(&mut b, r.conversation, &plan);
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
        conversation: Uuid,
        text: String,
        now: Millis,
    ) -> Result<Option<Appended>> {
        self.writer
            .transact(move |kv| {
                let mut b = Batch::default();
                let Some(conv) = load(kv, conversation)? else {
                    return Ok((b, None));
                };
                let Planned { plan, message } = conversations::plan_system_message(conv, text, now);
                write_plan(&mut b, conversation, &plan);
                Ok((b, Some(Appended::stored(message, plan.conversation))))
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
                        let v = parse_id(&c.visitor_id).ok_or_else(Error::not_found)?;
                        (v, Some(c))
                    }
                };
                let existing = lookup(kv, &email)?;
                let visitor = load_visitor(kv, visitor_id)?;
                let plan =
                    contacts::plan_link(&how, &email, existing, visitor_id, visitor, conv, now)?;
                let contact = &plan.linked.contact;
                if plan.linked.created {
                    if let Some(id) = parse_id(&contact.id) {
                        b.put_json(Tree::Contacts, keys::id(id), contact);
                        b.put(
                            Tree::ContactEmails,
                            keys::contact_email(&email),
                            keys::id(id),
                        );
                    }
                }
                b.put_json(Tree::Visitors, keys::id(visitor_id), &plan.visitor);
                if let Some(c) = &plan.linked.conversation {
                    if let Some(id) = parse_id(&c.id) {
                        if let Some(change) = plan.prompt_deadline {
                            deadlines::apply(&mut b, DeadlineKind::Prompt, id, change);
                        }
                        if plan.conversation_changed {
                            put_conversation(&mut b, id, c);
                        }
                    }
                }
                Ok((b, plan.linked))
            })
            .await
    }

    async fn prompt_due(
        &self,
        conversation: Uuid,
        due: u64,
        online: Online,
    ) -> Result<Option<PromptFired>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) = fell_due(kv, &mut b, due, DeadlineKind::Prompt, conversation)?
                else {
                    return Ok((b, None));
                };
                let Some(key) = conversations::visitor_key(&c) else {
                    return Ok((b, None));
                };
                let event = PromptEvent::Due {
                    due: due as Millis,
                    online: online(&key),
                };
                let step = capture::apply(&mut c, event);
                if !step.changed {
                    return Ok((b, None));
                }
                put_conversation(&mut b, conversation, &c);
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
        conversation: Uuid,
        event: PromptEvent,
    ) -> Result<Option<String>, StoreError> {
        self.writer
            .write(move |kv| {
                let mut b = Batch::default();
                let Some(mut c) = load(kv, conversation)? else {
                    return Ok((b, None));
                };
                let step = capture::apply(&mut c, event);
                if let Some(change) = step.deadline {
                    deadlines::apply(&mut b, DeadlineKind::Prompt, conversation, change);
                }
                if step.changed {
                    put_conversation(&mut b, conversation, &c);
                }
                Ok((b, step.push.then(|| capture::text(&c))))
            })
            .await
    }

    async fn sync(&self) -> Result<(), StoreError> {
        self.writer.write(|_| Ok((Batch::default(), ()))).await
    }

    fn conversation(&self, id: Uuid) -> Result<Option<ConversationRecord>, StoreError> {
        load(self.kv.as_ref(), id)
    }

    fn conversation_for_visitor(
        &self,
        visitor: Uuid,
        inbox: &str,
    ) -> Result<Option<ConversationRecord>, StoreError> {
        find_for_visitor(self.kv.as_ref(), visitor, inbox)
    }

    fn conversations(
        &self,
        inboxes: &[String],
        limit: usize,
    ) -> Result<Vec<ConversationRecord>, StoreError> {
        let kv = self.kv.as_ref();
        let mut out = Vec::new();
        for inbox in inboxes {
            let prefix = keys::conv_by_inbox_prefix(inbox);
            for (k, _) in kv.scan_prefix(Tree::ConvByInbox, &prefix, usize::MAX)? {
                let id = keys::read_id(&k[prefix.len()..])
                    .ok_or_else(|| corrupt(Tree::ConvByInbox, "id"))?;
                if let Some(c) = load(kv, id)? {
                    out.push(c);
                }
            }
        }
        out.sort_by_key(|c| std::cmp::Reverse(c.updated_at));
        out.truncate(limit);
        Ok(out)
    }

    fn page(
        &self,
        conversation: Uuid,
        before: Option<u64>,
        cut: Cut,
    ) -> Result<(StoredMessages, bool), StoreError> {
        page(self.kv.as_ref(), conversation, before, cut)
    }

    fn after(
        &self,
        conversation: Uuid,
        after: u64,
        cut: Cut,
        page: usize,
    ) -> Result<(StoredMessages, bool), StoreError> {
        self::after(self.kv.as_ref(), conversation, after, cut, page)
    }

    fn visitor(&self, id: Uuid) -> Result<Option<VisitorRecord>, StoreError> {
        load_visitor(self.kv.as_ref(), id)
    }

    fn contact(&self, id: &str) -> Result<Option<Contact>, StoreError> {
        contact(self.kv.as_ref(), id)
    }

    fn contact_by_email(&self, email: &str) -> Result<Option<Contact>, StoreError> {
        lookup(self.kv.as_ref(), email)
    }
}
