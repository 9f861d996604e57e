//! Fan-out: who hears what. Every frame pushed to a connection other than the one whose
//! request it answers goes through [`publish`]: an [`Event`] says what happened,
//! [`audience`] decides which connections hear it, and the frame is built and encoded
//! once and handed, shared, to the hub. The hub is the mechanism (queues, presence);
//! this module is the policy, and nothing else calls the hub's delivery. It reads the
//! store only to build a summary, and never writes to it.
//!
//! The rule it exists to keep: **a visitor never receives another visitor's data, nor
//! contact data they did not type.** Two things hold it, both here:
//! - [`audience`] names a visitor only as the one whose conversation the event is about
//!   (its key taken from the conversation record), or the one who typed the email;
//! - [`reach`] classifies every server frame of both endpoints by who may ever receive
//!   it, and [`publish`] refuses an audience the frame's reach does not allow. No agent
//!   frame (they carry summaries and contacts) reaches a visitor.

use widget_protocol::{
    encode, AgentServer, Assignee, CannedReply, Chatflow, Message, Summary, TeamAgent, TeamInbox,
    VisitorServer,
};

use crate::app::App;
use crate::conversations;
use crate::hub::{Conn, Frame, Hub, VisitorKey};
use crate::ids::AgentId;
use crate::store::records::ConversationRecord;
use crate::typing::Place;

/// Something that happened which connections other than the requester's hear of.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A visitor's message, stored; `from`, their connection, got the ack.
    VisitorMessage {
        conv: &'a ConversationRecord,
        message: &'a Message,
        from: u64,
    },
    /// An agent's reply, stored; `from`, the agent's connection, got the ack.
    AgentReply {
        conv: &'a ConversationRecord,
        message: &'a Message,
        from: u64,
    },
    /// A message the server wrote in a conversation (the away answer, a follow-up's fate).
    SystemMessage {
        conv: &'a ConversationRecord,
        message: &'a Message,
    },
    /// The conversation's summary changed, as `news` says.
    SummaryChanged {
        conv: &'a ConversationRecord,
        news: SummaryNews,
    },
    /// An agent changed the conversation's status or assignee; every agent of the
    /// inbox hears it, the one who asked included.
    WorkflowChanged { conv: &'a ConversationRecord },
    /// The conversation's visitor came online or left, as agents see it.
    PresenceChanged { conv: &'a ConversationRecord },
    /// `agent` marked the conversation read (their cursor moved, or was already there):
    /// their own connections hear their `unread`, the one that asked included.
    ReadMoved {
        conv: &'a ConversationRecord,
        agent: AgentId,
    },
    /// The conversation's highest read `seq` moved: its visitor sees "Seen" up to it.
    ReadByTeam {
        conv: &'a ConversationRecord,
        seq: u64,
    },
    /// An agent (`agent`, `name`) is typing, or stopped: the inbox's other agents hear it.
    AgentTyping {
        place: &'a Place,
        agent: AgentId,
        name: &'a str,
        active: bool,
    },
    /// The same, as the conversation's visitor hears it (the name replies are signed
    /// with, no id).
    AgentTypingShown {
        place: &'a Place,
        name: &'a str,
        active: bool,
    },
    /// The conversation's visitor is typing, or stopped: the inbox's agents hear it.
    VisitorTyping { place: &'a Place, active: bool },
    /// A visitor typed their email on connection `from`, which is answered directly.
    EmailCaptured {
        key: &'a VisitorKey,
        email: &'a str,
        from: u64,
    },
    /// The email-capture prompt, to every connection of the visitor.
    EmailPrompt { key: &'a VisitorKey, text: &'a str },
    /// An admin changed an inbox's chatflow on connection `from`, answered directly.
    ChatflowChanged {
        inbox: &'a str,
        chatflow: &'a Chatflow,
        from: u64,
    },
    /// An admin saved or deleted a canned reply: every agent connection of the inbox
    /// hears its replies as they are now, the one that asked included (its answer).
    CannedChanged {
        inbox: &'a str,
        replies: &'a [CannedReply],
    },
    /// An admin changed an agent or an inbox: every admin connection hears the team as
    /// it is now, the one that asked included (that is its answer).
    TeamChanged {
        agents: &'a [TeamAgent],
        inboxes: &'a [TeamInbox],
    },
}

/// What changed in a summary, for the agents that asked only for changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryNews {
    /// A new message, and nothing else the `message` frame does not carry.
    LastMessageOnly,
    /// Anything more: a new conversation, the visitor's page, contact or presence.
    More,
}

/// The connections that hear an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audience<'a> {
    /// The visitor whose connections (in that inbox) hear it.
    pub visitor: Option<VisitorKey>,
    /// The inbox whose agents hear it, and which of them.
    pub agents: Option<(&'a str, Agents)>,
    /// Every admin connection, whatever its inboxes.
    pub admins: bool,
    /// The connection answered directly (the ack, or its own copy): skipped.
    pub except: Option<u64>,
}

/// Which agents of an inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agents {
    All,
    /// Those that want `conversation_updated` after every message (`SummaryUpdates`).
    WantingEverySummary,
    /// The connections of this agent only.
    Only(AgentId),
    /// All but the connections of this agent.
    Except(AgentId),
}

impl Agents {
    /// Whether connection `c` of the inbox is one of these.
    fn include(self, c: &Conn) -> bool {
        match self {
            Agents::All => true,
            Agents::WantingEverySummary => c.every_summary,
            Agents::Only(a) => c.agent == Some(a),
            Agents::Except(a) => c.agent != Some(a),
        }
    }
}

/// Who hears each event: the one place that decides it.
pub fn audience<'a>(event: &Event<'a>) -> Audience<'a> {
    // The visitor a conversation belongs to, and its inbox's agents.
    let conversation = |conv: &'a ConversationRecord, agents, except| Audience {
        visitor: Some(conversations::visitor_key(conv)),
        agents: Some((conv.inbox.as_str(), agents)),
        admins: false,
        except,
    };
    let agents_only = |inbox: &'a str, agents, except| Audience {
        visitor: None,
        agents: Some((inbox, agents)),
        admins: false,
        except,
    };
    let visitor_only = |key: &VisitorKey, except| Audience {
        visitor: Some(key.clone()),
        agents: None,
        admins: false,
        except,
    };
    match *event {
        // Their other tabs and the agents; the sending tab has its ack.
        Event::VisitorMessage { conv, from, .. } => conversation(conv, Agents::All, Some(from)),
        // The visitor and the other agents; the replying agent has its ack.
        Event::AgentReply { conv, from, .. } => conversation(conv, Agents::All, Some(from)),
        Event::SystemMessage { conv, .. } => conversation(conv, Agents::All, None),
        Event::SummaryChanged { conv, news } => {
            let which = match news {
                SummaryNews::LastMessageOnly => Agents::WantingEverySummary,
                SummaryNews::More => Agents::All,
            };
            agents_only(&conv.inbox, which, None)
        }
        Event::PresenceChanged { conv } | Event::WorkflowChanged { conv } => {
            agents_only(&conv.inbox, Agents::All, None)
        }
        Event::ReadMoved { conv, agent } => agents_only(&conv.inbox, Agents::Only(agent), None),
        Event::ReadByTeam { conv, .. } => Audience {
            visitor: Some(conversations::visitor_key(conv)),
            agents: None,
            admins: false,
            except: None,
        },
        Event::AgentTyping { place, agent, .. } => {
            agents_only(place.inbox(), Agents::Except(agent), None)
        }
        Event::AgentTypingShown { place, .. } => visitor_only(&place.visitor, None),
        Event::VisitorTyping { place, .. } => agents_only(place.inbox(), Agents::All, None),
        // Only the visitor who typed it: every tab learns it and hides its form.
        Event::EmailCaptured { key, from, .. } => visitor_only(key, Some(from)),
        Event::EmailPrompt { key, .. } => visitor_only(key, None),
        Event::ChatflowChanged { inbox, from, .. } => agents_only(inbox, Agents::All, Some(from)),
        Event::CannedChanged { inbox, .. } => agents_only(inbox, Agents::All, None),
        Event::TeamChanged { .. } => Audience {
            visitor: None,
            agents: None,
            admins: true,
            except: None,
        },
    }
}

/// A server frame of either endpoint. One lives for one publication, on its way to
/// being encoded, so the size of its largest variant costs nothing worth a box.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Outgoing {
    Visitor(VisitorServer),
    Agent(AgentServer),
}

impl Outgoing {
    fn encode(&self) -> Frame {
        match self {
            Outgoing::Visitor(f) => encode(f),
            Outgoing::Agent(f) => encode(f),
        }
        .into()
    }
}

/// Who may ever receive a frame of some kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Only the connection whose request it answers: never fanned out.
    Requester,
    /// The visitor whose conversation (or email) it is, on any of their connections.
    OwnVisitor,
    /// That visitor and the inbox's agents.
    OwnVisitorAndAgents,
    /// The inbox's agents; never a visitor.
    Agents,
    /// Admins only, whatever their inboxes: the team's agents and inboxes.
    Admins,
}

impl Reach {
    /// Whether an audience stays within this reach.
    pub fn allows(self, to: &Audience) -> bool {
        let (visitor, agents, admins) = match self {
            Reach::Requester => (false, false, false),
            Reach::OwnVisitor => (true, false, false),
            Reach::OwnVisitorAndAgents => (true, true, false),
            Reach::Agents => (false, true, false),
            Reach::Admins => (false, false, true),
        };
        (visitor || to.visitor.is_none())
            && (agents || to.agents.is_none())
            && (admins || !to.admins)
    }
}

/// Who may receive each frame of both endpoints. A new frame type does not compile
/// until it is classified here.
pub fn reach(frame: &Outgoing) -> Reach {
    match frame {
        Outgoing::Visitor(f) => match f {
            // Answers to the visitor's own requests, about their own conversation.
            VisitorServer::Welcome(_)
            | VisitorServer::Ack { .. }
            | VisitorServer::History { .. }
            | VisitorServer::Error(_) => Reach::Requester,
            // A message in their conversation; agents get the same bytes.
            VisitorServer::Message { .. } => Reach::OwnVisitorAndAgents,
            VisitorServer::EmailPrompt { .. } => Reach::OwnVisitor,
            // Only ever the email the visitor typed themselves.
            VisitorServer::EmailCaptured { .. } => Reach::OwnVisitor,
            // About their own conversation: an agent typing (with the name agents
            // sign their replies with) or having read it.
            VisitorServer::Typing { .. } | VisitorServer::Seen { .. } => Reach::OwnVisitor,
        },
        Outgoing::Agent(f) => match f {
            // Answers to the agent's own requests.
            AgentServer::Ready { .. }
            | AgentServer::Conversation { .. }
            | AgentServer::Ack { .. }
            | AgentServer::ContactLookup { .. }
            | AgentServer::VisitorAssigned { .. }
            | AgentServer::Conversations { .. }
            // The invite's token exists only in the answer to the admin who asked.
            | AgentServer::AgentCreated { .. }
            | AgentServer::Error(_) => Reach::Requester,
            // Summaries carry contacts; settings are the team's.
            AgentServer::ConversationUpdated { .. }
            | AgentServer::Message { .. }
            | AgentServer::Chatflow { .. }
            | AgentServer::Canned { .. }
            | AgentServer::AgentTyping { .. }
            | AgentServer::VisitorTyping { .. } => Reach::Agents,
            // Every agent's inboxes and role, every inbox's origins: admins' business.
            AgentServer::Team { .. } => Reach::Admins,
        },
    }
}

/// The frame an event is told with; a summary comes from `summary`.
fn frame(
    event: &Event,
    summary: impl FnOnce(&ConversationRecord) -> Option<Summary>,
) -> Option<Outgoing> {
    let message = |m: &Message| Outgoing::Visitor(VisitorServer::Message { message: m.clone() });
    Some(match *event {
        Event::VisitorMessage { message: m, .. }
        | Event::AgentReply { message: m, .. }
        | Event::SystemMessage { message: m, .. } => message(m),
        Event::SummaryChanged { conv, .. }
        | Event::PresenceChanged { conv }
        | Event::WorkflowChanged { conv }
        | Event::ReadMoved { conv, .. } => Outgoing::Agent(AgentServer::ConversationUpdated {
            conversation: summary(conv)?,
        }),
        Event::ReadByTeam { seq, .. } => Outgoing::Visitor(VisitorServer::Seen { seq }),
        Event::AgentTyping {
            place,
            agent,
            name,
            active,
        } => Outgoing::Agent(AgentServer::AgentTyping {
            conversation_id: place.conversation.into(),
            agent: Assignee {
                id: agent.into(),
                name: name.to_string(),
            },
            active,
        }),
        Event::AgentTypingShown { name, active, .. } => Outgoing::Visitor(VisitorServer::Typing {
            active,
            name: Some(name.to_string()),
        }),
        Event::VisitorTyping { place, active } => Outgoing::Agent(AgentServer::VisitorTyping {
            conversation_id: place.conversation.into(),
            active,
        }),
        Event::EmailCaptured { email, .. } => Outgoing::Visitor(VisitorServer::EmailCaptured {
            email: email.to_string(),
        }),
        Event::EmailPrompt { text, .. } => Outgoing::Visitor(VisitorServer::EmailPrompt {
            text: text.to_string(),
        }),
        Event::ChatflowChanged {
            inbox, chatflow, ..
        } => Outgoing::Agent(AgentServer::Chatflow {
            inbox: inbox.to_string(),
            chatflow: chatflow.clone(),
        }),
        Event::CannedChanged { inbox, replies } => Outgoing::Agent(AgentServer::Canned {
            inbox: inbox.to_string(),
            replies: replies.to_vec(),
        }),
        Event::TeamChanged { agents, inboxes } => Outgoing::Agent(AgentServer::Team {
            agents: agents.to_vec(),
            inboxes: inboxes.to_vec(),
        }),
    })
}

impl<'a> Event<'a> {
    /// The conversation whose summary the event's frame carries: each agent gets it with
    /// their own `unread`.
    fn summarised(&self) -> Option<&'a ConversationRecord> {
        match *self {
            Event::SummaryChanged { conv, .. }
            | Event::PresenceChanged { conv }
            | Event::WorkflowChanged { conv }
            | Event::ReadMoved { conv, .. } => Some(conv),
            _ => None,
        }
    }
}

/// What a publication delivered.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The encoded frame, for the connection that is answered directly (of a summary,
    /// the first agent's copy).
    pub frame: Frame,
    /// Visitor connections it was queued for.
    pub visitors: usize,
    /// Agent connections it was queued for.
    pub agents: usize,
}

/// Tells an event to its audience. None when nothing was built: no agent wants the
/// summary, or it could not be read (logged).
pub fn publish(app: &App, event: &Event) -> Option<Delivered> {
    deliver(&app.hub, event, |conv| {
        conversations::summary(app.store.as_ref(), &app.hub, conv, None)
            .map_err(|e| tracing::warn!(error = %e, "could not build a conversation summary"))
            .ok()
    })
}

fn deliver(
    hub: &Hub,
    event: &Event,
    summary: impl FnOnce(&ConversationRecord) -> Option<Summary>,
) -> Option<Delivered> {
    let to = audience(event);
    if let (None, Some((inbox, Agents::WantingEverySummary))) = (&to.visitor, to.agents) {
        // Nobody to build it for.
        if !hub.wants_every_summary(inbox) {
            return None;
        }
    }
    let outgoing = frame(event, summary)?;
    if !reach(&outgoing).allows(&to) {
        debug_assert!(false, "{outgoing:?} may not reach {to:?}");
        tracing::error!(?to, "refused to fan out a frame beyond its reach");
        return None;
    }
    let keep = |which: Agents| move |c: &Conn| which.include(c) && Some(c.id) != to.except;
    let (frame, agents) = match (event.summarised(), to.agents) {
        (Some(conv), Some((inbox, which))) => {
            let mut copies = PerUnread::new(outgoing);
            let n = hub.to_agents_each(inbox, keep(which), |c| copies.frame(conv, c.agent));
            (copies.first(), n)
        }
        (_, agents) => {
            let frame = outgoing.encode();
            let n = agents.map_or(0, |(inbox, which)| {
                hub.to_agents_each(inbox, keep(which), |_| frame.clone())
            });
            (frame, n)
        }
    };
    let visitors = to
        .visitor
        .as_ref()
        .map_or(0, |key| hub.to_visitor(key, &frame, to.except));
    let agents = agents + if to.admins { hub.to_admins(&frame) } else { 0 };
    Some(Delivered {
        frame,
        visitors,
        agents,
    })
}

/// A summary's frame as each agent gets it, encoded once per distinct `unread` (agents
/// who read as far get the same bytes), however many connections hear it.
struct PerUnread {
    outgoing: Outgoing,
    encoded: Vec<(u64, Frame)>,
}

impl PerUnread {
    fn new(outgoing: Outgoing) -> PerUnread {
        PerUnread {
            outgoing,
            encoded: Vec::new(),
        }
    }

    /// The frame for `agent` (None: no agent's, no unread).
    fn frame(&mut self, conv: &ConversationRecord, agent: Option<AgentId>) -> Frame {
        let unread = agent.map_or(0, |a| conv.unread_for(a));
        if let Some((_, f)) = self.encoded.iter().find(|(n, _)| *n == unread) {
            return f.clone();
        }
        if let Outgoing::Agent(AgentServer::ConversationUpdated { conversation }) =
            &mut self.outgoing
        {
            conversation.unread = unread;
        }
        let f = self.outgoing.encode();
        self.encoded.push((unread, f.clone()));
        f
    }

    /// The first copy encoded, or (nobody heard it) the frame as built.
    fn first(self) -> Frame {
        match self.encoded.into_iter().next() {
            Some((_, f)) => f,
            None => self.outgoing.encode(),
        }
    }
}

/// Tells that an agent is typing (or stopped) at `place`: the visitor sees the name
/// replies are signed with (`shown`), the inbox's other agents see who (`name`).
pub fn agent_typing(
    app: &App,
    place: &Place,
    agent: AgentId,
    (name, shown): (&str, &str),
    active: bool,
) {
    publish(
        app,
        &Event::AgentTypingShown {
            place,
            name: shown,
            active,
        },
    );
    publish(
        app,
        &Event::AgentTyping {
            place,
            agent,
            name,
            active,
        },
    );
}

#[cfg(test)]
mod tests;
