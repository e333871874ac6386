//! `alert`: turn events into alert commands by rule, or execute alert
//! commands (email, webhook, program) once each.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use serde_json::{json, Map, Value};

use crate::alert::command::{ReceivedCommand, Urgency, OUTCOME_SCHEMA};
use crate::alert::decide::Decider;
use crate::alert::expr::Jq;
use crate::alert::journal::Journal;
use crate::alert::rule::{self, RecipientSpec, RuleSpec, ThrottleState};
use crate::alert::send::{self, Executed, Executor, RetryPolicy, SmtpOptions, SmtpTls};
use crate::cli::{self, Counts, FailureArgs, InputArgs, Outcome, OutputArgs};
use crate::event::{Failure, FailureMessage, InputPosition, Original};
use crate::io::{self, check_line, Failures, FilterStep, LineReader, Output};
use crate::json;
use crate::time;

/// The help's examples, each line short enough for an 80-column terminal so
/// that clap never wraps one in the middle of a command (a test checks).
const EXAMPLES: &str = "\
Examples:
  alert --rule rules.json health.ndjson > commands.ndjson
  log-tail health.log --follow \\
    | alert --when '.data.disk.free_percent < 10' \\
        --summary 'Disk low on {{.data.host}}' \\
        --recipient 'Ops <ops@example.com>' \\
        --throttle 30m --per .data.host --state /var/lib/unilog/decider \\
    | log-append commands.log
  log-tail commands.log --group mailer --follow \\
    | alert --send smtp://mail.example.com:587 --from alerts@example.com \\
        --state /var/lib/unilog/mailer
  alert --send https://hooks.example.com/alerts --state state/ commands.ndjson
  alert --send exec:/usr/local/bin/page-oncall \\
      --exec-arg --team --exec-arg ops < commands.ndjson
  alert --state state/ --resolve 3f2a9c0e5b7d41e8a6c2f0b9d8e7a6c5

Credentials never go on the command line: SMTP reads UNILOG_SMTP_USERNAME
and UNILOG_SMTP_PASSWORD (or --smtp-credentials FILE), HTTP reads the
Authorization header from UNILOG_HTTP_AUTHORIZATION.

Exit status: 0 all good, 1 some inputs or commands failed (failure events
written), 2 usage, I/O or journal error.";

/// Turn events into alert commands by rule (--rule, --when), or execute alert
/// commands (--send) exactly once.
///
/// Deciding: each event that matches a rule's jq condition becomes an alert
/// command, a self-describing event (iglu:io.unilog/alert/jsonschema/1-0-0)
/// holding a command id (a hash of the rule id and the event's bytes, so the
/// same event always gives the same id), a notification (summary, detail,
/// urgency), a recipient (name, email, phone), the time and the source event.
/// Summary, detail and recipient are templates: {{.data.host}} is filled with
/// the jq filter's first value. --throttle lets at most one alert per rule
/// and per --per key through in each period, by the event's time (--time-path)
/// when it has one, else by the time of processing.
///
/// Executing: each alert command read is carried out through --send: an email
/// over SMTP, a POST of the command as JSON, or a program run with the command
/// on stdin (no shell). Transient failures are retried with exponential
/// backoff. Each outcome is an event on stdout: an alert_outcome
/// (iglu:io.unilog/alert_outcome/jsonschema/1-0-0) when sent or already sent,
/// a failure event (iglu:io.unilog/failure/jsonschema/1-0-0) when not. With
/// --state, a journal of command ids (fsynced before and after each send)
/// keeps a command that is read again, redelivered or re-read after a crash,
/// from running twice. A crash in the middle of a send leaves that one
/// command "interrupted": by default it is not sent again (at most once) and
/// is reported as a failure; --retry-interrupted sends it again (at least
/// once; receivers can drop the copy by its Message-ID or Idempotency-Key).
#[derive(Debug, Parser)]
#[command(
    version,
    after_help = EXAMPLES
)]
pub struct Args {
    #[command(flatten)]
    pub input: InputArgs,

    /// Decide by the rules in this JSON file: {"rules":[{"id":…,"when":…,"summary":…},…]}.
    #[arg(long, value_name = "FILE", help_heading = "Deciding")]
    pub rule: Option<PathBuf>,

    /// Decide by one rule whose condition is this jq filter.
    #[arg(
        long,
        value_name = "JQ",
        conflicts_with = "rule",
        help_heading = "Deciding"
    )]
    pub when: Option<String>,

    /// The --when rule's id, part of each command id.
    #[arg(
        long,
        value_name = "ID",
        default_value = "when",
        requires = "when",
        help_heading = "Deciding"
    )]
    pub id: String,

    /// Template of the --when rule's one-line summary.
    #[arg(
        long,
        value_name = "TEMPLATE",
        requires = "when",
        help_heading = "Deciding"
    )]
    pub summary: Option<String>,

    /// Template of the --when rule's detail.
    #[arg(
        long,
        value_name = "TEMPLATE",
        requires = "when",
        help_heading = "Deciding"
    )]
    pub detail: Option<String>,

    /// The --when rule's urgency: low, normal, high or critical.
    #[arg(
        long,
        value_name = "LEVEL",
        requires = "when",
        help_heading = "Deciding"
    )]
    pub urgency: Option<Urgency>,

    /// The --when rule's recipient: 'NAME <EMAIL>' or EMAIL (templates).
    #[arg(
        long,
        value_name = "RECIPIENT",
        requires = "when",
        help_heading = "Deciding"
    )]
    pub recipient: Option<String>,

    /// The --when rule's recipient's phone (a template).
    #[arg(
        long,
        value_name = "TEMPLATE",
        requires = "when",
        help_heading = "Deciding"
    )]
    pub phone: Option<String>,

    /// At most one alert per rule (and per --per key) in each period of this
    /// length; a rule's own "throttle" wins. With --state, kept across runs.
    #[arg(long, value_name = "DURATION", help_heading = "Deciding")]
    pub throttle: Option<String>,

    /// The jq filter whose value keys the throttle, such as .data.host.
    #[arg(
        long,
        value_name = "JQ",
        requires = "throttle",
        help_heading = "Deciding"
    )]
    pub per: Option<String>,

    /// Where an event's own time is (RFC 3339 or epoch milliseconds), for
    /// throttling and the command's event_time.
    #[arg(
        long,
        value_name = "JQ",
        default_value = ".data.timestamp",
        help_heading = "Deciding"
    )]
    pub time_path: String,

    /// Throttle by the time of processing even when events carry a time.
    #[arg(long, help_heading = "Deciding")]
    pub processing_time: bool,

    /// Judge every event with jq alone, without the byte-level prefilter
    /// (for benchmarks and comparisons; the results are the same).
    #[arg(long, hide = true)]
    pub no_prefilter: bool,

    /// Execute the commands read: smtp://HOST[:PORT], smtps://HOST[:PORT],
    /// http(s)://URL or exec:PROGRAM.
    #[arg(long, value_name = "URL", conflicts_with_all = ["rule", "when"], help_heading = "Executing")]
    pub send: Option<String>,

    /// Send again a command an earlier run was sending when it died (at
    /// least once) instead of reporting it once and holding it (at most once).
    #[arg(long, requires = "state", help_heading = "Executing")]
    pub retry_interrupted: bool,

    /// Mark an interrupted command (by its command id) resolved, once you
    /// have checked whether it arrived: it is never sent or reported again.
    /// Repeatable; needs --state and reads no input.
    #[arg(
        long,
        value_name = "ID",
        requires = "state",
        conflicts_with_all = ["rule", "when", "retry_interrupted"],
        help_heading = "Executing"
    )]
    pub resolve: Vec<String>,

    /// How long the journal remembers commands it finished; one read again
    /// after this is sent again, so make it longer than any redelivery.
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = cli::duration_arg, help_heading = "Executing")]
    pub horizon: i64,

    /// Retries of a transient failure.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 3,
        help_heading = "Executing"
    )]
    pub retries: u32,

    /// Wait before the first retry; doubled for each next one.
    #[arg(long, value_name = "DURATION", default_value = "500ms", value_parser = cli::duration_arg, help_heading = "Executing")]
    pub backoff: i64,

    /// Longest wait between retries.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = cli::duration_arg, help_heading = "Executing")]
    pub max_backoff: i64,

    /// Time limit of one try (connection and answer; a program's run).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = cli::duration_arg, help_heading = "Executing")]
    pub timeout: i64,

    /// The email sender, as 'NAME <EMAIL>' or EMAIL.
    #[arg(long, value_name = "ADDRESS", help_heading = "Executing")]
    pub from: Option<String>,

    /// SMTP TLS: none, opportunistic, starttls (smtp:// default) or tls (smtps:// default).
    #[arg(long, value_name = "MODE", help_heading = "Executing")]
    pub smtp_tls: Option<SmtpTls>,

    /// Trust only the CA certificates in this PEM file (instead of the
    /// public roots), for SMTP over TLS and https://.
    #[arg(
        long,
        visible_alias = "smtp-ca",
        value_name = "FILE",
        help_heading = "Executing"
    )]
    pub ca: Option<PathBuf>,

    /// Read the SMTP username (line 1) and password (line 2) from this file.
    #[arg(long, value_name = "FILE", help_heading = "Executing")]
    pub smtp_credentials: Option<PathBuf>,

    /// An argument for the exec: program (repeatable; never from a command).
    #[arg(
        long,
        value_name = "ARG",
        allow_hyphen_values = true,
        help_heading = "Executing"
    )]
    pub exec_arg: Vec<String>,

    /// Keep state across runs in this directory: the decider's throttles
    /// (throttles.json), or the executor's journal of command ids (journal).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Lines longer than this are failures.
    #[arg(long, value_name = "SIZE", value_parser = cli::size_arg, default_value = "1MiB")]
    pub max_event_bytes: u64,

    /// Print a summary on stderr (always on a terminal).
    #[arg(short = 'v', long)]
    pub verbose: bool,

    #[command(flatten)]
    pub failures: FailureArgs,
}

/// Runs `alert`.
pub fn run(args: Args) -> Result<Outcome> {
    if !args.resolve.is_empty() {
        resolve(&args)
    } else if args.send.is_some() {
        execute(args)
    } else if args.rule.is_some() || args.when.is_some() {
        decide(args)
    } else {
        bail!("say what to do: --rule FILE or --when JQ to decide, --send URL to execute (see --help)")
    }
}

/// Splits `Name <email>` into its name and email.
fn split_recipient(text: &str) -> (String, String) {
    let t = text.trim();
    if let (true, Some(open)) = (t.ends_with('>'), t.rfind('<')) {
        let name = t[..open].trim().trim_matches('"').trim().to_string();
        (name, t[open + 1..t.len() - 1].trim().to_string())
    } else {
        (String::new(), t.to_string())
    }
}

fn rule_specs(args: &Args) -> Result<Vec<RuleSpec>> {
    let mut specs = match (&args.rule, &args.when) {
        (Some(path), _) => rule::load_specs(path)?,
        (None, Some(when)) => {
            let (name, email) = args
                .recipient
                .as_deref()
                .map(split_recipient)
                .unwrap_or_default();
            vec![RuleSpec {
                id: args.id.clone(),
                when: when.clone(),
                summary: args
                    .summary
                    .clone()
                    .unwrap_or_else(|| format!("{}: {{{{.schema}}}} matched {when}", args.id)),
                detail: args.detail.clone().unwrap_or_default(),
                urgency: args.urgency.unwrap_or_default(),
                recipient: RecipientSpec {
                    name,
                    email,
                    phone: args.phone.clone().unwrap_or_default(),
                },
                throttle: None,
                per: None,
            }]
        }
        (None, None) => unreachable!("checked by run"),
    };
    if let Some(period) = &args.throttle {
        for spec in specs.iter_mut().filter(|s| s.throttle.is_none()) {
            spec.throttle = Some(period.clone());
            spec.per = args.per.clone();
        }
    }
    Ok(specs)
}

/// `--resolve ID…`: marks interrupted commands done in the journal.
fn resolve(args: &Args) -> Result<Outcome> {
    let dir = args.state.as_deref().expect("clap requires --state");
    let mut journal = Journal::open(dir, args.horizon, time::now_ms())?;
    for id in &args.resolve {
        journal
            .resolve(id, time::now_ms())
            .with_context(|| format!("--resolve {id}"))?;
        cli::warn(format_args!(
            "command {id} resolved: it will not be sent or reported again"
        ));
    }
    let left = journal.interrupted();
    if !left.is_empty() {
        cli::warn(format_args!(
            "{} interrupted command(s) left unresolved: {}",
            left.len(),
            left.join(" ")
        ));
    }
    Ok(Outcome::Ok)
}

fn decide(args: Args) -> Result<Outcome> {
    let rules = rule::compile_rules(rule_specs(&args)?)?;
    let time_path = if args.processing_time {
        None
    } else {
        Some(Jq::compile(&args.time_path).context("--time-path")?)
    };
    let mut decider = Decider::new(rules, time_path);
    if args.no_prefilter {
        decider = decider.without_prefilter();
    }
    let throttles = match &args.state {
        Some(dir) => Some(ThrottleState::open(dir, decider.rules_mut())?),
        None => None,
    };
    let inputs = io::open_inputs(&args.input.files)?;
    let mut out = args.output.open()?;
    let mut failures = Failures::open(&args.failures)?;
    let max_line = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
    let mut counts = Counts::default();
    let mut throttled = 0u64;
    counts.read = io::for_each_line(inputs, max_line, |step| {
        let (input, line_no, bytes) = match step {
            FilterStep::Line {
                input,
                line_no,
                bytes,
            } => (input, line_no, bytes),
            FilterStep::Unfit {
                input,
                line_no,
                message,
                original,
            } => return failures.route(input, line_no, vec![message], original),
            FilterStep::Idle => {
                // The producer paused: let the next tool see what we have
                // (failures durable first), then keep the throttles that
                // reflect it.
                failures.flush()?;
                out.flush()?;
                if let Some(t) = &throttles {
                    t.save(decider.rules())?;
                }
                return Ok(());
            }
        };
        let decision = decider.decide(bytes);
        write_commands(&mut out, &mut failures, bytes, &decision.commands)?;
        counts.written += decision.commands.len() as u64;
        throttled += decision.throttled;
        if !decision.errors.is_empty() {
            failures.route(input, line_no, decision.errors, Original::Line(bytes))?;
        }
        failures.processed(bytes);
        Ok(())
    })?;
    failures.flush()?;
    out.flush()?;
    if let Some(t) = &throttles {
        t.save(decider.rules())?;
    }
    counts.failed = failures.count();
    if args.verbose || throttled > 0 && cli::stderr_is_terminal() {
        cli::warn(format_args!("{throttled} alerts held back by throttles"));
    }
    counts.report(args.verbose, "alerts raised");
    Ok(counts.outcome())
}

fn execute(args: Args) -> Result<Outcome> {
    let url = args.send.as_deref().expect("checked by run");
    let timeout = Duration::from_millis(args.timeout.max(1) as u64);
    let is_smtp = url.starts_with("smtp://") || url.starts_with("smtps://");
    refuse_foreign_options(&args, url, is_smtp)?;
    let from = match (&args.from, is_smtp) {
        (Some(f), _) => f.clone(),
        (None, true) => bail!("--send {url}: give the sender with --from ADDRESS"),
        (None, false) => String::new(),
    };
    let smtp = SmtpOptions {
        from,
        tls: args.smtp_tls,
        ca_file: args.ca.clone(),
        credentials_file: args.smtp_credentials.clone(),
        timeout,
    };
    let channel = send::open_channel(url, &smtp, args.exec_arg.clone(), timeout)?;
    let journal = match &args.state {
        Some(dir) => Journal::open(dir, args.horizon, time::now_ms())?,
        None => Journal::in_memory(),
    };
    let policy = RetryPolicy {
        retries: args.retries,
        backoff: Duration::from_millis(args.backoff as u64),
        max_backoff: Duration::from_millis(args.max_backoff.max(args.backoff) as u64),
    };
    let mut executor = Executor::new(channel, journal, policy, args.retry_interrupted);
    let (channel_kind, target) = executor.channel();
    let inputs = io::open_inputs(&args.input.files)?;
    let mut out = args.output.open()?;
    let mut failures = Failures::open(&args.failures)?;
    let max_line = usize::try_from(args.max_event_bytes).unwrap_or(usize::MAX);
    let mut counts = Counts::default();
    let mut failed_commands = 0u64;
    let mut held = 0u64;
    for input in inputs {
        let mut reader = LineReader::with_max_line(input.reader, max_line);
        while let Some((line_no, line)) = reader
            .next_line()
            .with_context(|| format!("cannot read {}", input.name))?
        {
            counts.read += 1;
            let bytes = match check_line(&line, max_line) {
                Ok(bytes) => bytes,
                Err((message, original)) => {
                    failures.route(&input.name, line_no, vec![message], original)?;
                    failures.flush()?;
                    continue;
                }
            };
            // The rule every tool applies (UTF-8, depth, surrogates, number
            // range) before anything of the line is sent anywhere.
            if let Err(e) = json::scan_object(bytes, None) {
                failures.route(
                    &input.name,
                    line_no,
                    vec![io::json_failure(&e)],
                    Original::Line(bytes),
                )?;
                failures.flush()?;
                continue;
            }
            let cmd = match ReceivedCommand::parse(bytes) {
                Ok(cmd) => cmd,
                Err(errors) => {
                    let errors = errors
                        .into_iter()
                        .map(|m| FailureMessage::new("invalid_command", m))
                        .collect();
                    failures.route(&input.name, line_no, errors, Original::Line(bytes))?;
                    failures.flush()?;
                    continue;
                }
            };
            let position = format!("{}:{line_no}", input.name);
            let executed = executor.execute(&cmd, bytes, |attempt, error, wait| {
                cli::warn(format_args!(
                    "{position}: command {}: try {attempt} failed ({error}); retrying in {}ms",
                    cmd.command_id,
                    wait.as_millis()
                ));
            })?;
            let base = || {
                let mut m = Map::new();
                m.insert("command_id".into(), cmd.command_id.clone().into());
                m.insert("rule".into(), cmd.rule.clone().into());
                m.insert("channel".into(), channel_kind.into());
                m.insert("target".into(), target.clone().into());
                m
            };
            let mut reported = false;
            let line = match executed {
                Executed::Sent {
                    attempts,
                    response,
                    resent,
                } => {
                    let mut m = base();
                    m.insert("status".into(), "sent".into());
                    m.insert("attempts".into(), attempts.into());
                    m.insert("response".into(), response.into());
                    if resent {
                        m.insert("resent_after_interruption".into(), true.into());
                    }
                    m.insert("at".into(), time::format_rfc3339_ms(time::now_ms()).into());
                    outcome_line(m)
                }
                Executed::Duplicate => {
                    let mut m = base();
                    m.insert("status".into(), "duplicate".into());
                    m.insert("attempts".into(), 0.into());
                    m.insert("at".into(), time::format_rfc3339_ms(time::now_ms()).into());
                    outcome_line(m)
                }
                Executed::Held => {
                    held += 1;
                    continue;
                }
                Executed::Interrupted => {
                    failed_commands += 1;
                    reported = true;
                    cli::warn(format_args!(
                        "{position}: command {} was being sent when an earlier run stopped; not sent again: check whether it arrived, then --resolve {} (or --retry-interrupted to send it again)",
                        cmd.command_id, cmd.command_id
                    ));
                    let message = FailureMessage::new(
                        "interrupted",
                        "an earlier run stopped while sending this command: it may or may not have been delivered; it is reported this once and held (--resolve ID marks it done, --retry-interrupted sends it again)",
                    );
                    failure_line(
                        &input.name,
                        line_no,
                        vec![with_base(message, &base())],
                        bytes,
                    )
                }
                Executed::Failed {
                    attempts,
                    errors,
                    permanent,
                } => {
                    failed_commands += 1;
                    cli::warn(format_args!(
                        "{position}: command {} not sent after {attempts} {}: {}",
                        cmd.command_id,
                        if attempts == 1 { "try" } else { "tries" },
                        errors.last().map(String::as_str).unwrap_or("failed")
                    ));
                    let kind = if permanent {
                        "send_refused"
                    } else {
                        "send_failed"
                    };
                    let messages = errors
                        .into_iter()
                        .enumerate()
                        .map(|(i, e)| {
                            with_base(FailureMessage::new(kind, e), &base()).with("attempt", i + 1)
                        })
                        .collect();
                    failure_line(&input.name, line_no, messages, bytes)
                }
            };
            out.write_line(&line)?;
            // Each outcome goes out as it happens: an executor follows a log.
            out.flush()?;
            if reported {
                // Only once the report is out: a crash before reports again.
                executor.reported(&cmd.command_id)?;
            }
        }
    }
    out.flush()?;
    failures.flush()?;
    if held > 0 {
        cli::warn(format_args!(
            "{held} command(s) held: interrupted in an earlier run and reported then (--resolve ID once checked, or --retry-interrupted)"
        ));
    }
    counts.failed = failures.count() + failed_commands;
    counts.written = counts.read - counts.failed - held;
    counts.report(args.verbose, "done");
    Ok(counts.outcome())
}

/// Options meant for another channel are a mistake (a CA file for a plain
/// http:// URL would protect nothing): say so rather than ignore them.
fn refuse_foreign_options(args: &Args, url: &str, is_smtp: bool) -> Result<()> {
    let is_exec = url.starts_with("exec:");
    let smtp_only = [
        ("--from", args.from.is_some()),
        ("--smtp-tls", args.smtp_tls.is_some()),
        ("--smtp-credentials", args.smtp_credentials.is_some()),
    ];
    for (flag, given) in smtp_only {
        if given && !is_smtp {
            bail!("{flag} applies to smtp:// and smtps:// only, not to --send {url}");
        }
    }
    if !args.exec_arg.is_empty() && !is_exec {
        bail!("--exec-arg applies to exec: only, not to --send {url}");
    }
    if args.ca.is_some() && !is_smtp && !url.starts_with("https://") {
        bail!("--ca applies to https:// and SMTP over TLS only, not to --send {url}");
    }
    Ok(())
}

fn with_base(mut message: FailureMessage, base: &Map<String, Value>) -> FailureMessage {
    for (k, v) in base {
        message.detail.insert(k.clone(), v.clone());
    }
    message
}

fn outcome_line(data: Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec(&json!({"schema": OUTCOME_SCHEMA, "data": data})).expect("values serialize")
}

fn failure_line(input: &str, line: u64, errors: Vec<FailureMessage>, original: &[u8]) -> Vec<u8> {
    Failure {
        processor: cli::tool_name(),
        position: InputPosition {
            name: input.to_string(),
            line,
        },
        errors,
        original: Original::Line(original),
    }
    .to_line()
}

/// Writes the commands decided on one input, failures routed before them
/// made durable first when they leave now; when the input carries its
/// position, each command cites it with its own sub-index, so that a
/// destination log holds each command once however often the input is
/// replayed.
fn write_commands(
    out: &mut Output,
    failures: &mut Failures,
    input: &[u8],
    commands: &[Vec<u8>],
) -> Result<()> {
    let cited = match crate::position::locate(input) {
        Ok(Some(found)) if !commands.is_empty() => found.position,
        _ => {
            for cmd in commands {
                failures.before_output(out, cmd.len() + 1)?;
                out.write_line(cmd)?;
            }
            return Ok(());
        }
    };
    let mut line = Vec::new();
    for (i, cmd) in commands.iter().enumerate() {
        let at = cited.derived(i).ok_or_else(|| {
            anyhow::anyhow!(
                "one event raised more than {} alerts",
                crate::position::FANOUT
            )
        })?;
        line.clear();
        crate::position::write_before(&mut line, &at, None, &cmd[1..]);
        failures.before_output(out, line.len() + 1)?;
        out.write_line(&line)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_split() {
        assert_eq!(
            split_recipient("Ops <ops@example.com>"),
            ("Ops".into(), "ops@example.com".into())
        );
        assert_eq!(
            split_recipient("\"Ops Team\" <{{.data.owner}}>"),
            ("Ops Team".into(), "{{.data.owner}}".into())
        );
        assert_eq!(
            split_recipient("ops@example.com"),
            (String::new(), "ops@example.com".into())
        );
    }
}
