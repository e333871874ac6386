//! The `enrich` binary: see `unilog::cmd::enrich`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("enrich", unilog::cmd::enrich::run)
}
