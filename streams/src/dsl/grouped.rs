//! Grouped streams and their aggregations: [`KGroupedStream`] and [`TimeWindowedKStream`].

use std::sync::Arc;
use std::time::Duration;

use crate::dsl::change::Change;
use crate::dsl::config::{Grouped, Materialized};
use crate::dsl::functions::{Aggregator, OptionAggregator, Reducer};
use crate::dsl::kstream::KStream;
use crate::dsl::ktable::{configure, KTable, WindowInfo};
use crate::dsl::ops::{BoxedSupplier, StreamAggregate, StreamReduce};
use crate::dsl::windows::Windows;
use crate::error::Result;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::{Serdes, SharedSerde};
use crate::store::{millis, Stores};
use crate::windowed::Windowed;

/// A stream grouped by key, ready for an aggregation.
///
/// ```
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let totals = builder.stream("sales", Consumed::with(Serdes::string(), Serdes::f64()))
///     .group_by_key(Grouped::default())
///     .reduce(|a, b| a + b, Materialized::as_("totals"));
/// # let _ = totals;
/// assert!(builder.build().is_ok());
/// ```
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
    pub(crate) grouped: Grouped<K, V>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>, grouped: Grouped<K, V>) -> Self {
        KGroupedStream { stream, grouped }
    }

    /// The stream to aggregate: repartitioned by key first if the key changed upstream.
    pub(crate) fn partitioned(&self, store: &str) -> KStream<K, V> {
        if !self.stream.repartition_required {
            return self.stream.clone();
        }
        let prefix = self.grouped.name.clone().unwrap_or_else(|| store.to_string());
        let mut inner = self.stream.builder.borrow_mut();
        let ks = inner.serde(self.grouped.key_serde.clone(), self.stream.key_serde.as_ref(), "key of the grouping");
        let vs =
            inner.serde(self.grouped.value_serde.clone(), self.stream.value_serde.as_ref(), "value of the grouping");
        drop(inner);
        self.stream.through_repartition_topic(&prefix, ks, vs, None, None)
    }

    pub(crate) fn store_name<VA>(&self, materialized: &Materialized<K, VA>, prefix: &str) -> String {
        match &materialized.store_name {
            Some(s) => s.clone(),
            None => self.stream.builder.borrow_mut().new_store_name(&format!("{prefix}STATE-STORE-")),
        }
    }

    fn aggregate_with<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        inherited_value_serde: Option<SharedSerde<VA>>,
        supplier: impl Fn(String) -> Box<dyn Fn() -> Box<dyn Processor<K, V, K, Change<VA>>> + Send + Sync>,
    ) -> KTable<K, VA> {
        let store = self.store_name(&materialized, prefix);
        let name = self.stream.builder.borrow_mut().new_name(prefix);
        let stream = self.partitioned(&store);
        let mut inner = self.stream.builder.borrow_mut();
        let ks = inner.serde(
            materialized.key_serde.clone().or_else(|| self.grouped.key_serde.clone()),
            stream.key_serde.as_ref(),
            &format!("key of store `{store}`"),
        );
        let vs = inner.serde(
            materialized.value_serde.clone(),
            inherited_value_serde.as_ref(),
            &format!("value of store `{store}`"),
        );
        let builder = configure(Stores::timestamped_key_value(&store, ks.clone(), vs.clone()), &materialized);
        let make = supplier(store.clone());
        let result = inner
            .topology
            .add_processor(&name, BoxedSupplier(make), &[&stream.node])
            .and_then(|t| t.add_state_store(builder, &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        KTable::new(self.stream.builder.clone(), name, Some(store), Some(ks), Some(vs))
    }

    /// Counts records per key.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.aggregate(|| 0i64, |_, _, count| count + 1, materialized)
    }

    /// Combines the values of each key with `reducer` (the first value starts the aggregate).
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let reducer: Reducer<V> = Arc::new(reducer);
        let inherited = self.grouped.value_serde.clone().or_else(|| self.stream.value_serde.clone());
        self.aggregate_with("KSTREAM-REDUCE-", materialized, inherited, move |store| {
            let reducer = reducer.clone();
            Box::new(move || {
                Box::new(StreamReduce { store: store.clone(), reducer: reducer.clone(), _k: std::marker::PhantomData })
            })
        })
    }

    /// Folds the values of each key into an aggregate that starts from `initializer()`.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let initializer: Arc<dyn Fn() -> VA + Send + Sync> = Arc::new(initializer);
        let aggregator: Aggregator<K, V, VA> = Arc::new(aggregator);
        self.aggregate_with("KSTREAM-AGGREGATE-", materialized, None, move |store| {
            let (initializer, aggregator) = (initializer.clone(), aggregator.clone());
            Box::new(move || {
                Box::new(StreamAggregate {
                    store: store.clone(),
                    initializer: initializer.clone(),
                    aggregator: aggregator.clone(),
                })
            })
        })
    }

    /// Aggregates per key and window.
    pub fn windowed_by<W: Windows>(self, windows: W) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream { grouped: self, windows: Arc::new(windows) }
    }
}

/// A grouped stream aggregated per window.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, StreamsBuilder, TimeWindows};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let per_minute = builder
///     .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by_key(Grouped::default())
///     .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60)))
///     .count(Materialized::as_("clicks-per-minute"));
/// # let _ = per_minute;
/// assert!(builder.build().is_ok());
/// ```
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: Arc<dyn Windows>,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    /// Counts records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0i64, |_, _, c| c + 1, materialized)
    }

    /// Combines the values per key and window.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let inherited = self.grouped.grouped.value_serde.clone().or_else(|| self.grouped.stream.value_serde.clone());
        self.windowed(
            "KSTREAM-REDUCE-",
            materialized,
            inherited,
            Arc::new(|| None),
            Arc::new(move |_: &K, v: V, agg: Option<V>| match agg {
                Some(a) => reducer(a, v),
                None => v,
            }),
        )
    }

    /// Folds the values per key and window into an aggregate starting from `initializer()`.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let init = Arc::new(initializer);
        let init2 = init.clone();
        self.windowed(
            "KSTREAM-AGGREGATE-",
            materialized,
            None,
            Arc::new(move || Some(init())),
            Arc::new(move |k: &K, v: V, agg: Option<VA>| aggregator(k, v, agg.unwrap_or_else(|| init2()))),
        )
    }

    fn windowed<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        inherited_value_serde: Option<SharedSerde<VA>>,
        _initializer: Arc<dyn Fn() -> Option<VA> + Send + Sync>,
        aggregator: OptionAggregator<K, V, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let size = self.windows.size_ms();
        let layout = WindowStoreLayout {
            size_ms: size,
            min_retention_ms: size.saturating_add(self.windows.grace_ms()),
            grace_ms: self.windows.grace_ms(),
        };
        let windows = self.windows.clone();
        self.grouped.windowed_aggregation(prefix, materialized, inherited_value_serde, layout, move |store| {
            Box::new(move || {
                Box::new(WindowAggregate {
                    store: store.clone(),
                    windows: windows.clone(),
                    aggregator: aggregator.clone(),
                    observed_stream_time: i64::MIN,
                })
            })
        })
    }
}

/// The window store of a windowed aggregation: window size, the least retention, and grace.
pub(crate) struct WindowStoreLayout {
    /// The window size in milliseconds (window ends read from the store are start + size).
    pub size_ms: i64,
    /// The retention the aggregation needs at least (a longer `Materialized` retention wins).
    pub min_retention_ms: i64,
    /// How long windows accept late records (for `suppress`).
    pub grace_ms: i64,
}

/// Makes the processor of a windowed aggregation for each task, given its store's name.
pub(crate) type WindowedFactory<K, V, VA> =
    Box<dyn Fn() -> Box<dyn Processor<K, V, Windowed<K>, Change<VA>>> + Send + Sync>;

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// Adds a windowed aggregation: repartitions if needed, adds the processor `make` builds over a
    /// timestamped window store laid out by `layout`, and returns its table of windows, ready for
    /// `suppress`.
    pub(crate) fn windowed_aggregation<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        inherited_value_serde: Option<SharedSerde<VA>>,
        layout: WindowStoreLayout,
        make: impl FnOnce(String) -> WindowedFactory<K, V, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let store = self.store_name(&materialized, prefix);
        let name = self.stream.builder.borrow_mut().new_name(prefix);
        let stream = self.partitioned(&store);
        let mut inner = self.stream.builder.borrow_mut();
        let ks = inner.serde(
            materialized.key_serde.clone().or_else(|| self.grouped.key_serde.clone()),
            stream.key_serde.as_ref(),
            &format!("key of store `{store}`"),
        );
        let vs = inner.serde(
            materialized.value_serde.clone(),
            inherited_value_serde.as_ref(),
            &format!("value of store `{store}`"),
        );
        let retention = materialized.retention.map(millis).unwrap_or(0).max(layout.min_retention_ms);
        let builder = configure(
            Stores::timestamped_window(
                &store,
                Duration::from_millis(u64::try_from(retention).unwrap_or(0)),
                Duration::from_millis(u64::try_from(layout.size_ms).unwrap_or(0)),
                ks.clone(),
                vs.clone(),
            ),
            &materialized,
        );
        let result = inner
            .topology
            .add_processor(&name, BoxedSupplier(make(store.clone())), &[&stream.node])
            .and_then(|t| t.add_state_store(builder, &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        let mut table = KTable::new(self.stream.builder.clone(), name, None, None, Some(vs));
        table.window = Some(WindowInfo { key_serde: Serdes::session_windowed(ks), grace_ms: layout.grace_ms });
        table
    }
}

/// Aggregates each record into every window that contains it and is still open.
struct WindowAggregate<K, V, VA> {
    store: String,
    windows: Arc<dyn Windows>,
    aggregator: OptionAggregator<K, V, VA>,
    observed_stream_time: i64,
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>> for WindowAggregate<K, V, VA> {
    /// Starts from the task's stream time, which a restarted task resumes from its committed offsets.
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.observed_stream_time = ctx.current_stream_time_ms();
        Ok(())
    }

    fn process(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>, record: Record<K, V>) -> Result<()> {
        self.observed_stream_time = self.observed_stream_time.max(record.timestamp);
        let close_time = self.observed_stream_time.saturating_sub(self.windows.grace_ms());
        for window in self.windows.windows_for(record.timestamp) {
            if window.end() <= close_time {
                ctx.record_dropped("record for a closed window (past its grace period)");
                continue;
            }
            let store = ctx.window_store::<K, VA>(&self.store)?;
            let old = store.fetch_with_timestamp(&record.key, window.start())?;
            // As Kafka Streams: the window's timestamp is the largest of its records'.
            let timestamp = old.as_ref().map_or(record.timestamp, |o| o.timestamp.max(record.timestamp));
            let old = old.map(|o| o.value);
            let new = (self.aggregator)(&record.key, record.value.clone(), old.clone());
            store.put_with_timestamp(&record.key, &new, window.start(), timestamp)?;
            ctx.forward(Record {
                key: Windowed::new(record.key.clone(), window),
                value: Change { new: Some(new), old },
                timestamp,
                headers: record.headers.clone(),
            })?;
        }
        Ok(())
    }
}
