//! Integration-test support shared by every test in `tests/` (include it with `mod support;`).
//!
//! Everything here talks to a real Apache Kafka broker (see `scripts/kafka`). The bootstrap address
//! comes from `KSTREAMS_BOOTSTRAP` (default `127.0.0.1:9092`). Tests call [`require_broker`] first:
//! it panics at once with a clear hint when no broker answers, so tests never skip silently and never
//! hang for minutes.
//!
//! Every helper is bounded by a timeout and reports failures as a [`SupportError`] (or panics with a
//! clear message, for the `require_*` style helpers). Facts this module relies on (librdkafka 2.12):
//!
//! * librdkafka's default `isolation.level` is `read_committed`; every reader here sets it explicitly.
//! * `fetch_watermarks` sends a ListOffsets request with the *client's* isolation level: on a
//!   `read_uncommitted` consumer its upper value is the high watermark, on a `read_committed` consumer
//!   it is the last stable offset (LSO). [`high_watermarks`] and [`last_stable_offsets`] use that.
//! * Transaction markers take offsets, so "caught up" is decided by the consumer position (which
//!   librdkafka moves past control records and aborted batches), never by counting records.
#![allow(dead_code)]

pub mod scenarios;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, DeliveryResult, Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Environment variable naming the bootstrap servers of the test broker.
pub const BOOTSTRAP_ENV: &str = "KSTREAMS_BOOTSTRAP";
/// Bootstrap address used when [`BOOTSTRAP_ENV`] is not set.
pub const DEFAULT_BOOTSTRAP: &str = "127.0.0.1:9092";
/// How long [`require_broker`] waits for the broker's metadata.
pub const BROKER_CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Timeout of a single request to the broker (metadata, watermarks, committed offsets, admin calls).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for a state to be reached (topic visible in metadata, consumer caught up, ...).
pub const WAIT_TIMEOUT: Duration = Duration::from_secs(30);
/// `transaction.timeout.ms` of [`transactional_producer`] (Kafka Streams uses 10 s too).
pub const TRANSACTION_TIMEOUT_MS: u64 = 10_000;

/// Everything that can go wrong in a support helper.
#[derive(Debug, thiserror::Error)]
pub enum SupportError {
    /// No broker answered a metadata request at `bootstrap`.
    #[error(
        "no Kafka broker at {bootstrap} ({BOOTSTRAP_ENV}): start one with `scripts/kafka start` \
         (metadata request failed after {elapsed:?}: {cause})"
    )]
    NoBroker { bootstrap: String, elapsed: Duration, cause: String },
    /// A Kafka client call failed.
    #[error("{context}: {source}")]
    Kafka {
        context: String,
        #[source]
        source: KafkaError,
    },
    /// A bounded wait ran out.
    #[error("timed out after {waited:?}: {what}")]
    Timeout { waited: Duration, what: String },
    /// Anything else (broker-side per-item errors, unexpected states).
    #[error("{0}")]
    Other(String),
}

/// Result type of the support helpers.
pub type Result<T, E = SupportError> = std::result::Result<T, E>;

/// Adds a context sentence to rdkafka results.
trait KafkaContext<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> KafkaContext<T> for std::result::Result<T, KafkaError> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| SupportError::Kafka { context: context(), source })
    }
}

/// Polls `check` every 250 ms until it returns true or `timeout` passes; the last answer.
pub fn eventually(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        thread::sleep(Duration::from_millis(250));
    }
    check()
}

// ---------------------------------------------------------------------------------------------
// Broker address and reachability
// ---------------------------------------------------------------------------------------------

/// The bootstrap servers of the test broker: `$KSTREAMS_BOOTSTRAP`, or `127.0.0.1:9092`.
pub fn bootstrap() -> String {
    match std::env::var(BOOTSTRAP_ENV) {
        Ok(v) if !v.trim().is_empty() => v.trim().to_string(),
        _ => DEFAULT_BOOTSTRAP.to_string(),
    }
}

/// What [`require_broker_at`] learned about a reachable cluster.
#[derive(Debug, Clone)]
pub struct Broker {
    /// The bootstrap address that answered.
    pub bootstrap: String,
    /// Number of brokers listed in the metadata.
    pub brokers: usize,
}

/// Checks that a broker answers a metadata request at `bootstrap` within `timeout`.
///
/// Returns [`SupportError::NoBroker`] (whose message names the address, `KSTREAMS_BOOTSTRAP` and the
/// `scripts/kafka start` hint) when nothing answers. Never waits much longer than `timeout`.
pub fn require_broker_at(bootstrap: &str, timeout: Duration) -> Result<Broker> {
    let started = Instant::now();
    let no_broker =
        |cause: String| SupportError::NoBroker { bootstrap: bootstrap.to_string(), elapsed: started.elapsed(), cause };
    let timeout_ms = timeout.as_millis().max(1).to_string();
    let mut config = ClientConfig::new();
    for (key, value) in client_properties() {
        config.set(key, value);
    }
    let consumer: BaseConsumer = config
        .set("bootstrap.servers", bootstrap)
        .set("socket.timeout.ms", &timeout_ms)
        .set("socket.connection.setup.timeout.ms", &timeout_ms)
        .set("reconnect.backoff.ms", "50")
        .set("reconnect.backoff.max.ms", "500")
        .create()
        .map_err(|e| no_broker(format!("could not create a client: {e}")))?;
    let metadata = consumer.fetch_metadata(None, timeout).map_err(|e| no_broker(e.to_string()))?;
    if metadata.brokers().is_empty() {
        return Err(no_broker("metadata lists no brokers".to_string()));
    }
    Ok(Broker { bootstrap: bootstrap.to_string(), brokers: metadata.brokers().len() })
}

/// Checks once per test binary that the broker at [`bootstrap()`] is reachable, and PANICS at once
/// (within [`BROKER_CHECK_TIMEOUT`]) with "no Kafka broker at ...: start one with
/// `scripts/kafka start`" when it is not. Call it first in every broker test.
pub fn require_broker() -> Broker {
    static CHECKED: OnceLock<std::result::Result<Broker, String>> = OnceLock::new();
    match CHECKED.get_or_init(|| require_broker_at(&bootstrap(), BROKER_CHECK_TIMEOUT).map_err(|e| e.to_string())) {
        Ok(broker) => broker.clone(),
        Err(message) => panic!("{message}"),
    }
}

/// Same as [`require_broker`].
pub fn broker() -> Broker {
    require_broker()
}

// ---------------------------------------------------------------------------------------------
// Unique names
// ---------------------------------------------------------------------------------------------

/// Wall-clock milliseconds since the epoch (comparable with broker timestamps on this machine).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// A name unique per call and per run: `<prefix>-<pid>-<unix millis>-<counter>`, with characters
/// outside `[A-Za-z0-9._-]` of the prefix replaced by `_` (legal as topic, group and transactional id).
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let prefix: String = prefix
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    format!("{prefix}-{}-{millis}-{n}", std::process::id())
}

/// A topic name unique per test and run (see [`unique_name`]).
pub fn unique_topic(prefix: &str) -> String {
    unique_name(&format!("kst-{prefix}"))
}

/// A consumer group id unique per test and run (see [`unique_name`]).
pub fn unique_group(prefix: &str) -> String {
    unique_name(&format!("kst-group-{prefix}"))
}

// ---------------------------------------------------------------------------------------------
// Client configurations
// ---------------------------------------------------------------------------------------------

/// A `ClientConfig` with `bootstrap.servers` set to [`bootstrap()`].
pub fn client_config() -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap());
    for (key, value) in client_properties() {
        config.set(key, value);
    }
    config
}

/// Runs the project's `scripts/kafka <args>` with `envs` (e.g. `KSTREAMS_CLUSTER` for a cluster
/// beside the default one); panics if it fails; returns what it printed on stdout, trimmed.
pub fn scripts_kafka(envs: &[(&str, &str)], args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
    let out = std::process::Command::new(script)
        .args(args)
        .envs(envs.iter().copied())
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run scripts/kafka");
    assert!(out.status.success(), "scripts/kafka {args:?} with {envs:?} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Set to a file of librdkafka settings (`key=value` lines) that the tests' own clients use too:
/// credentials for a secured broker.
pub const CLIENT_PROPERTIES_ENV: &str = "KSTREAMS_CLIENT_PROPERTIES";

/// The settings of the file named by [`CLIENT_PROPERTIES_ENV`], if any; panics if it cannot be read.
pub fn client_properties() -> Vec<(String, String)> {
    let Ok(path) = std::env::var(CLIENT_PROPERTIES_ENV) else { return Vec::new() };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{CLIENT_PROPERTIES_ENV}={path}: {e}"));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// Isolation level of a consumer (`isolation.level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Isolation {
    /// Sees only records of committed transactions (and non-transactional ones), up to the LSO.
    ReadCommitted,
    /// Sees every record, aborted transactions included, up to the high watermark.
    ReadUncommitted,
}

impl Isolation {
    /// The `isolation.level` configuration value.
    pub fn as_config(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// Config of a group member: `group.id`, `group.protocol=classic`, `enable.auto.commit=false`,
/// `auto.offset.reset=earliest`, the given isolation level.
pub fn consumer_config(group: &str, isolation: Isolation) -> ClientConfig {
    let mut config = client_config();
    config
        .set("group.id", group)
        .set("group.protocol", "classic")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", isolation.as_config());
    config
}

/// A standalone consumer (no group membership, used with `assign`) with the given isolation level.
fn reader(isolation: Isolation) -> Result<BaseConsumer> {
    client_config()
        .set("group.id", unique_group("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("isolation.level", isolation.as_config())
        .create()
        .ctx(|| format!("creating a {} reader", isolation.as_config()))
}

// ---------------------------------------------------------------------------------------------
// Admin
// ---------------------------------------------------------------------------------------------

/// Runs a future to completion on the current thread (rdkafka's admin futures are completed by
/// rdkafka's own background thread). Usable from sync tests and inside async runtimes alike.
fn block_on<F: Future>(future: F) -> F::Output {
    struct ThreadWaker(Thread);
    impl Wake for ThreadWaker {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(ThreadWaker(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        thread::park_timeout(Duration::from_millis(50));
    }
}

fn admin_client() -> Result<AdminClient<DefaultClientContext>> {
    client_config().create().ctx(|| "creating an admin client".to_string())
}

fn admin_options() -> AdminOptions {
    AdminOptions::new().request_timeout(Some(REQUEST_TIMEOUT)).operation_timeout(Some(REQUEST_TIMEOUT))
}

/// Topics created by [`create_topics`]; deletes them when dropped (also when the test panics).
#[derive(Debug)]
#[must_use = "dropping the guard deletes the topics at once"]
pub struct Topics {
    names: Vec<String>,
}

impl Topics {
    /// The topic names, in creation order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The `i`-th topic name.
    pub fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Deletes the topics now and reports errors (instead of only printing them on drop).
    pub fn delete(mut self) -> Result<()> {
        let names = std::mem::take(&mut self.names);
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        delete_topics(&names)
    }
}

impl Drop for Topics {
    fn drop(&mut self) {
        if self.names.is_empty() {
            return;
        }
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        if let Err(e) = delete_topics(&names) {
            eprintln!("support: could not delete topics {names:?}: {e}");
        }
    }
}

/// A topic to create: name, partition count and topic configs (`("cleanup.policy", "compact")`).
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Number of partitions.
    pub partitions: i32,
    /// Topic configs as (name, value).
    pub configs: &'a [(&'a str, &'a str)],
}

impl<'a> TopicSpec<'a> {
    /// A topic with default configs.
    pub fn new(name: &'a str, partitions: i32) -> Self {
        TopicSpec { name, partitions, configs: &[] }
    }

    /// The same topic with these topic configs.
    pub fn configs(mut self, configs: &'a [(&'a str, &'a str)]) -> Self {
        self.configs = configs;
        self
    }
}

/// Creates the topics (the broker's default replication factor: 3 on a 3-node cluster) and waits
/// (bounded by [`WAIT_TIMEOUT`]) until the metadata shows each with all its partitions led. The returned guard deletes them on drop.
pub fn create_topics(specs: &[TopicSpec<'_>]) -> Result<Topics> {
    let admin = admin_client()?;
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .map(|s| {
            s.configs
                .iter()
                .fold(NewTopic::new(s.name, s.partitions, TopicReplication::Fixed(-1)), |t, (k, v)| t.set(k, v))
        })
        .collect();
    let results = block_on(admin.create_topics(&new_topics, &admin_options()))
        .ctx(|| format!("creating topics {:?}", specs.iter().map(|s| s.name).collect::<Vec<_>>()))?;
    // From here on the guard deletes whatever was created, even if waiting fails.
    let guard = Topics { names: specs.iter().map(|s| s.name.to_string()).collect() };
    for result in results {
        if let Err((name, code)) = result {
            return Err(SupportError::Other(format!("creating topic {name} failed: {code:?}")));
        }
    }
    for spec in specs {
        wait_for_topic(spec.name, spec.partitions)?;
    }
    Ok(guard)
}

/// Creates one topic with `partitions` partitions and default configs (see [`create_topics`]).
pub fn create_topic(name: &str, partitions: i32) -> Result<Topics> {
    create_topics(&[TopicSpec::new(name, partitions)])
}

/// Waits until the metadata shows `topic` with `partitions` partitions, each with a leader.
pub fn wait_for_topic(topic: &str, partitions: i32) -> Result<()> {
    let client: BaseConsumer = client_config().create().ctx(|| "creating a metadata client".to_string())?;
    let started = Instant::now();
    let mut last = String::from("no metadata yet");
    while started.elapsed() < WAIT_TIMEOUT {
        match client.fetch_metadata(Some(topic), REQUEST_TIMEOUT) {
            Ok(md) => {
                if let Some(t) = md.topics().iter().find(|t| t.name() == topic) {
                    let led = t.partitions().iter().filter(|p| p.leader() >= 0 && p.error().is_none()).count();
                    if t.error().is_none() && led == partitions as usize {
                        return Ok(());
                    }
                    last = format!("topic error {:?}, {led}/{partitions} partitions led", t.error());
                }
            }
            Err(e) => last = e.to_string(),
        }
        thread::sleep(Duration::from_millis(50));
    }
    Err(SupportError::Timeout {
        waited: started.elapsed(),
        what: format!("topic {topic} to appear in metadata ({last})"),
    })
}

/// Deletes topics; topics that do not exist are not an error.
pub fn delete_topics(names: &[&str]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let admin = admin_client()?;
    let results =
        block_on(admin.delete_topics(names, &admin_options())).ctx(|| format!("deleting topics {names:?}"))?;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| match r {
            Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) | Ok(_) => None,
            Err((name, code)) => Some(format!("{name}: {code:?}")),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(SupportError::Other(format!("deleting topics failed: {}", failed.join(", "))))
    }
}

/// Deletes, when dropped, the topics an application created (its internal topics: changelogs and
/// repartition topics, `<application.id>-…`) and its consumer group. Declare it before the
/// application, so that it is dropped after the application closed.
pub struct AppCleanup {
    app_id: String,
}

/// The guard that deletes what application `app_id` creates on the broker.
pub fn app_cleanup(app_id: &str) -> AppCleanup {
    AppCleanup { app_id: app_id.to_string() }
}

impl Drop for AppCleanup {
    fn drop(&mut self) {
        let prefix = format!("{}-", self.app_id);
        let Ok(consumer) = client_config().create::<BaseConsumer>() else { return };
        let Ok(metadata) = consumer.fetch_metadata(None, REQUEST_TIMEOUT) else { return };
        let names: Vec<String> =
            metadata.topics().iter().map(|t| t.name().to_string()).filter(|n| n.starts_with(&prefix)).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        if let Err(e) = delete_topics(&names) {
            eprintln!("cleaning up after {}: {e}", self.app_id);
        }
        let _ = delete_groups(&[&self.app_id]);
    }
}

/// Deletes consumer groups; unknown groups are not an error.
pub fn delete_groups(groups: &[&str]) -> Result<()> {
    let admin = admin_client()?;
    let results =
        block_on(admin.delete_groups(groups, &admin_options())).ctx(|| format!("deleting groups {groups:?}"))?;
    let failed: Vec<String> = results
        .into_iter()
        .filter_map(|r| match r {
            Err((_, RDKafkaErrorCode::GroupIdNotFound)) | Ok(_) => None,
            Err((name, code)) => Some(format!("{name}: {code:?}")),
        })
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(SupportError::Other(format!("deleting groups failed: {}", failed.join(", "))))
    }
}

/// The partition ids of `topic`, from the metadata, sorted.
pub fn partitions(topic: &str) -> Result<Vec<i32>> {
    let client: BaseConsumer = client_config().create().ctx(|| "creating a metadata client".to_string())?;
    let md = client.fetch_metadata(Some(topic), REQUEST_TIMEOUT).ctx(|| format!("fetching metadata of {topic}"))?;
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| SupportError::Other(format!("topic {topic} missing from metadata")))?;
    if let Some(e) = t.error() {
        return Err(SupportError::Other(format!("metadata of topic {topic}: {:?}", RDKafkaErrorCode::from(e))));
    }
    let mut ids: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    Ok(ids)
}

// ---------------------------------------------------------------------------------------------
// Producing
// ---------------------------------------------------------------------------------------------

/// Producer context that records delivery reports, so [`flush`] can tell whether everything sent
/// was acknowledged.
#[derive(Default)]
pub struct DeliveryTracker {
    delivered: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl DeliveryTracker {
    /// Number of acknowledged records so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Delivery failures so far (topic/partition and error).
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }
}

impl ClientContext for DeliveryTracker {}

impl ProducerContext for DeliveryTracker {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, m)) => self.failures.lock().unwrap().push(format!("{}[{}]: {e}", m.topic(), m.partition())),
        }
    }
}

/// The producer type of the helpers.
pub type TestProducer = BaseProducer<DeliveryTracker>;

/// An idempotent, non-transactional producer (`acks=all`, `linger.ms=5`).
pub fn producer() -> Result<TestProducer> {
    producer_with_timeout(Duration::from_secs(30))
}

/// An idempotent producer (`acks=all`) whose records may wait `message_timeout` for the broker:
/// longer than an outage that a test provokes.
pub fn producer_with_timeout(message_timeout: Duration) -> Result<TestProducer> {
    client_config()
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("message.timeout.ms", message_timeout.as_millis().to_string())
        .create_with_context(DeliveryTracker::default())
        .ctx(|| "creating a producer".to_string())
}

/// A transactional producer with `transactional.id = txn_id`, `transaction.timeout.ms=10000` and
/// `retry.backoff.ms=20`, on which `init_transactions` has already succeeded.
pub fn transactional_producer(txn_id: &str) -> Result<TestProducer> {
    let producer: TestProducer = client_config()
        .set("transactional.id", txn_id)
        .set("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS.to_string())
        .set("retry.backoff.ms", "20")
        .set("linger.ms", "5")
        .create_with_context(DeliveryTracker::default())
        .ctx(|| format!("creating transactional producer {txn_id}"))?;
    producer.init_transactions(WAIT_TIMEOUT).ctx(|| format!("init_transactions of {txn_id}"))?;
    Ok(producer)
}

/// A record to send with [`send`].
#[derive(Debug, Clone, Default)]
pub struct Outgoing<'a> {
    /// Explicit partition, or `None` for the producer's partitioner.
    pub partition: Option<i32>,
    /// Key bytes, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value bytes, `None` for a null value (tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers as (name, value).
    pub headers: &'a [(&'a str, &'a [u8])],
    /// The record's timestamp (ms), or `None` for the producer's clock.
    pub timestamp: Option<i64>,
}

/// Enqueues one record, serving delivery reports and retrying (bounded) while the local queue is
/// full. Delivery is only known after [`flush`] (or `commit_transaction`).
pub fn send(producer: &TestProducer, topic: &str, record: &Outgoing<'_>) -> Result<()> {
    let mut headers = rdkafka::message::OwnedHeaders::new();
    for (k, v) in record.headers {
        headers = headers.insert(rdkafka::message::Header { key: k, value: Some(*v) });
    }
    let mut base: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).headers(headers);
    if let Some(p) = record.partition {
        base = base.partition(p);
    }
    if let Some(k) = record.key {
        base = base.key(k);
    }
    if let Some(v) = record.value {
        base = base.payload(v);
    }
    if let Some(t) = record.timestamp {
        base = base.timestamp(t);
    }
    let started = Instant::now();
    loop {
        match producer.send(base) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), rec))
                if started.elapsed() < WAIT_TIMEOUT =>
            {
                producer.poll(Duration::from_millis(10));
                base = rec;
            }
            Err((e, _)) => return Err(SupportError::Kafka { context: format!("sending to {topic}"), source: e }),
        }
    }
}

/// Flushes the producer (bounded by [`WAIT_TIMEOUT`]) and fails if any delivery report so far was
/// an error. Not for transactional producers inside a transaction: use `commit_transaction`.
pub fn flush(producer: &TestProducer) -> Result<()> {
    producer.flush(WAIT_TIMEOUT).ctx(|| "flushing the producer".to_string())?;
    let failures = producer.context().failures();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(SupportError::Other(format!("{} deliveries failed, first: {}", failures.len(), failures[0])))
    }
}

/// Produces `(key, value)` records with the default partitioner and waits until all are
/// acknowledged.
pub fn produce_keyed<K, V>(topic: &str, records: impl IntoIterator<Item = (K, V)>) -> Result<()>
where
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let producer = producer()?;
    for (k, v) in records {
        send(&producer, topic, &Outgoing { key: Some(k.as_ref()), value: Some(v.as_ref()), ..Outgoing::default() })?;
    }
    flush(&producer)
}

// ---------------------------------------------------------------------------------------------
// Reading and offsets
// ---------------------------------------------------------------------------------------------

/// A record as read back by [`read_to_end`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition the record was read from.
    pub partition: i32,
    /// Offset of the record in its partition.
    pub offset: i64,
    /// Key bytes (`None` for a null key).
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None` for a null value / tombstone).
    pub value: Option<Vec<u8>>,
    /// Headers in order: (name, value; `None` for a null header value).
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record's timestamp (create or log-append time, as the topic says), -1 if none.
    pub timestamp: i64,
}

impl Record {
    fn from_message(m: &BorrowedMessage<'_>) -> Record {
        let headers = m
            .headers()
            .map(|hs| hs.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect())
            .unwrap_or_default();
        Record {
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            value: m.payload().map(<[u8]>::to_vec),
            headers,
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
        }
    }

    /// The key as UTF-8 (lossy), `""` for a null key.
    pub fn key_str(&self) -> String {
        String::from_utf8_lossy(self.key.as_deref().unwrap_or_default()).into_owned()
    }

    /// The value as UTF-8 (lossy), `""` for a null value.
    pub fn value_str(&self) -> String {
        String::from_utf8_lossy(self.value.as_deref().unwrap_or_default()).into_owned()
    }

    /// The value of the first header called `name`, as UTF-8 (lossy); `None` if absent or null.
    pub fn header_str(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .and_then(|(_, v)| v.as_deref())
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

/// Per partition, the upper offset `fetch_watermarks` reports for a client of this isolation level:
/// the high watermark for `ReadUncommitted`, the last stable offset for `ReadCommitted`.
pub fn end_offsets(topic: &str, isolation: Isolation) -> Result<BTreeMap<i32, i64>> {
    let consumer = reader(isolation)?;
    let mut ends = BTreeMap::new();
    for p in partitions(topic)? {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
            .ctx(|| format!("fetching watermarks of {topic}[{p}]"))?;
        ends.insert(p, high);
    }
    Ok(ends)
}

/// High watermark per partition (ListOffsets with read_uncommitted).
pub fn high_watermarks(topic: &str) -> Result<BTreeMap<i32, i64>> {
    end_offsets(topic, Isolation::ReadUncommitted)
}

/// Last stable offset per partition (ListOffsets with read_committed): below the high watermark
/// while a transaction on that partition is open (or its marker not yet written).
pub fn last_stable_offsets(topic: &str) -> Result<BTreeMap<i32, i64>> {
    end_offsets(topic, Isolation::ReadCommitted)
}

/// Partitions of `topic` whose last stable offset is below the high watermark, as
/// `(partition, lso, hw)`; empty when no transaction is open on the topic.
pub fn unstable_partitions(topic: &str) -> Result<Vec<(i32, i64, i64)>> {
    let hw = high_watermarks(topic)?;
    let lso = last_stable_offsets(topic)?;
    Ok(hw
        .iter()
        .filter_map(|(p, h)| {
            let l = lso.get(p).copied().unwrap_or(-1);
            (l != *h).then_some((*p, l, *h))
        })
        .collect())
}

/// Waits (bounded by `timeout`) until last stable offset == high watermark on every partition of
/// `topic`, i.e. no transaction is open and every commit/abort marker is written. Transaction
/// markers are written asynchronously after `commit_transaction` returns, so a short wait is normal.
pub fn await_stable(topic: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    loop {
        let unstable = unstable_partitions(topic)?;
        if unstable.is_empty() {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(SupportError::Timeout {
                waited: started.elapsed(),
                what: format!("last stable offset == high watermark on {topic}; (partition, lso, hw): {unstable:?}"),
            });
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// The last committed value of each key of `topic`, read as a big-endian `i64` (a count, as the
/// word-count tests write them); records with other values are skipped.
pub fn latest_counts(topic: &str) -> BTreeMap<String, i64> {
    read_to_end(topic, Isolation::ReadCommitted)
        .expect("read output")
        .into_iter()
        .filter_map(|r| {
            let value: [u8; 8] = r.value.as_deref()?.try_into().ok()?;
            Some((r.key_str(), i64::from_be_bytes(value)))
        })
        .collect()
}

/// Reads every partition of `topic` from the beginning up to its high watermark (taken when the
/// call starts) with the given isolation level (see [`read_to_end_within`]; timeout
/// [`WAIT_TIMEOUT`]).
pub fn read_to_end(topic: &str, isolation: Isolation) -> Result<Vec<Record>> {
    read_to_end_within(topic, isolation, WAIT_TIMEOUT)
}

/// Reads every partition of `topic` from the beginning with the given isolation level until the
/// consumer POSITION of each partition is ≥ its high watermark taken at the start (records at or
/// above it are left out), and returns the records sorted by (partition, offset).
///
/// Completion is decided by the position, never by counting records: transaction markers take
/// offsets. A `ReadCommitted` reader cannot pass an open transaction, so this fails with a
/// [`SupportError::Timeout`] (naming positions, ends and LSOs) if one stays open for `timeout`.
pub fn read_to_end_within(topic: &str, isolation: Isolation, timeout: Duration) -> Result<Vec<Record>> {
    let parts = partitions(topic)?;
    let watermark_reader = reader(Isolation::ReadUncommitted)?;
    // Partition -> high watermark, for partitions that hold anything.
    let mut ends = BTreeMap::new();
    for &p in &parts {
        let (low, high) = watermark_reader
            .fetch_watermarks(topic, p, REQUEST_TIMEOUT)
            .ctx(|| format!("fetching watermarks of {topic}[{p}]"))?;
        if high > low {
            ends.insert(p, high);
        }
    }
    let consumer = reader(isolation)?;
    let mut tpl = TopicPartitionList::new();
    for &p in &parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning).ctx(|| format!("assigning {topic}[{p}]"))?;
    }
    consumer.assign(&tpl).ctx(|| format!("assigning {topic}"))?;

    let positions = |consumer: &BaseConsumer| -> Result<BTreeMap<i32, i64>> {
        let tpl = consumer.position().ctx(|| format!("position on {topic}"))?;
        Ok(tpl
            .elements_for_topic(topic)
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => (e.partition(), o),
                _ => (e.partition(), -1),
            })
            .collect())
    };
    let caught_up = |pos: &BTreeMap<i32, i64>| ends.iter().all(|(p, end)| pos.get(p).is_some_and(|o| o >= end));

    let started = Instant::now();
    let mut records = Vec::new();
    loop {
        let pos = positions(&consumer)?;
        if caught_up(&pos) {
            break;
        }
        if started.elapsed() >= timeout {
            let lso = last_stable_offsets(topic).map(|l| format!("{l:?}")).unwrap_or_else(|e| e.to_string());
            return Err(SupportError::Timeout {
                waited: started.elapsed(),
                what: format!(
                    "{} reader of {topic} to reach the end: positions {pos:?}, \
                     high watermarks {ends:?}, last stable offsets {lso}",
                    isolation.as_config()
                ),
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if ends.get(&m.partition()).is_some_and(|end| m.offset() < *end) => {
                records.push(Record::from_message(&m));
            }
            None | Some(Ok(_)) => {}
            Some(Err(e)) => return Err(SupportError::Kafka { context: format!("reading {topic}"), source: e }),
        }
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

/// The offsets `group` has committed on `topic`, per partition (`None` where nothing is committed).
/// Uses OffsetFetch with require_stable, so pending transactional offsets are waited for.
pub fn committed_offsets(group: &str, topic: &str) -> Result<BTreeMap<i32, Option<i64>>> {
    let consumer: BaseConsumer = consumer_config(group, Isolation::ReadCommitted)
        .create()
        .ctx(|| format!("creating a consumer of group {group}"))?;
    let mut tpl = TopicPartitionList::new();
    for p in partitions(topic)? {
        tpl.add_partition(topic, p);
    }
    let committed = consumer
        .committed_offsets(tpl, REQUEST_TIMEOUT)
        .ctx(|| format!("fetching committed offsets of group {group} on {topic}"))?;
    Ok(committed
        .elements_for_topic(topic)
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(o) => (e.partition(), Some(o)),
            _ => (e.partition(), None),
        })
        .collect())
}

/// A multiset of (key, value) strings, for order-free comparisons of topic contents.
pub fn key_value_multiset(records: &[Record]) -> BTreeMap<(String, String), usize> {
    let mut set = BTreeMap::new();
    for r in records {
        *set.entry((r.key_str(), r.value_str())).or_insert(0) += 1;
    }
    set
}

/// The (topic, partition) pairs of a consumer's current assignment.
pub fn assignment_of(consumer: &impl Consumer) -> Result<BTreeSet<(String, i32)>> {
    let tpl = consumer.assignment().ctx(|| "reading the assignment".to_string())?;
    Ok(tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect())
}
