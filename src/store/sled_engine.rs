//! The sled adapter: the only file that imports sled. Swapping engines means writing
//! another file like this one.
//!
//! Every logical tree lives in sled's default tree under a one-byte prefix (the tree's
//! tag). Batches are applied as plain inserts and removes in order: sled 0.34's atomic
//! `apply_batch` and transactions seal and write its I/O buffer on every call (a
//! thread-pool hand-off each), and atomicity and durability come from the write-ahead
//! log anyway. A data directory from before that layout (one sled tree per logical tree)
//! is copied over on open.

use std::path::Path;

use super::{Batch, Kv, Result, Rows, Scan, StoreError, Tree};

pub struct SledKv {
    db: sled::Db,
}

fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
            StoreError::Locked(path.display().to_string())
        }
        sled::Error::Io(io) => StoreError::Open {
            path: path.display().to_string(),
            reason: io.to_string(),
        },
        other => StoreError::Open {
            path: path.display().to_string(),
            reason: other.to_string(),
        },
    }
}

fn prefixed(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tree.tag());
    k.extend_from_slice(key);
    k
}

impl SledKv {
    pub fn open(path: &Path) -> Result<Self> {
        let db = Self::config(path).open().map_err(|e| open_error(path, e))?;
        let kv = SledKv { db };
        kv.adopt_named_trees()?;
        Ok(kv)
    }

    /// Opens and closes the engine at `path` once, after a clean stop. sled 0.34 writes
    /// its snapshot only when it opens (and nothing else makes it), so without this the
    /// next start would read every log segment this run wrote; with it, the next start
    /// reads the snapshot and nothing after it. Costs the stop what it saves the start.
    pub fn seal(path: &Path) -> Result<()> {
        Self::config(path)
            .open()
            .map(drop)
            .map_err(|e| open_error(path, e))
    }

    fn config(path: &Path) -> sled::Config {
        sled::Config::new()
            .path(path)
            // Durability comes from the write-ahead log; sled is flushed by checkpoints.
            .flush_every_ms(None)
            .cache_capacity(64 * 1024 * 1024)
    }

    /// Copies the one-sled-tree-per-logical-tree layout into the prefixed one and drops
    /// the old trees. Safe to interrupt: a tree is dropped only after its copy is flushed,
    /// and copying again writes the same keys.
    fn adopt_named_trees(&self) -> Result<()> {
        for tree in Tree::ALL {
            let name = tree.name().as_bytes();
            if !self.db.tree_names().iter().any(|n| n.as_ref() == name) {
                continue;
            }
            let old = self.db.open_tree(name).map_err(engine)?;
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for entry in old.iter() {
                let (k, v) = entry.map_err(engine)?;
                batch.insert(prefixed(tree, &k), v);
                in_batch += 1;
                if in_batch == 10_000 {
                    self.db
                        .apply_batch(std::mem::take(&mut batch))
                        .map_err(engine)?;
                    in_batch = 0;
                }
            }
            self.db.apply_batch(batch).map_err(engine)?;
            self.db.flush().map_err(engine)?;
            self.db.drop_tree(name).map_err(engine)?;
            tracing::info!(tree = tree.name(), "moved into the prefixed layout");
        }
        Ok(())
    }
}

fn collect(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    limit: usize,
) -> Result<Rows> {
    iter.take(limit)
        .map(|r| {
            r.map(|(k, v)| (k.get(1..).unwrap_or_default().to_vec(), v.to_vec()))
                .map_err(engine)
        })
        .collect()
}

impl Kv for SledKv {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .db
            .get(prefixed(tree, key))
            .map_err(engine)?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, tree: Tree, scan: Scan<'_>) -> Result<Rows> {
        let lo = prefixed(tree, scan.from);
        let hi = match scan.to {
            Some(to) => prefixed(tree, to),
            None => vec![tree.tag() + 1],
        };
        if lo >= hi {
            return Ok(Rows::new());
        }
        let rows = self.db.range(lo..hi);
        if scan.newest_first {
            collect(rows.rev(), scan.limit)
        } else {
            collect(rows, scan.limit)
        }
    }

    fn apply(&self, batch: &Batch) -> Result<()> {
        for (tree, k, v) in &batch.ops {
            match v {
                Some(v) => self.db.insert(prefixed(*tree, k), v.as_slice()),
                None => self.db.remove(prefixed(*tree, k)),
            }
            .map_err(engine)?;
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(engine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_with_one_sled_tree_per_logical_tree_is_adopted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db");
        {
            let db = sled::open(&path).expect("old layout");
            let messages = db.open_tree("messages").expect("tree");
            for i in 0u32..25_000 {
                messages.insert(i.to_be_bytes(), &b"m"[..]).expect("insert");
            }
            db.open_tree("meta")
                .and_then(|t| t.insert("schema", &1u32.to_be_bytes()[..]))
                .expect("meta");
            db.flush().expect("flush");
        }
        let kv = SledKv::open(&path).expect("open adopts");
        assert_eq!(
            kv.get(Tree::Meta, b"schema").expect("get"),
            Some(1u32.to_be_bytes().to_vec())
        );
        let all = kv
            .scan_prefix(Tree::Messages, b"", usize::MAX)
            .expect("scan");
        assert_eq!(all.len(), 25_000);
        assert_eq!(all[7].0, 7u32.to_be_bytes().to_vec());
        assert!(kv
            .scan_prefix(Tree::Contacts, b"", 10)
            .expect("scan")
            .is_empty());
        let names = kv.db.tree_names();
        assert!(
            !names.iter().any(|n| n.as_ref() == b"messages"),
            "old tree dropped"
        );
    }

    /// The log sequence number of the newest sled snapshot in `path`, if any.
    fn newest_snapshot(path: &Path) -> Option<u64> {
        std::fs::read_dir(path)
            .expect("db dir")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter_map(|name| u64::from_str_radix(name.strip_prefix("snap.")?, 16).ok())
            .max()
    }

    #[test]
    fn sealing_a_closed_store_snapshots_what_it_wrote() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db");
        {
            let kv = SledKv::open(&path).expect("open");
            let mut batch = Batch::default();
            for i in 0u32..20_000 {
                batch.put(Tree::Messages, i.to_be_bytes(), &b"a message"[..]);
            }
            kv.apply(&batch).expect("apply");
            kv.flush().expect("flush");
        }
        let before = newest_snapshot(&path).unwrap_or(0);
        SledKv::seal(&path).expect("seal");
        let after = newest_snapshot(&path).expect("a snapshot after sealing");
        assert!(
            after > before,
            "snapshot {after:x} covers the writes after {before:x}"
        );
        let kv = SledKv::open(&path).expect("reopen");
        let all = kv
            .scan_prefix(Tree::Messages, b"", usize::MAX)
            .expect("scan");
        assert_eq!(all.len(), 20_000);
    }
}
