//! The caching layer of key-value stores.

use std::cell::RefCell;
use std::iter::Peekable;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::cache::{enqueue, CacheEntry, DirtyEntry, DirtyQueue, NamedCache, ThreadCache};
use crate::error::StateResult;
use crate::store::{KeyValueBytes, KeyValueBytesStore, KeyValueIter, StateStore};

/// Caches a key-value store's writes in the thread's record cache.
///
/// Writes go to the cache only; updates to the same key coalesce. On [`flush`](StateStore::flush) or
/// eviction, dirty entries are written to the wrapped store and queued as [`DirtyEntry`]s (with the
/// value the wrapped store held before) for the owner to forward. Reads see the cache first. Entries
/// whose old and new values are both absent are written but not queued.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::{Arc, Mutex};
/// use kstreams_state::layers::{CachingKeyValueStore, ThreadCache};
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::store::{KeyValueBytesStore, StateStore};
///
/// let queue = Arc::new(Mutex::new(Vec::new()));
/// let mut store = CachingKeyValueStore::new(
///     Box::new(InMemoryKeyValueStore::new("counts")),
///     ThreadCache::new(1 << 20),
///     queue.clone(),
///     Arc::new(AtomicI64::new(0)),
/// );
/// store.put(b"k", Some(b"1")).unwrap();
/// store.put(b"k", Some(b"2")).unwrap();
/// store.flush().unwrap();
/// let drained = std::mem::take(&mut *queue.lock().unwrap());
/// assert_eq!(drained.len(), 1); // two updates coalesced into one
/// assert_eq!(drained[0].new_value.as_deref(), Some(&b"2"[..]));
/// ```
pub struct CachingKeyValueStore {
    inner: Box<dyn KeyValueBytesStore>,
    cache: RefCell<NamedCache>,
    queue: DirtyQueue,
    record_timestamp: Arc<AtomicI64>,
}

impl CachingKeyValueStore {
    /// Wraps `inner` with a cache in `thread`'s budget, queueing flushed entries on `queue`.
    pub fn new(
        inner: Box<dyn KeyValueBytesStore>,
        thread: Arc<ThreadCache>,
        queue: DirtyQueue,
        record_timestamp: Arc<AtomicI64>,
    ) -> Self {
        CachingKeyValueStore { inner, cache: RefCell::new(NamedCache::new(thread)), queue, record_timestamp }
    }

    /// Number of entries in this store's cache.
    pub fn cached_entries(&self) -> usize {
        self.cache.borrow().len()
    }

    fn write_down(&mut self, key: Vec<u8>, entry: CacheEntry) -> StateResult<()> {
        let old_value = self.inner.get(&key)?;
        self.inner.put(&key, entry.value.as_deref())?;
        if old_value.is_some() || entry.value.is_some() {
            enqueue(&self.queue, DirtyEntry { key, new_value: entry.value, old_value, timestamp: entry.timestamp });
        }
        Ok(())
    }

    fn merged<'a>(&'a self, cached: Vec<(Vec<u8>, Option<Vec<u8>>)>, below: KeyValueIter<'a>) -> KeyValueIter<'a> {
        merge_over(cached, below)
    }
}

/// A pending change: a key and its new value (`None` for a delete).
pub(crate) type Change = (Vec<u8>, Option<Vec<u8>>);

/// Merges `over` (sorted by key; `None` hides the key) over `below`, both in key order.
pub(crate) fn merge_over<'a>(over: Vec<Change>, below: KeyValueIter<'a>) -> KeyValueIter<'a> {
    Box::new(Merge { cached: over.into_iter().peekable(), below: below.peekable() })
}

/// Merges the cache's entries over the wrapped store's, both in key order; cached deletes hide keys.
struct Merge<'a> {
    cached: Peekable<std::vec::IntoIter<Change>>,
    below: Peekable<KeyValueIter<'a>>,
}

impl Iterator for Merge<'_> {
    type Item = StateResult<KeyValueBytes>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.cached.peek(), self.below.peek()) {
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) | (Some(_), Some(Err(_))) => std::cmp::Ordering::Greater,
                (Some((ck, _)), Some(Ok((bk, _)))) => ck.cmp(bk),
            };
            if order == std::cmp::Ordering::Equal {
                self.below.next(); // shadowed by the cache
            }
            let take_cached = order != std::cmp::Ordering::Greater;
            if take_cached {
                match self.cached.next() {
                    Some((k, Some(v))) => return Some(Ok((k, v))),
                    Some((_, None)) => continue,
                    None => return None,
                }
            }
            return self.below.next();
        }
    }
}

caching_layer!(CachingKeyValueStore);

impl KeyValueBytesStore for CachingKeyValueStore {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        if let Some(entry) = self.cache.borrow_mut().get(key) {
            return Ok(entry.value);
        }
        self.inner.get(key)
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        let ts = self.record_timestamp.load(Ordering::Relaxed);
        self.cache.borrow_mut().put(key, value.map(<[u8]>::to_vec), true, ts);
        self.maybe_evict()
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        let cached = self.cache.borrow().range(from, to);
        let below = self.inner.range(from, to)?;
        Ok(self.merged(cached, below))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        let cached: Vec<_> = self
            .cache
            .borrow()
            .range(Some(prefix), None)
            .into_iter()
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect();
        let below = self.inner.prefix_scan(prefix)?;
        Ok(self.merged(cached, below))
    }

    fn approximate_num_entries(&self) -> StateResult<u64> {
        self.inner.approximate_num_entries()
    }
}
