//! The `window` binary: see `unilog::cmd::window`.

// Windows, keys and jq values are many small allocations.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    unilog::cli::main("window", unilog::cmd::window::run)
}
