//! Frames on `GET /ws/agent`.

use serde::{Deserialize, Serialize};

use crate::error::ErrorFrame;
use crate::model::{
    AgentInfo, Assignee, CannedReply, Chatflow, Contact, Member, Message, Role, Status, Summary,
    TeamAgent, TeamInbox, WidgetSettings,
};

/// Extension of `auth`: `every_message` (the default, the contract's behaviour) sends
/// `conversation_updated` after every message; `changes` leaves it out when a message
/// changed nothing in the summary but `last_message` and `updated_at`, which the agent
/// learns from the `message` frame itself. A new conversation, a linked contact, a
/// visitor's page or presence still come as `conversation_updated`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryUpdates {
    #[default]
    EveryMessage,
    Changes,
}

impl SummaryUpdates {
    pub fn is_every_message(&self) -> bool {
        *self == SummaryUpdates::EveryMessage
    }
}

/// Agent to server. `auth` must come first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentClient {
    Auth {
        /// The agent's token. Extension: absent or null, the connection is signed in by
        /// the `fd_session` cookie of its upgrade request (see `POST /api/session`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// Extension: which `conversation_updated` frames this agent wants.
        #[serde(default, skip_serializing_if = "SummaryUpdates::is_every_message")]
        summaries: SummaryUpdates,
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
        /// **[ext]** Ids of uploads (`POST /api/uploads`) the reply carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<String>,
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
    /// Sets a conversation's status; answered with `conversation_updated`.
    SetStatus {
        conversation_id: String,
        status: Status,
    },
    /// Assigns a conversation to an agent of its inbox, or to nobody (`null`).
    Assign {
        conversation_id: String,
        #[serde(default)]
        agent_id: Option<String>,
    },
    /// Moves this agent's read cursor forward to `seq` (never back).
    MarkRead {
        conversation_id: String,
        seq: u64,
    },
    /// The agent is typing a reply (or stopped). Never stored.
    Typing {
        conversation_id: String,
        active: bool,
    },
    /// A page of the agent's conversations, newest activity first; every filter optional.
    List {
        #[serde(default)]
        status: Option<Status>,
        /// `me`, `none`, an agent id, or null: anyone.
        #[serde(default)]
        assignee: Option<String>,
        #[serde(default)]
        query: Option<String>,
        /// The `next` of the previous page; null: the newest.
        #[serde(default)]
        before: Option<String>,
        #[serde(default)]
        limit: Option<u32>,
    },
    /// **[ext]** Admins only: the team (agents and inboxes); answered with `team`.
    GetTeam {},
    /// **[ext]** Admins only: a new agent; answered with `agent_created` (its invite),
    /// then `team` to every admin.
    CreateAgent {
        name: String,
        /// The name visitors see; null: `name`.
        #[serde(default)]
        display_name: Option<String>,
        role: Role,
        #[serde(default)]
        inboxes: Vec<String>,
    },
    /// **[ext]** Admins only: a new invite token for an agent; the old one stops working.
    ReissueInvite {
        agent_id: String,
    },
    /// **[ext]** Admins only: changes an agent; an absent field is left as it is.
    UpdateAgent {
        agent_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Absent: unchanged; null: visitors see `name`; a string: they see it.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            deserialize_with = "present"
        )]
        display_name: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<Role>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inboxes: Option<Vec<String>>,
    },
    /// **[ext]** Admins only: revokes an agent; their connections close with 4001.
    RevokeAgent {
        agent_id: String,
    },
    /// **[ext]** Admins only: a new inbox, with the creating admin as a member.
    CreateInbox {
        key: String,
        name: String,
        #[serde(default)]
        origins: Vec<String>,
    },
    /// **[ext]** Admins only: changes an inbox; an absent field is left as it is.
    UpdateInbox {
        inbox: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origins: Option<Vec<String>>,
        /// The whole settings object: a null value inside it is the widget's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        widget: Option<WidgetSettings>,
    },
    /// **[ext]** An inbox's canned replies; answered with `canned`.
    ListCanned {
        inbox: String,
    },
    /// **[ext]** Admins only: a new canned reply (`id` null) or a change to one; every
    /// agent connection of the inbox hears `canned`.
    SaveCanned {
        inbox: String,
        #[serde(default)]
        id: Option<String>,
        title: String,
        text: String,
        shortcut: String,
    },
    /// **[ext]** Admins only: removes a canned reply; every agent connection of the
    /// inbox hears `canned`.
    DeleteCanned {
        inbox: String,
        id: String,
    },
}

/// A field that may be absent (None), null (`Some(None)`) or a value: with
/// `#[serde(default)]`, only a present field reaches this.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// Server to agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AgentServer {
    Ready {
        agent: AgentInfo,
        inboxes: Vec<String>,
        /// The newest page, newest activity first.
        conversations: Vec<Summary>,
        /// The cursor for `list.before` to fetch the next page; null: that was all.
        #[serde(default)]
        next: Option<String>,
        /// **[ext]** The agents of this agent's inboxes (this one included), each with
        /// the inboxes of those they belong to, for the assignee picker. Absent from an
        /// older server.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        agents: Vec<Member>,
    },
    /// The answer to `list`.
    Conversations {
        conversations: Vec<Summary>,
        next: Option<String>,
    },
    /// Another agent is typing in a conversation of this agent's inboxes (or stopped).
    AgentTyping {
        conversation_id: String,
        agent: Assignee,
        active: bool,
    },
    /// The visitor of a conversation is typing (or stopped).
    VisitorTyping {
        conversation_id: String,
        active: bool,
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
    /// **[ext]** The team, to admins: after `get_team`, and to every admin connection
    /// after any change to an agent or an inbox.
    Team {
        agents: Vec<TeamAgent>,
        inboxes: Vec<TeamInbox>,
    },
    /// **[ext]** An inbox's canned replies, oldest first: after `list_canned`, and to
    /// every agent connection of the inbox after `save_canned` or `delete_canned`.
    Canned {
        inbox: String,
        replies: Vec<CannedReply>,
    },
    /// **[ext]** To the admin who asked only: the agent made (or re-invited) and the
    /// invite link holding their token, which exists nowhere else.
    AgentCreated {
        agent: TeamAgent,
        invite: String,
    },
    Error(ErrorFrame),
}
