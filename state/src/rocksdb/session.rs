//! The segmented RocksDB session store.

use std::path::Path;

use super::segments::Segments;
use super::RocksDbResources;
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

    /// Makes writes durable only on [`commit`](StateStore::commit), together with the changelog
    /// offset (for `exactly_once_v2`; see [`segments`](super::segments)).
    ///
    /// ```
    /// use kstreams_state::rocksdb::{RocksDbResources, RocksDbSessionStore};
    /// use kstreams_state::store::{SessionBytesStore, SessionWindow, StateStore};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let resources = RocksDbResources::shared_default();
    /// let mut store =
    ///     RocksDbSessionStore::open("s", dir.path(), 600_000, &resources).unwrap().buffer_until_commit().unwrap();
    /// store.put(b"user", SessionWindow { start: 1_000, end: 5_000 }, Some(b"2")).unwrap();
    /// store.commit(Some(7)).unwrap();
    /// assert_eq!(store.committed_offset().unwrap(), Some(7));
    /// ```
    pub fn buffer_until_commit(mut self) -> StateResult<Self> {
        self.segments.buffer_until_commit()?;
        Ok(self)
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
    segmented_state_store!();

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        let mut changes = Vec::with_capacity(batch.len());
        for (raw, value) in batch {
            let (key, window) = decode_session_key(raw).ok_or_else(|| {
                self.corrupt(format!("session changelog key of {} bytes is shorter than 16", raw.len()))
            })?;
            changes.push((window.end, session_storage_key(key, window), value.as_deref()));
        }
        self.segments.restore(changes)
    }
}

impl SessionBytesStore for RocksDbSessionStore {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        let from_end = earliest_session_end.max(self.segments.earliest_live());
        let lo = session_storage_key(key, SessionWindow { start: i64::MIN, end: from_end });
        let mut hi = key.to_vec();
        hi.extend_from_slice(&[0xff; SESSION_SUFFIX_LEN]);
        let mut found = Vec::new();
        for id in self.segments.ids_between(from_end, i64::MAX) {
            for item in self.segments.scan(id, &lo, Some(&hi))? {
                let (k, v) = item?;
                if k.len() != key.len() + SESSION_SUFFIX_LEN {
                    continue;
                }
                let (_, w) = decode_session_storage_key(&k)
                    .ok_or_else(|| self.corrupt(format!("session key of {} bytes is too short", k.len())))?;
                if w.end >= from_end && w.start <= latest_session_start {
                    found.push((w, v));
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
        self.segments.get(window.end, &session_storage_key(key, window))
    }

    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        self.segments.observe(window.end)?;
        if self.segments.is_expired(window.end) {
            tracing::debug!(store = %self.name, session_end = window.end, "dropping write to an expired session");
            return Ok(false);
        }
        self.segments.write(window.end, session_storage_key(key, window), value)?;
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
