//! The `validate` binary: see `unilog::cmd::validate`.

fn main() -> std::process::ExitCode {
    unilog::cli::main("validate", unilog::cmd::validate::run)
}
