//! Writing to Kafka: the producer behind sinks and changelogs, and what it learned from delivery
//! reports (the first error, the last offset per changelog partition).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};
use rustc_hash::FxHashMap;

use kstreams_state::{ChangelogRecord, ChangelogSink, StateError, StateResult};

use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::task::core::RecordCollector;

/// Delivery reports of one producer.
#[derive(Default)]
pub(crate) struct Deliveries {
    /// The first failed delivery since the last check.
    pub first_error: Option<(String, KafkaError)>,
    /// The highest delivered offset per (topic, partition).
    pub offsets: DeliveredOffsets,
}

/// The highest delivered offset per topic, indexed by partition (-1: none yet). Updated for every
/// delivered record, so noting one allocates nothing.
#[derive(Default, Clone)]
pub(crate) struct DeliveredOffsets(FxHashMap<String, Vec<i64>>);

impl DeliveredOffsets {
    /// Notes that `offset` of `topic`/`partition` was delivered.
    fn delivered(&mut self, topic: &str, partition: i32, offset: i64) {
        let Ok(p) = usize::try_from(partition) else { return };
        let offsets = match self.0.get_mut(topic) {
            Some(o) => o,
            None => self.0.entry(topic.to_string()).or_default(),
        };
        if offsets.len() <= p {
            offsets.resize(p + 1, -1);
        }
        offsets[p] = offsets[p].max(offset);
    }

    /// The highest delivered offset of `topic`/`partition`, if any record was delivered there.
    pub fn last_delivered(&self, topic: &str, partition: i32) -> Option<i64> {
        let p = usize::try_from(partition).ok()?;
        self.0.get(topic).and_then(|o| o.get(p)).copied().filter(|&o| o >= 0)
    }
}

/// The producer's context: collects delivery reports.
#[derive(Default, Clone)]
pub(crate) struct ProducerCtx {
    pub deliveries: Arc<Mutex<Deliveries>>,
    /// With `default.production.exception.handler=log_and_continue` (at least once): failed
    /// deliveries are logged and counted here instead of failing the thread.
    pub skip_failed: Option<prometheus::IntCounter>,
}

impl ClientContext for ProducerCtx {}

impl ProducerContext for ProducerCtx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        let Ok(mut d) = self.deliveries.lock() else { return };
        match result {
            Ok(m) => d.offsets.delivered(m.topic(), m.partition(), m.offset()),
            Err((e, m)) => {
                if let Some(dropped) = &self.skip_failed {
                    tracing::warn!(topic = m.topic(), partition = m.partition(), error = %e,
                        "record not delivered; skipping it (default.production.exception.handler=log_and_continue)");
                    dropped.inc();
                } else if d.first_error.is_none() {
                    d.first_error = Some((m.topic().to_string(), e.clone()));
                }
            }
        }
    }
}

pub(crate) type KProducer = BaseProducer<ProducerCtx>;

/// How long each `rd_kafka_flush` call of [`flush`] lasts: while it runs, librdkafka sends
/// lingering batches at once.
const FLUSH_SLICE_MS: i32 = 5;

/// Sends everything the producer holds now and waits until every record is acknowledged, serving
/// delivery reports on the way.
///
/// rdkafka's `BaseProducer::flush` (which `commit_transaction` calls too) alternates
/// `rd_kafka_flush(0)` with polls of up to 100 ms. librdkafka ignores `linger.ms` only *while* a
/// flush call runs, and one of 0 ms ends before the broker threads wake up, so each round waited for
/// the linger (100 ms by default): a commit took 100–200 ms, which tripled exactly-once latency.
/// Here each flush call lasts a few milliseconds, long enough for the broker threads to send.
pub(crate) fn flush<C: ProducerContext>(producer: &BaseProducer<C>, timeout: Duration) -> Result<()> {
    let deadline = crate::runtime::deadline_after(timeout);
    loop {
        // SAFETY: the pointer is the producer's live librdkafka handle.
        let err = unsafe { rdkafka::bindings::rd_kafka_flush(producer.client().native_ptr(), FLUSH_SLICE_MS) };
        match err {
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => return Ok(()),
            rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__TIMED_OUT => {}
            e => return Err(StreamsError::Kafka(KafkaError::Flush(e.into()))),
        }
        // Delivery reports are events this thread must serve before the in-flight count drops
        // (`poll` serves them for the whole millisecond).
        producer.poll(Duration::from_millis(1));
        if producer.in_flight_count() == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(StreamsError::Kafka(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)));
        }
    }
}

/// Sends sink records and changelog records through one producer.
#[derive(Clone)]
pub(crate) struct KafkaCollector {
    pub producer: Arc<KProducer>,
    /// Partition counts of the topics the topology writes (full names).
    pub partitions: Arc<Mutex<HashMap<String, i32>>>,
    /// With `default.production.exception.handler=log_and_continue`: where records the client
    /// refuses to send (e.g. too large) are counted before they are skipped.
    pub skip_failed: Option<prometheus::IntCounter>,
}

impl KafkaCollector {
    fn send_raw(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: Option<OwnedHeaders>,
    ) -> Result<()> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        if let Some(p) = partition {
            record = record.partition(p);
        }
        if timestamp >= 0 {
            record = record.timestamp(timestamp);
        }
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // The local queue is full: serve delivery reports, then try again.
                    self.producer.poll(Duration::from_millis(10));
                    record = r;
                }
                Err((e, _)) => {
                    if let Some(dropped) = &self.skip_failed {
                        tracing::warn!(topic, error = %e,
                            "skipping a record that cannot be produced (default.production.exception.handler=log_and_continue)");
                        dropped.inc();
                        return Ok(());
                    }
                    return Err(StreamsError::Kafka(e));
                }
            }
        }
    }
}

fn to_kafka_headers(headers: &Headers) -> Option<OwnedHeaders> {
    if headers.is_empty() {
        return None;
    }
    let mut out = OwnedHeaders::new_with_capacity(headers.len());
    for h in headers.iter() {
        out = out.insert(KafkaHeader { key: &h.key, value: h.value.as_deref() });
    }
    Some(out)
}

impl RecordCollector for KafkaCollector {
    fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<()> {
        self.send_raw(topic, partition, key.as_deref(), value.as_deref(), timestamp, to_kafka_headers(headers))
    }

    fn partitions_for(&mut self, topic: &str) -> Result<i32> {
        if let Some(n) = self.partitions.lock().ok().and_then(|p| p.get(topic).copied()) {
            return Ok(n);
        }
        let metadata = self.producer.client().fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let n = metadata
            .topics()
            .first()
            .filter(|t| t.error().is_none())
            .map(|t| t.partitions().len() as i32)
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                StreamsError::IllegalState(format!("output topic `{topic}` does not exist: create it before starting"))
            })?;
        if let Ok(mut p) = self.partitions.lock() {
            p.insert(topic.to_string(), n);
        }
        Ok(n)
    }
}

impl ChangelogSink for KafkaCollector {
    fn send(&self, r: ChangelogRecord<'_>) -> StateResult<()> {
        self.send_raw(r.topic, Some(r.partition), Some(r.key), r.value, r.timestamp, None)
            .map_err(|e| StateError::Changelog { store: r.topic.to_string(), detail: e.to_string() })
    }
}
