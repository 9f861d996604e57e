//! churn: `--visitors` visitors with a little history connect over `--ramp-secs` and
//! hold; then all drop at once (no close handshake: a network blip, a server-side
//! deploy) and reconnect with their tokens on a uniform schedule over `--window-secs`.
//! `connect` and `reconnect` are intended connect → welcome.

use futures::StreamExt;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout, Instant};

use crate::args::ChurnArgs;
use crate::client::{visitor_connect, Ws};
use crate::clock::{micros, unix_ms, unix_ms_of};
use crate::common::Common;
use crate::report::{count, join_all, lock, shared, take, Report, Shared};
use crate::seed::seed_visitors;

pub async fn run(c: &Common, p: &ChurnArgs) -> Result<Report, String> {
    let report = shared();
    // Visitors with a little history, so each welcome carries messages.
    let mine: Vec<usize> = (0..p.visitors).filter(|i| c.mine(*i)).collect();
    let tokens = seed_visitors(c, mine.len(), p.messages, 64, &report).await;
    lock(&report).add("seeded_visitors", tokens.len() as u64);
    let phases = Phases {
        c,
        tokens: &tokens,
        mine: &mine,
        visitors: p.visitors.max(1) as f64,
        report: &report,
    };
    let start = c.start("connect").await?;
    let held = connected(phases.connect(start, p.ramp, "connect"), &report).await;
    let held = hold(held, Instant::now() + p.hold, &report).await;
    // Everyone drops at once.
    let dropped = held.len();
    drop(held);
    lock(&report).add("dropped", dropped as u64);
    let start = c.start("reconnect").await?;
    lock(&report).set("reconnect_start_unix_ms", json!(unix_ms_of(start)));
    let back = connected(phases.connect(start, p.window, "reconnect"), &report).await;
    lock(&report).set("reconnect_end_unix_ms", json!(unix_ms()));
    for mut ws in back {
        let _ = ws.close(None).await;
    }
    Ok(take(report))
}

/// What both connect phases share: this shard's visitors, their tokens and global
/// indices, and the report.
struct Phases<'a> {
    c: &'a Common,
    tokens: &'a [String],
    mine: &'a [usize],
    visitors: f64,
    report: &'a Shared,
}

impl Phases<'_> {
    /// Connects every visitor with its token, visitor g at `start + span·g/N`; the
    /// latency and outcomes are counted under `phase`.
    fn connect(
        &self,
        start: Instant,
        span: std::time::Duration,
        phase: &'static str,
    ) -> Vec<JoinHandle<Option<Ws>>> {
        let mut tasks = Vec::new();
        for (local, token) in self.tokens.iter().enumerate() {
            let g = self.mine.get(local).copied().unwrap_or(local);
            let due = start + span.mul_f64(g as f64 / self.visitors);
            let c = self.c.clone();
            let token = token.clone();
            let report = self.report.clone();
            tasks.push(tokio::spawn(async move {
                sleep_until(due).await;
                match visitor_connect(&c, Some(token.clone()), None).await {
                    Ok(v) => {
                        let mut r = lock(&report);
                        r.record(phase, micros(due.elapsed()));
                        r.add(&format!("{phase}_ok"), 1);
                        if v.token != token {
                            r.add(&format!("{phase}_new_identity"), 1);
                        }
                        if v.welcome_messages.is_empty() {
                            r.add(&format!("{phase}_no_history"), 1);
                        }
                        Some(v.ws)
                    }
                    Err(e) => {
                        count(&report, &format!("{phase}_{}", e.key()));
                        None
                    }
                }
            }));
        }
        tasks
    }
}

/// The connections a phase opened.
async fn connected(tasks: Vec<JoinHandle<Option<Ws>>>, report: &Shared) -> Vec<Ws> {
    join_all(tasks, report)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Holds the connections until `end`, reading so heartbeats are answered.
async fn hold(held: Vec<Ws>, end: Instant, report: &Shared) -> Vec<Ws> {
    let readers: Vec<_> = held
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                while let Ok(Some(_)) =
                    timeout(end.saturating_duration_since(Instant::now()), ws.next()).await
                {
                }
                ws
            })
        })
        .collect();
    join_all(readers, report).await
}
