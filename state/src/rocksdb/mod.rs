//! RocksDB backends, the default for persistent stores.
//!
//! - [`RocksDbKeyValueStore`]: one RocksDB instance per store, under `<task dir>/rocksdb/<store>`;
//! - [`RocksDbWindowStore`] and [`RocksDbSessionStore`]: one RocksDB instance per store whose data is
//!   split into time segments, **one column family per segment** (see [`segments`]), so expired data
//!   is dropped a whole segment at a time by dropping its column family;
//! - [`EosKeyValueStore`]: the exactly-once write buffer (see its module docs in [`EosKeyValueStore`]);
//!   window and session stores buffer the same way when opened with `buffer_until_commit`;
//! - [`RocksDbResources`]: the block cache and write-buffer manager shared by every instance of the
//!   process, so RocksDB memory does not grow with partitions × stores.
//!
//! # Durability
//!
//! As in Kafka Streams, the at-least-once stores ([`RocksDbKeyValueStore`], and window and session
//! stores opened without `buffer_until_commit`) write with RocksDB's **write-ahead log disabled**: the
//! changelog topic is the durable copy. Their `flush`, `commit` and `close` flush the memtables to SST
//! files (waiting for it), which the task does before it writes a checkpoint
//! (see [`TaskStateManager`](crate::TaskStateManager)); writes since the last flush are lost by a crash
//! and come back from the changelog, replayed from the checkpoint. The exactly-once stores keep the
//! WAL: their commit writes the changes and the changelog offset in one batch synced to it.
//!
//! A folder whose RocksDB files are corrupt is detected at open, wiped with a `warn!` saying why,
//! and reopened empty (the store reports [`was_fresh`](RocksDbKeyValueStore::was_fresh) so the runtime
//! restores it from the start of its changelog).

/// The `StateStore` methods a segmented store (window, session) hands to its [`Segments`](segments):
/// expands inside `impl StateStore for …`, next to the store's own `restore_batch`.
macro_rules! segmented_state_store {
    () => {
        fn name(&self) -> &str {
            &self.name
        }

        fn persistent(&self) -> bool {
            true
        }

        fn flush(&mut self) -> StateResult<()> {
            self.segments.flush()
        }

        fn close(&mut self) -> StateResult<()> {
            self.segments.close()
        }

        fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
            self.segments.commit(changelog_offset)
        }

        fn committed_offset(&self) -> StateResult<Option<i64>> {
            self.segments.committed_offset()
        }
    };
}

pub mod eos;
mod kv;
mod resources;
pub mod segments;
mod session;
mod window;

pub use eos::EosKeyValueStore;
pub use kv::RocksDbKeyValueStore;
pub use resources::{RocksDbConfigSetter, RocksDbResources};
pub use session::RocksDbSessionStore;
pub use window::RocksDbWindowStore;

use std::path::Path;

use rocksdb::{ColumnFamilyDescriptor, FlushOptions, Options, WriteBatch, WriteOptions, DB};

use crate::error::{StateError, StateResult};

/// The column family holding a store's own metadata (its committed changelog offset), apart from
/// user keys and segments.
const META_CF: &str = "kstreams-meta";
const OFFSET_KEY: &[u8] = b"changelog-offset";

/// Creates the metadata column family if the store does not have it yet.
pub(crate) fn ensure_meta_cf(db: &mut DB, opts: &Options, store: &str) -> StateResult<()> {
    if db.cf_handle(META_CF).is_none() {
        db.create_cf(META_CF, opts).map_err(rocks_err(store))?;
    }
    Ok(())
}

fn missing_meta(store: &str) -> StateError {
    StateError::Corrupt { store: store.to_string(), detail: "the metadata column family is missing".into() }
}

/// Adds `offset` as the store's committed changelog offset to `wb`, and writes `wb` synced to the WAL:
/// the changes and the offset land together or not at all.
pub(crate) fn write_with_offset(db: &DB, mut wb: WriteBatch, offset: Option<i64>, store: &str) -> StateResult<()> {
    if let Some(offset) = offset {
        let cf = db.cf_handle(META_CF).ok_or_else(|| missing_meta(store))?;
        wb.put_cf(cf, OFFSET_KEY, offset.to_be_bytes());
    }
    let mut wo = WriteOptions::default();
    wo.set_sync(true);
    db.write_opt(wb, &wo).map_err(rocks_err(store))
}

/// The changelog offset recorded by [`write_with_offset`], if any.
pub(crate) fn read_offset(db: &DB, store: &str) -> StateResult<Option<i64>> {
    let Some(cf) = db.cf_handle(META_CF) else {
        return Ok(None);
    };
    match db.get_cf(cf, OFFSET_KEY).map_err(rocks_err(store))? {
        None => Ok(None),
        Some(bytes) => {
            let arr: [u8; 8] = bytes.as_slice().try_into().map_err(|_| StateError::Corrupt {
                store: store.to_string(),
                detail: "the committed changelog offset is not 8 bytes".into(),
            })?;
            Ok(Some(i64::from_be_bytes(arr)))
        }
    }
}

/// Write options of the at-least-once stores: no write-ahead log (the changelog is the durable copy;
/// see the module docs).
pub(crate) fn no_wal() -> WriteOptions {
    let mut wo = WriteOptions::default();
    wo.disable_wal(true);
    wo
}

/// Flushes the memtables of the default column family and of the column families named `cfs` (those
/// that exist) to SST files, waiting until they are written.
pub(crate) fn flush_memtables<'a>(db: &DB, cfs: impl IntoIterator<Item = &'a str>, store: &str) -> StateResult<()> {
    let mut handles = Vec::new();
    if let Some(cf) = db.cf_handle(rocksdb::DEFAULT_COLUMN_FAMILY_NAME) {
        handles.push(cf);
    }
    handles.extend(cfs.into_iter().filter_map(|cf| db.cf_handle(cf)));
    let mut opts = FlushOptions::default();
    opts.set_wait(true);
    db.flush_cfs_opt(&handles, &opts).map_err(rocks_err(store))
}

/// Wraps a RocksDB error with the store's name.
pub(crate) fn rocks_err(store: &str) -> impl Fn(rocksdb::Error) -> StateError + '_ {
    move |source| StateError::RocksDb { store: store.to_string(), source }
}

/// Opens (or creates) the RocksDB instance at `path` with all of its column families.
///
/// Returns the database and whether it started empty (the folder was missing, or corrupt and wiped).
pub(crate) fn open_db(name: &str, path: &Path, opts: &Options) -> StateResult<(DB, bool)> {
    let existed = path.join("CURRENT").exists();
    if !existed && path.exists() {
        // A folder without RocksDB's CURRENT file is a half-created or damaged store.
        tracing::warn!(store = name, path = %path.display(),
            "state folder has no RocksDB CURRENT file; wiping it to rebuild the store from its changelog");
        wipe(path)?;
    }
    std::fs::create_dir_all(path).map_err(|source| StateError::Io { path: path.to_path_buf(), source })?;
    match open_existing(path, opts) {
        Ok(db) => Ok((db, !existed)),
        Err(e) if e.kind() == rocksdb::ErrorKind::Corruption => {
            tracing::warn!(store = name, path = %path.display(), error = %e,
                "RocksDB files are corrupt; wiping the store to rebuild it from its changelog");
            wipe(path)?;
            std::fs::create_dir_all(path).map_err(|source| StateError::Io { path: path.to_path_buf(), source })?;
            let db = open_existing(path, opts).map_err(rocks_err(name))?;
            Ok((db, true))
        }
        Err(e) => Err(rocks_err(name)(e)),
    }
}

fn open_existing(path: &Path, opts: &Options) -> Result<DB, rocksdb::Error> {
    let cfs = if path.join("CURRENT").exists() {
        DB::list_cf(opts, path)?
    } else {
        vec![rocksdb::DEFAULT_COLUMN_FAMILY_NAME.to_string()]
    };
    let descriptors = cfs.into_iter().map(|cf| ColumnFamilyDescriptor::new(cf, opts.clone()));
    DB::open_cf_descriptors(opts, path, descriptors)
}

/// A write batch of changelog-format changes (`None` deletes the key), for one atomic write.
pub(crate) fn changes_batch<'a>(changes: impl IntoIterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)>) -> WriteBatch {
    let mut wb = WriteBatch::default();
    for (k, v) in changes {
        match v {
            Some(v) => wb.put(k, v),
            None => wb.delete(k),
        }
    }
    wb
}

/// Removes a store folder and everything in it.
pub(crate) fn wipe(path: &Path) -> StateResult<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(StateError::Io { path: path.to_path_buf(), source }),
    }
}

/// A key `k` with `lo <= k <= hi`, where `hi` may be absent (unbounded).
pub(crate) fn within(key: &[u8], hi: Option<&[u8]>) -> bool {
    hi.is_none_or(|hi| key <= hi)
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    /// Total size of the write-ahead log files in a RocksDB folder.
    pub(crate) fn wal_bytes(path: &Path) -> u64 {
        files_ending(path, ".log").iter().map(|f| f.metadata().unwrap().len()).sum()
    }

    /// The SST files in a RocksDB folder.
    pub(crate) fn sst_files(path: &Path) -> usize {
        files_ending(path, ".sst").len()
    }

    fn files_ending(path: &Path, suffix: &str) -> Vec<std::fs::DirEntry> {
        std::fs::read_dir(path)
            .unwrap()
            .map(Result::unwrap)
            .filter(|e| e.file_name().to_string_lossy().ends_with(suffix))
            .collect()
    }
}
