use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;
use widget_protocol::{
    AgentInfo, Assignee, Author, AuthorKind, AwayState, Contact, ContactSource, ErrorCode,
    ErrorFrame, Member, Role, SummaryVisitor, TeamInbox, Welcome, WidgetSettings,
};

use super::*;
use crate::hub::{Budget, Mailbox};
use crate::store::records::ReadCursor;

const ANN: u128 = 11;
const BOB: u128 = 12;
const CY: u128 = 13;

fn agent_id(n: u128) -> AgentId {
    AgentId::from_uuid(Uuid::from_u128(n))
}

/// Contact data no visitor typed: an agent linked it.
const CONTACT_EMAIL: &str = "linked-by-an-agent@team.example";
/// The email the visitor typed themselves.
const TYPED_EMAIL: &str = "typed-by-the-visitor@example.com";

fn message(kind: AuthorKind) -> Message {
    Message {
        id: "m1".into(),
        conversation_id: "c1".into(),
        seq: 1,
        author: Author { kind, name: None },
        text: "hello".into(),
        at: 1,
        attachments: Vec::new(),
    }
}

fn contact() -> Contact {
    Contact {
        id: "k1".into(),
        email: CONTACT_EMAIL.into(),
        first_name: Some("Ada".into()),
        last_name: None,
        source: ContactSource::Agent,
        created_at: 1,
    }
}

fn summary() -> Summary {
    Summary {
        id: "c1".into(),
        inbox: "x".into(),
        visitor: SummaryVisitor {
            id: Uuid::nil().to_string(),
            label: "Ada".into(),
            online: true,
            contact: Some(contact()),
            page: None,
        },
        last_message: Some(message(AuthorKind::Visitor)),
        created_at: 1,
        updated_at: 1,
        status: widget_protocol::Status::Open,
        assignee: None,
        unread: 1,
        visitor_seen_seq: 0,
    }
}

fn team_agent() -> TeamAgent {
    TeamAgent {
        id: "g".into(),
        name: "Maja".into(),
        display_name: None,
        role: Role::Agent,
        inboxes: vec!["x".into()],
        revoked: false,
        created_at: 1,
    }
}

/// One frame of every type of both endpoints.
fn every_frame() -> Vec<Outgoing> {
    use Outgoing::{Agent as A, Visitor as V};
    let error = || ErrorFrame::new(ErrorCode::BadFrame, "no");
    vec![
        V(VisitorServer::Welcome(Welcome {
            protocol: 1,
            visitor_token: "t".into(),
            visitor_id: Uuid::nil().to_string(),
            conversation_id: Some("c1".into()),
            messages: vec![message(AuthorKind::Agent)],
            has_more: false,
            email: Some(TYPED_EMAIL.into()),
            away: AwayState::default(),
            email_prompt: None,
            read_seq: 0,
            seen_seq: 0,
            widget: Some(WidgetSettings {
                title: Some("Sales".into()),
                color: None,
                greeting: None,
            }),
        })),
        V(VisitorServer::Ack {
            client_msg_id: "a".into(),
            message: message(AuthorKind::Visitor),
        }),
        V(VisitorServer::Message {
            message: message(AuthorKind::Agent),
        }),
        V(VisitorServer::EmailPrompt {
            text: "Email?".into(),
        }),
        V(VisitorServer::EmailCaptured {
            email: TYPED_EMAIL.into(),
        }),
        V(VisitorServer::History {
            messages: vec![message(AuthorKind::Visitor)],
            has_more: true,
        }),
        V(VisitorServer::Typing {
            active: true,
            name: Some("Maja".into()),
        }),
        V(VisitorServer::Seen { seq: 1 }),
        V(VisitorServer::Error(error())),
        A(AgentServer::Ready {
            agent: AgentInfo {
                id: "g".into(),
                name: "Maja".into(),
                role: Role::Agent,
                display_name: Some("Maja M.".into()),
            },
            inboxes: vec!["x".into()],
            conversations: vec![summary()],
            next: None,
            agents: vec![Member {
                id: "g".into(),
                name: "Maja".into(),
                inboxes: vec!["x".into()],
            }],
        }),
        A(AgentServer::Conversations {
            conversations: vec![summary()],
            next: Some("1.c1".into()),
        }),
        A(AgentServer::AgentTyping {
            conversation_id: "c1".into(),
            agent: Assignee {
                id: "g".into(),
                name: "Maja".into(),
            },
            active: true,
        }),
        A(AgentServer::VisitorTyping {
            conversation_id: "c1".into(),
            active: false,
        }),
        A(AgentServer::Conversation {
            conversation: summary(),
            messages: vec![message(AuthorKind::Visitor)],
            has_more: false,
        }),
        A(AgentServer::ConversationUpdated {
            conversation: summary(),
        }),
        A(AgentServer::Message {
            message: message(AuthorKind::Visitor),
        }),
        A(AgentServer::Ack {
            client_msg_id: "a".into(),
            message: message(AuthorKind::Agent),
        }),
        A(AgentServer::ContactLookup {
            email: CONTACT_EMAIL.into(),
            contact: Some(contact()),
        }),
        A(AgentServer::VisitorAssigned {
            conversation_id: "c1".into(),
            contact: contact(),
        }),
        A(AgentServer::Chatflow {
            inbox: "x".into(),
            chatflow: Chatflow::default(),
        }),
        A(AgentServer::Team {
            agents: vec![team_agent()],
            inboxes: vec![TeamInbox {
                key: "x".into(),
                name: "X".into(),
                origins: vec!["https://x.example".into()],
                widget: WidgetSettings::default(),
                created_at: 1,
            }],
        }),
        A(AgentServer::AgentCreated {
            agent: team_agent(),
            invite: "/inbox#invite=fda_x".into(),
        }),
        A(AgentServer::Canned {
            inbox: "x".into(),
            replies: vec![],
        }),
        A(AgentServer::Error(error())),
    ]
}

/// The number of server frame types, and each one's place among them: a new type does
/// not compile until it has a place, and the test below fails until it has a sample.
const FRAME_TYPES: usize = 24;
fn frame_type(f: &Outgoing) -> usize {
    match f {
        Outgoing::Visitor(f) => match f {
            VisitorServer::Welcome(_) => 0,
            VisitorServer::Ack { .. } => 1,
            VisitorServer::Message { .. } => 2,
            VisitorServer::EmailPrompt { .. } => 3,
            VisitorServer::EmailCaptured { .. } => 4,
            VisitorServer::History { .. } => 5,
            VisitorServer::Error(_) => 6,
            VisitorServer::Typing { .. } => 16,
            VisitorServer::Seen { .. } => 17,
        },
        Outgoing::Agent(f) => match f {
            AgentServer::Ready { .. } => 7,
            AgentServer::Conversation { .. } => 8,
            AgentServer::ConversationUpdated { .. } => 9,
            AgentServer::Message { .. } => 10,
            AgentServer::Ack { .. } => 11,
            AgentServer::ContactLookup { .. } => 12,
            AgentServer::VisitorAssigned { .. } => 13,
            AgentServer::Chatflow { .. } => 14,
            AgentServer::Error(_) => 15,
            AgentServer::Conversations { .. } => 18,
            AgentServer::AgentTyping { .. } => 19,
            AgentServer::VisitorTyping { .. } => 20,
            AgentServer::Team { .. } => 21,
            AgentServer::AgentCreated { .. } => 22,
            AgentServer::Canned { .. } => 23,
        },
    }
}

fn reaches_a_visitor(r: Reach) -> bool {
    matches!(r, Reach::OwnVisitor | Reach::OwnVisitorAndAgents)
}

#[test]
fn no_frame_with_contact_data_the_visitor_did_not_type_nor_any_agent_frame_reaches_a_visitor() {
    let frames = every_frame();
    let types: BTreeSet<usize> = frames.iter().map(frame_type).collect();
    assert_eq!(
        types,
        (0..FRAME_TYPES).collect(),
        "one sample of every frame type"
    );
    for f in &frames {
        let r = reach(f);
        let json = f.encode();
        if matches!(f, Outgoing::Agent(_)) {
            assert!(
                !reaches_a_visitor(r),
                "an agent frame reaches a visitor: {f:?}"
            );
        }
        if json.contains(CONTACT_EMAIL) || json.contains("\"contact\"") {
            assert!(
                !reaches_a_visitor(r),
                "contact data reaches a visitor: {json}"
            );
        }
        // A visitor frame that says an email says the one they typed.
        if reaches_a_visitor(r) && json.contains('@') {
            assert!(json.contains(TYPED_EMAIL), "{json}");
        }
    }
    // Agents get a message as the same bytes as the visitor's frame.
    let m = message(AuthorKind::Visitor);
    assert_eq!(
        encode(&VisitorServer::Message { message: m.clone() }),
        encode(&AgentServer::Message { message: m })
    );
}

/// Connections of visitor A (two tabs in inbox x, one in inbox y), of visitor B in x, and
/// of agents: Ann in x wanting every summary and in a second tab changes only, Bob in x
/// wanting changes only, and Cy of y.
struct World {
    hub: Hub,
    conns: Vec<(&'static str, u64, Mailbox)>,
    a: VisitorKey,
}

impl World {
    fn new() -> World {
        let hub = Hub::default();
        let key = |visitor: u128, inbox: &str| VisitorKey {
            visitor: crate::ids::VisitorId::from_uuid(Uuid::from_u128(visitor)),
            inbox: inbox.into(),
        };
        let a = key(1, "x");
        let budget = Budget {
            frames: 16,
            bytes: 1 << 20,
        };
        let mut conns = Vec::new();
        for (name, k) in [
            ("a1", a.clone()),
            ("a2", a.clone()),
            ("a in y", key(1, "y")),
            ("b", key(2, "x")),
        ] {
            let (conn, mailbox) = hub.connection(budget);
            conns.push((name, conn.id, mailbox));
            hub.add_visitor(k, conn);
        }
        for (name, inbox, every, agent) in [
            ("agent every", "x", true, ANN),
            ("agent ann 2", "x", false, ANN),
            ("agent changes", "x", false, BOB),
            ("agent of y", "y", false, CY),
        ] {
            let (mut conn, mailbox) = hub.connection(budget);
            conn.every_summary = every;
            conn.agent = Some(agent_id(agent));
            conn.admin = agent == CY;
            conns.push((name, conn.id, mailbox));
            hub.add_agent(&[Arc::from(inbox)], conn);
        }
        World { hub, conns, a }
    }

    /// Visitor A's conversation in inbox x, as stored.
    fn conversation(&self) -> ConversationRecord {
        serde_json::from_value(serde_json::json!({
            "id": Uuid::from_u128(9).to_string(),
            "inbox": "x",
            "visitor_id": self.a.visitor.to_string(),
            "created_at": 1,
            "updated_at": 1,
            "last_seq": 1,
        }))
        .expect("a stored conversation")
    }

    fn id(&self, name: &str) -> u64 {
        self.conns
            .iter()
            .find(|c| c.0 == name)
            .map(|c| c.1)
            .expect("a connection of that name")
    }

    /// Who got a frame since the last look, and what visitors got.
    fn received(&self) -> (BTreeSet<&'static str>, Vec<Frame>) {
        let mut who = BTreeSet::new();
        let mut to_visitors = Vec::new();
        for (name, _, mailbox) in &self.conns {
            while let Some(f) = mailbox.try_recv() {
                who.insert(*name);
                if !name.starts_with("agent") {
                    to_visitors.push(f);
                }
            }
        }
        (who, to_visitors)
    }
}

#[test]
fn every_event_reaches_its_audience_and_never_another_visitor() {
    let w = World::new();
    let conv = w.conversation();
    let (visitor_msg, agent_msg, system_msg) = (
        message(AuthorKind::Visitor),
        message(AuthorKind::Agent),
        message(AuthorKind::System),
    );
    let chatflow = Chatflow::default();
    let (a1, agent) = (w.id("a1"), w.id("agent every"));
    let place = Place {
        conversation: conv.id,
        visitor: w.a.clone(),
    };
    let events = [
        Event::VisitorMessage {
            conv: &conv,
            message: &visitor_msg,
            from: a1,
        },
        Event::AgentReply {
            conv: &conv,
            message: &agent_msg,
            from: agent,
        },
        Event::SystemMessage {
            conv: &conv,
            message: &system_msg,
        },
        Event::SummaryChanged {
            conv: &conv,
            news: SummaryNews::LastMessageOnly,
        },
        Event::SummaryChanged {
            conv: &conv,
            news: SummaryNews::More,
        },
        Event::PresenceChanged { conv: &conv },
        Event::WorkflowChanged { conv: &conv },
        Event::EmailCaptured {
            key: &w.a,
            email: TYPED_EMAIL,
            from: a1,
        },
        Event::EmailPrompt {
            key: &w.a,
            text: "Email?",
        },
        Event::ChatflowChanged {
            inbox: "x",
            chatflow: &chatflow,
            from: agent,
        },
        Event::ReadMoved {
            conv: &conv,
            agent: agent_id(ANN),
        },
        Event::ReadByTeam {
            conv: &conv,
            seq: 1,
        },
        Event::AgentTyping {
            place: &place,
            agent: agent_id(ANN),
            name: "Ann",
            active: true,
        },
        Event::AgentTypingShown {
            place: &place,
            name: "Ann",
            active: true,
        },
        Event::VisitorTyping {
            place: &place,
            active: false,
        },
        Event::TeamChanged {
            agents: &[],
            inboxes: &[],
        },
        Event::CannedChanged {
            inbox: "x",
            replies: &[],
        },
    ];
    let kinds: std::collections::HashSet<_> = events.iter().map(std::mem::discriminant).collect();
    assert_eq!(kinds.len(), 16, "every kind of event");
    for event in &events {
        let expected: &[&str] = match event {
            Event::VisitorMessage { .. } => &["a2", "agent ann 2", "agent changes", "agent every"],
            Event::AgentReply { .. } => &["a1", "a2", "agent ann 2", "agent changes"],
            Event::SystemMessage { .. } => {
                &["a1", "a2", "agent ann 2", "agent changes", "agent every"]
            }
            Event::SummaryChanged {
                news: SummaryNews::LastMessageOnly,
                ..
            } => &["agent every"],
            Event::SummaryChanged {
                news: SummaryNews::More,
                ..
            }
            | Event::PresenceChanged { .. }
            | Event::WorkflowChanged { .. }
            | Event::VisitorTyping { .. }
            // The admin who changed them included: that is its answer.
            | Event::CannedChanged { .. } => &["agent ann 2", "agent changes", "agent every"],
            Event::EmailCaptured { .. } => &["a2"],
            Event::EmailPrompt { .. } => &["a1", "a2"],
            Event::ChatflowChanged { .. } => &["agent ann 2", "agent changes"],
            // Ann's own tabs; the visitor; everyone but Ann.
            Event::ReadMoved { .. } => &["agent ann 2", "agent every"],
            Event::ReadByTeam { .. } | Event::AgentTypingShown { .. } => &["a1", "a2"],
            Event::AgentTyping { .. } => &["agent changes"],
            // Admins, whatever their inboxes: Cy, of inbox y.
            Event::TeamChanged { .. } => &["agent of y"],
        };
        let delivered = deliver(&w.hub, event, |_| Some(summary())).expect("delivered");
        let (who, to_visitors) = w.received();
        assert_eq!(who, expected.iter().copied().collect(), "{event:?}");
        let visitors = expected
            .iter()
            .filter(|n| n.starts_with('a') && !n.starts_with("agent"));
        assert_eq!(delivered.visitors, visitors.count(), "{event:?}");
        assert_eq!(
            delivered.agents + delivered.visitors,
            expected.len(),
            "{event:?}"
        );
        for f in to_visitors {
            assert!(
                widget_protocol::decode::<VisitorServer>(&f).is_ok(),
                "a visitor got a frame not of their endpoint: {f}"
            );
            assert!(!f.contains(CONTACT_EMAIL), "{f}");
        }
    }
}

#[test]
fn a_summary_nobody_wants_is_not_built() {
    let w = World::new();
    w.hub.remove_agent(&[Arc::from("x")], w.id("agent every"));
    let conv = w.conversation();
    let event = Event::SummaryChanged {
        conv: &conv,
        news: SummaryNews::LastMessageOnly,
    };
    let built = std::cell::Cell::new(false);
    let delivered = deliver(&w.hub, &event, |_| {
        built.set(true);
        Some(summary())
    });
    assert!(delivered.is_none());
    assert!(!built.get());
    assert!(w.received().0.is_empty());
}

/// The `unread` of each connection's copy of a summary.
fn unread_by_connection(w: &World) -> Vec<(&'static str, u64)> {
    let mut out = Vec::new();
    for (name, _, mailbox) in &w.conns {
        while let Some(f) = mailbox.try_recv() {
            if let Ok(AgentServer::ConversationUpdated { conversation }) =
                widget_protocol::decode::<AgentServer>(&f)
            {
                out.push((*name, conversation.unread));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn each_agent_hears_their_own_unread_encoded_once_per_distinct_count() {
    let w = World::new();
    let mut conv = w.conversation();
    conv.last_seq = 3;
    conv.visitor_messages = 3;
    let read_one = ReadCursor {
        seq: 1,
        visitor_messages: 1,
    };
    conv.read.insert(agent_id(ANN), read_one);
    let event = Event::SummaryChanged {
        conv: &conv,
        news: SummaryNews::More,
    };
    deliver(&w.hub, &event, |_| Some(summary())).expect("delivered");
    assert_eq!(
        unread_by_connection(&w),
        [("agent ann 2", 2), ("agent changes", 3), ("agent every", 2)]
    );
    // Bob reads as far as Ann: one copy serves all three.
    conv.read.insert(agent_id(BOB), read_one);
    let mut copies = PerUnread::new(Outgoing::Agent(AgentServer::ConversationUpdated {
        conversation: summary(),
    }));
    let frames: Vec<Frame> = [ANN, BOB, ANN]
        .iter()
        .map(|&a| copies.frame(&conv, Some(agent_id(a))))
        .collect();
    assert_eq!(copies.encoded.len(), 1, "encoded once");
    assert!(frames.iter().all(|f| Arc::ptr_eq(f, &frames[0])));
    copies.frame(&conv, Some(agent_id(CY)));
    assert_eq!(copies.encoded.len(), 2, "Cy never read it: a second count");
}

#[test]
fn a_read_cursor_moving_tells_only_that_agents_connections_their_unread() {
    let w = World::new();
    let mut conv = w.conversation();
    conv.visitor_messages = 1;
    conv.read.insert(
        agent_id(BOB),
        ReadCursor {
            seq: 1,
            visitor_messages: 1,
        },
    );
    let event = Event::ReadMoved {
        conv: &conv,
        agent: agent_id(BOB),
    };
    let delivered = deliver(&w.hub, &event, |_| Some(summary())).expect("delivered");
    assert_eq!(delivered.agents, 1);
    assert_eq!(unread_by_connection(&w), [("agent changes", 0)]);
}
