//! The layers stacked over an inner store, as in Kafka Streams:
//!
//! ```text
//! (SharedStore →)  MeteredStore  →  Caching*Store  →  ChangeLoggingStore  →  inner bytes store
//! ```
//!
//! Each layer is generic over the trait object it wraps (`dyn KeyValueBytesStore`,
//! `dyn WindowBytesStore`, `dyn SessionBytesStore`), so any stack of them is again a byte store.
//! A running task puts [`SharedStore`] on top, so that interactive queries can read the stack from
//! other threads.

/// What the three caching layers share: eviction of the least recently used entries (dirty ones are
/// written down first) and the `StateStore` methods, which write every dirty entry down before
/// flushing or committing the inner store. The type needs fields `cache` (a `RefCell<NamedCache>`) and
/// `inner` (the wrapped store), and a method `write_down(key, entry)`.
macro_rules! caching_layer {
    ($t:ty) => {
        impl $t {
            fn maybe_evict(&mut self) -> StateResult<()> {
                loop {
                    let evicted = {
                        let mut cache = self.cache.borrow_mut();
                        if !cache.should_evict() {
                            return Ok(());
                        }
                        cache.evict_lru()
                    };
                    match evicted {
                        Some((key, entry)) if entry.dirty => self.write_down(key, entry)?,
                        Some(_) => {}
                        None => return Ok(()),
                    }
                }
            }

            fn write_dirty(&mut self) -> StateResult<()> {
                let dirty = self.cache.borrow_mut().take_dirty();
                for (key, entry) in dirty {
                    self.write_down(key, entry)?;
                }
                Ok(())
            }
        }

        impl StateStore for $t {
            fn name(&self) -> &str {
                self.inner.name()
            }

            fn persistent(&self) -> bool {
                self.inner.persistent()
            }

            fn flush(&mut self) -> StateResult<()> {
                self.write_dirty()?;
                self.inner.flush()
            }

            fn flush_cache(&mut self) -> StateResult<()> {
                self.write_dirty()
            }

            fn close(&mut self) -> StateResult<()> {
                let flushed = self.flush();
                self.cache.borrow_mut().clear();
                let closed = self.inner.close();
                flushed.and(closed)
            }

            fn restore_batch(&mut self, batch: &[(Vec<u8>, Option<Vec<u8>>)]) -> StateResult<()> {
                self.cache.borrow_mut().clear();
                self.inner.restore_batch(batch)
            }

            fn commit(&mut self, changelog_offset: Option<i64>) -> StateResult<()> {
                self.write_dirty()?;
                self.inner.commit(changelog_offset)
            }

            fn committed_offset(&self) -> StateResult<Option<i64>> {
                self.inner.committed_offset()
            }
        }
    };
}

pub mod cache;
pub(crate) mod caching_kv;
mod caching_session;
mod caching_window;
pub mod logging;
pub mod metered;
mod shared;

pub use cache::{DirtyEntry, DirtyQueue, ThreadCache};
pub use caching_kv::CachingKeyValueStore;
pub use caching_session::CachingSessionStore;
pub use caching_window::CachingWindowStore;
pub use logging::ChangeLoggingStore;
pub use metered::{MeteredStore, StoreMetrics};
pub use shared::SharedStore;
