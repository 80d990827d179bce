//! Global stores on disk: bringing them up to the end of their topics at start, and their
//! checkpoint.
//!
//! Layout, as in Kafka Streams:
//!
//! ```text
//! <state.dir>/<application.id>/global/.checkpoint         next offset of each global topic partition
//! <state.dir>/<application.id>/global/rocksdb/<store>/
//! ```
//!
//! A store that kept its data restores each partition of its topic from the checkpointed offset,
//! so only what it missed is read; a store that starts empty (new, in memory, wiped) restores from
//! the beginning. A RocksDB store with data but no checkpoint of its topic cannot tell what it
//! holds, so it is wiped first (with a log line saying why). Re-applying records after a
//! checkpoint is harmless: a global store keeps the latest value per key, in topic order.
//!
//! Restoration reads with the global stream thread's consumer and applies each record as the
//! thread does afterwards, so that a record that cannot be deserialized meets
//! `default.deserialization.exception.handler` (and a timestamp extractor sees every record).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;

use kstreams_state::state_dir::load_checkpoint;
use kstreams_state::{Backend, Checkpoint, RestoreListener, StateError};

use crate::error::{Result, StreamsError};
use crate::task::global::{store_dir, GlobalStores};
use crate::topology::Topology;

/// How long fetching a partition's offsets may take.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(30);

/// The next offset of each (topic, partition) of the global topics.
pub(crate) type Offsets = BTreeMap<(String, i32), i64>;

/// Reads the checkpoint of `dir` (a corrupt one wipes every global store) and wipes the RocksDB
/// stores it knows nothing of, so that they restore from the beginning.
pub(crate) fn load(topology: &Topology, dir: &Path) -> Result<Checkpoint> {
    let checkpoint = load_checkpoint(dir)?;
    for def in &topology.global {
        let path = store_dir(dir, def.name());
        let known = checkpoint.offsets().any(|(topic, _, _)| topic == def.topic);
        if def.store.spec().backend == Backend::RocksDb && !known && path.exists() {
            tracing::warn!(store = def.name(), path = %path.display(),
                "global store has local data but no checkpoint of its topic; wiping it to restore it from the \
                 beginning of its topic");
            std::fs::remove_dir_all(&path).map_err(|source| StateError::Io { path: path.clone(), source })?;
        }
    }
    Ok(checkpoint)
}

/// How many restored records of a partition make a batch for the restore listener.
const BATCH_REPORT: u64 = 10_000;

/// The restoration of one partition of a global topic.
struct Progress {
    store: String,
    /// The end offset to reach.
    end: i64,
    /// Records stored so far.
    restored: u64,
    /// Records reported to the listener so far.
    reported: u64,
}

impl Progress {
    /// Tells the listener of the records stored since the last report.
    fn report(&mut self, listener: &dyn RestoreListener, tp: &(String, i32), batch_end_offset: i64) {
        if self.restored > self.reported {
            listener.on_batch_restored(&tp.0, tp.1, &self.store, batch_end_offset, self.restored - self.reported);
            self.reported = self.restored;
        }
    }
}

/// How long restoration may go without any progress before it fails.
const RESTORE_STALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Restores every partition of every global store's topic up to its end offset with `consumer`:
/// from `checkpoint` for stores that kept their data, else from the beginning. Each record goes
/// through `apply`, as the global stream thread applies it afterwards (deserialization check,
/// timestamp extractor, deserialization exception handler): Kafka Streams' global restoration
/// re-processes records the same way. `apply` says whether the record was stored. The consumer is
/// left assigned every partition at the returned next offsets, for the global stream thread to
/// read on.
pub(crate) fn restore_all(
    consumer: &BaseConsumer,
    stores: &GlobalStores,
    checkpoint: &Checkpoint,
    partitions: &HashMap<String, i32>,
    listener: &dyn RestoreListener,
    mut apply: impl FnMut(&BorrowedMessage<'_>) -> Result<bool>,
) -> Result<Offsets> {
    let mut offsets = Offsets::new();
    let mut pending: BTreeMap<(String, i32), Progress> = BTreeMap::new();
    let mut assignment = TopicPartitionList::new();
    for entry in stores.entries() {
        let count = partitions.get(&entry.topic).copied().ok_or_else(|| {
            StreamsError::Topology(format!(
                "the partition count of topic `{}` (of global store `{}`) is unknown; does it exist?",
                entry.topic, entry.name
            ))
        })?;
        for partition in 0..count {
            let (low, end) = consumer.fetch_watermarks(&entry.topic, partition, WATERMARK_TIMEOUT)?;
            let checkpointed = if entry.fresh { None } else { checkpoint.get(&entry.topic, partition) };
            let start = match checkpointed {
                Some(from) if from > end => {
                    tracing::warn!(store = %entry.name, topic = %entry.topic, partition, checkpoint = from, end,
                        "checkpoint is past the topic's end (topic recreated?); restoring from the beginning");
                    low
                }
                Some(from) => from.max(low),
                None => low,
            };
            listener.on_restore_start(&entry.topic, partition, &entry.name, start, end);
            offsets.insert((entry.topic.clone(), partition), start);
            assignment.add_partition_offset(&entry.topic, partition, Offset::Offset(start))?;
            pending.insert(
                (entry.topic.clone(), partition),
                Progress { store: entry.name.clone(), end, restored: 0, reported: 0 },
            );
        }
    }
    consumer.assign(&assignment)?;
    let mut last_progress = Instant::now();
    loop {
        let done: Vec<(String, i32)> = pending
            .iter()
            .filter(|(tp, p)| offsets.get(*tp).is_some_and(|o| *o >= p.end))
            .map(|(tp, _)| tp.clone())
            .collect();
        for tp in done {
            if let Some(mut p) = pending.remove(&tp) {
                let next = offsets.get(&tp).copied().unwrap_or(0);
                p.report(listener, &tp, next - 1);
                listener.on_restore_end(&tp.0, tp.1, &p.store, p.restored);
                tracing::info!(store = %p.store, topic = %tp.0, partition = tp.1, records = p.restored,
                    "global store partition restored");
            }
        }
        if pending.is_empty() {
            return Ok(offsets);
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let tp = (message.topic().to_string(), message.partition());
                let stored = apply(&message)?;
                offsets.insert(tp.clone(), message.offset() + 1);
                if let (true, Some(p)) = (stored, pending.get_mut(&tp)) {
                    p.restored += 1;
                    if p.restored - p.reported >= BATCH_REPORT {
                        p.report(listener, &tp, message.offset());
                    }
                }
                last_progress = Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(e.into()),
            None => {
                // Transaction markers move the position without a record to show for it.
                let positions = consumer.position()?;
                for element in positions.elements() {
                    if let Offset::Offset(position) = element.offset() {
                        let tp = (element.topic().to_string(), element.partition());
                        if offsets.get(&tp).is_some_and(|o| position > *o) {
                            offsets.insert(tp, position);
                            last_progress = Instant::now();
                        }
                    }
                }
                if last_progress.elapsed() > RESTORE_STALL_TIMEOUT {
                    return Err(StreamsError::IllegalState(format!(
                        "restoring the global stores made no progress for {RESTORE_STALL_TIMEOUT:?}; still to restore: \
                         {:?}",
                        pending.keys().collect::<Vec<_>>()
                    )));
                }
            }
        }
    }
}

/// Flushes every global store, then records `offsets` in the checkpoint of `dir`: a checkpoint
/// never runs ahead of what the stores hold.
pub(crate) fn write_checkpoint(stores: &GlobalStores, dir: &Path, offsets: &Offsets) -> Result<()> {
    stores.flush()?;
    let mut checkpoint = Checkpoint::default();
    for ((topic, partition), offset) in offsets {
        checkpoint.set(topic, *partition, *offset);
    }
    if checkpoint.is_empty() {
        return Ok(());
    }
    checkpoint.write(dir)?;
    Ok(())
}
