//! The DSL: [`StreamsBuilder`], [`KStream`], [`KTable`], [`GlobalKTable`] and grouped and windowed
//! streams, as in Kafka Streams. Every operator adds processors to a [`Topology`](crate::topology::Topology);
//! [`StreamsBuilder::build`] checks it and hands it over.
//!
//! ```
//! use kstreams_streams::dsl::{Consumed, Materialized, Produced, StreamsBuilder};
//! use kstreams_streams::serde::Serdes;
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream("streams-plaintext-input", Consumed::with(Serdes::unit(), Serdes::string()))
//!     .flat_map_values(|line: String| line.to_lowercase().split_whitespace().map(str::to_string).collect::<Vec<_>>())
//!     .group_by(|_, word: &String| word.clone(), Default::default())
//!     .count(Materialized::as_("counts-store"))
//!     .to_stream()
//!     .to("streams-wordcount-output", Produced::with(Serdes::string(), Serdes::nullable(Serdes::i64())));
//! let topology = builder.build().unwrap();
//! assert_eq!(topology.subtopologies().len(), 2);
//! ```

mod builder;
mod change;
mod config;
mod fk_join;
mod functions;
mod global_join;
mod global_table;
mod grouped;
mod grouped_table;
mod kstream;
mod ktable;
mod ops;
mod session;
mod sliding;
mod stream_join;
mod suppress;
mod table_join;
mod windows;

pub use crate::store::ValueAndTimestamp;
pub use builder::StreamsBuilder;
pub use change::Change;
pub use config::{Branched, Consumed, Grouped, Joined, Materialized, Named, Produced, Repartitioned};
pub use global_table::GlobalKTable;
pub use grouped::{KGroupedStream, TimeWindowedKStream};
pub use grouped_table::KGroupedTable;
pub use kstream::{BranchedKStream, KStream};
pub use ktable::KTable;
pub use session::{SessionWindowedKStream, SessionWindows};
pub use sliding::{SlidingWindowedKStream, SlidingWindows};
pub use stream_join::{JoinWindows, StreamJoined};
pub use suppress::Suppressed;
pub use windows::{TimeWindows, Windows};
