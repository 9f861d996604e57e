//! The records kept in the trees, besides the protocol types stored as they are
//! (`Message`, `Contact`, `Chatflow`).
//!
//! Ids are the types of `crate::ids` and time is `Millis`; both encode exactly as the
//! strings and integers these records have always been stored as (tested below).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use widget_protocol::{Message, Millis, Page, Role, Status, WidgetSettings};

use crate::ids::{AgentId, ContactId, ConversationId, OutboxId, VisitorId};

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
    /// How its widget looks; left out while every value is the default, so records
    /// written before it existed read as they are and are written back the same.
    #[serde(default, skip_serializing_if = "WidgetSettings::is_default")]
    pub widget: WidgetSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    pub role: Role,
    pub inboxes: Vec<String>,
    pub created_at: Millis,
    #[serde(default)]
    pub revoked: bool,
    /// The name visitors see on replies; None: `name`. Left out while None (older
    /// records have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

impl AgentRecord {
    /// The name a visitor sees on this agent's replies and typing.
    pub fn shown_name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.name)
    }
}

/// A sign-in session (see `signin`), stored under the SHA-256 of its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInRecord {
    pub agent_id: AgentId,
    pub created_at: Millis,
    pub expires_at: Millis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VisitorRecord {
    pub id: VisitorId,
    pub created_at: Millis,
    /// The contact this visitor is linked to (by their own email or by an agent).
    #[serde(default)]
    pub contact_id: Option<ContactId>,
    /// The email this visitor typed themselves; the only contact data they are shown.
    #[serde(default)]
    pub email: Option<String>,
    /// The page they last chatted from.
    #[serde(default)]
    pub page: Option<Page>,
}

impl VisitorRecord {
    /// A visitor seen for the first time.
    pub fn new(id: VisitorId, now: Millis) -> VisitorRecord {
        VisitorRecord {
            id,
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
    pub id: ConversationId,
    pub inbox: String,
    pub visitor_id: VisitorId,
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
    /// Where the team stands with it; left out while `open`, as records always were.
    #[serde(default, skip_serializing_if = "Status::is_open")]
    pub status: Status,
    /// The agent who owns it; left out while nobody does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<AssigneeRecord>,
    /// How many of its messages the visitor wrote: with a read cursor's count, an
    /// agent's `unread`, so no message needs a write per agent.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub visitor_messages: u64,
    /// Each agent's read cursor (`mark_read`); left out while nobody read it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read: BTreeMap<AgentId, ReadCursor>,
    /// The visitor's own seen cursor (their `seen` frames); left out while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub visitor_seen_seq: u64,
}

impl ConversationRecord {
    /// A conversation with no message yet: `open`, unassigned, read by nobody.
    pub fn new(id: ConversationId, inbox: String, visitor_id: VisitorId, now: Millis) -> Self {
        ConversationRecord {
            id,
            inbox,
            visitor_id,
            created_at: now,
            updated_at: now,
            last_seq: 0,
            last_message: None,
            prompt: PromptState::None,
            prompt_text: None,
            seen_seq: 0,
            follow_up_due: None,
            status: Status::Open,
            assignee: None,
            visitor_messages: 0,
            read: BTreeMap::new(),
            visitor_seen_seq: 0,
        }
    }

    /// The visitor's messages after `agent`'s read cursor (all of them when none).
    pub fn unread_for(&self, agent: AgentId) -> u64 {
        let read = self.read.get(&agent).map_or(0, |c| c.visitor_messages);
        self.visitor_messages.saturating_sub(read)
    }

    /// The highest `seq` any agent has read.
    pub fn read_seq(&self) -> u64 {
        self.read.values().map(|c| c.seq).max().unwrap_or(0)
    }
}

/// Where an agent stopped reading a conversation: the `seq`, and how many of the
/// visitor's messages there were up to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadCursor {
    pub seq: u64,
    pub visitor_messages: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The agent a conversation is assigned to, with the name shown in summaries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssigneeRecord {
    pub id: AgentId,
    pub name: String,
}

/// An email waiting in the outbox or already sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxRecord {
    pub id: OutboxId,
    /// Stable across retries, so a resend after a crash is recognisably the same email.
    pub message_id: String,
    pub conversation_id: ConversationId,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    /// Decodes `json` as stored and encodes it again: the same bytes.
    fn round_trips<T: Serialize + DeserializeOwned>(json: &str) {
        let rec: T = serde_json::from_str(json).expect("decodes");
        assert_eq!(serde_json::to_string(&rec).expect("encodes"), json);
    }

    #[test]
    fn records_keep_their_stored_json() {
        round_trips::<AgentRecord>(
            r#"{"id":"5f1c3a8e-2b4d-4e6f-8a9b-0c1d2e3f4a5b","name":"Ada","role":"admin","inboxes":["main","sales"],"created_at":1700000000000,"revoked":false}"#,
        );
        round_trips::<VisitorRecord>(
            r#"{"id":"0b8e7f6a-5d4c-4b3a-9e2f-1a0b9c8d7e6f","created_at":1700000000001,"contact_id":"9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d","email":"ada@example.com","page":{"url":"https://example.com/pricing","title":"Pricing"}}"#,
        );
        round_trips::<VisitorRecord>(
            r#"{"id":"0b8e7f6a-5d4c-4b3a-9e2f-1a0b9c8d7e6f","created_at":1700000000001,"contact_id":null,"email":null,"page":null}"#,
        );
        round_trips::<ConversationRecord>(
            r#"{"id":"018c2f3e-4a5b-7c6d-8e9f-0a1b2c3d4e5f","inbox":"main","visitor_id":"0b8e7f6a-5d4c-4b3a-9e2f-1a0b9c8d7e6f","created_at":1700000000002,"updated_at":1700000005000,"last_seq":2,"last_message":{"id":"018c2f3e-5a5b-7c6d-8e9f-0a1b2c3d4e60","conversation_id":"018c2f3e-4a5b-7c6d-8e9f-0a1b2c3d4e5f","seq":2,"author":{"kind":"agent","name":"Ada"},"text":"Hello!","at":1700000005000},"prompt":{"state":"pending","due":1700000060000},"prompt_text":"Leave your email","seen_seq":1,"follow_up_due":1700000300000}"#,
        );
        round_trips::<ConversationRecord>(
            r#"{"id":"018c2f3e-4a5b-7c6d-8e9f-0a1b2c3d4e5f","inbox":"main","visitor_id":"0b8e7f6a-5d4c-4b3a-9e2f-1a0b9c8d7e6f","created_at":1700000000002,"updated_at":1700000000002,"last_seq":0,"last_message":null,"prompt":{"state":"none"},"prompt_text":null,"seen_seq":0,"follow_up_due":null}"#,
        );
        round_trips::<OutboxRecord>(
            r#"{"id":"018c2f3f-0000-7000-8000-000000000001","message_id":"<018c2f3f-0000-7000-8000-000000000001@frontdesk>","conversation_id":"018c2f3e-4a5b-7c6d-8e9f-0a1b2c3d4e5f","to":"ada@example.com","subject":"New replies","text":"Hi","html":"<p>Hi</p>","created_at":1700000300000,"attempts":1,"last_error":"421 try later","state":"queued","next_attempt_at":1700000330000,"sent_at":null}"#,
        );
        round_trips::<InboxRecord>(
            r#"{"key":"main","name":"Main","origins":["https://example.com"],"chatflow":{"email_capture":{"when":"no_reply","delay_secs":60,"message":null},"away":{"mode":"off","message":null},"follow_up":{"enabled":true,"delay_secs":300}},"created_at":1700000000000}"#,
        );
    }

    #[test]
    fn a_display_name_and_widget_settings_are_kept_when_set() {
        round_trips::<AgentRecord>(
            r#"{"id":"5f1c3a8e-2b4d-4e6f-8a9b-0c1d2e3f4a5b","name":"Ada","role":"agent","inboxes":[],"created_at":1700000000000,"revoked":false,"display_name":"Ada L."}"#,
        );
        round_trips::<InboxRecord>(
            r##"{"key":"main","name":"Main","origins":[],"chatflow":{"email_capture":{"when":"no_reply","delay_secs":60,"message":null},"away":{"mode":"off","message":null},"follow_up":{"enabled":true,"delay_secs":120}},"created_at":1700000000000,"widget":{"title":"Hi","color":"#0a5cff","greeting":null}}"##,
        );
    }

    #[test]
    fn a_conversation_keeps_its_status_and_assignee() {
        round_trips::<ConversationRecord>(
            r#"{"id":"018c2f3e-4a5b-7c6d-8e9f-0a1b2c3d4e5f","inbox":"main","visitor_id":"0b8e7f6a-5d4c-4b3a-9e2f-1a0b9c8d7e6f","created_at":1700000000002,"updated_at":1700000000002,"last_seq":0,"last_message":null,"prompt":{"state":"none"},"prompt_text":null,"seen_seq":0,"follow_up_due":null,"status":"resolved","assignee":{"id":"5f1c3a8e-2b4d-4e6f-8a9b-0c1d2e3f4a5b","name":"Ada"}}"#,
        );
    }

    #[test]
    fn a_record_whose_id_is_not_a_uuid_does_not_decode() {
        let json = r#"{"id":"nope","created_at":1,"contact_id":null,"email":null,"page":null}"#;
        assert!(serde_json::from_str::<VisitorRecord>(json).is_err());
    }
}
