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
//! Checkpoints: under `at_least_once` the checkpoint is written after every commit. Under
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
    /// record written to the task's partition of changelog `topic`, if any was. Under at-least-once the
    /// checkpoint is written afterwards.
    pub fn commit<'a>(
        &mut self,
        stores: impl IntoIterator<Item = &'a mut dyn StateStore>,
        last_written: impl Fn(&str) -> Option<i64>,
    ) -> StateResult<()> {
        for topic in self.changelogs.values() {
            if let Some(last) = last_written(topic) {
                let next = self.offsets.entry(topic.clone()).or_insert(0);
                *next = (*next).max(last + 1);
            }
        }
        for store in stores {
            let offset = self.changelog_offset(store.name());
            store.commit(offset)?;
        }
        if !self.exactly_once {
            self.write_checkpoint()?;
        }
        Ok(())
    }

    /// Writes the checkpoint of a task closing cleanly (after its final [`commit`](Self::commit)).
    pub fn close_clean(&mut self) -> StateResult<()> {
        self.write_checkpoint()
    }

    fn write_checkpoint(&mut self) -> StateResult<()> {
        let mut checkpoint = Checkpoint::default();
        for (store, topic) in &self.changelogs {
            if !self.persistent.get(store).copied().unwrap_or(false) {
                continue;
            }
            if let Some(offset) = self.offsets.get(topic) {
                checkpoint.set(topic, self.partition, *offset);
            }
        }
        if checkpoint.is_empty() {
            return Ok(());
        }
        checkpoint.write(&self.task_dir)?;
        self.checkpoint = checkpoint;
        Ok(())
    }
}
