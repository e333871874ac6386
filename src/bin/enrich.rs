//! The `enrich` binary: see `unilog::cmd::enrich`.

// A jq step builds and drops a tree of small values per event; mimalloc
// makes that allocation markedly cheaper than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    unilog::cli::main("enrich", unilog::cmd::enrich::run)
}
