//! [`KTable`]: a changelog stream read as the latest value per key.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::dsl::builder::BuilderInner;
use crate::dsl::functions::ValueMapperWithKey;

use crate::dsl::change::Change;
use crate::dsl::config::{Materialized, Named};
use crate::dsl::kstream::{source_topics, KStream};
use crate::dsl::ops::{StreamTableSource, TableMap, TableSource, TableToStream};
use crate::processor::ProcessorSupplier;

use crate::record::Data;
use crate::serde::SharedSerde;
use crate::store::Stores;

/// A table: the latest value per key, updated by a changelog stream. Each update flows downstream as
/// a [`Change`](crate::dsl::Change) (new and old value).
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let stock = builder.table("stock", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("stock-store"));
/// stock.filter(|_, qty| *qty < 10).to_stream().to("low-stock", Produced::default());
/// assert!(builder.build().is_ok());
/// ```
pub struct KTable<K, V> {
    pub(crate) builder: Rc<RefCell<BuilderInner>>,
    pub(crate) node: String,
    /// The key-value store holding this table, if it is materialized.
    pub(crate) store: RefCell<Option<String>>,
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    /// Set on tables from windowed aggregations: how to buffer their keys and when windows close.
    pub(crate) window: Option<WindowInfo<K>>,
}

/// What `suppress` needs to know of a windowed table.
pub(crate) struct WindowInfo<K> {
    /// A serde for the windowed key that keeps both window bounds.
    pub key_serde: SharedSerde<K>,
    /// The windows' grace period.
    pub grace_ms: i64,
}

impl<K> Clone for WindowInfo<K> {
    fn clone(&self) -> Self {
        WindowInfo { key_serde: self.key_serde.clone(), grace_ms: self.grace_ms }
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    pub(crate) fn new(
        builder: Rc<RefCell<BuilderInner>>,
        node: String,
        store: Option<String>,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
    ) -> Self {
        KTable { builder, node, store: RefCell::new(store), key_serde, value_serde, window: None }
    }

    /// A table fed by `parent`, which forwards `(K, Option<V>)` upserts and deletes.
    pub(crate) fn from_source(
        builder: Rc<RefCell<BuilderInner>>,
        parent: &str,
        name: String,
        store: String,
        materialized: Materialized<K, V>,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> Self {
        let supplier_store = store.clone();
        let supplier = move || TableSource::<K, V> { store: supplier_store.clone(), _types: PhantomData };
        Self::from_supplier(builder, parent, name, store, materialized, key_serde, value_serde, supplier)
    }

    /// A table whose processor `name` (from `supplier`) writes the store `store` and forwards changes.
    #[allow(clippy::too_many_arguments)]
    fn from_supplier<VI: Data>(
        builder: Rc<RefCell<BuilderInner>>,
        parent: &str,
        name: String,
        store: String,
        materialized: Materialized<K, V>,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        supplier: impl ProcessorSupplier<K, VI, K, Change<V>>,
    ) -> Self {
        let mut inner = builder.borrow_mut();
        let mut store_builder = Stores::timestamped_key_value(&store, key_serde.clone(), value_serde.clone());
        store_builder = configure(store_builder, &materialized);
        let result = inner
            .topology
            .add_processor(&name, supplier, &[parent])
            .and_then(|t| t.add_state_store(store_builder, &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KTable::new(builder, name, Some(store), Some(key_serde), Some(value_serde))
    }

    /// The table of [`KStream::to_table`]: processor `KSTREAM-TOTABLE-…` (or `named`) and store
    /// `KSTREAM-TOTABLE-STATE-STORE-…` (or the materialized name), through a repartition topic named
    /// after the processor when the stream's key changed, in Kafka Streams' order.
    pub(crate) fn from_stream(stream: &KStream<K, V>, named: Option<Named>, materialized: Materialized<K, V>) -> Self {
        let mut inner = stream.builder.borrow_mut();
        let prefix = "KSTREAM-TOTABLE-";
        let name = inner.name_or_new(named.as_ref().map(Named::name), prefix);
        let store =
            materialized.store_name.clone().unwrap_or_else(|| inner.new_store_name(&format!("{prefix}STATE-STORE-")));
        let what = |part: &str| format!("{part} of table `{name}`");
        let ks = inner.serde(materialized.key_serde.clone(), stream.key_serde.as_ref(), &what("key"));
        let vs = inner.serde(materialized.value_serde.clone(), stream.value_serde.as_ref(), &what("value"));
        drop(inner);
        let parent = if stream.repartition_required {
            stream.through_repartition_topic(&name, ks.clone(), vs.clone(), None, None)
        } else {
            stream.clone()
        };
        let supplier_store = store.clone();
        let supplier =
            move || StreamTableSource(TableSource::<K, V> { store: supplier_store.clone(), _types: PhantomData });
        Self::from_supplier(stream.builder.clone(), &parent.node, name, store, materialized, ks, vs, supplier)
    }

    /// A `KTABLE-FILTER-`/`KTABLE-MAPVALUES-` processor, named as Kafka Streams names it: with a
    /// `Materialized` without a store name, an index is consumed before the processor's and the
    /// result is not materialized (its serdes still apply).
    fn map_table<VR: Data>(
        &self,
        prefix: &str,
        named: Option<Named>,
        f: ValueMapperWithKey<K, V, VR>,
        materialized: Option<Materialized<K, VR>>,
        value_serde: Option<SharedSerde<VR>>,
    ) -> KTable<K, VR> {
        let mut inner = self.builder.borrow_mut();
        if matches!(&materialized, Some(m) if m.store_name.is_none()) {
            let _ = inner.new_store_name(&format!("{prefix}STATE-STORE-"));
        }
        let name = inner.name_or_new(named.as_ref().map(Named::name), prefix);
        let mut store = None;
        let mut store_builder = None;
        let mut vs = value_serde;
        let mut ks = self.key_serde.clone();
        if let Some(m) = materialized {
            if m.key_serde.is_some() {
                ks = m.key_serde.clone();
            }
            if m.value_serde.is_some() {
                vs = m.value_serde.clone();
            }
            if let Some(store_name) = m.store_name.clone() {
                let k = inner.serde(ks.clone(), None, &format!("key of table `{name}`"));
                let v = inner.serde(vs.clone(), None, &format!("value of table `{name}`"));
                store_builder = Some(configure(Stores::timestamped_key_value(&store_name, k, v.clone()), &m));
                vs = Some(v);
                store = Some(store_name);
            }
        }
        let supplier_store = store.clone();
        // Kafka Streams' `KTableMapValues` forwards every change, even an empty one (a delete of a
        // key the table did not hold); kstreams' filter drops those (see the README's "Same results
        // as Kafka Streams").
        let skip_empty = prefix == "KTABLE-FILTER-";
        let mut result = inner
            .topology
            .add_processor(
                &name,
                move || TableMap { f: f.clone(), store: supplier_store.clone(), skip_empty },
                &[&self.node],
            )
            .map(|_| ());
        if let Some(b) = store_builder {
            result = result.and_then(|_| inner.topology.add_state_store(b, &[&name]).map(|_| ()));
        }
        inner.check(result);
        drop(inner);
        KTable::new(self.builder.clone(), name, store, ks, vs)
    }

    /// Keeps the rows for which `predicate` holds (a row that stops matching is deleted downstream).
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.map_table("KTABLE-FILTER-", None, keep_if(predicate), None, self.value_serde.clone())
    }

    /// Like [`filter`](Self::filter), in a processor named `named`.
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Materialized, Named, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// let builder = StreamsBuilder::new();
    /// let stock = builder.table("stock", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("stock"));
    /// let low = stock.filter_named(|_, qty| *qty < 10, Named::as_("low-stock"));
    /// # let _ = low;
    /// assert!(builder.build().unwrap().describe().to_string().contains("Processor: low-stock (stores: [])"));
    /// ```
    pub fn filter_named(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        named: Named,
    ) -> KTable<K, V> {
        self.map_table("KTABLE-FILTER-", Some(named), keep_if(predicate), None, self.value_serde.clone())
    }

    /// Like [`filter`](Self::filter), materialized in a store. As in Kafka Streams, only a
    /// `Materialized` with a store name materializes; one without gives only serdes.
    pub fn filter_materialized(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        self.map_table("KTABLE-FILTER-", None, keep_if(predicate), Some(materialized), self.value_serde.clone())
    }

    /// Like [`filter_materialized`](Self::filter_materialized), in a processor named `named`.
    pub fn filter_named_materialized(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        named: Named,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        self.map_table("KTABLE-FILTER-", Some(named), keep_if(predicate), Some(materialized), self.value_serde.clone())
    }

    /// Drops the rows for which `predicate` holds.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// Like [`filter_not`](Self::filter_not), in a processor named `named`.
    pub fn filter_not_named(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        named: Named,
    ) -> KTable<K, V> {
        self.filter_named(move |k, v| !predicate(k, v), named)
    }

    /// A new value for each row.
    pub fn map_values<VR: Data>(&self, mapper: impl Fn(V) -> VR + Send + Sync + 'static) -> KTable<K, VR> {
        self.map_table("KTABLE-MAPVALUES-", None, Arc::new(move |_: &K, v: V| Some(mapper(v))), None, None)
    }

    /// Like [`map_values`](Self::map_values), in a processor named `named`.
    pub fn map_values_named<VR: Data>(
        &self,
        mapper: impl Fn(V) -> VR + Send + Sync + 'static,
        named: Named,
    ) -> KTable<K, VR> {
        self.map_table("KTABLE-MAPVALUES-", Some(named), Arc::new(move |_: &K, v: V| Some(mapper(v))), None, None)
    }

    /// Like [`map_values`](Self::map_values), materialized in a store (only with a store name, as
    /// [`filter_materialized`](Self::filter_materialized)).
    pub fn map_values_materialized<VR: Data>(
        &self,
        mapper: impl Fn(V) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        let f = Arc::new(move |_: &K, v: V| Some(mapper(v)));
        self.map_table("KTABLE-MAPVALUES-", None, f, Some(materialized), None)
    }

    /// Like [`map_values_materialized`](Self::map_values_materialized), in a processor named `named`.
    pub fn map_values_named_materialized<VR: Data>(
        &self,
        mapper: impl Fn(V) -> VR + Send + Sync + 'static,
        named: Named,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        let f = Arc::new(move |_: &K, v: V| Some(mapper(v)));
        self.map_table("KTABLE-MAPVALUES-", Some(named), f, Some(materialized), None)
    }

    /// The stream of this table's updates; a delete becomes a `None` value (a tombstone).
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        self.to_stream_as(None)
    }

    /// Like [`to_stream`](Self::to_stream), in a processor named `named`.
    pub fn to_stream_named(&self, named: Named) -> KStream<K, Option<V>> {
        self.to_stream_as(Some(named))
    }

    fn to_stream_as(&self, named: Option<Named>) -> KStream<K, Option<V>> {
        let mut inner = self.builder.borrow_mut();
        let name = inner.name_or_new(named.as_ref().map(Named::name), "KTABLE-TOSTREAM-");
        let result =
            inner.topology.add_processor(&name, || TableToStream::<K, V>(PhantomData), &[&self.node]).map(|_| ());
        inner.check(result);
        drop(inner);
        let value_serde = self.value_serde.as_ref().map(|s| crate::serde::Serdes::nullable(s.clone()));
        KStream::new(self.builder.clone(), name, self.key_serde.clone(), value_serde, false)
    }

    /// The name of the store holding this table, materializing it first if it is not.
    pub(crate) fn materialized_store(&self) -> String {
        self.materialized_store_with(None)
    }

    /// Like `materialized_store`, with a value serde to use if the table has none.
    pub(crate) fn materialized_store_with(&self, value_serde: Option<SharedSerde<V>>) -> String {
        if let Some(s) = self.store.borrow().clone() {
            return s;
        }
        let mut inner = self.builder.borrow_mut();
        let name = inner.new_name("KTABLE-MATERIALIZE-");
        let store = inner.new_store_name("KTABLE-STATE-STORE-");
        let ks = inner.serde(None, self.key_serde.as_ref(), &format!("key of table `{}`", self.node));
        let vs = inner.serde(value_serde, self.value_serde.as_ref(), &format!("value of table `{}`", self.node));
        let identity = Arc::new(|_: &K, v: V| Some(v));
        let supplier_store = Some(store.clone());
        let result = inner
            .topology
            .add_processor(
                &name,
                move || TableMap { f: identity.clone(), store: supplier_store.clone(), skip_empty: false },
                &[&self.node],
            )
            .and_then(|t| t.add_state_store(Stores::timestamped_key_value(&store, ks, vs), &[&name]))
            .map(|_| ());
        inner.check(result);
        *self.store.borrow_mut() = Some(store.clone());
        store
    }

    /// The source topics upstream of this table.
    pub(crate) fn source_topics(&self, inner: &BuilderInner) -> Vec<String> {
        source_topics(inner, &self.node)
    }
}

/// A table mapper keeping the rows `predicate` holds for.
fn keep_if<K: Data, V: Data>(
    predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
) -> ValueMapperWithKey<K, V, V> {
    Arc::new(move |k: &K, v: V| if predicate(k, &v) { Some(v) } else { None })
}

/// Applies a `Materialized`'s backend, logging and caching to a store builder.
pub(crate) fn configure<K, V>(
    mut builder: crate::store::StoreBuilder,
    m: &Materialized<K, V>,
) -> crate::store::StoreBuilder {
    if m.backend == kstreams_state::Backend::InMemory {
        builder = builder.in_memory();
    }
    if !m.logging {
        builder = builder.with_logging_disabled();
    }
    if m.caching {
        builder = builder.with_caching_enabled();
    }
    builder
}
