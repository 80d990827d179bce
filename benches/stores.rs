//! Store micro-benchmarks: put, get and range scans on both backends (in-memory and RocksDB), and a
//! windowed put, through the byte-store traits every layer builds on.
//!
//! `cargo bench --bench stores`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use kstreams::state::memory::{InMemoryKeyValueStore, InMemoryWindowStore};
use kstreams::state::rocksdb::{RocksDbKeyValueStore, RocksDbResources, RocksDbWindowStore};
use kstreams::state::{KeyValueBytesStore, WindowBytesStore};

const KEYS: u64 = 10_000;
const VALUE: [u8; 100] = [7u8; 100];

fn key(i: u64) -> [u8; 8] {
    // Spread keys so consecutive puts do not hit neighbouring keys.
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

type KvFactory = fn(&std::path::Path) -> Box<dyn KeyValueBytesStore>;

fn backends() -> [(&'static str, KvFactory); 2] {
    [
        ("in_memory", |_| Box::new(InMemoryKeyValueStore::new("bench"))),
        ("rocksdb", |dir| {
            Box::new(RocksDbKeyValueStore::open("bench", dir.join("kv"), &RocksDbResources::shared_default()).unwrap())
        }),
    ]
}

fn key_value(c: &mut Criterion) {
    for (name, open) in backends() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(dir.path());
        for i in 0..KEYS {
            store.put(&key(i), Some(&VALUE)).unwrap();
        }
        let mut group = c.benchmark_group(format!("kv/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        group.bench_function("put", |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                store.put(&key(i), Some(black_box(&VALUE))).unwrap();
            })
        });
        group.bench_function("get", |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                black_box(store.get(&key(i)).unwrap());
            })
        });
        group.throughput(Throughput::Elements(100));
        group.bench_function("range_100", |b| {
            b.iter(|| {
                i = (i + 1) % KEYS;
                let from = key(i);
                let n = store.range(Some(&from), None).unwrap().take(100).count();
                black_box(n);
            })
        });
        group.finish();
    }
}

fn window(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let hour = 3_600_000;
    let stores: [(&str, Box<dyn WindowBytesStore>); 2] = [
        ("in_memory", Box::new(InMemoryWindowStore::new("w", hour, false))),
        (
            "rocksdb",
            Box::new(
                RocksDbWindowStore::open("w", dir.path().join("w"), hour, false, &RocksDbResources::shared_default())
                    .unwrap(),
            ),
        ),
    ];
    for (name, mut store) in stores {
        let mut group = c.benchmark_group(format!("window/{name}"));
        group.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        group.bench_function("put", |b| {
            b.iter_batched(
                || {
                    i += 1;
                    i
                },
                |i| store.put(&key(i % KEYS), Some(&VALUE), (i as i64 / 100) * 1000).unwrap(),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("fetch_range", |b| {
            b.iter(|| {
                i += 1;
                black_box(store.fetch_range(&key(i % KEYS), 0, i64::MAX).unwrap());
            })
        });
        group.finish();
    }
}

criterion_group!(benches, key_value, window);
criterion_main!(benches);
