//! `archive`: write events into a time-partitioned archive; verify it;
//! replay it; say where a reader resumes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;

use crate::archive::avro::BlockCodec;
use crate::archive::layout::{Format, Layout, PeriodLength};
use crate::archive::ndjson::Compression;
use crate::archive::replay::{Criterion, Filter};
use crate::archive::roll::RollPolicy;
use crate::archive::writer::{Archiver, Options};
use crate::archive::{self, verify};
use crate::cli::{self, FailureArgs, InputArgs, Outcome, OutputArgs};
use crate::io::{self, Failures, FilterStep};
use crate::path::FieldPath;
use crate::schema::registry::Resolver;

/// Write events into a time-partitioned archive of Avro or compressed
/// NDJSON files; verify it; replay it.
///
/// Events go to DIR/VENDOR/NAME/FORMAT-MODEL/dt=YYYY-MM-DD/hr=HH/ (Hive
/// style, so Spark, Hive and DuckDB read each schema as a table), placed by
/// --time (the event's own time) or by the log's append time, in UTC unless
/// --tz names a zone. Files are cut by --roll-events, --roll-size and at
/// period boundaries, decided by the events alone, so the same input cuts
/// the same files. Each file is written under a hidden temporary name,
/// fsynced, and renamed with the others of its segment once a manifest in
/// DIR/_unilog/ commits them: a reader never sees half a file.
///
/// Exactly-once: events read with `log-tail --with-position` carry their
/// source log, partition and offset; files are named
/// LOG+PARTITION-FIRST-LAST.EXT by the first and last offsets of their
/// segment (LOG is the source log's id, %-escaped). A run killed at any
/// moment and started again with the same command line drops every event
/// the finished files already hold, deletes the killed run's temporary
/// files and never rewrites a finished file: each event is in the archive
/// exactly once. Events without a position are archived at least once
/// (a rerun cannot tell which are in).
///
/// Avro files use the event's own Avro schema when the event names one
/// (iglu:…/avro/…) and the registry has it; every other event goes into
/// the generic envelope io.unilog.archive.Event (position, time, schema
/// URI, the event's text). Either way --replay gives back the bytes that
/// came in.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  log-tail raw.log --with-position | archive --to archive/ --time .data.timestamp
  log-tail raw.log --with-position --resume-from archive/ | archive --to archive/  # from cron
  archive --to archive/ --format ndjson.zst --tz Europe/Berlin events.ndjson
  archive --positions archive/               # per source partition, the offset to read next
  archive --verify archive/                  # gaps, duplicates, overlaps, damage
  archive --replay archive/ --since 2026-11-27T00:00:00Z --schema 'com.nile/shopper_*' | validate
  archive --replay archive/ --with-position | window ...
  duckdb -c \"SELECT count(*) FROM read_ndjson('archive/com.nile/*/*/*/*/*.ndjson.zst', hive_partitioning=true)\"

Layout:
  DIR/_unilog/archive.json                     the archive's layout (--time, --tz, --period)
  DIR/_unilog/segments/LOG+P/FIRST-LAST.json    which files each segment committed
  DIR/VENDOR/NAME/FORMAT-MODEL/dt=…/hr=…/LOG+P-FIRST-LAST[.VERSION].avro|ndjson.zst|ndjson.gz
  DIR/…/nopos-RUN-SEQ.EXT                       events without positions (at-least-once)
  DIR/…/dt=…/hr=…/_SUCCESS                      the period is final (--finalize-after)

--time takes RFC 3339 text or whole ms since the epoch. A missing or
unparseable time, a malformed position, an event that does not fit its Avro
schema, or one that comes after its period was finalized becomes a failure
event (see --bad), with the reason.

Exit status: 0 ok, 1 some events failed (or --verify found something),
2 usage or I/O error (a full disk: nothing half-written is left, and the
next run completes the archive)."
)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["to", "positions", "verify", "replay"])))]
pub struct Args {
    /// Archive the input into DIR (made if missing).
    #[arg(long, value_name = "DIR")]
    pub to: Option<PathBuf>,

    /// Print, per source partition, the offset a reader starts at to
    /// continue this archive (`log-tail --partition P --from NEXT`).
    #[arg(long, value_name = "DIR")]
    pub positions: Option<PathBuf>,

    /// Read every file of DIR and report coverage and findings.
    #[arg(long, value_name = "DIR")]
    pub verify: Option<PathBuf>,

    /// Write the archived events of DIR back out as NDJSON.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,

    #[command(flatten)]
    pub input: InputArgs,

    /// File format.
    #[arg(long, value_enum, default_value = "avro")]
    pub format: Format,

    /// Avro block codec: null, deflate, snappy or zstd.
    #[arg(long, value_name = "CODEC", default_value = "deflate", value_parser = ["null", "deflate", "snappy", "zstd"])]
    pub codec: String,

    /// Compression level (deflate and gzip 0–9, default 6; zstd 1–22, default 3).
    #[arg(long, value_name = "N")]
    pub level: Option<i32>,

    /// The event's time, a jq-style path such as .data.timestamp; default
    /// the log's append time (needs log-tail --with-position).
    #[arg(long, value_name = "PATH")]
    pub time: Option<String>,

    /// The time zone periods are local to (default UTC), such as Europe/Berlin.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// One directory per hour or per day.
    #[arg(long, value_enum, default_value = "hour")]
    pub period: PeriodLength,

    /// Cut a segment after N events.
    #[arg(long, value_name = "N", default_value = "1000000", value_parser = clap::value_parser!(u64).range(1..))]
    pub roll_events: u64,

    /// Cut a segment after this many bytes of events (before compression).
    #[arg(long, value_name = "SIZE", default_value = "128MiB", value_parser = cli::size_arg)]
    pub roll_size: u64,

    /// Write _SUCCESS into a period's directories once the events' time
    /// (the least over source partitions) is this far past its end; later
    /// events for it become failure events.
    #[arg(long, value_name = "DUR", value_parser = cli::duration_arg)]
    pub finalize_after: Option<i64>,

    /// A static schema registry (DIR/VENDOR/NAME/FORMAT/VERSION) for Avro
    /// schemas; repeatable. Default ./schemas, then the built-ins.
    #[arg(long, value_name = "DIR", conflicts_with = "resolver")]
    pub registry: Vec<PathBuf>,

    /// An Iglu resolver configuration, as validate takes.
    #[arg(long, value_name = "FILE")]
    pub resolver: Option<PathBuf>,

    /// Lines longer than this are failures, not events.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, default_value = "1MiB")]
    pub max_event_bytes: u64,

    /// Replay only events placed at or after TIME (RFC 3339).
    #[arg(long, value_name = "TIME", requires = "replay")]
    pub since: Option<String>,

    /// Replay only events placed before TIME (RFC 3339).
    #[arg(long, value_name = "TIME", requires = "replay")]
    pub until: Option<String>,

    /// Replay only schemas matching CRITERION: iglu:VENDOR/NAME/FORMAT/M-R-A
    /// with * for any part, or VENDOR/NAME.
    #[arg(long, value_name = "CRITERION", requires = "replay")]
    pub schema: Option<String>,

    /// Replay events with their position member first, as log-tail
    /// --with-position writes it.
    #[arg(long)]
    pub with_position: bool,

    /// --verify and --positions: NDJSON instead of text.
    #[arg(long)]
    pub json: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Print a summary on stderr (always on a terminal).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub failures: FailureArgs,
}

/// Runs `archive`.
pub fn run(args: Args) -> Result<Outcome> {
    if let Some(dir) = &args.positions {
        return positions(dir, &args);
    }
    if let Some(dir) = &args.verify {
        let report = verify::verify(dir)?;
        let mut out = args.output.open()?;
        if args.json {
            for line in report.json_lines() {
                out.write_line(line.to_string().as_bytes())?;
            }
        } else {
            out.write_lines(report.human(dir).as_bytes())?;
        }
        out.flush()?;
        return Ok(Outcome::from_failures(report.findings.len() as u64));
    }
    if let Some(dir) = &args.replay {
        let filter = Filter {
            since: args
                .since
                .as_deref()
                .map(crate::time::parse_rfc3339_ms)
                .transpose()?,
            until: args
                .until
                .as_deref()
                .map(crate::time::parse_rfc3339_ms)
                .transpose()?,
            schema: args.schema.as_deref().map(Criterion::parse).transpose()?,
        };
        let mut out = args.output.open()?;
        let n = archive::replay::replay(dir, &filter, args.with_position, &mut out)?;
        if args.verbose {
            cli::warn(format_args!("{n} events replayed"));
        }
        return Ok(Outcome::Ok);
    }
    let dir = args.to.clone().expect("clap requires one mode");
    write(&dir, &args)
}

fn positions(dir: &std::path::Path, args: &Args) -> Result<Outcome> {
    let held = archive::held(dir)?;
    let mut out = args.output.open()?;
    if args.json {
        out.write_line(serde_json::to_string(&held)?.as_bytes())?;
    } else {
        out.write_line(b"log\tpartition\tnext")?;
        for (source, _) in held.iter() {
            let next = held.resume_at(source).unwrap_or(0);
            out.write_line(format!("{}\t{}\t{next}", source.log, source.partition).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

fn write(dir: &std::path::Path, args: &Args) -> Result<Outcome> {
    let time = args.time.as_deref().map(FieldPath::parse).transpose()?;
    let layout = Layout::new(time.as_ref(), args.tz.as_deref(), args.period)?;
    let level = args.level;
    let codec = match args.codec.as_str() {
        "null" => BlockCodec::Null,
        "deflate" => BlockCodec::Deflate(level.unwrap_or(6).clamp(0, 9) as u8),
        "snappy" => BlockCodec::Snappy,
        _ => BlockCodec::Zstd(level.unwrap_or(3).clamp(1, 22)),
    };
    let compression = match args.format {
        Format::NdjsonGz => Compression::Gzip(level.unwrap_or(6).clamp(0, 9) as u32),
        _ => Compression::Zstd(level.unwrap_or(3).clamp(1, 22)),
    };
    let resolver = Resolver::from_flags(&args.registry, args.resolver.as_deref())?;
    let inputs = io::open_inputs(&args.input.files)?;
    let total: Option<u64> = if args.input.files.is_empty() {
        None
    } else {
        args.input
            .files
            .iter()
            .map(|f| std::fs::metadata(f).ok().map(|m| m.len()))
            .sum()
    };
    let failures = Failures::open(&args.failures)?;
    let opts = Options {
        root: dir.to_path_buf(),
        layout,
        format: args.format,
        codec,
        compression,
        roll: RollPolicy {
            max_events: args.roll_events,
            max_bytes: args.roll_size,
        },
        finalize_after: args.finalize_after,
    };
    let mut archiver = Archiver::open(opts, failures, resolver)?;
    if archiver.stats.rolled_forward + archiver.stats.discarded > 0 {
        cli::warn(format_args!(
            "{}: an interrupted run left {} committed files to finish and {} temporary files to discard; done",
            dir.display(),
            archiver.stats.rolled_forward,
            archiver.stats.discarded
        ));
    }
    let max_line = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
    let progress = progress_bar(total);
    let mut bytes = 0u64;
    let mut lines = 0u64;
    let result = io::for_each_line(inputs, max_line, |step| {
        match step {
            FilterStep::Line {
                input,
                line_no,
                bytes: line,
            } => {
                bytes += line.len() as u64 + 1;
                archiver.event(input, line_no, line)?;
            }
            FilterStep::Unfit {
                input,
                line_no,
                message,
                original,
            } => archiver.unfit(input, line_no, message, original)?,
            FilterStep::Idle => {}
        }
        lines += 1;
        if lines.is_multiple_of(4096) {
            if let Some(p) = &progress {
                p.set_position(if total.is_some() { bytes } else { lines });
            }
        }
        Ok(())
    })
    .and_then(|read| archiver.finish().map(|_| read));
    if let Some(p) = &progress {
        p.finish_and_clear();
    }
    let read = match result {
        Ok(read) => read,
        Err(e) => {
            // Nothing half-written stays: this run's temporary files go
            // (a rerun would delete them too), finished segments stay.
            if let Err(cleanup) = archiver.abandon() {
                cli::warn(format_args!(
                    "could not clean up after the error: {cleanup:#}"
                ));
            }
            return Err(e).with_context(|| {
                format!(
                    "archive {} is intact up to its last finished segment; run the same command again to complete it",
                    dir.display()
                )
            });
        }
    };
    let s = archiver.stats;
    let failed = archiver.failed();
    if args.verbose || failed > 0 || cli::stderr_is_terminal() {
        cli::warn(format_args!(
            "{read} read, {} archived in {} files ({} segments), {} already held, {failed} failed{}",
            s.archived,
            s.files,
            s.segments,
            s.already_held,
            if s.finalized > 0 {
                format!(", {} period directories finalized", s.finalized)
            } else {
                String::new()
            }
        ));
    }
    Ok(Outcome::from_failures(failed))
}

/// A progress bar on stderr when it is a terminal (never in a pipe's
/// data): bytes of the named files, or a count of events from stdin.
fn progress_bar(total: Option<u64>) -> Option<indicatif::ProgressBar> {
    cli::claim_progress();
    if !cli::progress_wanted() {
        return None;
    }
    let bar = match total {
        Some(n) => {
            let b = indicatif::ProgressBar::new(n);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "archive: {bar:30} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        }
        None => {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "archive: {spinner} {pos} events, {per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            b
        }
    };
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(4));
    Some(bar)
}
