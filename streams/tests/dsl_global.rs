//! Global tables and stream–global-table joins through the test driver: inner and left joins,
//! table updates and deletes, key selectors that map to another key, several partitions, the
//! topology's description, and global stores in the Processor API.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use kstreams_state::StateError;
use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams_streams::error::Result;
use kstreams_streams::header::Headers;
use kstreams_streams::partitioner::default_partition;
use kstreams_streams::processor::{Processor, ProcessorContext};
use kstreams_streams::record::Record;
use kstreams_streams::serde::Serdes;
use kstreams_streams::store::Stores;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::topology::Topology;
use kstreams_streams::StreamsError;

fn s(v: &str) -> String {
    v.to_string()
}

fn pair(k: &str, v: &str) -> (String, String) {
    (s(k), s(v))
}

/// products (product id -> name) as a global table; orders (order id -> product id) joined with
/// it into `inner` and `left`.
fn shop() -> StreamsBuilder {
    let b = StreamsBuilder::new();
    let products =
        b.global_table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("products"));
    let orders = b.stream("orders", Consumed::with(Serdes::string(), Serdes::string()));
    orders
        .join_global(
            &products,
            |_order: &String, product: &String| product.clone(),
            |p: &String, name: &String| format!("{p}/{name}"),
        )
        .to("inner", Produced::default());
    orders
        .left_join_global(
            &products,
            |_order: &String, product: &String| product.clone(),
            |p: &String, name| format!("{p}/{}", name.map_or("-", String::as_str)),
        )
        .to("left", Produced::default());
    b
}

#[test]
fn inner_and_left_joins_look_up_the_global_table_and_table_updates_emit_nothing() {
    let d = TopologyTestDriver::new(shop().build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let products = d.input_topic("products", Serdes::string(), Serdes::string());
    let orders = d.input_topic("orders", Serdes::string(), Serdes::string());
    let inner = d.output_topic("inner", Serdes::string(), Serdes::string());
    let left = d.output_topic("left", Serdes::string(), Serdes::string());
    products.pipe(s("p1"), s("kettle"), 1).unwrap();
    products.pipe(s("p2"), s("toaster"), 2).unwrap();
    assert!(inner.is_empty() && left.is_empty(), "table records produce no output");
    orders.pipe(s("o1"), s("p1"), 10).unwrap();
    orders.pipe(s("o2"), s("p3"), 11).unwrap(); // no such product yet
    orders.pipe(s("o3"), s("p2"), 12).unwrap();
    assert_eq!(
        inner.read_key_values_with_time().unwrap(),
        vec![(s("o1"), s("p1/kettle"), 10), (s("o3"), s("p2/toaster"), 12)]
    );
    assert_eq!(
        left.read_key_values().unwrap(),
        vec![pair("o1", "p1/kettle"), pair("o2", "p3/-"), pair("o3", "p2/toaster")]
    );
    // The missing product arrives: no output for the order that missed it (no table-side trigger).
    products.pipe(s("p3"), s("lamp"), 13).unwrap();
    assert!(inner.is_empty() && left.is_empty());
    orders.pipe(s("o4"), s("p3"), 14).unwrap();
    assert_eq!(inner.read_key_values().unwrap(), vec![pair("o4", "p3/lamp")]);
    assert_eq!(left.read_key_values().unwrap(), vec![pair("o4", "p3/lamp")]);
}

#[test]
fn global_table_updates_and_deletes_change_what_later_records_see() {
    let d = TopologyTestDriver::new(shop().build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let products = d.input_topic("products", Serdes::string(), Serdes::nullable(Serdes::string()));
    let orders = d.input_topic("orders", Serdes::string(), Serdes::string());
    let inner = d.output_topic("inner", Serdes::string(), Serdes::string());
    let left = d.output_topic("left", Serdes::string(), Serdes::string());
    products.pipe(s("p1"), Some(s("kettle")), 1).unwrap();
    products.pipe(s("p2"), Some(s("toaster")), 1).unwrap();
    orders.pipe(s("o1"), s("p1"), 2).unwrap();
    products.pipe(s("p1"), Some(s("kettle v2")), 3).unwrap();
    orders.pipe(s("o2"), s("p1"), 4).unwrap();
    products.pipe(s("p1"), None, 5).unwrap(); // tombstone: p1 is deleted
    orders.pipe(s("o3"), s("p1"), 6).unwrap();
    // A record without a key cannot be stored: it is skipped.
    products.pipe_bytes(None, Some(b"ghost".to_vec()), 7, Headers::new()).unwrap();
    assert_eq!(inner.read_key_values().unwrap(), vec![pair("o1", "p1/kettle"), pair("o2", "p1/kettle v2")]);
    assert_eq!(
        left.read_key_values().unwrap(),
        vec![pair("o1", "p1/kettle"), pair("o2", "p1/kettle v2"), pair("o3", "p1/-")]
    );
    // The global store holds the latest value per key of the topic.
    let entries = d.key_value_store_entries::<String, String>("products").unwrap();
    assert_eq!(entries, vec![pair("p2", "toaster")]);
}

#[test]
fn a_record_of_the_global_topic_that_does_not_deserialize_is_an_error_and_is_not_stored() {
    let b = StreamsBuilder::new();
    let rates = b.global_table("rates", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("rates"));
    b.stream("amounts", Consumed::with(Serdes::string(), Serdes::i64()))
        .join_global(&rates, |currency: &String, _| currency.clone(), |amount: &i64, rate: &i64| amount * rate)
        .to("converted", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let rates = d.input_topic("rates", Serdes::string(), Serdes::i64());
    rates.pipe(s("usd"), 2, 1).unwrap();
    let err = rates.pipe_bytes(Some(b"usd".to_vec()), Some(b"bad".to_vec()), 2, Headers::new()).unwrap_err();
    assert!(matches!(&err, StreamsError::Deserialization { topic, part: "value", .. } if topic == "rates"), "{err}");
    assert_eq!(d.key_value_store_entries::<String, i64>("rates").unwrap(), vec![(s("usd"), 2)]);
    d.input_topic("amounts", Serdes::string(), Serdes::i64()).pipe(s("usd"), 21, 3).unwrap();
    let out = d.output_topic("converted", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(out, vec![(s("usd"), 42)]);
}

#[test]
fn the_consumed_timestamp_extractor_sees_every_global_record_and_a_negative_timestamp_drops_it() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let seen: Arc<Mutex<Vec<(String, i64, i64)>>> = Arc::default();
    let calls = Arc::new(AtomicUsize::new(0));
    let (log, count) = (seen.clone(), calls.clone());
    // The rate's event time is its value times 1000; a rate of 0 gets -1, an invalid timestamp.
    let extractor = move |k: &String, v: &i64, ts: i64, _pt: i64| {
        count.fetch_add(1, Ordering::SeqCst);
        let extracted = if *v == 0 { -1 } else { v * 1000 };
        log.lock().unwrap().push((k.clone(), ts, extracted));
        extracted
    };
    let b = StreamsBuilder::new();
    let rates = b.global_table(
        "rates",
        Consumed::with(Serdes::string(), Serdes::i64()).with_timestamp_extractor(extractor),
        Materialized::as_("rates"),
    );
    b.stream("amounts", Consumed::with(Serdes::string(), Serdes::i64()))
        .left_join_global(&rates, |c: &String, _| c.clone(), |a: &i64, r: Option<&i64>| a * r.copied().unwrap_or(-1))
        .to("converted", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("rates", Serdes::string(), Serdes::i64());
    input.pipe(s("usd"), 2, 10).unwrap();
    input.pipe(s("eur"), 0, 11).unwrap(); // extracted -1: dropped, not stored
    input.pipe(s("gbp"), 3, 12).unwrap();
    // A tombstone does not reach the extractor (it has no value) and deletes with its own timestamp.
    input.pipe_bytes(Some(b"gbp".to_vec()), None, 13, Headers::new()).unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(*seen.lock().unwrap(), vec![(s("usd"), 10, 2000), (s("eur"), 11, -1), (s("gbp"), 12, 3000)]);
    assert_eq!(d.key_value_store_entries::<String, i64>("rates").unwrap(), vec![(s("usd"), 2)]);
    assert_eq!(d.dropped_records(), 1);
    let amounts = d.input_topic("amounts", Serdes::string(), Serdes::i64());
    amounts.pipe_all([(s("usd"), 5, 20), (s("eur"), 5, 21)]).unwrap();
    let out = d.output_topic("converted", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(out, vec![(s("usd"), 10), (s("eur"), -5)]);
}

#[test]
fn a_key_selector_may_map_to_another_key_type_from_key_and_value() {
    let b = StreamsBuilder::new();
    // country number -> country name
    let countries =
        b.global_table("countries", Consumed::with(Serdes::i32(), Serdes::string()), Materialized::as_("countries"));
    // user -> "page@country number"; the country comes from the value.
    b.stream("visits", Consumed::with(Serdes::string(), Serdes::string()))
        .join_global(
            &countries,
            |_user: &String, visit: &String| visit.rsplit('@').next().and_then(|c| c.parse::<i32>().ok()).unwrap_or(-1),
            |visit: &String, country: &String| format!("{visit} from {country}"),
        )
        .to("visits-by-country", Produced::default());
    // "region:user" -> anything; the table key comes from the stream key.
    let regions = b.global_table(
        "regions",
        Consumed::with(Serdes::string(), Serdes::i64()),
        Materialized::as_("regions").in_memory(),
    );
    b.stream("logins", Consumed::with(Serdes::string(), Serdes::unit()))
        .left_join_global(
            &regions,
            |key: &String, _| key.split(':').next().unwrap_or_default().to_uppercase(),
            |_, servers: Option<&i64>| servers.copied().unwrap_or(0),
        )
        .to("servers", Produced::with(Serdes::string(), Serdes::i64()));
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let countries = d.input_topic("countries", Serdes::i32(), Serdes::string());
    countries.pipe(49, s("Germany"), 1).unwrap();
    countries.pipe(33, s("France"), 1).unwrap();
    let visits = d.input_topic("visits", Serdes::string(), Serdes::string());
    visits.pipe(s("ann"), s("/home@49"), 2).unwrap();
    visits.pipe(s("bob"), s("/shop@33"), 3).unwrap();
    visits.pipe(s("cid"), s("/shop@1"), 4).unwrap(); // unknown country: dropped by the inner join
    let out = d.output_topic("visits-by-country", Serdes::string(), Serdes::string()).read_key_values().unwrap();
    assert_eq!(out, vec![pair("ann", "/home@49 from Germany"), pair("bob", "/shop@33 from France")], "keys stay");
    d.input_topic("regions", Serdes::string(), Serdes::i64()).pipe(s("EU"), 12, 1).unwrap();
    let logins = d.input_topic("logins", Serdes::string(), Serdes::unit());
    logins.pipe(s("eu:ann"), (), 5).unwrap();
    logins.pipe(s("us:bob"), (), 6).unwrap();
    let out = d.output_topic("servers", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(out, vec![(s("eu:ann"), 12), (s("us:bob"), 0)]);
}

#[test]
fn a_null_selected_key_is_dropped_by_the_inner_join_and_null_joined_by_the_left_join() {
    let b = StreamsBuilder::new();
    let names = b.global_table(
        "names",
        Consumed::with(Serdes::nullable(Serdes::string()), Serdes::string()),
        Materialized::as_("names"),
    );
    let ids = b.stream("ids", Consumed::with(Serdes::string(), Serdes::string()));
    let select = |_: &String, v: &String| if v.is_empty() { None } else { Some(v.clone()) };
    ids.join_global(&names, select, |_, name: &String| name.clone()).to("inner", Produced::default());
    ids.left_join_global(&names, select, |_, name: Option<&String>| name.cloned().unwrap_or_else(|| s("?")))
        .to("left", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    d.input_topic("names", Serdes::string(), Serdes::string()).pipe(s("1"), s("one"), 1).unwrap();
    let ids = d.input_topic("ids", Serdes::string(), Serdes::string());
    ids.pipe(s("a"), s("1"), 2).unwrap();
    ids.pipe(s("b"), s(""), 3).unwrap(); // selects a null key
    let read = |t: &str| d.output_topic(t, Serdes::string(), Serdes::string()).read_key_values().unwrap();
    assert_eq!(read("inner"), vec![pair("a", "one")]);
    assert_eq!(read("left"), vec![pair("a", "one"), pair("b", "?")]);
    assert_eq!(d.dropped_records(), 1, "the inner join counts the record it dropped");
}

#[test]
fn every_task_of_a_multi_partition_stream_sees_every_partition_of_the_global_topic() {
    let config = TestDriverConfig::new("app").partitions("orders", 4).partitions("products", 3).partitions("inner", 4);
    let d = TopologyTestDriver::new(shop().build().unwrap(), config).unwrap();
    // The global store's sub-topology number is taken: the stream's tasks are 1_0..1_3.
    let tasks: Vec<String> = d.tasks().iter().map(ToString::to_string).collect();
    assert_eq!(tasks, ["1_0", "1_1", "1_2", "1_3"]);
    let products = d.input_topic("products", Serdes::string(), Serdes::string());
    let product_partitions: BTreeSet<i32> = (0..30).map(|i| default_partition(format!("p{i}").as_bytes(), 3)).collect();
    assert_eq!(product_partitions.len(), 3, "the products are spread over the 3 partitions");
    for i in 0..30 {
        products.pipe(format!("p{i}"), format!("name{i}"), i).unwrap();
    }
    let orders = d.input_topic("orders", Serdes::string(), Serdes::string());
    let mut expected = BTreeMap::new();
    let mut order_partitions = BTreeSet::new();
    for i in 0..40 {
        let order = format!("o{i}");
        order_partitions.insert(default_partition(order.as_bytes(), 4));
        orders.pipe(order.clone(), format!("p{}", i % 30), 100 + i).unwrap();
        expected.insert(order, format!("p{}/name{}", i % 30, i % 30));
    }
    assert_eq!(order_partitions.len(), 4, "the orders are spread over the 4 tasks");
    let out = d.output_topic("inner", Serdes::string(), Serdes::string()).read_records().unwrap();
    let joined: BTreeMap<String, String> = out.iter().map(|(_, r)| (r.key.clone(), r.value.clone())).collect();
    assert_eq!(out.len(), 40);
    assert_eq!(joined, expected, "every order found its product, whatever the partitions");
    for (partition, record) in &out {
        assert_eq!(*partition, default_partition(record.key.as_bytes(), 4), "the stream key keeps its partition");
    }
}

#[test]
fn a_global_table_needs_no_repartition_nor_copartitioning_and_is_described_apart() {
    let b = StreamsBuilder::new();
    let products =
        b.global_table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("products"));
    b.stream("orders", Consumed::with(Serdes::string(), Serdes::string()))
        .map(|order: String, product: String| (product, order)) // a key change: no repartition for a global join
        .join_global(
            &products,
            |product: &String, _| product.clone(),
            |order: &String, name: &String| format!("{order}:{name}"),
        )
        .to("out", Produced::default());
    let topology = b.build().unwrap();
    assert!(topology.internal_topics().is_empty(), "{:?}", topology.internal_topics());
    assert!(topology.copartition_groups().is_empty());
    let counts = topology
        .resolve_partition_counts(&HashMap::from([(s("orders"), 4), (s("products"), 3), (s("out"), 1)]))
        .unwrap();
    assert_eq!(counts.get("orders"), Some(&4));
    let subs = topology.subtopologies();
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].id, subs[0].source_topics.clone()), (1, vec![s("orders")]));
    let global = topology.global_stores();
    assert_eq!(global.len(), 1);
    assert_eq!((global[0].id, global[0].store.as_str(), global[0].topic.as_str()), (0, "products", "products"));
    let expected = "Topologies:\n   \
        Sub-topology: 0 for global store (will not generate tasks)\n    \
        Source: KSTREAM-SOURCE-0000000000 (topics: [products])\n      --> KTABLE-SOURCE-0000000001\n    \
        Processor: KTABLE-SOURCE-0000000001 (stores: [products])\n      --> none\n      <-- KSTREAM-SOURCE-0000000000\n  \
        Sub-topology: 1\n    \
        Source: KSTREAM-SOURCE-0000000002 (topics: [orders])\n      --> KSTREAM-MAP-0000000003\n    \
        Processor: KSTREAM-MAP-0000000003 (stores: [])\n      --> KSTREAM-LEFTJOIN-0000000004\n      <-- KSTREAM-SOURCE-0000000002\n    \
        Processor: KSTREAM-LEFTJOIN-0000000004 (stores: [])\n      --> KSTREAM-SINK-0000000005\n      <-- KSTREAM-MAP-0000000003\n    \
        Sink: KSTREAM-SINK-0000000005 (topic: out)\n      <-- KSTREAM-LEFTJOIN-0000000004\n\n";
    assert_eq!(topology.describe().to_string(), expected);
    let mermaid = topology.describe().to_mermaid();
    assert!(mermaid.contains("Sub-topology 0 (global store)"), "{mermaid}");
    assert!(mermaid.contains("KTABLE_SOURCE_0000000001 --- store_products"), "{mermaid}");
}

#[test]
fn global_stores_and_sub_topologies_are_numbered_together_by_source_name() {
    let b = StreamsBuilder::new();
    let orders = b.stream("orders", Consumed::with(Serdes::string(), Serdes::string())); // KSTREAM-SOURCE-0000000000
    let products =
        b.global_table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::default());
    orders.join_global(&products, |_, p: &String| p.clone(), |_, n: &String| n.clone()).to("out", Produced::default());
    b.stream("returns", Consumed::with(Serdes::string(), Serdes::string())).to("out2", Produced::default());
    let topology = b.build().unwrap();
    assert_eq!(products.queryable_store_name(), "products-STATE-STORE-0000000001");
    let ids: Vec<u32> = topology.subtopologies().iter().map(|s| s.id).collect();
    assert_eq!(ids, [0, 2]);
    assert_eq!(topology.global_stores()[0].id, 1);
    let text = topology.describe().to_string();
    let positions: Vec<usize> = ["Sub-topology: 0\n", "Sub-topology: 1 for global store", "Sub-topology: 2\n"]
        .iter()
        .map(|h| text.find(h).unwrap_or_else(|| panic!("{h:?} missing in\n{text}")))
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
}

/// Tags each word with its language from the global store `languages`, and tries to write it.
struct Tagger;

impl Processor<String, String> for Tagger {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<()> {
        let languages = ctx.key_value_store::<String, String>("languages")?;
        let language = languages.get(&record.value)?.unwrap_or_else(|| s("?"));
        let refused = languages.put(&record.value, &s("written by a task"));
        assert!(matches!(refused, Err(StreamsError::State(StateError::ReadOnly(ref store))) if store == "languages"));
        ctx.forward(record.with_value(language))
    }
}

#[test]
fn processors_read_a_hand_built_global_store_without_being_connected_and_cannot_write_it() {
    let mut t = Topology::new();
    t.add_global_store(
        Stores::key_value("languages", Serdes::string(), Serdes::string()),
        "languages-source",
        "languages",
        Serdes::string(),
        Serdes::string(),
        "languages-update",
    )
    .unwrap()
    .add_source("words-source", &["words"], Serdes::string(), Serdes::string())
    .unwrap()
    .add_processor("tagger", || Tagger, &["words-source"])
    .unwrap()
    .add_sink("tagged", "tagged", Serdes::string(), Serdes::string(), &["tagger"])
    .unwrap();
    // Connecting, reading the topic twice, or reusing names is refused.
    let connect = t.connect_processor_and_state_stores("tagger", &["languages"]).err().unwrap();
    assert!(connect.to_string().contains("global store"), "{connect}");
    let twice = t.add_source("again", &["languages"], Serdes::string(), Serdes::string()).err().unwrap();
    assert!(twice.to_string().contains("global store `languages`"), "{twice}");
    let store = Stores::key_value("languages", Serdes::string(), Serdes::string());
    let duplicate = t.add_state_store(store, &["tagger"]).err().unwrap();
    assert!(duplicate.to_string().contains("exists already"), "{duplicate}");
    let same_name = t
        .add_global_store(
            Stores::key_value("other", Serdes::string(), Serdes::string()),
            "tagger",
            "other",
            Serdes::string(),
            Serdes::string(),
            "other-update",
        )
        .err()
        .unwrap();
    assert!(same_name.to_string().contains("`tagger` exists already"), "{same_name}");
    assert!(t.internal_topics().is_empty(), "a global store is not logged");

    let d = TopologyTestDriver::new(t, TestDriverConfig::new("app").partitions("words", 2)).unwrap();
    let languages = d.input_topic("languages", Serdes::string(), Serdes::string());
    languages.pipe(s("hallo"), s("de"), 1).unwrap();
    languages.pipe(s("hello"), s("en"), 1).unwrap();
    let words = d.input_topic("words", Serdes::string(), Serdes::string());
    for (i, w) in ["hallo", "hello", "hola"].iter().enumerate() {
        words.pipe(format!("k{i}"), s(w), 2).unwrap();
    }
    let out = d.output_topic("tagged", Serdes::string(), Serdes::string()).read_key_value_map().unwrap();
    assert_eq!(out, BTreeMap::from([pair("k0", "de"), pair("k1", "en"), pair("k2", "?")]));
    let entries = d.key_value_store_entries::<String, String>("languages").unwrap();
    assert_eq!(entries, vec![pair("hallo", "de"), pair("hello", "en")], "no task wrote the store");
}
