//! A stream thread: one consumer, one producer (transactional under exactly-once), and the tasks of
//! the partitions the group assigned to it.
//!
//! The loop: poll a record, hand it to its task, run due punctuations, keep the standby tasks up to
//! date, and commit every `commit.interval.ms`. Rebalance callbacks run inside `poll`:
//!
//! - when a rebalance begins (librdkafka revokes everything: the classic eager protocol), the
//!   thread commits and suspends its tasks, which stay open;
//! - when it ends, the thread computes its share of the placement (see [`assignor`]: the same
//!   function on every member, from the new generation's member list), closes the tasks that moved
//!   away, and assigns the consumer its partitions: those of tasks that stay resume right after the
//!   records they had already fetched, with their stores open and their caches intact. The loop
//!   then has the [`TaskManager`] open the standby tasks and hand the new tasks to its state
//!   updater, which restores them while the loop runs the others; each starts as it comes back.
//!
//! [`assignor`]: crate::runtime::assignor

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _, OwnedHeaders};
use rdkafka::producer::Producer;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message};
use rustc_hash::FxHashMap;

use kstreams_state::rocksdb::RocksDbResources;
use kstreams_state::{RestoreListener, Restorer, StoreOptions, ThreadCache};

use crate::error::{Result, StreamsError};
use crate::header::{Header, Headers};
use crate::processor::node::ConsumedBytes;
use crate::query::discovery;
use crate::query::local::LocalStores;
use crate::query::HostInfo;
use crate::runtime::activity::{Activity, Step};
use crate::runtime::assignor::{self, TaskLayout};
use crate::runtime::collector::{flush, KProducer, ProducerCtx};
use crate::runtime::commit_metadata;
use crate::runtime::config::{DeserializationHandler, ExceptionHandler, ProcessingGuarantee, ValidConfig};
use crate::runtime::metrics::{StreamsMetrics, STATISTICS_INTERVAL};
use crate::runtime::partition_group::{Lag, Pending};
use crate::runtime::standby::{StandbyUpdateListener, Standbys};
use crate::runtime::state_updater::MakeRestorer;
use crate::runtime::task_manager::{TaskDirLocks, TaskFactory, TaskManager};
use crate::runtime::thread_metadata::ThreadMetadataSlot;
use crate::task::global::GlobalStores;
use crate::task::TaskId;
use crate::topology::Topology;

const TXN_TIMEOUT: Duration = Duration::from_secs(30);

/// What the application's threads share.
pub(crate) struct ThreadShared {
    pub shutdown: AtomicBool,
    /// When `close` gives up waiting for the threads (set by `close`).
    pub close_deadline: Mutex<Option<Instant>>,
}

impl ThreadShared {
    /// How long a stopping thread's last commit may take: half of what is left of `close`'s
    /// timeout, and no more than a commit's usual budget.
    pub fn closing_budget(&self) -> Duration {
        let deadline = self.close_deadline.lock().ok().and_then(|d| *d);
        deadline.map_or(TXN_TIMEOUT, |d| (d.saturating_duration_since(Instant::now()) / 2).min(TXN_TIMEOUT))
    }
}

/// Records buffered per partition before the consumer pauses it (Kafka Streams'
/// `buffered.records.per.partition`).
const MAX_BUFFERED: usize = 1000;

/// The pause between two attempts to go on while the broker is away.
const OUTAGE_BACKOFF: Duration = Duration::from_secs(1);

/// The longest poll while tasks restore beside the thread: how late a restored task may start.
const RESTORING_POLL: Duration = Duration::from_millis(10);

/// Records a task processes per round before the thread moves on to the next task and, after the
/// round, polls again. Short rounds keep every partition fetched and polled often: a task waiting
/// for an empty partition (`max.task.idle.ms`, a partition that is behind) measures that wait in
/// wall-clock time, and a round spent on thousands of other tasks' records would let the wait run
/// out while the partition's records sat unfetched.
const MAX_PER_ROUND: usize = 500;

/// One processed record in this many is timed for the `process-latency` histogram.
const LATENCY_SAMPLE: u32 = 32;

/// Everything the loop and the rebalance callbacks both touch.
pub(crate) struct ThreadWork {
    index: usize,
    activity: Arc<Activity>,
    process_id: String,
    config: Arc<ValidConfig>,
    /// Every task of the topology, for the placement.
    layout: Arc<TaskLayout>,
    transactional_id: String,
    producer: Arc<KProducer>,
    producer_ctx: ProducerCtx,
    /// This thread's metric series, looked up once rather than per record.
    process_latency: prometheus::Histogram,
    commit_latency: prometheus::Histogram,
    polls: prometheus::IntCounter,
    /// The thread's tasks: their creation, restoration and closing.
    tasks: TaskManager,
    /// Partitions paused because their task has too many records buffered.
    paused: HashSet<(String, i32)>,
    /// The group has assigned partitions to this thread at least once.
    joined: bool,
    /// A rebalance began (the thread committed) and has not ended: tasks neither process nor
    /// commit until the new assignment says which of them stay.
    suspended: bool,
    /// Since when the thread waits to read the group's members to compute its share of the
    /// placement (it holds no partitions meanwhile).
    unplanned: Option<Instant>,
    /// Records processed since the last commit.
    uncommitted: usize,
    /// Records processed, modulo 2³², for sampling the latency histogram.
    sampled: u32,
    /// An error raised inside a rebalance callback, reported by the loop.
    callback_error: Option<StreamsError>,
    /// Set while the group rebalances; the application is Running once no thread's flag is set.
    rebalancing: Arc<AtomicBool>,
    /// Since when the thread waits for the broker (see [`ThreadWork::wait_for_broker`]); cleared by
    /// the next successful commit.
    outage: Option<Instant>,
    /// The tasks must be rewound (see [`ThreadWork::recover`]) before the thread goes on.
    needs_recovery: bool,
    /// A call into the producer did not return (see [`send_offsets`]): it is replaced, not aborted.
    producer_stuck: bool,
    last_commit: Instant,
    purge: RepartitionPurge,
}

/// Deletes consumed records of repartition topics up to the committed offsets, every
/// `repartition.purge.interval.ms`, as Kafka Streams does: they are never read again.
struct RepartitionPurge {
    admin: AdminClient<DefaultClientContext>,
    /// Full names of the repartition topics the thread reads.
    topics: HashSet<String>,
    /// Committed offsets not yet purged up to.
    pending: HashMap<(String, i32), i64>,
    last: Instant,
}

impl RepartitionPurge {
    fn note_committed(&mut self, offsets: &TopicPartitionList) {
        for e in offsets.elements() {
            if let (true, Offset::Offset(o)) = (self.topics.contains(e.topic()), e.offset()) {
                self.pending.insert((e.topic().to_string(), e.partition()), o);
            }
        }
    }

    /// Sends a delete-records request when the interval has passed; failures are logged, not fatal
    /// (the records are deleted by the next purge or by retention).
    fn maybe_purge(&mut self, interval: Duration) {
        if self.pending.is_empty() || self.last.elapsed() < interval {
            return;
        }
        self.last = Instant::now();
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in self.pending.drain() {
            if let Err(e) = list.add_partition_offset(&topic, partition, Offset::Offset(offset)) {
                tracing::warn!(%topic, partition, error = %e, "cannot purge repartition topic");
            }
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
        let request = self.admin.delete_records(&list, &options);
        let result = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| e.to_string())
            .and_then(|rt| rt.block_on(request).map_err(|e| e.to_string()));
        match result {
            Ok(done) => tracing::debug!(partitions = done.count(), "purged repartition topics"),
            Err(e) => tracing::warn!(error = %e, "purging repartition topics failed; retrying at the next interval"),
        }
    }
}

/// The consumer's context: rebalance callbacks reach the thread's tasks through it.
pub(crate) struct RebalanceCtx {
    work: Arc<Mutex<ThreadWork>>,
    records_lag: prometheus::IntGaugeVec,
}

impl ClientContext for RebalanceCtx {
    /// librdkafka's statistics: the consumer lag of each assigned partition.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    self.records_lag.with_label_values(&[topic.as_str(), &partition.to_string()]).set(p.consumer_lag);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceCtx {
    /// Takes over librdkafka's assignment step: the partitions the group leader chose are replaced
    /// by this thread's share of the placement (see the module docs).
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, _leader_choice: &mut TopicPartitionList) {
        let native = consumer.client().native_ptr();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let list = match self.work.lock() {
                    Ok(mut work) => {
                        work.activity.set(Step::Assigning);
                        match work.on_assigned(consumer) {
                            Ok(list) => list,
                            Err(e) => {
                                work.callback_error.get_or_insert(e);
                                TopicPartitionList::new()
                            }
                        }
                    }
                    Err(_) => TopicPartitionList::new(),
                };
                // SAFETY: both pointers are valid for the call; librdkafka copies the list.
                let err = unsafe { rdkafka::bindings::rd_kafka_assign(native, list.ptr()) };
                if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
                    tracing::error!(error = ?err, "assigning the consumer its partitions failed");
                }
                // librdkafka keeps a partition paused through unassign and assign: a task that
                // stayed paused (too many records buffered) would never be fetched again. The new
                // assignment starts unpaused; the loop pauses again what is still too full.
                // SAFETY: as above.
                unsafe { rdkafka::bindings::rd_kafka_resume_partitions(native, list.ptr()) };
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Ok(mut work) = self.work.lock() {
                    work.activity.set(Step::Revoking);
                    work.rebalancing.store(true, Ordering::Relaxed);
                    let lost = consumer.assignment_lost();
                    if let Err(e) = work.on_revoked(consumer, lost) {
                        work.callback_error.get_or_insert(e);
                    }
                }
                // SAFETY: a null list clears the assignment.
                unsafe { rdkafka::bindings::rd_kafka_assign(native, std::ptr::null()) };
            }
            other => {
                tracing::warn!(error = ?other, "rebalance error");
                // SAFETY: as above.
                unsafe { rdkafka::bindings::rd_kafka_assign(native, std::ptr::null()) };
            }
        }
    }
}

pub(crate) type KConsumer = BaseConsumer<RebalanceCtx>;

/// A thread's share of the placement: the input partitions of its active tasks, and its standby
/// tasks.
type ThreadShare = (HashSet<(String, i32)>, BTreeSet<TaskId>);

fn is_eos(config: &ValidConfig) -> bool {
    config.guarantee == ProcessingGuarantee::ExactlyOnceV2
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The stream thread's producer buffers at most this many KiB of records (librdkafka's default, 1
/// GiB, lets a slow broker grow the process without bound; Kafka's `buffer.memory` is 32 MiB). A
/// full queue makes `send` wait for deliveries. Override with `producer.queue.buffering.max.kbytes`.
const PRODUCER_QUEUE_KBYTES: &str = "16384";

/// The stream thread's consumer prefetches at most this many KiB (librdkafka's default is 64 MiB;
/// the thread pauses a partition past 1000 buffered records anyway, as Kafka Streams'
/// `buffered.records.per.partition`). Override with `consumer.queued.max.messages.kbytes`.
const CONSUMER_QUEUE_KBYTES: &str = "2048";

/// How long the consumer waits before fetching again once its prefetch queue is full. librdkafka's
/// default (1 s) stalls a thread that drains the queue in milliseconds: it capped throughput near
/// 120K records/s. Override with `consumer.fetch.queue.backoff.ms`.
const CONSUMER_FETCH_QUEUE_BACKOFF_MS: &str = "5";

/// How often the consumer heartbeats (librdkafka's default is 3 s): a rebalance begins for a member
/// at its next heartbeat, and its tasks wait from the moment the first member rejoins. Override
/// with `consumer.heartbeat.interval.ms`.
const CONSUMER_HEARTBEAT_MS: &str = "500";

/// Resumes fetching paused partitions, each at its position (the offset after the last record the
/// thread took from it, or where it started) where known.
///
/// librdkafka's resume alone does not wake the thread that fetches from the partition's leader: it
/// picks the partition up at its next network event, up to a second later (0.3–0.8 s measured for
/// a task taking over after a failover, with heartbeats as the only traffic). A seek to the
/// position the fetcher would resume at anyway starts the partition's fetch state afresh, which
/// wakes that thread (`rd_kafka_toppar_set_fetch_state` in librdkafka). The seek is asynchronous; if
/// it fails, the plain resume still gets there.
pub(crate) fn resume_at(consumer: &KConsumer, partitions: &[(String, i32, Option<i64>)]) -> Result<()> {
    let mut list = TopicPartitionList::new();
    for (topic, partition, _) in partitions {
        list.add_partition(topic, *partition);
    }
    consumer.resume(&list)?;
    for (topic, partition, at) in partitions {
        let Some(offset) = at else { continue };
        if let Err(e) = consumer.seek(topic, *partition, Offset::Offset(*offset), Duration::ZERO) {
            tracing::debug!(topic, partition, error = %e, "seeking a resumed partition failed");
        }
    }
    Ok(())
}

/// Sets `key` unless the user did.
fn set_default(client: &mut rdkafka::ClientConfig, key: &str, value: &str) {
    if client.get(key).is_none() {
        client.set(key, value);
    }
}

/// Creates a producer; under exactly-once a transactional one, initialized (which fences any
/// predecessor with the same `transactional.id`).
fn create_producer(config: &ValidConfig, transactional_id: &str, ctx: ProducerCtx) -> Result<Arc<KProducer>> {
    let mut client = config.client_config("producer.");
    // Kafka Streams' producer default (larger batches, fewer requests for the broker); a
    // `producer.linger.ms` of the user's wins.
    set_default(&mut client, "linger.ms", "100");
    set_default(&mut client, "queue.buffering.max.kbytes", PRODUCER_QUEUE_KBYTES);
    client.set("enable.idempotence", "true");
    if is_eos(config) {
        client.set("transactional.id", transactional_id);
        // Kafka Streams' default: a killed instance's open transaction (which holds back
        // read_committed readers of its outputs and changelogs) is aborted by the broker after this.
        set_default(&mut client, "transaction.timeout.ms", "10000");
        // librdkafka retries CONCURRENT_TRANSACTIONS with retry.backoff.ms: keep it low.
        set_default(&mut client, "retry.backoff.ms", "20");
    }
    let producer: KProducer = client.create_with_context(ctx)?;
    if is_eos(config) {
        producer.init_transactions(TXN_TIMEOUT)?;
        producer.begin_transaction()?;
    }
    Ok(Arc::new(producer))
}

/// Everything needed to (re)create one stream thread.
pub(crate) struct ThreadSpec {
    pub index: usize,
    /// What the thread is doing, for a `close` that times out.
    pub activity: Arc<Activity>,
    pub process_id: String,
    /// Every task of the topology, for the placement.
    pub layout: Arc<TaskLayout>,
    /// Where the thread publishes its tasks.
    pub metadata: ThreadMetadataSlot,
    /// The process's task folder locks.
    pub dir_locks: Arc<TaskDirLocks>,
    pub config: Arc<ValidConfig>,
    pub topology: Arc<Topology>,
    pub partitions: HashMap<String, i32>,
    pub restore_listener: Arc<dyn RestoreListener>,
    pub standby_listener: Option<Arc<dyn StandbyUpdateListener>>,
    pub metrics: StreamsMetrics,
    pub rebalancing: Arc<AtomicBool>,
    pub global: Arc<GlobalStores>,
    pub local: Arc<LocalStores>,
    /// `application.server`, carried in the consumer's client id for the other instances.
    pub endpoint: Option<HostInfo>,
}

impl ThreadSpec {
    /// Creates the thread's consumer and the shared work state.
    pub(crate) fn create(&self) -> Result<(KConsumer, Arc<Mutex<ThreadWork>>)> {
        create(self)
    }
}

fn create(spec: &ThreadSpec) -> Result<(KConsumer, Arc<Mutex<ThreadWork>>)> {
    let ThreadSpec {
        index,
        activity,
        process_id,
        layout,
        metadata,
        dir_locks,
        config,
        topology,
        partitions,
        restore_listener,
        standby_listener,
        metrics,
        rebalancing,
        global,
        local,
        endpoint,
    } = spec;
    let (index, config, topology) = (*index, config.clone(), topology.clone());
    let (partitions, restore_listener, rebalancing) =
        (partitions.clone(), restore_listener.clone(), rebalancing.clone());
    let subs = topology.subtopologies();
    let internal: HashSet<String> = topology.internal_topics().into_iter().map(|t| t.name).collect();
    let full = |t: &str| if internal.contains(t) { format!("{}-{t}", config.application_id) } else { t.to_string() };
    let topic_to_sub: FxHashMap<String, u32> = subs
        .iter()
        .flat_map(|s| s.source_topics.iter().map(move |t| (t.clone(), s.id)))
        .map(|(t, s)| (full(&t), s))
        .collect();
    let transactional_id = format!("{}-{process_id}-{index}", config.application_id);
    let skip = config.production_handler == ExceptionHandler::LogAndContinue && !is_eos(&config);
    let thread_name = format!("{}-StreamThread-{}", config.application_id, index + 1);
    let producer_ctx = ProducerCtx {
        deliveries: Default::default(),
        skip_failed: skip.then(|| metrics.task(&thread_name, "delivery").dropped_records),
    };
    let producer = create_producer(&config, &transactional_id, producer_ctx.clone())?;
    let restore_client = config.client_config("restore.consumer.");
    let task_timeout = config.task_timeout;
    // Made by the state updater, one per updater thread.
    let make_restorer: MakeRestorer = Box::new(move || {
        Ok(Restorer::from_config(restore_client.clone())?
            .with_listener(restore_listener.clone())
            .with_timeout(task_timeout))
    });
    let store_options = StoreOptions {
        rocksdb: Some(RocksDbResources::shared_default()),
        exactly_once: is_eos(&config),
        metrics: Some(metrics.stores.clone()),
        // One record cache per thread, shared by its cached stores (`statestore.cache.max.bytes`).
        cache: usize::try_from(config.cache_max_bytes).ok().filter(|&n| n > 0).map(ThreadCache::new),
    };
    let repartition_topics: HashSet<String> = topology
        .internal_topics()
        .into_iter()
        .filter(|t| t.kind == crate::topology::InternalTopicKind::Repartition)
        .map(|t| format!("{}-{}", config.application_id, t.name))
        .collect();
    let standbys = Standbys::new(
        config.client_config("restore.consumer."),
        &config.application_id,
        &config.state_dir,
        store_options.clone(),
        standby_listener.clone(),
        local.clone(),
    )?;
    let tasks = TaskManager::new(
        TaskFactory {
            index,
            config: config.clone(),
            topology,
            subs,
            topic_to_sub: topic_to_sub.clone(),
            partitions: Arc::new(Mutex::new(partitions)),
            global: global.clone(),
            local: local.clone(),
            store_options,
            metrics: metrics.clone(),
            thread_name: thread_name.clone(),
            metadata: metadata.clone(),
            dir_locks: dir_locks.clone(),
        },
        make_restorer,
        standbys,
    );
    let work = Arc::new(Mutex::new(ThreadWork {
        index,
        activity: activity.clone(),
        process_id: process_id.clone(),
        config: config.clone(),
        layout: layout.clone(),
        transactional_id,
        producer,
        producer_ctx,
        process_latency: metrics.process_latency.with_label_values(&[&thread_name]),
        commit_latency: metrics.commit_latency.with_label_values(&[&thread_name]),
        polls: metrics.poll.with_label_values(&[&thread_name]),
        tasks,
        paused: HashSet::new(),
        joined: false,
        suspended: false,
        unplanned: None,
        uncommitted: 0,
        sampled: 0,
        callback_error: None,
        rebalancing,
        outage: None,
        needs_recovery: false,
        producer_stuck: false,
        last_commit: Instant::now(),
        purge: RepartitionPurge {
            admin: config.client_config("admin.").create()?,
            topics: repartition_topics,
            pending: HashMap::new(),
            last: Instant::now(),
        },
    }));
    let mut client = config.client_config("consumer.");
    client
        .set("group.id", &config.application_id)
        .set("group.protocol", "classic")
        .set("partition.assignment.strategy", "range")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("isolation.level", if is_eos(&config) { "read_committed" } else { "read_uncommitted" })
        .set("statistics.interval.ms", STATISTICS_INTERVAL.as_millis().to_string());
    set_default(&mut client, "queued.max.messages.kbytes", CONSUMER_QUEUE_KBYTES);
    set_default(&mut client, "fetch.queue.backoff.ms", CONSUMER_FETCH_QUEUE_BACKOFF_MS);
    // Members learn of a rebalance at their next heartbeat; tasks pause from then until it ends.
    set_default(&mut client, "heartbeat.interval.ms", CONSUMER_HEARTBEAT_MS);
    if let Some(id) = &config.group_instance_id {
        client.set("group.instance.id", format!("{id}-{index}"));
    }
    // The other instances learn this one's endpoint from the group's member list (see `query`).
    let base_id = match client.get("client.id") {
        Some(id) => format!("{id}-{}", index + 1),
        None => format!("{}-{process_id}-StreamThread-{}-consumer", config.application_id, index + 1),
    };
    client.set("client.id", discovery::client_id(&base_id, process_id, index, endpoint.as_ref()));
    let consumer: KConsumer =
        client.create_with_context(RebalanceCtx { work: work.clone(), records_lag: metrics.records_lag.clone() })?;
    let topics: Vec<&str> = topic_to_sub.keys().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    Ok((consumer, work))
}

/// Runs the loop until shutdown or an error; commits and closes cleanly on shutdown.
pub(crate) fn run(consumer: KConsumer, work: Arc<Mutex<ThreadWork>>, shared: Arc<ThreadShared>) -> Result<()> {
    let (poll, activity) = {
        let w = lock(&work)?;
        (w.config.poll, w.activity.clone())
    };
    let result = (|| -> Result<()> {
        // Whether tasks have ready records left from the last round: then polling must not wait.
        let mut more = false;
        while !shared.shutdown.load(Ordering::Relaxed) {
            let outcome = {
                let mut w = lock(&work)?;
                if w.needs_recovery {
                    // Waiting for the broker: rewind first (the records polled since the last
                    // commit are polled again), then go on as usual.
                    activity.set(Step::WaitingForBroker);
                    more = false;
                    w.recover(&consumer).map(|()| w.needs_recovery = false)
                } else {
                    drop(w);
                    round(&consumer, &work, &activity, poll, &mut more)
                }
            };
            if let Err(error) = outcome {
                more = false;
                lock(&work)?.wait_for_broker(error)?;
            }
        }
        let mut w = lock(&work)?;
        activity.set(Step::Committing);
        // The last commit may take what is left of `close`'s timeout, half of it at most (closing
        // the tasks and the clients takes the rest).
        w.commit(&consumer, shared.closing_budget())?;
        activity.set(Step::ClosingTasks);
        w.close_all(true);
        activity.set(Step::StoppingUpdater);
        w.tasks.stop_updater();
        activity.set(Step::ClosingStandbys);
        w.tasks.close_standbys();
        Ok(())
    })();
    if let Err(e) = &result {
        tracing::error!(error = %e, "stream thread failed");
        if let Ok(mut w) = work.lock() {
            w.abort_after_error();
        }
    }
    activity.set(Step::ClosingClients);
    consumer.unsubscribe();
    // Closing the consumer leaves the group (its revocation callback runs meanwhile); the producer
    // goes with the last reference to the thread's work.
    drop(consumer);
    drop(work);
    activity.set(Step::Stopped);
    result
}

/// One round of the loop: poll (rebalance callbacks run here), create tasks, process what is
/// ready, punctuate, update standbys, and commit when due. `more` says whether tasks have ready
/// records left (the next poll must not wait).
fn round(
    consumer: &KConsumer,
    work: &Arc<Mutex<ThreadWork>>,
    activity: &Activity,
    poll: Duration,
    more: &mut bool,
) -> Result<()> {
    // Poll without holding the lock: rebalance callbacks take it. While tasks restore beside the
    // thread, a short wait: a restored task starts at the next round.
    let restoring = lock(work)?.tasks.is_restoring();
    let mut timeout = if *more {
        Duration::ZERO
    } else if restoring {
        poll.min(RESTORING_POLL)
    } else {
        poll
    };
    for _ in 0..1000 {
        activity.set(Step::Polling);
        let message = consumer.poll(timeout);
        timeout = Duration::ZERO;
        let mut w = lock(work)?;
        w.polls.inc();
        if let Some(e) = w.callback_error.take() {
            return Err(e);
        }
        // Tasks are created only once an assignment is in force: between the two halves of a
        // rebalance another instance may still be writing their changelogs.
        if !w.suspended {
            activity.set(Step::CreatingTasks);
            let producer = w.producer.clone();
            w.tasks.ensure_tasks(consumer, &producer)?;
        }
        match message {
            None => break,
            Some(Ok(m)) => w.enqueue(consumer, &m)?,
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "consumer error"),
        }
    }
    let mut w = lock(work)?;
    if w.suspended {
        // Between the two halves of a rebalance: wait for the assignment.
        *more = false;
        return Ok(());
    }
    activity.set(Step::Assigning);
    w.retry_placement(consumer)?;
    activity.set(Step::Processing);
    *more = w.process_ready(consumer)?;
    // Running once the group gave this thread its (possibly empty) share of the placement and its
    // tasks run, restored (as in Kafka Streams; tasks restored meanwhile run as they come). A
    // thread still waiting for its share (the members could not be read) is rebalancing.
    if w.joined && w.unplanned.is_none() && !w.tasks.is_restoring() {
        w.rebalancing.store(false, Ordering::Relaxed);
    }
    w.punctuate_wall_clock()?;
    w.check_deliveries()?;
    if w.tasks.update_standbys()? > 0 {
        *more = true;
    }
    if w.commit_due() {
        activity.set(Step::Committing);
        match w.commit(consumer, TXN_TIMEOUT) {
            Ok(()) => {}
            Err(e) if w.can_recover(&e) => {
                tracing::warn!(thread = w.index, error = %e,
                    "transaction failed; aborting it, closing tasks dirty and rewinding to the committed offsets");
                w.recover(consumer)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn lock(work: &Arc<Mutex<ThreadWork>>) -> Result<std::sync::MutexGuard<'_, ThreadWork>> {
    work.lock().map_err(|_| StreamsError::IllegalState("stream thread state lock poisoned".into()))
}

impl ThreadWork {
    /// Queues a consumed record with its task; pauses its partition when too much is buffered.
    fn enqueue(&mut self, consumer: &KConsumer, m: &BorrowedMessage<'_>) -> Result<()> {
        let (topic, partition) = (m.topic(), m.partition());
        let Some(id) = self.tasks.task_for(topic, partition) else {
            return Err(StreamsError::IllegalState(format!("no sub-topology reads topic `{topic}`")));
        };
        if self.tasks.is_held(&id) {
            // Fetched before its partition was paused: fetched again once the task runs.
            consumer.seek(topic, partition, Offset::Offset(m.offset()), Duration::from_secs(5))?;
            return Ok(());
        }
        let entry = self.tasks.get_mut(&id).ok_or_else(|| {
            StreamsError::IllegalState(format!("record for {topic}-{partition} but task {id} is not assigned"))
        })?;
        let headers: Headers = m
            .headers()
            .map(|hs| {
                hs.iter().map(|h| Header { key: h.key.to_string(), value: h.value.map(<[u8]>::to_vec) }).collect()
            })
            .unwrap_or_default();
        let buffered = entry.inputs.push(ConsumedBytes {
            topic,
            partition,
            offset: m.offset(),
            key: m.key(),
            value: m.payload(),
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
            headers,
        });
        if buffered > MAX_BUFFERED && self.paused.insert((topic.to_string(), partition)) {
            let mut tpl = TopicPartitionList::new();
            tpl.add_partition(topic, partition);
            consumer.pause(&tpl)?;
        }
        Ok(())
    }

    /// Processes up to [`MAX_PER_ROUND`] ready records of each task (see [`PartitionGroup`]),
    /// resuming each task's paused partitions once they drained; returns whether a task has more
    /// ready records (so the next poll should not wait).
    fn process_ready(&mut self, consumer: &KConsumer) -> Result<bool> {
        let ids: Vec<TaskId> = self.tasks.ids();
        let max_idle = self.config.max_task_idle;
        // One clock reading per round: it only matters to `max.task.idle.ms`, in milliseconds.
        let now = Instant::now();
        // Lags asked this round (nothing is polled meanwhile, so they cannot change).
        let mut lags: Vec<(String, i32, Lag)> = Vec::new();
        let mut lag = |topic: &str, partition: i32, start: i64| {
            if let Some((_, _, l)) = lags.iter().find(|(t, p, _)| t == topic && *p == partition) {
                return *l;
            }
            let l = partition_lag(consumer, topic, partition, start);
            lags.push((topic.to_string(), partition, l));
            l
        };
        let mut more = false;
        for id in ids {
            let mut done = 0;
            while done < MAX_PER_ROUND {
                let Some(entry) = self.tasks.get_mut(&id) else { break };
                let (inputs, task) = (&mut entry.inputs, &entry.task);
                let Some(record) = inputs.next(max_idle, now, &mut lag, &mut |p| task.decode(p.bytes())) else {
                    break;
                };
                self.process(id, record)?;
                done += 1;
            }
            more |= done == MAX_PER_ROUND;
            // Drained partitions are fetched again while the other tasks are processed.
            self.resume_drained(consumer, id)?;
        }
        Ok(more)
    }

    /// Resumes `task`'s paused partitions whose buffers drained below half.
    fn resume_drained(&mut self, consumer: &KConsumer, task: TaskId) -> Result<()> {
        if self.paused.is_empty() {
            return Ok(());
        }
        let Some(entry) = self.tasks.get(&task) else { return Ok(()) };
        let drained: Vec<(String, i32)> = self
            .paused
            .iter()
            .filter(|(t, p)| {
                self.tasks.subtopology_of(t).is_some_and(|s| s == task.subtopology)
                    && *p == task.partition
                    && entry.inputs.buffered(t, *p) < MAX_BUFFERED / 2
            })
            .cloned()
            .collect();
        if !drained.is_empty() {
            let mut resumed = Vec::with_capacity(drained.len());
            for (t, p) in drained {
                self.paused.remove(&(t.clone(), p));
                let at = entry.inputs.resume_position(&t, p);
                resumed.push((t, p, at));
            }
            resume_at(consumer, &resumed)?;
        }
        Ok(())
    }

    fn process(&mut self, id: TaskId, mut record: Pending) -> Result<()> {
        let entry = self
            .tasks
            .get_mut(&id)
            .ok_or_else(|| StreamsError::IllegalState(format!("task {id} vanished while processing")))?;
        // The latency histogram samples one record in LATENCY_SAMPLE: reading the clock twice per
        // record costs more than the rest of a stateless record's trip through the thread.
        self.sampled = self.sampled.wrapping_add(1);
        let started = (self.sampled % LATENCY_SAMPLE == 0).then(Instant::now);
        let decoded = match record.decoded.take() {
            Some(decoded) => decoded,
            None => entry.task.decode(record.bytes()),
        };
        let result =
            decoded.and_then(|r| entry.task.process_decoded(&record.topic, record.partition, record.offset, r));
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
                    send_to_dlq(&self.producer, dlq, &record, &e)?;
                }
            },
            Err(e @ StreamsError::Processing { .. })
                if self.config.processing_handler == ExceptionHandler::LogAndContinue =>
            {
                tracing::warn!(error = %e, task = %id, topic = %record.topic, partition = record.partition,
                    offset = record.offset,
                    "skipping a record whose processing failed (processing.exception.handler=log_and_continue)");
                entry.task.count_dropped();
            }
            Err(e @ StreamsError::Processing { .. }) => {
                return Err(StreamsError::Record {
                    task: id.to_string(),
                    topic: record.topic.to_string(),
                    partition: record.partition,
                    offset: record.offset,
                    source: Box::new(e),
                })
            }
            Err(e) => return Err(e),
        }
        entry.task.punctuate_stream_time()?;
        if let Some(started) = started {
            self.process_latency.observe(started.elapsed().as_secs_f64());
        }
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
            Some((topic, source)) => Err(StreamsError::Delivery { topic, source }),
            None => Ok(()),
        }
    }

    fn commit_due(&mut self) -> bool {
        // Every task's request is taken (and cleared), not just the first.
        let mut requested = false;
        for entry in self.tasks.values_mut() {
            requested |= entry.task.take_commit_request();
        }
        requested || self.last_commit.elapsed() >= self.config.commit_interval
    }

    fn offsets(&self) -> Result<TopicPartitionList> {
        let mut list = TopicPartitionList::new();
        for entry in self.tasks.values() {
            for (topic, partition, offset) in entry.inputs.offsets() {
                list.add_partition_offset(topic, partition, Offset::Offset(offset))?;
                // Stream time survives restarts and moves in the commit, as in Kafka Streams.
                if let (Some(time), Some(mut e)) =
                    (entry.task.partition_time(topic), list.find_partition(topic, partition))
                {
                    e.set_metadata(commit_metadata::encode(time));
                }
            }
        }
        Ok(list)
    }

    /// Commits every task. At least once: flush the producer, commit the stores (checkpoints), then
    /// the input offsets. Exactly once: commit the transaction holding output, changelog writes and
    /// input offsets, then the stores (which apply their buffered writes with the changelog offset).
    /// Commits within `budget`: every step (flush, offsets, the transaction's commit) shares it, so
    /// a commit against a broker that does not answer fails after `budget`, not after each step's
    /// own timeout.
    fn commit(&mut self, consumer: &KConsumer, budget: Duration) -> Result<()> {
        let started = Instant::now();
        let records = self.uncommitted;
        let result = self.commit_inner(consumer, crate::runtime::deadline_after(budget));
        if let (Ok(()), Some(since)) = (&result, self.outage) {
            tracing::info!(thread = self.index, waited_s = since.elapsed().as_secs(), "the broker is back; committed");
            self.outage = None;
        }
        self.commit_latency.observe(started.elapsed().as_secs_f64());
        tracing::trace!(thread = self.index, records, took_us = started.elapsed().as_micros() as u64, "committed");
        // The interval runs from the end of a commit, as in Kafka Streams: a commit that takes as
        // long as the interval (a transaction commit can) must still leave time to process.
        self.last_commit = Instant::now();
        result
    }

    fn commit_inner(&mut self, consumer: &KConsumer, deadline: Instant) -> Result<()> {
        let left = || deadline.saturating_duration_since(Instant::now());
        // Record caches go first: what they held is forwarded, produced and logged in this commit.
        for entry in self.tasks.values_mut() {
            entry.task.flush_caches()?;
        }
        let offsets = self.offsets()?;
        if is_eos(&self.config) {
            if self.uncommitted == 0 && offsets.count() == 0 {
                return Ok(());
            }
            let metadata = consumer
                .group_metadata()
                .ok_or_else(|| StreamsError::IllegalState("the consumer has no group metadata yet".into()))?;
            // Our flush first: the one inside `commit_transaction` would wait for linger.ms. The
            // offsets go last, right before the commit: once sent, a crash leaves them pending
            // until the broker aborts the transaction (`transaction.timeout.ms`), and the next
            // owner of the partitions waits for that (KIP-447); so the window stays one round trip.
            flush(&self.producer, left())?;
            if offsets.count() > 0 {
                if let Err(e) = send_offsets(&self.producer, offsets.clone(), metadata, left()) {
                    if matches!(e, StreamsError::Timeout { .. }) {
                        self.producer_stuck = true;
                    }
                    return Err(e);
                }
            }
            self.producer.commit_transaction(left())?;
            self.check_deliveries()?;
            self.commit_stores()?;
            self.tasks.commit_standbys()?;
            self.producer.begin_transaction()?;
        } else {
            flush(&self.producer, left())?;
            self.check_deliveries()?;
            self.commit_stores()?;
            self.tasks.commit_standbys()?;
            if offsets.count() > 0 {
                consumer.commit(&offsets, CommitMode::Sync)?;
            }
        }
        self.uncommitted = 0;
        for entry in self.tasks.values_mut() {
            entry.inputs.clear_offsets();
        }
        self.purge.note_committed(&offsets);
        self.purge.maybe_purge(self.config.repartition_purge_interval);
        Ok(())
    }

    /// Commits every task's stores with the changelog offsets the producer reported delivered.
    fn commit_stores(&mut self) -> Result<()> {
        // A copy: committing may send (and serve delivery reports, which take the lock).
        let delivered = match self.producer_ctx.deliveries.lock() {
            Ok(d) => d.offsets.clone(),
            Err(_) => return Err(StreamsError::IllegalState("delivery report lock poisoned".into())),
        };
        for (id, entry) in self.tasks.iter_mut() {
            let partition = id.partition;
            entry.state.commit(entry.task.state_stores(), |topic| delivered.last_delivered(topic, partition))?;
        }
        Ok(())
    }

    /// A rebalance begins: commit everything and suspend the tasks (they stay open: most stay here).
    /// When the partitions were lost (this member was dropped from the group, e.g. after a long
    /// pause), other instances may already own them: nothing is committed, the open transaction is
    /// aborted, and the tasks close dirty (Kafka Streams' "task migrated").
    fn on_revoked(&mut self, consumer: &KConsumer, lost: bool) -> Result<()> {
        if lost {
            tracing::warn!(thread = self.index, "partitions lost; closing tasks without committing");
            self.abandon_transaction()?;
            self.close_all(false);
            // Other instances own them now: nothing is recreated before the next assignment.
            self.tasks.assign(HashSet::new(), BTreeSet::new());
        } else {
            // Under exactly-once one transaction covers all tasks, so all are committed.
            match self.commit(consumer, TXN_TIMEOUT) {
                Ok(()) => {}
                Err(e) if self.can_recover(&e) => {
                    tracing::warn!(thread = self.index, error = %e, "commit on revocation failed; closing tasks dirty");
                    self.abandon_transaction()?;
                    self.close_all(false);
                }
                Err(e) => return Err(e),
            }
        }
        self.suspended = true;
        Ok(())
    }

    /// A rebalance ended: this thread's share of the placement becomes its assignment. Returns the
    /// partitions for the consumer, each with where to resume.
    fn on_assigned(&mut self, consumer: &KConsumer) -> Result<TopicPartitionList> {
        let share = match self.placement(consumer) {
            Some(share) => {
                self.unplanned = None;
                share
            }
            None => {
                // Taking the group leader's choice instead could overlap with what the other
                // members took from the placement: take nothing until the members can be read.
                tracing::warn!(
                    thread = self.index,
                    "the group's members could not be read; the thread's share of the placement waits for them"
                );
                self.unplanned = Some(Instant::now());
                Default::default()
            }
        };
        self.joined = true;
        self.suspended = false;
        self.take_share(share)
    }

    /// Makes `share` the thread's assignment; returns the partitions for the consumer, each with
    /// where to resume.
    fn take_share(&mut self, (partitions, standby): ThreadShare) -> Result<TopicPartitionList> {
        tracing::info!(
            thread = self.index,
            partitions = partitions.len(),
            standbys = standby.len(),
            "partitions assigned"
        );
        self.tasks.assign(partitions, standby);
        // A new assignment starts unpaused.
        self.paused.clear();
        self.tasks.positions()
    }

    /// After an assignment whose placement could not be computed: tries again, at most once a
    /// second, and assigns the consumer its share once it can.
    fn retry_placement(&mut self, consumer: &KConsumer) -> Result<()> {
        match self.unplanned {
            Some(at) if at.elapsed() >= Duration::from_secs(1) => {}
            _ => return Ok(()),
        }
        let Some(share) = self.placement(consumer) else {
            self.unplanned = Some(Instant::now());
            return Ok(());
        };
        self.unplanned = None;
        let positions = self.take_share(share)?;
        consumer.assign(&positions)?;
        consumer.resume(&positions)?;
        Ok(())
    }

    /// This thread's active and standby tasks in the placement of the group's current members, or
    /// `None` when the coordinator does not describe the generation this thread joined.
    fn placement(&self, consumer: &KConsumer) -> Option<ThreadShare> {
        for attempt in 0..3 {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(100));
            }
            let members = match discovery::describe(consumer.client(), &self.config.application_id) {
                Ok(view) if view.stable => view.members,
                Ok(view) => {
                    tracing::debug!(state = %view.state, "group not stable yet");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "describing the group failed");
                    continue;
                }
            };
            if !members.iter().any(|m| m.process == self.process_id && m.thread == self.index) {
                continue;
            }
            let placement = assignor::place(&self.layout, &members, self.config.num_standby_replicas);
            let (active, standby) = placement.of(&self.process_id, self.index);
            let partitions = active.iter().filter_map(|id| self.layout.tasks.get(id)).flatten().cloned().collect();
            return Some((partitions, standby));
        }
        None
    }

    /// Whether a failed commit can be recovered from by aborting and rewinding: under exactly-once,
    /// a transaction error that requires an abort, or a fatal one (the producer was fenced), which a
    /// new producer fixes.
    fn can_recover(&self, error: &StreamsError) -> bool {
        is_eos(&self.config)
            && matches!(error, StreamsError::Kafka(KafkaError::Transaction(e)) if e.txn_requires_abort() || e.is_fatal())
    }

    /// Aborts the open transaction (or, if the producer is fenced, replaces it with a new one) and
    /// begins the next; clears the uncommitted input positions.
    fn abandon_transaction(&mut self) -> Result<()> {
        if !is_eos(&self.config) {
            return Ok(());
        }
        let aborted = if self.producer_stuck {
            Err("a call into it did not return".to_string())
        } else {
            abort(&self.producer, TXN_TIMEOUT)
                .and_then(|()| self.producer.begin_transaction())
                .map_err(|e| e.to_string())
        };
        if let Err(e) = aborted {
            tracing::warn!(thread = self.index, error = %e, "abort failed; replacing the producer");
            self.producer = create_producer(&self.config, &self.transactional_id, self.producer_ctx.clone())?;
            self.producer_stuck = false;
        }
        if let Ok(mut d) = self.producer_ctx.deliveries.lock() {
            d.first_error = None;
        }
        self.uncommitted = 0;
        for entry in self.tasks.values_mut() {
            entry.inputs.clear_offsets();
        }
        Ok(())
    }

    /// After a failed transaction or while the broker is away: close every task dirty (its stores
    /// lose the uncommitted writes; they reopen at their last committed point and restore the
    /// changelog tail), abort the open transaction, and rewind the consumer to the committed
    /// offsets so that the aborted input is processed again. Each step may be repeated.
    fn recover(&mut self, consumer: &KConsumer) -> Result<()> {
        self.close_all(false);
        self.abandon_transaction()?;
        let assignment = consumer.assignment()?;
        if assignment.count() == 0 {
            return Ok(());
        }
        let committed = consumer.committed_offsets(assignment, TXN_TIMEOUT)?;
        let mut rewind = TopicPartitionList::new();
        for e in committed.elements() {
            let offset = match e.offset() {
                Offset::Offset(o) => Offset::Offset(o),
                _ => Offset::Beginning,
            };
            rewind.add_partition_offset(e.topic(), e.partition(), offset)?;
        }
        // Belt and braces: the tasks, created again, resume their partitions at the committed
        // offsets anyway (they are held, paused, until then). So a partition that cannot be
        // sought now (librdkafka refuses a seek while it is not being fetched) is no failure.
        for e in consumer.seek_partitions(rewind, TXN_TIMEOUT)?.elements() {
            if let Err(err) = e.error() {
                tracing::debug!(thread = self.index, topic = e.topic(), partition = e.partition(), error = %err,
                    "not rewound now; its task resumes it at the committed offset");
            }
        }
        Ok(())
    }

    /// After `error` failed a round: if the broker's return can resolve it (see
    /// [`StreamsError::waits_for_broker`]) and the thread has waited less than `task.timeout.ms`,
    /// pauses briefly and has the tasks rewound before the next round; otherwise fails the thread
    /// with it.
    fn wait_for_broker(&mut self, error: StreamsError) -> Result<()> {
        if !error.waits_for_broker() {
            return Err(error);
        }
        let since = *self.outage.get_or_insert_with(Instant::now);
        let waited = since.elapsed();
        if waited >= self.config.task_timeout {
            tracing::error!(thread = self.index, waited_s = waited.as_secs(), error = %error,
                "the broker did not come back within task.timeout.ms; failing the thread");
            return Err(error);
        }
        tracing::warn!(thread = self.index, waited_s = waited.as_secs(),
            task_timeout_s = self.config.task_timeout.as_secs(), error = %error,
            "waiting for the broker: tasks rewind to their last commit and retry");
        self.activity.set(Step::WaitingForBroker);
        std::thread::sleep(OUTAGE_BACKOFF);
        self.needs_recovery = true;
        Ok(())
    }

    /// Closes every task; `clean` after a successful commit (checkpoints are written), not after a
    /// failure (stores restore from their committed point on the next start).
    fn close_all(&mut self, clean: bool) {
        self.tasks.close_all(clean);
    }

    /// After a failure: abort the open transaction (its output is discarded) and drop the tasks
    /// without committing.
    fn abort_after_error(&mut self) {
        if is_eos(&self.config) {
            // Briefly: if the abort cannot be sent, the broker aborts the transaction after
            // `transaction.timeout.ms` anyway.
            if let Err(e) = abort(&self.producer, Duration::from_secs(5)) {
                tracing::warn!(transactional_id = %self.transactional_id, error = %e, "abort after error failed");
            }
        }
        self.close_all(false);
        self.tasks.stop_updater();
    }
}

/// How far `topic`/`partition` is behind the end of its log (the last stable offset under
/// `read_committed`), from librdkafka's cached watermarks, learnt from fetch responses: no request is
/// sent. The consumer's position is where the next record comes from (it moves past transaction
/// markers too); before the consumer returned anything it is `start`, the committed offset, or the
/// log start without one.
fn partition_lag(consumer: &KConsumer, topic: &str, partition: i32, start: i64) -> Lag {
    let Ok(c_topic) = std::ffi::CString::new(topic) else { return Lag::Unknown };
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid while `consumer` lives; the topic is a NUL-terminated
    // string that outlives the call; librdkafka only writes the two integers it is given.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            c_topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    if err != rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR || high < 0 {
        return Lag::Unknown;
    }
    let mut position = None;
    if let Ok(list) = consumer.position() {
        if let Some(Offset::Offset(p)) = list.find_partition(topic, partition).map(|e| e.offset()) {
            position = Some(p);
        }
    }
    let position = position.unwrap_or(if start >= 0 { start } else { low.max(0) });
    if position >= high {
        Lag::CaughtUp
    } else {
        Lag::Behind
    }
}

/// Aborts the producer's transaction. librdkafka waits for every outstanding message to be
/// acknowledged first, and a `BaseProducer` only serves delivery reports when polled: flushing first
/// serves them (an error there shows again in the abort).
/// `send_offsets_to_transaction` on a helper thread, given up after `timeout` and a second's grace:
/// librdkafka can block in it far past its timeout when the group coordinator went away (its
/// coordinator requests never time out: confluentinc/librdkafka#5456, #5511). A call given up is a
/// [`StreamsError::Timeout`] (the broker's return may fix it); the producer must then be replaced,
/// not used again; the helper keeps its reference until librdkafka returns.
fn send_offsets(
    producer: &Arc<KProducer>,
    offsets: TopicPartitionList,
    metadata: rdkafka::consumer::ConsumerGroupMetadata,
    timeout: Duration,
) -> Result<()> {
    let (done, result) = std::sync::mpsc::channel();
    let helper = producer.clone();
    std::thread::Builder::new()
        .name("kstreams-send-offsets".into())
        .spawn(move || {
            let _ = done.send(helper.send_offsets_to_transaction(&offsets, &metadata, timeout));
        })
        .map_err(|e| StreamsError::IllegalState(format!("cannot start a thread: {e}")))?;
    match result.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok(sent) => Ok(sent?),
        Err(_) => Err(StreamsError::Timeout {
            what: format!("sending the input offsets to the transaction (librdkafka did not return in {timeout:?})"),
        }),
    }
}

fn abort(producer: &KProducer, timeout: Duration) -> std::result::Result<(), KafkaError> {
    // Delivery reports of what is in flight first (briefly: the abort purges what is queued).
    let _ = flush(producer, Duration::from_secs(1).min(timeout));
    producer.abort_transaction(timeout)
}

/// Writes the original record to the dead-letter topic with headers that say where it came from and
/// why it failed (Kafka Streams' `__streams.errors.*` names).
pub(crate) fn send_to_dlq<C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>>(
    producer: &rdkafka::producer::BaseProducer<C>,
    dlq: &str,
    m: &Pending,
    error: &StreamsError,
) -> Result<()> {
    let mut headers = OwnedHeaders::new();
    for h in m.headers.iter() {
        headers = headers.insert(rdkafka::message::Header { key: &h.key, value: h.value.as_deref() });
    }
    let partition = m.partition.to_string();
    let offset = m.offset.to_string();
    let message = error.to_string();
    for (key, value) in [
        ("__streams.errors.exception", "DeserializationException"),
        ("__streams.errors.message", message.as_str()),
        ("__streams.errors.topic", &*m.topic),
        ("__streams.errors.partition", partition.as_str()),
        ("__streams.errors.offset", offset.as_str()),
    ] {
        headers = headers.insert(rdkafka::message::Header { key, value: Some(value.as_bytes()) });
    }
    let mut record: rdkafka::producer::BaseRecord<'_, [u8], [u8]> =
        rdkafka::producer::BaseRecord::to(dlq).headers(headers);
    if let Some(k) = &m.key {
        record = record.key(k);
    }
    if let Some(v) = &m.value {
        record = record.payload(v);
    }
    if m.timestamp >= 0 {
        record = record.timestamp(m.timestamp);
    }
    producer.send(record).map_err(|(e, _)| StreamsError::Kafka(e))
}
