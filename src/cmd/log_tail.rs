//! `log-tail`: read events out of a log.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;

use crate::cli::{self, Outcome, OutputArgs};
use crate::inspect::{GroupPosition, GroupReport};
use crate::io::{self, Output};
use crate::location::Location;
use crate::position::{self, PositionWriter};
use crate::resume;
use crate::store::record::Record;
use crate::store::{self, append, Log, LogConsumer, PartitionReader, StartAt};
use crate::time;

/// How often a follower looks for new events.
const POLL_INTERVAL: Duration = Duration::from_millis(5);
/// Records written between group commits while catching up.
const COMMIT_EVERY: u64 = 1 << 16;

/// Read events out of a log, as newline-delimited JSON.
///
/// Reads each partition from --from to its end (or on, with --follow),
/// checking every record's CRC-32C; a damaged record is reported with its
/// offset and never passed on. With --group, reading starts where the group
/// left off and the group's position is committed only after the events
/// are flushed downstream (at-least-once).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  log-tail raw.log                            # everything, then exit
  log-tail raw.log --from -10                 # the last 10 events of each partition
  log-tail raw.log --from @2026-11-27T09:00:00Z --count 100
  log-tail raw.log --group enrich --follow | validate | enrich ...
  log-tail raw.log --group enrich --positions # end offsets, committed positions, lag
  log-tail raw.log --group enrich --reset-to beginning
  log-tail raw.log --from @-1h                # appended in the last hour
  log-tail raw.log --inspect                  # partitions, sizes, times, schemas, groups
  log-tail raw.log --follow --wait            # wait for the log to be created
  log-tail raw.log --verify                   # check every record
  log-tail raw.log --with-position | window ... # pass partition and offset on
  log-tail kafka://127.0.0.1:9092/raw --group enrich --follow  # the same on Kafka

--from takes: beginning, end, an OFFSET, -N (the last N), or @TIME: the
first event appended at or after TIME, by the log's append time (not a
time inside the event), as RFC 3339 (@2026-11-27T09:00:00Z), @now, or
relative to now (@-1h, @-30m, @-7d).
With --group, --from applies to partitions the group has not committed yet.

If a reader falls behind retention (the events it was about to read were
deleted), it says how many it missed and goes on from the oldest event left;
with --missed stop it stops instead, with exit status 3.

Output is written in blocks; a log-tail killed by a signal can leave a last
line cut short (it has no newline and is not valid JSON). With --group that
event was not committed, so the next run delivers it again whole.

Exit status: 0 ok, 2 usage, I/O error or a damaged log, 3 events were
deleted by retention before they were read (--missed stop)."
)]
pub struct Args {
    /// The log directory, or a Kafka topic,
    /// kafka://HOST:PORT[,HOST:PORT...]/TOPIC.
    #[arg(value_name = "LOG")]
    pub log: PathBuf,

    /// Where to start in each partition: beginning, end, OFFSET, -N or @TIME
    /// (append time: RFC 3339, @now, @-1h, @-30m).
    #[arg(long, value_name = "WHERE", allow_hyphen_values = true)]
    pub from: Option<String>,

    /// Stop after N events.
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,

    /// Read only this partition (repeatable).
    #[arg(short = 'p', long = "partition", value_name = "N")]
    pub partitions: Vec<u32>,

    /// Keep reading: wait for new events and print them as they arrive.
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Read as consumer group NAME: start at its committed positions and
    /// commit them as events are delivered.
    #[arg(short = 'g', long, value_name = "NAME")]
    pub group: Option<String>,

    /// Print each partition's start and end offsets (and, with --group, the
    /// group's position and lag), then exit.
    #[arg(long, conflicts_with_all = ["follow", "count", "verify", "reset_to"])]
    pub positions: bool,

    /// Move --group to beginning, end, OFFSET or @TIME, then exit.
    #[arg(long, value_name = "WHERE", requires = "group", allow_hyphen_values = true, conflicts_with_all = ["follow", "count", "verify"])]
    pub reset_to: Option<String>,

    /// Check every record of every partition and report, then exit.
    #[arg(long, conflicts_with_all = ["follow", "count", "group"])]
    pub verify: bool,

    /// When retention has deleted events before this reader got to them:
    /// warn (say how many on stderr and go on from the oldest event left)
    /// or stop (exit 3, with the group, if any, still before the gap).
    #[arg(long, value_name = "WHAT", value_enum, default_value_t = MissedPolicy::Warn)]
    pub missed: MissedPolicy,

    /// Add each event's log position as a first member,
    /// "unilog":{"log":ID,"partition":P,"offset":O,"time":MS}, for tools
    /// and destinations that need it (ID is the log's own, from log.json).
    /// A position an event was stored with is replaced by its place here.
    #[arg(long)]
    pub with_position: bool,

    /// Start each partition where DEST needs it: a log that log-append
    /// filled from this one, an archive directory, or a window --state
    /// directory. Repeat it for every destination of the pipeline (events
    /// and failures); each partition starts at the earliest place any of
    /// them needs, and they drop what they already hold, so a rerun of the
    /// same pipeline after a crash loses and repeats nothing. Partitions no
    /// destination knows start at --from. Implies --with-position.
    #[arg(long, value_name = "DEST", conflicts_with_all = ["group", "verify", "positions"])]
    pub resume_from: Vec<PathBuf>,

    /// Say on stderr where each partition starts and why (with --resume-from).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Show what the log holds, then exit: partitions, offsets, sizes,
    /// append-time range, events by schema, groups and their lag,
    /// retention. Reads every record (and checks it).
    #[arg(long, conflicts_with_all = ["follow", "count", "verify", "reset_to", "positions", "group"])]
    pub inspect: bool,

    /// With --inspect, also the range of event times at PATH (RFC 3339 or
    /// epoch ms), such as .data.timestamp.
    #[arg(long, value_name = "PATH", requires = "inspect")]
    pub event_time: Option<crate::path::FieldPath>,

    /// With --inspect or --positions: one JSON object, for scripts.
    #[arg(long)]
    pub json: bool,

    /// With --follow: wait for a log that does not exist yet (as tail -F).
    #[arg(long)]
    pub wait: bool,

    /// On Kafka: give up on the broker (connecting, offsets, commits) after
    /// this long [default: 10s, or UNILOG_KAFKA_TIMEOUT].
    #[arg(long, value_name = "DURATION", value_parser = cli::duration_arg)]
    pub timeout: Option<i64>,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// What a reader does when retention deleted events it had not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MissedPolicy {
    /// Say how many were missed and go on from the oldest event left (as
    /// Kafka's auto.offset.reset=earliest).
    Warn,
    /// Stop with exit status 3.
    Stop,
}

/// Parses a `--from` or `--reset-to` value.
pub fn parse_start(text: &str) -> Result<StartAt> {
    Ok(match text {
        "beginning" | "earliest" => StartAt::Beginning,
        "end" | "latest" => StartAt::End,
        _ if text.starts_with('@') => {
            StartAt::Time(time::parse_point_ms(&text[1..], time::now_ms())?)
        }
        _ if text.starts_with('-') => StartAt::Last(
            text[1..]
                .parse()
                .with_context(|| format!("{text:?}: -N must be a count, like -10"))?,
        ),
        _ => StartAt::Offset(text.parse().with_context(|| {
            format!("{text:?} is not a place to start: use beginning, end, an offset, -N or @TIME")
        })?),
    })
}

/// Runs `log-tail`.
pub fn run(args: Args) -> Result<Outcome> {
    let location = Location::parse(&args.log)?;
    match location.as_dir() {
        Some(dir) => {
            crate::location::check_readable(dir)?;
            if args.wait && !crate::location::wait_for(dir)? {
                return Ok(Outcome::Ok);
            }
        }
        None if args.wait => {
            bail!("--wait waits for a file log to be made; {location} is a Kafka topic (create it with log-append --partitions N)")
        }
        None => {}
    }
    if args.verify || args.inspect || (args.positions && args.json && location.as_dir().is_some()) {
        let what = if args.verify {
            "--verify"
        } else if args.inspect {
            "--inspect"
        } else {
            "--positions --json"
        };
        let Some(dir) = location.as_dir() else {
            bail!("{what} reads the file log's own files; {location} is not a file log");
        };
        let log = Log::open(dir)?;
        let partitions = pick_partitions(log.partitions(), &args.partitions, |p| {
            log.check_partition(p)
        })?;
        if args.verify {
            return verify(&log, &partitions);
        }
        let (g, at) = (args.group.as_deref(), args.event_time.as_ref());
        let (positions, json) = (args.positions, args.json);
        return crate::inspect::print(&log, &partitions, at, positions, json, g, &args.output);
    }
    let timeout = args
        .timeout
        .map(|ms| Duration::from_millis(ms.max(1) as u64));
    let mut consumer = store::open_consumer(&location, timeout)?;
    let consumer = &mut *consumer;
    let partitions = pick_partitions(consumer.partitions(), &args.partitions, |p| {
        consumer.check_partition(p)
    })?;
    if args.positions {
        let group = args.group.as_deref();
        return show_positions(consumer, &partitions, group, args.json, &args.output);
    }
    let from = args.from.as_deref().map(parse_start).transpose()?;
    let with_position = args.with_position || !args.resume_from.is_empty();
    let log_id = if with_position {
        Some(consumer.id()?)
    } else {
        None
    };
    let resume = match &log_id {
        Some(id) if !args.resume_from.is_empty() => Some(resume::Resume::from_destinations(
            &args.resume_from,
            id,
            &partitions,
            args.verbose,
        )?),
        _ => None,
    };
    let group = args.group.as_deref();
    let committed = match group {
        Some(g) => consumer.join(g)?,
        None => Default::default(),
    };
    if let Some(to) = &args.reset_to {
        let group = group.expect("clap requires --group");
        return reset_group(consumer, &partitions, group, parse_start(to)?, &args.output);
    }
    let mut starts = Vec::with_capacity(partitions.len());
    for &p in &partitions {
        let committed = committed.get(&p).copied();
        let resumed = resume.as_ref().and_then(|r| r.start(p));
        let start = match (committed, resumed) {
            (Some(committed), _) => StartAt::Offset(committed),
            (None, Some(offset)) => StartAt::Offset(offset),
            (None, None) => from.unwrap_or(StartAt::Beginning),
        };
        if let (Some(committed), Some(g)) = (committed, group) {
            check_group_position(consumer, g, p, committed)?;
        }
        starts.push((p, start));
    }
    consumer.assign(&starts, args.follow)?;
    if args.follow {
        // A follower stopped by Ctrl-C or a service manager flushes what it
        // has and commits its group before it goes.
        cli::stop_on_signals();
    }
    let mut out = args.output.open()?;
    let mut tail = Tail {
        out: &mut out,
        missed: args.missed,
        here: log_id.map(|log| PositionWriter::new(&log)),
        remaining: args.count.unwrap_or(u64::MAX),
        buf: Vec::new(),
        progress: cli::Progress::new("events"),
    };
    tail.run(consumer, group.is_some(), args.follow)?;
    Ok(Outcome::Ok)
}

/// The partitions to read: those given (each checked), or all.
fn pick_partitions(
    count: u32,
    given: &[u32],
    check: impl Fn(u32) -> Result<()>,
) -> Result<Vec<u32>> {
    if given.is_empty() {
        return Ok((0..count).collect());
    }
    for &p in given {
        check(p)?;
    }
    Ok(given.to_vec())
}

struct Tail<'o> {
    out: &'o mut Output,
    missed: MissedPolicy,
    /// When positions are written: writes them, for this log.
    here: Option<PositionWriter>,
    remaining: u64,
    buf: Vec<u8>,
    /// Shown on a terminal while catching up (see `cli::progress_wanted`).
    progress: cli::Progress,
}

impl Tail<'_> {
    fn run(&mut self, consumer: &mut dyn LogConsumer, group: bool, follow: bool) -> Result<()> {
        let mut since_commit = 0u64;
        let mut unflushed = false;
        while self.remaining > 0 {
            let polled = consumer.poll(self.remaining, &mut |p, rec| self.emit(p, rec))?;
            let delivered = polled.records;
            self.remaining -= delivered;
            if let Some((p, gap)) = polled.missed {
                let what = format!(
                    "partition {p}: {} event{} (offsets {} to {}) were deleted by retention before they were read",
                    gap.count(),
                    if gap.count() == 1 { "" } else { "s" },
                    gap.from,
                    gap.to - 1
                );
                if self.missed == MissedPolicy::Stop {
                    // The group stays before the gap, so a rerun stops
                    // again rather than skipping it unseen.
                    self.out.flush().context("cannot write output")?;
                    if group {
                        let positions: Vec<(u32, u64)> = consumer
                            .positions()
                            .into_iter()
                            .map(|(q, at)| (q, if q == p { gap.from } else { at }))
                            .collect();
                        consumer.commit(&positions)?;
                    }
                    return Err(cli::ExitError {
                        code: cli::EXIT_MISSED,
                        message: format!(
                            "{what}; stopping (--missed stop). To go on from the oldest event left, run with --from {} (or --group NAME --reset-to {}), or without --missed stop",
                            gap.to, gap.to
                        ),
                    }
                    .into());
                }
                cli::warn(format_args!("{what}; going on from offset {}", gap.to));
            }
            self.progress.add(delivered);
            since_commit += delivered;
            unflushed |= delivered > 0;
            let all_at_end = polled.at_end;
            if since_commit >= COMMIT_EVERY || (all_at_end && unflushed) {
                self.flush_and_commit(consumer, group)?;
                since_commit = 0;
                unflushed = false;
            }
            if all_at_end {
                self.progress.finish();
                if !follow {
                    break;
                }
                if io::stdout_closed() {
                    return Ok(());
                }
                if cli::stop_requested() {
                    break;
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        }
        self.flush_and_commit(consumer, group)
    }

    /// Flushes the output, then commits the group's positions: an event is
    /// committed only once it has left this process (at-least-once).
    fn flush_and_commit(&mut self, consumer: &mut dyn LogConsumer, group: bool) -> Result<()> {
        self.out.flush().context("cannot write output")?;
        if group {
            consumer.commit(&consumer.positions())?;
        }
        Ok(())
    }

    #[inline]
    fn emit(&mut self, partition: u32, rec: Record<'_>) -> Result<()> {
        let Some(here) = &mut self.here else {
            return self
                .out
                .write_line(rec.event)
                .context("cannot write output");
        };
        // The member is made here and the event's own bytes go straight
        // to the output: no copy of the whole event per record.
        self.buf.clear();
        let rest = rest_of(rec.event);
        here.write_head(&mut self.buf, partition, rec.offset, rec.time_ms, rest);
        self.out
            .write_parts(&[&self.buf, rest])
            .context("cannot write output")
    }
}

/// Writes the record's event with its place here first, in place of the
/// position it was stored with, if any (what [`Tail::emit`] writes).
#[cfg(test)]
fn with_position(buf: &mut Vec<u8>, here: &PositionWriter, partition: u32, rec: &Record<'_>) {
    here.write_before(buf, partition, rec.offset, rec.time_ms, rest_of(rec.event));
}

/// The event's members after its `{`, without the position it was stored
/// with, if any: `--with-position` puts its own there, the rest of the
/// event is left as it was.
fn rest_of(event: &[u8]) -> &[u8] {
    match position::locate_ref(event) {
        Ok(Some(stored)) => stored.rest(event),
        // Not a position member (or none): the event's members stay as they are.
        _ => {
            let open = event.iter().position(|&b| b == b'{').unwrap_or(0);
            &event[open + 1..]
        }
    }
}

/// A group position past the partition's end (its events were lost, or its
/// file was edited) would wait forever for offsets already given to other
/// events: it is an error that says how to reset.
fn check_group_position(
    consumer: &mut dyn LogConsumer,
    group: &str,
    p: u32,
    committed: u64,
) -> Result<()> {
    let (_, end) = consumer.bounds(p)?;
    if committed > end {
        bail!(
            "group {group:?} is at offset {committed} of partition {p}, past its end ({end}): the log lost events after the group read them, or the group's positions were changed. Nothing was read. Reset it with `log-tail {} --group {group} --reset-to end` (or beginning, or an offset up to {end})",
            consumer.location(),
        );
    }
    Ok(())
}

/// `--positions`: each partition's bounds and, with a group, its position
/// and lag, as a table or (`json`) as the file log's `--positions --json`.
fn show_positions(
    consumer: &mut dyn LogConsumer,
    partitions: &[u32],
    group: Option<&str>,
    json: bool,
    output: &OutputArgs,
) -> Result<Outcome> {
    let committed = group.map(|g| consumer.committed(g)).transpose()?;
    let mut bounds = Vec::with_capacity(partitions.len());
    let mut rows = Vec::with_capacity(partitions.len());
    let mut total_lag = 0;
    let mut past_end = Vec::new();
    for &p in partitions {
        let (start, end) = consumer.bounds(p)?;
        bounds.push((p, start, end));
        if let Some(c) = &committed {
            let position = c.get(&p).copied();
            let lag = match position {
                Some(o) if o > end => {
                    past_end.push((p, o, end));
                    None
                }
                other => Some(end - other.unwrap_or(start).clamp(start, end)),
            };
            total_lag += lag.unwrap_or(0);
            rows.push(GroupPosition {
                partition: p,
                position,
                end,
                lag,
            });
        }
    }
    let mut out = output.open()?;
    if json {
        let list: Vec<_> = bounds
            .iter()
            .map(|&(p, start, end)| {
                serde_json::json!({"partition": p, "start": start, "end": end, "events": end - start})
            })
            .collect();
        let mut value = serde_json::json!({"log": consumer.location(), "partitions": list});
        if let Some(g) = group {
            value["group"] = serde_json::to_value(GroupReport {
                group: g.to_string(),
                committed_at: None,
                lag: total_lag,
                partitions: rows,
            })?;
        }
        out.write_line(serde_json::to_string(&value)?.as_bytes())?;
    } else {
        let header = match group {
            Some(g) => format!("partition\tstart\tend\tgroup:{g}\tlag"),
            None => "partition\tstart\tend\tevents".to_string(),
        };
        out.write_line(header.as_bytes())?;
        for (i, &(p, start, end)) in bounds.iter().enumerate() {
            let line = match rows.get(i) {
                Some(row) => {
                    let shown = row
                        .position
                        .map(|o| o.to_string())
                        .unwrap_or_else(|| "-".into());
                    let lag = row
                        .lag
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "past-end".into());
                    format!("{p}\t{start}\t{end}\t{shown}\t{lag}")
                }
                None => format!("{p}\t{start}\t{end}\t{}", end - start),
            };
            out.write_line(line.as_bytes())?;
        }
        if committed.is_some() && partitions.len() > 1 {
            out.write_line(format!("total\t\t\t\t{total_lag}").as_bytes())?;
        }
    }
    out.flush()?;
    if let (Some(g), false) = (group, past_end.is_empty()) {
        for (p, position, end) in &past_end {
            cli::warn(format_args!(
                "group {g:?} is at offset {position} of partition {p}, past its end ({end}): it would never receive new events"
            ));
        }
        bail!(
            "group {g:?} has positions past the end of {} partition(s); reset it with `log-tail {} --group {g} --reset-to end` (or beginning, or an offset)",
            past_end.len(),
            consumer.location()
        );
    }
    Ok(Outcome::Ok)
}

fn reset_group(
    consumer: &mut dyn LogConsumer,
    partitions: &[u32],
    group: &str,
    to: StartAt,
    output: &OutputArgs,
) -> Result<Outcome> {
    let mut positions = Vec::new();
    for &p in partitions {
        if let StartAt::Offset(o) = to {
            let (_, end) = consumer.bounds(p)?;
            if o > end {
                bail!("partition {p} ends at offset {end}; a group cannot be reset past it to {o}");
            }
        }
        positions.push((p, consumer.resolve(p, to)?));
    }
    consumer.commit(&positions)?;
    let mut out = output.open()?;
    for (p, position) in positions {
        out.write_line(
            format!("group {group} partition {p} reset to offset {position}").as_bytes(),
        )?;
    }
    out.flush()?;
    Ok(Outcome::Ok)
}

fn verify(log: &Log, partitions: &[u32]) -> Result<Outcome> {
    let mut damaged = 0;
    for &p in partitions {
        let mut reader = PartitionReader::open(log, p, StartAt::Beginning)?;
        let first = reader.position();
        let mut count = 0u64;
        let result = loop {
            // Counted as delivered, so a damaged partition still reports
            // the good records before the damage.
            match reader.read(usize::MAX, &mut |_| {
                count += 1;
                Ok(())
            }) {
                Ok(progress) => {
                    if progress.at_end {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match result {
            Ok(()) => {
                let torn = append::inspect_tail(log, p)?
                    .map(|t| t.torn_bytes)
                    .unwrap_or(0);
                let note = if torn > 0 {
                    format!("; a torn tail of {torn} bytes after it is not read (the next log-append removes it)")
                } else {
                    String::new()
                };
                let last = if count > 0 {
                    format!("{}", first + count - 1)
                } else {
                    "-".into()
                };
                cli::warn(format_args!(
                    "partition {p}: ok, {count} records, offsets {first} to {last}{note}"
                ));
            }
            Err(e) => {
                damaged += 1;
                cli::warn(format_args!(
                    "partition {p}: DAMAGED after {count} good records: {e:#}"
                ));
            }
        }
    }
    if damaged > 0 {
        bail!("{damaged} damaged partition(s) in {}", log.dir().display());
    }
    Ok(Outcome::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_forms() {
        assert_eq!(parse_start("beginning").unwrap(), StartAt::Beginning);
        assert_eq!(parse_start("end").unwrap(), StartAt::End);
        assert_eq!(parse_start("42").unwrap(), StartAt::Offset(42));
        assert_eq!(parse_start("-5").unwrap(), StartAt::Last(5));
        assert!(matches!(
            parse_start("@2026-11-27T09:00:00Z").unwrap(),
            StartAt::Time(_)
        ));
        assert!(parse_start("soon").is_err());
        assert!(parse_start("-x").is_err());
    }

    #[test]
    fn position_is_spliced_in_first() {
        let rec = Record {
            offset: 7,
            time_ms: 99,
            event: br#"{"a":1}"#,
        };
        let mut buf = Vec::new();
        with_position(&mut buf, &PositionWriter::new("L"), 2, &rec);
        assert_eq!(
            buf,
            br#"{"unilog":{"log":"L","partition":2,"offset":7,"time":99},"a":1}"#
        );
        buf.clear();
        let rec = Record {
            offset: 0,
            time_ms: 1,
            event: b"{ }",
        };
        with_position(&mut buf, &PositionWriter::new("L"), 0, &rec);
        assert_eq!(
            buf,
            br#"{"unilog":{"log":"L","partition":0,"offset":0,"time":1} }"#
        );
    }

    #[test]
    fn a_stored_position_is_replaced_by_this_logs() {
        let rec = Record {
            offset: 3,
            time_ms: 5,
            event: br#"{"unilog":{"log":"UP","partition":1,"offset":70,"by":"log-append"},"a":1}"#,
        };
        let mut buf = Vec::new();
        with_position(&mut buf, &PositionWriter::new("L"), 0, &rec);
        assert_eq!(
            buf,
            br#"{"unilog":{"log":"L","partition":0,"offset":3,"time":5},"a":1}"#
        );
    }
}
