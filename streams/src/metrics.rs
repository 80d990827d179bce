//! Metrics of tasks, with Kafka Streams' metric names where one exists.

use prometheus::IntCounter;

/// Counters of one task.
#[derive(Clone)]
pub(crate) struct TaskMetrics {
    /// Kafka Streams' `dropped-records-total`: late, invalid-timestamp or otherwise dropped records.
    pub dropped_records: IntCounter,
    /// Kafka Streams' `process-total`.
    pub processed_records: IntCounter,
}

impl TaskMetrics {
    pub(crate) fn new() -> Self {
        // Both names are valid metric names, so creating the counters cannot fail.
        let counter = |name: &str, help: &str| {
            IntCounter::new(name, help).unwrap_or_else(|_| unreachable!("valid metric name {name}"))
        };
        TaskMetrics {
            dropped_records: counter("kstreams_dropped_records_total", "records dropped by the task"),
            processed_records: counter("kstreams_process_total", "records processed by the task"),
        }
    }
}
