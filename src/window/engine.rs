//! The job itself: reads each input line (its position member, key and
//! event time), judges lateness, routes the event to the store that owns
//! its key (this thread's, or a worker's with `-j N`), and at each close
//! point (every [`BATCH`] events, each pause of the input, the end)
//! advances the watermark, collects the results decided, numbers them,
//! checkpoints and writes them.
//!
//! Exactly-once through a pipe: with `--state`, a result is written only
//! after a checkpoint holds it with its sequence number, so a rerun writes
//! the same (number, result) pairs again and the next `log-append` drops the
//! ones it holds (each result's position member is `window:<state id>`,
//! partition 0, offset = its number). Results decided after the last
//! checkpoint were never written, so the order they are decided in on a
//! rerun does not matter. The checkpoint's `held` tells `log-tail
//! --resume-from STATE` where to start, and events at or below it are
//! skipped here.

use std::ops::Range;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use jaq_json::Val;

use super::aggregate::{self, Acc, Aggregates, Order};
use super::assign::Assigner;
use super::emit::{self, Rendered, Renderer};
use super::eventtime;
use super::spec::{self, Emit, Kind, Spec, TimeSource};
use super::state::{Checkpoint, Pending, SavedWindow, StateFile};
use super::store::{self, Decided, Store, Window};
use super::watermark::{self, Watermarks};
use crate::cli;
use crate::event::{FailureMessage, Original};
use crate::io::{Failures, FilterStep, Output};
use crate::jq::{self, Program};
use crate::json::PathSet;
use crate::path::Segment;
use crate::position::{self, Held, Position};
use crate::time;

/// Events between close points: windows close, and results are written,
/// at most this many events after the watermark passes them (or sooner,
/// when the input pauses).
pub const BATCH: usize = 4096;

/// Settings beyond the window spec.
#[derive(Debug, Clone)]
pub struct Options {
    /// The checkpoint file.
    pub state: Option<std::path::PathBuf>,
    /// With a state, close every window at the end of the input.
    pub close_at_end: bool,
    /// Refuse to hold more than this many bytes of open windows.
    pub max_state: Option<u64>,
    /// A partition silent this long (wall clock) stops holding the watermark.
    pub idle_partition: Option<Duration>,
    /// Input silent this long (wall clock) lets the watermark follow the clock.
    pub idle_close: Option<Duration>,
    /// Source partitions expected per log (`--partitions`).
    pub partitions: Option<u32>,
    /// Worker threads holding the windows.
    pub threads: usize,
    /// Checkpoint when this many results wait.
    pub checkpoint_results: usize,
    /// Report the watermark's holder and checkpoints on stderr.
    pub verbose: bool,
    /// The log the results are appended to: results stay in the checkpoint
    /// until it holds them, so a killed appender loses none.
    pub confirm_from: Option<std::path::PathBuf>,
}

/// Results written but not yet confirmed beyond this many mean the
/// destination is not where they go: stop rather than grow without bound.
const MAX_UNCONFIRMED: usize = 1_000_000;

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    /// Lines read.
    pub read: u64,
    /// Results written.
    pub results: u64,
    /// Inputs that became failure events (late ones included).
    pub failed: u64,
    /// Late events.
    pub late: u64,
    /// Events skipped because the state already reflects them.
    pub skipped: u64,
    /// Events left out by `--where`.
    pub filtered: u64,
}

/// A failure found by a store, to route in the reading thread.
struct StoreFailure {
    input: Arc<str>,
    line_no: u64,
    message: FailureMessage,
    event: Vec<u8>,
    position: Option<Position>,
}

/// One event for a worker.
struct Item {
    key: Box<[u8]>,
    time: i64,
    order: Order,
    fixed: Vec<(i64, i64)>,
    event: Vec<u8>,
    top: Range<usize>,
    found: Vec<Option<Range<usize>>>,
    input: Arc<str>,
    line_no: u64,
    position: Option<Position>,
}

enum ToWorker {
    Items(Vec<Item>),
    Decide(i64),
    Snapshot,
    Restore(Vec<SavedWindow>),
}

enum FromWorker {
    Decided(Vec<Rendered>, Vec<StoreFailure>, (usize, usize, usize)),
    Snapshot(Vec<SavedWindow>),
    Failed(String),
}

/// Builds a store and its renderer in whatever thread will use them (jq
/// values are not shared between threads).
#[derive(Clone)]
struct Recipe {
    spec: Spec,
    config_id: [u8; 32],
}

impl Recipe {
    fn build(&self) -> Result<(Store, Renderer, Arc<Aggregates>)> {
        let aggs = Arc::new(Aggregates::compile(
            &self.spec.aggregates,
            self.spec.collect_max,
        )?);
        let renderer = Renderer::new(&self.spec, self.config_id, aggs.clone())?;
        let store = Store::new(self.spec.kind, aggs.clone(), self.spec.emit == Emit::Update);
        Ok((store, renderer, aggs))
    }
}

fn saved(key: &[u8], w: &Window) -> SavedWindow {
    SavedWindow {
        key: String::from_utf8_lossy(key).into_owned(),
        start: w.start,
        end: w.end,
        events: w.events,
        revision: w.revision,
        dirty: w.dirty,
        values: w.accs.iter().map(Acc::to_state).collect(),
    }
}

/// A window back from the checkpoint, for the aggregates of `spec`.
fn from_saved(spec: &Spec, s: SavedWindow) -> Result<(Vec<u8>, Window)> {
    let accs = spec
        .aggregates
        .iter()
        .zip(&s.values)
        .map(|(a, v)| Acc::from_state(a, v))
        .collect::<Option<Vec<_>>>()
        .filter(|accs| accs.len() == spec.aggregates.len() && s.values.len() == accs.len())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "the state's window of key {} from {} does not fit the aggregates",
                s.key,
                time::format_rfc3339_ms(s.start)
            )
        })?;
    Ok((
        s.key.into_bytes(),
        Window {
            start: s.start,
            end: s.end,
            events: s.events,
            revision: s.revision,
            dirty: s.dirty,
            accs,
        },
    ))
}

/// The windows: held here, or by worker threads.
enum Backend {
    Local {
        store: Store,
        renderer: Renderer,
        aggs: Arc<Aggregates>,
        failures: Vec<StoreFailure>,
    },
    Pool {
        senders: Vec<mpsc::SyncSender<ToWorker>>,
        replies: Vec<mpsc::Receiver<FromWorker>>,
        batches: Vec<Vec<Item>>,
        handles: Vec<std::thread::JoinHandle<()>>,
        stats: (usize, usize, usize),
    },
}

const ITEMS_PER_MESSAGE: usize = 256;

fn worker(recipe: Recipe, rx: mpsc::Receiver<ToWorker>, tx: mpsc::Sender<FromWorker>) {
    let (mut store, mut renderer, aggs) = match recipe.build() {
        Ok(parts) => parts,
        Err(e) => {
            let _ = tx.send(FromWorker::Failed(format!("{e:#}")));
            return;
        }
    };
    let mut failures = Vec::new();
    for msg in rx {
        match msg {
            ToWorker::Items(items) => {
                for item in items {
                    let value = if aggs.needs_value {
                        match jq::parse_json(&item.event) {
                            Ok(v) => Some(v),
                            Err(e) => {
                                failures.push(StoreFailure {
                                    input: item.input,
                                    line_no: item.line_no,
                                    message: FailureMessage::new("not_json", e),
                                    event: item.event,
                                    position: item.position,
                                });
                                continue;
                            }
                        }
                    } else {
                        None
                    };
                    if let Err(message) = store.apply(
                        &item.key,
                        item.time,
                        item.order,
                        &item.fixed,
                        &item.event,
                        item.top.clone(),
                        value.as_ref(),
                        Some(&item.found),
                    ) {
                        failures.push(StoreFailure {
                            input: item.input,
                            line_no: item.line_no,
                            message,
                            event: item.event,
                            position: item.position,
                        });
                    }
                }
            }
            ToWorker::Decide(wm) => {
                let mut decided = Vec::new();
                store.decide(wm, &mut decided);
                let rendered = decided
                    .into_iter()
                    .filter_map(|d| renderer.render(d))
                    .collect();
                let stats = (store.windows(), store.keys(), store.bytes());
                if tx
                    .send(FromWorker::Decided(
                        rendered,
                        std::mem::take(&mut failures),
                        stats,
                    ))
                    .is_err()
                {
                    return;
                }
            }
            ToWorker::Snapshot => {
                let mut all = Vec::new();
                store.each_window(|k, w| all.push(saved(k, w)));
                if tx.send(FromWorker::Snapshot(all)).is_err() {
                    return;
                }
            }
            ToWorker::Restore(windows) => {
                for s in windows {
                    match from_saved(&recipe.spec, s) {
                        Ok((k, w)) => store.restore(&k, w),
                        Err(e) => {
                            let _ = tx.send(FromWorker::Failed(format!("{e:#}")));
                            return;
                        }
                    }
                }
            }
        }
    }
}

impl Backend {
    fn new(recipe: &Recipe, threads: usize) -> Result<Backend> {
        if threads <= 1 {
            let (store, renderer, aggs) = recipe.build()?;
            return Ok(Backend::Local {
                store,
                renderer,
                aggs,
                failures: Vec::new(),
            });
        }
        // Compile once here so that a bad expression is a usage error, not a worker's.
        recipe.build()?;
        let mut senders = Vec::new();
        let mut replies = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads {
            let (tx, rx) = mpsc::sync_channel(8);
            let (rtx, rrx) = mpsc::channel();
            let recipe = recipe.clone();
            handles.push(
                std::thread::Builder::new()
                    .name(format!("window-{i}"))
                    .spawn(move || worker(recipe, rx, rtx))?,
            );
            senders.push(tx);
            replies.push(rrx);
        }
        Ok(Backend::Pool {
            senders,
            replies,
            batches: (0..threads).map(|_| Vec::new()).collect(),
            handles,
            stats: (0, 0, 0),
        })
    }

    fn workers(&self) -> usize {
        match self {
            Backend::Local { .. } => 1,
            Backend::Pool { senders, .. } => senders.len(),
        }
    }

    fn flush_batches(&mut self) -> Result<()> {
        if let Backend::Pool {
            senders, batches, ..
        } = self
        {
            for (tx, batch) in senders.iter().zip(batches.iter_mut()) {
                if !batch.is_empty() {
                    tx.send(ToWorker::Items(std::mem::take(batch)))
                        .map_err(|_| anyhow::anyhow!("a window worker stopped"))?;
                }
            }
        }
        Ok(())
    }

    fn receive(replies: &[mpsc::Receiver<FromWorker>]) -> Result<Vec<FromWorker>> {
        replies
            .iter()
            .map(|r| match r.recv() {
                Ok(FromWorker::Failed(e)) => bail!("{e}"),
                Ok(other) => Ok(other),
                Err(_) => bail!("a window worker stopped"),
            })
            .collect()
    }

    /// Closes what the watermark has passed; returns the results and the
    /// failures the stores found since the last call.
    fn decide(&mut self, wm: i64) -> Result<(Vec<Rendered>, Vec<StoreFailure>)> {
        self.flush_batches()?;
        match self {
            Backend::Local {
                store,
                renderer,
                failures,
                ..
            } => {
                let mut decided: Vec<Decided> = Vec::new();
                store.decide(wm, &mut decided);
                let rendered = decided
                    .into_iter()
                    .filter_map(|d| renderer.render(d))
                    .collect();
                Ok((rendered, std::mem::take(failures)))
            }
            Backend::Pool {
                senders,
                replies,
                stats,
                ..
            } => {
                for tx in senders.iter() {
                    tx.send(ToWorker::Decide(wm))
                        .map_err(|_| anyhow::anyhow!("a window worker stopped"))?;
                }
                let mut rendered = Vec::new();
                let mut failures = Vec::new();
                *stats = (0, 0, 0);
                for reply in Self::receive(replies)? {
                    if let FromWorker::Decided(r, f, s) = reply {
                        rendered.extend(r);
                        failures.extend(f);
                        stats.0 += s.0;
                        stats.1 += s.1;
                        stats.2 += s.2;
                    }
                }
                Ok((rendered, failures))
            }
        }
    }

    /// Open windows, keys and bytes (as of the last close point, with workers).
    fn stats(&self) -> (usize, usize, usize) {
        match self {
            Backend::Local { store, .. } => (store.windows(), store.keys(), store.bytes()),
            Backend::Pool { stats, .. } => *stats,
        }
    }

    fn snapshot(&mut self) -> Result<Vec<SavedWindow>> {
        self.flush_batches()?;
        match self {
            Backend::Local { store, .. } => {
                let mut all = Vec::new();
                store.each_window(|k, w| all.push(saved(k, w)));
                Ok(all)
            }
            Backend::Pool {
                senders, replies, ..
            } => {
                for tx in senders.iter() {
                    tx.send(ToWorker::Snapshot)
                        .map_err(|_| anyhow::anyhow!("a window worker stopped"))?;
                }
                let mut all = Vec::new();
                for reply in Self::receive(replies)? {
                    if let FromWorker::Snapshot(w) = reply {
                        all.extend(w);
                    }
                }
                Ok(all)
            }
        }
    }

    fn restore(&mut self, spec: &Spec, windows: Vec<SavedWindow>) -> Result<()> {
        let n = self.workers();
        let mut routed: Vec<Vec<SavedWindow>> = (0..n).map(|_| Vec::new()).collect();
        for s in windows {
            let w = store::route(s.key.as_bytes(), n);
            routed[w].push(s);
        }
        match self {
            Backend::Local { store, .. } => {
                for s in routed.pop().unwrap_or_default() {
                    let (k, w) = from_saved(spec, s)?;
                    store.restore(&k, w);
                }
            }
            Backend::Pool { senders, .. } => {
                for (tx, windows) in senders.iter().zip(routed) {
                    tx.send(ToWorker::Restore(windows))
                        .map_err(|_| anyhow::anyhow!("a window worker stopped"))?;
                }
            }
        }
        Ok(())
    }

    fn stop(self) {
        if let Backend::Pool {
            senders, handles, ..
        } = self
        {
            drop(senders);
            for h in handles {
                let _ = h.join();
            }
        }
    }
}

/// A window job in progress.
pub struct Engine {
    spec: Spec,
    options: Options,
    keys: Vec<Vec<Segment>>,
    time_path: Option<(Vec<Segment>, spec::TimeFormat)>,
    /// Every path the job reads (keys, time, then the aggregates'), looked
    /// up in one walk per event.
    paths: PathSet,
    /// Their values in the event being read.
    found: Vec<Option<Range<usize>>>,
    /// Where each aggregate's path is in `found` (`None`: not a path).
    agg_slots: Vec<Option<usize>>,
    /// The aggregates' path values, one per aggregate.
    agg_found: Vec<Option<Range<usize>>>,
    assigner: Option<Assigner>,
    filter: Option<Program>,
    watermarks: Watermarks,
    backend: Backend,
    held: Held,
    id: String,
    config: serde_json::Value,
    next_seq: u64,
    /// Numbered results not yet in a checkpoint (nor written).
    pending: Vec<Pending>,
    /// Results in the last checkpoint, written since.
    written: Vec<Pending>,
    state: Option<StateFile>,
    tally: Tally,
    since_close: usize,
    line_counter: u64,
    fixed: Vec<(i64, i64)>,
    last_source: Option<(Arc<str>, u32, usize)>,
    plain_partition: Option<usize>,
    last_input: Instant,
    last_report: Instant,
    expected_logs: Vec<Arc<str>>,
    input_name: Option<Arc<str>>,
    checkpoints: u64,
}

impl Engine {
    /// Opens the state (refusing one of another configuration) and starts
    /// the stores. Results a previous run numbered are written again
    /// first, as they may not have reached the output.
    pub fn start(spec: Spec, options: Options, out: &mut Output) -> Result<Engine> {
        spec.check()?;
        let config = spec.canonical();
        let config_id = emit::config_id(&config);
        let recipe = Recipe {
            spec: spec.clone(),
            config_id,
        };
        let backend = Backend::new(&recipe, options.threads)?;
        let filter = spec
            .filter
            .as_deref()
            .map(|f| aggregate::compile(f, "--where"))
            .transpose()?;
        let (state, checkpoint) = match &options.state {
            Some(path) => {
                let (file, cp) = StateFile::open(path)?;
                (Some(file), cp)
            }
            None => (None, None),
        };
        let time_segments = match &spec.time {
            TimeSource::Field(p, _) => Some(p.segments()),
            TimeSource::Append => None,
        };
        let mut all: Vec<&[Segment]> = spec.keys.iter().map(|k| k.segments()).collect();
        all.extend(time_segments);
        let mut agg_slots = Vec::new();
        for p in Aggregates::paths(&spec.aggregates) {
            agg_slots.push(p.map(|p| {
                all.push(p);
                all.len() - 1
            }));
        }
        let paths = PathSet::new(all);
        let mut engine = Engine {
            paths,
            found: Vec::new(),
            agg_found: vec![None; agg_slots.len()],
            agg_slots,
            keys: spec.keys.iter().map(|k| k.segments().to_vec()).collect(),
            time_path: match &spec.time {
                TimeSource::Field(p, f) => Some((p.segments().to_vec(), *f)),
                TimeSource::Append => None,
            },
            assigner: Assigner::new(spec.kind, &spec.align),
            filter,
            watermarks: Watermarks::new(spec.lateness, options.idle_partition),
            backend,
            held: Held::default(),
            id: uuid::Uuid::new_v4().to_string(),
            config,
            next_seq: 0,
            pending: Vec::new(),
            written: Vec::new(),
            state,
            tally: Tally::default(),
            since_close: 0,
            line_counter: 0,
            fixed: Vec::new(),
            last_source: None,
            plain_partition: None,
            last_input: Instant::now(),
            last_report: Instant::now(),
            expected_logs: Vec::new(),
            input_name: None,
            checkpoints: 0,
            spec,
            options,
        };
        if let Some(cp) = checkpoint {
            engine.resume(cp, out)?;
        }
        Ok(engine)
    }

    fn resume(&mut self, cp: Checkpoint, out: &mut Output) -> Result<()> {
        let path = self
            .options
            .state
            .as_ref()
            .expect("a checkpoint comes from a state file");
        if cp.config != self.config {
            let diffs = spec::differences(&self.config, &cp.config);
            bail!(
                "state {} belongs to another window configuration ({}); it was left as it is. \
                 Use the command line it was made with, or another --state file",
                path.display(),
                diffs.join("; ")
            );
        }
        self.id = cp.id;
        self.next_seq = cp.next_seq;
        self.held = cp.held;
        for (name, max_time) in &cp.partitions {
            self.watermarks.restore(name, *max_time);
        }
        self.watermarks.restore_global(cp.watermark);
        self.backend.restore(&self.spec, cp.windows)?;
        // These were numbered and checkpointed; they may or may not have
        // reached the output, so they go again (the destination drops repeats).
        for p in &cp.pending {
            self.write_result(out, p)?;
        }
        out.flush()?;
        self.written = cp.pending;
        if self.options.verbose {
            cli::warn(format_args!(
                "resumed from {}: {} open windows, watermark {}, {} results written again",
                path.display(),
                self.backend.stats().0,
                show_time(self.watermarks.global()),
                self.written.len()
            ));
        }
        Ok(())
    }

    fn source_of(&self) -> String {
        format!("window:{}", self.id)
    }

    fn write_result(&self, out: &mut Output, p: &Pending) -> std::io::Result<()> {
        if self.state.is_some() {
            let pos = Position {
                log: self.source_of().into(),
                partition: 0,
                offset: p.seq,
                sub: 0,
                time_ms: None,
            };
            let mut line = Vec::with_capacity(p.event.len() + 80);
            position::write_with(&mut line, &pos, p.event.as_bytes());
            out.write_line(&line)
        } else {
            out.write_line(p.event.as_bytes())
        }
    }

    /// One step of the read loop.
    pub fn step(
        &mut self,
        step: FilterStep<'_>,
        out: &mut Output,
        failures: &mut Failures,
        late: &mut Option<Failures>,
    ) -> Result<()> {
        match step {
            FilterStep::Line {
                input,
                line_no,
                bytes,
            } => {
                self.tally.read += 1;
                // The clock matters per event only to tell idle input and
                // partitions apart; otherwise the close point's will do.
                if self.clock_per_event() {
                    self.last_input = Instant::now();
                }
                self.line(input, line_no, bytes, failures, late)?;
                self.since_close += 1;
                if self.since_close >= BATCH {
                    self.close_point(out, failures, late, false)?;
                }
            }
            FilterStep::Unfit {
                input,
                line_no,
                message,
                original,
            } => {
                self.tally.read += 1;
                failures.route(input, line_no, vec![message], original)?;
            }
            FilterStep::Idle => {
                self.close_point(out, failures, late, true)?;
                if let Some(idle) = self.options.idle_close {
                    self.wait_idle(idle, out, failures, late)?;
                }
            }
        }
        Ok(())
    }

    /// With `--idle-close`: while stdin stays silent, the watermark follows
    /// the wall clock from the last event time, closing windows as it goes.
    fn wait_idle(
        &mut self,
        idle: Duration,
        out: &mut Output,
        failures: &mut Failures,
        late: &mut Option<Failures>,
    ) -> Result<()> {
        let tick = idle
            .min(Duration::from_secs(1))
            .max(Duration::from_millis(10));
        loop {
            if crate::io::fd_readable(0, tick.as_millis() as i32) || crate::io::stdout_closed() {
                return Ok(());
            }
            let silence = self.last_input.elapsed();
            if silence >= idle {
                let max = self.watermarks.max_time();
                if max != watermark::NONE {
                    let to = max
                        .saturating_add(silence.as_millis() as i64)
                        .saturating_sub(self.spec.lateness);
                    self.watermarks.force(to);
                    self.close_point(out, failures, late, true)?;
                }
            }
        }
    }

    /// True when idleness is judged (`--idle-partition`, `--idle-close`):
    /// then each event's arrival time matters, else a close point's will do.
    fn clock_per_event(&self) -> bool {
        self.options.idle_partition.is_some() || self.options.idle_close.is_some()
    }

    fn fail(
        &mut self,
        failures: &mut Failures,
        input: &str,
        line_no: u64,
        message: FailureMessage,
        bytes: &[u8],
    ) -> Result<()> {
        failures.route(input, line_no, vec![message], Original::Line(bytes))
    }

    fn partition_index(&mut self, pos: Option<&Position>) -> usize {
        match pos {
            None => *self
                .plain_partition
                .get_or_insert_with(|| self.watermarks.partition("input")),
            Some(p) => {
                if let Some((log, part, i)) = &self.last_source {
                    if *log == p.log && *part == p.partition {
                        return *i;
                    }
                }
                let i = self
                    .watermarks
                    .partition(&format!("{}/{}", p.log, p.partition));
                if let Some(n) = self.options.partitions {
                    if !self.expected_logs.contains(&p.log) {
                        self.expected_logs.push(p.log.clone());
                        for q in 0..n {
                            self.watermarks.partition(&format!("{}/{q}", p.log));
                        }
                    }
                }
                self.last_source = Some((p.log.clone(), p.partition, i));
                i
            }
        }
    }

    fn line(
        &mut self,
        input: &str,
        line_no: u64,
        bytes: &[u8],
        failures: &mut Failures,
        late: &mut Option<Failures>,
    ) -> Result<()> {
        let (position, owned) = match position::split(bytes) {
            Ok(Some((p, rest))) => (Some(p), Some(rest)),
            Ok(None) => (None, None),
            Err(e) => {
                let m = FailureMessage::new(
                    "bad_position",
                    format!("the position member is malformed: {e}"),
                );
                return self.fail(failures, input, line_no, m, bytes);
            }
        };
        if let Some(p) = &position {
            if self.held.holds(p) {
                self.tally.skipped += 1;
                return Ok(());
            }
            self.held.record(p);
        }
        let event: &[u8] = owned.as_deref().unwrap_or(bytes);
        let top = match self.paths.scan(event, &mut self.found) {
            Ok(top) => top,
            Err(e) => {
                return self.fail(failures, input, line_no, crate::io::json_failure(&e), bytes)
            }
        };
        // The event as a jq value, when something needs it.
        let mut value: Option<Val> = None;
        if let Some(filter) = &self.filter {
            let v = match jq_value(event) {
                Ok(v) => v,
                Err(m) => return self.fail(failures, input, line_no, m, bytes),
            };
            match aggregate::passes(filter, &v) {
                Ok(true) => value = Some(v),
                Ok(false) => {
                    self.tally.filtered += 1;
                    return Ok(());
                }
                Err(e) => {
                    return self.fail(
                        failures,
                        input,
                        line_no,
                        FailureMessage::new("where", format!("--where: {e}")),
                        bytes,
                    )
                }
            }
        }
        for (slot, found) in self.agg_slots.iter().zip(self.agg_found.iter_mut()) {
            *found = slot.and_then(|i| self.found[i].clone());
        }
        let mut errors = Vec::new();
        let key = match self.key_of(event) {
            Ok(k) => Some(k),
            Err(m) => {
                errors.push(m);
                None
            }
        };
        let time = match self.time_of(event, position.as_ref()) {
            Ok(t) => Some(t),
            Err(m) => {
                errors.push(m);
                None
            }
        };
        let part = self.partition_index(position.as_ref());
        let now = self.last_input;
        let (Some(key), Some(t)) = (key, time) else {
            self.watermarks.touch(part, now);
            return failures.route(input, line_no, errors, Original::Line(bytes));
        };
        let mark = self.watermarks.lateness_mark(part);
        self.fixed.clear();
        let mut missed = Vec::new();
        match (&self.assigner, self.spec.kind) {
            (Some(a), _) => {
                a.windows(t, &mut self.fixed);
                self.fixed.retain(|&(s, e)| {
                    if e <= mark {
                        missed.push((s, e));
                        false
                    } else {
                        true
                    }
                });
            }
            (None, Kind::Session { gap }) => {
                if t < mark {
                    missed.push((t, t + 1));
                    let _ = gap;
                }
            }
            (None, _) => unreachable!("fixed kinds have an assigner"),
        }
        self.watermarks.observe(part, t, now);
        if !missed.is_empty() {
            self.tally.late += 1;
            let name = self.watermarks.partitions()[part].name.clone();
            let m = late_message(&self.spec, &key, t, mark, &name, &missed);
            match late.as_mut() {
                Some(l) => l.route(input, line_no, vec![m], Original::Line(bytes))?,
                None => failures.route(input, line_no, vec![m], Original::Line(bytes))?,
            }
            if self.fixed.is_empty() {
                return Ok(());
            }
            if matches!(self.spec.kind, Kind::Session { .. }) {
                return Ok(());
            }
        }
        self.line_counter += 1;
        let order: Order = match &position {
            Some(p) => (t, p.offset, p.sub),
            None => (t, self.line_counter, 0),
        };
        let workers = self.backend.workers();
        if let Backend::Local { aggs, .. } = &self.backend {
            if value.is_none() && aggs.needs_value {
                match jq_value(event) {
                    Ok(v) => value = Some(v),
                    Err(m) => return self.fail(failures, input, line_no, m, bytes),
                }
            }
        }
        match &mut self.backend {
            Backend::Local {
                store,
                failures: found,
                ..
            } => {
                if let Err(m) = store.apply(
                    &key,
                    t,
                    order,
                    &self.fixed,
                    event,
                    top,
                    value.as_ref(),
                    Some(&self.agg_found),
                ) {
                    let input = match &self.input_name {
                        Some(n) if &**n == input => n.clone(),
                        _ => Arc::from(input),
                    };
                    found.push(StoreFailure {
                        input,
                        line_no,
                        message: m,
                        event: event.to_vec(),
                        position,
                    });
                }
            }
            Backend::Pool { .. } => {
                let item = Item {
                    fixed: self.fixed.clone(),
                    time: t,
                    order,
                    event: owned.unwrap_or_else(|| bytes.to_vec()),
                    top,
                    found: self.agg_found.clone(),
                    input: self.intern(input),
                    line_no,
                    position,
                    key: key.into_boxed_slice(),
                };
                let w = store::route(&item.key, workers);
                if let Backend::Pool {
                    senders, batches, ..
                } = &mut self.backend
                {
                    batches[w].push(item);
                    if batches[w].len() >= ITEMS_PER_MESSAGE {
                        senders[w]
                            .send(ToWorker::Items(std::mem::take(&mut batches[w])))
                            .map_err(|_| anyhow::anyhow!("a window worker stopped"))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn intern(&mut self, input: &str) -> Arc<str> {
        match &self.input_name {
            Some(n) if &**n == input => n.clone(),
            _ => {
                let n: Arc<str> = input.into();
                self.input_name = Some(n.clone());
                n
            }
        }
    }

    /// The key's JSON text (a composite key as an array), from the values
    /// [`PathSet::scan`] put in `self.found`.
    fn key_of(&self, event: &[u8]) -> Result<Vec<u8>, FailureMessage> {
        let mut key = Vec::with_capacity(24);
        if self.keys.is_empty() {
            key.extend_from_slice(b"null");
            return Ok(key);
        }
        let composite = self.keys.len() > 1;
        if composite {
            key.push(b'[');
        }
        for i in 0..self.keys.len() {
            if i > 0 {
                key.push(b',');
            }
            match &self.found[i] {
                Some(r) if &event[r.clone()] != b"null" => {
                    aggregate::normalize_into(&event[r.clone()], &mut key)
                }
                _ => {
                    return Err(FailureMessage::new(
                        "no_key",
                        format!("the key {} is missing or null", self.spec.keys[i]),
                    )
                    .with("path", self.spec.keys[i].to_string()))
                }
            }
        }
        if composite {
            key.push(b']');
        }
        Ok(key)
    }

    fn time_of(&self, event: &[u8], pos: Option<&Position>) -> Result<i64, FailureMessage> {
        match &self.time_path {
            Some((_, format)) => {
                let path = || match &self.spec.time {
                    TimeSource::Field(p, _) => p.to_string(),
                    TimeSource::Append => unreachable!(),
                };
                let Some(r) = self.found[self.keys.len()].clone() else {
                    let path = path();
                    return Err(FailureMessage::new(
                        "no_time",
                        format!("the event time {path} is missing"),
                    )
                    .with("path", path));
                };
                eventtime::parse(&event[r], *format).map_err(|e| {
                    let path = path();
                    FailureMessage::new("bad_time", format!("the event time {path}: {e}"))
                        .with("path", path)
                })
            }
            None => pos.and_then(|p| p.time_ms).ok_or_else(|| {
                FailureMessage::new(
                    "no_time",
                    "the event has no append time (no position member with a time): read it with \
                     log-tail --with-position, or give --time PATH",
                )
            }),
        }
    }

    /// Advances the watermark, collects what it decided, and (when due)
    /// checkpoints and writes results.
    fn close_point(
        &mut self,
        out: &mut Output,
        failures: &mut Failures,
        late: &mut Option<Failures>,
        paused: bool,
    ) -> Result<()> {
        self.since_close = 0;
        let now = Instant::now();
        if !self.clock_per_event() {
            self.last_input = now;
        }
        let wm = self.watermarks.advance(now);
        let (mut rendered, found) = self.backend.decide(wm)?;
        for f in found {
            let mut original = Vec::new();
            match &f.position {
                Some(p) => position::write_with(&mut original, p, &f.event),
                None => original.extend_from_slice(&f.event),
            }
            failures.route(
                &f.input,
                f.line_no,
                vec![f.message],
                Original::Line(&original),
            )?;
        }
        rendered.sort_unstable_by(|a, b| a.order.cmp(&b.order));
        for r in rendered {
            match r.line {
                // Without a state nothing waits for a checkpoint: straight out.
                Ok(line) if self.state.is_none() => {
                    out.write_line(&line)?;
                    self.next_seq += 1;
                    self.tally.results += 1;
                }
                Ok(line) => {
                    let event = String::from_utf8(line)
                        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                    self.pending.push(Pending {
                        seq: self.next_seq,
                        event,
                    });
                    self.next_seq += 1;
                }
                Err((message, data)) => {
                    failures.route(
                        "result",
                        0,
                        vec![FailureMessage::new("result", message)],
                        Original::Line(&data),
                    )?;
                }
            }
        }
        let (windows, keys, bytes) = self.backend.stats();
        if let Some(max) = self.options.max_state {
            if bytes as u64 > max {
                bail!(
                    "the open windows hold about {} MiB ({} windows of {} keys), over --max-state {} MiB; \
                     nothing was dropped. Raise --max-state, shorten the windows or the lateness, or split \
                     the keys over several window processes (log-tail --partition)",
                    bytes >> 20,
                    windows,
                    keys,
                    max >> 20
                );
            }
        }
        if self.options.verbose && (paused || self.last_report.elapsed() >= Duration::from_secs(1))
        {
            self.last_report = now;
            let holder = match self.watermarks.waiting_for() {
                Some(name) => format!("partition {name} has sent nothing yet"),
                None => self
                    .watermarks
                    .holder(now)
                    .map(|p| format!("held by partition {}", p.name))
                    .unwrap_or_else(|| "no partition yet".into()),
            };
            cli::warn(format_args!(
                "watermark {} ({holder}); {windows} open windows, {keys} keys, about {} KiB",
                show_time(wm),
                bytes >> 10
            ));
        }
        let due = paused && (!self.pending.is_empty() || self.state.is_some());
        if self.state.is_none() {
            self.write_pending(out)?;
            if paused {
                out.flush()?;
            }
        } else if due || self.pending.len() >= self.options.checkpoint_results {
            self.checkpoint(out, failures, late)?;
        }
        Ok(())
    }

    fn write_pending(&mut self, out: &mut Output) -> Result<()> {
        for p in &self.pending {
            self.write_result(out, p)?;
        }
        self.tally.results += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }

    /// Failures made durable, then the state (with the results numbered
    /// so far), then the results written: a result is never out before the
    /// checkpoint that numbers it.
    fn checkpoint(
        &mut self,
        out: &mut Output,
        failures: &mut Failures,
        late: &mut Option<Failures>,
    ) -> Result<()> {
        failures.flush()?;
        if let Some(l) = late.as_mut() {
            l.flush()?;
        }
        if self.state.is_none() {
            return Ok(());
        }
        // Results written before but not yet held by the destination stay
        // in the checkpoint, so a rerun writes them again.
        let unconfirmed = self.unconfirmed()?;
        let state = self.state.as_ref().expect("checked above");
        let windows = self.backend.snapshot()?;
        let cp = Checkpoint {
            id: self.id.clone(),
            config: self.config.clone(),
            next_seq: self.next_seq,
            held: self.held.clone(),
            partitions: self
                .watermarks
                .partitions()
                .iter()
                .filter(|p| p.max_time != watermark::NONE)
                .map(|p| (p.name.clone(), p.max_time))
                .collect(),
            watermark: self.watermarks.global(),
            pending: self.pending.clone(),
            windows,
        };
        let cp = Checkpoint {
            pending: unconfirmed.iter().chain(&self.pending).cloned().collect(),
            ..cp
        };
        state.write(&cp)?;
        self.checkpoints += 1;
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            self.write_result(out, p)?;
        }
        self.tally.results += pending.len() as u64;
        self.written = unconfirmed;
        self.written.extend(pending);
        out.flush()?;
        Ok(())
    }

    /// The results written since earlier checkpoints that `--confirm-from`
    /// does not hold yet (none kept without it: the last checkpoint's are
    /// written again on a rerun, which covers a killed window or reader).
    fn unconfirmed(&mut self) -> Result<Vec<Pending>> {
        let Some(dest) = &self.options.confirm_from else {
            return Ok(Vec::new());
        };
        if self.written.is_empty() {
            return Ok(Vec::new());
        }
        let mut held = crate::position::Held::new();
        if crate::store::Log::exists(dest) {
            let log = crate::store::Log::open(dest)?;
            for (_, h) in crate::store::producer::all_held(&log)? {
                held.merge(&h);
            }
        }
        let source: Arc<str> = self.source_of().into();
        let kept: Vec<Pending> = std::mem::take(&mut self.written)
            .into_iter()
            .filter(|p| {
                !held.holds(&Position {
                    log: source.clone(),
                    partition: 0,
                    offset: p.seq,
                    sub: 0,
                    time_ms: None,
                })
            })
            .collect();
        if kept.len() > MAX_UNCONFIRMED {
            bail!(
                "{} results written to the pipe are not in {} yet; is that the log the results are appended to (--confirm-from)?",
                kept.len(),
                dest.display()
            );
        }
        Ok(kept)
    }

    /// End of input: the watermark goes to +infinity, every window closes,
    /// and a last checkpoint is written.
    pub fn finish(
        mut self,
        out: &mut Output,
        failures: &mut Failures,
        late: &mut Option<Failures>,
    ) -> Result<Tally> {
        // With a state, the end of the input may be a reader that was
        // killed: windows stay open unless the user says the input is whole.
        if self.state.is_none() || self.options.close_at_end {
            self.watermarks.force(watermark::END);
        }
        self.close_point(out, failures, late, false)?;
        self.checkpoint(out, failures, late)?;
        self.write_pending(out)?;
        out.flush()?;
        failures.flush()?;
        if let Some(l) = late.as_mut() {
            l.flush()?;
        }
        let mut tally = self.tally;
        tally.failed = failures.count() + late.as_ref().map_or(0, |l| l.count());
        if self.options.verbose {
            cli::warn(format_args!(
                "{} checkpoints{}",
                self.checkpoints,
                self.state
                    .as_ref()
                    .map(|s| format!(" to {}", s.path().display()))
                    .unwrap_or_default()
            ));
        }
        self.backend.stop();
        Ok(tally)
    }
}

/// The event as a jq value, or the failure that says why it is not JSON.
fn jq_value(event: &[u8]) -> Result<Val, FailureMessage> {
    jq::parse_json(event).map_err(|e| FailureMessage::new("not_json", e))
}

fn show_time(ms: i64) -> String {
    match ms {
        watermark::NONE => "-inf".into(),
        watermark::END => "+inf".into(),
        _ => time::format_rfc3339_ms(ms),
    }
}

fn late_message(
    spec: &Spec,
    key: &[u8],
    t: i64,
    mark: i64,
    partition: &str,
    missed: &[(i64, i64)],
) -> FailureMessage {
    let key_value: serde_json::Value =
        serde_json::from_slice(key).unwrap_or(serde_json::Value::Null);
    let windows: Vec<serde_json::Value> = missed
        .iter()
        .map(|&(s, e)| {
            serde_json::json!({
                "window_start": time::format_rfc3339_ms(s),
                "window_end": time::format_rfc3339_ms(e),
            })
        })
        .collect();
    let what = match spec.kind {
        Kind::Session { .. } => format!(
            "the session it would join or start at {} had closed",
            time::format_rfc3339_ms(t)
        ),
        _ => {
            let list: Vec<String> = missed
                .iter()
                .map(|&(s, e)| {
                    format!(
                        "[{}, {})",
                        time::format_rfc3339_ms(s),
                        time::format_rfc3339_ms(e)
                    )
                })
                .collect();
            format!("it missed window {}", list.join(", "))
        }
    };
    FailureMessage::new(
        "late",
        format!(
            "late event: its time {} is behind the watermark {} of partition {partition}; {what} for key {}",
            time::format_rfc3339_ms(t),
            show_time(mark),
            String::from_utf8_lossy(key)
        ),
    )
    .with("event_time", time::format_rfc3339_ms(t))
    .with("watermark", show_time(mark))
    .with("partition", partition)
    .with("key", key_value)
    .with("window", spec.describe())
    .with("missed", windows)
}
