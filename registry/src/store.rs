//! The `_schemas` topic as the registry's store: a reader that rebuilds the state, and a single
//! writer elected through a Kafka transaction.
//!
//! **Reading.** Every instance reads the topic (one partition, compacted, `read_committed`) from
//! the beginning, forever, and applies each record to its [`State`]. An instance is loaded once its
//! position reaches the topic's last stable offset as it was at start.
//!
//! **Writing, and why ids are never handed out twice.** All instances on one topic write with the
//! same `transactional.id` (`kstreams-registry-<topic>`). Before it writes, an instance calls
//! `init_transactions`, which fences every other instance's producer (their next commit fails), and
//! then reads the topic up to its last stable offset, so it has seen every committed write. It
//! plans the change (the next id, the next version) against that state and commits the records in
//! one transaction. The commit succeeds only if no other instance has initialised since, that is,
//! only if nobody else wrote in between, so the plan was made on the whole history. A fenced commit
//! is retried from the start: catch up, plan again. Within an instance one writer mutex orders the
//! changes; an instance keeps its producer while its commits succeed, so a lone writer pays the
//! initialisation once.
//!
//! **One writer at a time: the leader.** Fencing alone keeps ids unique, but two instances taking
//! writes at once would fence each other over and over. So the writer announces itself: its first
//! transaction carries a `LEADER` record with its URL. An instance that is not the writer, and has
//! read that another instance leads, answers [`Change::Forward`]: the API forwards the request to
//! the leader, as Confluent's followers do. Only when the leader cannot be reached does the instance
//! take over (its `init_transactions` fences the old leader). A forwarded request is never forwarded
//! again.
//!
//! After a commit the writer waits until its own reader has read the records back, so a client
//! that registered a schema can read it from the same instance at once. Other instances see it
//! as soon as their readers get there (usually milliseconds).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::error::RegistryError;
use crate::records::StoreRecord;
use crate::state::{Plan, State};

/// How the registry reaches Kafka.
///
/// ```
/// use kstreams_registry::store::StoreConfig;
/// let config = StoreConfig::new("127.0.0.1:9092").topic("_schemas-test").kafka("client.id", "registry-1");
/// assert_eq!(config.topic_name(), "_schemas-test");
/// ```
#[derive(Debug, Clone)]
pub struct StoreConfig {
    bootstrap_servers: String,
    topic: String,
    advertised_url: Option<String>,
    replication_factor: Option<i32>,
    kafka: BTreeMap<String, String>,
    timeout: Duration,
}

impl StoreConfig {
    /// The store on the `_schemas` topic of the cluster at `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>) -> Self {
        StoreConfig {
            bootstrap_servers: bootstrap_servers.into(),
            topic: "_schemas".into(),
            advertised_url: None,
            replication_factor: None,
            kafka: BTreeMap::new(),
            timeout: Duration::from_secs(30),
        }
    }

    /// The topic (Confluent's `kafkastore.topic`); default `_schemas`.
    pub fn topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self
    }

    /// The topic's name.
    pub fn topic_name(&self) -> &str {
        &self.topic
    }

    /// The URL other instances reach this one at, to forward writes when it leads (Confluent's
    /// `host.name` and listener); [`Registry::start`](crate::Registry::start) sets it from the
    /// listening address when not given.
    pub fn advertised_url(mut self, url: impl Into<String>) -> Self {
        self.advertised_url = Some(url.into().trim_end_matches('/').to_string());
        self
    }

    /// The URL set by [`advertised_url`](Self::advertised_url).
    pub fn advertised(&self) -> Option<&str> {
        self.advertised_url.as_deref()
    }

    /// The replication factor when the registry creates the topic; default: 3, or the number of
    /// brokers when fewer.
    pub fn replication_factor(mut self, factor: i32) -> Self {
        self.replication_factor = Some(factor);
        self
    }

    /// A librdkafka setting for every client of the store (security settings, client id, …).
    pub fn kafka(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.kafka.insert(key.into(), value.into());
        self
    }

    /// How long a write, or the first load, may take before it fails; default 30 s.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the first load may take (the write timeout).
    pub fn load_timeout(&self) -> Duration {
        self.timeout
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        for (k, v) in &self.kafka {
            config.set(k, v);
        }
        config
    }

    fn transactional_id(&self) -> String {
        format!("kstreams-registry-{}", self.topic)
    }
}

/// What a change came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Written (or nothing to write); the plan's answer.
    Done(T),
    /// Another instance leads: forward the request to this URL.
    Forward(String),
}

/// A random pause before retry `attempt`, growing with it (10–50 ms times the attempt), so that
/// two instances that fenced each other do not retry in step.
fn jitter(attempt: u32) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
    Duration::from_millis((10 + random % 41) * u64::from(attempt.min(10)))
}

/// Where the reader is.
#[derive(Debug, Default)]
struct Progress {
    /// The next offset the reader will read (its consumer position), once known.
    position: Option<i64>,
    /// Set once the first load finished.
    loaded: bool,
    /// The reader stopped with this error.
    failed: Option<String>,
}

/// The state, the reader's progress, and the writer.
pub struct KafkaStore {
    config: StoreConfig,
    state: Arc<RwLock<State>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    writer: Mutex<Option<Writer>>,
    /// Asks the stores's last stable offset (read_committed watermarks).
    watermarks: BaseConsumer,
    stop: Arc<std::sync::atomic::AtomicBool>,
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for KafkaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaStore").field("topic", &self.config.topic).finish_non_exhaustive()
    }
}

impl KafkaStore {
    /// Creates the topic if missing (one partition, compacted), checks it if present, and starts
    /// reading it. The store answers [`RegistryError::Loading`] until the first load is done; see
    /// [`wait_loaded`](Self::wait_loaded).
    pub async fn open(config: StoreConfig) -> Result<Arc<KafkaStore>, RegistryError> {
        ensure_topic(&config).await?;
        let reader_consumer: BaseConsumer = config
            .client()
            .set("group.id", format!("{}-reader", config.transactional_id()))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", "50")
            .set("fetch.queue.backoff.ms", "5")
            .create()
            .map_err(|e| store_error("creating the reader", e))?;
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(&config.topic, 0, Offset::Beginning)
            .map_err(|e| store_error("assigning the topic", e))?;
        reader_consumer.assign(&assignment).map_err(|e| store_error("assigning the topic", e))?;
        let watermarks: BaseConsumer = config
            .client()
            .set("isolation.level", "read_committed")
            .create()
            .map_err(|e| store_error("creating the offsets client", e))?;
        let store = Arc::new(KafkaStore {
            config,
            state: Arc::new(RwLock::new(State::new())),
            progress: Arc::new((Mutex::new(Progress::default()), Condvar::new())),
            writer: Mutex::new(None),
            watermarks,
            stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            reader: Mutex::new(None),
        });
        let load_target = store.last_stable_offset()?;
        let reader = Reader {
            consumer: reader_consumer,
            topic: store.config.topic.clone(),
            state: Arc::clone(&store.state),
            progress: Arc::clone(&store.progress),
            stop: Arc::clone(&store.stop),
            load_target,
        };
        let handle = std::thread::Builder::new()
            .name("registry-reader".into())
            .spawn(move || reader.run())
            .map_err(|e| RegistryError::Store(format!("cannot start the reader thread: {e}")))?;
        *lock(&store.reader) = Some(handle);
        Ok(store)
    }

    /// Blocks until the first load is done, for at most `timeout`.
    pub fn wait_loaded(&self, timeout: Duration) -> Result<(), RegistryError> {
        let (lock_, changed) = &*self.progress;
        let deadline = deadline_after(timeout);
        let mut progress = lock(lock_);
        loop {
            if let Some(error) = &progress.failed {
                return Err(RegistryError::Store(error.clone()));
            }
            if progress.loaded {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RegistryError::Timeout(format!(
                    "the registry did not finish reading topic {} within {timeout:?}",
                    self.config.topic
                )));
            }
            progress = changed.wait_timeout(progress, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Whether the first load is done and the reader runs.
    pub fn is_ready(&self) -> bool {
        let progress = lock(&self.progress.0);
        progress.loaded && progress.failed.is_none()
    }

    /// The reader's position (next offset to read), if known.
    pub fn position(&self) -> Option<i64> {
        lock(&self.progress.0).position
    }

    /// Reads the state; [`RegistryError::Loading`] before the first load is done.
    pub fn read(&self) -> Result<RwLockReadGuard<'_, State>, RegistryError> {
        if !self.is_ready() {
            if let Some(error) = &lock(&self.progress.0).failed {
                return Err(RegistryError::Store(error.clone()));
            }
            return Err(RegistryError::Loading);
        }
        Ok(self.state.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Plans a change against the current state and writes it; the plan's answer once the records
    /// are read back, or, when another instance leads and `may_forward`, where to forward the
    /// request. Blocking: call it from a blocking thread.
    pub fn change<T>(
        &self,
        may_forward: bool,
        plan: impl Fn(&State) -> Result<Plan<T>, RegistryError>,
    ) -> Result<Change<T>, RegistryError> {
        drop(self.read()?); // not before the first load
        let me = self.config.advertised_url.as_deref();
        let mut writer = lock(&self.writer);
        let deadline = deadline_after(self.config.timeout);
        let mut last_error = String::new();
        for attempt in 1u32.. {
            if attempt > 1 {
                if Instant::now() >= deadline || attempt > 10 {
                    break;
                }
                std::thread::sleep(jitter(attempt));
            }
            if writer.is_none() {
                if may_forward {
                    self.catch_up()?;
                    if let Some(leader) = self.read()?.leader().filter(|l| Some(*l) != me) {
                        return Ok(Change::Forward(leader.to_string()));
                    }
                }
                match self.new_writer() {
                    Ok(w) => *writer = Some(w),
                    Err(e) => {
                        tracing::warn!(attempt, error = %e, "cannot become the writer of the schemas topic");
                        last_error = e.to_string();
                        continue;
                    }
                }
            }
            let Some(current) = writer.as_ref() else { continue };
            let (plan, announce) = {
                let state = self.read()?;
                (plan(&state)?, me.filter(|me| state.leader() != Some(*me)))
            };
            if plan.records.is_empty() {
                return Ok(Change::Done(plan.answer));
            }
            let mut records = plan.records;
            if let Some(me) = announce {
                records.insert(0, StoreRecord::Leader(me.to_string()));
            }
            let started = Instant::now();
            match current.write(&self.config, &records) {
                Ok(last_offset) => {
                    let committed_us = started.elapsed().as_micros() as u64;
                    self.wait_for_position(last_offset + 1)?;
                    tracing::debug!(
                        records = records.len(),
                        committed_us,
                        read_back_us = started.elapsed().as_micros() as u64 - committed_us,
                        "wrote to the schemas topic"
                    );
                    return Ok(Change::Done(plan.answer));
                }
                Err(e) => {
                    // Fenced by another instance, or the broker failed: start over as a new writer.
                    tracing::warn!(attempt, error = %e, "writing to the schemas topic failed; retrying");
                    last_error = e.to_string();
                    *writer = None;
                }
            }
        }
        Err(RegistryError::Store(format!("cannot write to topic {}: {last_error}", self.config.topic)))
    }

    /// Reads the topic up to its current last stable offset (what other instances committed).
    pub fn catch_up(&self) -> Result<(), RegistryError> {
        let end = self.last_stable_offset()?;
        self.wait_for_position(end)
    }

    /// Makes this instance the writer: init_transactions (fencing the others), then catch up with
    /// everything committed before.
    fn new_writer(&self) -> Result<Writer, RegistryError> {
        let timeout = self.config.timeout;
        let producer: BaseProducer<DeliveryOffsets> = self
            .config
            .client()
            .set("transactional.id", self.config.transactional_id())
            .set("transaction.timeout.ms", "10000")
            .set("linger.ms", "0")
            .set("retry.backoff.ms", "20")
            .create_with_context(DeliveryOffsets::default())
            .map_err(|e| store_error("creating the writer", e))?;
        producer.init_transactions(timeout).map_err(|e| store_error("init_transactions", e))?;
        self.catch_up()?;
        Ok(Writer { producer })
    }

    /// The topic's last stable offset (read_committed end offset).
    fn last_stable_offset(&self) -> Result<i64, RegistryError> {
        let (_, high) = self
            .watermarks
            .fetch_watermarks(&self.config.topic, 0, self.config.timeout)
            .map_err(|e| store_error("reading the end offset", e))?;
        Ok(high)
    }

    /// Waits until the reader's position is at least `offset`.
    fn wait_for_position(&self, offset: i64) -> Result<(), RegistryError> {
        let (lock_, changed) = &*self.progress;
        let deadline = deadline_after(self.config.timeout);
        let mut progress = lock(lock_);
        loop {
            if let Some(error) = &progress.failed {
                return Err(RegistryError::Store(error.clone()));
            }
            if progress.position.is_some_and(|p| p >= offset) {
                return Ok(());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(RegistryError::Timeout(format!(
                    "the registry's reader did not reach offset {offset} of {} in {:?}",
                    self.config.topic, self.config.timeout
                )));
            }
            progress = changed.wait_timeout(progress, left).map(|(g, _)| g).unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Stops the reader (the writer's producer is dropped with the store).
    pub fn shutdown(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(handle) = lock(&self.reader).take() {
            let _ = handle.join();
        }
    }
}

impl Drop for KafkaStore {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn store_error(what: &str, error: KafkaError) -> RegistryError {
    RegistryError::Store(format!("{what}: {error}"))
}

/// The reader thread.
struct Reader {
    consumer: BaseConsumer,
    topic: String,
    state: Arc<RwLock<State>>,
    progress: Arc<(Mutex<Progress>, Condvar)>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The last stable offset at start: loaded once the position reaches it.
    load_target: i64,
}

impl Reader {
    fn run(self) {
        let (progress_lock, changed) = &*self.progress;
        let started = Instant::now();
        let mut applied = 0u64;
        while !self.stop.load(std::sync::atomic::Ordering::Relaxed) {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => match StoreRecord::decode(message.key().unwrap_or_default(), message.payload()) {
                    Ok(record) => {
                        self.state.write().unwrap_or_else(|p| p.into_inner()).apply(record);
                        applied += 1;
                    }
                    Err(e) => {
                        tracing::error!(offset = message.offset(), error = %e, "skipping a record of the schemas topic")
                    }
                },
                Some(Err(e)) => tracing::warn!(error = %e, topic = %self.topic, "reading the schemas topic"),
                None => {}
            }
            let position = self
                .consumer
                .position()
                .ok()
                .and_then(|list| list.find_partition(&self.topic, 0).map(|p| p.offset()))
                .and_then(|offset| match offset {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let mut progress = lock(progress_lock);
            let before = (progress.position, progress.loaded);
            if position.is_some() {
                progress.position = position;
            }
            if !progress.loaded && (self.load_target == 0 || progress.position.is_some_and(|p| p >= self.load_target)) {
                progress.loaded = true;
                if progress.position.is_none() {
                    progress.position = Some(0);
                }
                tracing::info!(records = applied, took_ms = started.elapsed().as_millis() as u64, topic = %self.topic, "schemas loaded");
            }
            if (progress.position, progress.loaded) != before {
                changed.notify_all();
            }
        }
    }
}

/// The writer's transactional producer.
struct Writer {
    producer: BaseProducer<DeliveryOffsets>,
}

impl Writer {
    /// Writes `records` in one transaction; returns the offset of the last one.
    fn write(&self, config: &StoreConfig, records: &[StoreRecord]) -> Result<i64, RegistryError> {
        let result = self.try_write(config, records);
        if result.is_err() {
            let _ = self.producer.abort_transaction(Duration::from_secs(5));
        }
        result
    }

    fn try_write(&self, config: &StoreConfig, records: &[StoreRecord]) -> Result<i64, RegistryError> {
        self.producer.begin_transaction().map_err(|e| store_error("begin_transaction", e))?;
        lock(&self.producer.context().delivered).clear();
        for record in records {
            let (key, value) = record.encode();
            let mut out = BaseRecord::<Vec<u8>, Vec<u8>>::to(&config.topic).partition(0).key(&key);
            if let Some(value) = &value {
                out = out.payload(value);
            }
            self.producer.send(out).map_err(|(e, _)| store_error("producing", e))?;
        }
        self.await_deliveries(config.timeout)?;
        let delivered = std::mem::take(&mut *lock(&self.producer.context().delivered));
        let mut last = -1;
        for delivery in delivered {
            last = last.max(delivery.map_err(RegistryError::Store)?);
        }
        if last < 0 {
            return Err(RegistryError::Store("no delivery report for the written records".into()));
        }
        self.producer.commit_transaction(config.timeout).map_err(|e| store_error("commit_transaction", e))?;
        Ok(last)
    }
}

impl Writer {
    /// Serves delivery reports until none is outstanding. (rdkafka's `flush` polls for whole
    /// 100 ms rounds, which made every write take 100 ms; a record here is delivered in about one.)
    fn await_deliveries(&self, timeout: Duration) -> Result<(), RegistryError> {
        let deadline = deadline_after(timeout);
        while self.producer.in_flight_count() > 0 {
            if Instant::now() >= deadline {
                return Err(RegistryError::Timeout(format!("records not delivered within {timeout:?}")));
            }
            self.producer.poll(Duration::from_millis(1));
        }
        Ok(())
    }
}

/// Collects the offsets (or errors) of delivered records.
#[derive(Default)]
struct DeliveryOffsets {
    delivered: Mutex<Vec<Result<i64, String>>>,
}

impl ClientContext for DeliveryOffsets {}

impl ProducerContext for DeliveryOffsets {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let outcome = match result {
            Ok(message) => Ok(message.offset()),
            Err((e, _)) => Err(format!("delivery failed: {e}")),
        };
        lock(&self.delivered).push(outcome);
    }
}

/// Creates the topic (one partition, compacted) or checks the one there.
async fn ensure_topic(config: &StoreConfig) -> Result<(), RegistryError> {
    let admin: AdminClient<DefaultClientContext> =
        config.client().create().map_err(|e| store_error("creating the admin client", e))?;
    let timeout = config.timeout;
    let brokers = {
        let metadata = admin
            .inner()
            .fetch_metadata(None, timeout)
            .map_err(|e| store_error(&format!("no Kafka cluster answered at {}", config.bootstrap_servers), e))?;
        if let Some(topic) = metadata.topics().iter().find(|t| t.name() == config.topic) {
            if topic.error().is_none() {
                if topic.partitions().len() != 1 {
                    return Err(RegistryError::Store(format!(
                        "topic {} has {} partitions; the schemas topic must have exactly one (it orders every change)",
                        config.topic,
                        topic.partitions().len()
                    )));
                }
                return check_compacted(&admin, config).await;
            }
        }
        metadata.brokers().len() as i32
    };
    let factor = config.replication_factor.unwrap_or_else(|| brokers.clamp(1, 3));
    let topic = NewTopic::new(&config.topic, 1, TopicReplication::Fixed(factor)).set("cleanup.policy", "compact");
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = admin.create_topics([&topic], &options).await.map_err(|e| store_error("creating the topic", e))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic = %config.topic, replication_factor = factor, "created the schemas topic"),
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(RegistryError::Store(format!("cannot create topic {name}: {code}")));
            }
        }
    }
    Ok(())
}

async fn check_compacted(admin: &AdminClient<DefaultClientContext>, config: &StoreConfig) -> Result<(), RegistryError> {
    let options = AdminOptions::new().request_timeout(Some(config.timeout));
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(&config.topic)], &options)
        .await
        .map_err(|e| store_error("describing the topic", e))?;
    for resource in described.into_iter().flatten() {
        let policy = resource.get("cleanup.policy").and_then(|e| e.value.clone()).unwrap_or_default();
        if !policy.split(',').any(|p| p.trim() == "compact") {
            return Err(RegistryError::Store(format!(
                "topic {} has cleanup.policy={policy}; the schemas topic must be compacted (cleanup.policy=compact), \
                 or old schemas are deleted with it",
                config.topic
            )));
        }
    }
    Ok(())
}

/// `timeout` from now; one too long to represent (`Duration::MAX`) is a century.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}
