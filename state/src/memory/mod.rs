//! In-memory backends: fast, not persistent, rebuilt from the changelog after a restart.
//!
//! - [`InMemoryKeyValueStore`]: a `BTreeMap` ordered by key bytes;
//! - [`InMemoryWindowStore`]: entries ordered by (key, window start, seqnum), with retention by
//!   observed stream time;
//! - [`InMemorySessionStore`]: sessions ordered by (key, end, start), with retention by observed
//!   stream time.

/// The `StateStore` methods every in-memory store shares (it needs fields `name` and `open`):
/// expands inside `impl StateStore for …`, next to the store's own `restore_batch`.
macro_rules! in_memory_state_store {
    () => {
        fn name(&self) -> &str {
            &self.name
        }

        fn persistent(&self) -> bool {
            false
        }

        fn flush(&mut self) -> StateResult<()> {
            ensure_open(self.open, &self.name)
        }

        fn close(&mut self) -> StateResult<()> {
            self.open = false;
            Ok(())
        }
    };
}

mod kv;
mod session;
mod window;

pub use kv::InMemoryKeyValueStore;
pub use session::InMemorySessionStore;
pub use window::InMemoryWindowStore;

use crate::error::{StateError, StateResult};

/// Fails with [`StateError::Closed`] when a store is used after `close`.
pub(crate) fn ensure_open(open: bool, name: &str) -> StateResult<()> {
    if open {
        Ok(())
    } else {
        Err(StateError::Closed(name.to_string()))
    }
}

/// Whether a record at `ts` is past retention, Kafka's rule: `ts + retention <= observed stream time`.
pub(crate) fn expired(ts: i64, retention_ms: i64, observed: i64) -> bool {
    observed != i64::MIN && ts.saturating_add(retention_ms) <= observed
}
