//! relay: `visitors` visitors send at an offered rate `rate` in total (visitor g sends
//! message k at (k·V + g)/R s after the start); `agents` agents receive everything.
//! `send_ack` is intended send → ack; `send_agent` is intended send → the `message`
//! frame at a measuring agent (the intended time travels in the text, so it crosses
//! processes). The first `measure_agents` agents decode every frame, the others read and
//! discard raw bytes so the load generator's own cost stays small; `slow_agents` never
//! read. With an acked log, every ack is written down for `verify`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use widget_protocol::{decode, AgentServer, AuthorKind, VisitorClient, VisitorServer};

use crate::client::{agent_connect, feed_frame, flush, incoming, LgError, Visitor, Ws};
use crate::clock::{at, micros, unix_ms_of, unix_nanos, unix_nanos_of};
use crate::common::Common;
use crate::report::{count, join_all, lock, shared, take, Report, Shared};
use crate::seed::connect_new_visitors;

/// A relay run, validated from `relay`'s options or `history`'s `bg-` ones.
pub struct RelayPlan {
    pub visitors: usize,
    pub agents: usize,
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    pub text_bytes: usize,
    pub measure_agents: usize,
    pub slow_agents: usize,
    pub agent_token: String,
    pub acked_log: Option<String>,
}

/// One acked message, as the kill -9 checker needs it.
struct AckedRecord {
    token: String,
    conversation_id: String,
    seq: u64,
    id: String,
}

/// The run's instants: the schedule's start (also as Unix ns, for the stamps in the
/// texts), the start of measuring as Unix ns, and when every task stops.
#[derive(Clone, Copy)]
struct Times {
    start: Instant,
    start_unix_ns: u64,
    measure_from_unix_ns: u64,
    stop: Instant,
}

pub async fn run(c: &Common, p: RelayPlan) -> Result<Report, String> {
    let report = shared();
    let p = Arc::new(p);
    // Agents first, so they see every message.
    let agents = connect_agents(c, &p.agent_token, p.agents, "agent", &report).await;
    let slow = connect_agents(c, &p.agent_token, p.slow_agents, "slow_agent", &report).await;
    let visitors = connect_new_visitors(c, p.visitors, &report).await;
    {
        let mut r = lock(&report);
        r.add("visitors_connected", visitors.len() as u64);
        r.add("agents_connected", agents.len() as u64);
        r.add("slow_agents_connected", slow.len() as u64);
    }

    let start = c.start("relay").await?;
    let t = times(start, &p, &report);
    let mut tasks = Vec::new();
    for (a, ws) in agents {
        let c = c.clone();
        let report = report.clone();
        let measure = a < p.measure_agents;
        tasks.push(tokio::spawn(async move {
            if measure {
                agent_reader(c, ws, t.measure_from_unix_ns, t.stop, report).await;
            } else {
                agent_drain(ws, t.stop, report).await;
            }
            Vec::new()
        }));
    }
    for (g, v) in visitors {
        let c = c.clone();
        let report = report.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            relay_visitor(c, p, g, v, t, report).await
        }));
    }
    let acked: Vec<AckedRecord> = join_all(tasks, &report)
        .await
        .into_iter()
        .flatten()
        .collect();
    // Slow agents never read during the run; see whether the server dropped them.
    if !slow.is_empty() {
        let ends = futures::future::join_all(slow.into_iter().map(|(_, ws)| drain_slow(ws))).await;
        let mut r = lock(&report);
        for end in ends {
            r.add(&format!("slow_agent_{end}"), 1);
        }
    }
    if let Some(path) = &p.acked_log {
        let path = if c.shards > 1 {
            format!("{path}.{}", c.shard)
        } else {
            path.clone()
        };
        write_acked_log(&path, &acked).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(take(report))
}

/// Connects this shard's share of `n` agents; a failed one is counted as `{what}_*`.
async fn connect_agents(
    c: &Common,
    token: &str,
    n: usize,
    what: &str,
    report: &Shared,
) -> Vec<(usize, Ws)> {
    let mut agents = Vec::new();
    for a in (0..n).filter(|a| c.mine(*a)) {
        match agent_connect(c, token).await {
            Ok(ws) => agents.push((a, ws)),
            Err(e) => count(report, &format!("{what}_{}", e.key())),
        }
    }
    agents
}

/// The run's instants from its start, and the measured window in the report's facts.
fn times(start: Instant, p: &RelayPlan, report: &Shared) -> Times {
    let measure_from = start + p.warmup;
    let sched_end = measure_from + p.duration;
    let stop = sched_end + p.drain;
    {
        let mut r = lock(report);
        r.set("measure_start_unix_ms", json!(unix_ms_of(measure_from)));
        r.set("measure_end_unix_ms", json!(unix_ms_of(sched_end)));
        r.set("offered_rate", json!(p.rate));
    }
    let start_unix_ns = unix_nanos_of(start);
    Times {
        start,
        start_unix_ns,
        measure_from_unix_ns: start_unix_ns + p.warmup.as_nanos() as u64,
        stop,
    }
}

/// Reads what a non-reading agent was sent, for at most a few seconds, and says how its
/// connection ended: `dropped_CODE` (the server closed it), `open` or `error`.
async fn drain_slow(mut ws: Ws) -> String {
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(cf))) => {
                    return format!(
                        "dropped_{}",
                        cf.map(|c| u16::from(c.code).to_string())
                            .unwrap_or_else(|| "none".into())
                    )
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => return "reset".to_string(),
                None => return "dropped_eof".to_string(),
            }
        }
    };
    timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| "open".to_string())
}

fn write_acked_log(path: &str, acked: &[AckedRecord]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for a in acked {
        writeln!(f, "{}\t{}\t{}\t{}", a.token, a.conversation_id, a.seq, a.id)?;
    }
    f.flush()
}

/// An agent that only has to keep up: it reads the socket's bytes and throws them away
/// without parsing WebSocket frames, so that reading every agent's copy of every message
/// costs the load generator (on the same machine) as little as possible. It sends no pongs;
/// runs are shorter than two heartbeats.
async fn agent_drain(ws: Ws, stop: Instant, report: Shared) {
    use tokio::io::AsyncReadExt;
    let mut tcp = ws.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    let end = loop {
        tokio::select! {
            n = tcp.read(&mut buf) => match n {
                Ok(0) => break Some("agent_drain_eof"),
                Ok(n) => bytes += n as u64,
                Err(_) => break Some("agent_drain_error"),
            },
            _ = sleep_until(stop) => break None,
        }
    };
    let mut r = lock(&report);
    r.add("agent_drain_bytes", bytes);
    if let Some(e) = end {
        r.add(e, 1);
    }
}

/// An agent that decodes every frame and measures send→agent latency.
async fn agent_reader(
    c: Common,
    mut ws: Ws,
    measure_from_unix_ns: u64,
    stop: Instant,
    report: Shared,
) {
    let mut received = 0u64;
    let mut frames = 0u64;
    let end = loop {
        tokio::select! {
            m = ws.next() => match incoming(m) {
                Ok(WsMessage::Text(t)) => {
                    frames += 1;
                    let now_ns = unix_nanos();
                    match decode::<AgentServer>(t.as_str()) {
                        Ok(AgentServer::Message { message }) if message.author.kind == AuthorKind::Visitor => {
                            if let Some(intended) = parse_stamp(&message.text, &c.nonce) {
                                if intended >= measure_from_unix_ns {
                                    received += 1;
                                    lock(&report).record("send_agent", now_ns.saturating_sub(intended) / 1000);
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(_) => count(&report, "agent_undecodable"),
                    }
                }
                Ok(_) => {}
                Err(e) => break Some(e),
            },
            _ = sleep_until(stop) => break None,
        }
    };
    {
        let mut r = lock(&report);
        r.add("agent_frames", frames);
        r.add("agent_measured_received", received);
        r.add("agents_measuring", 1);
        if let Some(e) = end {
            r.add(&format!("agent_{}", e.key()), 1);
        }
    }
    let _ = ws.close(None).await;
}

/// The text of a relay message: `lg <nonce> <intended unix ns> <visitor>`, padded.
fn stamped_text(nonce: &str, intended_ns: u64, g: usize, bytes: usize) -> String {
    let mut t = format!("lg {nonce} {intended_ns} {g}");
    if t.len() < bytes {
        t.push(' ');
        while t.len() < bytes {
            t.push('x');
        }
    }
    t
}

/// Reads `lg <nonce> <intended unix ns> ...` back out of a message text.
fn parse_stamp(text: &str, nonce: &str) -> Option<u64> {
    let mut parts = text.split(' ');
    if parts.next()? != "lg" || parts.next()? != nonce {
        return None;
    }
    parts.next()?.parse().ok()
}

/// The message index `k` a `client_msg_id` (or an error's `reference`) ends in.
fn message_index(id: &str) -> Option<u64> {
    id.rsplit('-').next().and_then(|k| k.parse().ok())
}

/// One visitor of the run: sends its messages at their intended instants and matches
/// the acks, until everything is acked or the run stops.
async fn relay_visitor(
    c: Common,
    p: Arc<RelayPlan>,
    g: usize,
    v: Visitor,
    t: Times,
    report: Shared,
) -> Vec<AckedRecord> {
    let Visitor { mut ws, token, .. } = v;
    let mut s = Sender::new(&c, &p, g, token);
    let end = loop {
        if s.done() {
            break None;
        }
        let due = s.next_due(&t);
        tokio::select! {
            _ = at(due.unwrap_or(t.stop)), if due.is_some() => {
                if let Err(e) = s.send_due(&mut ws, &t).await {
                    break Some(e);
                }
            }
            m = ws.next() => {
                let now = Instant::now();
                match incoming(m) {
                    Ok(WsMessage::Text(text)) => s.on_frame(text.as_str(), now),
                    Ok(_) => {}
                    Err(e) => break Some(e),
                }
            }
            _ = sleep_until(t.stop) => break None,
        }
    };
    let (local, acked) = s.finish(end);
    lock(&report).merge(local);
    let _ = ws.close(None).await;
    acked
}

/// A relay visitor's schedule and what it has sent and had acked.
struct Sender {
    nonce: String,
    g: usize,
    text_bytes: usize,
    log_acks: bool,
    token: String,
    /// Seconds from the start to this visitor's first send, and between its sends.
    phase: f64,
    gap: f64,
    /// Messages `0..warm` are the warm-up; `0..total` are all there are.
    warm: u64,
    total: u64,
    next: u64,
    /// Sent and not yet acked: message index → intended send instant.
    pending: HashMap<u64, Instant>,
    last_seq: u64,
    acked: Vec<AckedRecord>,
    local: Report,
}

impl Sender {
    fn new(c: &Common, p: &RelayPlan, g: usize, token: String) -> Sender {
        let mut s = Sender {
            nonce: c.nonce.clone(),
            g,
            text_bytes: p.text_bytes,
            log_acks: p.acked_log.is_some(),
            token,
            gap: p.visitors as f64 / p.rate,
            phase: g as f64 / p.rate,
            warm: 0,
            total: 0,
            next: 0,
            pending: HashMap::new(),
            last_seq: 0,
            acked: Vec::new(),
            local: Report::default(),
        };
        while s.offset(s.warm) < p.warmup {
            s.warm += 1;
        }
        s.total = s.warm;
        while s.offset(s.total) < p.warmup + p.duration {
            s.total += 1;
        }
        s
    }

    /// When message `k` is due, after the start.
    fn offset(&self, k: u64) -> Duration {
        Duration::from_secs_f64(self.phase + k as f64 * self.gap)
    }

    fn done(&self) -> bool {
        self.next >= self.total && self.pending.is_empty()
    }

    /// When the next message is due, if any is left to send.
    fn next_due(&self, t: &Times) -> Option<Instant> {
        (self.next < self.total).then(|| t.start + self.offset(self.next))
    }

    /// Sends everything that is due (more than one when we fell behind), in one flush.
    async fn send_due(&mut self, ws: &mut Ws, t: &Times) -> Result<(), LgError> {
        let now = Instant::now();
        while self.next < self.total && t.start + self.offset(self.next) <= now {
            let k = self.next;
            let intended = t.start + self.offset(k);
            let intended_ns = t.start_unix_ns + self.offset(k).as_nanos() as u64;
            let frame = VisitorClient::Send {
                client_msg_id: format!("{}-{}-{k}", self.nonce, self.g),
                text: stamped_text(&self.nonce, intended_ns, self.g, self.text_bytes),
                attachments: Vec::new(),
            };
            feed_frame(ws, &frame).await?;
            self.pending.insert(k, intended);
            let key = if k < self.warm { "warmup_sent" } else { "sent" };
            self.local.add(key, 1);
            self.next += 1;
        }
        flush(ws).await
    }

    /// A frame from the server, read at `now`.
    fn on_frame(&mut self, text: &str, now: Instant) {
        match decode::<VisitorServer>(text) {
            Ok(VisitorServer::Ack {
                client_msg_id,
                message,
            }) => {
                let Some(k) = message_index(&client_msg_id) else {
                    return self.local.add("ack_unknown", 1);
                };
                let Some(intended) = self.pending.remove(&k) else {
                    return self.local.add("ack_duplicate", 1);
                };
                if message.seq != self.last_seq + 1 && self.last_seq != 0 {
                    self.local.add("ack_seq_gap", 1);
                }
                self.last_seq = message.seq;
                if k < self.warm {
                    self.local.add("warmup_acked", 1);
                } else {
                    self.local.add("acked", 1);
                    let latency = micros(now.saturating_duration_since(intended));
                    self.local.record("send_ack", latency);
                }
                if self.log_acks {
                    self.acked.push(AckedRecord {
                        token: self.token.clone(),
                        conversation_id: message.conversation_id,
                        seq: message.seq,
                        id: message.id,
                    });
                }
            }
            Ok(VisitorServer::Error(e)) => {
                self.local.add(&format!("error_{}", e.code.as_str()), 1);
                let k = e.reference.as_deref().and_then(message_index);
                if k.is_some_and(|k| self.pending.remove(&k).is_some()) {
                    self.local.add("rejected", 1);
                }
            }
            Ok(VisitorServer::EmailPrompt { .. }) => self.local.add("email_prompts", 1),
            Ok(_) => self.local.add("visitor_other_frames", 1),
            Err(_) => self.local.add("visitor_undecodable", 1),
        }
    }

    /// The visitor's counts, with how its connection ended and whatever is still
    /// pending (sent and never acked, or the connection died), and its acked records.
    fn finish(mut self, end: Option<LgError>) -> (Report, Vec<AckedRecord>) {
        if let Some(e) = end {
            self.local.add(&format!("visitor_{}", e.key()), 1);
        }
        for k in self.pending.keys() {
            let key = if *k < self.warm {
                "warmup_unacked"
            } else {
                "unacked"
            };
            self.local.add(key, 1);
        }
        (self.local, self.acked)
    }
}
