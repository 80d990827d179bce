//! The type-erased nodes a task runs: processors, sources and sinks.

use std::marker::PhantomData;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::error::{catch_panics, panic_message, Result, StreamsError};
use crate::header::Headers;
use crate::partitioner::default_partition;
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier, ScheduleId};
use crate::record::{Data, RawRecord, Record};
use crate::serde::{SerdeError, SharedSerde};
use crate::task::core::TaskCore;
use crate::topology::{StreamPartitioner, TimestampExtractor, TopicNameExtractor};

/// A processor whose record types are checked when records arrive.
pub(crate) trait RawProcessor: Send {
    fn init(&mut self, core: &mut TaskCore, node: usize) -> Result<()>;
    fn process(&mut self, core: &mut TaskCore, node: usize, record: RawRecord) -> Result<()>;
    fn punctuate(&mut self, core: &mut TaskCore, node: usize, id: ScheduleId, timestamp: i64) -> Result<()>;
    /// Forwards what the caches of the node's stores flushed; only processors do.
    fn flush_cache(&mut self, core: &mut TaskCore, node: usize) -> Result<()> {
        let _ = (core, node);
        Ok(())
    }
    fn close(&mut self) -> Result<()>;
}

/// Makes a node's processor for each task.
pub(crate) type RawSupplier = Arc<dyn Fn() -> Box<dyn RawProcessor> + Send + Sync>;

/// A typed [`Processor`] behind the erased interface.
struct Typed<KIn, VIn, KOut, VOut> {
    inner: Box<dyn Processor<KIn, VIn, KOut, VOut>>,
    _types: PhantomData<fn(KIn, VIn, KOut, VOut)>,
}

impl<KIn: Data, VIn: Data, KOut: Data, VOut: Data> RawProcessor for Typed<KIn, VIn, KOut, VOut> {
    fn init(&mut self, core: &mut TaskCore, node: usize) -> Result<()> {
        self.inner.init(&mut ProcessorContext::new(core, node))
    }

    fn process(&mut self, core: &mut TaskCore, node: usize, record: RawRecord) -> Result<()> {
        let Some(record) = record.into_typed::<KIn, VIn>() else {
            return Err(StreamsError::TypeMismatch {
                node: core.node_name(node).to_string(),
                expected: std::any::type_name::<Record<KIn, VIn>>(),
            });
        };
        self.inner.process(&mut ProcessorContext::new(core, node), record)
    }

    fn punctuate(&mut self, core: &mut TaskCore, node: usize, id: ScheduleId, timestamp: i64) -> Result<()> {
        self.inner.punctuate(&mut ProcessorContext::new(core, node), id, timestamp)
    }

    fn flush_cache(&mut self, core: &mut TaskCore, node: usize) -> Result<()> {
        self.inner.flush_cache(&mut ProcessorContext::new(core, node))
    }

    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}

/// A supplier of erased processors from a typed supplier.
pub(crate) fn typed_supplier<KIn: Data, VIn: Data, KOut: Data, VOut: Data>(
    supplier: impl ProcessorSupplier<KIn, VIn, KOut, VOut>,
) -> RawSupplier {
    Arc::new(move || {
        Box::new(Typed::<KIn, VIn, KOut, VOut> { inner: supplier.get(), _types: PhantomData }) as Box<dyn RawProcessor>
    })
}

/// The raw bytes of a consumed record, as a source node reads them.
pub(crate) struct ConsumedBytes<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub headers: Headers,
}

/// Turns consumed bytes into a typed record with its event time.
pub(crate) trait RawSource: Send + Sync {
    /// The record, with the timestamp its extractor chose (`partition_time` is the largest timestamp
    /// seen on the partition so far).
    fn deserialize(&self, bytes: ConsumedBytes<'_>, partition_time: i64) -> Result<RawRecord>;
}

pub(crate) struct TypedSource<K, V> {
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
    pub extractor: Option<Arc<dyn TimestampExtractor<K, V>>>,
}

impl<K: Data, V: Data> RawSource for TypedSource<K, V> {
    fn deserialize(&self, bytes: ConsumedBytes<'_>, partition_time: i64) -> Result<RawRecord> {
        let error = |part, source| StreamsError::Deserialization {
            topic: bytes.topic.to_string(),
            partition: bytes.partition,
            offset: bytes.offset,
            part,
            source: Box::new(source),
        };
        // A panicking serde fails the record's deserialization (its handler decides), not the thread.
        let panicked = |panic: Box<dyn std::any::Any + Send>| SerdeError::Panicked {
            topic: bytes.topic.to_string(),
            message: panic_message(&*panic),
        };
        let key = catch_unwind(AssertUnwindSafe(|| self.key_serde.deserialize(bytes.topic, &bytes.headers, bytes.key)))
            .unwrap_or_else(|p| Err(panicked(p)))
            .map_err(|e| error("key", e))?;
        let value =
            catch_unwind(AssertUnwindSafe(|| self.value_serde.deserialize(bytes.topic, &bytes.headers, bytes.value)))
                .unwrap_or_else(|p| Err(panicked(p)))
                .map_err(|e| error("value", e))?;
        let timestamp = match &self.extractor {
            Some(extractor) => catch_panics(|| Ok(extractor.extract(&key, &value, bytes.timestamp, partition_time)))?,
            None => bytes.timestamp,
        };
        Ok(RawRecord::from_typed(Record { key, value, timestamp, headers: bytes.headers }))
    }
}

/// A source node forwards what the task deserialized to its children.
pub(crate) struct SourceNode;

impl RawProcessor for SourceNode {
    fn init(&mut self, _core: &mut TaskCore, _node: usize) -> Result<()> {
        Ok(())
    }
    fn process(&mut self, core: &mut TaskCore, node: usize, record: RawRecord) -> Result<()> {
        core.forward(node, record, None)
    }
    fn punctuate(&mut self, _core: &mut TaskCore, _node: usize, _id: ScheduleId, _timestamp: i64) -> Result<()> {
        Ok(())
    }
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A sink node serializes records and hands them to the task's record collector.
pub(crate) struct SinkNode<K, V> {
    pub topic: TopicNameExtractor<K, V>,
    pub key_serde: SharedSerde<K>,
    pub value_serde: SharedSerde<V>,
    pub partitioner: Option<Arc<dyn StreamPartitioner<K, V>>>,
    /// A static topic's full name, and its partition count once needed: resolved for the first
    /// record only.
    pub resolved: Option<(Arc<str>, Option<i32>)>,
}

impl<K: Data, V: Data> SinkNode<K, V> {
    /// The partition count of `topic` (cached with a static topic).
    fn partitions(&mut self, core: &mut TaskCore, topic: &str) -> Result<i32> {
        if let Some((_, Some(count))) = &self.resolved {
            return Ok(*count);
        }
        let count = core.collector.partitions_for(topic)?;
        if let Some((_, cached)) = &mut self.resolved {
            *cached = Some(count);
        }
        Ok(count)
    }
}

impl<K: Data, V: Data> RawProcessor for SinkNode<K, V> {
    fn init(&mut self, _core: &mut TaskCore, _node: usize) -> Result<()> {
        Ok(())
    }

    fn process(&mut self, core: &mut TaskCore, node: usize, record: RawRecord) -> Result<()> {
        let Some(record) = record.into_typed::<K, V>() else {
            return Err(StreamsError::TypeMismatch {
                node: core.node_name(node).to_string(),
                expected: std::any::type_name::<Record<K, V>>(),
            });
        };
        let topic: Arc<str> = match &self.resolved {
            Some((topic, _)) => topic.clone(),
            None => {
                let topic: Arc<str> = core.resolve_topic(&self.topic.topic(&record)).into();
                if matches!(self.topic, TopicNameExtractor::Static(_)) {
                    self.resolved = Some((topic.clone(), None));
                }
                topic
            }
        };
        let serialization =
            |source| StreamsError::Serialization { target: topic.to_string(), source: Box::new(source) };
        let key = self.key_serde.serialize(&topic, &record.headers, &record.key).map_err(serialization)?;
        let value = self.value_serde.serialize(&topic, &record.headers, &record.value).map_err(serialization)?;
        let partition = match (&self.partitioner, &key) {
            (Some(_), _) | (None, Some(_)) => {
                let count = self.partitions(core, &topic)?;
                match (&self.partitioner, &key) {
                    (Some(partitioner), _) => partitioner.partition(&topic, &record.key, &record.value, count),
                    (None, key) => key.as_ref().map(|bytes| default_partition(bytes, count)),
                }
            }
            (None, None) => None,
        };
        core.collector.send(&topic, partition, key, value, record.timestamp, &record.headers)
    }

    fn punctuate(&mut self, _core: &mut TaskCore, _node: usize, _id: ScheduleId, _timestamp: i64) -> Result<()> {
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
