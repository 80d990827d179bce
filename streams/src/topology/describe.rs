//! `describe()`: the topology as Kafka Streams prints it, and as a Mermaid or Graphviz (DOT) diagram.

use std::cmp::Ordering;
use std::fmt;

use super::{NodeKind, Topology};

/// A printable description of a topology, in the layout of Kafka Streams' `TopologyDescription`.
///
/// ```
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::topology::Topology;
/// let mut t = Topology::new();
/// t.add_source("in", &["a"], Serdes::string(), Serdes::string()).unwrap()
///  .add_sink("out", "b", Serdes::string(), Serdes::string(), &["in"]).unwrap();
/// let text = t.describe().to_string();
/// assert!(text.starts_with("Topologies:\n   Sub-topology: 0\n    Source: in (topics: [a])\n      --> out\n"));
/// assert!(t.describe().to_mermaid().contains("in --> out"));
/// assert!(t.describe().to_dot().contains("\"in\" -> \"out\";"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyDescription {
    subtopologies: Vec<SubtopologyDescription>,
    global_stores: Vec<GlobalStoreDescription>,
}

/// A global store, printed as Kafka Streams prints it: "Sub-topology: N for global store (will not
/// generate tasks)", its source and its update processor.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GlobalStoreDescription {
    id: u32,
    source: NodeDescription,
    processor: NodeDescription,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct SubtopologyDescription {
    id: u32,
    nodes: Vec<NodeDescription>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeDescription {
    name: String,
    kind: Kind,
    successors: Vec<String>,
    predecessors: Vec<String>,
    size: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Source { topics: Vec<String> },
    Processor { stores: Vec<String> },
    Sink { topic: Option<String> },
}

/// Kafka Streams orders nodes by the size of the sub-tree they root (largest first), then by name.
fn by_size_then_name(a: &NodeDescription, b: &NodeDescription) -> Ordering {
    b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name))
}

impl TopologyDescription {
    pub(crate) fn new(topology: &Topology) -> Self {
        let nodes = &topology.nodes;
        // Sub-tree size counts paths through a DAG, as Kafka's `updateSize` does.
        let mut size = vec![0usize; nodes.len()];
        fn size_of(i: usize, nodes: &[super::NodeDef], memo: &mut [usize]) -> usize {
            if memo[i] == 0 {
                memo[i] = 1 + nodes[i].children.iter().map(|&c| size_of(c, nodes, memo)).sum::<usize>();
            }
            memo[i]
        }
        for i in 0..nodes.len() {
            size_of(i, nodes, &mut size);
        }
        let sorted_names = |indexes: &[usize]| -> Vec<String> {
            let mut v: Vec<(usize, &str)> = indexes.iter().map(|&i| (size[i], nodes[i].name.as_str())).collect();
            v.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
            v.into_iter().map(|(_, n)| n.to_string()).collect()
        };
        let subtopologies = topology
            .subtopologies()
            .into_iter()
            .map(|sub| {
                let mut described: Vec<NodeDescription> = sub
                    .nodes
                    .iter()
                    .map(|&i| {
                        let node = &nodes[i];
                        let kind = match &node.kind {
                            NodeKind::Source { topics, .. } => Kind::Source { topics: topics.clone() },
                            NodeKind::Processor => Kind::Processor { stores: node.stores.clone() },
                            NodeKind::Sink { topic } => Kind::Sink { topic: topic.clone() },
                        };
                        NodeDescription {
                            name: node.name.clone(),
                            kind,
                            successors: sorted_names(&node.children),
                            predecessors: sorted_names(&node.parents),
                            size: size[i],
                        }
                    })
                    .collect();
                described.sort_by(by_size_then_name);
                SubtopologyDescription { id: sub.id, nodes: described }
            })
            .collect();
        let global_stores = topology
            .global_stores()
            .into_iter()
            .map(|g| GlobalStoreDescription {
                id: g.id,
                source: NodeDescription {
                    name: g.source_name.clone(),
                    kind: Kind::Source { topics: vec![g.topic.clone()] },
                    successors: vec![g.processor_name.clone()],
                    predecessors: Vec::new(),
                    size: 2,
                },
                processor: NodeDescription {
                    name: g.processor_name.clone(),
                    kind: Kind::Processor { stores: vec![g.store.clone()] },
                    successors: Vec::new(),
                    predecessors: vec![g.source_name.clone()],
                    size: 1,
                },
            })
            .collect();
        TopologyDescription { subtopologies, global_stores }
    }

    /// A Mermaid flowchart of the topology: one box per sub-topology, topics as stadium shapes, stores
    /// as cylinders.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TB\n");
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "_");
        for sub in &self.subtopologies {
            out.push_str(&format!("    subgraph sub{}[\"Sub-topology {}\"]\n", sub.id, sub.id));
            for node in &sub.nodes {
                out.push_str(&format!("        {}[\"{}\"]\n", id(&node.name), node.name));
            }
            out.push_str("    end\n");
            for node in &sub.nodes {
                for succ in &node.successors {
                    out.push_str(&format!("    {} --> {}\n", id(&node.name), id(succ)));
                }
                match &node.kind {
                    Kind::Source { topics } => {
                        for t in topics {
                            out.push_str(&format!("    topic_{}([\"{}\"]) --> {}\n", id(t), t, id(&node.name)));
                        }
                    }
                    Kind::Sink { topic: Some(t) } => {
                        out.push_str(&format!("    {} --> topic_{}([\"{}\"])\n", id(&node.name), id(t), t));
                    }
                    Kind::Sink { topic: None } => {}
                    Kind::Processor { stores } => {
                        for s in stores {
                            out.push_str(&format!("    {} --- store_{}[(\"{}\")]\n", id(&node.name), id(s), s));
                        }
                    }
                }
            }
        }
        for global in &self.global_stores {
            let (source, processor) = (&global.source, &global.processor);
            out.push_str(&format!("    subgraph sub{}[\"Sub-topology {} (global store)\"]\n", global.id, global.id));
            for node in [source, processor] {
                out.push_str(&format!("        {}[\"{}\"]\n", id(&node.name), node.name));
            }
            out.push_str("    end\n");
            out.push_str(&format!("    {} --> {}\n", id(&source.name), id(&processor.name)));
            if let Kind::Source { topics } = &source.kind {
                for t in topics {
                    out.push_str(&format!("    topic_{}([\"{}\"]) --> {}\n", id(t), t, id(&source.name)));
                }
            }
            if let Kind::Processor { stores } = &processor.kind {
                for s in stores {
                    out.push_str(&format!("    {} --- store_{}[(\"{}\")]\n", id(&processor.name), id(s), s));
                }
            }
        }
        out
    }
}

impl TopologyDescription {
    /// A Graphviz (DOT) digraph of the topology, for `dot -Tsvg`: one cluster per sub-topology,
    /// processors as boxes, topics as ellipses, stores as cylinders.
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// let b = StreamsBuilder::new();
    /// b.stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
    ///     .group_by_key(Grouped::default())
    ///     .count(Materialized::as_("counts"))
    ///     .to_stream()
    ///     .to("totals", Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
    /// let dot = b.build().unwrap().describe().to_dot();
    /// assert!(dot.starts_with("digraph topology {"));
    /// assert!(dot.contains("\"topic:clicks\" -> \"KSTREAM-SOURCE-0000000000\";"));
    /// assert!(dot.contains("\"store:counts\" [label=\"counts\", shape=cylinder];"));
    /// ```
    pub fn to_dot(&self) -> String {
        let quote = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut out = String::from("digraph topology {\n    rankdir=TB;\n    node [shape=box];\n");
        let mut edges = Vec::new();
        let node = |out: &mut String, n: &NodeDescription, edges: &mut Vec<String>| {
            out.push_str(&format!("        {};\n", quote(&n.name)));
            for succ in &n.successors {
                edges.push(format!("    {} -> {};\n", quote(&n.name), quote(succ)));
            }
            match &n.kind {
                Kind::Source { topics } => {
                    for t in topics {
                        edges.push(format!("    {} -> {};\n", quote(&format!("topic:{t}")), quote(&n.name)));
                    }
                }
                Kind::Sink { topic: Some(t) } => {
                    edges.push(format!("    {} -> {};\n", quote(&n.name), quote(&format!("topic:{t}"))));
                }
                Kind::Sink { topic: None } => {}
                Kind::Processor { stores } => {
                    for s in stores {
                        edges.push(format!("    {} -> {} [dir=none];\n", quote(&n.name), quote(&format!("store:{s}"))));
                    }
                }
            }
        };
        let mut topics = std::collections::BTreeSet::new();
        let mut stores = std::collections::BTreeSet::new();
        let mut collect = |n: &NodeDescription| match &n.kind {
            Kind::Source { topics: t } => topics.extend(t.iter().cloned()),
            Kind::Sink { topic: Some(t) } => {
                topics.insert(t.clone());
            }
            Kind::Sink { topic: None } => {}
            Kind::Processor { stores: s } => stores.extend(s.iter().cloned()),
        };
        for sub in &self.subtopologies {
            out.push_str(&format!("    subgraph cluster_{} {{\n        label=\"Sub-topology {}\";\n", sub.id, sub.id));
            for n in &sub.nodes {
                node(&mut out, n, &mut edges);
                collect(n);
            }
            out.push_str("    }\n");
        }
        for global in &self.global_stores {
            out.push_str(&format!(
                "    subgraph cluster_{} {{\n        label=\"Sub-topology {} (global store)\";\n",
                global.id, global.id
            ));
            for n in [&global.source, &global.processor] {
                node(&mut out, n, &mut edges);
                collect(n);
            }
            out.push_str("    }\n");
        }
        for t in &topics {
            out.push_str(&format!("    {} [label={}, shape=ellipse];\n", quote(&format!("topic:{t}")), quote(t)));
        }
        for s in &stores {
            out.push_str(&format!("    {} [label={}, shape=cylinder];\n", quote(&format!("store:{s}")), quote(s)));
        }
        for e in edges {
            out.push_str(&e);
        }
        out.push_str("}\n");
        out
    }
}

fn names(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

impl fmt::Display for NodeDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Source { topics } => write!(
                f,
                "Source: {} (topics: [{}])\n      --> {}",
                self.name,
                topics.join(", "),
                names(&self.successors)
            ),
            Kind::Processor { stores } => write!(
                f,
                "Processor: {} (stores: [{}])\n      --> {}\n      <-- {}",
                self.name,
                stores.join(", "),
                names(&self.successors),
                names(&self.predecessors)
            ),
            Kind::Sink { topic } => write!(
                f,
                "Sink: {} (topic: {})\n      <-- {}",
                self.name,
                topic.as_deref().unwrap_or("<chosen per record>"),
                names(&self.predecessors)
            ),
        }
    }
}

impl fmt::Display for GlobalStoreDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Sub-topology: {} for global store (will not generate tasks)\n    {}\n    {}\n",
            self.id, self.source, self.processor
        )
    }
}

impl fmt::Display for TopologyDescription {
    /// Sub-topologies and global stores in the order of their numbers, as Kafka Streams prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Topologies:\n ")?;
        let mut subs = self.subtopologies.iter().peekable();
        let mut globals = self.global_stores.iter().peekable();
        loop {
            let global_first = match (subs.peek(), globals.peek()) {
                (Some(sub), Some(global)) => global.id < sub.id,
                (None, Some(_)) => true,
                (Some(_), None) => false,
                (None, None) => return Ok(()),
            };
            if global_first {
                if let Some(global) = globals.next() {
                    write!(f, "  {global}")?;
                }
                continue;
            }
            if let Some(sub) = subs.next() {
                writeln!(f, "  Sub-topology: {}", sub.id)?;
                for node in &sub.nodes {
                    writeln!(f, "    {node}")?;
                }
                f.write_str("\n")?;
            }
        }
    }
}
