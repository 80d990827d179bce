//! A stream thread: one consumer, one producer (transactional under exactly-once), and the tasks of
//! the partitions the group assigned to it.
//!
//! The loop: poll a record, hand it to its task, run due punctuations, and commit every
//! `commit.interval.ms`. Rebalance callbacks run inside `poll`: on revoke, the thread commits and
//! closes the revoked tasks before the partitions move; on assign, it notes the partitions, and the
//! loop creates (and restores) their tasks before it processes their records.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, OwnedHeaders};
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::{ClientContext, Message};

use kstreams_state::StoreContext;

use crate::error::{Result, StreamsError};
use crate::header::{Header, Headers};
use crate::processor::node::ConsumedBytes;
use crate::runtime::collector::{KProducer, KafkaCollector, ProducerCtx};
use crate::runtime::config::{DeserializationHandler, ProcessingGuarantee, ValidConfig};
use crate::runtime::restore::restore_store;
use crate::task::{StreamTask, TaskId};
use crate::topology::{SubTopology, Topology};

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the application's threads share.
pub(crate) struct ThreadShared {
    pub shutdown: AtomicBool,
}

struct TaskEntry {
    task: StreamTask,
    /// Next offset to commit per (topic, partition) of this task.
    next_offsets: HashMap<(String, i32), i64>,
}

/// Everything the loop and the rebalance callbacks both touch.
pub(crate) struct ThreadWork {
    index: usize,
    config: Arc<ValidConfig>,
    topology: Arc<Topology>,
    subs: Vec<SubTopology>,
    /// Sub-topology reading each topic (full name).
    topic_to_sub: HashMap<String, u32>,
    partitions: Arc<Mutex<HashMap<String, i32>>>,
    transactional_id: String,
    producer: Arc<KProducer>,
    producer_ctx: ProducerCtx,
    tasks: BTreeMap<TaskId, TaskEntry>,
    assigned: HashSet<(String, i32)>,
    /// Records processed since the last commit.
    uncommitted: usize,
    /// An error raised inside a rebalance callback, reported by the loop.
    callback_error: Option<StreamsError>,
    pub(crate) rebalancing: bool,
    last_commit: Instant,
}

/// The consumer's context: rebalance callbacks reach the thread's tasks through it.
pub(crate) struct RebalanceCtx {
    work: Arc<Mutex<ThreadWork>>,
}

impl ClientContext for RebalanceCtx {}

impl ConsumerContext for RebalanceCtx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut work) = self.work.lock() else { return };
        work.rebalancing = true;
        if let Rebalance::Revoke(list) = rebalance {
            let revoked: Vec<(String, i32)> =
                list.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
            if let Err(e) = work.on_revoked(consumer, &revoked) {
                work.callback_error.get_or_insert(e);
            }
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Ok(mut work) = self.work.lock() else { return };
        match rebalance {
            Rebalance::Assign(list) => {
                work.assigned = list.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                tracing::info!(thread = work.index, partitions = work.assigned.len(), "partitions assigned");
            }
            Rebalance::Revoke(_) => {}
            Rebalance::Error(e) => tracing::warn!(thread = work.index, error = %e, "rebalance error"),
        }
    }
}

pub(crate) type KConsumer = BaseConsumer<RebalanceCtx>;

fn is_eos(config: &ValidConfig) -> bool {
    config.guarantee == ProcessingGuarantee::ExactlyOnceV2
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Creates a producer; under exactly-once a transactional one, initialized (which fences any
/// predecessor with the same `transactional.id`).
fn create_producer(config: &ValidConfig, transactional_id: &str, ctx: ProducerCtx) -> Result<Arc<KProducer>> {
    let mut client = config.client_config("producer.");
    client.set("linger.ms", "5").set("enable.idempotence", "true");
    if is_eos(config) {
        client
            .set("transactional.id", transactional_id)
            .set("transaction.timeout.ms", "10000")
            // librdkafka retries CONCURRENT_TRANSACTIONS with retry.backoff.ms: keep it low.
            .set("retry.backoff.ms", "20");
    }
    let producer: KProducer = client.create_with_context(ctx)?;
    if is_eos(config) {
        producer.init_transactions(TXN_TIMEOUT)?;
        producer.begin_transaction()?;
    }
    Ok(Arc::new(producer))
}

/// Creates the thread's consumer and the shared work state.
pub(crate) fn create(
    index: usize,
    process_id: &str,
    config: Arc<ValidConfig>,
    topology: Arc<Topology>,
    partitions: HashMap<String, i32>,
) -> Result<(KConsumer, Arc<Mutex<ThreadWork>>)> {
    let subs = topology.subtopologies();
    let internal: HashSet<String> = topology.internal_topics().into_iter().map(|t| t.name).collect();
    let full = |t: &str| if internal.contains(t) { format!("{}-{t}", config.application_id) } else { t.to_string() };
    let topic_to_sub: HashMap<String, u32> = subs
        .iter()
        .flat_map(|s| s.source_topics.iter().map(move |t| (t.clone(), s.id)))
        .map(|(t, s)| (full(&t), s))
        .collect();
    let transactional_id = format!("{}-{process_id}-{index}", config.application_id);
    let producer_ctx = ProducerCtx::default();
    let producer = create_producer(&config, &transactional_id, producer_ctx.clone())?;
    let work = Arc::new(Mutex::new(ThreadWork {
        index,
        config: config.clone(),
        topology,
        subs,
        topic_to_sub: topic_to_sub.clone(),
        partitions: Arc::new(Mutex::new(partitions)),
        transactional_id,
        producer,
        producer_ctx,
        tasks: BTreeMap::new(),
        assigned: HashSet::new(),
        uncommitted: 0,
        callback_error: None,
        rebalancing: true,
        last_commit: Instant::now(),
    }));
    let mut client = config.client_config("consumer.");
    client
        .set("group.id", &config.application_id)
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", if is_eos(&config) { "read_committed" } else { "read_uncommitted" });
    if let Some(id) = &config.group_instance_id {
        client.set("group.instance.id", format!("{id}-{index}"));
    }
    let consumer: KConsumer = client.create_with_context(RebalanceCtx { work: work.clone() })?;
    let topics: Vec<&str> = topic_to_sub.keys().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok((consumer, work))
}

/// Runs the loop until shutdown or an error; commits and closes cleanly on shutdown.
pub(crate) fn run(consumer: KConsumer, work: Arc<Mutex<ThreadWork>>, shared: Arc<ThreadShared>) -> Result<()> {
    let poll = work.lock().map(|w| w.config.poll).unwrap_or(Duration::from_millis(100));
    let result = (|| -> Result<()> {
        while !shared.shutdown.load(Ordering::Relaxed) {
            // Poll without holding the lock: rebalance callbacks take it.
            let mut timeout = poll;
            for _ in 0..1000 {
                let message = consumer.poll(timeout);
                timeout = Duration::ZERO;
                let mut w = lock(&work)?;
                if let Some(e) = w.callback_error.take() {
                    return Err(e);
                }
                w.ensure_tasks()?;
                match message {
                    None => break,
                    Some(Ok(m)) => w.process(&m)?,
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
                }
            }
            let mut w = lock(&work)?;
            w.rebalancing = false;
            w.punctuate_wall_clock()?;
            w.check_deliveries()?;
            if w.commit_due() {
                w.commit(&consumer)?;
            }
        }
        let mut w = lock(&work)?;
        w.commit(&consumer)?;
        w.close_all();
        Ok(())
    })();
    if let Err(e) = &result {
        tracing::error!(error = %e, "stream thread failed");
        if let Ok(mut w) = work.lock() {
            w.abort_after_error();
        }
    }
    consumer.unsubscribe();
    result
}

fn lock(work: &Arc<Mutex<ThreadWork>>) -> Result<std::sync::MutexGuard<'_, ThreadWork>> {
    work.lock().map_err(|_| StreamsError::IllegalState("stream thread state lock poisoned".into()))
}

impl ThreadWork {
    fn task_for(&self, topic: &str, partition: i32) -> Option<TaskId> {
        self.topic_to_sub.get(topic).map(|&subtopology| TaskId { subtopology, partition })
    }

    /// Creates the tasks of assigned partitions that have none yet, restoring their stores.
    fn ensure_tasks(&mut self) -> Result<()> {
        let wanted: HashSet<TaskId> = self.assigned.iter().filter_map(|(t, p)| self.task_for(t, *p)).collect();
        for id in wanted {
            if self.tasks.contains_key(&id) {
                continue;
            }
            let Some(sub) = self.subs.iter().find(|s| s.id == id.subtopology).cloned() else { continue };
            let task = self.create_task(&sub, id.partition)?;
            self.tasks.insert(id, TaskEntry { task, next_offsets: HashMap::new() });
            tracing::info!(thread = self.index, task = %id, "task created");
        }
        Ok(())
    }

    fn create_task(&mut self, sub: &SubTopology, partition: i32) -> Result<StreamTask> {
        let collector = KafkaCollector { producer: self.producer.clone(), partitions: self.partitions.clone() };
        let record_timestamp = Arc::new(AtomicI64::new(0));
        let id = TaskId { subtopology: sub.id, partition };
        let ctx = StoreContext {
            application_id: self.config.application_id.clone(),
            task_dir: self.config.state_dir.join(&self.config.application_id).join(id.to_string()),
            partition,
            changelog: Some(Arc::new(collector.clone())),
            record_timestamp: record_timestamp.clone(),
        };
        let config = self.config.clone();
        let app = self.config.application_id.clone();
        let mut task = StreamTask::new(
            &self.topology,
            sub,
            partition,
            &app,
            Box::new(collector),
            record_timestamp,
            &mut |spec| {
                let mut handle = crate::store::open(spec, &ctx)?;
                if spec.logging {
                    let topic = spec.changelog_topic(&app);
                    restore_store(&config, &ctx, &mut handle, &topic, partition)?;
                }
                Ok(handle)
            },
        )?;
        task.init(now_ms())?;
        Ok(task)
    }

    fn process(&mut self, m: &BorrowedMessage<'_>) -> Result<()> {
        let (topic, partition, offset) = (m.topic().to_string(), m.partition(), m.offset());
        let Some(id) = self.task_for(&topic, partition) else {
            return Err(StreamsError::IllegalState(format!("no sub-topology reads topic `{topic}`")));
        };
        let headers: Headers = m
            .headers()
            .map(|hs| {
                hs.iter().map(|h| Header { key: h.key.to_string(), value: h.value.map(<[u8]>::to_vec) }).collect()
            })
            .unwrap_or_default();
        let timestamp = m.timestamp().to_millis().unwrap_or(-1);
        let entry = self.tasks.get_mut(&id).ok_or_else(|| {
            StreamsError::IllegalState(format!("record for {topic}-{partition} but task {id} is not assigned"))
        })?;
        let result = entry.task.process(ConsumedBytes {
            topic: &topic,
            partition,
            offset,
            key: m.key(),
            value: m.payload(),
            timestamp,
            headers,
        });
        match result {
            Ok(_) => {}
            Err(e @ StreamsError::Deserialization { .. }) => match &self.config.deserialization_handler {
                DeserializationHandler::LogAndFail => {
                    tracing::error!(error = %e, "deserialization failed; stopping (default.deserialization.exception.handler=log_and_fail)");
                    return Err(e);
                }
                DeserializationHandler::LogAndContinue => {
                    tracing::warn!(error = %e, "skipping a record that cannot be deserialized");
                    entry.task.count_dropped();
                }
                DeserializationHandler::DeadLetterQueue { topic: dlq } => {
                    tracing::warn!(error = %e, dead_letter_topic = %dlq, "record sent to the dead-letter topic");
                    send_to_dlq(&self.producer, dlq, m, &e)?;
                }
            },
            Err(e) => return Err(e),
        }
        entry.task.punctuate_stream_time()?;
        entry.next_offsets.insert((topic, partition), offset + 1);
        self.uncommitted += 1;
        Ok(())
    }

    fn punctuate_wall_clock(&mut self) -> Result<()> {
        let now = now_ms();
        for entry in self.tasks.values_mut() {
            entry.task.punctuate_wall_clock(now)?;
        }
        Ok(())
    }

    fn check_deliveries(&mut self) -> Result<()> {
        self.producer.poll(Duration::ZERO);
        let failed = self.producer_ctx.deliveries.lock().ok().and_then(|mut d| d.first_error.take());
        match failed {
            Some((topic, e)) => Err(StreamsError::IllegalState(format!("producing to `{topic}` failed: {e}"))),
            None => Ok(()),
        }
    }

    fn commit_due(&mut self) -> bool {
        let requested = self.tasks.values_mut().fold(false, |acc, e| e.task.take_commit_request() || acc);
        requested || self.last_commit.elapsed() >= self.config.commit_interval
    }

    fn offsets(&self, only: Option<&HashSet<TaskId>>) -> Result<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for (id, entry) in &self.tasks {
            if only.is_some_and(|o| !o.contains(id)) {
                continue;
            }
            for ((topic, partition), offset) in &entry.next_offsets {
                list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
            }
        }
        Ok(list)
    }

    /// Commits the given tasks (all when `None`): flushes stores and output, then commits offsets (at
    /// least once) or the transaction with the offsets in it (exactly once).
    fn commit_tasks(&mut self, consumer: &KConsumer, only: Option<&HashSet<TaskId>>) -> Result<()> {
        self.last_commit = Instant::now();
        for (id, entry) in self.tasks.iter_mut() {
            if only.is_none_or(|o| o.contains(id)) {
                entry.task.flush()?;
            }
        }
        let offsets = self.offsets(only)?;
        if is_eos(&self.config) {
            if self.uncommitted == 0 && offsets.count() == 0 {
                return Ok(());
            }
            let metadata = consumer
                .group_metadata()
                .ok_or_else(|| StreamsError::IllegalState("the consumer has no group metadata yet".into()))?;
            if offsets.count() > 0 {
                self.producer.send_offsets_to_transaction(&offsets, &metadata, TXN_TIMEOUT)?;
            }
            self.producer.commit_transaction(TXN_TIMEOUT)?;
            self.producer.begin_transaction()?;
        } else {
            self.producer.flush(TXN_TIMEOUT)?;
            self.check_deliveries()?;
            if offsets.count() > 0 {
                consumer.commit(&offsets, CommitMode::Sync)?;
            }
        }
        self.check_deliveries()?;
        self.uncommitted = 0;
        for entry in self.tasks.values_mut() {
            entry.next_offsets.clear();
        }
        Ok(())
    }

    fn commit(&mut self, consumer: &KConsumer) -> Result<()> {
        self.commit_tasks(consumer, None)
    }

    /// Partitions are being taken away: commit everything, then close the revoked tasks.
    fn on_revoked(&mut self, consumer: &KConsumer, revoked: &[(String, i32)]) -> Result<()> {
        let revoked_tasks: HashSet<TaskId> = revoked.iter().filter_map(|(t, p)| self.task_for(t, *p)).collect();
        // Under exactly-once one transaction covers all tasks, so all are committed.
        self.commit(consumer)?;
        for id in revoked_tasks {
            if let Some(mut entry) = self.tasks.remove(&id) {
                if let Err(e) = entry.task.close() {
                    tracing::warn!(task = %id, error = %e, "closing a revoked task failed");
                }
                tracing::info!(thread = self.index, task = %id, "task closed (revoked)");
            }
        }
        self.assigned.retain(|tp| !revoked.contains(tp));
        Ok(())
    }

    fn close_all(&mut self) {
        for (id, mut entry) in std::mem::take(&mut self.tasks) {
            if let Err(e) = entry.task.close() {
                tracing::warn!(task = %id, error = %e, "closing a task failed");
            }
        }
    }

    /// After a failure: abort the open transaction (its output is discarded) and drop the tasks
    /// without committing.
    fn abort_after_error(&mut self) {
        if is_eos(&self.config) {
            if let Err(e) = self.producer.abort_transaction(TXN_TIMEOUT) {
                tracing::warn!(transactional_id = %self.transactional_id, error = %e, "abort after error failed");
            }
        }
        self.close_all();
    }
}

/// Writes the original record to the dead-letter topic with headers that say where it came from and
/// why it failed (Kafka Streams' `__streams.errors.*` names).
fn send_to_dlq(producer: &KProducer, dlq: &str, m: &BorrowedMessage<'_>, error: &StreamsError) -> Result<()> {
    let mut headers = OwnedHeaders::new();
    if let Some(original) = m.headers() {
        for h in original.iter() {
            headers = headers.insert(rdkafka::message::Header { key: h.key, value: h.value });
        }
    }
    let partition = m.partition().to_string();
    let offset = m.offset().to_string();
    let message = error.to_string();
    for (key, value) in [
        ("__streams.errors.exception", "DeserializationException"),
        ("__streams.errors.message", message.as_str()),
        ("__streams.errors.topic", m.topic()),
        ("__streams.errors.partition", partition.as_str()),
        ("__streams.errors.offset", offset.as_str()),
    ] {
        headers = headers.insert(rdkafka::message::Header { key, value: Some(value.as_bytes()) });
    }
    let mut record: rdkafka::producer::BaseRecord<'_, [u8], [u8]> =
        rdkafka::producer::BaseRecord::to(dlq).headers(headers);
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    if let Some(v) = m.payload() {
        record = record.payload(v);
    }
    if let Some(ts) = m.timestamp().to_millis() {
        record = record.timestamp(ts);
    }
    producer.send(record).map_err(|(e, _)| StreamsError::Kafka(e))
}
