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
use crate::position::{self, Mark, PositionRef};
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
    sources: Vec<Option<ChunkSource>>,
    /// The source log ids the chunk's positions name, once each, so a
    /// position is a few numbers: nothing per event is allocated, counted
    /// or shared between the reading and the writing thread.
    logs: Vec<Box<str>>,
}

/// A source position in a chunk, its log an index into [`Chunk::logs`].
#[derive(Clone, Copy)]
struct ChunkSource {
    log: usize,
    partition: u32,
    offset: u64,
    sub: u32,
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
        found: position::LocatedRef<'_>,
        line: &[u8],
        by: &position::StoredBy,
        partition: Option<u32>,
    ) {
        found.write_stored(&mut self.bytes, line, by);
        self.ends.push(self.bytes.len());
        self.partitions.push(partition);
        let source = found.position();
        // Mostly one log: the search ends at the last one.
        let log = match self.logs.iter().rposition(|l| **l == *source.log) {
            Some(i) => i,
            None => {
                self.logs.push(Box::from(source.log));
                self.logs.len() - 1
            }
        };
        self.sources.push(Some(ChunkSource {
            log,
            partition: source.partition,
            offset: source.offset,
            sub: source.sub,
        }));
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.partitions.clear();
        self.sources.clear();
        self.logs.clear();
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
                let found = match position::locate_ref(bytes) {
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
    /// Starts deciding a chunk's events: opens the marks at the first
    /// chunk that has positioned events.
    fn chunk<'c>(
        &mut self,
        appender: &mut dyn LogProducer,
        logs: &'c [Box<str>],
    ) -> Result<ChunkMarks<'c>> {
        if self.producer.is_none() && !logs.is_empty() {
            self.producer = Some(appender.marks(&self.name)?);
        }
        Ok(ChunkMarks {
            logs,
            sources: Vec::new(),
            last: 0,
        })
    }

    /// Raises the producer's marks to the chunk's highest admitted
    /// positions, and counts its duplicates.
    fn end_chunk(&mut self, chunk: ChunkMarks<'_>, duplicates: u64) {
        self.duplicates += duplicates;
        let Some(producer) = self.producer.as_mut() else {
            return;
        };
        for source in chunk.sources.iter().filter(|s| s.admitted) {
            producer.record(PositionRef {
                log: &chunk.logs[source.log],
                partition: source.partition,
                offset: source.mark.offset,
                sub: source.mark.sub,
            });
        }
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

/// One chunk's dedup: each source's mark is looked up in the producer's
/// once, then raised here event by event (numbers only, no log id
/// compared), and handed back at the chunk's end ([`Dedup::end_chunk`]).
struct ChunkMarks<'c> {
    logs: &'c [Box<str>],
    sources: Vec<ChunkMark>,
    /// The entry the last event used: events of one source come in runs.
    last: usize,
}

/// A source's mark during one chunk.
struct ChunkMark {
    log: usize,
    partition: u32,
    /// True when the source is held at all (then `mark` says how far); a
    /// flag beside the mark rather than an `Option`, as it is read and
    /// written for every event.
    held: bool,
    mark: Mark,
    /// True when an event of this chunk was admitted: `mark` is then its
    /// position, to be recorded at the chunk's end.
    admitted: bool,
}

impl ChunkMarks<'_> {
    /// True when the event at `source` should be appended: its position
    /// is not held yet (and from now on it is).
    fn admit(&mut self, producer: &dyn ProducerMarks, source: &ChunkSource) -> bool {
        let found = match self.sources.get(self.last) {
            Some(s) if s.log == source.log && s.partition == source.partition => Some(self.last),
            _ => self
                .sources
                .iter()
                .position(|s| s.log == source.log && s.partition == source.partition),
        };
        let i = found.unwrap_or_else(|| {
            let held = producer
                .held()
                .get(&self.logs[source.log], source.partition)
                .copied();
            self.sources.push(ChunkMark {
                log: source.log,
                partition: source.partition,
                held: held.is_some(),
                mark: held.unwrap_or(Mark {
                    offset: 0,
                    sub: 0,
                    complete: false,
                }),
                admitted: false,
            });
            self.sources.len() - 1
        });
        self.last = i;
        let entry = &mut self.sources[i];
        if entry.held && entry.mark.covers(source.offset, source.sub) {
            return false;
        }
        // Not covered, so past the mark: the position is the new mark.
        entry.held = true;
        entry.mark = Mark {
            offset: source.offset,
            sub: source.sub,
            complete: false,
        };
        entry.admitted = true;
        true
    }
}

/// The writing thread: appends each chunk, flushes every [`SYNC_BYTES`]
/// or when the input paused, and only then acknowledges. Returns the
/// events appended.
///
/// A pause asks for a flush, but when more events are already waiting the
/// flush waits for them: the input only paused for an instant (a reader
/// faster than its writer finds the pipe empty dozens of times a second),
/// and an fsync per such pause made the writer spend as long in fsync as
/// in appending. A producer that really stopped leaves nothing waiting,
/// so its events are flushed at once.
fn write_loop(
    mut appender: Box<dyn LogProducer>,
    chunks: mpsc::Receiver<ToWriter>,
    recycle: mpsc::Sender<Chunk>,
    mut acks: Acks,
    mut dedup: Dedup,
) -> Result<(u64, Acks, u64)> {
    let mut written = 0u64;
    let mut flush_asked = false;
    loop {
        let msg = if flush_asked {
            match chunks.try_recv() {
                Ok(msg) => msg,
                Err(mpsc::TryRecvError::Empty) => {
                    flush_asked = false;
                    written += flush_and_ack(&mut *appender, &mut acks, &mut dedup, false)?;
                    continue;
                }
                Err(mpsc::TryRecvError::Disconnected) => break,
            }
        } else {
            match chunks.recv() {
                Ok(msg) => msg,
                Err(mpsc::RecvError) => break,
            }
        };
        match msg {
            ToWriter::Events(mut chunk) => {
                let mut marks = dedup.chunk(&mut *appender, &chunk.logs)?;
                let mut duplicates = 0;
                let mut start = 0;
                for ((&end, &partition), source) in
                    chunk.ends.iter().zip(&chunk.partitions).zip(&chunk.sources)
                {
                    let event = &chunk.bytes[start..end];
                    start = end;
                    if let (Some(source), Some(producer)) = (source, &dedup.producer) {
                        if !marks.admit(&**producer, source) {
                            duplicates += 1;
                            continue;
                        }
                    }
                    let route = match partition {
                        Some(p) => Route::Partition(p),
                        None => Route::Any,
                    };
                    appender.append(route, event)?;
                }
                dedup.end_chunk(marks, duplicates);
                chunk.clear();
                let _ = recycle.send(chunk);
                if appender.unflushed_bytes() >= SYNC_BYTES {
                    written += flush_and_ack(&mut *appender, &mut acks, &mut dedup, false)?;
                }
            }
            ToWriter::Sync => flush_asked = true,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::{Held, Source};

    /// Marks kept in memory, as a backend's would be.
    struct InMemory(Held);

    impl ProducerMarks for InMemory {
        fn holds(&self, position: PositionRef<'_>) -> bool {
            self.0.holds_ref(position)
        }
        fn record(&mut self, position: PositionRef<'_>) {
            self.0.record_ref(position)
        }
        fn finished(&mut self, source: &Source, offset: u64) {
            self.0.record_complete(source, offset)
        }
        fn wrote(&mut self, _: &[Position]) {}
        fn save(&mut self, _: bool) -> Result<()> {
            Ok(())
        }
        fn held(&self) -> &Held {
            &self.0
        }
    }

    fn at(log: usize, partition: u32, offset: u64, sub: u32) -> ChunkSource {
        ChunkSource {
            log,
            partition,
            offset,
            sub,
        }
    }

    #[test]
    fn a_chunk_admits_each_position_once_past_what_is_held() {
        let logs: Vec<Box<str>> = vec!["A".into(), "B".into()];
        let mut held = Held::new();
        held.record_complete(
            &Source {
                log: "A".into(),
                partition: 0,
            },
            4,
        );
        let mut producer = InMemory(held);
        let mut marks = ChunkMarks {
            logs: &logs,
            sources: Vec::new(),
            last: 0,
        };
        let events = [
            (at(0, 0, 4, 0), false), // held before the chunk
            (at(0, 0, 5, 0), true),
            (at(1, 0, 5, 0), true),  // another log, same place
            (at(0, 1, 1, 0), true),  // another partition
            (at(0, 0, 5, 0), false), // fed twice in one chunk
            (at(0, 0, 5, 1), true),  // a second event derived from 5
            (at(0, 0, 5, 1), false),
            (at(1, 0, 3, 0), false), // behind what the chunk admitted
            (at(0, 0, 9, 0), true),
        ];
        for (source, admitted) in &events {
            assert_eq!(
                marks.admit(&producer, source),
                *admitted,
                "{}/{} {}.{}",
                logs[source.log],
                source.partition,
                source.offset,
                source.sub
            );
        }
        let tops: Vec<_> = marks
            .sources
            .iter()
            .map(|s| (s.admitted, s.mark.offset, s.mark.sub))
            .collect();
        assert_eq!(tops, [(true, 9, 0), (true, 5, 0), (true, 1, 0)]);
        let mut dedup = Dedup {
            name: "t".into(),
            producer: Some(Box::new(std::mem::replace(
                &mut producer,
                InMemory(Held::new()),
            ))),
            duplicates: 0,
        };
        dedup.end_chunk(marks, 4);
        assert_eq!(dedup.duplicates, 4);
        let p = dedup.producer.as_ref().unwrap();
        let pos = |log, partition, offset| PositionRef {
            log,
            partition,
            offset,
            sub: 0,
        };
        assert!(p.holds(pos("A", 0, 9)) && !p.holds(pos("A", 0, 10)));
        assert!(p.holds(pos("B", 0, 5)) && !p.holds(pos("B", 0, 6)));
        assert!(p.holds(pos("A", 1, 1)) && !p.holds(pos("A", 1, 2)));
    }
}
