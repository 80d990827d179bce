//! The byte-level store traits every backend and layer implements, and the description of a store
//! ([`StoreSpec`]) that the topology hands to [`open_store`](crate::open_store) to build its layer stack.
//!
//! Conventions, as in Kafka Streams:
//! - a `None` value is a delete (a tombstone in the changelog);
//! - key ranges are inclusive at both ends and ordered by the unsigned bytes of the key;
//! - window stores key their entries by (key, window start); session stores by (key, start, end).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use crate::error::StateResult;

/// A key and a value, as bytes.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::store::{KeyValueBytes, KeyValueBytesStore};
/// let mut store = InMemoryKeyValueStore::new("s");
/// store.put(b"k", Some(b"v")).unwrap();
/// let entries: Vec<KeyValueBytes> = store.all().unwrap().collect::<Result<_, _>>().unwrap();
/// assert_eq!(entries, [(b"k".to_vec(), b"v".to_vec())]);
/// ```
pub type KeyValueBytes = (Vec<u8>, Vec<u8>);

/// An iterator over key-value pairs of a store, in key order.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::store::{KeyValueBytesStore, KeyValueIter};
/// let mut store = InMemoryKeyValueStore::new("s");
/// for k in [b"a", b"b", b"c"] {
///     store.put(k, Some(b"1")).unwrap();
/// }
/// let from_b: KeyValueIter<'_> = store.range(Some(b"b"), None).unwrap();
/// assert_eq!(from_b.count(), 2);
/// ```
pub type KeyValueIter<'a> = Box<dyn Iterator<Item = StateResult<KeyValueBytes>> + 'a>;

/// What every store is, whatever its shape.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::{KeyValueBytesStore, StateStore};
/// let mut store = InMemoryKeyValueStore::new("counts");
/// assert_eq!((store.name(), store.persistent()), ("counts", false));
/// store.restore_batch(&[(b"k".to_vec(), Some(b"1".to_vec())), (b"k".to_vec(), None)]).unwrap();
/// assert_eq!(store.get(b"k").unwrap(), None, "the tombstone came last");
/// store.close().unwrap();
/// ```
pub trait StateStore: Send {
    /// The store's name, unique within a topology.
    fn name(&self) -> &str;
    /// Whether the store keeps its data on disk across restarts.
    fn persistent(&self) -> bool;
    /// Makes buffered writes durable (RocksDB memtables, caches forward their dirty entries).
    fn flush(&mut self) -> StateResult<()>;
    /// Writes what a record cache holds down to the store below it (and so to its changelog),
    /// without making anything durable: the first step of a commit (Kafka Streams' `flushCache`).
    /// Stores without a cache do nothing.
    fn flush_cache(&mut self) -> StateResult<()> {
        Ok(())
    }
    /// Flushes and releases resources. Using the store afterwards is an error.
    fn close(&mut self) -> StateResult<()>;
    /// Applies a batch of changelog records (changelog key and value layout) during restoration,
    /// bypassing caching and change-logging.
    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()>;
    /// Commits the writes so far. `changelog_offset` is the next offset of the store's changelog
    /// partition after them (`None` when the store is not logged). The default flushes; a store that
    /// keeps the offset with its data (the exactly-once RocksDB store) writes both atomically, and
    /// reports it afterwards through [`committed_offset`](Self::committed_offset).
    fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
        let _ = changelog_offset;
        self.flush()
    }
    /// The changelog offset the store recorded itself at its last [`commit`](Self::commit), for
    /// stores that keep it with their data; `None` otherwise (the task's checkpoint file says then).
    fn committed_offset(&self) -> StateResult<Option<i64>> {
        Ok(None)
    }
}

/// A key-value store over bytes.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::KeyValueBytesStore;
/// let mut store = InMemoryKeyValueStore::new("s");
/// store.put(b"user:1", Some(b"ann")).unwrap();
/// store.put(b"user:2", Some(b"bob")).unwrap();
/// assert_eq!(store.put_if_absent(b"user:1", b"zoe").unwrap(), Some(b"ann".to_vec()));
/// assert_eq!(store.prefix_scan(b"user:").unwrap().count(), 2);
/// assert_eq!(store.delete(b"user:2").unwrap(), Some(b"bob".to_vec()));
/// ```
pub trait KeyValueBytesStore: StateStore {
    /// The value stored under `key`.
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>>;
    /// Stores `value` under `key`; `None` deletes the key.
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()>;
    /// Stores `value` only if `key` has no value; returns the value that was there.
    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> StateResult<Option<Vec<u8>>> {
        let old = self.get(key)?;
        if old.is_none() {
            self.put(key, Some(value))?;
        }
        Ok(old)
    }
    /// Deletes `key`, returning the value it had.
    fn delete(&mut self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        let old = self.get(key)?;
        if old.is_some() {
            self.put(key, None)?;
        }
        Ok(old)
    }
    /// Entries with `from <= key <= to` (either bound may be open), in key order.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>>;
    /// Entries whose key starts with `prefix`, in key order.
    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>>;
    /// Every entry, in key order.
    fn all(&self) -> StateResult<KeyValueIter<'_>> {
        self.range(None, None)
    }
    /// An estimate of the number of keys (exact for in-memory stores).
    fn approximate_num_entries(&self) -> StateResult<u64>;
}

/// One entry of a window store.
///
/// ```
/// use kstreams_state::memory::InMemoryWindowStore;
/// use kstreams_state::{WindowBytesStore, WindowEntry};
/// let mut store = InMemoryWindowStore::new("w", 60_000, false);
/// store.put(b"k", Some(b"1"), 0).unwrap();
/// let all: Vec<WindowEntry> = store.all().unwrap();
/// assert_eq!((all[0].key.as_slice(), all[0].window_start), (&b"k"[..], 0));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowEntry {
    /// The record key.
    pub key: Vec<u8>,
    /// Start of the window, in milliseconds.
    pub window_start: i64,
    /// The value.
    pub value: Vec<u8>,
}

/// A store of values per (key, window start), with time-based retention.
///
/// ```
/// use kstreams_state::memory::InMemoryWindowStore;
/// use kstreams_state::WindowBytesStore;
/// let mut store = InMemoryWindowStore::new("w", 60_000, false);
/// store.put(b"k", Some(b"a"), 0).unwrap();
/// store.put(b"k", Some(b"b"), 10_000).unwrap();
/// assert_eq!(store.fetch(b"k", 10_000).unwrap(), Some(b"b".to_vec()));
/// assert_eq!(store.fetch_range(b"k", 0, 20_000).unwrap().len(), 2);
/// ```
pub trait WindowBytesStore: StateStore {
    /// Stores `value` for `key` in the window starting at `window_start`; `None` deletes it. Returns
    /// `false` when the window is already past retention (the write is dropped, as in Kafka Streams).
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool>;
    /// The value of `key` in the window starting at `window_start`.
    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>>;
    /// The windows of `key` with `time_from <= start <= time_to`, by start time (with duplicates, for
    /// stores that retain them, in insertion order).
    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>>;
    /// Every entry with `time_from <= start <= time_to`, by key then start time.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>>;
    /// Every entry still retained.
    fn all(&self) -> StateResult<Vec<WindowEntry>> {
        self.fetch_all(i64::MIN, i64::MAX)
    }
    /// How long windows are kept after stream time passes their start, in milliseconds.
    fn retention_ms(&self) -> i64;
}

/// A session window: a key's activity from `start` to `end` (inclusive), in milliseconds.
///
/// ```
/// use kstreams_state::SessionWindow;
/// let w = SessionWindow { start: 1_000, end: 4_000 };
/// assert_eq!(w.end - w.start, 3_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionWindow {
    /// First record's timestamp.
    pub start: i64,
    /// Last record's timestamp.
    pub end: i64,
}

/// A store of sessions per key.
///
/// ```
/// use kstreams_state::memory::InMemorySessionStore;
/// use kstreams_state::{SessionBytesStore, SessionWindow};
/// let mut store = InMemorySessionStore::new("s", 60_000);
/// store.put(b"k", SessionWindow { start: 0, end: 5 }, Some(b"2")).unwrap();
/// // A record at 8 with a 5 ms gap could merge with sessions ending at 3 or later, starting by 13.
/// assert_eq!(store.find_sessions(b"k", 3, 13).unwrap().len(), 1);
/// ```
pub trait SessionBytesStore: StateStore {
    /// Sessions of `key` with `end >= earliest_session_end` and `start <= latest_session_start`: the
    /// sessions a new record could merge with. Ordered by start.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>>;
    /// The value of one session.
    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>>;
    /// Every session of `key`, ordered by start.
    fn fetch(&self, key: &[u8]) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        self.find_sessions(key, i64::MIN, i64::MAX)
    }
    /// Stores a session; `None` removes it. Returns `false` when the session is past retention.
    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool>;
    /// Removes a session.
    fn remove(&mut self, key: &[u8], window: SessionWindow) -> StateResult<()> {
        self.put(key, window, None).map(|_| ())
    }
    /// How long sessions are kept after stream time passes their end, in milliseconds.
    fn retention_ms(&self) -> i64;
}

/// Where a change-logged store sends its changes. The runtime implements it with its producer (inside
/// the task's transaction under exactly-once); the topology test driver records them.
///
/// ```
/// use std::sync::Mutex;
/// use kstreams_state::{ChangelogRecord, ChangelogSink, StateResult};
/// /// Keeps the changes in memory.
/// #[derive(Default)]
/// struct Changes(Mutex<Vec<(String, Vec<u8>)>>);
/// impl ChangelogSink for Changes {
///     fn send(&self, record: ChangelogRecord<'_>) -> StateResult<()> {
///         self.0.lock().unwrap().push((record.topic.to_string(), record.key.to_vec()));
///         Ok(())
///     }
/// }
/// let sink = Changes::default();
/// sink.send(ChangelogRecord { topic: "app-s-changelog", partition: 0, key: b"k", value: None, timestamp: 1 }).unwrap();
/// assert_eq!(sink.0.lock().unwrap().len(), 1);
/// ```
pub trait ChangelogSink: Send + Sync {
    /// Sends one change of `store` to its changelog partition.
    fn send(&self, record: ChangelogRecord<'_>) -> StateResult<()>;
}

/// One change on its way to a changelog topic.
///
/// ```
/// use kstreams_state::ChangelogRecord;
/// let tombstone = ChangelogRecord { topic: "app-s-changelog", partition: 2, key: b"k", value: None, timestamp: 7 };
/// assert!(tombstone.value.is_none());
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ChangelogRecord<'a> {
    /// The changelog topic (`<application.id>-<store>-changelog`).
    pub topic: &'a str,
    /// The task's partition.
    pub partition: i32,
    /// The key, in the store's changelog layout.
    pub key: &'a [u8],
    /// The value; `None` is a tombstone.
    pub value: Option<&'a [u8]>,
    /// The timestamp of the record that caused the change.
    pub timestamp: i64,
}

/// The shape of a store.
///
/// ```
/// use kstreams_state::StoreKind;
/// let window = StoreKind::Window { retention_ms: 86_400_000, window_size_ms: 60_000, retain_duplicates: false };
/// assert_eq!(window.retention_ms(), Some(86_400_000));
/// assert_eq!(StoreKind::KeyValue.retention_ms(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// A key-value store.
    KeyValue,
    /// A window store.
    Window {
        /// Retention in milliseconds (at least window size + grace).
        retention_ms: i64,
        /// The window size in milliseconds.
        window_size_ms: i64,
        /// Keep every value put under the same (key, start) instead of replacing (stream-stream joins).
        retain_duplicates: bool,
    },
    /// A session store.
    Session {
        /// Retention in milliseconds (at least inactivity gap + grace).
        retention_ms: i64,
    },
}

impl StoreKind {
    /// The retention of window and session stores; `None` for key-value stores.
    pub fn retention_ms(&self) -> Option<i64> {
        match self {
            StoreKind::KeyValue => None,
            StoreKind::Window { retention_ms, .. } | StoreKind::Session { retention_ms } => Some(*retention_ms),
        }
    }
}

/// Extra retention of window and session changelogs beyond the store's (Kafka Streams'
/// `windowstore.changelog.additional.retention.ms` default, one day), so that clock drift between
/// brokers and streams does not delete data the store still holds.
pub const CHANGELOG_ADDITIONAL_RETENTION_MS: i64 = 86_400_000;

/// Where a store keeps its data.
///
/// ```
/// use kstreams_state::{Backend, StoreSpec};
/// let mut spec = StoreSpec::key_value("counts");
/// assert_eq!(spec.backend, Backend::RocksDb);
/// spec.backend = Backend::InMemory;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// RocksDB under the task's state directory (the default).
    #[default]
    RocksDb,
    /// Process memory; restored from the changelog after a restart.
    InMemory,
}

/// Everything needed to build a store's layer stack: what [`Materialized`] boils down to.
///
/// [`Materialized`]: https://docs.rs/kstreams
///
/// ```
/// use kstreams_state::StoreSpec;
/// let spec = StoreSpec::key_value("counts");
/// assert_eq!(spec.changelog_topic("word-count"), "word-count-counts-changelog");
/// assert!(spec.logging && spec.caching);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store name (also names the changelog topic).
    pub name: String,
    /// Key-value, window or session.
    pub kind: StoreKind,
    /// RocksDB or in-memory.
    pub backend: Backend,
    /// Write changes to the changelog topic (on by default).
    pub logging: bool,
    /// Extra configs of the changelog topic (e.g. `min.insync.replicas`).
    pub changelog_configs: HashMap<String, String>,
    /// Put a record cache in front of the store (on by default; a cache size of 0 turns it off).
    pub caching: bool,
}

impl StoreSpec {
    /// A key-value store on RocksDB with logging and caching on.
    pub fn key_value(name: impl Into<String>) -> Self {
        StoreSpec {
            name: name.into(),
            kind: StoreKind::KeyValue,
            backend: Backend::RocksDb,
            logging: true,
            changelog_configs: HashMap::new(),
            caching: true,
        }
    }

    /// The changelog topic of this store in application `application_id`.
    pub fn changelog_topic(&self, application_id: &str) -> String {
        format!("{application_id}-{}-changelog", self.name)
    }

    /// The configs to create this store's changelog topic with: `cleanup.policy=compact` for key-value
    /// stores; `cleanup.policy=compact,delete` and `retention.ms` = store retention +
    /// [`CHANGELOG_ADDITIONAL_RETENTION_MS`] (Kafka Streams' default of one day) for window and session
    /// stores. Entries of [`changelog_configs`](Self::changelog_configs) override these. See
    /// [`changelog_topic_configs_with`](Self::changelog_topic_configs_with) for another additional
    /// retention.
    ///
    /// ```
    /// use kstreams_state::store::{StoreKind, StoreSpec};
    ///
    /// let mut spec = StoreSpec::key_value("sessions");
    /// spec.kind = StoreKind::Session { retention_ms: 60_000 };
    /// let configs = spec.changelog_topic_configs();
    /// assert_eq!(configs["cleanup.policy"], "compact,delete");
    /// assert_eq!(configs["retention.ms"], (60_000 + 86_400_000).to_string());
    /// ```
    pub fn changelog_topic_configs(&self) -> HashMap<String, String> {
        self.changelog_topic_configs_with(CHANGELOG_ADDITIONAL_RETENTION_MS)
    }

    /// As [`changelog_topic_configs`](Self::changelog_topic_configs), with window and session
    /// changelogs kept `additional_retention_ms` beyond the store's retention (Kafka Streams'
    /// `windowstore.changelog.additional.retention.ms`). The broker deletes changelog records by
    /// their timestamps, which are event times: an application that processes old data needs more.
    ///
    /// ```
    /// use kstreams_state::store::{StoreKind, StoreSpec};
    /// let mut spec = StoreSpec::key_value("months");
    /// spec.kind = StoreKind::Window { retention_ms: 1_000, window_size_ms: 1_000, retain_duplicates: false };
    /// assert_eq!(spec.changelog_topic_configs_with(5_000)["retention.ms"], "6000");
    /// ```
    pub fn changelog_topic_configs_with(&self, additional_retention_ms: i64) -> HashMap<String, String> {
        let mut configs = HashMap::new();
        match self.kind.retention_ms() {
            None => {
                configs.insert("cleanup.policy".to_string(), "compact".to_string());
            }
            Some(retention) => {
                configs.insert("cleanup.policy".to_string(), "compact,delete".to_string());
                let total = retention.saturating_add(additional_retention_ms);
                configs.insert("retention.ms".to_string(), total.to_string());
            }
        }
        for (k, v) in &self.changelog_configs {
            configs.insert(k.clone(), v.clone());
        }
        configs
    }
}

/// Where and for which task a store is opened.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::Arc;
/// use kstreams_state::{open_store, StoreContext, StoreSpec};
/// let dir = tempfile::tempdir().unwrap();
/// let ctx = StoreContext {
///     application_id: "app".into(),
///     task_dir: dir.path().join("0_0"),
///     partition: 0,
///     changelog: None, // no logging
///     record_timestamp: Arc::new(AtomicI64::new(0)),
/// };
/// let mut spec = StoreSpec::key_value("counts");
/// spec.backend = kstreams_state::Backend::InMemory;
/// let opened = open_store(&spec, &ctx).unwrap();
/// assert!(opened.fresh);
/// ```
#[derive(Clone)]
pub struct StoreContext {
    /// `application.id`.
    pub application_id: String,
    /// The task's folder under `state.dir` (`<state.dir>/<application.id>/<task id>`).
    pub task_dir: PathBuf,
    /// The task's input partition, which is also its changelog partition.
    pub partition: i32,
    /// Where change-logged stores send their changes; `None` turns logging off for every store.
    pub changelog: Option<Arc<dyn ChangelogSink>>,
    /// The timestamp of the record being processed, set by the task before each record; layers use it
    /// to stamp changelog records and cache entries.
    pub record_timestamp: Arc<AtomicI64>,
}
