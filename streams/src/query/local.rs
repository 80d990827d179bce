//! The copies of stores this instance holds, by store and partition, as queries find them.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use kstreams_state::layers::SharedStore;

/// One partition's copy of a store on this instance.
#[derive(Clone, Debug)]
pub(crate) enum LocalCopy {
    /// Assigned here, its stores still restoring from their changelogs.
    Restoring,
    /// Owned by a running task here.
    Active(SharedStore),
    /// A standby copy, kept warm from the changelog: readable only by stale queries
    /// ([`StoreQueryParameters::enable_stale_stores`](crate::query::StoreQueryParameters::enable_stale_stores)).
    Standby(SharedStore),
}

/// Every local copy of every store, updated by the stream threads as tasks come and go, read by
/// queries. The lock is held only to look a copy up or to change the map, never while a store is
/// read.
#[derive(Default)]
pub(crate) struct LocalStores {
    copies: RwLock<HashMap<String, BTreeMap<i32, LocalCopy>>>,
    /// The global stores (every instance holds all of each), once restored.
    globals: RwLock<HashMap<String, SharedStore>>,
}

impl LocalStores {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, BTreeMap<i32, LocalCopy>>> {
        self.copies.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, BTreeMap<i32, LocalCopy>>> {
        self.copies.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The stores of a task that is being created (restored).
    pub fn restoring<'a>(&self, stores: impl IntoIterator<Item = &'a String>, partition: i32) {
        let mut copies = self.write();
        for store in stores {
            copies.entry(store.clone()).or_default().insert(partition, LocalCopy::Restoring);
        }
    }

    /// A task's store, open and restored.
    pub fn activate(&self, store: &str, partition: i32, shared: SharedStore) {
        self.write().entry(store.to_string()).or_default().insert(partition, LocalCopy::Active(shared));
    }

    /// A standby task's store, open and updating.
    pub fn standby(&self, store: &str, partition: i32, shared: SharedStore) {
        self.write().entry(store.to_string()).or_default().insert(partition, LocalCopy::Standby(shared));
    }

    /// A task's stores, closed (revoked, failed or shut down).
    pub fn remove<'a>(&self, stores: impl IntoIterator<Item = &'a String>, partition: i32) {
        let mut copies = self.write();
        for store in stores {
            if let Some(partitions) = copies.get_mut(store.as_str()) {
                partitions.remove(&partition);
            }
        }
    }

    /// The copy of `store` for `partition`, if this instance holds one.
    pub fn get(&self, store: &str, partition: i32) -> Option<LocalCopy> {
        self.read().get(store).and_then(|p| p.get(&partition).cloned())
    }

    /// A global store, restored and kept up to date by the global stream thread.
    pub fn add_global(&self, store: &str, shared: SharedStore) {
        self.globals.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(store.to_string(), shared);
    }

    /// The global store `store`, once restored.
    pub fn global(&self, store: &str) -> Option<SharedStore> {
        self.globals.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(store).cloned()
    }

    /// Every local copy of `store`, by partition.
    pub fn all(&self, store: &str) -> BTreeMap<i32, LocalCopy> {
        self.read().get(store).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kstreams_state::memory::InMemoryKeyValueStore;
    use kstreams_state::StoreHandle;

    #[test]
    fn copies_go_from_restoring_to_active_to_gone() {
        let local = LocalStores::default();
        let names = ["counts".to_string()];
        local.restoring(&names, 2);
        assert!(matches!(local.get("counts", 2), Some(LocalCopy::Restoring)));
        let (_, shared) = SharedStore::share(StoreHandle::KeyValue(Box::new(InMemoryKeyValueStore::new("counts"))));
        local.activate("counts", 2, shared);
        assert!(matches!(local.get("counts", 2), Some(LocalCopy::Active(_))));
        assert!(local.get("counts", 1).is_none());
        assert_eq!(local.all("counts").keys().copied().collect::<Vec<_>>(), [2]);
        local.remove(&names, 2);
        assert!(local.get("counts", 2).is_none());
        assert!(local.all("counts").is_empty());
    }
}
