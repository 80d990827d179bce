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
    pub fn group_by<KR: Data, VR: Data>(
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

/// Maps a row change to (new group, added value) and (old group, subtracted value).
struct SplitChange<K, V, KR, VR> {
    selector: KeyValueMapper<K, V, KR, VR>,
    _t: PhantomData<fn(K, V)>,
}

impl<K: Data, V: Data, KR: Data, VR: Data> Processor<K, Change<V>, KR, Change<VR>> for SplitChange<K, V, KR, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, KR, Change<VR>>, r: Record<K, Change<V>>) -> Result<()> {
        // Subtract first, so a row that stays in its group never counts twice.
        if let Some(old) = &r.value.old {
            let (key, value) = (self.selector)(&r.key, old);
            ctx.forward(Record {
                key,
                value: Change { new: None, old: Some(value) },
                timestamp: r.timestamp,
                headers: r.headers.clone(),
            })?;
        }
        if let Some(new) = &r.value.new {
            let (key, value) = (self.selector)(&r.key, new);
            ctx.forward(Record {
                key,
                value: Change { new: Some(value), old: None },
                timestamp: r.timestamp,
                headers: r.headers,
            })?;
        }
        Ok(())
    }
}

/// A one-sided change on the wire: a flag byte (1 = added value, 0 = subtracted value), then the
/// value's bytes.
struct ChangeSerde<V> {
    inner: SharedSerde<V>,
}

impl<V: Data> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, topic: &str, headers: &Headers, data: &Change<V>) -> Result<Option<Vec<u8>>, SerdeError> {
        let (flag, value) = match (&data.new, &data.old) {
            (Some(v), None) => (1u8, v),
            (None, Some(v)) => (0u8, v),
            _ => {
                return Err(SerdeError::Encode {
                    topic: topic.into(),
                    serde: "table change",
                    detail: "a repartitioned change carries exactly one side".into(),
                })
            }
        };
        let mut out = vec![flag];
        out.extend(self.inner.serialize(topic, headers, value)?.unwrap_or_default());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, headers: &Headers, data: Option<&[u8]>) -> Result<Change<V>, SerdeError> {
        let bytes = data.ok_or(SerdeError::Null { topic: topic.into(), serde: "table change", what: "data" })?;
        let Some((&flag, rest)) = bytes.split_first() else {
            return Err(SerdeError::Malformed { topic: topic.into(), serde: "table change", detail: "empty".into() });
        };
        let value = self.inner.deserialize(topic, headers, Some(rest))?;
        match flag {
            1 => Ok(Change { new: Some(value), old: None }),
            0 => Ok(Change { new: None, old: Some(value) }),
            f => Err(SerdeError::Malformed {
                topic: topic.into(),
                serde: "table change",
                detail: format!("flag byte {f}"),
            }),
        }
    }
}

/// Applies added and subtracted values to the aggregate of their group.
struct TableAggregate<K, V, VA> {
    store: String,
    initializer: Arc<dyn Fn() -> VA + Send + Sync>,
    adder: Aggregator<K, V, VA>,
    subtractor: Aggregator<K, V, VA>,
}

impl<K: Data, V: Data, VA: Data> Processor<K, Change<V>, K, Change<VA>> for TableAggregate<K, V, VA> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VA>>, r: Record<K, Change<V>>) -> Result<()> {
        let store = ctx.key_value_store::<K, VA>(&self.store)?;
        let old = store.get(&r.key)?;
        let mut agg = old.clone().unwrap_or_else(|| (self.initializer)());
        if let Some(v) = r.value.old {
            agg = (self.subtractor)(&r.key, v, agg);
        }
        if let Some(v) = r.value.new {
            agg = (self.adder)(&r.key, v, agg);
        }
        store.put(&r.key, &agg)?;
        ctx.forward(Record {
            key: r.key,
            value: Change { new: Some(agg), old },
            timestamp: r.timestamp,
            headers: r.headers,
        })
    }
}

/// reduce: the first value starts the group's aggregate; a group whose values all left is deleted.
struct TableReduce<K, V> {
    store: String,
    adder: Reducer<V>,
    subtractor: Reducer<V>,
    _k: PhantomData<fn(K)>,
}

impl<K: Data, V: Data> Processor<K, Change<V>, K, Change<V>> for TableReduce<K, V> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>, r: Record<K, Change<V>>) -> Result<()> {
        let store = ctx.key_value_store::<K, V>(&self.store)?;
        let old = store.get(&r.key)?;
        let mut agg = old.clone();
        if let Some(v) = r.value.old {
            agg = agg.map(|a| (self.subtractor)(a, v));
        }
        if let Some(v) = r.value.new {
            agg = Some(match agg {
                Some(a) => (self.adder)(a, v),
                None => v,
            });
        }
        match &agg {
            Some(a) => store.put(&r.key, a)?,
            None => {
                store.delete(&r.key)?;
            }
        }
        ctx.forward(Record { key: r.key, value: Change { new: agg, old }, timestamp: r.timestamp, headers: r.headers })
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
        let builder = configure(Stores::key_value(&store, key_serde.clone(), value_serde.clone()), &materialized);
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
