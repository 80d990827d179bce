//! Global stores: key-value stores that hold **every** partition of their topic in every instance.
//!
//! They are kept apart from the sub-topologies and generate no tasks: one updater per instance
//! (the runtime's `GlobalStreamThread`, or the test driver) writes each record of the topic to the
//! store, and every task may read the store through its
//! [`ProcessorContext`](crate::processor::ProcessorContext) without being connected to it. The
//! topic is the store's changelog: a global store is never logged, and its topic needs no
//! co-partitioning with anything.

use std::sync::Arc;

use kstreams_state::StoreKind;

use super::{NodeKind, TimestampExtractor, Topology};
use crate::error::{Result, StreamsError};
use crate::processor::node::{RawSource, TypedSource};
use crate::record::Data;
use crate::serde::{Serdes, SharedSerde};
use crate::store::StoreBuilder;

/// A global store as the topology keeps it.
pub(crate) struct GlobalStoreDef {
    /// The store (key-value; logging and caching off).
    pub store: StoreBuilder,
    /// The topic it mirrors.
    pub topic: String,
    /// The name of its source node (for `describe()`).
    pub source_name: String,
    /// The name of its update processor (for `describe()`).
    pub processor_name: String,
    /// Checks that a record of the topic deserializes (key and nullable value) before it is stored,
    /// and takes its timestamp (with the `Consumed`'s extractor, if any).
    pub source: Arc<dyn RawSource>,
}

impl GlobalStoreDef {
    /// The store's name.
    pub fn name(&self) -> &str {
        &self.store.spec().name
    }
}

/// A global store of a topology, as [`Topology::global_stores`] lists it.
///
/// ```
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::store::Stores;
/// use kstreams_streams::topology::Topology;
///
/// let mut topology = Topology::new();
/// let store = Stores::key_value("countries", Serdes::string(), Serdes::string());
/// topology.add_global_store(store, "countries-source", "countries", Serdes::string(), Serdes::string(), "countries-update").unwrap();
/// let global = &topology.global_stores()[0];
/// assert_eq!((global.id, global.store.as_str(), global.topic.as_str()), (0, "countries", "countries"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalStore {
    /// Its number among the sub-topologies (numbered together, by source node name, as in Kafka
    /// Streams; no task carries it).
    pub id: u32,
    /// The store's name.
    pub store: String,
    /// The topic the store mirrors.
    pub topic: String,
    /// The source node's name.
    pub source_name: String,
    /// The update processor's name.
    pub processor_name: String,
}

impl Topology {
    /// Adds a global store: a key-value store holding the latest value of every key of **all**
    /// partitions of `topic`, in every instance (Kafka Streams' `addGlobalStore`). A record upserts
    /// its key, a null value deletes it, a null key is skipped. Any processor may read the store
    /// with [`ProcessorContext::key_value_store`](crate::processor::ProcessorContext::key_value_store)
    /// without being connected to it; writes from processors are refused.
    ///
    /// Unlike Kafka Streams there is no custom update processor: the store mirrors the topic, and
    /// `processor_name` only names the update step in [`describe`](Self::describe). The store is
    /// never logged (the topic is its changelog) nor cached, whatever `store` says; its serdes
    /// must read the bytes of the topic (normally `key_serde` and `value_serde`, which check each
    /// record before it is stored).
    ///
    /// ```
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::store::Stores;
    /// use kstreams_streams::topology::Topology;
    ///
    /// let mut topology = Topology::new();
    /// let store = Stores::key_value("rates", Serdes::string(), Serdes::f64()).in_memory();
    /// topology.add_global_store(store, "rates-source", "rates", Serdes::string(), Serdes::f64(), "rates-update").unwrap();
    /// assert!(topology.describe().to_string().contains("Sub-topology: 0 for global store (will not generate tasks)"));
    /// assert!(topology.internal_topics().is_empty(), "a global store has no changelog");
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn add_global_store<K: Data, V: Data>(
        &mut self,
        store: StoreBuilder,
        source_name: &str,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        processor_name: &str,
    ) -> Result<&mut Self> {
        self.add_global_store_with_extractor(store, source_name, topic, key_serde, value_serde, processor_name, None)
    }

    /// Like [`add_global_store`](Self::add_global_store), with the timestamp of each record taken by
    /// `extractor` (it sees the value as `Option`: `None` is a tombstone). A record whose extracted
    /// timestamp is negative is not stored, as a stream task drops it (logged and counted).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::store::Stores;
    /// use kstreams_streams::topology::{TimestampExtractor, Topology};
    ///
    /// let mut topology = Topology::new();
    /// let store = Stores::key_value("rates", Serdes::string(), Serdes::i64());
    /// // The value is the event time; a tombstone keeps the record's timestamp.
    /// let extractor = |_: &String, v: &Option<i64>, ts: i64, _pt: i64| v.unwrap_or(ts);
    /// topology
    ///     .add_global_store_with_extractor(store, "src", "rates", Serdes::string(), Serdes::i64(), "update", Some(Arc::new(extractor)))
    ///     .unwrap();
    /// assert_eq!(topology.global_stores().len(), 1);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn add_global_store_with_extractor<K: Data, V: Data>(
        &mut self,
        store: StoreBuilder,
        source_name: &str,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        processor_name: &str,
        extractor: Option<Arc<dyn TimestampExtractor<K, Option<V>>>>,
    ) -> Result<&mut Self> {
        self.check_new_name(source_name)?;
        self.check_new_name(processor_name)?;
        if source_name == processor_name {
            return Err(StreamsError::Topology(format!(
                "global store `{}`: its source and processor need different names, both are `{source_name}`",
                store.spec().name
            )));
        }
        if topic.is_empty() {
            return Err(StreamsError::Topology(format!("global store `{}` needs a topic", store.spec().name)));
        }
        self.check_unread_topic(topic)?;
        let name = store.spec().name.clone();
        if self.has_store(&name) {
            return Err(StreamsError::Topology(format!("a store named `{name}` exists already")));
        }
        if store.spec().kind != StoreKind::KeyValue {
            return Err(StreamsError::Topology(format!(
                "global store `{name}` must be a key-value store (Stores::key_value)"
            )));
        }
        let source: Arc<dyn RawSource> =
            Arc::new(TypedSource { key_serde, value_serde: Serdes::nullable(value_serde), extractor });
        self.global.push(GlobalStoreDef {
            store: store.with_logging_disabled().with_caching_disabled(),
            topic: topic.to_string(),
            source_name: source_name.to_string(),
            processor_name: processor_name.to_string(),
            source,
        });
        Ok(self)
    }

    /// The global stores, with their sub-topology numbers.
    pub fn global_stores(&self) -> Vec<GlobalStore> {
        let ids = self.grouping().global_ids;
        self.global
            .iter()
            .zip(ids)
            .map(|(g, id)| GlobalStore {
                id,
                store: g.name().to_string(),
                topic: g.topic.clone(),
                source_name: g.source_name.clone(),
                processor_name: g.processor_name.clone(),
            })
            .collect()
    }

    /// Whether `name` is a global store.
    pub(crate) fn is_global_store(&self, name: &str) -> bool {
        self.global.iter().any(|g| g.name() == name)
    }

    /// Whether a store (of a task, or global) is named `name`.
    pub(crate) fn has_store(&self, name: &str) -> bool {
        self.stores.iter().any(|(b, _)| b.spec().name == name) || self.is_global_store(name)
    }

    /// Fails when a source or a global store reads `topic` already: a topic has one reader.
    pub(crate) fn check_unread_topic(&self, topic: &str) -> Result<()> {
        let source = self.nodes.iter().find(|n| match &n.kind {
            NodeKind::Source { topics, .. } => topics.iter().any(|t| t == topic),
            _ => false,
        });
        let reader = match source {
            Some(node) => format!("source `{}`", node.name),
            None => match self.global.iter().find(|g| g.topic == topic) {
                Some(g) => format!("global store `{}`", g.name()),
                None => return Ok(()),
            },
        };
        Err(StreamsError::Topology(format!(
            "topic `{topic}` is read by {reader} already; a topic can have only one source"
        )))
    }
}
