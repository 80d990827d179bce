//! Proof that the classic group protocol with the range assignor keeps co-partitioned topics
//! together (what kstreams' task assignment relies on), and that the test support fails fast
//! without a broker.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};

use support::{
    assignment_of, create_topics, require_broker, require_broker_at, unique_group, unique_topic, Isolation,
    SupportError, TopicSpec,
};

const PARTITIONS: i32 = 4;

fn member(group: &str, topics: &[&str]) -> BaseConsumer {
    let consumer: BaseConsumer = support::consumer_config(group, Isolation::ReadCommitted)
        .set("partition.assignment.strategy", "range")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .expect("consumer");
    consumer.subscribe(topics).expect("subscribe");
    consumer
}

/// Partition numbers a consumer holds on `topic`.
fn partitions_on(assignment: &BTreeSet<(String, i32)>, topic: &str) -> BTreeSet<i32> {
    assignment.iter().filter(|(t, _)| t == topic).map(|(_, p)| *p).collect()
}

/// c. Two members of one group subscribed to two co-partitioned topics: with the range assignor
/// each member gets the same partition numbers on both topics, and together they cover every
/// partition exactly once.
#[test]
fn range_assignor_keeps_co_partitioned_topics_together() {
    require_broker();
    let a = unique_topic("copart-a");
    let b = unique_topic("copart-b");
    let group = unique_group("copart");
    let topics =
        create_topics(&[TopicSpec::new(&a, PARTITIONS), TopicSpec::new(&b, PARTITIONS)]).expect("create topics");
    let all: BTreeSet<(String, i32)> =
        [&a, &b].iter().flat_map(|t| (0..PARTITIONS).map(move |p| (t.to_string(), p))).collect();

    let c1 = member(&group, &[&a, &b]);
    let c2 = member(&group, &[&a, &b]);

    // Poll both members (rebalances need both to poll) until the assignment is complete, disjoint,
    // gives each member something, and stays so for a second.
    let started = Instant::now();
    let mut stable_since: Option<Instant> = None;
    let (s1, s2) = loop {
        for c in [&c1, &c2] {
            if let Some(Err(e)) = c.poll(Duration::from_millis(50)) {
                panic!("consumer error: {e}");
            }
        }
        let s1 = assignment_of(&c1).expect("assignment 1");
        let s2 = assignment_of(&c2).expect("assignment 2");
        let union: BTreeSet<_> = s1.union(&s2).cloned().collect();
        let settled = !s1.is_empty() && !s2.is_empty() && s1.is_disjoint(&s2) && union == all;
        match (settled, stable_since) {
            (true, Some(since)) if since.elapsed() >= Duration::from_secs(1) => break (s1, s2),
            (true, None) => stable_since = Some(Instant::now()),
            (true, Some(_)) => {}
            (false, _) => stable_since = None,
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "group did not settle in {:?}: member 1 {s1:?}, member 2 {s2:?}",
            started.elapsed()
        );
    };
    eprintln!("group settled after {:?}", started.elapsed());

    for (name, s) in [("member 1", &s1), ("member 2", &s2)] {
        let on_a = partitions_on(s, &a);
        let on_b = partitions_on(s, &b);
        assert_eq!(on_a, on_b, "{name} must hold the same partitions of both topics: {s:?}");
        assert_eq!(on_a.len(), (PARTITIONS / 2) as usize, "range splits 4 partitions 2/2: {s:?}");
    }
    assert!(s1.is_disjoint(&s2), "overlap: {s1:?} / {s2:?}");
    let union: BTreeSet<_> = s1.union(&s2).cloned().collect();
    assert_eq!(union, all, "every partition of both topics must be assigned");

    drop(c1);
    drop(c2);
    // The group may still be shutting down its members; deleting it is best-effort.
    let _ = support::delete_groups(&[&group]);
    topics.delete().expect("delete topics");
}

/// d. The broker check fails fast, with the hint, when nothing listens.
#[test]
fn broker_check_fails_fast_without_broker() {
    let started = Instant::now();
    let result = require_broker_at("127.0.0.1:1", Duration::from_secs(5));
    let elapsed = started.elapsed();
    let err = result.expect_err("nothing listens on 127.0.0.1:1");
    let message = err.to_string();
    assert!(matches!(err, SupportError::NoBroker { .. }), "unexpected error kind: {err:?}");
    assert!(message.contains("no Kafka broker at 127.0.0.1:1"), "{message}");
    assert!(message.contains("KSTREAMS_BOOTSTRAP"), "{message}");
    assert!(message.contains("`scripts/kafka start`"), "{message}");
    assert!(elapsed < Duration::from_secs(15), "the broker check took {elapsed:?}");
    eprintln!("broker check failed after {elapsed:?}: {message}");
}
