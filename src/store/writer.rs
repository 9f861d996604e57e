//! Group commit: one writer thread applies every write and makes each group durable
//! with one write-ahead log sync.
//!
//! Callers hand the writer a closure that reads what it needs and returns a [`Batch`]
//! plus a result. The thread takes everything queued, runs the closures in arrival
//! order (each one sees the batches before it, through an [`Overlay`]), appends their
//! batches to the log, syncs it once, applies them to the engine, and only then answers
//! every waiter. So an answer means "on disk", many concurrent senders share one
//! `fdatasync`, the engine never holds a write the log could still lose, and no tokio
//! worker ever blocks on disk I/O. Every [`wal::CHECKPOINT_BYTES`] or
//! [`wal::CHECKPOINT_EVERY`] it starts a new log segment and asks the checkpoint thread
//! to flush the engine and delete the segments that flush covers.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::overlay::Overlay;
use super::wal::{self, Wal};
use super::{Batch, Kv, Result, StoreError};

type Answer = Box<dyn FnOnce(Result<()>) + Send>;
type Job = Box<dyn FnOnce(&mut Group<'_>) -> Answer + Send>;

/// Counters the metrics endpoint reads.
#[derive(Debug)]
pub struct WriterStats {
    /// Log syncs (one per group that wrote anything).
    pub flushes: AtomicU64,
    pub writes: AtomicU64,
    /// Engine flushes that let old log segments go.
    pub checkpoints: AtomicU64,
    /// Sizes of the groups flushed together, for the batch histogram.
    pub batch_sizes: crate::metrics::Histogram,
    /// Seconds each group's log write and sync took: the disk's share of an ack.
    pub sync_seconds: crate::metrics::Histogram,
}

impl Default for WriterStats {
    fn default() -> Self {
        WriterStats {
            flushes: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            batch_sizes: crate::metrics::Histogram::batch_sizes(),
            sync_seconds: crate::metrics::Histogram::sync(),
        }
    }
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
    /// flushing what it was given and closing the store; then it calls `closed`, with
    /// `true` when the store was closed cleanly and the writer held the engine's last
    /// handle (so the engine may be reopened, e.g. to seal it). `closed` runs last and
    /// owns the data directory's lock, so the directory is free only once it is done.
    pub fn start(
        kv: Arc<dyn Kv>,
        wal: Wal,
        closed: Box<dyn FnOnce(bool) + Send>,
    ) -> (Writer, std::thread::JoinHandle<()>) {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let stats = Arc::new(WriterStats::default());
        let thread_stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("frontdesk-writer".into())
            .spawn(move || closed(run(kv, wal, rx, thread_stats)))
            .unwrap_or_else(|e| panic!("cannot start the writer thread: {e}"));
        (Writer { tx, stats }, handle)
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Runs `f` on the writer thread, applies the batch it returns, and resolves once
    /// that batch is durable. `f` runs after every write submitted before it. When `f`
    /// returns an error (a store error, or the domain refusing the write), nothing of
    /// what it planned is written and the caller gets that error.
    pub async fn transact<T, E, F>(&self, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&dyn Kv) -> Result<(Batch, T), E> + Send + 'static,
    {
        let (done, wait) = oneshot::channel::<Result<T, E>>();
        let job: Job = Box::new(move |group: &mut Group<'_>| {
            let outcome = f(&group.overlay)
                .and_then(|(batch, value)| group.commit(batch).map(|()| value).map_err(E::from));
            Box::new(move |flushed: Result<()>| {
                let answer = match (outcome, flushed) {
                    (Ok(v), Ok(())) => Ok(v),
                    (Err(e), _) => Err(e),
                    (Ok(_), Err(e)) => Err(E::from(e)),
                };
                let _ = done.send(answer);
            })
        });
        self.tx.send(job).map_err(|_| E::from(StoreError::Closed))?;
        wait.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// [`Writer::transact`] for a write that can fail only in the store.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Kv) -> Result<(Batch, T)> + Send + 'static,
    {
        self.transact(f).await
    }
}

/// What a job sees on the writer thread.
struct Group<'a> {
    overlay: Overlay<'a>,
    wal: &'a mut Wal,
    /// The group's batches, in order: applied to the engine after the sync.
    batches: Vec<Batch>,
}

impl Group<'_> {
    /// Appends the batch to the log; it becomes durable with the group's sync.
    fn commit(&mut self, batch: Batch) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.wal.append(&batch);
        self.overlay.record(&batch);
        self.batches.push(batch);
        Ok(())
    }
}

/// How long a clean stop waits for the engine's other handles (readers finishing) to go.
const RELEASE_WAIT: Duration = Duration::from_secs(5);

/// Runs the writer until its senders are gone; true if the store was closed cleanly and
/// this thread dropped the engine's last handle.
fn run(
    kv: Arc<dyn Kv>,
    mut wal: Wal,
    rx: std::sync::mpsc::Receiver<Job>,
    stats: Arc<WriterStats>,
) -> bool {
    let (checkpoint, checkpoints) = std::sync::mpsc::channel::<(u64, u64)>();
    let checkpointer = {
        let (kv, dir, stats) = (kv.clone(), wal.dir().to_path_buf(), stats.clone());
        std::thread::Builder::new()
            .name("frontdesk-checkpoint".into())
            .spawn(move || run_checkpoints(kv.as_ref(), &dir, checkpoints, &stats))
    };
    let mut last_checkpoint = Instant::now();
    let mut answers: Vec<Answer> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut group = Group {
            overlay: Overlay::new(kv.as_ref()),
            wal: &mut wal,
            batches: Vec::new(),
        };
        run_job(first, &mut group, &mut answers);
        while answers.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => run_job(job, &mut group, &mut answers),
                Err(_) => break,
            }
        }
        let batches = std::mem::take(&mut group.batches);
        drop(group);
        let done = if batches.is_empty() {
            Ok(())
        } else {
            stats.flushes.fetch_add(1, Ordering::Relaxed);
            // Durable first, then visible: the engine may write its pages at any time,
            // and must never hold what the log could still lose.
            let applied = wal::applied_marker(wal.last_lsn());
            let started = Instant::now();
            let synced = wal.sync();
            stats.sync_seconds.observe(started.elapsed().as_secs_f64());
            synced.and_then(|()| {
                batches
                    .iter()
                    .chain([&applied])
                    .try_for_each(|b| kv.apply(b))
            })
        };
        if let Err(e) = &done {
            tracing::error!(error = %e, "group commit failed; answering the group with an error");
        }
        stats
            .writes
            .fetch_add(answers.len() as u64, Ordering::Relaxed);
        stats.batch_sizes.observe(answers.len() as f64);
        for answer in answers.drain(..) {
            let shared = match &done {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Engine(e.to_string())),
            };
            answer(shared);
        }
        let due = wal.segment_bytes() >= wal::CHECKPOINT_BYTES
            || (wal.segment_bytes() > 0 && last_checkpoint.elapsed() >= wal::CHECKPOINT_EVERY);
        if due {
            let used = wal.segment_bytes();
            match wal.rotate() {
                Ok(first_kept) => {
                    let _ = checkpoint.send((first_kept, used));
                }
                Err(e) => tracing::error!(error = %e, "cannot start a new log segment"),
            }
            last_checkpoint = Instant::now();
        }
    }
    drop(checkpoint);
    if let Ok(handle) = checkpointer {
        let _ = handle.join();
    }
    // A clean stop leaves everything in the engine and an empty log.
    let closed = kv
        .flush()
        .and_then(|()| wal.rotate())
        .and_then(|first_kept| wal::remove_before(wal.dir(), first_kept));
    if let Err(e) = &closed {
        tracing::error!(error = %e, "closing the store; the log will be replayed at the next start");
    }
    closed.is_ok() && release(kv)
}

/// Drops `kv` once it is the last handle; false if others still hold it after
/// [`RELEASE_WAIT`].
fn release(kv: Arc<dyn Kv>) -> bool {
    let deadline = Instant::now() + RELEASE_WAIT;
    while Arc::strong_count(&kv) > 1 {
        if Instant::now() >= deadline {
            tracing::warn!("the store is still in use after it was closed; not sealing it");
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(kv);
    true
}

/// The checkpoint thread: flushes the engine, then deletes the log segments before the
/// newest lsn it was handed (all applied before the flush began), and keeps a spare
/// segment ready, sized by what the last one took.
fn run_checkpoints(
    kv: &dyn Kv,
    dir: &std::path::Path,
    requests: std::sync::mpsc::Receiver<(u64, u64)>,
    stats: &WriterStats,
) {
    let spare = |used: u64| {
        if let Err(e) = wal::prepare_spare(dir, used) {
            tracing::warn!(error = %e, "cannot prepare the next log segment; it will be appended to");
        }
    };
    spare(0);
    while let Ok((mut first_kept, mut used)) = requests.recv() {
        while let Ok((later, later_used)) = requests.try_recv() {
            (first_kept, used) = (later, used.max(later_used));
        }
        match kv
            .flush()
            .and_then(|()| wal::remove_before(dir, first_kept))
        {
            Ok(()) => {
                stats.checkpoints.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "checkpoint failed; the log keeps its segments"),
        }
        spare(used);
    }
}

/// A job that panics loses only itself: its waiter sees `Closed`, the thread goes on.
fn run_job(job: Job, group: &mut Group<'_>, answers: &mut Vec<Answer>) {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(group))) {
        Ok(answer) => answers.push(answer),
        Err(_) => tracing::error!("a write job panicked; it was dropped"),
    }
}
