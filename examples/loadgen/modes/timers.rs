//! timers: sets the inbox's chatflow to `no_reply` after `--delay-secs`; `--prompts`
//! visitors each send a first message, spread over `--spread-secs`, and the prompt is due
//! `delay` after it. A `--cancel-fraction` of the conversations get an agent reply
//! half-way, which must cancel their prompt. `prompt_lateness` is prompt arrival −
//! (the first message's `at` + delay); a prompt after a reply stored before the
//! deadline, a missing or a second prompt are failures. `--reconnect` for the kill -9
//! run: a visitor whose connection drops comes back with its token.

use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use widget_protocol::{
    AgentClient, AgentServer, AuthorKind, CaptureWhen, Chatflow, EmailCapture, VisitorClient,
    VisitorServer,
};

use crate::args::TimersArgs;
use crate::client::{
    agent_connect, next_agent, next_visitor, send_frame, visitor_connect, LgError, Visitor, Ws,
};
use crate::clock::{at, unix_ms, unix_nanos};
use crate::common::Common;
use crate::report::{count, join_all, lock, shared, take, Report, Shared};
use crate::seed::connect_new_visitors;

pub async fn run(c: &Common, p: &TimersArgs) -> Result<Report, String> {
    let token = p.common.agent_token()?;
    let report = shared();
    if !p.keep_chatflow && c.shard == 0 {
        set_no_reply_chatflow(c, &token, p.delay_secs).await?;
    }
    let end = Arc::new(Mutex::new(None::<Instant>));
    let (agent_txs, agent_tasks) = reply_agents(c, &token, p.agents, &end, &report).await?;
    // Visitors connect before the schedule starts.
    let visitors = connect_new_visitors(c, p.prompts, &report).await;
    lock(&report).add("visitors_connected", visitors.len() as u64);
    let start = c.start("timers").await?;
    let stop = start + p.spread + Duration::from_secs(p.delay_secs) + p.grace;
    *lock(&end) = Some(stop);
    let mut tasks = Vec::new();
    for (g, v) in visitors {
        let due = start + p.spread.mul_f64(g as f64 / p.prompts.max(1) as f64);
        // Deterministic, evenly spread choice of the conversations to cancel.
        let cancel = ((g as u64 * 2_654_435_761) % 1000) < (p.cancel_fraction * 1000.0) as u64;
        let agent = agent_txs[g % agent_txs.len()].clone();
        let report = report.clone();
        let Visitor { ws, token, .. } = v;
        let visitor = TimerVisitor::new(c, p, g, cancel, token);
        tasks.push(tokio::spawn(async move {
            visitor.run(ws, due, stop, agent, report).await
        }));
    }
    join_all(tasks, &report).await;
    drop(agent_txs);
    join_all(agent_tasks, &report).await;
    Ok(take(report))
}

/// Connects `n` (at least one) reply agents; each sends the replies it is handed when
/// they are due, until `end` (once set).
async fn reply_agents(
    c: &Common,
    token: &str,
    n: usize,
    end: &Arc<Mutex<Option<Instant>>>,
    report: &Shared,
) -> Result<(Vec<mpsc::UnboundedSender<ReplyJob>>, Vec<JoinHandle<()>>), String> {
    let mut txs = Vec::new();
    let mut tasks = Vec::new();
    for a in 0..n.max(1) {
        let ws = agent_connect(c, token)
            .await
            .map_err(|e| format!("timers: agent {a}: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel::<ReplyJob>();
        txs.push(tx);
        tasks.push(tokio::spawn(reply_agent(
            ws,
            rx,
            end.clone(),
            report.clone(),
        )));
    }
    Ok((txs, tasks))
}

/// A reply an agent must send at `due`, to cancel a prompt.
struct ReplyJob {
    due: Instant,
    conversation_id: String,
    client_msg_id: String,
}

impl PartialEq for ReplyJob {
    fn eq(&self, o: &Self) -> bool {
        self.due == o.due
    }
}
impl Eq for ReplyJob {}
impl PartialOrd for ReplyJob {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ReplyJob {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.due.cmp(&self.due) // earliest first in a max-heap
    }
}

async fn set_no_reply_chatflow(c: &Common, token: &str, delay_secs: u64) -> Result<(), String> {
    let mut ws = agent_connect(c, token)
        .await
        .map_err(|e| format!("admin agent: {e}"))?;
    let chatflow = Chatflow {
        email_capture: EmailCapture {
            when: CaptureWhen::NoReply,
            delay_secs,
            message: Some("Leave your email and we will get back to you.".into()),
        },
        ..Chatflow::default()
    };
    send_frame(
        &mut ws,
        &AgentClient::UpdateChatflow {
            inbox: c.inbox.clone(),
            chatflow,
        },
    )
    .await
    .map_err(|e| format!("update_chatflow: {e}"))?;
    let fut = async {
        loop {
            match next_agent(&mut ws).await {
                Ok(AgentServer::Chatflow { .. }) => return Ok(()),
                Ok(AgentServer::Error(e)) => {
                    return Err(format!("update_chatflow: {}", e.code.as_str()))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("update_chatflow: {e}")),
            }
        }
    };
    let res = timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| Err("update_chatflow: no answer".into()));
    let _ = ws.close(None).await;
    res
}

async fn reply_agent(
    mut ws: Ws,
    mut rx: mpsc::UnboundedReceiver<ReplyJob>,
    end: Arc<Mutex<Option<Instant>>>,
    report: Shared,
) {
    let mut heap: BinaryHeap<ReplyJob> = BinaryHeap::new();
    let mut open = true;
    let far = Instant::now() + Duration::from_secs(86_400);
    loop {
        let stop = lock(&end).unwrap_or(far);
        if !open && heap.is_empty() {
            break;
        }
        let next_due = heap.peek().map(|j| j.due).unwrap_or(far);
        tokio::select! {
            job = rx.recv(), if open => match job {
                Some(j) => heap.push(j),
                None => open = false,
            },
            _ = at(next_due), if !heap.is_empty() => {
                while heap.peek().is_some_and(|j| j.due <= Instant::now()) {
                    let Some(j) = heap.pop() else { break };
                    let frame = AgentClient::Reply {
                        conversation_id: j.conversation_id,
                        client_msg_id: j.client_msg_id,
                        text: "Hello! An agent is here.".into(),
                        attachments: Vec::new(),
                    };
                    match send_frame(&mut ws, &frame).await {
                        Ok(()) => count(&report, "replies_sent"),
                        Err(e) => count(&report, &format!("reply_{}", e.key())),
                    }
                }
            }
            m = next_agent(&mut ws) => match m {
                Ok(AgentServer::Ack { .. }) => count(&report, "replies_acked"),
                Ok(AgentServer::Error(e)) => count(&report, &format!("reply_error_{}", e.code.as_str())),
                Ok(_) => {}
                Err(e) => { count(&report, &format!("agent_{}", e.key())); break; }
            },
            _ = sleep_until(stop) => break,
        }
    }
    let _ = ws.close(None).await;
}

/// One visitor of the run: its first message, the reply that may cancel its prompt, and
/// the prompts it saw.
struct TimerVisitor {
    c: Common,
    g: usize,
    delay_ms: i64,
    cancel: bool,
    may_reconnect: bool,
    token: String,
    /// Server ms of the first message, once acked.
    acked_at: Option<i64>,
    /// Server ms of the agent's reply, once seen.
    reply_at: Option<i64>,
    prompts: u32,
    /// A welcome after a reconnect said the prompt was sent and is unanswered: the
    /// visitor sees it even if its push never reached us (the server was killed between
    /// recording it and writing it).
    prompt_in_welcome: bool,
    local: Report,
}

impl TimerVisitor {
    fn new(c: &Common, p: &TimersArgs, g: usize, cancel: bool, token: String) -> TimerVisitor {
        TimerVisitor {
            c: c.clone(),
            g,
            delay_ms: (p.delay_secs * 1000) as i64,
            cancel,
            may_reconnect: p.reconnect,
            token,
            acked_at: None,
            reply_at: None,
            prompts: 0,
            prompt_in_welcome: false,
            local: Report::default(),
        }
    }

    /// Sends the first message at `due` (again on each new connection until it is
    /// acked) and reads until `stop`; adds the outcome to `report`.
    async fn run(
        mut self,
        ws: Ws,
        due: Instant,
        stop: Instant,
        agent: mpsc::UnboundedSender<ReplyJob>,
        report: Shared,
    ) {
        let mut ws = self.until_due(ws, due).await;
        let mut sent = false;
        while Instant::now() < stop {
            let Some(conn) = ws.as_mut() else {
                if !self.may_reconnect {
                    break;
                }
                ws = self.reconnect().await;
                sent = false;
                continue;
            };
            if !sent && self.acked_at.is_none() {
                if let Err(e) = self.send_first(conn).await {
                    self.local.add(&format!("visitor_{}", e.key()), 1);
                    ws = None;
                    continue;
                }
                sent = true;
            }
            let frame = tokio::select! {
                f = next_visitor(conn) => f,
                _ = sleep_until(stop) => break,
            };
            match frame {
                Ok(frame) => self.on_frame(frame, &agent),
                Err(e) => {
                    self.local.add(&format!("visitor_{}", e.key()), 1);
                    ws = None;
                }
            }
        }
        lock(&report).merge(self.tally());
        if let Some(mut conn) = ws {
            let _ = conn.close(None).await;
        }
    }

    /// Until the first message is due, reads so that heartbeats are answered; None if
    /// the connection was lost meanwhile.
    async fn until_due(&mut self, mut ws: Ws, due: Instant) -> Option<Ws> {
        loop {
            tokio::select! {
                m = ws.next() => match m {
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        self.local.add("visitor_lost_before_send", 1);
                        return None;
                    }
                },
                _ = at(due) => return Some(ws),
            }
        }
    }

    /// Comes back with the visitor's token; what the welcome shows counts as seen.
    async fn reconnect(&mut self) -> Option<Ws> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        match visitor_connect(&self.c, Some(self.token.clone()), None).await {
            Ok(v) => {
                self.local.add("reconnected", 1);
                // A reply stored while we were away shows in the welcome's history.
                if let Some(m) = v
                    .welcome_messages
                    .iter()
                    .find(|m| m.author.kind == AuthorKind::Agent)
                {
                    self.reply_at = self.reply_at.or(Some(m.at));
                }
                self.prompt_in_welcome |= v.email_prompt.is_some();
                Some(v.ws)
            }
            Err(_) => {
                self.local.add("reconnect_failed", 1);
                None
            }
        }
    }

    async fn send_first(&self, ws: &mut Ws) -> Result<(), LgError> {
        let frame = VisitorClient::Send {
            client_msg_id: format!("{}-t{}", self.c.nonce, self.g),
            text: format!("timer visitor {} needs help", self.g),
            attachments: Vec::new(),
        };
        send_frame(ws, &frame).await
    }

    fn on_frame(&mut self, frame: VisitorServer, agent: &mpsc::UnboundedSender<ReplyJob>) {
        match frame {
            VisitorServer::Ack { message, .. } => {
                if self.acked_at.is_some() {
                    return;
                }
                self.acked_at = Some(message.at);
                self.local.add("first_messages_acked", 1);
                if self.cancel {
                    // Half-way to the deadline, as measured from the server's stamp.
                    let deadline_ms = message.at + self.delay_ms;
                    let half_ms = (deadline_ms - unix_ms() as i64) / 2;
                    let _ = agent.send(ReplyJob {
                        due: Instant::now() + Duration::from_millis(half_ms.max(0) as u64),
                        conversation_id: message.conversation_id.clone(),
                        client_msg_id: format!("{}-r{}", self.c.nonce, self.g),
                    });
                }
            }
            VisitorServer::Message { message } if message.author.kind == AuthorKind::Agent => {
                self.reply_at = self.reply_at.or(Some(message.at));
            }
            VisitorServer::EmailPrompt { .. } => {
                self.prompts += 1;
                if let Some(at) = self.acked_at {
                    let deadline_us = (at + self.delay_ms) * 1000;
                    let late = unix_nanos() as i64 / 1000 - deadline_us;
                    if late < -1000 {
                        self.local.add("prompts_early", 1);
                    }
                    if self.reply_at.is_none() && self.prompts == 1 {
                        self.local.record("prompt_lateness", late.max(0) as u64);
                    }
                }
            }
            VisitorServer::Error(e) => self.local.add(&format!("error_{}", e.code.as_str()), 1),
            _ => {}
        }
    }

    /// The visitor's outcome: a reply stored before the deadline must cancel the prompt;
    /// a reply that never happened (its agent's connection died) or came late must not.
    fn tally(mut self) -> Report {
        let Some(at) = self.acked_at else {
            self.local.add("first_message_unacked", 1);
            return self.local;
        };
        let deadline = at + self.delay_ms;
        let l = &mut self.local;
        if self.reply_at.is_some_and(|r| r < deadline) {
            l.add("cancelled", 1);
            if self.prompts > 0 {
                l.add("prompts_after_reply", 1);
            }
            return self.local;
        }
        if self.cancel {
            l.add("cancel_not_in_time", 1);
        }
        l.add("prompts_expected", 1);
        match (self.prompts, self.prompt_in_welcome) {
            (0, false) => l.add("prompts_lost", 1),
            (0, true) => {
                l.add("prompts_ok", 1);
                l.add("prompts_shown_by_welcome_only", 1);
            }
            (1, _) => l.add("prompts_ok", 1),
            _ => l.add("prompts_doubled", 1),
        }
        self.local
    }
}
