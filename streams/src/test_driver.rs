//! Runs a topology in-process, without a broker, for unit tests.
//!
//! Unlike Kafka Streams' `TopologyTestDriver`, topics may have several partitions: records are placed
//! by the real partitioner, each partition of each sub-topology runs as its own task, and records
//! written to repartition topics flow to the tasks that read them, so repartitioning bugs show up in
//! unit tests.
//!
//! Records piped into the topic of a global store (a
//! [`GlobalKTable`](crate::dsl::GlobalKTable)), whatever their partition, update the one global
//! store every task reads, before the call returns; they produce no output themselves.
//!
//! ```
//! use kstreams_streams::serde::Serdes;
//! use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
//! use kstreams_streams::topology::Topology;
//!
//! let mut topology = Topology::new();
//! topology.add_source("in", &["a"], Serdes::string(), Serdes::string()).unwrap()
//!     .add_sink("out", "b", Serdes::string(), Serdes::string(), &["in"]).unwrap();
//! let driver = TopologyTestDriver::new(topology, TestDriverConfig::new("app")).unwrap();
//! let input = driver.input_topic("a", Serdes::string(), Serdes::string());
//! let output = driver.output_topic("b", Serdes::string(), Serdes::string());
//! input.pipe("k".to_string(), "v".to_string(), 10).unwrap();
//! assert_eq!(output.read_key_values().unwrap(), vec![("k".to_string(), "v".to_string())]);
//! ```

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kstreams_state::{ChangelogRecord, ChangelogSink, StateResult, StoreContext};

use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::partitioner::default_partition;
use crate::processor::node::ConsumedBytes;
use crate::record::{Data, Record};
use crate::serde::SharedSerde;
use crate::store::{KeyValueStore, SessionStore, ValueAndTimestamp, WindowStore};
use crate::task::core::RecordCollector;
use crate::task::global::GlobalStores;
use crate::task::{StreamTask, TaskId};
use crate::topology::Topology;
use crate::windowed::Windowed;

/// Settings of a [`TopologyTestDriver`].
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64())).to("out", Produced::default());
/// let config = TestDriverConfig::new("app").partitions("in", 4).partitions("out", 4).wall_clock_ms(1_000);
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), config).unwrap();
/// assert_eq!(driver.tasks().len(), 4);
/// ```
#[derive(Debug, Clone)]
pub struct TestDriverConfig {
    application_id: String,
    partitions: HashMap<String, i32>,
    start_wall_clock_ms: i64,
    state_dir: Option<PathBuf>,
}

impl TestDriverConfig {
    /// Topics with one partition, wall clock at 0, state in a temporary folder.
    pub fn new(application_id: &str) -> Self {
        TestDriverConfig {
            application_id: application_id.to_string(),
            partitions: HashMap::new(),
            start_wall_clock_ms: 0,
            state_dir: None,
        }
    }
    /// Gives `topic` (an input, output or repartition topic, named as in the topology) `count`
    /// partitions.
    pub fn partitions(mut self, topic: &str, count: i32) -> Self {
        self.partitions.insert(topic.to_string(), count.max(1));
        self
    }
    /// Starts the wall clock at `ms`.
    pub fn wall_clock_ms(mut self, ms: i64) -> Self {
        self.start_wall_clock_ms = ms;
        self
    }
    /// Keeps state under `dir` instead of a temporary folder.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }
}

/// A record written by the topology, as the driver captured it.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// builder.stream("in", Consumed::with(Serdes::string(), Serdes::string())).to("out", Produced::default());
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
/// driver.input_topic("in", Serdes::string(), Serdes::string()).pipe("k".into(), "v".into(), 5).unwrap();
/// let produced = driver.produced_to("out");
/// assert_eq!((produced[0].value.as_deref(), produced[0].timestamp), (Some(&b"v"[..]), 5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducedRecord {
    /// The topic (internal topics carry the application id).
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Key bytes.
    pub key: Option<Vec<u8>>,
    /// Value bytes.
    pub value: Option<Vec<u8>>,
    /// Timestamp.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
}

#[derive(Default)]
struct Produced {
    records: Vec<ProducedRecord>,
}

/// Topic partition counts shared by collectors.
type Partitions = Arc<Mutex<HashMap<String, i32>>>;

struct DriverCollector {
    produced: Arc<Mutex<Produced>>,
    partitions: Partitions,
    round_robin: u32,
}

impl DriverCollector {
    fn count(&self, topic: &str) -> i32 {
        self.partitions.lock().map(|p| p.get(topic).copied().unwrap_or(1)).unwrap_or(1)
    }
}

impl RecordCollector for DriverCollector {
    fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<()> {
        let count = self.count(topic);
        let partition = partition.unwrap_or_else(|| {
            self.round_robin = self.round_robin.wrapping_add(1);
            (self.round_robin % count as u32) as i32
        });
        if partition < 0 || partition >= count {
            return Err(StreamsError::IllegalState(format!(
                "partition {partition} of `{topic}` does not exist (it has {count})"
            )));
        }
        let record =
            ProducedRecord { topic: topic.to_string(), partition, key, value, timestamp, headers: headers.clone() };
        self.produced
            .lock()
            .map_err(|_| StreamsError::IllegalState("test driver output lock poisoned".into()))?
            .records
            .push(record);
        Ok(())
    }

    fn partitions_for(&mut self, topic: &str) -> Result<i32> {
        Ok(self.count(topic))
    }
}

struct DriverChangelog {
    produced: Arc<Mutex<Produced>>,
}

impl ChangelogSink for DriverChangelog {
    fn send(&self, r: ChangelogRecord<'_>) -> StateResult<()> {
        if let Ok(mut produced) = self.produced.lock() {
            produced.records.push(ProducedRecord {
                topic: r.topic.to_string(),
                partition: r.partition,
                key: Some(r.key.to_vec()),
                value: r.value.map(<[u8]>::to_vec),
                timestamp: r.timestamp,
                headers: Headers::new(),
            });
        }
        Ok(())
    }
}

struct Inner {
    application_id: String,
    tasks: BTreeMap<TaskId, StreamTask>,
    /// Which sub-topology reads each (resolved) topic.
    readers: HashMap<String, u32>,
    /// The global stores, updated from their topics; every task reads them.
    global: GlobalStores,
    partitions: Partitions,
    produced: Arc<Mutex<Produced>>,
    outputs: HashMap<String, VecDeque<ProducedRecord>>,
    offsets: HashMap<(String, i32), i64>,
    input_round_robin: u32,
    wall_clock_ms: i64,
    _state_dir: Option<tempfile::TempDir>,
}

/// Runs a [`Topology`] without a broker. See the [module docs](self).
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by_key(Grouped::default())
///     .count(Materialized::as_("clicks"));
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
/// let clicks = driver.input_topic("clicks", Serdes::string(), Serdes::string());
/// clicks.pipe_all([("ann".to_string(), "/".to_string(), 1), ("ann".to_string(), "/a".to_string(), 2)]).unwrap();
/// assert_eq!(driver.key_value_store_entries::<String, i64>("clicks").unwrap(), [("ann".to_string(), 2)]);
/// ```
pub struct TopologyTestDriver {
    inner: Rc<RefCell<Inner>>,
}

impl TopologyTestDriver {
    /// Builds every task of `topology` and initializes it.
    pub fn new(topology: Topology, config: TestDriverConfig) -> Result<Self> {
        topology.validate()?;
        let app = config.application_id.clone();
        let subs = topology.subtopologies();
        let internal: HashMap<String, crate::topology::InternalTopic> =
            topology.internal_topics().into_iter().map(|t| (t.name.clone(), t)).collect();
        let resolve = |t: &str| if internal.contains_key(t) { format!("{app}-{t}") } else { t.to_string() };

        // Partition counts: configured (default 1) for external topics, derived for internal ones.
        let mut known: HashMap<String, i32> = HashMap::new();
        for sub in &subs {
            for t in sub.source_topics.iter().chain(sub.sink_topics.iter()) {
                if !internal.contains_key(t) {
                    known.insert(t.clone(), config.partitions.get(t).copied().unwrap_or(1));
                }
            }
        }
        for g in &topology.global {
            known.insert(g.topic.clone(), config.partitions.get(&g.topic).copied().unwrap_or(1));
        }
        for (t, n) in &config.partitions {
            known.insert(t.clone(), *n);
        }
        let counts: HashMap<String, i32> =
            topology.resolve_partition_counts(&known)?.into_iter().map(|(t, n)| (resolve(&t), n)).collect();
        let partitions: Partitions = Arc::new(Mutex::new(counts.clone()));
        let produced = Arc::new(Mutex::new(Produced::default()));
        let temp = match &config.state_dir {
            Some(_) => None,
            None => {
                Some(tempfile::tempdir().map_err(|e| StreamsError::IllegalState(format!("temporary state dir: {e}")))?)
            }
        };
        let state_root = match (&config.state_dir, &temp) {
            (Some(dir), _) => dir.clone(),
            (None, Some(t)) => t.path().to_path_buf(),
            (None, None) => unreachable!("a temporary dir exists when none was configured"),
        };

        let global_dir = state_root.join(&app).join("global");
        let global = GlobalStores::open(&topology, &global_dir, &kstreams_state::RocksDbResources::shared_default())?;
        let mut tasks = BTreeMap::new();
        let mut readers = HashMap::new();
        for sub in &subs {
            let mut task_count = None;
            for t in &sub.source_topics {
                readers.insert(resolve(t), sub.id);
                task_count = counts.get(&resolve(t)).copied();
            }
            for partition in 0..task_count.unwrap_or(1) {
                let record_timestamp = Arc::new(AtomicI64::new(0));
                let id = TaskId { subtopology: sub.id, partition };
                let ctx = StoreContext {
                    application_id: app.clone(),
                    task_dir: state_root.join(&app).join(id.to_string()),
                    partition,
                    changelog: Some(Arc::new(DriverChangelog { produced: produced.clone() })),
                    record_timestamp: record_timestamp.clone(),
                };
                let collector =
                    DriverCollector { produced: produced.clone(), partitions: partitions.clone(), round_robin: 0 };
                let mut task = StreamTask::new(
                    &topology,
                    sub,
                    partition,
                    &app,
                    Box::new(collector),
                    record_timestamp,
                    &mut |spec| Ok(kstreams_state::open_store(spec, &ctx)?),
                    &global,
                )?;
                task.init(config.start_wall_clock_ms)?;
                tasks.insert(id, task);
            }
        }
        let inner = Inner {
            application_id: app,
            tasks,
            readers,
            global,
            partitions,
            produced,
            outputs: HashMap::new(),
            offsets: HashMap::new(),
            input_round_robin: 0,
            wall_clock_ms: config.start_wall_clock_ms,
            _state_dir: temp,
        };
        let driver = TopologyTestDriver { inner: Rc::new(RefCell::new(inner)) };
        driver.inner.borrow_mut().drain()?;
        Ok(driver)
    }

    /// A typed handle to pipe records into `topic`.
    pub fn input_topic<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> TestInputTopic<K, V> {
        TestInputTopic { inner: self.inner.clone(), topic: topic.to_string(), key_serde, value_serde }
    }

    /// A typed handle to read what the topology wrote to `topic` (for internal topics, give the full
    /// name with the application id).
    pub fn output_topic<K: Data, V: Data>(
        &self,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> TestOutputTopic<K, V> {
        TestOutputTopic { inner: self.inner.clone(), topic: topic.to_string(), key_serde, value_serde }
    }

    /// Advances the wall clock and runs the wall-clock punctuations that come due.
    pub fn advance_wall_clock_time(&self, by: Duration) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        inner.wall_clock_ms = inner.wall_clock_ms.saturating_add(crate::store::millis(by));
        let now = inner.wall_clock_ms;
        for task in inner.tasks.values_mut() {
            task.punctuate_wall_clock(now)?;
        }
        inner.drain()
    }

    /// Every entry of the key-value store `name`, over all tasks, in task then key order; for a
    /// global store, its entries in key order.
    pub fn key_value_store_entries<K: Data, V: Data>(&self, name: &str) -> Result<Vec<(K, V)>> {
        self.collect_store::<KeyValueStore<K, V>, _>(name, |s| s.all())
    }

    /// Every window of the window store `name`, over all tasks.
    pub fn window_store_entries<K: Data, V: Data>(&self, name: &str) -> Result<Vec<(Windowed<K>, V)>> {
        self.collect_store::<WindowStore<K, V>, _>(name, |s| s.all())
    }

    /// Like [`key_value_store_entries`](Self::key_value_store_entries), with the timestamp each value
    /// is stored with (the stores under the DSL's tables keep one, as Kafka Streams' do).
    pub fn key_value_store_entries_with_timestamps<K: Data, V: Data>(
        &self,
        name: &str,
    ) -> Result<Vec<(K, ValueAndTimestamp<V>)>> {
        self.collect_store::<KeyValueStore<K, V>, _>(name, |s| s.all_with_timestamp())
    }

    /// Like [`window_store_entries`](Self::window_store_entries), with the timestamp each value is
    /// stored with.
    pub fn window_store_entries_with_timestamps<K: Data, V: Data>(
        &self,
        name: &str,
    ) -> Result<Vec<(Windowed<K>, ValueAndTimestamp<V>)>> {
        self.collect_store::<WindowStore<K, V>, _>(name, |s| s.all_with_timestamp())
    }

    /// Runs `f` on the store `name` of the task for `partition` of the sub-topology that owns it
    /// (on a read-only view of a global store, whatever the partition).
    pub fn with_store<S: 'static, R>(&self, name: &str, partition: i32, f: impl FnOnce(&mut S) -> R) -> Result<R> {
        let mut inner = self.inner.borrow_mut();
        for (id, task) in inner.tasks.iter_mut() {
            if id.partition == partition {
                if let Some(store) = task.store_mut::<S>(name) {
                    return Ok(f(store));
                }
            }
        }
        if let Some(mut view) = inner.global.views()?.remove(name) {
            if let Some(store) = view.as_any_mut().downcast_mut::<S>() {
                return Ok(f(store));
            }
        }
        Err(StreamsError::IllegalState(format!("no store `{name}` of that type for partition {partition}")))
    }

    /// The session store `name` of the task for `partition`, for lookups.
    pub fn session_store<K: Data, V: Data, R>(
        &self,
        name: &str,
        partition: i32,
        f: impl FnOnce(&mut SessionStore<K, V>) -> R,
    ) -> Result<R> {
        self.with_store::<SessionStore<K, V>, R>(name, partition, f)
    }

    fn collect_store<S: 'static, T>(&self, name: &str, f: impl Fn(&mut S) -> Result<Vec<T>>) -> Result<Vec<T>> {
        let mut inner = self.inner.borrow_mut();
        let mut found = false;
        let mut all = Vec::new();
        for task in inner.tasks.values_mut() {
            if let Some(store) = task.store_mut::<S>(name) {
                found = true;
                all.extend(f(store)?);
            }
        }
        if let Some(mut view) = inner.global.views()?.remove(name) {
            if let Some(store) = view.as_any_mut().downcast_mut::<S>() {
                found = true;
                all.extend(f(store)?);
            }
        }
        if !found {
            return Err(StreamsError::IllegalState(format!("no store `{name}` with these types in the topology")));
        }
        Ok(all)
    }

    /// Records dropped by all tasks (late or invalid timestamps, …) and by the global stores (no key,
    /// or a negative timestamp from the `Consumed`'s extractor).
    pub fn dropped_records(&self) -> u64 {
        let inner = self.inner.borrow();
        inner.tasks.values().map(StreamTask::dropped_records).sum::<u64>() + inner.global.dropped_records()
    }

    /// The tasks the driver runs.
    pub fn tasks(&self) -> Vec<TaskId> {
        self.inner.borrow().tasks.keys().copied().collect()
    }

    /// Every record written so far to `topic` (full name), still unread or not, for inspection of
    /// internal topics such as changelogs and repartition topics.
    pub fn produced_to(&self, topic: &str) -> Vec<ProducedRecord> {
        let inner = self.inner.borrow();
        inner.outputs.get(topic).map(|q| q.iter().cloned().collect()).unwrap_or_default()
    }

    /// The application id.
    pub fn application_id(&self) -> String {
        self.inner.borrow().application_id.clone()
    }
}

impl Drop for TopologyTestDriver {
    fn drop(&mut self) {
        if let Ok(mut inner) = self.inner.try_borrow_mut() {
            for task in inner.tasks.values_mut() {
                if let Err(e) = task.close() {
                    tracing::warn!(task = %task.id(), error = %e, "closing a task of the test driver failed");
                }
            }
            if let Err(e) = inner.global.close() {
                tracing::warn!(error = %e, "closing the global stores of the test driver failed");
            }
        }
    }
}

impl Inner {
    fn partitions_of(&self, topic: &str) -> i32 {
        self.partitions.lock().map(|p| p.get(topic).copied().unwrap_or(1)).unwrap_or(1)
    }

    /// Feeds one record to the task that reads `topic`'s `partition`, or to the global store that
    /// reads `topic`.
    fn deliver(&mut self, record: ProducedRecord) -> Result<()> {
        let offset = {
            let o = self.offsets.entry((record.topic.clone(), record.partition)).or_insert(0);
            *o += 1;
            *o - 1
        };
        if self.global.reads(&record.topic) {
            self.global.update(ConsumedBytes {
                topic: &record.topic,
                partition: record.partition,
                offset,
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                timestamp: record.timestamp,
                headers: record.headers,
            })?;
            return Ok(());
        }
        let Some(&sub) = self.readers.get(&record.topic) else {
            return Err(StreamsError::IllegalState(format!("no source reads topic `{}`", record.topic)));
        };
        let id = TaskId { subtopology: sub, partition: record.partition };
        let task = self.tasks.get_mut(&id).ok_or_else(|| {
            StreamsError::IllegalState(format!("no task {id} for partition {} of `{}`", record.partition, record.topic))
        })?;
        task.process(ConsumedBytes {
            topic: &record.topic,
            partition: record.partition,
            offset,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            timestamp: record.timestamp,
            headers: record.headers,
        })?;
        task.punctuate_stream_time()?;
        Ok(())
    }

    /// Routes everything the tasks wrote: to the tasks that read it, and to the output queues.
    fn drain(&mut self) -> Result<()> {
        loop {
            let batch = match self.produced.lock() {
                Ok(mut p) => std::mem::take(&mut p.records),
                Err(_) => return Err(StreamsError::IllegalState("test driver output lock poisoned".into())),
            };
            if batch.is_empty() {
                return Ok(());
            }
            for record in batch {
                self.outputs.entry(record.topic.clone()).or_default().push_back(record.clone());
                if self.readers.contains_key(&record.topic) || self.global.reads(&record.topic) {
                    self.deliver(record)?;
                }
            }
        }
    }
}

/// Pipes typed records into one input topic of a [`TopologyTestDriver`].
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::record::Record;
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64())).to("out", Produced::default());
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
/// let input = driver.input_topic("in", Serdes::string(), Serdes::i64());
/// input.pipe("a".into(), 1, 10).unwrap();
/// input.pipe_record(Record::new("b".to_string(), 2, 11)).unwrap();
/// assert!(input.pipe_bytes(Some(b"c".to_vec()), Some(b"no".to_vec()), 12, Headers::new()).is_err()); // not an i64
/// ```
pub struct TestInputTopic<K, V> {
    inner: Rc<RefCell<Inner>>,
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data, V: Data> TestInputTopic<K, V> {
    /// Pipes one record with `timestamp` (ms); it is processed, with everything it causes, before
    /// this returns.
    pub fn pipe(&self, key: K, value: V, timestamp: i64) -> Result<()> {
        self.pipe_record(Record::new(key, value, timestamp))
    }

    /// Pipes one record with headers.
    pub fn pipe_record(&self, record: Record<K, V>) -> Result<()> {
        let serialization =
            |source| StreamsError::Serialization { target: self.topic.clone(), source: Box::new(source) };
        let key = self.key_serde.serialize(&self.topic, &record.headers, &record.key).map_err(serialization)?;
        let value = self.value_serde.serialize(&self.topic, &record.headers, &record.value).map_err(serialization)?;
        self.pipe_bytes(key, value, record.timestamp, record.headers)
    }

    /// Pipes raw bytes (for example a payload that cannot be deserialized).
    pub fn pipe_bytes(
        &self,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
    ) -> Result<()> {
        let mut inner = self.inner.borrow_mut();
        let count = inner.partitions_of(&self.topic);
        let partition = match &key {
            Some(k) => default_partition(k, count),
            None => {
                inner.input_round_robin = inner.input_round_robin.wrapping_add(1);
                (inner.input_round_robin % count as u32) as i32
            }
        };
        let record = ProducedRecord { topic: self.topic.clone(), partition, key, value, timestamp, headers };
        inner.deliver(record)?;
        inner.drain()
    }

    /// Pipes `(key, value, timestamp)` records in order.
    pub fn pipe_all(&self, records: impl IntoIterator<Item = (K, V, i64)>) -> Result<()> {
        for (k, v, ts) in records {
            self.pipe(k, v, ts)?;
        }
        Ok(())
    }
}

/// Reads the typed records a [`TopologyTestDriver`] wrote to one topic, oldest first.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// let builder = StreamsBuilder::new();
/// builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64())).to("out", Produced::default());
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
/// driver.input_topic("in", Serdes::string(), Serdes::i64()).pipe("a".into(), 1, 10).unwrap();
/// let out = driver.output_topic("out", Serdes::string(), Serdes::i64());
/// assert_eq!(out.read_key_values_with_time().unwrap(), [("a".to_string(), 1, 10)]);
/// assert!(out.is_empty(), "reading consumes");
/// ```
pub struct TestOutputTopic<K, V> {
    inner: Rc<RefCell<Inner>>,
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<K: Data, V: Data> TestOutputTopic<K, V> {
    /// Reads and removes every record written so far, with partitions.
    pub fn read_records(&self) -> Result<Vec<(i32, Record<K, V>)>> {
        let records: Vec<ProducedRecord> = {
            let mut inner = self.inner.borrow_mut();
            inner.outputs.get_mut(&self.topic).map(|q| q.drain(..).collect()).unwrap_or_default()
        };
        records
            .into_iter()
            .map(|r| {
                let error = |part, source| StreamsError::Deserialization {
                    topic: self.topic.clone(),
                    partition: r.partition,
                    offset: -1,
                    part,
                    source: Box::new(source),
                };
                let key = self
                    .key_serde
                    .deserialize(&self.topic, &r.headers, r.key.as_deref())
                    .map_err(|e| error("key", e))?;
                let value = self
                    .value_serde
                    .deserialize(&self.topic, &r.headers, r.value.as_deref())
                    .map_err(|e| error("value", e))?;
                Ok((r.partition, Record { key, value, timestamp: r.timestamp, headers: r.headers }))
            })
            .collect()
    }

    /// Reads and removes every record, as `(key, value)`.
    pub fn read_key_values(&self) -> Result<Vec<(K, V)>> {
        Ok(self.read_records()?.into_iter().map(|(_, r)| (r.key, r.value)).collect())
    }

    /// Reads and removes every record, as `(key, value, timestamp)`.
    pub fn read_key_values_with_time(&self) -> Result<Vec<(K, V, i64)>> {
        Ok(self.read_records()?.into_iter().map(|(_, r)| (r.key, r.value, r.timestamp)).collect())
    }

    /// Reads and removes every record, keeping only the last value per key (a table's final state).
    pub fn read_key_value_map(&self) -> Result<BTreeMap<K, V>>
    where
        K: Ord,
    {
        Ok(self.read_key_values()?.into_iter().collect())
    }

    /// Whether nothing is waiting to be read.
    pub fn is_empty(&self) -> bool {
        self.inner.borrow().outputs.get(&self.topic).is_none_or(VecDeque::is_empty)
    }
}
