//! Tasks: one sub-topology running for one partition, with its own processors and stores.

pub(crate) mod core;
pub(crate) mod global;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use kstreams_state::layers::SharedStore;
use kstreams_state::{OpenedStore, StateStore, StoreSpec};

use self::core::{NodeSlot, RecordCollector, TaskCore};
use crate::error::{Result, StreamsError};
use crate::metrics::TaskMetrics;
use crate::processor::node::{ConsumedBytes, RawSource};
use crate::processor::PunctuationType;
use crate::record::{RawRecord, RecordMetadata};
use crate::task::global::GlobalStores;
use crate::topology::{NodeKind, SubTopology, Topology};

pub use self::core::RecordCollector as Collector;

/// Identifies a task: a sub-topology and a partition, printed `<sub-topology>_<partition>` as in
/// Kafka Streams.
///
/// ```
/// use kstreams_streams::task::TaskId;
/// assert_eq!(TaskId { subtopology: 1, partition: 3 }.to_string(), "1_3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The sub-topology.
    pub subtopology: u32,
    /// The input partition.
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// What became of one input record.
///
/// ```
/// use kstreams_streams::task::Processed;
/// let outcome = Processed::InvalidTimestamp; // dropped, logged and counted
/// assert_ne!(outcome, Processed::Done);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Processed {
    /// It went through the topology.
    Done,
    /// Its timestamp was invalid (negative); it was dropped, logged and counted.
    InvalidTimestamp,
}

/// A sub-topology instantiated for one partition.
///
/// ```
/// use kstreams_streams::task::StreamTask;
/// /// A task's progress, for a log line.
/// fn progress(task: &StreamTask) -> String {
///     format!("task {}: stream time {}, {} records dropped", task.id(), task.stream_time(), task.dropped_records())
/// }
/// ```
pub struct StreamTask {
    core: TaskCore,
    /// The task's input topics (resolved names), found by a short linear search per record.
    sources: Vec<SourceTopic>,
    /// Every store of the task, as interactive queries read it.
    shared: Vec<(String, SharedStore)>,
}

/// One input topic of a task.
struct SourceTopic {
    topic: Arc<str>,
    /// The source node reading it.
    node: usize,
    source: Arc<dyn RawSource>,
    /// The largest timestamp seen on the task's partition of the topic.
    partition_time: i64,
}

impl StreamTask {
    /// Builds the task's processors and opens its stores with `open_store`; its processors read the
    /// `global` stores through read-only views.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        topology: &Topology,
        sub: &SubTopology,
        partition: i32,
        application_id: &str,
        collector: Box<dyn RecordCollector>,
        record_timestamp: Arc<AtomicI64>,
        open_store: &mut dyn FnMut(&StoreSpec) -> Result<OpenedStore>,
        global: &GlobalStores,
    ) -> Result<Self> {
        let id = TaskId { subtopology: sub.id, partition };
        let local: HashMap<usize, usize> = sub.nodes.iter().enumerate().map(|(l, &g)| (g, l)).collect();
        let internal: HashSet<String> = topology.internal_topics().into_iter().map(|t| t.name).collect();
        let internal = Arc::new(internal);
        let resolve = |t: &str| {
            if internal.contains(t) {
                format!("{application_id}-{t}")
            } else {
                t.to_string()
            }
        };
        let mut nodes = Vec::with_capacity(sub.nodes.len());
        let mut sources: Vec<SourceTopic> = Vec::new();
        for (l, &g) in sub.nodes.iter().enumerate() {
            let def = &topology.nodes[g];
            if let NodeKind::Source { topics, source } = &def.kind {
                for t in topics {
                    let topic: Arc<str> = resolve(t).into();
                    sources.retain(|s| s.topic != topic);
                    sources.push(SourceTopic { topic, node: l, source: source.clone(), partition_time: i64::MIN });
                }
            }
            nodes.push(NodeSlot {
                name: def.name.clone(),
                processor: Some((def.supplier)()),
                children: def.children.iter().filter_map(|c| local.get(c).copied()).collect(),
                stores: def.stores.clone(),
            });
        }
        let mut stores = HashMap::new();
        let mut caches = Vec::new();
        let mut shared = Vec::new();
        for (builder, _) in topology.stores.iter().filter(|(b, _)| sub.stores.contains(&b.spec().name)) {
            let spec = builder.spec();
            let mut opened = open_store(spec)?;
            if let Some(queue) = &opened.dirty {
                caches.push((spec.name.clone(), queue.clone()));
            }
            // The top layer: interactive queries read the store from other threads.
            let (store, readers) = SharedStore::share(opened.store);
            opened.store = store;
            shared.push((spec.name.clone(), readers));
            let topic = resolve(&format!("{}-changelog", spec.name));
            stores.insert(spec.name.clone(), builder.typed(opened, topic, record_timestamp.clone())?);
        }
        let core = TaskCore {
            task_id: id,
            application_id: application_id.to_string(),
            nodes,
            stores,
            global_stores: global.views()?,
            caches,
            collector,
            internal_topics: internal.clone(),
            record_metadata: None,
            record_timestamp,
            stream_time: i64::MIN,
            wall_clock_ms: 0,
            schedules: Vec::new(),
            next_schedule: 0,
            commit_requested: false,
            metrics: TaskMetrics::new(),
        };
        Ok(StreamTask { core, sources, shared })
    }

    /// Counts into `metrics` from now on (the runtime's labelled, registered counters).
    pub(crate) fn set_metrics(&mut self, metrics: TaskMetrics) {
        self.core.metrics = metrics;
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.core.task_id
    }

    /// Initializes every processor, sources first, as Kafka Streams does.
    pub(crate) fn init(&mut self, wall_clock_ms: i64) -> Result<()> {
        self.core.wall_clock_ms = wall_clock_ms;
        for node in 0..self.core.nodes.len() {
            self.core.init_node(node)?;
        }
        Ok(())
    }

    /// Runs one consumed record through the topology. A deserialization failure comes back as
    /// [`StreamsError::Deserialization`] for the caller's handler; nothing has been processed then.
    pub(crate) fn process(&mut self, bytes: ConsumedBytes<'_>) -> Result<Processed> {
        let (topic, partition, offset) = (bytes.topic.to_string(), bytes.partition, bytes.offset);
        let record = self.decode(bytes)?;
        self.process_decoded(&topic, partition, offset, record)
    }

    /// Deserializes a consumed record with the source reading its topic and extracts its
    /// timestamp (with the partition time so far), without processing it.
    pub(crate) fn decode(&self, bytes: ConsumedBytes<'_>) -> Result<RawRecord> {
        let input = self.source(bytes.topic)?;
        input.source.deserialize(bytes, input.partition_time)
    }

    /// Runs a record that [`decode`](Self::decode) decoded through the topology.
    pub(crate) fn process_decoded(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        record: RawRecord,
    ) -> Result<Processed> {
        let i = self.source_index(topic)?;
        let input = &self.sources[i];
        let node = input.node;
        let metadata = RecordMetadata { topic: input.topic.clone(), partition, offset };
        if record.timestamp < 0 {
            self.core.metrics.dropped_records.inc();
            tracing::warn!(
                task = %self.core.task_id, topic = %metadata.topic, partition = metadata.partition,
                offset = metadata.offset, timestamp = record.timestamp,
                "record dropped: its timestamp is negative (check the timestamp extractor)"
            );
            return Ok(Processed::InvalidTimestamp);
        }
        self.sources[i].partition_time = self.sources[i].partition_time.max(record.timestamp);
        self.core.stream_time = self.core.stream_time.max(record.timestamp);
        self.core.record_metadata = Some(metadata);
        self.core.process_node(node, record)?;
        // Entries the record caches evicted go downstream now.
        self.core.forward_cache_flushes(false)?;
        self.core.metrics.processed_records.inc();
        Ok(Processed::Done)
    }

    fn source_index(&self, topic: &str) -> Result<usize> {
        self.sources.iter().position(|s| &*s.topic == topic).ok_or_else(|| {
            StreamsError::IllegalState(format!("task {} has no source for topic `{topic}`", self.core.task_id))
        })
    }

    fn source(&self, topic: &str) -> Result<&SourceTopic> {
        self.source_index(topic).map(|i| &self.sources[i])
    }

    /// Runs stream-time punctuations that are due.
    pub(crate) fn punctuate_stream_time(&mut self) -> Result<usize> {
        if self.core.stream_time == i64::MIN {
            return Ok(0);
        }
        let now = self.core.stream_time;
        self.core.punctuate(PunctuationType::StreamTime, now)
    }

    /// Advances the task's wall clock to `now_ms` and runs the wall-clock punctuations that are due.
    pub(crate) fn punctuate_wall_clock(&mut self, now_ms: i64) -> Result<usize> {
        self.core.wall_clock_ms = now_ms;
        self.core.punctuate(PunctuationType::WallClockTime, now_ms)
    }

    /// Flushes the record caches and forwards what they held downstream: the first step of a commit,
    /// before the output is flushed or the transaction committed.
    pub(crate) fn flush_caches(&mut self) -> Result<()> {
        self.core.forward_cache_flushes(true)
    }

    /// The partition time (largest timestamp seen) of the task's partition of `topic`.
    pub(crate) fn partition_time(&self, topic: &str) -> Option<i64> {
        self.sources.iter().find(|s| &*s.topic == topic).map(|s| s.partition_time).filter(|&t| t != i64::MIN)
    }

    /// Resumes the partition time of `topic` from a committed offset's metadata (before
    /// [`init`](Self::init), so that processors start from the restored stream time).
    pub(crate) fn restore_partition_time(&mut self, topic: &str, time: i64) {
        if let Some(source) = self.sources.iter_mut().find(|s| &*s.topic == topic) {
            source.partition_time = source.partition_time.max(time);
            self.core.stream_time = self.core.stream_time.max(time);
        }
    }

    /// The task's stores as interactive queries read them, by name.
    pub(crate) fn shared_stores(&self) -> &[(String, SharedStore)] {
        &self.shared
    }

    /// The task's stores, as byte stores (for commits and checkpoints).
    pub(crate) fn state_stores(&mut self) -> impl Iterator<Item = &mut dyn StateStore> + '_ {
        self.core.stores.values_mut().map(|s| s.state())
    }

    /// Whether a processor asked for a commit since the last call.
    pub(crate) fn take_commit_request(&mut self) -> bool {
        std::mem::take(&mut self.core.commit_requested)
    }

    /// The task's stream time.
    pub fn stream_time(&self) -> i64 {
        self.core.stream_time
    }

    /// Records dropped so far (late, invalid timestamp, …).
    pub fn dropped_records(&self) -> u64 {
        self.core.metrics.dropped_records.get()
    }

    /// A typed store of this task, for tests and interactive queries.
    pub(crate) fn store_mut<S: 'static>(&mut self, name: &str) -> Option<&mut S> {
        self.core.stores.get_mut(name).and_then(|s| s.as_any_mut().downcast_mut::<S>())
    }

    /// Closes processors and stores.
    pub(crate) fn close(&mut self) -> Result<()> {
        let mut first_error = None;
        for slot in &mut self.core.nodes {
            if let Some(p) = slot.processor.as_mut() {
                if let Err(e) = p.close() {
                    first_error.get_or_insert(e);
                }
            }
        }
        for store in self.core.stores.values_mut() {
            if let Err(e) = store.state().close() {
                first_error.get_or_insert(e.into());
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl StreamTask {
    /// Counts a record skipped by the runtime (e.g. by the log-and-continue deserialization handler).
    pub(crate) fn count_dropped(&mut self) {
        self.core.metrics.dropped_records.inc();
    }
}
