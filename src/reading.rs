//! Read cursors: how far each agent has read a conversation (`mark_read`) and how far
//! its visitor has seen it (`seen`), as pure plans that the store carries out in one
//! write each.
//!
//! Both cursors move forward only, and a `seq` past the last message counts as the
//! last. An agent's cursor keeps, with its `seq`, how many of the visitor's messages
//! there were up to it, so `unread` is the conversation's count less the cursor's and a
//! visitor's message costs no write per agent. The visitor's cursor is what follow-ups
//! hear: a reply they have seen is never mailed (`followup::state`'s `Seen`). This
//! module never writes, fans out or talks to a socket.

use widget_protocol::AuthorKind;

use crate::conversations::Cut;
use crate::deadlines::Change;
use crate::followup::state::{self as follow_up, FollowUpEvent};
use crate::ids::AgentId;
use crate::store::api::Reads;
use crate::store::records::{ConversationRecord, ReadCursor};
use crate::store::StoreError;

/// What an agent's `mark_read` did.
#[derive(Debug, Clone)]
pub struct MarkedRead {
    /// The conversation, changed or not.
    pub conversation: ConversationRecord,
    /// The agent's cursor moved: there is something to store.
    pub moved: bool,
    /// The conversation's highest read `seq` moved to this (the visitor hears `seen`).
    pub read_seq: Option<u64>,
}

/// Whether `mark_read` of `seq` would move `agent`'s cursor of `conv`. Cursors only
/// move forward, so a "no" read before the write stays true: the write can be skipped.
pub fn read_moves(conv: &ConversationRecord, agent: AgentId, seq: u64) -> bool {
    let cursor = conv.read.get(&agent).map_or(0, |c| c.seq);
    seq.min(conv.last_seq) > cursor
}

/// Whether the visitor's `seen` of `seq` would move their cursor of `conv` (as
/// [`read_moves`], a "no" stays true).
pub fn seen_moves(conv: &ConversationRecord, seq: u64) -> bool {
    seq.min(conv.last_seq) > conv.visitor_seen_seq
}

impl MarkedRead {
    /// Nothing moved: `conv` as it is.
    pub fn unchanged(conv: ConversationRecord) -> MarkedRead {
        MarkedRead {
            conversation: conv,
            moved: false,
            read_seq: None,
        }
    }
}

/// The cursor at `seq` (at most the last message) of `conv` as read a moment ago: the
/// visitor's messages up to it. Read before the write, not in it (counting below the
/// last message reads every message after `seq`, which must not hold up the one
/// writer): messages are never changed, so the count up to a `seq` the conversation
/// already had stays true whatever is appended meanwhile.
pub fn cursor_at(
    conv: &ConversationRecord,
    seq: u64,
    reads: &dyn Reads,
) -> Result<ReadCursor, StoreError> {
    let to = seq.min(conv.last_seq);
    let after = if to < conv.last_seq {
        let (messages, _) = reads.after(conv.id, to, Cut::count(usize::MAX), usize::MAX)?;
        let by_visitor = messages
            .decode()?
            .iter()
            // Only what `conv` counted: later messages may have arrived since.
            .filter(|m| m.seq <= conv.last_seq && m.author.kind == AuthorKind::Visitor)
            .count();
        by_visitor as u64
    } else {
        0
    };
    Ok(ReadCursor {
        seq: to,
        visitor_messages: conv.visitor_messages.saturating_sub(after),
    })
}

/// Moves `agent`'s cursor of `conv` forward to `cursor` (from [`cursor_at`] on an
/// earlier read of `conv`); never back.
pub fn plan_mark_read(
    mut conv: ConversationRecord,
    agent: AgentId,
    cursor: ReadCursor,
) -> MarkedRead {
    if !read_moves(&conv, agent, cursor.seq) {
        return MarkedRead::unchanged(conv);
    }
    // A cursor past the end cannot come from an earlier read; should one, it is the end.
    let cursor = if cursor.seq > conv.last_seq {
        ReadCursor {
            seq: conv.last_seq,
            visitor_messages: conv.visitor_messages,
        }
    } else {
        cursor
    };
    let before = conv.read_seq();
    conv.read.insert(agent, cursor);
    let now = conv.read_seq();
    MarkedRead {
        read_seq: (now > before).then_some(now),
        moved: true,
        conversation: conv,
    }
}

/// What the visitor's `seen` changed.
#[derive(Debug, Clone)]
pub struct Seen {
    pub conversation: ConversationRecord,
    /// What becomes of the follow-up deadline (a pending email for replies now seen).
    pub deadline: Option<Change>,
}

/// Moves the visitor's seen cursor of `conv` forward to `seq` (at most the last
/// message), and tells the follow-up; None when it does not move.
pub fn plan_seen(mut conv: ConversationRecord, seq: u64) -> Option<Seen> {
    if !seen_moves(&conv, seq) {
        return None;
    }
    let to = seq.min(conv.last_seq);
    conv.visitor_seen_seq = to;
    let event = FollowUpEvent::Seen {
        seq: to,
        last_seq: conv.last_seq,
    };
    let step = follow_up::apply(&mut conv, event);
    Some(Seen {
        conversation: conv,
        deadline: step.deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversations::StoredMessages;
    use crate::ids::{ContactId, ConversationId, VisitorId};
    use crate::store::records::VisitorRecord;
    use widget_protocol::{Author, Contact, Message};

    /// A conversation's messages, for the count before the write; counts its reads.
    struct Messages(Vec<Message>, std::cell::Cell<usize>);

    impl Reads for Messages {
        fn visitor(&self, _: VisitorId) -> Result<Option<VisitorRecord>, StoreError> {
            Ok(None)
        }
        fn contact(&self, _: ContactId) -> Result<Option<Contact>, StoreError> {
            Ok(None)
        }
        fn page(
            &self,
            _: ConversationId,
            _: Option<u64>,
            _: Cut,
        ) -> Result<(StoredMessages, bool), StoreError> {
            unreachable!("mark_read reads only what follows its seq")
        }
        fn after(
            &self,
            _: ConversationId,
            after: u64,
            _: Cut,
            _: usize,
        ) -> Result<(StoredMessages, bool), StoreError> {
            self.1.set(self.1.get() + 1);
            let rows = self
                .0
                .iter()
                .filter(|m| m.seq > after)
                .map(|m| serde_json::to_vec(m).expect("encodes"));
            Ok((StoredMessages::from_rows(rows)?, false))
        }
    }

    fn agent(n: u128) -> AgentId {
        AgentId::from_uuid(uuid::Uuid::from_u128(n))
    }

    /// Seqs 1..: v = visitor, a = agent, s = system.
    fn conversation(kinds: &str) -> (ConversationRecord, Messages) {
        let id = ConversationId::from_uuid(uuid::Uuid::from_u128(7));
        let visitor = VisitorId::from_uuid(uuid::Uuid::from_u128(8));
        let mut conv = ConversationRecord::new(id, "default".into(), visitor, 1);
        let messages = kinds
            .chars()
            .zip(1..)
            .map(|(k, seq)| {
                let kind = match k {
                    'v' => AuthorKind::Visitor,
                    'a' => AuthorKind::Agent,
                    _ => AuthorKind::System,
                };
                Message {
                    id: format!("m{seq}"),
                    conversation_id: id.into(),
                    seq,
                    author: Author { kind, name: None },
                    text: "x".into(),
                    at: 1,
                    attachments: Vec::new(),
                }
            })
            .collect::<Vec<_>>();
        conv.last_seq = messages.len() as u64;
        conv.visitor_messages = kinds.chars().filter(|&k| k == 'v').count() as u64;
        (conv, Messages(messages, Default::default()))
    }

    fn mark(conv: &ConversationRecord, who: AgentId, seq: u64, m: &Messages) -> Option<MarkedRead> {
        let cursor = cursor_at(conv, seq, m).expect("reads");
        let read = plan_mark_read(conv.clone(), who, cursor);
        read.moved.then_some(read)
    }

    #[test]
    fn a_cursor_read_before_new_messages_arrived_still_counts_right() {
        let (now, m) = conversation("vavvv");
        // Read when the conversation had three messages; two came before the write.
        let mut then = now.clone();
        then.last_seq = 3;
        then.visitor_messages = 2;
        let cursor = cursor_at(&then, 1, &m).expect("reads");
        assert_eq!(
            cursor,
            ReadCursor {
                seq: 1,
                visitor_messages: 1
            }
        );
        let read = plan_mark_read(now, agent(1), cursor);
        assert_eq!(read.conversation.unread_for(agent(1)), 3);
    }

    #[test]
    fn unread_counts_the_visitor_messages_after_each_agents_cursor() {
        let (conv, m) = conversation("vavvsv");
        let (ann, bob) = (agent(1), agent(2));
        assert_eq!((conv.unread_for(ann), conv.unread_for(bob)), (4, 4));
        let read = mark(&conv, ann, 3, &m).expect("moves");
        assert_eq!(read.read_seq, Some(3));
        let conv = read.conversation;
        assert_eq!(
            conv.read[&ann],
            ReadCursor {
                seq: 3,
                visitor_messages: 2
            }
        );
        assert_eq!((conv.unread_for(ann), conv.unread_for(bob)), (2, 4));
        // Bob reads less: his unread is his, and the highest read seq stays.
        let read = mark(&conv, bob, 1, &m).expect("moves");
        assert_eq!(read.read_seq, None);
        assert_eq!(read.conversation.unread_for(bob), 3);
        assert_eq!(read.conversation.read_seq(), 3);
    }

    #[test]
    fn a_cursor_never_moves_back_and_a_seq_past_the_end_is_the_last() {
        let (conv, m) = conversation("vav");
        let ann = agent(1);
        let read = mark(&conv, ann, 99, &m).expect("moves");
        assert_eq!(read.read_seq, Some(3));
        let conv = read.conversation;
        assert_eq!(conv.read[&ann].seq, 3);
        assert_eq!(conv.unread_for(ann), 0);
        for seq in [0, 2, 3, 99] {
            assert!(mark(&conv, ann, seq, &m).is_none(), "seq {seq}");
        }
        // A new visitor message is unread again, with no write per agent.
        let mut more = conv.clone();
        more.last_seq += 1;
        more.visitor_messages += 1;
        assert_eq!(more.unread_for(ann), 1);
    }

    #[test]
    fn reading_to_the_last_message_reads_nothing_from_the_store() {
        let (conv, m) = conversation("vvav");
        let cursor = cursor_at(&conv, 4, &m).expect("no read");
        assert_eq!(m.1.get(), 0, "the last message needs no count");
        let read = plan_mark_read(conv, agent(1), cursor);
        assert!(read.moved);
        let cursor = read.conversation.read[&agent(1)];
        assert_eq!(
            cursor,
            ReadCursor {
                seq: 4,
                visitor_messages: 3
            }
        );
    }

    #[test]
    fn the_visitors_seen_cursor_moves_forward_only_and_clamps() {
        let (conv, _) = conversation("vaa");
        let seen = plan_seen(conv, 2).expect("moves");
        assert_eq!(seen.conversation.visitor_seen_seq, 2);
        let conv = seen.conversation;
        assert!(plan_seen(conv.clone(), 2).is_none());
        assert!(plan_seen(conv.clone(), 1).is_none());
        assert!(plan_seen(conv.clone(), 0).is_none());
        let seen = plan_seen(conv, 50).expect("moves");
        assert_eq!(seen.conversation.visitor_seen_seq, 3, "clamped to the last");
        assert!(plan_seen(seen.conversation, 50).is_none());
    }

    #[test]
    fn seeing_every_reply_cancels_the_pending_follow_up_and_seeing_some_narrows_it() {
        let (mut conv, _) = conversation("vaa");
        conv.seen_seq = 1;
        conv.follow_up_due = Some(5_000);
        let narrowed = plan_seen(conv.clone(), 2).expect("moves");
        assert_eq!(narrowed.deadline, None);
        let c = &narrowed.conversation;
        assert_eq!((c.seen_seq, c.follow_up_due), (2, Some(5_000)));
        let cancelled = plan_seen(conv, 3).expect("moves");
        assert_eq!(cancelled.deadline, Some(Change::Disarm(5_000)));
        let c = &cancelled.conversation;
        assert_eq!((c.seen_seq, c.follow_up_due), (3, None));
    }
}
