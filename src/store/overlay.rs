//! A group's writes seen through: the engine plus the batches of the current group that
//! are in the log buffer but not yet durable, hence not yet in the engine.
//!
//! The writer applies a group to the engine only after its log sync, so the engine never
//! holds a write the log could lose in a crash. Until then the closures of the same group
//! read through this overlay, so each one still sees every batch submitted before it. It
//! must not write to the engine.

use std::collections::BTreeMap;

use super::{Batch, Kv, Result, Rows, Scan, Tree};

pub struct Overlay<'a> {
    kv: &'a dyn Kv,
    /// Engine-order keys (tree tag, then key) to the value pending, `None` for a delete.
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

fn tagged(tree: Tree, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(tree.tag());
    k.extend_from_slice(key);
    k
}

/// The smallest key after every key that starts with `prefix`, if there is one.
impl<'a> Overlay<'a> {
    pub fn new(kv: &'a dyn Kv) -> Self {
        Overlay {
            kv,
            pending: BTreeMap::new(),
        }
    }

    pub fn record(&mut self, batch: &Batch) {
        for (tree, key, value) in &batch.ops {
            self.pending.insert(tagged(*tree, key), value.clone());
        }
    }

    /// Pending entries of `tree` in `[from, to)` (`to = None`: to the tree's end).
    fn pending_in(
        &self,
        tree: Tree,
        from: &[u8],
        to: Option<&[u8]>,
    ) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        let lo = tagged(tree, from);
        let hi = match to {
            Some(to) => tagged(tree, to),
            None => vec![tree.tag() + 1],
        };
        if lo >= hi {
            return Vec::new();
        }
        self.pending
            .range(lo..hi)
            .map(|(k, v)| (k[1..].to_vec(), v.clone()))
            .collect()
    }

    /// Merges engine rows (in key order, or reverse) with the pending entries of the
    /// same range and keeps the first `limit`.
    fn merge(
        engine: Vec<(Vec<u8>, Vec<u8>)>,
        pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        limit: usize,
        reverse: bool,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = engine.into_iter().collect();
        for (k, v) in pending {
            match v {
                Some(v) => merged.insert(k, v),
                None => merged.remove(&k),
            };
        }
        if reverse {
            merged.into_iter().rev().take(limit).collect()
        } else {
            merged.into_iter().take(limit).collect()
        }
    }

    /// How many more engine rows to read so that `limit` survive the pending deletes.
    fn widen(limit: usize, pending: &[(Vec<u8>, Option<Vec<u8>>)]) -> usize {
        limit.saturating_add(pending.iter().filter(|(_, v)| v.is_none()).count())
    }

    /// A range read through the overlay: `engine(n)` reads the engine's first `n` rows
    /// of the range in the wanted order; `pending` are the group's entries in it.
    fn through(
        pending: Vec<(Vec<u8>, Option<Vec<u8>>)>,
        limit: usize,
        reverse: bool,
        engine: impl FnOnce(usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if pending.is_empty() {
            return engine(limit);
        }
        let rows = engine(Self::widen(limit, &pending))?;
        Ok(Self::merge(rows, pending, limit, reverse))
    }
}

impl Kv for Overlay<'_> {
    fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
        match self.pending.get(&tagged(tree, key)) {
            Some(v) => Ok(v.clone()),
            None => self.kv.get(tree, key),
        }
    }

    fn scan(&self, tree: Tree, scan: Scan<'_>) -> Result<Rows> {
        let pending = self.pending_in(tree, scan.from, scan.to);
        Self::through(pending, scan.limit, scan.newest_first, |limit| {
            self.kv.scan(tree, Scan { limit, ..scan })
        })
    }

    /// Writes go through the writer's group, never straight through an overlay.
    fn apply(&self, _batch: &Batch) -> Result<()> {
        Err(super::StoreError::Engine(
            "a write closure tried to write outside its batch".into(),
        ))
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A plain in-memory engine for the overlay's own tests.
    #[derive(Default)]
    struct Mem(Mutex<BTreeMap<Vec<u8>, Vec<u8>>>);

    impl Mem {
        fn rows(&self, lo: Vec<u8>, hi: Vec<u8>) -> Vec<(Vec<u8>, Vec<u8>)> {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            map.range(lo..hi)
                .map(|(k, v)| (k[1..].to_vec(), v.clone()))
                .collect()
        }
    }

    impl Kv for Mem {
        fn get(&self, tree: Tree, key: &[u8]) -> Result<Option<Vec<u8>>> {
            let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            Ok(map.get(&tagged(tree, key)).cloned())
        }
        fn scan(&self, t: Tree, scan: Scan<'_>) -> Result<Rows> {
            let hi = match scan.to {
                Some(to) => tagged(t, to),
                None => vec![t.tag() + 1],
            };
            let rows = self.rows(tagged(t, scan.from), hi).into_iter();
            Ok(if scan.newest_first {
                rows.rev().take(scan.limit).collect()
            } else {
                rows.take(scan.limit).collect()
            })
        }
        fn apply(&self, batch: &Batch) -> Result<()> {
            let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
            for (t, k, v) in &batch.ops {
                match v {
                    Some(v) => map.insert(tagged(*t, k), v.clone()),
                    None => map.remove(&tagged(*t, k)),
                };
            }
            Ok(())
        }
        fn flush(&self) -> Result<()> {
            Ok(())
        }
    }

    fn keys(rows: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<u8> {
        rows.into_iter().map(|(k, _)| k[0]).collect()
    }

    #[test]
    fn reads_see_pending_puts_and_deletes_over_the_engine() {
        let mem = Mem::default();
        let mut engine = Batch::default();
        for k in [1u8, 3, 5, 7] {
            engine.put(Tree::Messages, vec![k], vec![k]);
        }
        engine.put(Tree::Contacts, vec![2], vec![2]);
        mem.apply(&engine).expect("engine");

        let mut overlay = Overlay::new(&mem);
        let mut group = Batch::default();
        group.put(Tree::Messages, vec![4], vec![40]);
        group.delete(Tree::Messages, vec![3]);
        group.put(Tree::Messages, vec![7], vec![70]);
        overlay.record(&group);

        assert_eq!(
            overlay.get(Tree::Messages, &[4]).expect("get"),
            Some(vec![40])
        );
        assert_eq!(overlay.get(Tree::Messages, &[3]).expect("get"), None);
        assert_eq!(
            overlay.get(Tree::Messages, &[1]).expect("get"),
            Some(vec![1])
        );
        let all = overlay
            .scan_prefix(Tree::Messages, b"", usize::MAX)
            .expect("scan");
        assert_eq!(keys(all.clone()), vec![1, 4, 5, 7]);
        assert_eq!(all[3].1, vec![70]);
        // Two survive the pending delete of 3 even though the engine's first two are 1, 3.
        assert_eq!(
            keys(
                overlay
                    .scan(
                        Tree::Messages,
                        Scan {
                            from: &[0],
                            to: Some(&[9]),
                            newest_first: false,
                            limit: 2
                        }
                    )
                    .expect("range")
            ),
            vec![1, 4]
        );
        assert_eq!(
            keys(
                overlay
                    .range_rev(Tree::Messages, &[0], &[7], 2)
                    .expect("rev")
            ),
            vec![5, 4]
        );
        assert_eq!(
            keys(
                overlay
                    .scan_prefix(Tree::Contacts, b"", 9)
                    .expect("other tree")
            ),
            vec![2]
        );
        assert_eq!(
            mem.get(Tree::Messages, &[3]).expect("engine untouched"),
            Some(vec![3])
        );
    }
}
