//! A topology: sources, processors, sinks and state stores, split into sub-topologies that become
//! tasks.
//!
//! Build one with the DSL ([`StreamsBuilder`](crate::dsl::StreamsBuilder)) or by hand, as in Kafka
//! Streams' Processor API:
//!
//! ```
//! use kstreams_streams::processor::{Processor, ProcessorContext};
//! use kstreams_streams::record::Record;
//! use kstreams_streams::serde::Serdes;
//! use kstreams_streams::topology::Topology;
//!
//! struct Upper;
//! impl Processor<String, String> for Upper {
//!     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> kstreams_streams::error::Result<()> {
//!         let upper = r.value.to_uppercase();
//!         ctx.forward(r.with_value(upper))
//!     }
//! }
//!
//! let mut topology = Topology::new();
//! topology
//!     .add_source("in", &["words"], Serdes::string(), Serdes::string()).unwrap()
//!     .add_processor("upper", || Upper, &["in"]).unwrap()
//!     .add_sink("out", "shouted", Serdes::string(), Serdes::string(), &["upper"]).unwrap();
//! assert!(topology.describe().to_string().contains("Processor: upper (stores: [])"));
//! ```

mod describe;
mod extract;
mod global;

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

pub use describe::TopologyDescription;
pub use extract::{StreamPartitioner, TimestampExtractor, TopicNameExtractor, WallclockTimestampExtractor};
pub use global::GlobalStore;
pub(crate) use global::GlobalStoreDef;

use crate::error::{Result, StreamsError};
use crate::processor::node::{typed_supplier, RawSource, RawSupplier, SinkNode, SourceNode, TypedSource};
use crate::processor::ProcessorSupplier;
use crate::record::Data;
use crate::serde::SharedSerde;
use crate::store::StoreBuilder;

/// The key and value types of records on an edge, checked when the topology is validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DataType {
    id: TypeId,
    name: &'static str,
}

impl DataType {
    pub(crate) fn of<K: 'static, V: 'static>() -> Self {
        DataType { id: TypeId::of::<(K, V)>(), name: std::any::type_name::<(K, V)>() }
    }
}

pub(crate) enum NodeKind {
    Source { topics: Vec<String>, source: Arc<dyn RawSource> },
    Processor,
    Sink { topic: Option<String> },
}

pub(crate) struct NodeDef {
    pub name: String,
    pub kind: NodeKind,
    pub parents: Vec<usize>,
    pub children: Vec<usize>,
    pub stores: Vec<String>,
    pub supplier: RawSupplier,
    pub input: Option<DataType>,
    pub output: Option<DataType>,
}

/// What an internal topic is for.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::topology::InternalTopicKind;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by(|_, v: &String| v.clone(), Grouped::default())
///     .count(Materialized::as_("counts"));
/// let kinds: Vec<InternalTopicKind> = builder.build().unwrap().internal_topics().into_iter().map(|t| t.kind).collect();
/// assert!(kinds.contains(&InternalTopicKind::Repartition) && kinds.contains(&InternalTopicKind::Changelog));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternalTopicKind {
    /// Carries records between sub-topologies after a key change.
    Repartition,
    /// Backs a state store.
    Changelog,
}

/// An internal topic the application creates at start: `<application.id>-<name>`.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by_key(Grouped::default())
///     .count(Materialized::as_("counts"));
/// let topics = builder.build().unwrap().internal_topics();
/// assert_eq!(topics[0].name, "counts-changelog"); // created as `<application.id>-counts-changelog`
/// assert_eq!(topics[0].configs["cleanup.policy"], "compact");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InternalTopic {
    /// The name without the application id prefix.
    pub name: String,
    /// Repartition or changelog.
    pub kind: InternalTopicKind,
    /// A fixed partition count; `None` takes the count of the sub-topology's source topics.
    pub partitions: Option<i32>,
    /// Topic configs (cleanup.policy, retention.ms, …).
    pub configs: BTreeMap<String, String>,
}

/// One connected part of a topology; it runs as one task per input partition.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by(|_, v: &String| v.clone(), Grouped::as_("by-value"))
///     .count(Materialized::as_("counts"));
/// let subs = builder.build().unwrap().subtopologies();
/// assert_eq!(subs.len(), 2, "the repartition topic splits the topology");
/// assert_eq!(subs[1].source_topics, ["by-value-repartition"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubTopology {
    /// Numbered as Kafka Streams numbers them (by source node name).
    pub id: u32,
    /// Node indexes, in the order they were added.
    pub(crate) nodes: Vec<usize>,
    /// The topics its sources read (internal ones without the application id prefix).
    pub source_topics: Vec<String>,
    /// The topics its sinks write to (static ones).
    pub sink_topics: Vec<String>,
    /// Its state stores.
    pub stores: Vec<String>,
}

/// How the nodes split into sub-topologies, and the numbers of sub-topologies and global stores.
struct Grouping {
    /// The group (root node) of each node.
    roots: Vec<usize>,
    /// Each group's root node and number, by number.
    groups: Vec<(usize, u32)>,
    /// The number of each global store, in the order they were added.
    global_ids: Vec<u32>,
}

/// A processing topology: a graph of sources, processors and sinks with their state stores, and
/// the global stores (see [`add_global_store`](Self::add_global_store)) kept apart from it.
///
/// ```
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::store::Stores;
/// use kstreams_streams::topology::Topology;
/// struct Pass;
/// impl Processor<String, String> for Pass {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> kstreams_streams::Result<()> {
///         ctx.forward(r)
///     }
/// }
/// let mut t = Topology::new();
/// t.add_source("src", &["in"], Serdes::string(), Serdes::string()).unwrap()
///     .add_processor("pass", || Pass, &["src"]).unwrap()
///     .add_state_store(Stores::key_value("seen", Serdes::string(), Serdes::string()), &["pass"]).unwrap()
///     .add_sink("sink", "out", Serdes::string(), Serdes::string(), &["pass"]).unwrap();
/// assert!(t.describe().to_string().contains("Processor: pass (stores: [seen])"));
/// ```
#[derive(Default)]
pub struct Topology {
    pub(crate) nodes: Vec<NodeDef>,
    pub(crate) stores: Vec<(StoreBuilder, Vec<String>)>,
    /// Global stores: not part of any sub-topology.
    pub(crate) global: Vec<GlobalStoreDef>,
    pub(crate) internal_topics: BTreeMap<String, InternalTopic>,
    pub(crate) copartition_groups: Vec<BTreeSet<String>>,
}

impl Topology {
    /// An empty topology.
    pub fn new() -> Self {
        Topology::default()
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    fn check_new_name(&self, name: &str) -> Result<()> {
        if name.is_empty() {
            return Err(StreamsError::Topology("a node name must not be empty".into()));
        }
        if self.index(name).is_some() || self.global.iter().any(|g| g.source_name == name || g.processor_name == name) {
            return Err(StreamsError::Topology(format!("a node named `{name}` exists already; names must be unique")));
        }
        Ok(())
    }

    fn parents(&self, name: &str, parents: &[&str]) -> Result<Vec<usize>> {
        if parents.is_empty() {
            return Err(StreamsError::Topology(format!("`{name}` needs at least one parent")));
        }
        parents
            .iter()
            .map(|p| {
                let index = self.index(p).ok_or_else(|| {
                    StreamsError::Topology(format!("parent `{p}` of `{name}` does not exist; add it first"))
                })?;
                if matches!(self.nodes[index].kind, NodeKind::Sink { .. }) {
                    return Err(StreamsError::Topology(format!("sink `{p}` cannot be the parent of `{name}`")));
                }
                Ok(index)
            })
            .collect()
    }

    pub(crate) fn push_node(&mut self, node: NodeDef) -> usize {
        let index = self.nodes.len();
        for &p in &node.parents {
            self.nodes[p].children.push(index);
        }
        self.nodes.push(node);
        index
    }

    /// Adds a source reading `topics` with the given serdes and the record's own timestamp.
    pub fn add_source<K: Data, V: Data>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> Result<&mut Self> {
        self.add_source_with_extractor(name, topics, key_serde, value_serde, None)
    }

    /// Adds a source whose event time comes from `extractor` (`None`: the record timestamp).
    pub fn add_source_with_extractor<K: Data, V: Data>(
        &mut self,
        name: &str,
        topics: &[&str],
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        extractor: Option<Arc<dyn TimestampExtractor<K, V>>>,
    ) -> Result<&mut Self> {
        self.check_new_name(name)?;
        if topics.is_empty() {
            return Err(StreamsError::Topology(format!("source `{name}` needs at least one topic")));
        }
        for topic in topics {
            self.check_unread_topic(topic)?;
        }
        let source: Arc<dyn RawSource> = Arc::new(TypedSource { key_serde, value_serde, extractor });
        self.push_node(NodeDef {
            name: name.to_string(),
            kind: NodeKind::Source { topics: topics.iter().map(|t| t.to_string()).collect(), source },
            parents: Vec::new(),
            children: Vec::new(),
            stores: Vec::new(),
            supplier: Arc::new(|| Box::new(SourceNode)),
            input: None,
            output: Some(DataType::of::<K, V>()),
        });
        Ok(self)
    }

    /// Adds a processor fed by `parents`; `supplier` makes one processor per task.
    pub fn add_processor<KIn: Data, VIn: Data, KOut: Data, VOut: Data>(
        &mut self,
        name: &str,
        supplier: impl ProcessorSupplier<KIn, VIn, KOut, VOut>,
        parents: &[&str],
    ) -> Result<&mut Self> {
        self.check_new_name(name)?;
        let parents = self.parents(name, parents)?;
        self.push_node(NodeDef {
            name: name.to_string(),
            kind: NodeKind::Processor,
            parents,
            children: Vec::new(),
            stores: Vec::new(),
            supplier: typed_supplier(supplier),
            input: Some(DataType::of::<KIn, VIn>()),
            output: Some(DataType::of::<KOut, VOut>()),
        });
        Ok(self)
    }

    /// Adds a sink writing to `topic` with the given serdes and the default partitioner.
    pub fn add_sink<K: Data, V: Data>(
        &mut self,
        name: &str,
        topic: &str,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        parents: &[&str],
    ) -> Result<&mut Self> {
        self.add_sink_with(name, TopicNameExtractor::Static(topic.to_string()), key_serde, value_serde, None, parents)
    }

    /// Adds a sink with a per-record topic choice and an optional custom partitioner.
    pub fn add_sink_with<K: Data, V: Data>(
        &mut self,
        name: &str,
        topic: TopicNameExtractor<K, V>,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
        parents: &[&str],
    ) -> Result<&mut Self> {
        self.check_new_name(name)?;
        let parents = self.parents(name, parents)?;
        let static_topic = match &topic {
            TopicNameExtractor::Static(t) if t.is_empty() => {
                return Err(StreamsError::Topology(format!("sink `{name}` needs a topic name")))
            }
            TopicNameExtractor::Static(t) => Some(t.clone()),
            TopicNameExtractor::Dynamic(_) => None,
        };
        let supplier: RawSupplier = Arc::new(move || {
            Box::new(SinkNode {
                topic: topic.clone(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
                partitioner: partitioner.clone(),
                resolved: None,
            })
        });
        self.push_node(NodeDef {
            name: name.to_string(),
            kind: NodeKind::Sink { topic: static_topic },
            parents,
            children: Vec::new(),
            stores: Vec::new(),
            supplier,
            input: Some(DataType::of::<K, V>()),
            output: None,
        });
        Ok(self)
    }

    /// Adds a state store and connects it to `processors`.
    pub fn add_state_store(&mut self, builder: StoreBuilder, processors: &[&str]) -> Result<&mut Self> {
        let name = builder.spec().name.clone();
        if self.has_store(&name) {
            return Err(StreamsError::Topology(format!("a store named `{name}` exists already")));
        }
        self.stores.push((builder, Vec::new()));
        self.connect_processor_and_state_stores_list(processors, &[&name])?;
        Ok(self)
    }

    /// Gives `processor` access to the stores named in `stores`.
    pub fn connect_processor_and_state_stores(&mut self, processor: &str, stores: &[&str]) -> Result<&mut Self> {
        self.connect_processor_and_state_stores_list(&[processor], stores)?;
        Ok(self)
    }

    fn connect_processor_and_state_stores_list(&mut self, processors: &[&str], stores: &[&str]) -> Result<()> {
        for processor in processors {
            let index = self.index(processor).ok_or_else(|| {
                StreamsError::Topology(format!("processor `{processor}` does not exist; add it before its stores"))
            })?;
            if !matches!(self.nodes[index].kind, NodeKind::Processor) {
                return Err(StreamsError::Topology(format!(
                    "`{processor}` is not a processor; only processors use stores"
                )));
            }
            for store in stores {
                if self.is_global_store(store) {
                    return Err(StreamsError::Topology(format!(
                        "`{store}` is a global store: every processor may read it without being connected to it"
                    )));
                }
                let entry = self.stores.iter_mut().find(|(b, _)| b.spec().name == *store).ok_or_else(|| {
                    StreamsError::Topology(format!("store `{store}` does not exist; add it with add_state_store"))
                })?;
                if !entry.1.iter().any(|p| p == processor) {
                    entry.1.push(processor.to_string());
                }
                let node = &mut self.nodes[index];
                if !node.stores.iter().any(|s| s == store) {
                    node.stores.push(store.to_string());
                }
            }
        }
        Ok(())
    }

    /// Declares an internal topic (named without the application id, which the runtime prefixes).
    pub(crate) fn add_internal_topic(&mut self, topic: InternalTopic) {
        self.internal_topics.insert(topic.name.clone(), topic);
    }

    /// Records that `topics` must have the same number of partitions (joins, for example).
    pub(crate) fn require_copartitioned(&mut self, topics: impl IntoIterator<Item = String>) {
        let group: BTreeSet<String> = topics.into_iter().collect();
        if group.len() > 1 && !self.copartition_groups.contains(&group) {
            self.copartition_groups.push(group);
        }
    }

    /// Internal topics by name (without the application id prefix): repartition topics and store
    /// changelogs (window and session changelogs kept one day beyond their store's retention).
    pub fn internal_topics(&self) -> Vec<InternalTopic> {
        self.internal_topics_with(kstreams_state::store::CHANGELOG_ADDITIONAL_RETENTION_MS)
    }

    /// As [`internal_topics`](Self::internal_topics), with window and session changelogs kept
    /// `additional_retention_ms` beyond their store's retention
    /// (`windowstore.changelog.additional.retention.ms`).
    pub fn internal_topics_with(&self, additional_retention_ms: i64) -> Vec<InternalTopic> {
        let mut topics: Vec<InternalTopic> = self.internal_topics.values().cloned().collect();
        for (builder, _) in &self.stores {
            let spec = builder.spec();
            if spec.logging {
                let name = format!("{}-changelog", spec.name);
                let configs: BTreeMap<String, String> =
                    spec.changelog_topic_configs_with(additional_retention_ms).into_iter().collect();
                topics.push(InternalTopic { name, kind: InternalTopicKind::Changelog, partitions: None, configs });
            }
        }
        topics
    }

    /// Groups of topics that must have equal partition counts, as declared by joins and by sources
    /// feeding one sub-topology.
    pub fn copartition_groups(&self) -> Vec<BTreeSet<String>> {
        let mut groups = self.copartition_groups.clone();
        for sub in self.subtopologies() {
            let group: BTreeSet<String> = sub.source_topics.iter().cloned().collect();
            if group.len() > 1 && !groups.contains(&group) {
                groups.push(group);
            }
        }
        groups
    }

    /// Whether `topic` (as named in the topology) is an internal topic.
    pub fn is_internal_topic(&self, topic: &str) -> bool {
        self.internal_topics.contains_key(topic)
            || self.stores.iter().any(|(b, _)| b.spec().logging && format!("{}-changelog", b.spec().name) == topic)
    }

    /// Checks the wiring: types along every edge, processors with parents, stores connected.
    pub fn validate(&self) -> Result<()> {
        if !self.nodes.iter().any(|n| matches!(n.kind, NodeKind::Source { .. })) {
            return Err(StreamsError::Topology("the topology has no source; add one with add_source".into()));
        }
        for node in &self.nodes {
            for &p in &node.parents {
                let parent = &self.nodes[p];
                if let (Some(out), Some(input)) = (parent.output, node.input) {
                    if out != input {
                        return Err(StreamsError::Topology(format!(
                            "`{}` forwards {} but its child `{}` takes {}",
                            parent.name, out.name, node.name, input.name
                        )));
                    }
                }
            }
        }
        for (builder, processors) in &self.stores {
            if processors.is_empty() {
                return Err(StreamsError::Topology(format!(
                    "store `{}` is connected to no processor",
                    builder.spec().name
                )));
            }
        }
        Ok(())
    }

    /// The sub-topologies, numbered as Kafka Streams numbers them (global stores take numbers too,
    /// see [`global_stores`](Self::global_stores)).
    pub fn subtopologies(&self) -> Vec<SubTopology> {
        let Grouping { roots, groups, .. } = self.grouping();
        let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, r) in roots.iter().enumerate() {
            members.entry(*r).or_default().push(i);
        }
        groups
            .iter()
            .map(|(r, id)| {
                let nodes = members.remove(r).unwrap_or_default();
                let mut source_topics = Vec::new();
                let mut sink_topics = Vec::new();
                let mut stores = Vec::new();
                for &i in &nodes {
                    match &self.nodes[i].kind {
                        NodeKind::Source { topics, .. } => source_topics.extend(topics.iter().cloned()),
                        NodeKind::Sink { topic: Some(t) } => sink_topics.push(t.clone()),
                        _ => {}
                    }
                    for s in &self.nodes[i].stores {
                        if !stores.contains(s) {
                            stores.push(s.clone());
                        }
                    }
                }
                SubTopology { id: *id, nodes, source_topics, sink_topics, stores }
            })
            .collect()
    }

    /// Splits the nodes into groups (connected by edges and shared stores) and numbers the groups
    /// and the global stores together, as Kafka Streams does: by the sorted names of their source
    /// nodes, then by sink names for groups without a source.
    fn grouping(&self) -> Grouping {
        let n = self.nodes.len();
        let mut root: Vec<usize> = (0..n).collect();
        fn find(root: &mut [usize], mut x: usize) -> usize {
            while root[x] != x {
                root[x] = root[root[x]];
                x = root[x];
            }
            x
        }
        let union = |root: &mut Vec<usize>, a: usize, b: usize| {
            let (ra, rb) = (find(root, a), find(root, b));
            if ra != rb {
                root[ra.max(rb)] = ra.min(rb);
            }
        };
        for (i, node) in self.nodes.iter().enumerate() {
            for &p in &node.parents {
                union(&mut root, i, p);
            }
        }
        for (_, processors) in &self.stores {
            let indexes: Vec<usize> = processors.iter().filter_map(|p| self.index(p)).collect();
            for pair in indexes.windows(2) {
                union(&mut root, pair[0], pair[1]);
            }
        }
        let roots: Vec<usize> = (0..n).map(|i| find(&mut root, i)).collect();
        // What takes a number: the group of a node, or a global store.
        enum Numbered {
            Group(usize),
            Global(usize),
        }
        let mut sources: Vec<(&str, Numbered)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.kind, NodeKind::Source { .. }))
            .map(|(i, n)| (n.name.as_str(), Numbered::Group(i)))
            .chain(self.global.iter().enumerate().map(|(g, def)| (def.source_name.as_str(), Numbered::Global(g))))
            .collect();
        sources.sort_by(|a, b| a.0.cmp(b.0));
        let mut sinks: Vec<(&str, Numbered)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n.kind, NodeKind::Sink { .. }))
            .map(|(i, n)| (n.name.as_str(), Numbered::Group(i)))
            .collect();
        sinks.sort_by(|a, b| a.0.cmp(b.0));
        let mut groups: Vec<(usize, u32)> = Vec::new();
        let mut global_ids = vec![0; self.global.len()];
        let mut next = 0u32;
        for (_, entry) in sources.into_iter().chain(sinks) {
            match entry {
                Numbered::Group(node) if !groups.iter().any(|(r, _)| *r == roots[node]) => {
                    groups.push((roots[node], next));
                    next += 1;
                }
                Numbered::Group(_) => {}
                Numbered::Global(g) => {
                    global_ids[g] = next;
                    next += 1;
                }
            }
        }
        Grouping { roots, groups, global_ids }
    }

    /// Partition counts of every topic the topology reads and of its internal topics, given the counts
    /// of the external topics it reads (`known`, by topology name). Repartition topics without a fixed
    /// count take the count of the given topics they must be co-partitioned with (joins declare these),
    /// else the largest count of the sources of the sub-topologies writing them, as in Kafka Streams;
    /// changelogs take their sub-topology's count. Sources of one sub-topology must agree
    /// (co-partitioning), else this is an error naming the topics.
    pub fn resolve_partition_counts(&self, known: &HashMap<String, i32>) -> Result<HashMap<String, i32>> {
        let subs = self.subtopologies();
        let mut counts = known.clone();
        for t in self.internal_topics.values() {
            if let Some(n) = t.partitions {
                counts.entry(t.name.clone()).or_insert(n);
            }
        }
        let repartition: Vec<&String> = self
            .internal_topics
            .values()
            .filter(|t| t.kind == InternalTopicKind::Repartition)
            .map(|t| &t.name)
            .collect();
        // Counts given (external topics) or fixed (`Repartitioned::with_number_of_partitions`) anchor
        // the others: a repartition topic declared co-partitioned with an anchored topic takes its
        // count (and is anchored in turn), as Kafka's `CopartitionedTopicsEnforcer` sets it. A
        // foreign-key join's subscription topic, for example, must match the foreign table's topic,
        // whatever its writers read.
        let mut anchored: BTreeSet<String> = counts.keys().cloned().collect();
        loop {
            let next = repartition.iter().filter(|t| !anchored.contains(**t)).find_map(|topic| {
                self.copartition_groups
                    .iter()
                    .filter(|g| g.contains(*topic))
                    .flat_map(|g| g.iter())
                    .filter(|t| anchored.contains(*t))
                    .filter_map(|t| counts.get(t).copied())
                    .max()
                    .map(|n| ((*topic).clone(), n))
            });
            let Some((topic, n)) = next else { break };
            counts.insert(topic.clone(), n);
            anchored.insert(topic);
        }
        // The others take the largest count of the sources of the sub-topologies writing them (with
        // `complete`, only once all of those are known).
        let from_writers = |counts: &HashMap<String, i32>, topic: &String, complete: bool| -> Option<i32> {
            let sources: Vec<&String> =
                subs.iter().filter(|s| s.sink_topics.contains(topic)).flat_map(|s| s.source_topics.iter()).collect();
            if sources.is_empty() || (complete && !sources.iter().all(|t| counts.contains_key(*t))) {
                return None;
            }
            sources.iter().filter_map(|t| counts.get(*t).copied()).max()
        };
        loop {
            let mut progress = false;
            for topic in &repartition {
                if counts.contains_key(*topic) {
                    continue;
                }
                if let Some(n) = from_writers(&counts, topic, true) {
                    counts.insert((*topic).clone(), n);
                    progress = true;
                }
            }
            if progress {
                continue;
            }
            // Repartition topics feeding each other (a cycle) are settled by what is known so far, as
            // Kafka Streams does: one at a time, then the others follow from it.
            let settled = repartition
                .iter()
                .filter(|t| !counts.contains_key(**t))
                .find_map(|t| from_writers(&counts, t, false).map(|n| ((*t).clone(), n)));
            match settled {
                Some((topic, n)) => {
                    counts.insert(topic, n);
                }
                None => break,
            }
        }
        // Co-partitioned groups of derived repartition topics only: all take the largest count.
        for group in &self.copartition_groups {
            if group.iter().any(|t| anchored.contains(t) || !repartition.contains(&t)) {
                continue;
            }
            if let Some(n) = group.iter().filter_map(|t| counts.get(t).copied()).max() {
                for t in group {
                    counts.insert(t.clone(), n);
                }
            }
        }
        for sub in &subs {
            let mut task_count: Option<(i32, &String)> = None;
            for t in &sub.source_topics {
                let n = *counts.get(t).ok_or_else(|| {
                    StreamsError::Topology(format!("the partition count of topic `{t}` is unknown; does it exist?"))
                })?;
                match task_count {
                    None => task_count = Some((n, t)),
                    Some((m, first)) if m != n => {
                        return Err(StreamsError::Topology(format!(
                            "topics `{first}` ({m} partitions) and `{t}` ({n} partitions) are read together by \
                             sub-topology {} and must be co-partitioned: give them the same partition count",
                            sub.id
                        )))
                    }
                    _ => {}
                }
            }
            if let Some((n, _)) = task_count {
                for store in &sub.stores {
                    counts.insert(format!("{store}-changelog"), n);
                }
            }
        }
        for group in &self.copartition_groups {
            let mut first: Option<(&String, i32)> = None;
            for t in group {
                if let Some(&n) = counts.get(t) {
                    match first {
                        None => first = Some((t, n)),
                        Some((f, m)) if m != n => {
                            return Err(StreamsError::Topology(format!(
                                "topics `{f}` ({m} partitions) and `{t}` ({n} partitions) are joined and must be \
                                 co-partitioned: give them the same partition count"
                            )))
                        }
                        _ => {}
                    }
                }
            }
        }
        Ok(counts)
    }

    /// The topology in Kafka Streams' `describe()` layout; `Display` prints it, `to_mermaid` and `to_dot`
    /// draw it.
    pub fn describe(&self) -> TopologyDescription {
        TopologyDescription::new(self)
    }
}
