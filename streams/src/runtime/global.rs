//! The global state updater: the `GlobalStreamThread`.
//!
//! At [`KafkaStreams::start`](super::KafkaStreams::start), before any stream thread starts, every
//! global store is opened under `<state.dir>/<application.id>/global` and restored to the end of
//! every partition of its topic (see the `global_restore` module); `start` returns
//! only then, so the first stream record already sees the whole table. The thread then keeps the
//! stores up to date: one consumer, assigned every partition of every global topic (never part of
//! the group, never committing), reads on from where restoration stopped (`read_committed` under
//! `exactly_once_v2`) and applies each record to its store, while stream threads read the stores
//! concurrently. Every `commit.interval.ms` (at most once a second) with new records, the stores
//! are flushed and the checkpoint written, and once more when the thread stops.
//!
//! A record that cannot be deserialized, during restoration as afterwards, goes to
//! `default.deserialization.exception.handler` as in a stream thread: `log_and_fail` stops the
//! application, `log_and_continue` logs and skips it, `dead_letter_queue` writes it to the
//! dead-letter topic (with the `__streams.errors.*` headers; the checkpoint never moves past a
//! dead-letter record that is not acknowledged) and skips it. Skipped records are counted with
//! those without a key or with a negative timestamp (from the `Consumed`'s extractor). A failure
//! of this thread stops the application in [`State::Error`](super::State::Error).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::BaseConsumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::Message;

use kstreams_state::rocksdb::RocksDbResources;
use kstreams_state::task_state::OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT;
use kstreams_state::RestoreListener;

use crate::error::{Result, StreamsError};
use crate::header::{Header, Headers};
use crate::processor::node::ConsumedBytes;
use crate::runtime::config::{DeserializationHandler, ProcessingGuarantee, ValidConfig};
use crate::runtime::global_restore::{self, Offsets};
use crate::runtime::partition_group::Pending;
use crate::runtime::thread::send_to_dlq;
use crate::task::global::{GlobalStores, GlobalUpdate};
use crate::topology::Topology;

/// How long the dead-letter records of a checkpoint may take to be acknowledged.
const DEAD_LETTER_FLUSH_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest time between two looks at whether the global stores need a checkpoint.
const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// The running global state updater, with the stores it owns.
pub(crate) struct GlobalStreamThread {
    stores: Arc<GlobalStores>,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

impl GlobalStreamThread {
    /// Opens and restores every global store of `topology`, then starts the thread; `None` when
    /// the topology has none. `on_error` is called, on the thread, if it fails.
    pub(crate) fn start(
        topology: &Topology,
        config: &ValidConfig,
        partitions: &HashMap<String, i32>,
        listener: Arc<dyn RestoreListener>,
        on_error: impl FnOnce(StreamsError) + Send + 'static,
    ) -> Result<Option<GlobalStreamThread>> {
        if topology.global.is_empty() {
            return Ok(None);
        }
        let dir = config.state_dir.join(&config.application_id).join("global");
        let checkpoint = global_restore::load(topology, &dir)?;
        let stores = Arc::new(GlobalStores::open(topology, &dir, &RocksDbResources::shared_default())?);
        let consumer = create_consumer(config)?;
        let dead_letters = match &config.deserialization_handler {
            DeserializationHandler::DeadLetterQueue { .. } => Some(config.client_config("producer.").create()?),
            _ => None,
        };
        let mut state = UpdaterState {
            stores: stores.clone(),
            dir,
            offsets: Offsets::new(),
            handler: config.deserialization_handler.clone(),
            dead_letters,
            checkpointed: Offsets::new(),
        };
        state.offsets =
            global_restore::restore_all(&consumer, &stores, &checkpoint, partitions, listener.as_ref(), |m| {
                state.apply(m)
            })?;
        state.flush_dead_letters()?;
        global_restore::write_checkpoint(&stores, &state.dir, &state.offsets)?;
        state.checkpointed = state.offsets.clone();
        let updater = Updater {
            consumer,
            checkpoint_interval: config.commit_interval.max(MIN_CHECKPOINT_INTERVAL),
            poll: config.poll,
            state,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name(format!("{}-GlobalStreamThread", config.application_id))
            .spawn(move || {
                // A panic (in a serde or in kstreams) fails the thread like an error.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| updater.run(&flag)))
                    .unwrap_or_else(|panic| {
                        Err(StreamsError::IllegalState(format!(
                            "the global stream thread panicked: {}",
                            crate::error::panic_message(&*panic)
                        )))
                    });
                if let Err(error) = result {
                    tracing::error!(%error, "global stream thread failed");
                    on_error(error);
                }
            })
            .map_err(|e| StreamsError::IllegalState(format!("cannot start the global stream thread: {e}")))?;
        tracing::info!(stores = stores.entries().len(), "global stores restored; global stream thread started");
        Ok(Some(GlobalStreamThread { stores, stop, handle }))
    }

    /// The global stores, for the stream threads' tasks.
    pub(crate) fn stores(&self) -> Arc<GlobalStores> {
        self.stores.clone()
    }

    /// Stops the thread (it writes a last checkpoint) and closes the stores. Call it once the stream
    /// threads have stopped: until then their tasks may read the stores. Fails if the thread does
    /// not stop before `deadline`.
    pub(crate) fn close(self, deadline: Instant) -> Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        while !self.handle.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if !self.handle.is_finished() {
            return Err(StreamsError::IllegalState("the global stream thread did not stop in time".into()));
        }
        let _ = self.handle.join();
        if let Err(e) = self.stores.close() {
            tracing::warn!(error = %e, "closing the global stores failed");
        }
        Ok(())
    }
}

/// The global consumer: restoration assigns it every partition of the global topics; it never
/// joins a group nor commits.
fn create_consumer(config: &ValidConfig) -> Result<BaseConsumer> {
    let mut client = config.client_config("global.consumer.");
    let eos = config.guarantee == ProcessingGuarantee::ExactlyOnceV2;
    client
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("isolation.level", if eos { "read_committed" } else { "read_uncommitted" });
    // librdkafka's `assign` wants a group id, though this consumer never joins the group.
    if client.get("group.id").is_none() {
        client.set("group.id", "kstreams-global-consumer");
    }
    Ok(client.create()?)
}

/// The thread's work: apply what the consumer reads, checkpoint now and then.
struct Updater {
    consumer: BaseConsumer,
    checkpoint_interval: Duration,
    poll: Duration,
    state: UpdaterState,
}

/// The stores and how far they are.
struct UpdaterState {
    stores: Arc<GlobalStores>,
    dir: PathBuf,
    offsets: Offsets,
    handler: DeserializationHandler,
    /// Under `dead_letter_queue`: the producer of the dead-letter records.
    dead_letters: Option<BaseProducer>,
    /// The offsets of the last checkpoint.
    checkpointed: Offsets,
}

impl Updater {
    fn run(mut self, stop: &AtomicBool) -> Result<()> {
        let mut last_checkpoint = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let mut timeout = self.poll;
            for _ in 0..1000 {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Ok(message)) => {
                        self.state.apply(&message)?;
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => tracing::warn!(error = %e, "global consumer error"),
                }
                timeout = Duration::ZERO;
            }
            if last_checkpoint.elapsed() >= self.checkpoint_interval {
                self.state.checkpoint(false)?;
                last_checkpoint = Instant::now();
            }
        }
        self.state.checkpoint(true)
    }
}

/// Whether the global stores need a checkpoint: the offsets moved since the last one by more than
/// [`OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`] in total (a new partition counts from 0), or at all on
/// close.
fn checkpoint_due(offsets: &Offsets, checkpointed: &Offsets, close: bool) -> bool {
    if offsets == checkpointed {
        return false;
    }
    let moved: i64 = offsets.iter().map(|(tp, o)| o - checkpointed.get(tp).copied().unwrap_or(0)).sum();
    close || moved > OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT
}

impl UpdaterState {
    /// Applies one record of a global topic (during restoration as afterwards); a record that
    /// cannot be deserialized goes to the deserialization exception handler, as in a stream
    /// thread. Returns whether the record was stored.
    fn apply(&mut self, m: &BorrowedMessage<'_>) -> Result<bool> {
        let headers: Headers = m
            .headers()
            .map(|hs| {
                hs.iter().map(|h| Header { key: h.key.to_string(), value: h.value.map(<[u8]>::to_vec) }).collect()
            })
            .unwrap_or_default();
        let bytes = ConsumedBytes {
            topic: m.topic(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key(),
            value: m.payload(),
            timestamp: m.timestamp().to_millis().unwrap_or(-1),
            headers: headers.clone(),
        };
        let stored = match self.stores.update(bytes) {
            Ok(outcome) => matches!(outcome, GlobalUpdate::Applied { .. }),
            Err(e @ StreamsError::Deserialization { .. }) => {
                match &self.handler {
                    DeserializationHandler::LogAndFail => {
                        tracing::error!(error = %e, "a record of a global topic cannot be deserialized; stopping \
                            (default.deserialization.exception.handler=log_and_fail)");
                        return Err(e);
                    }
                    DeserializationHandler::LogAndContinue => {
                        tracing::warn!(error = %e, "skipping a record of a global topic that cannot be deserialized");
                    }
                    DeserializationHandler::DeadLetterQueue { topic: dlq } => {
                        tracing::warn!(error = %e, dead_letter_topic = %dlq,
                            "record of a global topic sent to the dead-letter topic");
                        let producer = self.dead_letters.as_ref().ok_or_else(|| {
                            StreamsError::IllegalState("the global thread has no dead-letter producer".into())
                        })?;
                        let pending = Pending {
                            topic: m.topic().into(),
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                            timestamp: m.timestamp().to_millis().unwrap_or(-1),
                            headers,
                            decoded: None,
                        };
                        send_to_dlq(producer, dlq, &pending, &e)?;
                        producer.poll(Duration::ZERO);
                    }
                }
                self.stores.count_dropped();
                false
            }
            Err(e) => return Err(e),
        };
        self.offsets.insert((m.topic().to_string(), m.partition()), m.offset() + 1);
        Ok(stored)
    }

    /// Waits until the dead-letter records sent so far are acknowledged (before a checkpoint
    /// moves past them).
    fn flush_dead_letters(&self) -> Result<()> {
        if let Some(producer) = &self.dead_letters {
            producer.flush(DEAD_LETTER_FLUSH_TIMEOUT)?;
        }
        Ok(())
    }

    /// Flushes the stores and writes the checkpoint when the offsets moved since the last one: by more
    /// than Kafka Streams' threshold of records, or at all when `close`-ing (each checkpoint flushes
    /// the RocksDB memtables, as for stream tasks).
    fn checkpoint(&mut self, close: bool) -> Result<()> {
        if !checkpoint_due(&self.offsets, &self.checkpointed, close) {
            return Ok(());
        }
        self.flush_dead_letters()?;
        global_restore::write_checkpoint(&self.stores, &self.dir, &self.offsets)?;
        self.checkpointed = self.offsets.clone();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
        entries.iter().map(|(t, p, o)| ((t.to_string(), *p), *o)).collect()
    }

    #[test]
    fn global_checkpoints_follow_the_offset_delta_threshold() {
        let last = offsets(&[("rates", 0, 100), ("rates", 1, 100)]);
        assert!(!checkpoint_due(&last, &last, true), "nothing moved: not even on close");
        let little = offsets(&[("rates", 0, 5_100), ("rates", 1, 5_100)]);
        assert!(!checkpoint_due(&little, &last, false), "exactly 10,000 in total is not enough");
        assert!(checkpoint_due(&little, &last, true), "a close checkpoints whatever moved");
        let more = offsets(&[("rates", 0, 5_100), ("rates", 1, 5_101)]);
        assert!(checkpoint_due(&more, &last, false), "10,001 in total");
        let new_partition = offsets(&[("rates", 0, 100), ("rates", 1, 100), ("rates", 2, 10_001)]);
        assert!(checkpoint_due(&new_partition, &last, false), "a partition missing from the checkpoint counts from 0");
    }
}
