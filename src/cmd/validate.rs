//! `validate`: check self-describing events against their schemas.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;

use crate::cli::{self, Counts, FailureArgs, InputArgs, Outcome, OutputArgs, ThreadArgs};
use crate::io::{self, Failures};
use crate::parallel;
use crate::schema::registry::Resolver;
use crate::schema::{lint, Checker};

/// Check self-describing events against their schemas from a registry.
///
/// Each event names its schema, {"schema":"iglu:VENDOR/NAME/FORMAT/VERSION","data":{…}};
/// the schema (JSON Schema of any draft from 4 to 2020-12, an Iglu
/// self-describing schema, or Avro checking the JSON encoding of the data)
/// comes from a registry laid out as DIR/VENDOR/NAME/FORMAT/VERSION. A valid
/// event goes to the output unchanged, byte for byte. Any other line becomes
/// a failure event (see --bad) carrying every error found — not JSON, not
/// self-describing, schema not found (and where it looked), bad schema, or
/// each way the data is invalid (instance path, keyword, message) — and the
/// exit code is 1.
///
/// Avro data is read as Java's JsonDecoder reads Avro's JSON encoding: every
/// record field present (a default is for schema resolution, not for data),
/// unions as null or {"BRANCH": value}, an int or long also as a whole number
/// written 1.0 or 1e3 (never rounded), a float or double also as "NaN",
/// "Infinity", "-Infinity", "INF" or "-INF".
///
/// With no --registry or --resolver, schemas come from ./schemas when it is a
/// directory, then from the io.unilog schemas built in. Each schema is
/// fetched and compiled once per worker thread (see --threads).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = "\
Examples:
  validate events.ndjson > good.ndjson                        # ./schemas, then built-ins
  log-tail raw.log --group v --follow | validate --registry examples/schemas --bad bad.log
  validate --registry team/schemas --registry vendor/schemas --bad failures.ndjson
  validate --resolver resolver.json < events.ndjson           # Iglu resolver configuration
  validate --lint examples/schemas                            # check a registry

A resolver configuration is Iglu's:
  {\"schema\":\"iglu:com.snowplowanalytics.iglu/resolver-config/jsonschema/1-0-3\",
   \"data\":{\"cacheSize\":500,\"cacheTtl\":600,\"repositories\":[
     {\"name\":\"local\",\"priority\":0,\"vendorPrefixes\":[\"com.nile\"],
      \"connection\":{\"embedded\":{\"path\":\"schemas\"}}},
     {\"name\":\"central\",\"priority\":1,\"vendorPrefixes\":[],
      \"connection\":{\"http\":{\"uri\":\"http://registry.example:8080\"}}}]}}
Repositories whose vendor prefix matches the event's vendor come first,
then lower priority; embedded paths are relative to the configuration file.

Exit status: 0 all valid (or a clean registry with --lint: \"cannot tell\"
findings alone do not fail it unless --strict), 1 some events failed (or lint
found problems), 2 usage, I/O or configuration error."
)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    #[command(flatten)]
    pub output: OutputArgs,

    /// A static registry directory, DIR/VENDOR/NAME/FORMAT/VERSION; repeat
    /// to search several, first one first.
    #[arg(long, value_name = "DIR", conflicts_with = "resolver")]
    pub registry: Vec<PathBuf>,

    /// An Iglu resolver configuration: repositories (embedded directories
    /// and HTTP static registries) with priorities and vendor prefixes, cache
    /// size and TTL.
    #[arg(long, value_name = "FILE")]
    pub resolver: Option<PathBuf>,

    /// Check a registry instead of events: every schema compiles, its self
    /// block matches its path, versions follow one another, and each
    /// ADDITION adds no required property and removes or narrows nothing.
    /// Narrowing is judged by what the version before accepted (a type
    /// added to an enum of that type's values narrows nothing); a change
    /// lint cannot judge either way (a widened oneOf branch that may now
    /// overlap another, a narrowed anyOf branch, a $ref'd piece) is printed
    /// as PATH: cannot tell: … and fails the run only with --strict.
    /// DIR defaults to the first --registry, else ./schemas.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "", conflicts_with = "resolver")]
    pub lint: Option<PathBuf>,

    /// With --lint, fail (exit 1) on "cannot tell" findings too: changes in
    /// an ADDITION that lint can neither prove safe nor prove breaking.
    #[arg(long, requires = "lint")]
    pub strict: bool,

    /// Lines longer than this are failures, not events.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, default_value = "1MiB")]
    pub max_event_bytes: u64,

    #[command(flatten)]
    pub threads: ThreadArgs,

    /// Print a summary on stderr (always on a terminal).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub failures: FailureArgs,
}

/// Runs `validate`.
pub fn run(args: Args) -> Result<Outcome> {
    if let Some(dir) = &args.lint {
        return run_lint(dir, &args);
    }
    let resolver = Resolver::from_flags(&args.registry, args.resolver.as_deref())?;
    let inputs = io::open_inputs(&args.input.files)?;
    let mut out = args.output.open()?;
    let mut failures = Failures::open(&args.failures)?;
    let max_line = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
    // Each worker keeps its own schema cache: schemas are few, and a shared
    // cache would put a lock in every event's path.
    let workers = (0..args.threads.count())
        .map(|_| {
            let mut checker = Checker::new(resolver.clone());
            move |line: &[u8], out: &mut Vec<u8>| {
                checker.check(line)?;
                out.extend_from_slice(line);
                out.push(b'\n');
                Ok(1)
            }
        })
        .collect();
    let tally =
        parallel::for_each_line_ordered(inputs, max_line, &mut out, &mut failures, workers)?;
    let mut counts = Counts {
        read: tally.read,
        written: tally.written,
        failed: 0,
    };
    // Failures are made durable before the good events are let go.
    failures.flush()?;
    out.flush()?;
    counts.failed = failures.count();
    counts.report(args.verbose, "valid");
    Ok(counts.outcome())
}

fn run_lint(dir: &std::path::Path, args: &Args) -> Result<Outcome> {
    let dir = if dir.as_os_str().is_empty() {
        args.registry
            .first()
            .cloned()
            .unwrap_or_else(|| PathBuf::from("schemas"))
    } else {
        dir.to_path_buf()
    };
    if !dir.is_dir() {
        anyhow::bail!("registry {} is not a directory", dir.display());
    }
    let report = lint::lint(&dir)?;
    let mut out = args.output.open()?;
    for p in &report.problems {
        out.write_line(format!("{}: {}", p.path.display(), p.message).as_bytes())?;
    }
    for p in &report.cannot_tell {
        out.write_line(format!("{}: cannot tell: {}", p.path.display(), p.message).as_bytes())?;
    }
    out.flush()?;
    let failing = !report.problems.is_empty() || (args.strict && !report.cannot_tell.is_empty());
    if failing || !report.cannot_tell.is_empty() || args.verbose || cli::stderr_is_terminal() {
        cli::warn(format_args!(
            "{}: {} schemas, {} problems, {} cannot tell{}",
            dir.display(),
            report.schemas,
            report.problems.len(),
            report.cannot_tell.len(),
            if !report.cannot_tell.is_empty() && !args.strict {
                " (those fail the run only with --strict)"
            } else {
                ""
            }
        ));
    }
    Ok(if failing {
        Outcome::SomeFailed
    } else {
        Outcome::Ok
    })
}
