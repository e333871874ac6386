//! Exactly-once from log to log through ordinary filters: SIGKILL any
//! stage of `log-tail --resume-from | validate | enrich | log-append`, rerun
//! the same command lines, and the destinations end up as after one
//! uninterrupted run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{append, bin, cmd, nile_events, tail};
use serde_json::Value;

const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schemas");

/// Generated events with bad ones mixed in: some with a schema validate
/// cannot find, some with an address enrich cannot anonymize.
fn events_with_bad_ones(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in common::lines(&nile_events(n, 7)).into_iter().enumerate() {
        let text = std::str::from_utf8(line).unwrap();
        if i % 997 == 3 {
            out.extend_from_slice(
                text.replacen("iglu:com.nile/", "iglu:com.nile.unknown/", 1)
                    .as_bytes(),
            );
        } else if i % 1009 == 5 {
            let mut v: Value = serde_json::from_str(text).unwrap();
            v["data"]["shopper"]["ipAddress"] = "not-an-address".into();
            out.extend_from_slice(v.to_string().as_bytes());
        } else {
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
    out
}

/// The pipeline's stages, in order, each reading the one before.
fn stages(raw: &Path, out: &Path, bad: &Path) -> Vec<Command> {
    let mut tail = Command::new(bin("log-tail"));
    tail.arg(raw)
        .arg("--resume-from")
        .arg(out)
        .arg("--resume-from")
        .arg(bad);
    let mut validate = Command::new(bin("validate"));
    validate.args(["--registry", SCHEMAS, "--bad"]).arg(bad);
    let mut enrich = Command::new(bin("enrich"));
    enrich
        .args(["--anonymize-ip", "1", "--ip", ".data.shopper.ipAddress"])
        .arg("--event-id=content")
        .arg("--bad")
        .arg(bad);
    let mut append = Command::new(bin("log-append"));
    append.arg(out).arg("--bad").arg(bad);
    vec![tail, validate, enrich, append]
}

/// Starts the stages connected by pipes; each one's stderr goes to
/// `stage-I.stderr` in `logs`, for the message when a run fails.
fn start(mut stages: Vec<Command>, logs: &Path) -> Vec<Child> {
    let mut children: Vec<Child> = Vec::new();
    let last = stages.len() - 1;
    for (i, stage) in stages.iter_mut().enumerate() {
        if let Some(prev) = children.last_mut() {
            stage.stdin(Stdio::from(prev.stdout.take().unwrap()));
        } else {
            stage.stdin(Stdio::null());
        }
        stage.stdout(if i == last {
            Stdio::null()
        } else {
            Stdio::piped()
        });
        let err = std::fs::File::create(logs.join(format!("stage-{i}.stderr"))).unwrap();
        stage.stderr(Stdio::from(err));
        children.push(stage.spawn().unwrap());
    }
    children
}

/// Waits for every stage; returns whether all exited on their own (0 or 1).
/// What the stages of the last run said on stderr.
fn stderr_of(logs: &Path) -> String {
    (0..4)
        .map(|i| {
            let text =
                std::fs::read_to_string(logs.join(format!("stage-{i}.stderr"))).unwrap_or_default();
            format!("stage {i}: {}", text.trim())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn wait_all(children: &mut [Child]) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut clean = true;
    for child in children.iter_mut() {
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                clean &= matches!(status.code(), Some(0) | Some(1));
                break;
            }
            assert!(Instant::now() < deadline, "a stage did not end");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    clean
}

/// A small deterministic generator; the seed is printed so a failing run
/// can be repeated with UNILOG_KILL_SEED.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// out.log's events, grouped by source partition in append order.
fn by_source(log: &Path) -> BTreeMap<u64, Vec<String>> {
    let mut found: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for line in common::lines(&tail(log, &[])) {
        let v: Value = serde_json::from_slice(line).unwrap();
        let p = v["unilog"]["partition"]
            .as_u64()
            .expect("every event keeps its position");
        found
            .entry(p)
            .or_default()
            .push(String::from_utf8(line.to_vec()).unwrap());
    }
    found
}

/// bad.log's failure events without their failure time: (producer,
/// source partition, offset, original).
fn failures(log: &Path) -> Vec<(String, u64, u64, String)> {
    let mut found = Vec::new();
    for line in common::lines(&tail(log, &[])) {
        let v: Value = serde_json::from_slice(line).unwrap();
        let by = v["unilog"]["by"].as_str().unwrap_or("?").to_string();
        found.push((
            by,
            v["unilog"]["partition"].as_u64().unwrap_or(u64::MAX),
            v["unilog"]["offset"].as_u64().unwrap_or(u64::MAX),
            v["data"]["original"].to_string(),
        ));
    }
    found.sort();
    found
}

fn make_logs(dir: &Path, name: &str, input: &[u8]) -> (PathBuf, PathBuf, PathBuf) {
    let raw = dir.join(format!("{name}-raw.log"));
    let out = dir.join(format!("{name}-out.log"));
    let bad = dir.join(format!("{name}-bad.log"));
    append(
        &raw,
        &["--partitions", "3", "--key", ".data.shopper.id"],
        input.to_vec(),
    );
    append(&bad, &[], Vec::new());
    (raw, out, bad)
}

#[test]
fn killing_any_stage_at_random_and_rerunning_loses_and_repeats_nothing() {
    let n: u64 = std::env::var("UNILOG_KILL_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500_000);
    let rounds: u64 = std::env::var("UNILOG_KILL_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed = std::env::var("UNILOG_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill test: {n} events, {rounds} rounds, UNILOG_KILL_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    let input = events_with_bad_ones(n);

    // The reference: one uninterrupted run, timed to aim the kills.
    let (raw, ref_out, ref_bad) = make_logs(dir.path(), "ref", &input);
    let began = Instant::now();
    let mut children = start(stages(&raw, &ref_out, &ref_bad), dir.path());
    assert!(
        wait_all(&mut children),
        "the uninterrupted run failed:\n{}",
        stderr_of(dir.path())
    );
    let whole_run_ms = began.elapsed().as_millis().max(50) as u64;

    // The same source (a copy keeps its log id), killed over and over.
    let raw_copy = dir.path().join("raw.log");
    let status = Command::new("cp")
        .arg("-a")
        .arg(&raw)
        .arg(&raw_copy)
        .status()
        .unwrap();
    assert!(status.success());
    let out = dir.path().join("out.log");
    let bad = dir.path().join("bad.log");
    append(&bad, &[], Vec::new());
    let mut rng = Rng(seed);
    let mut killed = BTreeMap::<&str, u32>::new();
    let names = ["log-tail", "validate", "enrich", "log-append"];
    for _ in 0..rounds {
        let mut children = start(stages(&raw_copy, &out, &bad), dir.path());
        // Most kills land within a whole run's time; every round makes
        // some progress, so the rounds cover the run from start to end.
        let wait = rng.below(whole_run_ms / 4 + 20);
        std::thread::sleep(Duration::from_millis(wait));
        let victim = rng.below(children.len() as u64) as usize;
        let _ = children[victim].kill();
        *killed.entry(names[victim]).or_default() += 1;
        wait_all(&mut children);
    }
    eprintln!("killed: {killed:?}");
    let mut children = start(stages(&raw_copy, &out, &bad), dir.path());
    assert!(
        wait_all(&mut children),
        "the last, uninterrupted rerun failed:\n{}",
        stderr_of(dir.path())
    );

    let want = by_source(&ref_out);
    let got = by_source(&out);
    let total: usize = want.values().map(Vec::len).sum();
    assert!(total > 0);
    assert_eq!(
        got.values().map(Vec::len).sum::<usize>(),
        total,
        "out.log holds a different number of events"
    );
    for (p, events) in &want {
        assert!(
            got.get(p) == Some(events),
            "partition {p}'s events differ from the reference run"
        );
    }
    let want_bad = failures(&ref_bad);
    let got_bad = failures(&bad);
    assert!(want_bad.len() > 10, "the input has bad events");
    let extra: Vec<_> = got_bad
        .iter()
        .filter(|f| !want_bad.contains(f))
        .take(3)
        .collect();
    let missing: Vec<_> = want_bad
        .iter()
        .filter(|f| !got_bad.contains(f))
        .take(3)
        .collect();
    assert_eq!(
        got_bad.len(),
        want_bad.len(),
        "bad.log holds a different number of failures; extra {extra:?}, missing {missing:?}"
    );
    assert_eq!(got_bad, want_bad);
    let unique: BTreeSet<_> = got_bad.iter().collect();
    assert_eq!(unique.len(), got_bad.len(), "no failure twice");
}

#[test]
fn an_event_that_kills_a_filter_is_processed_after_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut input = nile_events(2000, 3);
    let poison = br#"{"schema":"iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0","data":{"poison":true}}"#;
    input.extend_from_slice(poison);
    input.push(b'\n');
    input.extend_from_slice(&nile_events(2000, 4));
    let (raw, out, bad) = make_logs(dir.path(), "p", &input);
    // A stage that dies on the poison event, as a filter with a bug would.
    let crash = dir.path().join("crashing-filter.sh");
    std::fs::write(
        &crash,
        "#!/bin/sh\nwhile IFS= read -r line; do case \"$line\" in *'\"poison\":true'*) [ -n \"$FIXED\" ] || kill -9 $$;; esac; printf '%s\\n' \"$line\"; done\n",
    )
    .unwrap();
    let run = |fixed: bool| {
        let mut tail = Command::new(bin("log-tail"));
        tail.arg(&raw)
            .arg("--resume-from")
            .arg(&out)
            .arg("--resume-from")
            .arg(&bad);
        let mut filter = Command::new("sh");
        filter.arg(&crash);
        if fixed {
            filter.env("FIXED", "1");
        }
        let mut append = Command::new(bin("log-append"));
        append.arg(&out).arg("--bad").arg(&bad);
        let mut children = start(vec![tail, filter, append], dir.path());
        wait_all(&mut children)
    };
    assert!(!run(false), "the filter dies on the poison event");
    let before = common::lines(&tail(&out, &[])).len();
    assert!(
        before < 4001,
        "not everything got through the broken filter"
    );
    assert!(
        !run(false),
        "a rerun of the broken pipeline stops at the same event, not past it"
    );
    assert!(run(true));
    let events = tail(&out, &[]);
    let lines = common::lines(&events);
    assert_eq!(
        lines.len(),
        4001,
        "every event, the poison one too, exactly once"
    );
    assert!(lines
        .iter()
        .any(|l| l.windows(13).any(|w| w == br#""poison":true"#)));
    let offsets: BTreeSet<(u64, u64)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            (
                v["unilog"]["partition"].as_u64().unwrap(),
                v["unilog"]["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(offsets.len(), 4001, "no source position twice");
}

#[test]
fn the_same_positioned_input_appended_twice_is_appended_once() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.log");
    append(&raw, &["--partitions", "2"], nile_events(300, 5));
    let positioned = tail(&raw, &["--with-position"]);
    let out = dir.path().join("out.log");
    append(&out, &[], positioned.clone());
    let second = cmd("log-append")
        .arg(&out)
        .arg("-v")
        .write_stdin(positioned.clone())
        .output()
        .unwrap();
    assert!(second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("300 events were dropped as duplicates"),
        "{stderr}"
    );
    // Fed again in one input, and with the marks file removed (as a crash
    // before it was saved leaves it): the records themselves are the truth.
    std::fs::remove_file(out.join("producers/log-append.json")).unwrap();
    let mut twice = positioned.clone();
    twice.extend_from_slice(&positioned);
    append(&out, &[], twice);
    assert_eq!(common::lines(&tail(&out, &[])).len(), 300);
    // A second producer name keeps marks of its own: a different writer.
    append(&out, &["--producer", "backfill"], positioned);
    assert_eq!(common::lines(&tail(&out, &[])).len(), 600);
}

#[test]
fn resume_from_refuses_what_is_not_a_destination_and_needs_positions_from_a_log() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.log");
    append(&raw, &[], nile_events(10, 5));
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    let out = cmd("log-tail")
        .arg(&raw)
        .arg("--resume-from")
        .arg(dir.path().join("notes.txt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not a destination"), "{stderr}");
    // A destination not made yet holds nothing: everything, with positions.
    let all = tail(
        &raw,
        &[
            "--resume-from",
            dir.path().join("new.log").to_str().unwrap(),
        ],
    );
    let lines = common::lines(&all);
    assert_eq!(lines.len(), 10);
    assert!(lines[0].starts_with(br#"{"unilog":{"log":""#));
}

#[test]
fn several_events_from_one_input_are_numbered_and_each_appended_once() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.log");
    let disk = |host: &str, free: u32| {
        format!(
            r#"{{"schema":"iglu:com.acme/disk_space/jsonschema/1-0-0","data":{{"host":"{host}","mount":"/var","free_percent":{free},"owner":"ops@example.com"}}}}"#
        )
    };
    append(&raw, &[], format!("{}\n{}\n", disk("a", 5), disk("b", 50)));
    let rules = dir.path().join("rules.json");
    std::fs::write(
        &rules,
        r#"{"rules":[
          {"id":"disk-low","when":".data.free_percent < 10","summary":"{{.data.host}} low","recipient":{"email":"ops@example.com"}},
          {"id":"disk-any","when":".data.free_percent < 100","summary":"{{.data.host}} seen","recipient":{"email":"ops@example.com"}}]}"#,
    )
    .unwrap();
    let decide = || {
        let positioned = tail(&raw, &["--with-position"]);
        let out = cmd("alert")
            .arg("--rule")
            .arg(&rules)
            .write_stdin(positioned)
            .output()
            .unwrap();
        common::assert_success(&out);
        out.stdout
    };
    let commands = decide();
    let subs: Vec<(u64, u64)> = common::lines(&commands)
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_slice(l).unwrap();
            (
                v["unilog"]["offset"].as_u64().unwrap(),
                v["unilog"]["sub"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        subs,
        [(0, 0), (0, 1), (1, 0)],
        "two commands from offset 0, numbered"
    );
    let out = dir.path().join("commands.log");
    append(&out, &[], commands);
    append(&out, &[], decide());
    assert_eq!(
        common::lines(&tail(&out, &[])).len(),
        3,
        "a replay appends none of them again"
    );
}
