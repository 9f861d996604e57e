//! history: one visitor whose conversation holds `--messages` messages, written through
//! the normal path; then, open-loop, full reloads (a new connection, `hello` with
//! `resume_after: 0`, then every older page: `full_reload`, with `full_reload_welcome` its
//! welcome's share) and page reloads (`history` of the newest page on open connections:
//! `page_reload`), optionally with relay traffic in the background (`--bg-*`, reported
//! under `bg_*`).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};
use widget_protocol::{VisitorClient, VisitorServer};

use crate::args::HistoryArgs;
use crate::client::{
    feed_frame, flush, next_text, next_visitor, send_frame, visitor_connect, LgError, Ws,
};
use crate::clock::{at, micros};
use crate::common::Common;
use crate::modes::relay;
use crate::report::{count, join_all, lock, shared, take, Report, Shared};
use crate::seed::seed_one;

/// The largest `history` page the protocol allows.
const HISTORY_PAGE: u32 = 200;

pub async fn run(c: &Common, p: &HistoryArgs) -> Result<Report, String> {
    let background = if p.background.rate > 0.0 {
        Some(p.background.plan(&p.common)?)
    } else {
        None
    };
    let report = shared();
    let (token, stored) = long_conversation(c, p, &report).await?;
    let mut page_conns = Vec::new();
    for _ in 0..p.page_conns.max(1) {
        match visitor_connect(c, Some(token.clone()), None).await {
            Ok(v) => page_conns.push(v.ws),
            Err(e) => count(&report, &format!("page_{}", e.key())),
        }
    }

    let start = c.start("history").await?;
    let bg = background.map(|plan| {
        let c = c.clone();
        tokio::spawn(async move { relay::run(&c, plan).await })
    });
    let mut tasks = full_reloads(c, p, &token, stored, start, &report);
    tasks.extend(page_reloads(c, p, page_conns, start, &report));
    join_all(tasks, &report).await;
    let mut r = take(report);
    if let Some(bg) = bg {
        match bg.await {
            Ok(Ok(bgr)) => r.merge(bgr.prefixed("bg_")),
            Ok(Err(e)) => return Err(format!("background load: {e}")),
            Err(_) => r.add("task_panicked", 1),
        }
    }
    Ok(r)
}

/// Makes the visitor and its `messages` messages; returns its token and the highest seq
/// stored (the `stored_messages` fact).
async fn long_conversation(
    c: &Common,
    p: &HistoryArgs,
    report: &Shared,
) -> Result<(String, u64), String> {
    let first = visitor_connect(c, None, None)
        .await
        .map_err(|e| format!("history: first visitor: {e}"))?;
    let token = first.token.clone();
    drop(first);
    // One tab at a time, each within the per-connection rate limit: tabs open together
    // would each receive every other tab's messages, a burst that is not what this
    // workload measures.
    let per = p.per_conn_limit.max(1);
    for (i, from) in (0..p.messages).step_by(per).enumerate() {
        let n = per.min(p.messages - from);
        match seed_one(c, Some(token.clone()), i, from, n).await {
            Ok(_) => count(report, "seed_connections"),
            Err(e) => count(report, &format!("seed_{}", e.key())),
        }
    }
    let check = visitor_connect(c, Some(token.clone()), None)
        .await
        .map_err(|e| format!("history: checking the seed: {e}"))?;
    let stored = check
        .welcome_messages
        .iter()
        .map(|m| m.seq)
        .max()
        .unwrap_or(0);
    lock(report).set("stored_messages", json!(stored));
    Ok((token, stored))
}

/// This shard's full reloads at `--full-rate`, each expecting `want` messages.
fn full_reloads(
    c: &Common,
    p: &HistoryArgs,
    token: &str,
    want: u64,
    start: Instant,
    report: &Shared,
) -> Vec<JoinHandle<()>> {
    let measure_from = start + p.warmup;
    let n = ((p.warmup + p.duration).as_secs_f64() * p.full_rate) as usize;
    let mut tasks = Vec::new();
    for i in (0..n).filter(|i| c.mine(*i)) {
        let due = start + Duration::from_secs_f64(i as f64 / p.full_rate);
        let c = c.clone();
        let token = token.to_string();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            at(due).await;
            let res = full_reload(&c, token, want).await;
            let mut r = lock(&report);
            let measured = due >= measure_from;
            match res {
                Ok((got, welcomed)) if got >= want => {
                    if measured {
                        r.record("full_reload_welcome", micros(welcomed - due));
                        r.record("full_reload", micros(due.elapsed()));
                        r.add("full_reloads", 1);
                    }
                }
                Ok(_) => r.add("full_reload_incomplete", 1),
                Err(e) => r.add(&format!("full_reload_{}", e.key()), 1),
            }
        }));
    }
    tasks
}

/// This shard's page reloads at `--page-rate`, pipelined on the open connections.
fn page_reloads(
    c: &Common,
    p: &HistoryArgs,
    conns: Vec<Ws>,
    start: Instant,
    report: &Shared,
) -> Vec<JoinHandle<()>> {
    let measure_from = start + p.warmup;
    let stop = measure_from + p.duration + Duration::from_secs(5);
    let n = ((p.warmup + p.duration).as_secs_f64() * p.page_rate) as usize;
    let spread = conns.len().max(1);
    let mut tasks = Vec::new();
    for (j, ws) in conns.into_iter().enumerate() {
        let dues: Vec<Instant> = (0..n)
            .filter(|i| i % spread == j && c.mine(*i))
            .map(|i| start + Duration::from_secs_f64(i as f64 / p.page_rate))
            .collect();
        let report = report.clone();
        let limit = p.page;
        tasks.push(tokio::spawn(async move {
            page_reloader(ws, dues, limit, measure_from, stop, report).await;
        }));
    }
    tasks
}

/// A full reload; returns the messages it got and when the welcome arrived.
async fn full_reload(c: &Common, token: String, want: u64) -> Result<(u64, Instant), LgError> {
    let mut v = visitor_connect(c, Some(token), Some(0)).await?;
    let welcomed = Instant::now();
    let mut seqs: HashSet<u64> = v.welcome_messages.iter().map(|m| m.seq).collect();
    let mut lowest = v.welcome_messages.iter().map(|m| m.seq).min();
    let more = v.has_more || (seqs.len() as u64) < want;
    let fut = async {
        // Seqs are dense within a conversation, so every older page's `before` is known
        // from the welcome: ask for them all at once (one round trip, as a client that
        // wants the whole conversation would), then page on for any gap one at a time.
        let mut befores = Vec::new();
        let mut b = lowest.filter(|_| more).unwrap_or(0);
        while b > 1 {
            befores.push(b);
            b = b.saturating_sub(HISTORY_PAGE as u64);
        }
        for before in &befores {
            feed_frame(&mut v.ws, &history_frame(*before)).await?;
        }
        if !befores.is_empty() {
            flush(&mut v.ws).await?;
        }
        let mut has_more = more;
        for _ in &befores {
            let (page, more) = next_history(&mut v.ws).await?;
            // (not Option::min: None would win)
            lowest = match (lowest, page.iter().copied().min()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            seqs.extend(page);
            has_more = more;
        }
        while has_more && (seqs.len() as u64) < want {
            let Some(before) = lowest.filter(|l| *l > 1) else {
                break;
            };
            send_frame(&mut v.ws, &history_frame(before)).await?;
            let (page, more) = next_history(&mut v.ws).await?;
            match page.iter().copied().min() {
                Some(l) => lowest = Some(l),
                None => has_more = false,
            }
            seqs.extend(page);
            has_more = has_more && more;
        }
        Ok(())
    };
    timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or(Err(LgError::Timeout("history")))?;
    let _ = v.ws.close(None).await;
    Ok((seqs.len() as u64, welcomed))
}

fn history_frame(before: u64) -> VisitorClient {
    VisitorClient::History {
        before: Some(before),
        limit: Some(HISTORY_PAGE),
    }
}

/// A `history` answer as a full reload reads it: the seqs only. The load generator
/// checks that every message arrived; decoding each whole message would be its own
/// cost (serde buffers an internally tagged frame before decoding it), not the server's.
#[derive(serde::Deserialize)]
struct SeqPage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    messages: Vec<SeqOf>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    code: Option<String>,
}

#[derive(serde::Deserialize)]
struct SeqOf {
    seq: u64,
}

/// The seqs of the next `history` answer on a visitor socket (other frames are skipped).
async fn next_history(ws: &mut Ws) -> Result<(Vec<u64>, bool), LgError> {
    loop {
        let text = next_text(ws).await?;
        let page: SeqPage =
            serde_json::from_str(&text).map_err(|e| LgError::Protocol(e.to_string()))?;
        match page.kind.as_str() {
            "history" => return Ok((page.messages.iter().map(|m| m.seq).collect(), page.has_more)),
            "error" => {
                let code = page.code.unwrap_or_default();
                return Err(LgError::Protocol(format!("history: {code}")));
            }
            _ => {}
        }
    }
}

/// Sends a `history` of the newest `limit` at each of `dues` on one connection and
/// times each answer from its intended instant.
async fn page_reloader(
    mut ws: Ws,
    dues: Vec<Instant>,
    limit: u32,
    measure_from: Instant,
    stop: Instant,
    report: Shared,
) {
    let mut next = 0usize;
    let mut inflight: VecDeque<Instant> = VecDeque::new();
    let mut local = Report::default();
    let err = loop {
        if next >= dues.len() && inflight.is_empty() {
            break None;
        }
        let due = dues.get(next).copied().unwrap_or(stop);
        tokio::select! {
            _ = at(due), if next < dues.len() => {
                let frame = VisitorClient::History { before: None, limit: Some(limit) };
                if let Err(e) = send_frame(&mut ws, &frame).await {
                    break Some(e);
                }
                inflight.push_back(dues[next]);
                next += 1;
            }
            m = next_visitor(&mut ws) => match m {
                Ok(VisitorServer::History { messages, .. }) => {
                    if let Some(intended) = inflight.pop_front() {
                        if intended >= measure_from {
                            local.record("page_reload", micros(intended.elapsed()));
                            local.add("page_reloads", 1);
                        }
                        if messages.len() < limit as usize {
                            local.add("page_short", 1);
                        }
                    }
                }
                Ok(VisitorServer::Error(e)) => local.add(&format!("page_error_{}", e.code.as_str()), 1),
                Ok(_) => {}
                Err(e) => break Some(e),
            },
            _ = sleep_until(stop) => break Some(LgError::Timeout("page")),
        }
    };
    if let Some(e) = err {
        local.add(&format!("page_{}", e.key()), 1);
    }
    local.add("page_unanswered", inflight.len() as u64);
    lock(&report).merge(local);
    let _ = ws.close(None).await;
}
