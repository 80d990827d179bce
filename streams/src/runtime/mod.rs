//! The runtime: [`KafkaStreams`] runs a topology against a Kafka cluster.
//!
//! Every instance started with the same `application.id` joins one consumer group; each stream
//! thread runs a task per (sub-topology, partition) it owns. Which thread owns which task is
//! computed alike by every member from the group's member list (see the `assignor` module:
//! rendezvous hashing over process ids, so a restarted instance gets its stores back, and standby
//! tasks for `num.standby.replicas` placed where failover lands). Under `exactly_once_v2` each
//! thread's output, changelog writes and input offsets commit in one Kafka transaction.
//!
//! Global stores ([`GlobalKTable`](crate::dsl::GlobalKTable)s) hold every partition of their topic
//! in every instance: `start` restores them before any stream thread starts, and a
//! `GlobalStreamThread` keeps them up to date while the stream threads read them (see the
//! `global` module).
//!
//! Each task's stores are readable from other threads while it runs: [`KafkaStreams::store`] and,
//! with `application.server`, [`KafkaStreams::query_metadata_for_key`] and the built-in HTTP server
//! answer interactive queries (see the [`query`](crate::query) module).
//!
//! ```no_run
//! use std::time::Duration;
//! use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
//! use kstreams_streams::runtime::{KafkaStreams, StreamsConfig};
//! use kstreams_streams::serde::Serdes;
//!
//! let builder = StreamsBuilder::new();
//! builder.stream("in", Consumed::with(Serdes::string(), Serdes::string()))
//!     .map_values(|v| v.to_uppercase())
//!     .to("out", Produced::default());
//! let config = StreamsConfig::new()
//!     .set("application.id", "shout")
//!     .set("bootstrap.servers", "127.0.0.1:9092");
//! let mut app = KafkaStreams::new(builder.build()?, config)?;
//! app.start()?;
//! // … until it is time to stop:
//! app.close(Duration::from_secs(30))?;
//! # Ok::<(), kstreams_streams::StreamsError>(())
//! ```

mod activity;
pub(crate) mod assignor;
mod collector;
mod commit_metadata;
mod config;
mod connection;
mod global;
mod global_restore;
mod http;
mod java_security;
mod metrics;
mod partition_group;
mod standby;
mod state_updater;
mod task_manager;
mod thread;
mod thread_metadata;
mod topics;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::{DeserializationHandler, ExceptionHandler, ProcessingGuarantee, StreamsConfig, ValidConfig};
pub use standby::StandbyUpdateListener;
pub use thread_metadata::ThreadMetadata;

use kstreams_state::{RestoreListener, StateDirectory};

use crate::error::{Result, StreamsError};
use crate::query::discovery::Discovery;
use crate::query::local::LocalStores;
use crate::query::{
    key_bytes, KeyQueryMetadata, QueryContext, QueryableStoreType, StoreInfo, StoreQueryParameters, StreamsMetadata,
};
use crate::record::Data;
use crate::runtime::assignor::TaskLayout;
use crate::serde::SharedSerde;
use crate::task::global::GlobalStores;
use crate::topology::Topology;
use global::GlobalStreamThread;
use http::HttpServer;
use metrics::{MeteredRestoreListener, StreamsMetrics};
use thread::{KConsumer, ThreadShared, ThreadSpec, ThreadWork};

/// The life cycle of an application, as in Kafka Streams.
///
/// ```no_run
/// use std::time::Duration;
/// use kstreams_streams::runtime::{KafkaStreams, State};
/// # fn f(mut app: KafkaStreams) -> kstreams_streams::Result<()> {
/// app.set_state_listener(|old, new| println!("{old:?} -> {new:?}"));
/// app.start()?;
/// while app.state() != State::Running {
///     assert_ne!(app.state(), State::Error, "{:?}", app.error());
///     std::thread::sleep(Duration::from_millis(100));
/// }
/// app.close(Duration::from_secs(30))?;
/// assert_eq!(app.state(), State::NotRunning);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Built, not started.
    Created,
    /// Joining the group or moving tasks.
    Rebalancing,
    /// Processing.
    Running,
    /// Closing.
    PendingShutdown,
    /// Closed.
    NotRunning,
    /// A stream thread failed; the application stopped processing.
    Error,
}

type Listener = Box<dyn Fn(State, State) + Send + Sync>;
type UncaughtHandler = Arc<dyn Fn(&StreamsError) -> StreamThreadExceptionResponse + Send + Sync>;

/// What to do when a stream thread fails, as Kafka Streams' `StreamThreadExceptionResponse`.
///
/// ```
/// use kstreams_streams::runtime::{KafkaStreams, StreamThreadExceptionResponse};
/// # fn f(app: &mut KafkaStreams) {
/// app.set_uncaught_exception_handler(|_error| StreamThreadExceptionResponse::ShutdownClient);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamThreadExceptionResponse {
    /// Start a new thread in its place (new consumer and producer); its tasks are restored from
    /// their last committed point.
    ReplaceThread,
    /// Stop every thread of this client; the application goes to [`State::Error`].
    ShutdownClient,
}

/// `timeout` from now; a timeout too long to represent (`Duration::MAX`: wait as long as it takes)
/// is a century.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout).unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Runs a stream thread, replacing it after a failure if the handler says so.
fn run_thread(
    spawn: ThreadSpec,
    first: (KConsumer, Arc<Mutex<ThreadWork>>),
    shared: Arc<Shared>,
    thread_shared: Arc<ThreadShared>,
    handler: Option<UncaughtHandler>,
) {
    let mut current = Some(first);
    while let Some((consumer, work)) = current.take() {
        // A panic that escaped the tasks' guards (in kstreams itself) fails the thread like an
        // error: the handler hears of it, and the state says so.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            thread::run(consumer, work, thread_shared.clone())
        }))
        .unwrap_or_else(|panic| {
            Err(StreamsError::IllegalState(format!(
                "stream thread {} panicked: {}",
                spawn.index,
                crate::error::panic_message(&*panic)
            )))
        });
        let Err(error) = result else { return };
        let response = handler.as_ref().map_or(StreamThreadExceptionResponse::ShutdownClient, |h| h(&error));
        if response == StreamThreadExceptionResponse::ReplaceThread && !thread_shared.shutdown.load(Ordering::Relaxed) {
            tracing::warn!(thread = spawn.index, %error, "stream thread failed; replacing it");
            std::thread::sleep(Duration::from_secs(1));
            match spawn.create() {
                Ok(next) => {
                    current = Some(next);
                    continue;
                }
                Err(e) => tracing::error!(thread = spawn.index, error = %e, "replacing the stream thread failed"),
            }
        }
        if let Ok(mut err) = shared.error.lock() {
            err.get_or_insert(error.to_string());
        }
        thread_shared.shutdown.store(true, Ordering::Relaxed);
        shared.set(State::Error);
    }
}

/// After the global stream thread failed: the application stops in [`State::Error`].
fn global_thread_failed(shared: &Shared, thread_shared: &ThreadShared, error: &StreamsError) {
    if let Ok(mut err) = shared.error.lock() {
        err.get_or_insert(format!("global stream thread: {error}"));
    }
    thread_shared.shutdown.store(true, Ordering::Relaxed);
    shared.set(State::Error);
}

/// A running stream thread and what it is doing.
struct StreamThreadHandle {
    name: String,
    handle: JoinHandle<()>,
    activity: Arc<activity::Activity>,
}

struct Shared {
    state: Mutex<State>,
    state_gauge: prometheus::IntGauge,
    listener: Mutex<Option<Listener>>,
    error: Mutex<Option<String>>,
}

impl Shared {
    fn set(&self, new: State) {
        let old = match self.state.lock() {
            Ok(mut s) => std::mem::replace(&mut *s, new),
            Err(_) => return,
        };
        if old != new {
            tracing::info!(from = ?old, to = ?new, "state transition");
            self.state_gauge.set(new as i64);
            if let Ok(l) = self.listener.lock() {
                if let Some(l) = l.as_ref() {
                    l(old, new);
                }
            }
        }
    }
}

/// A running (or runnable) Kafka Streams application.
///
/// ```no_run
/// use std::time::Duration;
/// use kstreams_streams::dsl::{Consumed, Produced, StreamsBuilder};
/// use kstreams_streams::runtime::{KafkaStreams, StreamsConfig};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("in", Consumed::with(Serdes::string(), Serdes::string()))
///     .map_values(|v: String| v.to_uppercase())
///     .to("out", Produced::default());
/// let config = StreamsConfig::new()
///     .set("application.id", "upper")
///     .set("bootstrap.servers", "127.0.0.1:9092")
///     .set("processing.guarantee", "exactly_once_v2");
/// let mut app = KafkaStreams::new(builder.build().unwrap(), config).unwrap();
/// app.start().unwrap();
/// std::thread::sleep(Duration::from_secs(60));
/// app.close(Duration::from_secs(30)).unwrap();
/// ```
pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: Arc<ValidConfig>,
    shared: Arc<Shared>,
    threads: Vec<StreamThreadHandle>,
    thread_shared: Arc<ThreadShared>,
    /// The global state updater, when the topology has global stores.
    global: Option<GlobalStreamThread>,
    restore_listener: Option<Arc<dyn RestoreListener>>,
    standby_listener: Option<Arc<dyn StandbyUpdateListener>>,
    exception_handler: Option<UncaughtHandler>,
    watcher: Option<JoinHandle<()>>,
    metrics: StreamsMetrics,
    /// The built-in HTTP server (metrics, health, queries), when an address is configured.
    http: Option<HttpServer>,
    /// The local copies of the tasks' stores, as the stream threads open and close them.
    local: Arc<LocalStores>,
    /// What interactive queries read; set by `start`.
    query: Option<Arc<QueryContext>>,
    /// The locked `<state.dir>/<application.id>` folder, held while the application runs.
    state_dir: Option<StateDirectory>,
    /// What each stream thread runs, published by its task manager.
    thread_metadata: Vec<thread_metadata::ThreadMetadataSlot>,
}

impl KafkaStreams {
    /// Checks the configuration and the topology. Nothing connects to Kafka yet.
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let config = config.validate()?;
        topology.validate()?;
        let metrics = StreamsMetrics::new()?;
        Ok(KafkaStreams {
            topology: Arc::new(topology),
            config: Arc::new(config),
            shared: Arc::new(Shared {
                state: Mutex::new(State::Created),
                state_gauge: metrics.state.clone(),
                listener: Mutex::new(None),
                error: Mutex::new(None),
            }),
            threads: Vec::new(),
            thread_shared: Arc::new(ThreadShared { shutdown: Default::default(), close_deadline: Default::default() }),
            global: None,
            restore_listener: None,
            standby_listener: None,
            exception_handler: None,
            watcher: None,
            metrics,
            http: None,
            local: Arc::new(LocalStores::default()),
            query: None,
            state_dir: None,
            thread_metadata: Vec::new(),
        })
    }

    /// Calls `listener(old, new)` on every state change.
    pub fn set_state_listener(&self, listener: impl Fn(State, State) + Send + Sync + 'static) {
        if let Ok(mut l) = self.shared.listener.lock() {
            *l = Some(Box::new(listener));
        }
    }

    /// Calls `listener` as stores restore from their changelogs (Kafka Streams'
    /// `setGlobalStateRestoreListener`). Set it before [`start`](Self::start).
    ///
    /// ```no_run
    /// # use kstreams_streams::runtime::KafkaStreams;
    /// use std::sync::Arc;
    /// use kstreams_state::RestoreListener;
    ///
    /// struct Progress;
    /// impl RestoreListener for Progress {
    ///     fn on_restore_end(&self, topic: &str, partition: i32, store: &str, total: u64) {
    ///         println!("{store}: {total} records restored from {topic}-{partition}");
    ///     }
    /// }
    /// # fn f(app: &mut KafkaStreams) {
    /// app.set_global_state_restore_listener(Arc::new(Progress));
    /// # }
    /// ```
    pub fn set_global_state_restore_listener(&mut self, listener: Arc<dyn RestoreListener>) {
        self.restore_listener = Some(listener);
    }

    /// Called as standby tasks load their changelogs (Kafka Streams' `setStandbyUpdateListener`).
    /// Set it before [`start`](Self::start).
    pub fn set_standby_update_listener(&mut self, listener: Arc<dyn StandbyUpdateListener>) {
        self.standby_listener = Some(listener);
    }

    /// The application's metrics (see the table in the `runtime` module's metrics docs), for an
    /// exporter of your own; `metrics.http.address` serves them over HTTP instead.
    pub fn metrics_registry(&self) -> &prometheus::Registry {
        &self.metrics.registry
    }

    /// Where the built-in HTTP server (`/metrics`, `/health`, `/stores`) listens, once started with
    /// `metrics.http.address` or `application.server` set.
    pub fn metrics_address(&self) -> Option<std::net::SocketAddr> {
        self.http.as_ref().map(HttpServer::address)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.state.lock().map(|s| *s).unwrap_or(State::Error)
    }

    /// Why the application went to [`State::Error`].
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// Creates the internal topics, restores the global stores (returning once they hold their
    /// topics up to the end), starts the global stream thread, then the stream threads.
    pub fn start(&mut self) -> Result<()> {
        if self.state() != State::Created {
            return Err(StreamsError::IllegalState("start() may be called once, on a created application".into()));
        }
        let started = self.start_inner();
        if let Err(e) = &started {
            // `state()` and `error()` tell the truth too; `close` stops what did start.
            if let Ok(mut err) = self.shared.error.lock() {
                err.get_or_insert(e.to_string());
            }
            self.shared.set(State::Error);
        }
        started
    }

    fn start_inner(&mut self) -> Result<()> {
        let state_dir = StateDirectory::open(&self.config.state_dir, &self.config.application_id)
            .map_err(|e| StreamsError::config("state.dir", e.to_string()))?;
        let partitions = topics::prepare(&self.topology, &self.config)?;
        let process_id = process_id(&self.config)?;
        self.state_dir = Some(state_dir);
        let layout = Arc::new(self.task_layout(&partitions));
        let query = Arc::new(self.query_context(&partitions, layout.clone())?);
        self.query = Some(query.clone());
        let address = match (&self.config.metrics_http_address, &self.config.application_server) {
            (Some(address), _) => Some((address.clone(), "metrics.http.address")),
            (None, Some(server)) => Some((server.to_string(), "application.server")),
            (None, None) => None,
        };
        if let Some((address, setting)) = address {
            self.http = Some(HttpServer::start(&address, setting, self.metrics.clone(), query)?);
        }
        let restore_listener: Arc<dyn RestoreListener> = Arc::new(MeteredRestoreListener {
            remaining: self.metrics.restore_remaining.clone(),
            user: self.restore_listener.clone(),
        });
        self.shared.set(State::Rebalancing);
        let global_stores = self.start_global(&partitions, restore_listener.clone())?;
        for entry in global_stores.entries() {
            let view: Box<dyn kstreams_state::KeyValueBytesStore> = Box::new(entry.store.read_only());
            self.local
                .add_global(&entry.name, kstreams_state::layers::SharedStore::KeyValue(Arc::new(Mutex::new(view))));
        }
        let rebalancing: Vec<Arc<AtomicBool>> =
            (0..self.config.num_stream_threads).map(|_| Arc::new(AtomicBool::new(true))).collect();
        let dir_locks = Arc::new(task_manager::TaskDirLocks::default());
        for (index, flag) in rebalancing.iter().enumerate() {
            let slot: thread_metadata::ThreadMetadataSlot = Arc::new(Mutex::new(ThreadMetadata {
                thread_name: format!("{}-StreamThread-{}", self.config.application_id, index + 1),
                ..ThreadMetadata::default()
            }));
            self.thread_metadata.push(slot.clone());
            let activity = Arc::new(activity::Activity::default());
            let spawn = ThreadSpec {
                index,
                activity: activity.clone(),
                process_id: process_id.clone(),
                layout: layout.clone(),
                metadata: slot.clone(),
                dir_locks: dir_locks.clone(),
                config: self.config.clone(),
                topology: self.topology.clone(),
                partitions: partitions.clone(),
                restore_listener: restore_listener.clone(),
                standby_listener: self.standby_listener.clone(),
                metrics: self.metrics.clone(),
                rebalancing: flag.clone(),
                global: global_stores.clone(),
                local: self.local.clone(),
                endpoint: self.config.application_server.clone(),
            };
            let first = spawn.create()?;
            let (shared, thread_shared) = (self.shared.clone(), self.thread_shared.clone());
            let handler = self.exception_handler.clone();
            let name = format!("{}-StreamThread-{}", self.config.application_id, index + 1);
            let handle = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || run_thread(spawn, first, shared, thread_shared, handler))
                .map_err(|e| StreamsError::IllegalState(format!("cannot start a stream thread: {e}")))?;
            self.threads.push(StreamThreadHandle { name, handle, activity });
        }
        // Running once no thread is in a rebalance.
        let (shared, thread_shared) = (self.shared.clone(), self.thread_shared.clone());
        self.watcher = Some(std::thread::spawn(move || {
            while !thread_shared.shutdown.load(Ordering::Relaxed) {
                let any = rebalancing.iter().any(|r| r.load(Ordering::Relaxed));
                let state = shared.state.lock().map(|s| *s).unwrap_or(State::Error);
                if matches!(state, State::Rebalancing | State::Running) {
                    shared.set(if any { State::Rebalancing } else { State::Running });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
        Ok(())
    }

    /// Restores the global stores and starts the global stream thread (if the topology has global
    /// stores); returns the stores for the stream threads' tasks.
    fn start_global(
        &mut self,
        partitions: &HashMap<String, i32>,
        restore_listener: Arc<dyn RestoreListener>,
    ) -> Result<Arc<GlobalStores>> {
        let (shared, thread_shared) = (self.shared.clone(), self.thread_shared.clone());
        let on_error = move |error: StreamsError| global_thread_failed(&shared, &thread_shared, &error);
        match GlobalStreamThread::start(&self.topology, &self.config, partitions, restore_listener, on_error) {
            Ok(global) => {
                let stores = global.as_ref().map(GlobalStreamThread::stores).unwrap_or_default();
                self.global = global;
                Ok(stores)
            }
            Err(error) => {
                tracing::error!(%error, "restoring the global stores failed");
                global_thread_failed(&self.shared, &self.thread_shared, &error);
                Err(error)
            }
        }
    }

    /// Decides what happens when a stream thread fails (Kafka Streams'
    /// `setUncaughtExceptionHandler`): replace the thread, or shut this client down (the default).
    /// Set it before [`start`](Self::start).
    ///
    /// ```no_run
    /// # use kstreams_streams::runtime::{KafkaStreams, StreamThreadExceptionResponse};
    /// # fn f(app: &mut KafkaStreams) {
    /// app.set_uncaught_exception_handler(|error| {
    ///     eprintln!("stream thread failed: {error}; starting a new one");
    ///     StreamThreadExceptionResponse::ReplaceThread
    /// });
    /// # }
    /// ```
    pub fn set_uncaught_exception_handler(
        &mut self,
        handler: impl Fn(&StreamsError) -> StreamThreadExceptionResponse + Send + Sync + 'static,
    ) {
        self.exception_handler = Some(Arc::new(handler));
    }

    /// Stops the threads (each commits and closes its tasks) and waits up to `timeout`.
    pub fn close(&mut self, timeout: Duration) -> Result<()> {
        let was_error = self.state() == State::Error;
        if !was_error {
            self.shared.set(State::PendingShutdown);
        }
        let deadline = deadline_after(timeout);
        if let Ok(mut d) = self.thread_shared.close_deadline.lock() {
            *d = Some(deadline);
        }
        self.thread_shared.shutdown.store(true, Ordering::Relaxed);
        while let Some(thread) = self.threads.first() {
            while !thread.handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !thread.handle.is_finished() {
                let busy: Vec<String> = self
                    .threads
                    .iter()
                    .filter(|t| !t.handle.is_finished())
                    .map(|t| format!("{} is {}", t.name, t.activity.get()))
                    .collect();
                return Err(StreamsError::IllegalState(format!(
                    "stream threads did not stop within {timeout:?}: {}",
                    busy.join("; ")
                )));
            }
            let _ = self.threads.remove(0).handle.join();
        }
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        // Last: the stream threads' tasks read the global stores until they stop.
        if let Some(global) = self.global.take() {
            global.close(deadline)?;
        }
        self.state_dir = None;
        self.http = None;
        if !was_error {
            self.shared.set(State::NotRunning);
        }
        Ok(())
    }

    /// Every task of the topology with its input partitions, for the placement.
    fn task_layout(&self, partitions: &HashMap<String, i32>) -> TaskLayout {
        let internal: std::collections::HashSet<String> =
            self.topology.internal_topics().into_iter().map(|t| t.name).collect();
        let app = &self.config.application_id;
        let full = |t: &str| if internal.contains(t) { format!("{app}-{t}") } else { t.to_string() };
        let topology = &self.topology;
        TaskLayout::new(&topology.subtopologies(), full, partitions, |sub| standby::has_standby_stores(topology, sub))
    }

    /// The configuration in force.
    pub fn config(&self) -> &ValidConfig {
        &self.config
    }

    /// What queries need: every store of the topology's tasks with its partitions and serdes, the
    /// local copies, and (with `application.server`) the group's assignment.
    fn query_context(&self, partitions: &HashMap<String, i32>, layout: Arc<TaskLayout>) -> Result<QueryContext> {
        let internal: std::collections::HashSet<String> =
            self.topology.internal_topics().into_iter().map(|t| t.name).collect();
        let app = &self.config.application_id;
        let full = |t: &str| if internal.contains(t) { format!("{app}-{t}") } else { t.to_string() };
        let mut stores = HashMap::new();
        for sub in self.topology.subtopologies() {
            let source_topics: Vec<String> = sub.source_topics.iter().map(|t| full(t)).collect();
            let count = source_topics.iter().filter_map(|t| partitions.get(t)).copied().max().unwrap_or(1);
            for (builder, _) in self.topology.stores.iter().filter(|(b, _)| sub.stores.contains(&b.spec().name)) {
                let spec = builder.spec();
                stores.insert(
                    spec.name.clone(),
                    StoreInfo {
                        kind: spec.kind.clone(),
                        changelog_topic: spec.changelog_topic(app),
                        source_topics: source_topics.clone(),
                        partitions: count,
                        serdes: builder.serdes(),
                        global: false,
                    },
                );
            }
        }
        for def in &self.topology.global {
            let info = StoreInfo {
                kind: def.store.spec().kind.clone(),
                // A global store's serdes are told its topic, as the tasks' views are.
                changelog_topic: def.topic.clone(),
                source_topics: vec![def.topic.clone()],
                partitions: 1,
                serdes: def.store.serdes(),
                global: true,
            };
            stores.insert(def.name().to_string(), info);
        }
        let discovery = match &self.config.application_server {
            Some(_) => Some(Discovery::new(
                self.config.client_config("consumer."),
                app,
                layout,
                self.config.num_standby_replicas,
            )?),
            None => None,
        };
        let shared = self.shared.clone();
        Ok(QueryContext {
            stores,
            local: self.local.clone(),
            discovery,
            endpoint: self.config.application_server.clone(),
            state: Arc::new(move || shared.state.lock().map(|s| *s).unwrap_or(State::Error)),
        })
    }

    fn query_context_or_err(&self, store: &str) -> Result<&Arc<QueryContext>> {
        self.query.as_ref().ok_or_else(|| StreamsError::InvalidStateStore {
            store: store.to_string(),
            reason: "the application has not started yet".into(),
            retryable: true,
        })
    }

    /// A read-only view over this instance's copies of a store (Kafka Streams' `store`).
    ///
    /// ```no_run
    /// use kstreams_streams::query::{QueryableStoreTypes, StoreQueryParameters};
    /// # fn f(app: &kstreams_streams::runtime::KafkaStreams) -> kstreams_streams::Result<()> {
    /// let counts = app.store(StoreQueryParameters::from_store_name("counts", QueryableStoreTypes::key_value::<String, i64>()))?;
    /// println!("{:?}", counts.get(&"apple".to_string())?);
    /// # Ok(()) }
    /// ```
    pub fn store<T: QueryableStoreType>(&self, params: StoreQueryParameters<T>) -> Result<T::Store> {
        let ctx = self.query_context_or_err(params.store_name())?.clone();
        params.open(ctx)
    }

    /// The instance that hosts `key` of `store` (Kafka Streams' `queryMetadataForKey`). Needs
    /// `application.server`; fails with a retryable error while the group rebalances.
    ///
    /// ```no_run
    /// use kstreams_streams::serde::Serdes;
    /// # fn f(app: &kstreams_streams::runtime::KafkaStreams) -> kstreams_streams::Result<()> {
    /// let owner = app.query_metadata_for_key("counts", &"apple".to_string(), &Serdes::string())?;
    /// println!("ask http://{}/stores/counts/keys/apple", owner.active_host);
    /// # Ok(()) }
    /// ```
    pub fn query_metadata_for_key<K: Data>(
        &self,
        store: &str,
        key: &K,
        serializer: &SharedSerde<K>,
    ) -> Result<KeyQueryMetadata> {
        let ctx = self.query_context_or_err(store)?;
        let bytes = key_bytes(ctx.info(store)?, store, key, serializer)?;
        ctx.metadata_for_key_bytes(store, &bytes)
    }

    /// The instances that host `store` (Kafka Streams' `streamsMetadataForStore`).
    pub fn streams_metadata_for_store(&self, store: &str) -> Result<Vec<StreamsMetadata>> {
        let ctx = self.query_context_or_err(store)?;
        ctx.info(store)?;
        Ok(ctx.all_metadata()?.into_iter().filter(|m| m.state_store_names.contains(store)).collect())
    }

    /// What each of this instance's stream threads runs, active and standby (Kafka Streams'
    /// `metadataForLocalThreads`).
    pub fn metadata_for_local_threads(&self) -> Vec<ThreadMetadata> {
        self.thread_metadata.iter().filter_map(|slot| slot.lock().ok().map(|m| m.clone())).collect()
    }

    /// Every instance of the application with what it hosts (Kafka Streams' `metadataForAllStreamsClients`).
    pub fn metadata_for_all_streams_clients(&self) -> Result<Vec<StreamsMetadata>> {
        self.query_context_or_err("*")?.all_metadata()
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.threads.is_empty() || self.global.is_some() {
            let _ = self.close(Duration::from_secs(30));
        }
    }
}

/// This process's id, kept in `state.dir` so that a restart reuses its `transactional.id`s and
/// fences its predecessor at once.
fn process_id(config: &ValidConfig) -> Result<String> {
    let dir = config.state_dir.join(&config.application_id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| StreamsError::config("state.dir", format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join("kafka-streams-process-metadata");
    if let Ok(id) = std::fs::read_to_string(&file) {
        let id = id.trim().to_string();
        if !id.is_empty() && id.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Ok(id);
        }
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    let id = format!("{:016x}-{:08x}", nanos as u64, std::process::id());
    std::fs::write(&file, &id)
        .map_err(|e| StreamsError::config("state.dir", format!("cannot write {}: {e}", file.display())))?;
    Ok(id)
}
