//! The objects frames carry: messages, contacts, conversation summaries, chatflows.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// `{"id","conversation_id","seq","author":{"kind","name"},"text","at"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// Starts at 1 and grows by one per message in a conversation.
    pub seq: u64,
    pub author: Author,
    pub text: String,
    pub at: Millis,
    /// **[ext]** The files the message carries; left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachmentInfo>,
}

/// **[ext]** ATTACHMENT `{"id","name","size","type"}`: `id` the SHA-256 (hex) of the
/// bytes, `type` read from them (`image/png`, `image/jpeg`, `image/gif`, `image/webp`,
/// `application/pdf`, else `application/octet-stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentInfo {
    pub id: String,
    pub name: String,
    pub size: u64,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Author {
    pub kind: AuthorKind,
    #[serde(default)]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthorKind {
    Visitor,
    Agent,
    System,
}

/// The page a visitor is on, as the widget reports it in `hello`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub title: Option<String>,
}

/// `{"id","email","first_name","last_name","source","created_at"}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    pub source: ContactSource,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactSource {
    EmailCapture,
    Agent,
}

/// A conversation as the inbox lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub id: String,
    pub inbox: String,
    pub visitor: SummaryVisitor,
    pub last_message: Option<Message>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// Where the team stands with it; absent from an older server: `open`.
    #[serde(default)]
    pub status: Status,
    /// The agent who owns it; absent from an older server: nobody.
    #[serde(default)]
    pub assignee: Option<Assignee>,
    /// Messages from the visitor after the reading agent's read cursor: per agent, so
    /// two agents may be sent different numbers for one conversation.
    #[serde(default)]
    pub unread: u64,
    /// The highest `seq` the visitor has seen (0: none).
    #[serde(default)]
    pub visitor_seen_seq: u64,
}

/// A conversation's status in the team's workflow. New conversations are `open`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    #[default]
    Open,
    Pending,
    Resolved,
}

impl Status {
    pub fn is_open(&self) -> bool {
        *self == Status::Open
    }
}

/// `{"id","name"}`: an agent as others see them: a conversation's assignee, the agent
/// typing in `agent_typing`, a member of the inbox in `ready.agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignee {
    pub id: String,
    pub name: String,
}

/// **[ext]** `{"id","name","inboxes"}`: an agent in `ready.agents`, with the inboxes
/// (of those the reader may see) a conversation of which may be assigned to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub inboxes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SummaryVisitor {
    pub id: String,
    /// The contact's full name, else its email, else `"Unknown visitor"`.
    pub label: String,
    /// True while at least one of the visitor's connections is open.
    pub online: bool,
    pub contact: Option<Contact>,
    /// Extension: the page the visitor last chatted from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
}

/// The label for a visitor nobody knows yet.
pub const UNKNOWN_VISITOR: &str = "Unknown visitor";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// **[ext]** The name visitors see on this agent's replies; null (or absent): `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// **[ext]** WIDGET_SETTINGS `{"title","color","greeting"}`: how an inbox's widget
/// looks. Each null (or absent) value leaves the widget's own default, or the page's
/// `data-*` attribute, in place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetSettings {
    /// The panel's heading, at most 60 characters.
    #[serde(default)]
    pub title: Option<String>,
    /// The brand colour, `#rrggbb`.
    #[serde(default)]
    pub color: Option<String>,
    /// The first words the visitor reads, at most 500 characters.
    #[serde(default)]
    pub greeting: Option<String>,
}

impl WidgetSettings {
    /// Every value null: the widget's defaults.
    pub fn is_default(&self) -> bool {
        *self == WidgetSettings::default()
    }
}

/// **[ext]** TEAM_AGENT: an agent as admins manage them in `team`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamAgent {
    pub id: String,
    /// The name the team sees.
    pub name: String,
    /// The name visitors see on replies; null: `name`.
    #[serde(default)]
    pub display_name: Option<String>,
    pub role: Role,
    /// The keys of the inboxes the agent works in.
    #[serde(default)]
    pub inboxes: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
    pub created_at: Millis,
}

/// **[ext]** TEAM_INBOX: an inbox as admins manage it in `team`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamInbox {
    pub key: String,
    pub name: String,
    /// Origins allowed to open visitor sockets; empty: any.
    #[serde(default)]
    pub origins: Vec<String>,
    #[serde(default)]
    pub widget: WidgetSettings,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Agent,
}

/// An inbox's settings for the email-capture prompt, the away message and (extension)
/// the follow-up email. Every field has a default, so a partial object is valid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chatflow {
    #[serde(default)]
    pub email_capture: EmailCapture,
    #[serde(default)]
    pub away: Away,
    /// Extension: the email sent when agents replied to a visitor who had left.
    #[serde(default)]
    pub follow_up: FollowUp,
    /// **[ext]** The inbox's business hours, for `away.mode = "outside_hours"`; absent
    /// (null): none set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<Hours>,
}

/// **[ext]** Business hours: a weekly schedule in an IANA time zone, and holidays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hours {
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    /// The open intervals of each weekday, in that zone's wall-clock time.
    #[serde(default)]
    pub weekly: Weekly,
    /// Dates (`YYYY-MM-DD`, in the zone) when the inbox is closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// **[ext]** Open intervals per weekday; a day left out is closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weekly {
    #[serde(default)]
    pub mon: Vec<Interval>,
    #[serde(default)]
    pub tue: Vec<Interval>,
    #[serde(default)]
    pub wed: Vec<Interval>,
    #[serde(default)]
    pub thu: Vec<Interval>,
    #[serde(default)]
    pub fri: Vec<Interval>,
    #[serde(default)]
    pub sat: Vec<Interval>,
    #[serde(default)]
    pub sun: Vec<Interval>,
}

impl Weekly {
    /// The days Monday first, with their names as on the wire.
    pub fn days(&self) -> [(&'static str, &[Interval]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// **[ext]** Open from `from` (inclusive) to `to` (exclusive), `HH:MM`; `to` may be
/// `24:00`, the end of the day. An interval never crosses midnight: write
/// `22:00`–`24:00` and the next day's `00:00`–`02:00`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailCapture {
    #[serde(default)]
    pub when: CaptureWhen,
    #[serde(default = "default_capture_delay")]
    pub delay_secs: u64,
    /// The prompt text; `None` means the built-in default text.
    #[serde(default)]
    pub message: Option<String>,
}

fn default_capture_delay() -> u64 {
    60
}

impl Default for EmailCapture {
    fn default() -> Self {
        EmailCapture {
            when: CaptureWhen::default(),
            delay_secs: default_capture_delay(),
            message: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureWhen {
    FirstMessage,
    #[default]
    NoReply,
    Never,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Away {
    #[serde(default)]
    pub mode: AwayMode,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AwayMode {
    #[default]
    Off,
    Always,
    NoAgentsOnline,
    /// **[ext]** Away outside the inbox's `hours`.
    OutsideHours,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowUp {
    #[serde(default = "default_true")]
    pub enabled: bool,
    #[serde(default = "default_follow_up_delay")]
    pub delay_secs: u64,
}

fn default_true() -> bool {
    true
}

fn default_follow_up_delay() -> u64 {
    120
}

impl Default for FollowUp {
    fn default() -> Self {
        FollowUp {
            enabled: true,
            delay_secs: default_follow_up_delay(),
        }
    }
}

/// **[ext]** A saved answer of an inbox, inserted by its agents with `/shortcut`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CannedReply {
    pub id: String,
    pub inbox: String,
    pub title: String,
    pub text: String,
    /// 1 to 32 of `a-z`, `0-9`, `_`, `-`; unique in the inbox.
    pub shortcut: String,
}

/// `welcome.away`: whether the inbox is away right now, and what it says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwayState {
    pub active: bool,
    #[serde(default)]
    pub message: Option<String>,
    /// **[ext]** When away outside business hours: the next opening; absent (null):
    /// not away for that reason, or no opening ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub back_at: Option<Millis>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_from_an_older_server_is_open_and_unassigned() {
        let json = r#"{"id":"c","inbox":"main","visitor":{"id":"v","label":"Unknown visitor","online":false,"contact":null},"last_message":null,"created_at":1,"updated_at":2}"#;
        let s: Summary = serde_json::from_str(json).expect("decodes");
        assert_eq!((s.status, s.assignee), (Status::Open, None));
        assert_eq!((s.unread, s.visitor_seen_seq), (0, 0));
    }

    #[test]
    fn a_summary_carries_status_and_assignee() {
        let json = r#"{"id":"c","inbox":"main","visitor":{"id":"v","label":"Unknown visitor","online":false,"contact":null},"last_message":null,"created_at":1,"updated_at":2,"status":"resolved","assignee":{"id":"a","name":"Ann"},"unread":2,"visitor_seen_seq":7}"#;
        let s: Summary = serde_json::from_str(json).expect("decodes");
        assert_eq!(s.status, Status::Resolved);
        assert_eq!(s.assignee.as_ref().map(|a| a.name.as_str()), Some("Ann"));
        assert_eq!((s.unread, s.visitor_seen_seq), (2, 7));
        assert_eq!(serde_json::to_string(&s).expect("encodes"), json);
    }
}
