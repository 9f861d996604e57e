//! idle: seeds visitors with a little history, ramps `--connections` visitor connections
//! (hello with a seeded token, welcome with history) over `--ramp-secs` and holds them
//! `--hold-secs`, reading so heartbeats are answered. `hello_welcome` is intended
//! connect → welcome.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::args::IdleArgs;
use crate::client::{incoming, visitor_connect, Ws};
use crate::clock::{at, micros, unix_ms, unix_ms_of};
use crate::common::Common;
use crate::report::{count, join_all, lock, shared, take, Report, Shared};
use crate::seed::seed_visitors;

pub async fn run(c: &Common, p: &IdleArgs) -> Result<Report, String> {
    let report = shared();
    let history_visitors = p.history_visitors.unwrap_or(p.connections.min(1000));
    let seeded_here = (0..history_visitors).filter(|i| c.mine(*i)).count();
    let tokens = seed_visitors(c, seeded_here, p.history_messages, 64, &report).await;
    lock(&report).add("seeded_visitors", tokens.len() as u64);
    let start = c.start("ramp").await?;
    let ramp_end = start + p.ramp;
    let hold_end = ramp_end + p.hold;
    lock(&report).set("ramp_start_unix_ms", json!(unix_ms_of(start)));
    lock(&report).set("hold_start_unix_ms", json!(unix_ms_of(ramp_end)));
    let connected = Arc::new(AtomicUsize::new(0));
    let progress = progress(connected.clone(), c.shard);
    let mut tasks = Vec::new();
    for (local, i) in (0..p.connections).filter(|i| c.mine(*i)).enumerate() {
        let due = start + p.ramp.mul_f64(i as f64 / p.connections.max(1) as f64);
        let token = if tokens.is_empty() {
            None
        } else {
            Some(tokens[local % tokens.len()].clone())
        };
        let c = c.clone();
        let report = report.clone();
        let connected = connected.clone();
        tasks.push(tokio::spawn(async move {
            at(due).await;
            let ws = match visitor_connect(&c, token, None).await {
                Ok(v) => {
                    let mut r = lock(&report);
                    r.record("hello_welcome", micros(due.elapsed()));
                    r.add("connected", 1);
                    r.add("welcome_messages", v.welcome_messages.len() as u64);
                    v.ws
                }
                Err(e) => return count(&report, &e.key()),
            };
            connected.fetch_add(1, Ordering::Relaxed);
            hold(ws, hold_end, &report).await;
            connected.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    join_all(tasks, &report).await;
    progress.abort();
    let mut r = take(report);
    r.set("hold_end_unix_ms", json!(unix_ms()));
    Ok(r)
}

/// Prints how many connections are open, once a second, on stderr (one JSON line each).
fn progress(connected: Arc<AtomicUsize>, shard: usize) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let n = connected.load(Ordering::Relaxed);
            eprintln!(
                "{{\"progress\":\"idle\",\"shard\":{shard},\"unix_ms\":{},\"connected\":{n}}}",
                unix_ms()
            );
        }
    })
}

/// Holds a connection until `end`, reading so pings are answered; counts what arrives
/// and how the connection ended.
async fn hold(mut ws: Ws, end: Instant, report: &Shared) {
    let mut pings = 0u64;
    let dropped = loop {
        tokio::select! {
            m = ws.next() => match incoming(m) {
                Ok(WsMessage::Ping(_)) => pings += 1,
                Ok(_) => {}
                Err(e) => break Some(e),
            },
            _ = sleep_until(end) => break None,
        }
    };
    {
        let mut r = lock(report);
        r.add("pings", pings);
        match dropped {
            Some(e) => r.add(&format!("dropped_{}", e.key()), 1),
            None => r.add("held_to_end", 1),
        }
    }
    let _ = ws.close(None).await;
}
