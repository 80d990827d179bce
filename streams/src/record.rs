//! Records as processors see them.

use std::any::Any;
use std::sync::Arc;

use crate::header::Headers;

/// A key, a value, a timestamp and headers: what flows between processors.
///
/// ```
/// use kstreams_streams::record::Record;
/// let record = Record::new("apple".to_string(), 3i64, 1_000);
/// let doubled = record.with_value(6i64);
/// assert_eq!((doubled.key.as_str(), doubled.value, doubled.timestamp), ("apple", 6, 1_000));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time in milliseconds since the epoch.
    pub timestamp: i64,
    /// The headers.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record without headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Record { key, value, timestamp, headers: Headers::new() }
    }
    /// The same record with another key.
    pub fn with_key<K2>(self, key: K2) -> Record<K2, V> {
        Record { key, value: self.value, timestamp: self.timestamp, headers: self.headers }
    }
    /// The same record with another value.
    pub fn with_value<V2>(self, value: V2) -> Record<K, V2> {
        Record { key: self.key, value, timestamp: self.timestamp, headers: self.headers }
    }
    /// The same record with another timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }
    /// The same record with other headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }
}

/// Where the record being processed came from.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// /// Tags each value with where it was read.
/// struct Origin;
/// impl Processor<String, String> for Origin {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> Result<()> {
///         let origin = ctx.record_metadata().map(|m| format!("{}-{}@{}", m.topic, m.partition, m.offset));
///         let value = format!("{} from {}", r.value, origin.unwrap_or_default());
///         ctx.forward(r.with_value(value))
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Source topic (shared by every record the task reads from it).
    pub topic: std::sync::Arc<str>,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// What a key or value type must be to flow through a topology: owned, cloneable and thread-safe.
///
/// ```
/// use kstreams_streams::record::Data;
/// #[derive(Clone)]
/// struct Order { id: u64, amount: i64 }
/// fn assert_data<T: Data>() {}
/// assert_data::<Order>(); // any owned `Clone + Send + Sync + 'static` type is `Data`
/// assert_data::<(String, Option<i64>)>();
/// ```
pub trait Data: Clone + Send + Sync + 'static {}
impl<T: Clone + Send + Sync + 'static> Data for T {}

/// A type-erased key or value; cloning it shares the value.
pub(crate) type AnyData = Arc<dyn Any + Send + Sync>;

/// A record whose key and value types are known only to the processors at either end.
#[derive(Clone)]
pub(crate) struct RawRecord {
    pub key: AnyData,
    pub value: AnyData,
    pub timestamp: i64,
    pub headers: Headers,
}

impl RawRecord {
    pub(crate) fn from_typed<K: Data, V: Data>(record: Record<K, V>) -> Self {
        RawRecord {
            key: Arc::new(record.key),
            value: Arc::new(record.value),
            timestamp: record.timestamp,
            headers: record.headers,
        }
    }

    /// The typed record, or `None` when the key or value is of another type. A value held only here
    /// is moved out; a shared one is cloned.
    pub(crate) fn into_typed<K: Data, V: Data>(self) -> Option<Record<K, V>> {
        let key = take::<K>(self.key)?;
        let value = take::<V>(self.value)?;
        Some(Record { key, value, timestamp: self.timestamp, headers: self.headers })
    }
}

fn take<T: Data>(data: AnyData) -> Option<T> {
    let typed: Arc<T> = data.downcast::<T>().ok()?;
    Some(Arc::try_unwrap(typed).unwrap_or_else(|shared| (*shared).clone()))
}
