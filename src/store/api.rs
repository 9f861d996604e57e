//! The domain's store interface: what frontdesk keeps, in the words of the domain.
//!
//! [`Store`] is what the sessions and the domain modules call: append a visitor's
//! message (with its idempotency key), append an agent's reply or a system message, link
//! a visitor to a contact (with the unique email), record what the prompt's deadline and
//! deliveries did, and read conversations, pages of messages, visitors and contacts. A
//! backend carries out the pure plans of `conversations`, `contacts`, `capture` and
//! `followup` inside one atomic, durable write per call, so every rule lives in those
//! modules and never in a backend. [`super::kv_store::KvStore`] implements it over the
//! key-value engine and the group-commit writer; a SQL backend would implement the same
//! methods as transactions ("append this message to that conversation").
//!
//! Writes resolve once durable. Reads see every write that has resolved.

use uuid::Uuid;
use widget_protocol::{Contact, Millis};

use crate::capture::PromptEvent;
use crate::contacts::{Link, Linked, Whom};
use crate::conversations::{AgentReply, Appended, Cut, StoredMessages, VisitorSend};
use crate::error::Result;
use crate::hub::VisitorKey;
use crate::store::records::{ConversationRecord, VisitorRecord};
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

#[async_trait::async_trait]
pub trait Store: Send + Sync {
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
        conversation: Uuid,
        text: String,
        now: Millis,
    ) -> Result<Option<Appended>>;

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
        conversation: Uuid,
        due: u64,
        online: Online,
    ) -> Result<Option<PromptFired>, StoreError>;

    /// Steps the conversation's prompt with `event`; the prompt's text when it is to be
    /// pushed now.
    async fn prompt_event(
        &self,
        conversation: Uuid,
        event: PromptEvent,
    ) -> Result<Option<String>, StoreError>;

    /// Resolves once every write submitted before it is durable.
    async fn sync(&self) -> Result<(), StoreError>;

    fn conversation(&self, id: Uuid) -> Result<Option<ConversationRecord>, StoreError>;

    /// The visitor's conversation in `inbox`.
    fn conversation_for_visitor(
        &self,
        visitor: Uuid,
        inbox: &str,
    ) -> Result<Option<ConversationRecord>, StoreError>;

    /// The conversations of some inboxes, newest first, at most `limit`.
    fn conversations(
        &self,
        inboxes: &[String],
        limit: usize,
    ) -> Result<Vec<ConversationRecord>, StoreError>;

    /// Up to `cut` messages with `seq < before` (the newest page when `before` is none),
    /// oldest first, and whether older ones exist.
    fn page(
        &self,
        conversation: Uuid,
        before: Option<u64>,
        cut: Cut,
    ) -> Result<(StoredMessages, bool), StoreError>;

    /// Every message with `seq > after`, oldest first, and false; or, when there are
    /// more than `cut` allows, the newest of them that fit and true (the client pages
    /// back for the rest). More than `cut.limit` of them: the newest `page` only.
    fn after(
        &self,
        conversation: Uuid,
        after: u64,
        cut: Cut,
        page: usize,
    ) -> Result<(StoredMessages, bool), StoreError>;

    fn visitor(&self, id: Uuid) -> Result<Option<VisitorRecord>, StoreError>;

    fn contact(&self, id: &str) -> Result<Option<Contact>, StoreError>;

    /// The contact with this email, whatever its case.
    fn contact_by_email(&self, email: &str) -> Result<Option<Contact>, StoreError>;
}
