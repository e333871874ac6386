//! The `log-append` binary: see `unilog::cmd::log_append`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("log-append", unilog::cmd::log_append::run)
}
