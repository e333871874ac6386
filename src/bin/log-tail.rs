//! The `log-tail` binary: see `unilog::cmd::log_tail`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("log-tail", unilog::cmd::log_tail::run)
}
