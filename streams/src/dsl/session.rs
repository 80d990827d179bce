//! Session windows: per-key windows of activity that close after an inactivity gap, merging when a
//! record bridges two sessions.

use std::sync::Arc;
use std::time::Duration;

use kstreams_state::SessionWindow;

use crate::dsl::change::Change;
use crate::dsl::config::Materialized;
use crate::dsl::functions::OptionAggregator;
use crate::dsl::grouped::KGroupedStream;
use crate::dsl::ktable::{configure, KTable, WindowInfo};
use crate::error::Result;
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::{Serdes, SharedSerde};
use crate::store::{millis, Stores};
use crate::windowed::{Window, Windowed};

/// Sessions of activity separated by at least an inactivity gap.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::SessionWindows;
/// let sessions = SessionWindows::of_inactivity_gap_and_grace(Duration::from_secs(300), Duration::from_secs(60));
/// assert_eq!(sessions.gap_ms(), 300_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows {
    gap_ms: i64,
    grace_ms: i64,
}

impl SessionWindows {
    /// Sessions that close as soon as stream time passes their end plus the gap.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }
    /// Sessions that accept out-of-order records for `grace` after they close.
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        SessionWindows { gap_ms: millis(gap).max(1), grace_ms: millis(grace) }
    }
    /// The inactivity gap in milliseconds.
    pub fn gap_ms(&self) -> i64 {
        self.gap_ms
    }
}

/// A grouped stream aggregated per session.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, SessionWindows, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// let builder = StreamsBuilder::new();
/// let sessions = builder
///     .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by_key(Grouped::default())
///     .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_secs(300)))
///     .count(Materialized::as_("clicks-per-session"));
/// # let _ = sessions;
/// assert!(builder.build().is_ok());
/// ```
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// Aggregates per key and session.
    pub fn windowed_by_session(self, windows: SessionWindows) -> SessionWindowedKStream<K, V> {
        SessionWindowedKStream { grouped: self, windows }
    }
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    /// Counts records per session.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0i64, |_, _, c| c + 1, |_, a, b| a + b, materialized)
    }

    /// Folds values per session; `merger` combines the aggregates of two sessions a record joins.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let initializer = Arc::new(initializer);
        let (init_a, init_m) = (initializer.clone(), initializer);
        self.aggregate_with(
            "KSTREAM-AGGREGATE-",
            materialized,
            None,
            Arc::new(move |k: &K, v: V, agg: Option<VA>| aggregator(k, v, agg.unwrap_or_else(|| init_a()))),
            Arc::new(move |k: &K, agg: Option<VA>, other: VA| merger(k, agg.unwrap_or_else(|| init_m()), other)),
        )
    }

    /// Combines the values of each session with `reducer` (the first value starts the session's
    /// aggregate; merging two sessions reduces their aggregates, earlier session first), as Kafka
    /// Streams' `SessionWindowedKStream.reduce`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, SessionWindows, StreamsBuilder};
    /// use kstreams_streams::serde::Serdes;
    /// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
    /// let builder = StreamsBuilder::new();
    /// builder
    ///     .stream("spend", Consumed::with(Serdes::string(), Serdes::i64()))
    ///     .group_by_key(Grouped::default())
    ///     .windowed_by_session(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_millis(10)))
    ///     .reduce(|a, b| a + b, Materialized::as_("spend-per-session"));
    /// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
    /// let spend = driver.input_topic("spend", Serdes::string(), Serdes::i64());
    /// spend.pipe_all([("u".to_string(), 5, 0), ("u".to_string(), 7, 8)]).unwrap();
    /// let session = driver.session_store::<String, i64, _>("spend-per-session", 0, |s| s.find_sessions(&"u".to_string(), 0, 8));
    /// assert_eq!(session.unwrap().unwrap()[0].1, 12);
    /// ```
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let (r1, r2) = (reducer.clone(), reducer);
        let inherited = self.grouped.grouped.value_serde.clone().or_else(|| self.grouped.stream.value_serde.clone());
        self.aggregate_with(
            "KSTREAM-REDUCE-",
            materialized,
            inherited,
            Arc::new(move |_: &K, v: V, agg: Option<V>| match agg {
                Some(a) => r1(a, v),
                None => v,
            }),
            Arc::new(move |_: &K, agg: Option<V>, other: V| match agg {
                Some(a) => r2(a, other),
                None => other,
            }),
        )
    }

    fn aggregate_with<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        inherited_value_serde: Option<SharedSerde<VA>>,
        aggregator: OptionAggregator<K, V, VA>,
        merger: Merger<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let g = &self.grouped;
        let store = g.store_name(&materialized, prefix);
        let name = g.stream.builder.borrow_mut().new_name(prefix);
        let stream = g.partitioned(&store);
        let mut inner = g.stream.builder.borrow_mut();
        let ks = inner.serde(
            materialized.key_serde.clone().or_else(|| g.grouped.key_serde.clone()),
            stream.key_serde.as_ref(),
            &format!("key of store `{store}`"),
        );
        let vs: SharedSerde<VA> = inner.serde(
            materialized.value_serde.clone(),
            inherited_value_serde.as_ref(),
            &format!("value of store `{store}`"),
        );
        let retention = materialized
            .retention
            .map(millis)
            .unwrap_or(0)
            .max(self.windows.gap_ms.saturating_add(self.windows.grace_ms));
        let builder = configure(
            Stores::session(&store, Duration::from_millis(retention as u64), ks.clone(), vs.clone()),
            &materialized,
        );
        let processor = SessionAggregate {
            store: store.clone(),
            windows: self.windows,
            aggregator,
            merger,
            observed_stream_time: i64::MIN,
        };
        let result = inner
            .topology
            .add_processor(&name, move || processor.clone(), &[&stream.node])
            .and_then(|t| t.add_state_store(builder, &[&name]))
            .map(|_| ());
        inner.check(result);
        drop(inner);
        let mut table = KTable::new(g.stream.builder.clone(), name, None, None, Some(vs));
        table.window = Some(WindowInfo { key_serde: Serdes::session_windowed(ks), grace_ms: self.windows.grace_ms });
        table
    }
}

/// Merges a session's aggregate into the one being built (`None` before the first: reduce has no
/// initial value).
type Merger<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;

struct SessionAggregate<K, V, VA> {
    store: String,
    windows: SessionWindows,
    aggregator: OptionAggregator<K, V, VA>,
    merger: Merger<K, VA>,
    observed_stream_time: i64,
}

impl<K, V, VA> Clone for SessionAggregate<K, V, VA> {
    fn clone(&self) -> Self {
        SessionAggregate {
            store: self.store.clone(),
            windows: self.windows,
            aggregator: self.aggregator.clone(),
            merger: self.merger.clone(),
            observed_stream_time: self.observed_stream_time,
        }
    }
}

fn windowed<K>(key: K, w: SessionWindow) -> Windowed<K> {
    Windowed::new(key, Window::new(w.start, w.end))
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>> for SessionAggregate<K, V, VA> {
    /// Starts from the task's stream time, which a restarted task resumes from its committed offsets.
    fn init(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>) -> Result<()> {
        self.observed_stream_time = ctx.current_stream_time_ms();
        Ok(())
    }

    /// As Kafka Streams' `KStreamSessionWindowAggregate`: a session closes `gap + grace` after its
    /// end; when the record joins or merges existing sessions, each of them is first removed with a
    /// tombstone (stamped with its own end), then the merged session is written (stamped with the
    /// merged end).
    fn process(&mut self, ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>, r: Record<K, V>) -> Result<()> {
        let ts = r.timestamp;
        self.observed_stream_time = self.observed_stream_time.max(ts);
        let gap = self.windows.gap_ms;
        let close_time = self.observed_stream_time.saturating_sub(self.windows.grace_ms).saturating_sub(gap);
        let store = ctx.session_store::<K, VA>(&self.store)?;
        let overlapping = store.find_sessions(&r.key, ts.saturating_sub(gap), ts.saturating_add(gap))?;
        let new_session = SessionWindow { start: ts, end: ts };
        let mut merged = new_session;
        let mut agg = None;
        for (w, value) in &overlapping {
            merged.start = merged.start.min(w.start);
            merged.end = merged.end.max(w.end);
            agg = Some((self.merger)(&r.key, agg, value.clone()));
        }
        if merged.end < close_time {
            ctx.record_dropped("record for a closed session window (past its grace period)");
            return Ok(());
        }
        if merged != new_session {
            for (w, value) in overlapping {
                ctx.session_store::<K, VA>(&self.store)?.remove(&r.key, w)?;
                let tombstone = Change { new: None, old: Some(value) };
                ctx.forward(Record {
                    key: windowed(r.key.clone(), w),
                    value: tombstone,
                    timestamp: w.end,
                    headers: r.headers.clone(),
                })?;
            }
        }
        let agg = (self.aggregator)(&r.key, r.value, agg);
        ctx.session_store::<K, VA>(&self.store)?.put(&r.key, merged, &agg)?;
        ctx.forward(Record {
            key: windowed(r.key, merged),
            value: Change { new: Some(agg), old: None },
            timestamp: merged.end,
            headers: r.headers,
        })
    }
}
