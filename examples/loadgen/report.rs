//! The report: counters, latency histograms (µs, HDR, three significant digits) and
//! facts. A shard sends its report to the parent in a lossless "wire" form; the parent
//! merges them and prints percentiles. The field names of the final JSON are what
//! benches/run reads: they must not change.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;

#[derive(Default)]
pub struct Report {
    counters: BTreeMap<String, u64>,
    hists: BTreeMap<String, Histogram<u64>>,
    info: Map<String, Value>,
}

/// A report that many tasks of one process add to.
pub type Shared = Arc<Mutex<Report>>;

fn new_hist() -> Histogram<u64> {
    // 1 µs to one hour at three significant digits; bounds are constants that are valid.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl Report {
    pub fn add(&mut self, key: &str, n: u64) {
        *self.counters.entry(key.to_string()).or_insert(0) += n;
    }

    pub fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    pub fn record(&mut self, key: &str, us: u64) {
        self.hists
            .entry(key.to_string())
            .or_insert_with(new_hist)
            .saturating_record(us.max(1));
    }

    pub fn set(&mut self, key: &str, v: Value) {
        self.info.insert(key.to_string(), v);
    }

    /// Adds `other` in: counters and histograms sum; a phase's start fact keeps the
    /// earliest, its end fact the latest; any other fact is replaced.
    pub fn merge(&mut self, other: Report) {
        for (k, v) in other.counters {
            self.add(&k, v);
        }
        for (k, h) in other.hists {
            let mine = self.hists.entry(k).or_insert_with(new_hist);
            for v in h.iter_recorded() {
                mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        for (k, v) in other.info {
            let merged = match (self.info.get(&k), &v) {
                (Some(Value::Number(a)), Value::Number(b)) if k.ends_with("_start_unix_ms") => {
                    json!(a.as_u64().unwrap_or(0).min(b.as_u64().unwrap_or(0)))
                }
                (Some(Value::Number(a)), Value::Number(b)) if k.ends_with("_end_unix_ms") => {
                    json!(a.as_u64().unwrap_or(0).max(b.as_u64().unwrap_or(0)))
                }
                _ => v,
            };
            self.info.insert(k, merged);
        }
    }

    /// The same counters and histograms under `prefix`, without the facts.
    pub fn prefixed(self, prefix: &str) -> Report {
        let mut out = Report::default();
        for (k, v) in self.counters {
            out.add(&format!("{prefix}{k}"), v);
        }
        for (k, h) in self.hists {
            out.hists.insert(format!("{prefix}{k}"), h);
        }
        out
    }

    pub fn to_wire(&self) -> Value {
        let hists: Map<String, Value> = self
            .hists
            .iter()
            .map(|(k, h)| {
                let pairs: Vec<[u64; 2]> = h
                    .iter_recorded()
                    .map(|v| [v.value_iterated_to(), v.count_at_value()])
                    .collect();
                (k.clone(), json!(pairs))
            })
            .collect();
        json!({"counters": self.counters, "hists": hists, "info": self.info})
    }

    pub fn from_wire(v: &Value) -> Result<Report, String> {
        let mut r = Report::default();
        let counters = v["counters"]
            .as_object()
            .ok_or("wire report: no counters")?;
        for (k, n) in counters {
            r.add(k, n.as_u64().unwrap_or(0));
        }
        if let Some(hists) = v["hists"].as_object() {
            for (k, pairs) in hists {
                let h = r.hists.entry(k.clone()).or_insert_with(new_hist);
                for p in pairs.as_array().into_iter().flatten() {
                    let value = p[0].as_u64().unwrap_or(1);
                    let count = p[1].as_u64().unwrap_or(0);
                    h.saturating_record_n(value.max(1), count);
                }
            }
        }
        if let Some(info) = v["info"].as_object() {
            r.info = info.clone();
        }
        Ok(r)
    }

    /// The final report: `mode`, `params` (the options as given), `counters`, `latency`
    /// (percentiles in ms per histogram) and `info`.
    pub fn finish(&self, mode: &str, params: Value) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let latency: Map<String, Value> = self
            .hists
            .iter()
            .map(|(k, h)| {
                (
                    k.clone(),
                    json!({
                        "count": h.len(),
                        "min_ms": ms(h.min()),
                        "p50_ms": ms(h.value_at_quantile(0.5)),
                        "p90_ms": ms(h.value_at_quantile(0.9)),
                        "p99_ms": ms(h.value_at_quantile(0.99)),
                        "p999_ms": ms(h.value_at_quantile(0.999)),
                        "max_ms": ms(h.max()),
                        "mean_ms": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
                    }),
                )
            })
            .collect();
        json!({
            "mode": mode,
            "params": params,
            "counters": self.counters,
            "latency": latency,
            "info": self.info,
        })
    }
}

pub fn shared() -> Shared {
    Arc::new(Mutex::new(Report::default()))
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn count(r: &Shared, key: &str) {
    lock(r).add(key, 1);
}

/// The report once every task that added to it is done.
pub fn take(r: Shared) -> Report {
    match Arc::try_unwrap(r) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(arc) => std::mem::take(&mut *lock(&arc)),
    }
}

/// Waits for every task; one that panicked is counted as `task_panicked`.
pub async fn join_all<T>(tasks: Vec<JoinHandle<T>>, report: &Shared) -> Vec<T> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        match t.await {
            Ok(v) => out.push(v),
            Err(_) => count(report, "task_panicked"),
        }
    }
    out
}
