//! Restoring a task's stores from their changelogs before it processes.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;

use kstreams_state::{StateStore, StoreContext};

use crate::error::{Result, StreamsError};
use crate::runtime::config::ValidConfig;
use crate::store::StoreHandle;

const BATCH: usize = 1000;

fn state(handle: &mut StoreHandle) -> &mut dyn StateStore {
    match handle {
        StoreHandle::KeyValue(s) => s.as_mut(),
        StoreHandle::Window(s) => s.as_mut(),
        StoreHandle::Session(s) => s.as_mut(),
    }
}

/// Restores `handle` from `topic`'s `partition`, from the beginning to the end offset seen at the
/// start, in batches; returns the number of changelog records applied. "Restored" means the
/// consumer's position reached the end offset: transaction markers and compaction leave gaps in the
/// offsets, so counting records would never get there.
pub(crate) fn restore_store(
    config: &ValidConfig,
    _ctx: &StoreContext,
    handle: &mut StoreHandle,
    topic: &str,
    partition: i32,
) -> Result<u64> {
    let consumer: BaseConsumer = config
        .client_config("restore.consumer.")
        .set("group.id", format!("{}-restore", config.application_id))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()?;
    let (low, high) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))?;
    if high <= low {
        return Ok(0);
    }
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let (mut restored, mut batch) = (0u64, Vec::with_capacity(BATCH));
    let store = state(handle);
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                batch.push((m.key().unwrap_or_default().to_vec(), m.payload().map(<[u8]>::to_vec)));
                if batch.len() >= BATCH {
                    store.restore_batch(&batch)?;
                    restored += batch.len() as u64;
                    batch.clear();
                }
            }
            Some(Err(e)) => return Err(StreamsError::Kafka(e)),
            None => {}
        }
        let position = consumer.position()?;
        let at_end = position
            .find_partition(topic, partition)
            .and_then(|p| p.offset().to_raw())
            .is_some_and(|offset| offset >= high);
        if at_end {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            return Err(StreamsError::IllegalState(format!(
                "restoring {topic}-{partition} did not reach offset {high} within 10 minutes"
            )));
        }
    }
    if !batch.is_empty() {
        store.restore_batch(&batch)?;
        restored += batch.len() as u64;
    }
    let rate = restored as f64 / started.elapsed().as_secs_f64().max(0.001);
    tracing::info!(topic, partition, restored, end_offset = high, rate = format!("{rate:.0}/s"), "store restored");
    Ok(restored)
}
