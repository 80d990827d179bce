//! The state a task's processors share while it runs: its nodes, stores, clocks and output.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kstreams_state::{DirtyQueue, StateStore};

use crate::error::{catch_panics, Result, StreamsError};
use crate::header::Headers;
use crate::metrics::TaskMetrics;
use crate::processor::node::RawProcessor;
use crate::processor::{PunctuationType, ScheduleId};
use crate::record::{RawRecord, RecordMetadata};
use crate::task::TaskId;

/// Where a task's sink records go: the runtime's producer, or the test driver's output topics.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::task::Collector as RecordCollector;
/// /// Collects records in memory (the test driver's collector does the same).
/// #[derive(Default)]
/// struct Memory(Vec<(String, Option<i32>, Option<Vec<u8>>)>);
/// impl RecordCollector for Memory {
///     fn send(&mut self, topic: &str, partition: Option<i32>, _key: Option<Vec<u8>>, value: Option<Vec<u8>>,
///             _timestamp: i64, _headers: &Headers) -> kstreams_streams::Result<()> {
///         self.0.push((topic.to_string(), partition, value));
///         Ok(())
///     }
///     fn partitions_for(&mut self, _topic: &str) -> kstreams_streams::Result<i32> {
///         Ok(1)
///     }
/// }
/// ```
pub trait RecordCollector: Send {
    /// Sends one record; `partition` is `None` when the producer may choose (null key).
    fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<()>;

    /// How many partitions `topic` has.
    fn partitions_for(&mut self, topic: &str) -> Result<i32>;
}

/// A store as a task holds it: typed for processors, untyped for the task's lifecycle.
pub(crate) trait RegisteredStore: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn state(&mut self) -> &mut dyn StateStore;
}

pub(crate) struct NodeSlot {
    pub name: String,
    pub processor: Option<Box<dyn RawProcessor>>,
    pub children: Vec<usize>,
    pub stores: Vec<String>,
}

pub(crate) struct Schedule {
    pub id: ScheduleId,
    pub node: usize,
    pub interval: i64,
    pub kind: PunctuationType,
    /// When it fires next; `None` for a stream-time schedule that waits for its first record.
    pub next: Option<i64>,
}

pub(crate) struct TaskCore {
    pub task_id: TaskId,
    pub application_id: String,
    pub nodes: Vec<NodeSlot>,
    pub stores: HashMap<String, Box<dyn RegisteredStore>>,
    /// Read-only views of the global stores, which every processor may read unconnected.
    pub global_stores: HashMap<String, Box<dyn RegisteredStore>>,
    /// The dirty-entry queues of the cached stores.
    pub caches: Vec<(String, DirtyQueue)>,
    pub collector: Box<dyn RecordCollector>,
    pub internal_topics: Arc<HashSet<String>>,
    pub record_metadata: Option<RecordMetadata>,
    pub record_timestamp: Arc<AtomicI64>,
    pub stream_time: i64,
    pub wall_clock_ms: i64,
    pub schedules: Vec<Schedule>,
    pub next_schedule: u64,
    pub commit_requested: bool,
    pub metrics: TaskMetrics,
}

impl TaskCore {
    pub fn node_name(&self, node: usize) -> &str {
        self.nodes.get(node).map(|n| n.name.as_str()).unwrap_or("?")
    }

    /// The real name of `topic`: internal topics (repartition, changelog) carry the application id.
    pub fn resolve_topic(&self, topic: &str) -> String {
        if self.internal_topics.contains(topic) {
            format!("{}-{topic}", self.application_id)
        } else {
            topic.to_string()
        }
    }

    /// Runs `record` through node `node`.
    pub fn process_node(&mut self, node: usize, record: RawRecord) -> Result<()> {
        let mut processor = self.take_processor(node)?;
        self.record_timestamp.store(record.timestamp, Ordering::Relaxed);
        let result = catch_panics(|| processor.process(self, node, record));
        self.nodes[node].processor = Some(processor);
        result.map_err(|e| self.attribute(node, e))
    }

    /// Forwards `record` from `from` to its children (or to the child named `only`).
    pub fn forward(&mut self, from: usize, record: RawRecord, only: Option<&str>) -> Result<()> {
        if let Some(name) = only {
            let child =
                self.nodes[from].children.iter().copied().find(|&c| self.nodes[c].name == name).ok_or_else(|| {
                    StreamsError::Topology(format!("`{name}` is not a child of processor `{}`", self.nodes[from].name))
                })?;
            return self.process_node(child, record);
        }
        let timestamp = record.timestamp;
        // Children by index: the list is not cloned per record (processors cannot change it).
        let Some(last) = self.nodes[from].children.len().checked_sub(1) else {
            return Ok(());
        };
        for i in 0..last {
            let child = self.nodes[from].children[i];
            self.process_node(child, record.clone())?;
        }
        let child = self.nodes[from].children[last];
        self.process_node(child, record)?;
        self.record_timestamp.store(timestamp, Ordering::Relaxed);
        Ok(())
    }

    /// Lets the processors of cached stores forward what their caches flushed or evicted
    /// ([`Processor::flush_cache`](crate::processor::Processor::flush_cache)); with `flush_all`, the
    /// caches are flushed first (on commit), down to their stores but no further: making the stores
    /// durable is the commit's business. Entries no processor took are dropped: their changes
    /// are in the store and its changelog already.
    pub fn forward_cache_flushes(&mut self, flush_all: bool) -> Result<()> {
        if self.caches.is_empty() {
            return Ok(());
        }
        if flush_all {
            let names: Vec<String> = self.caches.iter().map(|(n, _)| n.clone()).collect();
            for name in names {
                if let Some(store) = self.stores.get_mut(&name) {
                    store.state().flush_cache()?;
                }
            }
        }
        let pending: Vec<String> = self
            .caches
            .iter()
            .filter(|(_, q)| q.lock().map(|q| !q.is_empty()).unwrap_or(true))
            .map(|(n, _)| n.clone())
            .collect();
        for name in pending {
            let owners: Vec<usize> = (0..self.nodes.len()).filter(|&n| self.nodes[n].stores.contains(&name)).collect();
            for node in owners {
                let mut processor = self.take_processor(node)?;
                let result = catch_panics(|| processor.flush_cache(self, node));
                self.nodes[node].processor = Some(processor);
                result.map_err(|e| self.attribute(node, e))?;
            }
            if let Some((_, queue)) = self.caches.iter().find(|(n, _)| *n == name) {
                if let Ok(mut q) = queue.lock() {
                    q.clear();
                }
            }
        }
        Ok(())
    }

    pub fn init_node(&mut self, node: usize) -> Result<()> {
        let mut processor = self.take_processor(node)?;
        let result = catch_panics(|| processor.init(self, node));
        self.nodes[node].processor = Some(processor);
        result.map_err(|e| self.attribute(node, e))
    }

    pub fn punctuate_node(&mut self, node: usize, id: ScheduleId, timestamp: i64) -> Result<()> {
        let mut processor = self.take_processor(node)?;
        let result = catch_panics(|| processor.punctuate(self, node, id, timestamp));
        self.nodes[node].processor = Some(processor);
        result.map_err(|e| self.attribute(node, e))
    }

    fn take_processor(&mut self, node: usize) -> Result<Box<dyn RawProcessor>> {
        let slot = self
            .nodes
            .get_mut(node)
            .ok_or_else(|| StreamsError::Topology(format!("no processor with index {node}")))?;
        slot.processor.take().ok_or_else(|| {
            StreamsError::Topology(format!(
                "processor `{}` was re-entered: a topology must not forward a record back to a processor that is \
                 still processing it",
                slot.name
            ))
        })
    }

    /// Names the processor in a user error that does not name one yet.
    fn attribute(&self, node: usize, error: StreamsError) -> StreamsError {
        match error {
            StreamsError::Processing { node: n, source } if n.is_empty() => {
                StreamsError::Processing { node: self.nodes[node].name.clone(), source }
            }
            other => other,
        }
    }

    /// The store `name` of processor `node`: one connected to it, or a global store.
    pub fn store<S: 'static>(&mut self, node: usize, name: &str, kind: &str) -> Result<&mut S> {
        let slot = &self.nodes[node];
        if !slot.stores.iter().any(|s| s == name) {
            if let Some(global) = self.global_stores.get_mut(name) {
                return global.as_any_mut().downcast_mut::<S>().ok_or_else(|| StreamsError::StoreAccess {
                    node: slot.name.clone(),
                    store: name.to_string(),
                    reason: format!("it is a global key-value store, not {kind} with these key and value types"),
                });
            }
            return Err(StreamsError::StoreAccess {
                node: slot.name.clone(),
                store: name.to_string(),
                reason: "the store is not connected to this processor; connect it when adding the processor or \
                         the store"
                    .into(),
            });
        }
        let node_name = slot.name.clone();
        let store = self.stores.get_mut(name).ok_or_else(|| StreamsError::StoreAccess {
            node: node_name.clone(),
            store: name.to_string(),
            reason: "no such store in this task".into(),
        })?;
        store.as_any_mut().downcast_mut::<S>().ok_or_else(|| StreamsError::StoreAccess {
            node: node_name,
            store: name.to_string(),
            reason: format!("it is not {kind} with these key and value types"),
        })
    }

    pub fn schedule(&mut self, node: usize, interval: i64, kind: PunctuationType) -> ScheduleId {
        let id = ScheduleId(self.next_schedule);
        self.next_schedule += 1;
        let next = match kind {
            PunctuationType::StreamTime => None,
            PunctuationType::WallClockTime => Some(self.wall_clock_ms.saturating_add(interval)),
        };
        self.schedules.push(Schedule { id, node, interval, kind, next });
        id
    }

    pub fn cancel(&mut self, id: ScheduleId) {
        self.schedules.retain(|s| s.id != id);
    }

    /// Runs the punctuations of `kind` that are due at `now`; returns how many ran.
    pub fn punctuate(&mut self, kind: PunctuationType, now: i64) -> Result<usize> {
        let mut ran = 0;
        let ids: Vec<ScheduleId> = self.schedules.iter().filter(|s| s.kind == kind).map(|s| s.id).collect();
        for id in ids {
            let Some(schedule) = self.schedules.iter_mut().find(|s| s.id == id) else {
                continue; // cancelled by an earlier punctuation
            };
            let due = schedule.next.is_none_or(|next| now >= next);
            if !due {
                continue;
            }
            // The next time is aligned to the schedule; missed punctuations are skipped, not replayed.
            let base = schedule.next.unwrap_or(now);
            let missed = (now - base) / schedule.interval;
            schedule.next = Some(base + (missed + 1) * schedule.interval);
            let node = schedule.node;
            self.record_metadata = None;
            self.punctuate_node(node, id, now)?;
            ran += 1;
        }
        Ok(ran)
    }

    pub fn record_dropped(&mut self, node: usize, reason: &str) {
        self.metrics.dropped_records.inc();
        tracing::debug!(task = %self.task_id, processor = %self.nodes[node].name, reason, "record dropped");
    }
}
