//! The caching layer of window stores.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::cache::{enqueue, CacheEntry, DirtyEntry, DirtyQueue, NamedCache, ThreadCache};
use crate::error::{StateError, StateResult};
use crate::keys::{decode_window_storage_key, encode_window_key, window_storage_key, WINDOW_SUFFIX_LEN};
use crate::memory::expired;
use crate::store::{StateStore, WindowBytesStore, WindowEntry};

/// Caches a window store's writes in the thread's record cache (see
/// [`CachingKeyValueStore`](super::CachingKeyValueStore) for the flush and eviction rules).
///
/// Not for stores that retain duplicates: as in Kafka Streams, those are never cached (coalescing
/// would lose the duplicates). Queued keys are `encode_window_key(key, start, 0)`.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::{Arc, Mutex};
/// use kstreams_state::layers::{CachingWindowStore, ThreadCache};
/// use kstreams_state::memory::InMemoryWindowStore;
/// use kstreams_state::store::{StateStore, WindowBytesStore};
/// let queue = Arc::new(Mutex::new(Vec::new()));
/// let mut store = CachingWindowStore::new(
///     Box::new(InMemoryWindowStore::new("per-minute", 600_000, false)),
///     ThreadCache::new(1 << 20),
///     queue.clone(),
///     Arc::new(AtomicI64::new(0)),
/// );
/// store.put(b"k", Some(b"1"), 0).unwrap();
/// store.put(b"k", Some(b"2"), 0).unwrap();
/// store.flush().unwrap();
/// assert_eq!(queue.lock().unwrap().len(), 1, "two updates of one window coalesced");
/// ```
pub struct CachingWindowStore {
    inner: Box<dyn WindowBytesStore>,
    cache: RefCell<NamedCache>,
    queue: DirtyQueue,
    record_timestamp: Arc<AtomicI64>,
    observed_stream_time: i64,
}

impl CachingWindowStore {
    /// Wraps `inner` with a cache in `thread`'s budget, queueing flushed entries on `queue`.
    pub fn new(
        inner: Box<dyn WindowBytesStore>,
        thread: Arc<ThreadCache>,
        queue: DirtyQueue,
        record_timestamp: Arc<AtomicI64>,
    ) -> Self {
        CachingWindowStore {
            inner,
            cache: RefCell::new(NamedCache::new(thread)),
            queue,
            record_timestamp,
            observed_stream_time: i64::MIN,
        }
    }

    fn corrupt(&self, len: usize) -> StateError {
        StateError::Corrupt {
            store: self.inner.name().to_string(),
            detail: format!("cached window key of {len} bytes"),
        }
    }

    fn write_down(&mut self, storage_key: Vec<u8>, entry: CacheEntry) -> StateResult<()> {
        let (key, start, _) = decode_window_storage_key(&storage_key).ok_or_else(|| self.corrupt(storage_key.len()))?;
        let old_value = self.inner.fetch(key, start)?;
        let accepted = self.inner.put(key, entry.value.as_deref(), start)?;
        if accepted && (old_value.is_some() || entry.value.is_some()) {
            enqueue(
                &self.queue,
                DirtyEntry {
                    key: encode_window_key(key, start, 0),
                    new_value: entry.value,
                    old_value,
                    timestamp: entry.timestamp,
                },
            );
        }
        Ok(())
    }

    fn live(&self, start: i64) -> bool {
        !expired(start, self.inner.retention_ms(), self.observed_stream_time)
    }
}

caching_layer!(CachingWindowStore);

impl WindowBytesStore for CachingWindowStore {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool> {
        self.observed_stream_time = self.observed_stream_time.max(window_start);
        if !self.live(window_start) {
            return Ok(false);
        }
        let ts = self.record_timestamp.load(Ordering::Relaxed);
        self.cache.borrow_mut().put(&window_storage_key(key, window_start, 0), value.map(<[u8]>::to_vec), true, ts);
        self.maybe_evict()?;
        Ok(true)
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>> {
        if !self.live(window_start) {
            return Ok(None);
        }
        if let Some(entry) = self.cache.borrow_mut().get(&window_storage_key(key, window_start, 0)) {
            return Ok(entry.value);
        }
        self.inner.fetch(key, window_start)
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        let mut merged: BTreeMap<i64, Vec<u8>> = self.inner.fetch_range(key, time_from, time_to)?.into_iter().collect();
        let lo = window_storage_key(key, time_from, 0);
        let hi = window_storage_key(key, time_to, u32::MAX);
        for (k, value) in self.cache.borrow().range(Some(&lo), Some(&hi)) {
            if k.len() != key.len() + WINDOW_SUFFIX_LEN {
                continue;
            }
            let (_, start, _) = decode_window_storage_key(&k).ok_or_else(|| self.corrupt(k.len()))?;
            match value {
                Some(v) if self.live(start) => merged.insert(start, v),
                _ => merged.remove(&start),
            };
        }
        Ok(merged.into_iter().collect())
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        let mut merged: BTreeMap<(Vec<u8>, i64), Vec<u8>> =
            self.inner.fetch_all(time_from, time_to)?.into_iter().map(|e| ((e.key, e.window_start), e.value)).collect();
        for (k, value) in self.cache.borrow().range(None, None) {
            let (key, start, _) = decode_window_storage_key(&k).ok_or_else(|| self.corrupt(k.len()))?;
            if start < time_from || start > time_to {
                continue;
            }
            match value {
                Some(v) if self.live(start) => merged.insert((key.to_vec(), start), v),
                _ => merged.remove(&(key.to_vec(), start)),
            };
        }
        Ok(merged.into_iter().map(|((key, window_start), value)| WindowEntry { key, window_start, value }).collect())
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}
