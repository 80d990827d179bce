//! Typed state stores: the facades processors use, and the builders that describe them.
//!
//! A store is declared with a [`StoreBuilder`] (from [`Stores`]) and opened per task; processors reach
//! it through [`ProcessorContext`](crate::processor::ProcessorContext). The typed facade serializes
//! keys and values with the store's serdes; ranges follow the order of the serialized keys, as in
//! Kafka Streams.
//!
//! ```
//! use std::time::Duration;
//! use kstreams_streams::serde::Serdes;
//! use kstreams_streams::store::Stores;
//! let counts = Stores::key_value("counts", Serdes::string(), Serdes::i64());
//! assert_eq!(counts.spec().name, "counts");
//! let in_memory = Stores::window("clicks", Duration::from_secs(3600), Duration::from_secs(60), false, Serdes::string(), Serdes::i64())
//!     .in_memory()
//!     .with_logging_disabled();
//! assert!(!in_memory.spec().logging);
//! ```

mod shared;
mod timestamped;
mod typed;

use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use kstreams_state::{Backend, OpenedStore, StoreHandle, StoreKind, StoreSpec};

pub(crate) use shared::{SharedKeyValueStore, SyncKeyValueStore};
pub(crate) use timestamped::WithoutTimestamp;
pub use timestamped::{ValueAndTimestamp, NO_TIMESTAMP};
pub use typed::{CacheFlush, KeyValueStore, SessionStore, WindowStore};

use crate::error::{Result, StreamsError};
use crate::query::codec::{ErasedStoreSerdes, StoreSerdes};
use crate::record::Data;
use crate::serde::SharedSerde;
use crate::task::core::RegisteredStore;

/// Opens the typed facade over an opened store: the store, the topic its serdes see, and the task's
/// record clock (the timestamp of the record being processed, which timestamped stores stamp).
type TypedFactory = Arc<dyn Fn(OpenedStore, String, Arc<AtomicI64>) -> Result<Box<dyn RegisteredStore>> + Send + Sync>;

/// Describes a store: its name, shape, backend, logging, caching and serdes.
///
/// ```
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::store::Stores;
/// let builder = Stores::key_value("counts", Serdes::string(), Serdes::i64()).in_memory().with_caching_enabled();
/// assert_eq!(builder.spec().name, "counts");
/// assert!(builder.spec().caching && builder.spec().logging);
/// ```
#[derive(Clone)]
pub struct StoreBuilder {
    spec: StoreSpec,
    typed: TypedFactory,
    /// The key and value serdes, for interactive queries.
    serdes: Arc<dyn ErasedStoreSerdes>,
}

impl StoreBuilder {
    /// What the store is.
    pub fn spec(&self) -> &StoreSpec {
        &self.spec
    }
    /// Keeps the store in memory instead of RocksDB (restored from its changelog on restart).
    pub fn in_memory(mut self) -> Self {
        self.spec.backend = Backend::InMemory;
        self
    }
    /// No changelog topic: the store's contents are lost with its local state.
    pub fn with_logging_disabled(mut self) -> Self {
        self.spec.logging = false;
        self
    }
    /// A changelog topic with these extra topic configs.
    pub fn with_logging_enabled(mut self, configs: impl IntoIterator<Item = (String, String)>) -> Self {
        self.spec.logging = true;
        self.spec.changelog_configs.extend(configs);
        self
    }
    /// Puts a record cache in front of the store.
    pub fn with_caching_enabled(mut self) -> Self {
        self.spec.caching = true;
        self
    }
    /// No record cache: every update goes to the store (and downstream) at once.
    pub fn with_caching_disabled(mut self) -> Self {
        self.spec.caching = false;
        self
    }

    /// The store's serdes, for interactive queries.
    pub(crate) fn serdes(&self) -> Arc<dyn ErasedStoreSerdes> {
        self.serdes.clone()
    }

    /// The typed facade over an opened bytes store; `topic` is what serdes are told (the changelog).
    pub(crate) fn typed(
        &self,
        opened: OpenedStore,
        topic: String,
        clock: Arc<AtomicI64>,
    ) -> Result<Box<dyn RegisteredStore>> {
        (self.typed)(opened, topic, clock)
    }
}

fn mismatch(name: &str, expected: &str) -> StreamsError {
    StreamsError::Topology(format!("store `{name}` was opened as another kind than {expected}"))
}

/// Constructors of [`StoreBuilder`]s, as Kafka Streams' `Stores`. Stores are persistent (RocksDB),
/// change-logged and uncached unless the builder says otherwise.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::StreamsBuilder;
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::store::Stores;
/// let builder = StreamsBuilder::new();
/// builder.add_state_store(Stores::key_value("seen", Serdes::string(), Serdes::i64()));
/// let hour = Duration::from_secs(3600);
/// builder.add_state_store(Stores::window("per-minute", hour, Duration::from_secs(60), false, Serdes::string(), Serdes::i64()));
/// builder.add_state_store(Stores::session("visits", hour, Serdes::string(), Serdes::i64()));
/// ```
pub struct Stores;

impl Stores {
    /// A key-value store.
    pub fn key_value<K: Data, V: Data>(
        name: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> StoreBuilder {
        Self::key_value_store(name, key_serde, value_serde, false)
    }

    /// A key-value store that keeps a timestamp with each value (Kafka Streams'
    /// `timestampedKeyValueStoreBuilder`), as the stores under the DSL's tables do: each value is
    /// stored as a [`ValueAndTimestamp`] (8-byte big-endian timestamp, then the value's bytes).
    /// [`KeyValueStore::put`] stamps the timestamp of the record being processed,
    /// [`KeyValueStore::put_with_timestamp`] a given one; reads return the plain value, and
    /// [`KeyValueStore::get_with_timestamp`] both. Interactive queries read the plain values.
    ///
    /// ```
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::store::Stores;
    /// let totals = Stores::timestamped_key_value("totals", Serdes::string(), Serdes::i64());
    /// assert_eq!(totals.spec().name, "totals");
    /// ```
    pub fn timestamped_key_value<K: Data, V: Data>(
        name: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> StoreBuilder {
        Self::key_value_store(name, key_serde, value_serde, true)
    }

    fn key_value_store<K: Data, V: Data>(
        name: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        timestamped: bool,
    ) -> StoreBuilder {
        let store = name.to_string();
        let serdes = query_serdes(key_serde.clone(), value_serde.clone(), timestamped);
        StoreBuilder {
            serdes,
            spec: spec(name, StoreKind::KeyValue),
            typed: Arc::new(move |opened: OpenedStore, topic, clock| match opened.store {
                StoreHandle::KeyValue(inner) => Ok(Box::new(
                    KeyValueStore::new(inner, topic, key_serde.clone(), value_serde.clone())
                        .with_dirty_queue(opened.dirty)
                        .with_clock(timestamped.then_some(clock)),
                ) as Box<dyn RegisteredStore>),
                _ => Err(mismatch(&store, "a key-value store")),
            }),
        }
    }

    /// A window store keeping windows of `window_size` for `retention` (at least size + grace);
    /// `retain_duplicates` keeps every value put under one key and window (stream-stream joins).
    pub fn window<K: Data, V: Data>(
        name: &str,
        retention: Duration,
        window_size: Duration,
        retain_duplicates: bool,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> StoreBuilder {
        Self::window_store(name, retention, window_size, retain_duplicates, key_serde, value_serde, false)
    }

    /// A window store that keeps a timestamp with each value, as windowed aggregations do (Kafka
    /// Streams' `timestampedWindowStoreBuilder`); see [`timestamped_key_value`](Self::timestamped_key_value).
    ///
    /// ```
    /// use std::time::Duration;
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::store::Stores;
    /// let per_minute = Stores::timestamped_window(
    ///     "per-minute", Duration::from_secs(3600), Duration::from_secs(60), Serdes::string(), Serdes::i64());
    /// assert_eq!(per_minute.spec().name, "per-minute");
    /// ```
    pub fn timestamped_window<K: Data, V: Data>(
        name: &str,
        retention: Duration,
        window_size: Duration,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> StoreBuilder {
        Self::window_store(name, retention, window_size, false, key_serde, value_serde, true)
    }

    fn window_store<K: Data, V: Data>(
        name: &str,
        retention: Duration,
        window_size: Duration,
        retain_duplicates: bool,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        timestamped: bool,
    ) -> StoreBuilder {
        let store = name.to_string();
        let size = millis(window_size);
        let serdes = query_serdes(key_serde.clone(), value_serde.clone(), timestamped);
        StoreBuilder {
            serdes,
            spec: spec(
                name,
                StoreKind::Window { retention_ms: millis(retention), window_size_ms: size, retain_duplicates },
            ),
            typed: Arc::new(move |opened: OpenedStore, topic, clock| match opened.store {
                StoreHandle::Window(inner) => Ok(Box::new(
                    WindowStore::new(inner, topic, size, key_serde.clone(), value_serde.clone())
                        .with_clock(timestamped.then_some(clock)),
                ) as Box<dyn RegisteredStore>),
                _ => Err(mismatch(&store, "a window store")),
            }),
        }
    }

    /// A session store keeping sessions for `retention` (at least inactivity gap + grace).
    pub fn session<K: Data, V: Data>(
        name: &str,
        retention: Duration,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> StoreBuilder {
        let store = name.to_string();
        let serdes = Arc::new(StoreSerdes { key: key_serde.clone(), value: value_serde.clone() });
        StoreBuilder {
            serdes,
            spec: spec(name, StoreKind::Session { retention_ms: millis(retention) }),
            typed: Arc::new(move |opened: OpenedStore, topic, _clock| match opened.store {
                StoreHandle::Session(inner) => {
                    Ok(Box::new(SessionStore::new(inner, topic, key_serde.clone(), value_serde.clone()))
                        as Box<dyn RegisteredStore>)
                }
                _ => Err(mismatch(&store, "a session store")),
            }),
        }
    }
}

/// The serdes interactive queries read a store with: for a timestamped store, values without their
/// timestamps.
fn query_serdes<K: Data, V: Data>(
    key: SharedSerde<K>,
    value: SharedSerde<V>,
    timestamped: bool,
) -> Arc<dyn ErasedStoreSerdes> {
    let value: SharedSerde<V> = if timestamped { Arc::new(WithoutTimestamp { inner: value }) } else { value };
    Arc::new(StoreSerdes { key, value })
}

fn spec(name: &str, kind: StoreKind) -> StoreSpec {
    let mut spec = StoreSpec::key_value(name);
    spec.kind = kind;
    spec.caching = false;
    spec
}

pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
