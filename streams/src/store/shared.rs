//! The one place where a store is shared between threads: global stores.
//!
//! A global store is written by one updater (the `GlobalStreamThread`, or the test driver) and read
//! by every stream task at the same time. [`SharedKeyValueStore`] owns the bytes store behind an
//! `Arc<RwLock<..>>`: the updater writes through it (and restores and checkpoints it as any
//! [`StateStore`]), while each task holds a [`ReadOnlyKeyValueStore`] view that takes the read lock
//! for each lookup and refuses writes with [`StateError::ReadOnly`].

use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use kstreams_state::store::KeyValueIter;
use kstreams_state::{KeyValueBytesStore, StateError, StateResult, StateStore};

/// A bytes store that readers on other threads may use at the same time.
pub(crate) type SyncKeyValueStore = Box<dyn KeyValueBytesStore + Sync>;

/// The writable handle of a shared key-value store; clones share the store.
#[derive(Clone)]
pub(crate) struct SharedKeyValueStore {
    name: String,
    persistent: bool,
    inner: Arc<RwLock<SyncKeyValueStore>>,
}

impl SharedKeyValueStore {
    pub(crate) fn new(store: SyncKeyValueStore) -> Self {
        SharedKeyValueStore {
            name: store.name().to_string(),
            persistent: store.persistent(),
            inner: Arc::new(RwLock::new(store)),
        }
    }

    /// A lock poisoned by a panicking writer still holds a usable store: every write is one call
    /// of the bytes store, complete or not made.
    fn read(&self) -> RwLockReadGuard<'_, SyncKeyValueStore> {
        self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, SyncKeyValueStore> {
        self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Stores `value` under `key`; `None` deletes the key.
    pub(crate) fn put(&self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        self.write().put(key, value)
    }

    /// A read-only view for a stream task.
    pub(crate) fn read_only(&self) -> ReadOnlyKeyValueStore {
        ReadOnlyKeyValueStore { store: self.clone() }
    }
}

impl StateStore for SharedKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }
    fn persistent(&self) -> bool {
        self.persistent
    }
    fn flush(&mut self) -> StateResult<()> {
        self.write().flush()
    }
    fn close(&mut self) -> StateResult<()> {
        self.write().close()
    }
    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        self.write().restore_batch(batch)
    }
    fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
        self.write().commit(changelog_offset)
    }
}

/// What a stream task sees of a global store: lookups and scans, no writes. Its lifecycle calls
/// (flush, commit, close) do nothing: the store belongs to its updater.
pub(crate) struct ReadOnlyKeyValueStore {
    store: SharedKeyValueStore,
}

impl ReadOnlyKeyValueStore {
    fn refuse<T>(&self) -> StateResult<T> {
        Err(StateError::ReadOnly(self.store.name.clone()))
    }

    /// Scans take a snapshot under the read lock, so the lock is never held while the caller
    /// iterates.
    fn snapshot(entries: StateResult<KeyValueIter<'_>>) -> StateResult<KeyValueIter<'static>> {
        let collected: Vec<StateResult<(Vec<u8>, Vec<u8>)>> = entries?.collect();
        Ok(Box::new(collected.into_iter()))
    }
}

impl StateStore for ReadOnlyKeyValueStore {
    fn name(&self) -> &str {
        &self.store.name
    }
    fn persistent(&self) -> bool {
        self.store.persistent
    }
    fn flush(&mut self) -> StateResult<()> {
        Ok(())
    }
    fn close(&mut self) -> StateResult<()> {
        Ok(())
    }
    fn restore_batch(&mut self, _batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        self.refuse()
    }
    fn commit(&mut self, _changelog_offset: Option<i64>) -> StateResult<()> {
        Ok(())
    }
}

impl KeyValueBytesStore for ReadOnlyKeyValueStore {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.store.read().get(key)
    }
    fn put(&mut self, _key: &[u8], _value: Option<&[u8]>) -> StateResult<()> {
        self.refuse()
    }
    fn put_if_absent(&mut self, _key: &[u8], _value: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.refuse()
    }
    fn delete(&mut self, _key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.refuse()
    }
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        Self::snapshot(self.store.read().range(from, to))
    }
    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        Self::snapshot(self.store.read().prefix_scan(prefix))
    }
    fn approximate_num_entries(&self) -> StateResult<u64> {
        self.store.read().approximate_num_entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kstreams_state::memory::InMemoryKeyValueStore;

    #[test]
    fn views_see_the_owner_writes_and_refuse_their_own() {
        let owner = SharedKeyValueStore::new(Box::new(InMemoryKeyValueStore::new("g")));
        let mut view = owner.read_only();
        owner.put(b"a", Some(b"1")).unwrap();
        assert_eq!(view.get(b"a").unwrap(), Some(b"1".to_vec()));
        owner.put(b"a", None).unwrap();
        assert_eq!(view.get(b"a").unwrap(), None);
        assert!(matches!(view.put(b"b", Some(b"2")), Err(StateError::ReadOnly(name)) if name == "g"));
        owner.put(b"b", Some(b"2")).unwrap();
        owner.put(b"c", Some(b"3")).unwrap();
        let keys: Vec<Vec<u8>> = view.all().unwrap().map(|e| e.unwrap().0).collect();
        assert_eq!(keys, vec![b"b".to_vec(), b"c".to_vec()]);
        view.close().unwrap();
        assert_eq!(view.get(b"c").unwrap(), Some(b"3".to_vec()), "a view's close leaves the store open");
    }
}
