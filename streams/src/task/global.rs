//! The global stores of one instance: opened once, updated from their topics by one updater, read
//! by every task.
//!
//! The runtime's `GlobalStreamThread` and the test driver both feed records of global topics to
//! [`GlobalStores::update`]; every task gets typed read-only views from [`GlobalStores::views`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use kstreams_state::memory::InMemoryKeyValueStore;
use kstreams_state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
use kstreams_state::{Backend, OpenedStore, StateStore, StoreHandle};

use crate::error::{Result, StreamsError};
use crate::processor::node::{ConsumedBytes, RawSource};
use crate::store::{SharedKeyValueStore, StoreBuilder, SyncKeyValueStore, NO_TIMESTAMP};
use crate::task::core::RegisteredStore;
use crate::topology::Topology;

/// One opened global store.
pub(crate) struct GlobalEntry {
    /// The store's name.
    pub name: String,
    /// The topic it mirrors.
    pub topic: String,
    /// The store started empty (in memory, new, or its folder was wiped): restore it from the
    /// beginning of its topic.
    pub fresh: bool,
    /// The writable handle.
    pub store: SharedKeyValueStore,
    builder: StoreBuilder,
    source: Arc<dyn RawSource>,
}

/// What became of a record of a global topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GlobalUpdate {
    /// The key was upserted or deleted; the record's timestamp (from the extractor, if any).
    Applied { timestamp: i64 },
    /// The record has no key: nothing to store.
    SkippedNullKey,
    /// The extracted timestamp is negative: the record is dropped (and counted), as a stream task
    /// drops it.
    SkippedInvalidTimestamp { timestamp: i64 },
}

/// The global stores of a topology, opened.
#[derive(Default)]
pub(crate) struct GlobalStores {
    entries: Vec<GlobalEntry>,
    /// Records not stored: without a key, with a negative timestamp, or skipped by the
    /// deserialization exception handler.
    dropped: AtomicU64,
}

impl GlobalStores {
    /// Opens every global store of `topology`: RocksDB ones under `<dir>/rocksdb/<store>`.
    pub fn open(topology: &Topology, dir: &Path, resources: &RocksDbResources) -> Result<GlobalStores> {
        let mut entries = Vec::with_capacity(topology.global.len());
        for def in &topology.global {
            let name = def.name().to_string();
            let (inner, fresh): (SyncKeyValueStore, bool) = match def.store.spec().backend {
                Backend::InMemory => (Box::new(InMemoryKeyValueStore::new(&name)), true),
                Backend::RocksDb => {
                    let db = RocksDbKeyValueStore::open(&name, store_dir(dir, &name), resources)?;
                    let fresh = db.was_fresh();
                    (Box::new(db), fresh)
                }
            };
            entries.push(GlobalEntry {
                name,
                topic: def.topic.clone(),
                fresh,
                store: SharedKeyValueStore::new(inner),
                builder: def.store.clone(),
                source: def.source.clone(),
            });
        }
        Ok(GlobalStores { entries, dropped: AtomicU64::new(0) })
    }

    /// The opened stores.
    pub fn entries(&self) -> &[GlobalEntry] {
        &self.entries
    }

    /// Whether `topic` feeds a global store.
    pub fn reads(&self, topic: &str) -> bool {
        self.entries.iter().any(|e| e.topic == topic)
    }

    /// The store `topic` feeds.
    pub fn entry_for(&self, topic: &str) -> Result<&GlobalEntry> {
        self.entries
            .iter()
            .find(|e| e.topic == topic)
            .ok_or_else(|| StreamsError::IllegalState(format!("no global store reads topic `{topic}`")))
    }

    /// Checks one record of a global topic without storing it: it must deserialize with the store's
    /// source serdes (a failure is [`StreamsError::Deserialization`]) and have a key and a
    /// non-negative timestamp (from the extractor, if any). Skipped records are logged and counted.
    pub fn check(&self, bytes: ConsumedBytes<'_>) -> Result<GlobalUpdate> {
        let entry = self.entry_for(bytes.topic)?;
        let (topic, partition, offset) = (bytes.topic, bytes.partition, bytes.offset);
        if bytes.key.is_none() {
            tracing::warn!(store = %entry.name, topic, partition, offset,
                "skipping a record of a global topic without a key");
            self.count_dropped();
            return Ok(GlobalUpdate::SkippedNullKey);
        }
        let timestamp = entry.source.deserialize(bytes, i64::MIN)?.timestamp;
        if timestamp < 0 {
            tracing::warn!(store = %entry.name, topic, partition, offset, timestamp,
                "skipping a record of a global topic: its timestamp is negative (check the timestamp extractor)");
            self.count_dropped();
            return Ok(GlobalUpdate::SkippedInvalidTimestamp { timestamp });
        }
        Ok(GlobalUpdate::Applied { timestamp })
    }

    /// Applies one record of a global topic to its store if [`check`](Self::check) accepts it (a
    /// failure stores nothing). A null value deletes the key.
    pub fn update(&self, bytes: ConsumedBytes<'_>) -> Result<GlobalUpdate> {
        let (topic, key, value) = (bytes.topic, bytes.key, bytes.value);
        let outcome = self.check(bytes)?;
        if let (GlobalUpdate::Applied { .. }, Some(key)) = (outcome, key) {
            self.entry_for(topic)?.store.put(key, value)?;
        }
        Ok(outcome)
    }

    /// Counts a record that was not stored (also those the deserialization exception handler skips).
    pub fn count_dropped(&self) {
        self.dropped.fetch_add(1, Ordering::Relaxed);
    }

    /// Records of global topics not stored so far.
    pub fn dropped_records(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Typed read-only views of every global store, for one task.
    pub fn views(&self) -> Result<HashMap<String, Box<dyn RegisteredStore>>> {
        self.entries.iter().map(|e| Ok((e.name.clone(), e.view()?))).collect()
    }

    /// Flushes every store (before a checkpoint).
    pub fn flush(&self) -> Result<()> {
        for entry in &self.entries {
            entry.store.clone().flush()?;
        }
        Ok(())
    }

    /// Closes every store; the first failure is returned after trying all.
    pub fn close(&self) -> Result<()> {
        let mut first = None;
        for entry in &self.entries {
            if let Err(e) = entry.store.clone().close() {
                tracing::warn!(store = %entry.name, error = %e, "closing a global store failed");
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), |e| Err(e.into()))
    }
}

impl GlobalEntry {
    /// A typed read-only view; its serdes are told the store's topic.
    fn view(&self) -> Result<Box<dyn RegisteredStore>> {
        let opened = OpenedStore {
            store: StoreHandle::KeyValue(Box::new(self.store.read_only())),
            dirty: None,
            fresh: false,
            changelog_topic: None,
        };
        self.builder.typed(opened, self.topic.clone(), Arc::new(AtomicI64::new(NO_TIMESTAMP)))
    }
}

/// The folder of a global RocksDB store.
pub(crate) fn store_dir(dir: &Path, store: &str) -> PathBuf {
    dir.join("rocksdb").join(store)
}
