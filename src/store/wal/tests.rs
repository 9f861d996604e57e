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
