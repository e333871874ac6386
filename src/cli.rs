//! Shared command-line plumbing: the tool's name in messages, exit codes,
//! error printing and the quiet end on a closed stdout.

use std::fmt::Display;
use std::io::{ErrorKind, IsTerminal};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::{CommandFactory, FromArgMatches};

/// Everything went well.
pub const EXIT_OK: u8 = 0;
/// Some inputs failed and were routed as failure events.
pub const EXIT_FAILED_INPUTS: u8 = 1;
/// Usage error, I/O error or a broken log.
pub const EXIT_ERROR: u8 = 2;
/// `log-tail --missed stop`: retention deleted events before they were read.
pub const EXIT_MISSED: u8 = 3;

/// A fatal condition with its own exit code (not [`EXIT_ERROR`]); its
/// message is printed as `tool: message`.
#[derive(Debug)]
pub struct ExitError {
    /// The process exit code.
    pub code: u8,
    /// What happened and what to do.
    pub message: String,
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}

static TOOL: OnceLock<&'static str> = OnceLock::new();

/// The running tool's name, as it prefixes every message on stderr.
pub fn tool_name() -> &'static str {
    TOOL.get().copied().unwrap_or("unilog")
}

/// How a tool's run ended when it did not hit a fatal error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every input was processed.
    Ok,
    /// Some inputs became failure events (exit code 1).
    SomeFailed,
}

impl Outcome {
    /// `SomeFailed` when `failed` is non-zero.
    pub fn from_failures(failed: u64) -> Self {
        if failed > 0 {
            Outcome::SomeFailed
        } else {
            Outcome::Ok
        }
    }
}

/// Prints `tool: message` on stderr.
pub fn warn(message: impl Display) {
    eprintln!("{}: {}", tool_name(), message);
}

/// True when the error (or anything it wraps) is a closed pipe on output,
/// which ends a filter quietly: `tool | head` is normal use, not a failure.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == ErrorKind::BrokenPipe)
    })
}

/// The command line of tool `A` as its binary sees it: `A`'s clap
/// definition named `tool`, plus `--completions SHELL`, which every tool
/// takes. The man pages and completions are generated from this too.
pub fn command<A: CommandFactory>(tool: &'static str) -> clap::Command {
    A::command().name(tool).arg(completions_arg())
}

fn completions_arg() -> clap::Arg {
    clap::Arg::new(COMPLETIONS)
        .long(COMPLETIONS)
        .value_name("SHELL")
        .value_parser(clap::value_parser!(clap_complete::Shell))
        .exclusive(true)
        .help("Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit")
        .long_help(
            "Print a completion script for SHELL (bash, zsh, fish, elvish, powershell) and exit. \
             scripts/install.sh installs them; by hand: \
             `log-tail --completions bash > ~/.local/share/bash-completion/completions/log-tail`.",
        )
}

/// `tool --completions SHELL`, looked for before the tool's own arguments
/// are checked (a tool with a required argument would refuse it otherwise).
fn completions_asked(tool: &'static str) -> Option<Result<clap_complete::Shell, clap::Error>> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let first = args.get(1)?.to_str()?;
    if first != "--completions" && !first.starts_with("--completions=") {
        return None;
    }
    let only = clap::Command::new(tool)
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(completions_arg().required(true));
    Some(only.try_get_matches_from(args).map(|m| {
        *m.get_one::<clap_complete::Shell>(COMPLETIONS)
            .expect("required")
    }))
}

const COMPLETIONS: &str = "completions";

/// Parses the arguments of `A`, runs `run` and turns its result into the
/// process exit code, printing a fatal error as `tool: error: cause: cause`.
pub fn main<A>(tool: &'static str, run: fn(A) -> anyhow::Result<Outcome>) -> ExitCode
where
    A: CommandFactory + FromArgMatches,
{
    let _ = TOOL.set(tool);
    let mut cmd = command::<A>(tool);
    match completions_asked(tool) {
        Some(Ok(shell)) => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, tool, &mut script);
            return write_stdout(&script);
        }
        Some(Err(e)) => return argument_error(&mut cmd, e),
        None => {}
    }
    let matches = match cmd.try_get_matches_from_mut(std::env::args_os()) {
        Ok(matches) => matches,
        Err(e) => return argument_error(&mut cmd, e),
    };
    let args = match A::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => return argument_error(&mut cmd, e),
    };
    crate::io::widen_pipes();
    match run(args) {
        Ok(Outcome::Ok) => ExitCode::from(EXIT_OK),
        Ok(Outcome::SomeFailed) => ExitCode::from(EXIT_FAILED_INPUTS),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) if e.downcast_ref::<ExitError>().is_some() => {
            let exit = e.downcast_ref::<ExitError>().expect("checked");
            eprintln!("{}: {}", tool, exit.message);
            ExitCode::from(exit.code)
        }
        Err(e) => {
            eprintln!("{}: error: {:#}", tool, e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Prints what clap found wrong with the arguments as `tool: error: ...`,
/// like every other message; `--help` and `--version` go to stdout, the
/// help with its examples verbatim (see [`render_help`]).
fn argument_error(cmd: &mut clap::Command, e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind as Kind;
    let color = std::io::stdout().is_terminal();
    let text = match e.kind() {
        Kind::DisplayHelp => {
            let long = std::env::args_os().any(|a| a == "--help");
            render_help(cmd, long, color)
        }
        Kind::DisplayVersion => cmd.render_version(),
        _ => {
            let rendered = e.render();
            let text = if std::io::stderr().is_terminal() {
                rendered.ansi().to_string()
            } else {
                rendered.to_string()
            };
            eprint!("{}: {}", tool_name(), text);
            return ExitCode::from(EXIT_ERROR);
        }
    };
    write_stdout(text.as_bytes())
}

/// Writes `bytes` to stdout: exit 0, also when stdout was closed
/// (`--help | head`), exit 2 on another write error.
fn write_stdout(bytes: &[u8]) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match std::io::Write::write_all(&mut out, bytes).and_then(|()| std::io::Write::flush(&mut out))
    {
        Err(e) if e.kind() != ErrorKind::BrokenPipe => {
            eprintln!("{}: error: cannot write stdout: {e}", tool_name());
            ExitCode::from(EXIT_ERROR)
        }
        _ => ExitCode::from(EXIT_OK),
    }
}

/// The tool's help with the text after the options (its examples) exactly
/// as written: clap would wrap it to the terminal's width, which breaks an
/// example mid-command, so that part is printed as it is in the source.
pub fn render_help(cmd: &clap::Command, long: bool, color: bool) -> String {
    let after = cmd
        .get_after_long_help()
        .filter(|_| long)
        .or_else(|| cmd.get_after_help())
        .map(|s| s.to_string());
    let mut bare = cmd
        .clone()
        .after_help(None::<&str>)
        .after_long_help(None::<&str>);
    let help = if long {
        bare.render_long_help()
    } else {
        bare.render_help()
    };
    let mut text = if color {
        help.ansi().to_string()
    } else {
        help.to_string()
    };
    let trimmed = text.trim_end().len();
    text.truncate(trimmed);
    text.push('\n');
    if let Some(after) = after {
        text.push('\n');
        text.push_str(after.trim_end());
        text.push('\n');
    }
    text
}

/// True when stderr is a terminal, where summaries and progress are shown by
/// default (never into a pipe's data).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// True when this process should draw progress: stderr is a terminal, the
/// output is not (progress would mix with events shown there), and the
/// input is not a pipe. In `a | b | c > out` every stage's stderr is the
/// same terminal; only the head of the pipeline, which reads files or the
/// log, reports, so the stages' lines do not overwrite one another.
pub fn progress_wanted() -> bool {
    use std::os::unix::fs::FileTypeExt;
    let stdin_is_pipe = std::fs::metadata("/dev/stdin")
        .map(|m| m.file_type().is_fifo() || m.file_type().is_socket())
        .unwrap_or(false);
    stderr_is_terminal() && !std::io::stdout().is_terminal() && !stdin_is_pipe
}

/// Counts a filter keeps for its closing summary on stderr.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Lines read from the inputs.
    pub read: u64,
    /// Events written to the output.
    pub written: u64,
    /// Inputs that became failure events.
    pub failed: u64,
}

impl Counts {
    /// Prints `tool: N read, N written, N failed` when asked, on a terminal,
    /// or whenever something failed (so a failure is never silent).
    pub fn report(&self, asked: bool, verb: &str) {
        if asked || self.failed > 0 || stderr_is_terminal() {
            warn(format_args!(
                "{} read, {} {}, {} failed",
                self.read, self.written, verb, self.failed
            ));
        }
    }

    /// The exit outcome these counts imply.
    pub fn outcome(&self) -> Outcome {
        Outcome::from_failures(self.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_pipe_is_found_through_context() {
        let io = std::io::Error::new(ErrorKind::BrokenPipe, "closed");
        let err = anyhow::Error::new(io).context("writing stdout");
        assert!(is_broken_pipe(&err));
        let other = anyhow::anyhow!("something else");
        assert!(!is_broken_pipe(&other));
    }

    #[test]
    fn outcome_follows_failures() {
        assert_eq!(Outcome::from_failures(0), Outcome::Ok);
        assert_eq!(Outcome::from_failures(3), Outcome::SomeFailed);
    }
}

/// Inputs every filter takes: `FILE...`, none or `-` for stdin.
#[derive(Debug, Clone, clap::Args)]
pub struct InputArgs {
    /// Input files of newline-delimited JSON events; none, or `-`, reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
}

/// How many threads a filter that can spread its work uses.
#[derive(Debug, Clone, clap::Args)]
pub struct ThreadArgs {
    /// Work on N threads (default: one per CPU). Events come out in the
    /// order they came in whatever N is; 1 runs on the reading thread.
    #[arg(short = 'j', long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
}

impl ThreadArgs {
    /// The number of worker threads to run.
    pub fn count(&self) -> usize {
        self.threads
            .map_or_else(crate::parallel::default_threads, usize::from)
    }
}

/// Where a filter's output goes and how it is buffered.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Write to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Flush after every line, even into a pipe (a terminal always gets this).
    #[arg(long)]
    pub line_buffered: bool,
}

impl OutputArgs {
    /// Opens the output these flags name.
    pub fn open(&self) -> anyhow::Result<crate::io::Output> {
        crate::io::Output::open(self.output.as_deref(), self.line_buffered)
    }
}

/// Where failure events go.
#[derive(Debug, Clone, clap::Args)]
pub struct FailureArgs {
    /// Send failure events to PATH: a file (appended to) or a log directory;
    /// default stderr.
    #[arg(long = "bad", value_name = "PATH")]
    pub bad: Option<std::path::PathBuf>,

    /// The name this process appends positioned events under, into a log
    /// (its own output, or --bad): each producer's marks are its own, so
    /// that exactly-once holds with several writers. Default: the tool's
    /// name; give distinct names when one tool runs twice in a pipeline
    /// and both write the same log.
    #[arg(long, value_name = "NAME", value_parser = producer_arg)]
    pub producer: Option<String>,
}

impl FailureArgs {
    /// The producer name: `--producer`, else the tool's name.
    pub fn producer_name(&self) -> &str {
        self.producer.as_deref().unwrap_or(tool_name())
    }
}

fn producer_arg(text: &str) -> Result<String, String> {
    crate::store::producer::check_name(text)
        .map(|()| text.to_string())
        .map_err(|e| e.to_string())
}

/// Parses a size such as `512`, `64KiB`, `128MiB`, `1GiB` (or `K`, `M`, `G`).
pub fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = t.split_at(digits);
    let number: u64 = number.parse().map_err(|_| {
        anyhow::anyhow!("{text:?} is not a size; write it like 512, 64KiB, 128MiB or 1GiB")
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => anyhow::bail!("{text:?}: unknown size unit {unit:?}; use KiB, MiB, GiB or TiB"),
    };
    number
        .checked_mul(factor)
        .ok_or_else(|| anyhow::anyhow!("size {text:?} is too large"))
}

/// Value parser for durations in clap (`30m`, `1h30m`, `7d`), in ms.
pub fn duration_arg(text: &str) -> Result<i64, String> {
    crate::time::parse_duration_ms(text).map_err(|e| e.to_string())
}

/// Value parser for sizes in clap.
pub fn size_arg(text: &str) -> Result<u64, String> {
    parse_size(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod size_tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("128M").unwrap(), 128 << 20);
        assert_eq!(parse_size("1 GiB").unwrap(), 1 << 30);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }
}

/// Set once a progress line is shown by this process (see
/// [`Progress::of_lines`]).
static PROGRESS_CLAIMED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks progress as shown by the tool itself (as archive's progress bar),
/// so the input loop does not draw a second line.
pub fn claim_progress() {
    PROGRESS_CLAIMED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// A one-line progress report on stderr for long batch work, shown only on a
/// terminal (never in a pipe's data or a log file) and at most four times a
/// second, so it costs nothing in the hot path.
pub struct Progress {
    enabled: bool,
    started: std::time::Instant,
    last: std::time::Instant,
    ticks: u32,
    batched: u64,
    what: &'static str,
}

impl Progress {
    /// Progress counted in `what` (such as "events"); silent unless stderr
    /// is a terminal.
    pub fn new(what: &'static str) -> Self {
        PROGRESS_CLAIMED.store(true, std::sync::atomic::Ordering::Relaxed);
        Self::make(what, progress_wanted())
    }

    /// The progress of reading input lines, which `io::for_each_line` shows
    /// for every filter, unless the tool already shows its own (one line of
    /// progress per process).
    pub fn of_lines() -> Self {
        let claimed = PROGRESS_CLAIMED.swap(true, std::sync::atomic::Ordering::Relaxed);
        Self::make("lines", !claimed && progress_wanted())
    }

    fn make(what: &'static str, enabled: bool) -> Self {
        let now = std::time::Instant::now();
        Progress {
            enabled,
            started: now,
            last: now,
            ticks: 0,
            batched: 0,
            what,
        }
    }

    /// Reports `done` items and `bytes` so far; cheap to call per item.
    #[inline]
    pub fn update(&mut self, done: u64, bytes: u64) {
        if !self.enabled {
            return;
        }
        // Look at the clock only every 4096 calls.
        self.ticks = self.ticks.wrapping_add(1);
        if !self.ticks.is_multiple_of(4096) {
            return;
        }
        self.draw(done, Some(bytes));
    }

    /// Counts `n` more items done in a batch (no byte count); looks at the
    /// clock on every call, so call it per batch, not per item.
    pub fn add(&mut self, n: u64) {
        if !self.enabled || n == 0 {
            return;
        }
        self.batched += n;
        self.draw(self.batched, None);
    }

    /// Draws the line, at most every 250 ms.
    fn draw(&mut self, done: u64, bytes: Option<u64>) {
        let now = std::time::Instant::now();
        if now.duration_since(self.last).as_millis() < 250 {
            return;
        }
        self.last = now;
        let secs = now.duration_since(self.started).as_secs_f64().max(1e-3);
        let size = bytes
            .map(|b| format!(", {:.0} MB", b as f64 / 1e6))
            .unwrap_or_default();
        eprint!(
            "\r{}: {} {}{size}, {:.0} {}/s   ",
            tool_name(),
            done,
            self.what,
            done as f64 / secs,
            self.what
        );
    }

    /// Clears the progress line; nothing more is drawn after it.
    pub fn finish(&mut self) {
        if self.enabled && self.last != self.started {
            eprint!("\r\x1b[K");
        }
        self.enabled = false;
    }
}

static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn request_stop(_: libc::c_int) {
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Makes SIGINT and SIGTERM ask for a clean stop instead of killing the
/// process, for long-running followers that should flush and commit first.
pub fn stop_on_signals() {
    let handler: extern "C" fn(libc::c_int) = request_stop;
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe {
            libc::signal(signal, handler as libc::sighandler_t);
        }
    }
}

/// True once SIGINT or SIGTERM arrived after [`stop_on_signals`].
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(std::sync::atomic::Ordering::Relaxed)
}
