//! Pluggable choices a topology makes per record: event time, output topic, output partition.

use std::sync::Arc;

use crate::record::Record;

/// Chooses a record's event time when it is read from a source topic.
///
/// The default is the timestamp Kafka stored with the record. Any closure
/// `Fn(&K, &V, record_timestamp, partition_time) -> i64` is an extractor:
///
/// ```
/// use std::sync::Arc;
/// use kstreams_streams::topology::TimestampExtractor;
/// // Event time is carried in the value: (timestamp, amount).
/// let extractor: Arc<dyn TimestampExtractor<String, (i64, f64)>> =
///     Arc::new(|_k: &String, v: &(i64, f64), _record_ts: i64, _partition_time: i64| v.0);
/// assert_eq!(extractor.extract(&"k".into(), &(42, 1.0), 7, 0), 42);
/// ```
///
/// A negative result marks the record as having no valid time: it is dropped with a warning and
/// counted in the `dropped-records` metric.
pub trait TimestampExtractor<K, V>: Send + Sync + 'static {
    /// The event time of the record in milliseconds; `partition_time` is the largest timestamp seen so
    /// far on the record's partition (or `i64::MIN`).
    fn extract(&self, key: &K, value: &V, record_timestamp: i64, partition_time: i64) -> i64;
}

impl<K, V, F> TimestampExtractor<K, V> for F
where
    F: Fn(&K, &V, i64, i64) -> i64 + Send + Sync + 'static,
{
    fn extract(&self, key: &K, value: &V, record_timestamp: i64, partition_time: i64) -> i64 {
        self(key, value, record_timestamp, partition_time)
    }
}

/// Stamps every record with the wall-clock time at which it is read (processing time).
///
/// ```
/// use kstreams_streams::topology::{TimestampExtractor, WallclockTimestampExtractor};
/// let now = WallclockTimestampExtractor.extract(&(), &(), 0, 0);
/// assert!(now > 1_600_000_000_000);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct WallclockTimestampExtractor;

impl<K, V> TimestampExtractor<K, V> for WallclockTimestampExtractor {
    fn extract(&self, _key: &K, _value: &V, _record_timestamp: i64, _partition_time: i64) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// Chooses the partition of an output record. `None` leaves the choice to the producer.
///
/// ```
/// use kstreams_streams::topology::StreamPartitioner;
/// // Everything to partition 0.
/// let p = |_topic: &str, _k: &String, _v: &i64, _n: i32| Some(0);
/// assert_eq!(p.partition("out", &"k".to_string(), &1, 3), Some(0));
/// ```
pub trait StreamPartitioner<K, V>: Send + Sync + 'static {
    /// The partition of `topic` (which has `num_partitions`) for this record.
    fn partition(&self, topic: &str, key: &K, value: &V, num_partitions: i32) -> Option<i32>;
}

impl<K, V, F> StreamPartitioner<K, V> for F
where
    F: Fn(&str, &K, &V, i32) -> Option<i32> + Send + Sync + 'static,
{
    fn partition(&self, topic: &str, key: &K, value: &V, num_partitions: i32) -> Option<i32> {
        self(topic, key, value, num_partitions)
    }
}

/// Chooses the topic of a record.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::record::Record;
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("orders", Consumed::with(Serdes::string(), Serdes::i64()))
///     // The closure becomes the topic chooser of a dynamic sink.
///     .to_dynamic(|r: &Record<String, i64>| format!("orders-{}", r.key), Produced::default());
/// assert!(builder.build().is_ok());
/// ```
pub type TopicChooser<K, V> = Arc<dyn Fn(&Record<K, V>) -> String + Send + Sync>;

/// The topic a sink writes a record to: one fixed topic, or one chosen per record.
///
/// ```
/// use std::sync::Arc;
/// use kstreams_streams::record::Record;
/// use kstreams_streams::topology::TopicNameExtractor;
/// let fixed: TopicNameExtractor<String, i64> = TopicNameExtractor::Static("orders".into());
/// let dynamic: TopicNameExtractor<String, i64> =
///     TopicNameExtractor::Dynamic(Arc::new(|r: &Record<String, i64>| format!("orders-{}", r.key)));
/// # let _ = (fixed, dynamic);
/// ```
pub enum TopicNameExtractor<K, V> {
    /// Always this topic.
    Static(String),
    /// Chosen per record.
    Dynamic(TopicChooser<K, V>),
}

impl<K, V> Clone for TopicNameExtractor<K, V> {
    fn clone(&self) -> Self {
        match self {
            TopicNameExtractor::Static(t) => TopicNameExtractor::Static(t.clone()),
            TopicNameExtractor::Dynamic(f) => TopicNameExtractor::Dynamic(f.clone()),
        }
    }
}

impl<K, V> TopicNameExtractor<K, V> {
    /// The topic of `record`.
    pub fn topic(&self, record: &Record<K, V>) -> String {
        match self {
            TopicNameExtractor::Static(topic) => topic.clone(),
            TopicNameExtractor::Dynamic(f) => f(record),
        }
    }
}
