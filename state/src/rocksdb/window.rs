//! The segmented RocksDB window store.

use std::path::Path;

use rocksdb::{ColumnFamily, Direction, IteratorMode, WriteBatch};

use super::segments::Segments;
use super::{rocks_err, RocksDbResources};
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
        self.segments.ensure(start)?;
        let db = self.segments.db()?;
        let Some(cf) = self.segments.cf_for(start)? else {
            return Err(self.missing_segment(start));
        };
        let k = window_storage_key(key, start, seq);
        match value {
            Some(v) => db.put_cf(cf, k, v),
            None => db.delete_cf(cf, k),
        }
        .map_err(rocks_err(&self.name))?;
        Ok(true)
    }

    fn missing_segment(&self, ts: i64) -> StateError {
        StateError::Corrupt { store: self.name.clone(), detail: format!("segment for timestamp {ts} vanished") }
    }

    /// Entries of one segment between two storage keys, for `key` (or every key when `key` is None).
    fn scan(
        &self,
        cf: &ColumnFamily,
        key: Option<&[u8]>,
        from: i64,
        to: i64,
        out: &mut Vec<Decoded>,
    ) -> StateResult<()> {
        let db = self.segments.db()?;
        let (lo, hi) = match key {
            Some(k) => (window_storage_key(k, from, 0), Some(window_storage_key(k, to, u32::MAX))),
            None => (Vec::new(), None),
        };
        for item in db.iterator_cf(cf, IteratorMode::From(&lo, Direction::Forward)) {
            let (k, v) = item.map_err(rocks_err(&self.name))?;
            if hi.as_deref().is_some_and(|hi| &*k > hi) {
                break;
            }
            if key.is_some_and(|key| k.len() != key.len() + WINDOW_SUFFIX_LEN) {
                continue; // a longer key that shares the prefix
            }
            let (rk, start, seq) = decode_window_storage_key(&k).ok_or_else(|| StateError::Corrupt {
                store: self.name.clone(),
                detail: format!("window key of {} bytes is shorter than 12", k.len()),
            })?;
            if start >= from && start <= to {
                out.push((rk.to_vec(), start, seq, v.into_vec()));
            }
        }
        Ok(())
    }
}

impl StateStore for RocksDbWindowStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&mut self) -> StateResult<()> {
        self.segments.db()?.flush_wal(true).map_err(rocks_err(&self.name))
    }

    fn close(&mut self) -> StateResult<()> {
        self.segments.close()
    }

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        let mut decoded = Vec::with_capacity(batch.len());
        for (raw, value) in batch {
            let (key, start, seq) = decode_window_key(raw).ok_or_else(|| StateError::Corrupt {
                store: self.name.clone(),
                detail: format!("window changelog key of {} bytes is shorter than 12", raw.len()),
            })?;
            decoded.push((key, start, seq, value.as_deref()));
        }
        if let Some(max) = decoded.iter().map(|d| d.1).max() {
            self.segments.observe(max)?;
        }
        for (_, start, seq, _) in &decoded {
            self.seqnum = self.seqnum.max(*seq);
            if !self.segments.is_expired(*start) {
                self.segments.ensure(*start)?;
            }
        }
        let mut wb = WriteBatch::default();
        for (key, start, seq, value) in decoded {
            if self.segments.is_expired(start) {
                continue;
            }
            let cf = self.segments.cf_for(start)?.ok_or_else(|| self.missing_segment(start))?;
            let k = window_storage_key(key, start, seq);
            match value {
                Some(v) => wb.put_cf(cf, k, v),
                None => wb.delete_cf(cf, k),
            }
        }
        self.segments.db()?.write(wb).map_err(rocks_err(&self.name))
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
        let Some(cf) = self.segments.cf_for(window_start)? else {
            return Ok(None);
        };
        let mut out = Vec::new();
        self.scan(cf, Some(key), window_start, window_start, &mut out)?;
        Ok(out.into_iter().next().map(|d| d.3))
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        let from = time_from.max(self.segments.earliest_live());
        let mut out = Vec::new();
        for cf in self.segments.cfs_between(from, time_to)? {
            self.scan(cf, Some(key), from, time_to, &mut out)?;
        }
        Ok(out.into_iter().map(|(_, start, _, v)| (start, v)).collect())
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        let from = time_from.max(self.segments.earliest_live());
        let mut out = Vec::new();
        for cf in self.segments.cfs_between(from, time_to)? {
            self.scan(cf, None, from, time_to, &mut out)?;
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
