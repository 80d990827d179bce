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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use kstreams_state::state_dir::load_checkpoint;
use kstreams_state::{Backend, Checkpoint, Restorer, StateError};

use crate::error::{Result, StreamsError};
use crate::task::global::{store_dir, GlobalStores};
use crate::topology::Topology;

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

/// Restores every partition of every global store's topic up to its end offset: from `checkpoint`
/// for stores that kept their data, else from the beginning. Returns the next offset of each
/// partition.
pub(crate) fn restore_all(
    stores: &GlobalStores,
    restorer: &Restorer,
    checkpoint: &Checkpoint,
    partitions: &HashMap<String, i32>,
) -> Result<Offsets> {
    let mut offsets = Offsets::new();
    for entry in stores.entries() {
        let count = partitions.get(&entry.topic).copied().ok_or_else(|| {
            StreamsError::Topology(format!(
                "the partition count of topic `{}` (of global store `{}`) is unknown; does it exist?",
                entry.topic, entry.name
            ))
        })?;
        let mut store = entry.store.clone();
        for partition in 0..count {
            let from = if entry.fresh { None } else { checkpoint.get(&entry.topic, partition) };
            let outcome = restorer.restore(&mut store, &entry.topic, partition, from)?;
            offsets.insert((entry.topic.clone(), partition), outcome.next_offset);
        }
        tracing::info!(store = %entry.name, topic = %entry.topic, partitions = count, "global store restored");
    }
    Ok(offsets)
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
