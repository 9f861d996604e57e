//! verify: reconnects as every visitor of an acked log (a relay run's, and its shards'
//! `FILE.N`) and checks that every acked message is still stored with its id and seq.
//! An unverifiable visitor counts as lost: the checker must not pass on errors. The
//! process exits 1 on any loss.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::timeout;
use widget_protocol::{VisitorClient, VisitorServer};

use crate::args::VerifyArgs;
use crate::client::{next_visitor, send_frame, visitor_connect, LgError};
use crate::common::Common;
use crate::report::{join_all, lock, shared, take, Report};

/// The most shard logs (`FILE.N`) looked for.
const MAX_SHARD_LOGS: usize = 1024;

pub async fn run(c: &Common, p: &VerifyArgs) -> Result<Report, String> {
    let report = shared();
    let by_token = read_logs(&p.acked_log)?;
    let acked: usize = by_token.values().map(|m| m.len()).sum();
    lock(&report).add("acked", acked as u64);
    lock(&report).add("visitors", by_token.len() as u64);
    let sem = Arc::new(Semaphore::new(p.concurrency.max(1)));
    let mut tasks = Vec::new();
    for (token, ids) in by_token {
        let c = c.clone();
        let sem = sem.clone();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let min_seq = ids.values().copied().min().unwrap_or(1);
            match stored_messages(&c, token, min_seq).await {
                Ok(stored) => {
                    let mut r = lock(&report);
                    for (id, seq) in &ids {
                        match stored.get(id) {
                            Some(s) if s == seq => r.add("found", 1),
                            Some(_) => r.add("seq_changed", 1),
                            None => r.add("lost", 1),
                        }
                    }
                }
                Err(e) => {
                    let mut r = lock(&report);
                    r.add(&format!("verify_{}", e.key()), 1);
                    r.add("lost", ids.len() as u64);
                }
            }
        }));
    }
    join_all(tasks, &report).await;
    Ok(take(report))
}

/// The acked messages of the log at `base` and of its shards' `base.N`:
/// token → (id → seq).
fn read_logs(base: &str) -> Result<HashMap<String, HashMap<String, u64>>, String> {
    let logs: Vec<String> = std::iter::once(base.to_string())
        .chain((0..MAX_SHARD_LOGS).map(|i| format!("{base}.{i}")))
        .filter(|path| Path::new(path).exists())
        .collect();
    if logs.is_empty() {
        return Err(format!("no acked log at {base} or {base}.N"));
    }
    let mut by_token: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for path in &logs {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                continue;
            }
            let seq = f[2].parse().unwrap_or(0);
            by_token
                .entry(f[0].to_string())
                .or_default()
                .insert(f[3].to_string(), seq);
        }
    }
    Ok(by_token)
}

/// Every message of the visitor's conversation with seq ≥ `min_seq`: id -> seq.
async fn stored_messages(
    c: &Common,
    token: String,
    min_seq: u64,
) -> Result<HashMap<String, u64>, LgError> {
    let mut v = visitor_connect(c, Some(token), Some(min_seq.saturating_sub(1))).await?;
    let mut out: HashMap<String, u64> = v
        .welcome_messages
        .iter()
        .map(|m| (m.id.clone(), m.seq))
        .collect();
    let mut lowest = v.welcome_messages.iter().map(|m| m.seq).min();
    let mut more = v.has_more;
    // A server that caps the welcome: page back until min_seq is covered.
    while more && lowest.is_some_and(|l| l > min_seq) {
        send_frame(
            &mut v.ws,
            &VisitorClient::History {
                before: lowest,
                limit: Some(200),
            },
        )
        .await?;
        let fut = async {
            loop {
                if let VisitorServer::History { messages, has_more } =
                    next_visitor(&mut v.ws).await?
                {
                    return Ok::<_, LgError>((messages, has_more));
                }
            }
        };
        let (messages, has_more) = timeout(Duration::from_secs(30), fut)
            .await
            .unwrap_or(Err(LgError::Timeout("history")))?;
        more = has_more && !messages.is_empty();
        lowest = messages.iter().map(|m| m.seq).min().or(lowest);
        out.extend(messages.into_iter().map(|m| (m.id, m.seq)));
    }
    let _ = v.ws.close(None).await;
    Ok(out)
}
