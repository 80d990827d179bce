//! [`KTable`]: a changelog stream read as the latest value per key.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::dsl::builder::BuilderInner;
use crate::dsl::functions::ValueMapperWithKey;

use crate::dsl::config::Materialized;
use crate::dsl::kstream::{source_topics, KStream};
use crate::dsl::ops::{TableMap, TableSource, TableToStream};

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
        let mut inner = builder.borrow_mut();
        let mut store_builder = Stores::key_value(&store, key_serde.clone(), value_serde.clone());
        store_builder = configure(store_builder, &materialized);
        let supplier_store = store.clone();
        let result = inner
            .topology
            .add_processor(
                &name,
                move || TableSource::<K, V> { store: supplier_store.clone(), _types: PhantomData },
                &[parent],
            )
            .and_then(|t| t.add_state_store(store_builder, &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KTable::new(builder, name, Some(store), Some(key_serde), Some(value_serde))
    }

    /// A table of the latest values of `stream` (values of `None` delete).
    pub(crate) fn from_stream(
        stream: &KStream<K, Option<V>>,
        prefix: &str,
        materialized: Materialized<K, V>,
        key_serde: Option<SharedSerde<K>>,
        value_serde: Option<SharedSerde<V>>,
    ) -> Self {
        let mut inner = stream.builder.borrow_mut();
        let name = inner.new_name(prefix);
        let store =
            materialized.store_name.clone().unwrap_or_else(|| inner.new_store_name(&format!("{prefix}STATE-STORE-")));
        let ks = inner.serde(materialized.key_serde.clone(), key_serde.as_ref(), &format!("key of table `{name}`"));
        let vs =
            inner.serde(materialized.value_serde.clone(), value_serde.as_ref(), &format!("value of table `{name}`"));
        drop(inner);
        Self::from_source(stream.builder.clone(), &stream.node, name, store, materialized, ks, vs)
    }

    fn map_table<VR: Data>(
        &self,
        prefix: &str,
        f: ValueMapperWithKey<K, V, VR>,
        materialized: Option<Materialized<K, VR>>,
        value_serde: Option<SharedSerde<VR>>,
    ) -> KTable<K, VR> {
        let mut inner = self.builder.borrow_mut();
        let name = inner.new_name(prefix);
        let mut store = None;
        let mut store_builder = None;
        let mut vs = value_serde;
        if let Some(m) = materialized {
            let store_name =
                m.store_name.clone().unwrap_or_else(|| inner.new_store_name(&format!("{prefix}STATE-STORE-")));
            let ks = inner.serde(m.key_serde.clone(), self.key_serde.as_ref(), &format!("key of table `{name}`"));
            let v = inner.serde(m.value_serde.clone(), vs.as_ref(), &format!("value of table `{name}`"));
            store_builder = Some(configure(Stores::key_value(&store_name, ks, v.clone()), &m));
            vs = Some(v);
            store = Some(store_name);
        }
        let supplier_store = store.clone();
        let mut result = inner
            .topology
            .add_processor(&name, move || TableMap { f: f.clone(), store: supplier_store.clone() }, &[&self.node])
            .map(|_| ());
        if let Some(b) = store_builder {
            result = result.and_then(|_| inner.topology.add_state_store(b, &[&name]).map(|_| ()));
        }
        inner.check(result);
        drop(inner);
        KTable::new(self.builder.clone(), name, store, self.key_serde.clone(), vs)
    }

    /// Keeps the rows for which `predicate` holds (a row that stops matching is deleted downstream).
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        let f = Arc::new(move |k: &K, v: V| if predicate(k, &v) { Some(v) } else { None });
        self.map_table("KTABLE-FILTER-", f, None, self.value_serde.clone())
    }

    /// Like [`filter`](Self::filter), materialized in a store.
    pub fn filter_materialized(
        &self,
        predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let f = Arc::new(move |k: &K, v: V| if predicate(k, &v) { Some(v) } else { None });
        self.map_table("KTABLE-FILTER-", f, Some(materialized), self.value_serde.clone())
    }

    /// Drops the rows for which `predicate` holds.
    pub fn filter_not(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        self.filter(move |k, v| !predicate(k, v))
    }

    /// A new value for each row.
    pub fn map_values<VR: Data>(&self, mapper: impl Fn(V) -> VR + Send + Sync + 'static) -> KTable<K, VR> {
        self.map_table("KTABLE-MAPVALUES-", Arc::new(move |_: &K, v: V| Some(mapper(v))), None, None)
    }

    /// Like [`map_values`](Self::map_values), materialized in a store.
    pub fn map_values_materialized<VR: Data>(
        &self,
        mapper: impl Fn(V) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR> {
        self.map_table("KTABLE-MAPVALUES-", Arc::new(move |_: &K, v: V| Some(mapper(v))), Some(materialized), None)
    }

    /// The stream of this table's updates; a delete becomes a `None` value (a tombstone).
    pub fn to_stream(&self) -> KStream<K, Option<V>> {
        let mut inner = self.builder.borrow_mut();
        let name = inner.new_name("KTABLE-TOSTREAM-");
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
                move || TableMap { f: identity.clone(), store: supplier_store.clone() },
                &[&self.node],
            )
            .and_then(|t| t.add_state_store(Stores::key_value(&store, ks, vs), &[&name]))
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
