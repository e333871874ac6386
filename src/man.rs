//! Man pages from the tools' clap definitions. clap_mangen renders the
//! name, synopsis, description and options; the text after the options
//! (examples, notes, exit status) is laid out here, because clap_mangen
//! puts it under "EXTRA" as filled text, which wraps and hyphenates
//! example commands so they no longer copy-paste.
//!
//! The after-help text is split into paragraphs at blank lines: one that
//! begins `Examples:` becomes EXAMPLES, one that begins `Exit status:` EXIT
//! STATUS, the rest NOTES. Indented lines are printed verbatim (no fill, no
//! hyphenation); the others are filled as prose.

use std::io::Write;

use roff::{roman, Roff};

/// The man page of `cmd` (section 1), as roff.
pub fn render(cmd: &clap::Command) -> Vec<u8> {
    let after = cmd
        .get_after_long_help()
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string())
        .unwrap_or_default();
    let bare = cmd
        .clone()
        .after_help(None::<&str>)
        .after_long_help(None::<&str>);
    let man = clap_mangen::Man::new(bare);
    let mut page = Vec::new();
    // Writing into a Vec cannot fail.
    man.render_title(&mut page).expect("in memory");
    // No hyphenation and no stretched lines: option names and paths must
    // read as they are typed.
    page.extend_from_slice(b".nh\n.ad l\n");
    man.render_name_section(&mut page).expect("in memory");
    man.render_synopsis_section(&mut page).expect("in memory");
    man.render_description_section(&mut page)
        .expect("in memory");
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page).expect("in memory");
    }
    let sections = Sections::split(&after);
    write_section(&mut page, "EXIT STATUS", &sections.exit_status);
    write_section(&mut page, "NOTES", &sections.notes);
    write_section(&mut page, "EXAMPLES", &sections.examples);
    if cmd
        .get_version()
        .or_else(|| cmd.get_long_version())
        .is_some()
    {
        man.render_version_section(&mut page).expect("in memory");
    }
    let name = cmd.get_name();
    let others: Vec<String> = crate::cmd::commands()
        .iter()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != name)
        .map(|n| format!("{n}(1)"))
        .chain(["unilog-log(5)".to_string()])
        .collect();
    let mut roff = Roff::default();
    roff.control("SH", ["SEE ALSO"])
        .text([roman(others.join(", "))]);
    roff.to_writer(&mut page).expect("in memory");
    ascii_only(&page)
}

/// Spells every non-ASCII character as a troff escape (`\[u2026]`), so the
/// page renders the same under groff without preconv, mandoc and older
/// man programs.
fn ascii_only(page: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(page);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            out.push_str(&format!("\\[u{:04X}]", u32::from(c)));
        }
    }
    out.into_bytes()
}

/// The after-help paragraphs, sorted into the sections they belong to.
#[derive(Debug, Default)]
struct Sections {
    examples: Vec<String>,
    exit_status: Vec<String>,
    notes: Vec<String>,
}

impl Sections {
    fn split(text: &str) -> Sections {
        let mut sections = Sections::default();
        for paragraph in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
            let paragraph = paragraph.trim_end_matches('\n');
            if let Some(rest) = paragraph.strip_prefix("Examples:") {
                sections
                    .examples
                    .push(rest.trim_start_matches('\n').to_string());
            } else if let Some(rest) = paragraph.strip_prefix("Exit status:") {
                sections.exit_status.push(rest.trim_start().to_string());
            } else {
                sections.notes.push(paragraph.to_string());
            }
        }
        sections
    }
}

/// Writes a section of paragraphs: runs of indented lines verbatim in a
/// no-fill display, other lines as filled text.
fn write_section(page: &mut Vec<u8>, title: &str, paragraphs: &[String]) {
    if paragraphs.is_empty() {
        return;
    }
    let mut roff = Roff::default();
    roff.control("SH", [title]);
    for (i, paragraph) in paragraphs.iter().enumerate() {
        if i > 0 {
            roff.control("PP", []);
        }
        let lines: Vec<&str> = paragraph.lines().collect();
        let mut at = 0;
        while at < lines.len() {
            let verbatim = is_verbatim(lines[at]);
            let run = lines[at..]
                .iter()
                .take_while(|l| is_verbatim(l) == verbatim)
                .count();
            let block = &lines[at..at + run];
            if verbatim {
                let indent = block
                    .iter()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| l.len() - l.trim_start().len())
                    .min()
                    .unwrap_or(0);
                // .EX/.EE: a constant-width, unfilled display; each line as
                // written, less the common indent.
                roff.control("RS", ["4"]).control("EX", []);
                for line in block {
                    roff.text([roman(line.get(indent..).unwrap_or(""))]);
                }
                roff.control("EE", []).control("RE", []);
            } else {
                for line in block {
                    roff.text([roman(*line)]);
                }
            }
            at += run;
        }
    }
    let _ = roff.to_writer(page);
    let _ = page.flush();
}

fn is_verbatim(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_is_escaped() {
        assert_eq!(
            ascii_only("a\u{2026}b\u{e9}".as_bytes()),
            b"a\\[u2026]b\\[u00E9]"
        );
    }

    #[test]
    fn after_help_is_sorted_into_sections() {
        let s = Sections::split(
            "Examples:\n  tool a\n  tool b   # c\n\nSome note\nover lines.\n\nExit status: 0 ok.",
        );
        assert_eq!(s.examples, vec!["  tool a\n  tool b   # c"]);
        assert_eq!(s.notes, vec!["Some note\nover lines."]);
        assert_eq!(s.exit_status, vec!["0 ok."]);
    }

    #[test]
    fn examples_are_unfilled_and_unhyphenated() {
        let cmd = clap::Command::new("tool")
            .about("Does things")
            .after_help("Examples:\n  tool --from @2026-11-27T09:00:00Z https://example.com/a-b\n");
        let page = String::from_utf8(render(&cmd)).unwrap();
        assert!(page.contains(".nh\n"), "{page}");
        assert!(page.contains(".SH EXAMPLES\n.RS 4\n.EX\n"), "{page}");
        assert!(!page.contains("EXTRA"), "{page}");
        assert!(
            page.contains(
                "tool \\-\\-from @2026\\-11\\-27T09:00:00Z https://example.com/a\\-b\n.EE"
            ),
            "{page}"
        );
    }
}
