//! The records kept in the trees, besides the protocol types stored as they are
//! (`Message`, `Contact`, `Chatflow`).

use serde::{Deserialize, Serialize};
use widget_protocol::{Message, Millis, Page, Role};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InboxRecord {
    pub key: String,
    pub name: String,
    /// Origins allowed to open visitor sockets; empty means any.
    #[serde(default)]
    pub origins: Vec<String>,
    #[serde(default)]
    pub chatflow: widget_protocol::Chatflow,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub inboxes: Vec<String>,
    pub created_at: Millis,
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorRecord {
    pub id: String,
    pub created_at: Millis,
    /// The contact this visitor is linked to (by their own email or by an agent).
    #[serde(default)]
    pub contact_id: Option<String>,
    /// The email this visitor typed themselves; the only contact data they are shown.
    #[serde(default)]
    pub email: Option<String>,
    /// The page they last chatted from.
    #[serde(default)]
    pub page: Option<Page>,
}

impl VisitorRecord {
    /// A visitor seen for the first time.
    pub fn new(id: uuid::Uuid, now: Millis) -> VisitorRecord {
        VisitorRecord {
            id: id.to_string(),
            created_at: now,
            contact_id: None,
            email: None,
            page: None,
        }
    }

    /// Whether the team can reach them by email: they gave one, or an agent linked them
    /// to a contact. Such a visitor is never prompted, and may be followed up.
    pub fn reachable(&self) -> bool {
        self.email.is_some() || self.contact_id.is_some()
    }
}

/// Where a conversation's email-capture prompt stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum PromptState {
    /// No visitor message yet, or the chatflow said `never` at the time.
    #[default]
    None,
    /// A `no_reply` deadline is set.
    Pending { due: Millis },
    /// Fell due while the visitor was offline: send after their next `welcome`.
    Owed,
    /// Pushed once; never again.
    Sent,
    /// An agent answered in time, or the visitor's email became known.
    Cancelled,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConversationRecord {
    pub id: String,
    pub inbox: String,
    pub visitor_id: String,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_seq: u64,
    #[serde(default)]
    pub last_message: Option<Message>,
    #[serde(default)]
    pub prompt: PromptState,
    /// The prompt text decided when the prompt was scheduled (custom or default).
    #[serde(default)]
    pub prompt_text: Option<String>,
    /// Highest seq the visitor is known to have seen live (for follow-ups).
    #[serde(default)]
    pub seen_seq: u64,
    /// A follow-up email is scheduled for replies after `seen_seq`.
    #[serde(default)]
    pub follow_up_due: Option<Millis>,
}

/// An email waiting in the outbox or already sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub id: String,
    /// Stable across retries, so a resend after a crash is recognisably the same email.
    pub message_id: String,
    pub conversation_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub created_at: Millis,
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    pub state: OutboxState,
    #[serde(default)]
    pub next_attempt_at: Option<Millis>,
    #[serde(default)]
    pub sent_at: Option<Millis>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxState {
    /// Waiting for a (first or next) attempt.
    Queued,
    /// An attempt was recorded as started; if we find this after a crash, the email may
    /// or may not have gone out.
    Sending,
    Sent,
    /// Gave up after too many attempts.
    Failed,
}
