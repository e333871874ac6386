//! The file log under attack and damage, through the real binaries: links
//! planted in the log, acknowledged records damaged, retention racing a
//! reader, a lost `log.json`, groups past the end, a vanished `--offsets`
//! reader, and the smaller edges of issue 9.

mod common;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{append, bin, cmd, lines, nile_events, shell, tail};
use predicates::prelude::*;

fn segment0(log: &Path) -> PathBuf {
    log.join("partition-0/00000000000000000000.log")
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_symlinked_segment_is_never_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &[], nile_events(100, 1));
    let precious = dir.path().join("precious.txt");
    fs::write(&precious, b"not yours\n").unwrap();
    fs::remove_file(segment0(&log)).unwrap();
    symlink(&precious, segment0(&log)).unwrap();
    let out = cmd("log-append")
        .arg(&log)
        .write_stdin("{\"x\":1}\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("is a symbolic link"), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("damaged log"), "{}", stderr_of(&out));
    assert_eq!(fs::read(&precious).unwrap(), b"not yours\n", "the target is untouched");
    cmd("log-tail")
        .arg(&log)
        .arg("--verify")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("symbolic link"));
    cmd("log-tail")
        .arg(&log)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("symbolic link"));
}

#[test]
fn links_and_odd_files_anywhere_in_the_log_are_damage() {
    let dir = tempfile::tempdir().unwrap();
    let precious = dir.path().join("precious.txt");
    fs::write(&precious, b"keep\n").unwrap();
    let fresh = |name: &str| {
        let log = dir.path().join(name);
        append(&log, &[], nile_events(50, 2));
        tail(&log, &["--group", "g", "--count", "10"]);
        log
    };
    let replace = |path: &Path| {
        fs::remove_file(path).unwrap();
        symlink(&precious, path).unwrap();
    };
    // log.json
    let log = fresh("a.log");
    replace(&log.join("log.json"));
    cmd("log-append").arg(&log).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("symbolic link"));
    // an index
    let log = fresh("b.log");
    replace(&log.join("partition-0/00000000000000000000.index"));
    cmd("log-tail").arg(&log).args(["--from", "40"]).assert().code(2)
        .stderr(predicate::str::contains("symbolic link"));
    // a group file
    let log = fresh("c.log");
    replace(&log.join("groups/g.json"));
    cmd("log-tail").arg(&log).args(["--group", "g"]).assert().code(2)
        .stderr(predicate::str::contains("symbolic link"));
    // a lock file
    let log = fresh("d.log");
    replace(&log.join("partition-0/.lock"));
    cmd("log-append").arg(&log).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("symbolic link"));
    // a partition directory
    let log = fresh("e.log");
    let moved = dir.path().join("elsewhere");
    fs::rename(log.join("partition-0"), &moved).unwrap();
    symlink(&moved, log.join("partition-0")).unwrap();
    cmd("log-append").arg(&log).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("symbolic link"));
    // a FIFO as a segment: refused at once, not waited on
    let log = fresh("f.log");
    fs::remove_file(segment0(&log)).unwrap();
    let status = Command::new("mkfifo").arg(segment0(&log)).status().unwrap();
    assert!(status.success());
    cmd("log-tail").arg(&log).timeout(Duration::from_secs(20)).assert().code(2)
        .stderr(predicate::str::contains("a FIFO"));
    assert_eq!(fs::read(&precious).unwrap(), b"keep\n");
}

#[test]
fn damage_to_acknowledged_records_is_never_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(1000, 3);
    append(&log, &[], input.clone());
    // A group reads everything: it must not be left past a shortened end.
    assert_eq!(tail(&log, &["--group", "g"]), input);
    let seg = segment0(&log);
    let mut bytes = fs::read(&seg).unwrap();
    let len = bytes.len();
    for b in &mut bytes[len - 20_000..] {
        *b = 0;
    }
    fs::write(&seg, &bytes).unwrap();
    let out = cmd("log-tail").arg(&log).arg("--verify").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("recovery point"), "{}", stderr_of(&out));
    let out = cmd("log-append")
        .arg(&log)
        .write_stdin("{\"after\":1}\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("lost acknowledged records"), "{}", stderr_of(&out));
    assert_eq!(fs::read(&seg).unwrap(), bytes, "nothing was truncated or appended");
    cmd("log-tail").arg(&log).assert().code(2)
        .stderr(predicate::str::contains("recovery point"));
    // Deleting the newest segment is the same damage.
    let log2 = dir.path().join("two.log");
    append(&log2, &["--segment-bytes", "16KiB"], nile_events(500, 4));
    let p0 = log2.join("partition-0");
    let mut segs: Vec<_> = fs::read_dir(&p0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    segs.sort();
    fs::remove_file(segs.last().unwrap()).unwrap();
    cmd("log-append").arg(&log2).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("lost acknowledged records"));
}

#[test]
fn a_torn_tail_past_the_recovery_point_is_still_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let input = nile_events(100, 5);
    append(&log, &[], input.clone());
    let mut f = fs::OpenOptions::new().append(true).open(segment0(&log)).unwrap();
    f.write_all(b"100\t17\tfeedbeef\t{\"half\":").unwrap();
    drop(f);
    cmd("log-tail").arg(&log).arg("--verify").assert().success()
        .stderr(predicate::str::contains("torn tail"));
    cmd("log-append").arg(&log).write_stdin("{\"after\":true}\n").assert().success()
        .stderr(predicate::str::contains("removed a torn record"));
    let mut expected = input;
    expected.extend_from_slice(b"{\"after\":true}\n");
    assert_eq!(tail(&log, &[]), expected);
    assert!(log.join("partition-0/recovery-point").is_file());
}

#[test]
fn a_reader_behind_retention_says_what_it_missed_and_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    let first = nile_events(20_000, 6);
    append(&log, &["--segment-bytes", "64KiB"], first.clone());
    // A reader that stalls on a full pipe a few segments in.
    let mut reader = Command::new(bin("log-tail"))
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    // Retention now deletes the segments it was about to read.
    let second = nile_events(2000, 7);
    append(&log, &["--retention-bytes", "1MiB"], second.clone());
    let mut out = Vec::new();
    reader.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let mut err = String::new();
    reader.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = reader.wait().unwrap();
    assert!(status.success(), "{err}");
    assert!(!err.contains("corrupt"), "{err}");
    let missed: u64 = err
        .split("partition 0: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of missed events in {err:?}"));
    assert!(err.contains("deleted by retention before they were read"), "{err}");
    assert!(missed > 0);
    let got = lines(&out);
    let mut all = lines(&first);
    all.extend(lines(&second));
    assert_eq!(got.len() as u64 + missed, all.len() as u64, "{err}");
    // What it read is the log with one gap, in order.
    let gap_at = got.iter().zip(&all).take_while(|(a, b)| a == b).count();
    assert_eq!(got[gap_at..], all[gap_at + missed as usize..]);
}

#[test]
fn a_group_behind_retention_warns_or_stops_with_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &["--segment-bytes", "64KiB"], nile_events(3000, 8));
    assert_eq!(lines(&tail(&log, &["--group", "g", "--count", "10"])).len(), 10);
    append(&log, &["--retention-bytes", "256KiB"], nile_events(3000, 9));
    let positions = String::from_utf8(tail(&log, &["--positions"])).unwrap();
    let start: u64 = positions.lines().nth(1).unwrap().split('\t').nth(1).unwrap().parse().unwrap();
    assert!(start > 10, "{positions}");
    let out = cmd("log-tail").arg(&log).args(["--group", "g", "--missed", "stop"]).output().unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains(&format!("{} events (offsets 10 to {})", start - 10, start - 1)), "{err}");
    assert!(err.contains("--missed stop"), "{err}");
    assert!(out.stdout.is_empty());
    // The group stayed before the gap; the default goes on from the start.
    let out = cmd("log-tail").arg(&log).args(["--group", "g"]).output().unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("deleted by retention"), "{}", stderr_of(&out));
    assert_eq!(lines(&out.stdout).len() as u64, 6000 - start);
}

#[test]
fn a_lost_or_disagreeing_log_json_is_a_damaged_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &["--partitions", "2"], nile_events(100, 10));
    let config = fs::read(log.join("log.json")).unwrap();
    fs::remove_file(log.join("log.json")).unwrap();
    cmd("log-append").arg(&log).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("damaged log").and(predicate::str::contains("no log.json")));
    assert!(!log.join("log.json").exists(), "not recreated with defaults");
    cmd("log-tail").arg(&log).assert().code(2)
        .stderr(predicate::str::contains("damaged log"));
    fs::write(log.join("log.json"), &config).unwrap();
    // A count edited down hides a partition: refused.
    let edited = String::from_utf8(config.clone()).unwrap().replace("\"partitions\": 2", "\"partitions\": 1");
    assert_ne!(edited.as_bytes(), &config[..]);
    fs::write(log.join("log.json"), edited).unwrap();
    cmd("log-tail").arg(&log).assert().code(2)
        .stderr(predicate::str::contains("partition-1"));
    fs::write(log.join("log.json"), &config).unwrap();
    // A removed partition is not recreated empty.
    let moved = dir.path().join("p1");
    fs::rename(log.join("partition-1"), &moved).unwrap();
    cmd("log-append").arg(&log).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("partition 1 is missing"));
    assert!(!log.join("partition-1").exists());
    fs::rename(&moved, log.join("partition-1")).unwrap();
    // --partitions that disagrees with the log is an error, not ignored.
    cmd("log-append").arg(&log).args(["--partitions", "3"]).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("already exists with 2 partitions"));
    cmd("log-append").arg(&log).args(["--partitions", "2"]).write_stdin("{}\n").assert().success();
    assert_eq!(lines(&tail(&log, &[])).len(), 101);
    // A non-empty directory that is not a log is not made into one.
    let other = dir.path().join("docs");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), b"mine").unwrap();
    cmd("log-append").arg(&other).write_stdin("{}\n").assert().code(2)
        .stderr(predicate::str::contains("not empty"));
}

#[test]
fn many_processes_creating_one_log_agree() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("new.log");
    let children: Vec<_> = (0..6)
        .map(|i| {
            let mut child = Command::new(bin("log-append"))
                .arg(&log)
                .args(["--partitions", "3"])
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            writeln!(child.stdin.take().unwrap(), "{{\"w\":{i}}}").unwrap();
            child
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
    }
    assert_eq!(lines(&tail(&log, &[])).len(), 6);
    let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from("new.log")], "no staging left");
}

#[test]
fn a_group_past_the_end_is_reported_and_can_be_reset() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &[], nile_events(100, 11));
    tail(&log, &["--group", "g"]);
    let group = log.join("groups/g.json");
    let text = fs::read_to_string(&group).unwrap().replace("100", "5000");
    fs::write(&group, text).unwrap();
    cmd("log-tail").arg(&log).args(["--group", "g"]).assert().code(2)
        .stderr(predicate::str::contains("past its end (100)").and(predicate::str::contains("--reset-to end")));
    let out = cmd("log-tail").arg(&log).args(["--group", "g", "--positions"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stdout).contains("past-end"));
    cmd("log-tail").arg(&log).args(["--group", "g", "--reset-to", "900"]).assert().code(2)
        .stderr(predicate::str::contains("ends at offset 100"));
    tail(&log, &["--group", "g", "--reset-to", "end"]);
    append(&log, &[], "{\"new\":1}\n");
    assert_eq!(tail(&log, &["--group", "g"]), b"{\"new\":1}\n");
}

#[test]
fn offsets_whose_reader_goes_away_still_append_everything() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("in.ndjson"), nile_events(300_000, 12)).unwrap();
    let out = shell(
        "log-append raw.log --offsets < in.ndjson | head -1 > first.txt; echo \"status=${PIPESTATUS[0]}\"",
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = stderr_of(&out);
    assert!(stdout.contains("status=0"), "{stdout} {stderr}");
    assert!(stderr.contains("were not printed"), "{stderr}");
    assert!(stderr.contains("every event was appended (300000)"), "{stderr}");
    assert_eq!(lines(&tail(&dir.path().join("raw.log"), &[])).len(), 300_000);
    assert_eq!(fs::read_to_string(dir.path().join("first.txt")).unwrap(), "{\"partition\":0,\"offset\":0}\n");
}

#[test]
fn verify_counts_the_good_records_before_damage() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &[], nile_events(1000, 13));
    let seg = segment0(&log);
    let mut bytes = fs::read(&seg).unwrap();
    let at: usize = lines(&bytes)[..908].iter().map(|l| l.len() + 1).sum();
    bytes[at + 50] ^= 0x20;
    fs::write(&seg, &bytes).unwrap();
    cmd("log-tail").arg(&log).arg("--verify").assert().code(2)
        .stderr(predicate::str::contains("DAMAGED after 908 good records"));
    // An append to a partition damaged in the middle is refused.
    let out = cmd("log-append").arg(&log).write_stdin("{}\n").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("damaged log"), "{}", stderr_of(&out));
    assert_eq!(fs::read(&seg).unwrap(), bytes);
}

#[test]
fn a_failed_group_commit_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("raw.log"), &[], nile_events(20, 14));
    // A file-size limit of 0 makes every write to a file fail, as on a
    // full disk (EFBIG instead of ENOSPC); SIGXFSZ is ignored so the write
    // returns the error.
    let out = shell(
        "trap '' XFSZ; ulimit -f 0; log-tail raw.log --group g > /dev/null",
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("cannot commit group"), "{}", stderr_of(&out));
    let names: Vec<String> = fs::read_dir(dir.path().join("raw.log/groups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn round_robin_starts_on_a_different_partition_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("raw.log");
    append(&log, &["--partitions", "4"], "");
    for i in 0..20 {
        append(&log, &[], format!("{{\"i\":{i}}}\n"));
    }
    let used = (0..4)
        .filter(|p| !tail(&log, &["--partition", &p.to_string()]).is_empty())
        .count();
    assert!(used > 1, "20 one-event appends all landed on one partition");
}

#[test]
fn a_closed_stdin_is_an_error_not_empty_input() {
    let dir = tempfile::tempdir().unwrap();
    append(&dir.path().join("raw.log"), &[], "");
    let out = shell("log-append raw.log <&-; echo \"closed=$?\"; log-append raw.log </dev/null; echo \"null=$?\"", dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("closed=2"), "{stdout} {}", stderr_of(&out));
    assert!(stdout.contains("null=0"), "{stdout} {}", stderr_of(&out));
    assert!(stderr_of(&out).contains("stdin is closed"), "{}", stderr_of(&out));
}

#[test]
fn bad_into_dev_null_a_pipe_or_a_fifo_works() {
    let dir = tempfile::tempdir().unwrap();
    let input = "{\"ok\":1}\nnot json\n{\"ok\":2}\n";
    fs::write(dir.path().join("in.ndjson"), input).unwrap();
    let out = shell(
        "log-append a.log --bad /dev/null < in.ndjson; echo \"null=$?\"; \
         log-append b.log --bad /dev/stdout < in.ndjson | cat > piped.txt; echo \"pipe=${PIPESTATUS[0]}\"; \
         log-append c.log --bad >(cat > subst.txt) < in.ndjson; echo \"subst=$?\"; \
         mkfifo fifo; (cat fifo > fifo.txt &); log-append d.log --bad fifo < in.ndjson; echo \"fifo=$?\"; sleep 0.3",
        dir.path(),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in ["null=1", "pipe=1", "subst=1", "fifo=1"] {
        assert!(stdout.contains(want), "{want}: {stdout} {}", stderr_of(&out));
    }
    assert!(!stderr_of(&out).contains("error"), "{}", stderr_of(&out));
    for f in ["piped.txt", "fifo.txt"] {
        let text = fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(text.contains("\"not json\""), "{f}: {text}");
    }
    for l in ["a.log", "b.log", "c.log", "d.log"] {
        assert_eq!(lines(&tail(&dir.path().join(l), &[])).len(), 2);
    }
}
