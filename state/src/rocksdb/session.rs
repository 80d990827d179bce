//! The segmented RocksDB session store.

use std::path::Path;

use rocksdb::{Direction, IteratorMode, WriteBatch};

use super::segments::Segments;
use super::{rocks_err, RocksDbResources};
use crate::error::{StateError, StateResult};
use crate::keys::{decode_session_key, decode_session_storage_key, session_storage_key, SESSION_SUFFIX_LEN};
use crate::store::{SessionBytesStore, SessionWindow, StateStore};

/// A session store in RocksDB, segmented by session end (see [`segments`](super::segments)).
///
/// Keys are stored as `[key][end][start]` with order-preserving timestamps.
///
/// ```
/// use kstreams_state::rocksdb::{RocksDbResources, RocksDbSessionStore};
/// use kstreams_state::store::{SessionBytesStore, SessionWindow};
///
/// let dir = tempfile::tempdir().unwrap();
/// let resources = RocksDbResources::shared_default();
/// let mut store = RocksDbSessionStore::open("sessions", dir.path(), 600_000, &resources).unwrap();
/// let w = SessionWindow { start: 1_000, end: 5_000 };
/// store.put(b"user", w, Some(b"2")).unwrap();
/// assert_eq!(store.fetch_session(b"user", w).unwrap(), Some(b"2".to_vec()));
/// ```
pub struct RocksDbSessionStore {
    name: String,
    segments: Segments,
    retention_ms: i64,
}

impl std::fmt::Debug for RocksDbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbSessionStore")
            .field("name", &self.name)
            .field("retention_ms", &self.retention_ms)
            .finish()
    }
}

impl RocksDbSessionStore {
    /// Opens (or creates) the session store `name` in folder `path`.
    pub fn open(
        name: impl Into<String>,
        path: impl AsRef<Path>,
        retention_ms: i64,
        resources: &RocksDbResources,
    ) -> StateResult<Self> {
        let name = name.into();
        let segments = Segments::open(&name, path.as_ref(), resources.options(&name), retention_ms)?;
        Ok(RocksDbSessionStore { name, segments, retention_ms })
    }

    /// Whether the store started empty at open (folder missing or wiped).
    pub fn was_fresh(&self) -> bool {
        self.segments.fresh()
    }

    /// Ids of the live segments, oldest first.
    pub fn segment_ids(&self) -> Vec<i64> {
        self.segments.segment_ids()
    }

    fn corrupt(&self, detail: String) -> StateError {
        StateError::Corrupt { store: self.name.clone(), detail }
    }
}

impl StateStore for RocksDbSessionStore {
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
            let (key, window) = decode_session_key(raw).ok_or_else(|| {
                self.corrupt(format!("session changelog key of {} bytes is shorter than 16", raw.len()))
            })?;
            decoded.push((key, window, value.as_deref()));
        }
        if let Some(max) = decoded.iter().map(|d| d.1.end).max() {
            self.segments.observe(max)?;
        }
        for (_, window, _) in &decoded {
            if !self.segments.is_expired(window.end) {
                self.segments.ensure(window.end)?;
            }
        }
        let mut wb = WriteBatch::default();
        for (key, window, value) in decoded {
            if self.segments.is_expired(window.end) {
                continue;
            }
            let cf = self
                .segments
                .cf_for(window.end)?
                .ok_or_else(|| self.corrupt(format!("segment for session end {} vanished", window.end)))?;
            let k = session_storage_key(key, window);
            match value {
                Some(v) => wb.put_cf(cf, k, v),
                None => wb.delete_cf(cf, k),
            }
        }
        self.segments.db()?.write(wb).map_err(rocks_err(&self.name))
    }
}

impl SessionBytesStore for RocksDbSessionStore {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        let db = self.segments.db()?;
        let from_end = earliest_session_end.max(self.segments.earliest_live());
        let lo = session_storage_key(key, SessionWindow { start: i64::MIN, end: from_end });
        let mut hi = key.to_vec();
        hi.extend_from_slice(&[0xff; SESSION_SUFFIX_LEN]);
        let mut found = Vec::new();
        for cf in self.segments.cfs_between(from_end, i64::MAX)? {
            for item in db.iterator_cf(cf, IteratorMode::From(&lo, Direction::Forward)) {
                let (k, v) = item.map_err(rocks_err(&self.name))?;
                if *k > *hi {
                    break;
                }
                if k.len() != key.len() + SESSION_SUFFIX_LEN {
                    continue;
                }
                let (_, w) = decode_session_storage_key(&k)
                    .ok_or_else(|| self.corrupt(format!("session key of {} bytes is too short", k.len())))?;
                if w.end >= from_end && w.start <= latest_session_start {
                    found.push((w, v.into_vec()));
                }
            }
        }
        found.sort_by_key(|(w, _)| (w.start, w.end));
        Ok(found)
    }

    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>> {
        if self.segments.is_expired(window.end) {
            return Ok(None);
        }
        let Some(cf) = self.segments.cf_for(window.end)? else {
            return Ok(None);
        };
        self.segments.db()?.get_cf(cf, session_storage_key(key, window)).map_err(rocks_err(&self.name))
    }

    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        self.segments.observe(window.end)?;
        if self.segments.is_expired(window.end) {
            tracing::debug!(store = %self.name, session_end = window.end, "dropping write to an expired session");
            return Ok(false);
        }
        self.segments.ensure(window.end)?;
        let db = self.segments.db()?;
        let cf = self
            .segments
            .cf_for(window.end)?
            .ok_or_else(|| self.corrupt(format!("segment for session end {} vanished", window.end)))?;
        let k = session_storage_key(key, window);
        match value {
            Some(v) => db.put_cf(cf, k, v),
            None => db.delete_cf(cf, k),
        }
        .map_err(rocks_err(&self.name))?;
        Ok(true)
    }

    fn retention_ms(&self) -> i64 {
        self.retention_ms
    }
}

impl Drop for RocksDbSessionStore {
    fn drop(&mut self) {
        if let Err(e) = self.segments.close() {
            tracing::warn!(store = %self.name, error = %e, "closing RocksDB session store on drop failed");
        }
    }
}
