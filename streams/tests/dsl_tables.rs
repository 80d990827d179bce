//! Table-table joins, re-grouped tables and session windows through the test driver, with
//! hand-computed expectations.

use std::time::Duration;

use kstreams_streams::dsl::{Consumed, Grouped, Materialized, Produced, SessionWindows, StreamsBuilder};
use kstreams_streams::serde::Serdes;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::windowed::Windowed;

#[test]
fn table_table_inner_left_and_outer_joins_follow_both_sides() {
    let b = StreamsBuilder::new();
    let stock = b.table("stock", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("stock"));
    let demand = b.table("demand", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("demand"));
    stock.join(&demand, |s: &i64, d: &i64| format!("{s}/{d}")).to_stream().to("inner", Produced::default());
    stock
        .left_join(&demand, |s: &i64, d: Option<&i64>| format!("{s}/{}", d.map_or("-".into(), |d| d.to_string())))
        .to_stream()
        .to("left", Produced::default());
    stock
        .outer_join(&demand, |s: Option<&i64>, d: Option<&i64>| {
            format!("{}/{}", s.map_or("-".into(), |s| s.to_string()), d.map_or("-".into(), |d| d.to_string()))
        })
        .to_stream()
        .to("outer", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let s = d.input_topic("stock", Serdes::string(), Serdes::nullable(Serdes::i64()));
    let dm = d.input_topic("demand", Serdes::string(), Serdes::nullable(Serdes::i64()));
    s.pipe("apple".into(), Some(5), 1).unwrap();
    dm.pipe("apple".into(), Some(8), 2).unwrap();
    dm.pipe("pear".into(), Some(1), 3).unwrap();
    s.pipe("apple".into(), None, 4).unwrap();
    let read =
        |t: &str| d.output_topic(t, Serdes::string(), Serdes::nullable(Serdes::string())).read_key_values().unwrap();
    let some = |k: &str, v: &str| (k.to_string(), Some(v.to_string()));
    assert_eq!(read("inner"), vec![some("apple", "5/8"), ("apple".to_string(), None)]);
    assert_eq!(read("left"), vec![some("apple", "5/-"), some("apple", "5/8"), ("apple".to_string(), None)]);
    assert_eq!(
        read("outer"),
        vec![some("apple", "5/-"), some("apple", "5/8"), some("pear", "-/1"), some("apple", "-/8")]
    );
}

#[test]
fn grouped_table_count_and_reduce_follow_rows_that_change_group() {
    let b = StreamsBuilder::new();
    // product -> (category, price)
    let products =
        b.table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("products"));
    let by_category = products.group_by(
        |_, v: &String| {
            let (category, price) = v.split_once(':').unwrap_or((v.as_str(), "0"));
            (category.to_string(), price.parse::<i64>().unwrap_or(0))
        },
        Grouped::default(),
    );
    by_category.count(Materialized::as_("count-per-category")).to_stream().to("counts", Produced::default());
    by_category
        .reduce(|a, b| a + b, |a, b| a - b, Materialized::as_("value-per-category"))
        .to_stream()
        .to("values", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("products", Serdes::string(), Serdes::nullable(Serdes::string()));
    input.pipe("p1".into(), Some("fruit:3".into()), 1).unwrap();
    input.pipe("p2".into(), Some("fruit:4".into()), 2).unwrap();
    input.pipe("p1".into(), Some("veg:3".into()), 3).unwrap(); // moves from fruit to veg
    input.pipe("p2".into(), None, 4).unwrap(); // deleted
    let counts = d.output_topic("counts", Serdes::string(), Serdes::nullable(Serdes::i64())).read_key_values().unwrap();
    let c = |k: &str, v: i64| (k.to_string(), Some(v));
    assert_eq!(counts, vec![c("fruit", 1), c("fruit", 2), c("fruit", 1), c("veg", 1), c("fruit", 0)]);
    let values = d.output_topic("values", Serdes::string(), Serdes::nullable(Serdes::i64())).read_key_values().unwrap();
    assert_eq!(values, vec![c("fruit", 3), c("fruit", 7), c("fruit", 4), c("veg", 3), c("fruit", 0)]);
}

#[test]
fn session_windows_merge_sessions_bridged_by_a_record() {
    let b = StreamsBuilder::new();
    b.stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
        .group_by_key(Grouped::default())
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(
            Duration::from_millis(10),
            Duration::from_millis(20),
        ))
        .count(Materialized::as_("sessions"))
        .to_stream()
        .map(|w: Windowed<String>, c: Option<i64>| {
            (format!("{}[{},{}]", w.key(), w.window().start(), w.window().end()), c.unwrap_or(-1))
        })
        .to("out", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let input = d.input_topic("clicks", Serdes::string(), Serdes::string());
    input.pipe("u".into(), "a".into(), 0).unwrap(); // session [0,0]
    input.pipe("u".into(), "b".into(), 18).unwrap(); // 18 > 0 + 10: a new session [18,18]
    input.pipe("u".into(), "c".into(), 9).unwrap(); // within 10 of both (and within grace): one session [0,18] of 3
    let out = d.output_topic("out", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
    let e = |k: &str, v: i64| (k.to_string(), v);
    assert_eq!(out, vec![e("u[0,0]", 1), e("u[18,18]", 1), e("u[0,0]", -1), e("u[18,18]", -1), e("u[0,18]", 3)]);
    let sessions = d
        .session_store::<String, i64, _>("sessions", 0, |s| s.find_sessions(&"u".to_string(), 0, 100))
        .unwrap()
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].0.start, sessions[0].0.end, sessions[0].1), (0, 18, 3));
}

#[test]
fn stream_stream_joins_within_windows_and_emit_unmatched_after_close() {
    use kstreams_streams::dsl::{JoinWindows, StreamJoined};
    let b = StreamsBuilder::new();
    let clicks = b.stream("clicks", Consumed::with(Serdes::string(), Serdes::string()));
    let views = b.stream("views", Consumed::with(Serdes::string(), Serdes::string()));
    let w = JoinWindows::of_time_difference_and_grace(Duration::from_millis(10), Duration::from_millis(5));
    clicks
        .join_stream(&views, |c: &String, v: &String| format!("{c}+{v}"), w, StreamJoined::default())
        .to("inner", Produced::default());
    clicks
        .left_join_stream(
            &views,
            |c: &String, v: Option<&String>| format!("{c}+{}", v.map_or("-", |v| v.as_str())),
            w,
            StreamJoined::default(),
        )
        .to("left", Produced::default());
    clicks
        .outer_join_stream(
            &views,
            |c: Option<&String>, v: Option<&String>| {
                format!("{}+{}", c.map_or("-", |c| c.as_str()), v.map_or("-", |v| v.as_str()))
            },
            w,
            StreamJoined::default(),
        )
        .to("outer", Produced::default());
    let d = TopologyTestDriver::new(b.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    let c = d.input_topic("clicks", Serdes::string(), Serdes::string());
    let v = d.input_topic("views", Serdes::string(), Serdes::string());
    c.pipe("k".into(), "c1".into(), 100).unwrap(); // waits for a view in [90, 110]
    v.pipe("k".into(), "v1".into(), 105).unwrap(); // joins c1
    c.pipe("k".into(), "c2".into(), 200).unwrap(); // no partner; its window closes after 200 + 10 + 5
    v.pipe("x".into(), "v2".into(), 214).unwrap(); // another key; stream time 214: c2 still open
    let read = |t: &str| d.output_topic(t, Serdes::string(), Serdes::string()).read_key_values_with_time().unwrap();
    assert_eq!(read("inner"), vec![("k".to_string(), "c1+v1".to_string(), 105)]);
    assert_eq!(read("left"), vec![("k".to_string(), "c1+v1".to_string(), 105)]);
    assert_eq!(read("outer"), vec![("k".to_string(), "c1+v1".to_string(), 105)]);
    v.pipe("x".into(), "v3".into(), 216).unwrap(); // stream time 216 > 215: c2 is emitted alone
    assert!(read("inner").is_empty());
    assert_eq!(read("left"), vec![("k".to_string(), "c2+-".to_string(), 200)]);
    assert_eq!(read("outer"), vec![("k".to_string(), "c2+-".to_string(), 200)]);
    v.pipe("x".into(), "v4".into(), 300).unwrap(); // v2 and v3 never matched: outer emits them
    assert!(read("left").is_empty());
    assert_eq!(
        read("outer"),
        vec![("x".to_string(), "-+v2".to_string(), 214), ("x".to_string(), "-+v3".to_string(), 216)]
    );
    // Late: its window closed at 165 < 300. As in Kafka Streams 4.3 it is not dropped: it joins what
    // the views' store still holds (nothing: the store keeps 20 + 5 ms behind its latest record),
    // and, with its window already behind stream time, is emitted alone at once.
    c.pipe("k".into(), "late".into(), 150).unwrap();
    assert!(read("inner").is_empty());
    assert_eq!(read("left"), vec![("k".to_string(), "late+-".to_string(), 150)]);
    assert_eq!(read("outer"), vec![("k".to_string(), "late+-".to_string(), 150)]);
    assert_eq!(d.dropped_records(), 0);
}
