//! [`StreamsBuilder`]: where a DSL topology starts.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::dsl::config::{Consumed, Materialized};
use crate::dsl::kstream::KStream;
use crate::dsl::ktable::KTable;
use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::record::Data;
use crate::serde::{Serde, SerdeError, Serdes, SharedSerde};
use crate::store::StoreBuilder;
use crate::topology::Topology;

/// Builds a topology with the DSL. Operators never fail on the spot: mistakes (a missing serde, a
/// duplicate name) are collected and reported together by [`build`](Self::build).
///
/// Serdes travel with a stream; where an operator changes a type and no serde is given, the
/// builder's default for that type is used: `String`, `Vec<u8>`, `()`, `i16`, `i32`, `i64`, `f32`,
/// `f64` and `Option`s of them have defaults, and [`default_serde`](Self::default_serde) adds more.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("words", Consumed::with(Serdes::string(), Serdes::string()))
///     .map_values(|w: String| w.len() as i64)
///     .to("lengths", Produced::default()); // i64 values: the builder's default serde
/// let topology = builder.build().unwrap();
/// assert_eq!(topology.subtopologies()[0].source_topics, ["words"]);
/// ```
#[derive(Clone)]
pub struct StreamsBuilder {
    pub(crate) inner: Rc<RefCell<BuilderInner>>,
}

pub(crate) struct BuilderInner {
    pub topology: Topology,
    next_index: usize,
    errors: Vec<String>,
    /// Repartition topics made so far: topic → (the node writing it, the source reading it).
    pub repartitions: HashMap<String, (String, String)>,
    defaults: HashMap<TypeId, Box<dyn Any>>,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        let mut inner = BuilderInner {
            topology: Topology::new(),
            next_index: 0,
            errors: Vec::new(),
            repartitions: HashMap::new(),
            defaults: HashMap::new(),
        };
        inner.register_with_option(Serdes::string());
        inner.register_with_option(Serdes::bytes());
        inner.register_with_option(Serdes::i16());
        inner.register_with_option(Serdes::i32());
        inner.register_with_option(Serdes::i64());
        inner.register_with_option(Serdes::f32());
        inner.register_with_option(Serdes::f64());
        inner.register(Serdes::unit());
        StreamsBuilder { inner: Rc::new(RefCell::new(inner)) }
    }

    /// Uses `serde` wherever a `T` needs one and none was given.
    pub fn default_serde<T: Data>(&self, serde: SharedSerde<T>) -> &Self {
        self.inner.borrow_mut().register(serde);
        self
    }

    /// A stream of the records of `topic`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V> {
        self.stream_from(&[topic], consumed)
    }

    /// A stream of the records of several topics.
    pub fn stream_from<K: Data, V: Data>(&self, topics: &[&str], consumed: Consumed<K, V>) -> KStream<K, V> {
        let mut inner = self.inner.borrow_mut();
        let name = inner.name_or_new(consumed.name.as_deref(), "KSTREAM-SOURCE-");
        let key_serde = inner.serde(consumed.key_serde, None, &format!("key of source `{name}`"));
        let value_serde = inner.serde(consumed.value_serde, None, &format!("value of source `{name}`"));
        let result = inner
            .topology
            .add_source_with_extractor(&name, topics, key_serde.clone(), value_serde.clone(), consumed.extractor)
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KStream::new(self.inner.clone(), name, Some(key_serde), Some(value_serde), false)
    }

    /// A table of the latest value per key in `topic`: a record upserts its key, a null value (a
    /// tombstone) deletes it. The table is materialized in a store named by `materialized` (or a
    /// generated name), which joins and interactive queries read.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let mut inner = self.inner.borrow_mut();
        let (store, key_serde, value_serde) =
            inner.table_store_and_serdes("table", topic, (consumed.key_serde, consumed.value_serde), &materialized);
        let (source, name) = inner.table_source_names(consumed.name.as_deref());
        let extractor = super::config::table_extractor(consumed.extractor);
        let result = inner
            .topology
            .add_source_with_extractor(
                &source,
                &[topic],
                key_serde.clone(),
                Serdes::nullable(value_serde.clone()),
                extractor,
            )
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KTable::from_source(self.inner.clone(), &source, name, store, materialized, key_serde, value_serde)
    }

    /// Adds a state store for processors added with [`KStream::process`].
    pub fn add_state_store(&self, builder: StoreBuilder) -> &Self {
        let mut inner = self.inner.borrow_mut();
        let name = builder.spec().name.clone();
        if inner.topology.has_store(&name) {
            inner.errors.push(format!("a store named `{name}` exists already"));
        } else {
            inner.topology.stores.push((builder, Vec::new()));
        }
        self
    }

    /// Checks the topology and returns it; reports every mistake made while building.
    pub fn build(&self) -> Result<Topology> {
        let mut inner = self.inner.borrow_mut();
        if !inner.errors.is_empty() {
            return Err(StreamsError::Topology(inner.errors.join("; ")));
        }
        let topology = std::mem::take(&mut inner.topology);
        topology.validate()?;
        Ok(topology)
    }
}

impl BuilderInner {
    /// A generated processor name: `<prefix><10-digit index>`, as Kafka Streams generates them.
    pub fn new_name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}{:010}", self.next_index);
        self.next_index += 1;
        name
    }

    /// The name of an operator's processor: the given one, else a generated one. As in Kafka Streams
    /// (`NamedInternal.orElseGenerateWithPrefix`), a given name still consumes an index, so that
    /// naming one operator does not rename the others; an illegal given name is reported by `build`.
    pub fn name_or_new(&mut self, named: Option<&str>, prefix: &str) -> String {
        let generated = self.new_name(prefix);
        match named {
            Some(name) => {
                if let Err(e) = crate::dsl::config::Named::validate(name) {
                    self.errors.push(e);
                }
                name.to_string()
            }
            None => generated,
        }
    }

    /// The names of a table's source node and its table-source processor: `<name>-source` and
    /// `<name>` for a `Consumed` named `<name>`, else generated; each consumes an index, as in Kafka
    /// Streams.
    /// The store name and serdes of a table read from `topic` (`kind`: "table", "global table"):
    /// the store is `materialized`'s or a generated one; serdes come from `consumed`, else
    /// `materialized`, else the defaults.
    pub fn table_store_and_serdes<K: Data, V: Data>(
        &mut self,
        kind: &str,
        topic: &str,
        consumed: (Option<SharedSerde<K>>, Option<SharedSerde<V>>),
        materialized: &Materialized<K, V>,
    ) -> (String, SharedSerde<K>, SharedSerde<V>) {
        let store = match &materialized.store_name {
            Some(s) => s.clone(),
            None => self.new_store_name(&format!("{topic}-STATE-STORE-")),
        };
        let key_serde = self.serde(
            consumed.0.or_else(|| materialized.key_serde.clone()),
            None,
            &format!("key of {kind} `{topic}`"),
        );
        let value_serde = self.serde(
            consumed.1.or_else(|| materialized.value_serde.clone()),
            None,
            &format!("value of {kind} `{topic}`"),
        );
        (store, key_serde, value_serde)
    }

    pub fn table_source_names(&mut self, named: Option<&str>) -> (String, String) {
        let source = self.name_or_new(named.map(|n| format!("{n}-source")).as_deref(), "KSTREAM-SOURCE-");
        let processor = self.name_or_new(named, "KTABLE-SOURCE-");
        (source, processor)
    }

    /// A generated store name (takes an index like a processor name).
    pub fn new_store_name(&mut self, prefix: &str) -> String {
        self.new_name(prefix)
    }

    /// Records an error to report from `build`.
    pub fn check(&mut self, result: Result<()>) {
        if let Err(e) = result {
            self.errors.push(e.to_string());
        }
    }

    fn register<T: Data>(&mut self, serde: SharedSerde<T>) {
        self.defaults.insert(TypeId::of::<T>(), Box::new(serde));
    }

    fn register_with_option<T: Data>(&mut self, serde: SharedSerde<T>) {
        self.register(Serdes::nullable(serde.clone()));
        self.register(serde);
    }

    /// The serde to use: the one given, else the inherited one, else the default for `T`. Without any,
    /// records an error naming `what` and returns a serde that always fails.
    pub fn serde<T: Data>(
        &mut self,
        given: Option<SharedSerde<T>>,
        inherited: Option<&SharedSerde<T>>,
        what: &str,
    ) -> SharedSerde<T> {
        if let Some(s) = given.or_else(|| inherited.cloned()) {
            return s;
        }
        if let Some(s) = self.defaults.get(&TypeId::of::<T>()).and_then(|b| b.downcast_ref::<SharedSerde<T>>()) {
            return s.clone();
        }
        self.errors.push(format!(
            "no serde for the {what} (type {}): pass one (Produced/Grouped/Materialized::with) or register a default \
             with StreamsBuilder::default_serde",
            std::any::type_name::<T>()
        ));
        Arc::new(MissingSerde)
    }
}

/// Stands in for a serde that was not given; `build` fails before it could be used.
struct MissingSerde;

impl<T> Serde<T> for MissingSerde {
    fn serialize(&self, topic: &str, _: &Headers, _: &T) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        Err(SerdeError::Encode { topic: topic.into(), serde: "missing", detail: "no serde was configured".into() })
    }
    fn deserialize(&self, topic: &str, _: &Headers, _: Option<&[u8]>) -> std::result::Result<T, SerdeError> {
        Err(SerdeError::Malformed { topic: topic.into(), serde: "missing", detail: "no serde was configured".into() })
    }
}
