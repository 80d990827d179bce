//! Writing to Kafka: the producer behind sinks and changelogs, and what it learned from delivery
//! reports (the first error, the last offset per changelog partition).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header as KafkaHeader, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

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
    pub offsets: HashMap<(String, i32), i64>,
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
            Ok(m) => {
                let key = (m.topic().to_string(), m.partition());
                let entry = d.offsets.entry(key).or_insert(m.offset());
                *entry = (*entry).max(m.offset());
            }
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
