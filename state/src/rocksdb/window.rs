//! The segmented RocksDB window store.

use std::path::Path;

use super::segments::Segments;
use super::RocksDbResources;
use crate::error::{StateError, StateResult};
use crate::keys::{decode_window_key, decode_window_storage_key, window_storage_key, WINDOW_SUFFIX_LEN};
use crate::store::{StateStore, WindowBytesStore, WindowEntry};

/// A window store in RocksDB, segmented by window start (see [`segments`](super::segments)).
///
/// Keys are stored as `[key][window start][seqnum]` with order-preserving timestamps; `seqnum` is 0
/// unless the store retains duplicates.
///
/// ```
/// use kstreams_state::rocksdb::{RocksDbResources, RocksDbWindowStore};
/// use kstreams_state::store::WindowBytesStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let resources = RocksDbResources::shared_default();
/// let mut store = RocksDbWindowStore::open("clicks", dir.path(), 3_600_000, false, &resources).unwrap();
/// store.put(b"page", Some(b"7"), 60_000).unwrap();
/// assert_eq!(store.fetch_range(b"page", 0, 120_000).unwrap(), vec![(60_000, b"7".to_vec())]);
/// ```
pub struct RocksDbWindowStore {
    name: String,
    segments: Segments,
    retention_ms: i64,
    retain_duplicates: bool,
    seqnum: u32,
}

impl std::fmt::Debug for RocksDbWindowStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbWindowStore")
            .field("name", &self.name)
            .field("retention_ms", &self.retention_ms)
            .finish()
    }
}

type Decoded = (Vec<u8>, i64, u32, Vec<u8>);

impl RocksDbWindowStore {
    /// Opens (or creates) the window store `name` in folder `path`.
    pub fn open(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        retention_ms: i64,
        retain_duplicates: bool,
        resources: &RocksDbResources,
    ) -> StateResult<Self> {
        let name = name.into();
        let segments = Segments::open(&name, path.as_ref(), resources.options(&name), retention_ms)?;
        Ok(RocksDbWindowStore { name, segments, retention_ms, retain_duplicates, seqnum: 0 })
    }

    /// Makes writes durable only on [`commit`](StateStore::commit), together with the changelog
    /// offset (for `exactly_once_v2`; see [`segments`](super::segments)).
    ///
    /// ```
    /// use kstreams_state::rocksdb::{RocksDbResources, RocksDbWindowStore};
    /// use kstreams_state::store::{StateStore, WindowBytesStore};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let resources = RocksDbResources::shared_default();
    /// let mut store = RocksDbWindowStore::open("w", dir.path(), 3_600_000, false, &resources)
    ///     .unwrap()
    ///     .buffer_until_commit()
    ///     .unwrap();
    /// store.put(b"page", Some(b"7"), 60_000).unwrap();
    /// store.commit(Some(42)).unwrap();
    /// assert_eq!(store.committed_offset().unwrap(), Some(42));
    /// ```
    pub fn buffer_until_commit(mut self) -> StateResult<Self> {
        self.segments.buffer_until_commit()?;
        Ok(self)
    }

    /// Whether the store started empty at open (folder missing or wiped).
    pub fn was_fresh(&self) -> bool {
        self.segments.fresh()
    }

    /// Ids of the live segments, oldest first (a segment holds `segment_interval` ms of window starts).
    pub fn segment_ids(&self) -> Vec<i64> {
        self.segments.segment_ids()
    }

    fn write(&mut self, key: &[u8], start: i64, seq: u32, value: Option<&[u8]>) -> StateResult<bool> {
        self.segments.observe(start)?;
        if self.segments.is_expired(start) {
            tracing::debug!(store = %self.name, window_start = start, "dropping write to an expired window");
            return Ok(false);
        }
        self.segments.write(start, window_storage_key(key, start, seq), value)?;
        Ok(true)
    }

    /// Entries of segment `id` for `key` (or every key when `key` is None) with window starts in
    /// `[from, to]`.
    fn scan(&self, id: i64, key: Option<&[u8]>, from: i64, to: i64, out: &mut Vec<Decoded>) -> StateResult<()> {
        let (lo, hi) = match key {
            Some(k) => (window_storage_key(k, from, 0), Some(window_storage_key(k, to, u32::MAX))),
            None => (Vec::new(), None),
        };
        for item in self.segments.scan(id, &lo, hi.as_deref())? {
            let (k, v) = item?;
            if key.is_some_and(|key| k.len() != key.len() + WINDOW_SUFFIX_LEN) {
                continue; // a longer key that shares the prefix
            }
            let (rk, start, seq) = decode_window_storage_key(&k).ok_or_else(|| StateError::Corrupt {
                store: self.name.clone(),
                detail: format!("window key of {} bytes is shorter than 12", k.len()),
            })?;
            if start >= from && start <= to {
                out.push((rk.to_vec(), start, seq, v));
            }
        }
        Ok(())
    }
}

impl StateStore for RocksDbWindowStore {
    segmented_state_store!();

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        let mut changes = Vec::with_capacity(batch.len());
        for (raw, value) in batch {
            let (key, start, seq) = decode_window_key(raw).ok_or_else(|| StateError::Corrupt {
                store: self.name.clone(),
                detail: format!("window changelog key of {} bytes is shorter than 12", raw.len()),
            })?;
            self.seqnum = self.seqnum.max(seq);
            changes.push((start, window_storage_key(key, start, seq), value.as_deref()));
        }
        self.segments.restore(changes)
    }
}

impl WindowBytesStore for RocksDbWindowStore {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool> {
        if self.retain_duplicates {
            if value.is_none() {
                return Ok(true);
            }
            self.seqnum = self.seqnum.wrapping_add(1);
            return self.write(key, window_start, self.seqnum, value);
        }
        self.write(key, window_start, 0, value)
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>> {
        if self.segments.is_expired(window_start) {
            return Ok(None);
        }
        if !self.retain_duplicates {
            // One entry per (key, window): a point lookup, much cheaper than an iterator.
            return self.segments.get(window_start, &window_storage_key(key, window_start, 0));
        }
        let mut out = Vec::new();
        self.scan(self.segments.segment_id(window_start), Some(key), window_start, window_start, &mut out)?;
        Ok(out.into_iter().next().map(|d| d.3))
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        let from = time_from.max(self.segments.earliest_live());
        let mut out = Vec::new();
        for id in self.segments.ids_between(from, time_to) {
            self.scan(id, Some(key), from, time_to, &mut out)?;
        }
        Ok(out.into_iter().map(|(_, start, _, v)| (start, v)).collect())
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        let from = time_from.max(self.segments.earliest_live());
        let mut out = Vec::new();
        for id in self.segments.ids_between(from, time_to) {
            self.scan(id, None, from, time_to, &mut out)?;
        }
        out.sort_by(|a, b| (&a.0, a.1, a.2).cmp(&(&b.0, b.1, b.2)));
        Ok(out.into_iter().map(|(key, window_start, _, value)| WindowEntry { key, window_start, value }).collect())
    }

    fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
}

impl Drop for RocksDbWindowStore {
    fn drop(&mut self) {
        if let Err(e) = self.segments.close() {
            tracing::warn!(store = %self.name, error = %e, "closing RocksDB window store on drop failed");
        }
    }
}
