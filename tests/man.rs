//! The man pages in `man/` are generated from the clap definitions; this test
//! fails when one is stale. Regenerate with `UPDATE_MAN=1 cargo test --test man`.

use std::path::Path;

#[test]
fn man_pages_match_the_clap_definitions() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let update = std::env::var_os("UPDATE_MAN").is_some();
    let mut stale = Vec::new();
    for command in unilog::cmd::commands() {
        let name = command.get_name().to_string();
        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page).unwrap();
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
