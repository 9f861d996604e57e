//! Tree names and key layouts, all in one place.
//!
//! Numbers in keys are big-endian so that byte order is numeric order; ids are the 16
//! raw bytes of their UUID. Values are JSON records (see `records`) unless noted.
//!
//! | tree | key | value |
//! | --- | --- | --- |
//! | `meta` | `b"schema"` | u32 BE schema version |
//! | `meta` | `b"applied_lsn"` | u64 BE: the last write-ahead log record applied |
//! | `meta` | `b"upgrade_v2_after"` | while upgrading to schema 2: the last conversation id done |
//! | `inboxes` | inbox key (UTF-8) | `InboxRecord` |
//! | `agents` | agent id | `AgentRecord` |
//! | `agent_tokens` | SHA-256 of the token | agent id |
//! | `visitors` | visitor id | `VisitorRecord` (written on the first message) |
//! | `conversations` | conversation id | `ConversationRecord` |
//! | `conv_by_visitor` | visitor id ++ inbox key | conversation id |
//! | `conv_by_inbox` | inbox key ++ 0x00 ++ conversation id | empty (schema 1 only; no longer written or read) |
//! | `messages` | conversation id ++ seq (u64 BE) | protocol `Message` |
//! | `client_ids` | conversation id ++ client_msg_id | seq (u64 BE) |
//! | `contacts` | contact id | protocol `Contact` |
//! | `contact_emails` | lower-cased email | contact id |
//! | `deadlines` | due ms (u64 BE) ++ kind (u8) ++ conversation id | empty |
//! | `outbox` | email id | `OutboxRecord` |
//! | `activity` | inbox key ++ 0x00 ++ [`Facet`] ++ !updated_at (u64 BE) ++ !conversation id (bits flipped: newest first) | empty |
//! | `words` | inbox key ++ 0x00 ++ word (UTF-8) ++ 0x00 ++ conversation id | empty |
//! | `conv_words` | conversation id ++ word (UTF-8) | empty |
//! | `places` | conversation id | updated_at (u64 BE) ++ status (u8) ++ assignee id (16 bytes, zeros: none) |
//! | `canned` | inbox key ++ 0x00 ++ canned reply id (a v7 UUID: oldest first) | protocol `CannedReply` |
//! | `sign_ins` | SHA-256 of a sign-in session's secret | `SignInRecord` |
//! | `agent_sign_ins` | agent id ++ SHA-256 of the secret | empty |
//!
//! `activity` is the conversation list: each conversation has four keys in its inbox,
//! one per [`Facet`] (all; its status; its assignee; both), so a walk newest first down
//! one facet's keys is exactly the list for one filter. The keys move with every
//! change of `updated_at`, status or assignee, in the same write as the record
//! (`kv_store::listing::put_conversation`). `words` is the search index, word to
//! conversations, per inbox (a query term is a prefix scan); `conv_words` is the same
//! pairs the other way round, for "does this conversation have a word starting with
//! …" (one seek) and for "already indexed" (one get). A word never holds 0x00 (see
//! `search`). `places` is a conversation's place in the list without its record, so
//! a search can filter and sort many candidates and load only the page's records.
//! `agent_sign_ins` is `sign_ins` by agent, for what a sign-in drops and a revoke ends.

use uuid::Uuid;
use widget_protocol::Millis;

use widget_protocol::Status;

use crate::ids::{AgentId, ConversationId, VisitorId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tree {
    Meta,
    Inboxes,
    Agents,
    AgentTokens,
    Visitors,
    Conversations,
    ConvByVisitor,
    ConvByInbox,
    Messages,
    ClientIds,
    Contacts,
    ContactEmails,
    Deadlines,
    Outbox,
    Activity,
    Words,
    ConvWords,
    Places,
    Canned,
    SignIns,
    AgentSignIns,
}

impl Tree {
    pub const ALL: [Tree; 21] = [
        Tree::Meta,
        Tree::Inboxes,
        Tree::Agents,
        Tree::AgentTokens,
        Tree::Visitors,
        Tree::Conversations,
        Tree::ConvByVisitor,
        Tree::ConvByInbox,
        Tree::Messages,
        Tree::ClientIds,
        Tree::Contacts,
        Tree::ContactEmails,
        Tree::Deadlines,
        Tree::Outbox,
        Tree::Activity,
        Tree::Words,
        Tree::ConvWords,
        Tree::Places,
        Tree::Canned,
        Tree::SignIns,
        Tree::AgentSignIns,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Meta => "meta",
            Tree::Inboxes => "inboxes",
            Tree::Agents => "agents",
            Tree::AgentTokens => "agent_tokens",
            Tree::Visitors => "visitors",
            Tree::Conversations => "conversations",
            Tree::ConvByVisitor => "conv_by_visitor",
            Tree::ConvByInbox => "conv_by_inbox",
            Tree::Messages => "messages",
            Tree::ClientIds => "client_ids",
            Tree::Contacts => "contacts",
            Tree::ContactEmails => "contact_emails",
            Tree::Deadlines => "deadlines",
            Tree::Outbox => "outbox",
            Tree::Activity => "activity",
            Tree::Words => "words",
            Tree::ConvWords => "conv_words",
            Tree::Places => "places",
            Tree::Canned => "canned",
            Tree::SignIns => "sign_ins",
            Tree::AgentSignIns => "agent_sign_ins",
        }
    }

    pub fn index(self) -> usize {
        Tree::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }

    /// The tree's byte on disk (the key prefix in the engine, the tree in a log record).
    /// Fixed forever: never renumber, only add.
    pub fn tag(self) -> u8 {
        match self {
            Tree::Meta => 1,
            Tree::Inboxes => 2,
            Tree::Agents => 3,
            Tree::AgentTokens => 4,
            Tree::Visitors => 5,
            Tree::Conversations => 6,
            Tree::ConvByVisitor => 7,
            Tree::ConvByInbox => 8,
            Tree::Messages => 9,
            Tree::ClientIds => 10,
            Tree::Contacts => 11,
            Tree::ContactEmails => 12,
            Tree::Deadlines => 13,
            Tree::Outbox => 14,
            Tree::Activity => 15,
            Tree::Words => 16,
            Tree::ConvWords => 17,
            Tree::Places => 18,
            Tree::Canned => 19,
            Tree::SignIns => 20,
            Tree::AgentSignIns => 21,
        }
    }

    pub fn from_tag(tag: u8) -> Option<Tree> {
        Tree::ALL.iter().copied().find(|t| t.tag() == tag)
    }
}

pub const SCHEMA_KEY: &[u8] = b"schema";

/// In `meta`, while the store is being upgraded to schema 2: the id of the last
/// conversation done (see `kv_store::upgrade`).
pub const UPGRADE_PROGRESS_KEY: &[u8] = b"upgrade_v2_after";

/// In `meta`: the log sequence number of the last write applied to the engine (u64 BE),
/// written after each group's writes; see `store::wal`.
pub const APPLIED_LSN_KEY: &[u8] = b"applied_lsn";

pub fn read_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

pub fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

pub fn id(id: impl Into<Uuid>) -> Vec<u8> {
    id.into().as_bytes().to_vec()
}

pub fn read_id<T: From<Uuid>>(b: &[u8]) -> Option<T> {
    Uuid::from_slice(b).ok().map(T::from)
}

/// The prefix of an inbox's canned replies.
pub fn canned_prefix(inbox: &str) -> Vec<u8> {
    let mut k = inbox.as_bytes().to_vec();
    k.push(0);
    k
}

pub fn canned(inbox: &str, id: Uuid) -> Vec<u8> {
    let mut k = canned_prefix(inbox);
    k.extend_from_slice(id.as_bytes());
    k
}

pub fn conv_by_visitor(visitor: VisitorId, inbox: &str) -> Vec<u8> {
    let mut k = id(visitor);
    k.extend_from_slice(inbox.as_bytes());
    k
}

/// The start of every key of `inbox` in a per-inbox tree.
fn inbox_prefix(inbox: &str) -> Vec<u8> {
    let mut k = inbox.as_bytes().to_vec();
    k.push(0);
    k
}

/// Which conversations of an inbox one run of `activity` keys holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facet {
    All,
    Status(Status),
    /// Assigned to this agent, or (None) to nobody.
    Assignee(Option<AgentId>),
    Both(Status, Option<AgentId>),
}

impl Facet {
    /// The four facets a conversation with this status and assignee is listed under.
    pub fn of(status: Status, assignee: Option<AgentId>) -> [Facet; 4] {
        [
            Facet::All,
            Facet::Status(status),
            Facet::Assignee(assignee),
            Facet::Both(status, assignee),
        ]
    }

    fn encode(self, k: &mut Vec<u8>) {
        match self {
            Facet::All => k.push(0),
            Facet::Status(s) => k.extend_from_slice(&[1, status(s)]),
            Facet::Assignee(a) => {
                k.push(2);
                k.extend_from_slice(&agent(a));
            }
            Facet::Both(s, a) => {
                k.extend_from_slice(&[3, status(s)]);
                k.extend_from_slice(&agent(a));
            }
        }
    }
}

fn status(s: Status) -> u8 {
    match s {
        Status::Open => 1,
        Status::Pending => 2,
        Status::Resolved => 3,
    }
}

fn agent(a: Option<AgentId>) -> [u8; 16] {
    a.map_or([0u8; 16], |a| *a.uuid().as_bytes())
}

/// A `places` value: a conversation's activity time, status and assignee.
pub fn place(at: u64, s: Status, assignee: Option<AgentId>) -> Vec<u8> {
    let mut v = at.to_be_bytes().to_vec();
    v.push(status(s));
    v.extend_from_slice(&agent(assignee));
    v
}

pub fn read_place(v: &[u8]) -> Option<(u64, Status, Option<AgentId>)> {
    if v.len() != 25 {
        return None;
    }
    let s = match v[8] {
        1 => Status::Open,
        2 => Status::Pending,
        3 => Status::Resolved,
        _ => return None,
    };
    let a = Uuid::from_slice(&v[9..]).ok()?;
    Some((
        read_u64(&v[..8])?,
        s,
        (!a.is_nil()).then(|| AgentId::from_uuid(a)),
    ))
}

/// The start of the `activity` keys of one facet of an inbox.
pub fn activity_prefix(inbox: &str, facet: Facet) -> Vec<u8> {
    let mut k = inbox_prefix(inbox);
    facet.encode(&mut k);
    k
}

/// A conversation's place (`at`, its activity time) under `prefix`. Time and id are
/// stored inverted (every bit flipped), so the newest come first in key order and the
/// list is read forwards (the engine's reverse scans are much slower).
pub fn activity(prefix: &[u8], at: u64, conv: ConversationId) -> Vec<u8> {
    let mut k = prefix.to_vec();
    k.extend_from_slice(&(!at).to_be_bytes());
    k.extend(conv.uuid().as_bytes().iter().map(|b| !b));
    k
}

/// The time and conversation of an `activity` key under a prefix of `prefix_len` bytes.
pub fn read_activity(k: &[u8], prefix_len: usize) -> Option<(u64, ConversationId)> {
    let tail = k.get(prefix_len..)?;
    if tail.len() != 24 {
        return None;
    }
    let id: Vec<u8> = tail[8..].iter().map(|b| !b).collect();
    Some((!read_u64(&tail[..8])?, read_id(&id)?))
}

/// The start of the `words` keys of every word of `inbox` that begins with `term`.
pub fn words_prefix(inbox: &str, term: &str) -> Vec<u8> {
    let mut k = inbox_prefix(inbox);
    k.extend_from_slice(term.as_bytes());
    k
}

pub fn word(inbox: &str, word: &str, conv: ConversationId) -> Vec<u8> {
    let mut k = words_prefix(inbox, word);
    k.push(0);
    k.extend_from_slice(conv.uuid().as_bytes());
    k
}

/// The conversation of a `words` key (its last 16 bytes).
pub fn read_word_conversation(k: &[u8]) -> Option<ConversationId> {
    read_id(&k[k.len().checked_sub(16)?..])
}

/// `conv_words`: `conv` has a word that begins with `term` (a prefix), or is `term`.
pub fn conv_word(conv: ConversationId, term: &str) -> Vec<u8> {
    let mut k = id(conv);
    k.extend_from_slice(term.as_bytes());
    k
}

pub fn message(conv: ConversationId, seq: u64) -> Vec<u8> {
    let mut k = id(conv);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

pub fn client_id(conv: ConversationId, client_msg_id: &str) -> Vec<u8> {
    let mut k = id(conv);
    k.extend_from_slice(client_msg_id.as_bytes());
    k
}

/// The start of every `agent_sign_ins` key of `agent`.
pub fn agent_sign_ins(agent: AgentId) -> Vec<u8> {
    id(agent)
}

pub fn agent_sign_in(agent: AgentId, session: &[u8]) -> Vec<u8> {
    let mut k = id(agent);
    k.extend_from_slice(session);
    k
}

pub fn contact_email(email: &str) -> Vec<u8> {
    email.to_lowercase().into_bytes()
}

/// What a deadline is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeadlineKind {
    /// The email-capture prompt of a `no_reply` chatflow.
    Prompt = 1,
    /// The follow-up email to a visitor who left before reading agent replies.
    FollowUp = 2,
    /// The next delivery attempt of an outbox email (id in place of a conversation).
    Delivery = 3,
}

impl DeadlineKind {
    fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(DeadlineKind::Prompt),
            2 => Some(DeadlineKind::FollowUp),
            3 => Some(DeadlineKind::Delivery),
            _ => None,
        }
    }
}

/// A deadline's key; a time before the epoch is stored as the epoch.
pub fn deadline(due: Millis, kind: DeadlineKind, subject: Uuid) -> Vec<u8> {
    let due = u64::try_from(due).unwrap_or(0);
    let mut k = due.to_be_bytes().to_vec();
    k.push(kind as u8);
    k.extend_from_slice(subject.as_bytes());
    k
}

pub fn read_deadline(k: &[u8]) -> Option<(Millis, DeadlineKind, Uuid)> {
    if k.len() != 25 {
        return None;
    }
    let due = Millis::try_from(read_u64(&k[..8])?).ok()?;
    let kind = DeadlineKind::from_u8(k[8])?;
    let subject = read_id(&k[9..])?;
    Some((due, kind, subject))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_keys_sort_by_seq() {
        let c = ConversationId::generate();
        assert!(message(c, 2) < message(c, 10));
        assert!(message(c, 255) < message(c, 256));
    }

    #[test]
    fn deadline_keys_round_trip_and_sort_by_time() {
        let s = Uuid::new_v4();
        let k = deadline(1_000, DeadlineKind::Prompt, s);
        assert_eq!(read_deadline(&k), Some((1_000, DeadlineKind::Prompt, s)));
        assert!(deadline(999, DeadlineKind::FollowUp, s) < k);
        assert_eq!(read_deadline(&k[..10]), None);
    }

    #[test]
    fn activity_keys_sort_newest_first_within_one_facet() {
        let (a, b) = (
            ConversationId::from_uuid(Uuid::from_u128(1)),
            ConversationId::from_uuid(Uuid::from_u128(2)),
        );
        let p = activity_prefix("main", Facet::Status(Status::Open));
        assert!(activity(&p, 6, a) < activity(&p, 5, b), "newest first");
        assert!(
            activity(&p, 5, b) < activity(&p, 5, a),
            "then the higher id"
        );
        assert_eq!(read_activity(&activity(&p, 5, b), p.len()), Some((5, b)));
        let facets = Facet::of(Status::Open, None);
        let prefixes: std::collections::HashSet<_> =
            facets.iter().map(|f| activity_prefix("main", *f)).collect();
        assert_eq!(prefixes.len(), 4, "the four facets never share keys");
        assert!(
            !activity_prefix("main", Facet::All).starts_with(&activity_prefix("mai", Facet::All))
        );
    }

    #[test]
    fn places_round_trip() {
        let a = AgentId::from_uuid(Uuid::from_u128(3));
        for (s, who) in [(Status::Pending, Some(a)), (Status::Resolved, None)] {
            assert_eq!(read_place(&place(42, s, who)), Some((42, s, who)));
        }
        assert_eq!(read_place(&[0; 24]), None);
    }

    #[test]
    fn a_word_key_starts_with_the_prefix_of_every_term_it_begins_with() {
        let c = ConversationId::from_uuid(Uuid::from_u128(7));
        let k = word("main", "refund", c);
        assert!(k.starts_with(&words_prefix("main", "ref")));
        assert!(!k.starts_with(&words_prefix("main", "und")));
        assert_eq!(read_word_conversation(&k), Some(c));
        assert!(conv_word(c, "refund").starts_with(&conv_word(c, "re")));
    }

    #[test]
    fn tree_tags_are_distinct_and_round_trip() {
        for t in Tree::ALL {
            assert_eq!(Tree::from_tag(t.tag()), Some(t));
        }
        assert_eq!(Tree::from_tag(0), None);
    }
}
