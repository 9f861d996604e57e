//! probe, for the cold-start measurement: `--seed N` makes a visitor with N messages and
//! reports its `token`; `--token T` retries hello until the visitor's history is served
//! (the server may still be starting) and reports when (`served_unix_ms`).

use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;

use crate::args::ProbeArgs;
use crate::client::visitor_connect;
use crate::clock::{micros, unix_ms};
use crate::common::Common;
use crate::report::Report;
use crate::seed::seed_one;

pub async fn run(c: &Common, p: &ProbeArgs) -> Result<Report, String> {
    if let Some(n) = p.seed {
        return seed(c, n, p.per_conn_limit.max(1)).await;
    }
    let token = p.token.clone().ok_or("probe needs --seed N or --token T")?;
    served(c, token, p.until).await
}

/// A new visitor with `n` messages, `per` to a connection.
async fn seed(c: &Common, n: usize, per: usize) -> Result<Report, String> {
    let mut r = Report::default();
    let mut token = None;
    let mut from = 0;
    while from < n {
        let k = per.min(n - from);
        let t = seed_one(c, token.clone(), 0, from, k)
            .await
            .map_err(|e| format!("probe: seeding: {e}"))?;
        token = Some(t);
        from += k;
    }
    r.set("token", json!(token));
    r.add("seeded_messages", n as u64);
    Ok(r)
}

/// Retries hello as `token` until the welcome carries history, for at most `until`.
async fn served(c: &Common, token: String, until: Duration) -> Result<Report, String> {
    let mut r = Report::default();
    let began = Instant::now();
    let until = began + until;
    loop {
        r.add("attempts", 1);
        match visitor_connect(c, Some(token.clone()), None).await {
            Ok(v) if !v.welcome_messages.is_empty() => {
                r.set("served_unix_ms", json!(unix_ms()));
                r.set("messages", json!(v.welcome_messages.len()));
                r.record("probe", micros(began.elapsed()));
                let mut ws = v.ws;
                let _ = ws.close(None).await;
                return Ok(r);
            }
            Ok(_) => r.add("served_empty", 1),
            Err(e) => r.add(&e.key(), 1),
        }
        if Instant::now() >= until {
            return Err("probe: the history was not served in time".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
