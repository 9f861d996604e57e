//! The store: everything frontdesk keeps on disk.
//!
//! It owns the key-value abstraction ([`Kv`]), the names of the trees and the layout of
//! every key ([`keys`]), the one engine that implements it ([`sled_engine`], the only
//! file that imports sled), the schema version, the write-ahead log ([`wal`]) that makes
//! writes durable, and the group-commit [`Writer`] through which every write goes. It
//! must not know about sockets, sessions or protocol frames beyond the records it stores.
//!
//! Reads go straight to the engine from any task (sled serves them from its page cache).
//! Writes are closures run one after another on the writer thread, so a read-modify-write
//! inside one closure is never interleaved with another write: that is what makes `seq`
//! assignment, idempotent sends and the unique email index correct under concurrency.
//! A write is durable when its group's log sync returns; the engine itself is flushed
//! only by checkpoints, off the acknowledgement path.

pub mod api;
pub mod keys;
pub mod kv_store;
mod overlay;
pub mod records;
mod sled_engine;
pub mod wal;
mod writer;

use std::path::Path;
use std::sync::Arc;

pub use api::Store;
pub use keys::Tree;
pub use kv_store::KvStore;
pub use writer::{Writer, WriterStats};

/// The schema version written in `meta`; bump it with a numbered migration.
///
/// 1: the first layout. 2: the conversation list's `activity` keys, the search index
/// (`words`, `conv_words`) and `ConversationRecord::visitor_messages`, built for older
/// data by `KvStore::upgrade` (see `kv_store::upgrade`).
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the data directory {0} is in use by another frontdesk process")]
    Locked(String),
    #[error("cannot open the data directory {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("the data directory was written by a newer frontdesk (schema {found}, this build knows {SCHEMA_VERSION})")]
    NewerSchema { found: u32 },
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("write-ahead log {path}: {reason}")]
    Log { path: String, reason: String },
    #[error("corrupt record in {tree:?}: {reason}")]
    Corrupt { tree: Tree, reason: String },
    #[error("the store is shutting down")]
    Closed,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// One write: puts and deletes, made atomic and durable together by the log.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    pub ops: Vec<(Tree, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    pub fn put(&mut self, tree: Tree, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), Some(value.into())));
    }

    pub fn delete(&mut self, tree: Tree, key: impl Into<Vec<u8>>) {
        self.ops.push((tree, key.into(), None));
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// Rows of one tree: `(key, value)` pairs, in the order a [`Scan`] asked for.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Which rows of a tree a read takes: keys from `from` up to `to` (exclusive; `None`:
/// to the tree's end), in key order or newest (highest key) first, at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Scan<'a> {
    pub from: &'a [u8],
    pub to: Option<&'a [u8]>,
    pub newest_first: bool,
    pub limit: usize,
}

/// The first key after every key that starts with `prefix`; `None` when there is none
/// (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// What the rest of the server needs from a key-value engine: ordered trees of byte
/// keys, atomic batches across trees, and a durable flush. An engine implements
/// `get`, `scan`, `apply` and `flush`; the other reads are scans.
pub trait Kv: Send + Sync {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>>;
    /// The rows `scan` selects.
    fn scan(&self, tree: Tree, scan: Scan<'_>) -> Result<Rows>;
    /// Applies the batch's ops in order. Readers may see some before others, and a
    /// crash keeps a prefix of all ops ever applied: the write-ahead log, not the engine,
    /// makes batches atomic and durable (see `wal`).
    fn apply(&self, batch: &Batch) -> Result<()>;
    /// Returns once everything applied so far is on disk.
    fn flush(&self) -> Result<()>;

    /// Entries whose key starts with `prefix`, in key order, at most `limit`.
    fn scan_prefix(&self, tree: Tree, prefix: &[u8], limit: usize) -> Result<Rows> {
        let end = prefix_end(prefix);
        let to = end.as_deref();
        self.scan(
            tree,
            Scan {
                from: prefix,
                to,
                newest_first: false,
                limit,
            },
        )
    }

    /// Entries with `from <= key < to`, newest (highest key) first, at most `limit`.
    fn range_rev(&self, tree: Tree, from: &[u8], to: &[u8], limit: usize) -> Result<Rows> {
        let to = Some(to);
        self.scan(
            tree,
            Scan {
                from,
                to,
                newest_first: true,
                limit,
            },
        )
    }
}

/// Opens the store in `dir` (created if missing), checks the schema version and replays
/// the write-ahead log into the engine. Hand the log to [`Writer::start`].
pub fn open(dir: &Path) -> Result<(Arc<dyn Kv>, wal::Wal)> {
    let kv: Arc<dyn Kv> = Arc::new(sled_engine::SledKv::open(&dir.join("db"))?);
    let applied = match kv.get(Tree::Meta, keys::APPLIED_LSN_KEY)? {
        None => 0,
        Some(v) => keys::read_u64(&v).ok_or_else(|| StoreError::Corrupt {
            tree: Tree::Meta,
            reason: "applied lsn is not 8 bytes".into(),
        })?,
    };
    let (wal, replayed) = wal::Wal::open(&dir.join("wal"), applied, kv.as_ref())?;
    if replayed.records > 0 {
        tracing::info!(records = replayed.records, "replayed the write-ahead log");
    }
    migrate(kv.as_ref())?;
    Ok((kv, wal))
}

/// Seals the store in `dir` after a clean stop, once nothing holds it: the next start
/// then reads no engine log written before it (see [`sled_engine::SledKv::seal`]).
pub fn seal(dir: &Path) {
    let started = std::time::Instant::now();
    match sled_engine::SledKv::seal(&dir.join("db")) {
        Ok(()) => tracing::debug!(ms = started.elapsed().as_millis() as u64, "store sealed"),
        Err(e) => {
            tracing::warn!(error = %e, "could not seal the store; the next start reads its log")
        }
    }
}

/// Stamps a new store with [`SCHEMA_VERSION`] and refuses one from the future. An older
/// store keeps its version until `KvStore::upgrade` has rewritten its data through the
/// writer.
fn migrate(kv: &dyn Kv) -> Result<()> {
    match kv.get(Tree::Meta, keys::SCHEMA_KEY)? {
        None => {
            let mut b = Batch::default();
            b.put(
                Tree::Meta,
                keys::SCHEMA_KEY,
                SCHEMA_VERSION.to_be_bytes().to_vec(),
            );
            kv.apply(&b)?;
            kv.flush()
        }
        Some(v) => {
            let found = keys::read_u32(&v).ok_or_else(|| StoreError::Corrupt {
                tree: Tree::Meta,
                reason: "schema version is not 4 bytes".into(),
            })?;
            if found > SCHEMA_VERSION {
                return Err(StoreError::NewerSchema { found });
            }
            Ok(())
        }
    }
}

/// The schema version the store's data has (a new store's is stamped at open).
pub fn schema_version(kv: &dyn Kv) -> Result<u32> {
    match kv.get(Tree::Meta, keys::SCHEMA_KEY)? {
        None => Ok(SCHEMA_VERSION),
        Some(v) => keys::read_u32(&v).ok_or_else(|| StoreError::Corrupt {
            tree: Tree::Meta,
            reason: "schema version is not 4 bytes".into(),
        }),
    }
}

/// Reads a JSON record.
pub fn get_json<T: serde::de::DeserializeOwned>(
    kv: &dyn Kv,
    tree: Tree,
    key: &[u8],
) -> Result<Option<T>> {
    match kv.get(tree, key)? {
        None => Ok(None),
        Some(bytes) => decode(tree, &bytes).map(Some),
    }
}

pub fn decode<T: serde::de::DeserializeOwned>(tree: Tree, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        tree,
        reason: e.to_string(),
    })
}

/// `bytes` as a string, once checked to be one JSON value (without building it).
pub fn check_json(tree: Tree, bytes: Vec<u8>) -> Result<String> {
    let corrupt = |reason: String| StoreError::Corrupt { tree, reason };
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).map_err(|e| corrupt(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| corrupt(e.to_string()))
}

pub fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Records are plain structs of strings and numbers; serde_json cannot fail on them.
    serde_json::to_vec(value).unwrap_or_default()
}

impl Batch {
    pub fn put_json<T: serde::Serialize>(
        &mut self,
        tree: Tree,
        key: impl Into<Vec<u8>>,
        value: &T,
    ) {
        self.put(tree, key, encode(value));
    }
}
