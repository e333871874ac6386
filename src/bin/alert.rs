//! The `alert` binary: see `unilog::cmd::alert`.

// Events that may match a rule are built as trees of small jq values and
// dropped again; mimalloc makes those allocations cheap (as in enrich).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    unilog::cli::main("alert", unilog::cmd::alert::run)
}
