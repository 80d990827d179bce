//! Builds a store's layer stack from its [`StoreSpec`].

use std::sync::{Arc, Mutex};

use crate::error::StateResult;
use crate::layers::{
    CachingKeyValueStore, CachingSessionStore, CachingWindowStore, ChangeLoggingStore, DirtyQueue, MeteredStore,
    StoreMetrics, ThreadCache,
};
use crate::memory::{InMemoryKeyValueStore, InMemorySessionStore, InMemoryWindowStore};
use crate::rocksdb::{
    EosKeyValueStore, RocksDbKeyValueStore, RocksDbResources, RocksDbSessionStore, RocksDbWindowStore,
};
use crate::store::{
    Backend, KeyValueBytesStore, SessionBytesStore, StateStore, StoreContext, StoreKind, StoreSpec, WindowBytesStore,
};

/// A store of any shape, with its layers stacked.
///
/// ```
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::StoreHandle;
/// let handle = StoreHandle::KeyValue(Box::new(InMemoryKeyValueStore::new("counts")));
/// assert!(matches!(handle, StoreHandle::KeyValue(_)));
/// ```
pub enum StoreHandle {
    /// A key-value store.
    KeyValue(Box<dyn KeyValueBytesStore>),
    /// A window store.
    Window(Box<dyn WindowBytesStore>),
    /// A session store.
    Session(Box<dyn SessionBytesStore>),
}

impl std::fmt::Debug for StoreHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            StoreHandle::KeyValue(_) => "KeyValue",
            StoreHandle::Window(_) => "Window",
            StoreHandle::Session(_) => "Session",
        };
        write!(f, "StoreHandle::{kind}({})", self.name())
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            StoreHandle::KeyValue($s) => $e,
            StoreHandle::Window($s) => $e,
            StoreHandle::Session($s) => $e,
        }
    };
}

/// A handle is itself a [`StateStore`], so restoration and commits can treat every shape alike.
impl StateStore for StoreHandle {
    fn name(&self) -> &str {
        each!(self, s => s.name())
    }
    fn persistent(&self) -> bool {
        each!(self, s => s.persistent())
    }
    fn flush(&mut self) -> StateResult<()> {
        each!(self, s => s.flush())
    }
    fn flush_cache(&mut self) -> StateResult<()> {
        each!(self, s => s.flush_cache())
    }
    fn close(&mut self) -> StateResult<()> {
        each!(self, s => s.close())
    }
    fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
        each!(self, s => s.restore_batch(batch))
    }
    fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
        each!(self, s => s.commit(changelog_offset))
    }
    fn committed_offset(&self) -> StateResult<Option<i64>> {
        each!(self, s => s.committed_offset())
    }
}

/// The folder of a RocksDB store: `<task dir>/rocksdb/<store>`.
pub(crate) fn store_dir(spec: &StoreSpec, ctx: &StoreContext) -> std::path::PathBuf {
    ctx.task_dir.join("rocksdb").join(&spec.name)
}

/// What [`open_store`] returns.
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::Arc;
/// use kstreams_state::{open_store, Backend, StoreContext, StoreHandle, StoreSpec};
/// let dir = tempfile::tempdir().unwrap();
/// let ctx = StoreContext {
///     application_id: "app".into(),
///     task_dir: dir.path().join("0_0"),
///     partition: 0,
///     changelog: None,
///     record_timestamp: Arc::new(AtomicI64::new(0)),
/// };
/// let mut spec = StoreSpec::key_value("counts");
/// spec.backend = Backend::InMemory;
/// let opened = open_store(&spec, &ctx).unwrap();
/// assert!(matches!(opened.store, StoreHandle::KeyValue(_)) && opened.fresh);
/// assert_eq!(opened.changelog_topic, None, "no changelog sink: not logged");
/// ```
#[derive(Debug)]
pub struct OpenedStore {
    /// The store with its layers.
    pub store: StoreHandle,
    /// Where the record cache queues entries it flushes or evicts; `None` when the store is not
    /// cached. Drain it after each processed record and on commit, and forward the entries.
    pub dirty: Option<DirtyQueue>,
    /// The store started empty (in memory, or its RocksDB folder was missing or wiped): restore it
    /// from the beginning of its changelog, ignoring any checkpointed offset.
    pub fresh: bool,
    /// The changelog topic, if the store is logged.
    pub changelog_topic: Option<String>,
}

/// The process- and thread-level resources stores are built with; the defaults suit tests.
///
/// ```
/// use kstreams_state::layers::ThreadCache;
/// use kstreams_state::StoreOptions;
/// let options = StoreOptions { cache: Some(ThreadCache::new(10 << 20)), exactly_once: true, ..Default::default() };
/// assert!(options.rocksdb.is_none(), "the shared default RocksDB memory");
/// ```
#[derive(Clone, Default)]
pub struct StoreOptions {
    /// RocksDB's shared memory; `None` uses [`RocksDbResources::shared_default`].
    pub rocksdb: Option<Arc<RocksDbResources>>,
    /// The thread's record cache; `None` or a size of 0 disables caching.
    pub cache: Option<Arc<ThreadCache>>,
    /// Store metrics; `None` leaves the metered layer out.
    pub metrics: Option<Arc<StoreMetrics>>,
    /// The application runs `exactly_once_v2`: RocksDB stores buffer each commit's writes and apply
    /// them with their changelog offset in one write batch ([`EosKeyValueStore`]; window and session
    /// stores through `buffer_until_commit`).
    pub exactly_once: bool,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("rocksdb", &self.rocksdb)
            .field("cache", &self.cache)
            .field("metrics", &self.metrics.is_some())
            .field("exactly_once", &self.exactly_once)
            .finish()
    }
}

/// Opens `spec` for the task of `ctx` with default [`StoreOptions`] (shared default RocksDB memory,
/// no record cache, no metrics).
pub fn open_store(spec: &StoreSpec, ctx: &StoreContext) -> StateResult<OpenedStore> {
    open_store_with(spec, ctx, &StoreOptions::default())
}

/// Opens `spec` for the task of `ctx`: the inner store (RocksDB under `<task dir>/rocksdb/<store>`, or
/// in memory), then change-logging (if `spec.logging` and `ctx.changelog` is set), caching (if
/// `spec.caching` and the options carry a cache of non-zero size; never for window stores that retain
/// duplicates), and metering (if the options carry metrics).
///
/// ```
/// use std::sync::atomic::AtomicI64;
/// use std::sync::Arc;
/// use kstreams_state::{open_store_with, StoreContext, StoreHandle, StoreOptions, StoreSpec, Backend};
/// use kstreams_state::layers::ThreadCache;
///
/// let dir = tempfile::tempdir().unwrap();
/// let ctx = StoreContext {
///     application_id: "app".into(),
///     task_dir: dir.path().join("app").join("0_0"),
///     partition: 0,
///     changelog: None,
///     record_timestamp: Arc::new(AtomicI64::new(0)),
/// };
/// let mut spec = StoreSpec::key_value("counts");
/// spec.backend = Backend::InMemory;
/// let opts = StoreOptions { cache: Some(ThreadCache::new(1 << 20)), ..Default::default() };
/// let opened = open_store_with(&spec, &ctx, &opts).unwrap();
/// assert!(matches!(opened.store, StoreHandle::KeyValue(_)));
/// assert!(opened.dirty.is_some());
/// ```
pub fn open_store_with(spec: &StoreSpec, ctx: &StoreContext, opts: &StoreOptions) -> StateResult<OpenedStore> {
    let resources = opts.rocksdb.clone().unwrap_or_else(RocksDbResources::shared_default);
    let path = store_dir(spec, ctx);
    let name = spec.name.as_str();
    let task = ctx.task_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let sink = if spec.logging { ctx.changelog.clone() } else { None };
    let topic = spec.changelog_topic(&ctx.application_id);
    let cache = opts.cache.clone().filter(|c| spec.caching && c.max_bytes() > 0);
    let ts = ctx.record_timestamp.clone();
    let mut dirty: Option<DirtyQueue> = None;
    let mut new_queue = || {
        let q: DirtyQueue = Arc::new(Mutex::new(Vec::new()));
        dirty = Some(q.clone());
        q
    };

    let (store, fresh) = match &spec.kind {
        StoreKind::KeyValue => {
            let (mut s, fresh): (Box<dyn KeyValueBytesStore>, bool) = match spec.backend {
                Backend::InMemory => (Box::new(InMemoryKeyValueStore::new(name)), true),
                Backend::RocksDb if opts.exactly_once => {
                    let db = EosKeyValueStore::open(name, &path, &resources)?;
                    let fresh = db.was_fresh();
                    (Box::new(db), fresh)
                }
                Backend::RocksDb => {
                    let db = RocksDbKeyValueStore::open(name, &path, &resources)?;
                    let fresh = db.was_fresh();
                    (Box::new(db), fresh)
                }
            };
            if let Some(sink) = &sink {
                s = Box::new(ChangeLoggingStore::new(s, sink.clone(), &topic, ctx.partition, ts.clone()));
            }
            if let Some(cache) = &cache {
                s = Box::new(CachingKeyValueStore::new(s, cache.clone(), new_queue(), ts.clone()));
            }
            if let Some(m) = &opts.metrics {
                s = Box::new(MeteredStore::new(s, m, name, &task));
            }
            (StoreHandle::KeyValue(s), fresh)
        }
        StoreKind::Window { retention_ms, retain_duplicates, .. } => {
            let (mut s, fresh): (Box<dyn WindowBytesStore>, bool) = match spec.backend {
                Backend::InMemory => {
                    (Box::new(InMemoryWindowStore::new(name, *retention_ms, *retain_duplicates)), true)
                }
                Backend::RocksDb => {
                    let mut db = RocksDbWindowStore::open(name, &path, *retention_ms, *retain_duplicates, &resources)?;
                    if opts.exactly_once {
                        db = db.buffer_until_commit()?;
                    }
                    let fresh = db.was_fresh();
                    (Box::new(db), fresh)
                }
            };
            if let Some(sink) = &sink {
                let logged = ChangeLoggingStore::new(s, sink.clone(), &topic, ctx.partition, ts.clone());
                s = Box::new(if *retain_duplicates { logged.retaining_duplicates() } else { logged });
            }
            if let Some(cache) = cache.as_ref().filter(|_| !*retain_duplicates) {
                s = Box::new(CachingWindowStore::new(s, cache.clone(), new_queue(), ts.clone()));
            }
            if let Some(m) = &opts.metrics {
                s = Box::new(MeteredStore::new(s, m, name, &task));
            }
            (StoreHandle::Window(s), fresh)
        }
        StoreKind::Session { retention_ms } => {
            let (mut s, fresh): (Box<dyn SessionBytesStore>, bool) = match spec.backend {
                Backend::InMemory => (Box::new(InMemorySessionStore::new(name, *retention_ms)), true),
                Backend::RocksDb => {
                    let mut db = RocksDbSessionStore::open(name, &path, *retention_ms, &resources)?;
                    if opts.exactly_once {
                        db = db.buffer_until_commit()?;
                    }
                    let fresh = db.was_fresh();
                    (Box::new(db), fresh)
                }
            };
            if let Some(sink) = &sink {
                s = Box::new(ChangeLoggingStore::new(s, sink.clone(), &topic, ctx.partition, ts.clone()));
            }
            if let Some(cache) = &cache {
                s = Box::new(CachingSessionStore::new(s, cache.clone(), new_queue(), ts.clone()));
            }
            if let Some(m) = &opts.metrics {
                s = Box::new(MeteredStore::new(s, m, name, &task));
            }
            (StoreHandle::Session(s), fresh)
        }
    };
    Ok(OpenedStore { store, dirty, fresh, changelog_topic: sink.map(|_| topic) })
}
