//! Preloads the input topics once per harness run, the same bytes for both sides.
//!
//! Keys are 8-byte big-endian longs, values 100 bytes (about 10 % start with a 0 byte, which S1's
//! filter drops), and a record goes to partition `key % 4`, so that a stream and a table with the
//! same keys are co-partitioned. Timestamps are synthetic: `base + n` ms for the n-th record of a
//! partition, so event time rises monotonically within each partition.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::kafka::{Admin, Res};

pub const PARTITIONS: i32 = 4;
pub const VALUE_BYTES: usize = 100;
pub const TABLE_KEYS: u64 = 100_000;
pub const EVENT_KEYS: u64 = 10_000;

/// One preloaded topic.
#[derive(Debug, Clone)]
pub struct Input {
    pub topic: String,
    pub records: u64,
    /// Records whose value does not start with 0 (what S1 keeps).
    pub nonzero_first: u64,
}

/// The preloaded topics.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Events over 10K keys: S0, S1, S2-10k, S3, S4's stream, S5.
    pub events: Input,
    /// Each of `records` keys once: S2-2M.
    pub many_keys: Input,
    /// 100K keys, event time before every event: S4's table.
    pub table: Input,
}

/// SplitMix64's finalizer: a good 64-bit mix of `x`.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The 100-byte value of record `seed`: pseudo-random, starting with 0 for about one in ten.
pub fn value(seed: u64) -> [u8; VALUE_BYTES] {
    let mut v = [0u8; VALUE_BYTES];
    for (i, chunk) in v.chunks_mut(8).enumerate() {
        let word = mix(seed.wrapping_mul(31).wrapping_add(i as u64)).to_le_bytes();
        chunk.copy_from_slice(&word[..chunk.len()]);
    }
    if mix(seed ^ 0x5555) % 10 == 0 {
        v[0] = 0;
    } else if v[0] == 0 {
        v[0] = 1;
    }
    v
}

/// The key of event `i`: uniform over `0..EVENT_KEYS`.
pub fn event_key(i: u64) -> i64 {
    (mix(i) % EVENT_KEYS) as i64
}

/// A fast producer for bulk loads.
pub fn bulk_producer(bootstrap: &str) -> Res<ThreadedProducer<DefaultProducerContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "10")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("compression.type", "lz4")
        .set("acks", "all")
        .create()
        .map_err(|e| format!("loader producer: {e}"))
}

/// Sends one record, waiting while the local queue is full.
pub fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    topic: &str,
    partition: i32,
    key: i64,
    value: &[u8],
    ts: i64,
) {
    let key = key.to_be_bytes();
    let mut record =
        BaseRecord::<[u8], [u8]>::to(topic).partition(partition).key(&key[..]).payload(value).timestamp(ts);
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, r)) => {
                record = r;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Writes `count` records with keys `key(i)` to `topic`, timestamps from `base` per partition.
fn load_topic(bootstrap: &str, topic: &str, count: u64, base: i64, key: impl Fn(u64) -> i64, seed: u64) -> Res<Input> {
    let producer = bulk_producer(bootstrap)?;
    let started = Instant::now();
    let mut next = [0i64; PARTITIONS as usize];
    let mut nonzero_first = 0;
    for i in 0..count {
        let k = key(i);
        let p = k.rem_euclid(i64::from(PARTITIONS)) as usize;
        let v = value(seed.wrapping_add(i));
        if v[0] != 0 {
            nonzero_first += 1;
        }
        send(&producer, topic, p as i32, k, &v, base + next[p]);
        next[p] += 1;
    }
    producer.flush(Duration::from_secs(300)).map_err(|e| format!("flushing {topic}: {e}"))?;
    let secs = started.elapsed().as_secs_f64();
    println!("loaded {count} records into {topic} in {secs:.1} s ({:.0} records/s)", count as f64 / secs);
    Ok(Input { topic: topic.to_string(), records: count, nonzero_first })
}

/// Creates and fills the input topics under `prefix`: `events` records over 10K keys, `many_keys`
/// records over as many distinct keys, and the 100K-key table (loaded first).
pub fn load(admin: &Admin, bootstrap: &str, prefix: &str, events: u64, many_keys: u64) -> Res<Inputs> {
    let (events_topic, many_topic, table_topic) =
        (format!("{prefix}-in-events"), format!("{prefix}-in-keys"), format!("{prefix}-in-table"));
    admin.create(&[
        (events_topic.as_str(), PARTITIONS),
        (many_topic.as_str(), PARTITIONS),
        (table_topic.as_str(), PARTITIONS),
    ])?;
    // Event time: within the last few hours (so retention does not delete the data), the table's
    // before every event's.
    let base = now_ms() - 3_600_000 - events.max(many_keys) as i64;
    let table = load_topic(bootstrap, &table_topic, TABLE_KEYS, base - 1_000_000, |i| i as i64, 7_000_000_000)?;
    let events = load_topic(bootstrap, &events_topic, events, base, event_key, 0)?;
    // A permutation of 0..n: i * P mod n with P prime and not dividing n.
    let n = many_keys;
    let many = load_topic(
        bootstrap,
        &many_topic,
        n,
        base,
        |i| ((u128::from(i) * 1_000_003) % u128::from(n)) as i64,
        3_000_000_000,
    )?;
    Ok(Inputs { events, many_keys: many, table })
}
