//! Helpers shared by the integration tests: paths to the real binaries and
//! generated events.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The path of one of the project's binaries, built by cargo for the tests.
pub fn bin(name: &str) -> PathBuf {
    assert_cmd::cargo::cargo_bin(name)
}

/// A command for one of the project's binaries.
pub fn cmd(name: &str) -> assert_cmd::Command {
    assert_cmd::Command::new(bin(name))
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
