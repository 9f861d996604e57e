//! The visitors a workload starts from: this shard's share of new connections, and
//! visitors that already have stored messages, written through the normal `send` path.
//! Failures are counted in the report and the visitor left out; nothing here measures.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::timeout;
use widget_protocol::{VisitorClient, VisitorServer};

use crate::client::{feed_frame, flush, next_visitor, visitor_connect, LgError, Visitor};
use crate::common::Common;
use crate::report::{count, Shared};

/// Connects this shard's share of visitors `0..n` as new visitors, 256 handshakes at a
/// time; returns each with its global index (a failed one is counted and left out).
pub async fn connect_new_visitors(c: &Common, n: usize, report: &Shared) -> Vec<(usize, Visitor)> {
    let sem = Arc::new(Semaphore::new(256));
    let mut conns = Vec::new();
    for g in (0..n).filter(|g| c.mine(*g)) {
        let c = c.clone();
        let sem = sem.clone();
        conns.push((
            g,
            tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                visitor_connect(&c, None, None).await
            }),
        ));
    }
    let mut visitors = Vec::new();
    for (g, t) in conns {
        match t.await {
            Ok(Ok(v)) => visitors.push((g, v)),
            Ok(Err(e)) => count(report, &format!("visitor_{}", e.key())),
            Err(_) => count(report, "task_panicked"),
        }
    }
    visitors
}

/// Makes `visitors` visitors that each have `messages` stored messages, `concurrency` at
/// a time, and returns their tokens (a failed one is counted and left out). Sends are
/// pipelined on one connection; stay within the server's per-connection rate limit.
pub async fn seed_visitors(
    c: &Common,
    visitors: usize,
    messages: usize,
    concurrency: usize,
    report: &Shared,
) -> Vec<String> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..visitors {
        let c = c.clone();
        let sem = sem.clone();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            match seed_one(&c, None, i, 0, messages).await {
                Ok(token) => Some(token),
                Err(e) => {
                    count(&report, &format!("seed_{}", e.key()));
                    None
                }
            }
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        if let Ok(Some(token)) = t.await {
            tokens.push(token);
        }
    }
    tokens
}

/// Sends messages `first..first+n` as visitor `token` (a new visitor when None) on one
/// connection and waits for every ack. Returns the visitor's token.
pub async fn seed_one(
    c: &Common,
    token: Option<String>,
    who: usize,
    first: usize,
    n: usize,
) -> Result<String, LgError> {
    let mut v = visitor_connect(c, token, None).await?;
    for k in first..first + n {
        let send = VisitorClient::Send {
            client_msg_id: format!("seed-{}-{who}-{k}", c.nonce),
            text: format!("seed message {k} of visitor {who}"),
            attachments: Vec::new(),
        };
        feed_frame(&mut v.ws, &send).await?;
    }
    flush(&mut v.ws).await?;
    let mut acked = 0;
    let fut = async {
        while acked < n {
            match next_visitor(&mut v.ws).await? {
                VisitorServer::Ack { .. } => acked += 1,
                VisitorServer::Error(e) => {
                    return Err(LgError::Protocol(format!("seed send: {}", e.code.as_str())))
                }
                _ => {}
            }
        }
        Ok(())
    };
    timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or(Err(LgError::Timeout("seed acks")))?;
    let _ = v.ws.close(None).await;
    Ok(v.token)
}
