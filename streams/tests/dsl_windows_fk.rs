//! Sliding-window aggregations and foreign-key table-table joins through the test driver, with
//! expectations computed by hand after Kafka Streams' `KStreamSlidingWindowAggregate` and its
//! foreign-key join (subscription and response topics).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use kstreams_streams::dsl::{
    Consumed, Grouped, KTable, Materialized, Produced, SlidingWindows, StreamsBuilder, Suppressed, ValueAndTimestamp,
};
use kstreams_streams::partitioner::default_partition;
use kstreams_streams::serde::Serdes;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::topology::InternalTopicKind;
use kstreams_streams::windowed::Windowed;

// ---------------------------------------------------------------------------------------------
// Sliding windows
// ---------------------------------------------------------------------------------------------

/// `key@[start,end]`, the window of a sliding aggregation's result.
fn label(w: &Windowed<String>) -> String {
    format!("{}@[{},{}]", w.key(), w.window().start(), w.window().end())
}

/// A driver counting "clicks" per key over sliding windows into "counts" (`label` → count).
fn sliding_counts(windows: SlidingWindows, input_partitions: i32) -> TopologyTestDriver {
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by_sliding(windows)
        .count(Materialized::as_("sliding-counts"))
        .to_stream()
        .map(|w: Windowed<String>, c: Option<i64>| (label(&w), c.unwrap_or(-1)))
        .to("counts", Produced::default());
    let config = TestDriverConfig::new("app").partitions("clicks", input_partitions);
    TopologyTestDriver::new(builder.build().unwrap(), config).unwrap()
}

fn e(k: &str, v: i64, ts: i64) -> (String, i64, i64) {
    (k.to_string(), v, ts)
}

#[test]
fn sliding_count_creates_left_and_right_windows_and_updates_every_window_a_record_is_in() {
    let d = sliding_counts(
        SlidingWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::from_millis(100)),
        2,
    );
    let clicks = d.input_topic("clicks", Serdes::string(), Serdes::string());
    let out = d.output_topic("counts", Serdes::string(), Serdes::i64());

    clicks.pipe("A".into(), "x".into(), 20).unwrap();
    // The record's left window [10,20]; no right window (nothing after it yet).
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![e("A@[10,20]", 1, 20)]);

    clicks.pipe("A".into(), "x".into(), 25).unwrap();
    // 25 falls into the right window of 20, created now; its own left window [15,25] holds 20 too.
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![e("A@[21,31]", 1, 25), e("A@[15,25]", 2, 25)]);

    // Another key has windows of its own.
    clicks.pipe("B".into(), "x".into(), 21).unwrap();
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![e("B@[11,21]", 1, 21)]);

    clicks.pipe("A".into(), "x".into(), 22).unwrap();
    // Out of order (within grace): 22 updates the existing windows containing it ([15,25] and
    // [21,31], which keep their latest timestamp 25), gets a left window [12,22] holding 20 and 22,
    // and a right window [23,33] holding 25. As in Kafka Streams, the existing windows are updated
    // latest start first.
    assert_eq!(
        out.read_key_values_with_time().unwrap(),
        vec![e("A@[21,31]", 2, 25), e("A@[15,25]", 3, 25), e("A@[12,22]", 2, 22), e("A@[23,33]", 1, 25)]
    );

    clicks.pipe("A".into(), "x".into(), 40).unwrap();
    // Nothing within 10 before 40, and the right window of 25 ([26,36]) would not hold 40.
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![e("A@[30,40]", 1, 40)]);
    assert_eq!(d.dropped_records(), 0);

    // The store keeps each window's count with the largest timestamp of its records.
    let mut stored: Vec<(String, i64, i64)> = d
        .window_store_entries_with_timestamps::<String, i64>("sliding-counts")
        .unwrap()
        .into_iter()
        .map(|(w, v)| (label(&w), v.value, v.timestamp))
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        vec![
            e("A@[10,20]", 1, 20),
            e("A@[12,22]", 2, 22),
            e("A@[15,25]", 3, 25),
            e("A@[21,31]", 2, 25),
            e("A@[23,33]", 1, 25),
            e("A@[30,40]", 1, 40),
            e("B@[11,21]", 1, 21),
        ]
    );
}

#[test]
fn sliding_windows_drop_records_whose_windows_closed_and_count_each() {
    let d = sliding_counts(
        SlidingWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::from_millis(5)),
        1,
    );
    let clicks = d.input_topic("clicks", Serdes::string(), Serdes::string());
    let out = d.output_topic("counts", Serdes::string(), Serdes::i64());
    clicks.pipe("k".into(), "x".into(), 100).unwrap(); // [90,100]
    clicks.pipe("k".into(), "x".into(), 120).unwrap(); // [110,120]; stream time 120, windows ending before 115 are closed
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![e("k@[90,100]", 1, 100), e("k@[110,120]", 1, 120)]);

    // 104 + 10 < 115: every window it could be in is closed; dropped.
    clicks.pipe("k".into(), "x".into(), 104).unwrap();
    assert_eq!(d.dropped_records(), 1);
    // 106: its left window [96,106] and the right window of 100, [101,111], are closed: two drops,
    // and no open window holds it.
    clicks.pipe("k".into(), "x".into(), 106).unwrap();
    assert!(out.read_key_values().unwrap().is_empty());
    assert_eq!(d.dropped_records(), 3);
    // 112: its left window [102,112] is closed (a drop), but it still counts in the open window
    // [110,120], and its right window [113,123] (holding 120) is created.
    clicks.pipe("k".into(), "x".into(), 112).unwrap();
    assert_eq!(out.read_key_values_with_time().unwrap(), vec![e("k@[110,120]", 2, 120), e("k@[113,123]", 1, 120)]);
    assert_eq!(d.dropped_records(), 4);
}

#[test]
fn sliding_reduce_and_aggregate_put_early_records_in_the_first_window() {
    let builder = StreamsBuilder::new();
    let windows = SlidingWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::from_millis(50));
    let input = builder.stream("nums", Consumed::with(Serdes::string(), Serdes::string()));
    input
        .map_values(|v: String| v.len() as i64)
        .group_by_key(Grouped::with(Serdes::string(), Serdes::i64()))
        .windowed_by_sliding(windows)
        .reduce(|a, b| a + b, Materialized::as_("sums"))
        .to_stream()
        .map(|w: Windowed<String>, v: Option<i64>| (label(&w), v.unwrap_or(-1)))
        .to("sums", Produced::default());
    input
        .group_by_key(Grouped::default())
        .windowed_by_sliding(windows)
        .aggregate(String::new, |_, v: String, agg: String| agg + &v[..1], Materialized::as_("letters"))
        .to_stream()
        .map(|w: Windowed<String>, v: Option<String>| (label(&w), v.unwrap_or_default()))
        .to("letters", Produced::default());
    let d = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let nums = d.input_topic("nums", Serdes::string(), Serdes::string());
    // Values "a", "bb", "cccc", "dddddddd": letters a..d, lengths 1, 2, 4, 8.
    nums.pipe("k".into(), "a".into(), 3).unwrap();
    nums.pipe("k".into(), "bb".into(), 8).unwrap();
    nums.pipe("k".into(), "cccc".into(), 5).unwrap();
    nums.pipe("k".into(), "dddddddd".into(), 15).unwrap();
    let sums = d.output_topic("sums", Serdes::string(), Serdes::i64()).read_key_values_with_time().unwrap();
    assert_eq!(
        sums,
        vec![
            // 3 (< 10): the shared window [0,10].
            e("k@[0,10]", 1, 3),
            // 8: the right window of 3, [4,14], then [0,10].
            e("k@[4,14]", 2, 8),
            e("k@[0,10]", 3, 8),
            // 5 (out of order): [4,14] takes it; its right window [6,16] gets 8's value; then [0,10].
            e("k@[4,14]", 6, 8),
            e("k@[6,16]", 2, 8),
            e("k@[0,10]", 7, 8),
            // 15: [6,16] takes it; the right window of 8, [9,19]; its left window [5,15] from [4,14].
            e("k@[6,16]", 10, 15),
            e("k@[9,19]", 8, 15),
            e("k@[5,15]", 14, 15),
        ]
    );
    let letters = d.output_topic("letters", Serdes::string(), Serdes::string()).read_key_values().unwrap();
    let s = |k: &str, v: &str| (k.to_string(), v.to_string());
    assert_eq!(
        letters,
        vec![
            s("k@[0,10]", "a"),
            s("k@[4,14]", "b"),
            s("k@[0,10]", "ab"),
            s("k@[4,14]", "bc"),
            // A new right window starts from the aggregate of the records after the record.
            s("k@[6,16]", "b"),
            s("k@[0,10]", "abc"),
            s("k@[6,16]", "bd"),
            s("k@[9,19]", "d"),
            // A new left window starts from the aggregate of the window before it.
            s("k@[5,15]", "bcd"),
        ]
    );
}

#[test]
fn sliding_windows_after_a_repartition_and_suppressed_until_they_close() {
    let builder = StreamsBuilder::new();
    builder
        .stream("events", Consumed::with(Serdes::string(), Serdes::string()))
        // Re-keyed by the value: the aggregation reads a repartition topic.
        .group_by(|_, user: &String| user.clone(), Grouped::as_("by-user"))
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(5),
        ))
        .count(Materialized::as_("per-user"))
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .map(|w: Windowed<String>, c: Option<i64>| (label(&w), c.unwrap_or(-1)))
        .to("final", Produced::default());
    let topology = builder.build().unwrap();
    assert!(topology.internal_topics().iter().any(|t| t.name == "by-user-repartition"));
    let config = TestDriverConfig::new("app").partitions("events", 3);
    let d = TopologyTestDriver::new(topology, config).unwrap();
    let events = d.input_topic("events", Serdes::string(), Serdes::string());
    let out = d.output_topic("final", Serdes::string(), Serdes::i64());
    events.pipe("e1".into(), "u".into(), 20).unwrap(); // [10,20]=1
    assert!(out.is_empty());
    // [21,31]=1 and [15,25]=2; stream time 25 closes windows ending at 20 or before (grace 5).
    events.pipe("e2".into(), "u".into(), 25).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![("u@[10,20]".to_string(), 1)]);
    // [40,50]=1; stream time 50 closes [15,25] and [21,31].
    events.pipe("e3".into(), "u".into(), 50).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![("u@[15,25]".to_string(), 2), ("u@[21,31]".to_string(), 1)]);
}

// ---------------------------------------------------------------------------------------------
// Foreign-key joins
// ---------------------------------------------------------------------------------------------

/// `"value|fk"` → `fk` (none when empty). Takes `&String`: extractors are `Fn(&V)` with `V = String`.
#[allow(clippy::ptr_arg)]
fn fk(value: &String) -> Option<String> {
    value.split_once('|').map(|(_, fk)| fk.to_string()).filter(|fk| !fk.is_empty())
}

fn inner_joiner(l: &String, r: &String) -> String {
    format!("({l},{r})")
}

fn left_joiner(l: &String, r: Option<&String>) -> String {
    format!("({l},{})", r.map_or("null", String::as_str))
}

const LEFT_PARTITIONS: i32 = 3;
const RIGHT_PARTITIONS: i32 = 2;

/// Inner and left foreign-key joins of "left" (3 partitions) with "right" (2 partitions), written to
/// "inner" and "left-out".
fn fk_joins() -> (TopologyTestDriver, kstreams_streams::topology::Topology) {
    let b = StreamsBuilder::new();
    let left = b.table("left", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("left-store"));
    let right = b.table("right", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("right-store"));
    let inner: KTable<String, String> =
        left.join_foreign_key(&right, fk, inner_joiner, Materialized::as_("inner-join"));
    inner.to_stream().to("inner", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
    left.left_join_foreign_key(&right, fk, left_joiner, Materialized::as_("left-join"))
        .to_stream()
        .to("left-out", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
    let config = TestDriverConfig::new("app").partitions("left", LEFT_PARTITIONS).partitions("right", RIGHT_PARTITIONS);
    let d = TopologyTestDriver::new(b.build().unwrap(), config).unwrap();
    // A second copy of the topology, for inspection.
    let b2 = StreamsBuilder::new();
    let left = b2.table("left", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("left-store"));
    let right = b2.table("right", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("right-store"));
    left.join_foreign_key(&right, fk, inner_joiner, Materialized::as_("inner-join"));
    left.left_join_foreign_key(&right, fk, left_joiner, Materialized::as_("left-join"));
    (d, b2.build().unwrap())
}

type Out = Vec<(String, Option<String>)>;

fn some(k: &str, v: &str) -> (String, Option<String>) {
    (k.to_string(), Some(v.to_string()))
}

fn none(k: &str) -> (String, Option<String>) {
    (k.to_string(), None)
}

struct FkTopics<'a> {
    d: &'a TopologyTestDriver,
}

impl FkTopics<'_> {
    fn left(&self, k: &str, v: Option<&str>, ts: i64) {
        let t = self.d.input_topic("left", Serdes::string(), Serdes::nullable(Serdes::string()));
        t.pipe(k.to_string(), v.map(str::to_string), ts).unwrap();
    }
    fn right(&self, k: &str, v: Option<&str>, ts: i64) {
        let t = self.d.input_topic("right", Serdes::string(), Serdes::nullable(Serdes::string()));
        t.pipe(k.to_string(), v.map(str::to_string), ts).unwrap();
    }
    fn read(&self, topic: &str) -> Out {
        self.d.output_topic(topic, Serdes::string(), Serdes::nullable(Serdes::string())).read_key_values().unwrap()
    }
    fn store(&self, name: &str) -> BTreeMap<String, String> {
        self.d.key_value_store_entries::<String, String>(name).unwrap().into_iter().collect()
    }
}

#[test]
fn fk_join_topology_uses_subscription_and_response_topics_partitioned_like_each_side() {
    let (d, topology) = fk_joins();
    let internal: HashMap<String, InternalTopicKind> =
        topology.internal_topics().into_iter().map(|t| (t.name, t.kind)).collect();
    for name in ["inner-join", "left-join"] {
        for topic in ["subscription-registration-topic", "subscription-response-topic"] {
            assert_eq!(
                internal.get(&format!("{name}-{topic}")),
                Some(&InternalTopicKind::Repartition),
                "{name}-{topic}"
            );
        }
        assert_eq!(
            internal.get(&format!("{name}-subscription-store-changelog")),
            Some(&InternalTopicKind::Changelog),
            "{name}"
        );
        assert_eq!(internal.get(&format!("{name}-changelog")), Some(&InternalTopicKind::Changelog));
    }
    // Subscriptions are partitioned like the right table, responses like the left one.
    let known: HashMap<String, i32> =
        [("left".to_string(), LEFT_PARTITIONS), ("right".to_string(), RIGHT_PARTITIONS)].into_iter().collect();
    let counts = topology.resolve_partition_counts(&known).unwrap();
    for name in ["inner-join", "left-join"] {
        assert_eq!(counts[&format!("{name}-subscription-registration-topic")], RIGHT_PARTITIONS);
        assert_eq!(counts[&format!("{name}-subscription-response-topic")], LEFT_PARTITIONS);
        assert_eq!(counts[&format!("{name}-subscription-store-changelog")], RIGHT_PARTITIONS);
        assert_eq!(counts[&format!("{name}-changelog")], LEFT_PARTITIONS);
    }
    // Two sub-topologies: the left side (left topic and responses) and the right side.
    let subs = topology.subtopologies();
    assert_eq!(subs.len(), 2, "{}", topology.describe());
    assert_eq!(d.tasks().len() as i32, LEFT_PARTITIONS + RIGHT_PARTITIONS);

    // Records travel to the partition of the foreign key, and back to the left row's partition.
    let t = FkTopics { d: &d };
    t.right("rhs1", Some("rhsValue1"), 1);
    for (lhs, ts) in [("lhs1", 2), ("lhs2", 3), ("lhs3", 4), ("lhs4", 5)] {
        t.left(lhs, Some(&format!("v-{lhs}|rhs1")), ts);
    }
    let registrations = d.produced_to("app-inner-join-subscription-registration-topic");
    assert_eq!(registrations.len(), 4);
    let rhs1_partition = default_partition(b"rhs1", RIGHT_PARTITIONS);
    assert!(registrations.iter().all(|r| r.partition == rhs1_partition));
    let responses = d.produced_to("app-inner-join-subscription-response-topic");
    assert_eq!(responses.len(), 4);
    let mut partitions = std::collections::BTreeSet::new();
    for r in &responses {
        let key = r.key.clone().unwrap();
        assert_eq!(r.partition, default_partition(&key, LEFT_PARTITIONS), "{}", String::from_utf8_lossy(&key));
        partitions.insert(r.partition);
    }
    assert!(partitions.len() > 1, "the rows should spread over the left partitions");
    let mut inner = t.read("inner");
    inner.sort();
    assert_eq!(
        inner,
        vec![
            some("lhs1", "(v-lhs1|rhs1,rhsValue1)"),
            some("lhs2", "(v-lhs2|rhs1,rhsValue1)"),
            some("lhs3", "(v-lhs3|rhs1,rhsValue1)"),
            some("lhs4", "(v-lhs4|rhs1,rhsValue1)"),
        ]
    );
}

#[test]
fn fk_joins_follow_right_side_inserts_updates_and_deletes() {
    // Kafka's KTableKTableForeignKeyJoinIntegrationTest.doJoinFromRightThenDeleteRightEntity.
    let (d, _) = fk_joins();
    let t = FkTopics { d: &d };
    t.left("lhs1", Some("lhsValue1|rhs1"), 1);
    t.left("lhs2", Some("lhsValue2|rhs2"), 2);
    t.left("lhs3", Some("lhsValue3|rhs1"), 3);
    // No right rows yet: nothing for the inner join, half-joined rows for the left join.
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(
        t.read("left-out"),
        vec![
            some("lhs1", "(lhsValue1|rhs1,null)"),
            some("lhs2", "(lhsValue2|rhs2,null)"),
            some("lhs3", "(lhsValue3|rhs1,null)")
        ]
    );

    t.right("rhs1", Some("rhsValue1"), 4);
    let both = vec![some("lhs1", "(lhsValue1|rhs1,rhsValue1)"), some("lhs3", "(lhsValue3|rhs1,rhsValue1)")];
    assert_eq!(t.read("inner"), both);
    assert_eq!(t.read("left-out"), both);

    t.right("rhs2", Some("rhsValue2"), 5);
    assert_eq!(t.read("inner"), vec![some("lhs2", "(lhsValue2|rhs2,rhsValue2)")]);
    assert_eq!(t.read("left-out"), vec![some("lhs2", "(lhsValue2|rhs2,rhsValue2)")]);

    t.right("rhs3", Some("rhsValue3"), 6); // nobody refers to rhs3
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(t.read("left-out"), vec![]);

    t.right("rhs1", Some("rhsValue1b"), 7); // an update re-joins every row referring to it
    let both = vec![some("lhs1", "(lhsValue1|rhs1,rhsValue1b)"), some("lhs3", "(lhsValue3|rhs1,rhsValue1b)")];
    assert_eq!(t.read("inner"), both);
    assert_eq!(t.read("left-out"), both);

    // Deleting the right row deletes the inner results and leaves the left join half-joined.
    t.right("rhs1", None, 8);
    assert_eq!(t.read("inner"), vec![none("lhs1"), none("lhs3")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(lhsValue1|rhs1,null)"), some("lhs3", "(lhsValue3|rhs1,null)")]);

    let expected: BTreeMap<String, String> =
        [("lhs2".to_string(), "(lhsValue2|rhs2,rhsValue2)".to_string())].into_iter().collect();
    assert_eq!(t.store("inner-join"), expected);
    let expected: BTreeMap<String, String> =
        [("lhs1", "(lhsValue1|rhs1,null)"), ("lhs2", "(lhsValue2|rhs2,rhsValue2)"), ("lhs3", "(lhsValue3|rhs1,null)")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    assert_eq!(t.store("left-join"), expected);
    assert_eq!(d.dropped_records(), 0);
}

#[test]
fn fk_joins_move_rows_between_foreign_keys_and_remove_old_results() {
    let (d, _) = fk_joins();
    let t = FkTopics { d: &d };
    t.right("rhs1", Some("r1"), 1);
    t.right("rhs2", Some("r2"), 2);

    t.left("lhs1", Some("a|rhs1"), 3);
    assert_eq!(t.read("inner"), vec![some("lhs1", "(a|rhs1,r1)")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(a|rhs1,r1)")]);

    // Another foreign key with a row: the result follows.
    t.left("lhs1", Some("b|rhs2"), 4);
    assert_eq!(t.read("inner"), vec![some("lhs1", "(b|rhs2,r2)")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(b|rhs2,r2)")]);

    // A foreign key without a row: the inner result is deleted.
    t.left("lhs1", Some("c|rhs3"), 5);
    assert_eq!(t.read("inner"), vec![none("lhs1")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(c|rhs3,null)")]);

    // Moving again between foreign keys without rows: as in Kafka Streams, the inner join cannot
    // know there was no result and emits another tombstone.
    t.left("lhs1", Some("d|rhs4"), 6);
    assert_eq!(t.read("inner"), vec![none("lhs1")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(d|rhs4,null)")]);

    // The new foreign key gets a row; the old ones no longer concern lhs1.
    t.right("rhs4", Some("r4"), 7);
    assert_eq!(t.read("inner"), vec![some("lhs1", "(d|rhs4,r4)")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(d|rhs4,r4)")]);
    t.right("rhs2", Some("r2b"), 8);
    t.right("rhs3", Some("r3"), 9);
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(t.read("left-out"), vec![]);

    // An update keeping the foreign key re-joins.
    t.left("lhs1", Some("e|rhs4"), 10);
    assert_eq!(t.read("inner"), vec![some("lhs1", "(e|rhs4,r4)")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(e|rhs4,r4)")]);

    // Deleting the left row deletes its result (once), and unsubscribes it.
    t.left("lhs1", None, 11);
    assert_eq!(t.read("inner"), vec![none("lhs1")]);
    assert_eq!(t.read("left-out"), vec![none("lhs1")]);
    t.right("rhs4", Some("r4b"), 12);
    // Deleting a row that does not exist changes nothing.
    t.left("lhs1", None, 13);
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(t.read("left-out"), vec![]);
    assert!(t.store("inner-join").is_empty());
    assert!(t.store("left-join").is_empty());
    assert_eq!(d.dropped_records(), 0);
    // No subscription is left behind on the right side: the subscription stores' changelogs end
    // with a tombstone for every subscription written.
    for store in ["inner-join-subscription-store", "left-join-subscription-store"] {
        let changelog = d.produced_to(&format!("app-{store}-changelog"));
        assert!(!changelog.is_empty(), "{store}");
        let mut latest = BTreeMap::new();
        for r in changelog {
            latest.insert(r.key, r.value);
        }
        assert!(latest.values().all(Option::is_none), "{store}: {latest:?}");
    }
}

#[test]
fn fk_joins_handle_rows_without_a_foreign_key() {
    let (d, _) = fk_joins();
    let t = FkTopics { d: &d };
    // No foreign key: the inner join skips the row (a dropped record), the left join half-joins it.
    t.left("lhs1", Some("a|"), 1);
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(a|,null)")]);
    assert_eq!(d.dropped_records(), 1);

    t.right("rhs1", Some("r1"), 2);
    // Gaining a foreign key.
    t.left("lhs1", Some("b|rhs1"), 3);
    assert_eq!(t.read("inner"), vec![some("lhs1", "(b|rhs1,r1)")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(b|rhs1,r1)")]);

    // Losing it: the inner result is deleted, the left join half-joins again.
    t.left("lhs1", Some("c|"), 4);
    assert_eq!(t.read("inner"), vec![none("lhs1")]);
    assert_eq!(t.read("left-out"), vec![some("lhs1", "(c|,null)")]);
    // ...and no longer follows rhs1.
    t.right("rhs1", Some("r1b"), 5);
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(t.read("left-out"), vec![]);

    // Deleting a row without a foreign key.
    t.left("lhs1", None, 6);
    assert_eq!(t.read("inner"), vec![]);
    assert_eq!(t.read("left-out"), vec![none("lhs1")]);
    assert_eq!(d.dropped_records(), 1);
}

#[test]
fn fk_join_drops_responses_for_outdated_left_values() {
    // One input record updates the left row twice in a row (flat_map_values into a table), so the
    // response to the first subscription comes back after the row changed again: it is stale.
    let b = StreamsBuilder::new();
    let left = b
        .stream("updates", Consumed::with(Serdes::string(), Serdes::string()))
        .flat_map_values(|v: String| v.split(',').map(str::to_string).collect::<Vec<_>>())
        .to_table(Materialized::as_("left-rows"));
    let right = b.table("right", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("right-rows"));
    left.join_foreign_key(&right, fk, inner_joiner, Materialized::as_("joined"))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
    let config = TestDriverConfig::new("app").partitions("updates", 2).partitions("right", 3);
    let d = TopologyTestDriver::new(b.build().unwrap(), config).unwrap();
    let right = d.input_topic("right", Serdes::string(), Serdes::string());
    let updates = d.input_topic("updates", Serdes::string(), Serdes::string());
    let out = d.output_topic("out", Serdes::string(), Serdes::nullable(Serdes::string()));
    right.pipe("rhs1".into(), "r1".into(), 1).unwrap();
    updates.pipe("lhs1".into(), "x|rhs1,y|rhs1".into(), 2).unwrap();
    assert_eq!(out.read_key_values().unwrap(), vec![some("lhs1", "(y|rhs1,r1)")]);
    assert_eq!(d.dropped_records(), 1);
    // The right side answered both subscriptions.
    assert_eq!(d.produced_to("app-joined-subscription-response-topic").len(), 2);
}

#[test]
fn fk_join_result_can_be_joined_again() {
    // order -> "product|customer"; the FK join result feeds a second FK join.
    let b = StreamsBuilder::new();
    let orders = b.table("orders", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("orders"));
    let products =
        b.table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("products"));
    let customers =
        b.table("customers", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("customers"));
    let with_product = orders.join_foreign_key(
        &products,
        |o: &String| o.split('|').next().map(str::to_string),
        |o: &String, p: &String| format!("{o}|{p}"),
        Materialized::as_("with-product"),
    );
    with_product
        .join_foreign_key(
            &customers,
            |o: &String| o.split('|').nth(1).map(str::to_string),
            |o: &String, c: &String| format!("{o}|{c}"),
            Materialized::as_("with-customer"),
        )
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
    let config =
        TestDriverConfig::new("app").partitions("orders", 4).partitions("products", 1).partitions("customers", 2);
    let d = TopologyTestDriver::new(b.build().unwrap(), config).unwrap();
    let pipe = |topic: &str, k: &str, v: Option<&str>, ts: i64| {
        d.input_topic(topic, Serdes::string(), Serdes::nullable(Serdes::string()))
            .pipe(k.to_string(), v.map(str::to_string), ts)
            .unwrap()
    };
    pipe("products", "p1", Some("Pen"), 1);
    pipe("customers", "c1", Some("Ada"), 2);
    pipe("orders", "o1", Some("p1|c1"), 3);
    let out = d.output_topic("out", Serdes::string(), Serdes::nullable(Serdes::string()));
    assert_eq!(out.read_key_values().unwrap(), vec![some("o1", "p1|c1|Pen|Ada")]);
    pipe("products", "p1", Some("Pencil"), 4);
    assert_eq!(out.read_key_values().unwrap(), vec![some("o1", "p1|c1|Pencil|Ada")]);
    pipe("products", "p1", None, 5);
    assert_eq!(out.read_key_values().unwrap(), vec![none("o1")]);
}

#[test]
fn fk_join_of_an_aggregated_table_copartitions_its_response_topic_with_the_aggregation() {
    // The left table is an aggregation reading a repartition topic: the response topic and that
    // repartition topic are co-partitioned with each other (both take the larger count).
    let b = StreamsBuilder::new();
    let latest = b
        .stream("moves", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by(
            |_, v: &String| v.split_once('|').map_or(String::new(), |(k, _)| k.to_string()),
            Grouped::as_("by-item"),
        )
        .reduce(|_, new| new, Materialized::as_("latest"));
    let places = b.table("places", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("places"));
    latest
        .join_foreign_key(&places, fk, inner_joiner, Materialized::as_("located"))
        .to_stream()
        .to("out", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
    let topology = b.build().unwrap();
    let known: HashMap<String, i32> = [("moves".to_string(), 2), ("places".to_string(), 3)].into_iter().collect();
    let counts = topology.resolve_partition_counts(&known).unwrap();
    assert_eq!(counts["located-subscription-registration-topic"], 3);
    assert_eq!(counts["located-subscription-response-topic"], 3);
    assert_eq!(counts["by-item-repartition"], 3);
    let config = TestDriverConfig::new("app").partitions("moves", 2).partitions("places", 3);
    let d = TopologyTestDriver::new(topology, config).unwrap();
    let places = d.input_topic("places", Serdes::string(), Serdes::string());
    let moves = d.input_topic("moves", Serdes::string(), Serdes::string());
    places.pipe("p1".into(), "Paris".into(), 1).unwrap();
    places.pipe("p2".into(), "Rome".into(), 2).unwrap();
    moves.pipe("m1".into(), "item1|p1".into(), 3).unwrap();
    moves.pipe("m2".into(), "item1|p2".into(), 4).unwrap();
    moves.pipe("m3".into(), "item2|p9".into(), 5).unwrap(); // no such place
    let out = d.output_topic("out", Serdes::string(), Serdes::nullable(Serdes::string()));
    assert_eq!(
        out.read_key_values().unwrap(),
        vec![some("item1", "(item1|p1,Paris)"), some("item1", "(item1|p2,Rome)")]
    );
}

// ---------------------------------------------------------------------------------------------
// What the shared machinery still does for the operators that used it first
// ---------------------------------------------------------------------------------------------

#[test]
fn hopping_windows_still_use_the_shared_window_store_setup() {
    use kstreams_streams::dsl::TimeWindows;
    let builder = StreamsBuilder::new();
    builder
        .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by(
            TimeWindows::of_size_with_no_grace(Duration::from_millis(1000)).advance_by(Duration::from_millis(500)),
        )
        .count(Materialized::as_("clicks-per-window"))
        .to_stream()
        .map(|w: Windowed<String>, c: Option<i64>| (format!("{}@{}", w.key(), w.window().start()), c.unwrap_or(0)))
        .to("counts", Produced::default());
    let d = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("clicks", Serdes::string(), Serdes::string());
    input.pipe("u".into(), "a".into(), 700).unwrap(); // windows starting 0 and 500
    input.pipe("u".into(), "b".into(), 1200).unwrap(); // windows 500 and 1000
    let counts = d.output_topic("counts", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    let c = |k: &str, n: i64| (k.to_string(), n);
    assert_eq!(counts, vec![c("u@0", 1), c("u@500", 1), c("u@500", 2), c("u@1000", 1)]);
    let stored: Vec<(i64, i64, i64)> = d
        .window_store_entries::<String, i64>("clicks-per-window")
        .unwrap()
        .into_iter()
        .map(|(w, n)| (w.window().start(), w.window().end(), n))
        .collect();
    // Retention is size + grace = 1000: the window starting at 0 expired once a window started at 1000.
    assert_eq!(stored, vec![(500, 1500, 2), (1000, 2000, 1)]);
}

#[test]
fn a_repartitioned_stream_joined_with_a_table_takes_the_tables_partition_count() {
    use kstreams_streams::dsl::Joined;
    // As Kafka's co-partitioning enforcement: the repartition topic before the join gets the table's
    // count, whatever the count of the stream's input.
    let b = StreamsBuilder::new();
    let prices = b.table("prices", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("prices"));
    b.stream("orders", Consumed::with(Serdes::string(), Serdes::string()))
        .select_key(|_, item: &String| item.clone())
        .join(&prices, |item: String, price: i64| format!("{item}={price}"), Joined::as_("priced"))
        .to("out", Produced::default());
    let config = TestDriverConfig::new("app").partitions("orders", 2).partitions("prices", 3);
    let topology = b.build().unwrap();
    let known: HashMap<String, i32> = [("orders".to_string(), 2), ("prices".to_string(), 3)].into_iter().collect();
    assert_eq!(topology.resolve_partition_counts(&known).unwrap()["priced-repartition"], 3);
    let d = TopologyTestDriver::new(topology, config).unwrap();
    d.input_topic("prices", Serdes::string(), Serdes::i64()).pipe("apple".into(), 3, 1).unwrap();
    d.input_topic("orders", Serdes::string(), Serdes::string()).pipe("o1".into(), "apple".into(), 2).unwrap();
    let out = d.output_topic("out", Serdes::string(), Serdes::string()).read_key_values().unwrap();
    assert_eq!(out, vec![("apple".to_string(), "apple=3".to_string())]);
}

#[test]
fn word_count_repartition_nodes_keep_their_names() {
    let builder = StreamsBuilder::new();
    builder
        .stream("streams-plaintext-input", Consumed::with(Serdes::unit(), Serdes::string()))
        .flat_map_values(|line: String| line.to_lowercase().split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .group_by(|_, word: &String| word.clone(), Grouped::default())
        .count(Materialized::as_("counts-store"))
        .to_stream()
        .to("streams-wordcount-output", Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
    let description = builder.build().unwrap().describe().to_string();
    for line in [
        "Processor: KSTREAM-FILTER-0000000005 (stores: [])",
        "Sink: KSTREAM-SINK-0000000004 (topic: counts-store-repartition)",
        "Source: KSTREAM-SOURCE-0000000006 (topics: [counts-store-repartition])",
    ] {
        assert!(description.contains(line), "{description}");
    }
}

/// The rustdoc examples of the new API, run here too.
#[test]
fn doc_examples_hold() {
    {
        let w = SlidingWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!((w.time_difference_ms(), w.grace_ms()), (10_000, 2_000));
    }
    {
        use kstreams_streams::header::Headers;
        let serde = ValueAndTimestamp::serde(Serdes::i32());
        let v = ValueAndTimestamp { value: 7, timestamp: 1 };
        let bytes = serde.serialize("t", &Headers::new(), &v).unwrap().unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7]);
        assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), v);
    }
    {
        let builder = StreamsBuilder::new();
        builder
            .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
            .group_by_key(Grouped::default())
            .windowed_by_sliding(SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10)))
            .count(Materialized::as_("clicks-within-10ms"))
            .to_stream()
            .map(|w: Windowed<String>, n: Option<i64>| {
                (format!("{}@[{},{}]", w.key(), w.window().start(), w.window().end()), n.unwrap_or(0))
            })
            .to("counts", Produced::default());
        let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
        let clicks = driver.input_topic("clicks", Serdes::string(), Serdes::string());
        clicks.pipe("u".to_string(), "a".to_string(), 20).unwrap(); // left window [10,20]
        clicks.pipe("u".to_string(), "b".to_string(), 25).unwrap(); // right window of 20, and [15,25]
        let counts = driver.output_topic("counts", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
        let e = |k: &str, n: i64| (k.to_string(), n);
        assert_eq!(counts, vec![e("u@[10,20]", 1), e("u@[21,31]", 1), e("u@[15,25]", 2)]);
    }
    {
        let b = StreamsBuilder::new();
        // order id -> "customer id:amount"; customer id -> name
        let orders = b.table("orders", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("orders"));
        let customers =
            b.table("customers", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("customers"));
        orders
            .join_foreign_key(
                &customers,
                |order: &String| order.split_once(':').map(|(customer, _)| customer.to_string()),
                |order: &String, name: &String| format!("{order} by {name}"),
                Materialized::as_("orders-with-names"),
            )
            .to_stream()
            .to("enriched", Produced::with(Serdes::string(), Serdes::nullable(Serdes::string())));
        // The tables need not be co-partitioned.
        let config = TestDriverConfig::new("shop").partitions("orders", 3).partitions("customers", 2);
        let d = TopologyTestDriver::new(b.build().unwrap(), config).unwrap();
        let customers = d.input_topic("customers", Serdes::string(), Serdes::nullable(Serdes::string()));
        let orders = d.input_topic("orders", Serdes::string(), Serdes::nullable(Serdes::string()));
        let out = d.output_topic("enriched", Serdes::string(), Serdes::nullable(Serdes::string()));
        customers.pipe("c1".into(), Some("Ada".into()), 1).unwrap();
        orders.pipe("o1".into(), Some("c1:10".into()), 2).unwrap();
        assert_eq!(out.read_key_values().unwrap(), vec![("o1".to_string(), Some("c1:10 by Ada".to_string()))]);
        customers.pipe("c1".into(), None, 3).unwrap(); // the customer leaves: the order's row goes
        assert_eq!(out.read_key_values().unwrap(), vec![("o1".to_string(), None)]);
    }
    {
        let b = StreamsBuilder::new();
        let orders = b.table("orders", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("orders"));
        let customers =
            b.table("customers", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("customers"));
        let with_names = orders.left_join_foreign_key(
            &customers,
            |order: &String| order.split_once(':').map(|(customer, _)| customer.to_string()),
            |order: &String, name: Option<&String>| format!("{order} by {}", name.map_or("?", String::as_str)),
            Materialized::as_("orders-with-names"),
        );
        let _ = with_names;
        let topology = b.build().unwrap();
        assert!(topology.is_internal_topic("orders-with-names-subscription-registration-topic"));
        assert!(topology.is_internal_topic("orders-with-names-subscription-response-topic"));
    }
}
