//! The README's examples run as written. Every ```sh block after a
//! `<!-- readme-test -->` line is run, in order, by bash with
//! `set -euo pipefail`, in a scratch directory laid out as the repository
//! after `scripts/demo.sh`: `demo-out/events.ndjson` (generated Nile
//! events), `demo-out/raw.log` (4 partitions, keyed by shopper, read once by
//! the group `orders`), `examples/schemas` and `target/debug` (the tools).

mod common;

use std::path::Path;

use common::{append, cmd, nile_events};

const MARK: &str = "<!-- readme-test -->";

/// The marked blocks of the README, with the line each starts on.
fn marked_blocks(readme: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = readme.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == MARK {
            assert_eq!(
                lines.get(i + 1).map(|l| l.trim()),
                Some("```sh"),
                "README line {}: {MARK} must come right before a ```sh block",
                i + 1
            );
            let start = i + 2;
            let end = (start..lines.len())
                .find(|&j| lines[j].trim() == "```")
                .unwrap_or_else(|| panic!("README line {}: unclosed block", i + 2));
            blocks.push((start + 1, lines[start..end].join("\n")));
            i = end;
        }
        i += 1;
    }
    blocks
}

/// The repository after `scripts/demo.sh`, small.
fn demo_tree(dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = dir.join("demo-out");
    std::fs::create_dir_all(&out).unwrap();
    let events = nile_events(3000, 7);
    std::fs::write(out.join("events.ndjson"), &events).unwrap();
    append(
        &out.join("raw.log"),
        &["--partitions", "4", "--key", ".data.shopper.id"],
        events,
    );
    let read = cmd("log-tail")
        .arg(out.join("raw.log"))
        .args(["--group", "orders"])
        .output()
        .unwrap();
    assert!(read.status.success());
    std::fs::create_dir_all(dir.join("examples")).unwrap();
    std::os::unix::fs::symlink(repo.join("examples/schemas"), dir.join("examples/schemas"))
        .unwrap();
    let bin_dir = common::bin("log-tail").parent().unwrap().to_path_buf();
    std::fs::create_dir_all(dir.join("target")).unwrap();
    std::os::unix::fs::symlink(&bin_dir, dir.join("target/debug")).unwrap();
}

#[test]
fn readme_examples_run_as_written_on_the_demos_data() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = marked_blocks(&readme);
    assert!(
        blocks.len() >= 5,
        "the README marks {} example blocks for this test; expected the first steps, completions, times, inspect and cron",
        blocks.len()
    );
    let dir = tempfile::tempdir().unwrap();
    demo_tree(dir.path());
    for (line, block) in &blocks {
        let out = common::shell(&format!("set -euo pipefail\n{block}"), dir.path());
        assert!(
            out.status.success(),
            "README block at line {line} failed ({}):\n{block}\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !stderr.contains(" failed") || stderr.contains(", 0 failed"),
            "README block at line {line} had failures:\n{stderr}"
        );
    }
    // What the examples made: every demo event valid, the cron script's
    // log holds them all.
    let good = std::fs::read(dir.path().join("good.ndjson")).unwrap();
    assert_eq!(good, nile_events(3000, 7));
    let held = common::tail(&dir.path().join("demo-out/good.log"), &[]);
    assert_eq!(common::lines(&held).len(), 3000);
}

#[test]
fn marked_blocks_are_found() {
    let text = "x\n<!-- readme-test -->\n```sh\na\nb\n```\n```sh\nnot marked\n```\n";
    assert_eq!(marked_blocks(text), vec![(4, "a\nb".to_string())]);
}
