//! Frames on `GET /ws/visitor?inbox=KEY`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorFrame;
use crate::model::{AwayState, Message, Page, WidgetSettings};

/// Visitor to server. `hello` must come first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorClient {
    Hello {
        #[serde(default)]
        visitor_token: Option<String>,
        /// The highest `seq` the client holds; the welcome then carries every later message.
        #[serde(default)]
        resume_after: Option<u64>,
        #[serde(default)]
        page: Option<Page>,
    },
    /// Idempotent on `client_msg_id`.
    Send {
        client_msg_id: String,
        text: String,
        /// **[ext]** Ids of uploads (`POST /api/uploads`) the message carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
    },
    SubmitEmail {
        email: String,
    },
    /// Up to `limit` (max 200) messages with `seq < before`; `before` null means the newest.
    History {
        #[serde(default)]
        before: Option<u64>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// The visitor is typing (or stopped); only once they have a conversation.
    Typing {
        active: bool,
    },
    /// The visitor has seen every message up to `seq`.
    Seen {
        seq: u64,
    },
}

/// Server to visitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum VisitorServer {
    Welcome(Welcome),
    /// To the sending connection, once the message is durable.
    Ack {
        client_msg_id: String,
        message: Message,
    },
    /// A message written by someone else or in another tab.
    Message {
        message: Message,
    },
    EmailPrompt {
        text: String,
    },
    EmailCaptured {
        email: String,
    },
    History {
        messages: Vec<Message>,
        has_more: bool,
    },
    /// An agent is typing a reply (or stopped).
    Typing {
        active: bool,
        #[serde(default)]
        name: Option<String>,
    },
    /// An agent has read the conversation up to `seq`.
    Seen {
        seq: u64,
    },
    Error(ErrorFrame),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub protocol: u32,
    pub visitor_token: String,
    pub visitor_id: String,
    /// Null until the visitor's first message creates the conversation.
    pub conversation_id: Option<String>,
    pub messages: Vec<Message>,
    pub has_more: bool,
    /// The email this visitor submitted themselves, or null.
    pub email: Option<String>,
    #[serde(default)]
    pub away: AwayState,
    /// **[ext]** The email prompt this conversation was sent and its visitor has not
    /// answered (their email is still unknown): show it again. Absent otherwise. A
    /// prompt is pushed once; this is its state, so a tab that opens later, or one
    /// that missed the push (the server stopped before writing it), shows it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_prompt: Option<String>,
    /// **[ext]** The highest `seq` an agent has read: the widget marks the visitor's
    /// own messages up to it "Seen" after a reload. Absent while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub read_seq: u64,
    /// **[ext]** The visitor's own seen cursor (their `seen`): agent messages after it
    /// are unread, for the launcher's badge after a reload. Absent while 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seen_seq: u64,
    /// **[ext]** The inbox's widget settings (`update_inbox`); absent while every
    /// value is null. A non-null value wins over the page's `data-*` attribute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<WidgetSettings>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
