//! The man pages in `man/` are generated from the clap definitions
//! (`unilog::man`); this test fails when one is stale, and checks that they
//! render without troff warnings and keep examples verbatim. Regenerate with
//! `UPDATE_MAN=1 cargo test --test man`.

use std::path::Path;
use std::process::Command;

#[test]
fn man_pages_match_the_clap_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for command in unilog::cmd::commands() {
        let name = command.get_name().to_string();
        let page = unilog::man::render(&command);
        let path = dir.join(format!("{name}.1"));
        if update {
            std::fs::write(&path, &page).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(&page[..]) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale man pages (run UPDATE_MAN=1 cargo test --test man): {stale:?}"
    );
    assert!(
        dir.join("unilog-log.5").is_file(),
        "the log format page is missing"
    );
}

/// groff with every warning on, as `man --warnings` runs it; None when groff
/// is not installed.
fn groff_warnings(page: &Path, width: &str) -> Option<String> {
    let out = Command::new("groff")
        .args(["-ww", "-man", "-Tutf8", "-z"])
        .arg(format!("-rLL={width}"))
        .arg(page)
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn man_pages_render_without_warnings_and_examples_verbatim() {
    if std::env::var_os("UPDATE_MAN").is_some() {
        // The other test is rewriting the pages; check them on the next run.
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    for command in unilog::cmd::commands() {
        let name = command.get_name().to_string();
        let path = dir.join(format!("{name}.1"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(".SH EXTRA"), "{name}.1 still has EXTRA");
        assert!(text.contains(".SH EXAMPLES"), "{name}.1 has no EXAMPLES");
        let Some(warnings) = groff_warnings(&path, "80n") else {
            eprintln!("groff is not installed; troff warnings not checked");
            return;
        };
        assert!(warnings.trim().is_empty(), "{name}.1: {warnings}");
        // Each example line of --help appears whole on one line of the
        // rendered page: not wrapped, not hyphenated.
        let rendered = Command::new("groff")
            .args(["-man", "-Tutf8", "-P-cbou", "-rLL=200n"])
            .arg(&path)
            .output()
            .unwrap();
        let rendered =
            String::from_utf8_lossy(&rendered.stdout).replace(['\u{2010}', '\u{2212}'], "-");
        let after = command.get_after_help().unwrap().to_string();
        let examples = after.split("\n\n").next().unwrap();
        for line in examples.lines().skip(1).filter(|l| !l.trim().is_empty()) {
            let line = line.trim();
            assert!(
                rendered.lines().any(|r| r.trim() == line),
                "{name}.1 does not show {line:?} verbatim"
            );
        }
    }
}
