//! Restoration against the real broker at 127.0.0.1:9092 (`scripts/kafka start`). Fails, never skips,
//! when no broker is there.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kstreams_state::memory::InMemoryKeyValueStore;
use kstreams_state::rocksdb::{RocksDbKeyValueStore, RocksDbResources};
use kstreams_state::store::KeyValueBytesStore;
use kstreams_state::{RestoreListener, Restorer};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

const BROKER: &str = "127.0.0.1:9092";

fn require_broker() {
    let addr: SocketAddr = BROKER.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        panic!("no Kafka broker at {BROKER}: run scripts/kafka start");
    }
}

fn unique_topic(tag: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("kstreams-state-test-{tag}-{}-{nanos}-changelog", std::process::id())
}

fn create_topic(topic: &str) {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", BROKER).create().expect("admin client");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact");
    let results = rt
        .block_on(admin.create_topics(&[new], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)))))
        .expect("create_topics request");
    for r in results {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
}

type Change = (Vec<u8>, Option<Vec<u8>>);

/// Produces `records` in one transaction, committed or aborted.
fn produce_txn(producer: &BaseProducer, topic: &str, records: &[Change], commit: bool) {
    let t = Duration::from_secs(30);
    producer.begin_transaction().expect("begin transaction");
    for (k, v) in records {
        let mut rec = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic).key(k).partition(0);
        if let Some(v) = v {
            rec = rec.payload(v);
        }
        let mut rec = rec;
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((e, back)) => {
                    assert!(
                        matches!(
                            e,
                            rdkafka::error::KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                        ),
                        "send: {e}"
                    );
                    producer.poll(Duration::from_millis(50));
                    rec = back;
                }
            }
        }
    }
    producer.flush(t).expect("flush");
    if commit {
        producer.commit_transaction(t).expect("commit");
    } else {
        producer.abort_transaction(t).expect("abort");
    }
}

#[derive(Default)]
struct CountingListener {
    started: AtomicU64,
    batches: AtomicU64,
    batch_records: AtomicU64,
    ended: Mutex<Vec<u64>>,
}

impl RestoreListener for CountingListener {
    fn on_restore_start(&self, _: &str, _: i32, _: &str, start: i64, end: i64) {
        assert!(start <= end);
        self.started.fetch_add(1, Ordering::SeqCst);
    }
    fn on_batch_restored(&self, _: &str, _: i32, _: &str, _: i64, n: u64) {
        self.batches.fetch_add(1, Ordering::SeqCst);
        self.batch_records.fetch_add(n, Ordering::SeqCst);
    }
    fn on_restore_end(&self, _: &str, _: i32, _: &str, total: u64) {
        self.ended.lock().unwrap().push(total);
    }
}

fn contents(store: &dyn KeyValueBytesStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    store.all().unwrap().map(|r| r.unwrap()).collect()
}

fn apply(expected: &mut BTreeMap<Vec<u8>, Vec<u8>>, changes: &[Change]) {
    for (k, v) in changes {
        match v {
            Some(v) => expected.insert(k.clone(), v.clone()),
            None => expected.remove(k),
        };
    }
}

#[test]
fn restores_committed_changelog_into_rocksdb_and_resumes_from_checkpoint() {
    require_broker();
    let topic = unique_topic("kv");
    create_topic(&topic);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", BROKER)
        .set("transactional.id", format!("{topic}-txn"))
        .create()
        .expect("producer");
    producer.init_transactions(Duration::from_secs(30)).expect("init transactions");

    // 500 committed changes over 50 keys, every 7th a tombstone.
    let first: Vec<Change> = (0..500u32)
        .map(|i| (format!("k{}", i % 50).into_bytes(), (i % 7 != 0).then(|| format!("v{i}").into_bytes())))
        .collect();
    let aborted: Vec<Change> = (0..20u32).map(|i| (format!("k{i}").into_bytes(), Some(b"aborted".to_vec()))).collect();
    let tail: Vec<Change> =
        (0..30u32).map(|i| (format!("t{i}").into_bytes(), Some(format!("w{i}").into_bytes()))).collect();
    produce_txn(&producer, &topic, &first, true);
    produce_txn(&producer, &topic, &aborted, false);
    let mut expected = BTreeMap::new();
    apply(&mut expected, &first);

    let dir = tempfile::tempdir().unwrap();
    let resources = RocksDbResources::shared_default();
    let listener = Arc::new(CountingListener::default());
    let restorer = Restorer::new(BROKER)
        .unwrap()
        .with_batch_size(64)
        .with_timeout(Duration::from_secs(30))
        .with_listener(listener.clone());

    let mut store = RocksDbKeyValueStore::open("kv", dir.path().join("kv"), &resources).unwrap();
    let outcome = restorer.restore(&mut store, &topic, 0, None).unwrap();
    assert_eq!(outcome.records, first.len() as u64, "aborted records are not restored");
    assert!(outcome.next_offset > first.len() as i64, "the position passed the commit marker");
    assert_eq!(contents(&store), expected);
    assert_eq!(listener.started.load(Ordering::SeqCst), 1);
    assert_eq!(listener.batch_records.load(Ordering::SeqCst), first.len() as u64);
    assert!(listener.batches.load(Ordering::SeqCst) >= (first.len() as u64).div_ceil(64));
    assert_eq!(*listener.ended.lock().unwrap(), vec![first.len() as u64]);

    // More changes arrive; restoring from the checkpoint reads only them.
    produce_txn(&producer, &topic, &tail, true);
    apply(&mut expected, &tail);
    // The commit returns before the broker wrote its markers; until then the last stable offset (the
    // restorer's end, under read_committed) stays before the tail.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while restorer.offsets(&topic, 0).unwrap().1 <= outcome.next_offset + tail.len() as i64 {
        assert!(std::time::Instant::now() < deadline, "the tail's transaction never became stable");
        std::thread::sleep(Duration::from_millis(20));
    }
    let resumed = restorer.restore(&mut store, &topic, 0, Some(outcome.next_offset)).unwrap();
    assert_eq!(resumed.records, tail.len() as u64, "only the tail after the checkpoint is read");
    assert!(resumed.next_offset > outcome.next_offset);
    assert_eq!(contents(&store), expected);

    // A fresh store restored from the beginning ends up identical.
    let mut fresh = RocksDbKeyValueStore::open("kv2", dir.path().join("kv2"), &resources).unwrap();
    let full = restorer.restore(&mut fresh, &topic, 0, None).unwrap();
    assert_eq!(full.records, (first.len() + tail.len()) as u64);
    assert_eq!(full.next_offset, resumed.next_offset);
    assert_eq!(contents(&fresh), contents(&store));

    // Restoring at the end reads nothing.
    let mut mem = InMemoryKeyValueStore::new("mem");
    let none = restorer.restore(&mut mem, &topic, 0, Some(full.next_offset)).unwrap();
    assert_eq!(none.records, 0);
    assert!(contents(&mem).is_empty());
}
