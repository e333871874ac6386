//! Helpers shared by the integration tests: paths to the real binaries and
//! generated events.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The path of one of the project's binaries, built by cargo for the tests.
pub fn bin(name: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(name)
}

/// The python that runs the tests' Python fixtures: `UNILOG_TEST_PYTHON`
/// (set by scripts/test.sh), else the venv python that
/// scripts/install-test-deps.sh recorded in target/test-python, else
/// `python3` from PATH.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("UNILOG_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let recorded = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-python");
    if let Ok(p) = std::fs::read_to_string(recorded) {
        let p = PathBuf::from(p.trim());
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("python3")
}

/// A command for one of the project's binaries.
pub fn cmd(name: &str) -> assert_cmd::Command {
    assert_cmd::Command::new(bin(name))
}

/// Asserts that a command exited 0, showing its stderr when it did not.
#[track_caller]
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Appends `input` to the log at `log` with `log-append ARGS`, which must
/// succeed.
pub fn append(log: &Path, args: &[&str], input: impl Into<Vec<u8>>) {
    cmd("log-append")
        .arg(log)
        .args(args)
        .write_stdin(input)
        .assert()
        .success();
}

/// `n` generated Nile events, one per line, each ending in `\n`.
pub fn nile_events(n: u64, seed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let options = unilog::gen::GenOptions {
        count: n,
        seed,
        ..Default::default()
    };
    unilog::gen::generate(&options, &mut out).unwrap();
    out
}

/// The lines of a byte buffer, without their newlines.
pub fn lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut v: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    if v.last() == Some(&&b""[..]) {
        v.pop();
    }
    v
}

/// Runs a shell pipeline with the binaries' directory first on PATH.
pub fn shell(script: &str, dir: &Path) -> std::process::Output {
    let bin_dir = bin("log-tail").parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env("PATH", path)
        .output()
        .unwrap()
}

/// A server process started for a test, killed when dropped.
pub struct Served {
    child: Child,
    /// The first line it printed (servers print their address or port).
    pub first_line: String,
}

impl Served {
    /// Starts `command` with its stdout piped and waits for its first line.
    pub fn start(command: &mut Command) -> std::io::Result<Served> {
        let mut child = command.stdout(Stdio::piped()).spawn()?;
        let mut first_line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut first_line)?;
        Ok(Served { child, first_line })
    }

    /// Stops the server now (as dropping it does).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `log-tail LOG ARGS…`'s stdout; the test fails when it does not succeed.
pub fn tail(log: &Path, args: &[&str]) -> Vec<u8> {
    let out = cmd("log-tail").arg(log).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "log-tail {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
