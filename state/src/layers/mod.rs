//! The layers stacked over an inner store, as in Kafka Streams:
//!
//! ```text
//! MeteredStore  →  Caching*Store  →  ChangeLoggingStore  →  inner bytes store
//! ```
//!
//! Each layer is generic over the trait object it wraps (`dyn KeyValueBytesStore`,
//! `dyn WindowBytesStore`, `dyn SessionBytesStore`), so any stack of them is again a byte store.

pub mod cache;
pub(crate) mod caching_kv;
mod caching_session;
mod caching_window;
pub mod logging;
pub mod metered;

pub use cache::{DirtyEntry, DirtyQueue, ThreadCache};
pub use caching_kv::CachingKeyValueStore;
pub use caching_session::CachingSessionStore;
pub use caching_window::CachingWindowStore;
pub use logging::ChangeLoggingStore;
pub use metered::{MeteredStore, StoreMetrics};
