//! The closure types the DSL's operators keep: one name per role, as Kafka Streams' functional
//! interfaces (`Aggregator`, `Reducer`, `Predicate`, `KeyValueMapper`, …).

use std::sync::Arc;

/// Folds a value into an aggregate (Kafka Streams' `Aggregator`).
pub(crate) type Aggregator<K, V, VA> = Arc<dyn Fn(&K, V, VA) -> VA + Send + Sync>;
/// Folds a value into an aggregate that may not exist yet.
pub(crate) type OptionAggregator<K, V, VA> = Arc<dyn Fn(&K, V, Option<VA>) -> VA + Send + Sync>;
/// Combines two values (Kafka Streams' `Reducer`).
pub(crate) type Reducer<V> = Arc<dyn Fn(V, V) -> V + Send + Sync>;
/// Tests a record (Kafka Streams' `Predicate`).
pub(crate) type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;
/// Maps a record to a new key and value (Kafka Streams' `KeyValueMapper`).
pub(crate) type KeyValueMapper<K, V, KR, VR> = Arc<dyn Fn(&K, &V) -> (KR, VR) + Send + Sync>;
/// Maps a value, possibly to nothing (filters and value mappers of tables).
pub(crate) type ValueMapperWithKey<K, V, VR> = Arc<dyn Fn(&K, V) -> Option<VR> + Send + Sync>;
