//! The option objects of DSL operators: [`Consumed`], [`Produced`], [`Grouped`], [`Materialized`],
//! [`Joined`], [`Repartitioned`], [`Named`] and [`Branched`], as in Kafka Streams. Whatever is left
//! unset comes from the stream (serdes travel with it) or from the builder's default serdes.

use std::sync::Arc;
use std::time::Duration;

use kstreams_state::Backend;

use crate::serde::SharedSerde;
use crate::topology::{StreamPartitioner, TimestampExtractor};

/// How a source topic is read: serdes, event time and a processor name.
///
/// ```
/// use kstreams_streams::dsl::Consumed;
/// use kstreams_streams::serde::Serdes;
/// let consumed = Consumed::with(Serdes::string(), Serdes::i64())
///     .with_timestamp_extractor(|_k: &String, v: &i64, _ts: i64, _pt: i64| *v);
/// # let _ = consumed;
/// ```
pub struct Consumed<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) extractor: Option<Arc<dyn TimestampExtractor<K, V>>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Consumed<K, V> {
    fn default() -> Self {
        Consumed { key_serde: None, value_serde: None, extractor: None, name: None }
    }
}

impl<K, V> Consumed<K, V> {
    /// Reads keys and values with these serdes.
    pub fn with(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        Consumed { key_serde: Some(key_serde), value_serde: Some(value_serde), ..Default::default() }
    }
    /// Names the source processor.
    pub fn as_(name: &str) -> Self {
        Consumed { name: Some(name.to_string()), ..Default::default() }
    }
    /// Takes event time from `extractor` instead of the record timestamp.
    pub fn with_timestamp_extractor(mut self, extractor: impl TimestampExtractor<K, V>) -> Self {
        self.extractor = Some(Arc::new(extractor));
        self
    }
    /// Names the source processor.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// How records are written to a topic: serdes, partitioner and a processor name.
pub struct Produced<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Produced<K, V> {
    fn default() -> Self {
        Produced { key_serde: None, value_serde: None, partitioner: None, name: None }
    }
}

impl<K, V> Produced<K, V> {
    /// Writes keys and values with these serdes.
    pub fn with(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        Produced { key_serde: Some(key_serde), value_serde: Some(value_serde), ..Default::default() }
    }
    /// Names the sink processor.
    pub fn as_(name: &str) -> Self {
        Produced { name: Some(name.to_string()), ..Default::default() }
    }
    /// Chooses partitions with `partitioner` instead of murmur2 over the key.
    pub fn with_stream_partitioner(mut self, partitioner: impl StreamPartitioner<K, V>) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }
}

/// How a stream is grouped: serdes for the repartition topic and its name.
pub struct Grouped<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) name: Option<String>,
}

impl<K, V> Default for Grouped<K, V> {
    fn default() -> Self {
        Grouped { key_serde: None, value_serde: None, name: None }
    }
}

impl<K, V> Grouped<K, V> {
    /// Serdes for the repartition topic.
    pub fn with(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        Grouped { key_serde: Some(key_serde), value_serde: Some(value_serde), name: None }
    }
    /// Names the repartition topic (`<application.id>-<name>-repartition`).
    pub fn as_(name: &str) -> Self {
        Grouped { name: Some(name.to_string()), ..Default::default() }
    }
    /// Names the repartition topic.
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

/// How an aggregation or table is stored: store name, serdes, backend, logging, caching, retention.
///
/// ```
/// use kstreams_streams::dsl::Materialized;
/// use kstreams_streams::serde::Serdes;
/// let m: Materialized<String, i64> = Materialized::as_("counts").with_value_serde(Serdes::i64()).with_caching_disabled();
/// # let _ = m;
/// ```
pub struct Materialized<K, V> {
    pub(crate) store_name: Option<String>,
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) backend: Backend,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    pub(crate) retention: Option<Duration>,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Materialized {
            store_name: None,
            key_serde: None,
            value_serde: None,
            backend: Backend::RocksDb,
            logging: true,
            caching: false,
            retention: None,
        }
    }
}

impl<K, V> Materialized<K, V> {
    /// A store named `name` (queryable, and naming the changelog and repartition topics).
    pub fn as_(name: &str) -> Self {
        Materialized { store_name: Some(name.to_string()), ..Default::default() }
    }
    /// A store with these serdes and a generated name.
    pub fn with(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        Materialized { key_serde: Some(key_serde), value_serde: Some(value_serde), ..Default::default() }
    }
    /// Sets the key serde.
    pub fn with_key_serde(mut self, serde: SharedSerde<K>) -> Self {
        self.key_serde = Some(serde);
        self
    }
    /// Sets the value serde.
    pub fn with_value_serde(mut self, serde: SharedSerde<V>) -> Self {
        self.value_serde = Some(serde);
        self
    }
    /// Keeps the store in memory.
    pub fn in_memory(mut self) -> Self {
        self.backend = Backend::InMemory;
        self
    }
    /// No changelog topic.
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }
    /// A record cache in front of the store.
    pub fn with_caching_enabled(mut self) -> Self {
        self.caching = true;
        self
    }
    /// No record cache.
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }
    /// How long a window store keeps windows (at least window size + grace).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }
}

/// Serdes and name of a stream-table join.
pub struct Joined<K, V, VO> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) other_value_serde: Option<SharedSerde<VO>>,
    pub(crate) name: Option<String>,
}

impl<K, V, VO> Default for Joined<K, V, VO> {
    fn default() -> Self {
        Joined { key_serde: None, value_serde: None, other_value_serde: None, name: None }
    }
}

impl<K, V, VO> Joined<K, V, VO> {
    /// Serdes for a repartition of the stream side.
    pub fn with(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>, other_value_serde: SharedSerde<VO>) -> Self {
        Joined {
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
            other_value_serde: Some(other_value_serde),
            name: None,
        }
    }
    /// Names the join (and its repartition topic).
    pub fn as_(name: &str) -> Self {
        Joined { name: Some(name.to_string()), ..Default::default() }
    }
}

/// Settings of an explicit repartition: name, serdes, partition count, partitioner.
pub struct Repartitioned<K, V> {
    pub(crate) name: Option<String>,
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) partitions: Option<i32>,
    pub(crate) partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Repartitioned { name: None, key_serde: None, value_serde: None, partitions: None, partitioner: None }
    }
}

impl<K, V> Repartitioned<K, V> {
    /// Names the repartition topic.
    pub fn as_(name: &str) -> Self {
        Repartitioned { name: Some(name.to_string()), ..Default::default() }
    }
    /// Serdes for the repartition topic.
    pub fn with(key_serde: SharedSerde<K>, value_serde: SharedSerde<V>) -> Self {
        Repartitioned { key_serde: Some(key_serde), value_serde: Some(value_serde), ..Default::default() }
    }
    /// Gives the repartition topic `n` partitions.
    pub fn with_number_of_partitions(mut self, n: i32) -> Self {
        self.partitions = Some(n);
        self
    }
    /// Chooses partitions with `partitioner`.
    pub fn with_stream_partitioner(mut self, partitioner: impl StreamPartitioner<K, V>) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }
}

/// A processor name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named(pub(crate) String);

impl Named {
    /// The name.
    pub fn as_(name: &str) -> Self {
        Named(name.to_string())
    }
}

/// The name of a branch of [`KStream::split`](super::KStream::split).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Branched {
    pub(crate) name: Option<String>,
}

impl Branched {
    /// A branch named `name` (the split's prefix + `name`).
    pub fn as_(name: &str) -> Self {
        Branched { name: Some(name.to_string()) }
    }
}
