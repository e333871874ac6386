//! The `alert` binary: see `unilog::cmd::alert`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("alert", unilog::cmd::alert::run)
}
