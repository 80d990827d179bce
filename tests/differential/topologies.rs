//! The kstreams twins of the topologies in `benches/peer-java/.../Differential.java`: change both
//! together. Every topology reads and writes strings; windowed keys are written as `key@start/end`;
//! `~` stands for a null value, `_` for a missing join side.

use std::time::Duration;

use kstreams::dsl::{
    Branched, Consumed, Grouped, JoinWindows, Joined, KGroupedStream, KStream, KTable, Materialized, Named, Produced,
    SessionWindows, SlidingWindows, StreamJoined, StreamsBuilder, Suppressed, TimeWindows,
};
use kstreams::serde::{Serdes, SharedSerde};
use kstreams::topology::Topology;
use kstreams::windowed::Windowed;

fn s() -> SharedSerde<String> {
    Serdes::string()
}

fn consumed() -> Consumed<String, String> {
    Consumed::with(s(), s())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The number at the start of `v` (values are decimal numbers, possibly with suffixes).
pub fn num(v: &str) -> i64 {
    let end = v
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && *c == '-'))
        .map(|(i, c)| i + c.len_utf8())
        .last()
        .unwrap_or(0);
    v[..end].parse().unwrap_or(0)
}

fn opt(v: Option<&String>) -> String {
    v.cloned().unwrap_or_else(|| "_".to_string())
}

/// The foreign key in a value `fkey|payload`.
pub fn fk(v: &str) -> String {
    v.split('|').next().unwrap_or(v).to_string()
}

fn payload(v: &str) -> i64 {
    num(v.split_once('|').map_or(v, |(_, p)| p))
}

fn windowed(w: &Windowed<String>) -> String {
    format!("{}@{}/{}", w.key, w.window.start, w.window.end)
}

fn windowed_out<V: kstreams::record::Data + ToString>(table: KTable<Windowed<String>, V>) {
    table
        .to_stream()
        .map(|w, v| (windowed(&w), v.map(|v| v.to_string())))
        .to("out", Produced::with(s(), Serdes::nullable(s())));
}

fn out<V: kstreams::record::Data + ToString>(table: KTable<String, V>) {
    table.to_stream().map_values(|v| v.map(|v| v.to_string())).to("out", Produced::with(s(), Serdes::nullable(s())));
}

fn to_out(stream: KStream<String, String>) {
    stream.to("out", Produced::with(s(), s()));
}

fn grouped(b: &StreamsBuilder) -> KGroupedStream<String, String> {
    b.stream("in", consumed()).group_by_key(Grouped::with(s(), s()))
}

fn table(b: &StreamsBuilder, topic: &str) -> KTable<String, String> {
    b.table(topic, consumed(), Materialized::with(s(), s()))
}

fn join_windows() -> JoinWindows {
    JoinWindows::of_time_difference_and_grace(ms(5), ms(3))
}

fn sum(a: String, v: &str) -> String {
    (num(&a) + num(v)).to_string()
}

fn max(a: String, v: String) -> String {
    num(&a).max(num(&v)).to_string()
}

/// The topology named `name` and the topics it writes, or `None` for an unknown name.
pub fn build(name: &str) -> Option<(Topology, Vec<&'static str>)> {
    let b = StreamsBuilder::new();
    let mut outputs = vec!["out"];
    match name {
        "stateless" => {
            let input = b.stream("in", consumed());
            let shaped = input
                .filter(|_, v| num(v) % 3 != 0)
                .map_values(|v| format!("{v}!"))
                .flat_map(|k: String, v: String| {
                    let suffixed = format!("{v}{}", v.len());
                    [(k.clone(), v), (format!("{k}x"), suffixed)]
                })
                .select_key(|k, v| format!("{k}/{}", num(v) % 4));
            let branches = shaped
                .split_named(Named::as_("split-"))
                .branch(|_, v| num(v) % 2 == 0, Branched::as_("even"))
                .default_branch(Branched::as_("odd"));
            for (name, stream) in branches {
                let topic = if name.ends_with("even") { "out-even" } else { "out-odd" };
                stream.to(topic, Produced::with(s(), s()));
            }
            input
                .merge(&b.stream("in2", consumed()))
                .map_values_with_key(|k, v| format!("{k}:{v}"))
                .to("out-merged", Produced::with(s(), s()));
            outputs = vec!["out-even", "out-merged", "out-odd"];
        }
        "count" => out(grouped(&b).count(Materialized::with(s(), Serdes::i64()))),
        "reduce" => out(grouped(&b).reduce(max, Materialized::with(s(), s()))),
        "aggregate" => {
            out(grouped(&b).aggregate(|| "0".to_string(), |_, v, a| sum(a, &v), Materialized::with(s(), s())))
        }
        "regroup-count" => out(b
            .stream("in", consumed())
            .group_by(|_, v| format!("g{}", num(v) % 3), Grouped::with(s(), s()))
            .count(Materialized::with(s(), Serdes::i64()))),
        "tumbling" => windowed_out(
            grouped(&b)
                .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
                .count(Materialized::with(s(), Serdes::i64())),
        ),
        "tumbling-reduce" => windowed_out(
            grouped(&b)
                .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
                .reduce(max, Materialized::with(s(), s())),
        ),
        "hopping" => windowed_out(
            grouped(&b)
                .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(4)).advance_by(ms(3)))
                .count(Materialized::with(s(), Serdes::i64())),
        ),
        "sliding" => windowed_out(
            grouped(&b).windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(ms(10), ms(5))).aggregate(
                || "0".to_string(),
                |_, v, a| sum(a, &v),
                Materialized::with(s(), s()),
            ),
        ),
        "session" => windowed_out(
            grouped(&b)
                .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(ms(5), ms(2)))
                .count(Materialized::with(s(), Serdes::i64())),
        ),
        "session-reduce" => windowed_out(
            grouped(&b)
                .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(ms(5), ms(2)))
                .reduce(|a, v| format!("{a},{v}"), Materialized::with(s(), s())),
        ),
        "suppress" => windowed_out(
            grouped(&b)
                .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
                .count(Materialized::with(s(), Serdes::i64()))
                .suppress(Suppressed::until_window_closes()),
        ),
        "ss-inner" => to_out(b.stream("in", consumed()).join_stream(
            &b.stream("in2", consumed()),
            |l, r| format!("{l}+{r}"),
            join_windows(),
            StreamJoined::with(s(), s(), s()),
        )),
        "ss-left" => to_out(b.stream("in", consumed()).left_join_stream(
            &b.stream("in2", consumed()),
            |l, r| format!("{l}+{}", opt(r)),
            join_windows(),
            StreamJoined::with(s(), s(), s()),
        )),
        "ss-outer" => to_out(b.stream("in", consumed()).outer_join_stream(
            &b.stream("in2", consumed()),
            |l, r| format!("{}+{}", opt(l), opt(r)),
            join_windows(),
            StreamJoined::with(s(), s(), s()),
        )),
        "st-inner" => to_out(b.stream("in", consumed()).join(
            &table(&b, "tbl"),
            |l, r| format!("{l}+{r}"),
            Joined::with(s(), s(), s()),
        )),
        "st-left" => to_out(b.stream("in", consumed()).left_join(
            &table(&b, "tbl"),
            |l, r| format!("{l}+{}", opt(r.as_ref())),
            Joined::with(s(), s(), s()),
        )),
        "tt-inner" => out(table(&b, "t1").join(&table(&b, "t2"), |l, r| format!("{l}+{r}"))),
        "tt-left" => out(table(&b, "t1").left_join(&table(&b, "t2"), |l, r| format!("{l}+{}", opt(r)))),
        "tt-outer" => out(table(&b, "t1").outer_join(&table(&b, "t2"), |l, r| format!("{}+{}", opt(l), opt(r)))),
        "fk-inner" => out(table(&b, "t1").join_foreign_key(
            &table(&b, "t2"),
            |v| Some(fk(v)),
            |l, r| format!("{l}+{r}"),
            Materialized::with(s(), s()),
        )),
        "fk-left" => out(table(&b, "t1").left_join_foreign_key(
            &table(&b, "t2"),
            |v| Some(fk(v)),
            |l, r| format!("{l}+{}", opt(r)),
            Materialized::with(s(), s()),
        )),
        "global-inner" => {
            let g = b.global_table("glob", consumed(), Materialized::with(s(), s()));
            to_out(b.stream("in", consumed()).join_global(&g, |_, v| fk(v), |l, r| format!("{l}+{r}")));
        }
        "global-left" => {
            let g = b.global_table("glob", consumed(), Materialized::with(s(), s()));
            to_out(b.stream("in", consumed()).left_join_global(&g, |_, v| fk(v), |l, r| format!("{l}+{}", opt(r))));
        }
        "table-map-values" => out(table(&b, "t1").map_values(|v| format!("{v}!"))),
        "table-count" => out(table(&b, "t1")
            .group_by(|k, v| (fk(v), k.clone()), Grouped::with(s(), s()))
            .count(Materialized::with(s(), Serdes::i64()))),
        "table-aggregate" => {
            out(table(&b, "t1").group_by(|_, v| (fk(v), v.clone()), Grouped::with(s(), s())).aggregate(
                || "0".to_string(),
                |_, v, a| (num(&a) + payload(&v)).to_string(),
                |_, v, a| (num(&a) - payload(&v)).to_string(),
                Materialized::with(s(), s()),
            ))
        }
        _ => return None,
    }
    Some((b.build().expect("the differential topologies are valid"), outputs))
}
