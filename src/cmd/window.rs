//! `window`: tumbling, hopping and session windows per key in event time,
//! with named aggregates, written as derived events; exactly-once through a
//! pipe with `--state`. The machinery is in [`crate::window`].

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;

use crate::cli::{self, FailureArgs, InputArgs, Outcome, OutputArgs};
use crate::io::{self, Failures};
use crate::path::FieldPath;
use crate::window::engine::{Engine, Options};
use crate::window::spec::{self, Aggregate, Alignment, Emit, Kind, Spec, TimeFormat, TimeSource};

const WINDOWS: &str = "Windows";
const AGGREGATES: &str = "Aggregates and results";
const TIME: &str = "Event time and watermarks";
const STATE: &str = "State and exactly-once";

/// Group events by key into windows in event time and write one derived
/// event per window result.
///
/// Each event joins the windows of its key (--key, repeatable for a
/// composite key): back-to-back --tumbling windows, overlapping --hopping
/// windows, or --session windows that grow while events keep coming within
/// the gap (an event that bridges two sessions merges them into one).
/// Tumbling and hopping windows align to the epoch, shifted by --offset or
/// following local time in --tz. A result is written when the watermark (the
/// largest event time seen, less --lateness, per input partition, the
/// lowest partition counting) passes the window's end; at the end of the
/// input every window closes (with --state only with --close-at-end).
///
/// Results are iglu:io.unilog/window/jsonschema/1-0-0 events:
/// {"result_id":…,"window":"tumbling 1m","key":…,"window_start":…,
/// "window_end":…,"revision":1,"final":true,"events":N,"aggregates":{…}}
/// (window_end is exclusive; a session's is its last event plus 1 ms). The
/// result_id is SHA-256 of the configuration, key, start and revision: the
/// same on every run. --having drops results, --output-schema and --shape
/// write another schema. Results decided together are written ordered by
/// window end, window start, then key, whatever -j is.
///
/// An event later than its partition's watermark is late: it becomes a
/// failure event naming the window it missed (to --late, else --bad), never
/// dropped silently. A missing or unreadable key or time, a value an
/// aggregate cannot use, or a line that is not a JSON object becomes a
/// failure event too, and the exit code is 1.
///
/// Exactly once: with --state FILE, results are written only after a
/// checkpoint numbers them; each result then begins with the position
/// member "unilog":{"log":"window:STATE-ID","partition":0,"offset":N}, so a
/// rerun after a crash writes the same numbered results again and
/// log-append drops those it holds. The checkpoint records the input
/// positions it reflects: start the reader with log-tail --resume-from FILE.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  # Events per shopper and minute
  window --tumbling 1m --key .data.shopper.id --time .data.timestamp events.ndjson

  # Revenue per day in Paris time, allowing 10 minutes of lateness
  window --tumbling 1d --tz Europe/Paris --time .data.timestamp --lateness 10m \\
    --agg 'orders=count' --agg 'revenue=sum(.data.order.value)' \\
    --where '.schema | contains(\"shopper_placed_order\")'

  # A 1-hour window every 5 minutes, updated as events come (analytics on write)
  window --hopping 1h --every 5m --key .data.product.sku --time .data.timestamp \\
    --agg 'views=count' --agg 'viewers=count_distinct(.data.shopper.id)' --emit update

  # The book's abandoned carts: items added since the last order, 30 minutes idle
  log-tail enriched.log --with-position --resume-from carts.state --follow \\
    | window --session 30m --key .data.shopper.id --time .data.timestamp \\
        --state carts.state --confirm-from derived.log \\
        --agg 'cart=reduce([]; if ($event.schema | contains(\"shopper_added_to_cart\")) then . + [$event.data.item]
                            elif ($event.schema | contains(\"shopper_placed_order\")) then [] else . end)' \\
        --having '.aggregates.cart | length > 0' \\
        --output-schema iglu:com.nile/shopper_abandoned_cart/jsonschema/1-0-0 \\
        --shape '{shopper: .key, items: .aggregates.cart, since: .window_start, until: .window_end, result_id}' \\
    | log-append derived.log

Aggregates are NAME=FUNC or NAME=FUNC(ARG), then optionally 'where JQ':
  count  count(ARG)  sum(ARG)  min(ARG)  max(ARG)  avg(ARG)  count_distinct(ARG)
  first(ARG)  last(ARG)  collect(ARG)  reduce(INIT; UPDATE)
ARG is a path (.data.order.value, read fast from the raw event) or any jq
expression (its first output); first, last and collect without ARG take the
whole event. A missing or null value is skipped. In reduce, . is the
accumulator and $event the event. Without --agg: count=count.

Exit status: 0 ok, 1 some events became failure events (late ones too),
2 usage error, I/O error, a state of another configuration or a damaged state."
)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Back-to-back windows of DUR (1m, 1h, 1d).
    #[arg(long, value_name = "DUR", value_parser = cli::duration_arg, help_heading = WINDOWS,
          required_unless_present_any = ["hopping", "session"], conflicts_with_all = ["hopping", "session"])]
    pub tumbling: Option<i64>,

    /// Windows of SIZE that start every --every.
    #[arg(long, value_name = "SIZE", value_parser = cli::duration_arg, requires = "every", conflicts_with = "session", help_heading = WINDOWS)]
    pub hopping: Option<i64>,

    /// How far apart hopping windows start.
    #[arg(long, value_name = "ADVANCE", value_parser = cli::duration_arg, requires = "hopping", help_heading = WINDOWS)]
    pub every: Option<i64>,

    /// Sessions: a key's events closer than GAP to one another form one window.
    #[arg(long, value_name = "GAP", value_parser = cli::duration_arg, help_heading = WINDOWS)]
    pub session: Option<i64>,

    /// Shift tumbling and hopping windows from the epoch by DUR (-5h, 30m).
    #[arg(long, value_name = "DUR", value_parser = spec::parse_offset, allow_hyphen_values = true, default_value = "0s", help_heading = WINDOWS)]
    pub offset: i64,

    /// Align tumbling and hopping windows to local time in ZONE (Europe/Paris):
    /// a day runs from local midnight to local midnight.
    #[arg(long, value_name = "ZONE", help_heading = WINDOWS)]
    pub tz: Option<String>,

    /// The key (jq path); repeat for a composite key. None: one window for all events.
    #[arg(short = 'k', long = "key", value_name = "PATH", help_heading = WINDOWS)]
    pub keys: Vec<FieldPath>,

    /// Event time at PATH (RFC 3339 or epoch seconds or ms). Without it, the
    /// log's append time from the position member (log-tail --with-position).
    #[arg(short = 't', long = "time", value_name = "PATH", help_heading = TIME)]
    pub time: Option<FieldPath>,

    /// How --time is read.
    #[arg(long, value_name = "FORMAT", value_enum, default_value = "auto", help_heading = TIME)]
    pub time_format: TimeFormat,

    /// How far behind the largest event time of a partition its watermark stays.
    #[arg(long, value_name = "DUR", value_parser = cli::duration_arg, default_value = "0s", help_heading = TIME)]
    pub lateness: i64,

    /// A partition that has sent nothing for DUR (wall clock) stops holding
    /// the watermark back. Off by default: the wall clock makes results
    /// depend on timing.
    #[arg(long, value_name = "DUR", value_parser = cli::duration_arg, help_heading = TIME)]
    pub idle_partition: Option<i64>,

    /// When the input stops for DUR (wall clock), let the watermark follow
    /// the clock from the last event time, closing windows. Opt-in: the wall
    /// clock makes results depend on timing.
    #[arg(long, value_name = "DUR", value_parser = cli::duration_arg, help_heading = TIME)]
    pub idle_close: Option<i64>,

    /// The input's logs have N partitions each: until every one has sent an
    /// event, the silent ones hold the watermark back.
    #[arg(long, value_name = "N", help_heading = TIME)]
    pub partitions: Option<u32>,

    /// Late events go to PATH (a file, or a log directory) as failure events
    /// naming the window they missed; default: with the other failures (--bad).
    #[arg(long, value_name = "PATH", help_heading = TIME)]
    pub late: Option<PathBuf>,

    /// A named aggregate, NAME=FUNC(ARG) [where JQ] (repeatable; see below).
    #[arg(short = 'a', long = "agg", value_name = "SPEC", help_heading = AGGREGATES)]
    pub aggregates: Vec<String>,

    /// Only events for which this jq filter is true are windowed (the others are skipped).
    #[arg(long = "where", value_name = "JQ", help_heading = AGGREGATES)]
    pub filter: Option<String>,

    /// Only results for which this jq filter is true are written; it sees
    /// the result's data (.key, .window_start, .aggregates.NAME, …).
    #[arg(long, value_name = "JQ", help_heading = AGGREGATES)]
    pub having: Option<String>,

    /// close: one result per window when it closes; update: a result with a
    /// higher revision whenever it changed (at most once per batch of input)
    /// and a final one at close.
    #[arg(long, value_name = "WHEN", value_enum, default_value = "close", help_heading = AGGREGATES)]
    pub emit: Emit,

    /// The most values one collect keeps (the earliest); results say how
    /// many there were under "truncated".
    #[arg(long, value_name = "N", default_value_t = 1000, help_heading = AGGREGATES)]
    pub collect_max: usize,

    /// Write results as this schema (iglu:…) with the data --shape makes.
    #[arg(long, value_name = "URI", help_heading = AGGREGATES)]
    pub output_schema: Option<String>,

    /// A jq expression that turns the built-in result data into the data of
    /// --output-schema (default: the data unchanged).
    #[arg(long, value_name = "JQ", requires = "output_schema", help_heading = AGGREGATES)]
    pub shape: Option<String>,

    /// Checkpoint to FILE (open windows, watermarks, input positions, results
    /// not yet written) and resume from it; results carry position members.
    #[arg(long, value_name = "FILE", help_heading = STATE)]
    pub state: Option<PathBuf>,

    /// With --state, close every window at the end of the input. Use it only
    /// when the input is complete (a backfill): a reader killed mid-way looks
    /// like the end of the input.
    #[arg(long, requires = "state", help_heading = STATE)]
    pub close_at_end: bool,

    /// The log the results are appended to (log-append LOG at the end of the
    /// pipe): results stay in the checkpoint until LOG holds them, so that
    /// killing the appender loses none. Without it, a killed window or
    /// reader loses nothing, a killed appender may lose what it had not
    /// stored.
    #[arg(long, value_name = "LOG", requires = "state", help_heading = STATE)]
    pub confirm_from: Option<PathBuf>,

    /// Checkpoint whenever N results wait (and at every pause of the input).
    #[arg(long, value_name = "N", default_value_t = 10_000, help_heading = STATE)]
    pub checkpoint_every: usize,

    /// Stop with an error when the open windows hold more than SIZE
    /// (512MiB, 4GiB); nothing is ever evicted silently.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, help_heading = STATE)]
    pub max_state: Option<u64>,

    /// Hold the windows in N worker threads, keys routed by hash (default 1).
    /// Results are the same and in the same order whatever N is.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: u16,

    /// Lines longer than this are failures, not events.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, default_value = "1MiB")]
    pub max_event_bytes: u64,

    /// Report the watermark (and which partition holds it), checkpoints and
    /// a summary on stderr.
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub failures: FailureArgs,
}

impl Args {
    /// The job these flags describe.
    pub fn spec(&self) -> Result<Spec> {
        let kind = match (self.tumbling, self.hopping, self.every, self.session) {
            (Some(size), None, None, None) => Kind::Tumbling { size },
            (None, Some(size), Some(every), None) => Kind::Hopping { size, every },
            (None, None, None, Some(gap)) => Kind::Session { gap },
            _ => bail!("give one of --tumbling DUR, --hopping SIZE --every ADVANCE or --session GAP"),
        };
        let mut aggregates = self
            .aggregates
            .iter()
            .map(|a| Aggregate::parse(a))
            .collect::<Result<Vec<_>>>()?;
        if aggregates.is_empty() {
            aggregates.push(Aggregate::parse("count=count")?);
        }
        Ok(Spec {
            kind,
            align: Alignment::new(self.offset, self.tz.as_deref())?,
            keys: self.keys.clone(),
            time: match &self.time {
                Some(p) => TimeSource::Field(p.clone(), self.time_format),
                None => TimeSource::Append,
            },
            lateness: self.lateness,
            aggregates,
            filter: self.filter.clone(),
            having: self.having.clone(),
            emit: self.emit,
            collect_max: self.collect_max,
            output_schema: self.output_schema.clone(),
            shape: self.shape.clone(),
        })
    }
}

/// Runs `window`.
pub fn run(args: Args) -> Result<Outcome> {
    let spec = args.spec()?;
    if args.checkpoint_every == 0 {
        bail!("--checkpoint-every must be at least 1");
    }
    let options = Options {
        state: args.state.clone(),
        close_at_end: args.close_at_end,
        max_state: args.max_state,
        idle_partition: args.idle_partition.map(|ms| Duration::from_millis(ms as u64)),
        idle_close: args.idle_close.map(|ms| Duration::from_millis(ms as u64)),
        partitions: args.partitions,
        threads: usize::from(args.threads),
        checkpoint_results: args.checkpoint_every,
        verbose: args.verbose,
        confirm_from: args.confirm_from.clone(),
    };
    let inputs = io::open_inputs(&args.input.files)?;
    let mut out = args.output.open()?;
    let mut failures = Failures::open(&args.failures)?;
    let mut late = match &args.late {
        Some(path) => Some(Failures::open(&FailureArgs {
            bad: Some(path.clone()),
            // Its own marks, should --late and --bad name one log.
            producer: Some(format!("{}.late", args.failures.producer_name())),
        })?),
        None => None,
    };
    let max_line = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
    let mut engine = Engine::start(spec, options, &mut out)?;
    io::for_each_line(inputs, max_line, |step| engine.step(step, &mut out, &mut failures, &mut late))?;
    let tally = engine.finish(&mut out, &mut failures, &mut late)?;
    if args.verbose || tally.failed > 0 || cli::stderr_is_terminal() {
        cli::warn(format_args!(
            "{} read, {} results, {} failed ({} late), {} already in the state, {} left out by --where",
            tally.read, tally.results, tally.failed, tally.late, tally.skipped, tally.filtered
        ));
    }
    Ok(Outcome::from_failures(tally.failed))
}
