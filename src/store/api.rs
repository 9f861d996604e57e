//! The domain's store interface: what frontdesk keeps, in the words of the domain.
//!
//! [`Store`] is what the sessions and the domain modules call: append a visitor's
//! message (with its idempotency key), append an agent's reply or a system message, link
//! a visitor to a contact (with the unique email), record what the prompt's deadline and
//! deliveries did, move read and seen cursors, and read conversations, pages of
//! messages, visitors and contacts, and pages of the conversation list with its filters
//! and search (`list`). A backend carries out the pure plans of `conversations`,
//! `contacts`, `capture`, `reading` and `followup` inside one atomic, durable write per
//! call, so every rule lives in those
//! modules and never in a backend. [`super::kv_store::KvStore`] implements it over the
//! key-value engine and the group-commit writer; a SQL backend would implement the same
//! methods as transactions ("append this message to that conversation").
//!
//! Writes resolve once durable. Reads see every write that has resolved.

use widget_protocol::{CannedReply, Chatflow, Contact, Millis};

use crate::agents::AgentChange;
use crate::canned::CannedError;
use crate::capture::PromptEvent;
use crate::contacts::{Link, Linked, Whom};
use crate::conversations::{AgentReply, Appended, Cut, StoredMessages, VisitorSend, Workflow};
use crate::error::Result;
use crate::followup::state::FollowUpNews;
use crate::hub::VisitorKey;
use crate::ids::{AgentId, ContactId, ConversationId, OutboxId, VisitorId};
use crate::inboxes::InboxChange;
use crate::listing::{ListRequest, Page};
use crate::mail::{Begin, Delivery, Email, Ended};
use crate::reading::MarkedRead;
use crate::signin::SessionKey;
use crate::store::keys::DeadlineKind;
use crate::store::records::{
    AgentRecord, ConversationRecord, InboxRecord, OutboxRecord, ReadCursor, SignInRecord,
    VisitorRecord,
};
use crate::store::StoreError;

/// Whether a visitor has a live connection, asked at the moment a write is made.
pub type Online = Box<dyn Fn(&VisitorKey) -> bool + Send>;

/// What a prompt's deadline did: push `text` to `key` now (`push`), or it is owed.
#[derive(Debug, Clone)]
pub struct PromptFired {
    pub key: VisitorKey,
    pub push: bool,
    pub text: String,
}

/// Writes the follow-up email of a conversation for its replies after `after`, reading
/// what it needs inside the write; None: no email is due.
pub type ComposeEmail = Box<
    dyn FnOnce(&dyn Reads, &ConversationRecord, u64) -> Result<Option<Email>, StoreError> + Send,
>;

/// Reads of visitors, contacts and messages: inside a write (a domain function that
/// decides what it needs sees every earlier write) and, through [`Store`], anywhere.
pub trait Reads {
    fn visitor(&self, id: VisitorId) -> Result<Option<VisitorRecord>, StoreError>;

    fn contact(&self, id: ContactId) -> Result<Option<Contact>, StoreError>;

    /// Up to `cut` messages with `seq < before` (the newest page when `before` is none),
    /// oldest first, and whether older ones exist.
    fn page(
        &self,
        conversation: ConversationId,
        before: Option<u64>,
        cut: Cut,
    ) -> Result<(StoredMessages, bool), StoreError>;

    /// Every message with `seq > after`, oldest first, and false; or, when there are
    /// more than `cut` allows, the newest of them that fit and true (the client pages
    /// back for the rest). More than `cut.limit` of them: the newest `page` only.
    fn after(
        &self,
        conversation: ConversationId,
        after: u64,
        cut: Cut,
        page: usize,
    ) -> Result<(StoredMessages, bool), StoreError>;
}

#[async_trait::async_trait]
pub trait Store: Reads + Send + Sync {
    /// A visitor's `send`: creates the conversation and the visitor's record on the
    /// first message; a repeated `client_msg_id` answers the first message and stores
    /// nothing.
    async fn append_visitor(&self, send: VisitorSend) -> Result<Appended>;

    /// An agent's `reply` to an existing conversation (`not_found` otherwise); a
    /// repeated `client_msg_id` answers the first reply and stores nothing.
    async fn append_agent(&self, reply: AgentReply) -> Result<Appended>;

    /// A `system` message in an existing conversation; None when it does not exist.
    async fn append_system(
        &self,
        conversation: ConversationId,
        text: String,
        now: Millis,
    ) -> Result<Option<Appended>>;

    /// Changes a conversation's status or assignee
    /// ([`crate::conversations::plan_workflow`]); `not_found` when it does not exist.
    /// The conversation as it is now, changed or not.
    async fn set_workflow(
        &self,
        conversation: ConversationId,
        change: Workflow,
    ) -> Result<ConversationRecord>;

    /// Moves `agent`'s read cursor of a conversation forward to `cursor` (from
    /// [`crate::reading::cursor_at`], read before), as
    /// [`crate::reading::plan_mark_read`] says, writing only when it moves; `not_found`
    /// when the conversation does not exist.
    async fn mark_read(
        &self,
        conversation: ConversationId,
        agent: AgentId,
        cursor: ReadCursor,
    ) -> Result<MarkedRead>;

    /// Moves the visitor's seen cursor of a conversation forward to `seq`, with what it
    /// does to the follow-up ([`crate::reading::plan_seen`]). The conversation when it
    /// moved; None (nothing written) otherwise.
    async fn visitor_seen(
        &self,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<Option<ConversationRecord>, StoreError>;

    /// Links a visitor to the contact with `email`, creating it as `how` says.
    async fn link_contact(
        &self,
        whom: Whom,
        email: String,
        how: Link,
        now: Millis,
    ) -> Result<Linked>;

    /// Claims the prompt deadline `due` of `conversation` and steps its prompt with
    /// [`PromptEvent::Due`], asking `online` in the write. None: nothing to do.
    async fn prompt_due(
        &self,
        conversation: ConversationId,
        due: Millis,
        online: Online,
    ) -> Result<Option<PromptFired>, StoreError>;

    /// Steps the conversation's prompt with `event`; the prompt's text when it is to be
    /// pushed now.
    async fn prompt_event(
        &self,
        conversation: ConversationId,
        event: PromptEvent,
    ) -> Result<Option<String>, StoreError>;

    /// Steps the conversation's follow-up with what a session learnt (`online` is asked
    /// in the write). The deadline it armed, for the scheduler.
    async fn follow_up_event(
        &self,
        conversation: ConversationId,
        news: FollowUpNews,
        online: Online,
    ) -> Result<Option<(Millis, DeadlineKind)>, StoreError>;

    /// Claims the follow-up deadline `due` of `conversation`; when it is the pending one,
    /// the visitor has seen everything from now on and `compose`'s email, if any, goes
    /// into the outbox in the same write. The email's id and its delivery deadline.
    async fn follow_up_due(
        &self,
        conversation: ConversationId,
        due: Millis,
        now: Millis,
        compose: ComposeEmail,
    ) -> Result<Option<(OutboxId, Millis)>, StoreError>;

    /// Every persisted deadline, for the queue at start.
    fn deadlines(&self) -> Result<Vec<crate::deadlines::Entry>, StoreError>;

    /// Resolves once every write submitted before it is durable.
    async fn sync(&self) -> Result<(), StoreError>;

    fn conversation(&self, id: ConversationId) -> Result<Option<ConversationRecord>, StoreError>;

    /// The visitor's conversation in `inbox`.
    fn conversation_for_visitor(
        &self,
        visitor: VisitorId,
        inbox: &str,
    ) -> Result<Option<ConversationRecord>, StoreError>;

    /// A page of the conversations of `inboxes`, newest activity first, with the status
    /// and assignee filters, the query and the cursor of `request` (see `listing`).
    fn list(&self, inboxes: &[String], request: &ListRequest) -> Result<Page, StoreError>;

    /// The contact with this email, whatever its case.
    fn contact_by_email(&self, email: &str) -> Result<Option<Contact>, StoreError>;
}

/// The outbox, in the words of `mail`'s at-most-once delivery: each call is one durable
/// write that carries out one of `mail::delivery`'s steps.
#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// Claims email `id` for the attempt its `Delivery` deadline `due` stands for
    /// ([`crate::mail::delivery::begin`]).
    async fn claim_delivery(
        &self,
        id: OutboxId,
        due: Millis,
        configured: bool,
        now: Millis,
    ) -> Result<Begin, StoreError>;

    /// Records how an attempt ended ([`crate::mail::delivery::record_outcome`]).
    async fn record_attempt(&self, id: OutboxId, ended: Ended) -> Result<Delivery, StoreError>;

    /// Every email in the outbox, oldest first.
    fn outbox(&self) -> Result<Vec<OutboxRecord>, StoreError>;
}

/// Inboxes and agents: the settings an admin changes, on a running server or with the
/// command-line tools on a stopped one.
#[async_trait::async_trait]
pub trait Admin: Send + Sync {
    /// Stores a new inbox, and adds it to `member`'s inboxes in the same write; false
    /// (nothing written) when an inbox has its key already.
    async fn create_inbox(
        &self,
        inbox: InboxRecord,
        member: Option<AgentId>,
    ) -> Result<bool, StoreError>;

    /// Changes an inbox as `change` says ([`crate::inboxes::InboxChange::apply`]); the
    /// inbox as it is now, or None when there is none.
    async fn update_inbox(
        &self,
        key: String,
        change: InboxChange,
    ) -> Result<Option<InboxRecord>, StoreError>;

    /// Sets an inbox's chatflow; the updated inbox, or None when there is none.
    async fn set_chatflow(
        &self,
        key: String,
        chatflow: Chatflow,
    ) -> Result<Option<InboxRecord>, StoreError>;

    fn inbox(&self, key: &str) -> Result<Option<InboxRecord>, StoreError>;

    fn inboxes(&self) -> Result<Vec<InboxRecord>, StoreError>;

    /// Stores a new agent with the hash of its token.
    async fn create_agent(&self, agent: AgentRecord, token_hash: Vec<u8>)
        -> Result<(), StoreError>;

    /// Marks the agent revoked and forgets its token; false when no agent has this id.
    async fn revoke_agent(&self, id: AgentId) -> Result<bool, StoreError>;

    /// Changes an agent as `change` says ([`crate::agents::AgentChange::apply`]): the
    /// agent before and after, or None when no agent has this id or it is revoked.
    async fn update_agent(
        &self,
        id: AgentId,
        change: AgentChange,
    ) -> Result<Option<(AgentRecord, AgentRecord)>, StoreError>;

    /// Gives the agent the token whose hash is `token_hash` in place of every earlier
    /// one (which stop authenticating in the same write): the agent, or None when no
    /// agent has this id or it is revoked.
    async fn replace_token(
        &self,
        id: AgentId,
        token_hash: Vec<u8>,
    ) -> Result<Option<AgentRecord>, StoreError>;

    /// The agent whose token has this hash, revoked or not.
    fn agent_by_token(&self, token_hash: &[u8]) -> Result<Option<AgentRecord>, StoreError>;

    /// The agent with this id, revoked or not.
    fn agent(&self, id: AgentId) -> Result<Option<AgentRecord>, StoreError>;

    /// Every agent, in no particular order.
    fn agents(&self) -> Result<Vec<AgentRecord>, StoreError>;

    /// Whether any agent exists.
    fn any_agent(&self) -> Result<bool, StoreError>;

    /// The inbox's canned replies, oldest first.
    fn canned(&self, inbox: &str) -> Result<Vec<CannedReply>, StoreError>;

    /// Stores `reply` (its `id` a UUID) as new (`create`) or in place of the one with
    /// its id, when [`crate::canned::plan_save`] allows it among the inbox's replies as
    /// they are inside the write: the inbox's replies after it, or why not.
    async fn save_canned(
        &self,
        reply: CannedReply,
        create: bool,
    ) -> Result<Result<Vec<CannedReply>, CannedError>, StoreError>;

    /// Deletes the inbox's reply `id`: the inbox's replies after it, or why not.
    async fn delete_canned(
        &self,
        inbox: String,
        id: String,
    ) -> Result<Result<Vec<CannedReply>, CannedError>, StoreError>;
}

/// Sign-in sessions (see `signin`), each stored under the SHA-256 of its secret.
#[async_trait::async_trait]
pub trait SignIns: Send + Sync {
    /// Stores a new session, and in the same write drops what
    /// [`crate::signin::plan_sign_in`] says of its agent's others (keeping at most
    /// `max_per_agent` with the new one), its `created_at` made later than theirs by
    /// [`crate::signin::creation_time`] in that write; false (nothing written) when the
    /// agent does not exist or is revoked.
    async fn create_sign_in(
        &self,
        key: SessionKey,
        record: SignInRecord,
        max_per_agent: usize,
    ) -> Result<bool, StoreError>;

    /// Deletes a session: the session it was, or None when there was none.
    async fn revoke_sign_in(&self, key: SessionKey) -> Result<Option<SignInRecord>, StoreError>;

    /// The session with this key, expired or not.
    fn sign_in(&self, key: &SessionKey) -> Result<Option<SignInRecord>, StoreError>;

    /// Every session of an agent, expired or not, in no particular order.
    fn sign_ins_of(&self, agent: AgentId) -> Result<Vec<(SessionKey, SignInRecord)>, StoreError>;
}
