//! Typed, read-only views over the local copies of a store.

use std::marker::PhantomData;
use std::sync::Arc;

use kstreams_state::layers::SharedStore;
use kstreams_state::{SessionWindow, StateError, StoreKind};

use super::codec::StoreSerdes;
use super::local::LocalCopy;
use super::{key_bytes, unavailable, QueryContext, StoreInfo};
use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::record::Data;
use crate::runtime::State;
use crate::serde::SharedSerde;
use crate::windowed::{Window, Windowed};

/// Which store to query and how, as Kafka Streams' `StoreQueryParameters`.
///
/// ```
/// use kstreams_streams::query::{QueryableStoreTypes, StoreQueryParameters};
/// let params = StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>())
///     .with_partition(2);
/// assert_eq!(params.store_name(), "counts");
/// assert_eq!(params.partition(), Some(2));
/// ```
pub struct StoreQueryParameters<T> {
    store: String,
    kind: T,
    partition: Option<i32>,
    stale: bool,
}

impl<T: QueryableStoreType> StoreQueryParameters<T> {
    /// Queries the store `name` as `kind` (from [`QueryableStoreTypes`]).
    pub fn from_store_name(name: impl Into<String>, kind: T) -> Self {
        StoreQueryParameters { store: name.into(), kind, partition: None, stale: false }
    }

    /// Reads only the copy of `partition`.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Also reads copies that are not (yet) active here: a store that is still restoring answers
    /// with what it has restored so far instead of failing.
    pub fn enable_stale_stores(mut self) -> Self {
        self.stale = true;
        self
    }

    /// The store's name.
    pub fn store_name(&self) -> &str {
        &self.store
    }

    /// The partition, if one was chosen.
    pub fn partition(&self) -> Option<i32> {
        self.partition
    }

    pub(crate) fn open(self, ctx: Arc<QueryContext>) -> Result<T::Store> {
        let info = ctx.info(&self.store)?;
        let scope = Scope { ctx: ctx.clone(), store: self.store, partition: self.partition, stale: self.stale };
        self.kind.open(scope, &StoreInfoRef(info))
    }
}

/// The shapes a store can be queried as, with their key and value types.
///
/// ```
/// use kstreams_streams::query::QueryableStoreTypes;
/// let _counts = QueryableStoreTypes::key_value::<String, i64>();
/// let _per_minute = QueryableStoreTypes::window_store::<String, i64>();
/// let _visits = QueryableStoreTypes::session_store::<String, i64>();
/// ```
pub struct QueryableStoreTypes;

impl QueryableStoreTypes {
    /// A key-value store of `K` to `V`.
    pub fn key_value<K: Data, V: Data>() -> KeyValueType<K, V> {
        KeyValueType(PhantomData)
    }
    /// A window store of `K` to `V`.
    pub fn window_store<K: Data, V: Data>() -> WindowType<K, V> {
        WindowType(PhantomData)
    }
    /// A session store of `K` to `V`.
    pub fn session_store<K: Data, V: Data>() -> SessionType<K, V> {
        SessionType(PhantomData)
    }
}

/// A key-value store type (see [`QueryableStoreTypes::key_value`]).
pub struct KeyValueType<K, V>(PhantomData<fn() -> (K, V)>);
/// A window store type (see [`QueryableStoreTypes::window_store`]).
pub struct WindowType<K, V>(PhantomData<fn() -> (K, V)>);
/// A session store type (see [`QueryableStoreTypes::session_store`]).
pub struct SessionType<K, V>(PhantomData<fn() -> (K, V)>);

/// Where a view reads: the store, the partition it is limited to, whether stale copies answer.
pub struct Scope {
    ctx: Arc<QueryContext>,
    store: String,
    partition: Option<i32>,
    stale: bool,
}

mod sealed {
    pub trait Sealed {}
}

/// A shape a store can be queried as; implemented by the types [`QueryableStoreTypes`] returns.
pub trait QueryableStoreType: sealed::Sealed {
    /// The view the query returns.
    type Store;
    #[doc(hidden)]
    fn open(self, scope: Scope, info: &StoreInfoRef<'_>) -> Result<Self::Store>;
}

/// What the topology knows of a store (opaque).
#[doc(hidden)]
pub struct StoreInfoRef<'a>(&'a StoreInfo);

fn serdes<K: Data, V: Data>(info: &StoreInfo, store: &str) -> Result<(SharedSerde<K>, SharedSerde<V>)> {
    match info.serdes.as_any().downcast_ref::<StoreSerdes<K, V>>() {
        Some(s) => Ok((s.key.clone(), s.value.clone())),
        None => Err(unavailable(
            store,
            &format!(
                "it is not a store of {} to {}: give the key and value types it was built with",
                std::any::type_name::<K>(),
                std::any::type_name::<V>()
            ),
            false,
        )),
    }
}

fn kind_mismatch(store: &str, kind: &StoreKind, asked: &str) -> StreamsError {
    let is = match kind {
        StoreKind::KeyValue => "a key-value store",
        StoreKind::Window { .. } => "a window store",
        StoreKind::Session { .. } => "a session store",
    };
    unavailable(store, &format!("it is {is}, not {asked}"), false)
}

impl<K: Data, V: Data> sealed::Sealed for KeyValueType<K, V> {}
impl<K: Data, V: Data> QueryableStoreType for KeyValueType<K, V> {
    type Store = ReadOnlyKeyValueStore<K, V>;
    fn open(self, scope: Scope, info: &StoreInfoRef<'_>) -> Result<Self::Store> {
        let info = info.0;
        if info.kind != StoreKind::KeyValue {
            return Err(kind_mismatch(&scope.store, &info.kind, "a key-value store"));
        }
        let (key, value) = serdes::<K, V>(info, &scope.store)?;
        Ok(ReadOnlyKeyValueStore { scope, key, value })
    }
}

impl<K: Data, V: Data> sealed::Sealed for WindowType<K, V> {}
impl<K: Data, V: Data> QueryableStoreType for WindowType<K, V> {
    type Store = ReadOnlyWindowStore<K, V>;
    fn open(self, scope: Scope, info: &StoreInfoRef<'_>) -> Result<Self::Store> {
        let info = info.0;
        let StoreKind::Window { window_size_ms, .. } = info.kind else {
            return Err(kind_mismatch(&scope.store, &info.kind, "a window store"));
        };
        let (key, value) = serdes::<K, V>(info, &scope.store)?;
        Ok(ReadOnlyWindowStore { scope, key, value, window_size: window_size_ms })
    }
}

impl<K: Data, V: Data> sealed::Sealed for SessionType<K, V> {}
impl<K: Data, V: Data> QueryableStoreType for SessionType<K, V> {
    type Store = ReadOnlySessionStore<K, V>;
    fn open(self, scope: Scope, info: &StoreInfoRef<'_>) -> Result<Self::Store> {
        let info = info.0;
        if !matches!(info.kind, StoreKind::Session { .. }) {
            return Err(kind_mismatch(&scope.store, &info.kind, "a session store"));
        }
        let (key, value) = serdes::<K, V>(info, &scope.store)?;
        Ok(ReadOnlySessionStore { scope, key, value })
    }
}

impl Scope {
    fn info(&self) -> Result<&StoreInfo> {
        self.ctx.info(&self.store)
    }

    fn err(&self, reason: &str, retryable: bool) -> StreamsError {
        unavailable(&self.store, reason, retryable)
    }

    /// A store error while reading: a copy closed under the reader (its task was revoked) is a
    /// migration, which a retry resolves.
    fn read_error(&self, e: StateError) -> StreamsError {
        match e {
            StateError::Closed(_) => self.err("its task closed while it was read (the partition is moving)", true),
            other => other.into(),
        }
    }

    fn wrong_shape(&self) -> StreamsError {
        self.err("the local copy has another shape than the topology says", false)
    }

    /// The local copy holding the key whose serialized form is `key`; `None` when the view is limited
    /// to another partition.
    fn copy_for_key(&self, key: &[u8]) -> Result<Option<(i32, SharedStore)>> {
        let info = self.info()?;
        let state = self.ctx.check_running(&self.store)?;
        if info.global {
            return self.global().map(|s| Some((-1, s)));
        }
        let partition = self.ctx.partition_of(info, key);
        if self.partition.is_some_and(|p| p != partition) {
            return Ok(None);
        }
        match self.ctx.local.get(&self.store, partition) {
            Some(LocalCopy::Active(s)) => Ok(Some((partition, s))),
            Some(LocalCopy::Standby(s)) if self.stale => Ok(Some((partition, s))),
            Some(LocalCopy::Standby(_)) => Err(self.err(
                &format!(
                    "partition {partition} is only a standby copy here: ask the active host, or read it with \
                     enable_stale_stores()"
                ),
                false,
            )),
            Some(LocalCopy::Restoring) => {
                Err(self.err(&format!("partition {partition} is restoring on this instance"), true))
            }
            None if state == State::Rebalancing => {
                Err(self.err(&format!("partition {partition} is not here while the group rebalances"), true))
            }
            None => Err(self.err(
                &format!(
                    "partition {partition} is hosted by another instance: ask the one query_metadata_for_key names"
                ),
                false,
            )),
        }
    }

    /// Every local copy in the view; fails (retryable) while any of them restores or the group
    /// rebalances without any.
    fn copies(&self) -> Result<Vec<SharedStore>> {
        let state = self.ctx.check_running(&self.store)?;
        if self.info()?.global {
            return self.global().map(|s| vec![s]);
        }
        let mut out = Vec::new();
        for (partition, copy) in self.ctx.local.all(&self.store) {
            if self.partition.is_some_and(|p| p != partition) {
                continue;
            }
            match copy {
                LocalCopy::Active(s) => out.push(s),
                LocalCopy::Standby(s) if self.stale => out.push(s),
                LocalCopy::Standby(_) => {}
                LocalCopy::Restoring if self.stale => {}
                LocalCopy::Restoring => {
                    return Err(self.err(&format!("partition {partition} is restoring on this instance"), true))
                }
            }
        }
        if out.is_empty() && state == State::Rebalancing {
            return Err(self.err("no copy is active here while the group rebalances", true));
        }
        Ok(out)
    }

    fn global(&self) -> Result<SharedStore> {
        self.ctx.local.global(&self.store).ok_or_else(|| self.err("the global store is still restoring", true))
    }

    fn changelog(&self) -> String {
        self.info().map(|i| i.changelog_topic.clone()).unwrap_or_else(|_| self.store.clone())
    }

    fn key_bytes<K: Data>(&self, key: &K, serde: &SharedSerde<K>) -> Result<Vec<u8>> {
        key_bytes(self.info()?, &self.store, key, serde)
    }
}

fn decode<T: Data>(serde: &SharedSerde<T>, topic: &str, bytes: &[u8]) -> Result<T> {
    serde.deserialize(topic, &Headers::new(), Some(bytes)).map_err(|source| StreamsError::Deserialization {
        topic: topic.to_string(),
        partition: -1,
        offset: -1,
        part: "store entry",
        source: Box::new(source),
    })
}

/// A read-only view over the local copies of a key-value store, as Kafka Streams'
/// `ReadOnlyKeyValueStore`.
///
/// ```no_run
/// # use kstreams_streams::query::ReadOnlyKeyValueStore;
/// # fn f(counts: ReadOnlyKeyValueStore<String, i64>) -> kstreams_streams::Result<()> {
/// let apple = counts.get(&"apple".to_string())?;
/// let total: i64 = counts.all()?.into_iter().map(|(_, n)| n).sum();
/// # Ok(()) }
/// ```
pub struct ReadOnlyKeyValueStore<K, V> {
    scope: Scope,
    key: SharedSerde<K>,
    value: SharedSerde<V>,
}

impl<K: Data, V: Data> ReadOnlyKeyValueStore<K, V> {
    /// The value of `key`; an error when its partition is hosted elsewhere, or restoring here.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let bytes = self.scope.key_bytes(key, &self.key)?;
        let Some((_, copy)) = self.scope.copy_for_key(&bytes)? else { return Ok(None) };
        let found = copy.key_value(|s| s.get(&bytes)).ok_or_else(|| self.scope.wrong_shape())?;
        match found.map_err(|e| self.scope.read_error(e))? {
            Some(v) => Ok(Some(decode(&self.value, &self.scope.changelog(), &v)?)),
            None => Ok(None),
        }
    }

    /// Entries with `from <= key <= to` (by serialized key) in every local copy, in serialized key
    /// order.
    pub fn range(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>> {
        let from = from.map(|k| self.scope.key_bytes(k, &self.key)).transpose()?;
        let to = to.map(|k| self.scope.key_bytes(k, &self.key)).transpose()?;
        let mut entries = Vec::new();
        for copy in self.scope.copies()? {
            let scanned = copy
                .key_value(|s| s.range(from.as_deref(), to.as_deref()).and_then(|it| it.collect::<Result<Vec<_>, _>>()))
                .ok_or_else(|| self.scope.wrong_shape())?;
            entries.extend(scanned.map_err(|e| self.scope.read_error(e))?);
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let topic = self.scope.changelog();
        entries
            .into_iter()
            .map(|(k, v)| Ok((decode(&self.key, &topic, &k)?, decode(&self.value, &topic, &v)?)))
            .collect()
    }

    /// Every entry of every local copy.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.range(None, None)
    }

    /// The number of entries in the local copies, estimated.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        let mut total = 0u64;
        for copy in self.scope.copies()? {
            let n = copy.key_value(|s| s.approximate_num_entries()).ok_or_else(|| self.scope.wrong_shape())?;
            total = total.saturating_add(n.map_err(|e| self.scope.read_error(e))?);
        }
        Ok(total)
    }
}

/// A read-only view over the local copies of a window store, as Kafka Streams'
/// `ReadOnlyWindowStore`.
///
/// ```no_run
/// # use kstreams_streams::query::ReadOnlyWindowStore;
/// # fn f(per_minute: ReadOnlyWindowStore<String, i64>) -> kstreams_streams::Result<()> {
/// for (start, count) in per_minute.fetch(&"apple".to_string(), 0, i64::MAX)? {
///     println!("{start}: {count}");
/// }
/// # Ok(()) }
/// ```
pub struct ReadOnlyWindowStore<K, V> {
    scope: Scope,
    key: SharedSerde<K>,
    value: SharedSerde<V>,
    window_size: i64,
}

impl<K: Data, V: Data> ReadOnlyWindowStore<K, V> {
    /// The windows of `key` starting within `[time_from, time_to]`, by start time.
    pub fn fetch(&self, key: &K, time_from: i64, time_to: i64) -> Result<Vec<(i64, V)>> {
        let bytes = self.scope.key_bytes(key, &self.key)?;
        let Some((_, copy)) = self.scope.copy_for_key(&bytes)? else { return Ok(Vec::new()) };
        let found =
            copy.window(|s| s.fetch_range(&bytes, time_from, time_to)).ok_or_else(|| self.scope.wrong_shape())?;
        let topic = self.scope.changelog();
        found
            .map_err(|e| self.scope.read_error(e))?
            .into_iter()
            .map(|(start, v)| Ok((start, decode(&self.value, &topic, &v)?)))
            .collect()
    }

    /// Every window of every local copy starting within `[time_from, time_to]`, by key then start.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        let mut entries = Vec::new();
        for copy in self.scope.copies()? {
            let found = copy.window(|s| s.fetch_all(time_from, time_to)).ok_or_else(|| self.scope.wrong_shape())?;
            entries.extend(found.map_err(|e| self.scope.read_error(e))?);
        }
        entries.sort_by(|a, b| (&a.key, a.window_start).cmp(&(&b.key, b.window_start)));
        let topic = self.scope.changelog();
        entries
            .into_iter()
            .map(|e| {
                let window = Window::new(e.window_start, e.window_start.saturating_add(self.window_size));
                Ok((Windowed::new(decode(&self.key, &topic, &e.key)?, window), decode(&self.value, &topic, &e.value)?))
            })
            .collect()
    }

    /// Every retained window of every local copy.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        self.fetch_all(i64::MIN, i64::MAX)
    }
}

/// A read-only view over the local copies of a session store, as Kafka Streams'
/// `ReadOnlySessionStore`.
///
/// ```no_run
/// # use kstreams_streams::query::ReadOnlySessionStore;
/// # fn f(visits: ReadOnlySessionStore<String, i64>) -> kstreams_streams::Result<()> {
/// for (session, clicks) in visits.fetch(&"ann".to_string())? {
///     println!("{}..{}: {clicks}", session.start, session.end);
/// }
/// # Ok(()) }
/// ```
pub struct ReadOnlySessionStore<K, V> {
    scope: Scope,
    key: SharedSerde<K>,
    value: SharedSerde<V>,
}

impl<K: Data, V: Data> ReadOnlySessionStore<K, V> {
    /// Every session of `key`, by start.
    pub fn fetch(&self, key: &K) -> Result<Vec<(SessionWindow, V)>> {
        let bytes = self.scope.key_bytes(key, &self.key)?;
        let Some((_, copy)) = self.scope.copy_for_key(&bytes)? else { return Ok(Vec::new()) };
        let found = copy.session(|s| s.fetch(&bytes)).ok_or_else(|| self.scope.wrong_shape())?;
        let topic = self.scope.changelog();
        found
            .map_err(|e| self.scope.read_error(e))?
            .into_iter()
            .map(|(w, v)| Ok((w, decode(&self.value, &topic, &v)?)))
            .collect()
    }
}
