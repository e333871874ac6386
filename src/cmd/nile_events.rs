//! `nile-events`: the seeded Nile event generator ([`crate::gen`]) as a tool
//! of its own, so the demo, the README's examples and the benchmarks need
//! no cargo to make their data.

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{Outcome, OutputArgs, Progress};
use crate::gen::{generate_each, GenOptions};

/// Generate self-describing Nile shopper events (the book's store), one
/// JSON object per line.
///
/// Shoppers view products, add some to their carts and place orders, or
/// leave with full carts (the abandoned carts of chapter 4). The events
/// match examples/schemas (com.nile/shopper_viewed_product,
/// shopper_added_to_cart, shopper_placed_order). The same seed gives the
/// same events, byte for byte, so demos and benchmarks are repeatable.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  nile-events --count 1000 > events.ndjson
  nile-events --count 1000000 --seed 42 | log-append raw.log --partitions 4 --key .data.shopper.id
  nile-events --count 100 --start 2026-11-27T00:00:00Z | validate --registry examples/schemas

Exit status: 0 written (or the reader went away), 2 usage or I/O error."
)]
pub struct Args {
    /// Number of events.
    #[arg(short = 'n', long, value_name = "N", default_value_t = 1000)]
    pub count: u64,

    /// Random seed; the same seed gives the same events.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub seed: u64,

    /// Distinct shoppers.
    #[arg(long, value_name = "N", default_value_t = 5000)]
    pub shoppers: u64,

    /// Time of the first event (RFC 3339); later events follow a few
    /// milliseconds apart.
    #[arg(long, value_name = "TIME", default_value = "2026-11-27T09:00:00Z")]
    pub start: String,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `nile-events`.
pub fn run(args: Args) -> Result<Outcome> {
    let options = GenOptions {
        count: args.count,
        seed: args.seed,
        shoppers: args.shoppers,
        start_ms: crate::time::parse_rfc3339_ms(&args.start)
            .with_context(|| format!("--start {:?}", args.start))?,
    };
    let mut out = args.output.open()?;
    let mut progress = Progress::new("events");
    let mut bytes = 0u64;
    let mut written = 0u64;
    generate_each(&options, &mut |line: &[u8]| {
        written += 1;
        bytes += line.len() as u64 + 1;
        progress.update(written, bytes);
        out.write_line(line)
    })?;
    progress.finish();
    out.flush().context("cannot write output")?;
    Ok(Outcome::Ok)
}
