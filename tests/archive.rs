//! The `archive` binary: archive then replay byte for byte in every format,
//! exactly-once across SIGKILLs, verify's findings, other readers of the
//! Avro files, bad input, a full disk, time zones.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{assert_success, bin, cmd, lines, nile_events};
use serde_json::Value;
use unilog::position::{self, Position};

const LOG_ID: &str = "6f1c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b";

/// Nile events with positions, as `log-tail --with-position` gives them:
/// `partitions` partitions, dense offsets, append times one second apart.
fn positioned(n: u64, partitions: u32, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = vec![0u64; partitions as usize];
    for (i, line) in lines(&nile_events(n, seed)).into_iter().enumerate() {
        let p = (i as u32 * 7 + 3) % partitions;
        let pos = Position {
            log: LOG_ID.into(),
            partition: p,
            offset: offsets[p as usize],
            sub: 0,
            time_ms: Some(1_764_230_400_000 + i as i64 * 1000),
        };
        offsets[p as usize] += 1;
        position::write_with(&mut out, &pos, line);
        out.push(b'\n');
    }
    out
}

/// Lines grouped by source partition, in order.
fn by_partition(bytes: &[u8]) -> BTreeMap<u32, Vec<Vec<u8>>> {
    let mut m: BTreeMap<u32, Vec<Vec<u8>>> = BTreeMap::new();
    for l in lines(bytes) {
        let (p, _) = position::split(l).unwrap().expect("a position");
        m.entry(p.partition).or_default().push(l.to_vec());
    }
    m
}

fn archive(dir: &Path, args: &[&str], input: &[u8]) -> std::process::Output {
    let out = cmd("archive")
        .arg("--to")
        .arg(dir)
        .args(args)
        .write_stdin(input.to_vec())
        .output()
        .unwrap();
    out
}

fn replay(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = cmd("archive")
        .arg("--replay")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    assert_success(&out);
    out.stdout
}

fn verify_json(dir: &Path) -> (i32, Vec<Value>) {
    let out = cmd("archive")
        .arg("--verify")
        .arg(dir)
        .arg("--json")
        .output()
        .unwrap();
    let v = lines(&out.stdout)
        .into_iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    (out.status.code().unwrap_or(-1), v)
}

fn files_with(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    fn walk(d: &Path, ext: &str, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, ext, out);
            } else if p.to_string_lossy().ends_with(ext) {
                out.push(p);
            }
        }
    }
    walk(dir, ext, &mut out);
    out.sort();
    out
}

#[test]
fn archive_then_replay_is_byte_for_byte_in_every_format() {
    let input = positioned(3000, 3, 1);
    let plain: Vec<u8> = lines(&input)
        .into_iter()
        .flat_map(|l| {
            let mut rest = position::split(l).unwrap().unwrap().1;
            rest.push(b'\n');
            rest
        })
        .collect();
    for args in [
        &["--format", "avro", "--codec", "deflate"][..],
        &["--format", "avro", "--codec", "zstd"],
        &["--format", "avro", "--codec", "snappy"],
        &["--format", "avro", "--codec", "null"],
        &["--format", "ndjson.zst"],
        &["--format", "ndjson.gz"],
    ] {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        let out = archive(
            &root,
            &[args, &["--roll-events", "400", "--time", ".data.timestamp"]].concat(),
            &input,
        );
        assert_success(&out);
        let back = replay(&root, &["--with-position"]);
        assert_eq!(by_partition(&back), by_partition(&input), "{args:?}");
        let mut sorted_back = lines(&replay(&root, &[]))
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>();
        let mut sorted_plain = lines(&plain)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect::<Vec<_>>();
        sorted_back.sort();
        sorted_plain.sort();
        assert_eq!(sorted_back, sorted_plain, "{args:?}");
        let (code, report) = verify_json(&root);
        assert_eq!(code, 0, "{report:?}");
        let summary = report.last().unwrap();
        assert_eq!(summary["events"], 3000);
        assert_eq!(summary["findings"], 0);
        // Hive layout, schema by schema.
        let ext = if args[1] == "avro" { ".avro" } else { args[1] };
        let files = files_with(&root, ext);
        assert!(files.len() >= 8, "{files:?}");
        for f in &files {
            let rel = f
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(rel.starts_with("com.nile/shopper_"), "{rel}");
            assert!(rel.contains("/jsonschema-1/dt=2026-11-27/hr="), "{rel}");
            assert!(rel.contains(&format!("/{LOG_ID}+")), "{rel}");
        }
    }
}

#[test]
fn rolls_cut_the_same_files_from_the_same_input() {
    let input = positioned(2000, 2, 2);
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    for d in &dirs {
        assert_success(&archive(
            d.path(),
            &["--roll-events", "300", "--format", "ndjson.zst"],
            &input,
        ));
    }
    let names = |d: &Path| -> Vec<(String, Vec<u8>)> {
        files_with(d, ".ndjson.zst")
            .into_iter()
            .map(|f| {
                (
                    f.strip_prefix(d).unwrap().display().to_string(),
                    std::fs::read(&f).unwrap(),
                )
            })
            .collect()
    };
    let a = names(dirs[0].path());
    assert_eq!(a, names(dirs[1].path()));
    // No segment has more than 300 events; every file holds one segment.
    for (name, _) in &a {
        let range = name.rsplit('+').next().unwrap();
        let parts: Vec<u64> = range
            .trim_end_matches(".ndjson.zst")
            .split('-')
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(parts[2] - parts[1] < 300 * 2, "{name}");
    }
}

#[test]
fn positions_and_held_come_from_the_archive() {
    let input = positioned(500, 2, 3);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    assert!(!unilog::archive::is_archive(&root));
    assert_success(&archive(&root, &["--roll-events", "100"], &input));
    assert!(unilog::archive::is_archive(&root));
    let held = unilog::archive::held(&root).unwrap();
    let parts = by_partition(&input);
    for (p, evs) in &parts {
        let src = unilog::position::Source {
            log: LOG_ID.into(),
            partition: *p,
        };
        assert_eq!(held.resume_at(&src), Some(evs.len() as u64));
    }
    let out = cmd("archive")
        .arg("--positions")
        .arg(&root)
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text,
        format!(
            "log\tpartition\tnext\n{LOG_ID}\t0\t{}\n{LOG_ID}\t1\t{}\n",
            parts[&0].len(),
            parts[&1].len()
        )
    );
    let out = cmd("archive")
        .arg("--positions")
        .arg(&root)
        .arg("--json")
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[format!("{LOG_ID}/0")]["complete"], true);
    // A second run of the same input adds nothing.
    let before = files_with(&root, ".avro");
    let out = archive(&root, &["--roll-events", "100", "-v"], &input);
    assert_success(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("500 already held"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(files_with(&root, ".avro"), before);
}

#[test]
fn killed_runs_rerun_to_exactly_once() {
    let input = positioned(120_000, 3, 4);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    let file = dir.path().join("in.ndjson");
    std::fs::write(&file, &input).unwrap();
    let run = || {
        Command::new(bin("archive"))
            .arg("--to")
            .arg(&root)
            .args(["--roll-events", "2000", "--format", "ndjson.zst"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut seed = 12345u64;
    for _ in 0..6 {
        let mut child = run();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(std::time::Duration::from_millis(30 + (seed >> 33) % 250));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
    }
    let out = Command::new(bin("archive"))
        .arg("--to")
        .arg(&root)
        .args(["--roll-events", "2000", "--format", "ndjson.zst"])
        .arg(&file)
        .output()
        .unwrap();
    assert_success(&out);
    let (code, report) = verify_json(&root);
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(report.last().unwrap()["events"], 120_000);
    assert_eq!(
        by_partition(&replay(&root, &["--with-position"])),
        by_partition(&input)
    );
    assert!(files_with(&root, ".tmp").is_empty());
}

#[test]
fn a_killed_pipeline_from_a_log_resumes_from_the_archive_itself() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw.log");
    common::append(
        &raw,
        &["--partitions", "3", "--key", ".data.shopper.id"],
        nile_events(60_000, 9),
    );
    let want = common::tail(&raw, &["--with-position"]);
    let root = dir.path().join("a");
    let start = || {
        let mut tail = Command::new(bin("log-tail"))
            .arg(&raw)
            .arg("--resume-from")
            .arg(&root)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let archive = Command::new(bin("archive"))
            .arg("--to")
            .arg(&root)
            .args(["--roll-events", "1500", "--format", "avro"])
            .stdin(tail.stdout.take().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        vec![tail, archive]
    };
    let mut seed = 777u64;
    for _ in 0..8 {
        let mut stages = start();
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(std::time::Duration::from_millis(20 + (seed >> 33) % 300));
        let _ = stages[((seed >> 20) % 2) as usize].kill();
        for s in &mut stages {
            let _ = s.wait();
        }
    }
    for mut s in start() {
        assert!(s.wait().unwrap().success());
    }
    let (code, report) = verify_json(&root);
    assert_eq!(code, 0, "{report:?}");
    assert_eq!(report.last().unwrap()["events"], 60_000);
    assert_eq!(
        by_partition(&replay(&root, &["--with-position"])),
        by_partition(&want)
    );
}

#[test]
fn verify_finds_gaps_duplicates_and_overlaps() {
    let input = positioned(1000, 1, 5);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    assert_success(&archive(
        &root,
        &["--roll-events", "100", "--format", "ndjson.gz"],
        &input,
    ));
    let files = files_with(&root, ".ndjson.gz");
    let kinds = |root: &Path| -> Vec<String> {
        let (code, v) = verify_json(root);
        assert_eq!(code, 1, "{v:?}");
        v.iter()
            .map(|x| x["kind"].as_str().unwrap().to_string())
            .collect()
    };
    // A removed file: a gap (and a file its manifest misses).
    let gone = files
        .iter()
        .find(|f| f.to_string_lossy().contains("-00000000000000000300-"))
        .unwrap();
    let kept = std::fs::read(gone).unwrap();
    std::fs::remove_file(gone).unwrap();
    let k = kinds(&root);
    assert!(k.contains(&"missing_file".to_string()), "{k:?}");
    std::fs::write(gone, &kept).unwrap();
    assert_eq!(verify_json(&root).0, 0);
    // A copied file: its events twice.
    let src = &files[0];
    let other_hour = src.parent().unwrap().parent().unwrap().join("hr=23");
    std::fs::create_dir_all(&other_hour).unwrap();
    let copy = other_hour.join(src.file_name().unwrap());
    std::fs::copy(src, &copy).unwrap();
    let k = kinds(&root);
    assert!(
        k.contains(&"duplicate".to_string()) && k.contains(&"unlisted_file".to_string()),
        "{k:?}"
    );
    std::fs::remove_file(&copy).unwrap();
    // An overlapping range.
    let name = src
        .file_name()
        .unwrap()
        .to_string_lossy()
        .replace("-00000000000000000000-", "-00000000000000000050-");
    let name = name.replace("-00000000000000000099.", "-00000000000000000149.");
    std::fs::copy(src, src.with_file_name(&name)).unwrap();
    let k = kinds(&root);
    assert!(k.contains(&"overlap".to_string()), "{k:?}");
    let text = cmd("archive").arg("--verify").arg(&root).output().unwrap();
    assert_eq!(text.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&text.stdout).contains("overlap:"));
}

#[test]
fn bad_input_becomes_failure_events_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    let bad = dir.path().join("bad.ndjson");
    let input = concat!(
        r#"{"schema":"iglu:com.nile/x/jsonschema/1-0-0","data":{"t":"2026-11-27T10:00:00Z"}}"#,
        "\n",
        r#"{"schema":"iglu:com.nile/x/jsonschema/1-0-0","data":{}}"#,
        "\n",
        r#"{"schema":"iglu:com.nile/x/jsonschema/1-0-0","data":{"t":"yesterday"}}"#,
        "\n",
        r#"{"schema":"iglu:com.plum/health_check/avro/1-0-0","data":{"machine":{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"T"},"status":"BROKEN","checkedAt":1764237600000,"t":"2026-11-27T10:00:00Z"}}"#,
        "\n",
        "not json\n",
    );
    let out = cmd("archive")
        .arg("--to")
        .arg(&root)
        .args([
            "--time",
            ".data.t",
            "--registry",
            "examples/schemas",
            "--bad",
        ])
        .arg(&bad)
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failures: Vec<Value> = lines(&std::fs::read(&bad).unwrap())
        .into_iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    let kinds: Vec<&str> = failures
        .iter()
        .map(|f| f["data"]["errors"][0]["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["time_missing", "time_invalid", "avro_mismatch", "not_json"]
    );
    let avro = &failures[2]["data"]["errors"];
    assert!(avro.to_string().contains("BROKEN"), "{avro}");
    assert_eq!(
        replay(&root, &[]),
        lines(input.as_bytes())[0]
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>()
    );
}

#[test]
fn periods_follow_the_time_zone_across_daylight_saving_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    let ev = |t: &str| {
        format!(r#"{{"schema":"iglu:com.nile/x/jsonschema/1-0-0","data":{{"t":"{t}"}}}}"#)
    };
    let input = [
        "2026-11-01T05:30:00Z", // 01:30 EDT
        "2026-11-01T06:30:00Z", // 01:30 EST: the same local hour again
        "2026-11-01T07:30:00Z", // 02:30 EST
        "2026-03-08T06:59:00Z", // 01:59 EST
        "2026-03-08T07:00:00Z", // 03:00 EDT: 02:00 never happened
    ]
    .map(ev)
    .join("\n");
    let out = cmd("archive")
        .arg("--to")
        .arg(&root)
        .args([
            "--time",
            ".data.t",
            "--tz",
            "America/New_York",
            "--format",
            "ndjson.gz",
        ])
        .write_stdin(input + "\n")
        .output()
        .unwrap();
    assert_success(&out);
    let dirs: Vec<String> = files_with(&root, ".ndjson.gz")
        .iter()
        .map(|f| {
            f.parent()
                .unwrap()
                .strip_prefix(&root)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(
        dirs,
        [
            "com.nile/x/jsonschema-1/dt=2026-03-08/hr=01",
            "com.nile/x/jsonschema-1/dt=2026-03-08/hr=03",
            "com.nile/x/jsonschema-1/dt=2026-11-01/hr=01",
            "com.nile/x/jsonschema-1/dt=2026-11-01/hr=02",
        ]
    );
    // The layout is the archive's: another zone is refused.
    let out = cmd("archive")
        .arg("--to")
        .arg(&root)
        .args(["--time", ".data.t"])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tz America/New_York"));
}

/// The Python the test set-up installed fastavro and duckdb into.
fn python_with(module: &str) -> Option<PathBuf> {
    let py = common::python();
    let ok = Command::new(&py)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        // The test command (scripts/test.sh) installs it: there, missing is a failure.
        assert!(
            std::env::var_os("UNILOG_TEST_PYTHON").is_none(),
            "{module} is not installed for {} though scripts/test.sh set it up",
            py.display()
        );
        eprintln!(
            "skipped: {module} is not installed for {} (run scripts/install-test-deps.sh)",
            py.display()
        );
        return None;
    }
    Some(py)
}

fn fastavro(py: &Path, files: &[PathBuf]) -> Vec<Value> {
    let out = Command::new(py)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/read_avro.py"))
        .args(files)
        .output()
        .unwrap();
    assert_success(&out);
    lines(&out.stdout)
        .into_iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect()
}

#[test]
fn fastavro_reads_the_same_records_count_and_schema() {
    let Some(py) = python_with("fastavro") else {
        return;
    };
    let input = positioned(2000, 2, 6);
    for codec in ["deflate", "zstd", "snappy", "null"] {
        if codec == "zstd" || codec == "snappy" {
            // fastavro reads these through optional packages.
            let module = if codec == "zstd" {
                "zstandard"
            } else {
                "cramjam"
            };
            if python_with(module).is_none() {
                continue;
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a");
        assert_success(&archive(
            &root,
            &["--codec", codec, "--roll-events", "500"],
            &input,
        ));
        let files = files_with(&root, ".avro");
        let read = fastavro(&py, &files);
        let mut events = Vec::new();
        let mut count = 0;
        for f in &read {
            assert_eq!(f["name"], "io.unilog.archive.Event", "{codec}");
            assert_eq!(
                f["fields"],
                serde_json::json!(["unilog", "time", "schema", "event"])
            );
            assert_eq!(
                f["codec"],
                if codec == "zstd" { "zstandard" } else { codec }
            );
            count += f["count"].as_u64().unwrap();
            for r in f["records"].as_array().unwrap() {
                let p = &r["unilog"];
                let pos = Position {
                    log: p["log"].as_str().unwrap().into(),
                    partition: p["partition"].as_u64().unwrap() as u32,
                    offset: p["offset"].as_u64().unwrap(),
                    sub: p["sub"].as_u64().unwrap() as u32,
                    time_ms: p["time"].as_i64(),
                };
                let mut line = Vec::new();
                position::write_with(&mut line, &pos, r["event"].as_str().unwrap().as_bytes());
                line.push(b'\n');
                events.extend(line);
            }
        }
        assert_eq!(count, 2000);
        // Files are read schema by schema: compare each partition's events
        // in offset order.
        let sorted = |m: BTreeMap<u32, Vec<Vec<u8>>>| -> BTreeMap<u32, Vec<Vec<u8>>> {
            m.into_iter()
                .map(|(p, mut v)| {
                    v.sort_by_key(|l| position::split(l).unwrap().unwrap().0.offset);
                    (p, v)
                })
                .collect()
        };
        assert_eq!(
            sorted(by_partition(&events)),
            by_partition(&input),
            "{codec}"
        );
    }
}

#[test]
fn typed_avro_files_read_by_fastavro_and_replayed_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    let mut input = String::new();
    for i in 0..50 {
        let temp = if i % 3 == 0 {
            "null".to_string()
        } else {
            format!("{{\"double\":{}.5}}", 60 + i)
        };
        // Every fifth event is written the other way round (Avro's JSON
        // encoding has every field, defaults or not): still replayed exactly.
        if i % 5 == 0 {
            input.push_str(&format!(
                r#"{{"data":{{"machine":{{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"Tilburg","ipAddress":null}},"status":"OK","temperatureC":null,"checkedAt":{},"readings":{{}},"alarms":[]}},"schema":"iglu:com.plum/health_check/avro/1-0-0"}}"#,
                1_764_237_600_000i64 + i * 60_000
            ));
        } else {
            input.push_str(&format!(
                r#"{{"schema":"iglu:com.plum/health_check/avro/1-0-0","data":{{"machine":{{"id":"0f8c2a4e-5b6d-4e7f-8a9b-0c1d2e3f4a5b","factory":"Tilburg","ipAddress":{{"string":"10.0.0.{i}"}}}},"status":"DEGRADED","temperatureC":{temp},"checkedAt":{},"readings":{{"fan":{i}.25}},"alarms":["heat"]}}}}"#,
                1_764_237_600_000i64 + i * 60_000
            ));
        }
        input.push('\n');
    }
    let out = cmd("archive")
        .arg("--to")
        .arg(&root)
        .args([
            "--time",
            ".data.checkedAt",
            "--registry",
            "examples/schemas",
            "--codec",
            "deflate",
        ])
        .write_stdin(input.clone())
        .output()
        .unwrap();
    assert_success(&out);
    let files = files_with(&root, ".avro");
    assert!(
        files
            .iter()
            .all(|f| f.to_string_lossy().ends_with(".1-0-0.avro")),
        "{files:?}"
    );
    assert!(files[0]
        .to_string_lossy()
        .contains("com.plum/health_check/avro-1/dt=2025-11-27/hr=10/nopos-"));
    assert_eq!(replay(&root, &[]), input.as_bytes());
    let Some(py) = python_with("fastavro") else {
        return;
    };
    let read = fastavro(&py, &files);
    let count: u64 = read.iter().map(|f| f["count"].as_u64().unwrap()).sum();
    assert_eq!(count, 50);
    let first = &read[0];
    assert_eq!(first["name"], "io.unilog.archive.TypedEvent");
    assert_eq!(
        first["fields"],
        serde_json::json!(["unilog", "time", "schema", "data", "event"])
    );
    let r = &first["records"][1];
    assert_eq!(r["data"]["machine"]["factory"], "Tilburg");
    assert_eq!(r["data"]["machine"]["ipAddress"], "10.0.0.1");
    assert_eq!(r["data"]["status"], "DEGRADED");
    assert_eq!(r["data"]["temperatureC"], 61.5);
    assert_eq!(r["data"]["readings"]["fan"], 1.25);
    assert_eq!(
        r["event"],
        Value::Null,
        "a canonical event is stored typed only"
    );
    assert!(
        first["records"][0]["event"].is_string(),
        "a reordered one keeps its bytes"
    );
}

/// Runs `sh -c script` and says whether it worked (mounting needs root).
fn sh(script: &str) -> bool {
    Command::new("sh")
        .args(["-c", script])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn a_full_disk_is_a_clear_error_and_the_next_run_completes() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    if !sh(&format!(
        "mount -t tmpfs -o size=600k tmpfs '{}' 2>/dev/null",
        mnt.display()
    )) {
        eprintln!("skipped: cannot mount a small tmpfs here (needs root and mount permission)");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            sh(&format!("umount '{}'", self.0.display()));
        }
    }
    let _guard = Unmount(mnt.clone());
    let root = mnt.join("a");
    let input = positioned(20_000, 2, 7);
    let out = archive(&root, &["--codec", "null", "--roll-events", "1000"], &input);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("archive: error: "), "{err}");
    assert!(
        err.contains("No space left on device") && err.contains("run the same command again"),
        "{err}"
    );
    assert!(
        files_with(&root, ".tmp").is_empty(),
        "temporary files left behind"
    );
    let (code, report) = verify_json(&root);
    assert_eq!(code, 0, "what is there is whole: {report:?}");
    // More room, the same command: the archive completes, exactly once.
    assert!(sh(&format!(
        "mount -o remount,size=64m '{}'",
        mnt.display()
    )));
    assert_success(&archive(
        &root,
        &["--codec", "null", "--roll-events", "1000"],
        &input,
    ));
    assert_eq!(verify_json(&root).0, 0);
    assert_eq!(
        by_partition(&replay(&root, &["--with-position"])),
        by_partition(&input)
    );
    // An unwritable directory: a clear error too.
    assert!(sh(&format!("mount -o remount,ro '{}'", mnt.display())));
    let more = positioned(20_500, 2, 7);
    let out = archive(&root, &["--codec", "null", "--roll-events", "1000"], &more);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Read-only file system"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn finalize_after_marks_periods_and_late_events_fail() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    let bad = dir.path().join("bad.ndjson");
    let ev = |t: &str| {
        format!("{{\"schema\":\"iglu:com.nile/x/jsonschema/1-0-0\",\"data\":{{\"t\":\"{t}\"}}}}\n")
    };
    let input: String = [
        "2026-11-27T09:10:00Z",
        "2026-11-27T10:05:00Z",
        "2026-11-27T10:20:00Z",
        "2026-11-27T09:50:00Z",
        "2026-11-27T11:30:00Z",
    ]
    .map(ev)
    .concat();
    let out = cmd("archive")
        .arg("--to")
        .arg(&root)
        .args([
            "--time",
            ".data.t",
            "--finalize-after",
            "15m",
            "--format",
            "ndjson.zst",
            "--bad",
        ])
        .arg(&bad)
        .write_stdin(input)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let base = root.join("com.nile/x/jsonschema-1/dt=2026-11-27");
    assert!(base.join("hr=09/_SUCCESS").exists());
    assert!(base.join("hr=10/_SUCCESS").exists());
    assert!(!base.join("hr=11/_SUCCESS").exists());
    let failure: Value = serde_json::from_slice(lines(&std::fs::read(&bad).unwrap())[0]).unwrap();
    assert_eq!(failure["data"]["errors"][0]["kind"], "late");
    assert_eq!(
        replay(&root, &[]).iter().filter(|&&b| b == b'\n').count(),
        4
    );
}

#[test]
fn replay_filters_by_time_and_schema() {
    let input = positioned(3000, 2, 8);
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("a");
    assert_success(&archive(&root, &["--format", "ndjson.zst"], &input));
    let all = replay(&root, &[]);
    let since = "2025-11-27T08:10:00Z";
    let until = "2025-11-27T08:30:00Z";
    let (s, u) = (
        unilog::time::parse_rfc3339_ms(since).unwrap(),
        unilog::time::parse_rfc3339_ms(until).unwrap(),
    );
    let want: Vec<&[u8]> = lines(&input)
        .into_iter()
        .filter(|l| {
            let (p, _) = position::split(l).unwrap().unwrap();
            let t = p.time_ms.unwrap();
            t >= s && t < u
        })
        .collect();
    let got = replay(
        &root,
        &["--since", since, "--until", until, "--with-position"],
    );
    assert_eq!(lines(&got).len(), want.len());
    assert!(!want.is_empty() && want.len() < lines(&all).len());
    let orders = replay(
        &root,
        &[
            "--schema",
            "iglu:com.nile/shopper_placed_order/jsonschema/1-*-*",
        ],
    );
    let n = lines(&input)
        .iter()
        .filter(|l| l.windows(20).any(|w| w == b"shopper_placed_order"))
        .count();
    assert_eq!(lines(&orders).len(), n);
    assert!(lines(&orders)
        .iter()
        .all(|l| l.windows(20).any(|w| w == b"shopper_placed_order")));
}

#[test]
fn the_chapter_6_and_9_example_answers_in_sql_over_the_archive() {
    let Some(py) = python_with("duckdb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.ndjson");
    std::fs::write(&events, nile_events(3000, 6)).unwrap();
    let out = Command::new("bash")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/ch6-archive-duckdb.sh"))
        .current_dir(dir.path())
        .env("UNILOG_BIN", bin("archive").parent().unwrap())
        .env("EVENTS_FILE", &events)
        .env("PYTHON", &py)
        .output()
        .unwrap();
    assert_success(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("ok: no gaps, duplicates, overlaps or damage"),
        "{text}"
    );
    assert!(text.contains("adds per 100 views"), "{text}");
    // Every product appears with its views, adds and rate.
    for product in ["iPad", "Kindle Paperwhite", "Event Streams in Action"] {
        assert!(
            text.lines().any(|l| l.trim_start().starts_with(product)),
            "{product}: {text}"
        );
    }
    let hours: u64 = text
        .lines()
        .skip_while(|l| !l.starts_with("events per hour"))
        .skip(1)
        .take_while(|l| l.starts_with("   "))
        .map(|l| l.split_whitespace().last().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(hours, 3000, "{text}");
}
