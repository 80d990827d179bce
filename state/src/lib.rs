//! # kstreams-state: the state stores behind kstreams
//!
//! Stores work on bytes; the typed facades (with serdes) live in `kstreams-streams`. A store is a stack
//! of layers, as in Kafka Streams:
//!
//! ```text
//! metered (metrics)  →  caching (record cache)  →  change-logging (changelog topic)  →  inner bytes store
//! ```
//!
//! The inner stores are RocksDB (persistent, the default) and in-memory. Key-value, window and session
//! stores share the traits in [`store`].
//!
//! ```
//! use kstreams_state::store::KeyValueBytesStore;
//! use kstreams_state::memory::InMemoryKeyValueStore;
//!
//! let mut store = InMemoryKeyValueStore::new("counts");
//! store.put(b"apple", Some(b"3")).unwrap();
//! assert_eq!(store.get(b"apple").unwrap().as_deref(), Some(&b"3"[..]));
//! ```
#![warn(missing_docs)]

pub mod checkpoint;
pub mod error;
mod factory;
pub mod keys;
pub mod layers;
pub mod memory;
pub mod restore;
pub mod rocksdb;
pub mod state_dir;
pub mod store;
pub mod task_state;

pub use checkpoint::Checkpoint;
pub use error::{StateError, StateResult};
pub use factory::{open_store, open_store_with, OpenedStore, StoreHandle, StoreOptions};
pub use layers::{DirtyEntry, DirtyQueue, StoreMetrics, ThreadCache};
pub use restore::{RestoreListener, RestoreOutcome, Restorer};
pub use rocksdb::{RocksDbConfigSetter, RocksDbResources};
pub use state_dir::StateDirectory;
pub use store::{
    Backend, ChangelogRecord, ChangelogSink, KeyValueBytesStore, SessionBytesStore, SessionWindow, StateStore,
    StoreContext, StoreKind, StoreSpec, WindowBytesStore, WindowEntry,
};
pub use task_state::TaskStateManager;
