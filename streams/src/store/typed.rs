//! Typed facades over bytes stores.

use std::any::Any;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use kstreams_state::{DirtyQueue, KeyValueBytesStore, SessionBytesStore, SessionWindow, StateStore, WindowBytesStore};

use crate::error::{Result, StreamsError};
use crate::header::Headers;
use crate::record::Data;
use crate::serde::SharedSerde;
use crate::store::timestamped::{ValueAndTimestamp, NO_TIMESTAMP};
use crate::task::core::RegisteredStore;
use crate::windowed::{Window, Windowed};

/// Keys and values to bytes and back, for one store.
struct Codec<K, V> {
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    /// For a timestamped store, the task's record clock: values are stored after an 8-byte
    /// big-endian timestamp, by default the timestamp of the record being processed.
    clock: Option<Arc<AtomicI64>>,
}

impl<K: Data, V: Data> Codec<K, V> {
    /// The key's bytes; `None` when the serde makes it null (such a key can have no entry).
    fn nullable_key(&self, key: &K) -> Result<Option<Vec<u8>>> {
        self.key_serde
            .serialize(&self.topic, &Headers::new(), key)
            .map_err(|source| StreamsError::Serialization { target: self.topic.clone(), source: Box::new(source) })
    }

    fn key(&self, key: &K) -> Result<Vec<u8>> {
        self.nullable_key(key)?.ok_or_else(|| StreamsError::StoreAccess {
            node: String::new(),
            store: self.topic.clone(),
            reason: "a store key must not serialize to null".into(),
        })
    }

    /// The bytes to store for `value`: stamped with the current record's timestamp if the store is
    /// timestamped.
    fn value(&self, value: &V) -> Result<Option<Vec<u8>>> {
        let now = self.clock.as_ref().map_or(NO_TIMESTAMP, |c| c.load(Ordering::Relaxed));
        self.value_at(value, now)
    }

    /// The bytes to store for `value` with `timestamp` (ignored by a store without timestamps).
    fn value_at(&self, value: &V, timestamp: i64) -> Result<Option<Vec<u8>>> {
        let bytes = self
            .value_serde
            .serialize(&self.topic, &Headers::new(), value)
            .map_err(|source| StreamsError::Serialization { target: self.topic.clone(), source: Box::new(source) })?;
        if self.clock.is_none() {
            return Ok(bytes);
        }
        let mut out = timestamp.to_be_bytes().to_vec();
        out.extend(bytes.unwrap_or_default());
        Ok(Some(out))
    }

    /// The stored bytes split into timestamp and value bytes.
    fn split<'b>(&self, bytes: &'b [u8]) -> Result<(i64, &'b [u8])> {
        if self.clock.is_none() {
            return Ok((NO_TIMESTAMP, bytes));
        }
        match bytes.split_first_chunk::<8>() {
            Some((ts, rest)) => Ok((i64::from_be_bytes(*ts), rest)),
            None => Err(self.corrupt(crate::serde::SerdeError::malformed(
                &self.topic,
                "value-and-timestamp",
                format!("{} bytes, expected at least 8", bytes.len()),
            ))),
        }
    }

    fn read_key(&self, bytes: &[u8]) -> Result<K> {
        self.key_serde.deserialize(&self.topic, &Headers::new(), Some(bytes)).map_err(|source| self.corrupt(source))
    }

    fn read_value(&self, bytes: &[u8]) -> Result<V> {
        Ok(self.read_timestamped(bytes)?.value)
    }

    fn read_timestamped(&self, bytes: &[u8]) -> Result<ValueAndTimestamp<V>> {
        let (timestamp, bytes) = self.split(bytes)?;
        let value = self
            .value_serde
            .deserialize(&self.topic, &Headers::new(), Some(bytes))
            .map_err(|source| self.corrupt(source))?;
        Ok(ValueAndTimestamp { value, timestamp })
    }

    fn corrupt(&self, source: crate::serde::SerdeError) -> StreamsError {
        StreamsError::Deserialization {
            topic: self.topic.clone(),
            partition: -1,
            offset: -1,
            part: "store entry",
            source: Box::new(source),
        }
    }
}

/// A key-value store of `K` to `V`.
///
/// ```no_run
/// # use kstreams_streams::store::KeyValueStore;
/// # fn f(store: &mut KeyValueStore<String, i64>) -> kstreams_streams::error::Result<()> {
/// let count = store.get(&"apple".to_string())?.unwrap_or(0);
/// store.put(&"apple".to_string(), &(count + 1))?;
/// # Ok(()) }
/// ```
pub struct KeyValueStore<K, V> {
    inner: Box<dyn KeyValueBytesStore>,
    codec: Codec<K, V>,
    /// Where the record cache puts the entries it flushes or evicts, when the store is cached.
    dirty: Option<DirtyQueue>,
}

/// An entry the record cache of a store flushed (on commit) or evicted: the latest value of a key
/// since the previous flush, and the value the store held before it.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// /// Sums per key into the cached store `sums`, forwarding each key once per flush.
/// struct Sum;
/// impl Processor<String, i64> for Sum {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, r: Record<String, i64>) -> Result<()> {
///         let store = ctx.key_value_store::<String, i64>("sums")?;
///         let sum = store.get(&r.key)?.unwrap_or(0) + r.value;
///         store.put(&r.key, &sum)
///     }
///     fn flush_cache(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
///         let flushed = ctx.key_value_store::<String, i64>("sums")?.take_flushed()?;
///         for f in flushed {
///             if let Some(sum) = f.new {
///                 ctx.forward(Record::new(f.key, sum, f.timestamp))?;
///             }
///         }
///         Ok(())
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CacheFlush<K, V> {
    /// The key.
    pub key: K,
    /// The value now in the store; `None` if the key was deleted.
    pub new: Option<V>,
    /// The value the store held before, as of the previous flush.
    pub old: Option<V>,
    /// The timestamp of the last record that changed the entry.
    pub timestamp: i64,
}

impl<K: Data, V: Data> KeyValueStore<K, V> {
    pub(crate) fn new(
        inner: Box<dyn KeyValueBytesStore>,
        topic: String,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> Self {
        KeyValueStore { inner, codec: Codec { topic, key_serde, value_serde, clock: None }, dirty: None }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        match self.inner.get(&self.codec.key(key)?)? {
            Some(bytes) => Ok(Some(self.codec.read_value(&bytes)?)),
            None => Ok(None),
        }
    }

    /// The value of `key` with its timestamp; the timestamp is [`NO_TIMESTAMP`] in a store
    /// without timestamps.
    pub fn get_with_timestamp(&self, key: &K) -> Result<Option<ValueAndTimestamp<V>>> {
        match self.inner.get(&self.codec.key(key)?)? {
            Some(bytes) => Ok(Some(self.codec.read_timestamped(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Whether the store keeps a timestamp with each value ([`Stores::timestamped_key_value`](super::Stores::timestamped_key_value)).
    pub fn is_timestamped(&self) -> bool {
        self.codec.clock.is_some()
    }

    /// Like [`get`](Self::get), but a key that serializes to null is `None` (it has no entry and
    /// never will) instead of an error; joins drop or null-join such records, as Kafka Streams does.
    pub(crate) fn get_unless_null_key(&self, key: &K) -> Result<Option<Option<V>>> {
        let Some(key) = self.codec.nullable_key(key)? else { return Ok(None) };
        Ok(Some(self.inner.get(&key)?.map(|bytes| self.codec.read_value(&bytes)).transpose()?))
    }

    /// Stores `value` under `key`.
    pub fn put(&mut self, key: &K, value: &V) -> Result<()> {
        let key = self.codec.key(key)?;
        let value = self.codec.value(value)?;
        Ok(self.inner.put(&key, value.as_deref())?)
    }

    /// Stores `value` under `key` with `timestamp` (a store without timestamps ignores it).
    pub fn put_with_timestamp(&mut self, key: &K, value: &V, timestamp: i64) -> Result<()> {
        let key = self.codec.key(key)?;
        let value = self.codec.value_at(value, timestamp)?;
        Ok(self.inner.put(&key, value.as_deref())?)
    }

    /// Stores `value` only if `key` has none; returns the value that was there.
    pub fn put_if_absent(&mut self, key: &K, value: &V) -> Result<Option<V>> {
        let key_bytes = self.codec.key(key)?;
        let old = self.inner.get(&key_bytes)?;
        if old.is_none() {
            let value = self.codec.value(value)?;
            self.inner.put(&key_bytes, value.as_deref())?;
        }
        old.map(|b| self.codec.read_value(&b)).transpose()
    }

    /// Deletes `key`, returning its value.
    pub fn delete(&mut self, key: &K) -> Result<Option<V>> {
        let old = self.inner.delete(&self.codec.key(key)?)?;
        old.map(|b| self.codec.read_value(&b)).transpose()
    }

    /// Entries with `from <= key <= to` by serialized key order (either bound may be open).
    pub fn range(&self, from: Option<&K>, to: Option<&K>) -> Result<Vec<(K, V)>> {
        let from = from.map(|k| self.codec.key(k)).transpose()?;
        let to = to.map(|k| self.codec.key(k)).transpose()?;
        self.decode(self.inner.range(from.as_deref(), to.as_deref())?)
    }

    /// Entries whose serialized key starts with the serialized `prefix`.
    pub fn prefix_scan<P: Data>(&self, prefix: &P, prefix_serde: &SharedSerde<P>) -> Result<Vec<(K, V)>> {
        let prefix = prefix_serde
            .serialize(&self.codec.topic, &Headers::new(), prefix)
            .map_err(|source| StreamsError::Serialization {
                target: self.codec.topic.clone(),
                source: Box::new(source),
            })?
            .unwrap_or_default();
        self.decode(self.inner.prefix_scan(&prefix)?)
    }

    /// Every entry.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        self.decode(self.inner.all()?)
    }

    /// Every entry, with each value's timestamp ([`NO_TIMESTAMP`] in a store without timestamps).
    pub fn all_with_timestamp(&self) -> Result<Vec<(K, ValueAndTimestamp<V>)>> {
        self.inner
            .all()?
            .map(|entry| {
                let (k, v) = entry?;
                Ok((self.codec.read_key(&k)?, self.codec.read_timestamped(&v)?))
            })
            .collect()
    }

    /// An estimate of the number of entries.
    pub fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.inner.approximate_num_entries()?)
    }

    /// Whether a record cache sits in front of the store (`Materialized::with_caching_enabled` and
    /// `statestore.cache.max.bytes` > 0). Processors writing a cached store forward their results
    /// from [`take_flushed`](Self::take_flushed) instead of on every update, as Kafka Streams does.
    pub fn is_cached(&self) -> bool {
        self.dirty.is_some()
    }

    /// The entries the cache flushed or evicted since the last call, oldest first.
    pub fn take_flushed(&mut self) -> Result<Vec<CacheFlush<K, V>>> {
        let Some(queue) = &self.dirty else { return Ok(Vec::new()) };
        let entries = match queue.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        entries
            .into_iter()
            .map(|e| {
                let new = e.new_value.as_deref().map(|v| self.codec.read_timestamped(v)).transpose()?;
                // A timestamped store's entry carries its own timestamp (an aggregate's is the
                // largest of its records'), as Kafka Streams' `TimestampedCacheFlushListener` uses.
                let timestamp = match &new {
                    Some(v) if self.is_timestamped() => v.timestamp,
                    _ => e.timestamp,
                };
                Ok(CacheFlush {
                    key: self.codec.read_key(&e.key)?,
                    new: new.map(|v| v.value),
                    old: e.old_value.as_deref().map(|v| self.codec.read_value(v)).transpose()?,
                    timestamp,
                })
            })
            .collect()
    }

    pub(crate) fn with_dirty_queue(mut self, dirty: Option<DirtyQueue>) -> Self {
        self.dirty = dirty;
        self
    }

    pub(crate) fn with_clock(mut self, clock: Option<Arc<AtomicI64>>) -> Self {
        self.codec.clock = clock;
        self
    }

    fn decode(&self, iter: kstreams_state::store::KeyValueIter<'_>) -> Result<Vec<(K, V)>> {
        iter.map(|entry| {
            let (k, v) = entry?;
            Ok((self.codec.read_key(&k)?, self.codec.read_value(&v)?))
        })
        .collect()
    }
}

impl<K: Data, V: Data> RegisteredStore for KeyValueStore<K, V> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn state(&mut self) -> &mut dyn StateStore {
        self.inner.as_mut()
    }
}

/// A window store of `K` to `V` per window.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// /// Counts records per key and minute in the window store `per-minute`.
/// struct PerMinute;
/// impl Processor<String, String, String, i64> for PerMinute {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, i64>, r: Record<String, String>) -> Result<()> {
///         let start = r.timestamp - r.timestamp.rem_euclid(60_000);
///         let store = ctx.window_store::<String, i64>("per-minute")?;
///         let count = store.fetch(&r.key, start)?.unwrap_or(0) + 1;
///         store.put(&r.key, &count, start)?;
///         ctx.forward(Record::new(r.key, count, r.timestamp))
///     }
/// }
/// ```
pub struct WindowStore<K, V> {
    inner: Box<dyn WindowBytesStore>,
    window_size: i64,
    codec: Codec<K, V>,
}

impl<K: Data, V: Data> WindowStore<K, V> {
    pub(crate) fn new(
        inner: Box<dyn WindowBytesStore>,
        topic: String,
        window_size: i64,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> Self {
        WindowStore { inner, window_size, codec: Codec { topic, key_serde, value_serde, clock: None } }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Stores `value` for `key` in the window starting at `window_start`; `false` if that window is
    /// past retention (nothing stored).
    pub fn put(&mut self, key: &K, value: &V, window_start: i64) -> Result<bool> {
        let key = self.codec.key(key)?;
        let value = self.codec.value(value)?;
        Ok(self.inner.put(&key, value.as_deref(), window_start)?)
    }

    /// Stores `value` with `timestamp` (ignored by a store without timestamps) for `key` in the
    /// window starting at `window_start`; `false` if that window is past retention.
    pub fn put_with_timestamp(&mut self, key: &K, value: &V, window_start: i64, timestamp: i64) -> Result<bool> {
        let key = self.codec.key(key)?;
        let value = self.codec.value_at(value, timestamp)?;
        Ok(self.inner.put(&key, value.as_deref(), window_start)?)
    }

    /// The value of `key` in the window starting at `window_start`, with its timestamp
    /// ([`NO_TIMESTAMP`] in a store without timestamps).
    pub fn fetch_with_timestamp(&self, key: &K, window_start: i64) -> Result<Option<ValueAndTimestamp<V>>> {
        self.inner.fetch(&self.codec.key(key)?, window_start)?.map(|b| self.codec.read_timestamped(&b)).transpose()
    }

    pub(crate) fn with_clock(mut self, clock: Option<Arc<AtomicI64>>) -> Self {
        self.codec.clock = clock;
        self
    }

    /// Deletes the value of `key` in the window starting at `window_start`.
    pub fn delete(&mut self, key: &K, window_start: i64) -> Result<()> {
        let key = self.codec.key(key)?;
        self.inner.put(&key, None, window_start)?;
        Ok(())
    }

    /// The value of `key` in the window starting at `window_start`.
    pub fn fetch(&self, key: &K, window_start: i64) -> Result<Option<V>> {
        self.inner.fetch(&self.codec.key(key)?, window_start)?.map(|b| self.codec.read_value(&b)).transpose()
    }

    /// The windows of `key` starting within `[time_from, time_to]`, by start time.
    pub fn fetch_range(&self, key: &K, time_from: i64, time_to: i64) -> Result<Vec<(i64, V)>> {
        self.inner
            .fetch_range(&self.codec.key(key)?, time_from, time_to)?
            .into_iter()
            .map(|(start, b)| Ok((start, self.codec.read_value(&b)?)))
            .collect()
    }

    /// Like [`fetch_range`](Self::fetch_range), with each value's timestamp.
    pub fn fetch_range_with_timestamp(
        &self,
        key: &K,
        time_from: i64,
        time_to: i64,
    ) -> Result<Vec<(i64, ValueAndTimestamp<V>)>> {
        self.inner
            .fetch_range(&self.codec.key(key)?, time_from, time_to)?
            .into_iter()
            .map(|(start, b)| Ok((start, self.codec.read_timestamped(&b)?)))
            .collect()
    }

    /// Every window starting within `[time_from, time_to]`.
    pub fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<Vec<(Windowed<K>, V)>> {
        self.inner
            .fetch_all(time_from, time_to)?
            .into_iter()
            .map(|e| {
                let window = Window::new(e.window_start, e.window_start.saturating_add(self.window_size));
                Ok((Windowed::new(self.codec.read_key(&e.key)?, window), self.codec.read_value(&e.value)?))
            })
            .collect()
    }

    /// Every retained window.
    pub fn all(&self) -> Result<Vec<(Windowed<K>, V)>> {
        self.fetch_all(i64::MIN, i64::MAX)
    }

    /// Every retained window, with each value's timestamp ([`NO_TIMESTAMP`] in a store without
    /// timestamps).
    pub fn all_with_timestamp(&self) -> Result<Vec<(Windowed<K>, ValueAndTimestamp<V>)>> {
        self.inner
            .fetch_all(i64::MIN, i64::MAX)?
            .into_iter()
            .map(|e| {
                let window = Window::new(e.window_start, e.window_start.saturating_add(self.window_size));
                Ok((Windowed::new(self.codec.read_key(&e.key)?, window), self.codec.read_timestamped(&e.value)?))
            })
            .collect()
    }
}

impl<K: Data, V: Data> RegisteredStore for WindowStore<K, V> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn state(&mut self) -> &mut dyn StateStore {
        self.inner.as_mut()
    }
}

/// A session store of `K` to `V` per session.
///
/// ```
/// use kstreams_streams::error::Result;
/// use kstreams_streams::processor::{Processor, ProcessorContext};
/// use kstreams_streams::record::Record;
/// use kstreams_state::SessionWindow;
/// /// Records each click as a session of its own in the session store `clicks`.
/// struct Clicks;
/// impl Processor<String, String> for Clicks {
///     fn process(&mut self, ctx: &mut ProcessorContext<'_, String, String>, r: Record<String, String>) -> Result<()> {
///         let store = ctx.session_store::<String, String>("clicks")?;
///         store.put(&r.key, SessionWindow { start: r.timestamp, end: r.timestamp }, &r.value)?;
///         ctx.forward(r)
///     }
/// }
/// ```
pub struct SessionStore<K, V> {
    inner: Box<dyn SessionBytesStore>,
    codec: Codec<K, V>,
}

impl<K: Data, V: Data> SessionStore<K, V> {
    pub(crate) fn new(
        inner: Box<dyn SessionBytesStore>,
        topic: String,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
    ) -> Self {
        SessionStore { inner, codec: Codec { topic, key_serde, value_serde, clock: None } }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Sessions of `key` that end at or after `earliest_session_end` and start at or before
    /// `latest_session_start`: those a record could merge with.
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<Vec<(SessionWindow, V)>> {
        self.inner
            .find_sessions(&self.codec.key(key)?, earliest_session_end, latest_session_start)?
            .into_iter()
            .map(|(w, b)| Ok((w, self.codec.read_value(&b)?)))
            .collect()
    }

    /// The value of one session.
    pub fn fetch_session(&self, key: &K, window: SessionWindow) -> Result<Option<V>> {
        self.inner.fetch_session(&self.codec.key(key)?, window)?.map(|b| self.codec.read_value(&b)).transpose()
    }

    /// Stores a session; `false` if it is past retention.
    pub fn put(&mut self, key: &K, window: SessionWindow, value: &V) -> Result<bool> {
        let key = self.codec.key(key)?;
        let value = self.codec.value(value)?;
        Ok(self.inner.put(&key, window, value.as_deref())?)
    }

    /// Removes a session.
    pub fn remove(&mut self, key: &K, window: SessionWindow) -> Result<()> {
        let key = self.codec.key(key)?;
        Ok(self.inner.remove(&key, window)?)
    }
}

impl<K: Data, V: Data> RegisteredStore for SessionStore<K, V> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn state(&mut self) -> &mut dyn StateStore {
        self.inner.as_mut()
    }
}
