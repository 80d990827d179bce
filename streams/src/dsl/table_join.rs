//! Table-table joins: inner, left and outer, on the tables' current values.
//!
//! Each side has a processor that, on an update of its table, looks the key up in the other table's
//! store and forwards the change of the joined row (new and old result); a merge node joins both
//! streams of changes into the result table.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::dsl::change::Change;
use crate::dsl::ktable::KTable;
use crate::dsl::ops::{Emit, Stateless};
use crate::error::Result;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};

/// The join of one row: `None` when the join has no row for these values.
type Joiner<V, VO, VR> = Arc<dyn Fn(Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync>;

/// One side of a table-table join.
struct TableJoinSide<K, V, VO, VR> {
    other_store: String,
    joiner: Joiner<V, VO, VR>,
    /// The joined row needs the other table's row (inner joins, and the right side of a left
    /// join): an update finding no row there changes nothing.
    requires_other: bool,
    _k: PhantomData<fn(K)>,
}

impl<K: Data, V: Data, VO: Data, VR: Data> Processor<K, Change<V>, K, Change<VR>> for TableJoinSide<K, V, VO, VR> {
    /// As Kafka Streams' `KTableKTable{Inner,Left,Right,Outer}Join`: without the other row, an
    /// inner join (or a left join's right side) emits nothing, the others emit unless the update
    /// itself is empty; with it, even the delete of a key this table never held becomes a tombstone
    /// of the joined row (or, in an outer join, the other side's row alone).
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, Change<VR>>, record: Record<K, Change<V>>) -> Result<()> {
        let other = ctx.key_value_store::<K, VO>(&self.other_store)?.get_with_timestamp(&record.key)?;
        // The joined row's timestamp is the later of both rows'.
        let timestamp = other.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
        let other = other.map(|o| o.value);
        if other.is_none() && (self.requires_other || (record.value.new.is_none() && record.value.old.is_none())) {
            return Ok(());
        }
        let new = (self.joiner)(record.value.new.as_ref(), other.as_ref());
        let old = (self.joiner)(record.value.old.as_ref(), other.as_ref());
        ctx.forward(Record { key: record.key, value: Change { new, old }, timestamp, headers: record.headers })
    }
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Joins with `other` on the key: a row exists while both tables have the key.
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Materialized, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// let b = StreamsBuilder::new();
    /// let stock = b.table("stock", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("stock"));
    /// let demand = b.table("demand", Consumed::with(Serdes::string(), Serdes::i64()), Materialized::as_("demand"));
    /// let shortfall = stock.join(&demand, |s: &i64, d: &i64| d - s);
    /// # let _ = shortfall;
    /// assert!(b.build().is_ok());
    /// ```
    pub fn join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |v, o| match (v, o) {
            (Some(v), Some(o)) => Some(joiner(v, o)),
            _ => None,
        });
        self.join_tables(other, ["KTABLE-JOINTHIS-", "KTABLE-JOINOTHER-"], joiner, [true, true])
    }

    /// Joins with `other`: a row exists while this table has the key; the other value may be missing.
    pub fn left_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, VO, VR> = Arc::new(move |v, o| v.map(|v| joiner(v, o)));
        self.join_tables(other, ["KTABLE-LEFTTHIS-", "KTABLE-LEFTOTHER-"], joiner, [false, true])
    }

    /// Joins with `other`: a row exists while either table has the key.
    pub fn outer_join<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let joiner: Joiner<V, VO, VR> =
            Arc::new(move |v, o| if v.is_none() && o.is_none() { None } else { Some(joiner(v, o)) });
        self.join_tables(other, ["KTABLE-OUTERTHIS-", "KTABLE-OUTEROTHER-"], joiner, [false, false])
    }

    fn join_tables<VO: Data, VR: Data>(
        &self,
        other: &KTable<K, VO>,
        prefixes: [&str; 2],
        joiner: Joiner<V, VO, VR>,
        requires_other: [bool; 2],
    ) -> KTable<K, VR> {
        let this_store = self.materialized_store();
        let other_store = other.materialized_store();
        let mut inner = self.builder.borrow_mut();
        // Kafka Streams' order: the merge processor's name, then both sides'.
        let merge = inner.new_name("KTABLE-MERGE-");
        let this_name = inner.new_name(prefixes[0]);
        let other_name = inner.new_name(prefixes[1]);
        let (j1, j2) = (joiner.clone(), joiner);
        let (s1, s2) = (other_store.clone(), this_store.clone());
        let flipped: Joiner<VO, V, VR> = Arc::new(move |o, v| j2(v, o));
        let result = inner
            .topology
            .add_processor(
                &this_name,
                move || TableJoinSide::<K, V, VO, VR> {
                    other_store: s1.clone(),
                    joiner: j1.clone(),
                    requires_other: requires_other[0],
                    _k: PhantomData,
                },
                &[&self.node],
            )
            .and_then(|t| {
                t.add_processor(
                    &other_name,
                    move || TableJoinSide::<K, VO, V, VR> {
                        other_store: s2.clone(),
                        joiner: flipped.clone(),
                        requires_other: requires_other[1],
                        _k: PhantomData,
                    },
                    &[&other.node],
                )
            })
            .and_then(|t| t.connect_processor_and_state_stores(&this_name, &[&other_store]))
            .and_then(|t| t.connect_processor_and_state_stores(&other_name, &[&this_store]))
            .and_then(|t| {
                t.add_processor(
                    &merge,
                    Stateless::<K, Change<VR>, K, Change<VR>>::supplier(Emit::One),
                    &[&this_name, &other_name],
                )
            })
            .map(|_| ());
        inner.check(result);
        let topics = [self.source_topics(&inner), other.source_topics(&inner)].concat();
        inner.topology.require_copartitioned(topics);
        drop(inner);
        KTable::new(self.builder.clone(), merge, None, self.key_serde.clone(), None)
    }
}
