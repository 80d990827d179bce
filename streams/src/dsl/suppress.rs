//! `suppress(until_window_closes)`: hold back a windowed table's updates and emit one final result
//! per window once it closes (stream time passes its end plus grace).
//!
//! The buffer is a change-logged key-value store keyed by (window end, windowed key), so closed windows
//! come first in a scan and the buffer survives restarts like any other store.

use std::sync::Arc;

use crate::dsl::change::Change;
use crate::dsl::ktable::KTable;
use crate::error::Result;
use crate::header::Headers;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::{Serde, SerdeError, SharedSerde};
use crate::store::Stores;
use crate::windowed::Windowed;

/// How a table's updates are suppressed.
///
/// ```
/// use kstreams_streams::dsl::Suppressed;
/// let s = Suppressed::until_window_closes().with_name("final-counts");
/// # let _ = s;
/// ```
#[derive(Debug, Clone, Default)]
pub struct Suppressed {
    name: Option<String>,
}

impl Suppressed {
    /// Emit only the final result of each window, when it closes. The buffer is unbounded (bounded by
    /// the number of open windows).
    pub fn until_window_closes() -> Self {
        Suppressed::default()
    }

    /// Names the suppression processor and its buffer store (`<name>-store`).
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }
}

impl<K: Data, V: Data> KTable<Windowed<K>, V> {
    /// Holds back updates until their window closes, then emits the window's final value once.
    /// Only tables from windowed aggregations can be suppressed this way.
    pub fn suppress(&self, suppressed: Suppressed) -> KTable<Windowed<K>, V> {
        let mut inner = self.builder.borrow_mut();
        let name = suppressed.name.clone().unwrap_or_else(|| inner.new_name("KTABLE-SUPPRESS-"));
        let store = format!("{name}-store");
        let Some(window) = self.window.clone() else {
            inner.check(Err(crate::StreamsError::Topology(format!(
                "suppress `{name}`: only a windowed aggregation's table can be suppressed until its windows close"
            ))));
            drop(inner);
            return KTable::new(self.builder.clone(), name, None, None, self.value_serde.clone());
        };
        let value_serde = inner.serde(None, self.value_serde.as_ref(), &format!("value of suppression `{name}`"));
        let key_serde: SharedSerde<BufferKey<K>> = Arc::new(BufferKeySerde { windowed: window.key_serde.clone() });
        let buffered: SharedSerde<Stamped<V>> = Arc::new(StampedSerde { inner: value_serde.clone() });
        let grace = window.grace_ms;
        let store_name = store.clone();
        let result = inner
            .topology
            .add_processor(
                &name,
                move || Suppress::<K, V> {
                    store: store_name.clone(),
                    grace,
                    next_due: None,
                    _v: std::marker::PhantomData,
                },
                &[&self.node],
            )
            .and_then(|t| t.add_state_store(Stores::key_value(&store, key_serde, buffered), &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        let mut table = KTable::new(self.builder.clone(), name, None, self.key_serde.clone(), Some(value_serde));
        table.window = Some(window);
        table
    }
}

/// Buffer key: the window end first (so a scan meets closed windows first), then the windowed key.
#[derive(Clone)]
struct BufferKey<K> {
    end: i64,
    key: Windowed<K>,
}

struct BufferKeySerde<K> {
    windowed: SharedSerde<Windowed<K>>,
}

impl<K: Data> Serde<BufferKey<K>> for BufferKeySerde<K> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &BufferKey<K>) -> Result<Option<Vec<u8>>, SerdeError> {
        // Flipping the sign bit makes big-endian bytes sort like the signed numbers.
        let mut out = ((data.end as u64) ^ (1 << 63)).to_be_bytes().to_vec();
        out.extend(self.windowed.serialize(topic, headers, &data.key)?.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<BufferKey<K>, SerdeError> {
        let bytes = data.ok_or(SerdeError::Null { topic: topic.into(), serde: "suppress buffer key", what: "data" })?;
        if bytes.len() < 8 {
            return Err(SerdeError::Malformed {
                topic: topic.into(),
                serde: "suppress buffer key",
                detail: format!("{} bytes, expected at least 8", bytes.len()),
            });
        }
        let mut end = [0u8; 8];
        end.copy_from_slice(&bytes[..8]);
        let end = (u64::from_be_bytes(end) ^ (1 << 63)) as i64;
        Ok(BufferKey { end, key: self.windowed.deserialize(topic, headers, Some(&bytes[8..]))? })
    }
}

/// A buffered value with the timestamp of the update that produced it (emitted with it, as in
/// Kafka Streams).
#[derive(Clone)]
struct Stamped<V> {
    timestamp: i64,
    value: V,
}

struct StampedSerde<V> {
    inner: SharedSerde<V>,
}

impl<V: Data> Serde<Stamped<V>> for StampedSerde<V> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &Stamped<V>) -> Result<Option<Vec<u8>>, SerdeError> {
        let mut out = data.timestamp.to_be_bytes().to_vec();
        out.extend(self.inner.serialize(topic, headers, &data.value)?.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<Stamped<V>, SerdeError> {
        let bytes =
            data.ok_or(SerdeError::Null { topic: topic.into(), serde: "suppress buffer value", what: "data" })?;
        let (ts, rest) = bytes.split_at_checked(8).ok_or_else(|| SerdeError::Malformed {
            topic: topic.into(),
            serde: "suppress buffer value",
            detail: format!("{} bytes, expected at least 8", bytes.len()),
        })?;
        let mut t = [0u8; 8];
        t.copy_from_slice(ts);
        Ok(Stamped { timestamp: i64::from_be_bytes(t), value: self.inner.deserialize(topic, headers, Some(rest))? })
    }
}

struct Suppress<K, V> {
    store: String,
    grace: i64,
    /// The earliest window end in the buffer, if known: nothing is due before it closes.
    next_due: Option<i64>,
    _v: std::marker::PhantomData<fn(K, V)>,
}

impl<K: Data, V: Data> Suppress<K, V> {
    fn emit_closed(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<V>>) -> Result<()> {
        let now = ctx.current_stream_time_ms();
        if self.next_due.is_some_and(|end| end.saturating_add(self.grace) > now) {
            return Ok(());
        }
        let entries = ctx.key_value_store::<BufferKey<K>, Stamped<V>>(&self.store)?.all()?;
        self.next_due = None;
        for (key, value) in entries {
            if key.end.saturating_add(self.grace) > now {
                self.next_due = Some(key.end);
                break;
            }
            ctx.key_value_store::<BufferKey<K>, Stamped<V>>(&self.store)?.delete(&key)?;
            ctx.forward(Record::new(key.key, Change { new: Some(value.value), old: None }, value.timestamp))?;
        }
        Ok(())
    }
}

impl<K: Data, V: Data> Processor<Windowed<K>, Change<V>, Windowed<K>, Change<V>> for Suppress<K, V> {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<V>>,
        record: Record<Windowed<K>, Change<V>>,
    ) -> Result<()> {
        let end = record.key.window().end();
        let key = BufferKey { end, key: record.key };
        let store = ctx.key_value_store::<BufferKey<K>, Stamped<V>>(&self.store)?;
        match record.value.new {
            Some(value) => store.put(&key, &Stamped { timestamp: record.timestamp, value })?,
            None => {
                store.delete(&key)?;
            }
        }
        self.next_due = Some(self.next_due.map_or(end, |d| d.min(end)));
        self.emit_closed(ctx)
    }
}
