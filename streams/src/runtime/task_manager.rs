//! A stream thread's tasks: which exist, their creation (with the restoration of their stores) and
//! their closing, as Kafka Streams' `TaskManager`. The thread's loop polls, processes and commits;
//! it tells the manager what the group assigned and revoked, and the manager makes the tasks agree.
//!
//! New tasks are created, and their stores restored, by the thread's [`StateUpdater`] while the
//! thread runs its other tasks; their input partitions stay paused until they come back.
//!
//! The manager also holds the thread's standby tasks ([`Standbys`]): warm copies of stores whose
//! active task runs elsewhere. A standby closes (with its checkpoint) before its task becomes active
//! here, so the active task only restores the changelog tail.
//!
//! Interactive queries learn of every change here: a task's stores are `Restoring` while it is
//! created and `Active` once it runs (see [`LocalStores`]), and gone before it closes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rustc_hash::FxHashMap;

use kstreams_state::{Restorer, StoreContext, StoreOptions, TaskStateManager};

use crate::error::{Result, StreamsError};
use crate::query::local::LocalStores;
use crate::runtime::collector::{KProducer, KafkaCollector};
use crate::runtime::commit_metadata;
use crate::runtime::config::{ExceptionHandler, ProcessingGuarantee, ValidConfig};
use crate::runtime::metrics::StreamsMetrics;
use crate::runtime::partition_group::PartitionGroup;
use crate::runtime::standby::Standbys;
use crate::runtime::state_updater::{self, MakeRestorer, Restored, StateUpdater};
use crate::runtime::thread::{self, KConsumer};
use crate::runtime::thread_metadata::ThreadMetadataSlot;
use crate::task::global::GlobalStores;
use crate::task::{StreamTask, TaskId};
use crate::topology::{SubTopology, Topology};

/// How long to wait for a previous owner's transaction to complete before restoring its tasks: more
/// than `transaction.timeout.ms`, after which the broker aborts it.
const STABLE_OFFSETS_TIMEOUT: Duration = Duration::from_secs(60);

/// Which stream thread of this process uses each task's state folder (Kafka Streams'
/// `StateDirectory` task locks). A task can move between two threads of one process in a
/// rebalance, or from one thread's standby to another's active task, and the threads act on the
/// new assignment at their own pace: the thread that gets the task waits until the other one
/// closed its copy, rather than opening the same RocksDB folder twice.
#[derive(Debug, Default)]
pub(crate) struct TaskDirLocks(Mutex<HashMap<TaskId, usize>>);

impl TaskDirLocks {
    /// Takes the folder of `task` for `thread`; false while another thread holds it.
    pub fn try_lock(&self, task: TaskId, thread: usize) -> bool {
        let mut held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *held.entry(task).or_insert(thread) == thread
    }

    /// Gives the folder of `task` back, if `thread` holds it.
    pub fn unlock(&self, task: TaskId, thread: usize) {
        let mut held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.get(&task) == Some(&thread) {
            held.remove(&task);
        }
    }
}

/// One running task with what the thread keeps beside it.
pub(crate) struct TaskEntry {
    pub task: StreamTask,
    /// The task's stores' changelog offsets and checkpoint.
    pub state: TaskStateManager,
    /// Consumed records waiting to be processed in timestamp order, and the input positions to
    /// commit.
    pub inputs: PartitionGroup,
}

/// What a task is built from.
pub(crate) struct TaskFactory {
    pub index: usize,
    pub config: Arc<ValidConfig>,
    pub topology: Arc<Topology>,
    pub subs: Vec<SubTopology>,
    /// Sub-topology reading each topic (full name); looked up for every record, hence Fx-hashed.
    pub topic_to_sub: FxHashMap<String, u32>,
    pub partitions: Arc<Mutex<HashMap<String, i32>>>,
    /// The global stores, which every task reads.
    pub global: Arc<GlobalStores>,
    /// Where interactive queries find the tasks' stores.
    pub local: Arc<LocalStores>,
    pub store_options: StoreOptions,
    pub metrics: StreamsMetrics,
    /// The thread's name, as a metric label.
    pub thread_name: String,
    /// Where the thread's tasks are published (`metadata_for_local_threads`).
    pub metadata: ThreadMetadataSlot,
    /// The process's task folder locks, shared by its threads.
    pub dir_locks: Arc<TaskDirLocks>,
}

/// Where a task's input partition starts: topic, partition, offset.
type InputStart = (String, i32, i64);

/// A stream thread's tasks.
pub(crate) struct TaskManager {
    factory: Arc<TaskFactory>,
    /// Creates new tasks and restores their stores beside the thread.
    updater: StateUpdater,
    /// The committed offsets of the inputs of tasks being created (where they start), and the
    /// producer they write through.
    starts: BTreeMap<TaskId, (Vec<InputStart>, Arc<KProducer>)>,
    active_tasks: prometheus::IntGauge,
    standby_tasks: prometheus::IntGauge,
    created: prometheus::IntCounter,
    closed: prometheus::IntCounter,
    tasks: BTreeMap<TaskId, TaskEntry>,
    /// The partitions the group assigned to the thread.
    assigned: HashSet<(String, i32)>,
    /// The thread's standby tasks, and those the placement wants.
    standbys: Standbys,
    standby_wanted: BTreeSet<TaskId>,
    /// Assigned tasks waiting for another thread of this process to close their folder.
    locked: BTreeSet<TaskId>,
    /// Assigned tasks that do not run yet (waiting for their folder, or being created): their
    /// partitions are paused.
    held: BTreeSet<TaskId>,
    /// The assignment or the task set changed since [`ensure_tasks`](Self::ensure_tasks) last made
    /// them agree.
    stale: bool,
}

impl TaskManager {
    /// The manager of a thread's tasks; its state updater threads restore with restorers from
    /// `make_restorer`.
    pub fn new(factory: TaskFactory, make_restorer: MakeRestorer, standbys: Standbys) -> Self {
        let active_tasks = factory.metrics.active_tasks.with_label_values(&[&factory.thread_name]);
        let standby_tasks = factory.metrics.standby_tasks.with_label_values(&[&factory.thread_name]);
        let created = factory.metrics.task_created.with_label_values(&[&factory.thread_name]);
        let closed = factory.metrics.task_closed.with_label_values(&[&factory.thread_name]);
        let factory = Arc::new(factory);
        let updater = StateUpdater::new(format!("{}-updater", factory.thread_name), factory.clone(), make_restorer);
        TaskManager {
            factory,
            updater,
            starts: BTreeMap::new(),
            active_tasks,
            standby_tasks,
            created,
            closed,
            tasks: BTreeMap::new(),
            assigned: HashSet::new(),
            standbys,
            standby_wanted: BTreeSet::new(),
            locked: BTreeSet::new(),
            held: BTreeSet::new(),
            stale: false,
        }
    }

    /// The task that reads `topic`-`partition`.
    pub fn task_for(&self, topic: &str, partition: i32) -> Option<TaskId> {
        self.factory.topic_to_sub.get(topic).map(|&subtopology| TaskId { subtopology, partition })
    }

    /// The sub-topology that reads `topic`.
    pub fn subtopology_of(&self, topic: &str) -> Option<u32> {
        self.factory.topic_to_sub.get(topic).copied()
    }

    /// The thread's new assignment: these input partitions, and standby copies of these tasks.
    /// Running tasks that are no longer assigned close now (cleanly: the thread committed when the
    /// rebalance began); tasks that stay keep running with their stores open. New tasks are created
    /// by the next [`ensure_tasks`](Self::ensure_tasks).
    pub fn assign(&mut self, partitions: HashSet<(String, i32)>, standby: BTreeSet<TaskId>) {
        let wanted: HashSet<TaskId> = partitions.iter().filter_map(|(t, p)| self.task_for(t, *p)).collect();
        let gone: Vec<TaskId> = self.tasks.keys().filter(|id| !wanted.contains(id)).copied().collect();
        for id in gone {
            if let Some(entry) = self.tasks.remove(&id) {
                close_task(&self.factory.local, id, entry, true);
                self.factory.dir_locks.unlock(id, self.factory.index);
                self.closed.inc();
                self.publish();
                tracing::info!(thread = self.factory.index, task = %id, "task closed (moved away)");
            }
        }
        // Tasks still being created that moved away come back interrupted and close then.
        for id in self.updater.ids().filter(|id| !wanted.contains(id)) {
            self.updater.interrupt(id);
        }
        let kept = self.tasks.len();
        tracing::info!(thread = self.factory.index, kept, active = wanted.len(), standby = standby.len(), "assignment");
        self.assigned = partitions;
        self.standby_wanted = standby;
        // The new assignment starts unpaused: what is still held is paused again.
        self.held.clear();
        self.publish();
        self.stale = true;
    }

    /// Where the consumer resumes each assigned partition: a running task's partition after the
    /// last record it buffered (what it fetched but has not processed stays queued), others at their
    /// committed offset.
    pub fn positions(&self) -> Result<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in &self.assigned {
            let position = self
                .task_for(topic, *partition)
                .and_then(|id| self.tasks.get(&id))
                .and_then(|entry| entry.inputs.fetch_position(topic, *partition));
            list.add_partition_offset(topic, *partition, position.map_or(Offset::Invalid, Offset::Offset))?;
        }
        Ok(list)
    }

    /// Whether `id` is assigned but does not run yet (its records are fetched again later).
    pub fn is_held(&self, id: &TaskId) -> bool {
        self.held.contains(id)
    }

    /// Whether tasks are being created and restored.
    pub fn is_restoring(&self) -> bool {
        !self.updater.is_empty()
    }

    /// Pauses the partitions of assigned tasks that do not run yet (waiting for their folder, or
    /// being created), resumes those of tasks that run now.
    fn pause_held(&mut self, consumer: &KConsumer) -> Result<()> {
        let held: BTreeSet<TaskId> = self.locked.iter().chain(self.updater.ids()).copied().collect();
        let partitions = |ids: &BTreeSet<TaskId>| -> Result<TopicPartitionList> {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in &self.assigned {
                if self.task_for(topic, *partition).is_some_and(|id| ids.contains(&id)) {
                    list.add_partition(topic, *partition);
                }
            }
            Ok(list)
        };
        let start: BTreeSet<TaskId> = held.difference(&self.held).copied().collect();
        let done: BTreeSet<TaskId> = self.held.difference(&held).copied().collect();
        if !start.is_empty() {
            tracing::debug!(thread = self.factory.index, tasks = ?start, "holding tasks that do not run yet");
            consumer.pause(&partitions(&start)?)?;
        }
        if !done.is_empty() {
            let mut resumed = Vec::new();
            for (topic, partition) in &self.assigned {
                let Some(id) = self.task_for(topic, *partition).filter(|id| done.contains(id)) else { continue };
                let at = self.tasks.get(&id).and_then(|e| e.inputs.resume_position(topic, *partition));
                resumed.push((topic.clone(), *partition, at));
            }
            thread::resume_at(consumer, &resumed)?;
        }
        self.held = held;
        Ok(())
    }

    /// Publishes the thread's tasks and their gauges.
    fn publish(&self) {
        self.active_tasks.set(self.tasks.len() as i64);
        self.standby_tasks.set(self.standbys.len() as i64);
        if let Ok(mut m) = self.factory.metadata.lock() {
            // Tasks being restored are active tasks of the thread too, as in Kafka Streams.
            m.active_tasks = self.tasks.keys().chain(self.updater.ids()).copied().collect();
            m.standby_tasks = self.standbys.ids().into_iter().collect();
        }
    }

    /// Applies what the standby consumer fetched to the standby tasks' stores.
    pub fn update_standbys(&mut self) -> Result<usize> {
        self.standbys.update()
    }

    /// Commits the standby tasks' stores with the changelog offsets they reached.
    pub fn commit_standbys(&mut self) -> Result<()> {
        self.standbys.commit()
    }

    /// Closes the standby tasks (the thread stops).
    pub fn close_standbys(&mut self) {
        let ids = self.standbys.ids();
        self.standbys.close_all();
        for id in ids {
            self.factory.dir_locks.unlock(id, self.factory.index);
        }
        self.standby_wanted.clear();
        self.publish();
    }

    /// Closes every task; `clean` after a successful commit (checkpoints are written), not after a
    /// failure (stores restore from their committed point on the next start).
    pub fn close_all(&mut self, clean: bool) {
        for id in self.ids() {
            if let Some(entry) = self.tasks.remove(&id) {
                close_task(&self.factory.local, id, entry, clean);
                self.factory.dir_locks.unlock(id, self.factory.index);
                self.closed.inc();
                self.publish();
            }
        }
        self.publish();
        self.stale = true;
    }

    pub fn get(&self, id: &TaskId) -> Option<&TaskEntry> {
        self.tasks.get(id)
    }

    pub fn get_mut(&mut self, id: &TaskId) -> Option<&mut TaskEntry> {
        self.tasks.get_mut(id)
    }

    pub fn ids(&self) -> Vec<TaskId> {
        self.tasks.keys().copied().collect()
    }

    pub fn values(&self) -> impl Iterator<Item = &TaskEntry> {
        self.tasks.values()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut TaskEntry> {
        self.tasks.values_mut()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&TaskId, &mut TaskEntry)> {
        self.tasks.iter_mut()
    }

    /// Creates the tasks of assigned partitions that have none yet, restoring their stores; their
    /// sinks and changelogs write through `producer`.
    ///
    /// Under exactly-once the previous owner of a partition may have left a transaction in flight
    /// (it was paused or killed while committing). Its changelog writes become readable only once
    /// the transaction completes, so restoring before that would miss them while the input offsets
    /// it commits move past their input. Fetching the committed offsets first, as read_committed
    /// consumers do (KIP-447: the broker answers only once no transactional offset commit is
    /// pending for the partitions), waits for that transaction, as Kafka Streams does. The committed
    /// offsets also carry each partition's time, which the new task resumes.
    pub fn ensure_tasks(&mut self, consumer: &KConsumer, producer: &Arc<KProducer>) -> Result<()> {
        self.take_restored(consumer, producer)?;
        if !self.stale {
            return Ok(());
        }
        let wanted = self.wanted();
        // A standby that becomes active here, or is no longer wanted, closes first (with its
        // checkpoint): the active task opens the same folders.
        for id in self.standbys.ids() {
            if wanted.contains(&id) || !self.standby_wanted.contains(&id) {
                self.standbys.close(&id)?;
                self.factory.dir_locks.unlock(id, self.factory.index);
            }
        }
        let (index, locks) = (self.factory.index, self.factory.dir_locks.clone());
        let mut locked = BTreeSet::new();
        let new: HashSet<TaskId> = wanted
            .into_iter()
            .filter(|id| !self.tasks.contains_key(id) && !self.updater.contains(id))
            .filter(|id| {
                // Another thread of this process still has the task's folder: retry next round.
                let free = locks.try_lock(*id, index);
                if !free {
                    locked.insert(*id);
                }
                free
            })
            .collect();
        let mut waiting = !locked.is_empty();
        self.locked = locked;
        if !new.is_empty() {
            self.create_tasks(new, consumer, producer)?;
        }
        self.pause_held(consumer)?;
        let eos = self.factory.config.guarantee == ProcessingGuarantee::ExactlyOnceV2;
        for id in self.standby_wanted.clone() {
            if self.tasks.contains_key(&id) || self.updater.contains(&id) || self.standbys.contains(&id) {
                continue;
            }
            if !locks.try_lock(id, index) {
                waiting = true;
                continue;
            }
            if let Some(sub) = self.factory.subs.iter().find(|s| s.id == id.subtopology) {
                self.standbys.open(&self.factory.topology, sub, id.partition, eos)?;
            }
        }
        self.publish();
        self.stale = waiting;
        Ok(())
    }

    /// The tasks of the assigned partitions.
    fn wanted(&self) -> HashSet<TaskId> {
        self.assigned.iter().filter_map(|(t, p)| self.task_for(t, *p)).collect()
    }

    /// Hands the new tasks to the state updater, with where their inputs start and their partition
    /// times (read from the committed offsets).
    fn create_tasks(&mut self, new: HashSet<TaskId>, consumer: &KConsumer, producer: &Arc<KProducer>) -> Result<()> {
        // Where each new task's partitions start: their committed offsets (a task waits for an
        // empty partition that is behind, and "behind" is measured from there until the consumer
        // returns a record).
        let mut inputs = TopicPartitionList::new();
        for (topic, partition) in &self.assigned {
            if self.task_for(topic, *partition).is_some_and(|id| new.contains(&id)) {
                inputs.add_partition(topic, *partition);
            }
        }
        for id in &new {
            if let Some(sub) = self.factory.subs.iter().find(|s| s.id == id.subtopology) {
                self.factory.local.restoring(&sub.stores, id.partition);
            }
        }
        let committed = consumer.committed_offsets(inputs, STABLE_OFFSETS_TIMEOUT)?;
        for id in new {
            let mine = committed.elements().into_iter().filter(|e| e.partition() == id.partition);
            let mut times = Vec::new();
            let mut starts = Vec::new();
            for e in mine {
                if let Some(t) = commit_metadata::decode(e.metadata()) {
                    times.push((e.topic().to_string(), t));
                }
                let start = match e.offset() {
                    Offset::Offset(o) => o,
                    // Nothing committed yet: the log's beginning (`auto.offset.reset=earliest`),
                    // as an offset, so that the task resumes there even if the consumer's
                    // position moved on (a transaction aborted before the first commit).
                    _ => consumer.fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))?.0,
                };
                starts.push((e.topic().to_string(), e.partition(), start));
            }
            self.starts.insert(id, (starts, producer.clone()));
            self.updater.add(id, times, producer.clone())?;
            tracing::debug!(thread = self.factory.index, task = %id, "task handed to the state updater");
        }
        Ok(())
    }

    /// Starts running the tasks the state updater finished; closes those that moved away meanwhile.
    fn take_restored(&mut self, consumer: &KConsumer, producer: &Arc<KProducer>) -> Result<()> {
        if self.updater.is_empty() {
            return Ok(());
        }
        let finished = self.updater.finished();
        if finished.is_empty() {
            return Ok(());
        }
        let wanted = self.wanted();
        let mut failure = None;
        for Restored { id, result } in finished {
            let (starts, made_with) = match self.starts.remove(&id) {
                Some((starts, made_with)) => (starts, Some(made_with)),
                None => (Vec::new(), None),
            };
            // A task made with a producer that was replaced since (after a failed transaction)
            // would write through the old one: it closes and is created again.
            let current = made_with.is_some_and(|p| Arc::ptr_eq(&p, producer));
            match result {
                Ok((task, state)) if wanted.contains(&id) && current => self.install(id, task, state, &starts),
                Ok((task, state)) => {
                    // It moved away while it was restored, or its producer is gone: close it with
                    // its checkpoint (created again if it is still wanted).
                    let inputs = PartitionGroup::new(std::iter::empty());
                    close_task(&self.factory.local, id, TaskEntry { task, state, inputs }, true);
                    self.factory.dir_locks.unlock(id, self.factory.index);
                    self.stale = true;
                }
                Err(e) => {
                    self.forget(id);
                    if state_updater::is_interrupted(&e) {
                        // Created again if it is wanted again.
                        self.stale = true;
                    } else {
                        tracing::error!(thread = self.factory.index, task = %id, error = %e, "creating a task failed");
                        failure.get_or_insert(e);
                    }
                }
            }
        }
        self.pause_held(consumer)?;
        self.publish();
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// A task that could not be created: queries stop looking for its stores, its folder is free.
    fn forget(&mut self, id: TaskId) {
        if let Some(sub) = self.factory.subs.iter().find(|s| s.id == id.subtopology) {
            self.factory.local.remove(&sub.stores, id.partition);
        }
        self.factory.dir_locks.unlock(id, self.factory.index);
    }

    /// Starts running a created task whose inputs start at `starts`.
    fn install(&mut self, id: TaskId, mut task: StreamTask, state: TaskStateManager, starts: &[(String, i32, i64)]) {
        let f = &self.factory;
        for (name, shared) in task.shared_stores() {
            f.local.activate(name, id.partition, shared.clone());
        }
        task.set_metrics(f.metrics.task(&f.thread_name, &id.to_string()));
        let mut inputs = PartitionGroup::new(
            f.topic_to_sub
                .iter()
                .filter(|(_, sub)| **sub == id.subtopology)
                .map(|(topic, _)| (topic.clone(), id.partition)),
        );
        for (topic, partition, offset) in starts {
            inputs.set_start(topic, *partition, *offset);
        }
        self.tasks.insert(id, TaskEntry { task, state, inputs });
        self.created.inc();
        tracing::info!(thread = f.index, task = %id, "task created");
    }

    /// Interrupts the tasks being created and waits for the state updater to stop (the thread
    /// stops); what it finished closes.
    pub fn stop_updater(&mut self) {
        for Restored { id, result } in self.updater.stop() {
            self.starts.remove(&id);
            if let Ok((task, state)) = result {
                let inputs = PartitionGroup::new(std::iter::empty());
                close_task(&self.factory.local, id, TaskEntry { task, state, inputs }, true);
            }
            self.forget(id);
        }
        self.publish();
    }
}

impl TaskFactory {
    /// Builds task `id` and opens its stores, each restored from its changelog by `restorer`;
    /// `partition_times` are the partition times its committed offsets carried. Runs on the state
    /// updater thread.
    pub(crate) fn create_task(
        &self,
        id: TaskId,
        partition_times: &[(String, i64)],
        producer: &Arc<KProducer>,
        restorer: &Restorer,
    ) -> Result<(StreamTask, TaskStateManager)> {
        let sub = self
            .subs
            .iter()
            .find(|s| s.id == id.subtopology)
            .ok_or_else(|| StreamsError::IllegalState(format!("task {id} has no sub-topology")))?;
        let partition = id.partition;
        let task_metrics = self.metrics.task(&self.thread_name, &id.to_string());
        let collector = KafkaCollector {
            producer: producer.clone(),
            partitions: self.partitions.clone(),
            skip_failed: (self.config.production_handler == ExceptionHandler::LogAndContinue)
                .then(|| task_metrics.dropped_records.clone()),
        };
        let record_timestamp = Arc::new(AtomicI64::new(0));
        let ctx = StoreContext {
            application_id: self.config.application_id.clone(),
            task_dir: self.config.state_dir.join(&self.config.application_id).join(id.to_string()),
            partition,
            changelog: Some(Arc::new(collector.clone())),
            record_timestamp: record_timestamp.clone(),
        };
        let eos = self.config.guarantee == ProcessingGuarantee::ExactlyOnceV2;
        let mut state = TaskStateManager::new(&ctx.task_dir, partition, eos)?;
        let options = &self.store_options;
        let mut task = StreamTask::new(
            &self.topology,
            sub,
            partition,
            &self.config.application_id,
            Box::new(collector),
            record_timestamp,
            &mut |spec| Ok(state.open(spec, &ctx, options, Some(restorer))?),
            &self.global,
        )?;
        for (topic, time) in partition_times {
            task.restore_partition_time(topic, *time);
        }
        task.init(crate::runtime::thread::now_ms())?;
        Ok((task, state))
    }
}

/// Closes a task's processors and stores (queries stop finding them first); a clean close also
/// writes its checkpoint.
fn close_task(local: &LocalStores, id: TaskId, mut entry: TaskEntry, clean: bool) {
    local.remove(entry.task.shared_stores().iter().map(|(name, _)| name), id.partition);
    if let Err(e) = entry.task.close() {
        tracing::warn!(task = %id, error = %e, "closing a task failed");
        return;
    }
    if clean {
        if let Err(e) = entry.state.close_clean() {
            tracing::warn!(task = %id, error = %e, "writing the checkpoint of a closed task failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_task_folder_is_held_by_one_thread_at_a_time() {
        let locks = TaskDirLocks::default();
        let task = TaskId { subtopology: 0, partition: 3 };
        assert!(locks.try_lock(task, 0));
        assert!(locks.try_lock(task, 0), "taking it again is fine");
        assert!(!locks.try_lock(task, 1), "another thread waits");
        locks.unlock(task, 1);
        assert!(!locks.try_lock(task, 1), "only the holder gives it back");
        locks.unlock(task, 0);
        assert!(locks.try_lock(task, 1));
    }
}
