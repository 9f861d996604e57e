//! The sled adapter: the only file that imports sled. Swapping engines means writing
//! another file like this one.

use std::path::Path;

use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};

use super::{Batch, Kv, Result, StoreError, Tree};

pub struct SledKv {
    db: sled::Db,
    trees: Vec<sled::Tree>,
}

fn engine(e: sled::Error) -> StoreError {
    StoreError::Engine(e.to_string())
}

impl SledKv {
    pub fn open(path: &Path) -> Result<Self> {
        let db = sled::Config::new()
            .path(path)
            // Durability comes from our explicit group flush, not a background timer.
            .flush_every_ms(None)
            .cache_capacity(64 * 1024 * 1024)
            .open()
            .map_err(|e| match e {
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
            })?;
        let trees = Tree::ALL
            .iter()
            .map(|t| db.open_tree(t.name()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(engine)?;
        Ok(SledKv { db, trees })
    }

    fn tree(&self, t: Tree) -> &sled::Tree {
        &self.trees[t.index()]
    }
}

fn collect(
    iter: impl Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>,
    limit: usize,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    iter.take(limit)
        .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(engine))
        .collect()
}

impl Kv for SledKv {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(tree)
            .get(key)
            .map_err(engine)?
            .map(|v| v.to_vec()))
    }

    fn scan_prefix(
        &self,
        tree: Tree,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        collect(self.tree(tree).scan_prefix(prefix), limit)
    }

    fn range_rev(
        &self,
        tree: Tree,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        collect(self.tree(tree).range(from..to).rev(), limit)
    }

    fn range(
        &self,
        tree: Tree,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        collect(self.tree(tree).range(from..to), limit)
    }

    fn apply(&self, batch: &Batch) -> Result<()> {
        let mut touched: Vec<Tree> = Vec::new();
        for (t, _, _) in &batch.ops {
            if !touched.contains(t) {
                touched.push(*t);
            }
        }
        match touched.as_slice() {
            [] => Ok(()),
            [only] => {
                let mut b = sled::Batch::default();
                for (_, k, v) in &batch.ops {
                    match v {
                        Some(v) => b.insert(k.as_slice(), v.as_slice()),
                        None => b.remove(k.as_slice()),
                    }
                }
                self.tree(*only).apply_batch(b).map_err(engine)
            }
            many => {
                let trees: Vec<sled::Tree> = many.iter().map(|t| self.tree(*t).clone()).collect();
                trees
                    .as_slice()
                    .transaction(|views| {
                        for (t, k, v) in &batch.ops {
                            let i = many.iter().position(|m| m == t).unwrap_or(0);
                            match v {
                                Some(v) => {
                                    views[i].insert(k.as_slice(), v.as_slice())?;
                                }
                                None => {
                                    views[i].remove(k.as_slice())?;
                                }
                            }
                        }
                        Ok::<(), ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e| match e {
                        TransactionError::Storage(e) => engine(e),
                        TransactionError::Abort(()) => {
                            StoreError::Engine("transaction aborted".into())
                        }
                    })
            }
        }
    }

    fn flush(&self) -> Result<()> {
        self.db.flush().map(|_| ()).map_err(engine)
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(engine)
    }
}
