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

/// A [`Consumed`] extractor made fit for a table's source (`KTable`, `GlobalKTable`), whose values
/// may be tombstones: a tombstone keeps its record timestamp.
pub(crate) fn table_extractor<K: 'static, V: 'static>(
    extractor: Option<Arc<dyn TimestampExtractor<K, V>>>,
) -> Option<Arc<dyn TimestampExtractor<K, Option<V>>>> {
    extractor.map(|e| {
        Arc::new(move |k: &K, v: &Option<V>, ts: i64, pt: i64| match v {
            Some(v) => e.extract(k, v, ts, pt),
            None => ts,
        }) as Arc<dyn TimestampExtractor<K, Option<V>>>
    })
}

/// How records are written to a topic: serdes, partitioner and a processor name.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
///     .to("out", Produced::with(Serdes::string(), Serdes::i64()).with_stream_partitioner(|_t: &str, _: &String, _: &i64, _n: i32| Some(0)));
/// assert!(builder.build().is_ok());
/// ```
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
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by(|_user, page: &String| page.clone(), Grouped::with(Serdes::string(), Serdes::string()).with_name("by-page"))
///     .count(Materialized::as_("clicks-per-page"));
/// let topology = builder.build().unwrap();
/// assert!(topology.internal_topics().iter().any(|t| t.name == "by-page-repartition"));
/// ```
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
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Joined, Materialized, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let users = builder.table("users", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("users"));
/// builder
///     .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
///     .join(&users, |page, name| format!("{name} saw {page}"), Joined::as_("clicks-with-users"))
///     .to("named-clicks", Produced::default());
/// assert!(builder.build().unwrap().describe().to_string().contains("Processor: clicks-with-users"));
/// ```
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
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, Repartitioned, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
///     .repartition(Repartitioned::as_("spread").with_number_of_partitions(6))
///     .to("out", Produced::default());
/// let topics = builder.build().unwrap().internal_topics();
/// assert_eq!((topics[0].name.as_str(), topics[0].partitions), ("spread-repartition", Some(6)));
/// ```
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

/// The name of a processor, replacing the generated `KSTREAM-FILTER-0000000003`-style name, as
/// Kafka Streams' `Named`. Operators take it in their `_named` variants (`filter_named`,
/// `map_values_named`, `to_stream_named`, …). Like Kafka Streams, a named operator still consumes
/// the index its generated name would have had, so the generated names of the other operators do
/// not change when one is named.
///
/// A name is at most 249 characters of ASCII letters, digits, `.`, `_` and `-` (not `.` or `..`);
/// [`StreamsBuilder::build`](super::StreamsBuilder::build) reports an illegal one.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Named, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("orders", Consumed::with(Serdes::string(), Serdes::i64())) // KSTREAM-SOURCE-0000000000
///     .filter_named(|_, amount| *amount > 100, Named::as_("only-big")) // index 1 is consumed
///     .map_values(|amount| amount * 2) // KSTREAM-MAPVALUES-0000000002
///     .to("big-orders", Produced::default());
/// let text = builder.build().unwrap().describe().to_string();
/// assert!(text.contains("Processor: only-big (stores: [])"));
/// assert!(text.contains("Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named(pub(crate) String);

impl Named {
    /// The name.
    pub fn as_(name: &str) -> Self {
        Named(name.to_string())
    }

    /// The name given.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Checks the name as Kafka Streams does: 1 to 249 characters of ASCII alphanumerics, `.`, `_`
    /// and `-`, and neither `.` nor `..`.
    pub(crate) fn validate(name: &str) -> Result<(), String> {
        const MAX_NAME_LENGTH: usize = 249;
        if name.is_empty() {
            return Err("name is illegal, it can't be empty".into());
        }
        if name == "." || name == ".." {
            return Err("name cannot be \".\" or \"..\"".into());
        }
        if name.len() > MAX_NAME_LENGTH {
            return Err(format!("name is illegal, it can't be longer than {MAX_NAME_LENGTH} characters, name: {name}"));
        }
        if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return Err(format!(
                "name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
            ));
        }
        Ok(())
    }
}

/// The name of a branch of [`KStream::split`](super::KStream::split).
///
/// ```
/// use kstreams_streams::dsl::{Branched, Consumed, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let branches = builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
///     .split()
///     .branch(|_, v| *v < 0, Branched::as_("negative"))
///     .default_branch(Branched::default()); // named `0`
/// assert_eq!(branches.len(), 2);
/// assert!(branches.keys().any(|k| k.ends_with("negative")));
/// ```
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
