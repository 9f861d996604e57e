//! What every mode shares: where the server is, which shard of the connections this
//! process holds, the run's nonce, and when a schedule phase starts.

use std::time::Duration;

use tokio::time::Instant;

use crate::args::CommonArgs;
use crate::clock::unix_nanos;
use crate::shard;

#[derive(Clone)]
pub struct Common {
    pub addr: String,
    pub inbox: String,
    pub shard: usize,
    pub shards: usize,
    /// Unique per run; message texts carry it so agents ignore other runs' traffic.
    pub nonce: String,
    /// How many loopback source addresses connections are spread over.
    pub source_ips: usize,
}

impl Common {
    pub fn new(a: &CommonArgs) -> Result<Common, String> {
        let shard = a.shard.unwrap_or(0);
        if a.shards == 0 || shard >= a.shards {
            return Err("--shard must be below --shards".into());
        }
        Ok(Common {
            addr: a.addr.clone(),
            inbox: a.inbox.clone(),
            shard,
            shards: a.shards,
            nonce: a.nonce.clone().unwrap_or_else(new_nonce),
            source_ips: a.source_ips.into(),
        })
    }

    /// Whether global index `i` (a visitor, an agent, a reload) belongs to this shard.
    pub fn mine(&self, i: usize) -> bool {
        i % self.shards == self.shard
    }

    /// Waits until every shard is ready for phase `what` and returns the schedule's
    /// start. A lone process starts shortly after it is ready; a shard agrees the start
    /// with its parent.
    pub async fn start(&self, what: &str) -> Result<Instant, String> {
        if self.shards == 1 {
            return Ok(Instant::now() + Duration::from_millis(100));
        }
        shard::agreed_start(what).await
    }

    pub fn visitor_path(&self) -> String {
        format!("/ws/visitor?inbox={}", self.inbox)
    }
}

/// A fresh run nonce.
pub fn new_nonce() -> String {
    format!("{:x}", unix_nanos() % 0xffff_ffff)
}
