//! Sliding windows: windows of a fixed time difference whose bounds are set by the records
//! themselves, as Kafka Streams' `SlidingWindows` and `KStreamSlidingWindowAggregate`.
//!
//! Two records fall into a common window exactly when their timestamps are at most the time
//! difference apart. Instead of every possible window, only the distinct ones are kept: each record
//! at `t` has a *left* window `[t - difference, t]` ending at it, and a *right* window
//! `[t + 1, t + 1 + difference]` starting just after it, created only once a later record falls into
//! it. A record updates every existing window containing it. Both bounds are inclusive; the
//! [`Window`] of a result has `end = start + difference`.
//!
//! Records earlier than the difference (`0 <= t < difference`) would give windows starting before
//! 0; as in Kafka Streams, they share the window `[0, difference]` instead. Records with negative
//! timestamps are dropped.
//!
//! A window closes once stream time passes its end plus the grace period. A record all of whose
//! windows closed is dropped; otherwise each closed window it would have updated or created is
//! skipped. Either way, each is counted in the task's `dropped-records` metric (as Kafka Streams
//! counts them) and logged at debug level.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use crate::dsl::change::Change;
use crate::dsl::config::Materialized;
use crate::dsl::functions::OptionAggregator;
use crate::dsl::grouped::{KGroupedStream, WindowStoreLayout};
use crate::dsl::ktable::KTable;
use crate::error::{Result, StreamsError};
use crate::processor::{Processor, ProcessorContext};
use crate::record::{Data, Record};
use crate::serde::SharedSerde;
use crate::store::millis;
use crate::store::ValueAndTimestamp;
use crate::windowed::{Window, Windowed};

/// Sliding windows of a maximum time difference between records, with a grace period for late
/// records, as Kafka Streams' `SlidingWindows`.
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::SlidingWindows;
/// let w = SlidingWindows::of_time_difference_and_grace(Duration::from_secs(10), Duration::from_secs(2));
/// assert_eq!((w.time_difference_ms(), w.grace_ms()), (10_000, 2_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows {
    time_difference_ms: i64,
    grace_ms: i64,
}

impl SlidingWindows {
    /// Windows of records at most `time_difference` apart; late records are not accepted.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// Windows of records at most `time_difference` apart, accepting records up to `grace` after a
    /// window's end.
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        SlidingWindows { time_difference_ms: millis(time_difference), grace_ms: millis(grace) }
    }

    /// The maximum time difference between two records of one window, in milliseconds (the window
    /// size).
    pub fn time_difference_ms(&self) -> i64 {
        self.time_difference_ms
    }

    /// The grace period in milliseconds.
    pub fn grace_ms(&self) -> i64 {
        self.grace_ms
    }
}

/// A grouped stream aggregated per key over sliding windows.
///
/// The resulting table is keyed by [`Windowed<K>`] with `end = start + time difference`; each update
/// of a window is emitted, with the largest timestamp of the window's records (use
/// [`suppress`](KTable::suppress) for final results only). Its window store holds
/// [`ValueAndTimestamp`]s of the aggregate, for at least twice the time difference plus the grace
/// period (a longer `Materialized::with_retention` wins).
///
/// ```
/// use std::time::Duration;
/// use kstreams_streams::dsl::{Consumed, Grouped, Materialized, Produced, SlidingWindows, StreamsBuilder};
/// use kstreams_streams::serde::Serdes;
/// use kstreams_streams::test_driver::{TestDriverConfig, TopologyTestDriver};
/// use kstreams_streams::windowed::Windowed;
///
/// let builder = StreamsBuilder::new();
/// builder
///     .stream("clicks", Consumed::with(Serdes::string(), Serdes::string()))
///     .group_by_key(Grouped::default())
///     .windowed_by_sliding(SlidingWindows::of_time_difference_with_no_grace(Duration::from_millis(10)))
///     .count(Materialized::as_("clicks-within-10ms"))
///     .to_stream()
///     .map(|w: Windowed<String>, n: Option<i64>| {
///         (format!("{}@[{},{}]", w.key(), w.window().start(), w.window().end()), n.unwrap_or(0))
///     })
///     .to("counts", Produced::default());
/// let driver = TopologyTestDriver::new(builder.build().unwrap(), TestDriverConfig::new("app")).unwrap();
/// let clicks = driver.input_topic("clicks", Serdes::string(), Serdes::string());
/// clicks.pipe("u".to_string(), "a".to_string(), 20).unwrap(); // left window [10,20]
/// clicks.pipe("u".to_string(), "b".to_string(), 25).unwrap(); // right window of 20, and [15,25]
/// let counts = driver.output_topic("counts", Serdes::string(), Serdes::i64()).read_key_values().unwrap();
/// let e = |k: &str, n: i64| (k.to_string(), n);
/// assert_eq!(counts, vec![e("u@[10,20]", 1), e("u@[21,31]", 1), e("u@[15,25]", 2)]);
/// ```
pub struct SlidingWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SlidingWindows,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    /// Aggregates per key over sliding windows (see [`SlidingWindowedKStream`]).
    pub fn windowed_by_sliding(self, windows: SlidingWindows) -> SlidingWindowedKStream<K, V> {
        SlidingWindowedKStream { grouped: self, windows }
    }
}

/// Folds one value into a window's aggregate (`None`: the window had none yet).
type Aggregator<K, V, VA> = OptionAggregator<K, V, VA>;

impl<K: Data, V: Data> SlidingWindowedKStream<K, V> {
    /// Counts records per key and window.
    pub fn count(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        self.aggregate(|| 0i64, |_, _, c| c + 1, materialized)
    }

    /// Combines the values per key and window with `reducer` (the first value starts a window's
    /// aggregate).
    pub fn reduce(
        &self,
        reducer: impl Fn(V, V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let inherited = self.grouped.grouped.value_serde.clone().or_else(|| self.grouped.stream.value_serde.clone());
        let aggregator: Aggregator<K, V, V> = Arc::new(move |_: &K, v: V, agg: Option<V>| match agg {
            Some(a) => reducer(a, v),
            None => v,
        });
        self.windowed("KSTREAM-REDUCE-", materialized, inherited, aggregator)
    }

    /// Folds the values per key and window into an aggregate starting from `initializer()`.
    pub fn aggregate<VA: Data>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let aggregator: Aggregator<K, V, VA> =
            Arc::new(move |k: &K, v: V, agg: Option<VA>| aggregator(k, v, agg.unwrap_or_else(&initializer)));
        self.windowed("KSTREAM-AGGREGATE-", materialized, None, aggregator)
    }

    fn windowed<VA: Data>(
        &self,
        prefix: &str,
        materialized: Materialized<K, VA>,
        inherited_value_serde: Option<SharedSerde<VA>>,
        aggregator: Aggregator<K, V, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let windows = self.windows;
        let difference = windows.time_difference_ms;
        // A new record may need the windows starting up to two differences before it (to find the
        // aggregate of its left window and the previous record's right window), as in Kafka Streams.
        let layout = WindowStoreLayout {
            size_ms: difference,
            min_retention_ms: difference.saturating_mul(2).saturating_add(windows.grace_ms).max(1),
            grace_ms: windows.grace_ms,
        };
        self.grouped.windowed_aggregation(prefix, materialized, inherited_value_serde, layout, move |store| {
            Box::new(move || {
                Box::new(SlidingWindowAggregate {
                    store: store.clone(),
                    windows,
                    aggregator: aggregator.clone(),
                    observed_stream_time: i64::MIN,
                })
            })
        })
    }
}

/// How a window is updated: an existing window with its aggregate, or a new one starting from an
/// aggregate (`None`: empty).
enum Slot<VA> {
    Existing(ValueAndTimestamp<VA>),
    New(Option<VA>),
}

type Ctx<'a, K, VA> = ProcessorContext<'a, Windowed<K>, Change<VA>>;

/// Kafka Streams' `KStreamSlidingWindowAggregate`, in the order its reverse-fetch variant emits.
struct SlidingWindowAggregate<K, V, VA> {
    store: String,
    windows: SlidingWindows,
    aggregator: Aggregator<K, V, VA>,
    observed_stream_time: i64,
}

/// What a scan of the existing windows around a record found.
struct Found<VA> {
    /// Start times of every window seen.
    starts: BTreeSet<i64>,
    /// The aggregate of the latest window ending before the record (its left window's contents).
    left_agg: Option<ValueAndTimestamp<VA>>,
    /// The aggregate of the latest window containing the record, before the record was added.
    right_agg: Option<ValueAndTimestamp<VA>>,
    left_created: bool,
    right_created: bool,
    /// The timestamp of the latest record before this one, when it matters.
    previous: Option<i64>,
}

impl<VA> Default for Found<VA> {
    fn default() -> Self {
        Found {
            starts: BTreeSet::new(),
            left_agg: None,
            right_agg: None,
            left_created: false,
            right_created: false,
            previous: None,
        }
    }
}

fn unexpected_window(start: i64, ts: i64) -> StreamsError {
    StreamsError::IllegalState(format!(
        "sliding-window aggregation found an unexpected window starting at {start} for a record at {ts}"
    ))
}

impl<K: Data, V: Data, VA: Data> SlidingWindowAggregate<K, V, VA> {
    fn fetch(
        &self,
        ctx: &mut Ctx<'_, K, VA>,
        key: &K,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, ValueAndTimestamp<VA>)>> {
        ctx.window_store::<K, VA>(&self.store)?.fetch_range_with_timestamp(key, from, to)
    }

    /// Adds the record to the window starting at `start` (if it is still open) and forwards the
    /// update.
    fn update(&self, ctx: &mut Ctx<'_, K, VA>, r: &Record<K, V>, start: i64, slot: Slot<VA>, close: i64) -> Result<()> {
        let end = start.saturating_add(self.windows.time_difference_ms);
        if end < close {
            tracing::debug!(
                store = %self.store,
                timestamp = r.timestamp,
                window_start = start,
                window_end = end,
                close_time = close,
                "skipping record for an expired sliding window"
            );
            ctx.record_dropped("record for a closed sliding window (past its grace period)");
            return Ok(());
        }
        let (old, base, timestamp) = match slot {
            Slot::Existing(current) => {
                (Some(current.value.clone()), Some(current.value), r.timestamp.max(current.timestamp))
            }
            // A window created now had no row before (Kafka Streams reports its starting aggregate as
            // the old value).
            Slot::New(base) => (None, base, r.timestamp),
        };
        let new = (self.aggregator)(&r.key, r.value.clone(), base);
        ctx.window_store::<K, VA>(&self.store)?.put_with_timestamp(&r.key, &new, start, timestamp)?;
        ctx.forward(Record {
            key: Windowed::new(r.key.clone(), Window::new(start, end)),
            value: Change { new: Some(new), old },
            timestamp,
            headers: r.headers.clone(),
        })
    }

    /// Creates the record's right window holding `agg` (the records after it within the difference).
    fn create_right_window(
        &self,
        ctx: &mut Ctx<'_, K, VA>,
        r: &Record<K, V>,
        agg: ValueAndTimestamp<VA>,
    ) -> Result<()> {
        let start = r.timestamp.saturating_add(1);
        let end = start.saturating_add(self.windows.time_difference_ms);
        ctx.window_store::<K, VA>(&self.store)?.put_with_timestamp(&r.key, &agg.value, start, agg.timestamp)?;
        ctx.forward(Record {
            key: Windowed::new(r.key.clone(), Window::new(start, end)),
            value: Change { new: Some(agg.value), old: None },
            timestamp: agg.timestamp,
            headers: r.headers.clone(),
        })
    }

    /// Visits the windows around the record from the latest start down, as Kafka Streams'
    /// `processReverse` does (it is what runs over RocksDB stores), so the emitted updates come in
    /// the same order: the latest-starting window first, the left windows last.
    fn process_reverse(&self, ctx: &mut Ctx<'_, K, VA>, r: &Record<K, V>, close: i64) -> Result<()> {
        let (ts, difference) = (r.timestamp, self.windows.time_difference_ms);
        let from = ts.saturating_sub(difference.saturating_mul(2)).max(0);
        let mut found = Found::default();
        for (start, current) in self.fetch(ctx, &r.key, from, ts.saturating_add(1))?.into_iter().rev() {
            found.starts.insert(start);
            let end = start.saturating_add(difference);
            if start == ts.saturating_add(1) {
                found.right_created = true;
            } else if end > ts {
                if found.right_agg.is_none() {
                    found.right_agg = Some(current.clone());
                }
                self.update(ctx, r, start, Slot::Existing(current), close)?;
            } else if end == ts {
                found.left_created = true;
                let latest = current.timestamp;
                self.update(ctx, r, start, Slot::Existing(current), close)?;
                if latest < ts {
                    found.previous = Some(latest);
                } else {
                    // A record at this very time created every window there is to create.
                    return Ok(());
                }
            } else {
                found.previous = Some(current.timestamp);
                found.left_agg = Some(current);
                break;
            }
        }
        self.create_windows(ctx, r, close, found)
    }

    /// Records with `0 <= timestamp < difference` share the window `[0, difference]` as their left
    /// window.
    fn process_early(&self, ctx: &mut Ctx<'_, K, VA>, r: &Record<K, V>, close: i64) -> Result<()> {
        let ts = r.timestamp;
        let mut found = Found::default();
        let mut combined = None;
        for (start, current) in self.fetch(ctx, &r.key, 0, ts.saturating_add(1))? {
            found.starts.insert(start);
            if start == 0 {
                // A previous record's right window exists already if the combined window holds a
                // record at or after this one.
                if current.timestamp < ts {
                    found.previous = Some(current.timestamp);
                }
                combined = Some(current);
            } else if start <= ts {
                found.right_agg = Some(current.clone());
                self.update(ctx, r, start, Slot::Existing(current), close)?;
            } else if start == ts.saturating_add(1) {
                found.right_created = true;
            } else {
                return Err(unexpected_window(start, ts));
            }
        }
        // Without a right window found, the records after this one are those of the combined window.
        if found.right_agg.is_none() {
            found.right_agg = combined.clone().filter(|c| c.timestamp > ts);
        }
        if let Some(agg) = found.right_agg.filter(|a| a.timestamp > ts) {
            if !found.right_created {
                self.create_right_window(ctx, r, agg)?;
            }
        }
        if let Some(previous) = found.previous {
            let start = previous.saturating_add(1);
            if !found.starts.contains(&start) {
                self.update(ctx, r, start, Slot::New(None), close)?;
            }
        }
        let slot = match combined {
            Some(current) => Slot::Existing(current),
            None => Slot::New(None),
        };
        self.update(ctx, r, 0, slot, close)
    }

    fn create_windows(&self, ctx: &mut Ctx<'_, K, VA>, r: &Record<K, V>, close: i64, found: Found<VA>) -> Result<()> {
        let (ts, difference) = (r.timestamp, self.windows.time_difference_ms);
        // The previous record's right window, if this record falls into it and it does not exist.
        if let Some(previous) = found.previous {
            let start = previous.saturating_add(1);
            if !found.starts.contains(&start) && start.saturating_add(difference) >= ts {
                self.update(ctx, r, start, Slot::New(None), close)?;
            }
        }
        // This record's left window: the previous record's contents, if it falls into it.
        if !found.left_created {
            let left_start = ts.saturating_sub(difference);
            let base = match found.previous {
                Some(previous) if left_start <= previous => found.left_agg.map(|a| a.value),
                _ => None,
            };
            self.update(ctx, r, left_start, Slot::New(base), close)?;
        }
        // This record's right window, if later records fall into it.
        if let Some(agg) = found.right_agg.filter(|a| a.timestamp > ts) {
            if !found.right_created {
                self.create_right_window(ctx, r, agg)?;
            }
        }
        Ok(())
    }
}

impl<K: Data, V: Data, VA: Data> Processor<K, V, Windowed<K>, Change<VA>> for SlidingWindowAggregate<K, V, VA> {
    /// Starts from the task's stream time, which a restarted task resumes from its committed offsets.
    fn init(&mut self, ctx: &mut Ctx<'_, K, VA>) -> Result<()> {
        self.observed_stream_time = ctx.current_stream_time_ms();
        Ok(())
    }

    fn process(&mut self, ctx: &mut Ctx<'_, K, VA>, record: Record<K, V>) -> Result<()> {
        let ts = record.timestamp;
        if ts < 0 {
            ctx.record_dropped("negative timestamp: sliding windows start at 0");
            return Ok(());
        }
        self.observed_stream_time = self.observed_stream_time.max(ts);
        let close = self.observed_stream_time.saturating_sub(self.windows.grace_ms);
        // The latest window the record could belong to ends at ts + difference.
        if ts.saturating_add(self.windows.time_difference_ms) < close {
            tracing::debug!(
                store = %self.store,
                timestamp = ts,
                close_time = close,
                "skipping record: every sliding window it falls into is closed"
            );
            ctx.record_dropped("record for a closed sliding window (past its grace period)");
            return Ok(());
        }
        if ts < self.windows.time_difference_ms {
            self.process_early(ctx, &record, close)
        } else {
            self.process_reverse(ctx, &record, close)
        }
    }
}
