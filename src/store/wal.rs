//! The write-ahead log: what makes a write durable.
//!
//! Every batch the writer applies to the engine is also appended here, and a whole group
//! of them is made durable with one `write` and one `fdatasync` before anyone hears "ack".
//! The engine is never flushed on that path: a checkpoint (the engine's own flush, on
//! another thread) happens every 4 MiB or 250 ms of writes, after which the log segments
//! it covers are deleted. After a group's batches the engine gets the group's last log
//! sequence number (lsn) in `meta/applied_lsn`, written after them: the engine keeps a
//! prefix of its writes in a crash, so when the marker is there so is everything before
//! it, and `open` replays only the records after it (replaying a batch the engine holds
//! part of is harmless: the same puts and deletes in the same order). Start-up work is
//! bounded by one checkpoint interval, not by the amount of stored data.
//!
//! It owns the files under `DATA/wal/`: segments named by their first lsn, holding
//! records of `len u32 | crc32 u32 | payload`, the payload being `lsn u64` followed by the
//! batch's operations, then zeros to the segment's end. It must not know what the keys
//! mean.
//!
//! Segments are made from a zero-filled spare file the checkpoint thread writes and
//! syncs ahead of time (`prepare_spare`): overwriting blocks that are already allocated
//! and on disk lets `fdatasync` flush the data alone, where an append must also write
//! the file's new size and blocks. A zero where a record's length belongs ends a
//! segment's records.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::{Batch, Kv, Result, StoreError, Tree};

/// The current segment is closed and a checkpoint requested past this size…
pub const CHECKPOINT_BYTES: u64 = 4 * 1024 * 1024;
/// …or this long after the last checkpoint, when anything was written since.
pub const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// The zero-filled file the next segment is made from, and its name while being written.
const SPARE: &str = "next.spare";
const SPARE_TMP: &str = "next.spare.tmp";
/// A spare holds twice what the last segment took, within these bounds: big enough that
/// a segment rarely outgrows it (then it just appends), small enough that zero-filling
/// stays a fraction of what is logged.
const SPARE_MIN: u64 = 64 * 1024;
const SPARE_MAX: u64 = CHECKPOINT_BYTES + 1024 * 1024;

const HEADER: usize = 8;
const PUT: u8 = 1;
const DELETE: u8 = 0;

pub struct Wal {
    dir: PathBuf,
    file: File,
    /// The current segment's first lsn (its name).
    first: u64,
    /// Bytes of the current segment known to be on disk.
    synced: u64,
    /// Records appended since the last sync.
    pending: Vec<u8>,
    next_lsn: u64,
    /// Set when a failed write could not be cut back off the segment: appending after
    /// a torn record would hide every later record from replay, so every sync fails.
    broken: bool,
}

/// What `Wal::open` found.
#[derive(Debug, Default, Clone, Copy)]
pub struct Replayed {
    pub records: u64,
    pub torn_tail: bool,
}

fn log_error(path: &Path, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Log {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

fn segment_name(first_lsn: u64) -> String {
    format!("{first_lsn:020}.wal")
}

/// The segments in `dir`, oldest first, with their first lsn.
fn segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| log_error(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| log_error(dir, e))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".wal"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        found.push((first, entry.path()));
    }
    found.sort();
    Ok(found)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| log_error(dir, e))
}

impl Wal {
    /// Opens the log in `dir` (created if missing), applies to `kv` every intact record
    /// after `applied` in order, flushes `kv` if it applied any, and starts a fresh
    /// segment. A torn record at the end of the newest segment (a crash in the middle of
    /// a write, never acknowledged) ends the log; damage anywhere else is an error, since
    /// the records after it were acknowledged.
    pub fn open(dir: &Path, applied: u64, kv: &dyn Kv) -> Result<(Wal, Replayed)> {
        crate::fsutil::create_private_dir(dir).map_err(|e| log_error(dir, e))?;
        let old = segments(dir)?;
        let mut replayed = Replayed::default();
        let mut last = applied;
        for (i, (_, path)) in old.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| log_error(path, e))?;
            let newest = i + 1 == old.len();
            let mut at = 0;
            while at < bytes.len() {
                if bytes[at..].starts_with(&[0; 4]) {
                    // No record is empty (each holds its lsn): the zeros of a spare.
                    break;
                }
                let record = match read_record(&bytes[at..]) {
                    Ok(r) => r,
                    Err(reason) if newest => {
                        tracing::warn!(segment = %path.display(), offset = at, %reason,
                            "write-ahead log ends in a torn record (a crash mid-write); it was never acknowledged");
                        replayed.torn_tail = true;
                        break;
                    }
                    Err(reason) => {
                        return Err(log_error(path, format!("at byte {at}: {reason}")));
                    }
                };
                at += record.len;
                if record.lsn <= applied {
                    continue;
                }
                if record.lsn <= last {
                    return Err(log_error(
                        path,
                        format!("at byte {at}: lsn {} after {last}", record.lsn),
                    ));
                }
                kv.apply(&record.batch)?;
                last = record.lsn;
                replayed.records += 1;
            }
        }
        if replayed.records > 0 {
            kv.apply(&applied_marker(last))?;
            kv.flush()?;
        }
        // Everything in the old segments is now in the engine, on disk: they can go,
        // before the new segment is made (it may have the same name as an empty one).
        for (_, path) in &old {
            std::fs::remove_file(path).map_err(|e| log_error(path, e))?;
        }
        let next_lsn = last + 1;
        let file = new_segment(dir, next_lsn)?;
        Ok((
            Wal {
                dir: dir.to_path_buf(),
                file,
                first: next_lsn,
                synced: 0,
                pending: Vec::new(),
                next_lsn,
                broken: false,
            },
            replayed,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The lsn of the last record appended (0 before any).
    pub fn last_lsn(&self) -> u64 {
        self.next_lsn - 1
    }

    /// Appends a batch (in memory until `sync`).
    pub fn append(&mut self, batch: &Batch) {
        let start = self.pending.len();
        self.pending.extend_from_slice(&[0; HEADER]);
        self.pending.extend_from_slice(&self.next_lsn.to_be_bytes());
        encode_ops(batch, &mut self.pending);
        let payload = &self.pending[start + HEADER..];
        let len = payload.len() as u32;
        let crc = crc32fast::hash(payload);
        self.pending[start..start + 4].copy_from_slice(&len.to_be_bytes());
        self.pending[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
        self.next_lsn += 1;
    }

    /// Writes what was appended and waits for it to reach the disk.
    pub fn sync(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let path = self.segment_path();
        if self.broken {
            self.pending.clear();
            return Err(log_error(
                &path,
                "an earlier write failed and could not be undone",
            ));
        }
        let written = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data());
        match written {
            Ok(()) => {
                self.synced += self.pending.len() as u64;
                self.pending.clear();
                Ok(())
            }
            Err(e) => {
                self.pending.clear();
                // Cut a partial record off so the records after it stay readable, and
                // write the next ones where it began.
                let cut = self
                    .file
                    .set_len(self.synced)
                    .and_then(|()| self.file.seek(SeekFrom::Start(self.synced)));
                if cut.is_err() {
                    self.broken = true;
                }
                Err(log_error(&path, e))
            }
        }
    }

    /// Bytes in the current segment.
    pub fn segment_bytes(&self) -> u64 {
        self.synced
    }

    /// Starts a new segment (after a `sync`) and returns its first lsn: every record
    /// before it is in older segments, which a checkpoint may delete once the engine has
    /// flushed everything applied so far.
    pub fn rotate(&mut self) -> Result<u64> {
        self.sync()?;
        if self.first == self.next_lsn {
            // Nothing was written to the current segment: it already starts there.
            return Ok(self.next_lsn);
        }
        self.file = new_segment(&self.dir, self.next_lsn)?;
        self.first = self.next_lsn;
        self.synced = 0;
        self.broken = false;
        Ok(self.next_lsn)
    }

    fn segment_path(&self) -> PathBuf {
        self.dir.join(segment_name(self.first))
    }
}

/// The write that tells the engine it holds every record up to `lsn`; applied after them.
pub fn applied_marker(lsn: u64) -> Batch {
    let mut b = Batch::default();
    b.put(
        Tree::Meta,
        super::keys::APPLIED_LSN_KEY,
        lsn.to_be_bytes().to_vec(),
    );
    b
}

/// Deletes the segments wholly before `first_kept` (their records are in the engine,
/// flushed). Called by the checkpoint after the engine's flush.
pub fn remove_before(dir: &Path, first_kept: u64) -> Result<()> {
    let old = segments(dir)?;
    for (i, (first, path)) in old.iter().enumerate() {
        let next_first = old.get(i + 1).map(|(f, _)| *f);
        if *first < first_kept && next_first.is_some_and(|n| n <= first_kept) {
            std::fs::remove_file(path).map_err(|e| log_error(path, e))?;
        }
    }
    Ok(())
}

/// Bytes the log occupies on disk.
pub fn size_on_disk(dir: &Path) -> u64 {
    segments(dir)
        .unwrap_or_default()
        .iter()
        .filter_map(|(_, p)| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// The segment starting at `first_lsn`: the spare renamed, written from its start, or an
/// empty file when no spare is ready.
fn new_segment(dir: &Path, first_lsn: u64) -> Result<File> {
    let path = dir.join(segment_name(first_lsn));
    let file = match std::fs::rename(dir.join(SPARE), &path) {
        Ok(()) => OpenOptions::new().write(true).open(&path),
        Err(_) => crate::fsutil::private_options()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path),
    }
    .map_err(|e| log_error(&path, e))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Writes a spare for the next segment, sized for a segment that took `last_used` bytes,
/// unless one is ready. Zero-filled and synced before it gets its name, so a spare is
/// always whole. Runs on the checkpoint thread, off the acknowledgement path.
pub fn prepare_spare(dir: &Path, last_used: u64) -> Result<()> {
    let spare = dir.join(SPARE);
    if spare.exists() {
        return Ok(());
    }
    let tmp = dir.join(SPARE_TMP);
    let size = last_used.saturating_mul(2).clamp(SPARE_MIN, SPARE_MAX);
    let zeros = vec![0u8; 64 * 1024];
    let written = crate::fsutil::private_options()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)
        .and_then(|mut f| {
            let mut left = size;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                f.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            f.sync_data()
        })
        .and_then(|()| std::fs::rename(&tmp, &spare));
    written.map_err(|e| log_error(&tmp, e))
}

fn encode_ops(batch: &Batch, out: &mut Vec<u8>) {
    for (tree, key, value) in &batch.ops {
        out.push(tree.tag());
        out.push(if value.is_some() { PUT } else { DELETE });
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key);
        if let Some(v) = value {
            out.extend_from_slice(&(v.len() as u32).to_be_bytes());
            out.extend_from_slice(v);
        }
    }
}

struct Record {
    lsn: u64,
    batch: Batch,
    /// Bytes the record takes, header included.
    len: usize,
}

fn read_record(bytes: &[u8]) -> std::result::Result<Record, String> {
    let header = bytes.get(..HEADER).ok_or("a record header cut short")?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    let payload = bytes
        .get(HEADER..HEADER + len)
        .ok_or("a record cut short")?;
    if crc32fast::hash(payload) != crc {
        return Err("a record whose checksum does not match".into());
    }
    let mut r = Reader(payload);
    let lsn = u64::from_be_bytes(r.take_array()?);
    let mut batch = Batch::default();
    while !r.0.is_empty() {
        let [tag, kind] = r.take_array()?;
        let tree = Tree::from_tag(tag).ok_or_else(|| format!("unknown tree {tag}"))?;
        let key = r.take_sized()?.to_vec();
        match kind {
            PUT => {
                let value = r.take_sized()?.to_vec();
                batch.put(tree, key, value);
            }
            DELETE => batch.delete(tree, key),
            other => return Err(format!("unknown operation {other}")),
        }
    }
    Ok(Record {
        lsn,
        batch,
        len: HEADER + len,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("a record whose operations run past its end".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn take_array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn take_sized(&mut self) -> std::result::Result<&'a [u8], String> {
        let n = u32::from_be_bytes(self.take_array()?) as usize;
        self.take(n)
    }
}

#[cfg(test)]
mod tests;
