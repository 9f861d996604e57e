//! Frames on `GET /ws/agent`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorFrame;
use crate::model::{AgentInfo, Chatflow, Contact, Message, Summary};

/// Agent to server. `auth` must come first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentClient {
    Auth {
        token: String,
    },
    Open {
        conversation_id: String,
        #[serde(default)]
        before: Option<u64>,
        #[serde(default)]
        limit: Option<u32>,
    },
    Reply {
        conversation_id: String,
        client_msg_id: String,
        text: String,
    },
    LookupContact {
        email: String,
    },
    AssignVisitor {
        conversation_id: String,
        email: String,
    },
    CreateContact {
        conversation_id: String,
        email: String,
        first_name: String,
        last_name: String,
    },
    GetChatflow {
        inbox: String,
    },
    UpdateChatflow {
        inbox: String,
        chatflow: Chatflow,
    },
}

/// Server to agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentServer {
    Ready {
        agent: AgentInfo,
        inboxes: Vec<String>,
        /// Newest first.
        conversations: Vec<Summary>,
    },
    Conversation {
        conversation: Summary,
        messages: Vec<Message>,
        has_more: bool,
    },
    ConversationUpdated {
        conversation: Summary,
    },
    Message {
        message: Message,
    },
    Ack {
        client_msg_id: String,
        message: Message,
    },
    ContactLookup {
        email: String,
        contact: Option<Contact>,
    },
    VisitorAssigned {
        conversation_id: String,
        contact: Contact,
    },
    Chatflow {
        inbox: String,
        chatflow: Chatflow,
    },
    Error(ErrorFrame),
}
