//! Broker access for the harness: topics, offsets, and a digest of an output topic.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The harness's errors: one clear sentence each.
pub type Res<T> = Result<T, String>;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The bootstrap address (`KSTREAMS_BOOTSTRAP`, default `127.0.0.1:9092`).
pub fn bootstrap() -> String {
    std::env::var("KSTREAMS_BOOTSTRAP").unwrap_or_else(|_| "127.0.0.1:9092".to_string())
}

/// Creates and deletes topics.
pub struct Admin {
    admin: AdminClient<DefaultClientContext>,
    meta: BaseConsumer,
    runtime: tokio::runtime::Runtime,
}

impl Admin {
    pub fn new(bootstrap: &str) -> Res<Admin> {
        let admin = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .map_err(|e| format!("admin client for {bootstrap}: {e}"))?;
        let meta = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .map_err(|e| format!("metadata client for {bootstrap}: {e}"))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("tokio runtime: {e}"))?;
        Ok(Admin { admin, meta, runtime })
    }

    /// Creates `topics` (name, partitions), replication 1.
    pub fn create(&self, topics: &[(&str, i32)]) -> Res<()> {
        let new: Vec<NewTopic<'_>> =
            topics.iter().map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1))).collect();
        let results = self
            .runtime
            .block_on(self.admin.create_topics(&new, &AdminOptions::new()))
            .map_err(|e| format!("creating topics {topics:?}: {e} (is the broker up? scripts/kafka start)"))?;
        for result in results {
            result.map_err(|(t, e)| format!("creating topic {t}: {e}"))?;
        }
        // Wait until the metadata shows every partition, so producers and consumers find them.
        let deadline = Instant::now() + TIMEOUT;
        for (topic, partitions) in topics {
            while self.partitions(topic)? < *partitions {
                if Instant::now() > deadline {
                    return Err(format!("topic {topic} created but not visible in the metadata"));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Deletes `topics`, ignoring those that do not exist.
    pub fn delete(&self, topics: &[String]) {
        if topics.is_empty() {
            return;
        }
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        match self.runtime.block_on(self.admin.delete_topics(&names, &AdminOptions::new())) {
            Ok(results) => {
                for result in results {
                    if let Err((topic, e)) = result {
                        tracing::debug!(%topic, %e, "delete topic");
                    }
                }
            }
            Err(e) => tracing::warn!(%e, ?topics, "cannot delete topics"),
        }
    }

    /// The topics whose names start with `prefix`.
    pub fn topics_with_prefix(&self, prefix: &str) -> Res<Vec<String>> {
        let metadata = self.meta.fetch_metadata(None, TIMEOUT).map_err(|e| format!("metadata: {e}"))?;
        Ok(metadata.topics().iter().map(|t| t.name().to_string()).filter(|t| t.starts_with(prefix)).collect())
    }

    /// How many partitions `topic` has (0 if unknown).
    pub fn partitions(&self, topic: &str) -> Res<i32> {
        let metadata =
            self.meta.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| format!("metadata of {topic}: {e}"))?;
        Ok(metadata.topics().first().filter(|t| t.error().is_none()).map_or(0, |t| t.partitions().len() as i32))
    }
}

/// Watches one consumer group's committed offsets and topics' end offsets.
pub struct Monitor {
    consumer: BaseConsumer,
}

impl Monitor {
    /// A monitor of group `group` (it never joins the group).
    pub fn new(bootstrap: &str, group: &str) -> Res<Monitor> {
        let consumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            // read_committed would ask for stable offsets, which under exactly-once (a transaction
            // open nearly all the time) makes the offset fetch retry until it times out.
            .set("isolation.level", "read_uncommitted")
            .create()
            .map_err(|e| format!("monitor client: {e}"))?;
        Ok(Monitor { consumer })
    }

    /// The sum over `topic`'s `partitions` of their end offsets (high watermarks).
    pub fn end_offsets(&self, topic: &str, partitions: i32) -> Res<i64> {
        let mut sum = 0;
        for p in 0..partitions {
            let (_, high) = self
                .consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .map_err(|e| format!("end offset of {topic}/{p}: {e}"))?;
            sum += high;
        }
        Ok(sum)
    }

    /// The group's committed offset per partition of `topic` (0 where none is committed).
    pub fn committed(&self, topic: &str, partitions: i32) -> Res<Vec<i64>> {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed =
            self.consumer.committed_offsets(tpl, TIMEOUT).map_err(|e| format!("committed offsets of {topic}: {e}"))?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            })
            .collect())
    }

    /// The end offset per partition of `topic`.
    pub fn end_offsets_each(&self, topic: &str, partitions: i32) -> Res<Vec<i64>> {
        (0..partitions)
            .map(|p| {
                self.consumer
                    .fetch_watermarks(topic, p, TIMEOUT)
                    .map(|(_, high)| high)
                    .map_err(|e| format!("end offset of {topic}/{p}: {e}"))
            })
            .collect()
    }
}

/// An order-independent summary of a topic's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Digest {
    pub count: u64,
    /// Wrapping sum of a 64-bit hash of key ‖ value over the records.
    pub checksum: u64,
}

/// A 64-bit hash of `key` ‖ `value` (FNV-1a with a final mix; the length of the key is hashed in so
/// that the split between key and value counts).
pub fn record_hash(key: &[u8], value: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in (key.len() as u64).to_le_bytes().iter().chain(key).chain(value) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    crate::loader::mix(h)
}

/// Reads `topic` from the start to its end with a read_committed consumer and digests it.
pub fn digest_topic(bootstrap: &str, topic: &str, timeout: Duration) -> Res<Digest> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-digest"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "true")
        .set("fetch.max.bytes", "52428800")
        .create()
        .map_err(|e| format!("digest consumer: {e}"))?;
    let metadata = consumer.fetch_metadata(Some(topic), TIMEOUT).map_err(|e| format!("metadata of {topic}: {e}"))?;
    let partitions = metadata.topics().first().map_or(0, |t| t.partitions().len() as i32);
    if partitions == 0 {
        return Err(format!("output topic {topic} has no partitions"));
    }
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning).map_err(|e| format!("assignment: {e}"))?;
    }
    consumer.assign(&tpl).map_err(|e| format!("assign {topic}: {e}"))?;
    let mut at_end: BTreeMap<i32, bool> = (0..partitions).map(|p| (p, false)).collect();
    let mut digest = Digest::default();
    let deadline = Instant::now() + timeout;
    while at_end.values().any(|e| !e) {
        if Instant::now() > deadline {
            return Err(format!("reading {topic} took more than {timeout:?} ({} records so far)", digest.count));
        }
        match consumer.poll(Duration::from_millis(500)) {
            None => {}
            Some(Ok(m)) => {
                at_end.insert(m.partition(), false);
                digest.count += 1;
                let h = record_hash(m.key().unwrap_or_default(), m.payload().unwrap_or_default());
                digest.checksum = digest.checksum.wrapping_add(h);
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p, true);
            }
            Some(Err(e)) => return Err(format!("reading {topic}: {e}")),
        }
    }
    Ok(digest)
}
