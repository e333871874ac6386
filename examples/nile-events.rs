//! Writes seeded, realistic Nile e-commerce events (NDJSON) to stdout.
//!
//! `cargo run --release --example nile-events -- --count 1000000 --seed 42`

use std::io::Write;

use clap::Parser;
use unilog::gen::{generate, GenOptions};

/// Generate self-describing Nile shopper events.
#[derive(Parser)]
struct Args {
    /// Number of events.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Random seed; the same seed gives the same events.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Distinct shoppers.
    #[arg(long, default_value_t = 5000)]
    shoppers: u64,
    /// Time of the first event (RFC 3339).
    #[arg(long, default_value = "2026-11-27T09:00:00Z")]
    start: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let options = GenOptions {
        count: args.count,
        seed: args.seed,
        shoppers: args.shoppers,
        start_ms: unilog::time::parse_rfc3339_ms(&args.start)?,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match generate(&options, &mut out).and_then(|_| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
