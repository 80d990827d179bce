//! The caching layer of session stores.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::cache::{enqueue, CacheEntry, DirtyEntry, DirtyQueue, NamedCache, ThreadCache};
use crate::error::{StateError, StateResult};
use crate::keys::{decode_session_storage_key, encode_session_key, session_storage_key, SESSION_SUFFIX_LEN};
use crate::memory::expired;
use crate::store::{SessionBytesStore, SessionWindow, StateStore};

/// Caches a session store's writes in the thread's record cache (see
/// [`CachingKeyValueStore`](super::CachingKeyValueStore) for the flush and eviction rules).
/// Queued keys are [`encode_session_key`]`(key, window)`.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::{Arc, Mutex};
/// use kstreams_state::layers::{CachingSessionStore, ThreadCache};
/// use kstreams_state::memory::InMemorySessionStore;
/// use kstreams_state::store::{SessionBytesStore, SessionWindow, StateStore};
/// let queue = Arc::new(Mutex::new(Vec::new()));
/// let mut store = CachingSessionStore::new(
///     Box::new(InMemorySessionStore::new("sessions", 60_000)),
///     ThreadCache::new(1 << 20),
///     queue.clone(),
///     Arc::new(AtomicI64::new(0)),
/// );
/// store.put(b"k", SessionWindow { start: 0, end: 0 }, Some(b"1")).unwrap();
/// store.flush().unwrap();
/// assert_eq!(queue.lock().unwrap().len(), 1);
/// ```
pub struct CachingSessionStore {
    inner: Box<dyn SessionBytesStore>,
    cache: RefCell<NamedCache>,
    queue: DirtyQueue,
    record_timestamp: Arc<AtomicI64>,
    observed_stream_time: i64,
}

impl CachingSessionStore {
    /// Wraps `inner` with a cache in `thread`'s budget, queueing flushed entries on `queue`.
    pub fn new(
        inner: Box<dyn SessionBytesStore>,
        thread: Arc<ThreadCache>,
        queue: DirtyQueue,
        record_timestamp: Arc<AtomicI64>,
    ) -> Self {
        CachingSessionStore {
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
            detail: format!("cached session key of {len} bytes"),
        }
    }

    fn write_down(&mut self, storage_key: Vec<u8>, entry: CacheEntry) -> StateResult<()> {
        let (key, window) = decode_session_storage_key(&storage_key).ok_or_else(|| self.corrupt(storage_key.len()))?;
        let old_value = self.inner.fetch_session(key, window)?;
        let accepted = self.inner.put(key, window, entry.value.as_deref())?;
        if accepted && (old_value.is_some() || entry.value.is_some()) {
            enqueue(
                &self.queue,
                DirtyEntry {
                    key: encode_session_key(key, window),
                    new_value: entry.value,
                    old_value,
                    timestamp: entry.timestamp,
                },
            );
        }
        Ok(())
    }

    fn live(&self, end: i64) -> bool {
        !expired(end, self.inner.retention_ms(), self.observed_stream_time)
    }
}

caching_layer!(CachingSessionStore);

impl SessionBytesStore for CachingSessionStore {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        let mut merged: BTreeMap<SessionWindow, Vec<u8>> =
            self.inner.find_sessions(key, earliest_session_end, latest_session_start)?.into_iter().collect();
        let lo = session_storage_key(key, SessionWindow { start: i64::MIN, end: earliest_session_end });
        let mut hi = key.to_vec();
        hi.extend_from_slice(&[0xff; SESSION_SUFFIX_LEN]);
        for (k, value) in self.cache.borrow().range(Some(&lo), Some(&hi)) {
            if k.len() != key.len() + SESSION_SUFFIX_LEN {
                continue;
            }
            let (_, w) = decode_session_storage_key(&k).ok_or_else(|| self.corrupt(k.len()))?;
            if w.end < earliest_session_end || w.start > latest_session_start {
                continue;
            }
            match value {
                Some(v) if self.live(w.end) => merged.insert(w, v),
                _ => merged.remove(&w),
            };
        }
        // SessionWindow orders by (start, end).
        Ok(merged.into_iter().collect())
    }

    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>> {
        if !self.live(window.end) {
            return Ok(None);
        }
        if let Some(entry) = self.cache.borrow_mut().get(&session_storage_key(key, window)) {
            return Ok(entry.value);
        }
        self.inner.fetch_session(key, window)
    }

    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        self.observed_stream_time = self.observed_stream_time.max(window.end);
        if !self.live(window.end) {
            return Ok(false);
        }
        let ts = self.record_timestamp.load(Ordering::Relaxed);
        self.cache.borrow_mut().put(&session_storage_key(key, window), value.map(<[u8]>::to_vec), true, ts);
        self.maybe_evict()?;
        Ok(true)
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}
