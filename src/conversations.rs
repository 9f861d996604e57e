//! Conversations and their messages: what a message changes in its conversation, as
//! pure plans that every store backend carries out, and the summaries agents see.
//!
//! A visitor's `send` creates the conversation and the visitor's record on the first
//! message and appends after the last one; an agent's `reply` appends and hands the
//! reply to the prompt and follow-up machines. The backend runs each plan inside one
//! write (see `store::Store`), so `seq` is gap-free and a resent `client_msg_id` finds
//! the first message, however many connections race. This module decides nothing about
//! prompts or follow-ups: it hands each message to `capture`'s and `followup`'s state
//! machines and keeps what they say. It never talks to a socket or to the engine.

use widget_protocol::{
    Assignee, Author, AuthorKind, CaptureWhen, Contact, Message, Millis, Page, Status, Summary,
    SummaryVisitor, UNKNOWN_VISITOR,
};

use crate::capture::{self, PromptEvent};
use crate::deadlines::Change;
use crate::followup::state::{self as follow_up, FollowUpEvent};
use crate::hub::{Hub, VisitorKey};
use crate::ids::{AgentId, ConversationId, VisitorId};
use crate::store::keys::DeadlineKind;
use crate::store::records::{AssigneeRecord, ConversationRecord, VisitorRecord};
use crate::store::{self, Store, StoreError, Tree};

/// What the inbox's chatflow says to do after a visitor's first message, decided
/// before the write from settings and presence.
#[derive(Debug, Clone)]
pub struct FirstMessagePlan {
    pub when: CaptureWhen,
    pub delay_ms: Millis,
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
    pub deadline: Option<(Millis, DeadlineKind)>,
    /// The message reopened a resolved conversation.
    pub reopened: bool,
}

impl Appended {
    /// A newly stored message with nothing else to do.
    pub fn stored(message: Message, conversation: ConversationRecord) -> Appended {
        Appended {
            message,
            conversation,
            created: false,
            visitor_changed: false,
            duplicate: false,
            system: None,
            prompt_now: None,
            deadline: None,
            reopened: false,
        }
    }

    /// The answer to a repeated `client_msg_id`: the first message, nothing stored.
    pub fn duplicate(message: Message, conversation: ConversationRecord) -> Appended {
        Appended {
            duplicate: true,
            ..Appended::stored(message, conversation)
        }
    }
}

/// A visitor's `send`: creates the visitor record and conversation on the first message.
pub struct VisitorSend {
    pub visitor: VisitorId,
    pub inbox: String,
    pub client_msg_id: String,
    pub text: String,
    pub page: Option<Page>,
    pub now: Millis,
    pub plan: FirstMessagePlan,
}

/// An agent's `reply`. The caller has checked the agent may see the conversation.
pub struct AgentReply {
    pub conversation: ConversationId,
    pub agent_name: String,
    pub client_msg_id: String,
    pub text: String,
    pub now: Millis,
    /// The visitor has a connection open now (they will see the reply live).
    pub visitor_online: bool,
    /// Schedule a follow-up email this long after the first unseen reply, if the visitor
    /// is offline and has an email.
    pub follow_up_delay_ms: Option<Millis>,
}

/// What one write changes in a conversation: the messages to append after its last one
/// (already numbered), the record to store, and its deadlines to arm or disarm.
#[derive(Debug, Clone)]
pub struct Plan {
    pub conversation: ConversationRecord,
    pub messages: Vec<Message>,
    pub deadlines: Vec<(DeadlineKind, Change)>,
}

impl Plan {
    fn of(conversation: ConversationRecord) -> Plan {
        Plan {
            conversation,
            messages: Vec::new(),
            deadlines: Vec::new(),
        }
    }

    /// Puts a message after the conversation's last one and updates the record.
    fn push(
        &mut self,
        kind: AuthorKind,
        name: Option<String>,
        text: String,
        now: Millis,
    ) -> Message {
        let conv = &mut self.conversation;
        conv.last_seq += 1;
        // What agents' `unread` counts (see `reading`): no write per agent.
        if kind == AuthorKind::Visitor {
            conv.visitor_messages += 1;
        }
        let message = Message {
            id: uuid::Uuid::now_v7().to_string(),
            conversation_id: conv.id.into(),
            seq: conv.last_seq,
            author: Author { kind, name },
            text,
            at: now,
            attachments: Vec::new(),
        };
        conv.updated_at = now;
        conv.last_message = Some(message.clone());
        self.messages.push(message.clone());
        message
    }

    fn deadline(&mut self, kind: DeadlineKind, change: Option<Change>) {
        self.deadlines.extend(change.map(|c| (kind, c)));
    }

    fn follow_up(&mut self, event: FollowUpEvent) {
        let step = follow_up::apply(&mut self.conversation, event);
        self.deadline(DeadlineKind::FollowUp, step.deadline);
    }
}

/// A plan and the message it was made for.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: Plan,
    pub message: Message,
}

/// What a visitor's (not repeated) message changes.
#[derive(Debug, Clone)]
pub struct VisitorMessagePlan {
    pub plan: Plan,
    pub message: Message,
    /// The away answer appended right after it.
    pub system: Option<Message>,
    pub created: bool,
    /// The visitor's record, when it is new or changed.
    pub visitor: Option<VisitorRecord>,
    /// Push the email prompt now, with this text.
    pub prompt_now: Option<String>,
    /// The conversation was resolved and is open again.
    pub reopened: bool,
}

/// The plan of a visitor's message, from the visitor's conversation in the inbox and
/// their record as stored (either may not exist yet).
pub fn plan_visitor_message(
    existing: Option<ConversationRecord>,
    visitor: Option<VisitorRecord>,
    s: &VisitorSend,
) -> VisitorMessagePlan {
    let mut visitor = visitor.unwrap_or_else(|| VisitorRecord::new(s.visitor, s.now));
    let created = existing.is_none();
    let visitor_changed = created || (s.page.is_some() && visitor.page != s.page);
    if s.page.is_some() {
        visitor.page = s.page.clone();
    }
    let mut plan = Plan::of(existing.unwrap_or_else(|| {
        ConversationRecord::new(
            ConversationId::generate(),
            s.inbox.clone(),
            s.visitor,
            s.now,
        )
    }));
    let message = plan.push(AuthorKind::Visitor, None, s.text.clone(), s.now);
    // A visitor writing again means the matter is not settled.
    let reopened = plan.conversation.status == Status::Resolved;
    if reopened {
        plan.conversation.status = Status::Open;
    }
    let read = |p: &Plan| FollowUpEvent::VisitorRead {
        last_seq: p.conversation.last_seq,
    };
    plan.follow_up(read(&plan));
    let (mut prompt_now, mut system) = (None, None);
    if plan.conversation.prompt.before_first_message() {
        let first = &s.plan;
        if let Some(away) = &first.away {
            system = Some(plan.push(AuthorKind::System, None, away.clone(), s.now));
            plan.follow_up(read(&plan));
        }
        let event = PromptEvent::FirstMessage {
            when: first.when,
            away: first.away.is_some(),
            reachable: visitor.reachable(),
            due: s.now.saturating_add(first.delay_ms),
        };
        let step = capture::apply(&mut plan.conversation, event);
        plan.deadline(DeadlineKind::Prompt, step.deadline);
        prompt_now = step.push.then(|| first.prompt_text.clone());
        plan.conversation.prompt_text = Some(first.prompt_text.clone());
    }
    VisitorMessagePlan {
        plan,
        message,
        system,
        created,
        visitor: visitor_changed.then_some(visitor),
        prompt_now,
        reopened,
    }
}

/// A change to where the team stands with a conversation. The caller has checked the
/// agent may see the conversation and, for an assignee, that they are a member of its
/// inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Workflow {
    Status(Status),
    Assign(Option<AssigneeRecord>),
}

/// The conversation after `change`, or None when it changes nothing (nothing to store).
/// Its activity time stays: the inbox is ordered by messages, not by who handles them.
pub fn plan_workflow(
    mut conv: ConversationRecord,
    change: &Workflow,
) -> Option<ConversationRecord> {
    let changed = match change {
        Workflow::Status(status) => std::mem::replace(&mut conv.status, *status) != *status,
        Workflow::Assign(who) => std::mem::replace(&mut conv.assignee, who.clone()) != *who,
    };
    changed.then_some(conv)
}

/// The plan of an agent's (not repeated) reply to `conv`; `reachable`: the team has the
/// visitor's email (see [`VisitorRecord::reachable`]).
pub fn plan_agent_reply(conv: ConversationRecord, reachable: bool, r: &AgentReply) -> Planned {
    let mut plan = Plan::of(conv);
    let message = plan.push(
        AuthorKind::Agent,
        Some(r.agent_name.clone()),
        r.text.clone(),
        r.now,
    );
    // An agent answered in time: no prompt.
    let step = capture::apply(&mut plan.conversation, PromptEvent::AgentReplied);
    plan.deadline(DeadlineKind::Prompt, step.deadline);
    plan.follow_up(FollowUpEvent::AgentReplied {
        seq: plan.conversation.last_seq,
        online: r.visitor_online,
        delay: r.follow_up_delay_ms,
        reachable,
        now: r.now,
    });
    Planned { plan, message }
}

/// The plan of a `system` message (e.g. "follow-up sent") in an existing conversation.
pub fn plan_system_message(conv: ConversationRecord, text: String, now: Millis) -> Planned {
    let mut plan = Plan::of(conv);
    let message = plan.push(AuthorKind::System, None, text, now);
    Planned { plan, message }
}

/// Messages as stored: each entry is the JSON of one wire `Message`, checked to be JSON,
/// so a frame can carry them as they are instead of decoding and encoding each again
/// (see `session::encode_with_messages`).
#[derive(Debug, Default)]
pub struct StoredMessages(Vec<String>);

impl StoredMessages {
    pub(crate) fn from_rows(rows: impl Iterator<Item = Vec<u8>>) -> Result<Self, StoreError> {
        rows.map(|v| store::check_json(Tree::Messages, v))
            .collect::<Result<Vec<_>, _>>()
            .map(StoredMessages)
    }

    /// Rows read newest first, in the order a frame carries them.
    pub(crate) fn from_newest(mut rows: Vec<Vec<u8>>) -> Result<Self, StoreError> {
        rows.reverse();
        Self::from_rows(rows.into_iter())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps only the newest `n`.
    pub(crate) fn keep_newest(&mut self, n: usize) {
        let drop = self.0.len().saturating_sub(n);
        self.0.drain(..drop);
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

/// Whose live connections see this conversation: its visitor's, in its inbox.
pub fn visitor_key(conv: &ConversationRecord) -> VisitorKey {
    VisitorKey {
        visitor: conv.visitor_id,
        inbox: conv.inbox.as_str().into(),
    }
}

/// The summary of `conv` as agent `viewer` sees it (`unread` is theirs; None: 0).
pub fn summary(
    store: &dyn Store,
    hub: &Hub,
    conv: &ConversationRecord,
    viewer: Option<AgentId>,
) -> Result<Summary, StoreError> {
    let key = visitor_key(conv);
    let visitor = store.visitor(key.visitor)?;
    let contact = match visitor.as_ref().and_then(|v| v.contact_id) {
        Some(id) => store.contact(id)?,
        None => None,
    };
    Ok(Summary {
        id: conv.id.into(),
        inbox: conv.inbox.clone(),
        visitor: SummaryVisitor {
            id: conv.visitor_id.into(),
            label: label(contact.as_ref()),
            online: hub.visitor_shown_online(&key),
            contact,
            page: visitor.and_then(|v| v.page),
        },
        last_message: conv.last_message.clone(),
        created_at: conv.created_at,
        updated_at: conv.updated_at,
        status: conv.status,
        assignee: conv.assignee.as_ref().map(|a| Assignee {
            id: a.id.into(),
            name: a.name.clone(),
        }),
        unread: viewer.map_or(0, |a| conv.unread_for(a)),
        visitor_seen_seq: conv.visitor_seen_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::records::PromptState;

    fn send(plan: FirstMessagePlan) -> VisitorSend {
        VisitorSend {
            visitor: VisitorId::from_uuid(uuid::Uuid::from_u128(1)),
            inbox: "default".into(),
            client_msg_id: "c1".into(),
            text: "hello".into(),
            page: None,
            now: 1_000,
            plan,
        }
    }

    fn first(when: CaptureWhen, away: Option<&str>) -> FirstMessagePlan {
        FirstMessagePlan {
            when,
            delay_ms: 500,
            prompt_text: "Your email?".into(),
            away: away.map(str::to_string),
        }
    }

    #[test]
    fn a_first_message_creates_the_conversation_and_arms_the_prompt() {
        let p = plan_visitor_message(None, None, &send(first(CaptureWhen::NoReply, None)));
        assert!(p.created && p.visitor.is_some() && p.system.is_none());
        assert_eq!((p.message.seq, p.message.text.as_str()), (1, "hello"));
        let c = &p.plan.conversation;
        assert_eq!((c.last_seq, c.seen_seq), (1, 1));
        assert_eq!(c.prompt, PromptState::Pending { due: 1_500 });
        assert_eq!(c.prompt_text.as_deref(), Some("Your email?"));
        assert_eq!(
            p.plan.deadlines,
            vec![(DeadlineKind::Prompt, Change::Arm(1_500))]
        );
        assert_eq!(p.prompt_now, None);
    }

    #[test]
    fn an_away_inbox_answers_and_prompts_at_once_and_a_second_message_only_appends() {
        let s = send(first(CaptureWhen::NoReply, Some("We are away")));
        let p = plan_visitor_message(None, None, &s);
        let system = p.system.clone().expect("the away message");
        assert_eq!((system.seq, system.author.kind), (2, AuthorKind::System));
        assert_eq!(p.prompt_now.as_deref(), Some("Your email?"));
        assert_eq!(p.plan.conversation.prompt, PromptState::Sent);
        assert!(p.plan.deadlines.is_empty());

        let again = plan_visitor_message(Some(p.plan.conversation), p.visitor, &s);
        assert!(!again.created && again.visitor.is_none());
        assert_eq!(again.plan.messages.len(), 1);
        assert_eq!(again.message.seq, 3);
        assert_eq!(again.prompt_now, None);
    }

    #[test]
    fn an_agent_reply_cancels_a_pending_prompt_and_arms_a_follow_up_for_an_offline_visitor() {
        let p = plan_visitor_message(None, None, &send(first(CaptureWhen::NoReply, None)));
        let reply = AgentReply {
            conversation: ConversationId::from_uuid(uuid::Uuid::from_u128(2)),
            agent_name: "Maja".into(),
            client_msg_id: "a1".into(),
            text: "Hi!".into(),
            now: 1_200,
            visitor_online: false,
            follow_up_delay_ms: Some(60_000),
        };
        let Planned { plan, message } = plan_agent_reply(p.plan.conversation, true, &reply);
        assert_eq!(
            (message.seq, message.author.name.as_deref()),
            (2, Some("Maja"))
        );
        assert_eq!(plan.conversation.prompt, PromptState::Cancelled);
        assert_eq!(plan.conversation.follow_up_due, Some(61_200));
        assert_eq!(
            plan.deadlines,
            vec![
                (DeadlineKind::Prompt, Change::Disarm(1_500)),
                (DeadlineKind::FollowUp, Change::Arm(61_200)),
            ]
        );
        assert_eq!(plan.conversation.seen_seq, 1, "the reply is unseen");
    }

    fn assignee(n: u128, name: &str) -> AssigneeRecord {
        AssigneeRecord {
            id: crate::ids::AgentId::from_uuid(uuid::Uuid::from_u128(n)),
            name: name.into(),
        }
    }

    #[test]
    fn a_new_conversation_is_open_and_unassigned() {
        let p = plan_visitor_message(None, None, &send(first(CaptureWhen::Never, None)));
        let c = &p.plan.conversation;
        assert_eq!(
            (c.status, &c.assignee, p.reopened),
            (Status::Open, &None, false)
        );
    }

    #[test]
    fn status_and_assignee_change_and_a_repeat_changes_nothing() {
        let p = plan_visitor_message(None, None, &send(first(CaptureWhen::Never, None)));
        let conv = p.plan.conversation;
        let pending =
            plan_workflow(conv.clone(), &Workflow::Status(Status::Pending)).expect("a change");
        assert_eq!(pending.status, Status::Pending);
        assert_eq!(pending.updated_at, conv.updated_at, "activity time stays");
        assert!(plan_workflow(pending.clone(), &Workflow::Status(Status::Pending)).is_none());

        let ann = Workflow::Assign(Some(assignee(5, "Ann")));
        let assigned = plan_workflow(pending, &ann).expect("a change");
        assert_eq!(assigned.assignee, Some(assignee(5, "Ann")));
        assert_eq!(assigned.status, Status::Pending, "status kept");
        assert!(plan_workflow(assigned.clone(), &ann).is_none());
        let bob = plan_workflow(
            assigned.clone(),
            &Workflow::Assign(Some(assignee(6, "Bob"))),
        )
        .expect("a change");
        assert_eq!(bob.assignee, Some(assignee(6, "Bob")));
        let nobody = plan_workflow(assigned, &Workflow::Assign(None)).expect("a change");
        assert_eq!(nobody.assignee, None);
    }

    #[test]
    fn a_visitor_message_reopens_a_resolved_conversation_and_only_that() {
        let s = send(first(CaptureWhen::Never, None));
        let p = plan_visitor_message(None, None, &s);
        let mut resolved = plan_workflow(
            p.plan.conversation.clone(),
            &Workflow::Status(Status::Resolved),
        )
        .expect("a change");
        resolved.assignee = Some(assignee(5, "Ann"));
        let again = plan_visitor_message(Some(resolved), p.visitor.clone(), &s);
        assert!(again.reopened);
        assert_eq!(again.plan.conversation.status, Status::Open);
        assert_eq!(
            again.plan.conversation.assignee,
            Some(assignee(5, "Ann")),
            "owner kept"
        );

        let pending = plan_workflow(p.plan.conversation, &Workflow::Status(Status::Pending))
            .expect("a change");
        let still = plan_visitor_message(Some(pending), p.visitor, &s);
        assert!(!still.reopened);
        assert_eq!(still.plan.conversation.status, Status::Pending);
    }
}
