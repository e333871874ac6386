//! Executing alert commands: the channels (email over SMTP, an HTTP POST, a
//! program), retries with backoff, and the journal check that keeps a
//! command from running twice.
//!
//! Nothing from an event reaches a header, a shell or a command line
//! unchecked: an email's subject and names are single lines already (the
//! decider made them so) and are cleaned again here, since commands may come
//! from anywhere; lettre encodes every header (RFC 2047) and refuses an
//! address that is not one; HTTP sends the command as the body only; a
//! program gets the command on stdin and its id (hex) in the environment,
//! never as an argument, and runs without a shell.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::Address;

use super::command::{body_text, one_line, ReceivedCommand, MAX_DETAIL, MAX_SUMMARY};
#[cfg(test)]
use super::journal::DEFAULT_HORIZON_MS;
use super::journal::{Journal, State};
use super::tls;
use crate::time;

/// How a send went wrong.
#[derive(Debug, Clone, PartialEq)]
pub enum SendError {
    /// Worth another try: a refused or dropped connection, a timeout, a
    /// "try later" answer (SMTP 4xx, HTTP 408/429/5xx, exit code 75).
    Transient(String),
    /// Transient, and the receiver said when to try again (HTTP 429 or 503
    /// with `Retry-After`): no sooner than this, at most `--max-backoff`.
    TryAfter(String, Duration),
    /// Another try would fail the same way: a bad address, SMTP 5xx, HTTP
    /// 4xx, a program's other exit codes.
    Permanent(String),
    /// The channel cannot work as set up (no STARTTLS where it is needed, a
    /// certificate that does not verify, a login refused): no command can
    /// go, so the executor stops (exit 2) rather than fail each one.
    Setup(String),
}

impl SendError {
    /// The message.
    pub fn message(&self) -> &str {
        match self {
            SendError::Transient(m)
            | SendError::TryAfter(m, _)
            | SendError::Permanent(m)
            | SendError::Setup(m) => m,
        }
    }
}

/// Somewhere commands can be sent.
pub trait Channel {
    /// `smtp`, `http` or `exec`.
    fn kind(&self) -> &'static str;
    /// Where, for outcome events (never with credentials).
    fn target(&self) -> String;
    /// Sends one command; `line` is the command as read. `Ok` carries the
    /// receiver's answer (an SMTP reply, an HTTP status).
    fn send(&mut self, cmd: &ReceivedCommand, line: &[u8]) -> Result<String, SendError>;
}

pub use super::smtp::SmtpTls;
use super::smtp::{self, Credentials};

/// Options for the SMTP channel.
#[derive(Debug, Clone)]
pub struct SmtpOptions {
    /// The envelope and header sender.
    pub from: String,
    /// TLS mode; `None` picks STARTTLS for smtp:// and TLS for smtps://.
    pub tls: Option<SmtpTls>,
    /// A PEM file of the CA certificates to trust instead of the public roots.
    pub ca_file: Option<PathBuf>,
    /// A file holding the username on its first line and the password on
    /// its second; else `UNILOG_SMTP_USERNAME`/`UNILOG_SMTP_PASSWORD`.
    pub credentials_file: Option<PathBuf>,
    /// Per connection and per reply.
    pub timeout: Duration,
}

/// Email over SMTP, one connection kept across commands.
pub struct SmtpChannel {
    client: smtp::Client,
    from: Mailbox,
    target: String,
}

/// Reads SMTP credentials: from a file (first line user, second password),
/// else from the environment. Never from the command line.
pub fn smtp_credentials(file: Option<&Path>) -> Result<Option<Credentials>> {
    let creds = |user: String, password: String| Some(Credentials { user, password });
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read credentials file {}", path.display()))?;
        let mut lines = text.lines();
        let (Some(user), Some(pass)) = (lines.next(), lines.next()) else {
            bail!(
                "credentials file {} must hold the username on its first line and the password on its second",
                path.display()
            );
        };
        return Ok(creds(user.to_string(), pass.to_string()));
    }
    match (
        std::env::var("UNILOG_SMTP_USERNAME"),
        std::env::var("UNILOG_SMTP_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) => Ok(creds(u, p)),
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
            bail!("set both UNILOG_SMTP_USERNAME and UNILOG_SMTP_PASSWORD, or neither")
        }
        _ => Ok(None),
    }
}

impl SmtpChannel {
    /// Checks the options and reads the CA file and credentials now; connects
    /// when the first command is sent.
    pub fn new(url: &str, opts: &SmtpOptions) -> Result<Self> {
        let (implicit_tls, rest) = if let Some(r) = url.strip_prefix("smtps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("smtp://") {
            (false, r)
        } else {
            bail!("{url:?} is not an smtp:// or smtps:// URL");
        };
        let (host, port) =
            split_host_port(rest.trim_end_matches('/')).with_context(|| format!("in {url:?}"))?;
        let port = port.unwrap_or(if implicit_tls { 465 } else { 587 });
        let mode = opts.tls.unwrap_or(if implicit_tls {
            SmtpTls::Tls
        } else {
            SmtpTls::Starttls
        });
        if implicit_tls && mode != SmtpTls::Tls {
            bail!("--send {url}: smtps:// is TLS from the first byte; --smtp-tls applies to smtp:// only");
        }
        let tls = match (mode, &opts.ca_file) {
            (SmtpTls::None, Some(_)) => {
                bail!("--ca does not apply with --smtp-tls none (no TLS)")
            }
            (SmtpTls::None, None) => None,
            (_, ca) => {
                let certs = ca.as_deref().map(tls::read_ca_file).transpose()?;
                Some(tls::client_config(certs.as_deref())?)
            }
        };
        let from: Mailbox = opts
            .from
            .parse()
            .map_err(|e| anyhow!("--from {:?} is not an email address: {e}", opts.from))?;
        let credentials = smtp_credentials(opts.credentials_file.as_deref())?;
        let target = format!(
            "{}://{}:{port}",
            if implicit_tls { "smtps" } else { "smtp" },
            if host.contains(':') {
                format!("[{host}]")
            } else {
                host.clone()
            }
        );
        Ok(SmtpChannel {
            client: smtp::Client::new(smtp::Config {
                host,
                port,
                mode,
                tls,
                credentials,
                timeout: opts.timeout,
            }),
            from,
            target,
        })
    }

    /// The email a command becomes.
    pub fn message(&self, cmd: &ReceivedCommand) -> Result<Message, SendError> {
        let r = &cmd.recipient;
        if r.email.trim().is_empty() {
            return Err(SendError::Permanent(
                "the command's recipient has no email address".into(),
            ));
        }
        let address: Address = r.email.trim().parse().map_err(|e| {
            SendError::Permanent(format!(
                "recipient email {:?} is not an address: {e}",
                one_line(&r.email, 120)
            ))
        })?;
        let name = one_line(&r.name, 120);
        let to = Mailbox::new((!name.is_empty()).then_some(name), address);
        let n = &cmd.notification;
        let mut body = body_text(&n.detail, MAX_DETAIL);
        if !body.is_empty() {
            body.push_str("\n\n");
        }
        body.push_str(&format!(
            "-- \nurgency: {}\nrule: {}\ncommand: {}\n",
            n.urgency,
            one_line(&cmd.rule, 200),
            cmd.command_id
        ));
        let id_header = HeaderName::new_from_ascii_str("X-Unilog-Command-Id");
        let urgency_header = HeaderName::new_from_ascii_str("X-Unilog-Urgency");
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&n.summary, MAX_SUMMARY))
            // Deterministic, so a mail sent twice (at-least-once) can be
            // recognised as one by the receiving side.
            .message_id(Some(format!("<{}@unilog.alert>", cmd.command_id)))
            .raw_header(HeaderValue::new(id_header, cmd.command_id.clone()))
            .raw_header(HeaderValue::new(urgency_header, n.urgency.to_string()))
            .header(ContentType::TEXT_PLAIN)
            // The mail declares a content type and an encoding: RFC 2045
            // wants the version beside them.
            .header(lettre::message::header::MIME_VERSION_1_0)
            .body(body)
            .map_err(|e| SendError::Permanent(format!("cannot build the email: {e}")))
    }
}

impl Channel for SmtpChannel {
    fn kind(&self) -> &'static str {
        "smtp"
    }
    fn target(&self) -> String {
        self.target.clone()
    }
    fn send(&mut self, cmd: &ReceivedCommand, _line: &[u8]) -> Result<String, SendError> {
        let message = self.message(cmd)?;
        let envelope = message.envelope();
        let from = envelope.from().map(|a| a.to_string()).unwrap_or_default();
        let to: Vec<String> = envelope.to().iter().map(|a| a.to_string()).collect();
        self.client
            .send(&from, &to, &message.formatted())
            .map_err(|e| match e {
                smtp::Error::Transient(m) => SendError::Transient(format!("SMTP: {m}")),
                smtp::Error::Refused(m) => SendError::Permanent(format!("SMTP: {m}")),
                smtp::Error::Setup(m) => SendError::Setup(m),
            })
    }
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>)> {
    if s.contains(['@', '/', '?', '#']) {
        bail!("give only HOST[:PORT]; credentials come from the environment or --smtp-credentials");
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let end = rest
            .find(']')
            .ok_or_else(|| anyhow!("unclosed '[' in the host"))?;
        let port = rest[end + 1..].strip_prefix(':');
        (rest[..end].to_string(), port)
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (s.to_string(), None),
        }
    };
    if host.is_empty() {
        bail!("no host");
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| anyhow!("port {p:?} is not a number"))
        })
        .transpose()?;
    Ok((host, port))
}

/// A webhook: each command POSTed as JSON, over one kept connection.
pub struct HttpChannel {
    agent: ureq::Agent,
    url: String,
    authorization: Option<String>,
    timeout: Duration,
}

impl HttpChannel {
    /// POSTs to `url`; an `Authorization` header comes from
    /// `UNILOG_HTTP_AUTHORIZATION` when set. With `ca_file` (https:// only),
    /// the server's certificate must come from one of its CAs.
    pub fn new(url: &str, timeout: Duration, ca_file: Option<&Path>) -> Result<Self> {
        let uri: ureq::http::Uri = url
            .parse()
            .map_err(|e| anyhow!("{url:?} is not a URL: {e}"))?;
        if uri.host().is_none() {
            bail!("{url:?} has no host");
        }
        if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
            bail!("{url:?}: put credentials in UNILOG_HTTP_AUTHORIZATION, not in the URL");
        }
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("unilog-alert/{}", crate::event::VERSION));
        if let Some(path) = ca_file {
            if uri.scheme_str() != Some("https") {
                bail!("--ca applies to https:// and SMTP over TLS, not to {url}");
            }
            let certs: Vec<ureq::tls::Certificate<'static>> = tls::read_ca_file(path)?
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect();
            config = config.tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                    .build(),
            );
        }
        Ok(HttpChannel {
            agent: config.build().into(),
            url: url.to_string(),
            authorization: std::env::var("UNILOG_HTTP_AUTHORIZATION").ok(),
            timeout,
        })
    }

    fn host(&self) -> String {
        self.url
            .parse::<ureq::http::Uri>()
            .ok()
            .and_then(|u| u.host().map(str::to_string))
            .unwrap_or_default()
    }
}

impl Channel for HttpChannel {
    fn kind(&self) -> &'static str {
        "http"
    }
    fn target(&self) -> String {
        self.url.clone()
    }
    fn send(&mut self, cmd: &ReceivedCommand, line: &[u8]) -> Result<String, SendError> {
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &cmd.command_id);
        if let Some(auth) = &self.authorization {
            req = req.header("Authorization", auth);
        }
        match req.send(line) {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = format!("HTTP {status}");
                let after = matches!(status, 429 | 503)
                    .then(|| {
                        resp.headers()
                            .get("retry-after")?
                            .to_str()
                            .ok()
                            .map(str::to_string)
                    })
                    .flatten()
                    .and_then(|v| retry_after(&v, time::now_ms()));
                match status {
                    200..=299 => Ok(text),
                    _ if after.is_some() => {
                        let after = after.expect("checked");
                        Err(SendError::TryAfter(
                            format!("{text}, Retry-After {}", smtp::seconds(after)),
                            after,
                        ))
                    }
                    408 | 425 | 429 | 500..=599 => Err(SendError::Transient(text)),
                    _ => Err(SendError::Permanent(text)),
                }
            }
            Err(e) => {
                let rustls = match &e {
                    ureq::Error::Rustls(r) => Some(r),
                    ureq::Error::Io(io) => tls::rustls_error(io),
                    _ => None,
                };
                if let Some(r) = rustls {
                    let host = self.host();
                    return Err(SendError::Setup(match tls::certificate_problem(r, &host) {
                        Some(problem) => format!("{}: {problem}", self.url),
                        None => format!("{}: TLS failed: {r}", self.url),
                    }));
                }
                match e {
                    ureq::Error::Timeout(t) => Err(SendError::Transient(format!(
                        "HTTP: timed out after {} ({t})",
                        smtp::seconds(self.timeout)
                    ))),
                    ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl => {
                        Err(SendError::Permanent(format!("HTTP: {e}")))
                    }
                    ureq::Error::Io(io)
                        if matches!(
                            io.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        Err(SendError::Transient(format!(
                            "HTTP: timed out after {}",
                            smtp::seconds(self.timeout)
                        )))
                    }
                    e => Err(SendError::Transient(format!("HTTP: {e}"))),
                }
            }
        }
    }
}

/// A program, run without a shell for each command, the command on stdin.
/// Its stdout goes to our stderr; its stderr is kept for error messages.
pub struct ExecChannel {
    program: PathBuf,
    args: Vec<String>,
    timeout: Duration,
}

/// Exit code a program uses for "try again later" (sysexits' EX_TEMPFAIL).
pub const EX_TEMPFAIL: i32 = 75;

impl ExecChannel {
    /// Runs `program` (a path, or a name looked up in `PATH`) with fixed
    /// `args` from the command line, never with data from a command.
    pub fn new(program: &str, args: Vec<String>, timeout: Duration) -> Result<Self> {
        if program.is_empty() {
            bail!("exec: needs a program, as in exec:/usr/local/bin/page-oncall");
        }
        Ok(ExecChannel {
            program: PathBuf::from(program),
            args,
            timeout,
        })
    }
}

impl Channel for ExecChannel {
    fn kind(&self) -> &'static str {
        "exec"
    }
    fn target(&self) -> String {
        format!("exec:{}", self.program.display())
    }
    fn send(&mut self, cmd: &ReceivedCommand, line: &[u8]) -> Result<String, SendError> {
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("UNILOG_COMMAND_ID", &cmd.command_id)
            .stdin(Stdio::piped())
            // The program's own output is for people: it goes to our
            // stderr, never into the outcome events on our stdout.
            .stdout(stderr_for_child())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                let text = format!("cannot run {}: {e}", self.program.display());
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::PermissionDenied
                {
                    SendError::Permanent(text)
                } else {
                    SendError::Transient(text)
                }
            })?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut input = line.to_vec();
        input.push(b'\n');
        // A program may exit without reading; a closed pipe is its choice.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let mut stderr = child.stderr.take().expect("piped");
        let reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = (&mut stderr).take(4096).read_to_end(&mut buf);
            // Drain the rest so the program never blocks on a full pipe.
            let _ = std::io::copy(&mut stderr, &mut std::io::sink());
            buf
        });
        let start = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Some(status),
                Ok(None) if start.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break None;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    return Err(SendError::Transient(format!(
                        "waiting for the program: {e}"
                    )))
                }
            }
        };
        let _ = writer.join();
        let err_text = reader.join().unwrap_or_default();
        let err_text = one_line(&String::from_utf8_lossy(&err_text), 300);
        let with_stderr = |s: String| {
            if err_text.is_empty() {
                s
            } else {
                format!("{s}: {err_text}")
            }
        };
        match status {
            None => Err(SendError::Transient(with_stderr(format!(
                "{} took longer than {:?} and was killed",
                self.program.display(),
                self.timeout
            )))),
            Some(s) if s.success() => Ok("exit 0".into()),
            Some(s) => match s.code() {
                Some(EX_TEMPFAIL) => Err(SendError::Transient(with_stderr(format!(
                    "exit {EX_TEMPFAIL} (try again later)"
                )))),
                Some(code) => Err(SendError::Permanent(with_stderr(format!("exit {code}")))),
                None => Err(SendError::Transient(with_stderr(format!(
                    "killed by a signal ({s})"
                )))),
            },
        }
    }
}

fn stderr_for_child() -> Stdio {
    use std::os::fd::AsFd;
    match std::io::stderr().as_fd().try_clone_to_owned() {
        Ok(fd) => Stdio::from(fd),
        Err(_) => Stdio::null(),
    }
}

/// Opens the channel a `--send` URL names; `smtp.ca_file` serves https://
/// too.
pub fn open_channel(
    url: &str,
    smtp: &SmtpOptions,
    exec_args: Vec<String>,
    timeout: Duration,
) -> Result<Box<dyn Channel>> {
    if url.starts_with("smtp://") || url.starts_with("smtps://") {
        Ok(Box::new(SmtpChannel::new(url, smtp)?))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        Ok(Box::new(HttpChannel::new(
            url,
            timeout,
            smtp.ca_file.as_deref(),
        )?))
    } else if let Some(program) = url.strip_prefix("exec:") {
        Ok(Box::new(ExecChannel::new(program, exec_args, timeout)?))
    } else {
        bail!(
            "--send {url:?}: use smtp://HOST:PORT, smtps://HOST:PORT, http(s)://… or exec:PROGRAM"
        )
    }
}

/// The wait an HTTP `Retry-After` value asks for (RFC 9110 10.2.3): a
/// number of seconds, or an HTTP date (a date past gives no wait). `None`
/// when it is neither.
pub fn retry_after(value: &str, now_ms: i64) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(v.parse().unwrap_or(u64::MAX)));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is RFC 2822's form.
    let at = jiff::fmt::rfc2822::parse(v)
        .ok()?
        .timestamp()
        .as_millisecond();
    Some(Duration::from_millis(
        at.saturating_sub(now_ms).max(0) as u64
    ))
}

/// How often and how patiently to retry transient failures.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Tries after the first.
    pub retries: u32,
    /// Wait before the first retry; doubles each time.
    pub backoff: Duration,
    /// Longest wait between tries.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `n` (1-based): `backoff * 2^(n-1)`, at
    /// most `max_backoff`, less up to a quarter at random so that many
    /// executors do not retry in step.
    pub fn delay(&self, n: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(1u32 << (n.saturating_sub(1)).min(20))
            .min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let jitter = base.mul_f64((nanos % 1000) as f64 / 4000.0);
        base - jitter
    }
}

/// What happened to one command.
#[derive(Debug, Clone, PartialEq)]
pub enum Executed {
    /// Sent, after `attempts` tries; the receiver's answer.
    Sent {
        /// Tries made.
        attempts: u32,
        /// The receiver's answer.
        response: String,
        /// True when it had been interrupted before and was sent again.
        resent: bool,
    },
    /// Already sent (by this run or an earlier one): not sent again.
    Duplicate,
    /// An earlier run died while sending it: it may or may not have gone
    /// out, and it is not sent again (at most once). Reported once: the
    /// caller calls [`Executor::reported`] once the report is out.
    Interrupted,
    /// Interrupted and already reported by an earlier run; held until a
    /// person resolves it (`--resolve`).
    Held,
    /// Not sent.
    Failed {
        /// Tries made.
        attempts: u32,
        /// Every try's error.
        errors: Vec<String>,
        /// False when the last error was transient and the retries ran out.
        permanent: bool,
    },
}

/// Carries commands out through a channel, once each.
pub struct Executor {
    channel: Box<dyn Channel>,
    journal: Journal,
    policy: RetryPolicy,
    retry_interrupted: bool,
}

impl Executor {
    /// An executor. With `retry_interrupted`, a command an earlier run was
    /// sending when it died is sent again (at least once) rather than
    /// reported (at most once).
    pub fn new(
        channel: Box<dyn Channel>,
        journal: Journal,
        policy: RetryPolicy,
        retry_interrupted: bool,
    ) -> Self {
        Executor {
            channel,
            journal,
            policy,
            retry_interrupted,
        }
    }

    /// Records that an interrupted command was reported, so that later
    /// runs hold it without reporting it again.
    pub fn reported(&mut self, id: &str) -> Result<()> {
        self.journal.record(id, State::Reported, time::now_ms())
    }

    /// The channel's kind and target.
    pub fn channel(&self) -> (&'static str, String) {
        (self.channel.kind(), self.channel.target())
    }

    /// Executes one command. `on_retry` hears about each failed try that
    /// will be retried. `Err` when the channel cannot work as set up
    /// ([`SendError::Setup`]; the command is left unjournalled) or the
    /// journal cannot be written: either must stop the executor.
    pub fn execute(
        &mut self,
        cmd: &ReceivedCommand,
        line: &[u8],
        mut on_retry: impl FnMut(u32, &str, Duration),
    ) -> Result<Executed> {
        let id = cmd.command_id.as_str();
        let resent = match self.journal.state(id) {
            Some(State::Done) => return Ok(Executed::Duplicate),
            Some(State::Started) if !self.retry_interrupted => return Ok(Executed::Interrupted),
            Some(State::Reported) if !self.retry_interrupted => return Ok(Executed::Held),
            Some(State::Started | State::Reported) => true,
            Some(State::Failed) | None => false,
        };
        self.journal.record(id, State::Started, time::now_ms())?;
        let mut errors = Vec::new();
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.channel.send(cmd, line) {
                Ok(response) => {
                    self.journal.record(id, State::Done, time::now_ms())?;
                    return Ok(Executed::Sent {
                        attempts: attempt,
                        response,
                        resent,
                    });
                }
                Err(SendError::Setup(message)) => {
                    // Not sent, and not a failure of this command: the
                    // journal forgets it, so a run with a better setup sends it.
                    self.journal.forget(id, time::now_ms())?;
                    bail!(message);
                }
                Err(e) => {
                    errors.push(e.message().to_string());
                    let permanent = matches!(e, SendError::Permanent(_));
                    if permanent || attempt > self.policy.retries {
                        self.journal.record(id, State::Failed, time::now_ms())?;
                        return Ok(Executed::Failed {
                            attempts: attempt,
                            errors,
                            permanent,
                        });
                    }
                    let mut wait = self.policy.delay(attempt);
                    if let SendError::TryAfter(_, after) = &e {
                        wait = wait.max(*after).min(self.policy.max_backoff);
                    }
                    on_retry(attempt, e.message(), wait);
                    std::thread::sleep(wait);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::command::{Notification, Recipient, Urgency};

    fn cmd(email: &str, summary: &str, name: &str) -> ReceivedCommand {
        ReceivedCommand {
            command_id: "0123456789abcdef0123456789abcdef".into(),
            rule: "r".into(),
            notification: Notification {
                summary: summary.into(),
                detail: "line 1\r\nBcc: x@y.z\nline 3".into(),
                urgency: Urgency::High,
            },
            recipient: Recipient {
                name: name.into(),
                email: email.into(),
                phone: String::new(),
            },
        }
    }

    fn smtp() -> SmtpChannel {
        SmtpChannel::new(
            "smtp://127.0.0.1:2525",
            &SmtpOptions {
                from: "Alerts <alerts@example.com>".into(),
                tls: Some(SmtpTls::None),
                ca_file: None,
                credentials_file: None,
                timeout: Duration::from_secs(1),
            },
        )
        .unwrap()
    }

    #[test]
    fn emails_carry_no_injected_headers() {
        let ch = smtp();
        let m = ch
            .message(&cmd(
                "ops@example.com",
                "Disk\r\nBcc: evil@example.com",
                "Ops\r\nCc: evil@example.com",
            ))
            .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        let (headers, _) = text.split_once("\r\n\r\n").unwrap();
        for line in headers.split("\r\n") {
            let lower = line.to_ascii_lowercase();
            assert!(
                !lower.starts_with("bcc:") && !lower.starts_with("cc:"),
                "{line}"
            );
        }
        let envelope = m.envelope();
        assert_eq!(envelope.to().len(), 1);
        assert_eq!(envelope.to()[0].to_string(), "ops@example.com");
        assert!(headers.contains("Message-ID: <0123456789abcdef0123456789abcdef@unilog.alert>"));
        let err = ch
            .message(&cmd("ops@example.com\r\nBcc: evil@example.com", "s", ""))
            .unwrap_err();
        assert!(matches!(err, SendError::Permanent(_)));
        assert!(ch.message(&cmd("", "s", "")).is_err());
        assert!(ch
            .message(&cmd("ops@example.com, evil@example.com", "s", ""))
            .is_err());
    }

    #[test]
    fn smtp_urls() {
        assert_eq!(
            split_host_port("mail.example.com:25").unwrap(),
            ("mail.example.com".into(), Some(25))
        );
        assert_eq!(
            split_host_port("[::1]:25").unwrap(),
            ("::1".into(), Some(25))
        );
        assert_eq!(split_host_port("h").unwrap(), ("h".into(), None));
        assert!(split_host_port("user:pw@h:25").is_err());
        assert!(split_host_port("h:x").is_err());
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let now = 784_111_777_000; // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(retry_after("5", now), Some(Duration::from_secs(5)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:40 GMT", now),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn backoff_doubles_up_to_a_cap() {
        let p = RetryPolicy {
            retries: 5,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        let d1 = p.delay(1);
        assert!(d1 <= Duration::from_millis(100) && d1 >= Duration::from_millis(75));
        let d2 = p.delay(2);
        assert!(d2 <= Duration::from_millis(200) && d2 >= Duration::from_millis(150));
        assert!(p.delay(10) <= Duration::from_millis(300));
    }

    struct Flaky {
        answers: Vec<Result<String, SendError>>,
        calls: u32,
    }

    impl Channel for Flaky {
        fn kind(&self) -> &'static str {
            "test"
        }
        fn target(&self) -> String {
            "test".into()
        }
        fn send(&mut self, _: &ReceivedCommand, _: &[u8]) -> Result<String, SendError> {
            self.calls += 1;
            self.answers.remove(0)
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            retries: 2,
            backoff: Duration::from_millis(1),
            max_backoff: Duration::from_millis(2),
        }
    }

    #[test]
    fn retries_transient_failures_and_runs_each_command_once() {
        let ch = Flaky {
            answers: vec![
                Err(SendError::Transient("refused".into())),
                Ok("250 ok".into()),
            ],
            calls: 0,
        };
        let mut ex = Executor::new(Box::new(ch), Journal::in_memory(), policy(), false);
        let c = cmd("a@b.c", "s", "");
        let mut retries = 0;
        let out = ex.execute(&c, b"{}", |_, _, _| retries += 1).unwrap();
        assert_eq!(
            out,
            Executed::Sent {
                attempts: 2,
                response: "250 ok".into(),
                resent: false
            }
        );
        assert_eq!(retries, 1);
        assert_eq!(
            ex.execute(&c, b"{}", |_, _, _| {}).unwrap(),
            Executed::Duplicate
        );
    }

    #[test]
    fn gives_up_after_the_retries_or_at_once_when_permanent() {
        let ch = Flaky {
            answers: (0..3)
                .map(|_| Err(SendError::Transient("timeout".into())))
                .collect(),
            calls: 0,
        };
        let mut ex = Executor::new(Box::new(ch), Journal::in_memory(), policy(), false);
        let out = ex
            .execute(&cmd("a@b.c", "s", ""), b"{}", |_, _, _| {})
            .unwrap();
        assert_eq!(
            out,
            Executed::Failed {
                attempts: 3,
                errors: vec!["timeout".into(); 3],
                permanent: false
            }
        );
        let ch = Flaky {
            answers: vec![Err(SendError::Permanent("550 no".into())), Ok("250".into())],
            calls: 0,
        };
        let mut ex = Executor::new(Box::new(ch), Journal::in_memory(), policy(), false);
        let c = cmd("a@b.c", "s", "");
        let out = ex.execute(&c, b"{}", |_, _, _| {}).unwrap();
        assert!(matches!(
            out,
            Executed::Failed {
                attempts: 1,
                permanent: true,
                ..
            }
        ));
        // A failed command was not delivered: a redelivery tries again.
        assert!(matches!(
            ex.execute(&c, b"{}", |_, _, _| {}).unwrap(),
            Executed::Sent { .. }
        ));
    }

    #[test]
    fn interrupted_commands_are_at_most_once_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let c = cmd("a@b.c", "s", "");
        {
            let mut j = Journal::open(dir.path(), DEFAULT_HORIZON_MS, time::now_ms()).unwrap();
            j.record(&c.command_id, State::Started, 0).unwrap();
        }
        // Each run is a new process: a new executor over the same journal.
        let run = |resend| {
            let ok = Flaky {
                answers: vec![Ok("250".into())],
                calls: 0,
            };
            let journal = Journal::open(dir.path(), DEFAULT_HORIZON_MS, time::now_ms()).unwrap();
            let mut ex = Executor::new(Box::new(ok), journal, policy(), resend);
            let out = ex.execute(&c, b"{}", |_, _, _| {}).unwrap();
            if out == Executed::Interrupted {
                ex.reported(&c.command_id).unwrap();
            }
            out
        };
        assert_eq!(run(false), Executed::Interrupted);
        // Reported once; later runs hold it quietly.
        assert_eq!(run(false), Executed::Held);
        assert_eq!(run(false), Executed::Held);
        assert!(matches!(run(true), Executed::Sent { resent: true, .. }));
        assert_eq!(run(true), Executed::Duplicate);
    }

    #[test]
    fn programs_get_the_command_on_stdin_and_no_shell() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let script = dir.path().join("recv.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\ncat > '{}'\nprintf '%s' \"$UNILOG_COMMAND_ID\" >> '{}'\n",
                out.display(),
                out.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut ch =
            ExecChannel::new(script.to_str().unwrap(), vec![], Duration::from_secs(5)).unwrap();
        let c = cmd("a@b.c", "$(touch /tmp/pwned); `id`", "");
        let line = br#"{"x":"$(rm -rf /); `id`"}"#;
        assert_eq!(ch.send(&c, line).unwrap(), "exit 0");
        let got = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            got,
            format!("{}\n{}", std::str::from_utf8(line).unwrap(), c.command_id)
        );

        std::fs::write(&script, "#!/bin/sh\necho busy >&2\nexit 75\n").unwrap();
        assert!(matches!(ch.send(&c, line), Err(SendError::Transient(m)) if m.contains("busy")));
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        assert!(matches!(ch.send(&c, line), Err(SendError::Permanent(_))));
        std::fs::write(&script, "#!/bin/sh\nsleep 5\n").unwrap();
        ch.timeout = Duration::from_millis(200);
        assert!(matches!(ch.send(&c, line), Err(SendError::Transient(m)) if m.contains("killed")));
        let mut missing =
            ExecChannel::new("/nonexistent/prog", vec![], Duration::from_secs(1)).unwrap();
        assert!(matches!(
            missing.send(&c, line),
            Err(SendError::Permanent(_))
        ));
    }
}
