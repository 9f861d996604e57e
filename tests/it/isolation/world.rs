//! The world of the isolation property: visitors with tabs, agents and strangers, each
//! connection logging every frame it receives, and one random step at a time of what
//! they do. What the checks need to know (who owns which marker, who typed which email)
//! is recorded here as it happens.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use widget_protocol::Role;

use crate::support::client::Ws;
use crate::support::seed::pick;
use crate::support::{Client, Connect, TestServer, WAIT};

/// Every frame one participant received, as text.
pub(super) type Log = Arc<Mutex<Vec<String>>>;

/// A connection whose frames a task appends to a log while the test sends.
pub(super) struct Tab {
    sink: futures::stream::SplitSink<Ws, Message>,
    reader: tokio::task::JoinHandle<()>,
}

impl Tab {
    async fn open(addr: SocketAddr, path: &str, cookie: Option<&str>, log: &Log) -> Tab {
        let ws = Client::open(
            &format!("ws://{addr}{path}"),
            Connect::default().cookie(cookie),
        )
        .await
        .expect("handshake")
        .into_inner();
        let (sink, mut stream) = ws.split();
        let log = log.clone();
        let reader = tokio::spawn(async move {
            while let Some(Ok(m)) = stream.next().await {
                match m {
                    Message::Text(t) => log.lock().expect("log").push(t.to_string()),
                    Message::Close(c) => log
                        .lock()
                        .expect("log")
                        .push(format!("CLOSED BY THE SERVER {c:?}")),
                    _ => {}
                }
            }
        });
        Tab { sink, reader }
    }

    async fn send(&mut self, v: Value) {
        self.send_text(v.to_string()).await;
    }

    async fn send_text(&mut self, t: String) {
        self.sink
            .send(Message::text(t))
            .await
            .expect("the server keeps the connection open");
    }

    pub(super) fn close(self) {
        self.reader.abort();
    }
}

pub(super) struct Visitor {
    pub(super) inbox: &'static str,
    pub(super) token: String,
    pub(super) id: String,
    pub(super) email: String,
    tabs: Vec<Tab>,
    pub(super) log: Log,
}

impl Visitor {
    /// A new tab of this visitor that has sent `hello` with its token and `extra`
    /// fields (e.g. `resume_after`).
    async fn open_tab(&self, addr: SocketAddr, extra: serde_json::Value) -> Tab {
        let path = format!("/ws/visitor?inbox={}", self.inbox);
        let mut tab = Tab::open(addr, &path, None, &self.log).await;
        let mut hello = json!({"type":"hello","visitor_token":self.token});
        if let (Some(h), Some(extra)) = (hello.as_object_mut(), extra.as_object()) {
            h.extend(extra.clone());
        }
        tab.send(hello).await;
        tab
    }
}

pub(super) struct Agent {
    pub(super) inboxes: Vec<&'static str>,
    tab: Tab,
    pub(super) log: Log,
}

/// The conversation id in a visitor's acks, once there is one.
pub(super) fn conversation_of(log: &Log) -> Option<String> {
    log.lock().expect("log").iter().find_map(|f| {
        let v: Value = serde_json::from_str(f).ok()?;
        (v["type"] == "ack")
            .then(|| v["message"]["conversation_id"].as_str().map(str::to_string))?
    })
}

/// What a visitor with an open tab does, by a roll of 0..100.
#[derive(Clone, Copy)]
enum VisitorOp {
    Sends,
    SendsSomethingInvalid,
    TypesTheirEmail,
    TypesSomeoneElsesEmail,
    ReadsHistory,
    Reconnects,
    ClosesATab,
}

impl VisitorOp {
    fn of(roll: u32) -> VisitorOp {
        match roll {
            0..45 => VisitorOp::Sends,
            45..55 => VisitorOp::SendsSomethingInvalid,
            55..62 => VisitorOp::TypesTheirEmail,
            62..72 => VisitorOp::TypesSomeoneElsesEmail,
            72..85 => VisitorOp::ReadsHistory,
            85..93 => VisitorOp::Reconnects,
            _ => VisitorOp::ClosesATab,
        }
    }

    fn name(self) -> &'static str {
        match self {
            VisitorOp::Sends => "visitor sends",
            VisitorOp::SendsSomethingInvalid => "visitor sends something invalid",
            VisitorOp::TypesTheirEmail => "visitor types their email",
            VisitorOp::TypesSomeoneElsesEmail => "visitor types someone else's email",
            VisitorOp::ReadsHistory => "visitor reads history",
            VisitorOp::Reconnects => "visitor reconnects",
            VisitorOp::ClosesATab => "visitor closes a tab",
        }
    }
}

/// What an agent does, by a roll of 0..100.
#[derive(Clone, Copy)]
enum AgentOp {
    Replies,
    Opens,
    LooksUpAContact,
    AssignsAVisitor,
    CreatesAContact,
    ReadsAChatflow,
    SendsGarbage,
}

impl AgentOp {
    fn of(roll: u32) -> AgentOp {
        match roll {
            0..40 => AgentOp::Replies,
            40..60 => AgentOp::Opens,
            60..68 => AgentOp::LooksUpAContact,
            68..80 => AgentOp::AssignsAVisitor,
            80..90 => AgentOp::CreatesAContact,
            90..95 => AgentOp::ReadsAChatflow,
            _ => AgentOp::SendsGarbage,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AgentOp::Replies => "agent replies",
            AgentOp::Opens => "agent opens",
            AgentOp::LooksUpAContact => "agent looks up a contact",
            AgentOp::AssignsAVisitor => "agent assigns a visitor",
            AgentOp::CreatesAContact => "agent creates a contact",
            AgentOp::ReadsAChatflow => "agent reads a chatflow",
            AgentOp::SendsGarbage => "agent sends garbage",
        }
    }
}

/// What an agent sends when it sends garbage.
const GARBAGE: [&str; 6] = [
    "",
    "{",
    "[]",
    "{\"type\":7}",
    "{\"type\":\"teleport\"}",
    "null",
];

/// Everyone in the run, and what the checks must know of what they did.
pub(super) struct World {
    addr: SocketAddr,
    pub(super) visitors: Vec<Visitor>,
    pub(super) agents: Vec<Agent>,
    pub(super) strangers: Log,
    pub(super) stranger_tabs: Vec<Tab>,
    /// Who each marker belongs to: Some(visitor) for text stored in their conversation,
    /// None for text that must reach nobody (a reply refused as not_found).
    pub(super) markers: Vec<(String, Option<usize>)>,
    /// The emails each visitor typed.
    pub(super) typed: Vec<HashSet<String>>,
    /// Every email and name an agent made up.
    pub(super) agent_emails: Vec<String>,
    pub(super) names: Vec<String>,
    pub(super) ops: BTreeMap<&'static str, usize>,
}

impl World {
    /// Eight visitors in two inboxes, each with a tab and a welcome, and three agents:
    /// one per inbox and one in both.
    pub(super) async fn start(s: &TestServer, rng: &mut StdRng) -> World {
        let addr = s.addr;
        let mut visitors: Vec<Visitor> = Vec::new();
        for i in 0..8 {
            let inbox = if i % 2 == 0 { "default" } else { "shop" };
            let log: Log = Default::default();
            let mut tab = Tab::open(addr, &format!("/ws/visitor?inbox={inbox}"), None, &log).await;
            tab.send(json!({"type":"hello"})).await;
            let until = Instant::now() + WAIT;
            let welcome = loop {
                if let Some(w) = log.lock().expect("log").first().cloned() {
                    break serde_json::from_str::<Value>(&w).expect("json");
                }
                assert!(Instant::now() < until, "no welcome");
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            visitors.push(Visitor {
                inbox,
                token: welcome["visitor_token"].as_str().expect("token").into(),
                id: welcome["visitor_id"].as_str().expect("id").into(),
                email: format!("v{i}.{}@iso.example", rng.gen::<u32>()),
                tabs: vec![tab],
                log,
            });
        }
        let mut agents: Vec<Agent> = Vec::new();
        for (name, inboxes) in [
            ("Dee", vec!["default"]),
            ("Sam", vec!["shop"]),
            ("Bo", vec!["default", "shop"]),
        ] {
            let token = s.create_agent(name, &inboxes, Role::Agent).await;
            let log: Log = Default::default();
            let mut tab = Tab::open(addr, "/ws/agent", None, &log).await;
            tab.send(json!({"type":"auth","token":token})).await;
            agents.push(Agent { inboxes, tab, log });
        }
        let typed = vec![HashSet::new(); visitors.len()];
        World {
            addr,
            visitors,
            agents,
            strangers: Default::default(),
            stranger_tabs: Vec::new(),
            markers: Vec::new(),
            typed,
            agent_emails: Vec::new(),
            names: Vec::new(),
            ops: BTreeMap::new(),
        }
    }

    fn count(&mut self, op: &'static str) {
        *self.ops.entry(op).or_default() += 1;
    }

    /// The conversations there are so far, by visitor.
    pub(super) fn conversations(&self) -> Vec<(usize, String)> {
        self.visitors
            .iter()
            .enumerate()
            .filter_map(|(i, v)| conversation_of(&v.log).map(|c| (i, c)))
            .collect()
    }

    /// Every visitor's email, then every email an agent made up.
    pub(super) fn emails(&self) -> Vec<String> {
        let mut emails: Vec<String> = self.visitors.iter().map(|v| v.email.clone()).collect();
        emails.extend(self.agent_emails.iter().cloned());
        emails
    }

    /// Step `n`: a visitor, an agent or a stranger acts.
    pub(super) async fn step(&mut self, rng: &mut StdRng, n: usize) {
        if n % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        let convs = self.conversations();
        let emails = self.emails();
        let marker = format!("MK{n}x{:08x}", rng.gen::<u32>());
        let roll = rng.gen_range(0..100);
        if roll < 55 {
            self.visitor_acts(rng, n, roll, marker, &emails).await;
        } else if roll < 92 {
            self.agent_acts(rng, n, marker, &convs, &emails).await;
        } else {
            self.stranger_acts(rng).await;
        }
    }

    async fn visitor_acts(
        &mut self,
        rng: &mut StdRng,
        n: usize,
        roll: u32,
        marker: String,
        emails: &[String],
    ) {
        let addr = self.addr;
        let i = rng.gen_range(0..self.visitors.len());
        let v = &mut self.visitors[i];
        if v.tabs.is_empty() || (roll >= 50 && v.tabs.len() < 3) {
            let tab = v
                .open_tab(addr, json!({"resume_after": rng.gen_range(0..4)}))
                .await;
            v.tabs.push(tab);
            self.count("visitor opens a tab");
            return;
        }
        let t = rng.gen_range(0..v.tabs.len());
        let op = VisitorOp::of(rng.gen_range(0..100));
        self.count(op.name());
        match op {
            VisitorOp::Sends => {
                self.visitors[i].tabs[t]
                    .send(json!({"type":"send","client_msg_id":format!("id{n}"),"text":format!("{marker} hello")}))
                    .await;
                self.markers.push((marker, Some(i)));
            }
            VisitorOp::SendsSomethingInvalid => {
                let bad = match rng.gen_range(0..5) {
                    0 => json!({"type":"send","client_msg_id":format!("id{n}"),"text":"   "}),
                    1 => {
                        json!({"type":"send","client_msg_id":format!("id{n}"),"text":"x".repeat(4001)})
                    }
                    2 => json!({"type":"send","text":marker}),
                    3 => {
                        json!({"type":"hello","visitor_token":self.visitors[rng.gen_range(0..8)].id})
                    }
                    _ => json!({"type":"submit_email","email":marker}),
                };
                self.visitors[i].tabs[t].send(bad).await;
            }
            VisitorOp::TypesTheirEmail => {
                let v = &mut self.visitors[i];
                v.tabs[t]
                    .send(json!({"type":"submit_email","email":v.email}))
                    .await;
                self.typed[i].insert(v.email.clone());
            }
            VisitorOp::TypesSomeoneElsesEmail => {
                let e = pick(rng, emails).clone();
                self.visitors[i].tabs[t]
                    .send(json!({"type":"submit_email","email":e}))
                    .await;
                self.typed[i].insert(e);
            }
            VisitorOp::ReadsHistory => {
                let before = match rng.gen_range(0..4) {
                    0 => json!(null),
                    1 => json!(rng.gen_range(0..20)),
                    2 => json!(u64::MAX),
                    _ => json!(-1),
                };
                self.visitors[i].tabs[t]
                    .send(json!({"type":"history","before":before,"limit":rng.gen_range(0..300)}))
                    .await;
            }
            VisitorOp::Reconnects => {
                let v = &mut self.visitors[i];
                v.tabs.remove(t).close();
                let tab = v.open_tab(addr, json!({})).await;
                v.tabs.push(tab);
            }
            VisitorOp::ClosesATab => self.visitors[i].tabs.remove(t).close(),
        }
    }

    /// An agent acts, on any conversation it can name (now and then a made-up one).
    async fn agent_acts(
        &mut self,
        rng: &mut StdRng,
        n: usize,
        marker: String,
        convs: &[(usize, String)],
        emails: &[String],
    ) {
        let g = rng.gen_range(0..self.agents.len());
        let (conv_owner, conv) = if convs.is_empty() || rng.gen_range(0..10) == 0 {
            (None, uuid::Uuid::new_v4().to_string())
        } else {
            let (i, c) = pick(rng, convs).clone();
            (Some(i), c)
        };
        let visible =
            conv_owner.is_some_and(|i| self.agents[g].inboxes.contains(&self.visitors[i].inbox));
        let op = AgentOp::of(rng.gen_range(0..100));
        self.count(op.name());
        let frame = match op {
            AgentOp::Replies => {
                let f = json!({"type":"reply","conversation_id":conv,"client_msg_id":format!("id{n}"),"text":format!("{marker} reply")});
                self.markers.push((marker, conv_owner.filter(|_| visible)));
                f
            }
            AgentOp::Opens => {
                json!({"type":"open","conversation_id":conv,"limit":rng.gen_range(1..60)})
            }
            AgentOp::LooksUpAContact => {
                json!({"type":"lookup_contact","email":pick(rng, emails)})
            }
            AgentOp::AssignsAVisitor => {
                json!({"type":"assign_visitor","conversation_id":conv,"email":pick(rng, emails)})
            }
            AgentOp::CreatesAContact => {
                let e = format!("c{n}.{:x}@agent.example", rng.gen::<u32>());
                let (first, last) = (format!("First{marker}"), format!("Last{marker}"));
                let f = json!({"type":"create_contact","conversation_id":conv,"email":e,"first_name":first,"last_name":last});
                self.agent_emails.push(e);
                self.names.push(first);
                self.names.push(last);
                f
            }
            AgentOp::ReadsAChatflow => {
                json!({"type":"get_chatflow","inbox":pick(rng, &["default", "shop", "nope"])})
            }
            AgentOp::SendsGarbage => {
                let garbage = pick(rng, &GARBAGE).to_string();
                self.agents[g].tab.send_text(garbage).await;
                return;
            }
        };
        self.agents[g].tab.send(frame).await;
    }

    /// A stranger with a forged or borrowed identity says hello and reads history.
    async fn stranger_acts(&mut self, rng: &mut StdRng) {
        self.count("stranger");
        let v = pick(rng, &self.visitors);
        let inbox = v.inbox;
        let mut forged = v.token.clone().into_bytes();
        let k = forged.len() / 2;
        forged[k] = if forged[k] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).expect("ascii");
        let conv = conversation_of(&v.log).unwrap_or_default();
        let (token, cookie) = match rng.gen_range(0..4) {
            0 => (Some(forged), None),
            1 => (Some(conv), None),
            2 => (Some(v.id.clone()), None),
            _ => (None, Some(format!("fd_visitor={forged}"))),
        };
        let mut tab = Tab::open(
            self.addr,
            &format!("/ws/visitor?inbox={inbox}"),
            cookie.as_deref(),
            &self.strangers,
        )
        .await;
        tab.send(json!({"type":"hello","visitor_token":token}))
            .await;
        tab.send(json!({"type":"history","before":null,"limit":200}))
            .await;
        self.stranger_tabs.push(tab);
    }

    /// Everybody reads everything once more: a fresh welcome and history for each
    /// visitor, every conversation opened by every agent.
    pub(super) async fn everyone_reads_again(&mut self) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for v in &mut self.visitors {
            let mut tab = v.open_tab(self.addr, json!({})).await;
            tab.send(json!({"type":"history","before":null,"limit":200}))
                .await;
            v.tabs.push(tab);
        }
        for g in 0..self.agents.len() {
            for (_, c) in self.conversations() {
                self.agents[g]
                    .tab
                    .send(json!({"type":"open","conversation_id":c,"limit":200}))
                    .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
