//! The in-memory session store.

use std::collections::{BTreeMap, BTreeSet};

use super::{ensure_open, expired};
use crate::error::{StateError, StateResult};
use crate::keys::decode_session_key;
use crate::store::{SessionBytesStore, SessionWindow, StateStore};

/// A session store in memory, ordered by (key, end, start).
///
/// Retention follows Kafka Streams: the observed stream time is the largest session end seen, and a
/// session is expired once `end + retention <= observed stream time`.
///
/// ```
/// use kstreams_state::memory::InMemorySessionStore;
/// use kstreams_state::store::{SessionBytesStore, SessionWindow};
///
/// let mut store = InMemorySessionStore::new("sessions", 10_000);
/// store.put(b"user", SessionWindow { start: 0, end: 100 }, Some(b"2")).unwrap();
/// let found = store.find_sessions(b"user", 50, 200).unwrap();
/// assert_eq!(found.len(), 1);
/// ```
#[derive(Debug)]
pub struct InMemorySessionStore {
    name: String,
    retention_ms: i64,
    observed_stream_time: i64,
    entries: BTreeMap<(Vec<u8>, i64, i64), Vec<u8>>,
    by_end: BTreeSet<(i64, Vec<u8>, i64)>,
    open: bool,
}

impl InMemorySessionStore {
    /// An empty session store keeping sessions for `retention_ms` of stream time after their end.
    pub fn new(name: impl Into<String>, retention_ms: i64) -> Self {
        InMemorySessionStore {
            name: name.into(),
            retention_ms,
            observed_stream_time: i64::MIN,
            entries: BTreeMap::new(),
            by_end: BTreeSet::new(),
            open: true,
        }
    }

    fn apply(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> bool {
        self.observed_stream_time = self.observed_stream_time.max(window.end);
        self.purge_expired();
        if expired(window.end, self.retention_ms, self.observed_stream_time) {
            tracing::debug!(store = %self.name, session_end = window.end, "dropping write to an expired session");
            return false;
        }
        let entry = (key.to_vec(), window.end, window.start);
        let index = (window.end, key.to_vec(), window.start);
        match value {
            Some(v) => {
                self.entries.insert(entry, v.to_vec());
                self.by_end.insert(index);
            }
            None => {
                self.entries.remove(&entry);
                self.by_end.remove(&index);
            }
        }
        true
    }

    fn purge_expired(&mut self) {
        while let Some(first) = self.by_end.first() {
            if !expired(first.0, self.retention_ms, self.observed_stream_time) {
                break;
            }
            if let Some((end, key, start)) = self.by_end.pop_first() {
                self.entries.remove(&(key, end, start));
            }
        }
    }
}

impl StateStore for InMemorySessionStore {
    in_memory_state_store!();

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        ensure_open(self.open, &self.name)?;
        for (raw, value) in batch {
            let (key, window) = decode_session_key(raw).ok_or_else(|| StateError::Corrupt {
                store: self.name.clone(),
                detail: format!("session changelog key of {} bytes is shorter than 16", raw.len()),
            })?;
            self.apply(key, window, value.as_deref());
        }
        Ok(())
    }
}

impl SessionBytesStore for InMemorySessionStore {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        ensure_open(self.open, &self.name)?;
        let lo = (key.to_vec(), earliest_session_end, i64::MIN);
        let hi = (key.to_vec(), i64::MAX, i64::MAX);
        let mut found: Vec<_> = self
            .entries
            .range(lo..=hi)
            .filter(|((_, _, start), _)| *start <= latest_session_start)
            .map(|((_, end, start), v)| (SessionWindow { start: *start, end: *end }, v.clone()))
            .collect();
        found.sort_by_key(|(w, _)| (w.start, w.end));
        Ok(found)
    }

    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>> {
        ensure_open(self.open, &self.name)?;
        Ok(self.entries.get(&(key.to_vec(), window.end, window.start)).cloned())
    }

    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        ensure_open(self.open, &self.name)?;
        Ok(self.apply(key, window, value))
    }

    fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
}
