//! Crash-safe exactly-once state for RocksDB key-value stores (window and session stores do the same
//! over their segments: see [`segments`](super::segments)).
//!
//! # Design
//!
//! Under `exactly_once_v2` a store's local state must only ever reflect *committed* Kafka
//! transactions: if the process crashes after writing RocksDB but before the transaction commits, the
//! changelog (read with `read_committed`) no longer matches the store. Kafka Streams answers this by
//! wiping the store and restoring it from scratch; this module avoids the wipe (as Quix Streams does):
//!
//! 1. during a commit interval, writes go to an in-memory **write buffer** ([`EosKeyValueStore`] keeps
//!    a sorted map of pending puts and deletes); reads and range scans see the buffer merged over
//!    RocksDB, so processing observes its own writes;
//! 2. the runtime commits the Kafka transaction (input offsets, outputs, changelog records);
//! 3. then it calls [`commit(changelog_offset)`](StateStore::commit), which applies the buffer
//!    **and** the next changelog offset to restore from in **one RocksDB `WriteBatch`**, synced to the
//!    WAL. Either both land or neither does;
//! 4. if the transaction aborts, [`abort()`](EosKeyValueStore::abort) drops the buffer.
//!
//! After a crash the store is therefore at the last point where step 3 completed, and
//! [`committed_offset`](StateStore::committed_offset) says where its changelog must be replayed
//! from. A crash between steps 2 and 3 loses only the buffer, whose changes are in the committed
//! changelog tail and come back on replay; nothing is wiped. The offset lives in its own column family
//! (`kstreams-meta`), so it cannot collide with user keys.
//!
//! Restoration (`restore_batch`) writes straight to RocksDB; after it, call `commit(next_offset)` to
//! record how far it got. Replaying changelog records that were already applied is harmless: they
//! are final values in changelog order.
//!
//! [`StateStore::flush`] only syncs the WAL; it does **not** apply the buffer, because under
//! exactly-once nothing may become durable without its offset.

use std::collections::BTreeMap;
use std::path::Path;

use rocksdb::{Direction, IteratorMode, DB};

use super::{
    changes_batch, ensure_meta_cf, open_db, read_offset, rocks_err, within, write_with_offset, RocksDbResources,
};
use crate::error::{StateError, StateResult};
use crate::layers::caching_kv::merge_over;
use crate::store::{KeyValueBytesStore, KeyValueIter, StateStore};

/// A RocksDB key-value store whose writes become durable only on [`commit`](StateStore::commit).
///
/// ```
/// use kstreams_state::rocksdb::{EosKeyValueStore, RocksDbResources};
/// use kstreams_state::store::{KeyValueBytesStore, StateStore};
///
/// let dir = tempfile::tempdir().unwrap();
/// let res = RocksDbResources::shared_default();
/// let mut store = EosKeyValueStore::open("counts", dir.path(), &res).unwrap();
/// store.put(b"k", Some(b"1")).unwrap();
/// assert_eq!(store.get(b"k").unwrap(), Some(b"1".to_vec())); // reads see the buffer
/// store.commit(Some(10)).unwrap();
/// assert_eq!(store.committed_offset().unwrap(), Some(10));
/// ```
pub struct EosKeyValueStore {
    name: String,
    db: Option<DB>,
    pending: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    fresh: bool,
}

impl std::fmt::Debug for EosKeyValueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EosKeyValueStore").field("name", &self.name).field("pending", &self.pending.len()).finish()
    }
}

impl EosKeyValueStore {
    /// Opens (or creates) the store `name` in folder `path`.
    pub fn open(name: impl Into<String>, path: impl AsRef<Path>, resources: &RocksDbResources) -> StateResult<Self> {
        let name = name.into();
        let opts = resources.options(&name);
        let (mut db, fresh) = open_db(&name, path.as_ref(), &opts)?;
        ensure_meta_cf(&mut db, &opts, &name)?;
        Ok(EosKeyValueStore { name, db: Some(db), pending: BTreeMap::new(), fresh })
    }

    /// Whether the store started empty at open (folder missing or wiped).
    pub fn was_fresh(&self) -> bool {
        self.fresh
    }

    fn db(&self) -> StateResult<&DB> {
        self.db.as_ref().ok_or_else(|| StateError::Closed(self.name.clone()))
    }

    /// Number of buffered changes.
    pub fn pending_writes(&self) -> usize {
        self.pending.len()
    }

    /// Drops the buffered writes (the transaction aborted).
    pub fn abort(&mut self) {
        if !self.pending.is_empty() {
            tracing::debug!(store = %self.name, discarded = self.pending.len(), "aborting buffered state writes");
        }
        self.pending.clear();
    }

    fn buffered(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        use std::ops::Bound;
        let lo = from.map_or(Bound::Unbounded, Bound::Included);
        let hi = to.map_or(Bound::Unbounded, Bound::Included);
        self.pending.range::<[u8], _>((lo, hi)).map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    fn db_iter<'a>(
        &'a self,
        from: Option<&[u8]>,
        to: Option<Vec<u8>>,
        prefix: Option<Vec<u8>>,
    ) -> StateResult<KeyValueIter<'a>> {
        let db = self.db()?;
        let mode = match from {
            Some(f) => IteratorMode::From(f, Direction::Forward),
            None => IteratorMode::Start,
        };
        let name = self.name.clone();
        Ok(Box::new(db.iterator(mode).map_while(move |item| match item {
            Ok((k, v)) if within(&k, to.as_deref()) && prefix.as_ref().is_none_or(|p| k.starts_with(p)) => {
                Some(Ok((k.into_vec(), v.into_vec())))
            }
            Ok(_) => None,
            Err(e) => Some(Err(rocks_err(&name)(e))),
        })))
    }
}

impl StateStore for EosKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    /// Writes the memtables to table files: a store reopened after this replays no write-ahead log
    /// for what was written before (a standby flushes now and then, so that the task it becomes
    /// opens in milliseconds).
    fn flush(&mut self) -> StateResult<()> {
        self.db()?.flush().map_err(rocks_err(&self.name))
    }

    fn close(&mut self) -> StateResult<()> {
        if !self.pending.is_empty() {
            tracing::warn!(store = %self.name, discarded = self.pending.len(),
                "closing with uncommitted writes; they will be replayed from the changelog");
        }
        self.pending.clear();
        if let Some(db) = self.db.take() {
            db.flush_wal(true).map_err(rocks_err(&self.name))?;
        }
        Ok(())
    }

    /// Applies the buffered writes and `changelog_offset` (when given) in one synced write batch.
    /// Call it after the Kafka transaction that carried the changes committed.
    fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
        write_with_offset(self.db()?, changes_batch(&self.pending), changelog_offset, &self.name)?;
        self.pending.clear();
        Ok(())
    }

    /// The changelog offset recorded by the last [`commit`](StateStore::commit): restore from there.
    fn committed_offset(&self) -> StateResult<Option<i64>> {
        read_offset(self.db()?, &self.name)
    }

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        let db = self.db()?;
        db.write(changes_batch(batch.iter().map(|(k, v)| (k, v)))).map_err(rocks_err(&self.name))
    }
}

impl KeyValueBytesStore for EosKeyValueStore {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        if let Some(v) = self.pending.get(key) {
            return Ok(v.clone());
        }
        self.db()?.get(key).map_err(rocks_err(&self.name))
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        self.db()?;
        self.pending.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        Ok(())
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Ok(Box::new(std::iter::empty()));
            }
        }
        let below = self.db_iter(from, to.map(<[u8]>::to_vec), None)?;
        Ok(merge_over(self.buffered(from, to), below))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        let over: Vec<_> =
            self.buffered(Some(prefix), None).into_iter().take_while(|(k, _)| k.starts_with(prefix)).collect();
        let below = self.db_iter(Some(prefix), None, Some(prefix.to_vec()))?;
        Ok(merge_over(over, below))
    }

    fn approximate_num_entries(&self) -> StateResult<u64> {
        let db = self.db()?;
        let n = db.property_int_value("rocksdb.estimate-num-keys").map_err(rocks_err(&self.name))?.unwrap_or(0);
        Ok(n + self.pending.values().filter(|v| v.is_some()).count() as u64)
    }
}

impl Drop for EosKeyValueStore {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(store = %self.name, error = %e, "closing RocksDB store on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(s: &EosKeyValueStore) -> Vec<(Vec<u8>, Vec<u8>)> {
        s.all().unwrap().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn reopened_store_is_at_last_commit_after_dropped_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let res = RocksDbResources::shared_default();
        let path = dir.path().join("s");
        {
            let mut s = EosKeyValueStore::open("s", &path, &res).unwrap();
            assert_eq!(s.committed_offset().unwrap(), None);
            s.put(b"a", Some(b"1")).unwrap();
            s.put(b"b", Some(b"1")).unwrap();
            s.commit(Some(5)).unwrap();
            s.put(b"a", Some(b"2")).unwrap();
            s.put(b"b", None).unwrap();
            s.put(b"c", Some(b"3")).unwrap();
            assert_eq!(all(&s), vec![(b"a".to_vec(), b"2".to_vec()), (b"c".to_vec(), b"3".to_vec())]);
            s.flush().unwrap(); // flushing must not leak the buffer
                                // Crash: the buffer is dropped without commit.
        }
        let mut s = EosKeyValueStore::open("s", &path, &res).unwrap();
        assert_eq!(s.committed_offset().unwrap(), Some(5));
        assert_eq!(all(&s), vec![(b"a".to_vec(), b"1".to_vec()), (b"b".to_vec(), b"1".to_vec())]);
        s.put(b"x", Some(b"9")).unwrap();
        s.abort();
        assert_eq!(s.get(b"x").unwrap(), None);
        assert_eq!(s.pending_writes(), 0);
    }

    #[test]
    fn buffer_merges_over_db_in_scans() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = EosKeyValueStore::open("s", dir.path(), &RocksDbResources::shared_default()).unwrap();
        s.put(b"ab", Some(b"db")).unwrap();
        s.put(b"ac", Some(b"db")).unwrap();
        s.put(b"b", Some(b"db")).unwrap();
        s.commit(Some(1)).unwrap();
        s.put(b"ab", None).unwrap();
        s.put(b"aa", Some(b"buf")).unwrap();
        let keys: Vec<_> = s.prefix_scan(b"a").unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, vec![b"aa".to_vec(), b"ac".to_vec()]);
        let keys: Vec<_> = s.range(Some(b"ab"), Some(b"b")).unwrap().map(|r| r.unwrap().0).collect();
        assert_eq!(keys, vec![b"ac".to_vec(), b"b".to_vec()]);
        s.commit(Some(2)).unwrap();
        assert_eq!(s.get(b"ab").unwrap(), None);
        assert_eq!(s.committed_offset().unwrap(), Some(2));
    }
}
