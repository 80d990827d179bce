//! Records through a topology in the in-process test driver (no broker): the per-record cost of the
//! processor graph, serdes and stores without Kafka I/O. The same shapes as the end-to-end scenarios
//! S1 (filter → map_values → to) and S2 (count by key, 10 000 keys, logged store).
//!
//! `cargo bench --bench topology`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
use kstreams::serde::Serdes;
use kstreams::test_driver::{TestDriverConfig, TopologyTestDriver};
use kstreams::topology::Topology;

const BATCH: u64 = 1_000;
const KEYS: u64 = 10_000;

fn value(i: u64) -> Vec<u8> {
    let mut v = vec![(i % 10) as u8; 100]; // a tenth start with 0 and are filtered out by S1
    v[1..9].copy_from_slice(&i.to_be_bytes());
    v
}

fn s1() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::i64(), Serdes::bytes()))
        .filter(|_, v: &Vec<u8>| v.first().is_some_and(|b| *b != 0))
        .map_values(|v: Vec<u8>| v.into_iter().rev().collect::<Vec<u8>>())
        .to("out", Produced::with(Serdes::i64(), Serdes::bytes()));
    builder.build().unwrap()
}

fn s2() -> Topology {
    let builder = StreamsBuilder::new();
    builder
        .stream("in", Consumed::with(Serdes::i64(), Serdes::bytes()))
        .group_by_key(Default::default())
        .count(Materialized::as_("counts"))
        .to_stream()
        .to("out", Produced::with(Serdes::i64(), Serdes::nullable(Serdes::i64())));
    builder.build().unwrap()
}

fn through(c: &mut Criterion, name: &str, topology: Topology) {
    let state = tempfile::tempdir().unwrap();
    let driver = TopologyTestDriver::new(topology, TestDriverConfig::new(name).state_dir(state.path())).unwrap();
    let input = driver.input_topic("in", Serdes::i64(), Serdes::bytes());
    // The output and the changelog (if any) are drained every batch so they do not pile up.
    let changelog = driver.output_topic(&format!("{name}-counts-changelog"), Serdes::bytes(), Serdes::bytes());
    let output = driver.output_topic("out", Serdes::i64(), Serdes::bytes());
    let mut i = 0u64;
    let mut group = c.benchmark_group(format!("topology/{name}"));
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("records", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                i += 1;
                input.pipe((i % KEYS) as i64, value(i), i as i64).unwrap();
            }
            black_box(changelog.read_records().unwrap().len());
            black_box(output.read_records().unwrap().len())
        })
    });
    group.finish();
}

fn topologies(c: &mut Criterion) {
    through(c, "s1_filter_map_values", s1());
    through(c, "s2_count_by_key", s2());
}

criterion_group!(benches, topologies);
criterion_main!(benches);
