//! # kstreams: Kafka Streams for Rust
//!
//! Stream processing on Apache Kafka with the concepts of Kafka Streams: a DSL of [`dsl::KStream`]s
//! and [`dsl::KTable`]s, a Processor API, RocksDB state stores backed by changelog topics, tasks
//! spread over every instance of an application, and `exactly_once_v2` through Kafka transactions.
//!
//! ```
//! use kstreams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
//! use kstreams::serde::Serdes;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("text", Consumed::with(Serdes::unit(), Serdes::string()))
//!     .flat_map_values(|line: String| line.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
//!     .group_by(|_, word: &String| word.clone(), Default::default())
//!     .count(Materialized::as_("counts"))
//!     .to_stream()
//!     .to("word-counts", Produced::default());
//! let topology = builder.build().unwrap();
//! println!("{}", topology.describe());
//! ```
//!
//! Run it with [`runtime::KafkaStreams`], or in a unit test with [`test_driver::TopologyTestDriver`].

pub use kstreams_state as state;
pub use kstreams_streams::{
    dsl, error, header, partitioner, processor, query, record, runtime, serde, store, task, test_driver, topology,
    windowed, Result, StreamsError,
};
