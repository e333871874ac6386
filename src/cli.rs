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

/// Parses the arguments of `A`, runs `run` and turns its result into the
/// process exit code, printing a fatal error as `tool: error: cause: cause`.
pub fn main<A>(tool: &'static str, run: fn(A) -> anyhow::Result<Outcome>) -> ExitCode
where
    A: CommandFactory + FromArgMatches,
{
    let _ = TOOL.set(tool);
    let matches = A::command().name(tool).get_matches();
    let args = match A::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    match run(args) {
        Ok(Outcome::Ok) => ExitCode::from(EXIT_OK),
        Ok(Outcome::SomeFailed) => ExitCode::from(EXIT_FAILED_INPUTS),
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("{}: error: {:#}", tool, e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// True when stderr is a terminal, where summaries and progress are shown by
/// default (never into a pipe's data).
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
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
