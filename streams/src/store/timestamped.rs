//! Values with timestamps: Kafka Streams' `ValueAndTimestamp` and the layout of timestamped stores.

use std::sync::Arc;

use crate::header::Headers;
use crate::record::Data;
use crate::serde::{Serde, SerdeError, SharedSerde};

/// A value with a timestamp, as Kafka Streams' `ValueAndTimestamp`: how the stores under the DSL's
/// tables keep each value together with its timestamp (see [`Stores::timestamped_key_value`]), and how
/// the window store of a sliding-window aggregation keeps each window's aggregate together with the
/// largest timestamp of the records in the window.
///
/// [`Stores::timestamped_key_value`]: super::Stores::timestamped_key_value
///
/// Its serde writes Kafka's layout: the timestamp (8 bytes, big-endian), then the value's bytes.
///
/// ```
/// use kstreams_streams::store::ValueAndTimestamp;
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::Serdes;
/// let serde = ValueAndTimestamp::serde(Serdes::i32());
/// let v = ValueAndTimestamp { value: 7, timestamp: 1 };
/// let bytes = serde.serialize("t", &Headers::new(), &v).unwrap().unwrap();
/// assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7]);
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), v);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueAndTimestamp<V> {
    /// The value.
    pub value: V,
    /// The timestamp in milliseconds.
    pub timestamp: i64,
}

impl<V: Data> ValueAndTimestamp<V> {
    /// A serde for values with timestamps over the serde of the values.
    pub fn serde(inner: SharedSerde<V>) -> SharedSerde<ValueAndTimestamp<V>> {
        Arc::new(ValueAndTimestampSerde { inner })
    }
}

struct ValueAndTimestampSerde<V> {
    inner: SharedSerde<V>,
}

impl<V: Data> Serde<ValueAndTimestamp<V>> for ValueAndTimestampSerde<V> {
    fn serialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: &ValueAndTimestamp<V>,
    ) -> std::result::Result<Option<Vec<u8>>, SerdeError> {
        let mut out = data.timestamp.to_be_bytes().to_vec();
        out.extend(self.inner.serialize(topic, headers, &data.value)?.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        data: Option<&[u8]>,
    ) -> std::result::Result<ValueAndTimestamp<V>, SerdeError> {
        let bytes = data.ok_or_else(|| SerdeError::null(topic, "value-and-timestamp"))?;
        let (ts, rest) = bytes.split_first_chunk::<8>().ok_or_else(|| {
            SerdeError::malformed(topic, "value-and-timestamp", format!("{} bytes, expected at least 8", bytes.len()))
        })?;
        Ok(ValueAndTimestamp {
            timestamp: i64::from_be_bytes(*ts),
            value: self.inner.deserialize(topic, headers, Some(rest))?,
        })
    }
}

/// The timestamp of a value whose store keeps none (Kafka Streams' `RecordQueue.UNKNOWN`).
pub const NO_TIMESTAMP: i64 = -1;

/// Reads the values of a timestamped store as plain values (the timestamp dropped): the serde that
/// interactive queries use for such stores. Writing stamps [`NO_TIMESTAMP`].
pub(crate) struct WithoutTimestamp<V> {
    pub inner: SharedSerde<V>,
}

impl<V: Data> Serde<V> for WithoutTimestamp<V> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &V) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut out = NO_TIMESTAMP.to_be_bytes().to_vec();
        out.extend(self.inner.serialize(topic, headers, data)?.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<V, SerdeError> {
        let bytes = data.ok_or_else(|| SerdeError::null(topic, "value-and-timestamp"))?;
        let rest = bytes.get(8..).ok_or_else(|| {
            SerdeError::malformed(topic, "value-and-timestamp", format!("{} bytes, expected at least 8", bytes.len()))
        })?;
        self.inner.deserialize(topic, headers, Some(rest))
    }

    fn to_json(&self, data: &V) -> Option<serde_json::Value> {
        self.inner.to_json(data)
    }

    fn parse_json(&self, json: &serde_json::Value) -> Option<V> {
        self.inner.parse_json(json)
    }
}
