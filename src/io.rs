//! Inputs and outputs every filter shares: `FILE...` or stdin, line reading
//! with line numbers and a size cap, buffered output that is line-buffered on
//! a terminal, and the sink that failure events go to.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cli::{self, FailureArgs};
use crate::event::{kind, Failure, FailureMessage, InputPosition, Original};
use crate::json::ScanError;
use crate::position::{self, Held};
use crate::store;

/// Default cap on one input line: a larger line is a failure, not an event
/// (Kafka's default `message.max.bytes` is of the same order).
pub const DEFAULT_MAX_LINE: usize = 1 << 20;

/// How much of an oversize line a failure event keeps, so that one 10 MB line
/// cannot blow up the failure log.
pub const OVERSIZE_PREFIX: usize = 64 << 10;

const READ_CHUNK: usize = 256 << 10;
const WRITE_BUFFER: usize = 256 << 10;

/// One named input: a file, or stdin (named `-` on the command line and
/// `stdin` in messages).
pub struct Input {
    /// Name used in messages and failure events.
    pub name: String,
    /// The open stream.
    pub reader: Box<dyn Read + Send>,
    /// True for stdin, which may be a pipe that goes quiet.
    pub is_stdin: bool,
}

/// Opens every input up front, so that a missing file is a usage error
/// before any event is read or written. No files, or `-`, mean stdin.
pub fn open_inputs(files: &[PathBuf]) -> Result<Vec<Input>> {
    if files.is_empty() {
        return Ok(vec![stdin_input()?]);
    }
    files
        .iter()
        .map(|path| {
            if path.as_os_str() == "-" {
                return stdin_input();
            }
            let file = File::open(path)
                .with_context(|| format!("cannot open input {}", path.display()))?;
            Ok(Input {
                name: path.display().to_string(),
                reader: Box::new(file),
                is_stdin: false,
            })
        })
        .collect()
}

fn stdin_input() -> Result<Input> {
    if stdin_was_closed() {
        anyhow::bail!(
            "stdin is closed (as with `<&-`), so there is no input to read; give the events on stdin or name input files (`</dev/null` for no input)"
        );
    }
    Ok(Input {
        name: "stdin".to_string(),
        reader: Box::new(io::stdin()),
        is_stdin: true,
    })
}

/// True when the process was started with stdin closed. The standard
/// library reopens a closed descriptor 0 on `/dev/null` read-write before
/// `main`, so that is what a closed stdin looks like here; a shell's
/// `</dev/null` opens it read-only, which stays an empty input.
pub fn stdin_was_closed() -> bool {
    // SAFETY: fstat and fcntl on descriptor 0 with a valid out-pointer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        if libc::fstat(0, &mut st) != 0 {
            return true;
        }
        let null = (st.st_mode & libc::S_IFMT) == libc::S_IFCHR
            && libc::major(st.st_rdev) == 1
            && libc::minor(st.st_rdev) == 3;
        let flags = libc::fcntl(0, libc::F_GETFL);
        null && flags >= 0 && (flags & libc::O_ACCMODE) == libc::O_RDWR
    }
}

/// A line as read: the bytes without the `\n` (and a `\r` before it), or, for
/// a line over the cap, its first bytes and its whole length.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// A line within the size cap.
    Full(&'a [u8]),
    /// A line over the cap: its first [`OVERSIZE_PREFIX`] bytes and its length.
    Oversize {
        /// The line's first bytes.
        prefix: &'a [u8],
        /// The whole line's length in bytes.
        len: u64,
    },
}

/// Reads lines from a stream without allocating per line; memory stays at
/// most the cap plus one read chunk, however long a line is.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    scanned: usize,
    eof: bool,
    max_line: usize,
    line_no: u64,
    line_offset: u64,
    next_offset: u64,
    oversize: Vec<u8>,
    /// The line last returned ended the stream without a newline (shared,
    /// so it can be read while that line is borrowed).
    unterminated: std::rc::Rc<std::cell::Cell<bool>>,
}

impl<R: Read> LineReader<R> {
    /// A reader with the default line cap.
    pub fn new(inner: R) -> Self {
        Self::with_max_line(inner, DEFAULT_MAX_LINE)
    }

    /// A reader whose lines longer than `max_line` bytes come back as
    /// [`Line::Oversize`].
    pub fn with_max_line(inner: R, max_line: usize) -> Self {
        LineReader {
            inner,
            buf: vec![0; READ_CHUNK.min(max_line + 1).max(4096)],
            start: 0,
            end: 0,
            scanned: 0,
            eof: false,
            max_line,
            line_no: 0,
            line_offset: 0,
            unterminated: Default::default(),
            next_offset: 0,
            oversize: Vec::new(),
        }
    }

    /// 1-based number of the line last returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// A flag that is true while the line last returned ended the stream
    /// without a newline: the whole input, or what a writer killed
    /// mid-line left.
    pub fn unterminated(&self) -> std::rc::Rc<std::cell::Cell<bool>> {
        self.unterminated.clone()
    }

    /// Byte offset in the stream where the line last returned begins.
    pub fn line_offset(&self) -> u64 {
        self.line_offset
    }

    /// The next line and its 1-based number, or `None` at the end of the
    /// stream. A last line without a final newline is still a line.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        // Every line read, oversize or not, advances the count by one.
        let number = self.line_no + 1;
        Ok(self.next_unnumbered()?.map(|l| (number, l)))
    }

    fn next_unnumbered(&mut self) -> io::Result<Option<Line<'_>>> {
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.scanned..self.end]) {
                let nl = self.scanned + i;
                let line_start = self.start;
                self.start = nl + 1;
                self.scanned = self.start;
                return Ok(Some(self.finish_line(line_start, nl, 1)));
            }
            self.scanned = self.end;
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                let line_start = self.start;
                let line_end = self.end;
                self.start = self.end;
                return Ok(Some(self.finish_line(line_start, line_end, 0)));
            }
            if self.end - self.start > self.max_line {
                return self.skip_oversize().map(Some);
            }
            self.fill()?;
        }
    }

    fn finish_line(&mut self, start: usize, mut end: usize, terminator: u64) -> Line<'_> {
        self.line_no += 1;
        self.unterminated.set(terminator == 0);
        self.line_offset = self.next_offset;
        self.next_offset += (end - start) as u64 + terminator;
        if end > start && self.buf[end - 1] == b'\r' {
            end -= 1;
        }
        if end - start > self.max_line {
            let prefix = &self.buf[start..start + OVERSIZE_PREFIX.min(end - start)];
            return Line::Oversize {
                prefix,
                len: (end - start) as u64,
            };
        }
        Line::Full(&self.buf[start..end])
    }

    /// Keeps the first bytes of a line over the cap and reads past the rest.
    fn skip_oversize(&mut self) -> io::Result<Line<'_>> {
        self.line_no += 1;
        self.line_offset = self.next_offset;
        self.oversize.clear();
        let keep = OVERSIZE_PREFIX.min(self.end - self.start);
        self.oversize
            .extend_from_slice(&self.buf[self.start..self.start + keep]);
        let mut len = (self.end - self.start) as u64;
        self.start = 0;
        self.end = 0;
        self.scanned = 0;
        loop {
            let n = match read_retrying(&mut self.inner, &mut self.buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                other => other?,
            };
            if n == 0 {
                self.eof = true;
                break;
            }
            if let Some(i) = memchr::memchr(b'\n', &self.buf[..n]) {
                len += i as u64;
                self.start = i + 1;
                self.scanned = self.start;
                self.end = n;
                self.next_offset += len + 1;
                return Ok(Line::Oversize {
                    prefix: &self.oversize,
                    len,
                });
            }
            len += n as u64;
        }
        self.next_offset += len;
        Ok(Line::Oversize {
            prefix: &self.oversize,
            len,
        })
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.scanned -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            let grown = (self.buf.len() * 2).min(self.max_line + READ_CHUNK);
            self.buf.resize(grown.max(self.buf.len() + 4096), 0);
        }
        let n = read_retrying(&mut self.inner, &mut self.buf[self.end..])?;
        if n == 0 {
            self.eof = true;
        }
        self.end += n;
        Ok(())
    }
}

fn read_retrying(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// A reader that says so, once, when its pipe has nothing to read right now:
/// `read` then fails with `WouldBlock` instead of blocking, and the next call
/// blocks as usual. A batching writer uses the pause to make its batch
/// durable, so a slow producer's events are acknowledged promptly while a
/// fast one's are batched.
pub struct IdleAware<R> {
    inner: R,
    watch_stdin: bool,
    reported: bool,
}

impl<R: Read> IdleAware<R> {
    /// Wraps `inner`; only stdin (which may be a pipe) is watched.
    pub fn new(inner: R, is_stdin: bool) -> Self {
        IdleAware {
            inner,
            watch_stdin: is_stdin,
            reported: false,
        }
    }
}

impl<R: Read> Read for IdleAware<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.watch_stdin && !self.reported && !fd_readable(0, 0) {
            self.reported = true;
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.reported = false;
        self.inner.read(buf)
    }
}

/// True when `fd` has data (or end of file) to read within `timeout_ms`.
pub fn fd_readable(fd: i32, timeout_ms: i32) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let n = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    n != 0
}

/// The pipe capacity the tools ask for on their stdin and stdout.
const PIPE_BYTES: i32 = 1 << 20;

/// Widens stdin and stdout to [`PIPE_BYTES`] when they are pipes. Linux's
/// default of 64 KiB makes the two ends of a fast pipeline take turns
/// every few hundred events, each waking the other: `log-tail | log-append`
/// ran in 0.96 s with it and 0.42 s with 1 MiB (1M events). Either end may
/// ask; a refusal (a user over the kernel's pipe limit) leaves the pipe as
/// it was, which only costs speed.
pub fn widen_pipes() {
    #[cfg(target_os = "linux")]
    for fd in [0, 1] {
        // SAFETY: fstat on a descriptor number with a zeroed stat to fill.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat(fd, &mut st) } != 0 || st.st_mode & libc::S_IFMT != libc::S_IFIFO {
            continue;
        }
        // SAFETY: fcntl on a pipe; a failure only means the old size stays.
        unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_BYTES) };
    }
}

/// True when stdout is a pipe whose reader has gone (`| head` finished):
/// a follower that has nothing to write learns it here, not on its next write.
pub fn stdout_closed() -> bool {
    let mut pfd = libc::pollfd {
        fd: 1,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, count 1.
    let n = unsafe { libc::poll(&mut pfd, 1, 0) };
    n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0
}

/// Buffered output to stdout or a file. It is line-buffered on a terminal or
/// when asked (`--line-buffered`), so a following pipeline sees each event as
/// it happens; otherwise it writes in large blocks for speed.
pub struct Output {
    writer: io::BufWriter<Box<dyn Write + Send>>,
    line_buffered: bool,
}

impl Output {
    /// Opens `path` (created or truncated), or stdout when `None` or `-`.
    pub fn open(path: Option<&Path>, line_buffered: bool) -> Result<Self> {
        match path {
            Some(p) if p.as_os_str() != "-" => {
                let file = File::create(p)
                    .with_context(|| format!("cannot create output {}", p.display()))?;
                Ok(Self::from_writer(Box::new(file), line_buffered))
            }
            _ => Self::stdout(line_buffered),
        }
    }

    /// Stdout, bypassing the standard library's line buffer so that a pipe
    /// gets large writes; line-buffered on a terminal.
    pub fn stdout(line_buffered: bool) -> Result<Self> {
        let stdout = io::stdout();
        let terminal = stdout.is_terminal();
        let fd = stdout
            .as_fd()
            .try_clone_to_owned()
            .context("cannot use stdout")?;
        Ok(Self::from_writer(
            Box::new(File::from(fd)),
            line_buffered || terminal,
        ))
    }

    /// Wraps any writer (used by tests).
    pub fn from_writer(writer: Box<dyn Write + Send>, line_buffered: bool) -> Self {
        Output {
            writer: io::BufWriter::with_capacity(WRITE_BUFFER, writer),
            line_buffered,
        }
    }

    /// Writes one line (the `\n` is added), flushing when line-buffered.
    #[inline]
    pub fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        self.writer.write_all(line)?;
        self.writer.write_all(b"\n")?;
        if self.line_buffered {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Writes one line made of several pieces.
    #[inline]
    pub fn write_parts(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        for part in parts {
            self.writer.write_all(part)?;
        }
        self.writer.write_all(b"\n")?;
        if self.line_buffered {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// Writes whole lines, each already ending in `\n` (a batch of
    /// results), flushing when line-buffered.
    pub fn write_lines(&mut self, lines: &[u8]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        self.writer.write_all(lines)?;
        if self.line_buffered {
            self.writer.flush()?;
        }
        Ok(())
    }

    /// True when writing `n` more bytes sends output on its way now (the
    /// buffer fills, or every line is flushed), not only into the buffer.
    pub fn would_flush(&self, n: usize) -> bool {
        self.line_buffered || self.writer.buffer().len() + n > self.writer.capacity()
    }

    /// True when every line is flushed as written.
    pub fn is_line_buffered(&self) -> bool {
        self.line_buffered
    }

    /// Pushes everything written so far to the file or pipe.
    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}

/// Where failure events go (`--bad PATH`): stderr by default, a file
/// (appended to), or a unilog log directory.
pub enum FailureSink {
    /// Each failure event is a line on stderr.
    Stderr,
    /// No --bad and stderr is a terminal: a person reads messages there,
    /// not JSON, so failure events are counted and described, not printed
    /// (see [`Failures`]; `--bad -` prints them anyway).
    Terminal,
    /// Failure events are appended to a file; the flag says whether it can
    /// be fsynced (a regular file), or only flushed (`/dev/null`, a pipe, a
    /// FIFO, a terminal).
    File(io::BufWriter<File>, PathBuf, bool),
    /// Failure events are appended to a log, one event per failure; those
    /// that carry their input's position, exactly once.
    Log(Box<LogSink>),
}

/// A failure log and this producer's marks in it (see
/// [`store::producer`]), opened at the first positioned failure or input.
pub struct LogSink {
    appender: Box<dyn store::LogProducer>,
    name: String,
    producer: Option<Box<dyn store::ProducerMarks>>,
    /// Inputs whose failures, if any, have been written since the last
    /// flush: the producer's marks rise to them once that is durable.
    processed: Held,
}

impl LogSink {
    fn producer(&mut self) -> Result<&mut Box<dyn store::ProducerMarks>> {
        if self.producer.is_none() {
            self.producer = Some(self.appender.marks(&self.name)?);
        }
        Ok(self.producer.as_mut().expect("opened above"))
    }

    fn write(&mut self, event: &[u8]) -> Result<()> {
        match position::locate(event) {
            Ok(Some(found)) => {
                let producer = self.producer()?;
                if producer.holds(found.position.as_ref()) {
                    return Ok(());
                }
                producer.record(found.position.as_ref());
                let mut stored = Vec::with_capacity(event.len() + 24);
                position::write_before(
                    &mut stored,
                    &found.position,
                    Some(&self.name),
                    found.rest(event),
                );
                self.appender.append(store::Route::Any, &stored)
            }
            _ => self.appender.append(store::Route::Any, event),
        }
    }

    fn flush(&mut self) -> Result<()> {
        let written = self.appender.flush()?.positions;
        if self.producer.is_none() && self.processed.is_empty() {
            return Ok(());
        }
        let processed = std::mem::take(&mut self.processed);
        let producer = self.producer()?;
        producer.wrote(&written);
        for (source, mark) in processed.iter() {
            producer.record(position::PositionRef {
                log: &source.log,
                partition: source.partition,
                offset: mark.offset,
                sub: mark.sub,
            });
        }
        producer.save(true)
    }
}

impl FailureSink {
    /// Opens the sink `--bad` names: `None` or `-` for stderr; an existing
    /// log directory for a log; anything else a file, appended to.
    pub fn open(path: Option<&Path>, producer: &str) -> Result<Self> {
        let Some(path) = path else {
            return Ok(if cli::stderr_is_terminal() {
                FailureSink::Terminal
            } else {
                FailureSink::Stderr
            });
        };
        if path.as_os_str() == "-" {
            return Ok(FailureSink::Stderr);
        }
        let location = crate::location::Location::parse(path)?;
        if store::exists(&location) {
            let appender = store::open_producer(&location, &store::ProducerOptions::default())
                .with_context(|| format!("cannot open failure log {location}"))?;
            return Ok(FailureSink::Log(Box::new(LogSink {
                appender,
                name: producer.to_string(),
                producer: None,
                processed: Held::new(),
            })));
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open failure file {}", path.display()))?;
        // Only a regular file can be fsynced; fdatasync on a device or a
        // pipe fails with EINVAL though everything was written.
        let syncable = file
            .metadata()
            .with_context(|| format!("cannot open failure file {}", path.display()))?
            .file_type()
            .is_file();
        Ok(FailureSink::File(
            io::BufWriter::new(file),
            path.to_path_buf(),
            syncable,
        ))
    }

    /// Writes one failure event (a complete JSON line without `\n`).
    pub fn write(&mut self, event: &[u8]) -> Result<()> {
        match self {
            FailureSink::Terminal => {}
            FailureSink::Stderr => {
                let mut err = io::stderr().lock();
                err.write_all(event)?;
                err.write_all(b"\n")?;
            }
            FailureSink::File(w, path, _) => {
                w.write_all(event)
                    .and_then(|_| w.write_all(b"\n"))
                    .with_context(|| format!("cannot write failure file {}", path.display()))?;
            }
            FailureSink::Log(sink) => sink.write(event)?,
        }
        Ok(())
    }

    /// Makes every failure written so far durable (fsync for files and
    /// logs), so that a failure is recorded before its input is acknowledged.
    pub fn flush(&mut self) -> Result<()> {
        match self {
            FailureSink::Stderr | FailureSink::Terminal => Ok(()),
            FailureSink::File(w, path, syncable) => {
                w.flush()
                    .and_then(|_| {
                        if *syncable {
                            w.get_ref().sync_data()
                        } else {
                            Ok(())
                        }
                    })
                    .with_context(|| format!("cannot write failure file {}", path.display()))?;
                Ok(())
            }
            FailureSink::Log(sink) => sink.flush(),
        }
    }
}

/// Routes failure events to their sink and tells the user on stderr, in
/// `tool: INPUT:LINE: message` form (the first few in full, then a count).
pub struct Failures {
    sink: FailureSink,
    processor: &'static str,
    count: u64,
    /// Failures routed since the last flush.
    unflushed: bool,
}

/// How many failures are described on stderr before the rest are only counted.
const SHOWN_FAILURES: u64 = 10;

impl Failures {
    /// Opens the sink `--bad` names.
    pub fn open(args: &FailureArgs) -> Result<Self> {
        Ok(Failures {
            sink: FailureSink::open(args.bad.as_deref(), args.producer_name())?,
            processor: cli::tool_name(),
            count: 0,
            unflushed: false,
        })
    }

    /// Records one failed input: a message on stderr and a failure event.
    pub fn route(
        &mut self,
        input: &str,
        line: u64,
        errors: Vec<FailureMessage>,
        original: Original<'_>,
    ) -> Result<()> {
        self.count += 1;
        self.unflushed = true;
        if self.count <= SHOWN_FAILURES {
            let first = errors
                .first()
                .map(|e| e.message.as_str())
                .unwrap_or("failed");
            let more = match errors.len() {
                0 | 1 => String::new(),
                n => format!(" (and {} more errors)", n - 1),
            };
            cli::warn(format_args!("{input}:{line}: {first}{more}"));
            if self.count == SHOWN_FAILURES {
                cli::warn(if matches!(self.sink, FailureSink::Terminal) {
                    "further failures are only counted here"
                } else {
                    "further failures are not described here; every one is in the failure events"
                });
            }
        }
        let failure = Failure {
            processor: self.processor,
            position: InputPosition {
                name: input.to_string(),
                line,
            },
            errors,
            original,
        };
        let event = failure.to_line();
        // A failure cites its input's position, first, as every derived
        // event does: so it can be traced, and appended exactly once.
        match original {
            Original::Line(bytes) => match position::locate(bytes) {
                Ok(Some(found)) => {
                    let mut cited = Vec::with_capacity(event.len() + 80);
                    position::write_before(&mut cited, &found.position, None, &event[1..]);
                    self.sink.write(&cited)
                }
                _ => self.sink.write(&event),
            },
            Original::Truncated { .. } => self.sink.write(&event),
        }
    }

    /// Notes that an input line is done with: its failure, if it had one,
    /// is routed. Into a failure log, this lets the producer's marks rise
    /// past inputs that gave no failure, so a pipeline that rarely fails
    /// need not be replayed from its last failure (`log-tail
    /// --resume-from`). Costs nothing for other sinks.
    #[inline]
    pub fn processed(&mut self, line: &[u8]) {
        if let FailureSink::Log(sink) = &mut self.sink {
            if let Ok(Some(found)) = position::locate(line) {
                sink.processed.record(&found.position);
            }
        }
    }

    /// Failures routed so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Makes the failure events written so far durable.
    pub fn flush(&mut self) -> Result<()> {
        self.sink.flush()?;
        self.unflushed = false;
        Ok(())
    }

    /// Call before writing `bytes` to `out`: when that sends output
    /// downstream now ([`Output::would_flush`]), makes the failures routed
    /// so far durable first. A stage after this one acknowledges what it
    /// receives (a destination records the source positions it holds), so
    /// a failure must be in its log before any event of a later input
    /// leaves: else a kill here loses it, and the rerun starts past it.
    pub fn before_output(&mut self, out: &Output, bytes: usize) -> Result<()> {
        if self.unflushed && out.would_flush(bytes) {
            self.flush()?;
        }
        Ok(())
    }
}

impl Drop for Failures {
    /// On a terminal the failure events were described, not kept: say so
    /// last, with how to keep them, so nothing is dropped silently.
    fn drop(&mut self) {
        if matches!(self.sink, FailureSink::Terminal) && self.count > 0 {
            cli::warn(format_args!(
                "{} failure event{} not kept (stderr is a terminal); add --bad FILE to keep them, or --bad - for JSON on stderr",
                self.count,
                if self.count == 1 { "" } else { "s" }
            ));
        }
    }
}

/// One step of a filter's read loop (see [`for_each_line`]).
pub enum FilterStep<'a> {
    /// A line that may be an event: where it came from, and its bytes.
    Line {
        /// The input's name, for messages and failure events.
        input: &'a str,
        /// The line's 1-based number in that input.
        line_no: u64,
        /// The line, without its newline.
        bytes: &'a [u8],
    },
    /// A line that cannot be an event (empty, too large), for the step to
    /// route as a failure once the lines before it are through.
    Unfit {
        /// The input's name, for messages and failure events.
        input: &'a str,
        /// The line's 1-based number in that input.
        line_no: u64,
        /// Why it cannot be an event.
        message: FailureMessage,
        /// What the failure event keeps of it.
        original: Original<'a>,
    },
    /// Piped input paused: pass on what is done so far.
    Idle,
}

/// The read loop every filter shares: reads each input line by line with a
/// size cap and hands each line, marked unfit when it cannot be an event
/// (empty, too large), and each pause of piped input, to `step`. Returns the
/// number of lines read.
pub fn for_each_line(
    inputs: Vec<Input>,
    max_line: usize,
    mut step: impl FnMut(FilterStep<'_>) -> Result<()>,
) -> Result<u64> {
    let mut read = 0u64;
    let mut bytes_read = 0u64;
    let mut progress = cli::Progress::of_lines();
    for input in inputs {
        let mut reader =
            LineReader::with_max_line(IdleAware::new(input.reader, input.is_stdin), max_line);
        let unterminated = reader.unterminated();
        loop {
            let (line_no, line) = match reader.next_line() {
                Ok(Some(numbered)) => numbered,
                Ok(None) => break,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    step(FilterStep::Idle)?;
                    continue;
                }
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", input.name)),
            };
            read += 1;
            bytes_read += line_len(&line);
            progress.update(read, bytes_read);
            match check_line(&line, max_line) {
                Ok(bytes) if unterminated.get() && is_cut_positioned(bytes) => {
                    // A positioned line cut short is what a killed log-tail
                    // leaves: its event is read again by a rerun, so a
                    // failure event would only stand in for it wrongly.
                    cli::warn(format_args!(
                        "{}:{line_no}: the last line is cut short (the process writing it was killed?); it is not an event and is not passed on: log-tail --resume-from reads it again",
                        input.name
                    ));
                }
                Ok(bytes) => step(FilterStep::Line {
                    input: &input.name,
                    line_no,
                    bytes,
                })?,
                Err((message, original)) => step(FilterStep::Unfit {
                    input: &input.name,
                    line_no,
                    message,
                    original,
                })?,
            }
        }
    }
    progress.finish();
    Ok(read)
}

/// True for the start of a positioned event that is not whole JSON: a
/// line that begins with the position member, or is cut inside it.
fn is_cut_positioned(bytes: &[u8]) -> bool {
    let line = &bytes[crate::json::skip_ws(bytes, 0)..];
    !line.is_empty()
        && (line.starts_with(position::PREFIX) || position::PREFIX.starts_with(line))
        && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err()
}

/// A line's length in bytes, for progress.
fn line_len(line: &Line<'_>) -> u64 {
    match *line {
        Line::Full(bytes) => bytes.len() as u64 + 1,
        Line::Oversize { len, .. } => len + 1,
    }
}

#[allow(clippy::result_large_err)] // the error path is the rare one
/// The failure for a line that cannot be an event at all: empty or over the
/// size cap. `Ok` gives the line's bytes.
pub fn check_line<'a>(
    line: &Line<'a>,
    max_line: usize,
) -> std::result::Result<&'a [u8], (FailureMessage, Original<'a>)> {
    match *line {
        Line::Full(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Err((
            FailureMessage::new(kind::EMPTY_LINE, "empty line where an event was expected"),
            Original::Line(bytes),
        )),
        Line::Full(bytes) => Ok(bytes),
        Line::Oversize { prefix, len } => Err((
            FailureMessage::new(
                kind::TOO_LARGE,
                format!("line of {len} bytes is over the {max_line}-byte limit (raise it with --max-event-bytes)"),
            )
            .with("bytes", len),
            Original::Truncated { prefix, len },
        )),
    }
}

/// The failure message for a line that is not one JSON object.
pub fn json_failure(error: &ScanError) -> FailureMessage {
    match error {
        ScanError::NotObject(_) => FailureMessage::new(kind::NOT_OBJECT, error.to_string()),
        ScanError::NotUtf8(at) => {
            FailureMessage::new(kind::INVALID_UTF8, error.to_string()).with("byte", *at)
        }
        ScanError::NotJson(_) | ScanError::Refused(_) => {
            FailureMessage::new(kind::NOT_JSON, error.to_string())
        }
    }
}

#[cfg(test)]
mod cut_tests {
    use super::is_cut_positioned;

    #[test]
    fn a_positioned_line_cut_anywhere_is_recognised() {
        let whole = br#"{"unilog":{"log":"L","partition":0,"offset":1},"a":1}"#;
        for cut in 1..whole.len() {
            assert!(is_cut_positioned(&whole[..cut]), "cut at {cut}");
        }
        assert!(!is_cut_positioned(whole));
        assert!(
            !is_cut_positioned(br#"{"a":"#),
            "not a position: a failure as ever"
        );
        assert!(!is_cut_positioned(b""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(u64, String)> {
        let mut r = LineReader::with_max_line(input, max);
        let mut out = Vec::new();
        while let Some((n, line)) = r.next_line().unwrap() {
            let text = match line {
                Line::Full(b) => String::from_utf8_lossy(b).into_owned(),
                Line::Oversize { prefix, len } => {
                    format!("OVERSIZE {} {}", len, String::from_utf8_lossy(&prefix[..2]))
                }
            };
            out.push((n, text));
        }
        out
    }

    #[test]
    fn reads_lines_with_numbers_and_crlf() {
        let got = lines(b"a\r\nbb\n\nlast", 100);
        assert_eq!(
            got,
            vec![
                (1, "a".into()),
                (2, "bb".into()),
                (3, "".into()),
                (4, "last".into())
            ]
        );
    }

    #[test]
    fn oversize_lines_are_cut_and_reading_goes_on() {
        let mut input = vec![b'x'; 300_000];
        input.push(b'\n');
        input.extend_from_slice(b"ok\n");
        input.extend(vec![b'y'; 200_000]);
        let got = lines(&input, 1000);
        assert_eq!(
            got,
            vec![
                (1, "OVERSIZE 300000 xx".into()),
                (2, "ok".into()),
                (3, "OVERSIZE 200000 yy".into())
            ]
        );
    }

    #[test]
    fn line_offsets_count_terminators() {
        let mut r = LineReader::new(&b"ab\ncde\nf"[..]);
        r.next_line().unwrap();
        assert_eq!(r.line_offset(), 0);
        r.next_line().unwrap();
        assert_eq!(r.line_offset(), 3);
        r.next_line().unwrap();
        assert_eq!(r.line_offset(), 7);
    }
}
