//! [`GlobalKTable`]: a table of every partition of a topic, in every instance.

use std::marker::PhantomData;

use crate::dsl::builder::StreamsBuilder;
use crate::dsl::config::{Consumed, Materialized};
use crate::record::Data;
use crate::store::Stores;

/// A table holding the latest value per key of **all** partitions of its topic, in every instance
/// of the application (Kafka Streams' `GlobalKTable`).
///
/// Streams join it with [`KStream::join_global`](super::KStream::join_global) and
/// [`KStream::left_join_global`](super::KStream::left_join_global) on a key computed from each
/// record, with no repartitioning and no co-partitioning: small reference data (countries,
/// products, exchange rates) that every record may need, whatever its key. Updates of the table
/// produce no join output; they only change what later stream records see.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
///
/// let builder = StreamsBuilder::new();
/// let countries = builder.global_table("countries", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("countries"));
/// assert_eq!(countries.queryable_store_name(), "countries");
/// builder
///     .stream("visits", Consumed::with(Serdes::string(), Serdes::string()))
///     // The visit's value is a country code: look it up.
///     .join_global(&countries, |_user: &String, code: &String| code.clone(), |code: &String, name: &String| format!("{code}={name}"))
///     .to("visits-by-country", Produced::default());
/// let topology = builder.build().unwrap();
/// assert!(topology.internal_topics().is_empty(), "no repartition topic, no changelog");
/// ```
pub struct GlobalKTable<K, V> {
    pub(crate) store: String,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        GlobalKTable { store: self.store.clone(), _types: PhantomData }
    }
}

impl<K, V> GlobalKTable<K, V> {
    /// The name of the key-value store holding the table (readable by any processor, see
    /// [`ProcessorContext::key_value_store`](crate::processor::ProcessorContext::key_value_store)).
    pub fn queryable_store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// A [`GlobalKTable`] of `topic`: every instance holds all of its partitions. A record upserts
    /// its key, a null value (a tombstone) deletes it, a record without a key is skipped.
    ///
    /// The store is named by `materialized` (or generated) and kept in RocksDB or in memory as it
    /// says; it is never logged nor cached: the topic itself is its changelog. At start the runtime
    /// restores it from the topic before any stream thread runs, then keeps it up to date from a
    /// dedicated `GlobalStreamThread`.
    ///
    /// `consumed`'s timestamp extractor, if any, gives each record its timestamp (a tombstone keeps
    /// its own); a record with a negative one is not stored. A record that cannot be deserialized
    /// goes to `default.deserialization.exception.handler`, during restoration as afterwards.
    pub fn global_table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> GlobalKTable<K, V> {
        let mut inner = self.inner.borrow_mut();
        let (store, key_serde, value_serde) = inner.table_store_and_serdes(
            "global table",
            topic,
            (consumed.key_serde, consumed.value_serde),
            &materialized,
        );
        let (source, processor) = inner.table_source_names(consumed.name.as_deref());
        let mut builder = Stores::key_value(&store, key_serde.clone(), value_serde.clone());
        if materialized.backend == kstreams_state::Backend::InMemory {
            builder = builder.in_memory();
        }
        let extractor = super::config::table_extractor(consumed.extractor);
        let result = inner
            .topology
            .add_global_store_with_extractor(builder, &source, topic, key_serde, value_serde, &processor, extractor)
            .map(|_| ());
        inner.check(result);
        GlobalKTable { store, _types: PhantomData }
    }
}
