//! The `archive` binary: see `unilog::cmd::archive`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("archive", unilog::cmd::archive::run)
}
