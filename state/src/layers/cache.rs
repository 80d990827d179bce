//! The record cache: a byte budget shared by the stores of one stream thread, and the per-store LRU
//! that lives within it.
//!
//! As in Kafka Streams (`statestore.cache.max.bytes`), one [`ThreadCache`] is shared by every cached
//! store of a thread. Each store keeps its own LRU of entries; when a put pushes the thread's total over
//! the budget, the store that wrote evicts its own least recently used entries, writing dirty ones to
//! the layer below and queueing them as [`DirtyEntry`]s for its owner to forward downstream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A change that left the cache (on flush or eviction) and was written to the layer below.
///
/// Keys use the changelog layout of the store: the record key for key-value stores,
/// [`encode_window_key`](crate::keys::encode_window_key)`(key, start, 0)` for window stores and
/// [`encode_session_key`](crate::keys::encode_session_key) for session stores.
///
/// ```
/// use kstreams_state::DirtyEntry;
/// let delete = DirtyEntry { key: b"k".to_vec(), new_value: None, old_value: Some(b"1".to_vec()), timestamp: 5 };
/// assert!(delete.new_value.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirtyEntry {
    /// The key, in the store's changelog layout.
    pub key: Vec<u8>,
    /// The value now in the store; `None` for a delete.
    pub new_value: Option<Vec<u8>>,
    /// The value the store held before; `None` if there was none.
    pub old_value: Option<Vec<u8>>,
    /// The timestamp of the last record that changed the entry.
    pub timestamp: i64,
}

/// Where a cached store queues its [`DirtyEntry`]s. The owning task drains it after each processed
/// record and on commit (`std::mem::take(&mut *queue.lock()?)`); the store only pushes to it, so the
/// task can drain it while it holds the store.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use kstreams_state::{DirtyEntry, DirtyQueue};
/// let queue: DirtyQueue = Arc::new(Mutex::new(Vec::new()));
/// queue.lock().unwrap().push(DirtyEntry { key: b"k".to_vec(), new_value: None, old_value: None, timestamp: 0 });
/// let drained: Vec<DirtyEntry> = std::mem::take(&mut *queue.lock().unwrap());
/// assert_eq!(drained.len(), 1);
/// ```
pub type DirtyQueue = Arc<Mutex<Vec<DirtyEntry>>>;

/// The byte budget of the record caches of one stream thread.
///
/// ```
/// use kstreams_state::layers::ThreadCache;
///
/// let cache = ThreadCache::new(10 << 20);
/// assert_eq!(cache.max_bytes(), 10 << 20);
/// assert_eq!(cache.used_bytes(), 0);
/// ```
#[derive(Debug)]
pub struct ThreadCache {
    max_bytes: usize,
    used: AtomicUsize,
}

impl ThreadCache {
    /// A budget of `max_bytes` shared by the stores opened with it.
    pub fn new(max_bytes: usize) -> Arc<ThreadCache> {
        Arc::new(ThreadCache { max_bytes, used: AtomicUsize::new(0) })
    }

    /// The configured size.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// Bytes held by all stores' entries now.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn over_budget(&self) -> bool {
        self.used_bytes() > self.max_bytes
    }

    fn add(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    fn sub(&self, n: usize) {
        // Saturating: never wrap even if accounting were off.
        let _ = self.used.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| Some(u.saturating_sub(n)));
    }
}

/// Per-entry bookkeeping overhead counted against the budget, roughly what Kafka Streams counts.
const ENTRY_OVERHEAD: usize = 64;

/// One cached value.
#[derive(Debug, Clone)]
pub(crate) struct CacheEntry {
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) dirty: bool,
    pub(crate) timestamp: i64,
    lru: u64,
}

fn size_of(key: &[u8], value: &Option<Vec<u8>>) -> usize {
    key.len() + value.as_ref().map_or(0, Vec::len) + ENTRY_OVERHEAD
}

/// The entries of one store, ordered by key, with an LRU order on the side.
#[derive(Debug)]
pub(crate) struct NamedCache {
    thread: Arc<ThreadCache>,
    map: BTreeMap<Vec<u8>, CacheEntry>,
    lru: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    bytes: usize,
}

impl NamedCache {
    pub(crate) fn new(thread: Arc<ThreadCache>) -> Self {
        NamedCache { thread, map: BTreeMap::new(), lru: BTreeMap::new(), tick: 0, bytes: 0 }
    }

    fn next_tick(&mut self) -> u64 {
        self.tick += 1;
        self.tick
    }

    /// The entry under `key`, marking it recently used.
    pub(crate) fn get(&mut self, key: &[u8]) -> Option<CacheEntry> {
        let tick = self.next_tick();
        let entry = self.map.get_mut(key)?;
        self.lru.remove(&entry.lru);
        entry.lru = tick;
        self.lru.insert(tick, key.to_vec());
        Some(entry.clone())
    }

    /// Inserts or replaces an entry; a replaced dirty entry stays dirty (updates coalesce).
    pub(crate) fn put(&mut self, key: &[u8], value: Option<Vec<u8>>, dirty: bool, timestamp: i64) {
        let tick = self.next_tick();
        let added = size_of(key, &value);
        let mut dirty = dirty;
        if let Some(old) = self.map.remove(key) {
            self.lru.remove(&old.lru);
            let removed = size_of(key, &old.value);
            self.bytes = self.bytes.saturating_sub(removed);
            self.thread.sub(removed);
            dirty |= old.dirty;
        }
        self.map.insert(key.to_vec(), CacheEntry { value, dirty, timestamp, lru: tick });
        self.lru.insert(tick, key.to_vec());
        self.bytes += added;
        self.thread.add(added);
    }

    /// Whether the thread's budget is exceeded and this cache has something to evict.
    pub(crate) fn should_evict(&self) -> bool {
        !self.map.is_empty() && self.thread.over_budget()
    }

    /// Removes and returns the least recently used entry.
    pub(crate) fn evict_lru(&mut self) -> Option<(Vec<u8>, CacheEntry)> {
        let (_, key) = self.lru.pop_first()?;
        let entry = self.map.remove(&key)?;
        let size = size_of(&key, &entry.value);
        self.bytes = self.bytes.saturating_sub(size);
        self.thread.sub(size);
        Some((key, entry))
    }

    /// The dirty entries in LRU order, marking them clean.
    pub(crate) fn take_dirty(&mut self) -> Vec<(Vec<u8>, CacheEntry)> {
        let mut out = Vec::new();
        for key in self.lru.values() {
            if let Some(entry) = self.map.get_mut(key) {
                if entry.dirty {
                    entry.dirty = false;
                    out.push((key.clone(), entry.clone()));
                }
            }
        }
        out
    }

    /// Entries with `from <= key <= to` (either bound open), in key order.
    pub(crate) fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        use std::ops::Bound;
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Vec::new();
            }
        }
        let lo = from.map_or(Bound::Unbounded, Bound::Included);
        let hi = to.map_or(Bound::Unbounded, Bound::Included);
        self.map.range::<[u8], _>((lo, hi)).map(|(k, e)| (k.clone(), e.value.clone())).collect()
    }

    /// Drops every entry (without writing anything).
    pub(crate) fn clear(&mut self) {
        self.thread.sub(self.bytes);
        self.bytes = 0;
        self.map.clear();
        self.lru.clear();
    }

    /// Number of cached entries.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

impl Drop for NamedCache {
    fn drop(&mut self) {
        self.thread.sub(self.bytes);
    }
}

/// Pushes an entry to a queue, recovering from a poisoned lock (a panicked drainer loses nothing).
pub(crate) fn enqueue(queue: &DirtyQueue, entry: DirtyEntry) {
    match queue.lock() {
        Ok(mut q) => q.push(entry),
        Err(poisoned) => poisoned.into_inner().push(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_shared_and_released() {
        let thread = ThreadCache::new(1_000);
        let mut a = NamedCache::new(thread.clone());
        let mut b = NamedCache::new(thread.clone());
        a.put(b"k", Some(vec![0; 100]), true, 1);
        b.put(b"k", Some(vec![0; 100]), true, 1);
        assert_eq!(thread.used_bytes(), 2 * (1 + 100 + ENTRY_OVERHEAD));
        a.put(b"k", Some(vec![0; 10]), false, 2);
        assert_eq!(a.get(b"k").map(|e| e.dirty), Some(true), "coalesced updates stay dirty");
        drop(a);
        assert_eq!(thread.used_bytes(), 1 + 100 + ENTRY_OVERHEAD);
        b.clear();
        assert_eq!(thread.used_bytes(), 0);
    }

    #[test]
    fn evicts_least_recently_used_first() {
        let thread = ThreadCache::new(10_000);
        let mut c = NamedCache::new(thread);
        c.put(b"a", None, false, 0);
        c.put(b"b", None, false, 0);
        c.get(b"a");
        assert_eq!(c.evict_lru().map(|(k, _)| k), Some(b"b".to_vec()));
        assert_eq!(c.evict_lru().map(|(k, _)| k), Some(b"a".to_vec()));
        assert!(c.evict_lru().is_none());
    }
}
