//! `enrich`: add geo-location, reference-table rows, jq transforms,
//! user-agent facts, ids and times to each event, in the order the steps are
//! given. The steps themselves are in [`crate::enrich`].

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches, Parser};

use crate::cli::{self, Counts, FailureArgs, InputArgs, Outcome, OutputArgs, ThreadArgs};
use crate::enrich::anonymize::Mask;
use crate::enrich::event_id::IdMode;
use crate::enrich::lookup::LookupSpec;
use crate::enrich::{self, config, Pipeline, Spec, StepSpec};
use crate::io::{self, Failures};
use crate::parallel;
use crate::path::FieldPath;

const STEPS: &str = "Steps (applied in the order given)";

/// Enrich each event: geo-IP, reference-table lookups, jq transforms,
/// user agents, ids and times.
///
/// Steps apply in the order they are given on the command line (or listed in
/// a --config file); each step sees the event as the steps before it left it.
/// An option such as --ip, --on or --key belongs to the step it follows.
///
/// Where results go: by default each step's result is a derived context
/// beside "data", a self-describing {"schema":"iglu:io.unilog/NAME/jsonschema/1-0-0","data":{...}}
/// appended to the event's "derived_contexts" array (created when missing);
/// the schemas are in the schemas/ folder. With --into PATH each result is
/// written into the event instead, at PATH.geo, PATH.user_agent, PATH.TABLE,
/// PATH.event_id and PATH.enriched_at. A step that finds nothing (an address
/// the database does not know, a key no row has, no value at the path) adds
/// no context, or writes null with --into. --jq and --anonymize-ip change the
/// event itself. Every other byte of the event passes through unchanged.
///
/// A step that fails on an event (an invalid address, a missing key with
/// --required, a jq error) turns that event into a failure event (see --bad)
/// carrying every error of that step and the original event; the other events
/// carry on, and the exit code is 1. Bad setup — an unreadable MaxMind DB, a
/// table with a malformed row or a duplicate key, a jq syntax error — is
/// reported with its file and line, and enrich exits 2 before reading any
/// event.
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  # The book's chapter 3: geo-locate each shopper
  enrich --geoip GeoLite2-City.mmdb --ip .data.shopper.ipAddress < raw.ndjson

  # Locate, then keep only a /24 of the address
  enrich --geoip City.mmdb --ip .data.shopper.ipAddress --anonymize-ip 1

  # Widen with a product table; fail events for unknown products
  enrich --lookup products.csv --on .data.product.sku --key sku --required

  # A jq transform, ids and the time, written under .data.enriched
  enrich --jq '.data.price_cents = ((.data.product.price // .data.item.product.price // .data.order.value) * 100 | round)' \\
         --event-id --enriched-at --into .data.enriched events.ndjson

  # Steps from a file; failures to a log
  log-tail raw.log --group enrich --follow | enrich --config enrich.json --bad bad.log \\
    | log-append enriched.log --key .data.shopper.id

Exit status: 0 all enriched, 1 some events failed (routed as failure events),
2 usage error, bad setup or I/O error."
)]
pub struct Options {
    #[command(flatten)]
    pub input: InputArgs,

    /// Geo-locate the IP address at --ip with this MaxMind DB file (GeoIP2,
    /// GeoLite2 or DB-IP, City or Country): country code and name, region,
    /// city, postal code, latitude, longitude, time zone.
    #[arg(long, value_name = "MMDB", action = ArgAction::Append, help_heading = STEPS)]
    pub geoip: Vec<PathBuf>,

    /// Where the IP address is, for the --geoip or --anonymize-ip before it
    /// (a step without one uses the --ip of the step before it).
    #[arg(long, value_name = "PATH", action = ArgAction::Append, help_heading = STEPS)]
    pub ip: Vec<FieldPath>,

    /// Look up each event in this table (CSV with a header, or NDJSON for
    /// .ndjson/.jsonl/.json), loaded once.
    #[arg(long, value_name = "TABLE", action = ArgAction::Append, help_heading = STEPS)]
    pub lookup: Vec<PathBuf>,

    /// Where the lookup key is in the event, for the --lookup before it.
    #[arg(long, value_name = "PATH", action = ArgAction::Append, help_heading = STEPS)]
    pub on: Vec<FieldPath>,

    /// The table's key column, for the --lookup before it (default: a CSV's
    /// first column; required for NDJSON).
    #[arg(long, value_name = "COLUMN", action = ArgAction::Append, help_heading = STEPS)]
    pub key: Vec<String>,

    /// Fail events whose key is in no row (for the --lookup before it);
    /// otherwise they get nothing (null with --into).
    #[arg(long, num_args = 0, default_missing_value = "true", action = ArgAction::Append, help_heading = STEPS)]
    pub required: Vec<bool>,

    /// The table's name in results, for the --lookup before it (default: the
    /// file name without its extension).
    #[arg(long = "as", value_name = "NAME", action = ArgAction::Append, help_heading = STEPS)]
    pub name: Vec<String>,

    /// Transform each event with this jq program (jaq's implementation). It
    /// must yield one object; yielding none leaves the event out (select).
    #[arg(long, value_name = "EXPR", action = ArgAction::Append, allow_hyphen_values = true, help_heading = STEPS)]
    pub jq: Vec<String>,

    /// Parse the user-agent string at PATH: browser, OS, device category.
    #[arg(long = "ua", value_name = "PATH", action = ArgAction::Append, help_heading = STEPS)]
    pub ua: Vec<FieldPath>,

    /// Give each event an id: random (UUID v4, the default) or content (UUID
    /// v5 of the input line, the same on every rerun over the same input).
    #[arg(long, value_name = "MODE", num_args = 0..=1, require_equals = true,
          default_missing_value = "random", action = ArgAction::Append, help_heading = STEPS)]
    pub event_id: Vec<IdMode>,

    /// Replace the address at --ip with its first octets only: zero the last
    /// N octets of IPv4 (1-4) and the last M 16-bit groups of IPv6 (1-8,
    /// default N+4).
    #[arg(long, value_name = "N[/M]", action = ArgAction::Append, help_heading = STEPS)]
    pub anonymize_ip: Vec<Mask>,

    /// Add the time of enrichment (RFC 3339, UTC, milliseconds).
    #[arg(long, num_args = 0, default_missing_value = "true", action = ArgAction::Append, help_heading = STEPS)]
    pub enriched_at: Vec<bool>,

    /// Read steps from this JSON file, in place among the others (see the
    /// documentation of enrich for its form).
    #[arg(long, value_name = "FILE", action = ArgAction::Append, help_heading = STEPS)]
    pub config: Vec<PathBuf>,

    /// Write results into the event at PATH.<name> instead of as derived
    /// contexts (`--into .data` puts them beside the event's own fields).
    #[arg(long, value_name = "PATH")]
    pub into: Option<FieldPath>,

    /// Lines longer than this are failures, not events.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, default_value = "1MiB")]
    pub max_event_bytes: u64,

    #[command(flatten)]
    pub threads: ThreadArgs,

    /// Print a summary on stderr (always on a terminal).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub failures: FailureArgs,
}

/// One item of the step list as given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum CliStep {
    /// A step given by its flags.
    Step(StepSpec),
    /// `--config FILE`: the steps listed there.
    Config(PathBuf),
}

/// `enrich`'s arguments: the options, and the steps in command-line order
/// (which clap's derive alone cannot give: it groups values by flag).
#[derive(Debug)]
pub struct Args {
    /// Every flag, as clap parsed it.
    pub options: Options,
    /// The steps, in the order given.
    pub steps: Vec<CliStep>,
}

impl CommandFactory for Args {
    fn command() -> clap::Command {
        Options::command()
    }
    fn command_for_update() -> clap::Command {
        Options::command_for_update()
    }
}

impl FromArgMatches for Args {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let options = Options::from_arg_matches(matches)?;
        let steps = order_steps(matches, &options).map_err(|e| {
            clap::Error::raw(clap::error::ErrorKind::ArgumentConflict, format!("{e}\n"))
                .with_cmd(&Options::command().name("enrich"))
        })?;
        Ok(Args { options, steps })
    }
    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl Parser for Args {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flag {
    GeoIp,
    Lookup,
    Jq,
    Ua,
    EventId,
    Anonymize,
    EnrichedAt,
    Config,
    Ip,
    On,
    Key,
    Required,
    As,
}

impl Flag {
    fn flag(self) -> &'static str {
        match self {
            Flag::GeoIp => "--geoip",
            Flag::Lookup => "--lookup",
            Flag::Jq => "--jq",
            Flag::Ua => "--ua",
            Flag::EventId => "--event-id",
            Flag::Anonymize => "--anonymize-ip",
            Flag::EnrichedAt => "--enriched-at",
            Flag::Config => "--config",
            Flag::Ip => "--ip",
            Flag::On => "--on",
            Flag::Key => "--key",
            Flag::Required => "--required",
            Flag::As => "--as",
        }
    }
    fn arg_id(self) -> &'static str {
        match self {
            Flag::GeoIp => "geoip",
            Flag::Lookup => "lookup",
            Flag::Jq => "jq",
            Flag::Ua => "ua",
            Flag::EventId => "event_id",
            Flag::Anonymize => "anonymize_ip",
            Flag::EnrichedAt => "enriched_at",
            Flag::Config => "config",
            Flag::Ip => "ip",
            Flag::On => "on",
            Flag::Key => "key",
            Flag::Required => "required",
            Flag::As => "name",
        }
    }
    fn is_step(self) -> bool {
        !matches!(
            self,
            Flag::Ip | Flag::On | Flag::Key | Flag::Required | Flag::As
        )
    }
}

/// A step being assembled from its flag and the options after it.
struct Draft {
    id: Flag,
    /// Which value of its flag (the n-th --geoip, …).
    nth: usize,
    ip: Option<FieldPath>,
    on: Option<FieldPath>,
    key: Option<String>,
    required: bool,
    name: Option<String>,
}

/// Puts the steps in command-line order and gives each its options.
fn order_steps(m: &ArgMatches, o: &Options) -> std::result::Result<Vec<CliStep>, String> {
    let ids = [
        Flag::GeoIp,
        Flag::Lookup,
        Flag::Jq,
        Flag::Ua,
        Flag::EventId,
        Flag::Anonymize,
        Flag::EnrichedAt,
        Flag::Config,
        Flag::Ip,
        Flag::On,
        Flag::Key,
        Flag::Required,
        Flag::As,
    ];
    let mut seen: Vec<(usize, Flag, usize)> = Vec::new();
    for id in ids {
        if m.value_source(id.arg_id()) != Some(clap::parser::ValueSource::CommandLine) {
            continue;
        }
        if let Some(indices) = m.indices_of(id.arg_id()) {
            let mut nth = 0;
            let mut last = None;
            for index in indices {
                // A flag with an optional value gives one index per value;
                // count each occurrence once.
                if last == Some(index) {
                    continue;
                }
                last = Some(index);
                seen.push((index, id, nth));
                nth += 1;
            }
        }
    }
    seen.sort_by_key(|&(index, _, _)| index);
    let mut drafts: Vec<Draft> = Vec::new();
    for (_, id, nth) in seen {
        if id.is_step() {
            drafts.push(Draft {
                id,
                nth,
                ip: None,
                on: None,
                key: None,
                required: false,
                name: None,
            });
            continue;
        }
        let Some(step) = drafts.last_mut() else {
            return Err(format!("{} must follow the step it belongs to", id.flag()));
        };
        let fits = match id {
            Flag::Ip => matches!(step.id, Flag::GeoIp | Flag::Anonymize),
            _ => step.id == Flag::Lookup,
        };
        if !fits {
            let owner = if id == Flag::Ip {
                "--geoip or --anonymize-ip"
            } else {
                "--lookup"
            };
            return Err(format!(
                "{} belongs to {owner}, but follows {}",
                id.flag(),
                step.id.flag()
            ));
        }
        let twice = || format!("{} is given twice for one {}", id.flag(), step.id.flag());
        match id {
            Flag::Ip => {
                if step.ip.replace(o.ip[nth].clone()).is_some() {
                    return Err(twice());
                }
            }
            Flag::On => {
                if step.on.replace(o.on[nth].clone()).is_some() {
                    return Err(twice());
                }
            }
            Flag::Key => {
                if step.key.replace(o.key[nth].clone()).is_some() {
                    return Err(twice());
                }
            }
            Flag::As => {
                if step.name.replace(o.name[nth].clone()).is_some() {
                    return Err(twice());
                }
            }
            Flag::Required => {
                if std::mem::replace(&mut step.required, true) {
                    return Err(twice());
                }
            }
            _ => unreachable!("steps are handled above"),
        }
    }
    let mut steps = Vec::with_capacity(drafts.len());
    let mut last_ip: Option<FieldPath> = None;
    let mut jq_count = 0;
    for d in drafts {
        if d.ip.is_some() {
            last_ip = d.ip.clone();
        }
        let ip = || {
            d.ip.clone().or_else(|| last_ip.clone()).ok_or_else(|| {
                format!(
                    "{} needs --ip PATH after it, such as --ip .data.shopper.ipAddress",
                    d.id.flag()
                )
            })
        };
        steps.push(match d.id {
            Flag::GeoIp => CliStep::Step(StepSpec::GeoIp {
                db: o.geoip[d.nth].clone(),
                ip: ip()?,
            }),
            Flag::Anonymize => CliStep::Step(StepSpec::AnonymizeIp {
                mask: o.anonymize_ip[d.nth],
                ip: ip()?,
            }),
            Flag::Lookup => CliStep::Step(StepSpec::Lookup(LookupSpec {
                table: o.lookup[d.nth].clone(),
                on: d.on.ok_or_else(|| {
                    "--lookup needs --on PATH after it: where the key is in the event".to_string()
                })?,
                key: d.key,
                required: d.required,
                name: d.name,
            })),
            Flag::Jq => {
                jq_count += 1;
                CliStep::Step(StepSpec::Jq {
                    expr: o.jq[d.nth].clone(),
                    origin: format!("--jq #{jq_count}"),
                })
            }
            Flag::Ua => CliStep::Step(StepSpec::UserAgent {
                path: o.ua[d.nth].clone(),
            }),
            Flag::EventId => CliStep::Step(StepSpec::EventId(o.event_id[d.nth])),
            Flag::EnrichedAt => CliStep::Step(StepSpec::EnrichedAt),
            Flag::Config => CliStep::Config(o.config[d.nth].clone()),
            _ => unreachable!("only steps are drafted"),
        });
    }
    Ok(steps)
}

/// The whole enrichment the arguments describe, config files read.
pub fn spec(args: &Args) -> Result<Spec> {
    let mut spec = Spec {
        steps: Vec::new(),
        into: args.options.into.clone(),
    };
    for step in &args.steps {
        match step {
            CliStep::Step(s) => spec.steps.push(s.clone()),
            CliStep::Config(path) => {
                let from_file = config::load(path)?;
                if let Some(into) = from_file.into {
                    match &spec.into {
                        Some(given) if *given != into => bail!(
                            "{} says \"into\": {into}, but --into is {given}; give one",
                            path.display()
                        ),
                        _ => spec.into = Some(into),
                    }
                }
                spec.steps.extend(from_file.steps);
            }
        }
    }
    if spec.steps.is_empty() {
        bail!("no steps given: name at least one of --geoip, --lookup, --jq, --ua, --event-id, --anonymize-ip, --enriched-at or --config (see --help)");
    }
    Ok(spec)
}

/// Runs `enrich`.
pub fn run(args: Args) -> Result<Outcome> {
    let spec = spec(&args)?;
    // Everything is loaded and compiled before any event is read.
    let pipeline = Pipeline::build(&spec)?;
    let options = args.options;
    let threads = options.threads.count();
    let mut workers = Vec::with_capacity(threads);
    for _ in 1..threads {
        workers.push(pipeline.fork()?);
    }
    workers.push(pipeline);
    let workers = workers
        .into_iter()
        .map(|mut pipeline| {
            move |line: &[u8], out: &mut Vec<u8>| match pipeline.process(line) {
                enrich::Outcome::Enriched(event) => {
                    out.extend_from_slice(event);
                    out.push(b'\n');
                    Ok(1)
                }
                enrich::Outcome::Dropped => Ok(0),
                enrich::Outcome::Failed(errors) => Err(errors),
            }
        })
        .collect();
    let inputs = io::open_inputs(&options.input.files)?;
    let mut out = options.output.open()?;
    let mut failures = Failures::open(&options.failures)?;
    let max_line = usize::try_from(options.max_event_bytes).unwrap_or(usize::MAX);
    let tally =
        parallel::for_each_line_ordered(inputs, max_line, &mut out, &mut failures, workers)?;
    out.flush()?;
    failures.flush()?;
    let counts = Counts {
        read: tally.read,
        written: tally.written,
        failed: failures.count(),
    };
    let dropped = tally.dropped;
    counts.report(options.verbose, "enriched");
    if dropped > 0 && (options.verbose || cli::stderr_is_terminal()) {
        cli::warn(format_args!("{dropped} left out by --jq"));
    }
    Ok(counts.outcome())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, clap::Error> {
        let mut argv = vec!["enrich"];
        argv.extend_from_slice(args);
        Args::try_parse_from(argv)
    }

    fn steps(args: &[&str]) -> Vec<CliStep> {
        parse(args).unwrap().steps
    }

    fn p(s: &str) -> FieldPath {
        FieldPath::parse(s).unwrap()
    }

    #[test]
    fn steps_keep_command_line_order() {
        let s = steps(&[
            "--jq",
            ".a = 1",
            "--geoip",
            "db.mmdb",
            "--ip",
            ".data.ip",
            "--enriched-at",
            "--lookup",
            "t.csv",
            "--on",
            ".data.k",
            "--required",
            "--as",
            "t",
            "--anonymize-ip",
            "1",
            "--event-id=content",
            "--event-id",
            "--jq",
            ".b = 2",
            "--ua",
            ".data.ua",
            "--config",
            "c.json",
            "--enriched-at",
            "in.ndjson",
        ]);
        assert_eq!(
            s,
            vec![
                CliStep::Step(StepSpec::Jq {
                    expr: ".a = 1".into(),
                    origin: "--jq #1".into()
                }),
                CliStep::Step(StepSpec::GeoIp {
                    db: "db.mmdb".into(),
                    ip: p(".data.ip")
                }),
                CliStep::Step(StepSpec::EnrichedAt),
                CliStep::Step(StepSpec::Lookup(LookupSpec {
                    table: "t.csv".into(),
                    on: p(".data.k"),
                    key: None,
                    required: true,
                    name: Some("t".into())
                })),
                CliStep::Step(StepSpec::AnonymizeIp {
                    mask: "1".parse().unwrap(),
                    ip: p(".data.ip")
                }),
                CliStep::Step(StepSpec::EventId(IdMode::Content)),
                CliStep::Step(StepSpec::EventId(IdMode::Random)),
                CliStep::Step(StepSpec::Jq {
                    expr: ".b = 2".into(),
                    origin: "--jq #2".into()
                }),
                CliStep::Step(StepSpec::UserAgent {
                    path: p(".data.ua")
                }),
                CliStep::Config("c.json".into()),
                CliStep::Step(StepSpec::EnrichedAt),
            ]
        );
        assert_eq!(
            parse(&["--enriched-at", "in.ndjson"])
                .unwrap()
                .options
                .input
                .files,
            vec![PathBuf::from("in.ndjson")]
        );
    }

    #[test]
    fn options_belong_to_their_step() {
        let s = steps(&[
            "--lookup", "a.csv", "--on", ".x", "--lookup", "b.ndjson", "--on", ".y", "--key", "id",
        ]);
        match (&s[0], &s[1]) {
            (CliStep::Step(StepSpec::Lookup(a)), CliStep::Step(StepSpec::Lookup(b))) => {
                assert_eq!(
                    (a.on.to_string(), a.key.clone(), a.required),
                    (".x".into(), None, false)
                );
                assert_eq!(
                    (b.on.to_string(), b.key.clone()),
                    (".y".into(), Some("id".into()))
                );
            }
            other => panic!("{other:?}"),
        }
        for (args, message) in [
            (&["--ip", ".a", "--geoip", "x"][..], "--ip must follow"),
            (
                &["--jq", ".", "--on", ".a"][..],
                "--on belongs to --lookup, but follows --jq",
            ),
            (&["--geoip", "x"][..], "--geoip needs --ip"),
            (&["--lookup", "x.csv"][..], "--lookup needs --on"),
            (
                &[
                    "--lookup",
                    "x.csv",
                    "--on",
                    ".a",
                    "--required",
                    "--required",
                ][..],
                "--required is given twice",
            ),
            (&["--anonymize-ip", "9", "--ip", ".a"][..], "1 to 4"),
            (&["--event-id=v7"][..], "random"),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(message), "{args:?}: {e}");
            assert_eq!(parse(args).unwrap_err().exit_code(), 2);
        }
    }

    #[test]
    fn ip_paths_carry_over_to_later_steps() {
        let s = steps(&["--geoip", "x", "--ip", ".data.ip", "--anonymize-ip", "1"]);
        assert_eq!(
            s[1],
            CliStep::Step(StepSpec::AnonymizeIp {
                mask: "1".parse().unwrap(),
                ip: p(".data.ip")
            })
        );
    }

    #[test]
    fn no_steps_is_a_usage_error() {
        let args = parse(&[]).unwrap();
        assert!(spec(&args)
            .unwrap_err()
            .to_string()
            .contains("no steps given"));
    }
}
