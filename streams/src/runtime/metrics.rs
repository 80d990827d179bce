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
//! | `kstreams_standby_tasks` | `standby-tasks` | `thread` |
//! | `kstreams_task_created_total` | `task-created-total` | `thread` |
//! | `kstreams_task_closed_total` | `task-closed-total` | `thread` |
//! | `kstreams_records_lag` | `records-lag` (from librdkafka's statistics) | `topic`, `partition` |
//! | `kstreams_restore_remaining_records` | `restore-remaining-records-total` | `store`, `partition` |
//! | `kstreams_state` | `state` (0 created, 1 rebalancing, 2 running, 3 pending shutdown, 4 not running, 5 error) | |
//! | `kstreams_state_*` | state store metrics, see [`StoreMetrics`] | `store`, `task` |

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
    pub standby_tasks: IntGaugeVec,
    pub task_created: IntCounterVec,
    pub task_closed: IntCounterVec,
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
        let standby_tasks = gauge("kstreams_standby_tasks", "Standby tasks kept warm by the thread.", &["thread"])?;
        let task_created = counter("kstreams_task_created_total", "Active tasks created on the thread.", &["thread"])?;
        let task_closed = counter("kstreams_task_closed_total", "Active tasks closed on the thread.", &["thread"])?;
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
            standby_tasks,
            task_created,
            task_closed,
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

/// How often librdkafka reports statistics (consumer lag) when metrics are served.
pub(crate) const STATISTICS_INTERVAL: Duration = Duration::from_secs(2);
