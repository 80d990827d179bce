//! The runtime: [`KafkaStreams`] runs a topology against a Kafka cluster.
//!
//! Every instance started with the same `application.id` joins one consumer group; the group's range
//! assignor spreads the input partitions over the instances' stream threads, and each thread runs a
//! task per (sub-topology, partition) it owns. Under `exactly_once_v2` each thread's output, changelog
//! writes and input offsets commit in one Kafka transaction.
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

mod collector;
mod config;
mod restore;
mod thread;
mod topics;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use config::{DeserializationHandler, ProcessingGuarantee, StreamsConfig, ValidConfig};

use crate::error::{Result, StreamsError};
use crate::topology::Topology;
use thread::ThreadShared;

/// The life cycle of an application, as in Kafka Streams.
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

struct Shared {
    state: Mutex<State>,
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
            if let Ok(l) = self.listener.lock() {
                if let Some(l) = l.as_ref() {
                    l(old, new);
                }
            }
        }
    }
}

/// A running (or runnable) Kafka Streams application.
pub struct KafkaStreams {
    topology: Arc<Topology>,
    config: Arc<ValidConfig>,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    thread_shared: Arc<ThreadShared>,
}

impl KafkaStreams {
    /// Checks the configuration and the topology. Nothing connects to Kafka yet.
    pub fn new(topology: Topology, config: StreamsConfig) -> Result<Self> {
        let config = config.validate()?;
        topology.validate()?;
        Ok(KafkaStreams {
            topology: Arc::new(topology),
            config: Arc::new(config),
            shared: Arc::new(Shared {
                state: Mutex::new(State::Created),
                listener: Mutex::new(None),
                error: Mutex::new(None),
            }),
            threads: Vec::new(),
            thread_shared: Arc::new(ThreadShared { shutdown: Default::default() }),
        })
    }

    /// Calls `listener(old, new)` on every state change.
    pub fn set_state_listener(&self, listener: impl Fn(State, State) + Send + Sync + 'static) {
        if let Ok(mut l) = self.shared.listener.lock() {
            *l = Some(Box::new(listener));
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.state.lock().map(|s| *s).unwrap_or(State::Error)
    }

    /// Why the application went to [`State::Error`].
    pub fn error(&self) -> Option<String> {
        self.shared.error.lock().ok().and_then(|e| e.clone())
    }

    /// Creates the internal topics, then starts the stream threads.
    pub fn start(&mut self) -> Result<()> {
        if self.state() != State::Created {
            return Err(StreamsError::IllegalState("start() may be called once, on a created application".into()));
        }
        let partitions = topics::prepare(&self.topology, &self.config)?;
        let process_id = process_id(&self.config)?;
        self.shared.set(State::Rebalancing);
        for index in 0..self.config.num_stream_threads {
            let (consumer, work) =
                thread::create(index, &process_id, self.config.clone(), self.topology.clone(), partitions.clone())?;
            let (shared, thread_shared) = (self.shared.clone(), self.thread_shared.clone());
            let running = work.clone();
            let handle = std::thread::Builder::new()
                .name(format!("{}-StreamThread-{}", self.config.application_id, index + 1))
                .spawn(move || {
                    let watcher = std::thread::spawn({
                        let (shared, thread_shared, running) = (shared.clone(), thread_shared.clone(), running.clone());
                        move || {
                            while !thread_shared.shutdown.load(Ordering::Relaxed) {
                                let rebalancing = running.lock().map(|w| w.rebalancing).unwrap_or(false);
                                let state = shared.state.lock().map(|s| *s).unwrap_or(State::Error);
                                if matches!(state, State::Rebalancing | State::Running) {
                                    shared.set(if rebalancing { State::Rebalancing } else { State::Running });
                                }
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    });
                    if let Err(e) = thread::run(consumer, work, thread_shared.clone()) {
                        if let Ok(mut err) = shared.error.lock() {
                            err.get_or_insert(e.to_string());
                        }
                        // Kafka Streams' default uncaught-error policy: shut down the client.
                        thread_shared.shutdown.store(true, Ordering::Relaxed);
                        shared.set(State::Error);
                    }
                    let _ = watcher.join();
                })
                .map_err(|e| StreamsError::IllegalState(format!("cannot start a stream thread: {e}")))?;
            self.threads.push(handle);
        }
        Ok(())
    }

    /// Stops the threads (each commits and closes its tasks) and waits up to `timeout`.
    pub fn close(&mut self, timeout: Duration) -> Result<()> {
        let was_error = self.state() == State::Error;
        if !was_error {
            self.shared.set(State::PendingShutdown);
        }
        self.thread_shared.shutdown.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        for handle in self.threads.drain(..) {
            while !handle.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if handle.is_finished() {
                let _ = handle.join();
            } else {
                return Err(StreamsError::IllegalState(format!("stream threads did not stop within {timeout:?}")));
            }
        }
        if !was_error {
            self.shared.set(State::NotRunning);
        }
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &ValidConfig {
        &self.config
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
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
