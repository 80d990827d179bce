//! A task's stores from open to close: where each one restores from, commits, and checkpoints.
//!
//! This is the state half of a task (Kafka Streams' `ProcessorStateManager`). For every logged store
//! it decides the changelog offset to restore from, restores, and keeps the store's next changelog
//! offset up to date as the task commits:
//!
//! - a store that starts empty (in memory, new, or wiped because its files were damaged) restores
//!   from the beginning of its changelog;
//! - a persistent store that kept its data restores from the offset it recorded itself
//!   ([`StateStore::committed_offset`], the exactly-once RocksDB stores) or else from the task's
//!   `.checkpoint` file, so only the changelog tail is read;
//! - a persistent store with data but no known offset was left by a crash in the middle of a commit
//!   interval: its contents may hold writes whose transaction never committed, so it is wiped (with a
//!   log line saying why) and restored from the beginning.
//!
//! Checkpoints: under `at_least_once` the RocksDB stores write without a write-ahead log (see
//! [`rocksdb`](crate::rocksdb)), so a checkpoint must follow a flush of their memtables. As in Kafka
//! Streams (`StateManagerUtil.checkpointNeeded`), a commit therefore commits (flushes) the stores and
//! writes the checkpoint only when the changelog offsets moved by more than
//! [`OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`] in total since the last checkpoint (or a changelog
//! partition is not in it yet); a clean close always writes it (the stores are closed, so flushed,
//! first). After a crash the stores replay their changelogs from the last
//! checkpoint: at most about that many records, plus what arrived since. Under
//! `exactly_once_v2` it is read and then deleted when the task opens, and written again only by a clean
//! close: a checkpoint on disk then always means "the store is at a committed point". RocksDB stores
//! (key-value, window and session) record their offset with their data under exactly-once, so they
//! need no checkpoint and survive a crash without a wipe; only the changelog tail is replayed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::checkpoint::Checkpoint;
use crate::error::StateResult;
use crate::factory::{open_store_with, store_dir, OpenedStore, StoreOptions};
use crate::restore::{RestoreOutcome, Restorer};
use crate::state_dir::load_checkpoint;
use crate::store::{StateStore, StoreContext, StoreSpec};

/// Under at-least-once, a commit writes the checkpoint (after flushing the stores) only when the
/// changelog offsets moved by more than this many records in total since the last checkpoint (Kafka
/// Streams' `StateManagerUtil.OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`).
pub const OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT: i64 = 10_000;

/// The state of one task: its logged stores' changelog offsets and its checkpoint file.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::Arc;
/// use kstreams_state::{Backend, StateStore, StoreContext, StoreOptions, StoreSpec, TaskStateManager};
///
/// let dir = tempfile::tempdir().unwrap();
/// let ctx = StoreContext {
///     application_id: "app".into(),
///     task_dir: dir.path().join("0_0"),
///     partition: 0,
///     changelog: None, // no changelog: nothing to restore
///     record_timestamp: Arc::new(AtomicI64::new(0)),
/// };
/// let mut manager = TaskStateManager::new(&ctx.task_dir, 0, false).unwrap();
/// let mut spec = StoreSpec::key_value("counts");
/// spec.backend = Backend::InMemory;
/// let mut opened = manager.open(&spec, &ctx, &StoreOptions::default(), None).unwrap();
/// manager.commit([&mut opened.store as &mut dyn StateStore], |_| None).unwrap();
/// ```
#[derive(Debug)]
pub struct TaskStateManager {
    task_dir: PathBuf,
    partition: i32,
    exactly_once: bool,
    checkpoint: Checkpoint,
    /// Changelog topic of each logged store.
    changelogs: BTreeMap<String, String>,
    /// Logged stores whose offsets go to the checkpoint file (persistent ones).
    persistent: BTreeMap<String, bool>,
    /// Next changelog offset per changelog topic: where a restore would continue.
    offsets: BTreeMap<String, i64>,
    /// Changelog records restored per store when the task opened.
    restored: BTreeMap<String, u64>,
}

impl TaskStateManager {
    /// Reads the checkpoint of `task_dir` (a corrupt one wipes the task's stores, see
    /// [`load_checkpoint`]); under exactly-once the file is then deleted until a clean close.
    pub fn new(task_dir: &Path, partition: i32, exactly_once: bool) -> StateResult<TaskStateManager> {
        let checkpoint = load_checkpoint(task_dir)?;
        if exactly_once {
            Checkpoint::delete(task_dir)?;
        }
        Ok(TaskStateManager {
            task_dir: task_dir.to_path_buf(),
            partition,
            exactly_once,
            checkpoint,
            changelogs: BTreeMap::new(),
            persistent: BTreeMap::new(),
            offsets: BTreeMap::new(),
            restored: BTreeMap::new(),
        })
    }

    /// Opens `spec`'s store with its layers and, when it is logged and a `restorer` is given, restores
    /// it from its changelog (see the module docs for where from) before returning it.
    pub fn open(
        &mut self,
        spec: &StoreSpec,
        ctx: &StoreContext,
        opts: &StoreOptions,
        restorer: Option<&Restorer>,
    ) -> StateResult<OpenedStore> {
        let mut opened = open_store_with(spec, ctx, opts)?;
        let Some(topic) = opened.changelog_topic.clone() else { return Ok(opened) };
        self.changelogs.insert(spec.name.clone(), topic.clone());
        self.persistent.insert(spec.name.clone(), opened.store.persistent());
        let mut start = None;
        if !opened.fresh {
            start = match opened.store.committed_offset()? {
                Some(offset) => Some(offset),
                None => self.checkpoint.get(&topic, self.partition),
            };
            if start.is_none() {
                tracing::warn!(store = %spec.name, task_dir = %self.task_dir.display(),
                    "store has local data but no committed changelog offset (the process stopped in the middle \
                     of a commit interval); wiping it to restore it from its changelog");
                opened.store.close()?;
                drop(opened);
                crate::rocksdb::wipe(&store_dir(spec, ctx))?;
                opened = open_store_with(spec, ctx, opts)?;
            }
        }
        if let Some(restorer) = restorer {
            let RestoreOutcome { records, next_offset } =
                restorer.restore(&mut opened.store, &topic, self.partition, start)?;
            self.restored.insert(spec.name.clone(), records);
            self.offsets.insert(topic, next_offset);
            opened.store.commit(Some(next_offset))?;
        } else if let Some(offset) = start {
            self.offsets.insert(topic, offset);
        }
        Ok(opened)
    }

    /// Changelog records restored into `store` when it opened (`None` if it was not restored).
    pub fn restored_records(&self, store: &str) -> Option<u64> {
        self.restored.get(store).copied()
    }

    /// The next changelog offset of `store`'s changelog partition, as far as the task knows.
    pub fn changelog_offset(&self, store: &str) -> Option<i64> {
        self.changelogs.get(store).and_then(|t| self.offsets.get(t)).copied()
    }

    /// The changelog topics of the task's logged stores.
    pub fn changelog_topics(&self) -> impl Iterator<Item = &str> + '_ {
        self.changelogs.values().map(String::as_str)
    }

    /// Commits `stores` after the task's output and changelog records are durable in Kafka (after the
    /// producer flushed, or the transaction committed). `last_written(topic)` is the offset of the last
    /// record written to the task's partition of changelog `topic`, if any was.
    ///
    /// Under exactly-once every store commits (with its changelog offset) each time. Under
    /// at-least-once the offsets are recorded each time, but the stores are committed (their
    /// memtables flushed) and the checkpoint written only when [`checkpoint_needed`](Self::checkpoint_needed)
    /// says so; returns whether the checkpoint was written.
    pub fn commit<'a>(
        &mut self,
        stores: impl IntoIterator<Item = &'a mut dyn StateStore>,
        last_written: impl Fn(&str) -> Option<i64>,
    ) -> StateResult<bool> {
        for topic in self.changelogs.values() {
            if let Some(last) = last_written(topic) {
                let next = self.offsets.entry(topic.clone()).or_insert(0);
                *next = (*next).max(last + 1);
            }
        }
        if !self.exactly_once && !self.checkpoint_needed() {
            return Ok(false);
        }
        for store in stores {
            let offset = self.changelog_offset(store.name());
            store.commit(offset)?;
        }
        if self.exactly_once {
            return Ok(false);
        }
        self.write_checkpoint()?;
        Ok(true)
    }

    /// Whether an at-least-once commit would write the checkpoint now: a checkpointed changelog
    /// partition (of a persistent store, with a known offset) is missing from the last checkpoint or
    /// behind it, or the offsets moved by more than [`OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`] in total
    /// since it.
    pub fn checkpoint_needed(&self) -> bool {
        let mut delta: i64 = 0;
        for (topic, offset) in self.checkpointed_offsets() {
            match self.checkpoint.get(topic, self.partition) {
                // Behind the checkpoint (e.g. the changelog was recreated and restored from its start):
                // the old checkpoint would replay from too far on a restart.
                Some(old) if old > offset => return true,
                Some(old) => delta = delta.saturating_add(offset - old),
                None => return true,
            }
        }
        delta > OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT
    }

    /// Writes the checkpoint of a task closing cleanly, whatever the offsets moved. Call it after its
    /// final [`commit`](Self::commit) and after its stores were closed (which flushes them): the
    /// checkpoint must not claim writes that are still only in memory.
    pub fn close_clean(&mut self) -> StateResult<()> {
        self.write_checkpoint()
    }

    /// The changelog partitions the checkpoint holds (those of persistent stores with a known offset),
    /// with their next offsets.
    fn checkpointed_offsets(&self) -> impl Iterator<Item = (&str, i64)> + '_ {
        self.changelogs
            .iter()
            .filter(|(store, _)| self.persistent.get(*store).copied().unwrap_or(false))
            .filter_map(|(_, topic)| self.offsets.get(topic).map(|offset| (topic.as_str(), *offset)))
    }

    fn write_checkpoint(&mut self) -> StateResult<()> {
        let mut checkpoint = Checkpoint::default();
        for (topic, offset) in self.checkpointed_offsets() {
            checkpoint.set(topic, self.partition, offset);
        }
        if checkpoint.is_empty() {
            return Ok(());
        }
        checkpoint.write(&self.task_dir)?;
        self.checkpoint = checkpoint;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicI64;
    use std::sync::Arc;

    use super::*;
    use crate::store::{Backend, ChangelogRecord, ChangelogSink};

    struct NoSink;

    impl ChangelogSink for NoSink {
        fn send(&self, _record: ChangelogRecord<'_>) -> StateResult<()> {
            Ok(())
        }
    }

    /// A store that records the offsets it was committed with.
    struct Recorder {
        name: String,
        commits: Vec<Option<i64>>,
    }

    impl StateStore for Recorder {
        fn name(&self) -> &str {
            &self.name
        }
        fn persistent(&self) -> bool {
            true
        }
        fn flush(&mut self) -> StateResult<()> {
            Ok(())
        }
        fn close(&mut self) -> StateResult<()> {
            Ok(())
        }
        fn restore_batch(&mut self, _batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
            Ok(())
        }
        fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
            self.commits.push(changelog_offset);
            Ok(())
        }
    }

    fn context(dir: &Path) -> StoreContext {
        StoreContext {
            application_id: "app".into(),
            task_dir: dir.join("0_0"),
            partition: 0,
            changelog: Some(Arc::new(NoSink)),
            record_timestamp: Arc::new(AtomicI64::new(0)),
        }
    }

    fn spec(name: &str, backend: Backend) -> StoreSpec {
        let mut spec = StoreSpec::key_value(name);
        spec.backend = backend;
        spec.caching = false;
        spec
    }

    const TOPIC: &str = "app-counts-changelog";

    fn checkpointed(ctx: &StoreContext) -> Option<i64> {
        Checkpoint::read(&ctx.task_dir).unwrap().and_then(|c| c.get(TOPIC, 0))
    }

    #[test]
    fn at_least_once_checkpoints_only_when_the_offsets_moved_enough_or_on_close() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let mut manager = TaskStateManager::new(&ctx.task_dir, 0, false).unwrap();
        let mut opened = manager.open(&spec("counts", Backend::RocksDb), &ctx, &StoreOptions::default(), None).unwrap();
        let mut recorder = Recorder { name: "counts".into(), commits: Vec::new() };
        let mut commit = |manager: &mut TaskStateManager, opened: &mut OpenedStore, last: i64| {
            let stores = [&mut opened.store as &mut dyn StateStore, &mut recorder];
            manager.commit(stores, |_| Some(last)).unwrap()
        };

        // Not in the checkpoint yet: the first commit writes it.
        assert!(commit(&mut manager, &mut opened, 99));
        assert_eq!(checkpointed(&ctx), Some(100));
        // 5,000 and then exactly 10,000 offsets since the checkpoint: not enough.
        assert!(!commit(&mut manager, &mut opened, 5_099));
        assert_eq!(checkpointed(&ctx), Some(100));
        assert!(!commit(&mut manager, &mut opened, 10_099));
        assert_eq!(checkpointed(&ctx), Some(100));
        assert_eq!(manager.changelog_offset("counts"), Some(10_100), "offsets are recorded at every commit");
        // 10,001: the stores are committed and the checkpoint is written.
        assert!(commit(&mut manager, &mut opened, 10_100));
        assert_eq!(checkpointed(&ctx), Some(10_101));

        // A clean close writes the checkpoint whatever moved.
        assert!(!commit(&mut manager, &mut opened, 10_400));
        assert_eq!(recorder.commits, vec![Some(100), Some(10_101)], "stores commit with the checkpoint");
        opened.store.close().unwrap();
        manager.close_clean().unwrap();
        assert_eq!(checkpointed(&ctx), Some(10_401));

        // The next instance reads it: nothing moved, nothing to checkpoint.
        let mut manager = TaskStateManager::new(&ctx.task_dir, 0, false).unwrap();
        let mut opened = manager.open(&spec("counts", Backend::RocksDb), &ctx, &StoreOptions::default(), None).unwrap();
        assert_eq!(manager.changelog_offset("counts"), Some(10_401));
        assert!(!manager.checkpoint_needed());
        assert!(!manager.commit([&mut opened.store as &mut dyn StateStore], |_| None).unwrap());
    }

    #[test]
    fn at_least_once_checkpoints_an_offset_behind_the_checkpoint_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let mut cp = Checkpoint::default();
        cp.set(TOPIC, 0, 500);
        cp.write(&ctx.task_dir).unwrap();
        let mut manager = TaskStateManager::new(&ctx.task_dir, 0, false).unwrap();
        manager.open(&spec("counts", Backend::RocksDb), &ctx, &StoreOptions::default(), None).unwrap();
        // Open found a fresh store: no offset is known, the old checkpoint is kept as it is.
        assert!(!manager.checkpoint_needed());
        assert!(manager.commit(std::iter::empty(), |_| Some(9)).unwrap(), "behind the checkpoint (topic recreated)");
        assert_eq!(checkpointed(&ctx), Some(10));
    }

    #[test]
    fn in_memory_stores_never_trigger_a_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let mut manager = TaskStateManager::new(&ctx.task_dir, 0, false).unwrap();
        let mut opened =
            manager.open(&spec("counts", Backend::InMemory), &ctx, &StoreOptions::default(), None).unwrap();
        assert!(!manager.commit([&mut opened.store as &mut dyn StateStore], |_| Some(50_000)).unwrap());
        assert!(!manager.checkpoint_needed());
        manager.close_clean().unwrap();
        assert_eq!(Checkpoint::read(&ctx.task_dir).unwrap(), None);
    }

    #[test]
    fn exactly_once_commits_the_stores_every_time_and_checkpoints_only_on_a_clean_close() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path());
        let opts = StoreOptions { exactly_once: true, ..StoreOptions::default() };
        let mut manager = TaskStateManager::new(&ctx.task_dir, 0, true).unwrap();
        let mut opened = manager.open(&spec("counts", Backend::RocksDb), &ctx, &opts, None).unwrap();
        let mut recorder = Recorder { name: "counts".into(), commits: Vec::new() };
        for last in [0, 1, 2] {
            let stores = [&mut opened.store as &mut dyn StateStore, &mut recorder];
            assert!(!manager.commit(stores, |_| Some(last)).unwrap());
        }
        assert_eq!(recorder.commits, vec![Some(1), Some(2), Some(3)]);
        assert_eq!(opened.store.committed_offset().unwrap(), Some(3));
        assert_eq!(Checkpoint::read(&ctx.task_dir).unwrap(), None);
        opened.store.close().unwrap();
        manager.close_clean().unwrap();
        assert_eq!(checkpointed(&ctx), Some(3));
    }
}
