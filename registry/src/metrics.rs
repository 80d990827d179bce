//! The registry's Prometheus metrics.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

/// Request counts and latencies by route, and what the store holds.
#[derive(Clone)]
pub struct Metrics {
    /// The Prometheus registry all of these are in; `/metrics` encodes it.
    pub registry: Registry,
    /// `kstreams_registry_requests_total{route, method, status}`.
    pub requests: IntCounterVec,
    /// `kstreams_registry_request_seconds{route, method}`.
    pub latency: HistogramVec,
    /// `kstreams_registry_schemas`: distinct schemas (ids) stored.
    pub schemas: IntGauge,
    /// `kstreams_registry_subjects`: subjects with a live version.
    pub subjects: IntGauge,
    /// `kstreams_registry_store_position`: the next offset the reader reads in the schemas topic.
    pub position: IntGauge,
}

impl Metrics {
    /// New metrics in a new Prometheus registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("kstreams_registry_requests_total", "HTTP requests served, by route, method and status"),
            &["route", "method", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new("kstreams_registry_request_seconds", "HTTP request latency, by route and method")
                .buckets(vec![0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0]),
            &["route", "method"],
        )?;
        let schemas = IntGauge::new("kstreams_registry_schemas", "Distinct schemas (ids) stored")?;
        let subjects = IntGauge::new("kstreams_registry_subjects", "Subjects with a live version")?;
        let position =
            IntGauge::new("kstreams_registry_store_position", "Next offset the reader reads in the schemas topic")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(schemas.clone()))?;
        registry.register(Box::new(subjects.clone()))?;
        registry.register(Box::new(position.clone()))?;
        Ok(Metrics { registry, requests, latency, schemas, subjects, position })
    }

    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        prometheus::TextEncoder::new().encode_to_string(&self.registry.gather()).unwrap_or_default()
    }
}
