//! Group commit: one writer thread applies every write and flushes once per group.
//!
//! Callers hand the writer a closure that reads what it needs and returns a [`Batch`]
//! plus a result. The thread takes everything queued, runs the closures in arrival
//! order (each one sees the batches applied before it), flushes once, and only then
//! answers every waiter. So an answer means "on disk", many concurrent senders share
//! one fsync, and no tokio worker ever blocks on disk I/O.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::oneshot;

use super::{Batch, Kv, Result, StoreError};

type Job = Box<dyn FnOnce(&dyn Kv) -> Box<dyn FnOnce(Result<()>) + Send> + Send>;

/// Counters the metrics endpoint reads.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub flushes: AtomicU64,
    pub writes: AtomicU64,
    /// Sizes of the groups flushed together, for the batch histogram.
    pub batch_sizes: crate::metrics::Histogram,
}

#[derive(Clone)]
pub struct Writer {
    tx: std::sync::mpsc::Sender<Job>,
    stats: Arc<WriterStats>,
}

/// The most jobs one group takes before it flushes; bounds the latency of the first.
const MAX_GROUP: usize = 4096;

impl Writer {
    /// Starts the writer thread. It ends when every `Writer` handle is dropped, after
    /// flushing what it was given.
    pub fn start(kv: Arc<dyn Kv>) -> (Writer, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("frontdesk-writer".into())
            .spawn(move || run(kv, rx, thread_stats))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (Writer { tx, stats }, handle)
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `f` on the writer thread, applies the batch it returns, and resolves once
    /// that batch is flushed. `f` runs after every write submitted before it.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Kv) -> Result<(Batch, T)> + Send + 'static,
    {
        let (done, wait) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |kv: &dyn Kv| {
            let outcome = f(kv).and_then(|(batch, value)| kv.apply(&batch).map(|()| value));
            Box::new(move |flushed: Result<()>| {
                let answer = match (outcome, flushed) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(e),
                };
                let _ = done.send(answer);
            })
        });
        self.tx.send(job).map_err(|_| StoreError::Closed)?;
        wait.await.map_err(|_| StoreError::Closed)?
    }
}

fn run(kv: Arc<dyn Kv>, rx: std::sync::mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    let mut answers: Vec<Box<dyn FnOnce(Result<()>) + Send>> = Vec::new();
    while let Ok(first) = rx.recv() {
        run_job(first, kv.as_ref(), &mut answers);
        while answers.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => run_job(job, kv.as_ref(), &mut answers),
                Err(_) => break,
            }
        }
        let flushed = kv.flush();
        if let Err(e) = &flushed {
            tracing::error!(error = %e, "flush failed; answering the group with an error");
        }
        stats.flushes.fetch_add(1, Ordering::Relaxed);
        stats
            .writes
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
        stats.batch_sizes.observe(answers.len() as f64);
        for answer in answers.drain(..) {
            let shared = match &flushed {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Engine(e.to_string())),
            };
            answer(shared);
        }
    }
    let _ = kv.flush();
}

/// A job that panics loses only itself: its waiter sees `Closed`, the thread goes on.
fn run_job(job: Job, kv: &dyn Kv, answers: &mut Vec<Box<dyn FnOnce(Result<()>) + Send>>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(kv))) {
        Ok(answer) => answers.push(answer),
        Err(_) => tracing::error!("a write job panicked; it was dropped"),
    }
}
