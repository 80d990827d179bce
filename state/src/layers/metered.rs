//! The metered layer: latency histograms (whose counts give the rates) and a size estimate per store.

use std::sync::Arc;
use std::time::Instant;

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::error::{StateError, StateResult};
use crate::store::{
    KeyValueBytesStore, KeyValueIter, SessionBytesStore, SessionWindow, StateStore, WindowBytesStore, WindowEntry,
};

/// The state-store metrics of a process, registered once per [`Registry`] and shared by all stores.
///
/// | metric | type | labels |
/// |---|---|---|
/// | `kstreams_state_put_latency_seconds` | histogram (its `_count` rate is the put rate) | `store`, `task` |
/// | `kstreams_state_get_latency_seconds` | histogram (fetches and `find_sessions` too) | `store`, `task` |
/// | `kstreams_state_range_latency_seconds` | histogram (range, prefix scan, fetch_range, fetch_all) | `store`, `task` |
/// | `kstreams_state_flush_latency_seconds` | histogram | `store`, `task` |
/// | `kstreams_state_restore_records_total` | counter (its rate is the restore rate) | `store`, `task` |
/// | `kstreams_state_size_estimate` | gauge: estimated entries (key-value stores, updated on flush) | `store`, `task` |
///
/// ```
/// use kstreams_state::layers::StoreMetrics;
///
/// let registry = prometheus::Registry::new();
/// let metrics = StoreMetrics::register(&registry).unwrap();
/// metrics.restore_records("counts", "0_1").inc_by(5);
/// assert!(registry.gather().iter().any(|m| m.name() == "kstreams_state_restore_records_total"));
/// ```
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    put: HistogramVec,
    get: HistogramVec,
    range: HistogramVec,
    flush: HistogramVec,
    restore_records: IntCounterVec,
    size: IntGaugeVec,
}

const LABELS: &[&str] = &["store", "task"];
const BUCKETS: &[f64] = &[1e-6, 5e-6, 2e-5, 1e-4, 5e-4, 2e-3, 1e-2, 5e-2, 0.25, 1.0];

fn metrics_err(e: prometheus::Error) -> StateError {
    StateError::Metrics(e.to_string())
}

impl StoreMetrics {
    /// Creates the metrics and registers them in `registry` (once per registry: a second call fails).
    pub fn register(registry: &Registry) -> StateResult<Arc<StoreMetrics>> {
        let hist = |name: &str, help: &str| -> StateResult<HistogramVec> {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()), LABELS)
                .map_err(metrics_err)?;
            registry.register(Box::new(h.clone())).map_err(metrics_err)?;
            Ok(h)
        };
        let put = hist("kstreams_state_put_latency_seconds", "Latency of state store puts and deletes.")?;
        let get = hist("kstreams_state_get_latency_seconds", "Latency of state store point lookups.")?;
        let range = hist("kstreams_state_range_latency_seconds", "Latency of state store range queries.")?;
        let flush = hist("kstreams_state_flush_latency_seconds", "Latency of state store flushes.")?;
        let restore_records = IntCounterVec::new(
            Opts::new("kstreams_state_restore_records_total", "Changelog records restored into state stores."),
            LABELS,
        )
        .map_err(metrics_err)?;
        registry.register(Box::new(restore_records.clone())).map_err(metrics_err)?;
        let size = IntGaugeVec::new(
            Opts::new("kstreams_state_size_estimate", "Estimated number of entries in a store."),
            LABELS,
        )
        .map_err(metrics_err)?;
        registry.register(Box::new(size.clone())).map_err(metrics_err)?;
        Ok(Arc::new(StoreMetrics { put, get, range, flush, restore_records, size }))
    }

    /// The restored-records counter of one store (used by restoration).
    pub fn restore_records(&self, store: &str, task: &str) -> IntCounter {
        self.restore_records.with_label_values(&[store, task])
    }

    fn children(&self, store: &str, task: &str) -> Children {
        let l = [store, task];
        Children {
            put: self.put.with_label_values(&l),
            get: self.get.with_label_values(&l),
            range: self.range.with_label_values(&l),
            flush: self.flush.with_label_values(&l),
            restore: self.restore_records.with_label_values(&l),
            size: self.size.with_label_values(&l),
        }
    }
}

struct Children {
    put: Histogram,
    get: Histogram,
    range: Histogram,
    flush: Histogram,
    restore: IntCounter,
    size: IntGauge,
}

fn timed<T>(h: &Histogram, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = f();
    h.observe(start.elapsed().as_secs_f64());
    out
}

/// Records latencies of the wrapped store's operations. `S` is one of the byte-store trait objects.
///
/// ```
/// use kstreams_state::layers::{MeteredStore, StoreMetrics};
/// use kstreams_state::memory::InMemoryKeyValueStore;
/// use kstreams_state::store::KeyValueBytesStore;
/// let registry = prometheus::Registry::new();
/// let metrics = StoreMetrics::register(&registry).unwrap();
/// let mut store: MeteredStore<dyn KeyValueBytesStore> =
///     MeteredStore::new(Box::new(InMemoryKeyValueStore::new("counts")), &metrics, "counts", "0_0");
/// store.put(b"k", Some(b"1")).unwrap();
/// assert!(!registry.gather().is_empty());
/// ```
pub struct MeteredStore<S: ?Sized> {
    inner: Box<S>,
    m: Children,
}

impl<S: ?Sized> MeteredStore<S> {
    /// Wraps `inner`, labelling its metrics with `store` and `task`.
    pub fn new(inner: Box<S>, metrics: &StoreMetrics, store: &str, task: &str) -> Self {
        MeteredStore { inner, m: metrics.children(store, task) }
    }
}

macro_rules! metered_state_store {
    ($t:ty, $size:expr) => {
        impl StateStore for MeteredStore<$t> {
            fn name(&self) -> &str {
                self.inner.name()
            }
            fn persistent(&self) -> bool {
                self.inner.persistent()
            }
            fn flush(&mut self) -> StateResult<()> {
                let h = self.m.flush.clone();
                timed(&h, || self.inner.flush())?;
                #[allow(clippy::redundant_closure_call)]
                if let Some(n) = ($size)(&*self.inner) {
                    self.m.size.set(n);
                }
                Ok(())
            }
            fn flush_cache(&mut self) -> StateResult<()> {
                self.inner.flush_cache()
            }
            fn close(&mut self) -> StateResult<()> {
                self.inner.close()
            }
            fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
                self.inner.restore_batch(batch)?;
                self.m.restore.inc_by(batch.len() as u64);
                Ok(())
            }
            fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
                let h = self.m.flush.clone();
                timed(&h, || self.inner.commit(changelog_offset))?;
                #[allow(clippy::redundant_closure_call)]
                if let Some(n) = ($size)(&*self.inner) {
                    self.m.size.set(n);
                }
                Ok(())
            }
            fn committed_offset(&self) -> StateResult<Option<i64>> {
                self.inner.committed_offset()
            }
        }
    };
}

fn kv_size(s: &dyn KeyValueBytesStore) -> Option<i64> {
    s.approximate_num_entries().ok().map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

fn no_size<T: ?Sized>(_: &T) -> Option<i64> {
    None
}

metered_state_store!(dyn KeyValueBytesStore, kv_size);
metered_state_store!(dyn WindowBytesStore, no_size::<dyn WindowBytesStore>);
metered_state_store!(dyn SessionBytesStore, no_size::<dyn SessionBytesStore>);

impl KeyValueBytesStore for MeteredStore<dyn KeyValueBytesStore> {
    fn get(&self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        timed(&self.m.get, || self.inner.get(key))
    }

    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> StateResult<()> {
        let h = self.m.put.clone();
        timed(&h, || self.inner.put(key, value))
    }

    fn put_if_absent(&mut self, key: &[u8], value: &[u8]) -> StateResult<Option<Vec<u8>>> {
        let h = self.m.put.clone();
        timed(&h, || self.inner.put_if_absent(key, value))
    }

    fn delete(&mut self, key: &[u8]) -> StateResult<Option<Vec<u8>>> {
        let h = self.m.put.clone();
        timed(&h, || self.inner.delete(key))
    }

    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> StateResult<KeyValueIter<'_>> {
        timed(&self.m.range, || self.inner.range(from, to))
    }

    fn prefix_scan(&self, prefix: &[u8]) -> StateResult<KeyValueIter<'_>> {
        timed(&self.m.range, || self.inner.prefix_scan(prefix))
    }

    fn all(&self) -> StateResult<KeyValueIter<'_>> {
        timed(&self.m.range, || self.inner.all())
    }

    fn approximate_num_entries(&self) -> StateResult<u64> {
        self.inner.approximate_num_entries()
    }
}

impl WindowBytesStore for MeteredStore<dyn WindowBytesStore> {
    fn put(&mut self, key: &[u8], value: Option<&[u8]>, window_start: i64) -> StateResult<bool> {
        let h = self.m.put.clone();
        timed(&h, || self.inner.put(key, value, window_start))
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> StateResult<Option<Vec<u8>>> {
        timed(&self.m.get, || self.inner.fetch(key, window_start))
    }

    fn fetch_range(&self, key: &[u8], time_from: i64, time_to: i64) -> StateResult<Vec<(i64, Vec<u8>)>> {
        timed(&self.m.range, || self.inner.fetch_range(key, time_from, time_to))
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> StateResult<Vec<WindowEntry>> {
        timed(&self.m.range, || self.inner.fetch_all(time_from, time_to))
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}

impl SessionBytesStore for MeteredStore<dyn SessionBytesStore> {
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> StateResult<Vec<(SessionWindow, Vec<u8>)>> {
        timed(&self.m.range, || self.inner.find_sessions(key, earliest_session_end, latest_session_start))
    }

    fn fetch_session(&self, key: &[u8], window: SessionWindow) -> StateResult<Option<Vec<u8>>> {
        timed(&self.m.get, || self.inner.fetch_session(key, window))
    }

    fn put(&mut self, key: &[u8], window: SessionWindow, value: Option<&[u8]>) -> StateResult<bool> {
        let h = self.m.put.clone();
        timed(&h, || self.inner.put(key, window, value))
    }

    fn retention_ms(&self) -> i64 {
        self.inner.retention_ms()
    }
}
