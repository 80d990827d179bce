//! Errors raised by state stores.

/// Result of a store operation.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::{KeyValueBytesStore, StateResult};
/// fn count(store: &InMemoryKeyValueStore) -> StateResult<u64> {
///     store.approximate_num_entries()
/// }
/// assert_eq!(count(&InMemoryKeyValueStore::new("s")).unwrap(), 0);
/// ```
pub type StateResult<T> = Result<T, StateError>;

/// What went wrong in a state store, with what to do about it.
///
/// ```
/// use kstreams_state::{Checkpoint, StateError};
/// let dir = std::env::temp_dir().join("kstreams-doc-no-such-dir").join("nested");
/// let _ = std::fs::remove_dir_all(&dir);
/// // Reading a checkpoint where none exists is fine; a corrupt one is an error.
/// assert!(matches!(Checkpoint::read(&dir), Ok(None)));
/// let e: StateError = StateError::ReadOnly("global".into());
/// assert!(e.to_string().contains("global"));
/// ```
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// RocksDB refused an operation.
    #[error("RocksDB store `{store}`: {source}")]
    RocksDb {
        /// The store's name.
        store: String,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },
    /// A file-system operation on the state directory failed.
    #[error("state directory {path}: {source}")]
    Io {
        /// The path involved.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the lock on the state directory.
    #[error(
        "state directory {path} is locked by another process (pid {holder}); give each instance its own `state.dir`"
    )]
    Locked {
        /// The locked directory.
        path: std::path::PathBuf,
        /// The process id that holds it, as written in the lock file.
        holder: String,
    },
    /// The store was used after `close`.
    #[error("store `{0}` is closed")]
    Closed(String),
    /// A write to a read-only store: a global store, which only its source topic updates.
    #[error("store `{0}` is read-only: a global store is updated from its source topic only")]
    ReadOnly(String),
    /// Stored bytes do not have the layout this store writes (damaged or foreign data).
    #[error("store `{store}` holds malformed data: {detail}")]
    Corrupt {
        /// The store's name.
        store: String,
        /// What was malformed.
        detail: String,
    },
    /// The changelog could not be written or read.
    #[error("changelog of store `{store}`: {detail}")]
    Changelog {
        /// The store's name.
        store: String,
        /// What failed.
        detail: String,
    },
    /// Store metrics could not be created or registered.
    #[error("state store metrics: {0}; register `StoreMetrics` once per prometheus registry")]
    Metrics(String),
    /// Restoring a store from its changelog failed.
    #[error("restoring `{topic}` partition {partition}: {detail}")]
    Restore {
        /// The changelog topic.
        topic: String,
        /// The changelog partition.
        partition: i32,
        /// What failed and what to do.
        detail: String,
    },
    /// Restoration was interrupted on request (its task moved away or the thread stops). What was
    /// restored is kept: the store was committed at `position`, where the next restoration resumes.
    #[error("restoring `{topic}` partition {partition} was interrupted at offset {position}")]
    RestoreInterrupted {
        /// The changelog topic.
        topic: String,
        /// The changelog partition.
        partition: i32,
        /// The changelog offset the store reached (-1: the restoration had not started).
        position: i64,
    },
}
