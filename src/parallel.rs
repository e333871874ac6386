//! Filters on several cores with their output in input order.
//!
//! The reading thread cuts the input into batches of whole lines and deals
//! them to the workers in turn; it takes the results back in the same turn,
//! so the output keeps the input's order with no reordering buffer and no
//! sequence numbers. Each worker owns its own state (scratch buffers,
//! caches); what is big and read-only (tables, databases) is shared by the
//! caller. The reading thread alone writes the output and routes failures,
//! so messages and failure events stay in input order too.
//!
//! The loop keeps the promises of [`io::for_each_line`]: a pause of piped
//! input passes on everything read so far, lines that cannot be events
//! (empty, too large) become failures in their place, and memory is bounded
//! by a few batches per worker whatever the input's length.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::thread;

use anyhow::{anyhow, Context, Result};

use crate::event::{FailureMessage, Original};
use crate::io::{self, Failures, FilterStep, Input, Output};

/// A batch is handed on once it holds this many bytes of lines: large enough
/// that the hand-over costs nothing per line, small enough that a few per
/// worker stay in the CPU cache.
const BATCH_BYTES: usize = 128 << 10;

/// Batches queued for (or coming back from) one worker.
const DEPTH: usize = 2;

/// What a worker made of one line: `Ok(n)` after writing `n` output lines
/// (each ending in `\n`) to the output buffer, or every error it found. A
/// failed line must write nothing.
pub type LineResult = std::result::Result<u64, Vec<FailureMessage>>;

/// What the workers wrote and left out, counted by line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Lines read, including those that failed.
    pub read: u64,
    /// Output lines written.
    pub written: u64,
    /// Lines that gave no output and did not fail (filtered out).
    pub dropped: u64,
}

/// How many workers to run when the user does not say: one per core.
pub fn default_threads() -> usize {
    thread::available_parallelism().map_or(1, usize::from)
}

/// Lines, their results and the buffers that hold them; a
/// batch goes to a worker and back, and is then used again.
#[derive(Default)]
struct Batch {
    data: Vec<u8>,
    /// The line's input (an index into the dealer's names), its number and
    /// its range in `data`.
    lines: Vec<(usize, u64, usize, usize)>,
    out: Vec<u8>,
    written: u64,
    dropped: u64,
    failed: Vec<(usize, Vec<FailureMessage>)>,
}

impl Batch {
    fn clear(&mut self) {
        self.data.clear();
        self.lines.clear();
        self.out.clear();
        self.written = 0;
        self.dropped = 0;
        self.failed.clear();
    }

    fn push(&mut self, input: usize, line_no: u64, bytes: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(bytes);
        self.lines.push((input, line_no, start, self.data.len()));
    }

    fn process<W>(&mut self, worker: &mut W)
    where
        W: FnMut(&[u8], &mut Vec<u8>) -> LineResult,
    {
        for (i, &(_, _, start, end)) in self.lines.iter().enumerate() {
            let mark = self.out.len();
            match worker(&self.data[start..end], &mut self.out) {
                Ok(0) => self.dropped += 1,
                Ok(n) => self.written += n,
                Err(errors) => {
                    self.out.truncate(mark);
                    self.failed.push((i, errors));
                }
            }
        }
    }
}

/// Where batches are processed: on the reading thread (one worker), or on
/// worker threads dealt to in turn.
enum Workers<W> {
    Inline(W),
    Threads(Pool),
}

/// The channels to and from worker threads, and whose batches are in
/// flight, oldest first.
struct Pool {
    to: Vec<SyncSender<Batch>>,
    from: Vec<Receiver<Batch>>,
    in_flight: VecDeque<usize>,
    next: usize,
}

impl Pool {
    fn is_full(&self) -> bool {
        self.in_flight.len() == self.to.len() * DEPTH
    }

    fn send(&mut self, batch: Batch) -> Result<()> {
        let worker = self.next;
        self.to[worker].send(batch).map_err(|_| worker_lost())?;
        self.in_flight.push_back(worker);
        self.next = (worker + 1) % self.to.len();
        Ok(())
    }

    fn receive_oldest(&mut self) -> Result<Option<Batch>> {
        match self.in_flight.pop_front() {
            Some(worker) => Ok(Some(self.from[worker].recv().map_err(|_| worker_lost())?)),
            None => Ok(None),
        }
    }
}

/// The reading thread's side: deals batches out and writes results back in
/// order.
struct Dealer<'a, W> {
    workers: Workers<W>,
    spare: Vec<Batch>,
    current: Batch,
    names: Vec<String>,
    out: &'a mut Output,
    tally: Tally,
}

impl<'a, W> Dealer<'a, W>
where
    W: FnMut(&[u8], &mut Vec<u8>) -> LineResult,
{
    fn new(workers: Workers<W>, out: &'a mut Output) -> Self {
        Dealer {
            workers,
            spare: Vec::new(),
            current: Batch::default(),
            names: Vec::new(),
            out,
            tally: Tally::default(),
        }
    }

    /// Hands the current batch on (if it has lines), first writing the
    /// oldest result when every worker is busy.
    fn deal(&mut self, failures: &mut Failures) -> Result<()> {
        if self.current.lines.is_empty() {
            return Ok(());
        }
        let mut batch = std::mem::replace(&mut self.current, self.spare.pop().unwrap_or_default());
        let oldest = match &mut self.workers {
            Workers::Threads(pool) if pool.is_full() => pool.receive_oldest()?,
            _ => None,
        };
        if let Some(done) = oldest {
            self.emit(done, failures)?;
        }
        match &mut self.workers {
            Workers::Threads(pool) => pool.send(batch),
            Workers::Inline(worker) => {
                batch.process(worker);
                self.emit(batch, failures)
            }
        }
    }

    /// Hands the current batch on and writes every result in flight.
    fn drain(&mut self, failures: &mut Failures) -> Result<()> {
        self.deal(failures)?;
        loop {
            let done = match &mut self.workers {
                Workers::Threads(pool) => pool.receive_oldest()?,
                Workers::Inline(_) => None,
            };
            match done {
                Some(batch) => self.emit(batch, failures)?,
                None => return Ok(()),
            }
        }
    }

    /// Routes a finished batch's failures and writes its output: when the
    /// output goes downstream now, the failures so far are made durable
    /// before it leaves.
    fn emit(&mut self, mut batch: Batch, failures: &mut Failures) -> Result<()> {
        self.tally.written += batch.written;
        self.tally.dropped += batch.dropped;
        for (i, errors) in batch.failed.drain(..) {
            let (input, line_no, start, end) = batch.lines[i];
            failures.route(
                &self.names[input],
                line_no,
                errors,
                Original::Line(&batch.data[start..end]),
            )?;
        }
        for &(_, _, start, end) in &batch.lines {
            failures.processed(&batch.data[start..end]);
        }
        failures.before_output(&self.out, batch.out.len())?;
        self.out.write_lines(&batch.out)?;
        batch.clear();
        self.spare.push(batch);
        Ok(())
    }

    /// The index of the input named `name` in `names`.
    fn input_index(&mut self, name: &str) -> usize {
        if self.names.last().is_none_or(|last| last != name) {
            self.names.push(name.to_string());
        }
        self.names.len() - 1
    }

    fn read_all(
        &mut self,
        inputs: Vec<Input>,
        max_line: usize,
        failures: &mut Failures,
    ) -> Result<()> {
        self.tally.read = io::for_each_line(inputs, max_line, |step| match step {
            FilterStep::Line {
                input,
                line_no,
                bytes,
            } => {
                let input = self.input_index(input);
                self.current.push(input, line_no, bytes);
                if self.current.data.len() >= BATCH_BYTES {
                    self.deal(failures)?;
                }
                Ok(())
            }
            FilterStep::Unfit {
                input,
                line_no,
                message,
                original,
            } => {
                // Rare: let the lines before it go first, in order.
                self.drain(failures)?;
                failures.route(input, line_no, vec![message], original)
            }
            FilterStep::Idle => {
                // The producer paused: pass on everything so far, failures
                // made durable before the good events go.
                self.drain(failures)?;
                failures.flush()?;
                Ok(self.out.flush()?)
            }
        })?;
        self.drain(failures)
    }
}

fn worker_lost() -> anyhow::Error {
    anyhow!("internal error: a worker thread stopped unexpectedly")
}

/// Reads every input line by line with a size cap (as
/// [`io::for_each_line`]) and runs `workers` over the lines, one thread
/// each when there are several, writing their output to `out` in input
/// order and routing failed lines to `failures`.
pub fn for_each_line_ordered<W>(
    inputs: Vec<Input>,
    max_line: usize,
    out: &mut Output,
    failures: &mut Failures,
    mut workers: Vec<W>,
) -> Result<Tally>
where
    W: FnMut(&[u8], &mut Vec<u8>) -> LineResult + Send,
{
    if workers.len() <= 1 {
        let worker = workers.pop().ok_or_else(|| anyhow!("no worker to run"))?;
        let mut dealer = Dealer::new(Workers::Inline(worker), out);
        dealer.read_all(inputs, max_line, failures)?;
        return Ok(dealer.tally);
    }
    thread::scope(|scope| {
        let mut pool = Pool {
            to: Vec::new(),
            from: Vec::new(),
            in_flight: VecDeque::new(),
            next: 0,
        };
        let mut handles = Vec::new();
        for (i, mut worker) in workers.into_iter().enumerate() {
            let (batch_tx, batch_rx) = sync_channel::<Batch>(DEPTH);
            let (done_tx, done_rx) = sync_channel::<Batch>(DEPTH);
            let handle = thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn_scoped(scope, move || {
                    for mut batch in batch_rx {
                        batch.process(&mut worker);
                        if done_tx.send(batch).is_err() {
                            break;
                        }
                    }
                })
                .context("cannot start a worker thread")?;
            pool.to.push(batch_tx);
            pool.from.push(done_rx);
            handles.push(handle);
        }
        let mut dealer = Dealer::new(Workers::<W>::Threads(pool), out);
        let result = dealer.read_all(inputs, max_line, failures);
        let tally = dealer.tally;
        // Closing the channels ends the workers, whether or not all went well.
        drop(dealer);
        let mut panicked = false;
        for handle in handles {
            panicked |= handle.join().is_err();
        }
        match result {
            Err(e) => Err(e),
            Ok(()) if panicked => Err(worker_lost()),
            Ok(()) => Ok(tally),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::FailureArgs;
    use std::io as stdio;
    use std::sync::{Arc, Mutex};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl stdio::Write for Shared {
        fn write(&mut self, b: &[u8]) -> stdio::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> stdio::Result<()> {
            Ok(())
        }
    }

    fn input(text: Vec<u8>) -> Vec<Input> {
        vec![Input {
            name: "in".into(),
            reader: Box::new(stdio::Cursor::new(text)),
            is_stdin: false,
        }]
    }

    /// Doubles lines holding an even number, drops odd ones and fails
    /// lines that are not numbers.
    fn worker(line: &[u8], out: &mut Vec<u8>) -> LineResult {
        let n: u64 = std::str::from_utf8(line)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| vec![FailureMessage::new("nan", "not a number")])?;
        if n % 2 == 1 {
            return Ok(0);
        }
        out.extend_from_slice(format!("{}\n", n * 2).as_bytes());
        Ok(1)
    }

    fn run(threads: usize, text: Vec<u8>) -> (String, Tally, u64) {
        let sink = Shared::default();
        let mut out = Output::from_writer(Box::new(sink.clone()), false);
        let bad = tempfile::NamedTempFile::new().unwrap();
        let mut failures = Failures::open(&FailureArgs {
            bad: Some(bad.path().to_path_buf()),
            producer: None,
        })
        .unwrap();
        let workers = (0..threads).map(|_| worker).collect();
        let tally =
            for_each_line_ordered(input(text), 1 << 20, &mut out, &mut failures, workers).unwrap();
        out.flush().unwrap();
        failures.flush().unwrap();
        let text = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        (text, tally, failures.count())
    }

    #[test]
    fn keeps_input_order_on_every_thread_count() {
        let mut text = Vec::new();
        for i in 0..200_000u64 {
            if i % 1000 == 7 {
                text.extend_from_slice(b"x\n\n");
            }
            text.extend_from_slice(format!("{i}\n").as_bytes());
        }
        let expected: String = (0..200_000u64)
            .filter(|i| i % 2 == 0)
            .map(|i| format!("{}\n", i * 2))
            .collect();
        for threads in [1, 2, 3, 8] {
            let (out, tally, failed) = run(threads, text.clone());
            assert!(out == expected, "order differs with {threads} threads");
            assert_eq!(tally.written, 100_000);
            assert_eq!(tally.dropped, 100_000);
            assert_eq!(tally.read, 200_000 + 400);
            assert_eq!(failed, 400, "an x and an empty line 200 times");
        }
    }

    #[test]
    fn a_panicking_worker_is_an_error_not_a_hang() {
        let sink = Shared::default();
        let mut out = Output::from_writer(Box::new(sink), false);
        let mut failures = Failures::open(&FailureArgs {
            bad: None,
            producer: None,
        })
        .unwrap();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                |line: &[u8], _: &mut Vec<u8>| -> LineResult {
                    assert!(line != b"boom");
                    Ok(1)
                }
            })
            .collect();
        let mut text = b"1\n".repeat(100_000);
        text.extend_from_slice(b"boom\n");
        text.extend_from_slice(&b"1\n".repeat(100_000));
        let e = for_each_line_ordered(input(text), 1 << 20, &mut out, &mut failures, workers)
            .unwrap_err();
        assert!(e.to_string().contains("worker thread"), "{e}");
    }

    /// A writer that, whenever output reaches it, records how many failure
    /// events the failure file holds by then.
    struct Watching {
        bad: std::path::PathBuf,
        seen: Arc<Mutex<Vec<(usize, usize)>>>,
        written: usize,
    }
    impl stdio::Write for Watching {
        fn write(&mut self, b: &[u8]) -> stdio::Result<usize> {
            let failures = std::fs::read(&self.bad)?
                .iter()
                .filter(|&&c| c == b'\n')
                .count();
            self.written += b.iter().filter(|&&c| c == b'\n').count();
            self.seen.lock().unwrap().push((self.written, failures));
            Ok(b.len())
        }
        fn flush(&mut self) -> stdio::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn failures_are_written_before_output_of_later_inputs_leaves() {
        // Downstream acknowledges what it receives: were output of later
        // inputs to leave before a failure is in its file, a kill between
        // the two would lose the failure (and a rerun would start past it).
        for threads in [1, 2] {
            let bad = tempfile::NamedTempFile::new().unwrap();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let watching = Watching {
                bad: bad.path().to_path_buf(),
                seen: seen.clone(),
                written: 0,
            };
            let mut out = Output::from_writer(Box::new(watching), false);
            let mut failures = Failures::open(&FailureArgs {
                bad: Some(bad.path().to_path_buf()),
                producer: None,
            })
            .unwrap();
            // Output lines of 8 bytes; a failure every 20,000 inputs, so
            // the output buffer fills many times between two of them.
            let mut text = Vec::new();
            for i in 0..400_000u64 {
                if i % 20_000 == 5 {
                    text.extend_from_slice(b"x\n");
                }
                text.extend_from_slice(format!("{}\n", 1_000_000 + 2 * i).as_bytes());
            }
            let workers = (0..threads).map(|_| worker).collect();
            for_each_line_ordered(input(text), 1 << 20, &mut out, &mut failures, workers).unwrap();
            failures.flush().unwrap();
            out.flush().unwrap();
            let seen = seen.lock().unwrap();
            assert!(seen.len() > 10, "the output left in several writes");
            for &(lines, failed) in seen.iter() {
                // Output up to line `lines` comes from inputs past the
                // failures at every 20,000th line from the 6th.
                let due = (lines as u64 + 20_000 - 6) / 20_000;
                assert!(
                    failed as u64 >= due.min(20),
                    "{threads} threads: {lines} output lines left with {failed} failures written, not {due}"
                );
            }
        }
    }
}
