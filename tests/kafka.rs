//! log-append and log-tail on a real Kafka-compatible broker (issue 13):
//! `kafka://HOST:PORT/TOPIC` wherever a log directory goes, with the same
//! flags and meaning. Each test binary starts one nisshi broker on 127.0.0.1
//! (tests/common::Broker; its own for the tests that stop a broker), and
//! every test a topic of its own. kcat, on a librdkafka of its own, checks
//! what is on the topic independently of the backend under test.
//!
//! Without nisshi (or kcat) installed the tests skip, saying so; under
//! scripts/test.sh they fail instead.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::{bin, cmd, lines, nile_events, shared_broker, topic, Broker};
use serde_json::Value;

/// No command of a test runs longer than this: a hang fails, it never blocks.
const LIMIT: Duration = Duration::from_secs(90);

/// The shared broker, or a skip.
macro_rules! broker {
    () => {
        require!(shared_broker(), "nisshi")
    };
}

/// Runs `TOOL LOCATION ARGS…` with `input` on stdin, in the temporary
/// directory (a build without Kafka makes the URL a directory there).
fn run(tool: &str, location: &str, args: &[&str], input: &[u8]) -> Output {
    cmd(tool)
        .current_dir(std::env::temp_dir())
        .arg(location)
        .args(args)
        .write_stdin(input.to_vec())
        .timeout(LIMIT)
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `log-append LOCATION ARGS…`, which must exit 0; its stdout.
fn append(location: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let out = run("log-append", location, args, input);
    assert!(
        out.status.success(),
        "log-append {location} {args:?}: {:?}\n{}",
        out.status,
        stderr(&out)
    );
    out.stdout
}

/// `log-tail LOCATION ARGS…`, which must exit 0; its stdout.
fn tail(location: &str, args: &[&str]) -> Vec<u8> {
    let out = run("log-tail", location, args, b"");
    assert!(
        out.status.success(),
        "log-tail {location} {args:?}: {:?}\n{}",
        out.status,
        stderr(&out)
    );
    out.stdout
}

/// A new topic on the shared broker with `partitions` partitions, made by
/// log-append from no input; its URL.
fn new_topic(broker: &Broker, name: &str, partitions: u32) -> String {
    let url = broker.url(&topic(name));
    append(&url, &["--partitions", &partitions.to_string()], b"");
    url
}

/// One event a line, as text, sorted: the same events whatever the order
/// partitions were read in (text, so that a failure shows them readably).
fn sorted_lines(bytes: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = lines(bytes)
        .into_iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    v.sort();
    v
}

/// An event with its log position, as log-tail --with-position writes it.
#[derive(Debug)]
struct Positioned {
    log: String,
    partition: u32,
    offset: u64,
    time: i64,
    /// The event as it was appended: the line without the position member.
    event: Vec<u8>,
}

/// Splits a `--with-position` line into its position and the event as it
/// was appended (the member is the first, and "time" its last field).
fn positioned(line: &[u8]) -> Positioned {
    let text = std::str::from_utf8(line).unwrap();
    assert!(
        text.starts_with(r#"{"unilog":{"#),
        "no position first: {text}"
    );
    let value: Value = serde_json::from_str(text).unwrap();
    let member = &value["unilog"];
    let time_at = text.find(r#""time":"#).unwrap() + r#""time":"#.len();
    let end = time_at + text[time_at..].find('}').unwrap();
    let rest = &text[end + 1..];
    let event = match rest.strip_prefix(',') {
        Some(rest) => format!("{{{rest}"),
        None => "{}".to_string(),
    };
    Positioned {
        log: member["log"].as_str().unwrap().to_string(),
        partition: member["partition"].as_u64().unwrap() as u32,
        offset: member["offset"].as_u64().unwrap(),
        time: member["time"].as_i64().unwrap(),
        event: event.into_bytes(),
    }
}

/// `kcat ARGS…` with `input`, which must exit 0; its stdout.
fn kcat(kcat: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let out = assert_cmd::Command::new(kcat)
        .args(args)
        .write_stdin(input.to_vec())
        .timeout(LIMIT)
        .output()
        .unwrap();
    assert!(out.status.success(), "kcat {args:?}: {}", stderr(&out));
    out.stdout
}

/// The topic name of a `kafka://` URL.
fn topic_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// A running process whose stdout lines arrive on a channel; killed when
/// dropped.
struct Running {
    child: Child,
    lines: Receiver<Vec<u8>>,
}

impl Running {
    /// Starts `TOOL LOCATION ARGS…` with stdin piped (see [`Running::send`]).
    fn start(tool: &str, location: &str, args: &[&str]) -> Running {
        let mut child = Command::new(bin(tool))
            .current_dir(std::env::temp_dir())
            .arg(location)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n') {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Writes `bytes` to its stdin and flushes.
    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// The next line within `wait`, if one comes.
    fn line(&self, wait: Duration) -> Option<Vec<u8>> {
        self.lines.recv_timeout(wait).ok()
    }

    /// Closes stdin and waits (at most [`LIMIT`]) for the process to end;
    /// its exit code (None: killed) and stderr.
    fn finish(mut self) -> (Option<i32>, String) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break self.child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(self.child.stderr.as_mut().unwrap(), &mut err).unwrap();
        (status.code(), err)
    }
}

impl Running {
    /// Kills it (SIGKILL) and returns the lines it wrote that were not read.
    fn kill(mut self) -> Vec<Vec<u8>> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            rest.push(line);
        }
        rest
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Events whose bytes a JSON re-encoder would change: spacing, escapes,
/// member order, unicode, numbers, and a large one.
fn awkward_events() -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(b"{\"b\" : 1,  \"a\":[ 1.50, -0e0, 1E3 ],\"s\":\"\\u00e9 \xc3\xa9 \\\"q\\\" \\/ \xf0\x9f\x8e\x89\"}\n");
    v.extend_from_slice(b"{}\n");
    v.extend_from_slice(b"{\"dup\":1,\"dup\":2,\"nested\":{\"deep\":[{},[],null,true]}}\n");
    let big = "x".repeat(200_000);
    v.extend_from_slice(format!("{{\"big\":\"{big}\"}}\n").as_bytes());
    v
}

// ---- the test broker itself

#[test]
fn the_test_broker_takes_kcat_produce_and_consume() {
    let broker = broker!();
    let kcat_path = require!(common::kcat(), "kcat");
    let t = topic("fixture");
    let addr = broker.addr();
    kcat(
        &kcat_path,
        &["-P", "-b", &addr, "-t", &t, "-p", "0"],
        b"one\ntwo\n",
    );
    let got = kcat(
        &kcat_path,
        &[
            "-C",
            "-b",
            &addr,
            "-t",
            &t,
            "-p",
            "0",
            "-o",
            "beginning",
            "-e",
            "-q",
            "-f",
            "%o %s\n",
        ],
        b"",
    );
    assert_eq!(String::from_utf8(got).unwrap(), "0 one\n1 two\n");
}

// ---- round trip, keys, --partition, --offsets

#[test]
fn a_round_trip_through_a_topic_is_byte_for_byte() {
    let broker = broker!();
    let url = broker.url(&topic("round-trip"));
    let mut events = nile_events(2000, 7);
    events.extend_from_slice(&awkward_events());
    append(&url, &["--partitions", "1"], &events);
    // One partition: the same bytes in the same order, by default from the
    // beginning, and log-tail ends at the end without --follow.
    assert_eq!(tail(&url, &[]), events);
    assert_eq!(tail(&url, &["--from", "beginning"]), events);
    let first: Vec<u8> = lines(&events)[..10]
        .iter()
        .flat_map(|l| [*l, b"\n"].concat())
        .collect();
    assert_eq!(tail(&url, &["--count", "10"]), first);
}

#[test]
fn a_round_trip_over_several_partitions_keeps_every_event_once() {
    let broker = broker!();
    let url = broker.url(&topic("round-trip-3"));
    let events = nile_events(3000, 8);
    append(&url, &["--partitions", "3"], &events);
    let out = tail(&url, &[]);
    assert_eq!(sorted_lines(&out), sorted_lines(&events));
    // Events without a key go round: every partition gets some.
    for p in 0..3 {
        let part = tail(&url, &["--partition", &p.to_string()]);
        assert!(!part.is_empty(), "partition {p} is empty");
    }
}

#[test]
fn keys_land_on_the_same_partitions_as_in_the_file_log() {
    let broker = broker!();
    let dir = tempfile::tempdir().unwrap();
    let file_log = dir.path().join("keyed.log");
    let file_log = file_log.to_str().unwrap();
    let url = broker.url(&topic("keyed"));
    let events = nile_events(2000, 9);
    let args = ["--key", ".data.shopper.id", "--partitions", "5"];
    append(file_log, &args, &events);
    append(&url, &args, &events);
    let mut used = 0;
    for p in 0..5 {
        let p = p.to_string();
        let in_file = tail(file_log, &["--partition", &p]);
        let in_kafka = tail(&url, &["--partition", &p]);
        assert_eq!(
            String::from_utf8_lossy(&in_kafka),
            String::from_utf8_lossy(&in_file),
            "partition {p}"
        );
        used += usize::from(!in_file.is_empty());
    }
    assert!(used >= 3, "the keys spread over {used} partitions only");
}

#[test]
fn append_offsets_and_partition_say_where_each_event_is() {
    let broker = broker!();
    let url = new_topic(broker, "offsets", 3);
    let events = nile_events(20, 10);
    let printed = append(&url, &["--partition", "2", "--offsets"], &events);
    let printed: Vec<Value> = lines(&printed)
        .iter()
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(printed.len(), 20);
    for (i, p) in printed.iter().enumerate() {
        assert_eq!(p, &serde_json::json!({"partition": 2, "offset": i}));
    }
    assert_eq!(tail(&url, &["--partition", "2"]), events);
    assert!(tail(&url, &["--partition", "0"]).is_empty());
    // A second append goes on from there.
    let more = append(
        &url,
        &["--partition", "2", "--offsets"],
        &nile_events(1, 11),
    );
    assert_eq!(more, b"{\"partition\":2,\"offset\":20}\n");
}

#[test]
fn partitions_of_an_existing_topic_must_match() {
    let broker = broker!();
    let url = new_topic(broker, "fixed", 2);
    let out = run(
        "log-append",
        &url,
        &["--partitions", "3"],
        &nile_events(1, 1),
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains('2') && err.contains('3'), "{err}");
    assert!(tail(&url, &[]).is_empty(), "nothing appended");
}

#[test]
fn bad_lines_go_into_a_failure_topic() {
    let broker = broker!();
    let url = new_topic(broker, "good", 1);
    let bad = new_topic(broker, "bad", 1);
    let input = b"{\"ok\":1}\nnot json\n{\"ok\":2}\n";
    let out = run("log-append", &url, &["--bad", &bad], input);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(tail(&url, &[]), b"{\"ok\":1}\n{\"ok\":2}\n");
    let failures = tail(&bad, &[]);
    let failures = lines(&failures);
    assert_eq!(failures.len(), 1);
    let failure: Value = serde_json::from_slice(failures[0]).unwrap();
    assert_eq!(failure["schema"], "iglu:io.unilog/failure/jsonschema/1-0-0");
    assert_eq!(failure["data"]["original"], "not json");
    assert_eq!(failure["data"]["input"]["line"], 2);
}

// ---- groups

#[test]
fn a_group_resumes_without_gap_or_duplicate_across_restarts() {
    let broker = broker!();
    let url = broker.url(&topic("group"));
    let first = nile_events(300, 12);
    append(&url, &["--partitions", "3"], &first);
    let mut delivered = Vec::new();
    delivered.extend(tail(&url, &["--group", "g", "--count", "100"]));
    delivered.extend(tail(&url, &["--group", "g", "--count", "1"]));
    // New events between runs are read too, once.
    let second = nile_events(150, 13);
    append(&url, &[], &second);
    delivered.extend(tail(&url, &["--group", "g", "--count", "120"]));
    delivered.extend(tail(&url, &["--group", "g"]));
    assert!(tail(&url, &["--group", "g"]).is_empty(), "all delivered");
    let all = [first, second].concat();
    assert_eq!(lines(&delivered).len(), lines(&all).len(), "no duplicate");
    assert_eq!(sorted_lines(&delivered), sorted_lines(&all), "no gap");
    // Another group starts from the beginning, whatever g did.
    assert_eq!(
        sorted_lines(&tail(&url, &["--group", "other"])),
        sorted_lines(&all)
    );
}

#[test]
fn a_group_follower_killed_and_restarted_leaves_no_gap() {
    let broker = broker!();
    let url = broker.url(&topic("group-kill"));
    let first = nile_events(400, 14);
    append(&url, &["--partitions", "2"], &first);
    let follower = Running::start(
        "log-tail",
        &url,
        &["--group", "k", "--follow", "--line-buffered"],
    );
    let mut got = Vec::new();
    while got.len() < 400 {
        got.push(
            follower
                .line(Duration::from_secs(30))
                .expect("the follower delivers"),
        );
    }
    // Idle, it has committed what it delivered; then more arrives and it is
    // killed without warning, perhaps in the middle of delivering it.
    std::thread::sleep(Duration::from_secs(2));
    let second = nile_events(200, 15);
    append(&url, &[], &second);
    std::thread::sleep(Duration::from_millis(50));
    got.extend(follower.kill());
    let rest = tail(&url, &["--group", "k"]);
    let mut seen: Vec<String> = got
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .chain(sorted_lines(&rest))
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        sorted_lines(&[first, second].concat()),
        "at least once: every event"
    );
    // Positions were committed as events were delivered, not only at exit.
    assert!(
        lines(&rest).len() <= 200,
        "the restart read {} events again",
        lines(&rest).len()
    );
}

/// `log-tail LOCATION --positions [--group G]`, read from its table: each
/// partition's numbers after its number (start, end, events; with a group
/// start, end, position, lag), and the total lag of a group.
fn positions(location: &str, group: Option<&str>) -> (BTreeMap<u32, Vec<u64>>, Option<u64>) {
    let mut args = vec!["--positions"];
    args.extend(group.iter().flat_map(|g| ["--group", g]));
    let table = String::from_utf8(tail(location, &args)).unwrap();
    let mut rows = BTreeMap::new();
    let mut total = None;
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split('\t').collect();
    match group {
        Some(g) => assert_eq!(
            header,
            ["partition", "start", "end", &format!("group:{g}"), "lag"],
            "{table}"
        ),
        None => assert_eq!(header, ["partition", "start", "end", "events"], "{table}"),
    }
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields[0] == "total" {
            total = Some(fields.last().unwrap().parse().unwrap());
            continue;
        }
        let numbers: Vec<u64> = fields.iter().map(|f| f.parse().unwrap()).collect();
        rows.insert(numbers[0] as u32, numbers[1..].to_vec());
    }
    (rows, total)
}

/// The sum of the partitions' end offsets.
fn end_total(location: &str) -> u64 {
    positions(location, None).0.values().map(|r| r[1]).sum()
}

#[test]
fn positions_show_end_offsets_and_the_group_position_and_lag() {
    let broker = broker!();
    let url = new_topic(broker, "positions", 2);
    append(&url, &["--partition", "0"], &nile_events(6, 15));
    append(&url, &["--partition", "1"], &nile_events(4, 16));
    let (rows, _) = positions(&url, None);
    assert_eq!(
        rows,
        BTreeMap::from([(0, vec![0, 6, 6]), (1, vec![0, 4, 4])])
    );
    // The group reads 3 from partition 0 and all of partition 1.
    tail(
        &url,
        &["--group", "lag", "--partition", "0", "--count", "3"],
    );
    tail(&url, &["--group", "lag", "--partition", "1"]);
    let (rows, total) = positions(&url, Some("lag"));
    assert_eq!(
        rows,
        BTreeMap::from([(0, vec![0, 6, 3, 3]), (1, vec![0, 4, 4, 0])])
    );
    assert_eq!(total, Some(3));
    // A group the broker does not know is an error, not a lag of everything.
    let out = run(
        "log-tail",
        &url,
        &["--positions", "--group", "never-used"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("never-used"), "{}", stderr(&out));
}

#[test]
fn reset_to_moves_the_group() {
    let broker = broker!();
    let url = new_topic(broker, "reset", 1);
    let early = nile_events(10, 17);
    append(&url, &[], &early);
    std::thread::sleep(Duration::from_millis(1500));
    let boundary = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(500));
    let late = nile_events(5, 18);
    append(&url, &[], &late);
    let all = [early.clone(), late.clone()].concat();
    assert_eq!(tail(&url, &["--group", "r"]), all);
    assert!(tail(&url, &["--group", "r"]).is_empty());

    tail(&url, &["--group", "r", "--reset-to", "beginning"]);
    assert_eq!(tail(&url, &["--group", "r"]), all);
    tail(&url, &["--group", "r", "--reset-to", "12"]);
    assert_eq!(lines(&tail(&url, &["--group", "r"])), lines(&all)[12..]);
    let at = format!("@{boundary}");
    tail(&url, &["--group", "r", "--reset-to", &at]);
    assert_eq!(tail(&url, &["--group", "r"]), late);
    tail(&url, &["--group", "r", "--reset-to", "beginning"]);
    tail(&url, &["--group", "r", "--reset-to", "end"]);
    assert!(tail(&url, &["--group", "r"]).is_empty());
    assert_eq!(positions(&url, Some("r")).0[&0], [0, 15, 15, 0]);
}

// ---- --from, --follow, stopping at the end

#[test]
fn every_from_form() {
    let broker = broker!();
    let url = new_topic(broker, "from", 2);
    let a0 = nile_events(8, 19);
    let a1 = nile_events(4, 20);
    append(&url, &["--partition", "0"], &a0);
    append(&url, &["--partition", "1"], &a1);
    std::thread::sleep(Duration::from_millis(1500));
    let boundary = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(500));
    let b0 = nile_events(3, 21);
    append(&url, &["--partition", "0"], &b0);
    let p0 = [a0.clone(), b0.clone()].concat();
    let on = |p: &str, from: &str| tail(&url, &["--partition", p, "--from", from]);

    assert_eq!(on("0", "beginning"), p0);
    assert!(on("0", "end").is_empty());
    assert!(tail(&url, &["--from", "end"]).is_empty());
    assert_eq!(lines(&on("0", "5")), lines(&p0)[5..]);
    assert_eq!(lines(&on("1", "3")), lines(&a1)[3..]);
    assert!(on("1", "4").is_empty(), "OFFSET at the end");
    assert_eq!(lines(&on("0", "-2")), lines(&p0)[9..]);
    assert_eq!(on("1", "-10"), a1, "-N longer than the partition");
    // -N applies to each partition.
    let mut last_two: Vec<String> = [&lines(&p0)[9..], &lines(&a1)[2..]]
        .concat()
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    last_two.sort();
    assert_eq!(sorted_lines(&tail(&url, &["--from", "-2"])), last_two);
    // @TIME by the broker's offsets for times: the first event at or after.
    let at = format!("@{boundary}");
    assert_eq!(on("0", &at), b0);
    assert!(on("1", &at).is_empty());
    assert_eq!(on("0", "@-1h"), p0);
    assert!(tail(&url, &["--from", "@now"]).is_empty());
    // --from with --group applies to partitions the group has not committed.
    assert_eq!(
        tail(&url, &["--partition", "0", "--group", "f", "--from", "-1"]),
        [lines(&b0)[2], b"\n"].concat()
    );
    assert!(tail(
        &url,
        &["--partition", "0", "--group", "f", "--from", "beginning"]
    )
    .is_empty());
    // A --from that means nothing is a usage error.
    let out = run("log-tail", &url, &["--from", "yesterday"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn with_position_gives_each_events_partition_offset_and_time() {
    let broker = broker!();
    let url = broker.url(&topic("with-position"));
    let events = nile_events(500, 22);
    let before = jiff::Timestamp::now().as_millisecond();
    append(
        &url,
        &["--partitions", "3", "--key", ".data.shopper.id"],
        &events,
    );
    let after = jiff::Timestamp::now().as_millisecond();
    let out = tail(&url, &["--with-position"]);
    let mut next: BTreeMap<u32, u64> = BTreeMap::new();
    let mut plain = Vec::new();
    let mut logs = std::collections::BTreeSet::new();
    for line in lines(&out) {
        let p = positioned(line);
        let expected = next.entry(p.partition).or_default();
        assert_eq!(
            p.offset, *expected,
            "partition {} in order from 0",
            p.partition
        );
        *expected += 1;
        assert!(
            before - 1000 <= p.time && p.time <= after + 1000,
            "time {} not in [{before}, {after}]",
            p.time
        );
        logs.insert(p.log);
        plain.extend(p.event);
        plain.push(b'\n');
    }
    assert_eq!(
        sorted_lines(&plain),
        sorted_lines(&events),
        "the events, unchanged"
    );
    assert_eq!(logs.len(), 1, "one log id: {logs:?}");
    // Each position names where log-tail --partition --from finds the event.
    let one = positioned(lines(&out)[7]);
    let again = tail(
        &url,
        &[
            "--partition",
            &one.partition.to_string(),
            "--from",
            &one.offset.to_string(),
            "--count",
            "1",
        ],
    );
    assert_eq!(again, [&one.event[..], b"\n"].concat());
}

#[test]
fn with_position_feeds_window_as_the_file_log_does() {
    let broker = broker!();
    let dir = tempfile::tempdir().unwrap();
    let file_log = dir.path().join("w.log");
    let file_log = file_log.to_str().unwrap();
    let url = broker.url(&topic("window"));
    let events = nile_events(3000, 23);
    let args = ["--partitions", "2", "--key", ".data.shopper.id"];
    append(file_log, &args, &events);
    append(&url, &args, &events);
    let window = |log: &str, state: &str| {
        let script = format!(
            "log-tail '{log}' --with-position | window --tumbling 1m --key .data.shopper.id \
             --time .data.timestamp --agg n=count --state '{}' --close-at-end",
            // A path with a directory: window cannot sync the directory of
            // a bare relative name (window bug, reported).
            dir.path().join(state).display()
        );
        let out = common::shell(&script, dir.path());
        assert!(out.status.success(), "{script}: {}", stderr(&out));
        let results: Vec<Value> = lines(&out.stdout)
            .iter()
            .map(|l| {
                let mut v: Value = serde_json::from_slice(l).unwrap();
                // The results' own numbering names the window job, not the log.
                v.as_object_mut().unwrap().remove("unilog");
                v
            })
            .collect();
        results
    };
    let from_file = window(file_log, "file.state");
    let from_kafka = window(&url, "kafka.state");
    assert!(from_file.len() > 10, "{} results", from_file.len());
    assert_eq!(from_kafka, from_file);
}

#[test]
fn follow_delivers_new_events_promptly() {
    let broker = broker!();
    let url = new_topic(broker, "follow", 1);
    let follower = Running::start("log-tail", &url, &["--follow", "--line-buffered"]);
    let mut writer = Running::start("log-append", &url, &["--offsets"]);
    let events = nile_events(21, 24);
    let events = lines(&events);
    let mut latencies = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let sent = Instant::now();
        writer.send(&[event, &b"\n"[..]].concat());
        let got = follower
            .line(Duration::from_secs(30))
            .unwrap_or_else(|| panic!("event {i} not delivered within 30 s"));
        assert_eq!(&got[..], *event);
        // The first includes both clients' start.
        if i > 0 {
            latencies.push(sent.elapsed());
        }
        writer.line(Duration::from_secs(10)).expect("its offset");
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    eprintln!(
        "follow latency (append to delivery): median {median:?}, max {:?}",
        latencies.last().unwrap()
    );
    assert!(
        median < Duration::from_millis(1000),
        "median latency {median:?}"
    );
    let (code, err) = writer.finish();
    assert_eq!(code, Some(0), "{err}");
}

#[test]
fn from_end_with_follow_delivers_only_what_comes_after() {
    let broker = broker!();
    let url = new_topic(broker, "follow-end", 2);
    let old = nile_events(50, 25);
    append(&url, &[], &old);
    let follower = Running::start(
        "log-tail",
        &url,
        &["--from", "end", "--follow", "--line-buffered"],
    );
    // Appends one at a time until the follower, which says nothing when it
    // is ready, shows the first of them: it then gets each one after.
    let new = nile_events(200, 26);
    let new = lines(&new);
    let mut sent = 0;
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(
            sent < new.len(),
            "the follower delivered none of {sent} new events"
        );
        append(&url, &["--partition", "0"], &[new[sent], b"\n"].concat());
        sent += 1;
        if let Some(line) = follower.line(Duration::from_millis(500)) {
            got.push(line);
        }
    }
    let k = new
        .iter()
        .position(|e| *e == &got[0][..])
        .expect("a new event first");
    while got.len() < sent - k {
        got.push(follower.line(Duration::from_secs(30)).expect("the rest"));
    }
    assert_eq!(got.iter().map(|l| &l[..]).collect::<Vec<_>>(), new[k..sent]);
    assert!(
        follower.line(Duration::from_millis(500)).is_none(),
        "nothing old"
    );
}

/// Keeps appending to `url` (a few hundred events a second) until dropped.
fn busy_writer(url: &str) -> Running {
    let mut writer = Running::start("log-append", url, &[]);
    let mut stdin = writer.child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let events = nile_events(20_000, 27);
        for chunk in events.chunks(4096).cycle() {
            if stdin.write_all(chunk).and_then(|_| stdin.flush()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    writer
}

#[test]
fn without_follow_log_tail_stops_at_the_ends_it_saw_on_a_busy_topic() {
    let broker = broker!();
    let url = new_topic(broker, "busy", 2);
    append(&url, &[], &nile_events(1000, 28));
    let _writer = busy_writer(&url);
    std::thread::sleep(Duration::from_secs(1));
    let at_start = end_total(&url);
    for args in [&[][..], &["--group", "busy"][..]] {
        let before = end_total(&url);
        let started = Instant::now();
        let out = run("log-tail", &url, args, b"");
        let took = started.elapsed();
        assert!(out.status.success(), "log-tail {args:?}: {}", stderr(&out));
        let after = end_total(&url);
        let n = lines(&out.stdout).len() as u64;
        assert!(
            before <= n && n <= after,
            "{args:?}: {n} events, ends {before} before and {after} after"
        );
        assert!(took < Duration::from_secs(30), "{args:?} took {took:?}");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(end_total(&url) > at_start, "the writer kept appending");
    // The group committed what it delivered, no more.
    let (_, lag) = positions(&url, Some("busy"));
    assert!(lag.unwrap() > 0, "lag {lag:?}");
}

// ---- failures: a broker stopped, unreachable, a missing topic

/// What an append cut off by its broker did.
struct CutOff {
    /// The positions --offsets printed: the events acknowledged, in order.
    acked: Vec<(u32, u64)>,
    /// The events it was given, in order.
    events: Vec<Vec<u8>>,
    /// Its exit code (None: killed by the test's limit).
    code: Option<i32>,
    stderr: String,
    /// From the broker's stop to log-append's end.
    took: Duration,
}

/// Appends to a topic of `broker` from a writer that keeps sending, and
/// after 2000 acknowledged events treats the broker with `stop`.
fn append_until_stopped(broker: &mut Broker, url: &str, stop: impl FnOnce(&mut Broker)) -> CutOff {
    let mut writer = Running::start("log-append", url, &["--offsets", "--timeout", "3s"]);
    let events = nile_events(100_000, 29);
    let events: Vec<Vec<u8>> = lines(&events).into_iter().map(<[u8]>::to_vec).collect();
    let mut stdin = writer.child.stdin.take().unwrap();
    let to_send = events.clone();
    std::thread::spawn(move || {
        for event in to_send.chunks(50) {
            let chunk: Vec<u8> = event
                .iter()
                .flat_map(|e| [&e[..], b"\n"].concat())
                .collect();
            if stdin.write_all(&chunk).and_then(|_| stdin.flush()).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let mut acked = Vec::new();
    let parse = |l: Vec<u8>| {
        let v: Value = serde_json::from_slice(&l).unwrap();
        (
            v["partition"].as_u64().unwrap() as u32,
            v["offset"].as_u64().unwrap(),
        )
    };
    while acked.len() < 2000 {
        acked.push(parse(writer.line(Duration::from_secs(30)).unwrap_or_else(
            || panic!("acknowledged {} only:\n{}", acked.len(), broker.log()),
        )));
    }
    stop(broker);
    let stopped = Instant::now();
    let (code, err) = {
        // Offsets printed after the stop are acknowledged too.
        let deadline = Instant::now() + LIMIT;
        loop {
            match writer.line(Duration::from_millis(100)) {
                Some(l) => acked.push(parse(l)),
                None if writer.child.try_wait().unwrap().is_some() || Instant::now() > deadline => {
                    break
                }
                None => {}
            }
        }
        while let Some(l) = writer.line(Duration::from_millis(100)) {
            acked.push(parse(l));
        }
        writer.finish()
    };
    CutOff {
        acked,
        events,
        code,
        stderr: err,
        took: stopped.elapsed(),
    }
}

#[test]
fn a_broker_frozen_in_the_middle_of_an_append_loses_no_acknowledged_event() {
    let nisshi = require!(common::nisshi(), "nisshi");
    let mut broker = Broker::start(&nisshi);
    let url = broker.url("frozen");
    append(&url, &["--partitions", "2"], b"");
    let CutOff {
        acked,
        events,
        code,
        stderr: err,
        took,
    } = append_until_stopped(&mut broker, &url, |b| b.signal(libc::SIGSTOP));
    broker.signal(libc::SIGCONT);
    assert_eq!(code, Some(2), "exit status; stderr: {err}");
    assert!(
        err.contains(&broker.addr()),
        "the message names the broker: {err}"
    );
    assert!(
        took < Duration::from_secs(30),
        "gave up after {took:?} (--timeout 3s)"
    );
    assert!(
        acked.len() < events.len(),
        "it stopped before the end of its input"
    );
    // Every acknowledged event is in the topic, at the offset printed for it.
    let out = tail(&url, &["--with-position"]);
    let stored: BTreeMap<(u32, u64), Vec<u8>> = lines(&out)
        .into_iter()
        .map(|l| {
            let p = positioned(l);
            ((p.partition, p.offset), p.event)
        })
        .collect();
    for (i, at) in acked.iter().enumerate() {
        let got = stored
            .get(at)
            .unwrap_or_else(|| panic!("acknowledged event {i} at {at:?} is missing"));
        assert_eq!(
            String::from_utf8_lossy(got),
            String::from_utf8_lossy(&events[i]),
            "event {i} at {at:?}"
        );
    }
}

#[test]
fn a_broker_killed_in_the_middle_of_an_append_is_a_clear_error() {
    let nisshi = require!(common::nisshi(), "nisshi");
    let mut broker = Broker::start(&nisshi);
    let url = broker.url("killed");
    append(&url, &["--partitions", "1"], b"");
    let addr = broker.addr();
    let CutOff {
        code,
        stderr: err,
        took,
        ..
    } = append_until_stopped(&mut broker, &url, Broker::kill);
    assert_eq!(code, Some(2), "exit status; stderr: {err}");
    assert!(err.contains(&addr), "the message names the broker: {err}");
    assert!(err.starts_with("log-append: "), "{err}");
    assert!(
        took < Duration::from_secs(30),
        "gave up after {took:?} (--timeout 3s)"
    );
}

/// The address of a port on 127.0.0.1 that nothing listens on.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    addr
}

#[test]
fn an_unreachable_broker_fails_within_the_timeout_naming_the_address() {
    let addr = closed_port();
    let other = closed_port();
    let url = format!("kafka://{addr},{other}/t");
    let cases: [(&str, &[&str]); 5] = [
        ("log-append", &["--timeout", "2s"]),
        ("log-tail", &["--timeout", "2s"]),
        ("log-tail", &["--timeout", "2s", "--follow"]),
        ("log-tail", &["--timeout", "2s", "--group", "g"]),
        ("log-tail", &["--timeout", "2s", "--positions"]),
    ];
    for (tool, args) in cases {
        let started = Instant::now();
        let out = run(tool, &url, args, b"{\"a\":1}\n");
        let took = started.elapsed();
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{tool} {args:?}: {err}");
        assert!(err.contains(&addr), "{tool} {args:?} names {addr}: {err}");
        assert!(err.starts_with(&format!("{tool}: ")), "{err}");
        assert!(
            took < Duration::from_secs(15),
            "{tool} {args:?} took {took:?}"
        );
    }
    // The default timeout is a few seconds, not a hang.
    let started = Instant::now();
    let out = run("log-tail", &format!("kafka://{addr}/t"), &[], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_missing_topic_fails_naming_it_and_is_not_created() {
    let broker = broker!();
    let url = broker.url(&topic("missing"));
    let name = topic_of(&url).to_string();
    for (tool, args) in [
        ("log-tail", &[][..]),
        ("log-tail", &["--follow"][..]),
        ("log-tail", &["--positions"][..]),
        ("log-append", &[][..]),
    ] {
        let started = Instant::now();
        let out = run(tool, &url, args, b"{\"a\":1}\n");
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{tool} {args:?}: {err}");
        assert!(
            err.contains(&name),
            "{tool} {args:?} names the topic: {err}"
        );
        assert!(
            err.contains("--partitions") || tool == "log-tail",
            "{tool} says how to create it: {err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{tool} {args:?} took {:?}",
            started.elapsed()
        );
    }
    if let Some(kcat_path) = common::kcat() {
        let listing = kcat(&kcat_path, &["-L", "-b", &broker.addr(), "-J"], b"");
        let listing: Value = serde_json::from_slice(&listing).unwrap();
        let topics: Vec<&str> = listing["topics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["topic"].as_str().unwrap())
            .collect();
        assert!(
            !topics.contains(&name.as_str()),
            "{name} was created: {topics:?}"
        );
    }
}

// ---- kcat both ways

#[test]
fn kcat_reads_what_log_append_wrote_byte_for_byte() {
    let broker = broker!();
    let kcat_path = require!(common::kcat(), "kcat");
    let url = broker.url(&topic("to-kcat"));
    let mut events = nile_events(1000, 30);
    events.extend_from_slice(&awkward_events());
    append(&url, &["--partitions", "1"], &events);
    let got = kcat(
        &kcat_path,
        &[
            "-C",
            "-b",
            &broker.addr(),
            "-t",
            topic_of(&url),
            "-o",
            "beginning",
            "-e",
            "-q",
        ],
        b"",
    );
    assert_eq!(got, events);
    // With --key, kcat sees the same partitions as log-tail.
    let keyed = broker.url(&topic("to-kcat-keyed"));
    let events = nile_events(500, 31);
    append(
        &keyed,
        &["--partitions", "4", "--key", ".data.shopper.id"],
        &events,
    );
    for p in 0..4 {
        let p = p.to_string();
        let by_kcat = kcat(
            &kcat_path,
            &[
                "-C",
                "-b",
                &broker.addr(),
                "-t",
                topic_of(&keyed),
                "-p",
                &p,
                "-o",
                "beginning",
                "-e",
                "-q",
            ],
            b"",
        );
        assert_eq!(by_kcat, tail(&keyed, &["--partition", &p]), "partition {p}");
    }
}

#[test]
fn log_tail_reads_what_kcat_wrote_byte_for_byte() {
    let broker = broker!();
    let kcat_path = require!(common::kcat(), "kcat");
    let url = new_topic(broker, "from-kcat", 2);
    let mut events = nile_events(1000, 32);
    events.extend_from_slice(&awkward_events());
    // kcat -P: one message a line, to partition 1.
    kcat(
        &kcat_path,
        &["-P", "-b", &broker.addr(), "-t", topic_of(&url), "-p", "1"],
        &events,
    );
    assert_eq!(tail(&url, &["--partition", "1"]), events);
    assert!(tail(&url, &["--partition", "0"]).is_empty());
    // And with a group, positions included.
    assert_eq!(tail(&url, &["--group", "k"]), events);
    assert_eq!(positions(&url, Some("k")).1, Some(0));
}

// ---- security: TLS, with the settings from the environment

#[test]
fn tls_with_the_ca_from_the_environment() {
    let nisshi = require!(common::nisshi(), "nisshi");
    let dir = tempfile::tempdir().unwrap();
    let pki = common::test_pki(dir.path());
    let file = |name: &str| pki.join(name).display().to_string();
    let (cert, key) = (file("good.pem"), file("good.key"));
    let broker = Broker::start_with(&nisshi, &["--cert", &cert, "--key", &key]);
    let url = broker.url("secret");
    let events = nile_events(200, 33);
    let tls = |tool: &str, ca: &str, args: &[&str], input: &[u8]| {
        cmd(tool)
            .current_dir(dir.path())
            .arg(&url)
            .args(args)
            .env("UNILOG_KAFKA_SECURITY_PROTOCOL", "ssl")
            .env("UNILOG_KAFKA_TLS_CA", ca)
            .write_stdin(input.to_vec())
            .timeout(LIMIT)
            .output()
            .unwrap()
    };
    let out = tls(
        "log-append",
        &file("ca.pem"),
        &["--partitions", "1"],
        &events,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tls("log-tail", &file("ca.pem"), &[], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, events);
    // A broker whose certificate the CA did not sign is refused, clearly.
    let rogue = common::test_pki(&dir.path().join("other"));
    let started = Instant::now();
    let out = tls(
        "log-tail",
        &rogue.join("ca.pem").display().to_string(),
        &["--timeout", "3s"],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains(&broker.addr()), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // Plain text to a TLS listener fails too, never hangs.
    let out = run("log-tail", &url, &["--timeout", "3s"], b"");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
