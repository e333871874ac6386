//! Kafka behind the [`backend`](super::backend) interface, through
//! librdkafka (the `rdkafka` crate): a topic is a log, its partitions and
//! offsets are the log's. `kafka://HOST:PORT[,HOST:PORT...]/TOPIC`.
//!
//! - Appending: acks=all with the idempotent producer; an event counts as
//!   appended only once its delivery report has come back. Partitions are
//!   chosen here (murmur2 for keys, round robin otherwise), never by
//!   librdkafka, so a key lands on the same partition number as in a file
//!   log with as many partitions.
//! - Reading: partitions are assigned by hand (no subscription); without
//!   following, reading ends at the end offsets seen when it started.
//! - Groups: the broker's committed offsets of group.id NAME.
//! - Producer marks (exactly-once): the topic's records are the truth, as
//!   in the file log; there is no side file, so they are read from the
//!   topic when a producer first needs them.
//! - Security: from the environment or a file, never from argv (see
//!   [`client_config`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{Client, ClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::BaseProducer;
use rdkafka::producer::{BaseRecord, Producer as _, ProducerContext};
use rdkafka::{Offset, TopicPartitionList};

use super::backend::{
    scan_held, Flushed, LogConsumer, LogProducer, Polled, Position, ProducerMarks, Route, StartAt,
};
use super::partitioner::partition_for_key;
use super::read::Missed;
use super::record::Record;
use crate::position::{Held, PositionRef, Source};

/// How long an operation may take when neither `--timeout` nor
/// `UNILOG_KAFKA_TIMEOUT` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one wait for records lasts while following.
const POLL_WAIT: Duration = Duration::from_millis(100);

/// A `kafka://` address: the bootstrap brokers and the topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaUrl {
    /// The address as written.
    pub text: String,
    /// `HOST:PORT[,HOST:PORT...]`.
    pub bootstrap: String,
    /// The topic.
    pub topic: String,
}

impl KafkaUrl {
    /// Parses `kafka://HOST:PORT[,HOST:PORT...]/TOPIC`.
    pub fn parse(text: &str) -> Result<KafkaUrl> {
        let usage = "write kafka://HOST:PORT[,HOST:PORT...]/TOPIC";
        let rest = text
            .strip_prefix("kafka://")
            .ok_or_else(|| anyhow!("{text}: not a kafka:// address; {usage}"))?;
        let (bootstrap, topic) = rest
            .split_once('/')
            .ok_or_else(|| anyhow!("{text}: no topic; {usage}"))?;
        for broker in bootstrap.split(',') {
            let ok = broker
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if !ok {
                bail!("{text}: {broker:?} is not HOST:PORT; {usage}");
            }
        }
        let topic_ok = !topic.is_empty()
            && topic.len() <= 249
            && topic != "."
            && topic != ".."
            && topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if !topic_ok {
            bail!(
                "{text}: {topic:?} is not a topic name (1 to 249 letters, digits, '.', '_' or '-')"
            );
        }
        Ok(KafkaUrl {
            text: text.to_string(),
            bootstrap: bootstrap.to_string(),
            topic: topic.to_string(),
        })
    }
}

/// How a Kafka log is opened.
#[derive(Debug, Clone, Copy)]
pub struct KafkaOptions {
    /// Bounds connecting, metadata, delivery, commits.
    pub timeout: Duration,
}

impl KafkaOptions {
    /// `timeout`, or `UNILOG_KAFKA_TIMEOUT`, or [`DEFAULT_TIMEOUT`].
    pub fn new(timeout: Option<Duration>) -> Result<KafkaOptions> {
        let timeout = match timeout {
            Some(t) => t,
            None => match std::env::var("UNILOG_KAFKA_TIMEOUT") {
                Ok(text) => {
                    let ms = crate::cli::duration_arg(&text)
                        .map_err(|e| anyhow!("UNILOG_KAFKA_TIMEOUT={text:?}: {e}"))?;
                    Duration::from_millis(ms.max(1) as u64)
                }
                Err(_) => DEFAULT_TIMEOUT,
            },
        };
        Ok(KafkaOptions { timeout })
    }
}

/// The client settings for `url`: the brokers, then security from the
/// environment, then `UNILOG_KAFKA_CONFIG` (a file of librdkafka
/// `key=value` lines, applied last). Credentials never come from argv,
/// where other users of the machine could read them.
///
/// - `UNILOG_KAFKA_SECURITY_PROTOCOL`: plaintext, ssl, sasl_plaintext, sasl_ssl
/// - `UNILOG_KAFKA_SASL_MECHANISM`: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
/// - `UNILOG_KAFKA_USERNAME`, `UNILOG_KAFKA_PASSWORD` (or
///   `UNILOG_KAFKA_PASSWORD_FILE`, whose first line is the password)
/// - `UNILOG_KAFKA_TLS_CA`: a PEM file of CA certificates
pub fn client_config(url: &KafkaUrl, options: &KafkaOptions) -> Result<ClientConfig> {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &url.bootstrap);
    let ms = options.timeout.as_millis().to_string();
    cfg.set("socket.timeout.ms", &ms);
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mechanism = env("UNILOG_KAFKA_SASL_MECHANISM");
    let tls_ca = env("UNILOG_KAFKA_TLS_CA");
    let protocol = env("UNILOG_KAFKA_SECURITY_PROTOCOL").or_else(|| {
        match (mechanism.is_some(), tls_ca.is_some()) {
            (true, true) => Some("sasl_ssl".into()),
            (true, false) => Some("sasl_plaintext".into()),
            (false, true) => Some("ssl".into()),
            (false, false) => None,
        }
    });
    if let Some(p) = protocol {
        cfg.set("security.protocol", p);
    }
    if let Some(m) = mechanism {
        cfg.set("sasl.mechanism", m);
    }
    if let Some(user) = env("UNILOG_KAFKA_USERNAME") {
        cfg.set("sasl.username", user);
    }
    let password = match (
        env("UNILOG_KAFKA_PASSWORD"),
        env("UNILOG_KAFKA_PASSWORD_FILE"),
    ) {
        (Some(p), _) => Some(p),
        (None, Some(file)) => Some(
            std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read UNILOG_KAFKA_PASSWORD_FILE {file}"))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        (None, None) => None,
    };
    if let Some(p) = password {
        cfg.set("sasl.password", p);
    }
    if let Some(ca) = tls_ca {
        cfg.set("ssl.ca.location", ca);
    }
    if let Some(file) = env("UNILOG_KAFKA_CONFIG") {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read UNILOG_KAFKA_CONFIG {file}"))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (k, v) = line.split_once('=').ok_or_else(|| {
                anyhow!(
                    "{file}:{}: not a key=value line (a librdkafka setting)",
                    i + 1
                )
            })?;
            cfg.set(k.trim(), v.trim());
        }
    }
    Ok(cfg)
}

/// What every client of ours reports back: its last error (said when an
/// operation times out, so a refused login or a TLS failure is named),
/// and a producer's delivery reports.
#[derive(Default)]
struct Ctx {
    last_error: Mutex<Option<String>>,
    deliveries: Mutex<Deliveries>,
}

#[derive(Default)]
struct Deliveries {
    /// Per event sent since the last flush, where it went once delivered.
    positions: Vec<Option<Position>>,
    /// The first delivery that failed, if any.
    failed: Option<String>,
}

impl ClientContext for Ctx {
    fn error(&self, error: KafkaError, reason: &str) {
        *self.last_error.lock().expect("not poisoned") = Some(format!("{error} ({reason})"));
    }
}

impl ConsumerContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, i: usize) {
        let mut d = self.deliveries.lock().expect("not poisoned");
        match result {
            Ok(m) => {
                if let Some(slot) = d.positions.get_mut(i) {
                    *slot = Some(Position {
                        partition: m.partition() as u32,
                        offset: m.offset() as u64,
                    });
                }
            }
            Err((e, _)) => {
                d.failed.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

impl Ctx {
    /// " (last error: …)" when the client has seen one.
    fn last_error(&self) -> String {
        match &*self.last_error.lock().expect("not poisoned") {
            Some(e) => format!(" (last error: {e})"),
            None => String::new(),
        }
    }
}

/// Says what went wrong talking to `url`, with the client's last error.
fn failed(url: &KafkaUrl, what: &str, e: impl std::fmt::Display, ctx: &Ctx) -> anyhow::Error {
    anyhow!(
        "{}: {what}: {e}{}; check that a broker runs at {} and that this client may use topic {:?}",
        url.text,
        ctx.last_error(),
        url.bootstrap,
        url.topic
    )
}

fn new_consumer(cfg: &ClientConfig, group: Option<&str>) -> Result<BaseConsumer<Ctx>> {
    let mut cfg = cfg.clone();
    cfg.set("group.id", group.unwrap_or("unilog-log-tail"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("allow.auto.create.topics", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "10")
        .set("fetch.min.bytes", "1");
    cfg.create_with_context(Ctx::default())
        .context("cannot make a Kafka consumer")
}

/// The topic's partition count, or `None` when it does not exist.
fn describe(url: &KafkaUrl, client: &Client<Ctx>, timeout: Duration) -> Result<Option<u32>> {
    let metadata = client
        .fetch_metadata(Some(&url.topic), timeout)
        .map_err(|e| {
            failed(
                url,
                &format!("cannot reach a broker within {}", show(timeout)),
                e,
                client.context(),
            )
        })?;
    let Some(topic) = metadata.topics().iter().find(|t| t.name() == url.topic) else {
        return Ok(None);
    };
    match topic.error().map(RDKafkaErrorCode::from) {
        None if topic.partitions().is_empty() => Ok(None),
        None => Ok(Some(topic.partitions().len() as u32)),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition) => Ok(None),
        Some(RDKafkaErrorCode::TopicAuthorizationFailed) => bail!(
            "{}: not authorised to use topic {:?} (check the credentials in UNILOG_KAFKA_USERNAME and the topic's ACLs)",
            url.text,
            url.topic
        ),
        Some(code) => Err(failed(url, "cannot read the topic's metadata", code, client.context())),
    }
}

/// Checks that `p` is one of the topic's `partitions`.
fn check_partition(url: &KafkaUrl, partitions: u32, p: u32) -> Result<()> {
    if p >= partitions {
        bail!(
            "{} has partitions 0 to {}; there is no partition {p}",
            url.text,
            partitions - 1
        );
    }
    Ok(())
}

fn show(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

fn missing(url: &KafkaUrl, create_hint: bool) -> anyhow::Error {
    if create_hint {
        anyhow!(
            "{}: topic {:?} does not exist; create it with `log-append {} --partitions N`",
            url.text,
            url.topic,
            url.text
        )
    } else {
        anyhow!("{}: topic {:?} does not exist", url.text, url.topic)
    }
}

/// Creates the topic with `n` partitions (replication
/// `UNILOG_KAFKA_REPLICATION`, 1 by default) and waits until it is seen.
fn create_topic(
    url: &KafkaUrl,
    cfg: &ClientConfig,
    client: &Client<Ctx>,
    n: u32,
    timeout: Duration,
) -> Result<u32> {
    let replication: i32 = match std::env::var("UNILOG_KAFKA_REPLICATION") {
        Ok(v) => v
            .parse()
            .map_err(|_| anyhow!("UNILOG_KAFKA_REPLICATION={v:?} is not a number"))?,
        Err(_) => 1,
    };
    let admin: AdminClient<Ctx> = cfg
        .create_with_context(Ctx::default())
        .context("cannot make a Kafka admin client")?;
    let topic = NewTopic::new(&url.topic, n as i32, TopicReplication::Fixed(replication));
    let options = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout));
    let results = block_on(admin.create_topics([&topic], &options), timeout)
        .ok_or_else(|| {
            failed(
                url,
                "creating the topic timed out",
                show(timeout),
                admin.inner().context(),
            )
        })?
        .map_err(|e| failed(url, "cannot create the topic", e, admin.inner().context()))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => {
                return Err(failed(
                    url,
                    "cannot create the topic",
                    code,
                    admin.inner().context(),
                ))
            }
        }
    }
    let start = Instant::now();
    loop {
        if let Some(has) = describe(url, client, timeout)? {
            return Ok(has);
        }
        if start.elapsed() > timeout {
            bail!(
                "{}: topic {:?} was created but is not seen within {}",
                url.text,
                url.topic,
                show(timeout)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs a future to completion on this thread (librdkafka's admin results
/// arrive from its own thread), or gives up after `timeout`.
fn block_on<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    let deadline = Instant::now() + timeout + Duration::from_secs(1);
    loop {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return Some(out);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

/// Opens the topic for appending; creates it with `partitions` when it is
/// missing and they are given, and otherwise checks they match.
pub fn open_producer(
    url: &KafkaUrl,
    options: &KafkaOptions,
    partitions: Option<u32>,
) -> Result<KafkaProducer> {
    let cfg = client_config(url, options)?;
    // The producer looks the topic up itself: a second client just for the
    // lookup cost its own connections and teardown on every run.
    let ms = options.timeout.as_millis().max(1000).to_string();
    let mut pcfg = cfg.clone();
    // A producer's metadata request would make the broker create a missing
    // topic with its default partitions; only --partitions creates one.
    pcfg.set("allow.auto.create.topics", "false")
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("message.timeout.ms", &ms);
    // Tuning that UNILOG_KAFKA_CONFIG may change (what makes an event
    // count as appended, above, it may not).
    for (key, value) in [
        ("linger.ms", "5"),
        // Connect to the bootstrap brokers at once rather than when first
        // needed: the idempotent producer asks for its id as soon as a
        // broker is up, instead of on its next 500 ms retry.
        ("enable.sparse.connections", "false"),
        ("batch.num.messages", "10000"),
        ("queue.buffering.max.messages", "200000"),
        // librdkafka's idempotent producer keeps one produce request in
        // flight per partition (it caps requests, at most 5, by the
        // messages in flight: rdkafka_broker.c, toppar_producer_serve), so
        // each partition moves one batch per round trip. lz4 puts about
        // four times as many JSON events in a batch of the same size:
        // 100k events to one partition took 0.33 s without it, 0.22 s
        // with it. Consumers decompress it transparently.
        ("compression.type", "lz4"),
    ] {
        if cfg.get(key).is_none() {
            pcfg.set(key, value);
        }
    }
    let producer: BaseProducer<Ctx> = pcfg
        .create_with_context(Ctx::default())
        .context("cannot make a Kafka producer")?;
    let has = match (
        describe(url, producer.client(), options.timeout)?,
        partitions,
    ) {
        (Some(has), _) => has,
        (None, Some(n)) => {
            if n == 0 || n > 10_000 {
                bail!("partitions must be between 1 and 10000, not {n}");
            }
            create_topic(url, &cfg, producer.client(), n, options.timeout)?
        }
        (None, None) => return Err(missing(url, true)),
    };
    if let Some(n) = partitions {
        if n != has {
            bail!(
                "{} already exists with {has} partition{}; the count is fixed when a log is created, so --partitions {n} cannot apply (leave it out, or give --partitions {has})",
                url.text,
                if has == 1 { "" } else { "s" }
            );
        }
    }
    Ok(KafkaProducer {
        url: url.clone(),
        options: *options,
        producer,
        partitions: has,
        round_robin: super::append::random_start(),
        unflushed: 0,
    })
}

/// Appends to a topic.
pub struct KafkaProducer {
    url: KafkaUrl,
    options: KafkaOptions,
    producer: BaseProducer<Ctx>,
    partitions: u32,
    round_robin: u32,
    unflushed: u64,
}

impl KafkaProducer {
    /// Sends what is queued and serves delivery reports until every event
    /// sent has one, or `timeout` passes. rdkafka's `flush` waits in whole
    /// steps of 100 ms between its checks, which a short pipeline pays on
    /// every batch; and each `rd_kafka_flush` wakes every broker thread, so
    /// this asks for one flush (what lingers is sent now) and then only
    /// serves reports until none is outstanding.
    fn await_deliveries(&self, timeout: Duration) -> Result<(), KafkaError> {
        let deadline = Instant::now() + timeout;
        match self.producer.flush(Duration::ZERO) {
            Ok(()) => return Ok(()),
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {}
            Err(e) => return Err(e),
        }
        // The out queue counts reports not served yet too: at 0, each
        // event sent has had its report.
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut));
            }
            self.serve_reports();
        }
        Ok(())
    }

    /// Serves the delivery reports that have arrived, or waits a moment
    /// when none has. Not `poll(1 ms)`: rdkafka polls until its deadline,
    /// and below a millisecond left it polls without waiting, so every such
    /// call spun a core the broker (often on the same machine) needed.
    fn serve_reports(&self) {
        let before = self.producer.in_flight_count();
        self.producer.poll(Duration::ZERO);
        if self.producer.in_flight_count() == before {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    fn delivery_error(&self) -> Option<String> {
        self.producer
            .context()
            .deliveries
            .lock()
            .expect("not poisoned")
            .failed
            .clone()
    }
}

impl LogProducer for KafkaProducer {
    fn location(&self) -> &str {
        &self.url.text
    }

    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn check_partition(&self, p: u32) -> Result<()> {
        check_partition(&self.url, self.partitions, p)
    }

    fn append(&mut self, route: Route<'_>, event: &[u8]) -> Result<()> {
        let p = match route {
            Route::Partition(p) => {
                self.check_partition(p)?;
                p
            }
            Route::Key(k) => partition_for_key(k, self.partitions),
            Route::Any => {
                let p = self.round_robin % self.partitions;
                self.round_robin = self.round_robin.wrapping_add(1);
                p
            }
        };
        let i = {
            let mut d = self
                .producer
                .context()
                .deliveries
                .lock()
                .expect("not poisoned");
            d.positions.push(None);
            d.positions.len() - 1
        };
        let mut record = BaseRecord::<(), [u8], usize>::with_opaque_to(&self.url.topic, i)
            .payload(event)
            .partition(p as i32);
        let start = Instant::now();
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: serve delivery reports until
                    // there is room, for at most the timeout.
                    record = back;
                    self.serve_reports();
                    if let Some(e) = self.delivery_error() {
                        return Err(failed(
                            &self.url,
                            "an event was not delivered",
                            e,
                            self.producer.context(),
                        ));
                    }
                    if start.elapsed() > self.options.timeout {
                        return Err(failed(
                            &self.url,
                            &format!(
                                "the broker took no events for {}",
                                show(self.options.timeout)
                            ),
                            "queue full",
                            self.producer.context(),
                        ));
                    }
                }
                Err((e, _)) => {
                    return Err(failed(
                        &self.url,
                        "cannot append",
                        e,
                        self.producer.context(),
                    ))
                }
            }
        }
        self.unflushed += event.len() as u64;
        if i % 1024 == 0 {
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    fn unflushed_bytes(&self) -> u64 {
        self.unflushed
    }

    fn want_positions(&mut self) {}

    fn flush(&mut self) -> Result<Flushed> {
        let timeout = self.options.timeout;
        let flushed = self.await_deliveries(timeout);
        if let Some(e) = self.delivery_error() {
            return Err(failed(
                &self.url,
                "an event was not delivered",
                e,
                self.producer.context(),
            ));
        }
        if let Err(e) = flushed {
            let d = self
                .producer
                .context()
                .deliveries
                .lock()
                .expect("not poisoned");
            let done = d.positions.iter().filter(|p| p.is_some()).count();
            return Err(failed(
                &self.url,
                &format!(
                    "{} of {} events were not acknowledged within {} (those acknowledged are in the topic)",
                    d.positions.len() - done,
                    d.positions.len(),
                    show(timeout)
                ),
                e,
                self.producer.context(),
            ));
        }
        let mut d = self
            .producer
            .context()
            .deliveries
            .lock()
            .expect("not poisoned");
        let positions = std::mem::take(&mut d.positions)
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                anyhow!(
                    "{}: an event was flushed without a delivery report",
                    self.url.text
                )
            })?;
        self.unflushed = 0;
        Ok(Flushed {
            events: positions.len() as u64,
            positions,
        })
    }

    fn marks(&mut self, name: &str) -> Result<Box<dyn ProducerMarks>> {
        super::producer::check_name(name)?;
        let mut consumer = KafkaConsumer::open(&self.url, &self.options)?;
        let held = scan_held(&mut consumer, Some(name))
            .with_context(|| {
                format!(
                    "cannot read producer {name:?}'s records in {}",
                    self.url.text
                )
            })?
            .remove(name)
            .unwrap_or_default();
        Ok(Box::new(KafkaMarks { held }))
    }
}

/// A producer's held positions in a topic, read from its records there
/// (the `unilog` member with `"by":NAME`). Nothing is saved beside them:
/// the records are the marks. What a failure sink "finished" without
/// writing a record is not kept past the run, which only makes a resumed
/// pipeline start earlier (and its destinations drop what they hold).
struct KafkaMarks {
    held: Held,
}

impl ProducerMarks for KafkaMarks {
    fn holds(&self, position: PositionRef<'_>) -> bool {
        self.held.holds_ref(position)
    }
    fn record(&mut self, position: PositionRef<'_>) {
        self.held.record_ref(position);
    }
    fn finished(&mut self, source: &Source, offset: u64) {
        self.held.record_complete(source, offset);
    }
    fn wrote(&mut self, _: &[Position]) {}
    fn save(&mut self, _: bool) -> Result<()> {
        Ok(())
    }
    fn held(&self) -> &Held {
        &self.held
    }
}

/// Reads a topic.
pub struct KafkaConsumer {
    url: KafkaUrl,
    options: KafkaOptions,
    cfg: ClientConfig,
    consumer: BaseConsumer<Ctx>,
    partitions: u32,
    follow: bool,
    /// Per partition read, the next offset to deliver.
    next: BTreeMap<u32, u64>,
    /// Without following: per partition, the end when reading started.
    stop: BTreeMap<u32, u64>,
    /// Partitions assigned and not yet at their stop.
    live: usize,
    /// Partitions that reached their stop.
    done: std::collections::BTreeSet<u32>,
    /// A gap found at the start, reported by the first poll.
    missed: Vec<(u32, Missed)>,
    group: Option<String>,
}

impl KafkaConsumer {
    /// Opens the existing topic at `url` for reading.
    pub fn open(url: &KafkaUrl, options: &KafkaOptions) -> Result<KafkaConsumer> {
        KafkaConsumer::open_if_exists(url, options)?.ok_or_else(|| missing(url, true))
    }

    /// Opens the topic at `url` for reading; `None` when it does not exist.
    pub fn open_if_exists(url: &KafkaUrl, options: &KafkaOptions) -> Result<Option<KafkaConsumer>> {
        let cfg = client_config(url, options)?;
        let consumer = new_consumer(&cfg, None)?;
        let Some(partitions) = describe(url, consumer.client(), options.timeout)? else {
            return Ok(None);
        };
        Ok(Some(KafkaConsumer {
            url: url.clone(),
            options: *options,
            cfg,
            consumer,
            partitions,
            follow: false,
            next: BTreeMap::new(),
            stop: BTreeMap::new(),
            live: 0,
            done: Default::default(),
            missed: Vec::new(),
            group: None,
        }))
    }

    fn watermarks(&self, p: u32) -> Result<(u64, u64)> {
        let (low, high) = self
            .consumer
            .fetch_watermarks(&self.url.topic, p as i32, self.options.timeout)
            .map_err(|e| {
                failed(
                    &self.url,
                    &format!("cannot read partition {p}'s offsets"),
                    e,
                    self.consumer.context(),
                )
            })?;
        Ok((low.max(0) as u64, high.max(0) as u64))
    }

    fn group_offsets(
        &self,
        consumer: &BaseConsumer<Ctx>,
        group: &str,
    ) -> Result<BTreeMap<u32, u64>> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.url.topic, p as i32);
        }
        let got = consumer
            .committed_offsets(tpl, self.options.timeout)
            .map_err(|e| {
                failed(
                    &self.url,
                    &format!("cannot read group {group:?}'s positions"),
                    e,
                    consumer.context(),
                )
            })?;
        let mut out = BTreeMap::new();
        for elem in got.elements() {
            if let Offset::Offset(o) = elem.offset() {
                out.insert(elem.partition() as u32, o.max(0) as u64);
            }
        }
        Ok(out)
    }
}

impl LogConsumer for KafkaConsumer {
    fn location(&self) -> &str {
        &self.url.text
    }

    fn partitions(&self) -> u32 {
        self.partitions
    }

    fn check_partition(&self, p: u32) -> Result<()> {
        check_partition(&self.url, self.partitions, p)
    }

    fn id(&mut self) -> Result<String> {
        let cluster = self
            .consumer
            .client()
            .fetch_cluster_id(self.options.timeout)
            .filter(|c| !c.is_empty());
        let first = self.url.bootstrap.split(',').next().unwrap_or_default();
        Ok(format!(
            "kafka://{}/{}",
            cluster.as_deref().unwrap_or(first),
            self.url.topic
        ))
    }

    fn bounds(&mut self, p: u32) -> Result<(u64, u64)> {
        self.check_partition(p)?;
        self.watermarks(p)
    }

    fn resolve(&mut self, p: u32, start: StartAt) -> Result<u64> {
        let (low, high) = self.bounds(p)?;
        Ok(match start {
            StartAt::Beginning => low,
            StartAt::End => high,
            StartAt::Offset(o) => o.clamp(low, high),
            StartAt::Last(n) => high.saturating_sub(n).max(low),
            StartAt::Time(t) => {
                let mut tpl = TopicPartitionList::new();
                tpl.add_partition_offset(&self.url.topic, p as i32, Offset::Offset(t))
                    .map_err(|e| anyhow!("{e}"))?;
                let found = self
                    .consumer
                    .offsets_for_times(tpl, self.options.timeout)
                    .map_err(|e| {
                        failed(
                            &self.url,
                            "cannot look up offsets by time",
                            e,
                            self.consumer.context(),
                        )
                    })?;
                match found.elements().first().map(|e| e.offset()) {
                    Some(Offset::Offset(o)) if o >= 0 => (o as u64).clamp(low, high),
                    _ => high,
                }
            }
        })
    }

    fn assign(&mut self, starts: &[(u32, StartAt)], follow: bool) -> Result<()> {
        self.follow = follow;
        let mut tpl = TopicPartitionList::new();
        self.live = 0;
        self.done.clear();
        for &(p, start) in starts {
            let (low, high) = self.bounds(p)?;
            let at = match start {
                StartAt::Offset(o) if o < low => {
                    self.missed.push((p, Missed { from: o, to: low }));
                    low
                }
                StartAt::Offset(o) if follow => o,
                other => self.resolve(p, other)?,
            };
            self.next.insert(p, at);
            if !follow {
                self.stop.insert(p, high);
                if at >= high {
                    continue;
                }
            }
            tpl.add_partition_offset(&self.url.topic, p as i32, Offset::Offset(at as i64))
                .map_err(|e| anyhow!("{e}"))?;
            self.live += 1;
        }
        self.consumer.assign(&tpl).map_err(|e| {
            failed(
                &self.url,
                "cannot start reading",
                e,
                self.consumer.context(),
            )
        })
    }

    fn poll(
        &mut self,
        max: u64,
        deliver: &mut dyn FnMut(u32, Record<'_>) -> Result<()>,
    ) -> Result<Polled> {
        let mut polled = Polled::default();
        if let Some(gap) = self.missed.pop() {
            polled.missed = Some(gap);
            return Ok(polled);
        }
        let mut idle_since = Instant::now();
        while polled.records < max {
            if !self.follow && self.live == 0 {
                polled.at_end = true;
                break;
            }
            let wait = if polled.records > 0 {
                Duration::ZERO
            } else {
                POLL_WAIT
            };
            match self.consumer.poll(wait) {
                None => {
                    if polled.records > 0 {
                        break;
                    }
                    if self.follow {
                        polled.at_end = true;
                        break;
                    }
                    if idle_since.elapsed() > self.options.timeout {
                        return Err(failed(
                            &self.url,
                            &format!(
                                "no records arrived for {} though the topic holds more",
                                show(self.options.timeout)
                            ),
                            "timed out",
                            self.consumer.context(),
                        ));
                    }
                }
                Some(Err(e)) => {
                    return Err(failed(&self.url, "cannot read", e, self.consumer.context()))
                }
                Some(Ok(m)) => {
                    idle_since = Instant::now();
                    let p = m.partition() as u32;
                    let offset = m.offset().max(0) as u64;
                    let stop = self.stop.get(&p).copied();
                    if stop.is_some_and(|s| offset >= s) {
                        // Past the end it had at the start (offsets need not
                        // be dense: a transaction's marker takes one).
                        if self.done.insert(p) {
                            self.live -= 1;
                        }
                        continue;
                    }
                    let rec = Record {
                        offset,
                        time_ms: m.timestamp().to_millis().unwrap_or(0),
                        event: m.payload().unwrap_or_default(),
                    };
                    deliver(p, rec)?;
                    self.next.insert(p, offset + 1);
                    polled.records += 1;
                    if stop.is_some_and(|s| offset + 1 >= s) && self.done.insert(p) {
                        self.live -= 1;
                    }
                }
            }
        }
        Ok(polled)
    }

    fn positions(&self) -> Vec<(u32, u64)> {
        self.next.iter().map(|(&p, &o)| (p, o)).collect()
    }

    fn committed(&mut self, group: &str) -> Result<BTreeMap<u32, u64>> {
        let consumer = new_consumer(&self.cfg, Some(group))?;
        let found = self.group_offsets(&consumer, group)?;
        if found.is_empty() {
            bail!(
                "{}: group {group:?} has no committed positions in topic {:?} (the broker does not know it); a group is made by its first `log-tail {} --group {group}`",
                self.url.text,
                self.url.topic,
                self.url.text
            );
        }
        Ok(found)
    }

    fn join(&mut self, group: &str) -> Result<BTreeMap<u32, u64>> {
        super::group::check_name(group)?;
        self.consumer = new_consumer(&self.cfg, Some(group))?;
        let found = self.group_offsets(&self.consumer, group)?;
        self.group = Some(group.to_string());
        Ok(found)
    }

    fn commit(&mut self, positions: &[(u32, u64)]) -> Result<()> {
        let Some(group) = &self.group else {
            return Ok(());
        };
        let mut tpl = TopicPartitionList::new();
        for &(p, o) in positions {
            tpl.add_partition_offset(&self.url.topic, p as i32, Offset::Offset(o as i64))
                .map_err(|e| anyhow!("{e}"))?;
        }
        self.consumer.commit(&tpl, CommitMode::Sync).map_err(|e| {
            failed(
                &self.url,
                &format!("cannot commit group {group:?}"),
                e,
                self.consumer.context(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = KafkaUrl::parse("kafka://127.0.0.1:9092,b:9093/raw.events").unwrap();
        assert_eq!(u.bootstrap, "127.0.0.1:9092,b:9093");
        assert_eq!(u.topic, "raw.events");
        for bad in [
            "kafka://host/raw",
            "kafka://h:1",
            "kafka://h:1/",
            "kafka://h:x/t",
            "kafka://h:1/a/b",
            "kafka://:1/t",
        ] {
            assert!(KafkaUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_unreachable_broker_is_named_within_the_timeout() {
        let url = KafkaUrl::parse("kafka://127.0.0.1:1/t").unwrap();
        let options = KafkaOptions {
            timeout: Duration::from_millis(500),
        };
        let start = Instant::now();
        let err = KafkaConsumer::open(&url, &options)
            .err()
            .unwrap()
            .to_string();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(
            err.contains("kafka://127.0.0.1:1/t") && err.contains("cannot reach"),
            "{err}"
        );
    }

    #[test]
    fn block_on_gives_up() {
        let never = std::future::pending::<()>();
        assert!(block_on(never, Duration::from_millis(10)).is_none());
        assert_eq!(block_on(async { 7 }, Duration::from_millis(10)), Some(7));
    }
}
