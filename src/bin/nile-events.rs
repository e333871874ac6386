//! The `nile-events` binary: see `unilog::cmd::nile_events`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("nile-events", unilog::cmd::nile_events::run)
}
