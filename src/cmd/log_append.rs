//! `log-append`: write events into a log.

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use anyhow::{Context, Result};
use clap::Parser;

use crate::cli::{self, Counts, FailureArgs, InputArgs, Outcome, Progress};
use crate::event::{FailureMessage, Original};
use crate::io::{self, json_failure, Failures, FilterStep, Output};
use crate::json::{scan_object, scan_object_after};
use crate::location::Location;
use crate::path::FieldPath;
use crate::position::{self, Position as SourcePosition};
use crate::store::partitioner::partition_for_key;
use crate::store::{
    self, FileSettings, LogProducer, Position, ProducerMarks, ProducerOptions, Route,
};

/// Append newline-delimited JSON events to a log, durably.
///
/// Each input line must be one JSON object; it is appended as it is, byte for
/// byte. A line that is not (empty, not JSON, not an object, not UTF-8, too
/// large) is not appended: it becomes a failure event (see --bad) and the exit
/// code is 1. An event counts as appended only once it is fsynced (on Kafka:
/// acknowledged by the broker, acks=all, idempotent producer): when
/// log-append exits 0, or when --offsets prints its position. When the reader
/// of --offsets goes away, log-append goes on appending all its input and
/// says on stderr how many positions it could not print.
///
/// An event that carries its source position (the "unilog" member that
/// log-tail --with-position writes, kept by every filter) is appended at
/// most once: log-append records, with each durable batch, the highest
/// source position it holds per source partition, and drops (and counts)
/// an event whose position it already holds. The member stays in the
/// stored event, with "by":NAME added (the producer, see --producer) and
/// "time" left out (the record has its own), so
/// that log-tail --resume-from LOG knows where a rerun must start.
///
/// On Kafka, events are sent compressed with lz4 (the idempotent producer
/// sends one batch per round trip and partition, and lz4 puts about four
/// times as many events in a batch). Security and client settings come
/// from the environment, never from arguments: UNILOG_KAFKA_SECURITY_PROTOCOL,
/// UNILOG_KAFKA_SASL_MECHANISM, UNILOG_KAFKA_USERNAME, UNILOG_KAFKA_PASSWORD
/// or UNILOG_KAFKA_PASSWORD_FILE, UNILOG_KAFKA_TLS_CA, and
/// UNILOG_KAFKA_CONFIG, a file of librdkafka key=value settings (it may
/// change the tuning, compression.type=none say, but not acks or
/// idempotence).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  collector | log-append raw.log --key .data.shopper.id
  log-append raw.log --partitions 4 events.ndjson        # create with 4 partitions
  log-append raw.log --bad failures.ndjson < input.ndjson
  tail -F app.log | log-append app.events --offsets       # print each event's position
  log-append raw.log --retention 7d --retention-bytes 10GiB </dev/null  # change retention
  log-tail raw.log --resume-from out.log | enrich ... | log-append out.log  # exactly once
  log-append kafka://127.0.0.1:9092/raw --partitions 4 --key .data.shopper.id

Exit status: 0 all appended, 1 some lines were failures, 2 usage, I/O or log error."
)]
pub struct Args {
    /// The log directory (created when missing), or a Kafka topic,
    /// kafka://HOST:PORT[,HOST:PORT...]/TOPIC (created with --partitions).
    #[arg(value_name = "LOG")]
    pub log: PathBuf,

    #[command(flatten)]
    pub input: InputArgs,

    /// Pick each event's partition from the value at this jq-style path, with
    /// Kafka's murmur2 hash (events without it go round robin).
    #[arg(long, value_name = "PATH", conflicts_with = "partition")]
    pub key: Option<FieldPath>,

    /// Append every event to this partition.
    #[arg(long, value_name = "N")]
    pub partition: Option<u32>,

    /// Partitions of a new log (fixed once created; 1 when not given). Given
    /// for an existing log, it must match the log's count.
    #[arg(long, value_name = "N")]
    pub partitions: Option<u32>,

    /// Roll a segment when it would grow past this size.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg)]
    pub segment_bytes: Option<u64>,

    /// Roll a segment when its first event is this old.
    #[arg(long, value_name = "DURATION", value_parser = cli::duration_arg)]
    pub segment_age: Option<i64>,

    /// Delete segments whose events are all older than this.
    #[arg(long, value_name = "DURATION", value_parser = cli::duration_arg)]
    pub retention: Option<i64>,

    /// Delete the oldest segments while a partition is larger than this.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg)]
    pub retention_bytes: Option<u64>,

    /// Lines longer than this are failures, not events.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, default_value = "1MiB")]
    pub max_event_bytes: u64,

    /// Print each appended event's position, {"partition":P,"offset":O}, on
    /// stdout once it is durable.
    #[arg(long)]
    pub offsets: bool,

    /// Do not fsync (only for throwaway logs: a crash may lose events that
    /// were reported appended).
    #[arg(long)]
    pub no_sync: bool,

    /// On Kafka: give up on the broker (connecting, creating the topic,
    /// acknowledging events) after this long [default: 10s, or
    /// UNILOG_KAFKA_TIMEOUT].
    #[arg(long, value_name = "DURATION", value_parser = cli::duration_arg)]
    pub timeout: Option<i64>,

    /// Print a summary on stderr (always on a terminal).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub failures: FailureArgs,
}

/// Events are handed from the reading thread to the writing thread in
/// chunks of about this many bytes.
const CHUNK_BYTES: usize = 1 << 20;
/// Chunks in flight between the threads: enough to keep reading while the
/// writer waits for an fsync, few enough to keep memory flat.
const CHUNKS_IN_FLIGHT: usize = 8;
/// Written bytes that trigger an fsync when the input does not pause: large
/// batches make fsync cheap per event.
const SYNC_BYTES: u64 = 32 << 20;

/// Validated events on their way to the writer, in one arena.
#[derive(Default)]
struct Chunk {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    partitions: Vec<Option<u32>>,
    /// Each event's source position, for those that carry one.
    sources: Vec<Option<SourcePosition>>,
}

impl Chunk {
    fn push(&mut self, event: &[u8], partition: Option<u32>) {
        self.bytes.extend_from_slice(event);
        self.ends.push(self.bytes.len());
        self.partitions.push(partition);
        self.sources.push(None);
    }
    /// Adds a positioned event as it is stored: the member first, with the
    /// producer's name and without the source's append time (the record
    /// has its own; where it came from is log, partition and offset).
    fn push_positioned(
        &mut self,
        found: position::Located,
        line: &[u8],
        by: &position::StoredBy,
        partition: Option<u32>,
    ) {
        found.write_stored(&mut self.bytes, line, by);
        self.ends.push(self.bytes.len());
        self.partitions.push(partition);
        self.sources.push(Some(found.position));
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.partitions.clear();
        self.sources.clear();
    }
}

enum ToWriter {
    Events(Chunk),
    /// The input paused: make everything durable now.
    Sync,
}

/// Runs `log-append`.
///
/// One thread reads and validates lines; another writes and fsyncs, so
/// parsing, copying into the page cache and fsync overlap.
pub fn run(args: Args) -> Result<Outcome> {
    let location = Location::parse(&args.log)?;
    let inputs = io::open_inputs(&args.input.files)?;
    let mut failures = Failures::open(&args.failures)?;
    let options = ProducerOptions {
        partitions: args.partitions,
        no_sync: args.no_sync,
        file: FileSettings {
            segment_bytes: args.segment_bytes,
            segment_ms: args.segment_age,
            retention_ms: args.retention,
            retention_bytes: args.retention_bytes,
        },
        batch_bytes: CHUNK_BYTES,
        timeout: args
            .timeout
            .map(|ms| std::time::Duration::from_millis(ms.max(1) as u64)),
    };
    let mut appender = store::open_producer(&location, &options)?;
    if args.offsets {
        appender.want_positions();
    }
    let partitions = appender.partitions();
    if let Some(p) = args.partition {
        appender.check_partition(p)?;
    }
    let acks = Acks {
        out: if args.offsets {
            Some(Output::stdout(false)?)
        } else {
            None
        },
        wanted: args.offsets,
        printed: 0,
        lost: 0,
    };

    let producer_name = args.failures.producer_name().to_string();
    let stored_by = position::StoredBy::new(&producer_name);
    let dedup = Dedup {
        name: producer_name.clone(),
        producer: None,
        duplicates: 0,
    };
    let (to_writer, from_reader) = mpsc::sync_channel::<ToWriter>(CHUNKS_IN_FLIGHT);
    let (recycle, recycled) = mpsc::channel::<Chunk>();
    let writer = thread::Builder::new()
        .name("writer".into())
        .spawn(move || write_loop(appender, from_reader, recycle, acks, dedup))
        .context("cannot start the writer thread")?;

    let max_line = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
    let mut accepted = 0u64;
    let mut accepted_bytes = 0u64;
    let mut progress = Progress::new("events");
    let mut chunk = Chunk::default();
    // A send fails only when the writer has stopped; its own error, reported
    // below, says why.
    let send = |msg: ToWriter| {
        to_writer
            .send(msg)
            .map_err(|_| anyhow::anyhow!("the writer thread stopped"))
    };
    let reading = io::for_each_line(inputs, max_line, |step| {
        match step {
            FilterStep::Line {
                input,
                line_no,
                bytes,
            } => {
                let found = match position::locate(bytes) {
                    Ok(found) => found,
                    Err(message) => {
                        failures.route(
                            input,
                            line_no,
                            vec![FailureMessage::new(
                                crate::event::kind::BAD_POSITION,
                                message,
                            )],
                            Original::Line(bytes),
                        )?;
                        failures.processed(bytes);
                        return Ok(());
                    }
                };
                // locate has checked the member; only the rest needs a scan.
                let scanned = match &found {
                    Some(f) => scan_object_after(bytes, f.rest, args.key.as_ref()),
                    None => scan_object(bytes, args.key.as_ref()),
                };
                match scanned {
                    Ok(key) => {
                        let partition = args
                            .partition
                            .or_else(|| key.map(|k| partition_for_key(&k, partitions)));
                        match found {
                            None => chunk.push(bytes, partition),
                            Some(f) => chunk.push_positioned(f, bytes, &stored_by, partition),
                        }
                        accepted += 1;
                        accepted_bytes += bytes.len() as u64;
                        progress.update(accepted, accepted_bytes);
                        if chunk.bytes.len() >= CHUNK_BYTES {
                            let next = recycled.try_recv().unwrap_or_default();
                            send(ToWriter::Events(std::mem::replace(&mut chunk, next)))?;
                        }
                    }
                    Err(e) => failures.route(
                        input,
                        line_no,
                        vec![json_failure(&e)],
                        Original::Line(bytes),
                    )?,
                }
                failures.processed(bytes);
            }
            FilterStep::Unfit {
                input,
                line_no,
                message,
                original,
            } => failures.route(input, line_no, vec![message], original)?,
            FilterStep::Idle => {
                // The producer paused: make what we have durable now.
                failures.flush()?;
                let full = std::mem::replace(&mut chunk, recycled.try_recv().unwrap_or_default());
                send(ToWriter::Events(full))?;
                send(ToWriter::Sync)?;
            }
        }
        Ok(())
    })
    .and_then(|read| {
        failures.flush()?;
        send(ToWriter::Events(chunk))?;
        Ok(read)
    });
    drop(to_writer);
    progress.finish();
    // The writer's error, if it stopped, explains a failed send best.
    let (written, acks, duplicates) = writer
        .join()
        .map_err(|_| anyhow::anyhow!("the writer thread panicked"))??;
    if duplicates > 0 {
        if args.verbose || cli::stderr_is_terminal() {
            cli::warn(format_args!(
                "{duplicates} event{} dropped as duplicates: their source positions were already appended",
                if duplicates == 1 { " was" } else { "s were" }
            ));
        }
    }
    if acks.lost > 0 {
        cli::warn(format_args!(
            "stdout closed after at most {} positions were printed: every event was appended ({written}), but the positions of the last {} or more were not printed",
            acks.printed, acks.lost
        ));
    }
    let counts = Counts {
        read: reading?,
        written,
        failed: failures.count(),
    };
    counts.report(args.verbose, "appended");
    Ok(counts.outcome())
}

/// Where `--offsets` prints positions. When the reader of stdout goes
/// away, appending goes on (the input is never left half appended) and the
/// positions that could not be printed are counted and reported.
struct Acks {
    out: Option<Output>,
    wanted: bool,
    printed: u64,
    lost: u64,
}

/// Drops positioned events this producer already appended. Its marks are
/// opened at the first positioned event, so plain appends never pay for
/// them.
struct Dedup {
    name: String,
    producer: Option<Box<dyn ProducerMarks>>,
    duplicates: u64,
}

impl Dedup {
    /// True when the event at `source` should be appended (and records it).
    fn admit(&mut self, appender: &mut dyn LogProducer, source: &SourcePosition) -> Result<bool> {
        if self.producer.is_none() {
            self.producer = Some(appender.marks(&self.name)?);
        }
        let producer = self.producer.as_mut().expect("opened above");
        if producer.holds(source) {
            self.duplicates += 1;
            return Ok(false);
        }
        producer.record(source);
        Ok(true)
    }

    fn wrote(&mut self, positions: &[Position]) {
        if let Some(p) = &mut self.producer {
            p.wrote(positions);
        }
    }

    /// Saves the marks; call only once what they reflect is durable.
    fn save(&mut self, now: bool) -> Result<()> {
        match &mut self.producer {
            Some(p) => p.save(now),
            None => Ok(()),
        }
    }
}

/// The writing thread: appends each chunk, flushes every [`SYNC_BYTES`]
/// or when asked, and only then acknowledges. Returns the events appended.
fn write_loop(
    mut appender: Box<dyn LogProducer>,
    chunks: mpsc::Receiver<ToWriter>,
    recycle: mpsc::Sender<Chunk>,
    mut acks: Acks,
    mut dedup: Dedup,
) -> Result<(u64, Acks, u64)> {
    let mut written = 0u64;
    for msg in chunks.iter() {
        match msg {
            ToWriter::Events(mut chunk) => {
                let mut start = 0;
                for ((&end, &partition), source) in
                    chunk.ends.iter().zip(&chunk.partitions).zip(&chunk.sources)
                {
                    let event = &chunk.bytes[start..end];
                    start = end;
                    if let Some(source) = source {
                        if !dedup.admit(&mut *appender, source)? {
                            continue;
                        }
                    }
                    let route = match partition {
                        Some(p) => Route::Partition(p),
                        None => Route::Any,
                    };
                    appender.append(route, event)?;
                }
                chunk.clear();
                let _ = recycle.send(chunk);
                if appender.unflushed_bytes() >= SYNC_BYTES {
                    written += flush_and_ack(&mut *appender, &mut acks, &mut dedup, false)?;
                }
            }
            ToWriter::Sync => {
                written += flush_and_ack(&mut *appender, &mut acks, &mut dedup, false)?
            }
        }
    }
    written += flush_and_ack(&mut *appender, &mut acks, &mut dedup, true)?;
    Ok((written, acks, dedup.duplicates))
}

/// Flushes (the events are durable from here on), saves the producer's
/// marks, then prints the positions of the events flushed. A closed stdout
/// stops the printing, not the appending. Returns the events flushed.
fn flush_and_ack(
    appender: &mut dyn LogProducer,
    acks: &mut Acks,
    dedup: &mut Dedup,
    last: bool,
) -> Result<u64> {
    let flushed = appender.flush()?;
    dedup.wrote(&flushed.positions);
    dedup.save(last)?;
    if acks.wanted {
        print_positions(acks, &flushed.positions)?;
    }
    Ok(flushed.events)
}

/// Prints `--offsets` positions, once they are durable.
fn print_positions(acks: &mut Acks, unacked: &[Position]) -> Result<()> {
    if !acks.wanted {
        return Ok(());
    }
    let Some(out) = acks.out.as_mut() else {
        acks.lost += unacked.len() as u64;
        return Ok(());
    };
    let mut line = Vec::with_capacity(48);
    let mut printed = 0u64;
    let result = (|| {
        for pos in unacked.iter() {
            line.clear();
            line.extend_from_slice(b"{\"partition\":");
            line.extend_from_slice(itoa::Buffer::new().format(pos.partition).as_bytes());
            line.extend_from_slice(b",\"offset\":");
            line.extend_from_slice(itoa::Buffer::new().format(pos.offset).as_bytes());
            line.push(b'}');
            out.write_line(&line)?;
            printed += 1;
        }
        out.flush()
    })();
    match result {
        Ok(()) => acks.printed += printed,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            // Some lines counted here may still have been in the buffer, so
            // `lost` is a lower bound.
            acks.printed += printed;
            acks.lost += unacked.len() as u64 - printed;
            acks.out = None;
        }
        Err(e) => return Err(e).context("cannot print positions"),
    }
    Ok(())
}
