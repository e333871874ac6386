//! The file log through the real `log-append` and `log-tail` binaries.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{append, bin, cmd, lines, nile_events, shell, tail};
use predicates::prelude::*;
use serde_json::Value;

#[test]
fn round_trip_is_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let mut input = nile_events(2000, 1);
    // Odd but valid JSON objects must come back exactly as written.
    input.extend_from_slice(b"{ \"spaced\" : [1, 2.50, 1e3] ,\t\"tab\":\"a\\tb\" }\n");
    input.extend_from_slice("{\"unicode\":\"caf\u{e9} \u{1f600} \\u00e9\"}\n".as_bytes());
    input.extend_from_slice(b"{}\n");
    cmd("log-append")
        .arg(&log)
        .write_stdin(input.clone())
        .assert()
        .success()
        .stdout("");
    assert_eq!(tail(&log, &[]), input);
}

#[test]
fn offsets_from_forms_and_count() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(500, 2);
    let all = lines(&input);
    append(&log, &[], input.clone());
    let from = |args: &[&str]| -> Vec<Vec<u8>> {
        lines(&tail(&log, args))
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect()
    };
    assert_eq!(from(&["--from", "beginning"]).len(), 500);
    assert!(from(&["--from", "end"]).is_empty());
    assert_eq!(
        from(&["--from", "490"]),
        all[490..].iter().map(|l| l.to_vec()).collect::<Vec<_>>()
    );
    assert_eq!(
        from(&["--from", "-3"]),
        all[497..].iter().map(|l| l.to_vec()).collect::<Vec<_>>()
    );
    assert_eq!(
        from(&["--from", "100", "--count", "2"]),
        vec![all[100].to_vec(), all[101].to_vec()]
    );
    assert_eq!(from(&["-n", "1"]), vec![all[0].to_vec()]);
    // Time: everything is after the epoch, nothing is after the far future.
    assert_eq!(from(&["--from", "@1970-01-01T00:00:00Z"]).len(), 500);
    assert!(from(&["--from", "@2999-01-01T00:00:00Z"]).is_empty());
    cmd("log-tail")
        .arg(&log)
        .args(["--from", "soon"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("log-tail: error:"));
    cmd("log-tail")
        .arg(&log)
        .args(["--partition", "3"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no partition 3"));
    cmd("log-tail")
        .arg(dir.path().join("missing.log"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a unilog log"));
}

#[test]
fn time_seek_through_the_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &[], nile_events(100, 3));
    std::thread::sleep(Duration::from_millis(50));
    let cut = unilog::time::format_rfc3339_ms(unilog::time::now_ms());
    std::thread::sleep(Duration::from_millis(10));
    let later = nile_events(7, 4);
    append(&log, &[], later.clone());
    assert_eq!(tail(&log, &["--from", &format!("@{cut}")]), later);
}

#[test]
fn keys_pick_partitions_as_kafka_would() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(1000, 5);
    append(
        &log,
        &["--partitions", "4", "--key", ".data.shopper.id"],
        input.clone(),
    );
    let mut total = 0;
    for p in 0..4u32 {
        let out = tail(&log, &["--partition", &p.to_string()]);
        let got = lines(&out);
        total += got.len();
        // Each partition keeps input order, and holds exactly its keys.
        let expected: Vec<&[u8]> = lines(&input)
            .into_iter()
            .filter(|l| {
                let v: Value = serde_json::from_slice(l).unwrap();
                let id = v["data"]["shopper"]["id"].as_str().unwrap();
                unilog::store::partitioner::partition_for_key(id.as_bytes(), 4) == p
            })
            .collect();
        assert_eq!(got, expected, "partition {p}");
    }
    assert_eq!(total, 1000);
}

#[test]
fn groups_resume_without_gap_or_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let first = nile_events(700, 6);
    append(
        &log,
        &["--partitions", "3", "--key", ".data.shopper.id"],
        first.clone(),
    );
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(tail(&log, &["--group", "g", "--count", "150"]));
    }
    let second = nile_events(300, 7);
    append(&log, &["--key", ".data.shopper.id"], second.clone());
    seen.extend(tail(&log, &["--group", "g"]));
    assert!(
        tail(&log, &["--group", "g"]).is_empty(),
        "nothing is read twice"
    );
    let mut got: Vec<&[u8]> = lines(&seen);
    let mut want: Vec<&[u8]> = lines(&first);
    want.extend(lines(&second));
    got.sort();
    want.sort();
    assert_eq!(got.len(), 1000);
    assert_eq!(got, want);
    let positions = String::from_utf8(tail(&log, &["--group", "g", "--positions"])).unwrap();
    assert!(
        positions.starts_with("partition\tstart\tend\tgroup:g\tlag\n"),
        "{positions}"
    );
    assert!(positions.ends_with("total\t\t\t\t0\n"), "{positions}");
    // Reset to the beginning, and the group reads everything again.
    tail(&log, &["--group", "g", "--reset-to", "beginning"]);
    assert_eq!(lines(&tail(&log, &["--group", "g"])).len(), 1000);
    tail(&log, &["--group", "g", "--reset-to", "-1"]);
    assert_eq!(
        lines(&tail(&log, &["--group", "g"])).len(),
        3,
        "the last one of each partition"
    );
}

#[test]
fn closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("raw.log"), &[], nile_events(50_000, 8));
    let out = shell(
        "set -o pipefail; log-tail raw.log | head -1 >/dev/null; echo status=$?; \
         timeout 10 log-tail raw.log --follow | head -1 >/dev/null; echo follow=$?",
        dir.path(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "status=0\nfollow=0\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn follow_sees_new_events_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &[], nile_events(10, 9));
    let mut follower = Command::new(bin("log-tail"))
        .arg(&log)
        .args(["--follow", "--from", "end"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(follower.stdout.take().unwrap());
    std::thread::sleep(Duration::from_millis(300));
    let mut appender = Command::new(bin("log-append"))
        .arg(&log)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = appender.stdin.take().unwrap();
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let sent = Instant::now();
        writeln!(stdin, "{{\"n\":{i}}}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        worst = worst.max(sent.elapsed());
        assert_eq!(line, format!("{{\"n\":{i}}}\n"));
    }
    drop(stdin);
    appender.wait().unwrap();
    follower.kill().unwrap();
    follower.wait().unwrap();
    // Generous for a loaded CI machine; the benchmark measures the real p99.
    assert!(
        worst < Duration::from_secs(2),
        "an event took {worst:?} to arrive"
    );
}

#[test]
fn bad_lines_become_failure_events_and_good_ones_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let bad = dir.path().join("bad.ndjson");
    let mut input = Vec::new();
    input.extend_from_slice(b"{\"good\":1}\n");
    input.extend_from_slice(b"\n");
    input.extend_from_slice(b"{\"good\":2}\n");
    input.extend_from_slice(b"{not json\n");
    input.extend_from_slice(b"[1,2,3]\n");
    let mut huge = b"{\"big\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 10 << 20));
    huge.extend_from_slice(b"\"}\n");
    input.extend_from_slice(&huge);
    input.extend_from_slice(b"{\"bytes\":\"\xff\xfe\"}\n");
    input.extend_from_slice(b"{\"good\":3}\n");
    let out = cmd("log-append")
        .arg(&log)
        .arg("--bad")
        .arg(&bad)
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "log-append: stdin:2: empty line",
        "log-append: stdin:4: not valid JSON",
        "log-append: stdin:5: a JSON array, not an object",
        "log-append: stdin:6: line of 10485770 bytes is over the 1048576-byte limit",
        "log-append: stdin:7: not valid UTF-8 at byte 10",
        "log-append: 8 read, 3 appended, 5 failed",
    ] {
        assert!(
            stderr.contains(expected),
            "missing {expected:?} in:\n{stderr}"
        );
    }
    assert_eq!(
        tail(&log, &[]),
        b"{\"good\":1}\n{\"good\":2}\n{\"good\":3}\n"
    );
    let failures = std::fs::read(&bad).unwrap();
    let events: Vec<Value> = lines(&failures)
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["data"]["errors"][0]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "empty_line",
            "not_json",
            "not_object",
            "too_large",
            "invalid_utf8"
        ]
    );
    for e in &events {
        assert_eq!(e["schema"], "iglu:io.unilog/failure/jsonschema/1-0-0");
        assert_eq!(e["data"]["processor"]["name"], "log-append");
        assert!(e["data"]["failed_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(events[1]["data"]["original"], "{not json");
    assert_eq!(events[2]["data"]["original"], serde_json::json!([1, 2, 3]));
    assert_eq!(events[3]["data"]["original_bytes"], 10485770);
    assert_eq!(events[3]["data"]["original"].as_str().unwrap().len(), 65536);
    assert_eq!(events[4]["data"]["original_encoding"], "base64");
    assert_eq!(
        events[4]["data"]["input"],
        serde_json::json!({"name": "stdin", "line": 7})
    );
}

#[test]
fn corruption_in_the_middle_is_reported_never_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(1000, 10);
    append(&log, &[], input.clone());
    let segment = log.join("partition-0/00000000000000000000.log");
    let mut bytes = std::fs::read(&segment).unwrap();
    let start_of_500: usize = lines(&bytes)[..500].iter().map(|l| l.len() + 1).sum();
    bytes[start_of_500 + 100] ^= 0x20;
    std::fs::write(&segment, &bytes).unwrap();
    let out = cmd("log-tail").arg(&log).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("record at offset 500"), "{stderr}");
    assert!(stderr.contains(&format!("byte {start_of_500}")), "{stderr}");
    // Everything before the damage was delivered, nothing from it on.
    assert_eq!(lines(&out.stdout), lines(&input)[..500].to_vec());
    cmd("log-tail")
        .arg(&log)
        .arg("--verify")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("DAMAGED"));
}

#[test]
fn garbage_tail_is_ignored_then_truncated_on_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(100, 11);
    append(&log, &[], input.clone());
    let segment = log.join("partition-0/00000000000000000000.log");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&segment)
        .unwrap();
    f.write_all(b"100\t17000\tfeedbeef\t{\"half\":\nrandom garbage\x00\x01\n\xde\xad")
        .unwrap();
    drop(f);
    assert_eq!(tail(&log, &[]), input);
    cmd("log-tail")
        .arg(&log)
        .arg("--verify")
        .assert()
        .success()
        .stderr(predicate::str::contains("torn tail"));
    cmd("log-append")
        .arg(&log)
        .write_stdin("{\"after\":true}\n")
        .assert()
        .success()
        .stderr(predicate::str::contains("removed a torn record"));
    let mut expected = input.clone();
    expected.extend_from_slice(b"{\"after\":true}\n");
    assert_eq!(tail(&log, &[]), expected);
    cmd("log-tail")
        .arg(&log)
        .arg("--verify")
        .assert()
        .success()
        .stderr(predicate::str::contains("torn").not());
}

/// Kills log-append with SIGKILL in the middle of a large append, then checks
/// that every event it acknowledged is in the log exactly once, in order,
/// and that no torn record is ever read.
#[test]
fn crash_loses_no_acknowledged_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(400_000, 12);
    let all = lines(&input);
    for round in 0..3 {
        let before = lines(&tail(&log_or_create(&log), &[])).len();
        let mut child = Command::new(bin("log-append"))
            .arg(&log)
            .arg("--offsets")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let feed = input.clone();
        let writer = std::thread::spawn(move || {
            // Trickle the input so the kill lands mid-stream.
            for chunk in feed.chunks(64 << 10) {
                if stdin.write_all(chunk).is_err() {
                    return;
                }
            }
        });
        let mut acks = BufReader::new(child.stdout.take().unwrap());
        let mut acked = 0u64;
        let mut line = String::new();
        let wanted = 20_000 + round * 50_000;
        while acked < wanted {
            line.clear();
            if acks.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let v: Value = serde_json::from_str(&line).unwrap();
            assert_eq!(v["offset"].as_u64().unwrap(), before as u64 + acked);
            acked += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let _ = writer.join();
        let out = tail(&log, &[]);
        let got = lines(&out);
        assert!(
            got.len() as u64 >= before as u64 + acked,
            "round {round}: {} in log, {acked} acknowledged",
            got.len()
        );
        // The log is a prefix of what each round sent, with no torn record.
        for (i, l) in got[before..].iter().enumerate() {
            assert_eq!(*l, all[i], "round {round}: record {} differs", before + i);
        }
        cmd("log-tail").arg(&log).arg("--verify").assert().success();
        // Trim the log back to a round boundary by appending nothing: the
        // next round checks its own prefix from where this one ended.
    }
}

fn log_or_create(log: &std::path::Path) -> std::path::PathBuf {
    if !log.exists() {
        append(log, &[], "");
    }
    log.to_path_buf()
}

/// Four appender processes at once: every event lands once, each writer's
/// events stay in its order, and no two records' bytes interleave.
#[test]
fn concurrent_appenders_do_not_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &["--segment-bytes", "4MiB"], "");
    const WRITERS: u64 = 4;
    const EACH: u64 = 50_000;
    let children: Vec<_> = (0..WRITERS)
        .map(|w| {
            let mut input = Vec::new();
            for i in 0..EACH {
                writeln!(
                    input,
                    "{{\"writer\":{w},\"seq\":{i},\"pad\":\"{}\"}}",
                    "p".repeat((i % 50) as usize)
                )
                .unwrap();
            }
            let mut child = Command::new(bin("log-append"))
                .arg(&log)
                .stdin(Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            std::thread::spawn(move || {
                for chunk in input.chunks(32 << 10) {
                    stdin.write_all(chunk).unwrap();
                }
            });
            child
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let out = tail(&log, &[]);
    let mut next = [0u64; WRITERS as usize];
    let mut total = 0;
    for line in lines(&out) {
        let v: Value = serde_json::from_slice(line).expect("every record is a whole event");
        let w = v["writer"].as_u64().unwrap() as usize;
        assert_eq!(
            v["seq"].as_u64().unwrap(),
            next[w],
            "writer {w} out of order"
        );
        next[w] += 1;
        total += 1;
    }
    assert_eq!(total, WRITERS * EACH);
    cmd("log-tail").arg(&log).arg("--verify").assert().success();
}

#[test]
fn retention_and_settings_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(5000, 13);
    append(
        &log,
        &["--segment-bytes", "64KiB", "--retention-bytes", "256KiB"],
        input.clone(),
    );
    let positions = String::from_utf8(tail(&log, &["--positions"])).unwrap();
    let row: Vec<&str> = positions.lines().nth(1).unwrap().split('\t').collect();
    let start: usize = row[1].parse().unwrap();
    assert!(start > 0, "old segments deleted: {positions}");
    assert_eq!(row[2], "5000");
    assert_eq!(
        tail(&log, &[]),
        lines(&input)[start..]
            .iter()
            .flat_map(|l| [*l, b"\n"].concat())
            .collect::<Vec<u8>>()
    );
}

#[test]
fn a_follower_stopped_by_sigterm_commits_what_it_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(500, 14);
    append(&log, &[], input.clone());
    let out_path = dir.path().join("out.ndjson");
    let follower = Command::new(bin("log-tail"))
        .arg(&log)
        .args(["--group", "svc", "--follow", "-o"])
        .arg(&out_path)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0) < input.len() as u64 {
        assert!(Instant::now() < deadline, "the follower did not deliver");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(follower.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let mut follower = follower;
    assert!(
        follower.wait().unwrap().success(),
        "SIGTERM ends a follower cleanly"
    );
    assert_eq!(std::fs::read(&out_path).unwrap(), input);
    assert!(
        tail(&log, &["--group", "svc"]).is_empty(),
        "everything delivered was committed"
    );
}
