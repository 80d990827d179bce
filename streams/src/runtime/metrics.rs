//! The application's Prometheus metrics, with Kafka Streams' metric names where one exists, and the
//! optional HTTP endpoint that serves them (`metrics.http.address`).
//!
//! | metric | Kafka Streams name | labels |
//! |---|---|---|
//! | `kstreams_process_total` | `process-total` | `thread`, `task` |
//! | `kstreams_dropped_records_total` | `dropped-records-total` | `thread`, `task` |
//! | `kstreams_process_latency_seconds` (histogram of one record in 32: timing every record costs more than a stateless record's processing; the process rate is `kstreams_process_total`) | `process-latency-avg/max` | `thread` |
//! | `kstreams_commit_latency_seconds` (histogram; `_count` rate = commit rate) | `commit-latency-avg/max` | `thread` |
//! | `kstreams_poll_total` | `poll-total` | `thread` |
//! | `kstreams_active_tasks` | `active-tasks` (client level: the task count) | `thread` |
//! | `kstreams_records_lag` | `records-lag` (from librdkafka's statistics) | `topic`, `partition` |
//! | `kstreams_restore_remaining_records` | `restore-remaining-records-total` | `store`, `partition` |
//! | `kstreams_state` | `state` (0 created, 1 rebalancing, 2 running, 3 pending shutdown, 4 not running, 5 error) | |
//! | `kstreams_state_*` | state store metrics, see [`StoreMetrics`] | `store`, `task` |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use kstreams_state::{RestoreListener, StoreMetrics};

use crate::error::{Result, StreamsError};
use crate::metrics::TaskMetrics;

const LATENCY_BUCKETS: &[f64] = &[1e-6, 1e-5, 1e-4, 1e-3, 5e-3, 2e-2, 0.1, 0.5, 2.0, 10.0];

fn err(e: prometheus::Error) -> StreamsError {
    StreamsError::IllegalState(format!("registering metrics: {e}"))
}

/// Every metric of one application instance.
#[derive(Clone)]
pub(crate) struct StreamsMetrics {
    pub registry: Registry,
    processed: IntCounterVec,
    dropped: IntCounterVec,
    pub process_latency: HistogramVec,
    pub commit_latency: HistogramVec,
    pub poll: IntCounterVec,
    pub active_tasks: IntGaugeVec,
    pub records_lag: IntGaugeVec,
    pub restore_remaining: IntGaugeVec,
    pub state: IntGauge,
    pub stores: Arc<StoreMetrics>,
}

impl StreamsMetrics {
    pub(crate) fn new() -> Result<StreamsMetrics> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec> {
            let c = IntCounterVec::new(Opts::new(name, help), labels).map_err(err)?;
            registry.register(Box::new(c.clone())).map_err(err)?;
            Ok(c)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).map_err(err)?;
            registry.register(Box::new(g.clone())).map_err(err)?;
            Ok(g)
        };
        let histogram = |name: &str, help: &str| -> Result<HistogramVec> {
            let opts = HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec());
            let h = HistogramVec::new(opts, &["thread"]).map_err(err)?;
            registry.register(Box::new(h.clone())).map_err(err)?;
            Ok(h)
        };
        let processed = counter("kstreams_process_total", "Records processed.", &["thread", "task"])?;
        let dropped = counter(
            "kstreams_dropped_records_total",
            "Records dropped (late, invalid timestamp, skipped by a handler).",
            &["thread", "task"],
        )?;
        let process_latency =
            histogram("kstreams_process_latency_seconds", "Time to process one record (one record in 32 is timed).")?;
        let commit_latency =
            histogram("kstreams_commit_latency_seconds", "Time to commit (producer, stores, offsets).")?;
        let poll = counter("kstreams_poll_total", "Consumer polls.", &["thread"])?;
        let active_tasks = gauge("kstreams_active_tasks", "Tasks running on the thread.", &["thread"])?;
        let records_lag = gauge(
            "kstreams_records_lag",
            "Consumer lag per input partition (librdkafka statistics).",
            &["topic", "partition"],
        )?;
        let restore_remaining =
            gauge("kstreams_restore_remaining_records", "Changelog offsets left to restore.", &["store", "partition"])?;
        let state = IntGauge::new(
            "kstreams_state",
            "Application state: 0 created, 1 rebalancing, 2 running, 3 pending shutdown, 4 not running, 5 error.",
        )
        .map_err(err)?;
        registry.register(Box::new(state.clone())).map_err(err)?;
        let stores = StoreMetrics::register(&registry)?;
        Ok(StreamsMetrics {
            registry,
            processed,
            dropped,
            process_latency,
            commit_latency,
            poll,
            active_tasks,
            records_lag,
            restore_remaining,
            state,
            stores,
        })
    }

    /// The counters of one task, labelled.
    pub(crate) fn task(&self, thread: &str, task: &str) -> TaskMetrics {
        TaskMetrics {
            dropped_records: self.dropped.with_label_values(&[thread, task]),
            processed_records: self.processed.with_label_values(&[thread, task]),
        }
    }

    /// The registry in Prometheus' text format.
    pub(crate) fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "encoding metrics failed");
        }
        out
    }
}

/// Feeds restore progress into `kstreams_restore_remaining_records`, then calls the user's listener.
pub(crate) struct MeteredRestoreListener {
    pub remaining: IntGaugeVec,
    pub user: Option<Arc<dyn RestoreListener>>,
}

impl RestoreListener for MeteredRestoreListener {
    fn on_restore_start(&self, topic: &str, partition: i32, store: &str, start_offset: i64, end_offset: i64) {
        let p = partition.to_string();
        self.remaining.with_label_values(&[store, &p]).set((end_offset - start_offset).max(0));
        if let Some(u) = &self.user {
            u.on_restore_start(topic, partition, store, start_offset, end_offset);
        }
    }
    fn on_batch_restored(&self, topic: &str, partition: i32, store: &str, batch_end_offset: i64, num_restored: u64) {
        let p = partition.to_string();
        let gauge = self.remaining.with_label_values(&[store, &p]);
        gauge.set((gauge.get() - num_restored as i64).max(0));
        if let Some(u) = &self.user {
            u.on_batch_restored(topic, partition, store, batch_end_offset, num_restored);
        }
    }
    fn on_restore_end(&self, topic: &str, partition: i32, store: &str, total_restored: u64) {
        self.remaining.with_label_values(&[store, &partition.to_string()]).set(0);
        if let Some(u) = &self.user {
            u.on_restore_end(topic, partition, store, total_restored);
        }
    }
}

/// Serves `GET /metrics` on `address` (axum, on a runtime of its own in a background thread) until
/// dropped.
pub(crate) struct MetricsServer {
    address: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    pub(crate) fn start(address: &str, metrics: StreamsMetrics) -> Result<MetricsServer> {
        let bad = |e: String| StreamsError::config("metrics.http.address", e);
        // Bound here, so that a taken port fails `start` with the setting's name.
        let listener = std::net::TcpListener::bind(address)
            .map_err(|e| bad(format!("cannot listen on `{address}`: {e} (give an IP address and a free port)")))?;
        let address = listener.local_addr().map_err(|e| bad(e.to_string()))?;
        listener.set_nonblocking(true).map_err(|e| bad(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| StreamsError::IllegalState(format!("cannot start the metrics server's runtime: {e}")))?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let body = metrics.render();
                async move { ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], body) }
            }),
        );
        let handle = std::thread::Builder::new()
            .name("kstreams-metrics-http".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let served = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => axum::serve(listener, app)
                            .with_graceful_shutdown(async move {
                                let _ = stopped.await;
                            })
                            .await
                            .map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = served {
                        tracing::warn!(error = %e, "the metrics server stopped");
                    }
                });
            })
            .map_err(|e| StreamsError::IllegalState(format!("cannot start the metrics server thread: {e}")))?;
        tracing::info!(%address, "serving Prometheus metrics at /metrics");
        Ok(MetricsServer { address, shutdown: Some(shutdown), handle: Some(handle) })
    }

    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// How often librdkafka reports statistics (consumer lag) when metrics are served.
pub(crate) const STATISTICS_INTERVAL: Duration = Duration::from_secs(2);
