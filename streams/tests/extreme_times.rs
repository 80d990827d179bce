//! Windowed operators take any record timestamp and any window size: times near `i64::MAX` (or
//! `i64::MIN`, through a timestamp extractor), sizes and graces up to `Duration::MAX`. Each record is
//! either processed or fails with an error; arithmetic never overflows into a panic (which the
//! runtime would report as a `UserPanic` in kstreams' own processors).
//!
//! `cargo test` runs 64 cases per property with a fixed seed; `PROPTEST_CASES=<n>` runs more.

use std::time::Duration;

use kstreams_streams::dsl::{
    Consumed, Grouped, JoinWindows, Materialized, Produced, SessionWindows, SlidingWindows, StreamJoined,
    StreamsBuilder, Suppressed, TimeWindows,
};
use kstreams_streams::error::UserPanic;
use kstreams_streams::serde::Serdes;
use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams_streams::windowed::Windowed;
use kstreams_streams::StreamsError;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    let env = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("PROPTEST_CASES").map_or(64, |n| n.min(u32::MAX as u64) as u32),
        rng_seed: RngSeed::Fixed(env("KSTREAMS_PROPTEST_SEED").unwrap_or(20261203)),
        failure_persistence: None,
        ..Config::default()
    }
}

fn panicked(error: &StreamsError) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(s) = source {
        if let Some(p) = s.downcast_ref::<UserPanic>() {
            return Some(p.message.clone());
        }
        source = s.source();
    }
    None
}

/// Timestamps a record may carry (Kafka timestamps are not negative: the runtime drops those).
fn timestamp() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(i64::MAX),
        Just(i64::MAX - 1),
        Just(0i64),
        i64::MAX - 100_000..=i64::MAX,
        0i64..100_000,
        any::<i64>().prop_map(|t| t.checked_abs().unwrap_or(i64::MAX))
    ]
}

fn duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        Just(Duration::MAX),
        Just(Duration::from_millis(i64::MAX as u64)),
        Just(Duration::from_millis(1)),
        (1u64..100_000).prop_map(Duration::from_millis),
        any::<u64>().prop_map(Duration::from_millis),
    ]
}

/// Every windowed operator over one input: tumbling and hopping counts (with suppression), sliding
/// and session counts, and a windowed stream-stream outer join.
fn topology(size: Duration, grace: Duration) -> kstreams_streams::topology::Topology {
    let builder = StreamsBuilder::new();
    let input = builder.stream("in", Consumed::with(Serdes::string(), Serdes::i64()));
    let grouped = || input.group_by_key(Grouped::default());
    let label = |w: Windowed<String>, c: Option<i64>| (format!("{}@{}", w.key(), w.window().start()), c.unwrap_or(-1));
    grouped()
        .windowed_by(TimeWindows::of_size_and_grace(size, grace))
        .count(Materialized::as_("tumbling"))
        .suppress(Suppressed::until_window_closes())
        .to_stream()
        .map(label)
        .to("tumbling", Produced::default());
    grouped()
        .windowed_by(TimeWindows::of_size_and_grace(size, grace).advance_by(size / 3 + Duration::from_millis(1)))
        .count(Materialized::as_("hopping"))
        .to_stream()
        .map(label)
        .to("hopping", Produced::default());
    grouped()
        .windowed_by_sliding(SlidingWindows::of_time_difference_and_grace(size, grace))
        .count(Materialized::as_("sliding"))
        .to_stream()
        .map(label)
        .to("sliding", Produced::default());
    grouped()
        .windowed_by_session(SessionWindows::of_inactivity_gap_and_grace(size, grace))
        .count(Materialized::as_("session"))
        .to_stream()
        .map(label)
        .to("session", Produced::default());
    let other = builder.stream("other", Consumed::with(Serdes::string(), Serdes::i64()));
    input
        .outer_join_stream(
            &other,
            |l: Option<&i64>, r: Option<&i64>| l.copied().unwrap_or(0) + r.copied().unwrap_or(0),
            JoinWindows::of_time_difference_and_grace(size, grace),
            StreamJoined::default(),
        )
        .to("joined", Produced::default());
    builder.build().unwrap()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn windowed_operators_take_any_time_and_window(
        size in duration(),
        grace in duration(),
        records in proptest::collection::vec((0u8..3, any::<bool>(), timestamp()), 1..12),
    ) {
        let Ok(driver) = TopologyTestDriver::new(topology(size, grace), TestDriverConfig::new("app")) else {
            // A window the DSL refuses (a size of zero or beyond i64 milliseconds) is fine too.
            return Ok(());
        };
        let input = driver.input_topic("in", Serdes::string(), Serdes::i64());
        let other = driver.input_topic("other", Serdes::string(), Serdes::i64());
        for (key, left, ts) in records {
            let topic = if left { &input } else { &other };
            if let Err(e) = topic.pipe(format!("k{key}"), 1, ts) {
                prop_assert!(panicked(&e).is_none(), "record at {ts} (size {size:?}, grace {grace:?}): {e}");
            }
        }
        if let Err(e) = driver.advance_wall_clock_time(Duration::from_secs(3600)) {
            prop_assert!(panicked(&e).is_none(), "punctuation: {e}");
        }
    }
}
