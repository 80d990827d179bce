//! The RocksDB key-value store.

use std::path::{Path, PathBuf};

use rocksdb::{Direction, IteratorMode, DB};

use super::{changes_batch, open_db, rocks_err, within, RocksDbResources};
use crate::error::{StateError, StateResult};
use crate::store::{KeyValueBytesStore, KeyValueIter, StateStore};

/// A key-value store in its own RocksDB instance (default column family), keys in byte order.
///
/// The write-ahead log stays on, so every acknowledged write survives a process crash.
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
        Ok(RocksDbKeyValueStore { name, path, db: Some(db), fresh })
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

    fn flush(&mut self) -> StateResult<()> {
        self.db()?.flush_wal(true).map_err(rocks_err(&self.name))
    }

    fn close(&mut self) -> StateResult<()> {
        if let Some(db) = self.db.take() {
            db.flush_wal(true).map_err(rocks_err(&self.name))?;
        }
        Ok(())
    }

    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        let db = self.db()?;
        db.write(changes_batch(batch.iter().map(|(k, v)| (k, v)))).map_err(rocks_err(&self.name))
    }
}

impl KeyValueBytesStore for RocksDbKeyValueStore {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        self.db()?.get(key).map_err(rocks_err(&self.name))
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        let db = self.db()?;
        match value {
            Some(v) => db.put(key, v),
            None => db.delete(key),
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
