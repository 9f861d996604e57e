//! Counters and histograms, rendered in the Prometheus text format at `/metrics`.
//!
//! Owns the numbers only; it must never hold message text, emails or tokens. Everything
//! is a relaxed atomic so the hot path pays a few nanoseconds and never a lock.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use widget_protocol::ErrorCode;

/// A fixed-bucket histogram of non-negative values.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in millionths, so it can be an integer atomic.
    sum_micro: AtomicU64,
}

const LATENCY_SECONDS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];
/// A log sync is a few hundred microseconds on a good disk: finer at the low end.
const SYNC_SECONDS: &[f64] = &[
    0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.01, 0.025, 0.1, 1.0,
];
const BATCH_SIZES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micro: AtomicU64::new(0),
        }
    }

    pub fn latency() -> Self {
        Self::new(LATENCY_SECONDS)
    }

    /// Durations of the write-ahead log's syncs.
    pub fn sync() -> Self {
        Self::new(SYNC_SECONDS)
    }

    /// Sizes of the writer's groups.
    pub fn batch_sizes() -> Self {
        Self::new(BATCH_SIZES)
    }

    pub fn observe(&self, v: f64) {
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            if v <= *b {
                n.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micro
            .fetch_add((v.max(0.0) * 1_000_000.0) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (b, n) in self.bounds.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micro.load(Ordering::Relaxed) as f64 / 1_000_000.0;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Which kind of connection a number is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnKind {
    Visitor,
    Agent,
}

#[derive(Debug)]
pub struct Metrics {
    pub visitor_connections: AtomicU64,
    pub agent_connections: AtomicU64,
    pub frames_in: AtomicU64,
    pub frames_out: AtomicU64,
    pub errors: Vec<AtomicU64>,
    pub ack_latency: Histogram,
    pub prompts_sent: AtomicU64,
    pub contacts_created: AtomicU64,
    pub follow_ups_sent: AtomicU64,
    pub slow_consumers_dropped: AtomicU64,
    pub connections_refused: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            visitor_connections: AtomicU64::new(0),
            agent_connections: AtomicU64::new(0),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            errors: ErrorCode::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            ack_latency: Histogram::latency(),
            prompts_sent: AtomicU64::new(0),
            contacts_created: AtomicU64::new(0),
            follow_ups_sent: AtomicU64::new(0),
            slow_consumers_dropped: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }
}

fn inc(a: &AtomicU64) {
    a.fetch_add(1, Ordering::Relaxed);
}

impl Metrics {
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            inc(&self.errors[i]);
        }
    }

    pub fn connection_opened(&self, kind: ConnKind) {
        inc(self.gauge(kind));
    }

    pub fn connection_closed(&self, kind: ConnKind) {
        self.gauge(kind).fetch_sub(1, Ordering::Relaxed);
    }

    fn gauge(&self, kind: ConnKind) -> &AtomicU64 {
        match kind {
            ConnKind::Visitor => &self.visitor_connections,
            ConnKind::Agent => &self.agent_connections,
        }
    }

    pub fn inc(a: &AtomicU64) {
        inc(a)
    }

    /// The Prometheus text exposition.
    pub fn render(&self, writer: &crate::store::WriterStats) -> String {
        let mut o = String::with_capacity(4096);
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let _ = writeln!(o, "# HELP frontdesk_connections Open WebSocket connections by kind.\n# TYPE frontdesk_connections gauge");
        let _ = writeln!(
            o,
            "frontdesk_connections{{kind=\"visitor\"}} {}",
            g(&self.visitor_connections)
        );
        let _ = writeln!(
            o,
            "frontdesk_connections{{kind=\"agent\"}} {}",
            g(&self.agent_connections)
        );
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let _ = writeln!(o, "# HELP frontdesk_tasks Live tokio tasks (about one per connection).\n# TYPE frontdesk_tasks gauge\nfrontdesk_tasks {}", rt.metrics().num_alive_tasks());
        }
        for (name, help, v) in [
            (
                "frontdesk_frames_in_total",
                "Frames received from clients.",
                g(&self.frames_in),
            ),
            (
                "frontdesk_frames_out_total",
                "Frames sent to clients.",
                g(&self.frames_out),
            ),
            (
                "frontdesk_prompts_sent_total",
                "Email-capture prompts pushed.",
                g(&self.prompts_sent),
            ),
            (
                "frontdesk_contacts_created_total",
                "Contacts created.",
                g(&self.contacts_created),
            ),
            (
                "frontdesk_follow_ups_sent_total",
                "Follow-up emails delivered.",
                g(&self.follow_ups_sent),
            ),
            (
                "frontdesk_slow_consumers_dropped_total",
                "Connections closed because they did not read.",
                g(&self.slow_consumers_dropped),
            ),
            (
                "frontdesk_connections_refused_total",
                "Handshakes refused by a connection cap.",
                g(&self.connections_refused),
            ),
            (
                "frontdesk_store_flushes_total",
                "Group commits: write-ahead log syncs.",
                g(&writer.flushes),
            ),
            (
                "frontdesk_store_checkpoints_total",
                "Engine flushes that let old write-ahead log segments go.",
                g(&writer.checkpoints),
            ),
            (
                "frontdesk_store_writes_total",
                "Writes committed by the store.",
                g(&writer.writes),
            ),
        ] {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(o, "# HELP frontdesk_errors_total Error frames sent, by code.\n# TYPE frontdesk_errors_total counter");
        for (code, n) in ErrorCode::ALL.iter().zip(&self.errors) {
            let _ = writeln!(
                o,
                "frontdesk_errors_total{{code=\"{}\"}} {}",
                code.as_str(),
                g(n)
            );
        }
        self.ack_latency.render(
            &mut o,
            "frontdesk_ack_latency_seconds",
            "From a send or reply frame received to its ack queued.",
        );
        writer.batch_sizes.render(
            &mut o,
            "frontdesk_flush_batch_size",
            "Writes flushed together by one group commit.",
        );
        writer.sync_seconds.render(
            &mut o,
            "frontdesk_store_sync_seconds",
            "One group commit's write-ahead log write and fdatasync.",
        );
        o
    }
}
