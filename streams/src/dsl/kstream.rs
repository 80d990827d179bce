//! [`KStream`]: an unbounded stream of independent records.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::dsl::builder::BuilderInner;
use crate::dsl::config::{Branched, Grouped, Joined, Materialized, Named, Produced, Repartitioned};
use crate::dsl::functions::Predicate;
use crate::dsl::grouped::KGroupedStream;
use crate::dsl::ktable::KTable;
use crate::dsl::ops::{DropNullKeys, Emit, Stateless, StreamTableJoin};
use crate::processor::ProcessorSupplier;
use crate::record::{Data, Record};
use crate::serde::SharedSerde;
use crate::topology::{InternalTopic, InternalTopicKind, TopicNameExtractor};

/// A stream of records, each an independent event. Built by [`StreamsBuilder`](super::StreamsBuilder).
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder.stream("orders", Consumed::with(Serdes::string(), Serdes::i64()))
///     .filter(|_, amount| *amount > 100)
///     .map_values(|amount| amount * 2)
///     .to("big-orders", Produced::default());
/// assert!(builder.build().is_ok());
/// ```
pub struct KStream<K, V> {
    pub(crate) builder: Rc<RefCell<BuilderInner>>,
    pub(crate) node: String,
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    /// The key changed since the last partitioning: a grouping or join must repartition first.
    pub(crate) repartition_required: bool,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream {
            builder: self.builder.clone(),
            node: self.node.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            repartition_required: self.repartition_required,
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(
        builder: Rc<RefCell<BuilderInner>>,
        node: String,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
        repartition_required: bool,
    ) -> Self {
        KStream { builder, node, key_serde, value_serde, repartition_required }
    }

    /// Adds a processor under this stream's node and returns the stream it produces.
    pub(crate) fn add_processor<KR: Data, VR: Data>(
        &self,
        name: String,
        supplier: impl ProcessorSupplier<K, V, KR, VR>,
        key_serde: Option<SharedSerde<KR>>,
        value_serde: Option<SharedSerde<VR>>,
        key_changed: bool,
    ) -> KStream<KR, VR> {
        let mut inner = self.builder.borrow_mut();
        let result = inner.topology.add_processor(&name, supplier, &[&self.node]).map(|_| ());
        inner.check(result);
        drop(inner);
        KStream::new(self.builder.clone(), name, key_serde, value_serde, self.repartition_required || key_changed)
    }

    fn stateless<KR: Data, VR: Data>(
        &self,
        prefix: &str,
        named: Option<Named>,
        f: impl Fn(Record<K, V>) -> Emit<KR, VR> + Send + Sync + 'static,
        key_serde: Option<SharedSerde<KR>>,
        value_serde: Option<SharedSerde<VR>>,
        key_changed: bool,
    ) -> KStream<KR, VR> {
        let name = self.builder.borrow_mut().name_or_new(named.as_ref().map(Named::name), prefix);
        self.add_processor(name, Stateless::supplier(f), key_serde, value_serde, key_changed)
    }

    /// Keeps the records for which `predicate` holds.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.filter_as(predicate, None)
    }

    /// Like [`filter`](Self::filter), in a processor named `named`.
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Named, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// let builder = StreamsBuilder::new();
    /// let big = builder
    ///     .stream("orders", Consumed::with(Serdes::string(), Serdes::i64()))
    ///     .filter_named(|_, amount| *amount > 100, Named::as_("only-big"));
    /// # let _ = big;
    /// assert!(builder.build().unwrap().describe().to_string().contains("Processor: only-big"));
    /// ```
    pub fn filter_named(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, V> {
        self.filter_as(predicate, Some(named))
    }

    fn filter_as(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        named: Option<Named>,
    ) -> KStream<K, V> {
        self.stateless(
            "KSTREAM-FILTER-",
            named,
            move |r| if predicate(&r.key, &r.value) { Emit::One(r) } else { Emit::None },
            self.key_serde.clone(),
            self.value_serde.clone(),
            false,
        )
    }

    /// Drops the records for which `predicate` holds.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.filter_as(move |k, v| !predicate(k, v), None)
    }

    /// Like [`filter_not`](Self::filter_not), in a processor named `named`.
    pub fn filter_not_named(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, V> {
        self.filter_as(move |k, v| !predicate(k, v), Some(named))
    }

    /// A new value for each record; the key (and so the partitioning) stays.
    pub fn map_values<VR: Data>(&self, mapper: impl Fn(V) -> VR + Send + Sync + 'static) -> KStream<K, VR> {
        self.map_values_as(move |_, v| mapper(v), None)
    }

    /// Like [`map_values`](Self::map_values), in a processor named `named`.
    pub fn map_values_named<VR: Data>(
        &self,
        mapper: impl Fn(V) -> VR + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, VR> {
        self.map_values_as(move |_, v| mapper(v), Some(named))
    }

    /// A new value for each record, computed from key and value.
    pub fn map_values_with_key<VR: Data>(
        &self,
        mapper: impl Fn(&K, V) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.map_values_as(mapper, None)
    }

    /// Like [`map_values_with_key`](Self::map_values_with_key), in a processor named `named`.
    pub fn map_values_with_key_named<VR: Data>(
        &self,
        mapper: impl Fn(&K, V) -> VR + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, VR> {
        self.map_values_as(mapper, Some(named))
    }

    fn map_values_as<VR: Data>(
        &self,
        mapper: impl Fn(&K, V) -> VR + Send + Sync + 'static,
        named: Option<Named>,
    ) -> KStream<K, VR> {
        self.stateless(
            "KSTREAM-MAPVALUES-",
            named,
            move |r| {
                let value = mapper(&r.key, r.value);
                Emit::One(Record { key: r.key, value, timestamp: r.timestamp, headers: r.headers })
            },
            self.key_serde.clone(),
            None,
            false,
        )
    }

    /// A new key and value for each record (marks the stream for repartitioning).
    pub fn map<KR: Data, VR: Data>(
        &self,
        mapper: impl Fn(K, V) -> (KR, VR) + Send + Sync + 'static,
    ) -> KStream<KR, VR> {
        self.map_as(mapper, None)
    }

    /// Like [`map`](Self::map), in a processor named `named`.
    pub fn map_named<KR: Data, VR: Data>(
        &self,
        mapper: impl Fn(K, V) -> (KR, VR) + Send + Sync + 'static,
        named: Named,
    ) -> KStream<KR, VR> {
        self.map_as(mapper, Some(named))
    }

    fn map_as<KR: Data, VR: Data>(
        &self,
        mapper: impl Fn(K, V) -> (KR, VR) + Send + Sync + 'static,
        named: Option<Named>,
    ) -> KStream<KR, VR> {
        self.stateless(
            "KSTREAM-MAP-",
            named,
            move |r| {
                let (key, value) = mapper(r.key, r.value);
                Emit::One(Record { key, value, timestamp: r.timestamp, headers: r.headers })
            },
            None,
            None,
            true,
        )
    }

    /// Zero or more records for each record (marks the stream for repartitioning).
    pub fn flat_map<KR: Data, VR: Data, I>(&self, mapper: impl Fn(K, V) -> I + Send + Sync + 'static) -> KStream<KR, VR>
    where
        I: IntoIterator<Item = (KR, VR)>,
    {
        self.flat_map_as(mapper, None)
    }

    /// Like [`flat_map`](Self::flat_map), in a processor named `named`.
    pub fn flat_map_named<KR: Data, VR: Data, I>(
        &self,
        mapper: impl Fn(K, V) -> I + Send + Sync + 'static,
        named: Named,
    ) -> KStream<KR, VR>
    where
        I: IntoIterator<Item = (KR, VR)>,
    {
        self.flat_map_as(mapper, Some(named))
    }

    fn flat_map_as<KR: Data, VR: Data, I>(
        &self,
        mapper: impl Fn(K, V) -> I + Send + Sync + 'static,
        named: Option<Named>,
    ) -> KStream<KR, VR>
    where
        I: IntoIterator<Item = (KR, VR)>,
    {
        self.stateless(
            "KSTREAM-FLATMAP-",
            named,
            move |r| {
                let (ts, headers) = (r.timestamp, r.headers);
                Emit::Many(
                    mapper(r.key, r.value)
                        .into_iter()
                        .map(|(key, value)| Record { key, value, timestamp: ts, headers: headers.clone() })
                        .collect(),
                )
            },
            None,
            None,
            true,
        )
    }

    /// Zero or more values for each record, under the same key.
    pub fn flat_map_values<VR: Data, I>(&self, mapper: impl Fn(V) -> I + Send + Sync + 'static) -> KStream<K, VR>
    where
        I: IntoIterator<Item = VR>,
    {
        self.flat_map_values_as(mapper, None)
    }

    /// Like [`flat_map_values`](Self::flat_map_values), in a processor named `named`.
    pub fn flat_map_values_named<VR: Data, I>(
        &self,
        mapper: impl Fn(V) -> I + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, VR>
    where
        I: IntoIterator<Item = VR>,
    {
        self.flat_map_values_as(mapper, Some(named))
    }

    fn flat_map_values_as<VR: Data, I>(
        &self,
        mapper: impl Fn(V) -> I + Send + Sync + 'static,
        named: Option<Named>,
    ) -> KStream<K, VR>
    where
        I: IntoIterator<Item = VR>,
    {
        self.stateless(
            "KSTREAM-FLATMAPVALUES-",
            named,
            move |r| {
                let (key, ts, headers) = (r.key, r.timestamp, r.headers);
                Emit::Many(
                    mapper(r.value)
                        .into_iter()
                        .map(|value| Record { key: key.clone(), value, timestamp: ts, headers: headers.clone() })
                        .collect(),
                )
            },
            self.key_serde.clone(),
            None,
            false,
        )
    }

    /// A new key for each record (marks the stream for repartitioning).
    pub fn select_key<KR: Data>(&self, mapper: impl Fn(&K, &V) -> KR + Send + Sync + 'static) -> KStream<KR, V> {
        self.select_key_as(mapper, None)
    }

    /// Like [`select_key`](Self::select_key), in a processor named `named`.
    pub fn select_key_named<KR: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> KR + Send + Sync + 'static,
        named: Named,
    ) -> KStream<KR, V> {
        self.select_key_as(mapper, Some(named))
    }

    fn select_key_as<KR: Data>(
        &self,
        mapper: impl Fn(&K, &V) -> KR + Send + Sync + 'static,
        named: Option<Named>,
    ) -> KStream<KR, V> {
        self.stateless(
            "KSTREAM-KEY-SELECT-",
            named,
            move |r| {
                let key = mapper(&r.key, &r.value);
                Emit::One(Record { key, value: r.value, timestamp: r.timestamp, headers: r.headers })
            },
            None,
            self.value_serde.clone(),
            true,
        )
    }

    /// Calls `action` on each record and passes it on unchanged.
    pub fn peek(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.peek_as(action, None)
    }

    /// Like [`peek`](Self::peek), in a processor named `named`.
    pub fn peek_named(&self, action: impl Fn(&K, &V) + Send + Sync + 'static, named: Named) -> KStream<K, V> {
        self.peek_as(action, Some(named))
    }

    fn peek_as(&self, action: impl Fn(&K, &V) + Send + Sync + 'static, named: Option<Named>) -> KStream<K, V> {
        self.stateless(
            "KSTREAM-PEEK-",
            named,
            move |r| {
                action(&r.key, &r.value);
                Emit::One(r)
            },
            self.key_serde.clone(),
            self.value_serde.clone(),
            false,
        )
    }

    /// Calls `action` on each record; the stream ends here.
    pub fn foreach(&self, action: impl Fn(&K, &V) + Send + Sync + 'static) {
        self.foreach_as(action, None)
    }

    /// Like [`foreach`](Self::foreach), in a processor named `named`.
    pub fn foreach_named(&self, action: impl Fn(&K, &V) + Send + Sync + 'static, named: Named) {
        self.foreach_as(action, Some(named))
    }

    fn foreach_as(&self, action: impl Fn(&K, &V) + Send + Sync + 'static, named: Option<Named>) {
        let _ = self.stateless::<K, V>(
            "KSTREAM-FOREACH-",
            named,
            move |r| {
                action(&r.key, &r.value);
                Emit::None
            },
            None,
            None,
            false,
        );
    }

    /// One stream of the records of both streams.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        self.merge_as(other, None)
    }

    /// Like [`merge`](Self::merge), in a processor named `named`.
    pub fn merge_named(&self, other: &KStream<K, V>, named: Named) -> KStream<K, V> {
        self.merge_as(other, Some(named))
    }

    fn merge_as(&self, other: &KStream<K, V>, named: Option<Named>) -> KStream<K, V> {
        let mut inner = self.builder.borrow_mut();
        let name = inner.name_or_new(named.as_ref().map(Named::name), "KSTREAM-MERGE-");
        let result = inner
            .topology
            .add_processor(&name, Stateless::<K, V, K, V>::supplier(Emit::One), &[&self.node, &other.node])
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KStream::new(
            self.builder.clone(),
            name,
            self.key_serde.clone().or_else(|| other.key_serde.clone()),
            self.value_serde.clone().or_else(|| other.value_serde.clone()),
            self.repartition_required || other.repartition_required,
        )
    }

    /// Splits the stream by predicates: each record goes to the first branch whose predicate holds.
    pub fn split(&self) -> BranchedKStream<K, V> {
        self.split_as(None)
    }

    /// Splits the stream with the split processor named `named`; branch names start with it.
    ///
    /// ```
    /// use kstreams_streams::dsl::{Branched, Consumed, Named, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// let builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream("orders", Consumed::with(Serdes::string(), Serdes::i64()))
    ///     .split_named(Named::as_("size-"))
    ///     .branch(|_, amount| *amount > 100, Branched::as_("big"))
    ///     .default_branch(Branched::as_("small"));
    /// assert_eq!(branches.keys().collect::<Vec<_>>(), ["size-big", "size-small"]);
    /// ```
    pub fn split_named(&self, named: Named) -> BranchedKStream<K, V> {
        self.split_as(Some(named))
    }

    fn split_as(&self, named: Option<Named>) -> BranchedKStream<K, V> {
        let splitter = self.builder.borrow_mut().name_or_new(named.as_ref().map(Named::name), "KSTREAM-BRANCH-");
        BranchedKStream { stream: self.clone(), splitter, branches: Vec::new() }
    }

    /// Writes every record to `topic`.
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        self.to_extractor(TopicNameExtractor::Static(topic.to_string()), produced);
    }

    /// Writes each record to the topic `topic_for` chooses.
    pub fn to_dynamic(
        &self,
        topic_for: impl Fn(&Record<K, V>) -> String + Send + Sync + 'static,
        produced: Produced<K, V>,
    ) {
        self.to_extractor(TopicNameExtractor::Dynamic(Arc::new(topic_for)), produced);
    }

    fn to_extractor(&self, topic: TopicNameExtractor<K, V>, produced: Produced<K, V>) {
        let mut inner = self.builder.borrow_mut();
        let name = inner.name_or_new(produced.name.as_deref(), "KSTREAM-SINK-");
        let key_serde = inner.serde(produced.key_serde, self.key_serde.as_ref(), &format!("key of sink `{name}`"));
        let value_serde =
            inner.serde(produced.value_serde, self.value_serde.as_ref(), &format!("value of sink `{name}`"));
        let result = inner
            .topology
            .add_sink_with(&name, topic, key_serde, value_serde, produced.partitioner, &[&self.node])
            .map(|_| ());
        inner.check(result);
    }

    /// Runs a Processor API processor on each record; `stores` are the state stores it uses (added
    /// with [`StreamsBuilder::add_state_store`](super::StreamsBuilder::add_state_store)).
    pub fn process<KR: Data, VR: Data>(
        &self,
        supplier: impl ProcessorSupplier<K, V, KR, VR>,
        stores: &[&str],
    ) -> KStream<KR, VR> {
        let name = self.builder.borrow_mut().new_name("KSTREAM-PROCESSOR-");
        self.process_as(supplier, name, stores)
    }

    /// Like [`process`](Self::process), in a processor named `named`. As in Kafka Streams, a named
    /// `process` consumes no index of the generated names.
    pub fn process_named<KR: Data, VR: Data>(
        &self,
        supplier: impl ProcessorSupplier<K, V, KR, VR>,
        named: Named,
        stores: &[&str],
    ) -> KStream<KR, VR> {
        if let Err(e) = Named::validate(named.name()) {
            self.builder.borrow_mut().check(Err(crate::error::StreamsError::Topology(e)));
        }
        self.process_as(supplier, named.0, stores)
    }

    fn process_as<KR: Data, VR: Data>(
        &self,
        supplier: impl ProcessorSupplier<K, V, KR, VR>,
        name: String,
        stores: &[&str],
    ) -> KStream<KR, VR> {
        let stream = self.add_processor(name.clone(), supplier, None, None, true);
        let mut inner = self.builder.borrow_mut();
        let result = inner.topology.connect_processor_and_state_stores(&name, stores).map(|_| ());
        inner.check(result);
        stream
    }

    /// Writes the stream through a repartition topic, so that records are partitioned by their
    /// current key.
    pub fn repartition(&self, repartitioned: Repartitioned<K, V>) -> KStream<K, V> {
        let name = match &repartitioned.name {
            Some(n) => n.clone(),
            None => self.builder.borrow_mut().new_name("KSTREAM-REPARTITION-"),
        };
        let key_serde =
            self.builder.borrow_mut().serde(repartitioned.key_serde, self.key_serde.as_ref(), "repartition key");
        let value_serde =
            self.builder.borrow_mut().serde(repartitioned.value_serde, self.value_serde.as_ref(), "repartition value");
        self.through_repartition_topic(
            &name,
            key_serde,
            value_serde,
            repartitioned.partitions,
            repartitioned.partitioner,
        )
    }

    /// Sink → `<prefix>-repartition` → source, with a null-key filter in front, as Kafka Streams
    /// builds it; the returned stream reads the repartition topic.
    pub(crate) fn through_repartition_topic(
        &self,
        prefix: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        partitions: Option<i32>,
        partitioner: Option<Arc<dyn crate::topology::StreamPartitioner<K, V>>>,
    ) -> KStream<K, V> {
        self.through_internal_topic(
            &format!("{prefix}-repartition"),
            key_serde,
            value_serde,
            partitions,
            partitioner,
            true,
        )
    }

    /// Sink → `topic` → source through an internal repartition topic (named without the application
    /// id), optionally behind a filter dropping null keys; the returned stream reads the topic. With a
    /// null key kept, the record goes to a partition the producer picks.
    pub(crate) fn through_internal_topic(
        &self,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        partitions: Option<i32>,
        partitioner: Option<Arc<dyn crate::topology::StreamPartitioner<K, V>>>,
        drop_null_keys: bool,
    ) -> KStream<K, V> {
        let topic = topic.to_string();
        let mut inner = self.builder.borrow_mut();
        let sink = inner.new_name("KSTREAM-SINK-");
        let filter = drop_null_keys.then(|| inner.new_name("KSTREAM-FILTER-"));
        let source = inner.new_name("KSTREAM-SOURCE-");
        // A second join of the same stream through the same topic reads the first one's topic (Kafka
        // Streams reuses its repartition node the same way, after generating the names).
        if let Some((parent, existing)) = inner.repartitions.get(&topic) {
            if *parent == self.node {
                let existing = existing.clone();
                drop(inner);
                return KStream::new(self.builder.clone(), existing, Some(key_serde), Some(value_serde), false);
            }
        }
        inner.repartitions.insert(topic.clone(), (self.node.clone(), source.clone()));
        let mut result = Ok(());
        let mut sink_parent = self.node.clone();
        if let Some(filter) = filter {
            let (ks, topic_for_filter) = (key_serde.clone(), topic.clone());
            let filter_supplier = move || DropNullKeys::<K, V> {
                key_serde: ks.clone(),
                topic: topic_for_filter.clone(),
                _v: PhantomData,
            };
            result = inner.topology.add_processor(&filter, filter_supplier, &[&self.node]).map(|_| ());
            sink_parent = filter;
        }
        let result = result
            .and_then(|_| {
                inner.topology.add_sink_with(
                    &sink,
                    TopicNameExtractor::Static(topic.clone()),
                    key_serde.clone(),
                    value_serde.clone(),
                    partitioner,
                    &[&sink_parent],
                )
            })
            .and_then(|t| t.add_source(&source, &[&topic], key_serde.clone(), value_serde.clone()))
            .map(|_| ());
        inner.check(result);
        inner.topology.add_internal_topic(InternalTopic {
            name: topic,
            kind: InternalTopicKind::Repartition,
            partitions,
            configs: repartition_topic_configs(),
        });
        drop(inner);
        KStream::new(self.builder.clone(), source, Some(key_serde), Some(value_serde), false)
    }

    /// Groups records by their current key for an aggregation.
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream::new(self.clone(), grouped)
    }

    /// Groups records by a new key (a repartition follows).
    pub fn group_by<KR: Data>(
        &self,
        selector: impl Fn(&K, &V) -> KR + Send + Sync + 'static,
        grouped: Grouped<KR, V>,
    ) -> KGroupedStream<KR, V> {
        self.select_key(selector).group_by_key(grouped)
    }

    /// Joins each record with the table's current value for its key; records without a match are
    /// dropped. The table must be materialized (tables from `table()` and aggregations are).
    pub fn join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(V, VT) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |v: V, t: Option<VT>| t.map(|t| joiner(v, t)));
        self.join_table(table, joiner, joined, "KSTREAM-JOIN-")
    }

    /// Joins each record with the table's current value for its key, or `None` without a match.
    pub fn left_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(V, Option<VT>) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |v: V, t: Option<VT>| Some(joiner(v, t)));
        self.join_table(table, joiner, joined, "KSTREAM-LEFTJOIN-")
    }

    fn join_table<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: Arc<dyn Fn(V, Option<VT>) -> Option<VR> + Send + Sync>,
        joined: Joined<K, V, VT>,
        prefix: &str,
    ) -> KStream<K, VR> {
        let stream = if self.repartition_required {
            // As Kafka Streams: the topic is named after the join, else after this stream's node.
            let name = joined.name.clone().unwrap_or_else(|| self.node.clone());
            let ks = self.builder.borrow_mut().serde(joined.key_serde.clone(), self.key_serde.as_ref(), "join key");
            let vs =
                self.builder.borrow_mut().serde(joined.value_serde.clone(), self.value_serde.as_ref(), "join value");
            self.through_repartition_topic(&name, ks, vs, None, None)
        } else {
            self.clone()
        };
        let store = table.materialized_store_with(joined.other_value_serde.clone());
        let name = self.builder.borrow_mut().name_or_new(joined.name.as_deref(), prefix);
        let supplier_store = store.clone();
        let out = stream.add_processor(
            name.clone(),
            move || StreamTableJoin { store: supplier_store.clone(), joiner: joiner.clone(), _k: PhantomData },
            stream.key_serde.clone(),
            None,
            false,
        );
        let mut inner = self.builder.borrow_mut();
        let result = inner.topology.connect_processor_and_state_stores(&name, &[&store]).map(|_| ());
        inner.check(result);
        let topics = [stream.source_topics_of(&inner), table.source_topics(&inner)].concat();
        inner.topology.require_copartitioned(topics);
        out
    }

    /// The topics feeding this stream's node.
    pub(crate) fn source_topics_of(&self, inner: &BuilderInner) -> Vec<String> {
        source_topics(inner, &self.node)
    }

    /// A table of the latest value per key of this stream (repartitioned first if the key changed).
    pub fn to_table(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        KTable::from_stream(self, None, materialized)
    }

    /// Like [`to_table`](Self::to_table), with the table's processor named `named`.
    pub fn to_table_named(&self, named: Named, materialized: Materialized<K, V>) -> KTable<K, V> {
        KTable::from_stream(self, Some(named), materialized)
    }
}

/// Topic configs of repartition topics, as Kafka Streams sets them.
fn repartition_topic_configs() -> BTreeMap<String, String> {
    [("cleanup.policy", "delete"), ("segment.bytes", "52428800"), ("retention.ms", "-1")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The source topics upstream of `node` within its sub-topology.
pub(crate) fn source_topics(inner: &BuilderInner, node: &str) -> Vec<String> {
    let nodes = &inner.topology.nodes;
    let mut topics = Vec::new();
    let mut stack: Vec<usize> = nodes.iter().position(|n| n.name == node).into_iter().collect();
    let mut seen = Vec::new();
    while let Some(i) = stack.pop() {
        if seen.contains(&i) {
            continue;
        }
        seen.push(i);
        if let crate::topology::NodeKind::Source { topics: t, .. } = &nodes[i].kind {
            topics.extend(t.iter().cloned());
        }
        stack.extend(nodes[i].parents.iter().copied());
    }
    topics
}

/// The branches of a split stream; finish with [`default_branch`](Self::default_branch) or
/// [`no_default_branch`](Self::no_default_branch).
///
/// ```
/// use kstreams_streams::dsl::{Branched, Consumed, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let branches = builder
///     .stream("orders", Consumed::with(Serdes::string(), Serdes::i64()))
///     .split() // KSTREAM-BRANCH-0000000001
///     .branch(|_, amount| *amount > 100, Branched::default())
///     .default_branch(Branched::as_("rest"));
/// assert_eq!(branches.keys().collect::<Vec<_>>(), ["KSTREAM-BRANCH-00000000011", "KSTREAM-BRANCH-0000000001rest"]);
/// ```
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    /// The name of the split processor, and the prefix of the branch names.
    splitter: String,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    /// Adds a branch for the records matching `predicate` (and no earlier branch).
    pub fn branch(mut self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static, branched: Branched) -> Self {
        let index = self.branches.len() + 1;
        let name = self.child_name(branched, index);
        self.branches.push((name, Arc::new(predicate)));
        self
    }

    /// Ends the split with a branch for records matching no predicate; returns the branches by name
    /// (the split's name plus the branch name, or its 1-based number; the default branch is `0`).
    pub fn default_branch(mut self, branched: Branched) -> BTreeMap<String, KStream<K, V>> {
        let name = self.child_name(branched, 0);
        self.finish(Some(name))
    }

    /// Ends the split; records matching no predicate are dropped.
    pub fn no_default_branch(self) -> BTreeMap<String, KStream<K, V>> {
        self.finish(None)
    }

    /// `<split name><branch name or index>`; like Kafka Streams, each branch consumes an index.
    fn child_name(&mut self, branched: Branched, index: usize) -> String {
        let name = format!("{}{}", self.splitter, branched.name.unwrap_or_else(|| index.to_string()));
        let _ = self.stream.builder.borrow_mut().new_name(&name);
        name
    }

    fn finish(self, default: Option<String>) -> BTreeMap<String, KStream<K, V>> {
        let split = self.splitter.clone();
        let predicates: Vec<Predicate<K, V>> = self.branches.iter().map(|(_, p)| p.clone()).collect();
        let mut children: Vec<String> = self.branches.iter().map(|(n, _)| n.clone()).collect();
        if let Some(d) = default {
            children.push(d);
        }
        let targets = children.clone();
        let has_default = children.len() > predicates.len();
        let splitter = self.stream.add_processor(
            split,
            move || BranchProcessor { predicates: predicates.clone(), targets: targets.clone(), has_default },
            self.stream.key_serde.clone(),
            self.stream.value_serde.clone(),
            false,
        );
        let mut result = BTreeMap::new();
        for child in children {
            let stream = splitter.add_processor(
                child.clone(),
                Stateless::<K, V, K, V>::supplier(Emit::One),
                self.stream.key_serde.clone(),
                self.stream.value_serde.clone(),
                false,
            );
            let mut s = stream;
            s.repartition_required = self.stream.repartition_required;
            result.insert(child, s);
        }
        result
    }
}

struct BranchProcessor<K, V> {
    predicates: Vec<Predicate<K, V>>,
    targets: Vec<String>,
    has_default: bool,
}

impl<K: Data, V: Data> crate::processor::Processor<K, V> for BranchProcessor<K, V> {
    fn process(
        &mut self,
        ctx: &mut crate::processor::ProcessorContext<'_, K, V>,
        record: Record<K, V>,
    ) -> crate::error::Result<()> {
        for (i, p) in self.predicates.iter().enumerate() {
            if p(&record.key, &record.value) {
                return ctx.forward_to(&self.targets[i], record);
            }
        }
        match self.targets.last() {
            Some(default) if self.has_default => ctx.forward_to(default, record),
            _ => Ok(()),
        }
    }
}
