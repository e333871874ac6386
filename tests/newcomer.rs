//! A newcomer's first hour (issue 14), through the real binaries: argument
//! errors, completions, the inspect view, relative times, waiting for a log,
//! LOG arguments that are not logs, a terminal's failure messages, verbatim
//! help, and the nile-events generator.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{append, cmd, nile_events, shell};

const TOOLS: [&str; 8] = [
    "alert",
    "archive",
    "enrich",
    "log-append",
    "log-tail",
    "nile-events",
    "validate",
    "window",
];

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn argument_errors_begin_with_the_tools_name() {
    for tool in TOOLS {
        let out = cmd(tool).arg("--form").output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{tool}");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("{tool}: error: unexpected argument '--form'")),
            "{tool}: {err}"
        );
    }
}

#[test]
fn completions_generate_and_load_in_bash() {
    let dir = tempfile::tempdir().unwrap();
    for tool in TOOLS {
        let out = cmd(tool).args(["--completions", "bash"]).output().unwrap();
        assert!(out.status.success(), "{tool}: {}", stderr(&out));
        let file = dir.path().join(format!("{tool}.bash"));
        std::fs::write(&file, &out.stdout).unwrap();
        let loaded = Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && complete -p {tool}", file.display()))
            .output()
            .unwrap();
        assert!(loaded.status.success(), "{tool}: {}", stderr(&loaded));
        let line = String::from_utf8_lossy(&loaded.stdout);
        assert!(line.contains(&format!(" {tool}")), "{tool}: {line}");
        for shell in ["zsh", "fish"] {
            let out = cmd(tool).args(["--completions", shell]).output().unwrap();
            assert!(
                out.status.success() && !out.stdout.is_empty(),
                "{tool} {shell}"
            );
        }
    }
    // The scripts know the tools' own flags.
    let out = cmd("log-tail")
        .args(["--completions", "bash"])
        .output()
        .unwrap();
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("--inspect") && script.contains("--from"));
}

fn demo_log(dir: &Path) -> std::path::PathBuf {
    let log = dir.join("raw.log");
    append(
        &log,
        &["--partitions", "3", "--key", ".data.shopper.id"],
        nile_events(3000, 5),
    );
    // A group that read part of the log.
    let out = cmd("log-tail")
        .arg(&log)
        .args(["--group", "orders", "-n", "1000"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    log
}

#[test]
fn inspect_json_parses_and_tells_what_the_log_holds() {
    let dir = tempfile::tempdir().unwrap();
    let log = demo_log(dir.path());
    let out = cmd("log-tail")
        .arg(&log)
        .args(["--inspect", "--json", "--event-time", ".data.timestamp"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["partitions"], 3);
    assert_eq!(v["total"]["events"], 3000);
    assert_eq!(v["partition"].as_array().unwrap().len(), 3);
    let ends: u64 = v["partition"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["end"].as_u64().unwrap())
        .sum();
    assert_eq!(ends, 3000);
    assert!(v["total"]["bytes"].as_u64().unwrap() > 300_000);
    let by_schema: u64 = v["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["events"].as_u64().unwrap())
        .sum();
    assert_eq!(by_schema, 3000);
    assert_eq!(v["schemas"].as_array().unwrap().len(), 3);
    assert_eq!(
        v["schemas"][0]["schema"],
        "iglu:com.nile/shopper_viewed_product/jsonschema/1-0-0"
    );
    // The generator's events start at 2026-11-27T09:00:00Z.
    assert!(v["total"]["event_time"]["first"]
        .as_str()
        .unwrap()
        .starts_with("2026-11-27T09:00"));
    assert!(v["total"]["append_time"]["first_ms"].as_i64().unwrap() > 0);
    assert_eq!(v["groups"][0]["group"], "orders");
    assert_eq!(v["groups"][0]["lag"], 2000);
    assert_eq!(v["retention"]["age_ms"], serde_json::Value::Null);

    // For people: the same facts as a summary and tables.
    let out = cmd("log-tail").arg(&log).arg("--inspect").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 partitions, 3000 events"), "{text}");
    assert!(text.contains("iglu:com.nile/shopper_placed_order/jsonschema/1-0-0"));
    assert!(text.contains("orders  2000"), "{text}");

    // --positions --json, with and without a group.
    let out = cmd("log-tail")
        .arg(&log)
        .args(["--positions", "--json", "--group", "orders"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["partitions"].as_array().unwrap().len(), 3);
    assert_eq!(v["group"]["lag"], 2000);
    let out = cmd("log-tail")
        .arg(&log)
        .args(["--positions", "--json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["partitions"][0]["start"], 0);
}

#[test]
fn from_takes_relative_append_times() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("t.log");
    append(&log, &[], nile_events(50, 1));
    let count = |from: &str| {
        let out = cmd("log-tail")
            .arg(&log)
            .args(["--from", from])
            .output()
            .unwrap();
        assert!(out.status.success(), "{from}: {}", stderr(&out));
        common::lines(&out.stdout).len()
    };
    // Appended just now: within the last hour, none after now + 1 minute.
    assert_eq!(count("@-1h"), 50);
    assert_eq!(count("@-30m"), 50);
    assert_eq!(count("@+1m"), 0);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(count("@now"), 0);
    let out = cmd("log-tail")
        .arg(&log)
        .args(["--from", "@-soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("-1h"), "{}", stderr(&out));
    // The help says it is append time.
    let help = cmd("log-tail").arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("append time"), "{help}");
    assert!(help.contains("@-1h"), "{help}");
}

#[test]
fn follow_wait_waits_for_a_log_that_does_not_exist_yet() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("later.log");
    let mut child = Command::new(common::bin("log-tail"))
        .arg(&log)
        .args(["--follow", "--wait", "-n", "3", "--line-buffered"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    assert!(child.try_wait().unwrap().is_none(), "log-tail did not wait");
    append(&log, &[], nile_events(3, 2));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(common::lines(&out.stdout).len(), 3);
    assert!(stderr(&out).contains("waiting for it"), "{}", stderr(&out));
}

#[test]
fn a_log_argument_that_is_not_a_log_is_said_to_be_so() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.ndjson");
    std::fs::write(&file, nile_events(2, 1)).unwrap();
    let out = cmd("log-tail").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("is not a log: it is a file"), "{err}");
    assert!(!err.contains("Not a directory"), "{err}");

    for tool in ["log-tail", "log-append"] {
        // Nothing listens on port 9 (discard): a broker that is not there
        // is named, within the timeout, and no directory is made for it.
        let out = cmd(tool)
            .args(["kafka://127.0.0.1:9/raw", "--timeout", "1s"])
            .current_dir(dir.path())
            .write_stdin("{\"a\":1}\n")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{tool}");
        assert!(
            stderr(&out).contains("127.0.0.1:9"),
            "{tool}: {}",
            stderr(&out)
        );
        assert!(
            !dir.path().join("kafka:").exists(),
            "{tool} made a directory kafka:"
        );
    }
}

/// Runs `script` under `script(1)`, so the tools see a terminal on stdin,
/// stdout and stderr (as a person at a shell has); None without script(1).
fn on_a_terminal(script: &str, dir: &Path) -> Option<String> {
    let bin_dir = common::bin("log-tail").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("script")
        .args(["-qec", script, "/dev/null"])
        .current_dir(dir)
        .env("PATH", path)
        .stdin(Stdio::null())
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_terminal_gets_failure_messages_and_counts_a_pipe_every_failure_event() {
    let dir = tempfile::tempdir().unwrap();
    // No registry here: every event fails (schema not found).
    std::fs::write(dir.path().join("events.ndjson"), nile_events(500, 3)).unwrap();
    let Some(screen) = on_a_terminal("validate events.ndjson > good.ndjson", dir.path()) else {
        eprintln!("script(1) is not installed; the terminal case is not checked");
        return;
    };
    assert!(
        !screen.contains("\"schema\":\"iglu:io.unilog/failure"),
        "{screen}"
    );
    assert!(screen.contains("500 read, 0 valid, 500 failed"), "{screen}");
    assert!(screen.contains("500 failure events not kept"), "{screen}");
    assert!(screen.contains("--bad FILE"), "{screen}");
    assert!(screen.lines().count() < 20, "{screen}");

    // Into a file (not a terminal), stderr holds every failure event.
    let out = shell(
        "validate events.ndjson 2> bad.ndjson > good.ndjson; echo $?",
        dir.path(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let bad = std::fs::read(dir.path().join("bad.ndjson")).unwrap();
    let failures = common::lines(&bad)
        .iter()
        .filter(|l| l.starts_with(b"{\"schema\":\"iglu:io.unilog/failure"))
        .count();
    assert_eq!(failures, 500);
}

#[test]
fn progress_shows_on_a_terminal_never_in_the_data() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("events.ndjson"), nile_events(300_000, 3)).unwrap();
    std::fs::create_dir_all(dir.path().join("schemas")).unwrap();
    let reg = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/schemas");
    let script = format!(
        "validate --registry {} events.ndjson > good.ndjson",
        reg.display()
    );
    let Some(screen) = on_a_terminal(&script, dir.path()) else {
        return;
    };
    assert!(
        screen.contains("validate: 300000 read, 300000 valid"),
        "{screen}"
    );
    let good = std::fs::read(dir.path().join("good.ndjson")).unwrap();
    assert_eq!(
        good,
        std::fs::read(dir.path().join("events.ndjson")).unwrap()
    );
    // Progress (if the run was long enough to draw) went to the terminal,
    // as `validate: N lines, ...`, never into good.ndjson.
    if screen.contains(" lines, ") {
        assert!(screen.contains("validate: "), "{screen}");
    }
}

#[test]
fn help_prints_examples_verbatim_however_narrow_the_terminal() {
    for tool in TOOLS {
        let source = unilog::cmd::commands()
            .into_iter()
            .find(|c| c.get_name() == tool)
            .unwrap();
        let after = source.get_after_help().unwrap().to_string();
        let out = cmd(tool)
            .arg("--help")
            .env("COLUMNS", "40")
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(after.trim_end()),
            "{tool} --help changed its examples:\n{help}"
        );
    }
}

#[test]
fn nile_events_is_a_tool_of_its_own() {
    let out = cmd("nile-events")
        .args(["-n", "200", "--seed", "9"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let lines = common::lines(&out.stdout);
    assert_eq!(lines.len(), 200);
    assert_eq!(out.stdout, nile_events(200, 9));
    for line in lines {
        let v: serde_json::Value = serde_json::from_slice(line).unwrap();
        assert!(v["schema"].as_str().unwrap().starts_with("iglu:com.nile/"));
    }
    // | head ends it quietly.
    let out = shell(
        "nile-events -n 1000000 | head -1 >/dev/null; echo ${PIPESTATUS[0]}",
        Path::new("."),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn install_script_puts_binaries_man_pages_and_completions_in_a_prefix() {
    let prefix = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bin_dir = common::bin("log-tail").parent().unwrap().to_path_buf();
    let out = Command::new(repo.join("scripts/install.sh"))
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--prefix")
        .arg(prefix.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let p = prefix.path();
    for tool in TOOLS {
        assert!(p.join("bin").join(tool).is_file(), "{tool}");
        assert!(
            p.join(format!("share/man/man1/{tool}.1")).is_file(),
            "{tool}.1"
        );
        assert!(p
            .join(format!("share/zsh/site-functions/_{tool}"))
            .is_file());
        assert!(p
            .join(format!("share/fish/vendor_completions.d/{tool}.fish"))
            .is_file());
        let bash = p.join(format!("share/bash-completion/completions/{tool}"));
        let loaded = Command::new("bash")
            .arg("-c")
            .arg(format!("source '{}' && complete -p {tool}", bash.display()))
            .output()
            .unwrap();
        assert!(loaded.status.success(), "{tool}: {}", stderr(&loaded));
    }
    assert!(p.join("share/man/man5/unilog-log.5").is_file());
}
