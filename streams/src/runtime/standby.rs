//! Standby tasks (`num.standby.replicas`): warm copies of other instances' stores.
//!
//! A standby task opens the persistent logged stores of its task in this instance's state directory
//! and keeps them up to date by tailing their changelog partitions with the thread's standby
//! consumer (`read_committed`, so under exactly-once only committed writes arrive; no group, only
//! `assign`). It commits its stores with their changelog offsets at every commit of its thread
//! (under exactly-once the RocksDB stores keep the offset with their data; under at-least-once the
//! checkpoint file follows the usual rule) and closes them cleanly, with a checkpoint, when the
//! placement takes the standby away or makes it active. The active task then opens the same
//! folders and restores only the changelog tail the standby had not read yet.
//!
//! In-memory stores get no standby copy (it could not outlive the standby task); their tasks
//! restore them from the changelog when they become active, as without standbys.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use kstreams_state::{
    Backend, ChangelogRecord, ChangelogSink, OpenedStore, StateError, StateResult, StateStore, StoreContext,
    StoreOptions, TaskStateManager,
};

use kstreams_state::layers::SharedStore;

use crate::error::{Result, StreamsError};
use crate::query::local::LocalStores;
use crate::task::TaskId;
use crate::topology::{SubTopology, Topology};

/// Changelog records as stores restore them: key and value (`None`: a tombstone).
type ChangelogBatch = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A standby's stores write their memtables to disk after this many changelog records: the active
/// task that replaces the standby then replays little write-ahead log when it opens them.
const FLUSH_EVERY: u64 = 10_000;

/// Records the standby consumer hands over per call of [`Standbys::update`].
const MAX_RECORDS_PER_UPDATE: usize = 5_000;

/// Hooks called as standby tasks load changelog records (Kafka Streams' `StandbyUpdateListener`,
/// KIP-988).
///
/// ```
/// use kstreams_streams::runtime::StandbyUpdateListener;
/// struct Print;
/// impl StandbyUpdateListener for Print {
///     fn on_batch_loaded(&self, topic: &str, partition: i32, store: &str, batch_end_offset: i64, batch_size: u64) {
///         println!("{store}: {batch_size} records of {topic}-{partition} up to {batch_end_offset}");
///     }
/// }
/// ```
pub trait StandbyUpdateListener: Send + Sync {
    /// `batch_size` records of `topic`-`partition` up to `batch_end_offset` (inclusive) were
    /// applied to the standby copy of `store`.
    fn on_batch_loaded(&self, topic: &str, partition: i32, store: &str, batch_end_offset: i64, batch_size: u64);
}

/// A standby never writes: its stores only restore.
struct NoWrites;

impl ChangelogSink for NoWrites {
    fn send(&self, record: ChangelogRecord<'_>) -> StateResult<()> {
        Err(StateError::ReadOnly(format!("a standby task wrote to {}-{}", record.topic, record.partition)))
    }
}

/// The stores of one standby task.
struct StandbyTask {
    state: TaskStateManager,
    /// Each logged store with its changelog topic.
    stores: Vec<(String, OpenedStore)>,
    /// The offset of the last changelog record applied, per changelog topic.
    applied: HashMap<String, i64>,
    /// Records applied since the stores were last flushed.
    unflushed: u64,
}

/// Whether `sub`'s tasks get standbys: they have a logged persistent store.
pub(crate) fn has_standby_stores(topology: &Topology, sub: &SubTopology) -> bool {
    topology
        .stores
        .iter()
        .any(|(b, _)| sub.stores.contains(&b.spec().name) && b.spec().logging && b.spec().backend == Backend::RocksDb)
}

/// A thread's standby tasks and the consumer that keeps them up to date.
pub(crate) struct Standbys {
    consumer: BaseConsumer,
    tasks: BTreeMap<TaskId, StandbyTask>,
    /// Which task and store each changelog partition feeds, by topic and partition (looked up per
    /// record without allocating).
    routes: HashMap<String, HashMap<i32, (TaskId, usize)>>,
    application_id: String,
    state_dir: std::path::PathBuf,
    options: StoreOptions,
    listener: Option<Arc<dyn StandbyUpdateListener>>,
    /// Where stale interactive queries find the standby copies.
    local: Arc<LocalStores>,
}

impl Standbys {
    /// A standby consumer from the `restore.consumer.` client settings; `options` are the thread's
    /// store options (a standby's stores get no record cache).
    pub fn new(
        mut client: rdkafka::ClientConfig,
        application_id: &str,
        state_dir: &std::path::Path,
        mut options: StoreOptions,
        listener: Option<Arc<dyn StandbyUpdateListener>>,
        local: Arc<LocalStores>,
    ) -> Result<Standbys> {
        client
            .set("group.id", format!("{application_id}-standby"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        for (key, value) in [("queued.max.messages.kbytes", "8192"), ("fetch.wait.max.ms", "100")] {
            if client.get(key).is_none() {
                client.set(key, value);
            }
        }
        options.cache = None;
        Ok(Standbys {
            consumer: client.create()?,
            tasks: BTreeMap::new(),
            routes: HashMap::new(),
            application_id: application_id.to_string(),
            state_dir: state_dir.to_path_buf(),
            options,
            listener,
            local,
        })
    }

    pub fn ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    pub fn contains(&self, id: &TaskId) -> bool {
        self.tasks.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Opens a standby task for `sub`'s partition `partition` (its persistent logged stores).
    pub fn open(&mut self, topology: &Topology, sub: &SubTopology, partition: i32, exactly_once: bool) -> Result<()> {
        let id = TaskId { subtopology: sub.id, partition };
        if self.tasks.contains_key(&id) {
            return Ok(());
        }
        let ctx = StoreContext {
            application_id: self.application_id.clone(),
            task_dir: self.state_dir.join(&self.application_id).join(id.to_string()),
            partition,
            changelog: Some(Arc::new(NoWrites)),
            record_timestamp: Arc::new(AtomicI64::new(0)),
        };
        let mut state = TaskStateManager::new(&ctx.task_dir, partition, exactly_once)?;
        let mut stores = Vec::new();
        for (builder, _) in topology.stores.iter().filter(|(b, _)| sub.stores.contains(&b.spec().name)) {
            let spec = builder.spec();
            if !spec.logging || spec.backend != Backend::RocksDb {
                continue;
            }
            let mut opened = state.open(spec, &ctx, &self.options, None)?;
            if let Some(topic) = opened.changelog_topic.clone() {
                // Stale queries read the copy while the thread applies the changelog to it.
                let (store, shared) = SharedStore::share(opened.store);
                opened.store = store;
                self.local.standby(&spec.name, partition, shared);
                stores.push((topic, opened));
            }
        }
        tracing::info!(task = %id, stores = stores.len(), "standby task created");
        self.tasks.insert(id, StandbyTask { state, stores, applied: HashMap::new(), unflushed: 0 });
        self.reassign()
    }

    /// Commits and closes the standby task `id` (before its task becomes active here, or when the
    /// placement moves it away).
    pub fn close(&mut self, id: &TaskId) -> Result<()> {
        let Some(task) = self.tasks.remove(id) else { return Ok(()) };
        self.forget(*id, &task);
        close(*id, task)?;
        tracing::info!(task = %id, "standby task closed");
        self.reassign()
    }

    /// Closes every standby task.
    pub fn close_all(&mut self) {
        for (id, task) in std::mem::take(&mut self.tasks) {
            self.forget(id, &task);
            if let Err(e) = close(id, task) {
                tracing::warn!(task = %id, error = %e, "closing a standby task failed");
            }
        }
        self.routes.clear();
        let _ = self.consumer.unassign();
    }

    /// Queries stop finding the task's copies.
    fn forget(&self, id: TaskId, task: &StandbyTask) {
        let names: Vec<String> = task.stores.iter().map(|(_, s)| s.store.name().to_string()).collect();
        self.local.remove(&names, id.partition);
    }

    /// Assigns the standby consumer every standby changelog partition, from where each stands.
    fn reassign(&mut self) -> Result<()> {
        self.routes.clear();
        let mut list = TopicPartitionList::new();
        for (id, task) in &self.tasks {
            for (i, (topic, _)) in task.stores.iter().enumerate() {
                let next = task.applied.get(topic).map(|o| o + 1).or_else(|| {
                    let name = task.stores[i].1.store.name();
                    task.state.changelog_offset(name)
                });
                let offset = next.map_or(Offset::Beginning, Offset::Offset);
                list.add_partition_offset(topic, id.partition, offset)?;
                self.routes.entry(topic.clone()).or_default().insert(id.partition, (*id, i));
            }
        }
        if list.count() == 0 {
            self.consumer.unassign()?;
        } else {
            self.consumer.assign(&list)?;
        }
        Ok(())
    }

    /// Applies what the standby consumer fetched (at most [`MAX_RECORDS_PER_UPDATE`] records);
    /// returns how many records were applied.
    pub fn update(&mut self) -> Result<usize> {
        if self.tasks.is_empty() {
            return Ok(0);
        }
        // Per (task, store): the records to apply and the offset of the last one.
        let mut batches: HashMap<(TaskId, usize), (ChangelogBatch, i64)> = HashMap::new();
        let mut n = 0;
        while n < MAX_RECORDS_PER_UPDATE {
            let Some(result) = self.consumer.poll(Duration::ZERO) else { break };
            let m = match result {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "standby consumer error");
                    break;
                }
            };
            let Some(&(id, store)) = self.routes.get(m.topic()).and_then(|p| p.get(&m.partition())) else {
                continue;
            };
            let Some(key) = m.key() else { continue };
            let entry = batches.entry((id, store)).or_default();
            entry.0.push((key.to_vec(), m.payload().map(<[u8]>::to_vec)));
            entry.1 = m.offset();
            n += 1;
        }
        for ((id, store), (batch, last)) in batches {
            let Some(task) = self.tasks.get_mut(&id) else { continue };
            let (topic, opened) = &mut task.stores[store];
            opened.store.restore_batch(&batch)?;
            task.applied.insert(topic.clone(), last);
            task.unflushed += batch.len() as u64;
            if let Some(l) = &self.listener {
                l.on_batch_loaded(topic, id.partition, opened.store.name(), last, batch.len() as u64);
            }
        }
        Ok(n)
    }

    /// Commits every standby task's stores with the changelog offsets applied so far.
    pub fn commit(&mut self) -> Result<()> {
        for task in self.tasks.values_mut() {
            commit(task)?;
        }
        Ok(())
    }
}

fn commit(task: &mut StandbyTask) -> Result<()> {
    let applied = &task.applied;
    let stores = task.stores.iter_mut().map(|(_, s)| &mut s.store as &mut dyn StateStore);
    task.state.commit(stores, |topic| applied.get(topic).copied())?;
    if task.unflushed >= FLUSH_EVERY {
        for (_, opened) in &mut task.stores {
            opened.store.flush()?;
        }
        task.unflushed = 0;
    }
    Ok(())
}

/// Commits the task's stores, closes them and writes the checkpoint.
fn close(id: TaskId, mut task: StandbyTask) -> Result<()> {
    commit(&mut task)?;
    for (_, opened) in &mut task.stores {
        opened.store.close().map_err(|e| StreamsError::IllegalState(format!("closing standby {id}: {e}")))?;
    }
    task.state.close_clean()?;
    Ok(())
}
