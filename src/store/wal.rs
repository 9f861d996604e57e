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
//! the file's new size and blocks (measured here: about 200 µs instead of 270 at the
//! median, and half the p99; see BENCHMARKS.md). A zero where a record's length belongs
//! ends a segment's records.

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
mod tests {
    use super::*;
    use crate::store::sled_engine::SledKv;

    /// Appends batches (message keys n, for n in `range`) and syncs them; with `kv`, also
    /// applies each with its marker, as the writer does.
    fn write(wal: &mut Wal, kv: Option<&dyn Kv>, range: std::ops::RangeInclusive<u8>) {
        for n in range {
            let b = batch(n);
            wal.append(&b);
            if let Some(kv) = kv {
                kv.apply(&b).expect("apply");
                kv.apply(&applied_marker(wal.last_lsn())).expect("marker");
            }
        }
        wal.sync().expect("sync");
    }

    /// A temporary data directory (dropped with the first value), its engine, its log.
    fn store() -> (tempfile::TempDir, SledKv, PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let kv = SledKv::open(&dir.path().join("db")).expect("engine");
        let log = dir.path().join("wal");
        (dir, kv, log)
    }

    /// Writes the first half of batch `n`'s record, as a crash mid-write leaves it.
    fn write_torn(wal: &mut Wal, n: u8) {
        wal.append(&batch(n));
        let torn = std::mem::take(&mut wal.pending);
        wal.file
            .write_all(&torn[..torn.len() / 2])
            .expect("torn write");
    }

    fn applied(kv: &dyn Kv) -> u64 {
        kv.get(Tree::Meta, crate::store::keys::APPLIED_LSN_KEY)
            .expect("get")
            .and_then(|v| crate::store::keys::read_u64(&v))
            .unwrap_or(0)
    }

    #[test]
    fn open_replays_what_the_engine_lacks_and_stops_at_a_torn_tail() {
        let (_dir, kv, log) = store();
        {
            let (mut wal, replayed) = Wal::open(&log, 0, &kv).expect("new log");
            assert_eq!(replayed.records, 0);
            // Batches 1 and 2 reach the engine; 3 and 4 only the log (a crash before
            // the engine applied them); then half of a fifth record.
            write(&mut wal, Some(&kv), 1..=2);
            write(&mut wal, None, 3..=4);
            // The engine also got batch 3 but not the group's marker (a crash mid-apply).
            kv.apply(&batch(3)).expect("part of the group");
            write_torn(&mut wal, 5);
        }
        assert_eq!(applied(&kv), 2);

        let (wal, replayed) = Wal::open(&log, applied(&kv), &kv).expect("reopen");
        assert_eq!(replayed.records, 2, "3 and 4, not 1 and 2 again");
        assert!(replayed.torn_tail);
        assert_eq!(applied(&kv), 4);
        assert_eq!(
            kv.get(Tree::Messages, &[4; 3]).expect("get"),
            Some(vec![4; 40])
        );
        assert_eq!(
            kv.get(Tree::Messages, &[5; 3]).expect("get"),
            None,
            "never acknowledged"
        );
        assert_eq!(
            kv.get(Tree::ClientIds, &[3]).expect("deletes replay too"),
            None
        );
        // The old segments are gone; the log goes on after lsn 4.
        assert_eq!(segments(&log).expect("list").len(), 1);
        assert_eq!(wal.last_lsn(), 4);
    }

    #[test]
    fn a_log_reopened_after_a_run_that_wrote_nothing_keeps_what_is_written_next() {
        let (_dir, kv, log) = store();
        drop(Wal::open(&log, 0, &kv).expect("first run writes nothing"));
        {
            let (mut wal, _) = Wal::open(&log, 0, &kv).expect("second run");
            write(&mut wal, None, 1..=1);
        }
        let (_, replayed) = Wal::open(&log, 0, &kv).expect("third run");
        assert_eq!(replayed.records, 1, "the second run's record survived");
        assert_eq!(
            kv.get(Tree::Messages, &[1; 3]).expect("get"),
            Some(vec![1; 40])
        );
    }

    #[test]
    fn damage_before_the_newest_segment_is_an_error() {
        let (_dir, kv, log) = store();
        let first = {
            let (mut wal, _) = Wal::open(&log, 0, &kv).expect("new log");
            write(&mut wal, None, 1..=3);
            let first = wal.segment_path();
            wal.rotate().expect("rotate");
            write(&mut wal, None, 4..=5);
            first
        };
        let mut bytes = std::fs::read(&first).expect("read");
        bytes[20] ^= 0xff;
        std::fs::write(&first, bytes).expect("damage");
        let err = Wal::open(&log, 0, &kv).err().expect("refused");
        assert!(
            err.to_string().contains(&first.display().to_string()),
            "names the segment: {err}"
        );
    }

    #[test]
    fn remove_before_keeps_the_segment_holding_first_kept() {
        let (_dir, kv, log) = store();
        let (mut wal, _) = Wal::open(&log, 0, &kv).expect("new log");
        write(&mut wal, None, 1..=2);
        let second = wal.rotate().expect("rotate");
        write(&mut wal, None, 3..=4);
        let third = wal.rotate().expect("rotate");
        assert_eq!((second, third), (3, 5));
        remove_before(&log, second).expect("remove");
        let left: Vec<u64> = segments(&log)
            .expect("list")
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(left, vec![3, 5]);
        remove_before(&log, third).expect("remove");
        let left: Vec<u64> = segments(&log)
            .expect("list")
            .iter()
            .map(|(f, _)| *f)
            .collect();
        assert_eq!(left, vec![5]);
    }

    #[test]
    fn a_segment_made_from_a_spare_is_written_over_its_zeros_and_ends_at_them() {
        let (_dir, kv, log) = store();
        {
            let (mut wal, _) = Wal::open(&log, 0, &kv).expect("new log");
            write(&mut wal, None, 1..=2);
            prepare_spare(&log, 0).expect("spare");
            assert!(log.join(SPARE).exists());
            wal.rotate().expect("rotate");
            assert!(!log.join(SPARE).exists(), "the spare became the segment");
            let segment = wal.segment_path();
            write(&mut wal, None, 3..=4);
            let meta = std::fs::metadata(&segment).expect("segment");
            assert_eq!(meta.len(), SPARE_MIN, "written over, not appended to");
            // A crash in the middle of the next record: its half, then the zeros.
            write_torn(&mut wal, 5);
        }
        let (mut wal, replayed) = Wal::open(&log, 0, &kv).expect("reopen");
        assert_eq!(replayed.records, 4);
        assert!(
            replayed.torn_tail,
            "the half record, not the zeros, is the tear"
        );
        assert_eq!(wal.last_lsn(), 4);
        assert_eq!(
            kv.get(Tree::Messages, &[4; 3]).expect("get"),
            Some(vec![4; 40])
        );
        // A spare holds twice the last segment, and a clean segment's zeros end it quietly.
        prepare_spare(&log, SPARE_MIN).expect("spare");
        assert_eq!(
            std::fs::metadata(log.join(SPARE)).expect("spare").len(),
            2 * SPARE_MIN
        );
        wal.rotate().expect("rotate an empty segment is a no-op");
        write(&mut wal, None, 6..=6);
        wal.rotate().expect("rotate");
        drop(wal);
        let (_, replayed) = Wal::open(&log, 4, &kv).expect("reopen");
        assert_eq!((replayed.records, replayed.torn_tail), (1, false));
    }

    fn batch(n: u8) -> Batch {
        let mut b = Batch::default();
        b.put(Tree::Messages, vec![n; 3], vec![n; 40]);
        b.delete(Tree::ClientIds, vec![n]);
        b
    }

    #[test]
    fn records_round_trip_and_damage_is_detected() {
        let mut out = Vec::new();
        let b = batch(7);
        let start = out.len();
        out.extend_from_slice(&[0; HEADER]);
        out.extend_from_slice(&42u64.to_be_bytes());
        encode_ops(&b, &mut out);
        let len = (out.len() - HEADER) as u32;
        let crc = crc32fast::hash(&out[HEADER..]);
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
        out[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());

        let r = read_record(&out).expect("intact record");
        assert_eq!(r.lsn, 42);
        assert_eq!(r.len, out.len());
        assert_eq!(r.batch.ops, b.ops);

        assert!(read_record(&out[..out.len() - 1]).is_err(), "cut short");
        let mut flipped = out.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(read_record(&flipped).is_err(), "bit flip");
        assert!(read_record(&[0; 4]).is_err(), "header cut short");
    }
}
