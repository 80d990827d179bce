//! Restore benchmark: how fast a store is rebuilt from a 1M-key changelog on the local broker.
//!
//! `scripts/kafka start && cargo bench --bench restore` (set `RESTORE_KEYS` for another size). It
//! writes a compacted changelog topic with one 100-byte value per key, then restores it into a
//! RocksDB and an in-memory key-value store with [`Restorer`], three times each, and prints
//! records/s. The topic is deleted afterwards.

use std::time::{Duration, Instant};

use kstreams::state::memory::InMemoryKeyValueStore;
use kstreams::state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
use kstreams::state::{KeyValueBytesStore, Restorer, StateStore};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn bootstrap() -> String {
    std::env::var("KSTREAMS_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) only checks it builds.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let keys: u64 = std::env::var("RESTORE_KEYS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let topic = format!("bench-restore-{}", std::process::id());
    let runtime = tokio::runtime::Runtime::new().expect("tokio");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap()).create().expect("admin client");
    let new = NewTopic::new(&topic, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let created = runtime.block_on(admin.create_topics([&new], &AdminOptions::new())).expect("create topic");
    assert!(created.iter().all(|r| r.is_ok()), "creating {topic}: {created:?} (is the broker up? scripts/kafka start)");

    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap())
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let value = [42u8; 100];
    let started = Instant::now();
    for i in 0..keys {
        let key = i.to_be_bytes();
        let mut record = BaseRecord::<[u8], [u8]>::to(&topic).key(&key[..]).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, r)) => {
                    producer.poll(Duration::from_millis(5));
                    record = r;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(120)).expect("flush");
    println!("wrote {keys} changelog records in {:.1} s", started.elapsed().as_secs_f64());

    let restorer = Restorer::new(&bootstrap()).expect("restorer").with_batch_size(10_000);
    let resources = RocksDbResources::shared_default();
    for round in 1..=3 {
        let dir = tempfile::tempdir().expect("temp dir");
        let stores: [(&str, Box<dyn KeyValueBytesStore>); 2] = [
            ("rocksdb", Box::new(RocksDbKeyValueStore::open("bench", dir.path().join("kv"), &resources).unwrap())),
            ("in_memory", Box::new(InMemoryKeyValueStore::new("bench"))),
        ];
        for (name, mut store) in stores {
            let started = Instant::now();
            let outcome = restorer.restore(store.as_mut() as &mut dyn StateStore, &topic, 0, None).expect("restore");
            let secs = started.elapsed().as_secs_f64();
            assert_eq!(outcome.records, keys);
            assert!(store.approximate_num_entries().unwrap() > 0);
            println!(
                "restore round {round} {name:9}: {} records in {secs:.2} s = {:.0} records/s",
                outcome.records,
                outcome.records as f64 / secs
            );
        }
    }
    let _ = runtime.block_on(admin.delete_topics(&[&topic], &AdminOptions::new()));
}
