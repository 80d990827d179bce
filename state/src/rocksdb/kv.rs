//! The RocksDB key-value store.

use std::path::{Path, PathBuf};

use rocksdb::{Direction, IteratorMode, WriteOptions, DB};

use super::{changes_batch, no_wal, open_db, rocks_err, within, RocksDbResources};
use crate::error::{StateError, StateResult};
use crate::store::{KeyValueBytesStore, KeyValueIter, StateStore};

/// A key-value store in its own RocksDB instance (default column family), keys in byte order.
///
/// This is the at-least-once store. As in Kafka Streams, writes bypass RocksDB's write-ahead log
/// (the changelog topic is the durable copy), and [`flush`](StateStore::flush),
/// [`commit`](StateStore::commit) and [`close`](StateStore::close) flush the memtables to SST files. A
/// crash loses the writes since the last flush; they are replayed from the changelog, from the task's
/// checkpoint, which is written only after a flush. (Under exactly-once use
/// [`EosKeyValueStore`](super::EosKeyValueStore).)
///
/// ```
/// use kstreams_state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
/// use kstreams_state::store::KeyValueBytesStore;
///
/// let dir = tempfile::tempdir().unwrap();
/// let resources = RocksDbResources::shared_default();
/// let mut store = RocksDbKeyValueStore::open("counts", dir.path().join("counts"), &resources).unwrap();
/// store.put(b"apple", Some(b"3")).unwrap();
/// assert_eq!(store.get(b"apple").unwrap(), Some(b"3".to_vec()));
/// ```
pub struct RocksDbKeyValueStore {
    name: String,
    path: PathBuf,
    db: Option<DB>,
    fresh: bool,
    /// Writes skip the write-ahead log.
    write_opts: WriteOptions,
}

impl std::fmt::Debug for RocksDbKeyValueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksDbKeyValueStore").field("name", &self.name).field("path", &self.path).finish()
    }
}

impl RocksDbKeyValueStore {
    /// Opens (or creates) the store `name` in folder `path`; a corrupt folder is wiped and recreated.
    pub fn open(name: impl Into<String>, path: impl AsRef<Path>, resources: &RocksDbResources) -> StateResult<Self> {
        let name = name.into();
        let path = path.as_ref().to_path_buf();
        let opts = resources.options(&name);
        let (db, fresh) = open_db(&name, &path, &opts)?;
        Ok(RocksDbKeyValueStore { name, path, db: Some(db), fresh, write_opts: no_wal() })
    }

    /// Whether the store started empty at open (its folder was missing or wiped): restore it from the
    /// beginning of its changelog, whatever a checkpoint says.
    pub fn was_fresh(&self) -> bool {
        self.fresh
    }

    /// The store's folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn db(&self) -> StateResult<&DB> {
        self.db.as_ref().ok_or_else(|| StateError::Closed(self.name.clone()))
    }

    fn iter_from<'a>(&'a self, from: Option<&[u8]>, to: Option<Vec<u8>>) -> StateResult<KeyValueIter<'a>> {
        let db = self.db()?;
        let mode = match from {
            Some(f) => IteratorMode::From(f, Direction::Forward),
            None => IteratorMode::Start,
        };
        let name = self.name.clone();
        Ok(Box::new(db.iterator(mode).map_while(move |item| match item {
            Ok((k, v)) if within(&k, to.as_deref()) => Some(Ok((k.into_vec(), v.into_vec()))),
            Ok(_) => None,
            Err(e) => Some(Err(rocks_err(&name)(e))),
        })))
    }
}

impl StateStore for RocksDbKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    /// Flushes the memtables to SST files (the writes skip the WAL), waiting until they are written.
    fn flush(&mut self) -> StateResult<()> {
        self.db()?.flush().map_err(rocks_err(&self.name))
    }

    fn close(&mut self) -> StateResult<()> {
        if let Some(db) = self.db.take() {
            db.flush().map_err(rocks_err(&self.name))?;
        }
        Ok(())
    }

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        let db = self.db()?;
        db.write_opt(changes_batch(batch.iter().map(|(k, v)| (k, v))), &self.write_opts).map_err(rocks_err(&self.name))
    }
}

impl KeyValueBytesStore for RocksDbKeyValueStore {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.db()?.get(key).map_err(rocks_err(&self.name))
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        let db = self.db()?;
        match value {
            Some(v) => db.put_opt(key, v, &self.write_opts),
            None => db.delete_opt(key, &self.write_opts),
        }
        .map_err(rocks_err(&self.name))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                tracing::warn!(store = %self.name, "range query with from > to returns nothing");
                return Ok(Box::new(std::iter::empty()));
            }
        }
        self.iter_from(from, to.map(<[u8]>::to_vec))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        let db = self.db()?;
        let prefix = prefix.to_vec();
        let name = self.name.clone();
        let start = prefix.clone();
        Ok(Box::new(db.iterator(IteratorMode::From(&start, Direction::Forward)).map_while(move |item| match item {
            Ok((k, v)) if k.starts_with(&prefix) => Some(Ok((k.into_vec(), v.into_vec()))),
            Ok(_) => None,
            Err(e) => Some(Err(rocks_err(&name)(e))),
        })))
    }

    fn approximate_num_entries(&self) -> StateResult<u64> {
        let db = self.db()?;
        Ok(db.property_int_value("rocksdb.estimate-num-keys").map_err(rocks_err(&self.name))?.unwrap_or(0))
    }
}

impl Drop for RocksDbKeyValueStore {
    fn drop(&mut self) {
        if let Err(e) = self.close() {
            tracing::warn!(store = %self.name, error = %e, "closing RocksDB store on drop failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{sst_files, wal_bytes};
    use super::*;

    fn memtable_entries(s: &RocksDbKeyValueStore) -> u64 {
        s.db().unwrap().property_int_value("rocksdb.num-entries-active-mem-table").unwrap().unwrap()
    }

    #[test]
    fn writes_skip_the_wal_and_a_commit_flushes_them_to_sst_files_that_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kv");
        let res = RocksDbResources::shared_default();
        {
            let mut s = RocksDbKeyValueStore::open("kv", &path, &res).unwrap();
            s.put(b"a", Some(b"1")).unwrap();
            s.put(b"b", Some(b"2")).unwrap();
            s.put(b"b", None).unwrap();
            s.restore_batch(&[(b"c".to_vec(), Some(b"3".to_vec())), (b"d".to_vec(), None)]).unwrap();
            assert_eq!(wal_bytes(&path), 0, "puts, deletes and restored batches skip the WAL");
            assert_eq!(memtable_entries(&s), 5, "the writes are only in the memtable");
            assert_eq!(sst_files(&path), 0);
            s.commit(Some(10)).unwrap();
            assert_eq!(memtable_entries(&s), 0, "the commit flushed the memtable");
            assert!(sst_files(&path) > 0, "the commit wrote SST files");
            assert_eq!(wal_bytes(&path), 0);
            s.put(b"e", Some(b"5")).unwrap();
            s.flush().unwrap();
            assert_eq!(memtable_entries(&s), 0, "flush flushes the memtable too");
        }
        let s = RocksDbKeyValueStore::open("kv", &path, &res).unwrap();
        assert!(!s.was_fresh());
        let all: Vec<_> = s.all().unwrap().map(Result::unwrap).collect();
        assert_eq!(
            all,
            vec![(b"a".to_vec(), b"1".to_vec()), (b"c".to_vec(), b"3".to_vec()), (b"e".to_vec(), b"5".to_vec())]
        );
    }
}
