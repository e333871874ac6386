//! In-process tests of the file log as a whole: append, read, roll, recover.

use std::fs::OpenOptions;
use std::io::Write;

use super::*;
use crate::store::read::ReadProgress;

fn config(partitions: u32, segment_bytes: u64) -> LogConfig {
    LogConfig {
        partitions,
        segment_bytes,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn opts(c: LogConfig) -> AppendOptions {
    AppendOptions {
        create: c,
        ..AppendOptions::default()
    }
}

fn read_all(log: &Log, p: u32, start: StartAt) -> Result<Vec<(u64, String)>> {
    let mut reader = PartitionReader::open(log, p, start)?;
    let mut out = Vec::new();
    loop {
        let ReadProgress { at_end, .. } = reader.read(1000, &mut |r| {
            out.push((r.offset, String::from_utf8(r.event.to_vec()).unwrap()));
            Ok(())
        })?;
        if at_end {
            return Ok(out);
        }
    }
}

fn event(i: usize) -> String {
    format!(r#"{{"schema":"iglu:com.nile/x/jsonschema/1-0-0","data":{{"i":{i}}}}}"#)
}

#[test]
fn appends_read_back_in_order_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(1, 2048))).unwrap();
    for i in 0..500 {
        a.append(event(i).as_bytes(), None).unwrap();
        if i % 37 == 0 {
            a.commit().unwrap();
        }
    }
    let positions = a.commit().unwrap();
    assert_eq!(positions.last().unwrap().offset, 499);
    let log = Log::open(&path).unwrap();
    assert!(
        segment::list(&log.partition_dir(0)).unwrap().len() > 10,
        "segments rolled"
    );
    let all = read_all(&log, 0, StartAt::Beginning).unwrap();
    assert_eq!(all.len(), 500);
    for (i, (offset, ev)) in all.iter().enumerate() {
        assert_eq!(*offset, i as u64);
        assert_eq!(ev, &event(i));
    }
    let from = read_all(&log, 0, StartAt::Offset(321)).unwrap();
    assert_eq!(from.first().unwrap().0, 321);
    assert_eq!(from.len(), 179);
    let last = read_all(&log, 0, StartAt::Last(5)).unwrap();
    assert_eq!(
        last.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![495, 496, 497, 498, 499]
    );
    assert!(read_all(&log, 0, StartAt::End).unwrap().is_empty());
    assert_eq!(log.bounds(0).unwrap(), (0, 500));
}

#[test]
fn keys_pick_partitions_like_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(4, 1 << 20))).unwrap();
    a.append(b"{\"k\":1}", Some(b"shopper-1")).unwrap();
    a.append(b"{\"k\":2}", Some(b"shopper-1")).unwrap();
    let pos = a.commit().unwrap();
    let expected = partitioner::partition_for_key(b"shopper-1", 4);
    assert!(pos.iter().all(|p| p.partition == expected));
    assert_eq!(pos[1].offset, 1);
}

#[test]
fn torn_tail_is_not_read_and_is_truncated_by_the_next_append() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(1, 1 << 20))).unwrap();
    for i in 0..10 {
        a.append(event(i).as_bytes(), None).unwrap();
    }
    a.commit().unwrap();
    drop(a);
    let seg = segment::path(&path.join("partition-0"), 0, segment::LOG_EXT);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"10\t1700000000000\tdeadbeef\t{\"torn\":")
        .unwrap();
    drop(f);
    let log = Log::open(&path).unwrap();
    assert_eq!(read_all(&log, 0, StartAt::Beginning).unwrap().len(), 10);
    let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
    f.write_all(b"garbage\nmore garbage\n").unwrap();
    drop(f);
    assert_eq!(read_all(&log, 0, StartAt::Beginning).unwrap().len(), 10);
    let mut a = Appender::open(&path, &opts(config(1, 1 << 20))).unwrap();
    a.append(event(10).as_bytes(), None).unwrap();
    assert_eq!(a.commit().unwrap()[0].offset, 10);
    let all = read_all(&log, 0, StartAt::Beginning).unwrap();
    assert_eq!(all.len(), 11);
    assert_eq!(all[10].1, event(10));
}

#[test]
fn corruption_in_the_middle_is_an_error_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(1, 1 << 20))).unwrap();
    for i in 0..100 {
        a.append(event(i).as_bytes(), None).unwrap();
    }
    a.commit().unwrap();
    let seg = segment::path(&path.join("partition-0"), 0, segment::LOG_EXT);
    let mut bytes = std::fs::read(&seg).unwrap();
    let line_50 = bytes
        .split(|&b| b == b'\n')
        .take(50)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    bytes[line_50 + 40] ^= 0x04;
    std::fs::write(&seg, &bytes).unwrap();
    let log = Log::open(&path).unwrap();
    let err = read_all(&log, 0, StartAt::Beginning)
        .unwrap_err()
        .to_string();
    assert!(err.contains("offset 50"), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    // Starting past the damage reads the rest.
    assert_eq!(read_all(&log, 0, StartAt::Offset(51)).unwrap().len(), 49);
    // An appender refuses a partition with damage in the middle of the
    // segment it would write to (issue 9): appending would bury the damage
    // under newly acknowledged records. Nothing is appended.
    let err = Appender::open(&path, &opts(config(1, 1 << 20)))
        .and_then(|mut a| {
            a.append(b"{}", None)?;
            a.commit().map(|_| ())
        })
        .unwrap_err()
        .to_string();
    assert!(err.contains("offset 50"), "{err}");
    assert!(err.contains("nothing is appended"), "{err}");
    assert_eq!(read_all(&log, 0, StartAt::Offset(51)).unwrap().len(), 49);
    assert!(read_all(&log, 0, StartAt::Beginning).is_err());
}

#[test]
fn time_seek_finds_the_first_record_at_or_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(1, 4096))).unwrap();
    for i in 0..50 {
        a.append(event(i).as_bytes(), None).unwrap();
    }
    a.commit().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let cut = crate::time::now_ms();
    std::thread::sleep(std::time::Duration::from_millis(5));
    for i in 50..100 {
        a.append(event(i).as_bytes(), None).unwrap();
    }
    a.commit().unwrap();
    let log = Log::open(&path).unwrap();
    let got = read_all(&log, 0, StartAt::Time(cut)).unwrap();
    assert_eq!(got.first().unwrap().0, 50);
    assert_eq!(got.len(), 50);
    assert_eq!(read_all(&log, 0, StartAt::Time(0)).unwrap().len(), 100);
}

#[test]
fn retention_deletes_whole_old_segments() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let c = LogConfig {
        retention_bytes: Some(8192),
        ..config(1, 2048)
    };
    let mut a = Appender::open(&path, &opts(c)).unwrap();
    for i in 0..1000 {
        a.append(event(i).as_bytes(), None).unwrap();
        if i % 10 == 0 {
            a.commit().unwrap();
        }
    }
    a.commit().unwrap();
    let log = Log::open(&path).unwrap();
    let (start, end) = log.bounds(0).unwrap();
    assert_eq!(end, 1000);
    assert!(start > 0, "old segments were deleted");
    let rest = read_all(&log, 0, StartAt::Beginning).unwrap();
    assert_eq!(rest.first().unwrap().0, start);
    assert_eq!(rest.len() as u64, end - start);
    let total: u64 = std::fs::read_dir(log.partition_dir(0))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    assert!(total <= 8192 + 2048, "partition holds {total} bytes");
}

#[test]
fn a_stale_index_is_only_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(1, 1 << 20))).unwrap();
    for i in 0..300 {
        a.append(event(i).as_bytes(), None).unwrap();
    }
    a.commit().unwrap();
    let idx = segment::path(&path.join("partition-0"), 0, segment::INDEX_EXT);
    let mut bytes = std::fs::read(&idx).unwrap();
    assert!(bytes.len() >= 16);
    bytes[4] ^= 0x10; // first entry's position now points mid-record
    std::fs::write(&idx, &bytes).unwrap();
    let log = Log::open(&path).unwrap();
    let got = read_all(&log, 0, StartAt::Offset(150)).unwrap();
    assert_eq!(got.first().unwrap().0, 150);
    assert_eq!(got.len(), 150);
}

#[test]
fn end_offsets_read_while_another_process_appends_are_ones_it_wrote() {
    // Readers scan a segment's tail without the partition's lock (a
    // failure sink opening its marks, say); records appended meanwhile
    // must not be counted, nor make the scan go past what it measured.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l");
    let mut a = Appender::open(&path, &opts(config(1, 1 << 30))).unwrap();
    a.append(event(0).as_bytes(), None).unwrap();
    a.commit().unwrap();
    let log = Log::open(&path).unwrap();
    let writer = std::thread::spawn(move || {
        for i in 1..6000 {
            a.append(event(i).as_bytes(), None).unwrap();
            if i % 3 == 0 {
                a.commit().unwrap();
            }
        }
        a.commit().unwrap();
    });
    let mut last = 0;
    while !writer.is_finished() {
        let end = read::end_offset(&log, 0).unwrap();
        assert!(end >= last && end <= 6000, "{last} then {end}");
        let tail = append::inspect_tail(&log, 0).unwrap().unwrap();
        assert!(!tail.corrupt && tail.next_offset >= end, "{tail:?}");
        last = end;
    }
    writer.join().unwrap();
    assert_eq!(read::end_offset(&log, 0).unwrap(), 6000);
}
