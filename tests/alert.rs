//! `alert` against real services started here: an SMTP server (aiosmtpd) and
//! an HTTP server receiving webhooks, both on ephemeral loopback ports, and
//! programs run by `exec:`. Installed by scripts/install-test-deps.sh.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{assert_success, bin, cmd, lines, Served};

/// A server started from tests/fixtures, stopped when dropped.
struct Server {
    _process: Served,
    port: u16,
    out: PathBuf,
}

impl Server {
    fn start(script: &str, dir: &Path, extra: &[&str]) -> Server {
        static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SERVERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let out = dir.join(format!("{script}.{n}.received.ndjson"));
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(script);
        let mut process = Served::start(
            Command::new(common::python())
                .arg(&fixture)
                .arg("--out")
                .arg(&out)
                .args(extra),
        )
        .expect("python3 runs (scripts/install-test-deps.sh installs what the tests need)");
        let first = process.first_line.clone();
        let port = first.trim().parse().unwrap_or_else(|_| {
            process.kill();
            panic!("{script} did not start (is aiosmtpd installed? run scripts/install-test-deps.sh): {first:?}")
        });
        Server {
            _process: process,
            port,
            out,
        }
    }

    fn smtp(dir: &Path, extra: &[&str]) -> Server {
        Server::start("smtp_server.py", dir, extra)
    }

    fn http(dir: &Path, extra: &[&str]) -> Server {
        Server::start("webhook_server.py", dir, extra)
    }

    /// What the server recorded, one JSON value per line.
    fn records(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// What the server received, one JSON value per message or request.
    fn received(&self) -> Vec<Value> {
        let mut r = self.records();
        r.retain(|v| v.get("auth").is_none());
        r
    }

    /// The SMTP server's login attempts: `{"auth": MECHANISM, "tls": BOOL}`.
    fn logins(&self) -> Vec<Value> {
        let mut r = self.records();
        r.retain(|v| v.get("auth").is_some());
        r
    }

    fn wait_for(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n || start.elapsed() > Duration::from_secs(20) {
                return got;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn json_lines(bytes: &[u8]) -> Vec<Value> {
    lines(bytes)
        .into_iter()
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Decides with `rules` on `events`; returns the command lines.
fn decide(dir: &Path, rules: &Value, events: &[Value]) -> Vec<u8> {
    let rules = write(dir, "rules.json", &rules.to_string());
    let input: String = events.iter().map(|e| format!("{e}\n")).collect();
    let out = cmd("alert")
        .arg("--rule")
        .arg(&rules)
        .write_stdin(input)
        .output()
        .unwrap();
    assert_success(&out);
    out.stdout
}

/// Splits an email as received into its header lines (unfolded) and body.
fn headers_and_body(data: &str) -> (Vec<String>, String) {
    let data = data.replace("\r\n", "\n");
    let (head, body) = data.split_once("\n\n").unwrap();
    let mut headers: Vec<String> = Vec::new();
    for line in head.lines() {
        if line.starts_with(' ') || line.starts_with('\t') {
            headers.last_mut().unwrap().push_str(line);
        } else {
            headers.push(line.to_string());
        }
    }
    (headers, body.to_string())
}

fn header<'a>(headers: &'a [String], name: &str) -> Vec<&'a str> {
    let prefix = format!("{}:", name.to_ascii_lowercase());
    headers
        .iter()
        .filter(|h| h.to_ascii_lowercase().starts_with(&prefix))
        .map(|h| h[prefix.len()..].trim())
        .collect()
}

fn disk_event(host: &str, free: u32, owner: &str) -> Value {
    json!({"schema": "iglu:com.acme/disk_space/jsonschema/1-0-0",
           "data": {"host": host, "mount": "/var", "free_percent": free, "owner": owner,
                    "timestamp": "2026-11-27T10:00:00Z"}})
}

/// The commands [`disk_rules`] decide on disk events, one per
/// `(host, free percent, owner)`.
fn disk_commands(dir: &Path, disks: &[(&str, u32, &str)]) -> Vec<u8> {
    let events: Vec<Value> = disks
        .iter()
        .map(|&(host, free, owner)| disk_event(host, free, owner))
        .collect();
    decide(dir, &disk_rules(), &events)
}

fn disk_rules() -> Value {
    json!({"rules": [{
        "id": "disk-low",
        "when": ".data.free_percent < 10",
        "summary": "Disk {{.data.mount}} on {{.data.host}} is {{.data.free_percent}}% free",
        "detail": "Host {{.data.host}} needs attention.",
        "urgency": "high",
        "recipient": {"name": "Ops for {{.data.host}}", "email": "{{.data.owner}}"}
    }]})
}

fn send_smtp(server: &Server, commands: &[u8], extra: &[&str]) -> std::process::Output {
    cmd("alert")
        .args(["--send", &format!("smtp://127.0.0.1:{}", server.port)])
        .args([
            "--from",
            "Unilog Alerts <alerts@example.com>",
            "--smtp-tls",
            "none",
        ])
        .args(["--backoff", "20ms", "--timeout", "5s"])
        .args(extra)
        .write_stdin(commands.to_vec())
        .output()
        .unwrap()
}

#[test]
fn smtp_receives_exactly_the_expected_emails() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &[]);
    let commands = disk_commands(
        dir.path(),
        &[
            ("db-1", 4, "dba@example.com"),
            ("web-1", 55, "web@example.com"),
            ("cache-1", 9, "cache@example.com"),
        ],
    );
    assert_eq!(lines(&commands).len(), 2);
    let out = send_smtp(&server, &commands, &[]);
    assert_success(&out);
    let outcomes = json_lines(&out.stdout);
    assert_eq!(outcomes.len(), 2);
    for o in &outcomes {
        assert_eq!(o["schema"], "iglu:io.unilog/alert_outcome/jsonschema/1-0-0");
        assert_eq!(o["data"]["status"], "sent");
        assert_eq!(o["data"]["channel"], "smtp");
        assert_eq!(o["data"]["attempts"], 1);
        assert!(o["data"]["response"].as_str().unwrap().starts_with("250"));
    }
    let mails = server.received();
    assert_eq!(mails.len(), 2, "{mails:?}");
    let expected = [
        ("dba@example.com", "Disk /var on db-1 is 4% free"),
        ("cache@example.com", "Disk /var on cache-1 is 9% free"),
    ];
    for (mail, (to, subject)) in mails.iter().zip(expected) {
        assert_eq!(mail["mail_from"], "alerts@example.com");
        assert_eq!(mail["rcpt_tos"], json!([to]));
        let (headers, body) = headers_and_body(mail["data"].as_str().unwrap());
        assert_eq!(header(&headers, "Subject"), vec![subject]);
        assert_eq!(header(&headers, "To").len(), 1);
        assert!(header(&headers, "To")[0].contains(to));
        assert_eq!(header(&headers, "X-Unilog-Urgency"), vec!["high"]);
        // A declared content type and encoding need the MIME version (RFC 2045).
        assert_eq!(header(&headers, "MIME-Version"), vec!["1.0"]);
        assert_eq!(header(&headers, "Content-Type").len(), 1);
        assert!(body.contains("needs attention"), "{body}");
    }
    // The Message-ID is the command id: the same command always makes the
    // same message.
    let id = outcomes[0]["data"]["command_id"].as_str().unwrap();
    let (headers, _) = headers_and_body(mails[0]["data"].as_str().unwrap());
    assert_eq!(
        header(&headers, "Message-ID"),
        vec![format!("<{id}@unilog.alert>").as_str()]
    );
}

#[test]
fn hostile_fields_reach_no_header() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &[]);
    let evil_host = "db-1\r\nBcc: evil@example.com\r\nX-Injected: yes";
    let long = "x".repeat(100_000);
    let commands = decide(
        dir.path(),
        &disk_rules(),
        &[
            // Injection through the subject and the recipient's name.
            disk_event(evil_host, 1, "dba@example.com"),
            // Injection through the recipient's address: refused, not sent.
            disk_event("db-2", 1, "dba@example.com\r\nBcc: evil@example.com"),
            disk_event("db-3", 1, "dba@example.com, evil@example.com"),
            // A very long value.
            disk_event(&long, 1, "dba@example.com"),
        ],
    );
    let out = send_smtp(&server, &commands, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcomes = json_lines(&out.stdout);
    let statuses: Vec<String> = outcomes
        .iter()
        .map(|o| match o["schema"].as_str().unwrap() {
            "iglu:io.unilog/failure/jsonschema/1-0-0" => {
                o["data"]["errors"][0]["kind"].as_str().unwrap().to_string()
            }
            _ => o["data"]["status"].as_str().unwrap().to_string(),
        })
        .collect();
    assert_eq!(statuses, ["sent", "send_refused", "send_refused", "sent"]);
    // Refused at once: a permanent error is not retried.
    assert_eq!(outcomes[1]["data"]["errors"].as_array().unwrap().len(), 1);
    assert_eq!(
        outcomes[1]["data"]["original"]["schema"],
        "iglu:io.unilog/alert/jsonschema/1-0-0"
    );
    let mails = server.received();
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        assert_eq!(mail["rcpt_tos"], json!(["dba@example.com"]));
        let (headers, _) = headers_and_body(mail["data"].as_str().unwrap());
        assert!(header(&headers, "Bcc").is_empty(), "{headers:?}");
        assert!(header(&headers, "X-Injected").is_empty(), "{headers:?}");
        assert_eq!(header(&headers, "To").len(), 1);
        for h in &headers {
            assert!(h.len() < 1000, "header line too long: {}", h.len());
        }
    }
    let (headers, _) = headers_and_body(mails[0]["data"].as_str().unwrap());
    assert_eq!(
        header(&headers, "Subject"),
        vec!["Disk /var on db-1 Bcc: evil@example.com X-Injected: yes is 1% free"]
    );
    let (headers, _) = headers_and_body(mails[1]["data"].as_str().unwrap());
    let subject = header(&headers, "Subject")[0];
    assert!(subject.len() < 400, "subject of {} bytes", subject.len());
}

#[test]
fn smtp_authentication_from_the_environment_or_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &["--auth", "alerts:s3cret"]);
    let commands = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    // Without credentials the server refuses: a setup error, exit 2.
    let out = send_smtp(&server, &commands, &["--retries", "0"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("requires authentication"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(server.received().is_empty());
    // From the environment.
    let out = cmd("alert")
        .args(["--send", &format!("smtp://127.0.0.1:{}", server.port)])
        .args(["--from", "alerts@example.com", "--smtp-tls", "none"])
        .env("UNILOG_SMTP_USERNAME", "alerts")
        .env("UNILOG_SMTP_PASSWORD", "s3cret")
        .write_stdin(commands.clone())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(server.received().len(), 1);
    // From a file.
    let creds = write(dir.path(), "creds", "alerts\ns3cret\n");
    let out = send_smtp(
        &server,
        &commands,
        &["--smtp-credentials", creds.to_str().unwrap()],
    );
    assert_success(&out);
    assert_eq!(server.received().len(), 2);
    // Never in the URL.
    let out = cmd("alert")
        .args([
            "--send",
            &format!("smtp://alerts:s3cret@127.0.0.1:{}", server.port),
        ])
        .args(["--from", "alerts@example.com"])
        .write_stdin(commands)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn smtp_try_later_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &["--tempfail", "2"]);
    let commands = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    let out = send_smtp(&server, &commands, &[]);
    assert_success(&out);
    let outcome = &json_lines(&out.stdout)[0];
    assert_eq!(outcome["data"]["status"], "sent");
    assert_eq!(outcome["data"]["attempts"], 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("retrying").count(), 2, "{stderr}");
    assert_eq!(server.received().len(), 1);
    // A permanent refusal (550) is a failure event at once.
    let server = Server::smtp(dir.path(), &["--reject"]);
    let out = send_smtp(&server, &commands, &[]);
    assert_eq!(out.status.code(), Some(1));
    let failure = &json_lines(&out.stdout)[0];
    assert_eq!(failure["schema"], "iglu:io.unilog/failure/jsonschema/1-0-0");
    assert_eq!(failure["data"]["errors"][0]["kind"], "send_refused");
    assert!(failure["data"]["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("550"));
}

#[test]
fn a_redelivered_command_is_not_sent_twice() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &[]);
    let events = [
        disk_event("db-1", 1, "dba@example.com"),
        disk_event("db-2", 2, "dba@example.com"),
    ];
    // Deciding twice on the same events gives the same command ids.
    let commands = decide(dir.path(), &disk_rules(), &events);
    let again = decide(dir.path(), &disk_rules(), &events);
    let ids = |c: &[u8]| {
        json_lines(c)
            .iter()
            .map(|v| v["data"]["command_id"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&commands), ids(&again));
    let state = dir.path().join("state");
    let state_arg = ["--state", state.to_str().unwrap()];
    let out = send_smtp(&server, &commands, &state_arg);
    assert!(out.status.success());
    let out = send_smtp(&server, &again, &state_arg);
    assert_success(&out);
    let statuses: Vec<Value> = json_lines(&out.stdout)
        .iter()
        .map(|o| o["data"]["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("duplicate"), json!("duplicate")]);
    // The same command twice in one input, without --state, is sent once too.
    let mut doubled = commands.clone();
    doubled.extend_from_slice(&commands);
    let server2 = Server::smtp(dir.path(), &[]);
    let out = send_smtp(&server2, &doubled, &[]);
    assert!(out.status.success());
    let statuses: Vec<Value> = json_lines(&out.stdout)
        .iter()
        .map(|o| o["data"]["status"].clone())
        .collect();
    assert_eq!(statuses, ["sent", "sent", "duplicate", "duplicate"]);
    assert_eq!(server.received().len(), 2);
    assert_eq!(server2.received().len(), 2);
}

/// `alert --send` to the webhook server.
fn http_sender(server: &Server) -> assert_cmd::Command {
    let mut sender = cmd("alert");
    sender
        .args([
            "--send",
            &format!("http://127.0.0.1:{}/hooks/alerts", server.port),
        ])
        .args(["--backoff", "20ms"]);
    sender
}

fn send_http(server: &Server, commands: &[u8], extra: &[&str]) -> std::process::Output {
    http_sender(server)
        .args(extra)
        .write_stdin(commands.to_vec())
        .output()
        .unwrap()
}

#[test]
fn http_server_receives_the_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::http(dir.path(), &[]);
    let commands = disk_commands(
        dir.path(),
        &[
            ("db-1", 1, "dba@example.com"),
            ("db-2", 2, "dba@example.com"),
        ],
    );
    let out = http_sender(&server)
        .env("UNILOG_HTTP_AUTHORIZATION", "Bearer t0ken")
        .write_stdin(commands.clone())
        .output()
        .unwrap();
    assert_success(&out);
    let got = server.received();
    assert_eq!(got.len(), 2);
    for (req, cmd_line) in got.iter().zip(lines(&commands)) {
        assert_eq!(req["path"], "/hooks/alerts");
        assert_eq!(req["content_type"], "application/json");
        assert_eq!(req["authorization"], "Bearer t0ken");
        // The command is POSTed byte for byte.
        assert_eq!(req["body"].as_str().unwrap().as_bytes(), cmd_line);
        let v: Value = serde_json::from_slice(cmd_line).unwrap();
        assert_eq!(req["idempotency_key"], v["data"]["command_id"]);
    }
    let outcomes = json_lines(&out.stdout);
    assert_eq!(outcomes[0]["data"]["response"], "HTTP 200");
    // Without the environment variable, no Authorization header.
    let server = Server::http(dir.path(), &[]);
    let out = send_http(&server, &commands[..lines(&commands)[0].len() + 1], &[]);
    assert!(out.status.success());
    assert_eq!(server.received()[0]["authorization"], Value::Null);
}

#[test]
fn http_failures_are_retried_then_reported() {
    let dir = tempfile::tempdir().unwrap();
    let commands = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    // 503 twice, then 200: sent on the third try.
    let server = Server::http(dir.path(), &["--fail-first", "2"]);
    let out = send_http(&server, &commands, &[]);
    assert_success(&out);
    assert_eq!(json_lines(&out.stdout)[0]["data"]["attempts"], 3);
    assert_eq!(server.received().len(), 3);
    // 404: refused at once.
    let server = Server::http(dir.path(), &["--status", "404"]);
    let out = send_http(&server, &commands, &[]);
    assert_eq!(out.status.code(), Some(1));
    let f = &json_lines(&out.stdout)[0];
    assert_eq!(f["data"]["errors"][0]["kind"], "send_refused");
    assert_eq!(server.received().len(), 1);
    // A server that never answers in time: every try times out.
    let server = Server::http(dir.path(), &["--delay", "5"]);
    let out = send_http(
        &server,
        &commands,
        &["--timeout", "300ms", "--retries", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let f = &json_lines(&out.stdout)[0];
    assert_eq!(f["schema"], "iglu:io.unilog/failure/jsonschema/1-0-0");
    let errors = f["data"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["kind"], "send_failed");
    assert_eq!(errors[1]["attempt"], 2);
    assert_eq!(server.wait_for(2).len(), 2);
    // Nobody listening: connection refused, retried, then a failure event.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = cmd("alert")
        .args([
            "--send",
            &format!("http://127.0.0.1:{port}/"),
            "--retries",
            "2",
            "--backoff",
            "10ms",
        ])
        .write_stdin(commands)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let f = &json_lines(&out.stdout)[0];
    assert_eq!(f["data"]["errors"].as_array().unwrap().len(), 3);
    assert_eq!(f["data"]["errors"][0]["kind"], "send_failed");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("retrying").count(), 2, "{stderr}");
}

/// A 429 or 503 with `Retry-After` (seconds or an HTTP date) waits as long
/// as the receiver asks, never longer than --max-backoff.
#[test]
fn retry_after_is_honoured_within_max_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let commands = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    let gap = |server: &Server| {
        let got = server.wait_for(2);
        assert_eq!(got.len(), 2, "{got:?}");
        got[1]["t"].as_f64().unwrap() - got[0]["t"].as_f64().unwrap()
    };
    let cases: [(&str, &str, &str, f64, f64); 4] = [
        ("429", "2", "30s", 1.9, 10.0),
        ("503", "2", "30s", 1.9, 10.0),
        // An HTTP date two to three seconds ahead (dates count whole seconds).
        ("429", "date+3", "30s", 1.0, 10.0),
        // Bounded: the server asks for an hour, --max-backoff says 300ms.
        ("503", "3600", "300ms", 0.0, 3.0),
    ];
    for (status, after, max, at_least, below) in cases {
        let server = Server::http(
            dir.path(),
            &[
                "--fail-first",
                "1",
                "--fail-status",
                status,
                "--retry-after",
                after,
            ],
        );
        let out = send_http(&server, &commands, &["--max-backoff", max]);
        assert_success(&out);
        assert_eq!(json_lines(&out.stdout)[0]["data"]["attempts"], 2);
        let g = gap(&server);
        assert!(
            g >= at_least && g < below,
            "{status} Retry-After {after}, --max-backoff {max}: retried after {g:.2}s"
        );
        assert!(
            stderr_of(&out).contains("Retry-After"),
            "{}",
            stderr_of(&out)
        );
    }
}

#[test]
fn an_executor_killed_and_restarted_sends_no_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let events: Vec<Value> = (0..6)
        .map(|i| disk_event(&format!("db-{i}"), 1, "dba@example.com"))
        .collect();
    let commands = decide(dir.path(), &disk_rules(), &events);
    let commands_file = write(
        dir.path(),
        "commands.ndjson",
        std::str::from_utf8(&commands).unwrap(),
    );
    let ids: Vec<String> = json_lines(&commands)
        .iter()
        .map(|v| v["data"]["command_id"].as_str().unwrap().to_string())
        .collect();
    // The server takes request 3 and never answers: the executor is killed
    // while sending it, after the journal said "started".
    let server = Server::http(dir.path(), &["--stall-at", "3"]);
    let state = dir.path().join("state");
    let url = format!("http://127.0.0.1:{}/", server.port);
    let mut first = Command::new(bin("alert"))
        .args([
            "--send",
            &url,
            "--state",
            state.to_str().unwrap(),
            "--timeout",
            "60s",
        ])
        .arg(&commands_file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let got = server.wait_for(3);
    assert_eq!(got.len(), 3);
    first.kill().unwrap(); // SIGKILL: no chance to tidy up.
    first.wait().unwrap();
    // Restarted on the same input with the same state.
    let out = cmd("alert")
        .args([
            "--send",
            &url,
            "--state",
            state.to_str().unwrap(),
            "--timeout",
            "10s",
        ])
        .arg(&commands_file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcomes = json_lines(&out.stdout);
    let kinds: Vec<String> = outcomes
        .iter()
        .map(|o| {
            o["data"]["status"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| o["data"]["errors"][0]["kind"].as_str().unwrap().to_string())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "duplicate",
            "duplicate",
            "interrupted",
            "sent",
            "sent",
            "sent"
        ]
    );
    let received = server.received();
    let keys: Vec<&str> = received
        .iter()
        .map(|r| r["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "each command exactly once"
    );
    // Reported once: later runs hold it quietly (exit 0), send nothing.
    for _ in 0..2 {
        let out = cmd("alert")
            .args(["--send", &url, "--state", state.to_str().unwrap()])
            .arg(&commands_file)
            .output()
            .unwrap();
        assert_success(&out);
        let outcomes = json_lines(&out.stdout);
        assert_eq!(outcomes.len(), 5);
        assert!(outcomes.iter().all(|o| o["data"]["status"] == "duplicate"));
        assert!(
            stderr_of(&out).contains("1 command(s) held"),
            "{}",
            stderr_of(&out)
        );
    }
    assert_eq!(server.received().len(), 6);
    // At least once, when asked: the interrupted command goes again, the
    // others stay done.
    let out = cmd("alert")
        .args([
            "--send",
            &url,
            "--state",
            state.to_str().unwrap(),
            "--retry-interrupted",
        ])
        .arg(&commands_file)
        .output()
        .unwrap();
    assert_success(&out);
    let outcomes = json_lines(&out.stdout);
    assert_eq!(outcomes[2]["data"]["status"], "sent");
    assert_eq!(outcomes[2]["data"]["resent_after_interruption"], true);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| o["data"]["status"] == "duplicate")
            .count(),
        5
    );
    let received = server.received();
    assert_eq!(received.len(), 7);
    assert_eq!(received[6]["idempotency_key"], ids[2].as_str());
    // Two executors on one state directory: the second refuses.
    let _hold = unilog::alert::journal::Journal::open(&state, 1000, 0).unwrap();
    let out = cmd("alert")
        .args(["--send", &url, "--state", state.to_str().unwrap()])
        .arg(&commands_file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
}

/// A person who checked an interrupted command marks it resolved; it is
/// then neither sent nor reported again.
#[test]
fn an_interrupted_command_is_reported_once_and_resolved_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let commands = disk_commands(
        dir.path(),
        &[
            ("db-1", 1, "dba@example.com"),
            ("db-2", 2, "dba@example.com"),
        ],
    );
    let ids: Vec<String> = json_lines(&commands)
        .iter()
        .map(|v| v["data"]["command_id"].as_str().unwrap().to_string())
        .collect();
    let state = dir.path().join("state");
    // What a run killed while sending the first command leaves.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("journal"), format!("S {} 1\n", ids[0])).unwrap();
    let server = Server::http(dir.path(), &[]);
    let run = |extra: &[&str]| {
        send_http(
            &server,
            &commands,
            &[&["--state", state.to_str().unwrap()], extra].concat(),
        )
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_of(&out).contains(&format!("--resolve {}", ids[0])),
        "{}",
        stderr_of(&out)
    );
    assert_eq!(
        json_lines(&out.stdout)[0]["data"]["errors"][0]["kind"],
        "interrupted"
    );
    assert_success(&run(&[]));
    // --resolve needs no input and names what is left.
    let resolve = |id: &str| {
        cmd("alert")
            .args(["--state", state.to_str().unwrap(), "--resolve", id])
            .output()
            .unwrap()
    };
    let out = resolve(&ids[1]);
    assert_eq!(out.status.code(), Some(2), "not interrupted: an error");
    assert!(
        stderr_of(&out).contains("not interrupted"),
        "{}",
        stderr_of(&out)
    );
    let out = resolve(&ids[0]);
    assert_success(&out);
    assert!(stderr_of(&out).contains("resolved"));
    let out = run(&[]);
    assert_success(&out);
    assert!(json_lines(&out.stdout)
        .iter()
        .all(|o| o["data"]["status"] == "duplicate"));
    assert!(!stderr_of(&out).contains("held"), "{}", stderr_of(&out));
    // Only the second command ever went.
    assert_eq!(server.received().len(), 1);
}

/// The journal forgets finished commands past --horizon and stays small.
#[test]
fn the_journal_is_bounded_by_its_horizon() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    // Ten thousand commands finished a year ago, one interrupted then.
    let mut old = String::new();
    for i in 0..10_000u64 {
        old.push_str(&format!("S {i:032x} 1000\nD {i:032x} 1000\n"));
    }
    old.push_str(&format!("S {:032x} 1000\n", 99_999));
    std::fs::write(state.join("journal"), &old).unwrap();
    let server = Server::http(dir.path(), &[]);
    let commands = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    let out = send_http(
        &server,
        &commands,
        &["--state", state.to_str().unwrap(), "--horizon", "30d"],
    );
    assert_success(&out);
    let journal = std::fs::read_to_string(state.join("journal")).unwrap();
    // The interrupted one (kept until resolved) and the new command.
    assert_eq!(journal.lines().count(), 3, "{journal}");
    assert!(
        journal.starts_with(&format!("S {:032x} 1000\n", 99_999)),
        "{journal}"
    );
}

#[test]
fn exec_programs_get_the_command_on_stdin_without_a_shell() {
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("pwned");
    let hostile = format!(
        "$(touch {0}); `touch {0}`; touch {0} | sh",
        canary.display()
    );
    let commands = disk_commands(
        dir.path(),
        &[
            (&hostile, 1, "dba@example.com"),
            ("db-2", 1, "dba@example.com"),
        ],
    );
    let received = dir.path().join("received");
    let program = write(
        dir.path(),
        "receiver.py",
        &format!(
            "#!/usr/bin/env python3\nimport os, sys, json\ncmd = sys.stdin.read()\n\
             with open({:?}, 'a') as f:\n    f.write(json.dumps({{'argv': sys.argv[1:], 'id': os.environ['UNILOG_COMMAND_ID'], 'stdin': cmd}}) + '\\n')\n",
            received.to_str().unwrap()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = cmd("alert")
        .args(["--send", &format!("exec:{}", program.display())])
        .args(["--exec-arg", "--team", "--exec-arg", "ops; rm -rf /"])
        .write_stdin(commands.clone())
        .output()
        .unwrap();
    assert_success(&out);
    let got = json_lines(&std::fs::read(&received).unwrap());
    assert_eq!(got.len(), 2);
    for (g, line) in got.iter().zip(lines(&commands)) {
        assert_eq!(g["argv"], json!(["--team", "ops; rm -rf /"]));
        assert_eq!(g["stdin"].as_str().unwrap().trim_end().as_bytes(), line);
        let v: Value = serde_json::from_slice(line).unwrap();
        assert_eq!(g["id"], v["data"]["command_id"]);
    }
    assert!(!canary.exists(), "a shell ran the event's text");
    // Exit 75 is "try later": retried; other codes are refusals.
    let flaky = write(dir.path(), "flaky.sh", &format!("#!/bin/sh\nn=$(cat {0}/count 2>/dev/null || echo 0)\necho $((n+1)) > {0}/count\n[ $n -ge 1 ] && exit 0\necho 'busy' >&2\nexit 75\n", dir.path().display()));
    std::fs::set_permissions(&flaky, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = cmd("alert")
        .args([
            "--send",
            &format!("exec:{}", flaky.display()),
            "--backoff",
            "10ms",
        ])
        .write_stdin(lines(&commands)[0].to_vec())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(json_lines(&out.stdout)[0]["data"]["attempts"], 2);
}

#[test]
fn deciding_with_when_and_throttle() {
    let events: String = [
        ("a", "10:00:00"),
        ("a", "10:10:00"),
        ("b", "10:15:00"),
        ("a", "10:30:00"),
        ("b", "10:20:00"),
    ]
    .iter()
    .map(|(host, t)| {
        format!(
            "{}\n",
            json!({"schema": "iglu:com.acme/load/jsonschema/1-0-0",
                   "data": {"host": host, "load": 9.5, "timestamp": format!("2026-11-27T{t}Z")}})
        )
    })
    .collect();
    let out = cmd("alert")
        .args([
            "--when",
            ".data.load > 4",
            "--summary",
            "Load {{.data.load}} on {{.data.host}}",
        ])
        .args([
            "--recipient",
            "Ops <ops@example.com>",
            "--urgency",
            "critical",
            "--id",
            "load",
        ])
        .args(["--throttle", "30m", "--per", ".data.host"])
        .write_stdin(events)
        .output()
        .unwrap();
    assert_success(&out);
    let cmds = json_lines(&out.stdout);
    let got: Vec<(String, String)> = cmds
        .iter()
        .map(|c| {
            (
                c["data"]["source"]["data"]["host"].as_str().unwrap().into(),
                c["data"]["event_time"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a".to_string(), "2026-11-27T10:00:00.000Z".to_string()),
            ("b".into(), "2026-11-27T10:15:00.000Z".into()),
            ("a".into(), "2026-11-27T10:30:00.000Z".into()),
        ]
    );
    assert_eq!(
        cmds[0]["data"]["notification"],
        json!({"summary": "Load 9.5 on a", "detail": "", "urgency": "critical"})
    );
    assert_eq!(
        cmds[0]["data"]["recipient"],
        json!({"name": "Ops", "email": "ops@example.com"})
    );
    assert_eq!(cmds[0]["data"]["rule"], "load");
}

/// A decider run from cron every minute throttles as one long run would:
/// --throttle's memory lives in --state DIR, replaced atomically.
#[test]
fn throttles_survive_across_runs_in_the_state_directory() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("decider");
    let run = |events: &[Value], extra: &[&str]| {
        let input: String = events.iter().map(|e| format!("{e}\n")).collect();
        let out = cmd("alert")
            .args([
                "--when",
                ".data.free_percent < 10",
                "--summary",
                "low {{.data.host}}",
            ])
            .args(["--throttle", "30m", "--per", ".data.host", "--state"])
            .arg(&state)
            .args(extra)
            .write_stdin(input)
            .output()
            .unwrap();
        assert_success(&out);
        json_lines(&out.stdout)
            .iter()
            .map(|c| {
                c["data"]["source"]["data"]["host"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    };
    let at = |host: &str, t: &str| {
        let mut e = disk_event(host, 1, "o@example.com");
        e["data"]["timestamp"] = format!("2026-11-27T{t}Z").into();
        e
    };
    assert_eq!(run(&[at("a", "10:00:00")], &[]), ["a"]);
    // The next run, a minute later: a is held back, b is new.
    assert_eq!(run(&[at("a", "10:01:00"), at("b", "10:01:00")], &[]), ["b"]);
    assert_eq!(run(&[at("a", "10:29:00")], &[]), Vec::<String>::new());
    assert_eq!(run(&[at("a", "10:30:00"), at("b", "10:30:00")], &[]), ["a"]);
    let files: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock")
        .collect();
    assert_eq!(files, ["throttles.json"], "no temporary left behind");
    // By the time of processing too (events without a time).
    let untimed = json!({"data": {"host": "c", "free_percent": 1}});
    let flags = ["--processing-time"];
    assert_eq!(run(std::slice::from_ref(&untimed), &flags), ["c"]);
    assert_eq!(
        run(std::slice::from_ref(&untimed), &flags),
        Vec::<String>::new()
    );
    // Damaged state is an error that names the file, never a silent reset.
    std::fs::write(state.join("throttles.json"), "{oops").unwrap();
    let out = cmd("alert")
        .args(["--when", "true", "--throttle", "1m", "--state"])
        .arg(&state)
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("throttles.json"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn usage_errors_and_bad_input() {
    let out = cmd("alert").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cmd("alert").args(["--when", ".x <"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("alert: error: "));
    let out = cmd("alert")
        .args(["--when", ".x", "--send", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cmd("alert").args(["--send", "ftp://x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cmd("alert")
        .args(["--send", "smtp://127.0.0.1:25"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--from is required");
    // Lines that are not commands are failure events on --bad, never sent.
    let dir = tempfile::tempdir().unwrap();
    let server = Server::http(dir.path(), &[]);
    let bad = dir.path().join("bad.ndjson");
    let out = cmd("alert")
        .args([
            "--send",
            &format!("http://127.0.0.1:{}/", server.port),
            "--bad",
            bad.to_str().unwrap(),
        ])
        .write_stdin("not json\n{\"schema\":\"iglu:com.acme/x/jsonschema/1-0-0\",\"data\":{}}\n\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let failures = json_lines(&std::fs::read(&bad).unwrap());
    assert_eq!(failures.len(), 3);
    assert_eq!(failures[1]["data"]["errors"][0]["kind"], "invalid_command");
    assert!(server.received().is_empty());
}

/// Every line the tool cannot take is a failure event, in each fast path:
/// the prefilter, which skips what no rule reads, must not skip a fault
/// hidden there (issue 9 item 9), and the executor checks the same rule.
#[test]
fn unreadable_lines_are_failures_in_every_fast_path() {
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let lines_in: Vec<Vec<u8>> = vec![
        br#"{"data":{"free_percent":50,"host":"ok"}}"#.to_vec(),
        br#"{"data":{"free_percent":5,"host":"alert me"}}"#.to_vec(),
        b"{\"data\":{\"free_percent\":50,\"host\":\"caf\xe9\"}}".to_vec(),
        b"{\"data\":{\"free_percent\":50},\"k\xff\":1}".to_vec(),
        br#"{"data":{"free_percent":50,"host":"\ud800"}}"#.to_vec(),
        br#"{"data":{"free_percent":50,"n":1e400}}"#.to_vec(),
        format!(r#"{{"data":{{"free_percent":50}},"x":{deep}}}"#).into_bytes(),
    ];
    let input: Vec<u8> = lines_in
        .iter()
        .flat_map(|l| [&l[..], b"\n"].concat())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--no-prefilter"]] {
        let bad = dir.path().join("bad.ndjson");
        let _ = std::fs::remove_file(&bad);
        let out = cmd("alert")
            .args(["--when", ".data.free_percent < 10", "--summary", "low"])
            .args(extra)
            .arg("--bad")
            .arg(&bad)
            .write_stdin(input.clone())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{extra:?}: {}", stderr_of(&out));
        assert_eq!(json_lines(&out.stdout).len(), 1, "{extra:?}");
        let failures = json_lines(&std::fs::read(&bad).unwrap_or_default());
        let at: Vec<u64> = failures
            .iter()
            .map(|f| f["data"]["input"]["line"].as_u64().unwrap())
            .collect();
        assert_eq!(at, [3, 4, 5, 6, 7], "{extra:?}");
        assert!(stderr_of(&out).contains("7 read, 1 alerts raised, 5 failed"));
    }
    // The executor: a command whose unread parts break the rule is never sent.
    let server = Server::http(dir.path(), &[]);
    let good = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    let good = good.trim_ascii_end();
    let spoiled: Vec<u8> = [&good[..good.len() - 1], b",\"x\":\"\xff\"}\n"].concat();
    let bad = dir.path().join("bad-commands.ndjson");
    let out = send_http(&server, &spoiled, &["--bad", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(out.stdout.is_empty());
    let failures = json_lines(&std::fs::read(&bad).unwrap());
    assert_eq!(failures[0]["data"]["errors"][0]["kind"], "invalid_utf8");
    assert!(server.received().is_empty());
}

/// `alert --help` gives deciding and executing their own sections, and its
/// examples copy-paste: no escaped quotes, no command wrapped mid-line.
#[test]
fn help_sections_and_examples_copy_paste() {
    let out = cmd("alert")
        .arg("--help")
        .env("COLUMNS", "80")
        .output()
        .unwrap();
    assert_success(&out);
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(!help.contains("\\\""), "escaped quotes in --help:\n{help}");
    assert!(help.contains(r#"{"rules":[{"id":…,"when":…,"summary":…},…]}"#));
    // Each example line is in the help whole, and shorter than 80 columns.
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cmd/alert.rs"))
            .unwrap();
    let examples = src.split("Examples:\n").nth(1).unwrap();
    let examples = &examples[..examples.find("\n\n").unwrap()];
    let mut n = 0;
    for line in examples.lines() {
        let line = line.replace("\\\\", "\\");
        assert!(line.len() < 80, "{line}");
        assert!(
            help.lines().any(|h| h == line),
            "{line:?} not verbatim in:\n{help}"
        );
        n += 1;
    }
    assert!(n >= 10);
    // Sections: an option of one job never appears in the other's.
    let section = |name: &str| {
        let start = help
            .find(&format!("\n{name}:\n"))
            .unwrap_or_else(|| panic!("{name}"));
        let rest = &help[start + name.len() + 3..];
        let end = rest
            .match_indices("\n\n")
            .map(|(i, _)| i)
            .find(|&i| rest[i + 2..].starts_with(|c: char| !c.is_whitespace()))
            .unwrap_or(rest.len());
        rest[..end].to_string()
    };
    let deciding = section("Deciding");
    let executing = section("Executing");
    for flag in ["--rule", "--when", "--throttle", "--per", "--time-path"] {
        assert!(deciding.contains(&format!("{flag} ")), "{flag} in Deciding");
        assert!(
            !executing.contains(&format!("{flag} ")),
            "{flag} not in Executing"
        );
    }
    for flag in [
        "--send",
        "--from",
        "--smtp-tls",
        "--ca",
        "--retries",
        "--resolve",
        "--horizon",
    ] {
        assert!(
            executing.contains(&format!("{flag} ")),
            "{flag} in Executing"
        );
        assert!(
            !deciding.contains(&format!("{flag} ")),
            "{flag} not in Deciding"
        );
    }
}

#[test]
fn closed_stdout_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let events: String = (0..20000)
        .map(|i| format!("{}\n", disk_event(&format!("h{i}"), 1, "o@example.com")))
        .collect();
    let input = write(dir.path(), "events.ndjson", &events);
    let out = common::shell(
        &format!(
            "alert --when 'true' --summary s {} | head -1",
            input.display()
        ),
        dir.path(),
    );
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out.stdout).len(), 1);
}

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/alert")
        .join(path)
}

fn with_bins(c: &mut Command) -> &mut Command {
    let bin_dir = bin("alert").parent().unwrap().to_path_buf();
    c.env(
        "PATH",
        format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    )
}

#[test]
fn example_plum_health_checks_raise_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &[]);
    let out = with_bins(&mut Command::new(example("plum/run.sh")))
        .env("SMTP_URL", format!("smtp://127.0.0.1:{}", server.port))
        .env("SMTP_TLS", "none")
        .env("WORK", dir.path())
        .output()
        .unwrap();
    assert_success(&out);
    let mails = server.received();
    let got: Vec<(Value, String)> = mails
        .iter()
        .map(|m| {
            let (headers, _) = headers_and_body(m["data"].as_str().unwrap());
            (
                m["rcpt_tos"].clone(),
                header(&headers, "Subject")[0].to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                json!(["maintenance@plum.example"]),
                "Plum NCX-10 milling machine NCX10-0002 restarted at 2026-11-27T09:59:10Z"
                    .to_string()
            ),
            (
                json!(["maintenance@plum.example"]),
                "NCX10-0003 at Plum Osaka is overheating: 97.2 C".to_string()
            ),
        ]
    );
    // Without an SMTP server, a program prints what would be sent.
    let work = dir.path().join("print");
    std::fs::create_dir(&work).unwrap();
    let out = with_bins(&mut Command::new(example("plum/run.sh")))
        .env("WORK", &work)
        .output()
        .unwrap();
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Subject: NCX10-0003 at Plum Osaka is overheating: 97.2 C"),
        "{stderr}"
    );
    assert_eq!(json_lines(&out.stdout).len(), 2);
}

#[test]
fn example_disk_space_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::smtp(dir.path(), &[]);
    let df = write(
        dir.path(),
        "df.txt",
        "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
         /dev/sda1         10000000   5000000   5000000      50% /\n\
         /dev/sdb1         10000000   9500000    500000      95% /data\n\
         /dev/sdc1         10000000   9900000    100000      99% /var\n\
         tmpfs                    0         0         0       -  /run/empty\n",
    );
    let out = with_bins(&mut Command::new(example("disk-space/disk-monitor.sh")))
        .env("ONCE", "1")
        .env("DF", &df)
        .env("HOST_NAME", "web-7")
        .env("SEND", format!("smtp://127.0.0.1:{}", server.port))
        .env("FROM", "alerts@example.com")
        .env("SMTP_TLS", "none")
        .env("STATE", dir.path().join("state"))
        .output()
        .unwrap();
    assert_success(&out);
    let outcomes = json_lines(&out.stdout);
    assert_eq!(outcomes.len(), 3);
    let mut got: Vec<(String, String)> = server
        .received()
        .iter()
        .map(|m| {
            let (headers, _) = headers_and_body(m["data"].as_str().unwrap());
            (
                m["rcpt_tos"][0].as_str().unwrap().to_string(),
                header(&headers, "Subject")[0].to_string(),
            )
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (
                "oncall@example.com".to_string(),
                "/var on web-7 is nearly full (1% free)".to_string()
            ),
            ("ops@example.com".into(), "/data on web-7 is 5% free".into()),
            ("ops@example.com".into(), "/var on web-7 is 1% free".into()),
        ]
    );
}

/// A small checker for the keywords the io.unilog schemas use.
fn conforms(schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let t = schema["type"].as_str();
    let ok = match t {
        Some("object") => v.is_object(),
        Some("string") => v.is_string(),
        Some("integer") => v.is_i64() || v.is_u64(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        return Err(format!("{at}: {v} is not {t:?}"));
    }
    if let Some(e) = schema["enum"].as_array() {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in {e:?}"));
        }
    }
    if let (Some(max), Some(s)) = (schema["maxLength"].as_u64(), v.as_str()) {
        if s.chars().count() as u64 > max {
            return Err(format!("{at}: longer than {max}"));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = schema["properties"].as_object();
        for r in schema["required"].as_array().into_iter().flatten() {
            if !obj.contains_key(r.as_str().unwrap()) {
                return Err(format!("{at}: missing {r}"));
            }
        }
        if let Some(props) = props {
            for (k, val) in obj {
                match props.get(k) {
                    Some(s) => conforms(s, val, &format!("{at}.{k}"))?,
                    None if schema["additionalProperties"] == false => {
                        return Err(format!("{at}: unexpected {k}"))
                    }
                    None => {}
                }
            }
        }
    }
    Ok(())
}

#[test]
fn commands_and_outcomes_match_their_schemas() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/io.unilog");
    let load = |name: &str| -> Value {
        serde_json::from_str(
            &std::fs::read_to_string(root.join(name).join("jsonschema/1-0-0")).unwrap(),
        )
        .unwrap()
    };
    let (alert_schema, outcome_schema) = (load("alert"), load("alert_outcome"));
    assert_eq!(alert_schema["self"]["name"], "alert");
    let dir = tempfile::tempdir().unwrap();
    let mut events: Vec<Value> = (0..5)
        .map(|i| disk_event(&format!("h{i}"), i, "o@example.com"))
        .collect();
    events.push(disk_event(&"\u{e9}".repeat(5000), 1, "o@example.com"));
    let commands = decide(dir.path(), &disk_rules(), &events);
    for c in json_lines(&commands) {
        assert_eq!(c["schema"], "iglu:io.unilog/alert/jsonschema/1-0-0");
        conforms(&alert_schema, &c["data"], "data").unwrap();
    }
    let server = Server::http(dir.path(), &[]);
    let state = dir.path().join("s");
    for _ in 0..2 {
        let out = send_http(&server, &commands, &["--state", state.to_str().unwrap()]);
        for o in json_lines(&out.stdout) {
            assert_eq!(o["schema"], "iglu:io.unilog/alert_outcome/jsonschema/1-0-0");
            conforms(&outcome_schema, &o["data"], "data").unwrap();
        }
    }
    // The checker itself refuses what does not conform.
    assert!(conforms(&alert_schema, &json!({"rule": "x"}), "data").is_err());
}

/// The test PKI, its CA file's path, and two commands to send.
fn tls_setup(dir: &Path) -> (PathBuf, String, Vec<u8>) {
    let pki = common::test_pki(dir);
    let ca = pki.join("ca.pem").display().to_string();
    let two = [
        ("db-1", 1, "dba@example.com"),
        ("db-2", 2, "dba@example.com"),
    ];
    (pki, ca, disk_commands(dir, &two))
}

fn cert_args(pki: &Path, stem: &str) -> [String; 2] {
    [
        pki.join(format!("{stem}.pem")).display().to_string(),
        pki.join(format!("{stem}.key")).display().to_string(),
    ]
}

/// An address of this machine that is not loopback, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    // Connecting a UDP socket sends nothing; it picks the outgoing address.
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// `alert --send URL` with credentials in the environment and a journal.
fn send_with_login(
    url: &str,
    commands: &[u8],
    state: &Path,
    password: &str,
    extra: &[&str],
) -> std::process::Output {
    cmd("alert")
        .args(["--send", url, "--from", "alerts@example.com"])
        .args(["--backoff", "20ms", "--timeout", "5s", "--state"])
        .arg(state)
        .args(extra)
        .env("UNILOG_SMTP_USERNAME", "alerts")
        .env("UNILOG_SMTP_PASSWORD", password)
        .write_stdin(commands.to_vec())
        .output()
        .unwrap()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 2, nothing on stdout, and a message that contains each of `words`.
fn assert_setup_error(out: &std::process::Output, words: &[&str]) {
    let stderr = stderr_of(out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for w in words {
        assert!(stderr.contains(w), "{w:?} not in {stderr}");
    }
    // Stopped at the first error: one message, no retries.
    assert!(!stderr.contains("retrying"), "{stderr}");
}

#[test]
fn opportunistic_tls_never_sends_credentials_in_clear_text_off_loopback() {
    let dir = tempfile::tempdir().unwrap();
    // A server without STARTTLS, listening on every address.
    let server = Server::smtp(
        dir.path(),
        &["--auth", "alerts:s3cret", "--host", "0.0.0.0"],
    );
    let commands = disk_commands(dir.path(), &[("db-1", 1, "dba@example.com")]);
    let state = dir.path().join("state");
    let opportunistic = ["--smtp-tls", "opportunistic"];
    // Loopback decided by resolving the name, whatever its spelling.
    for host in ["LOCALHOST", "127.1", "127.0.0.1"] {
        let url = format!("smtp://{host}:{}", server.port);
        let out = send_with_login(
            &url,
            &commands,
            &dir.path().join(host),
            "s3cret",
            &opportunistic,
        );
        assert_success(&out);
    }
    assert_eq!(server.logins().len(), 3);
    assert_eq!(server.received().len(), 3);
    let before = server.records().len();
    // Off loopback: the password never goes, the command is not journalled
    // as failed, and the message says what to change.
    let ip = non_loopback_ip().expect("this machine has a non-loopback address");
    let url = format!("smtp://{ip}:{}", server.port);
    let out = send_with_login(&url, &commands, &state, "s3cret", &opportunistic);
    assert_setup_error(&out, &["does not offer STARTTLS", "plain text", "smtps://"]);
    let out = send_with_login(&url, &commands, &state, "s3cret", &["--smtp-tls", "none"]);
    assert_setup_error(&out, &["refusing to send SMTP credentials in plain text"]);
    assert_eq!(
        server.records().len(),
        before,
        "no login or mail off loopback"
    );
    // STARTTLS required (smtp://'s default): the message suggests the way out.
    let out = send_with_login(&url, &commands, &state, "s3cret", &[]);
    assert_setup_error(&out, &["does not offer STARTTLS", "--smtp-tls none"]);
    let journal = std::fs::read_to_string(state.join("journal")).unwrap_or_default();
    assert!(!journal.lines().any(|l| l.starts_with("F ")), "{journal}");
    // The same state directory, on loopback: the command goes (it was
    // never counted as tried, nor as interrupted).
    let url = format!("smtp://localhost:{}", server.port);
    let out = send_with_login(&url, &commands, &state, "s3cret", &opportunistic);
    assert_success(&out);
    assert_eq!(json_lines(&out.stdout)[0]["data"]["status"], "sent");
}

#[test]
fn smtp_over_tls_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, ca, commands) = tls_setup(dir.path());
    let good = cert_args(&pki, "good");
    // STARTTLS, required; the login goes over TLS only.
    let server = Server::smtp(
        dir.path(),
        &["--auth", "alerts:s3cret", "--starttls", &good[0], &good[1]],
    );
    let url = format!("smtp://localhost:{}", server.port);
    let out = send_with_login(
        &url,
        &commands,
        &dir.path().join("s1"),
        "s3cret",
        &["--ca", &ca],
    );
    assert_success(&out);
    let mails = server.received();
    assert_eq!(mails.len(), 2);
    assert!(mails
        .iter()
        .all(|m| m["tls"] == true && m["authenticated"] == true));
    // One connection, one login, for both commands.
    let logins = server.logins();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert_eq!(logins[0]["tls"], true);
    // Opportunistic takes STARTTLS when offered.
    let out = send_with_login(
        &url,
        &commands,
        &dir.path().join("s2"),
        "s3cret",
        &["--ca", &ca, "--smtp-tls", "opportunistic"],
    );
    assert_success(&out);
    assert!(server.received().iter().all(|m| m["tls"] == true));
    // Implicit TLS (smtps://), by IP address: the certificate names 127.0.0.1 too.
    let server = Server::smtp(dir.path(), &["--implicit-tls", &good[0], &good[1]]);
    let out = cmd("alert")
        .args(["--send", &format!("smtps://127.0.0.1:{}", server.port)])
        .args(["--from", "alerts@example.com", "--ca", &ca])
        .write_stdin(commands.clone())
        .output()
        .unwrap();
    assert_success(&out);
    assert_eq!(server.received().len(), 2);
    // Wrong password: refused login, a setup error.
    let server = Server::smtp(
        dir.path(),
        &["--auth", "alerts:s3cret", "--starttls", &good[0], &good[1]],
    );
    let url = format!("smtp://localhost:{}", server.port);
    let state = dir.path().join("s3");
    let out = send_with_login(&url, &commands, &state, "wrong", &["--ca", &ca]);
    assert_setup_error(&out, &["refused the login", "535", "UNILOG_SMTP_PASSWORD"]);
    // The same state, the right password: both sent (nothing was journalled).
    let out = send_with_login(&url, &commands, &state, "s3cret", &["--ca", &ca]);
    assert_success(&out);
    assert!(json_lines(&out.stdout)
        .iter()
        .all(|o| o["data"]["status"] == "sent"));
    // No mechanism in common.
    let server = Server::smtp(
        dir.path(),
        &[
            "--auth",
            "alerts:s3cret",
            "--auth-mechanisms",
            "XOAUTH2",
            "--starttls",
            &good[0],
            &good[1],
        ],
    );
    let url = format!("smtp://localhost:{}", server.port);
    let out = send_with_login(
        &url,
        &commands,
        &dir.path().join("s4"),
        "s3cret",
        &["--ca", &ca],
    );
    assert_setup_error(&out, &["offers AUTH XOAUTH2 only", "PLAIN or LOGIN"]);
}

/// HTTPS webhooks trust a private CA through --ca, and refuse what does
/// not verify at once (exit 2, nothing journalled).
#[test]
fn https_webhook_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, ca, commands) = tls_setup(dir.path());
    let good = cert_args(&pki, "good");
    let server = Server::http(dir.path(), &["--tls", &good[0], &good[1]]);
    let url = format!("https://localhost:{}/hooks", server.port);
    let send = |url: &str, extra: &[&str]| {
        // A state of its own each time: a journal that has the commands
        // done would not connect at all.
        static RUN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        cmd("alert")
            .args(["--send", url, "--backoff", "1s", "--state"])
            .arg(dir.path().join(format!("state-{n}")))
            .args(extra)
            .write_stdin(commands.clone())
            .output()
            .unwrap()
    };
    // Without --ca the public roots do not know the private CA.
    assert_setup_error(&send(&url, &[]), &["issuer", "--ca FILE"]);
    assert!(server.received().is_empty());
    let out = send(&url, &["--ca", &ca]);
    assert_success(&out);
    assert_eq!(server.received().len(), 2);
    assert!(json_lines(&out.stdout)
        .iter()
        .all(|o| o["data"]["status"] == "sent"));
    // Each certificate failure, over HTTPS too.
    for (stem, words) in [
        ("expired", &["has expired"][..]),
        ("wrongname", &["not valid for the name", "localhost"][..]),
        ("rogue", &["issuer"][..]),
    ] {
        let cert = cert_args(&pki, stem);
        let server = Server::http(dir.path(), &["--tls", &cert[0], &cert[1]]);
        let url = format!("https://localhost:{}/hooks", server.port);
        let started = Instant::now();
        assert_setup_error(&send(&url, &["--ca", &ca]), words);
        assert!(started.elapsed() < Duration::from_secs(5), "retried");
        assert!(server.received().is_empty());
    }
    // --ca means nothing for plain http://: refused, not ignored.
    let out = cmd("alert")
        .args(["--send", "http://127.0.0.1:9/", "--ca", &ca])
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn bad_certificates_stop_the_executor_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (pki, ca, commands) = tls_setup(dir.path());
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("expired", &["--ca", &ca], &["has expired"]),
        (
            "wrongname",
            &["--ca", &ca],
            &["not valid for the name", "localhost"],
        ),
        ("rogue", &["--ca", &ca], &["issuer", "--ca FILE"]),
        // A private CA's certificate, without --ca: the public roots do not know it.
        ("good", &[], &["issuer", "--ca FILE"]),
    ];
    for (stem, extra, words) in cases {
        let cert = cert_args(&pki, stem);
        for implicit in [false, true] {
            let (flag, scheme) = if implicit {
                ("--implicit-tls", "smtps")
            } else {
                ("--starttls", "smtp")
            };
            let server = Server::smtp(dir.path(), &[flag, &cert[0], &cert[1]]);
            let state = dir.path().join(format!("{stem}-{scheme}"));
            let started = Instant::now();
            let out = cmd("alert")
                .args(["--send", &format!("{scheme}://localhost:{}", server.port)])
                .args(["--from", "alerts@example.com", "--backoff", "1s"])
                .arg("--state")
                .arg(&state)
                .args(extra)
                .write_stdin(commands.clone())
                .output()
                .unwrap();
            assert_setup_error(&out, words);
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "retried: {:?}",
                started.elapsed()
            );
            assert!(server.received().is_empty());
            let journal = std::fs::read_to_string(state.join("journal")).unwrap_or_default();
            assert!(!journal.lines().any(|l| l.starts_with("F ")), "{journal}");
        }
    }
    // A CA file that is not PEM: refused at start-up, before any input.
    let not_pem = write(dir.path(), "ca.txt", "this is not a certificate\n");
    let out = cmd("alert")
        .args([
            "--send",
            "smtp://localhost:9",
            "--from",
            "alerts@example.com",
            "--ca",
        ])
        .arg(&not_pem)
        .write_stdin("")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr_of(&out).contains("holds no PEM certificate"),
        "{}",
        stderr_of(&out)
    );
}
