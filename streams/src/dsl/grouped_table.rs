//! [`KGroupedTable`]: a table re-grouped by a new key, aggregated with an adder and a subtractor.
//!
//! When a row of the source table changes, its old value is subtracted from the aggregate of its old
//! group and its new value added to the aggregate of its new group, so the result stays correct as
//! rows move between groups. Both halves travel through a repartition topic as separate records.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::change::Change;
use crate::dsl::config::{Grouped, Materialized};
use crate::dsl::functions::{Aggregator, KeyValueMapper, Reducer};
use crate::dsl::kstream::KStream;
use crate::dsl::ktable::{configure, KTable};
use crate::dsl::ops::BoxedSupplier;
use crate::error::Result;
use crate::header::Headers;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::{Serde, SerdeError, SharedSerde};
use crate::store::Stores;

/// A table grouped by a new key.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let b = StreamsBuilder::new();
/// // Products per category, kept right as products change category.
/// let products = b.table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("products"));
/// let per_category = products
///     .group_by(|_, category: &String| (category.clone(), 1i64), Grouped::default())
///     .count(Materialized::as_("per-category"));
/// # let _ = per_category;
/// assert!(b.build().is_ok());
/// ```
pub struct KGroupedTable<K, V> {
    stream: KStream<K, Change<V>>,
    value_serde: Option<SharedSerde<V>>,
    grouped_name: Option<String>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Groups the rows by a new key and value; aggregate the groups with the returned table.
    pub fn group_by<KR: Data + PartialEq, VR: Data>(
        &self,
        selector: impl Fn(&K, &V) -> (KR, VR) + Send + Sync + 'static,
        grouped: Grouped<KR, VR>,
    ) -> KGroupedTable<KR, VR> {
        let mut inner = self.builder.borrow_mut();
        let name = inner.new_name("KTABLE-SELECT-");
        let key_serde = inner.serde(grouped.key_serde.clone(), None, &format!("key of the grouping `{name}`"));
        let value_serde = inner.serde(grouped.value_serde.clone(), None, &format!("value of the grouping `{name}`"));
        let selector = Arc::new(selector);
        let result = inner
            .topology
            .add_processor(&name, move || SplitChange { selector: selector.clone(), _t: PhantomData }, &[&self.node])
            .map(|_| ());
        inner.check(result);
        drop(inner);
        let stream: KStream<KR, Change<VR>> = KStream::new(
            self.builder.clone(),
            name,
            Some(key_serde),
            Some(Arc::new(ChangeSerde { inner: value_serde.clone() })),
            true,
        );
        KGroupedTable { stream, value_serde: Some(value_serde), grouped_name: grouped.name }
    }
}

/// Maps a row change to (new group, added value) and (old group, subtracted value). As in Kafka
/// Streams (KIP-904), a change that stays in its group travels as one record carrying both values, so
/// the aggregate never shows a transient subtraction; otherwise the subtraction goes first.
struct SplitChange<K, V, KR, VR> {
    selector: KeyValueMapper<K, V, KR, VR>,
    _t: PhantomData<fn(K, V)>,
}

impl<K: Data, V: Data, KR: Data + PartialEq, VR: Data> Processor<K, Change<V>, KR, Change<VR>>
    for SplitChange<K, V, KR, VR>
{
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KR, Change<VR>>, r: Record<K, Change<V>>) -> Result<()> {
        let old = r.value.old.as_ref().map(|v| (self.selector)(&r.key, v));
        let new = r.value.new.as_ref().map(|v| (self.selector)(&r.key, v));
        match (old, new) {
            (Some((old_key, old)), Some((new_key, new))) if old_key == new_key => ctx.forward(Record {
                key: new_key,
                value: Change { new: Some(new), old: Some(old) },
                timestamp: r.timestamp,
                headers: r.headers,
            }),
            (old, new) => {
                if let Some((key, value)) = old {
                    let value = Change { new: None, old: Some(value) };
                    ctx.forward(Record { key, value, timestamp: r.timestamp, headers: r.headers.clone() })?;
                }
                if let Some((key, value)) = new {
                    let value = Change { new: Some(value), old: None };
                    ctx.forward(Record { key, value, timestamp: r.timestamp, headers: r.headers })?;
                }
                Ok(())
            }
        }
    }
}

/// A change on the wire, in Kafka Streams' format (`ChangedSerializer`, KIP-904): the subtracted
/// value then flag 0; the added value then flag 1; or both, as the added value's length (a zig-zag
/// varint), the added value, the subtracted value, then flag 2.
struct ChangeSerde<V> {
    inner: SharedSerde<V>,
}

fn write_varint(value: i32, out: &mut Vec<u8>) {
    let mut v = ((value << 1) ^ (value >> 31)) as u32;
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A zig-zag varint at the start of `bytes`, and the bytes it took.
fn read_varint(bytes: &[u8]) -> Option<(i32, usize)> {
    let mut v: u32 = 0;
    for (i, b) in bytes.iter().enumerate().take(5) {
        v |= u32::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((((v >> 1) as i32) ^ -((v & 1) as i32), i + 1));
        }
    }
    None
}

impl<V: Data> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &Change<V>) -> Result<Option<Vec<u8>>, SerdeError> {
        let bytes =
            |v: &V| -> Result<Vec<u8>, SerdeError> { Ok(self.inner.serialize(topic, headers, v)?.unwrap_or_default()) };
        let out = match (&data.new, &data.old) {
            (Some(new), Some(old)) => {
                let (new, old) = (bytes(new)?, bytes(old)?);
                let mut out = Vec::with_capacity(new.len() + old.len() + 6);
                write_varint(new.len() as i32, &mut out);
                out.extend(new);
                out.extend(old);
                out.push(2);
                out
            }
            (Some(new), None) => {
                let mut out = bytes(new)?;
                out.push(1);
                out
            }
            (None, Some(old)) => {
                let mut out = bytes(old)?;
                out.push(0);
                out
            }
            (None, None) => {
                return Err(SerdeError::Encode {
                    topic: topic.into(),
                    serde: "table change",
                    detail: "a repartitioned change carries at least one value".into(),
                })
            }
        };
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<Change<V>, SerdeError> {
        let bytes = data.ok_or(SerdeError::Null { topic: topic.into(), serde: "table change", what: "data" })?;
        let malformed = |detail: String| SerdeError::Malformed { topic: topic.into(), serde: "table change", detail };
        let Some((&flag, body)) = bytes.split_last() else { return Err(malformed("empty".into())) };
        let value = |b: &[u8]| self.inner.deserialize(topic, headers, Some(b));
        match flag {
            1 => Ok(Change { new: Some(value(body)?), old: None }),
            0 => Ok(Change { new: None, old: Some(value(body)?) }),
            2 => {
                let (len, used) = read_varint(body).ok_or_else(|| malformed("bad length".into()))?;
                let rest = &body[used..];
                let len = usize::try_from(len).ok().filter(|l| *l <= rest.len());
                let len = len.ok_or_else(|| malformed("length past the end".into()))?;
                Ok(Change { new: Some(value(&rest[..len])?), old: Some(value(&rest[len..])?) })
            }
            f => Err(malformed(format!("flag byte {f}"))),
        }
    }
}

/// Applies added and subtracted values to the aggregate of their group, as Kafka Streams'
/// `KTableAggregate`: a value is subtracted only from an aggregate that exists, and added to it (or
/// to a fresh one).
struct TableAggregate<K, V, VA> {
    store: String,
    initializer: Arc<dyn Fn() -> VA + Send + Sync>,
    adder: Aggregator<K, V, VA>,
    subtractor: Aggregator<K, V, VA>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, Change<V>, K, Change<VA>> for TableAggregate<K, V, VA> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>, r: Record<K, Change<V>>) -> Result<()> {
        let store = ctx.key_value_store::<K, VA>(&self.store)?;
        let stored = store.get_with_timestamp(&r.key)?;
        // The result's timestamp: the record's, or the larger of it and the stored aggregate's when
        // that aggregate is changed.
        let later = stored.as_ref().map_or(r.timestamp, |s| s.timestamp.max(r.timestamp));
        let old = stored.map(|s| s.value);
        let mut timestamp = r.timestamp;
        let intermediate = match (r.value.old, &old) {
            (Some(v), Some(agg)) => {
                timestamp = later;
                Some((self.subtractor)(&r.key, v, agg.clone()))
            }
            _ => old.clone(),
        };
        let new = match r.value.new {
            Some(v) => {
                if old.is_some() {
                    timestamp = later;
                }
                Some((self.adder)(&r.key, v, intermediate.unwrap_or_else(|| (self.initializer)())))
            }
            None => intermediate,
        };
        match &new {
            Some(agg) => store.put_with_timestamp(&r.key, agg, timestamp)?,
            None => {
                store.delete(&r.key)?;
            }
        }
        ctx.forward(Record { key: r.key, value: Change { new, old }, timestamp, headers: r.headers })
    }
}

/// reduce: the first value starts the group's aggregate (Kafka Streams' `KTableReduce`).
struct TableReduce<K, V> {
    store: String,
    adder: Reducer<V>,
    subtractor: Reducer<V>,
    _k: PhantomData<fn(K)>,
}

impl<K: Data, V: Data> Processor<K, Change<V>, K, Change<V>> for TableReduce<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, r: Record<K, Change<V>>) -> Result<()> {
        let store = ctx.key_value_store::<K, V>(&self.store)?;
        let stored = store.get_with_timestamp(&r.key)?;
        let later = stored.as_ref().map_or(r.timestamp, |s| s.timestamp.max(r.timestamp));
        let old = stored.map(|s| s.value);
        let mut timestamp = r.timestamp;
        let intermediate = match (r.value.old, &old) {
            (Some(v), Some(agg)) => {
                timestamp = later;
                Some((self.subtractor)(agg.clone(), v))
            }
            _ => old.clone(),
        };
        let new = match (r.value.new, intermediate) {
            (Some(v), Some(agg)) => {
                timestamp = later;
                Some((self.adder)(agg, v))
            }
            (Some(v), None) => Some(v),
            (None, agg) => agg,
        };
        match &new {
            Some(agg) => store.put_with_timestamp(&r.key, agg, timestamp)?,
            None => {
                store.delete(&r.key)?;
            }
        }
        ctx.forward(Record { key: r.key, value: Change { new, old }, timestamp, headers: r.headers })
    }
}

impl<K: Data, V: Data> KGroupedTable<K, V> {
    /// Aggregates each group: `adder` for values joining it, `subtractor` for values leaving it.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let (initializer, adder, subtractor) = (Arc::new(initializer), Arc::new(adder), Arc::new(subtractor));
        self.aggregate_with("KTABLE-AGGREGATE-", materialized, None, move |store| {
            Box::new(move || {
                Box::new(TableAggregate {
                    store: store.clone(),
                    initializer: initializer.clone(),
                    adder: adder.clone(),
                    subtractor: subtractor.clone(),
                })
            })
        })
    }

    /// Combines the values of each group with `adder`, taking leaving values out with `subtractor`.
    pub fn reduce(
        &self,
        adder: impl Fn(V, V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let (adder, subtractor): (Reducer<V>, Reducer<V>) = (Arc::new(adder), Arc::new(subtractor));
        let inherited = self.value_serde.clone();
        self.aggregate_with("KTABLE-REDUCE-", materialized, inherited, move |store| {
            Box::new(move || {
                Box::new(TableReduce {
                    store: store.clone(),
                    adder: adder.clone(),
                    subtractor: subtractor.clone(),
                    _k: PhantomData,
                })
            })
        })
    }

    /// Counts the rows in each group.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.aggregate(|| 0i64, |_, _, c| c + 1, |_, _, c| c - 1, materialized)
    }

    fn aggregate_with<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        inherited_value_serde: Option<SharedSerde<VA>>,
        supplier: impl FnOnce(String) -> Box<dyn Fn() -> Box<dyn Processor<K, Change<V>, K, Change<VA>>> + Send + Sync>,
    ) -> KTable<K, VA> {
        let store = match &materialized.store_name {
            Some(s) => s.clone(),
            None => self.stream.builder.borrow_mut().new_store_name(&format!("{prefix}STATE-STORE-")),
        };
        let name = self.stream.builder.borrow_mut().new_name(prefix);
        let prefix_topic = self.grouped_name.clone().unwrap_or_else(|| store.clone());
        let mut inner = self.stream.builder.borrow_mut();
        let ks = inner.serde(None, self.stream.key_serde.as_ref(), "key of the grouping");
        let vs = inner.serde(None, self.stream.value_serde.as_ref(), "value of the grouping");
        drop(inner);
        let stream = self.stream.through_repartition_topic(&prefix_topic, ks.clone(), vs, None, None);
        let mut inner = self.stream.builder.borrow_mut();
        let key_serde = inner.serde(materialized.key_serde.clone(), Some(&ks), &format!("key of store `{store}`"));
        let value_serde = inner.serde(
            materialized.value_serde.clone(),
            inherited_value_serde.as_ref(),
            &format!("value of store `{store}`"),
        );
        let builder =
            configure(Stores::timestamped_key_value(&store, key_serde.clone(), value_serde.clone()), &materialized);
        let result = inner
            .topology
            .add_processor(&name, BoxedSupplier(supplier(store.clone())), &[&stream.node])
            .and_then(|t| t.add_state_store(builder, &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KTable::new(self.stream.builder.clone(), name, Some(store), Some(key_serde), Some(value_serde))
    }
}
