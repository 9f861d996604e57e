//! Conversations and their messages: creation on a visitor's first message, appending
//! with per-conversation `seq` and idempotent `client_msg_id`s, paging, summaries.
//!
//! Every append runs inside one writer closure, so `seq` is gap-free and a resent
//! `client_msg_id` finds the first message, however many connections race. This module
//! decides nothing about prompts: it hands each message to `capture`'s state machine
//! ([`crate::capture::PromptState::step`]) in the same write and stores what it says.
//! It never talks to a socket.

use uuid::Uuid;
use widget_protocol::{
    Author, AuthorKind, CaptureWhen, Contact, Message, Millis, Page, Summary, SummaryVisitor,
    UNKNOWN_VISITOR,
};

use crate::capture::{self, PromptEvent};
use crate::error::{Error, Result};
use crate::followup::state::{self as follow_up, FollowUpEvent};
use crate::hub::{Hub, VisitorKey};
use crate::store::keys::{self, DeadlineKind};
use crate::store::records::{ConversationRecord, PromptState, VisitorRecord};
use crate::store::{self, Batch, Kv, StoreError, Tree, Writer};

/// What the inbox's chatflow says to do after a visitor's first message, decided
/// before the write from settings and presence.
#[derive(Debug, Clone)]
pub struct FirstMessagePlan {
    pub when: CaptureWhen,
    pub delay_ms: u64,
    pub prompt_text: String,
    /// The away message, when the inbox is away now.
    pub away: Option<String>,
}

/// The outcome of an append.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    pub conversation: ConversationRecord,
    /// The conversation was created by this message.
    pub created: bool,
    /// The visitor's record changed with it (new, or chatting from another page).
    pub visitor_changed: bool,
    /// The `client_msg_id` was seen before: `message` is the first one, nothing stored.
    pub duplicate: bool,
    /// The away answer appended right after the visitor's message.
    pub system: Option<Message>,
    /// Push the email prompt now, with this text.
    pub prompt_now: Option<String>,
    /// A deadline this write persisted, for the scheduler.
    pub deadline: Option<(u64, DeadlineKind)>,
}

fn corrupt(tree: Tree, what: &str) -> StoreError {
    StoreError::Corrupt {
        tree,
        reason: what.to_string(),
    }
}

pub fn parse_id(id: &str) -> Option<Uuid> {
    Uuid::parse_str(id).ok()
}

pub fn load(kv: &dyn Kv, id: Uuid) -> Result<Option<ConversationRecord>, StoreError> {
    store::get_json(kv, Tree::Conversations, &keys::id(id))
}

pub fn find_for_visitor(
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

pub fn load_visitor(kv: &dyn Kv, visitor: Uuid) -> Result<Option<VisitorRecord>, StoreError> {
    store::get_json(kv, Tree::Visitors, &keys::id(visitor))
}

/// Puts a message after the conversation's last one and updates the record.
fn push(
    b: &mut Batch,
    conv: &mut ConversationRecord,
    conv_id: Uuid,
    author: Author,
    text: String,
    now: Millis,
) -> Message {
    conv.last_seq += 1;
    let message = Message {
        id: Uuid::now_v7().to_string(),
        conversation_id: conv.id.clone(),
        seq: conv.last_seq,
        author,
        text,
        at: now,
    };
    b.put_json(
        Tree::Messages,
        keys::message(conv_id, message.seq),
        &message,
    );
    conv.updated_at = now;
    conv.last_message = Some(message.clone());
    message
}

/// The earlier message for a repeated `client_msg_id`, if any.
fn earlier(kv: &dyn Kv, conv_id: Uuid, client_msg_id: &str) -> Result<Option<Message>, StoreError> {
    let Some(seq) = kv.get(Tree::ClientIds, &keys::client_id(conv_id, client_msg_id))? else {
        return Ok(None);
    };
    let seq = keys::read_u64(&seq).ok_or_else(|| corrupt(Tree::ClientIds, "seq"))?;
    store::get_json(kv, Tree::Messages, &keys::message(conv_id, seq))
}

fn remember(b: &mut Batch, conv_id: Uuid, client_msg_id: &str, seq: u64) {
    b.put(
        Tree::ClientIds,
        keys::client_id(conv_id, client_msg_id),
        seq.to_be_bytes().to_vec(),
    );
}

/// A visitor's `send`: creates the visitor record and conversation on the first message.
pub struct VisitorSend {
    pub visitor: Uuid,
    pub inbox: String,
    pub client_msg_id: String,
    pub text: String,
    pub page: Option<Page>,
    pub now: Millis,
    pub plan: FirstMessagePlan,
}

pub async fn append_visitor(writer: &Writer, s: VisitorSend) -> Result<Appended> {
    Ok(writer
        .write(move |kv| {
            let mut b = Batch::default();
            let existing = find_for_visitor(kv, s.visitor, &s.inbox)?;
            if let Some(conv) = &existing {
                let conv_id =
                    parse_id(&conv.id).ok_or_else(|| corrupt(Tree::Conversations, "id"))?;
                if let Some(message) = earlier(kv, conv_id, &s.client_msg_id)? {
                    return Ok((b, duplicate(message, conv.clone())));
                }
            }
            let mut visitor = load_visitor(kv, s.visitor)?.unwrap_or_else(|| VisitorRecord {
                id: s.visitor.to_string(),
                created_at: s.now,
                contact_id: None,
                email: None,
                page: None,
            });
            let visitor_changed =
                existing.is_none() || (s.page.is_some() && visitor.page != s.page);
            if s.page.is_some() {
                visitor.page = s.page.clone();
            }
            let created = existing.is_none();
            let mut conv = existing.unwrap_or_else(|| ConversationRecord {
                id: Uuid::now_v7().to_string(),
                inbox: s.inbox.clone(),
                visitor_id: s.visitor.to_string(),
                created_at: s.now,
                updated_at: s.now,
                last_seq: 0,
                last_message: None,
                prompt: PromptState::None,
                prompt_text: None,
                seen_seq: 0,
                follow_up_due: None,
            });
            let conv_id = parse_id(&conv.id).ok_or_else(|| corrupt(Tree::Conversations, "id"))?;
            if created {
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
            if visitor_changed {
                b.put_json(Tree::Visitors, keys::id(s.visitor), &visitor);
            }
            let author = Author {
                kind: AuthorKind::Visitor,
                name: None,
            };
            let message = push(&mut b, &mut conv, conv_id, author, s.text, s.now);
            remember(&mut b, conv_id, &s.client_msg_id, message.seq);
            let read = FollowUpEvent::VisitorRead {
                last_seq: conv.last_seq,
            };
            follow_up::apply(&mut b, conv_id, &mut conv, read);

            let mut out = Appended {
                created,
                visitor_changed,
                ..Appended::stored(message, conv.clone())
            };
            if conv.prompt.before_first_message() {
                let plan = &s.plan;
                if let Some(away) = &plan.away {
                    let author = Author {
                        kind: AuthorKind::System,
                        name: None,
                    };
                    out.system = Some(push(
                        &mut b,
                        &mut conv,
                        conv_id,
                        author,
                        away.clone(),
                        s.now,
                    ));
                    let read = FollowUpEvent::VisitorRead {
                        last_seq: conv.last_seq,
                    };
                    follow_up::apply(&mut b, conv_id, &mut conv, read);
                }
                let first = PromptEvent::FirstMessage {
                    when: plan.when,
                    away: plan.away.is_some(),
                    reachable: visitor.reachable(),
                    due: s.now.saturating_add(plan.delay_ms as Millis),
                };
                let step = capture::apply(&mut b, conv_id, &mut conv, first);
                out.prompt_now = step.push.then(|| plan.prompt_text.clone());
                out.deadline = step.deadline;
                conv.prompt_text = Some(plan.prompt_text.clone());
            }
            b.put_json(Tree::Conversations, keys::id(conv_id), &conv);
            out.conversation = conv;
            Ok((b, out))
        })
        .await?)
}

impl Appended {
    /// A newly stored message with nothing else to do.
    fn stored(message: Message, conversation: ConversationRecord) -> Appended {
        Appended {
            message,
            conversation,
            created: false,
            visitor_changed: false,
            duplicate: false,
            system: None,
            prompt_now: None,
            deadline: None,
        }
    }
}

fn duplicate(message: Message, conversation: ConversationRecord) -> Appended {
    Appended {
        duplicate: true,
        ..Appended::stored(message, conversation)
    }
}

/// An agent's `reply`. The caller has checked the agent may see the conversation.
pub struct AgentReply {
    pub conversation: Uuid,
    pub agent_name: String,
    pub client_msg_id: String,
    pub text: String,
    pub now: Millis,
    /// The visitor has a connection open now (they will see the reply live).
    pub visitor_online: bool,
    /// Schedule a follow-up email this long after the first unseen reply, if the visitor
    /// is offline and has an email.
    pub follow_up_delay_ms: Option<u64>,
}

pub async fn append_agent(writer: &Writer, r: AgentReply) -> Result<Appended> {
    writer
        .transact(move |kv| {
            let mut b = Batch::default();
            let mut conv = load(kv, r.conversation)?.ok_or_else(Error::not_found)?;
            if let Some(message) = earlier(kv, r.conversation, &r.client_msg_id)? {
                return Ok((b, duplicate(message, conv)));
            }
            let author = Author {
                kind: AuthorKind::Agent,
                name: Some(r.agent_name),
            };
            let message = push(&mut b, &mut conv, r.conversation, author, r.text, r.now);
            remember(&mut b, r.conversation, &r.client_msg_id, message.seq);
            // An agent answered in time: no prompt.
            capture::apply(&mut b, r.conversation, &mut conv, PromptEvent::AgentReplied);
            // Only an offline visitor's address matters (for the follow-up email).
            let reachable = !r.visitor_online && visitor_reachable(kv, &conv);
            let replied = FollowUpEvent::AgentReplied {
                seq: message.seq,
                online: r.visitor_online,
                delay: r.follow_up_delay_ms.map(|d| d as Millis),
                reachable,
                now: r.now,
            };
            let deadline = follow_up::apply(&mut b, r.conversation, &mut conv, replied).deadline;
            b.put_json(Tree::Conversations, keys::id(r.conversation), &conv);
            Ok((
                b,
                Appended {
                    deadline,
                    ..Appended::stored(message, conv)
                },
            ))
        })
        .await
}

/// Whether the team can email the conversation's visitor (see [`VisitorRecord::reachable`]);
/// an unreadable visitor record counts as no address.
fn visitor_reachable(kv: &dyn Kv, conv: &ConversationRecord) -> bool {
    parse_id(&conv.visitor_id)
        .and_then(|v| load_visitor(kv, v).ok().flatten())
        .is_some_and(|v| v.reachable())
}

/// Arms the conversation's follow-up email `delay` ms after `now`, unless one is pending
/// or the visitor has no address (neither an email nor a contact). Puts the deadline in
/// `b`; the caller stores `conv` and schedules what this returns.
pub(crate) fn arm_follow_up(
    kv: &dyn Kv,
    b: &mut Batch,
    conv_id: Uuid,
    conv: &mut ConversationRecord,
    now: Millis,
    delay: u64,
) -> Option<(u64, DeadlineKind)> {
    if conv.follow_up_due.is_some() {
        return None;
    }
    if !visitor_reachable(kv, conv) {
        return None;
    }
    let due = now as u64 + delay;
    b.put(
        Tree::Deadlines,
        keys::deadline(due, DeadlineKind::FollowUp, conv_id),
        Vec::new(),
    );
    conv.follow_up_due = Some(due as Millis);
    Some((due, DeadlineKind::FollowUp))
}

/// Appends a `system` message (e.g. "follow-up sent") to an existing conversation.
pub async fn append_system(
    writer: &Writer,
    conversation: Uuid,
    text: String,
    now: Millis,
) -> Result<Option<Appended>> {
    Ok(writer
        .write(move |kv| {
            let mut b = Batch::default();
            let Some(mut conv) = load(kv, conversation)? else {
                return Ok((b, None));
            };
            let author = Author {
                kind: AuthorKind::System,
                name: None,
            };
            let message = push(&mut b, &mut conv, conversation, author, text, now);
            b.put_json(Tree::Conversations, keys::id(conversation), &conv);
            Ok((b, Some(Appended::stored(message, conv))))
        })
        .await?)
}

/// Messages as stored: each entry is the JSON of one wire `Message`, checked to be JSON,
/// so a frame can carry them as they are instead of decoding and encoding each again
/// (see `session::encode_with_messages`).
#[derive(Debug, Default)]
pub struct StoredMessages(Vec<String>);

impl StoredMessages {
    fn from_rows(rows: impl Iterator<Item = Vec<u8>>) -> Result<Self, StoreError> {
        rows.map(|v| store::check_json(Tree::Messages, v))
            .collect::<Result<Vec<_>, _>>()
            .map(StoredMessages)
    }

    /// Rows read newest first, in the order a frame carries them.
    fn from_newest(mut rows: Vec<Vec<u8>>) -> Result<Self, StoreError> {
        rows.reverse();
        Self::from_rows(rows.into_iter())
    }

    pub fn as_json(&self) -> &[String] {
        &self.0
    }

    pub fn decode(&self) -> Result<Vec<Message>, StoreError> {
        self.0
            .iter()
            .map(|m| store::decode(Tree::Messages, m.as_bytes()))
            .collect()
    }
}

/// Rows read from the store at a time while filling a byte budget: the most read past
/// the budget is one read's worth.
const READ_AHEAD: usize = 16;

/// What a list of messages may take.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    /// The most messages.
    pub limit: usize,
    /// The most bytes of message JSON, counting a comma between two; the newest message
    /// is taken whatever its size, so that paging always moves on.
    pub bytes: usize,
}

impl Cut {
    /// At most `limit` messages, whatever their size (for what never goes in a frame).
    pub fn count(limit: usize) -> Cut {
        Cut {
            limit,
            bytes: usize::MAX,
        }
    }
}

/// The newest messages with `from_seq <= seq < before` (`before` none: up to the last),
/// oldest first, within `cut`, and whether more of that range were left out. Reads the
/// store a few rows at a time, from the newest, and stops once the cut is reached, so
/// an oversized list is never loaded.
fn newest(
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

/// Up to `limit` messages with `seq < before` (newest page when `before` is none),
/// oldest first, within `bytes`, and whether older ones exist.
pub fn page(
    kv: &dyn Kv,
    conv: Uuid,
    before: Option<u64>,
    cut: Cut,
) -> Result<(StoredMessages, bool), StoreError> {
    newest(kv, conv, 0, before, cut)
}

/// Every message with `seq > after`, oldest first, and false; or, when there are more
/// than `cut` allows, the newest of them that fit and true (the client pages back for
/// the rest). More than `cut.limit` of them: the newest `page` only, as after a long
/// time away.
pub fn after(
    kv: &dyn Kv,
    conv: Uuid,
    after: u64,
    cut: Cut,
    page: usize,
) -> Result<(StoredMessages, bool), StoreError> {
    let (mut messages, more) = newest(kv, conv, after.saturating_add(1), None, cut)?;
    if more && messages.0.len() >= cut.limit {
        let drop = messages.0.len().saturating_sub(page.max(1));
        messages.0.drain(..drop);
    }
    Ok((messages, more))
}

pub fn contact(kv: &dyn Kv, id: &str) -> Result<Option<Contact>, StoreError> {
    match parse_id(id) {
        Some(id) => store::get_json(kv, Tree::Contacts, &keys::id(id)),
        None => Ok(None),
    }
}

/// "Ada Lovelace", else the email, else "Unknown visitor".
pub fn label(contact: Option<&Contact>) -> String {
    let Some(c) = contact else {
        return UNKNOWN_VISITOR.to_string();
    };
    let full = [c.first_name.as_deref(), c.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if full.is_empty() {
        c.email.clone()
    } else {
        full
    }
}

/// A conversation's deadline fell due: its key leaves the store with `b`, the write that
/// handles it. The conversation, if it still exists.
pub fn fell_due(
    kv: &dyn Kv,
    b: &mut Batch,
    due: u64,
    kind: DeadlineKind,
    conv: Uuid,
) -> Result<Option<ConversationRecord>, StoreError> {
    b.delete(Tree::Deadlines, keys::deadline(due, kind, conv));
    load(kv, conv)
}

/// Whose live connections see this conversation: its visitor's, in its inbox. None for
/// a record whose visitor id does not parse.
pub fn visitor_key(conv: &ConversationRecord) -> Option<VisitorKey> {
    Some(VisitorKey {
        visitor: parse_id(&conv.visitor_id)?,
        inbox: conv.inbox.as_str().into(),
    })
}

pub fn summary(kv: &dyn Kv, hub: &Hub, conv: &ConversationRecord) -> Result<Summary, StoreError> {
    let key = visitor_key(conv).ok_or_else(|| corrupt(Tree::Conversations, "visitor id"))?;
    let visitor = load_visitor(kv, key.visitor)?;
    let contact = match visitor.as_ref().and_then(|v| v.contact_id.as_deref()) {
        Some(id) => contact(kv, id)?,
        None => None,
    };
    Ok(Summary {
        id: conv.id.clone(),
        inbox: conv.inbox.clone(),
        visitor: SummaryVisitor {
            id: conv.visitor_id.clone(),
            label: label(contact.as_ref()),
            online: hub.visitor_shown_online(&key),
            contact,
            page: visitor.and_then(|v| v.page),
        },
        last_message: conv.last_message.clone(),
        created_at: conv.created_at,
        updated_at: conv.updated_at,
    })
}

/// The conversations of some inboxes, newest first, at most `limit`.
pub fn list(
    kv: &dyn Kv,
    inboxes: &[String],
    limit: usize,
) -> Result<Vec<ConversationRecord>, StoreError> {
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
