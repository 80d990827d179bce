//! Stream–global-table joins: each stream record looks up the global store by a key computed from
//! the record. Nothing is repartitioned, and updates of the global table produce no output.

use std::sync::Arc;

use crate::dsl::config::Named;
use crate::dsl::global_table::GlobalKTable;
use crate::dsl::kstream::KStream;
use crate::error::Result;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};

/// Maps a stream record to the key of the global table to look up.
type KeySelector<K, V, KG> = Arc<dyn Fn(&K, &V) -> KG + Send + Sync>;
/// Joins a stream value with the table's value; `None` means no output (an inner join's miss).
type GlobalJoiner<V, VG, VR> = Arc<dyn Fn(&V, Option<&VG>) -> Option<VR> + Send + Sync>;

/// The join processor: a lookup in the global store per stream record.
struct StreamGlobalJoin<K, V, KG, VG, VR> {
    store: String,
    key_selector: KeySelector<K, V, KG>,
    joiner: GlobalJoiner<V, VG, VR>,
    /// A left join also joins records whose selected key is null (with no table value).
    left: bool,
}

impl<K: Data, V: Data, KG: Data, VG: Data, VR: Data> Processor<K, V, K, VR> for StreamGlobalJoin<K, V, KG, VG, VR> {
    fn process(&mut self, ctx: &mut ProcessorContext<'_, K, VR>, record: Record<K, V>) -> Result<()> {
        let key = (self.key_selector)(&record.key, &record.value);
        let other = match ctx.key_value_store::<KG, VG>(&self.store)?.get_unless_null_key(&key)? {
            Some(found) => found,
            None if self.left => None,
            None => {
                ctx.record_dropped("the global-table join key is null");
                return Ok(());
            }
        };
        match (self.joiner)(&record.value, other.as_ref()) {
            Some(value) => ctx.forward(record.with_value(value)),
            None => Ok(()),
        }
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Joins each record with the value the global table holds for the key `key_selector` computes
    /// from it; records without a match are dropped. The output keeps the stream's key (and its
    /// partitioning): nothing is repartitioned, whatever key the selector returns, and the table's
    /// topic needs no co-partitioning with the stream. Updates of the table produce no output.
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
    ///
    /// let builder = StreamsBuilder::new();
    /// let products = builder.global_table("products", Consumed::with(Serdes::string(), Serdes::string()), Materialized::as_("products"));
    /// builder
    ///     .stream("orders", Consumed::with(Serdes::string(), Serdes::string())) // order id -> product id
    ///     .join_global(&products, |_order: &String, product: &String| product.clone(), |product: &String, name: &String| format!("{product}: {name}"))
    ///     .to("order-lines", Produced::default());
    /// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("shop")).unwrap();
    /// let products = driver.input_topic("products", Serdes::string(), Serdes::string());
    /// let orders = driver.input_topic("orders", Serdes::string(), Serdes::string());
    /// products.pipe("p1".into(), "kettle".into(), 1).unwrap();
    /// orders.pipe("o1".into(), "p1".into(), 2).unwrap();
    /// orders.pipe("o2".into(), "p9".into(), 3).unwrap(); // no such product: dropped
    /// let lines = driver.output_topic("order-lines", Serdes::string(), Serdes::string());
    /// assert_eq!(lines.read_key_values().unwrap(), vec![("o1".to_string(), "p1: kettle".to_string())]);
    /// ```
    pub fn join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, &VG) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let joiner: GlobalJoiner<V, VG, VR> = Arc::new(move |v, g| g.map(|g| joiner(v, g)));
        self.join_global_table(table, Arc::new(key_selector), joiner, false, None)
    }

    /// Joins each record with the value the global table holds for the key `key_selector` computes
    /// from it, or `None` without a match (or when the selected key is null); every record gives
    /// one output record. Otherwise as [`join_global`](Self::join_global).
    ///
    /// ```
    /// use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    ///
    /// let builder = StreamsBuilder::new();
    /// let rates = builder.global_table("rates", Consumed::with(Serdes::string(), Serdes::f64()), Materialized::as_("rates"));
    /// builder
    ///     .stream("payments", Consumed::with(Serdes::string(), Serdes::f64())) // currency -> amount
    ///     .left_join_global(&rates, |currency: &String, _| currency.clone(), |amount: &f64, rate: Option<&f64>| rate.map(|r| amount * r))
    ///     .to("payments-in-eur", Produced::with(Serdes::string(), Serdes::nullable(Serdes::f64())));
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn left_join_global<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let joiner: GlobalJoiner<V, VG, VR> = Arc::new(move |v, g| Some(joiner(v, g)));
        self.join_global_table(table, Arc::new(key_selector), joiner, true, None)
    }

    /// Like [`join_global`](Self::join_global), in a processor named `named`.
    pub fn join_global_named<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, &VG) -> VR + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, VR> {
        let joiner: GlobalJoiner<V, VG, VR> = Arc::new(move |v, g| g.map(|g| joiner(v, g)));
        self.join_global_table(table, Arc::new(key_selector), joiner, false, Some(named))
    }

    /// Like [`left_join_global`](Self::left_join_global), in a processor named `named`.
    pub fn left_join_global_named<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(&K, &V) -> KG + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
        named: Named,
    ) -> KStream<K, VR> {
        let joiner: GlobalJoiner<V, VG, VR> = Arc::new(move |v, g| Some(joiner(v, g)));
        self.join_global_table(table, Arc::new(key_selector), joiner, true, Some(named))
    }

    fn join_global_table<KG: Data, VG: Data, VR: Data>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: KeySelector<K, V, KG>,
        joiner: GlobalJoiner<V, VG, VR>,
        left: bool,
        named: Option<Named>,
    ) -> KStream<K, VR> {
        // Kafka Streams names inner and left global joins alike: `KSTREAM-LEFTJOIN-…`.
        let name = self.builder.borrow_mut().name_or_new(named.as_ref().map(Named::name), "KSTREAM-LEFTJOIN-");
        let store = table.store.clone();
        let supplier = move || StreamGlobalJoin {
            store: store.clone(),
            key_selector: key_selector.clone(),
            joiner: joiner.clone(),
            left,
        };
        self.add_processor(name, supplier, self.key_serde.clone(), None, false)
    }
}
