//! Aggregations, tables, joins and windows through the topology test driver, with hand-computed
//! expectations.

use std::collections::BTreeMap;
use std::time::Duration;

use kstreams_streams::dsl::{Consumed, Grouped, Joined, Materialized, Produced, StreamsBuilder, TimeWindows, Windows};
use kstreams_streams::serde::Serdes;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::windowed::{Window, Windowed};

fn word_count(builder: &StreamsBuilder) {
    builder
        .stream("streams-plaintext-input", Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| line.to_lowercase().split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .group_by(|_, word: &String| word.clone(), Grouped::default())
        .count(Materialized::as_("counts-store"))
        .to_stream()
        .to("streams-wordcount-output", Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
}

/// The word-count topology of Kafka Streams' tutorial (docs/streams/tutorial.html), in the layout of
/// `TopologyDescription.toString()`.
const WORD_COUNT_DESCRIPTION: &str = "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [streams-plaintext-input])
      --> KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FLATMAPVALUES-0000000001 (stores: [])
      --> KSTREAM-KEY-SELECT-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-KEY-SELECT-0000000002 (stores: [])
      --> KSTREAM-FILTER-0000000005
      <-- KSTREAM-FLATMAPVALUES-0000000001
    Processor: KSTREAM-FILTER-0000000005 (stores: [])
      --> KSTREAM-SINK-0000000004
      <-- KSTREAM-KEY-SELECT-0000000002
    Sink: KSTREAM-SINK-0000000004 (topic: counts-store-repartition)
      <-- KSTREAM-FILTER-0000000005

  Sub-topology: 1
    Source: KSTREAM-SOURCE-0000000006 (topics: [counts-store-repartition])
      --> KSTREAM-AGGREGATE-0000000003
    Processor: KSTREAM-AGGREGATE-0000000003 (stores: [counts-store])
      --> KTABLE-TOSTREAM-0000000007
      <-- KSTREAM-SOURCE-0000000006
    Processor: KTABLE-TOSTREAM-0000000007 (stores: [])
      --> KSTREAM-SINK-0000000008
      <-- KSTREAM-AGGREGATE-0000000003
    Sink: KSTREAM-SINK-0000000008 (topic: streams-wordcount-output)
      <-- KTABLE-TOSTREAM-0000000007

";

#[test]
fn word_count_describe_matches_kafka_streams() {
    let builder = StreamsBuilder::new();
    word_count(&builder);
    let topology = builder.build().unwrap();
    assert_eq!(topology.describe().to_string(), WORD_COUNT_DESCRIPTION);
    let mermaid = topology.describe().to_mermaid();
    assert!(mermaid.contains("KSTREAM_AGGREGATE_0000000003 --- store_counts_store"), "{mermaid}");
}

#[test]
fn word_count_over_several_partitions_counts_every_word_once_per_occurrence() {
    let builder = StreamsBuilder::new();
    word_count(&builder);
    let config =
        TestDriverConfig::new("wc").partitions("streams-plaintext-input", 3).partitions("streams-wordcount-output", 3);
    let d = TopologyTestDriver::new(builder.build().unwrap(), config).unwrap();
    // 3 input tasks and 3 tasks on the repartition topic (which inherits the input's count).
    assert_eq!(d.tasks().len(), 6);
    let input = d.input_topic("streams-plaintext-input", Serdes::unit(), Serdes::string());
    let lines = ["Hello Kafka Streams", "All streams lead to Kafka", "Join Kafka Summit"];
    for (i, line) in lines.iter().enumerate() {
        input.pipe((), line.to_string(), i as i64).unwrap();
    }
    let out = d.output_topic("streams-wordcount-output", Serdes::string(), Serdes::nullable(Serdes::i64()));
    let records = out.read_records().unwrap();
    assert_eq!(records.len(), 11, "one update per word occurrence");
    let latest: BTreeMap<String, Option<i64>> = records.iter().map(|(_, r)| (r.key.clone(), r.value)).collect();
    let expected: BTreeMap<String, Option<i64>> =
        [("all", 1), ("hello", 1), ("join", 1), ("kafka", 3), ("lead", 1), ("streams", 2), ("summit", 1), ("to", 1)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Some(v)))
            .collect();
    assert_eq!(latest, expected);
    // Every update of a word came from the task owning the word's repartition partition.
    for (partition, r) in &records {
        let key = r.key.as_bytes();
        assert_eq!(*partition, kstreams_streams::partitioner::default_partition(key, 3));
    }
    // The store holds the same counts.
    let store: BTreeMap<String, i64> =
        d.key_value_store_entries::<String, i64>("counts-store").unwrap().into_iter().collect();
    assert_eq!(store.get("kafka"), Some(&3));
}

#[test]
fn aggregate_and_reduce_keep_running_values() {
    let builder = StreamsBuilder::new();
    let sales = builder.stream("sales", Consumed::with(Serdes::string(), Serdes::f64()));
    let grouped = sales.group_by_key(Grouped::default());
    grouped
        .aggregate(
            || (0i64, 0.0f64),
            |_, v, (n, sum)| (n + 1, sum + v),
            Materialized::as_("stats").with_value_serde(Serdes::json()),
        )
        .to_stream()
        .map_values(|s: Option<(i64, f64)>| s.map(|(n, sum)| sum / n as f64).unwrap_or_default())
        .to("avg", Produced::default());
    grouped.reduce(f64::max, Materialized::as_("max")).to_stream().to("max", Produced::default());
    let d = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("sales", Serdes::string(), Serdes::f64());
    input
        .pipe_all([
            ("a".to_string(), 2.0, 1),
            ("a".to_string(), 4.0, 2),
            ("b".to_string(), 1.0, 3),
            ("a".to_string(), 3.0, 4),
        ])
        .unwrap();
    let avg = d.output_topic("avg", Serdes::string(), Serdes::f64()).read_key_values().unwrap();
    assert_eq!(avg, vec![("a".into(), 2.0), ("a".into(), 3.0), ("b".into(), 1.0), ("a".into(), 3.0)]);
    let max = d.output_topic("max", Serdes::string(), Serdes::nullable(Serdes::f64())).read_key_values().unwrap();
    assert_eq!(
        max,
        vec![("a".into(), Some(2.0)), ("a".into(), Some(4.0)), ("b".into(), Some(1.0)), ("a".into(), Some(4.0))]
    );
}

#[test]
fn table_upserts_deletes_filters_and_maps() {
    let builder = StreamsBuilder::new();
    let stock =
        builder.table("stock", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("stock-store"));
    stock.filter(|_, q| *q < 10).map_values(|q| q * 2).to_stream().to("low", Produced::default());
    let d = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("stock", Serdes::string(), Serdes::nullable(Serdes::i64()));
    input.pipe("apple".into(), Some(5), 1).unwrap(); // low: 10
                                                     // Not low: nothing (no old, no new). Kafka Streams would forward a tombstone here, since nothing
                                                     // downstream asks for old values: a deliberate difference (README, "Same results as Kafka Streams").
    input.pipe("pear".into(), Some(50), 2).unwrap();
    input.pipe("apple".into(), Some(20), 3).unwrap(); // no longer low: delete
    input.pipe("pear".into(), Some(3), 4).unwrap(); // low: 6
    input.pipe("pear".into(), None, 5).unwrap(); // tombstone: delete
    let low = d.output_topic("low", Serdes::string(), Serdes::nullable(Serdes::i64())).read_key_values().unwrap();
    assert_eq!(
        low,
        vec![("apple".into(), Some(10)), ("apple".into(), None), ("pear".into(), Some(6)), ("pear".into(), None)]
    );
    let store = d.key_value_store_entries::<String, i64>("stock-store").unwrap();
    assert_eq!(store, vec![("apple".to_string(), 20)]);
}

#[test]
fn stream_table_inner_and_left_join() {
    let builder = StreamsBuilder::new();
    let prices = builder.table("prices", Consumed::with(Serdes::string(), Serdes::f64()), Materialized::as_("prices"));
    let orders = builder.stream("orders", Consumed::with(Serdes::string(), Serdes::i64()));
    orders.join(&prices, |qty, price| qty as f64 * price, Joined::default()).to("totals", Produced::default());
    orders
        .left_join(&prices, |qty, price: Option<f64>| price.map(|p| qty as f64 * p).unwrap_or(-1.0), Joined::default())
        .to("totals-left", Produced::default());
    let d = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let p = d.input_topic("prices", Serdes::string(), Serdes::f64());
    let o = d.input_topic("orders", Serdes::string(), Serdes::i64());
    o.pipe("apple".into(), 2, 1).unwrap(); // no price yet
    p.pipe("apple".into(), 1.5, 2).unwrap();
    o.pipe("apple".into(), 4, 3).unwrap();
    p.pipe("apple".into(), 2.0, 4).unwrap(); // a table update alone emits nothing
    o.pipe("apple".into(), 1, 5).unwrap();
    let inner = d.output_topic("totals", Serdes::string(), Serdes::f64()).read_key_values().unwrap();
    assert_eq!(inner, vec![("apple".into(), 6.0), ("apple".into(), 2.0)]);
    let left = d.output_topic("totals-left", Serdes::string(), Serdes::f64()).read_key_values().unwrap();
    assert_eq!(left, vec![("apple".into(), -1.0), ("apple".into(), 6.0), ("apple".into(), 2.0)]);
}

fn windowed_counts(windows: impl Windows) -> (TopologyTestDriver, &'static str) {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by(windows)
        .count(Materialized::as_("clicks-per-window"))
        .to_stream()
        .map(|w: Windowed<String>, c: Option<i64>| (format!("{}@{}", w.key(), w.window().start()), c.unwrap_or(0)))
        .to("counts", Produced::default());
    (TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap(), "counts")
}

#[test]
fn tumbling_windows_accept_out_of_order_records_within_grace_and_drop_late_ones() {
    let (d, out) =
        windowed_counts(TimeWindows::of_size_and_grace(Duration::from_millis(100), Duration::from_millis(50)));
    let input = d.input_topic("clicks", Serdes::string(), Serdes::string());
    input.pipe("u".into(), "a".into(), 10).unwrap(); // [0,100)
    input.pipe("u".into(), "b".into(), 120).unwrap(); // [100,200); stream time 120
    input.pipe("u".into(), "c".into(), 90).unwrap(); // out of order, window [0,100) closes at 150: accepted
    input.pipe("u".into(), "d".into(), 160).unwrap(); // stream time 160: [0,100) is now closed
    input.pipe("u".into(), "e".into(), 99).unwrap(); // late: dropped and counted
    let counts = d.output_topic(out, Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(counts, vec![("u@0".into(), 1), ("u@100".into(), 1), ("u@0".into(), 2), ("u@100".into(), 2)]);
    assert_eq!(d.dropped_records(), 1);
    let store = d.window_store_entries::<String, i64>("clicks-per-window").unwrap();
    let by_window: Vec<(i64, i64, i64)> =
        store.iter().map(|(w, c)| (w.window().start(), w.window().end(), *c)).collect();
    assert_eq!(by_window, vec![(0, 100, 2), (100, 200, 2)]);
}

#[test]
fn hopping_windows_count_each_record_in_every_window_containing_it() {
    let (d, out) = windowed_counts(
        TimeWindows::of_size_with_no_grace(Duration::from_millis(1000)).advance_by(Duration::from_millis(500)),
    );
    let input = d.input_topic("clicks", Serdes::string(), Serdes::string());
    input.pipe("u".into(), "a".into(), 700).unwrap(); // windows starting 0 and 500
    input.pipe("u".into(), "b".into(), 1200).unwrap(); // windows 500 and 1000; [0,1000) closes at 1000
    let counts = d.output_topic(out, Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    assert_eq!(counts, vec![("u@0".into(), 1), ("u@500".into(), 1), ("u@500".into(), 2), ("u@1000".into(), 1)]);
}

/// Calendar months in UTC: the windows the retail forecast aggregates over.
struct Months;

fn month_start(ts: i64) -> (i64, i64) {
    // Days since the epoch to a civil date (Howard Hinnant's algorithm), then the month's bounds.
    fn days_from_civil(y: i64, m: i64) -> i64 {
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }
    let days = ts.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    (days_from_civil(y, m) * 86_400_000, days_from_civil(ny, nm) * 86_400_000)
}

impl Windows for Months {
    fn windows_for(&self, ts: i64) -> Vec<Window> {
        let (start, end) = month_start(ts);
        vec![Window::new(start, end)]
    }
    fn size_ms(&self) -> i64 {
        31 * 86_400_000
    }
    fn grace_ms(&self) -> i64 {
        86_400_000
    }
}

#[test]
fn user_defined_calendar_month_windows() {
    let (d, out) = windowed_counts(Months);
    let input = d.input_topic("clicks", Serdes::string(), Serdes::string());
    let jan_31 = 1_706_659_200_000; // 2024-01-31T00:00Z
    let feb_1 = 1_706_745_600_000; // 2024-02-01T00:00Z
    let feb_29 = 1_709_164_800_000; // 2024-02-29T00:00Z
    input.pipe("p".into(), "a".into(), jan_31).unwrap();
    input.pipe("p".into(), "b".into(), feb_1).unwrap();
    input.pipe("p".into(), "c".into(), feb_29).unwrap();
    let counts = d.output_topic(out, Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    let jan_1: i64 = 1_704_067_200_000; // 2024-01-01T00:00Z
    assert_eq!(counts, vec![(format!("p@{jan_1}"), 1), (format!("p@{feb_1}"), 1), (format!("p@{feb_1}"), 2)]);
}

#[test]
fn suppress_until_window_closes_emits_one_final_result_per_window() {
    use kstreams_streams::dsl::Suppressed;
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by(TimeWindows::of_size_and_grace(Duration::from_millis(100), Duration::from_millis(20)))
        .count(Materialized::as_("counts"))
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .map(|w: Windowed<String>, c: Option<i64>| (format!("{}@{}", w.key(), w.window().start()), c.unwrap_or(0)))
        .to("final", Produced::default());
    let d = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("clicks", Serdes::string(), Serdes::string());
    let out = d.output_topic("final", Serdes::string(), Serdes::i64());
    input.pipe("a".into(), "x".into(), 10).unwrap();
    input.pipe("a".into(), "x".into(), 50).unwrap();
    input.pipe("b".into(), "x".into(), 60).unwrap();
    input.pipe("a".into(), "x".into(), 110).unwrap(); // [0,100) closes at 120: nothing yet
    assert!(out.is_empty());
    input.pipe("a".into(), "x".into(), 119).unwrap();
    assert!(out.is_empty());
    input.pipe("c".into(), "x".into(), 120).unwrap(); // stream time 120: [0,100) is final
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![("a@0".to_string(), 2, 50), ("b@0".to_string(), 1, 60)]);
    input.pipe("c".into(), "x".into(), 500).unwrap(); // closes [100,200)
    assert_eq!(out.read_key_values().unwrap(), vec![("a@100".to_string(), 2), ("c@100".to_string(), 1)]);
}
