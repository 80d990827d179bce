//! Windowed keys: a key together with the window it was aggregated in.
//!
//! Windowed aggregations (`windowed_by(..).count(..)`, session windows) produce tables keyed by
//! [`Windowed<K>`]. Their serdes write Kafka Streams' byte layouts, so a Java application reading
//! the output topic with `WindowedSerdes` sees the same keys:
//!
//! - [`TimeWindowedSerde`]: key bytes + window start (8 bytes, big-endian).
//! - [`SessionWindowedSerde`]: key bytes + window end + window start (8 bytes each, big-endian).

use std::fmt;

use crate::header::Headers;
use crate::serde::{Serde, SerdeError, SharedSerde};

/// A window in epoch milliseconds.
///
/// For time windows (tumbling, hopping, sliding) `end` is exclusive: the window holds
/// `start <= timestamp < end`. For session windows both ends are inclusive: a session of a single
/// record has `start == end`. This is Kafka's `TimeWindow` / `SessionWindow`.
///
/// ```
/// use kstreams_streams::windowed::Window;
/// let w = Window::new(1_000, 2_000);
/// assert_eq!((w.start(), w.end(), w.size()), (1_000, 2_000, 1_000));
/// assert!(w.overlaps(&Window::new(1_500, 2_500)));
/// assert!(!w.overlaps(&Window::new(2_000, 3_000)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Window {
    /// Start, in milliseconds since the epoch, inclusive.
    pub start: i64,
    /// End, in milliseconds since the epoch: exclusive for time windows, inclusive for sessions.
    pub end: i64,
}

impl Window {
    /// The window from `start` to `end` (milliseconds).
    pub const fn new(start: i64, end: i64) -> Self {
        Window { start, end }
    }
    /// The start, in milliseconds.
    pub const fn start(&self) -> i64 {
        self.start
    }
    /// The end, in milliseconds.
    pub const fn end(&self) -> i64 {
        self.end
    }
    /// `end - start`, in milliseconds (saturating).
    pub const fn size(&self) -> i64 {
        self.end.saturating_sub(self.start)
    }
    /// Whether two time windows (end exclusive) share an instant, as Kafka's `TimeWindow.overlap`.
    pub const fn overlaps(&self, other: &Window) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// A key and the window it belongs to; the key type of windowed tables.
///
/// ```
/// use kstreams_streams::windowed::{Window, Windowed};
/// let w = Windowed::new("sensor-1".to_string(), Window::new(0, 60_000));
/// assert_eq!(w.key(), "sensor-1");
/// assert_eq!(w.window().end(), 60_000);
/// assert_eq!(w.to_string(), "[sensor-1@0/60000]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The key.
    pub key: K,
    /// The window.
    pub window: Window,
}

impl<K> Windowed<K> {
    /// `key` in `window`.
    pub const fn new(key: K, window: Window) -> Self {
        Windowed { key, window }
    }
    /// The key.
    pub const fn key(&self) -> &K {
        &self.key
    }
    /// The window.
    pub const fn window(&self) -> &Window {
        &self.window
    }
    /// The key, dropping the window.
    pub fn into_key(self) -> K {
        self.key
    }
}

impl<K: fmt::Display> fmt::Display for Windowed<K> {
    /// Kafka's `Windowed.toString` layout: `[key@start/end]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}@{}/{}]", self.key, self.window.start, self.window.end)
    }
}

const TIMESTAMP_SIZE: usize = 8;

/// The inner key's bytes; a windowed key cannot be built around a null key.
fn key_bytes<K: 'static>(
    inner: &SharedSerde<K>,
    serde: &'static str,
    topic: &str,
    headers: &Headers,
    key: &K,
) -> Result<Vec<u8>, SerdeError> {
    inner.serialize(topic, headers, key)?.ok_or_else(|| {
        SerdeError::encode(
            topic,
            serde,
            "the key serde wrote a null, but a windowed key needs key bytes: use a key serde that writes bytes (not Serdes::unit())",
        )
    })
}

/// Splits `data` into the key bytes and the trailing `N` timestamp bytes.
fn split_key<'a, const N: usize>(
    topic: &str,
    serde: &'static str,
    data: Option<&'a [u8]>,
) -> Result<(&'a [u8], [u8; N]), SerdeError> {
    let data = data.ok_or_else(|| SerdeError::null(topic, serde))?;
    match data.split_last_chunk::<N>() {
        Some((key, times)) => Ok((key, *times)),
        None => Err(SerdeError::malformed(
            topic,
            serde,
            format!(
                "{} bytes is shorter than the {N} bytes of window timestamps: the topic does not hold this kind of windowed key (time-windowed keys end in 8 bytes, session keys in 16)",
                data.len()
            ),
        )),
    }
}

fn long_at(bytes: &[u8], at: usize) -> i64 {
    let mut long = [0u8; TIMESTAMP_SIZE];
    long.copy_from_slice(&bytes[at..at + TIMESTAMP_SIZE]);
    i64::from_be_bytes(long)
}

/// Keys of time windows in Kafka Streams' layout (`WindowKeySchema.toBinary`): the inner key's
/// bytes, then the window start as an 8-byte big-endian long.
///
/// The end is not stored; reading sets it to start + the window size, as Java's
/// `TimeWindowedDeserializer` does (saturating at `i64::MAX`, where Java truncates to `Long.MAX_VALUE`).
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, Serdes};
/// use kstreams_streams::windowed::{Window, Windowed};
///
/// let serde = Serdes::time_windowed(Serdes::string(), 500);
/// let key = Windowed::new("k".to_string(), Window::new(1_000, 1_500));
/// let bytes = serde.serialize("t", &Headers::new(), &key).unwrap().unwrap();
/// assert_eq!(bytes, [0x6b, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), key);
/// ```
pub struct TimeWindowedSerde<K> {
    inner: SharedSerde<K>,
    window_size_ms: i64,
}

impl<K> TimeWindowedSerde<K> {
    /// Windowed keys over `inner`, of windows `window_size_ms` long.
    pub fn new(inner: SharedSerde<K>, window_size_ms: i64) -> Self {
        TimeWindowedSerde { inner, window_size_ms }
    }
    /// The window size used to compute window ends on reading, in milliseconds.
    pub fn window_size_ms(&self) -> i64 {
        self.window_size_ms
    }
}

impl<K> fmt::Debug for TimeWindowedSerde<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindowedSerde")
            .field("key", &std::any::type_name::<K>())
            .field("window_size_ms", &self.window_size_ms)
            .finish()
    }
}

impl<K: 'static> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn to_json(&self, data: &Windowed<K>) -> Option<serde_json::Value> {
        windowed_json(&self.inner, data)
    }
    fn serialize(&self, topic: &str, headers: &Headers, data: &Windowed<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut bytes = key_bytes(&self.inner, "time-windowed", topic, headers, &data.key)?;
        bytes.extend_from_slice(&data.window.start.to_be_bytes());
        Ok(Some(bytes))
    }
    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let (key, start) = split_key::<TIMESTAMP_SIZE>(topic, "time-windowed", data)?;
        let start = i64::from_be_bytes(start);
        let key = self.inner.deserialize(topic, headers, Some(key))?;
        Ok(Windowed::new(key, Window::new(start, start.saturating_add(self.window_size_ms))))
    }
}

/// Keys of session windows in Kafka Streams' layout (`SessionKeySchema.toBinary`): the inner key's
/// bytes, the window end, then the window start, each an 8-byte big-endian long.
///
/// ```
/// use kstreams_streams::header::Headers;
/// use kstreams_streams::serde::{Serde, Serdes};
/// use kstreams_streams::windowed::{Window, Windowed};
///
/// let serde = Serdes::session_windowed(Serdes::string());
/// let key = Windowed::new("k".to_string(), Window::new(1, 2));
/// let bytes = serde.serialize("t", &Headers::new(), &key).unwrap().unwrap();
/// assert_eq!(bytes, [0x6b, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
/// assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), key);
/// ```
pub struct SessionWindowedSerde<K> {
    inner: SharedSerde<K>,
}

impl<K> SessionWindowedSerde<K> {
    /// Session-windowed keys over `inner`.
    pub fn new(inner: SharedSerde<K>) -> Self {
        SessionWindowedSerde { inner }
    }
}

impl<K> fmt::Debug for SessionWindowedSerde<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWindowedSerde").field("key", &std::any::type_name::<K>()).finish()
    }
}

impl<K: 'static> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn to_json(&self, data: &Windowed<K>) -> Option<serde_json::Value> {
        windowed_json(&self.inner, data)
    }
    fn serialize(&self, topic: &str, headers: &Headers, data: &Windowed<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut bytes = key_bytes(&self.inner, "session-windowed", topic, headers, &data.key)?;
        bytes.reserve(2 * TIMESTAMP_SIZE);
        bytes.extend_from_slice(&data.window.end.to_be_bytes());
        bytes.extend_from_slice(&data.window.start.to_be_bytes());
        Ok(Some(bytes))
    }
    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<Windowed<K>, SerdeError> {
        let (key, times) = split_key::<{ 2 * TIMESTAMP_SIZE }>(topic, "session-windowed", data)?;
        let (end, start) = (long_at(&times, 0), long_at(&times, TIMESTAMP_SIZE));
        if end < start {
            return Err(SerdeError::malformed(
                topic,
                "session-windowed",
                format!(
                    "window end {end} is before its start {start}: the data is not a session-windowed key (a time-windowed key needs Serdes::time_windowed)"
                ),
            ));
        }
        let key = self.inner.deserialize(topic, headers, Some(key))?;
        Ok(Windowed::new(key, Window::new(start, end)))
    }
}

/// `{"key": …, "window": {"start": …, "end": …}}`, when the key has a JSON form.
fn windowed_json<K: 'static>(inner: &SharedSerde<K>, data: &Windowed<K>) -> Option<serde_json::Value> {
    let key = inner.to_json(&data.key)?;
    Some(serde_json::json!({ "key": key, "window": { "start": data.window.start, "end": data.window.end } }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Serdes;

    #[test]
    fn time_windowed_round_trip_sets_end_from_size() {
        let serde = Serdes::time_windowed(Serdes::i32(), 60_000);
        let key = Windowed::new(5, Window::new(120_000, 180_000));
        let bytes = serde.serialize("t", &Headers::new(), &key).unwrap().unwrap();
        assert_eq!(bytes, [0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 0xd4, 0xc0]);
        assert_eq!(serde.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), key);
        // The end saturates instead of overflowing.
        let far = Serdes::time_windowed(Serdes::i32(), i64::MAX);
        let w = far.deserialize("t", &Headers::new(), Some(&bytes)).unwrap();
        assert_eq!(w.window.end, i64::MAX);
    }

    #[test]
    fn short_data_null_and_bad_keys_are_errors() {
        let time = Serdes::time_windowed(Serdes::string(), 10);
        assert!(matches!(
            time.deserialize("t", &Headers::new(), Some(&[0; 7])),
            Err(SerdeError::Malformed { serde: "time-windowed", .. })
        ));
        assert!(matches!(time.deserialize("t", &Headers::new(), None), Err(SerdeError::Null { .. })));
        // The inner serde's error comes through.
        let time_i32 = Serdes::time_windowed(Serdes::i32(), 10);
        assert!(matches!(
            time_i32.deserialize("t", &Headers::new(), Some(&[0; 9])),
            Err(SerdeError::Malformed { serde: "i32", .. })
        ));
        let session = Serdes::session_windowed(Serdes::string());
        assert!(matches!(session.deserialize("t", &Headers::new(), Some(&[0; 15])), Err(SerdeError::Malformed { .. })));
        let mut swapped = vec![b'k'];
        swapped.extend_from_slice(&1i64.to_be_bytes()); // end
        swapped.extend_from_slice(&2i64.to_be_bytes()); // start
        assert!(matches!(session.deserialize("t", &Headers::new(), Some(&swapped)), Err(SerdeError::Malformed { .. })));
        let unit = Serdes::session_windowed(Serdes::unit());
        let err = unit.serialize("t", &Headers::new(), &Windowed::new((), Window::new(0, 0))).unwrap_err();
        assert!(matches!(err, SerdeError::Encode { serde: "session-windowed", .. }), "{err:?}");
    }

    #[test]
    fn empty_keys_and_ordering() {
        let session = Serdes::session_windowed(Serdes::string());
        let key = Windowed::new(String::new(), Window::new(7, 7));
        let bytes = session.serialize("t", &Headers::new(), &key).unwrap().unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(session.deserialize("t", &Headers::new(), Some(&bytes)).unwrap(), key);
        let mut keys = [
            Windowed::new("b", Window::new(0, 10)),
            Windowed::new("a", Window::new(10, 20)),
            Windowed::new("a", Window::new(0, 10)),
        ];
        keys.sort();
        assert_eq!(keys[0], Windowed::new("a", Window::new(0, 10)));
        assert_eq!(keys[2].key, "b");
    }
}
