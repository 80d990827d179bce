//! Stateless DSL operators through the topology test driver, with hand-computed expectations.

use kstreams_streams::dsl::{Branched, Consumed, Joined, Materialized, Named, Produced, Repartitioned, StreamsBuilder};
use kstreams_streams::processor::{Processor, ProcessorContext};
use kstreams_streams::record::Record;
use kstreams_streams::serde::Serdes;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::topology::InternalTopicKind;

fn driver(builder: &StreamsBuilder) -> TopologyTestDriver {
    TopologyTestDriver::new(builder.build().expect("topology builds"), TestDriverConfig::new("app"))
        .expect("driver starts")
}

#[test]
fn filter_map_values_and_filter_not() {
    let builder = StreamsBuilder::new();
    let s = builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64()));
    s.filter(|_, v| *v % 2 == 0).map_values(|v| v * 10).to("evens", Produced::default());
    s.filter_not(|_, v| *v % 2 == 0).to("odds", Produced::default());
    let d = driver(&builder);
    let input = d.input_topic("in", Serdes::string(), Serdes::i64());
    input.pipe_all((1..=5).map(|i| (format!("k{i}"), i, i * 100))).unwrap();
    let evens = d.output_topic("evens", Serdes::string(), Serdes::i64());
    let odds = d.output_topic("odds", Serdes::string(), Serdes::i64());
    assert_eq!(
        evens.read_key_values_with_time().unwrap(),
        vec![("k2".to_string(), 20, 200), ("k4".to_string(), 40, 400)]
    );
    assert_eq!(odds.read_key_values().unwrap().iter().map(|(_, v)| *v).collect::<Vec<_>>(), vec![1, 3, 5]);
}

#[test]
fn map_flat_map_select_key_and_peek() {
    let builder = StreamsBuilder::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .peek(move |k, _| seen2.lock().unwrap().push(k.clone()))
        .flat_map(|k, v: String| v.split(',').map(|p| (k.clone(), p.to_string())).collect::<Vec<_>>())
        .map(|k, v| (v, k.len() as i64))
        .select_key(|k, v| format!("{k}:{v}"))
        .to("out", Produced::default());
    let d = driver(&builder);
    d.input_topic("in", Serdes::string(), Serdes::string()).pipe("abc".into(), "x,y".into(), 1).unwrap();
    let out = d.output_topic("out", Serdes::string(), Serdes::i64());
    assert_eq!(out.read_key_values().unwrap(), vec![("x:3".to_string(), 3), ("y:3".to_string(), 3)]);
    assert_eq!(*seen.lock().unwrap(), vec!["abc".to_string()]);
}

#[test]
fn flat_map_values_keeps_key_and_timestamp() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .flat_map_values(|v: String| v.chars().map(|c| c.to_string()).collect::<Vec<_>>())
        .to("out", Produced::default());
    let d = driver(&builder);
    d.input_topic("in", Serdes::string(), Serdes::string()).pipe("k".into(), "ab".into(), 7).unwrap();
    let out = d.output_topic("out", Serdes::string(), Serdes::string());
    assert_eq!(
        out.read_key_values_with_time().unwrap(),
        vec![("k".to_string(), "a".to_string(), 7), ("k".to_string(), "b".to_string(), 7)]
    );
}

#[test]
fn split_routes_to_first_matching_branch_and_default() {
    let builder = StreamsBuilder::new();
    let branches = builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::i64()))
        .split_named(Named::as_("sizes-"))
        .branch(|_, v| *v < 10, Branched::as_("small"))
        .branch(|_, v| *v < 100, Branched::as_("medium"))
        .default_branch(Branched::as_("large"));
    assert_eq!(branches.keys().cloned().collect::<Vec<_>>(), vec!["sizes-large", "sizes-medium", "sizes-small"]);
    for (name, stream) in &branches {
        stream.to(name, Produced::default());
    }
    let d = driver(&builder);
    let input = d.input_topic("in", Serdes::string(), Serdes::i64());
    input
        .pipe_all([
            ("a".to_string(), 5, 0),
            ("b".to_string(), 50, 0),
            ("c".to_string(), 500, 0),
            ("d".to_string(), 9, 0),
        ])
        .unwrap();
    let read = |t: &str| d.output_topic(t, Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(read("sizes-small"), vec![("a".to_string(), 5), ("d".to_string(), 9)]);
    assert_eq!(read("sizes-medium"), vec![("b".to_string(), 50)]);
    assert_eq!(read("sizes-large"), vec![("c".to_string(), 500)]);
}

#[test]
fn merge_combines_both_streams_in_arrival_order() {
    let builder = StreamsBuilder::new();
    let a = builder.stream("pos", Consumed::with(Serdes::string(), Serdes::i64()));
    let b = builder.stream("web", Consumed::with(Serdes::string(), Serdes::i64()));
    a.merge(&b).to("sales", Produced::default());
    let d = driver(&builder);
    d.input_topic("pos", Serdes::string(), Serdes::i64()).pipe("p".into(), 1, 10).unwrap();
    d.input_topic("web", Serdes::string(), Serdes::i64()).pipe("w".into(), 2, 11).unwrap();
    d.input_topic("pos", Serdes::string(), Serdes::i64()).pipe("p".into(), 3, 12).unwrap();
    let out = d.output_topic("sales", Serdes::string(), Serdes::i64());
    assert_eq!(out.read_key_values().unwrap(), vec![("p".to_string(), 1), ("w".to_string(), 2), ("p".to_string(), 3)]);
}

#[test]
fn repartition_moves_records_to_the_partition_of_their_new_key() {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .select_key(|_, v| v.clone())
        .repartition(Repartitioned::as_("by-value").with_number_of_partitions(4))
        .to("out", Produced::default());
    let topology = builder.build().unwrap();
    assert_eq!(topology.subtopologies().len(), 2);
    let d = TopologyTestDriver::new(topology, TestDriverConfig::new("app").partitions("in", 2)).unwrap();
    assert_eq!(d.tasks().len(), 2 + 4, "2 tasks read `in`, 4 read the repartition topic");
    let input = d.input_topic("in", Serdes::string(), Serdes::string());
    for i in 0..20 {
        input.pipe(format!("key{i}"), format!("v{}", i % 5), i).unwrap();
    }
    let repartitioned = d.produced_to("app-by-value-repartition");
    assert_eq!(repartitioned.len(), 20);
    for r in &repartitioned {
        let key = r.key.as_deref().unwrap();
        assert_eq!(r.partition, kstreams_streams::partitioner::default_partition(key, 4));
    }
    let out = d.output_topic("out", Serdes::string(), Serdes::string());
    let mut values: Vec<String> = out
        .read_key_values()
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            assert_eq!(k, v);
            v
        })
        .collect();
    values.sort();
    assert_eq!(values.len(), 20);
    assert_eq!(values[0], "v0");
}

#[test]
fn missing_serde_is_reported_at_build_naming_the_sink() {
    #[derive(Clone)]
    struct Custom;
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
        .map_values(|_| Custom)
        .to("out", Produced::default());
    let err = builder.build().err().expect("build fails").to_string();
    assert!(err.contains("no serde for the value of sink `KSTREAM-SINK-0000000002`"), "{err}");
}

#[test]
fn undecodable_input_is_a_deserialization_error_naming_topic_partition_and_offset() {
    let builder = StreamsBuilder::new();
    builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64())).to("out", Produced::default());
    let d = driver(&builder);
    let input = d.input_topic("in", Serdes::string(), Serdes::i64());
    input.pipe("ok".into(), 1, 0).unwrap();
    let err =
        input.pipe_bytes(Some(b"bad".to_vec()), Some(vec![1, 2, 3]), 0, Default::default()).unwrap_err().to_string();
    assert!(err.contains("in-0@1"), "{err}");
    assert!(err.contains("value"), "{err}");
}

/// Forwards each record unchanged (a Processor API node for `process_named`).
struct Audit;

impl Processor<String, i64> for Audit {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, i64>,
    ) -> kstreams_streams::Result<()> {
        ctx.forward(record)
    }
}

/// Named and unnamed operators, printed as Kafka Streams 4 prints the same topology: a given name
/// replaces the generated one but still consumes its index (`NamedInternal.orElseGenerateWithPrefix`),
/// except for `process` with a name, which consumes none; a table named `prices` by `Consumed` has the
/// source `prices-source`; each branch of a split consumes an index; sub-topologies are numbered by
/// source name and nodes ordered by sub-tree size, then name.
const NAMED_DESCRIPTION: &str = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [orders])
      --> only-big
    Processor: only-big (stores: [])
      --> KSTREAM-MAPVALUES-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
      --> audit
      <-- only-big
    Processor: audit (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-MAPVALUES-0000000002
    Sink: KSTREAM-SINK-0000000003 (topic: audited)
      <-- audit

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000009 (topics: [sizes])
      --> size-
    Processor: size- (stores: [])
      --> size-0, size-small
      <-- KSTREAM-SOURCE-0000000009
    Processor: size-0 (stores: [])
      --> KSTREAM-MAPVALUES-0000000013
      <-- size-
    Processor: KSTREAM-MAPVALUES-0000000013 (stores: [])
      --> KSTREAM-SINK-0000000014
      <-- size-0
    Processor: size-small (stores: [])
      --> KSTREAM-SINK-0000000015
      <-- size-
    Sink: KSTREAM-SINK-0000000014 (topic: large)
      <-- KSTREAM-MAPVALUES-0000000013
    Sink: KSTREAM-SINK-0000000015 (topic: small)
      <-- size-small

  Sub-topology: 2
    Source: prices-source (topics: [prices])
      --> prices
    Processor: prices (stores: [price-store])
      --> KTABLE-FILTER-0000000006
      <-- prices-source
    Processor: KTABLE-FILTER-0000000006 (stores: [])
      --> price-updates
      <-- prices
    Processor: price-updates (stores: [])
      --> price-sink
      <-- KTABLE-FILTER-0000000006
    Sink: price-sink (topic: positive-prices)
      <-- price-updates

";

fn named_topology(builder: &StreamsBuilder) {
    let ks = || Consumed::with(Serdes::string(), Serdes::i64());
    builder
        .stream("orders", ks()) // KSTREAM-SOURCE-0000000000
        .filter_named(|_, v| *v > 100, Named::as_("only-big")) // index 1
        .map_values(|v| v * 2) // KSTREAM-MAPVALUES-0000000002
        .process_named(|| Audit, Named::as_("audit"), &[]) // no index
        .to("audited", Produced::default()); // KSTREAM-SINK-0000000003
    builder
        .table("prices", ks().with_name("prices"), Materialized::as_("price-store")) // indexes 4 and 5
        .filter(|_, p| *p > 0) // KTABLE-FILTER-0000000006
        .to_stream_named(Named::as_("price-updates")) // index 7
        .to("positive-prices", Produced::as_("price-sink")); // index 8
    let branches = builder
        .stream("sizes", ks()) // KSTREAM-SOURCE-0000000009
        .split_named(Named::as_("size-")) // index 10
        .branch(|_, v| *v < 10, Branched::as_("small")) // index 11
        .default_branch(Branched::default()); // `size-0`, index 12
    branches["size-0"].map_values(|v| v + 1).to("large", Produced::default()); // 13, 14
    branches["size-small"].to("small", Produced::default()); // KSTREAM-SINK-0000000015
}

#[test]
fn named_operators_describe_as_kafka_streams_and_still_consume_indexes() {
    let builder = StreamsBuilder::new();
    named_topology(&builder);
    let topology = builder.build().unwrap();
    assert_eq!(topology.describe().to_string(), NAMED_DESCRIPTION);
}

#[test]
fn named_operators_process_records_like_unnamed_ones() {
    let builder = StreamsBuilder::new();
    named_topology(&builder);
    let d = driver(&builder);
    d.input_topic("orders", Serdes::string(), Serdes::i64())
        .pipe_all([("a".to_string(), 50, 1), ("b".to_string(), 150, 2)])
        .unwrap();
    d.input_topic("sizes", Serdes::string(), Serdes::i64())
        .pipe_all([("s".to_string(), 3, 1), ("l".to_string(), 30, 2)])
        .unwrap();
    d.input_topic("prices", Serdes::string(), Serdes::i64())
        .pipe_all([("p".to_string(), 7, 1), ("q".to_string(), 0, 2)])
        .unwrap();
    let read = |t: &str| d.output_topic(t, Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(read("audited"), vec![("b".to_string(), 300)]);
    assert_eq!(read("small"), vec![("s".to_string(), 3)]);
    assert_eq!(read("large"), vec![("l".to_string(), 31)]);
    let prices = d.output_topic("positive-prices", Serdes::string(), Serdes::nullable(Serdes::i64()));
    // `q` = 0 never matched the filter, and a row that never passed is not deleted downstream.
    assert_eq!(prices.read_key_values().unwrap(), vec![("p".to_string(), Some(7))]);
}

#[test]
fn illegal_names_are_reported_by_build() {
    let builder = StreamsBuilder::new();
    let s = builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64()));
    s.filter_named(|_, _| true, Named::as_("has space")).to("out", Produced::default());
    s.map_values_named(|v| v, Named::as_("..")).to("out2", Produced::default());
    let err = builder.build().err().expect("illegal names fail the build").to_string();
    assert!(err.contains("\"has space\" is illegal"), "{err}");
    assert!(err.contains("cannot be \".\" or \"..\""), "{err}");
}

#[test]
fn stream_table_join_repartitions_through_a_topic_named_after_the_join_or_the_stream() {
    let builder = StreamsBuilder::new();
    let table = builder.table("t", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("t-store")); // 0, 1
    let rekeyed = builder
        .stream("s", Consumed::with(Serdes::string(), Serdes::i64())) // KSTREAM-SOURCE-0000000002
        .select_key(|_, v| v.to_string()); // KSTREAM-KEY-SELECT-0000000003
                                           // Unnamed: the topic is named after the stream's node; sink 4, filter 5, source 6, join 7.
    rekeyed.join(&table, |v, t| v + t, Joined::default()).to("out", Produced::default());
    // Named: the topic and the join processor take the name; sink 9, filter 10, source 11, join 12.
    rekeyed.left_join(&table, |v, t| v + t.unwrap_or(0), Joined::as_("enrich")).to("out2", Produced::default());
    let topology = builder.build().unwrap();
    let mut topics: Vec<String> = topology
        .internal_topics()
        .iter()
        .filter(|t| matches!(t.kind, InternalTopicKind::Repartition))
        .map(|t| t.name.clone())
        .collect();
    topics.sort();
    assert_eq!(topics, ["KSTREAM-KEY-SELECT-0000000003-repartition", "enrich-repartition"]);
    let text = topology.describe().to_string();
    for node in [
        "Processor: KSTREAM-JOIN-0000000007 (stores: [t-store])",
        "Processor: enrich (stores: [t-store])",
        "Sink: KSTREAM-SINK-0000000013 (topic: out2)",
    ] {
        assert!(text.contains(node), "{node} missing in\n{text}");
    }
}
