//! # kstreams-streams: the DSL, the topology, the Processor API, serdes and the runtime
//!
//! - [`dsl`]: `StreamsBuilder`, `KStream`, `KTable`, grouped and windowed streams.
//! - [`topology`] and [`processor`]: the graph the DSL builds, and the Processor API under it.
//! - [`serde`] and [`partitioner`]: bytes compatible with Kafka's Java clients.
//! - [`store`]: typed state stores over the stores of `kstreams-state`.
//! - [`test_driver`]: runs a topology in-process, with several partitions, without a broker.
#![warn(missing_docs)]

pub mod dsl;
pub mod error;
pub mod header;
mod metrics;
pub mod partitioner;
pub mod processor;
pub mod query;
pub mod record;
pub mod runtime;
pub mod serde;
pub mod store;
pub mod task;
pub mod test_driver;
pub mod topology;
pub mod windowed;

pub use error::{Result, StreamsError};
