//! The in-memory window store.

use std::collections::{BTreeMap, BTreeSet};

use super::{ensure_open, expired};
use crate::error::{StateError, StateResult};
use crate::keys::decode_window_key;
use crate::store::{StateStore, WindowBytesStore, WindowEntry};

type Entries = BTreeMap<(Vec<u8>, i64, u32), Vec<u8>>;

/// A window store in memory, ordered by (key, window start, seqnum).
///
/// Retention follows Kafka Streams: the store tracks the observed stream time (the largest window
/// start it has seen) and a window is expired once `window_start + retention <= observed stream time`;
/// writes to expired windows are dropped and expired windows are purged on each write.
///
/// ```
/// use kstreams_state::memory::InMemoryWindowStore;
/// use kstreams_state::store::WindowBytesStore;
///
/// let mut store = InMemoryWindowStore::new("clicks", 1_000, false);
/// assert!(store.put(b"k", Some(b"1"), 0).unwrap());
/// assert!(store.put(b"k", Some(b"2"), 5_000).unwrap()); // stream time moves to 5000: window 0 expires
/// assert_eq!(store.fetch(b"k", 0).unwrap(), None);
/// assert!(!store.put(b"k", Some(b"3"), 100).unwrap()); // too late
/// ```
#[derive(Debug)]
pub struct InMemoryWindowStore {
    name: String,
    retention_ms: i64,
    retain_duplicates: bool,
    seqnum: u32,
    observed_stream_time: i64,
    entries: Entries,
    by_start: BTreeSet<(i64, Vec<u8>, u32)>,
    open: bool,
}

impl InMemoryWindowStore {
    /// An empty window store keeping windows for `retention_ms` of stream time; with
    /// `retain_duplicates` every put under the same (key, start) is kept (stream-stream joins).
    pub fn new(name: impl Into<String>, retention_ms: i64, retain_duplicates: bool) -> Self {
        InMemoryWindowStore {
            name: name.into(),
            retention_ms,
            retain_duplicates,
            seqnum: 0,
            observed_stream_time: i64::MIN,
            entries: BTreeMap::new(),
            by_start: BTreeSet::new(),
            open: true,
        }
    }

    /// The largest window start seen so far (`i64::MIN` before the first write).
    pub fn observed_stream_time(&self) -> i64 {
        self.observed_stream_time
    }

    /// Applies one change with an explicit seqnum; `false` if the window is expired.
    fn apply(&mut self, key: &[u8], start: i64, seqnum: u32, value: Option<&[u8]>) -> bool {
        self.observed_stream_time = self.observed_stream_time.max(start);
        self.purge_expired();
        if expired(start, self.retention_ms, self.observed_stream_time) {
            tracing::debug!(store = %self.name, window_start = start, "dropping write to an expired window");
            return false;
        }
        match value {
            Some(v) => {
                self.entries.insert((key.to_vec(), start, seqnum), v.to_vec());
                self.by_start.insert((start, key.to_vec(), seqnum));
            }
            None => {
                self.entries.remove(&(key.to_vec(), start, seqnum));
                self.by_start.remove(&(start, key.to_vec(), seqnum));
            }
        }
        true
    }

    fn purge_expired(&mut self) {
        while let Some(first) = self.by_start.first() {
            if !expired(first.0, self.retention_ms, self.observed_stream_time) {
                break;
            }
            if let Some((start, key, seq)) = self.by_start.pop_first() {
                self.entries.remove(&(key, start, seq));
            }
        }
    }
}

impl StateStore for InMemoryWindowStore {
    in_memory_state_store!();

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        ensure_open(self.open, &self.name)?;
        for (raw, value) in batch {
            let (key, start, seq) = decode_window_key(raw).ok_or_else(|| StateError::Corrupt {
                store: self.name.clone(),
                detail: format!("window changelog key of {} bytes is shorter than 12", raw.len()),
            })?;
            self.seqnum = self.seqnum.max(seq);
            self.apply(key, start, seq, value.as_deref());
        }
        Ok(())
    }
}

impl WindowBytesStore for InMemoryWindowStore {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool> {
        ensure_open(self.open, &self.name)?;
        if self.retain_duplicates {
            // As in Kafka Streams, deletes are ignored by stores that retain duplicates.
            if value.is_none() {
                return Ok(true);
            }
            self.seqnum = self.seqnum.wrapping_add(1);
            return Ok(self.apply(key, window_start, self.seqnum, value));
        }
        Ok(self.apply(key, window_start, 0, value))
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>> {
        ensure_open(self.open, &self.name)?;
        let lo = (key.to_vec(), window_start, 0);
        let hi = (key.to_vec(), window_start, u32::MAX);
        Ok(self.entries.range(lo..=hi).next().map(|(_, v)| v.clone()))
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        ensure_open(self.open, &self.name)?;
        if time_from > time_to {
            return Ok(Vec::new());
        }
        let lo = (key.to_vec(), time_from, 0);
        let hi = (key.to_vec(), time_to, u32::MAX);
        Ok(self.entries.range(lo..=hi).map(|((_, start, _), v)| (*start, v.clone())).collect())
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        ensure_open(self.open, &self.name)?;
        Ok(self
            .entries
            .iter()
            .filter(|((_, start, _), _)| *start >= time_from && *start <= time_to)
            .map(|((key, start, _), v)| WindowEntry { key: key.clone(), window_start: *start, value: v.clone() })
            .collect())
    }

    fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
}
