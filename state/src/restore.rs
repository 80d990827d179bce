//! Restoring stores from their changelog topics with a dedicated restore consumer.
//!
//! The [`Restorer`] owns a `BaseConsumer` that is only ever `assign`ed (no group membership, no offset
//! commits) and reads with `isolation.level=read_committed`, so aborted transactional writes never
//! reach a store. A changelog partition is read from the checkpointed offset (or its beginning) in
//! batches handed to [`StateStore::restore_batch`] (one RocksDB write batch each). A partition counts
//! as restored when the consumer's **position** reaches the end offset taken at the start: offsets are
//! not dense (transaction markers take offsets but are never delivered), so counting records would
//! never finish and offset arithmetic would miscount.
//!
//! Progress is visible three ways: an `info!` line per batch with records done, the estimated total
//! and the rate; the `kstreams_state_restore_records_total` counter when the store is metered; and a
//! [`RestoreListener`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::error::{StateError, StateResult};
use crate::store::StateStore;

/// Hooks called while a store restores, like Kafka Streams' `StateRestoreListener`.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use kstreams_state::RestoreListener;
/// /// Counts restored records.
/// #[derive(Default)]
/// struct Progress(AtomicU64);
/// impl RestoreListener for Progress {
///     fn on_batch_restored(&self, _topic: &str, _partition: i32, _store: &str, _end: i64, n: u64) {
///         self.0.fetch_add(n, Ordering::Relaxed);
///     }
/// }
/// let p = Progress::default();
/// p.on_batch_restored("app-counts-changelog", 0, "counts", 99, 100);
/// assert_eq!(p.0.load(Ordering::Relaxed), 100);
/// ```
pub trait RestoreListener: Send + Sync {
    /// Restoration of `store` from `topic`/`partition` starts at `start_offset`; `end_offset` is where
    /// it will stop.
    fn on_restore_start(&self, topic: &str, partition: i32, store: &str, start_offset: i64, end_offset: i64) {
        let _ = (topic, partition, store, start_offset, end_offset);
    }
    /// A batch of `num_restored` records up to `batch_end_offset` (inclusive) was applied.
    fn on_batch_restored(&self, topic: &str, partition: i32, store: &str, batch_end_offset: i64, num_restored: u64) {
        let _ = (topic, partition, store, batch_end_offset, num_restored);
    }
    /// Restoration finished after `total_restored` records.
    fn on_restore_end(&self, topic: &str, partition: i32, store: &str, total_restored: u64) {
        let _ = (topic, partition, store, total_restored);
    }
}

/// What one restoration did.
///
/// ```no_run
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::Restorer;
/// let restorer = Restorer::new("127.0.0.1:9092").unwrap();
/// let mut store = InMemoryKeyValueStore::new("counts");
/// let outcome = restorer.restore(&mut store, "app-counts-changelog", 0, Some(100)).unwrap();
/// assert!(outcome.next_offset >= 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestoreOutcome {
    /// Changelog records applied to the store.
    pub records: u64,
    /// The consumer position at the end: the offset to checkpoint for the store.
    pub next_offset: i64,
}

/// Restores stores from changelog partitions, one partition at a time.
///
/// ```no_run
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::Restorer;
///
/// let restorer = Restorer::new("127.0.0.1:9092").unwrap();
/// let mut store = InMemoryKeyValueStore::new("counts");
/// let outcome = restorer.restore(&mut store, "app-counts-changelog", 0, None).unwrap();
/// println!("restored {} records; checkpoint {}", outcome.records, outcome.next_offset);
/// ```
pub struct Restorer {
    consumer: BaseConsumer,
    batch_size: usize,
    timeout: Duration,
    listener: Option<Arc<dyn RestoreListener>>,
    interrupt: Option<Arc<AtomicBool>>,
}

impl std::fmt::Debug for Restorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Restorer").field("batch_size", &self.batch_size).field("timeout", &self.timeout).finish()
    }
}

fn kafka_err(topic: &str, partition: i32, what: &str) -> impl Fn(rdkafka::error::KafkaError) -> StateError {
    let (topic, what) = (topic.to_string(), what.to_string());
    move |e| StateError::Restore { topic: topic.clone(), partition, detail: format!("{what}: {e}") }
}

impl Restorer {
    /// A restore consumer for the cluster at `bootstrap_servers`.
    pub fn new(bootstrap_servers: &str) -> StateResult<Restorer> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", bootstrap_servers);
        Restorer::from_config(config)
    }

    /// A restore consumer from a client config (security settings etc.). Commit and isolation
    /// settings are overridden: the consumer is only ever assigned partitions (it never joins its
    /// group nor commits), and reads committed data.
    pub fn from_config(mut config: ClientConfig) -> StateResult<Restorer> {
        config
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false");
        // Changelogs are read start to end: fetch in large chunks (Kafka's default is 1 MiB).
        if config.get("max.partition.fetch.bytes").is_none() {
            config.set("max.partition.fetch.bytes", (16 << 20).to_string());
        }
        // The last fetch of a changelog (under exactly-once it ends with a transaction marker, which
        // no record stands for) would otherwise wait librdkafka's 500 ms for data that never comes:
        // most of the time it took to reopen a task with little or nothing to restore.
        if config.get("fetch.wait.max.ms").is_none() {
            config.set("fetch.wait.max.ms", "10");
        }
        // librdkafka's `assign` needs a group id even though this consumer never joins the group nor
        // commits: any fixed id will do.
        if config.get("group.id").is_none() {
            config.set("group.id", "kstreams-restore-consumer");
        }
        let consumer: BaseConsumer = config.create().map_err(|e| StateError::Restore {
            topic: String::new(),
            partition: -1,
            detail: format!("creating the restore consumer: {e}; check `bootstrap.servers`"),
        })?;
        Ok(Restorer { consumer, batch_size: 1_000, timeout: Duration::from_secs(60), listener: None, interrupt: None })
    }

    /// Records per `restore_batch` call (default 1000).
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How long a restoration may go without progress before failing (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Calls `listener` during each restoration.
    pub fn with_listener(mut self, listener: Arc<dyn RestoreListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Restorations stop soon after `flag` is set: the store keeps what was restored, committed at
    /// the offset it reached, and [`restore`](Self::restore) returns
    /// [`StateError::RestoreInterrupted`]. A restorer that works beside a stream thread uses this to
    /// give up a task that moved away.
    ///
    /// ```no_run
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use std::sync::Arc;
    /// use kstreams_state::Restorer;
    /// let stop = Arc::new(AtomicBool::new(false));
    /// let mut restorer = Restorer::new("127.0.0.1:9092").unwrap();
    /// restorer.interrupt_when(stop.clone());
    /// stop.store(true, Ordering::Relaxed); // from another thread: the next batch is the last
    /// ```
    pub fn interrupt_when(&mut self, flag: Arc<AtomicBool>) {
        self.interrupt = Some(flag);
    }

    fn interrupted(&self) -> bool {
        self.interrupt.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    /// The offsets restoration of `topic`/`partition` would run between: (low watermark, end offset).
    /// While the partition has no leader (a broker is away, `UnknownPartition` or a timeout), the
    /// lookup is retried for up to the restorer's timeout.
    pub fn offsets(&self, topic: &str, partition: i32) -> StateResult<(i64, i64)> {
        let began = Instant::now();
        let mut attempt = 0u32;
        loop {
            let left = self.timeout.saturating_sub(began.elapsed());
            match self.consumer.fetch_watermarks(topic, partition, left.min(Duration::from_secs(5))) {
                Ok(offsets) => return Ok(offsets),
                // A restoration that was given up stops waiting too.
                Err(_) if self.interrupted() => {
                    return Err(StateError::RestoreInterrupted { topic: topic.to_string(), partition, position: -1 })
                }
                Err(e) if began.elapsed() < self.timeout => {
                    attempt += 1;
                    tracing::warn!(topic, partition, error = %e, attempt,
                        "cannot read the changelog's end offset yet; retrying (is the partition's leader up?)");
                    std::thread::sleep(Duration::from_millis(200u64.saturating_mul(attempt.min(10).into())));
                    // librdkafka answers from its metadata cache, which learns of the partition's
                    // new leader only at its next refresh (`topic.metadata.refresh.interval.ms`,
                    // 5 minutes) when nothing else asks: ask now.
                    let _ = self.consumer.fetch_metadata(Some(topic), Duration::from_secs(2));
                }
                Err(e) => {
                    return Err(kafka_err(
                        topic,
                        partition,
                        "fetching the end offset (is the broker reachable and the topic created?)",
                    )(e))
                }
            }
        }
    }

    /// Restores `store` from `topic`/`partition`, from `from_offset` (a checkpoint; `None` = the
    /// beginning) until the consumer position reaches the end offset. Returns the records applied and
    /// the offset to checkpoint.
    pub fn restore(
        &self,
        store: &mut dyn StateStore,
        topic: &str,
        partition: i32,
        from_offset: Option<i64>,
    ) -> StateResult<RestoreOutcome> {
        let name = store.name().to_string();
        let (low, end) = self.offsets(topic, partition)?;
        let start = from_offset.unwrap_or(low).max(low);
        if let Some(from) = from_offset {
            if from > end {
                tracing::warn!(store = %name, topic, partition, checkpoint = from, end,
                    "checkpoint is past the changelog's end (topic recreated?); restoring from the beginning");
                return self.restore(store, topic, partition, None);
            }
        }
        if let Some(l) = &self.listener {
            l.on_restore_start(topic, partition, &name, start, end);
        }
        let total_estimate = (end - start).max(0);
        tracing::info!(store = %name, topic, partition, start, end, "restoring store from its changelog");
        let began = Instant::now();
        let mut restored: u64 = 0;
        let mut position = start;
        if start < end {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition_offset(topic, partition, Offset::Offset(start)).map_err(kafka_err(
                topic,
                partition,
                "building the assignment",
            ))?;
            self.consumer.assign(&tpl).map_err(kafka_err(topic, partition, "assigning the restore consumer"))?;
            let result = self.consume(store, &name, topic, partition, end, &mut restored, &mut position, began);
            let unassigned = self.consumer.unassign();
            result?;
            unassigned.map_err(kafka_err(topic, partition, "unassigning the restore consumer"))?;
        }
        let secs = began.elapsed().as_secs_f64();
        tracing::info!(store = %name, topic, partition, records = restored, seconds = secs,
            rate = restored as f64 / secs.max(1e-9), "restored store");
        if let Some(l) = &self.listener {
            l.on_restore_end(topic, partition, &name, restored);
        }
        let _ = total_estimate;
        Ok(RestoreOutcome { records: restored, next_offset: position.max(start) })
    }

    #[allow(clippy::too_many_arguments)]
    fn consume(
        &self,
        store: &mut dyn StateStore,
        name: &str,
        topic: &str,
        partition: i32,
        end: i64,
        restored: &mut u64,
        position: &mut i64,
        began: Instant,
    ) -> StateResult<()> {
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(self.batch_size);
        let mut last_offset = -1;
        let mut last_progress = Instant::now();
        let mut last_error: Option<Instant> = None;
        let total = (end - *position).max(0);
        loop {
            if self.interrupted() {
                if !batch.is_empty() {
                    store.restore_batch(&batch)?;
                    *restored += batch.len() as u64;
                }
                store.commit(Some(*position))?;
                tracing::info!(
                    store = name,
                    topic,
                    partition,
                    position = *position,
                    done = *restored,
                    "restoration interrupted; the store keeps what was restored"
                );
                return Err(StateError::RestoreInterrupted {
                    topic: topic.to_string(),
                    partition,
                    position: *position,
                });
            }
            // The consumer's position is only asked for when the fetched data ran out (it may stop
            // short of a transaction marker): asking after every record cost more than the restore.
            // A short poll: a changelog that ends with a marker returns no record at its end, and
            // each idle poll is a wait before the position is asked again.
            let mut idle = false;
            match self.consumer.poll(Duration::from_millis(10)) {
                Some(Ok(msg)) => {
                    last_offset = msg.offset();
                    *position = (*position).max(msg.offset() + 1);
                    match msg.key() {
                        Some(k) => batch.push((k.to_vec(), msg.payload().map(<[u8]>::to_vec))),
                        None => tracing::warn!(
                            store = name,
                            topic,
                            partition,
                            offset = msg.offset(),
                            "skipping a changelog record without a key"
                        ),
                    }
                }
                // The consumer reconnects and refetches by itself (a broker away, a leader moving):
                // its errors are waited out, bounded by the no-progress timeout below.
                Some(Err(e)) => {
                    if last_error.is_none_or(|at: Instant| at.elapsed() > Duration::from_secs(5)) {
                        tracing::warn!(store = name, topic, partition, error = %e,
                            "the restore consumer reports an error; waiting for the broker");
                        last_error = Some(Instant::now());
                    }
                    idle = true;
                }
                None => idle = true,
            }
            if idle {
                let pos = self.current_position(topic, partition)?;
                if pos > *position {
                    *position = pos;
                    last_progress = Instant::now();
                }
            }
            let done = *position >= end;
            if batch.len() >= self.batch_size || (done && !batch.is_empty()) {
                store.restore_batch(&batch)?;
                last_progress = Instant::now();
                let n = batch.len() as u64;
                *restored += n;
                batch.clear();
                if let Some(l) = &self.listener {
                    l.on_batch_restored(topic, partition, name, last_offset, n);
                }
                let secs = began.elapsed().as_secs_f64().max(1e-9);
                tracing::debug!(
                    store = name,
                    topic,
                    partition,
                    done = *restored,
                    total,
                    rate = *restored as f64 / secs,
                    "restoring"
                );
            }
            if done {
                return Ok(());
            }
            if last_progress.elapsed() > self.timeout {
                return Err(StateError::Restore {
                    topic: topic.to_string(),
                    partition,
                    detail: format!(
                        "no progress for {:?} at position {} (end offset {end}); check the brokers",
                        self.timeout, *position
                    ),
                });
            }
        }
    }

    fn current_position(&self, topic: &str, partition: i32) -> StateResult<i64> {
        let tpl = self.consumer.position().map_err(kafka_err(topic, partition, "reading the consumer position"))?;
        Ok(tpl
            .find_partition(topic, partition)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            })
            .unwrap_or(-1))
    }
}
