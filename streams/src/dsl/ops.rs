//! The processors behind DSL operators. Each is an ordinary [`Processor`], so DSL topologies run
//! through the same path as hand-built ones.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::change::Change;
use crate::dsl::functions::{Aggregator, Reducer, ValueMapperWithKey};
use crate::error::Result;
use crate::processor::{Processor, ProcessorContext, ProcessorSupplier};
use crate::record::{Data, Record};

/// What a stateless operator makes of one record.
pub(crate) enum Emit<K, V> {
    None,
    One(Record<K, V>),
    Many(Vec<Record<K, V>>),
}

type StatelessFn<K, V, KR, VR> = dyn Fn(Record<K, V>) -> Emit<KR, VR> + Send + Sync;

/// map, map_values, flat_map, filter, select_key, peek, merge…: a function from a record to records.
pub(crate) struct Stateless<K, V, KR, VR> {
    f: Arc<StatelessFn<K, V, KR, VR>>,
}

impl<K, V, KR, VR> Stateless<K, V, KR, VR> {
    pub fn supplier(
        f: impl Fn(Record<K, V>) -> Emit<KR, VR> + Send + Sync + 'static,
    ) -> impl Fn() -> Stateless<K, V, KR, VR> + Send + Sync + 'static
    where
        K: 'static,
        V: 'static,
        KR: 'static,
        VR: 'static,
    {
        let f: Arc<StatelessFn<K, V, KR, VR>> = Arc::new(f);
        move || Stateless { f: f.clone() }
    }
}

impl<K: Data, V: Data, KR: Data, VR: Data> Processor<K, V, KR, VR> for Stateless<K, V, KR, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KR, VR>, record: Record<K, V>) -> Result<()> {
        match (self.f)(record) {
            Emit::None => Ok(()),
            Emit::One(r) => ctx.forward(r),
            Emit::Many(rs) => rs.into_iter().try_for_each(|r| ctx.forward(r)),
        }
    }
}

/// Drops records whose key serializes to null before a repartition topic (they have no partition),
/// counting and logging each.
pub(crate) struct DropNullKeys<K, V> {
    pub key_serde: crate::serde::SharedSerde<K>,
    pub topic: String,
    pub _v: PhantomData<fn(V)>,
}

impl<K: Data, V: Data> Processor<K, V> for DropNullKeys<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, V>, record: Record<K, V>) -> Result<()> {
        match self.key_serde.serialize(&self.topic, &record.headers, &record.key) {
            Ok(None) => {
                ctx.record_dropped("null key before a repartition topic");
                Ok(())
            }
            // A key that cannot be serialized fails in the sink, with the sink's error.
            _ => ctx.forward(record),
        }
    }
}

/// count, reduce and aggregate of a grouped stream: keeps one aggregate per key.
pub(crate) struct StreamAggregate<K, V, VA> {
    pub store: String,
    pub initializer: Arc<dyn Fn() -> VA + Send + Sync>,
    pub aggregator: Aggregator<K, V, VA>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, K, Change<VA>> for StreamAggregate<K, V, VA> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>, record: Record<K, V>) -> Result<()> {
        let store = ctx.key_value_store::<K, VA>(&self.store)?;
        let old = store.get_with_timestamp(&record.key)?;
        // As Kafka Streams: an aggregate's timestamp is the largest of its records'.
        let timestamp = old.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
        let old = old.map(|o| o.value);
        let base = old.clone().unwrap_or_else(|| (self.initializer)());
        let new = (self.aggregator)(&record.key, record.value, base);
        store.put_with_timestamp(&record.key, &new, timestamp)?;
        if store.is_cached() {
            return Ok(()); // forwarded when the cache flushes
        }
        let (key, headers) = (record.key, record.headers);
        ctx.forward(Record { key, value: Change { new: Some(new), old }, timestamp, headers })
    }

    fn flush_cache(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>) -> Result<()> {
        forward_flushed::<K, VA>(ctx, &self.store)
    }
}

/// Forwards the entries a cached aggregation store flushed, as changes (Kafka Streams'
/// `TimestampedCacheFlushListener`).
fn forward_flushed<K: Data, V: Data>(ctx: &mut ProcessorContext<'_, K, Change<V>>, store: &str) -> Result<()> {
    let flushed = ctx.key_value_store::<K, V>(store)?.take_flushed()?;
    for f in flushed {
        let value = Change { new: f.new, old: f.old };
        ctx.forward(Record { key: f.key, value, timestamp: f.timestamp, headers: Default::default() })?;
    }
    Ok(())
}

/// reduce: the first value starts the aggregate.
pub(crate) struct StreamReduce<K, V> {
    pub store: String,
    pub reducer: Reducer<V>,
    pub _k: PhantomData<fn(K)>,
}

impl<K: Data, V: Data> Processor<K, V, K, Change<V>> for StreamReduce<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, record: Record<K, V>) -> Result<()> {
        let store = ctx.key_value_store::<K, V>(&self.store)?;
        let old = store.get_with_timestamp(&record.key)?;
        let timestamp = old.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
        let old = old.map(|o| o.value);
        let new = match old.clone() {
            Some(agg) => (self.reducer)(agg, record.value),
            None => record.value,
        };
        store.put_with_timestamp(&record.key, &new, timestamp)?;
        if store.is_cached() {
            return Ok(()); // forwarded when the cache flushes
        }
        let (key, headers) = (record.key, record.headers);
        ctx.forward(Record { key, value: Change { new: Some(new), old }, timestamp, headers })
    }

    fn flush_cache(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        forward_flushed::<K, V>(ctx, &self.store)
    }
}

/// A table read from a topic: upserts and deletes into its store, forwarding each change.
pub(crate) struct TableSource<K, V> {
    pub store: String,
    pub _types: PhantomData<fn(K, V)>,
}

impl<K: Data, V: Data> Processor<K, Option<V>, K, Change<V>> for TableSource<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, record: Record<K, Option<V>>) -> Result<()> {
        let store = ctx.key_value_store::<K, V>(&self.store)?;
        let old = match &record.value {
            Some(v) => {
                let old = store.get(&record.key)?;
                store.put(&record.key, v)?;
                old
            }
            None => store.delete(&record.key)?,
        };
        // A delete of a key the table does not hold is still forwarded (as an empty change), as
        // Kafka Streams' `KTableSource` does: joins emit it as a tombstone of their own.
        let (key, timestamp, headers) = (record.key, record.timestamp, record.headers);
        ctx.forward(Record { key, value: Change { new: record.value, old }, timestamp, headers })
    }
}

/// The table source of [`KStream::to_table`](super::KStream::to_table): each record upserts its key.
pub(crate) struct StreamTableSource<K, V>(pub TableSource<K, V>);

impl<K: Data, V: Data> Processor<K, V, K, Change<V>> for StreamTableSource<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, record: Record<K, V>) -> Result<()> {
        let Record { key, value, timestamp, headers } = record;
        self.0.process(ctx, Record { key, value: Some(value), timestamp, headers })
    }
}

/// A table operator that maps each change and may materialize the result.
pub(crate) struct TableMap<K, V, VR> {
    /// Maps a value; `None` drops it (filter).
    pub f: ValueMapperWithKey<K, V, VR>,
    pub store: Option<String>,
    /// Drops changes that are empty after mapping (neither a new nor an old value).
    pub skip_empty: bool,
}

impl<K: Data, V: Data, VR: Data> Processor<K, Change<V>, K, Change<VR>> for TableMap<K, V, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VR>>, record: Record<K, Change<V>>) -> Result<()> {
        let key = record.key;
        let new = record.value.new.and_then(|v| (self.f)(&key, v));
        let old = match &self.store {
            Some(name) => {
                let store = ctx.key_value_store::<K, VR>(name)?;
                let old = store.get(&key)?;
                match &new {
                    Some(v) => store.put(&key, v)?,
                    None => {
                        store.delete(&key)?;
                    }
                }
                old
            }
            None => record.value.old.and_then(|v| (self.f)(&key, v)),
        };
        if self.skip_empty && new.is_none() && old.is_none() {
            return Ok(());
        }
        ctx.forward(Record { key, value: Change { new, old }, timestamp: record.timestamp, headers: record.headers })
    }
}

/// KTable::to_stream: every change becomes a record with the new value (`None` for a delete).
pub(crate) struct TableToStream<K, V>(pub PhantomData<fn(K, V)>);

impl<K: Data, V: Data> Processor<K, Change<V>, K, Option<V>> for TableToStream<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Option<V>>, record: Record<K, Change<V>>) -> Result<()> {
        let new = record.value.new;
        ctx.forward(Record { key: record.key, value: new, timestamp: record.timestamp, headers: record.headers })
    }
}

/// A stream joined with a table: each stream record looks up the table's store. The joiner returns
/// `None` where the join has no result (an inner join without a match).
pub(crate) struct StreamTableJoin<K, V, VT, VR> {
    pub store: String,
    pub joiner: Arc<dyn Fn(V, Option<VT>) -> Option<VR> + Send + Sync>,
    pub _k: PhantomData<fn(K)>,
}

impl<K: Data, V: Data, VT: Data, VR: Data> Processor<K, V, K, VR> for StreamTableJoin<K, V, VT, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, VR>, record: Record<K, V>) -> Result<()> {
        let other = ctx.key_value_store::<K, VT>(&self.store)?.get(&record.key)?;
        match (self.joiner)(record.value, other) {
            Some(value) => {
                ctx.forward(Record { key: record.key, value, timestamp: record.timestamp, headers: record.headers })
            }
            None => Ok(()),
        }
    }
}

/// Builds a fresh processor for each task.
pub(crate) type ProcessorFactory<KIn, VIn, KOut, VOut> =
    Box<dyn Fn() -> Box<dyn Processor<KIn, VIn, KOut, VOut>> + Send + Sync>;

/// A supplier over a boxed factory, so operators can share one construction path.
pub(crate) struct BoxedSupplier<KIn, VIn, KOut, VOut>(pub ProcessorFactory<KIn, VIn, KOut, VOut>);

impl<KIn: Data, VIn: Data, KOut: Data, VOut: Data> ProcessorSupplier<KIn, VIn, KOut, VOut>
    for BoxedSupplier<KIn, VIn, KOut, VOut>
{
    fn get(&self) -> Box<dyn Processor<KIn, VIn, KOut, VOut>> {
        (self.0)()
    }
}
